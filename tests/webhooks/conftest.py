"""Real things for the webhook tests: an HTTP receiver on 127.0.0.1, a Celery worker process on
Redis, and the test process publishing to that Redis (docs/architecture.md, "Decisions")."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from config.celery import app as celery_app
from testing_support.network import serve_posts

ROOT = Path(__file__).resolve().parents[2]
# Redis DB 1 is this suite's own (the project's rule for webhook tests).
REDIS_URL = os.environ.get("WEBHOOKS_TEST_REDIS_URL", "redis://127.0.0.1:6379/1")
CLOSED_PORT_BROKER = "redis://127.0.0.1:1/0"  # nothing listens on port 1


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Receiver:
    """Records every POST. ``respond`` decides the status of each (default 200); ``hold``
    makes the handler wait until it is set (a receiver that keeps the request open)."""

    url: str = ""
    received: list[Received] = field(default_factory=list)
    respond: Callable[[Received, int], int] = lambda request, index: 200
    hold: threading.Event | None = None
    arrived: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.02)
        with self.lock:
            raise AssertionError(f"expected {count} requests, got {len(self.received)}")


def _on_post(receiver: Receiver) -> Callable[[str, Any, bytes], int]:
    def on_post(path: str, headers: Any, body: bytes) -> int:
        request = Received(path, dict(headers.items()), body)
        with receiver.lock:
            receiver.received.append(request)
            index = len(receiver.received) - 1
        receiver.arrived.set()
        if receiver.hold is not None:
            receiver.hold.wait(30)
        return receiver.respond(request, index)

    return on_post


@contextlib.contextmanager
def run_receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    server = serve_posts(_on_post(receiver))
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    try:
        yield receiver
    finally:
        if receiver.hold is not None:
            receiver.hold.set()
        server.shutdown()
        server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with run_receiver() as running:
        yield running


def use_broker(url: str) -> None:
    """Point this process's Celery app at ``url`` (drops pooled connections to the old one)."""
    celery_app.conf.broker_url = url
    # Only drop the references: kombu keeps pools in a registry keyed by URL, and a closed one
    # would be handed out again when this URL comes back.
    celery_app._pool = None
    with contextlib.suppress(AttributeError, KeyError):
        celery_app.__dict__["amqp"]._producer_pool = None


@pytest.fixture
def redis_broker() -> Iterator[str]:
    """This process publishes to the suite's Redis DB, emptied first."""
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    old = celery_app.conf.broker_url
    use_broker(REDIS_URL)
    yield REDIS_URL
    use_broker(old)


#: Fast retries for the worker and for this process, so fault tests take seconds.
FAST_ENV = {
    "WEBHOOKS_BACKOFF_BASE": "0.2",
    "WEBHOOKS_BACKOFF_MAX": "0.5",
    "WEBHOOKS_MAX_ATTEMPTS": "3",
    "WEBHOOKS_DISABLE_AFTER_FAILURES": "2",
    "WEBHOOKS_CLAIM_LEASE": "3",
    "WEBHOOKS_READ_TIMEOUT": "10",
}


@pytest.fixture
def fast_webhooks(settings) -> None:
    settings.WEBHOOKS = {
        **settings.WEBHOOKS,
        "BACKOFF_BASE": 0.2,
        "BACKOFF_MAX": 0.5,
        "MAX_ATTEMPTS": 3,
        "DISABLE_AFTER_FAILURES": 2,
        "CLAIM_LEASE": 3.0,
        "SWEEP_GRACE": 0.0,
    }


class Worker:
    """A ``celery -A config worker`` process on the suite's Redis and test database."""

    def __init__(self, *, concurrency: int = 8) -> None:
        db = connection.settings_dict
        database_url = (
            f"postgres://{db['USER']}"
            + (f":{db['PASSWORD']}" if db.get("PASSWORD") else "")
            + f"@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
        )
        self.env = {
            **os.environ,
            **FAST_ENV,
            "DJANGO_SETTINGS_MODULE": "config.test_settings",
            "DATABASE_URL": database_url,
            "CELERY_BROKER_URL": REDIS_URL,
            "PYTHONUNBUFFERED": "1",
        }
        self.concurrency = concurrency
        self.process: subprocess.Popen[bytes] | None = None
        self.log = ROOT / "var" / f"test-webhook-worker-{os.getpid()}.log"

    def start(self) -> Worker:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "config",
                "worker",
                "--pool=threads",
                f"--concurrency={self.concurrency}",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "--loglevel=WARNING",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def start_worker(redis_broker) -> Iterator[Callable[..., Worker]]:
    workers: list[Worker] = []

    def start(**kwargs: Any) -> Worker:
        worker = Worker(**kwargs).start()
        workers.append(worker)
        return worker

    yield start
    for worker in workers:
        worker.stop()


@pytest.fixture
def worker(start_worker) -> Worker:
    return start_worker()


@pytest.fixture
def admin(django_user_model):
    from tests.conftest import PASSWORD

    return django_user_model.objects.create_superuser(
        username="root", email="root@example.com", password=PASSWORD
    )


def wait_until(predicate: Callable[[], Any], timeout: float = 30.0, step: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    raise AssertionError("condition not met in time")
