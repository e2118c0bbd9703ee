"""Soak: minutes of mixed load on the production configuration, watching memory and connections.

    make soak                     # or: make soak SOAK_ARGS="--minutes 2 --warmup 30"
    .venv/bin/python bench/soak.py [--minutes 10] [--warmup 60] [--clients 8] [--report FILE]

It needs PostgreSQL and Redis on 127.0.0.1 (``make services``). It drops and re-creates the
database ``--database`` (``soak_registry``) and empties the Redis databases of ``--broker-url``
(12) and ``--cache-url`` (13): point them elsewhere if those are in use. It starts everything
else itself, on loopback only, and stops it all on exit (also on Ctrl-C, on errors, and after a
hard time limit):

- the service as docs/operations.md runs it in production: ``gunicorn config.wsgi:application``
  with ``--workers 3 --threads 4 --keep-alive 5`` (the image's defaults), a Celery worker
  (``--pool=threads --concurrency=16 --without-gossip --without-mingle --without-heartbeat``)
  and Celery beat; ``DJANGO_DEBUG=false``, a generated ``DJANGO_SECRET_KEY`` and
  ``REGISTRY_ENCRYPTION_KEYS``, static files collected, the cache and the broker on Redis, a
  PostgreSQL database dropped, created and migrated afresh (``--database``, default
  ``soak_registry``). Plain HTTP on loopback, so ``DJANGO_SECURE_SSL_REDIRECT=false``;
- the artifact store in a temporary folder (``file://``), and real ``file://`` sources
  (``ARTIFACT_FILE_SOURCE_ROOTS``) so every new version is really copied and hashed;
- a webhook receiver (``http.server`` on 127.0.0.1) that checks every signature, the way
  docs/webhooks.md tells receivers to, and counts deliveries by ``X-Registry-Delivery-Id``.

Users (an admin, a requester and two approvers, each with an API token used as Bearer) are made
with ``manage.py``; models, grants, stage policies (Staging: one approval, Production: two and a
``validation=passed`` tag, no self-approval, no direct moves) and three webhooks through the
API. Then ``--clients`` threads, each on one keep-alive connection (urllib3), run for
``--minutes``: each owns two models and walks one version at a time through its life (create
from a source, wait for READY, tag, request Staging, approve, comment, request Production, two
approvals with ``archive_existing_versions``, alias), with a few reads between every step (get
version, latest versions, both searches, requests, activities, manifest, artifact download).
Every request is valid by design, so any non-2xx answer or exception counts as a failure.

Every ``--sample-seconds`` it records the resident memory (RSS) of the gunicorn master and each
of its workers, of the Celery worker's and of beat's process trees, and the database's
connections (``pg_stat_activity``, not counting the sampler's own). Memory at start is the
first sample after ``--warmup`` seconds of load, at the end the last sample of the load. After
the load it waits for the copies and deliveries still queued, then checks: no failed request
(and only 2xx in gunicorn's access log), every version READY, every delivery the database
recorded received once, with a valid signature, and nothing else, no error or traceback in the
services' logs, memory growth under 10 % per process, and connections within what the settings
allow. Prints a Markdown report (also written to ``--report``) and exits 1 if a check failed.
``--trace-memory`` is for diagnosis: tracemalloc in each web worker (the figures it gives are
not comparable: tracing costs memory and time).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import os
import random
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg2
import redis
import urllib3
from processes import Processes

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository's testing_support
from testing_support.network import free_port, serve_posts

ROOT = Path(__file__).resolve().parent.parent
MIB = 1024 * 1024
WEB_WORKERS = 3  # the image's GUNICORN_WORKERS default
WEB_THREADS = 4  # GUNICORN_THREADS
KEEP_ALIVE = 5
CELERY_CONCURRENCY = 16
MEMORY_GROWTH_LIMIT = 10.0  # per cent


def _say(*parts: object) -> None:
    sys.stdout.write(" ".join(str(part) for part in parts) + "\n")
    sys.stdout.flush()


def _load() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def _run(argv: list[str], env: dict[str, str], log: Path, timeout: float = 300) -> str:
    """Run a command to completion (no stdin), appending its stderr to ``log``; return stdout."""
    with log.open("ab") as err:
        done = subprocess.run(  # noqa: S603
            argv,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=err,
            timeout=timeout,
            check=False,
        )
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv[1:4])} failed ({done.returncode}); see {log}")
    return done.stdout.decode()


# --- /proc ----------------------------------------------------------------------------------


def _children() -> dict[int, list[int]]:
    tree: dict[int, list[int]] = defaultdict(list)
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        tree[ppid].append(int(entry))
    return tree


def _rss(pid: int) -> int:
    """Resident memory of one process in bytes (0 if it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _tree(pid: int, tree: dict[int, list[int]]) -> list[int]:
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(tree.get(current, []))
    return found


# --- Webhook receiver -----------------------------------------------------------------------


@dataclass
class Receiver:
    secrets: dict[str, tuple[str, str]]  # path -> (flavor, secret)
    lock: threading.Lock = field(default_factory=threading.Lock)
    by_id: Counter = field(default_factory=Counter)
    by_hook: Counter = field(default_factory=Counter)
    bad: list[str] = field(default_factory=list)

    def record(self, path: str, delivery_id: str, problem: str | None) -> None:
        with self.lock:
            self.by_id[delivery_id] += 1
            self.by_hook[path] += 1
            if problem:
                self.bad.append(f"{path} {delivery_id}: {problem}")


def _verify(flavor: str, secret: str, body: bytes, headers: Any) -> str | None:
    """The two verification functions of docs/webhooks.md; the problem found, or None."""
    if flavor == "databricks":
        expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, headers.get("X-Databricks-Signature", "")):
            return "bad X-Databricks-Signature"
        return None
    delivery_id = headers.get("X-MLflow-Delivery-Id", "")
    timestamp = headers.get("X-MLflow-Timestamp", "0")
    if abs(time.time() - int(timestamp)) > 300:
        return "X-MLflow-Timestamp too old"
    signed = f"{delivery_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).digest()
    expected = "v1," + base64.b64encode(digest).decode()
    if not hmac.compare_digest(expected, headers.get("X-MLflow-Signature", "")):
        return "bad X-MLflow-Signature"
    if delivery_id != headers.get("X-Registry-Delivery-Id"):
        return "X-MLflow-Delivery-Id differs from X-Registry-Delivery-Id"
    return None


