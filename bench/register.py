"""End to end: ``mlflow.register_model`` of a small model through this registry and through
``mlflow server``'s own registry, in the same run, on the same machine.

    make bench-register                            # 20 registrations a side
    make bench-register ARGS="--count 5 --store s3 --reuse"

What it does (PostgreSQL and Redis on 127.0.0.1, ``make services``; no input asked):

1. Starts one ``mlflow server`` from the Makefile's ``.venv-mlflow`` (the version
   ``requirements-mlflow.lock`` pins) as the tracking server: its store the PostgreSQL database
   ``benchreg_mlflow`` (dropped and created afresh; ``--mlflow-store sqlite`` for a file), its
   default artifact proxy (``mlflow-artifacts:/``) onto a temporary folder
   (``--artifacts-destination``), ``--mlflow-workers`` uvicorn workers.
2. Starts this registry as production runs it, with ``MLFLOW_TRACKING_SERVER_URL`` pointing at
   that server: the PostgreSQL database ``benchreg_registry`` (dropped, created, migrated), a
   user ``bench`` with an API token, gunicorn (the Dockerfile's flags, ``DJANGO_DEBUG=false``)
   and one Celery worker (docker-compose's flags), Redis database 6 as broker and cache
   (``--redis-url``; that one database is flushed at start and end, no other), the store a
   temporary folder (``file://``) or, with ``--store s3``, a bucket on a moto S3 server.
   ``ARTIFACT_*`` variables of the environment (``ARTIFACT_REGISTRATION_WAIT_SECONDS``, ...)
   reach the registry as they are; ``ARTIFACT_STORE_URI`` is set by the script.
3. Logs the models, untimed: a client process with no credentials logs ``2 x (count + 1)``
   runs on the tracking server, each with ``mlflow.sklearn.log_model(model, name="model")`` of
   one RandomForest (``--trees``; about 4 MB of files). Every registration gets a freshly
   logged model (its own logged model id and files; the model's bytes differ by one
   attribute). With ``--reuse``, one logged model per side is registered into new versions.
   (``pip_requirements`` is given so that MLflow does not spend ~10 s per model inferring it.)
4. Registers: one long-lived process per side runs the unmodified ``mlflow`` client of
   ``.venv`` and times ``mlflow.register_model(f"runs:/{run_id}/model", name)`` (MLflow 3
   turns it into ``models:/<logged model id>``), with ``mlflow.set_tracking_uri(<tracking
   server>)`` and ``mlflow.set_registry_uri(<registry or tracking server>)`` set before each
   call and ``await_registration_for=--await-seconds``. The two sides alternate, the first
   of each pair swapping every round; one untimed warm-up registration per side comes first.
   Only the registry's process has ``MLFLOW_TRACKING_TOKEN`` (the bench user's token); the
   client sends it on every request, to the tracking server too (``register_model`` reads the
   run and the logged model there and tags the logged model with the new version):
   ``mlflow server`` ignores it. A side stops after ``--max-failures`` failures in a row (the
   rest count as skipped) so that a registry that cannot register the source ends quickly.
   The final status is read back with ``get_model_version`` afterwards, untimed
   (``register_model`` returns the version as ``model-versions/create`` answered it, even
   after polling until READY). The requests each registration makes are counted from
   ``urllib3``'s debug log (nothing in the client is changed): calls to the registry's API,
   to the tracking API, the status polls (``model-versions/get``; after the first the client
   sleeps 3 s between polls) and how long the ``model-versions/create`` request took.
5. Prints a Markdown table (seconds per registration: p50, p90, max, mean over the READY ones;
   the final status of each) and writes it with every registration's figures to
   ``bench/results/register-<time>.md`` and ``.json``; the servers' and clients' logs stay in
   ``bench/results/register-logs-<time>/``.

Everything listens on 127.0.0.1. Every process started is stopped at the end, also on error,
Ctrl-C or SIGTERM, or after ``--time-limit`` seconds; the databases are dropped and the
temporary folders removed.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import queue
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from processes import Processes

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository's testing_support
from testing_support.network import free_port

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
RESULTS = BENCH / "results"
PG_URL = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432")
DATABASES = {"registry": "benchreg_registry", "mlflow": "benchreg_mlflow"}
SIDES = ("registry", "mlflow")
LABELS = {"registry": "this registry", "mlflow": "mlflow server"}
TRUSTED_TYPES = ["sklearn.tree._tree.Tree"]
# What the client children must not inherit from the shell: they get their URIs explicitly.
CLIENT_ENV_DROP = ("MLFLOW_", "DATABRICKS_", "AWS_")
NO_TELEMETRY = {"MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}


def log(message: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def wait_for(what: str, ready, process: subprocess.Popen, log_path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log_path.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{what} exited ({process.returncode}); {log_path}:\n{tail}")
        if ready():
            return
        time.sleep(0.5)
    raise RuntimeError(f"{what} not ready after {timeout:.0f} s; see {log_path}")


def answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return answer.status == 200
    except (urllib.error.URLError, OSError):
        return False


def ensure_mlflow() -> tuple[Path, str]:
    """``mlflow server`` from the Makefile's ``.venv-mlflow`` (never installed here)."""
    python = ROOT / ".venv-mlflow" / "bin" / "python"
    if not (ROOT / ".venv-mlflow" / ".installed").exists():
        sys.exit("mlflow server's virtualenv is missing: run `make .venv-mlflow/.installed`.")
    version = subprocess.run(
        [str(python), "-c", "import mlflow; print(mlflow.__version__)"],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": "", **NO_TELEMETRY},
    ).stdout.strip()
    return python, version


