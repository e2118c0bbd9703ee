"""Driving Debian's Chromium with Playwright for the browser tests.

Playwright's own browser download is never used: the tests launch ``/usr/bin/chromium``
(installed by ``.ci/browser`` from ``make test``). Screenshots go to ``test-output/ui/`` (or
``$UI_SCREENSHOT_DIR``), which git ignores.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = os.environ.get("CHROMIUM_PATH") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WIDTHS = (1280, 390)
SCREENSHOT_DIR = Path(
    os.environ.get("UI_SCREENSHOT_DIR")
    or Path(__file__).resolve().parents[2] / "test-output" / "ui"
)

# Elements whose right edge lies past the viewport, ignoring what is invisible and what sits in
# a box that clips or scrolls its content (a code block's own scroll bar is fine).
OVERFLOW_SCRIPT = """
() => {
  const width = document.documentElement.clientWidth;
  const clipped = (el) => {
    for (let node = el; node && node !== document.body; node = node.parentElement) {
      const style = getComputedStyle(node);
      if (style.overflowX !== 'visible' || style.clip !== 'auto' && style.clip !== '') return true;
      if (style.display === 'none' || style.visibility === 'hidden') return true;
    }
    return false;
  };
  const found = [];
  for (const el of document.body.querySelectorAll('*')) {
    const rect = el.getBoundingClientRect();
    if (rect.width === 0 || rect.height === 0) continue;
    if (rect.right > width + 1 && !clipped(el.parentElement) && !clipped(el)) {
      found.push(`${el.tagName.toLowerCase()}.${el.className} right=${Math.round(rect.right)}`);
    }
  }
  if (document.documentElement.scrollWidth > width + 1) {
    found.push(`document scrollWidth=${document.documentElement.scrollWidth}`);
  }
  return found;
}
"""


# Words broken inside table headers and cells ("Requeste d by", "Versio n 3"): a word of
# letters whose text spans two lines. Only words (letters, up to 30): a digest or an address may
# wrap anywhere (they carry .wrap-any); a header hidden on narrow screens is not looked at.
BROKEN_WORDS_SCRIPT = """
() => {
  const hidden = (el) => {
    for (let node = el; node && node !== document.body; node = node.parentElement) {
      const style = getComputedStyle(node);
      if (style.display === 'none' || style.visibility === 'hidden') return true;
      if (style.overflow === 'hidden' && node.getBoundingClientRect().width <= 1) return true;
    }
    return false;
  };
  const found = [];
  for (const cell of document.querySelectorAll('th, td')) {
    if (hidden(cell)) continue;
    const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      const words = /[A-Za-z\u00c0-\u024f]{2,30}/g;
      for (let match = words.exec(node.data); match; match = words.exec(node.data)) {
        const range = document.createRange();
        range.setStart(node, match.index);
        range.setEnd(node, match.index + match[0].length);
        const lines = new Set();
        for (const rect of range.getClientRects()) {
          if (rect.width > 0) lines.add(Math.round(rect.top));
        }
        if (lines.size > 1) found.push(`${cell.tagName.toLowerCase()}: "${match[0]}"`);
      }
    }
  }
  return found;
}
"""


def screenshot_each_width(page: Any, name: str) -> None:
    """Save ``<name>-<width>.png`` at each width and assert nothing overflows horizontally and
    no word in a table is broken across lines."""
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        page.wait_for_timeout(50)
        page.screenshot(path=str(SCREENSHOT_DIR / f"{name}-{width}.png"), full_page=True)
        overflowing = page.evaluate(OVERFLOW_SCRIPT)
        assert overflowing == [], f"{name} at {width}px overflows: {overflowing}"
        broken = page.evaluate(BROKEN_WORDS_SCRIPT)
        assert broken == [], f"{name} at {width}px breaks words in tables: {broken}"
    page.set_viewport_size({"width": WIDTHS[0], "height": 900})


def sign_in(browser: Any, base_url: str, username: str, password: str, *, at: str = "/models/"):
    """A new page in a new browser context, signed in as ``username`` through the sign-in form,
    on ``at``."""
    context = browser.new_context(viewport={"width": WIDTHS[0], "height": 900})
    page = context.new_page()
    page.goto(f"{base_url}{at}")
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{base_url}{at}")
    return page


# The browser tests need Debian's Chromium, which `make test` installs; outside CI a machine
# without it skips them, under CI (``CI`` set) they fail instead of passing unseen.
needs_chromium = pytest.mark.skipif(
    not Path(CHROMIUM).exists() and not os.environ.get("CI"),
    reason="Chromium is not installed (make test installs it)",
)