def _start_receiver(receiver: Receiver) -> ThreadingHTTPServer:
    def on_post(path: str, headers: Any, body: bytes) -> int:
        delivery_id = headers.get("X-Registry-Delivery-Id", "")
        hook = receiver.secrets.get(path)
        if hook is None:
            problem: str | None = "unknown hook path"
        elif not delivery_id:
            problem = "no X-Registry-Delivery-Id"
        else:
            problem = _verify(hook[0], hook[1], body, headers)
            if problem is None:
                try:
                    json.loads(body)
                except ValueError:
                    problem = "body is not JSON"
        receiver.record(path, delivery_id, problem)
        return 200

    return serve_posts(on_post)


# --- The service ----------------------------------------------------------------------------

_OWN_PREFIXES = (
    "DJANGO_",
    "DATABASE_",
    "CELERY_",
    "ARTIFACT_",
    "WEBHOOKS_",
    "REGISTRY_",
    "METRICS_",
    "AWS_",
    "GUNICORN_",
    "MLFLOW_",
)


def _service_env(args: argparse.Namespace, work: Path) -> dict[str, str]:
    from cryptography.fernet import Fernet

    env = {key: value for key, value in os.environ.items() if not key.startswith(_OWN_PREFIXES)}
    env.update(
        {
            "PYTHONUNBUFFERED": "1",
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DJANGO_DEBUG": "false",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
            "DJANGO_SECURE_SSL_REDIRECT": "false",
            "DJANGO_STATIC_ROOT": str(work / "static"),
            "DJANGO_CACHE_URL": args.cache_url,
            "REGISTRY_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
            "REGISTRY_DATA_DIR": str(work / "data"),
            "DATABASE_URL": f"{args.postgres.rstrip('/')}/{args.database}",
            "CELERY_BROKER_URL": args.broker_url,
            "ARTIFACT_STORE_URI": (work / "store").as_uri(),
            "ARTIFACT_FILE_SOURCE_ROOTS": str(work / "sources"),
            "WEBHOOKS_ALLOWED_NETWORKS": "127.0.0.0/8",
            "WEBHOOKS_ALLOWED_SCHEMES": "http,https",
        }
    )
    return env


def _fresh_database(args: argparse.Namespace) -> None:
    connection = psycopg2.connect(f"{args.postgres.rstrip('/')}/postgres")
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)')
        cursor.execute(f'CREATE DATABASE "{args.database}"')
    connection.close()


def _write_sources(root: Path) -> list[str]:
    """Three model folders (MLflow's layout, random weights) of about 70 KiB, 300 KiB and 1 MiB."""
    rng = random.Random(7)  # noqa: S311 (reproducible test data, not a secret)
    sources = []
    for name, weights in (("small", 64 * 1024), ("medium", 256 * 1024), ("large", 1024 * 1024)):
        folder = root / name
        (folder / "data").mkdir(parents=True)
        (folder / "MLmodel").write_text(
            "artifact_path: model\nflavors:\n  python_function:\n    loader_module: "
            f"mlflow.sklearn\n    python_version: 3.11.9\nmodel_size_bytes: {weights}\n"
        )
        (folder / "conda.yaml").write_text("dependencies:\n- python=3.11\n- pip:\n  - mlflow\n")
        (folder / "requirements.txt").write_text("mlflow==2.17.0\nscikit-learn==1.5.2\n")
        (folder / "data" / "model.pkl").write_bytes(rng.randbytes(weights))
        (folder / "data" / "metadata.json").write_text(json.dumps({"features": 42, "name": name}))
        sources.append(folder.as_uri())
    return sources


def _control_socket(work: Path) -> list[str]:
    """Recent gunicorn versions open a control socket, by default one per user in $HOME; the
    soak's goes to its own folder so it cannot meet another gunicorn's."""
    help_text = subprocess.run(  # noqa: S603
        [sys.executable, "-m", "gunicorn", "--help"],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    ).stdout
    return (
        ["--control-socket", str(work / "gunicorn.ctl")] if "--control-socket" in help_text else []
    )


_TRACE_CONFIG = """
import os, threading, time, tracemalloc

def post_worker_init(worker):
    tracemalloc.start(1)  # one frame: deeper traces slow a worker down too much

    def rss():
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024

    def watch():
        time.sleep({warmup})
        base = tracemalloc.take_snapshot()
        series = []
        while True:
            series.append("traced %.1f MiB, RSS %.1f MiB" % (
                tracemalloc.get_traced_memory()[0] / 2**20, rss()))
            time.sleep(60)
            now = tracemalloc.take_snapshot()
            lines = series + ["grew most since the warm-up:"]
            for stat in now.compare_to(base, "lineno")[:10]:
                lines.append("  %+.1f KiB %+d blocks %s" % (
                    stat.size_diff / 1024, stat.count_diff, stat.traceback[0]))
            with open("{folder}/trace-%d.txt" % os.getpid(), "w") as out:
                out.write("\\n".join(lines) + "\\n")

    threading.Thread(target=watch, name="trace-memory", daemon=True).start()
"""


def _trace_config(work: Path, warmup: float) -> list[str]:
    """A gunicorn config file that starts tracemalloc in each worker and, every minute after
    the warm-up, writes its traced total and RSS so far and the lines whose allocations grew
    most since the warm-up to ``trace-<pid>.txt``."""
    path = work / "gunicorn_trace.py"
    path.write_text(_TRACE_CONFIG.format(warmup=warmup, folder=work))
    return ["--config", str(path)]


