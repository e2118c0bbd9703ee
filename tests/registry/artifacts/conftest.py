"""The real things for artifact tests (DESIGN D8): an S3-compatible server (moto) in its own
process, a Celery worker on Redis, and the registry's web server in its own process.

The web server and the worker get the storage credentials in their environment; the test
process, where the ``mlflow`` client runs, does not: it reaches the files only through the
registry's API with a token.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import boto3
import pytest
import redis
from botocore.config import Config
from django.db import connection

ROOT = Path(__file__).resolve().parents[3]
# Redis database of these tests' broker (the webhooks tests use 1).
BROKER_URL = os.environ.get("ARTIFACT_TEST_BROKER_URL", "redis://127.0.0.1:6379/3")
STORE_BUCKET = "registry"
SOURCE_BUCKET = "source"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate, timeout: float, what: str, interval: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _stop(process: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    if process.poll() is None:
        os.killpg(process.pid, sig)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


@dataclass
class MotoServer:
    """``moto_server`` in its own process; it keeps its state in memory, so a restart
    starts empty (tests that restart it put back what they need)."""

    log_dir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        log = (self.log_dir / f"moto-{self.port}.log").open("ab")
        self.process = subprocess.Popen(  # noqa: S603
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for(lambda: _listening(self.port), 30, "the S3 server")

    def stop(self) -> None:
        if self.process is not None:
            _stop(self.process, signal.SIGKILL)
            wait_for(lambda: not _listening(self.port), 10, "the S3 server to stop")

    def client(self):
        return boto3.client(
            "s3",
            endpoint_url=self.url,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"}),
        )

    def reset(self) -> None:
        """Empty every bucket, then make sure the two buckets the tests use exist."""
        self.process_ok()
        urllib.request.urlopen(  # noqa: S310
            urllib.request.Request(f"{self.url}/moto-api/reset", method="POST"), timeout=10
        ).close()
        s3 = self.client()
        for bucket in (STORE_BUCKET, SOURCE_BUCKET):
            s3.create_bucket(Bucket=bucket)

    def process_ok(self) -> None:
        assert self.process is not None
        assert self.process.poll() is None, "the S3 server died"


@pytest.fixture(scope="session")
def moto_server(tmp_path_factory) -> Iterator[MotoServer]:
    server = MotoServer(tmp_path_factory.mktemp("moto"))
    server.start()
    yield server
    server.stop()


@dataclass
class RegistryStack:
    """The registry's web server and a Celery worker, in their own processes."""

    moto: MotoServer
    workdir: Path
    database_url: str
    extra_env: dict[str, str]
    port: int = field(default_factory=free_port)
    web: subprocess.Popen | None = None
    worker: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("AWS_", "MLFLOW_", "CELERY_", "ARTIFACT_"))
        }
        env.update(CREDENTIALS)
        env.update(
            {
                "DJANGO_SETTINGS_MODULE": "config.test_settings",
                "DATABASE_URL": self.database_url,
                "CELERY_BROKER_URL": BROKER_URL,
                "ARTIFACT_STORE_URI": f"s3://{STORE_BUCKET}/models-store",
                "AWS_ENDPOINT_URL_S3": self.moto.url,
                "ARTIFACT_FILE_SOURCE_ROOTS": str(self.workdir / "sources"),
                # Short backoff so that the retry tests finish in seconds: 1, 2, 4, 8, 16 s.
                "ARTIFACT_COPY_RETRY_BACKOFF": "1",
                "ARTIFACT_COPY_MAX_RETRIES": "5",
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(self.extra_env)
        return env

    def start(self) -> None:
        redis.Redis.from_url(BROKER_URL).flushdb()
        env = self.env()
        worker_log = (self.workdir / "worker.log").open("ab")
        self.worker = subprocess.Popen(  # noqa: S603
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "--pool=threads",
                "--concurrency=2",
                "--without-heartbeat",
                "--without-gossip",
                "--without-mingle",
                "--loglevel=INFO",
            ],
            cwd=ROOT,
            env=env,
            stdout=worker_log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        web_log = (self.workdir / "web.log").open("ab")
        self.web = subprocess.Popen(  # noqa: S603
            [sys.executable, "manage.py", "runserver", f"127.0.0.1:{self.port}", "--noreload"],
            cwd=ROOT,
            env=env,
            stdout=web_log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for(self._healthy, 60, "the registry's web server")
        wait_for(
            lambda: " ready." in (self.workdir / "worker.log").read_text(errors="replace"),
            60,
            "the Celery worker",
        )

    def _healthy(self) -> bool:
        assert self.web is not None
        assert self.web.poll() is None, (self.workdir / "web.log").read_text(errors="replace")
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=2) as response:  # noqa: S310
                return response.status == 200
        except OSError:
            return False

    def stop(self) -> None:
        for process in (self.web, self.worker):
            if process is not None:
                _stop(process)

    def logs(self) -> str:
        return "\n".join(
            f"--- {name} ---\n" + (self.workdir / name).read_text(errors="replace")[-6000:]
            for name in ("web.log", "worker.log")
            if (self.workdir / name).exists()
        )


@pytest.fixture
def stack_env() -> dict[str, str]:
    """Extra environment for the web server and the worker; tests override it."""
    return {}


@pytest.fixture
def registry_stack(transactional_db, moto_server, tmp_path, stack_env) -> Iterator[RegistryStack]:
    moto_server.reset()
    (tmp_path / "sources").mkdir()
    settings_dict = connection.settings_dict
    database_url = (
        f"postgres://{settings_dict['USER']}:{settings_dict['PASSWORD'] or ''}@"
        f"{settings_dict['HOST']}:{settings_dict['PORT']}/{settings_dict['NAME']}"
    )
    stack = RegistryStack(moto_server, tmp_path, database_url, stack_env)
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()


@pytest.fixture
def client_env(monkeypatch, registry_stack, user):
    """The ``mlflow`` client's environment: the registry URL and a token, nothing else.

    No AWS variable, no AWS config or credentials file: the client can only fetch artifacts
    through the registry's API.
    """
    from accounts.services import api_token_create

    for name in list(os.environ):
        if name.startswith(("AWS_", "MLFLOW_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", registry_stack.url)
    monkeypatch.setenv("MLFLOW_REGISTRY_URI", registry_stack.url)
    monkeypatch.setenv(
        "MLFLOW_TRACKING_TOKEN", api_token_create(actor=None, user=user, name="e2e").secret
    )
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    import mlflow

    mlflow.set_tracking_uri(registry_stack.url)
    mlflow.set_registry_uri(registry_stack.url)
    return registry_stack