# --- Databases and Redis ----------------------------------------------------------------------


def _pg():
    import psycopg2

    connection = psycopg2.connect(f"{PG_URL}/postgres")
    connection.autocommit = True
    return connection


def drop_database(name: str, create: bool = False) -> None:
    assert name.startswith("benchreg_")
    connection = _pg()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", [name]
        )
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')
        if create:
            cursor.execute(f'CREATE DATABASE "{name}"')
    connection.close()


def flush_redis(url: str) -> None:
    import redis

    redis.Redis.from_url(url).flushdb()


# --- The tracking server ----------------------------------------------------------------------


def start_mlflow(
    processes: Processes, python: Path, args: argparse.Namespace, work: Path, logs: Path
) -> str:
    if args.mlflow_store == "sqlite":
        store = f"sqlite:///{work / 'mlflow.db'}"
    else:
        drop_database(DATABASES["mlflow"], create=True)
        store = f"{PG_URL.replace('postgres://', 'postgresql+psycopg2://')}/{DATABASES['mlflow']}"
    port = free_port()
    artifacts = work / "mlflow-artifacts"
    artifacts.mkdir()
    command = [
        str(python.parent / "mlflow"),
        "server",
        "--backend-store-uri",
        store,
        "--artifacts-destination",
        str(artifacts),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(args.mlflow_workers),
    ]
    env = {key: value for key, value in os.environ.items() if not key.startswith(CLIENT_ENV_DROP)}
    env.update({"PYTHONPATH": "", **NO_TELEMETRY})
    processes.start("mlflow", command, env, logs / "mlflow-server.log")
    return f"http://127.0.0.1:{port}"


# --- The registry -----------------------------------------------------------------------------


def registry_env(args: argparse.Namespace, work: Path, tracking: str, store: str) -> dict:
    from cryptography.fernet import Fernet

    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("MLFLOW_", "DJANGO_", "DATABASE_", "CELERY_", "AWS_", "GUNICORN_"))
    }
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "PYTHONPATH": str(ROOT),
            "PYTHONUNBUFFERED": "1",
            "DJANGO_DEBUG": "false",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
            # Plain HTTP on loopback: nothing to redirect to.
            "DJANGO_SECURE_SSL_REDIRECT": "false",
            "DJANGO_STATIC_ROOT": str(RESULTS / "static"),
            "DJANGO_LOG_LEVEL": "INFO",
            "DATABASE_URL": f"{PG_URL}/{DATABASES['registry']}",
            "CELERY_BROKER_URL": args.redis_url,
            "DJANGO_CACHE_URL": args.redis_url,
            "REGISTRY_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
            # Beat's schedule and the like: not the checkout's var/.
            "REGISTRY_DATA_DIR": str(work / "registry-data"),
            "MLFLOW_TRACKING_SERVER_URL": tracking,
            "ARTIFACT_STORE_URI": store,
        }
    )
    return env