def _wait_healthy(base: str, processes: list[subprocess.Popen], timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for process in processes:
            if process.poll() is not None:
                raise SystemExit(f"a service process exited early ({process.args[:4]})")
        try:
            if urllib3.request("GET", f"{base}/health", timeout=2, retries=False).status == 200:
                return
        except urllib3.exceptions.HTTPError:
            pass
        time.sleep(0.5)
    raise SystemExit("the web server did not answer /health in time")


# --- The API client -------------------------------------------------------------------------


class Failure(Exception):
    pass


class TimeUp(Exception):  # noqa: N818 (not an error: the load's time is over)
    pass


@dataclass
class Stats:
    lock: threading.Lock = field(default_factory=threading.Lock)
    counts: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)
    times: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    examples: list[str] = field(default_factory=list)

    def add(self, kind: str, seconds: float, error: str | None) -> None:
        with self.lock:
            self.counts[kind] += 1
            self.times[kind].append(seconds)
            if error:
                self.errors[kind] += 1
                if len(self.examples) < 30:
                    self.examples.append(f"{kind}: {error}")


class Api:
    """One keep-alive connection; every call is counted under a kind, and a non-2xx answer or
    an exception is a failure (raised, so the caller's plan for that version stops). Nothing
    is retried."""

    def __init__(self, base: str, stats: Stats) -> None:
        self.base = base
        self.stats = stats
        self.pool = urllib3.PoolManager(
            maxsize=1, retries=False, timeout=urllib3.Timeout(connect=10, read=60)
        )

    def call(
        self,
        kind: str,
        token: str,
        method: str,
        path: str,
        *,
        body: dict | None = None,
        params: dict | None = None,
        raw: bool = False,
    ) -> Any:
        url = path if path.startswith("http") else f"{self.base}{path}"
        started = time.perf_counter()
        error = None
        try:
            # GET: ``fields`` go to the query string; the other methods send JSON bodies.
            response = self.pool.request(
                method,
                url,
                json=body,
                fields=params,
                headers={"Authorization": f"Bearer {token}"},
            )
            content = response.data
            if not 200 <= response.status < 300:
                error = f"HTTP {response.status} {method} {path}: {content[:300]!r}"
        except urllib3.exceptions.HTTPError as exc:
            error = f"{type(exc).__name__} {method} {path}: {exc}"
        self.stats.add(kind, time.perf_counter() - started, error)
        if error:
            raise Failure(error)
        return content if raw else json.loads(content)


# --- Set-up ---------------------------------------------------------------------------------


def _make_users(env: dict[str, str], log: Path) -> dict[str, str]:
    """An admin, a requester and two approvers, and an API token each."""
    py = sys.executable
    password = secrets.token_urlsafe(16)
    _run(
        [py, "manage.py", "createsuperuser", "--noinput"],
        {
            **env,
            "DJANGO_SUPERUSER_USERNAME": "soak-admin",
            "DJANGO_SUPERUSER_PASSWORD": password,
            "DJANGO_SUPERUSER_EMAIL": "admin@example.com",
        },
        log,
    )
    script = (
        "from accounts.models import User\n"
        "import secrets\n"
        "for name in ('requester', 'approver-a', 'approver-b'):\n"
        "    User.objects.create_user(name, f'{name}@example.com', secrets.token_urlsafe(16))\n"
    )
    _run([py, "manage.py", "shell", "-c", script], env, log)
    tokens = {}
    for user in ("soak-admin", "requester", "approver-a", "approver-b"):
        out = _run([py, "manage.py", "create_token", user, "--name", "soak"], env, log)
        tokens[user] = out.strip().splitlines()[-1]
    return tokens


