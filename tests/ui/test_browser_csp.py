"""The Content-Security-Policy in a real browser: the UI and the API reference page work under
it, and Chromium reports no violation (docs/security.md)."""

from __future__ import annotations

from tests.conftest import PASSWORD
from tests.ui.conftest import _user
from tests.ui.test_browser import browser, pytestmark  # noqa: F401 - the fixture and the marks


def _violations(page) -> list[str]:
    found: list[str] = []
    page.on(
        "console",
        lambda message: (
            found.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    return found


def test_ui_pages_run_under_the_csp(browser, live_server, django_user_model):  # noqa: F811
    _user(django_user_model, "carol")
    page = browser.new_context().new_page()
    violations = _violations(page)
    page.goto(f"{live_server.url}/models/")
    page.get_by_label("User name").fill("carol")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/models/")
    page.goto(f"{live_server.url}/models/")
    page.wait_for_load_state("networkidle")
    assert violations == []


def test_api_reference_renders_under_the_csp(browser, live_server):  # noqa: F811
    page = browser.new_context().new_page()
    violations = _violations(page)
    response = page.goto(f"{live_server.url}/api/docs/")
    assert "Content-Security-Policy" in {k.title() for k in response.headers}
    # Swagger UI built the page from the schema: its script ran and its fetch was allowed.
    page.wait_for_selector(".opblock", timeout=30_000)
    assert violations == []