def prepare_registry(env: dict[str, str], logs: Path) -> str:
    """Migrate, create the user ``bench``, return a new API token of it."""

    def manage(*argv: str) -> str:
        with (logs / "registry-setup.log").open("ab") as err:
            return subprocess.run(
                [sys.executable, "manage.py", *argv],
                cwd=ROOT,
                env=env,
                check=True,
                stdout=subprocess.PIPE,
                stderr=err,
                stdin=subprocess.DEVNULL,
                text=True,
                timeout=300,
            ).stdout

    manage("migrate", "--noinput", "-v", "0")
    # With debug off the web server refuses to start without collectstatic's manifest.
    manage("collectstatic", "--noinput", "-v", "0")
    manage(
        "shell",
        "-c",
        "from django.contrib.auth import get_user_model;"
        "get_user_model().objects.get_or_create(username='bench')",
    )
    return manage("create_token", "bench", "--name", "bench").strip().splitlines()[-1]


def start_registry(
    processes: Processes, env: dict[str, str], args: argparse.Namespace, logs: Path
) -> tuple[str, subprocess.Popen, subprocess.Popen]:
    worker = processes.start(
        "worker",
        # docker-compose's worker.
        [sys.executable, "-m", "celery", "-A", "config", "worker", "-l", "info"]
        + ["--pool=threads", "--concurrency=16"]
        + ["--without-gossip", "--without-mingle", "--without-heartbeat"],
        env,
        logs / "registry-worker.log",
    )
    port = free_port()
    web = processes.start(
        "web",
        # The Dockerfile's CMD, bound to loopback.
        [str(Path(sys.executable).parent / "gunicorn"), "config.wsgi:application"]
        + ["--bind", f"127.0.0.1:{port}", "--workers", str(args.workers)]
        + ["--threads", str(args.threads), "--keep-alive", "5", "--access-logfile", "-"],
        env,
        logs / "registry-web.log",
    )
    return f"http://127.0.0.1:{port}", web, worker


def start_moto(processes: Processes, logs: Path) -> str:
    import boto3
    from botocore.config import Config

    port = free_port()
    process = processes.start(
        "moto",
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        {**os.environ, "PYTHONPATH": ""},
        logs / "moto.log",
    )
    url = f"http://127.0.0.1:{port}"
    wait_for("moto", lambda: answers(f"{url}/moto-api/"), process, logs / "moto.log", 60)
    boto3.client(
        "s3",
        endpoint_url=url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}),
    ).create_bucket(Bucket="registry")
    return url


# --- The client (run in child processes: ``--role log`` and ``--role register``) -------------


def role_log(args: argparse.Namespace) -> None:
    """Log ``--log-count`` models into runs on the tracking server; print their ids as JSON."""
    import mlflow
    import mlflow.sklearn
    import sklearn
    from sklearn.datasets import make_classification
    from sklearn.ensemble import RandomForestClassifier

    mlflow.set_tracking_uri(args.tracking_uri)
    features, labels = make_classification(n_samples=4000, n_features=20, random_state=0)
    model = RandomForestClassifier(n_estimators=args.trees, random_state=0, n_jobs=1)
    model.fit(features, labels)
    mlflow.set_experiment("bench-register")
    logged = []
    for i in range(args.log_count):
        model.bench_copy_ = i  # every logged model's files differ
        with mlflow.start_run(run_name=f"bench-register-{i}") as run:
            info = mlflow.sklearn.log_model(
                model,
                name="model",
                skops_trusted_types=TRUSTED_TYPES,
                pip_requirements=[f"scikit-learn=={sklearn.__version__}"],
            )
        logged.append({"run_id": run.info.run_id, "model_id": info.model_id})
        print(f"logged {i + 1}/{args.log_count}", file=sys.stderr, flush=True)
    print("LOGGED " + json.dumps(logged), flush=True)