def _set_up_registry(
    api: Api, tokens: dict[str, str], models: list[str], receiver_url: str
) -> dict[str, tuple[str, str]]:
    admin = tokens["soak-admin"]
    for name in models:
        api.call(
            "setup",
            admin,
            "POST",
            "/api/2.0/mlflow/registered-models/create",
            body={
                "name": name,
                "description": f"Soak model {name}",
                "tags": [{"key": "team", "value": "soak"}],
            },
        )
        model_id = api.call(
            "setup",
            admin,
            "GET",
            "/api/2.0/mlflow/databricks/registered-models/get",
            params={"name": name},
        )["registered_model_databricks"]["id"]
        api.call(
            "setup",
            admin,
            "PATCH",
            f"/api/2.0/permissions/registered-models/{model_id}",
            body={
                "access_control_list": [
                    {"user_name": "requester", "permission_level": "CAN_EDIT"},
                    {
                        "user_name": "approver-a",
                        "permission_level": "CAN_MANAGE_PRODUCTION_VERSIONS",
                    },
                    {
                        "user_name": "approver-b",
                        "permission_level": "CAN_MANAGE_PRODUCTION_VERSIONS",
                    },
                ]
            },
        )
    # Registry-wide stage policies: nobody moves a version alone.
    api.call(
        "setup",
        admin,
        "POST",
        "/api/2.0/registry/stage-policies/set",
        body={
            "stage": "Staging",
            "required_approvals": 1,
            "allow_self_approval": False,
            "allow_direct_transition": False,
        },
    )
    api.call(
        "setup",
        admin,
        "POST",
        "/api/2.0/registry/stage-policies/set",
        body={
            "stage": "Production",
            "required_approvals": 2,
            "allow_self_approval": False,
            "allow_direct_transition": False,
            "required_version_tags": [{"key": "validation", "value": "passed"}],
        },
    )
    hooks: dict[str, tuple[str, str]] = {}
    secret = secrets.token_urlsafe(24)
    hooks["/dbx/all"] = ("databricks", secret)
    api.call(
        "setup",
        admin,
        "POST",
        "/api/2.0/mlflow/registry-webhooks/create",
        body={
            "events": [
                "MODEL_VERSION_CREATED",
                "MODEL_VERSION_READY",
                "MODEL_VERSION_TAG_SET",
                "TRANSITION_REQUEST_CREATED",
                "TRANSITION_REQUEST_APPROVED",
                "MODEL_VERSION_TRANSITIONED_STAGE",
                "COMMENT_CREATED",
                "MODEL_VERSION_ALIAS_CREATED",
                "MODEL_VERSION_REGISTRATION_FAILED",
            ],
            "description": "everything, registry-wide",
            "http_url_spec": {"url": receiver_url + "/dbx/all", "secret": secret},
            "status": "ACTIVE",
        },
    )
    secret = secrets.token_urlsafe(24)
    hooks["/dbx/deploy"] = ("databricks", secret)
    api.call(
        "setup",
        admin,
        "POST",
        "/api/2.0/mlflow/registry-webhooks/create",
        body={
            "events": ["MODEL_VERSION_TRANSITIONED_TO_PRODUCTION"],
            "model_name": models[0],
            "http_url_spec": {"url": receiver_url + "/dbx/deploy", "secret": secret},
            "payload_template": json.dumps(
                {
                    "ref": "main",
                    "inputs": {
                        "model": "${model_name}",
                        "version": "${version}",
                        "delivery": "${delivery_id}",
                    },
                }
            ),
            "status": "ACTIVE",
        },
    )
    secret = secrets.token_urlsafe(24)
    hooks["/mlflow/all"] = ("mlflow", secret)
    api.call(
        "setup",
        admin,
        "POST",
        "/api/2.0/mlflow/webhooks",
        body={
            "name": "soak-mlflow",
            "url": receiver_url + "/mlflow/all",
            "secret": secret,
            "events": [
                {"entity": "model_version", "action": "created"},
                {"entity": "model_version_tag", "action": "set"},
                {"entity": "model_version_alias", "action": "created"},
            ],
        },
    )
    return hooks


# --- The load -------------------------------------------------------------------------------


@dataclass
class Shared:
    """What every client may read: the models, and the versions that reached READY."""

    models: list[str]
    ready: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    created: Counter = field(default_factory=Counter)
    lifecycles: Counter = field(default_factory=Counter)

    def add_ready(self, model: str, version: str) -> None:
        with self.lock:
            self.ready.append((model, version))

    def pick(self, rng: random.Random) -> tuple[str, str] | None:
        with self.lock:
            return rng.choice(self.ready) if self.ready else None


MV = "/api/2.0/mlflow/model-versions"
TR = "/api/2.0/mlflow/transition-requests"


def _reads(api: Api, tokens: dict[str, str], shared: Shared, rng: random.Random, count: int):
    users = list(tokens.values())
    for _ in range(count):
        token = rng.choice(users)
        model = rng.choice(shared.models)
        picked = shared.pick(rng)
        roll = rng.random()
        if picked is None or roll < 0.15:
            api.call(
                "read: latest versions",
                token,
                "POST",
                "/api/2.0/mlflow/registered-models/get-latest-versions",
                body={"name": model, "stages": ["Staging", "Production"]},
            )
            continue
        name, version = picked
        if roll < 0.35:
            api.call(
                "read: get version",
                token,
                "GET",
                f"{MV}/get",
                params={"name": name, "version": version},
            )
        elif roll < 0.47:
            api.call(
                "read: search versions",
                token,
                "GET",
                f"{MV}/search",
                params={
                    "filter": f"name = '{model}'",
                    "max_results": 20,
                    "order_by": "version_number DESC",
                },
            )
        elif roll < 0.57:
            api.call(
                "read: search models",
                token,
                "GET",
                "/api/2.0/mlflow/registered-models/search",
                params={"filter": "name LIKE 'soak-%'", "max_results": 10},
            )
        elif roll < 0.65:
            api.call(
                "read: get model",
                token,
                "GET",
                "/api/2.0/mlflow/registered-models/get",
                params={"name": model},
            )
        elif roll < 0.73:
            api.call(
                "read: requests",
                token,
                "GET",
                f"{TR}/list",
                params={"name": name, "version": version},
            )
        elif roll < 0.81:
            api.call(
                "read: activities",
                token,
                "GET",
                "/api/2.0/registry/model-versions/activities",
                params={"name": name, "version": version},
            )
        elif roll < 0.88:
            api.call(
                "read: manifest",
                token,
                "GET",
                "/api/2.0/registry/model-versions/manifest",
                params={"name": name, "version": version},
            )
        else:
            uri = api.call(
                "read: download uri",
                token,
                "GET",
                f"{MV}/get-download-uri",
                params={"name": name, "version": version},
            )["artifact_uri"]
            body = api.call("read: download file", token, "GET", f"{uri}/MLmodel", raw=True)
            if not body.startswith(b"artifact_path"):
                raise Failure(f"download of {name} v{version} returned {body[:60]!r}")


