"""Production settings serve static files under the names collectstatic's manifest gives them:
without the manifest (or with one from another release) every page would answer 500, so the web
server refuses to start, saying to run collectstatic, and ``check --deploy`` reports an error.

The service runs in subprocesses (gunicorn, manage.py) under ``config.settings`` with debug off,
on a SQLite file of its own: no test database is involved.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

from testing_support.network import free_port
from tests.processes import wait_for

ROOT = Path(__file__).resolve().parent.parent


def _production_env(tmp_path: Path, static_root: Path) -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("DJANGO_", "DATABASE_", "REGISTRY_", "CELERY_", "ARTIFACT_"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DJANGO_DEBUG="false",
        DJANGO_SECRET_KEY="a-production-key-for-the-static-files-tests",
        DJANGO_ALLOWED_HOSTS="127.0.0.1",
        DJANGO_SECURE_SSL_REDIRECT="false",
        DJANGO_STATIC_ROOT=str(static_root),
        REGISTRY_DATA_DIR=str(tmp_path / "var"),
    )
    return env


def _gunicorn(env: dict[str, str], port: int, log: Path) -> subprocess.Popen:
    return subprocess.Popen(  # noqa: S603
        [
            sys.executable,
            "-m",
            "gunicorn",
            "config.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
        ],
        cwd=ROOT,
        env=env,
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def _get(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - a local test server
        return response.status, response.read()


def _refusal(output: str) -> str:
    match = re.search(r"ImproperlyConfigured: (.*)", output)
    return match.group(1) if match else ""


def test_the_web_server_refuses_to_start_without_the_manifest(tmp_path):
    empty = tmp_path / "static"  # collectstatic never ran
    log = tmp_path / "gunicorn.log"
    process = _gunicorn(_production_env(tmp_path, empty), free_port(), log)
    try:
        process.wait(timeout=120)
    finally:
        _stop(process)
    output = log.read_text(errors="replace")
    assert process.returncode != 0, output
    message = _refusal(output)
    assert message.startswith(
        f"The static files manifest {empty / 'staticfiles.json'} does not exist"
    ), output
    assert "python manage.py collectstatic --noinput" in message
    assert not empty.exists()  # nothing was written in its place


def test_the_web_server_starts_and_serves_pages_with_the_manifest(tmp_path, collected_static):
    port = free_port()
    log = tmp_path / "gunicorn.log"
    process = _gunicorn(_production_env(tmp_path, collected_static), port, log)
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        assert process.poll() is None, log.read_text(errors="replace")
        try:
            return _get(f"{base}/health")[0] == 200
        except OSError:
            return False

    try:
        wait_for(up, 120, "gunicorn")
        status, page = _get(f"{base}/login/")
        assert status == 200
        # The page links its files under their hashed names, and they are served.
        links = re.findall(rb'(?:href|src)="(/static/[^"]+)"', page)
        assert links, page[:500]
        manifest = json.loads((collected_static / "staticfiles.json").read_text())
        hashed = {f"/static/{name}" for name in manifest["paths"].values()}
        for link in links:
            assert link.decode() in hashed
            assert _get(base + link.decode())[0] == 200
    finally:
        _stop(process)


def _check_deploy(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", "check", "--deploy"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_check_deploy_reports_a_missing_manifest_as_an_error(tmp_path):
    result = _check_deploy(_production_env(tmp_path, tmp_path / "static"))
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "ERRORS:" in output
    assert "(registry.E010) The static files manifest" in output
    assert "collectstatic" in output


def test_check_deploy_reports_a_manifest_of_another_release(tmp_path, collected_static):
    stale = tmp_path / "static"
    shutil.copytree(collected_static, stale)
    manifest = json.loads((stale / "staticfiles.json").read_text())
    dropped = sorted(name for name in manifest["paths"] if name.startswith("ui/"))[0]
    del manifest["paths"][dropped]
    (stale / "staticfiles.json").write_text(json.dumps(manifest))

    result = _check_deploy(_production_env(tmp_path, stale))
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert f"lacks 1 file(s) the installed apps ship ({dropped})" in output
    assert "collectstatic" in output


def test_the_embedded_default_needs_no_manifest(tmp_path):
    """Debug mode (``make run``) serves the apps' own folders: nothing to collect."""
    env = _production_env(tmp_path, tmp_path / "static")
    env["DJANGO_DEBUG"] = "true"
    result = _check_deploy(env)
    assert "registry.E010" not in result.stdout + result.stderr
