"""Fault drills (docs/operations.md "Fault drills"): the real service in its own processes, a
real dependency stopped and started under it, and what the user saw and what was kept checked
afterwards.

Each drill has its own Redis (and, for the PostgreSQL drill, its own PostgreSQL cluster), so it
can stop them without touching the servers the rest of the suite and other programs share.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message
from typing import Any

import pytest

from tests.processes import PrivateRedis

#: Fast webhook retries for the worker, so a drill takes seconds.
FAST_WEBHOOKS_ENV = {
    "WEBHOOKS_BACKOFF_BASE": "0.2",
    "WEBHOOKS_BACKOFF_MAX": "0.5",
    "WEBHOOKS_MAX_ATTEMPTS": "5",
    "WEBHOOKS_CLAIM_LEASE": "5",
    "WEBHOOKS_READ_TIMEOUT": "10",
}


@dataclass
class Answer:
    status: int
    body: Any
    headers: Message


@dataclass
class HttpApi:
    """A client of the registry's HTTP API that signs in with HTTP Basic."""

    base_url: str
    username: str
    password: str

    def call(
        self, method: str, path: str, payload: dict[str, Any] | None = None, timeout: float = 30
    ) -> Answer:
        url = self.base_url + path
        data = None
        if method == "GET" and payload:
            url += "?" + urllib.parse.urlencode(payload)
        elif payload is not None:
            data = json.dumps(payload).encode()
        credentials = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
        request = urllib.request.Request(
            url,
            data=data,
            method=method,
            headers={"Authorization": f"Basic {credentials}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
                return Answer(response.status, _json(response.read()), response.headers)
        except urllib.error.HTTPError as error:
            return Answer(error.code, _json(error.read()), error.headers)

    def ok(self, method: str, path: str, payload: dict[str, Any] | None = None) -> Any:
        answer = self.call(method, path, payload)
        assert answer.status == 200, (method, path, answer.status, answer.body)
        return answer.body


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode(errors="replace")


@pytest.fixture
def private_redis() -> Iterator[PrivateRedis]:
    if not PrivateRedis.available():
        pytest.skip("redis-server is not installed: the drill needs a Redis it may stop")
    server = PrivateRedis()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def receiver():
    """An HTTP receiver on 127.0.0.1 that records every webhook request."""
    from tests.webhooks.conftest import run_receiver

    with run_receiver() as running:
        yield running


@pytest.fixture
def publish_to(settings):
    """Point this process's Celery app (where the drills run the beat tasks) at a broker for
    the test, and back afterwards."""
    from config.celery import app as celery_app
    from tests.webhooks.conftest import use_broker

    old = celery_app.conf.broker_url
    yield use_broker
    use_broker(old)


def upload_source(s3, bucket: str, prefix: str, files: dict[str, bytes]) -> dict[str, str]:
    """Put ``files`` under ``prefix``; returns their sha256 by relative path."""
    import hashlib

    for relative, body in files.items():
        s3.put_object(Bucket=bucket, Key=f"{prefix}/{relative}", Body=body)
    return {relative: hashlib.sha256(body).hexdigest() for relative, body in files.items()}


def stored_objects(s3, bucket: str, prefix: str) -> dict[str, str]:
    """sha256 of every object under ``prefix``, by key relative to it."""
    import hashlib

    found = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            body = s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
            found[item["Key"][len(prefix) :]] = hashlib.sha256(body).hexdigest()
    return found


def short_sweep_windows(settings, quiet: float = 2.0) -> None:
    """Beat's sweeps, run by a drill in this process, with windows of a second or two: only
    where no attempt can be alive (nothing was queued, or its worker was killed).

    A version is re-queued once untouched for ``CELERY_TASK_TIME_LIMIT +
    ARTIFACT_COPY_RETRY_BACKOFF_MAX + ARTIFACT_COPY_SWEEP_INTERVAL``; only the sum matters to
    the sweep, and the time limit also goes into every task message this process publishes,
    so the interval takes up the difference."""
    settings.WEBHOOKS = {**settings.WEBHOOKS, "SWEEP_GRACE": 0.0}
    settings.ARTIFACTS = {
        **settings.ARTIFACTS,
        "COPY_RETRY_BACKOFF_MAX": 0.0,
        "SWEEP_INTERVAL": quiet - settings.CELERY_TASK_TIME_LIMIT,
    }