def _lifecycle(
    api: Api,
    tokens: dict[str, str],
    shared: Shared,
    model: str,
    source: str,
    rng: random.Random,
    over: Any,
    reads: tuple[int, int],
) -> None:
    """One version from creation to Production, reads between the steps; stops (TimeUp)
    between two steps once ``over()`` says the load's time is up."""
    requester, first, second = tokens["requester"], tokens["approver-a"], tokens["approver-b"]

    def between() -> None:
        if over():
            raise TimeUp
        _reads(api, tokens, shared, rng, rng.randint(*reads))

    created = api.call(
        "write: create version",
        requester,
        "POST",
        f"{MV}/create",
        body={
            "name": model,
            "source": source,
            "run_id": secrets.token_hex(16),
            "description": "nightly retrain",
            "tags": [{"key": "trainer", "value": "soak"}],
        },
    )
    created_at = time.monotonic()
    version = created["model_version"]["version"]
    shared.created[model] += 1
    ident = {"name": model, "version": version}
    while True:  # the copy runs in the worker; poll as the mlflow client does
        between()
        status = api.call("read: get version (poll)", requester, "GET", f"{MV}/get", params=ident)[
            "model_version"
        ]["status"]
        if status == "READY":
            break
        if status != "PENDING_REGISTRATION":
            raise Failure(f"{model} v{version} ended {status}")
        if time.monotonic() - created_at > 120:
            raise Failure(f"{model} v{version} still pending after 120 s")
    shared.add_ready(model, version)
    steps = [
        (
            "write: set tag",
            requester,
            "POST",
            f"{MV}/set-tag",
            {**ident, "key": "validation", "value": "passed"},
        ),
        (
            "write: request",
            requester,
            "POST",
            f"{TR}/create",
            {**ident, "stage": "Staging", "comment": "offline metrics look good"},
        ),
        (
            "write: approve",
            first,
            "POST",
            f"{TR}/approve",
            {**ident, "stage": "Staging", "archive_existing_versions": False, "comment": "ok"},
        ),
        (
            "write: comment",
            requester,
            "POST",
            "/api/2.0/mlflow/comments/create",
            {**ident, "comment": "shadow traffic: p99 12 ms"},
        ),
        (
            "write: request",
            requester,
            "POST",
            f"{TR}/create",
            {**ident, "stage": "Production", "comment": "ready to ship"},
        ),
        (
            "write: approve",
            first,
            "POST",
            f"{TR}/approve",
            {**ident, "stage": "Production", "archive_existing_versions": True},
        ),
        (
            "write: approve",
            second,
            "POST",
            f"{TR}/approve",
            {
                **ident,
                "stage": "Production",
                "archive_existing_versions": True,
                "comment": "ship it",
            },
        ),
        (
            "write: set alias",
            requester,
            "POST",
            "/api/2.0/mlflow/registered-models/alias",
            {"name": model, "alias": "champion", "version": version},
        ),
    ]
    for kind, token, method, path, body in steps:
        between()
        api.call(kind, token, method, path, body=body)
    shared.lifecycles[model] += 1


def _client(
    index: int,
    base: str,
    tokens: dict[str, str],
    shared: Shared,
    own: list[str],
    sources: list[str],
    stats: Stats,
    deadline: float,
    stop: threading.Event,
    reads: tuple[int, int],
) -> None:
    rng = random.Random(index)  # noqa: S311 (a reproducible workload)
    api = Api(base, stats)
    turn = 0

    def over() -> bool:
        return time.monotonic() >= deadline or stop.is_set()

    while not over():
        model = own[turn % len(own)]
        turn += 1
        try:
            _lifecycle(api, tokens, shared, model, rng.choice(sources), rng, over, reads)
        except TimeUp:
            return
        except Failure:
            # Counted already; a fresh version on the next turn, so one failure does not
            # leave this client's model in a state its plan does not expect.
            time.sleep(1)
        except Exception as exc:  # noqa: BLE001 (a harness bug must still be counted)
            stats.add("harness", 0.0, f"{type(exc).__name__}: {exc}")
            time.sleep(1)


# --- Sampling -------------------------------------------------------------------------------


@dataclass
class Sample:
    at: float  # seconds since the load started
    web_master: int
    web_workers: dict[int, int]  # pid -> RSS
    worker: int
    beat: int
    db_connections: int
    load: float


def _sampler(
    pids: dict[str, int],
    dsn: str,
    database: str,
    started: float,
    every: float,
    stop: threading.Event,
    samples: list[Sample],
) -> None:
    connection = psycopg2.connect(dsn)
    connection.autocommit = True
    try:
        while True:
            tree = _children()
            master = pids["web"]
            workers = {pid: sum(_rss(p) for p in _tree(pid, tree)) for pid in tree.get(master, [])}
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
                    "AND pid <> pg_backend_pid()",
                    [database],
                )
                connections = cursor.fetchone()[0]
            samples.append(
                Sample(
                    at=time.monotonic() - started,
                    web_master=_rss(master),
                    web_workers=workers,
                    worker=sum(_rss(p) for p in _tree(pids["worker"], tree)),
                    beat=sum(_rss(p) for p in _tree(pids["beat"], tree)),
                    db_connections=connections,
                    load=os.getloadavg()[0],
                )
            )
            if stop.wait(every):
                return
    finally:
        connection.close()


# --- After the load -------------------------------------------------------------------------


def _queue_state(cursor: Any) -> dict[str, Any]:
    cursor.execute("SELECT status, count(*) FROM registry_modelversion GROUP BY status")
    versions = dict(cursor.fetchall())
    cursor.execute(
        "SELECT status, count(*) FROM webhooks_webhookdelivery WHERE NOT is_test GROUP BY status"
    )
    deliveries = dict(cursor.fetchall())
    return {"versions": versions, "deliveries": deliveries}


def _drain(dsn: str, receiver: Receiver, timeout: float) -> dict[str, Any]:
    """Wait until no copy and no delivery is outstanding (or ``timeout``); the final state."""
    connection = psycopg2.connect(dsn)
    connection.autocommit = True
    deadline = time.monotonic() + timeout
    try:
        with connection.cursor() as cursor:
            while True:
                state = _queue_state(cursor)
                pending = state["versions"].get("PENDING_REGISTRATION", 0) + sum(
                    count
                    for status, count in state["deliveries"].items()
                    if status in ("PENDING", "SENDING")
                )
                if pending == 0 or time.monotonic() > deadline:
                    break
                time.sleep(2)
            time.sleep(1)  # a delivery is marked SUCCESS after the receiver answered
            state = _queue_state(cursor)
            cursor.execute(
                "SELECT d.code::text, d.status, d.attempt_count, w.flavor "
                "FROM webhooks_webhookdelivery d JOIN webhooks_webhook w ON w.id = d.webhook_id "
                "WHERE NOT d.is_test"
            )
            state["rows"] = cursor.fetchall()
            cursor.execute("SELECT event_type, count(*) FROM webhooks_webhookevent GROUP BY 1")
            state["events"] = dict(cursor.fetchall())
    finally:
        connection.close()
    return state


