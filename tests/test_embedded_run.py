"""The README's first command: the embedded service starts, answers the README's curl, and
stops whole on Ctrl-C.

This runs what ``make run`` runs after installing (migrate, ensure_admin, run_embedded) in a
fresh data folder with no external service configured, then executes the README's curl block.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from testing_support.network import free_port

ROOT = Path(__file__).resolve().parent.parent


def _embedded_env(data_dir: Path) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DATABASE_", "CELERY_", "DJANGO_", "ARTIFACT_"))
    }
    env.update({"REGISTRY_DATA_DIR": str(data_dir), "DJANGO_DEBUG": "true"})
    return env


def _readme_curl_block() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"<!-- readme-curl -->\s*```sh\n(.*?)```", readme, re.DOTALL)
    assert match, "the README has lost its curl example"
    return match.group(1)


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def test_make_run_serves_the_readme_curl_and_stops_on_ctrl_c(tmp_path):
    data_dir = tmp_path / "var"
    env = _embedded_env(data_dir)
    manage = [sys.executable, "manage.py"]
    for step in (["migrate", "--noinput"], ["ensure_admin"]):
        subprocess.run(manage + step, cwd=ROOT, env=env, check=True, capture_output=True)
    assert (data_dir / "registry.sqlite3").exists()

    port = free_port()
    log_path = tmp_path / "run.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(  # noqa: S603
            manage + ["run_embedded", "--bind", f"127.0.0.1:{port}"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_for(lambda: _healthy(port), 60, "the web server")
        _wait_for(lambda: "ready." in log_path.read_text(errors="replace"), 60, "the worker")
        _wait_for(
            lambda: "beat: Starting" in log_path.read_text(errors="replace"), 60, "celery beat"
        )

        script = _readme_curl_block().replace("127.0.0.1:8000", f"127.0.0.1:{port}")
        result = subprocess.run(  # noqa: S603
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        body = json.loads(result.stdout)
        assert body["registered_model"]["name"] == "fraud-detector"
        assert body["registered_model"]["description"] == "Scores card payments"
    finally:
        os.killpg(process.pid, signal.SIGINT)  # what Ctrl-C in the terminal does
        try:
            process.wait(timeout=30)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)

    def group_gone() -> bool:
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return True
        return False

    _wait_for(group_gone, 30, "web server, worker and beat to exit")