class _Requests(logging.Handler):
    """The HTTP requests the client makes, from urllib3's debug log line
    ``'%s://%s:%s "%s %s %s" %s %s'`` (scheme, host, port, method, url, version, status, ...)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.seen: list[tuple[float, str, str, int]] = []

    def emit(self, record: logging.LogRecord) -> None:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 7 and '"' in str(record.msg):
            self.seen.append((time.perf_counter(), str(args[3]), str(args[4]), int(args[6])))


def _summarise(requests: list[tuple[float, str, str, int]], started: float) -> dict:
    registry = [r for r in requests if "registered-models" in r[2] or "model-versions" in r[2]]
    at = next((i for i, r in enumerate(requests) if "model-versions/create" in r[2]), None)
    create = requests[at] if at is not None else None
    # The client does nothing between the answer before and sending the create.
    sent = requests[at - 1][0] if at else started
    return {
        "registry_calls": len(registry),
        "tracking_calls": len(requests) - len(registry),
        "polls": sum("model-versions/get" in r[2] for r in registry),
        "create_answered_s": round(create[0] - started, 4) if create else None,
        "create_call_s": round(create[0] - sent, 4) if create else None,
        "create_http_status": create[3] if create else None,
        "non_2xx": [f"{r[1]} {r[2].split('?')[0]} {r[3]}" for r in requests if r[3] >= 300],
    }


def role_register(args: argparse.Namespace) -> None:
    """Read jobs (JSON lines) on stdin; register each; answer ``RESULT {...}`` on stdout."""
    import mlflow
    from mlflow import MlflowClient

    handler = _Requests()
    urllib3_log = logging.getLogger("urllib3.connectionpool")
    urllib3_log.setLevel(logging.DEBUG)
    urllib3_log.addHandler(handler)
    urllib3_log.propagate = False
    print("READY_FOR_JOBS", flush=True)
    for line in sys.stdin:
        job = json.loads(line)
        mlflow.set_tracking_uri(args.tracking_uri)
        mlflow.set_registry_uri(args.registry_uri)
        handler.seen.clear()
        started = time.perf_counter()
        try:
            version = mlflow.register_model(
                f"runs:/{job['run_id']}/model",
                job["name"],
                await_registration_for=args.await_seconds,
            )
        except Exception as error:  # noqa: BLE001 - every failure is a result to report
            seconds = time.perf_counter() - started
            result = {"error": f"{type(error).__name__}: {error}"[:600]}
            result.update(seconds=round(seconds, 4), **_summarise(handler.seen, started))
            result.update(_version_after_error(MlflowClient, args.registry_uri, job))
        else:
            seconds = time.perf_counter() - started
            result = {"returned_status": version.status, "version": version.version}
            result.update(seconds=round(seconds, 4), **_summarise(handler.seen, started))
            # register_model returns what model-versions/create answered, even after polling
            # until READY: the final status is read back (untimed, not counted).
            try:
                final = MlflowClient(registry_uri=args.registry_uri).get_model_version(
                    job["name"], version.version
                )
                result.update(
                    status=final.status,
                    source=final.source,
                    status_message=final.status_message or "",
                )
            except Exception as error:  # noqa: BLE001
                result.update(status="UNKNOWN", status_message=f"get failed: {error}"[:300])
        print("RESULT " + json.dumps(result), flush=True)


def _version_after_error(client_class, registry_uri: str, job: dict) -> dict:
    """The version a failed ``register_model`` left behind, if any, and its status."""
    try:
        client = client_class(registry_uri=registry_uri)
        versions = client.search_model_versions(f"name='{job['name']}'")
    except Exception as error:  # noqa: BLE001
        return {"status": "UNKNOWN", "status_message": f"search failed: {error}"[:300]}
    mine = [
        v for v in versions if v.run_id == job["run_id"] or v.source == f"models:/{job['model_id']}"
    ]
    if not mine:
        return {"status": "NOT_CREATED", "status_message": ""}
    latest = max(mine, key=lambda v: int(v.version))
    return {
        "status": latest.status,
        "version": latest.version,
        "source": latest.source,
        "status_message": latest.status_message or "",
    }


def client_env(token: str | None = None) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(CLIENT_ENV_DROP)}
    env.update({"PYTHONPATH": "", "PYTHONUNBUFFERED": "1", **NO_TELEMETRY})
    if token:
        env["MLFLOW_TRACKING_TOKEN"] = token
    return env


class Registrar:
    """One side's client process, fed one job at a time."""

    def __init__(self, processes: Processes, side: str, argv: list[str], env, logs: Path):
        self.side = side
        self.log_path = logs / f"client-{side}.log"
        self.process = processes.start(
            f"client-{side}",
            argv,
            env,
            self.log_path,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def expect(self, prefix: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self.lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                raise RuntimeError(
                    f"the {self.side} client gave no {prefix.strip()} in {timeout:.0f} s; "
                    f"see {self.log_path}"
                ) from None
            if line is None:
                tail = self.log_path.read_text(errors="replace")[-3000:]
                raise RuntimeError(f"the {self.side} client exited; {self.log_path}:\n{tail}")
            if line.startswith(prefix):
                return line.removeprefix(prefix)

    def register(self, job: dict, timeout: float) -> dict:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps(job) + "\n")
        self.process.stdin.flush()
        return json.loads(self.expect("RESULT ", timeout))


# --- Report -----------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between the closest ranks (numpy's default)."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summary(results: list[dict], count: int) -> dict:
    ready = [r for r in results if r["status"] == "READY"]
    seconds = [r["seconds"] for r in ready]
    creates = [r["create_call_s"] for r in ready if r.get("create_call_s") is not None]
    statuses = Counter(r["status"] for r in results)
    if len(results) < count:
        statuses["SKIPPED"] = count - len(results)
    return {
        "tried": len(results),
        "ready": len(ready),
        "p50_s": percentile(seconds, 0.5) if seconds else None,
        "p90_s": percentile(seconds, 0.9) if seconds else None,
        "max_s": max(seconds) if seconds else None,
        "mean_s": statistics.fmean(seconds) if seconds else None,
        "create_call_p50_s": percentile(creates, 0.5) if creates else None,
        "polls": sum(r["polls"] for r in results),
        "answered_ready": sum(r.get("returned_status") == "READY" for r in results),
        "registry_calls": statistics.fmean(r["registry_calls"] for r in results) if results else 0,
        "tracking_calls": statistics.fmean(r["tracking_calls"] for r in results) if results else 0,
        "statuses": dict(statuses),
    }


def _s(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def report(meta: dict, results: dict[str, list[dict]], summaries: dict[str, dict]) -> str:
    lines = [
        f"Run {meta['started']} → {meta['finished']} UTC ({meta['wall_s']:.0f} s); "
        f"{meta['machine']}; load (1/5/15 min) at start {meta['load_start']}, "
        f"at end {meta['load_end']}.",
        f"Client: mlflow {meta['client_mlflow']} (`.venv`), `mlflow.register_model"
        f'("runs:/<run>/model", name)` → `models:/<logged model id>`, '
        f"await_registration_for={meta['await_seconds']} s; one process per side, sides "
        "alternating, one warm-up registration each, not counted.",
        f"Model: RandomForest, {meta['trees']} trees, {meta['model_mib']:.1f} MiB of files per "
        f"logged model; {meta['mode']}.",
        f"Tracking server: mlflow server {meta['mlflow_version']} ({meta['mlflow_store']} store, "
        f"artifact proxy onto a local folder, {meta['mlflow_workers']} worker(s)); it is also "
        "the registry of the `mlflow server` side.",
        f"Registry: gunicorn --workers {meta['workers']} --threads {meta['threads']}, one "
        f"Celery worker (threads, 16), store {meta['store']}, "
        f"ARTIFACT_REGISTRATION_WAIT_SECONDS={meta['registration_wait']}.",
        "",
        "Seconds per registration over the READY ones. create call: seconds the "
        "`model-versions/create` request took (the server's own wait for the copy included). "
        "create answered READY: registrations whose create answered READY (no polling). "
        "polls: `model-versions/get` calls, all "
        "registrations together (the client sleeps 3 s between polls after the first). calls: "
        "HTTP requests per registration, registry API + tracking API.",
        "",
        "| Registry | READY / tried | p50 s | p90 s | max s | mean s | create call p50 s "
        "| create answered READY | polls | calls | final status |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for side in SIDES:
        if side not in summaries:
            continue
        s = summaries[side]
        status = ", ".join(f"{name} ×{n}" for name, n in sorted(s["statuses"].items()))
        lines.append(
            f"| {LABELS[side]} | {s['ready']} / {s['tried']} | {_s(s['p50_s'])} "
            f"| {_s(s['p90_s'])} | {_s(s['max_s'])} | {_s(s['mean_s'])} "
            f"| {_s(s['create_call_p50_s'])} | {s['answered_ready']} | {s['polls']} "
            f"| {s['registry_calls']:.1f} + {s['tracking_calls']:.1f} | {status or '–'} |"
        )
    if summaries.get("registry", {}).get("p50_s") and summaries.get("mlflow", {}).get("p50_s"):
        ratio = summaries["registry"]["p50_s"] / summaries["mlflow"]["p50_s"]
        lines += ["", f"p50 ratio, registry ÷ mlflow server: {ratio:.2f}"]
    failures = [
        (side, r) for side in SIDES for r in results.get(side, []) if r["status"] != "READY"
    ]
    if failures:
        lines += ["", "Failures (first of each kind):"]
        seen = set()
        for side, r in failures:
            text = r.get("error") or r.get("status_message") or ""
            key = (side, r["status"], text[:120])
            if key in seen:
                continue
            seen.add(key)
            lines.append(f"- {LABELS[side]}: {r['status']}: {text[:400]}")
    return "\n".join(lines)


# --- Main -------------------------------------------------------------------------------------


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=" ".join(__doc__.split("\n\n")[0].split()))
    parser.add_argument("--count", type=int, default=20, help="timed registrations per side")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="register one logged model per side into new versions (default: a freshly logged "
        "model per registration)",
    )
    parser.add_argument("--trees", type=int, default=70, help="RandomForest size (70: ~4 MB)")
    parser.add_argument("--await-seconds", type=int, default=60, help="await_registration_for")
    parser.add_argument("--max-failures", type=int, default=3, help="in a row, then stop a side")
    parser.add_argument("--sides", default="registry,mlflow")
    parser.add_argument("--store", choices=["file", "s3"], default="file")
    parser.add_argument("--mlflow-store", choices=["postgresql", "sqlite"], default="postgresql")
    parser.add_argument("--mlflow-workers", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--threads", type=int, default=4, help="gunicorn threads")
    parser.add_argument(
        "--redis-url",
        default=os.environ.get("BENCH_REGISTER_REDIS_URL", "redis://127.0.0.1:6379/6"),
        help="broker and cache (this one Redis database is flushed)",
    )
    parser.add_argument("--time-limit", type=int, default=600, help="hard ceiling, seconds")
    parser.add_argument("--keep", action="store_true", help="keep databases and temp folders")
    # The client children.
    parser.add_argument("--role", choices=["log", "register"], help=argparse.SUPPRESS)
    parser.add_argument("--tracking-uri", help=argparse.SUPPRESS)
    parser.add_argument("--registry-uri", help=argparse.SUPPRESS)
    parser.add_argument("--log-count", type=int, help=argparse.SUPPRESS)
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    if args.role == "log":
        role_log(args)
        return 0
    if args.role == "register":
        role_register(args)
        return 0

    def interrupted(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGINT, interrupted)
    signal.signal(signal.SIGTERM, interrupted)
    watchdog = threading.Timer(args.time_limit, lambda: os.kill(os.getpid(), signal.SIGTERM))
    watchdog.daemon = True
    watchdog.start()
    started = datetime.now(UTC)
    RESULTS.mkdir(exist_ok=True)
    logs = RESULTS / f"register-logs-{started:%Y%m%dT%H%M%S}"
    logs.mkdir()
    work = Path(tempfile.mkdtemp(prefix="benchreg-"))
    processes = Processes()
    try:
        return run(args, started, logs, work, processes)
    except KeyboardInterrupt as signalled:
        log(f"interrupted ({signalled}); stopping everything")
        return 130
    except RuntimeError as error:
        log(f"FAILED: {error}")
        return 1
    finally:
        watchdog.cancel()
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        processes.stop_all()
        if not args.keep:
            for database in DATABASES.values():
                try:
                    drop_database(database)
                except Exception as error:  # noqa: BLE001 - cleaning up, say and go on
                    log(f"could not drop {database}: {error}")
            try:
                flush_redis(args.redis_url)
            except Exception as error:  # noqa: BLE001
                log(f"could not flush {args.redis_url}: {error}")
            shutil.rmtree(work, ignore_errors=True)
        else:
            log(f"kept {work} and the databases {', '.join(DATABASES.values())}")
        log(f"logs in {logs}")


def run(
    args: argparse.Namespace, started: datetime, logs: Path, work: Path, processes: Processes
) -> int:
    sides = [side for side in SIDES if side in args.sides.split(",")]
    load_start = load_average()
    mlflow_python, mlflow_version = ensure_mlflow()
    log(f"mlflow server {mlflow_version}; load {load_start}; work folder {work}")

    # The tracking server takes long to start (migrations, workers importing MLflow): first.
    tracking = start_mlflow(processes, mlflow_python, args, work, logs)
    mlflow_process = processes.started[-1][1]
    registry = ""
    if "registry" in sides:
        flush_redis(args.redis_url)
        if args.store == "s3":
            s3 = start_moto(processes, logs)
            store = "s3://registry/models"
        else:
            (work / "store").mkdir()
            store = (work / "store").as_uri()
        env = registry_env(args, work, tracking, store)
        if args.store == "s3":
            env.update(
                AWS_ENDPOINT_URL_S3=s3,
                AWS_ACCESS_KEY_ID="testing",
                AWS_SECRET_ACCESS_KEY="testing",
                AWS_DEFAULT_REGION="us-east-1",
            )
        drop_database(DATABASES["registry"], create=True)
        token = prepare_registry(env, logs)
        registry, web, worker = start_registry(processes, env, args, logs)
        wait_for(
            "the registry",
            lambda: answers(f"{registry}/health"),
            web,
            logs / "registry-web.log",
            120,
        )
        worker_log = logs / "registry-worker.log"
        wait_for(
            "the Celery worker",
            lambda: " ready." in worker_log.read_text(errors="replace"),
            worker,
            worker_log,
            120,
        )
        log(f"registry up at {registry} (store {store})")
    wait_for(
        "mlflow server",
        lambda: answers(f"{tracking}/health"),
        mlflow_process,
        logs / "mlflow-server.log",
        300,
    )
    log(f"mlflow server up at {tracking}")

    # Log the models (untimed), with no credentials.
    per_side = 1 if args.reuse else args.count + 1
    log_count = per_side * len(sides)
    log(f"logging {log_count} models ({args.trees} trees each)")
    script = str(Path(__file__).resolve())
    done = subprocess.run(
        [sys.executable, script, "--role", "log", "--tracking-uri", tracking]
        + ["--log-count", str(log_count), "--trees", str(args.trees)],
        cwd=ROOT,
        env=client_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=(logs / "client-log.log").open("ab"),
        text=True,
        timeout=max(120, 10 * log_count),
        start_new_session=True,
    )
    line = next((x for x in done.stdout.splitlines() if x.startswith("LOGGED ")), None)
    if done.returncode or line is None:
        tail = (logs / "client-log.log").read_text(errors="replace")[-3000:]
        raise RuntimeError(f"logging the models failed; {logs / 'client-log.log'}:\n{tail}")
    logged = json.loads(line.removeprefix("LOGGED "))
    model_bytes = sum(
        f.stat().st_size
        for f in (work / "mlflow-artifacts").rglob("*")
        if f.is_file() and logged[0]["model_id"] in f.parts
    )
    log(f"logged {len(logged)} models of {model_bytes / 2**20:.1f} MiB each")

    # One long-lived client process per side.
    registrars = {}
    for side in sides:
        argv = [sys.executable, script, "--role", "register", "--tracking-uri", tracking]
        argv += ["--registry-uri", registry if side == "registry" else tracking]
        argv += ["--await-seconds", str(args.await_seconds)]
        env = client_env(token if side == "registry" else None)
        registrars[side] = Registrar(processes, side, argv, env, logs)
    for registrar in registrars.values():
        registrar.expect("READY_FOR_JOBS", 120)

    def job(side: str, i: int) -> dict:
        models = logged[sides.index(side) * per_side :][:per_side]
        return {**models[0 if args.reuse else i], "name": f"bench-register-{side}"}

    timeout = args.await_seconds + 180
    for side, registrar in registrars.items():
        warm = registrar.register(
            {**job(side, 0), "name": f"bench-register-{side}-warmup"}, timeout
        )
        log(f"warm-up {side:8} {warm['seconds']:6.2f} s  {warm['status']}")
    results: dict[str, list[dict]] = {side: [] for side in sides}
    failures_in_a_row = dict.fromkeys(sides, 0)
    for i in range(1, args.count + 1):
        order = sides if i % 2 else sides[::-1]
        for side in order:
            if failures_in_a_row[side] >= args.max_failures:
                continue
            result = registrars[side].register(job(side, i), timeout)
            results[side].append(result)
            failed = result["status"] != "READY"
            failures_in_a_row[side] = failures_in_a_row[side] + 1 if failed else 0
            log(
                f"{i:3} {side:8} {result['seconds']:6.2f} s  {result['status']:20} "
                f"create call {_s(result['create_call_s'])} s  polls {result['polls']}"
                + (f"  {(result.get('error') or result['status_message'])[:160]}" if failed else "")
            )
            if failures_in_a_row[side] == args.max_failures:
                log(f"{side}: {args.max_failures} failures in a row; skipping the rest of it")

    finished = datetime.now(UTC)
    client_version = subprocess.run(
        [sys.executable, "-c", "import mlflow; print(mlflow.__version__)"],
        capture_output=True,
        text=True,
        env=client_env(),
    ).stdout.strip()
    meminfo = Path("/proc/meminfo").read_text().split("\n")[0].split()
    meta = {
        "started": f"{started:%Y-%m-%d %H:%M:%S}",
        "finished": f"{finished:%H:%M:%S}",
        "wall_s": (finished - started).total_seconds(),
        "machine": f"{os.cpu_count()} CPUs, {int(meminfo[1]) // 1024 // 1024} GiB memory",
        "load_start": load_start,
        "load_end": load_average(),
        "client_mlflow": client_version,
        "mlflow_version": mlflow_version,
        "mlflow_store": args.mlflow_store,
        "mlflow_workers": args.mlflow_workers,
        "await_seconds": args.await_seconds,
        "trees": args.trees,
        "model_mib": model_bytes / 2**20,
        "mode": (
            f"{args.count} registrations per side of one logged model into new versions"
            if args.reuse
            else f"{args.count} registrations per side, each of a freshly logged model"
        ),
        "workers": args.workers,
        "threads": args.threads,
        "store": "moto S3" if args.store == "s3" else "local folder (file://)",
        "registration_wait": os.environ.get("ARTIFACT_REGISTRATION_WAIT_SECONDS", "(default)"),
        "count": args.count,
    }
    summaries = {side: summary(results[side], args.count) for side in sides}
    table = report(meta, results, summaries)
    print(table)
    stem = RESULTS / f"register-{started:%Y%m%dT%H%M%S}"
    stem.with_suffix(".md").write_text(table + "\n")
    stem.with_suffix(".json").write_text(
        json.dumps({"meta": meta, "summary": summaries, "results": results}, indent=2)
    )
    log(f"written {stem}.md and .json")
    return 0 if all(s["ready"] == args.count for s in summaries.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