def _log_problems(logs: dict[str, Path]) -> dict[str, Counter]:
    """Lines in the services' logs that point at trouble, counted per log."""
    patterns = {
        "Traceback": re.compile(r"^Traceback"),
        "ERROR": re.compile(r"\bERROR\b|\[ERROR\]"),
        "CRITICAL": re.compile(r"\bCRITICAL\b"),
        "WORKER TIMEOUT": re.compile(r"WORKER TIMEOUT"),
        "worker booted": re.compile(r"Booting worker"),
    }
    found: dict[str, Counter] = {}
    for name, path in logs.items():
        counts: Counter = Counter()
        if path.exists():
            with path.open(errors="replace") as lines:
                for line in lines:
                    for label, pattern in patterns.items():
                        if pattern.search(line):
                            counts[label] += 1
        found[name] = counts
    return found


_ACCESS = re.compile(r'"[A-Z]+ (?P<path>\S+) HTTP/[\d.]+" (?P<status>\d{3}) ')


def _access_statuses(path: Path) -> Counter:
    statuses: Counter = Counter()
    with path.open(errors="replace") as lines:
        for line in lines:
            match = _ACCESS.search(line)
            if match:
                statuses[match["status"][0] + "xx"] += 1
    return statuses


# --- Report ---------------------------------------------------------------------------------


def _mib(value: float) -> str:
    return f"{value / MIB:.1f}"


