"""Drill: PostgreSQL stops and starts again while clients write through the API.

A PostgreSQL cluster of the drill's own (``initdb`` in a temporary folder, a free port), the
registry under gunicorn with the production settings (``config.settings``: connections kept
``DATABASE_CONN_MAX_AGE`` seconds, health-checked before reuse), and a Redis of the drill's own
as the broker. Client threads create versions, move a version between stages and set tags; in
the middle, PostgreSQL is stopped (``pg_ctl stop -m fast``: every session is cut) for a few
seconds and started again.

Expected (docs/operations.md): during the outage every request is answered, either 200 or 503
``TEMPORARILY_UNAVAILABLE`` in the error envelope with ``Retry-After`` (both clients retry it),
and ``/health`` answers 503; afterwards the service serves again by itself, without a restart;
and no write is half-applied.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from testing_support.network import free_port
from tests.processes import ROOT, PrivatePostgres, postgres_bindir, stop_process, wait_for

CLIENTS = 4
STAGES = ["Staging", "Production", "Archived", "None"]


@pytest.fixture
def private_postgres() -> Iterator[PrivatePostgres]:
    bindir = postgres_bindir()
    if bindir is None or not (bindir / "initdb").exists():
        pytest.skip("PostgreSQL's server programs (initdb, pg_ctl) are not installed")
    server = PrivatePostgres(bindir)
    try:
        server.init()
        server.start()
        server.create_database("registry")
        yield server
    finally:
        server.destroy()


@dataclass
class Service:
    """gunicorn and a Celery worker on the private database, with the production settings."""

    env: dict[str, str]
    workdir: Path
    port: int = field(default_factory=free_port)
    processes: list[subprocess.Popen] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def source_uri(self) -> str:
        """A small model folder under ``ARTIFACT_FILE_SOURCE_ROOTS``, for every version."""
        folder = Path(self.env["ARTIFACT_FILE_SOURCE_ROOTS"]) / "model"
        if not folder.exists():
            folder.mkdir(parents=True)
            (folder / "MLmodel").write_text("flavors: {}\n")
        return folder.as_uri()

    def manage(self, *args: str) -> None:
        subprocess.run(  # noqa: S603
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            check=True,
            timeout=300,
            capture_output=True,
        )

    def start(self) -> None:
        for name, command in [
            (
                "gunicorn",
                [sys.executable, "-m", "gunicorn", "config.wsgi:application",
                 "--bind", f"127.0.0.1:{self.port}", "--workers", "2", "--threads", "4",
                 "--timeout", "60"],
            ),
            (
                "worker",
                [sys.executable, "-m", "celery", "-A", "config", "worker", "--pool=threads",
                 "--concurrency=4", "--without-heartbeat", "--without-gossip",
                 "--without-mingle", "--loglevel=INFO"],
            ),
        ]:  # fmt: skip
            self.processes.append(
                subprocess.Popen(  # noqa: S603
                    command,
                    cwd=ROOT,
                    env=self.env,
                    stdout=(self.workdir / f"{name}.log").open("ab"),
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )
        wait_for(lambda: health(self.url)[0] == 200, 60, "gunicorn")

    def stop(self) -> None:
        for process in self.processes:
            stop_process(process)


def health(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=5) as response:  # noqa: S310
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()
    except OSError as error:
        return 0, str(error)


def _ui_page(url: str) -> urllib.error.HTTPError:
    """A page of the web UI for a visitor with a session cookie (so the session is looked up
    in the database); returns the error answer it must be."""
    request = urllib.request.Request(
        f"{url}/models/", headers={"Cookie": "sessionid=" + uuid.uuid4().hex}
    )
    try:
        urllib.request.urlopen(request, timeout=30)  # noqa: S310
    except urllib.error.HTTPError as error:
        return error
    raise AssertionError("the page was served while the database was down")


@dataclass
class Outcome:
    at: float
    action: str
    status: int
    body: object
    retry_after: str | None
    request_id: str


def call(url: str, token: str, path: str, payload: dict) -> tuple[int, object, str | None]:
    request = urllib.request.Request(
        url + path,
        data=json.dumps(payload).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310
            return response.status, json.loads(response.read()), None
    except urllib.error.HTTPError as error:
        raw = error.read()
        try:
            body: object = json.loads(raw)
        except ValueError:
            body = raw.decode(errors="replace")[:300]
        return error.code, body, error.headers.get("Retry-After")


def client_loop(
    url: str, token: str, model: str, source: str, stop: threading.Event, out: list[Outcome]
) -> None:
    """Create versions, move version 1 around the stages and set its tag, until told to stop."""
    step = 0
    while not stop.is_set():
        request_id = uuid.uuid4().hex
        action = ("create", "move", "tag")[step % 3]
        if action == "create":
            path, payload = (
                "/api/2.0/mlflow/model-versions/create",
                {
                    "name": model,
                    "source": source,
                    "tags": [{"key": "request", "value": request_id}],
                },
            )
        elif action == "move":
            path, payload = (
                "/api/2.0/mlflow/model-versions/transition-stage",
                {
                    "name": model,
                    "version": "1",
                    "stage": STAGES[(step // 3) % len(STAGES)],
                    "archive_existing_versions": False,
                },
            )
        else:
            path, payload = (
                "/api/2.0/mlflow/model-versions/set-tag",
                {
                    "name": model,
                    "version": "1",
                    "key": "last-request",
                    "value": request_id,
                },
            )
        try:
            status, body, retry_after = call(url, token, path, payload)
        except OSError as error:  # the web server itself unreachable: must not happen
            status, body, retry_after = 0, str(error), None
        out.append(Outcome(time.monotonic(), action, status, body, retry_after, request_id))
        if status == 200:
            step += 1  # the next action; a refused one is tried again, as a client retries it
        else:
            time.sleep(0.2)


def test_postgres_restart_under_load(private_postgres, private_redis, tmp_path, collected_static):
    import psycopg2

    database_url = private_postgres.url("registry")
    (tmp_path / "store").mkdir()
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": str(tmp_path),
        "PYTHONUNBUFFERED": "1",
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DJANGO_SECRET_KEY": "drill-only-secret-key-" + uuid.uuid4().hex,
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "DJANGO_SECURE_SSL_REDIRECT": "false",
        "DJANGO_STATIC_ROOT": str(collected_static),
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": private_redis.url,
        "REGISTRY_DATA_DIR": str(tmp_path / "data"),
        "ARTIFACT_STORE_URI": (tmp_path / "store").as_uri(),
        "ARTIFACT_FILE_SOURCE_ROOTS": str(tmp_path / "sources"),
        # A copy that meets the outage is tried again after this many seconds.
        "ARTIFACT_COPY_RETRY_BACKOFF": "1",
        "WEBHOOKS_ALLOWED_NETWORKS": "127.0.0.0/8",
        "WEBHOOKS_ALLOWED_SCHEMES": "http",
        "DJANGO_SUPERUSER_USERNAME": "admin",
        "DJANGO_SUPERUSER_PASSWORD": "drill-" + uuid.uuid4().hex,
        "DJANGO_SUPERUSER_EMAIL": "admin@example.com",
    }
    service = Service(env, tmp_path)
    service.manage("migrate", "--noinput")
    service.manage("createsuperuser", "--noinput")
    try:
        service.start()
        _drill(service, private_postgres, database_url, psycopg2)
    finally:
        service.stop()


def _basic(env: dict[str, str]) -> str:
    import base64

    raw = f"{env['DJANGO_SUPERUSER_USERNAME']}:{env['DJANGO_SUPERUSER_PASSWORD']}"
    return "Basic " + base64.b64encode(raw.encode()).decode()


def _setup(service: Service) -> str:
    """A token, one model per client with a webhook (the outbox) and a READY version 1."""
    request = urllib.request.Request(
        service.url + "/api/2.0/registry/tokens/create",
        data=json.dumps({"name": "drill"}).encode(),
        method="POST",
        headers={"Authorization": _basic(service.env), "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
        token = json.loads(response.read())["token_value"]
    for index in range(CLIENTS):
        model = f"load-{index}"
        for path, payload in [
            ("/api/2.0/mlflow/registered-models/create", {"name": model}),
            (
                "/api/2.0/mlflow/registry-webhooks/create",
                {
                    "model_name": model,
                    "events": [
                        "MODEL_VERSION_CREATED",
                        "MODEL_VERSION_TRANSITIONED_STAGE",
                        "MODEL_VERSION_TAG_SET",
                    ],
                    "http_url_spec": {"url": "http://127.0.0.1:9/hook"},
                    "status": "ACTIVE",
                },
            ),
        ]:
            status, body, _ = call(service.url, token, path, payload)
            assert status == 200, (path, body)
    return token


def _drill(service: Service, postgres: PrivatePostgres, database_url: str, psycopg2) -> None:
    token = _setup(service)
    source = service.source_uri
    for index in range(CLIENTS):
        status, body, _ = call(
            service.url,
            token,
            "/api/2.0/mlflow/model-versions/create",
            {"name": f"load-{index}", "source": source},
        )
        assert status == 200, body
    wait_for(lambda: _pending(database_url, psycopg2) == 0, 90, "version 1 of each model")

    stop = threading.Event()
    outcomes: list[list[Outcome]] = [[] for _ in range(CLIENTS)]
    threads = [
        threading.Thread(
            target=client_loop,
            args=(service.url, token, f"load-{index}", source, stop, outcomes[index]),
            daemon=True,
        )
        for index in range(CLIENTS)
    ]
    for thread in threads:
        thread.start()
    try:
        time.sleep(4)  # load on a healthy service
        down_at = time.monotonic()
        postgres.stop("fast")
        time.sleep(1)
        assert health(service.url)[0] == 503  # the health check reports the database down
        unhealthy = health(service.url)[1]
        assert json.loads(unhealthy) == {"status": "unavailable", "database": "unreachable"}
        page = _ui_page(service.url)  # the web UI: a page, not a traceback
        assert (page.status, page.headers["Retry-After"]) == (503, "5")
        assert page.headers["Content-Type"].startswith("text/html")
        assert "Temporarily unavailable" in page.read().decode()
        time.sleep(4)
        postgres.start()
        up_at = time.monotonic()
        wait_for(lambda: health(service.url)[0] == 200, 60, "the service to be healthy again")
        healthy_at = time.monotonic()
        time.sleep(6)  # load on the recovered service
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=90)
    everything = sorted((o for per in outcomes for o in per), key=lambda o: o.at)
    statuses = Counter(o.status for o in everything)
    during = [o for o in everything if down_at <= o.at <= up_at]
    print(  # noqa: T201 - the drill's record (docs/operations.md)
        f"requests: {len(everything)} {dict(statuses)}; during the outage: "
        f"{dict(Counter(o.status for o in during))}; healthy again "
        f"{healthy_at - up_at:.1f} s after PostgreSQL started; /health while down: {unhealthy}"
    )

    # Failing cleanly: every answer is a 200 or a 503 in the envelope with Retry-After.
    assert set(statuses) <= {200, 503}, [o for o in everything if o.status not in (200, 503)][:3]
    assert statuses[503] > 0  # the outage was met
    for outcome in everything:
        if outcome.status == 503:
            assert outcome.body["error_code"] == "TEMPORARILY_UNAVAILABLE", outcome
            assert outcome.retry_after == "5", outcome
    # Recovering by itself: a second after /health is back, nothing is refused any more, and
    # every client gets work done.
    after = [o for o in everything if o.at > healthy_at + 1]
    assert after
    assert all(o.status == 200 for o in after), Counter(o.status for o in after)
    for per in outcomes:
        assert sum(1 for o in per if o.at > healthy_at and o.status == 200) >= 3

    _check_nothing_half_applied(database_url, psycopg2, everything)
    # Copies that met the outage in the worker are retried by the worker itself (no sweep).
    wait_for(lambda: _pending(database_url, psycopg2) == 0, 120, "every version to be copied")
    assert _statuses(database_url, psycopg2) == {"READY"}


def _query(database_url: str, psycopg2, sql: str) -> list[tuple]:
    conn = psycopg2.connect(database_url)
    try:
        with conn.cursor() as cursor:
            cursor.execute(sql)
            return cursor.fetchall()
    finally:
        conn.close()


def _pending(database_url: str, psycopg2) -> int:
    return _query(
        database_url,
        psycopg2,
        "SELECT count(*) FROM registry_modelversion WHERE status = 'PENDING_REGISTRATION'",
    )[0][0]


def _statuses(database_url: str, psycopg2) -> set[str]:
    rows = _query(database_url, psycopg2, "SELECT DISTINCT status FROM registry_modelversion")
    return {row[0] for row in rows}


def _check_nothing_half_applied(database_url: str, psycopg2, everything: list[Outcome]) -> None:
    q = lambda sql: _query(database_url, psycopg2, sql)  # noqa: E731
    # Version numbers: never above the model's counter, never reused.
    assert q(
        "SELECT count(*) FROM registry_modelversion v JOIN registry_registeredmodel m "
        "ON m.id = v.registered_model_id WHERE v.version > m.last_version_number"
    ) == [(0,)]
    # Every acknowledged create is there, once, with its tag; nothing is there twice.
    tagged = Counter(
        value for (value,) in q("SELECT value FROM registry_modelversiontag WHERE key = 'request'")
    )
    assert all(count == 1 for count in tagged.values())
    acknowledged = {o.request_id for o in everything if o.action == "create" and o.status == 200}
    assert acknowledged <= set(tagged)
    refused = {o.request_id for o in everything if o.action == "create" and o.status != 200}
    print(f"refused creates applied anyway: {len(refused & set(tagged))}")  # noqa: T201
    # Each version's create event is in the outbox, with its delivery.
    assert q(
        "SELECT count(*) FROM registry_modelversion v JOIN registry_registeredmodel m "
        "ON m.id = v.registered_model_id WHERE NOT EXISTS (SELECT 1 FROM webhooks_webhookevent e "
        "JOIN webhooks_webhookdelivery d ON d.event_id = e.id WHERE e.event_type = "
        "'MODEL_VERSION_CREATED' AND e.model_name = m.name AND e.version = v.version::text)"
    ) == [(0,)]
    # Every stage change has its activity and its event, and the trail ends on the stage the
    # version is in.
    moves = Counter(
        name
        for (name,) in q(
            "SELECT model_name FROM registry_activity WHERE activity_type = 'APPLIED_TRANSITION'"
        )
    )
    events = Counter(
        name
        for (name,) in q(
            "SELECT model_name FROM webhooks_webhookevent "
            "WHERE event_type = 'MODEL_VERSION_TRANSITIONED_STAGE'"
        )
    )
    assert moves == events
    for name, stage, last in q(
        "SELECT m.name, v.current_stage, (SELECT a.to_stage FROM registry_activity a "
        "WHERE a.model_version_id = v.id AND a.activity_type = 'APPLIED_TRANSITION' "
        "ORDER BY a.created_at DESC, a.id DESC LIMIT 1) FROM registry_modelversion v "
        "JOIN registry_registeredmodel m ON m.id = v.registered_model_id WHERE v.version = 1"
    ):
        assert stage == (last or "None"), (name, stage, last)
    acknowledged_moves = sum(1 for o in everything if o.action == "move" and o.status == 200)
    assert acknowledged_moves <= moves.total()
    # Every tag write acknowledged is the tag's value or was overwritten by a later one.
    tag_events = q(
        "SELECT count(*) FROM webhooks_webhookevent WHERE event_type = 'MODEL_VERSION_TAG_SET'"
    )[0][0]
    assert tag_events >= sum(1 for o in everything if o.action == "tag" and o.status == 200)