def _growth(start: float, end: float) -> float:
    return 100.0 * (end - start) / start if start else 0.0


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def _report(ctx: dict[str, Any]) -> tuple[str, list[str]]:
    """The Markdown report and the list of failed checks."""
    args, stats, samples = ctx["args"], ctx["stats"], ctx["samples"]
    failed: list[str] = []
    lines = [
        f"Run {ctx['started_at']} UTC: {args.minutes:g} min of load ({ctx['load_seconds']:.0f} s "
        f"measured), {args.clients} clients, warm-up {args.warmup:g} s, samples every "
        f"{args.sample_seconds:g} s. Load average (1, 5, 15 min): {ctx['load_before']} before, "
        f"{ctx['load_after']} after.",
        "",
        f"Service: gunicorn {WEB_WORKERS} workers x {WEB_THREADS} threads, keep-alive "
        f"{KEEP_ALIVE}; Celery worker threads x {CELERY_CONCURRENCY}; beat; PostgreSQL, Redis "
        "broker and cache, file:// store; DJANGO_DEBUG=false.",
        "",
        "| Requests | Count | Failed | p50 ms | p95 ms | max ms |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    total = failed_total = 0
    for kind in sorted(stats.counts):
        times = [1000 * t for t in stats.times[kind]]
        total += stats.counts[kind]
        failed_total += stats.errors[kind]
        lines.append(
            f"| {kind} | {stats.counts[kind]:,} | {stats.errors[kind]} | "
            f"{statistics.median(times):.1f} | {_percentile(times, 0.95):.1f} | {max(times):.1f} |"
        )
    rate = total / ctx["load_seconds"] if ctx["load_seconds"] else 0
    lines.append(f"| **all** | **{total:,}** ({rate:.0f}/s) | **{failed_total}** | | | |")
    if failed_total:
        failed.append(f"{failed_total} failed requests")
    statuses = ctx["access"]
    lines += [
        "",
        "Gunicorn's access log, by status class: "
        + ", ".join(f"{k} {v:,}" for k, v in sorted(statuses.items()))
        + ".",
    ]
    if any(k != "2xx" for k in statuses):
        failed.append("non-2xx answers in the access log")

    # Memory: the first sample at or after the warm-up, and the last sample of the load.
    during = [s for s in samples if s.at <= ctx["load_seconds"] + 1]
    start = next((s for s in during if s.at >= args.warmup), during[0])
    end = during[-1]
    lines += [
        "",
        f"Memory (RSS, MiB) at {start.at:.0f} s (after the warm-up) and at "
        f"{end.at:.0f} s (end of the load); peak over the same span:",
        "",
        "| Process | Start | End | Growth | Peak |",
        "|---|---:|---:|---:|---:|",
    ]
    span = [s for s in during if s.at >= start.at]

    def row(label: str, first: float, last: float, peak: float, check: bool = True) -> None:
        growth = _growth(first, last)
        lines.append(f"| {label} | {_mib(first)} | {_mib(last)} | {growth:+.1f} % | {_mib(peak)} |")
        if check and growth > MEMORY_GROWTH_LIMIT:
            failed.append(f"{label}: memory grew {growth:.1f} %")

    row("gunicorn master", start.web_master, end.web_master, max(s.web_master for s in span))
    same_workers = set(start.web_workers) == set(end.web_workers)
    if not same_workers:
        failed.append("gunicorn workers were replaced during the load")
    for number, pid in enumerate(sorted(start.web_workers), 1):
        row(
            f"gunicorn worker {number}",
            start.web_workers[pid],
            end.web_workers.get(pid, 0),
            max(s.web_workers.get(pid, 0) for s in span),
        )
    row(
        "gunicorn workers, sum",
        sum(start.web_workers.values()),
        sum(end.web_workers.values()),
        max(sum(s.web_workers.values()) for s in span),
    )
    row("Celery worker", start.worker, end.worker, max(s.worker for s in span))
    row("Celery beat", start.beat, end.beat, max(s.beat for s in span))
    connections = [s.db_connections for s in samples]
    bound = WEB_WORKERS * WEB_THREADS + CELERY_CONCURRENCY + 2  # + beat, + the worker's main
    lines += [
        "",
        f"Database connections (pg_stat_activity, the sampler's own not counted): "
        f"max {max(connections)}, at the end of the load {end.db_connections}; the bound "
        f"from the settings is {bound} (web workers x threads + worker threads + beat + "
        "the worker's consumer).",
    ]
    if max(connections) > bound:
        failed.append(f"{max(connections)} database connections, above {bound}")

    state = ctx["state"]
    versions = state["versions"]
    created = sum(ctx["shared"].created.values())
    lines += [
        "",
        f"Versions: {created:,} created by the load, {versions.get('READY', 0):,} READY "
        f"in the database, status counts {dict(sorted(versions.items()))}; "
        f"{sum(ctx['shared'].lifecycles.values()):,} went all the way to Production.",
    ]
    if set(versions) - {"READY"}:
        failed.append(f"versions not READY: {versions}")
    if versions.get("READY", 0) != created:
        failed.append(f"{created} versions created but {versions.get('READY', 0)} READY")

    receiver: Receiver = ctx["receiver"]
    rows = state["rows"]
    in_db = {code for code, *_ in rows}
    received = set(receiver.by_id)
    duplicates = sum(count - 1 for count in receiver.by_id.values() if count > 1)
    statuses_db = Counter(status for _code, status, *_ in rows)
    retried = sum(1 for _code, _status, attempts, _flavor in rows if attempts > 1)
    events = sum(state["events"].values())
    lines += [
        "",
        f"Webhooks: {events:,} events recorded, {len(rows):,} deliveries "
        f"({dict(sorted(statuses_db.items()))}, {retried} needed more than one try); "
        f"the receiver got {sum(receiver.by_id.values()):,} requests for {len(received):,} "
        f"delivery ids ({', '.join(f'{k} {v:,}' for k, v in sorted(receiver.by_hook.items()))}), "
        f"{duplicates} duplicates, {len(received - in_db)} unknown, "
        f"{len(in_db - received)} missing, {len(receiver.bad)} bad signatures or bodies.",
    ]
    if set(statuses_db) - {"SUCCESS"}:
        failed.append(f"deliveries not SUCCESS: {dict(statuses_db)}")
    if in_db != received:
        failed.append(
            f"{len(in_db - received)} deliveries missing, {len(received - in_db)} unknown"
        )
    if duplicates:
        failed.append(f"{duplicates} duplicate deliveries")
    if receiver.bad:
        failed.append(f"{len(receiver.bad)} bad deliveries: {receiver.bad[:3]}")

    problems = ctx["log_problems"]
    lines += [
        "",
        "Service logs: "
        + "; ".join(
            f"{name}: " + (", ".join(f"{k} {v}" for k, v in sorted(c.items())) or "clean")
            for name, c in problems.items()
        )
        + ".",
    ]
    for name, counts in problems.items():
        bad = {
            k: v
            for k, v in counts.items()
            if k in ("Traceback", "ERROR", "CRITICAL", "WORKER TIMEOUT")
        }
        if bad:
            failed.append(f"{name} log: {bad}")

    lines += [
        "",
        "Every minute (MiB; connections):",
        "",
        "| s | master | workers (sum) | Celery worker | beat | DB conns | load 1 min |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    step = max(1, round(60 / args.sample_seconds))
    for s in samples[::step] + ([samples[-1]] if (len(samples) - 1) % step else []):
        lines.append(
            f"| {s.at:.0f} | {_mib(s.web_master)} | {_mib(sum(s.web_workers.values()))} | "
            f"{_mib(s.worker)} | {_mib(s.beat)} | {s.db_connections} | {s.load:.2f} |"
        )
    if stats.examples:
        lines += ["", "First failures:", ""] + [f"- `{e}`" for e in stats.examples]
    lines += [
        "",
        "Result: "
        + ("**all checks passed**." if not failed else "**FAILED**: " + "; ".join(failed) + "."),
    ]
    return "\n".join(lines) + "\n", failed


# --- Main -----------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="load duration")
    parser.add_argument(
        "--warmup", type=float, default=60.0, help="seconds of load before the start memory sample"
    )
    parser.add_argument("--clients", type=int, default=8, help="concurrent client threads")
    parser.add_argument("--models", type=int, default=2, help="models per client")
    parser.add_argument("--reads", default="2-5", help="reads between two workflow steps, min-max")
    parser.add_argument("--sample-seconds", type=float, default=10.0)
    parser.add_argument(
        "--postgres",
        default="postgres://postgres@127.0.0.1:5432",
        help="PostgreSQL server URL (no database)",
    )
    parser.add_argument(
        "--database", default="soak_registry", help="database to drop, create and use"
    )
    parser.add_argument(
        "--broker-url",
        default="redis://127.0.0.1:6379/12",
        help="Celery broker (this Redis database is flushed)",
    )
    parser.add_argument(
        "--cache-url",
        default="redis://127.0.0.1:6379/13",
        help="Django cache (this Redis database is flushed)",
    )
    parser.add_argument("--report", type=Path, help="also write the Markdown report here")
    parser.add_argument(
        "--keep", action="store_true", help="keep the temporary folder (logs, store) for inspection"
    )
    parser.add_argument(
        "--trace-memory",
        action="store_true",
        help="diagnosis: run tracemalloc in each gunicorn worker and print what grew after the "
        "warm-up (slows the workers down; not for the figures)",
    )
    args = parser.parse_args()
    low, _, high = args.reads.partition("-")
    reads = (int(low), int(high or low))

    work = Path(tempfile.mkdtemp(prefix="registry-soak-"))
    processes = Processes()
    stop = threading.Event()

    def interrupted(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    # SIGINT too: a shell that starts the soak in the background leaves it ignored.
    signal.signal(signal.SIGINT, interrupted)
    signal.signal(signal.SIGTERM, interrupted)
    # A hard ceiling, whatever happens: the run's length plus set-up and drain.
    ceiling = 60 * args.minutes + 900
    watchdog = threading.Timer(ceiling, lambda: os.kill(os.getpid(), signal.SIGTERM))
    watchdog.daemon = True
    watchdog.start()
    try:
        return _soak(args, reads, work, processes, stop)
    except KeyboardInterrupt:
        _say("interrupted; stopping everything")
        return 130
    finally:
        stop.set()
        watchdog.cancel()
        processes.stop_all()
        if args.keep:
            _say(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def _soak(
    args: argparse.Namespace,
    reads: tuple[int, int],
    work: Path,
    processes: Processes,
    stop: threading.Event,
) -> int:
    logs = {name: work / f"{name}.log" for name in ("setup", "web", "worker", "beat")}
    (work / "store").mkdir()
    sources = _write_sources(work / "sources")
    env = _service_env(args, work)
    py = sys.executable
    _say(f"work folder {work}; load {_load()}")

    _fresh_database(args)
    for url in (args.broker_url, args.cache_url):
        redis.Redis.from_url(url).flushdb()
    _run([py, "manage.py", "migrate", "--noinput"], env, logs["setup"])
    _run([py, "manage.py", "collectstatic", "--noinput"], env, logs["setup"])
    _run([py, "manage.py", "check", "--deploy"], env, logs["setup"])
    tokens = _make_users(env, logs["setup"])

    receiver = Receiver(secrets={})
    server = _start_receiver(receiver)
    receiver_url = f"http://127.0.0.1:{server.server_address[1]}"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    web = processes.start(
        "web",
        [
            py,
            "-m",
            "gunicorn",
            "config.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(WEB_WORKERS),
            "--threads",
            str(WEB_THREADS),
            "--keep-alive",
            str(KEEP_ALIVE),
            "--access-logfile",
            "-",
            *_control_socket(work),
            *(_trace_config(work, args.warmup) if args.trace_memory else []),
        ],
        env,
        logs["web"],
    )
    worker = processes.start(
        "worker",
        [
            py,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "-l",
            "info",
            "--pool=threads",
            f"--concurrency={CELERY_CONCURRENCY}",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ],
        env,
        logs["worker"],
    )
    beat = processes.start(
        "beat",
        [
            py,
            "-m",
            "celery",
            "-A",
            "config",
            "beat",
            "-l",
            "info",
            "--schedule",
            str(work / "celerybeat-schedule"),
        ],
        env,
        logs["beat"],
    )
    _wait_healthy(base, [web, worker, beat])

    stats = Stats()
    models = [f"soak-{i:02d}" for i in range(args.clients * args.models)]
    receiver.secrets.update(_set_up_registry(Api(base, stats), tokens, models, receiver_url))
    setup_requests = stats.counts.pop("setup")
    stats.times.pop("setup")
    if stats.errors:
        raise SystemExit(f"set-up failed: {stats.examples}")
    _say(
        f"set up: {len(models)} models, {setup_requests} set-up requests; load for "
        f"{args.minutes:g} min with {args.clients} clients"
    )

    shared = Shared(models=models)
    samples: list[Sample] = []
    load_before = _load()
    started_at = datetime.now(UTC).strftime("%Y-%m-%d %H:%M")
    started = time.monotonic()
    deadline = started + 60 * args.minutes
    dsn = env["DATABASE_URL"]
    sampler_stop = threading.Event()
    sampler = threading.Thread(
        target=_sampler,
        name="sampler",
        daemon=True,
        args=(
            {"web": web.pid, "worker": worker.pid, "beat": beat.pid},
            dsn,
            args.database,
            started,
            args.sample_seconds,
            sampler_stop,
            samples,
        ),
    )
    sampler.start()
    clients = [
        threading.Thread(
            target=_client,
            name=f"client-{i}",
            daemon=True,
            args=(
                i,
                base,
                tokens,
                shared,
                models[i * args.models : (i + 1) * args.models],
                sources,
                stats,
                deadline,
                stop,
                reads,
            ),
        )
        for i in range(args.clients)
    ]
    for thread in clients:
        thread.start()
    while any(thread.is_alive() for thread in clients):
        time.sleep(5)
        for process in (web, worker, beat):
            if process.poll() is not None:
                stop.set()
                raise SystemExit(f"{process.args[2:5]} exited during the load")
        elapsed = time.monotonic() - started
        if int(elapsed) % 60 < 5:
            done = sum(stats.counts.values())
            _say(
                f"  {elapsed:4.0f} s: {done:,} requests, {sum(stats.errors.values())} failed, "
                f"load {_load()}"
            )
        if elapsed > 60 * args.minutes + 300:
            stop.set()
    load_seconds = time.monotonic() - started
    sampler_stop.set()
    sampler.join(30)
    load_after = _load()
    _say(f"load done in {load_seconds:.0f} s; waiting for queued copies and deliveries")
    state = _drain(dsn, receiver, timeout=180)
    server.shutdown()
    processes.stop_all()
    report, failed = _report(
        {
            "args": args,
            "stats": stats,
            "samples": samples,
            "started_at": started_at,
            "load_seconds": load_seconds,
            "load_before": load_before,
            "load_after": load_after,
            "access": _access_statuses(logs["web"]),
            "state": state,
            "shared": shared,
            "receiver": receiver,
            "log_problems": _log_problems(
                {"web": logs["web"], "worker": logs["worker"], "beat": logs["beat"]}
            ),
        }
    )
    for trace in sorted(work.glob("trace-*.txt")):
        _say(f"--- {trace.name}")
        _say(trace.read_text())
    _say("")
    _say(report)
    if args.report:
        args.report.write_text(report)
        _say(f"report written to {args.report}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
