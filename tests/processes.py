"""Real servers in their own processes, for the tests that need them (docs/architecture.md,
"Decisions"): an S3-compatible server (moto), the registry's web server and Celery worker, and
private Redis and PostgreSQL servers that fault drills may stop and start without touching the
machine's own.

Every class starts its process in a new session (process group) and stops the whole group, so a
test leaves nothing running behind it.
"""

from __future__ import annotations

import mailbox
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import redis
from botocore.config import Config

from testing_support.network import free_port

ROOT = Path(__file__).resolve().parents[1]
# Redis database of the artifact tests' broker (the webhooks tests use 1).
BROKER_URL = os.environ.get("ARTIFACT_TEST_BROKER_URL", "redis://127.0.0.1:6379/3")
STORE_BUCKET = "registry"
SOURCE_BUCKET = "source"
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def wait_for(predicate, timeout: float, what: str, interval: float = 0.2, explain=None) -> None:
    """Poll ``predicate`` until it holds. On a timeout, ``explain()`` (if given) says what was
    seen instead: a drill that fails once on a loaded machine must leave enough to diagnose."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    seen = f"\n{explain()}" if explain is not None else ""
    raise AssertionError(f"timed out after {timeout} s waiting for {what}{seen}")


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def healthy(base_url: str) -> bool:
    """Whether a server answers 200 at ``<base_url>/health`` (the registry and mlflow server)."""
    try:
        with urllib.request.urlopen(f"{base_url}/health", timeout=2) as response:  # noqa: S310
            return response.status == 200
    except OSError:
        return False


def stop_process(process: subprocess.Popen, sig: int = signal.SIGTERM) -> None:
    """Signal the process's whole group and wait for it; SIGKILL if it lingers."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, sig)
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        except ProcessLookupError:
            process.wait(timeout=10)


class SmtpServer:
    """A real SMTP server (aiosmtpd) that files every message it receives in a Maildir."""

    def __init__(self, directory: Path) -> None:
        self.port = free_port()
        self.maildir = directory / "maildir"
        self.log = directory / "smtp.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(  # noqa: S603
                [sys.executable, "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{self.port}",
                 "-c", "aiosmtpd.handlers.Mailbox", str(self.maildir)],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        wait_for(lambda: listening(self.port), 20, "the SMTP server", explain=self.log.read_text)

    def messages(self) -> list[Any]:
        """The messages received so far (``email.message.Message``), oldest first."""
        if not self.maildir.exists():
            return []
        box = mailbox.Maildir(self.maildir, create=False)
        return sorted(box, key=lambda message: message.get_date())

    def stop(self) -> None:
        stop_process(self.process)


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
        wait_for(lambda: listening(self.port), 30, "the S3 server")

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, signal.SIGKILL)
            wait_for(lambda: not listening(self.port), 10, "the S3 server to stop")

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


MLFLOW_VENV = ROOT / ".venv-mlflow"  # installed by `make test` from requirements-mlflow.lock


@dataclass
class MlflowServer:
    """``mlflow server`` (the pinned version in ``.venv-mlflow``) as the tracking server the
    registry registers from: a SQLite store (or ``backend_store_uri``, e.g. PostgreSQL), and
    either its default artifact proxy (files under ``mlflow-artifacts:/``, served by the server
    itself) or, with ``s3_root``, an ``s3://`` artifact root on the test S3 server that clients
    write to directly."""

    workdir: Path
    s3_root: str = ""
    moto: MotoServer | None = None
    # Another backend store than the SQLite file, e.g. postgresql://... (the import tests).
    backend_store_uri: str = ""
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def s3_env(self) -> dict[str, str]:
        """What a client needs to write to the ``s3://`` artifact root (none for the proxy)."""
        if not self.s3_root:
            return {}
        assert self.moto is not None
        return {**CREDENTIALS, "MLFLOW_S3_ENDPOINT_URL": self.moto.url}

    def start(self) -> None:
        executable = MLFLOW_VENV / "bin" / "mlflow"
        assert executable.exists(), "mlflow server is missing: run `make .venv-mlflow/.installed`"
        self.workdir.mkdir(parents=True, exist_ok=True)
        command = [
            str(executable),
            "server",
            "--backend-store-uri",
            self.backend_store_uri or f"sqlite:///{self.workdir / 'mlflow.db'}",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            "1",
        ]
        if self.s3_root:
            command += ["--default-artifact-root", self.s3_root, "--no-serve-artifacts"]
        else:
            command += ["--artifacts-destination", str(self.workdir / "artifacts")]
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("AWS_", "MLFLOW_", "DJANGO_", "PYTHON"))
        }
        env.update(self.s3_env())
        env["MLFLOW_DISABLE_TELEMETRY"] = "true"
        log = (self.workdir / "mlflow.log").open("ab")
        self.process = subprocess.Popen(  # noqa: S603
            command,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_for(self._healthy, 120, "mlflow server")

    def _healthy(self) -> bool:
        assert self.process is not None
        assert self.process.poll() is None, self.log()
        return healthy(self.url)

    def log(self) -> str:
        path = self.workdir / "mlflow.log"
        return path.read_text(errors="replace")[-6000:] if path.exists() else ""

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)


WORKER_COMMAND = [
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
]


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
    workers_started: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def broker_url(self) -> str:
        return self.extra_env.get("CELERY_BROKER_URL", BROKER_URL)

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
                # create answers at once: the drills and the retry tests watch a copy while it
                # runs (its first failed attempt, its parts in the store). The tests of the
                # wait itself set it (test_tracking_server.py).
                "ARTIFACT_REGISTRATION_WAIT_SECONDS": "0",
                "PYTHONUNBUFFERED": "1",
            }
        )
        env.update(self.extra_env)
        return env

    def start(self) -> None:
        redis.Redis.from_url(self.broker_url).flushdb()
        self.start_worker()
        web_log = (self.workdir / "web.log").open("ab")
        self.web = subprocess.Popen(  # noqa: S603
            [sys.executable, "manage.py", "runserver", f"127.0.0.1:{self.port}", "--noreload"],
            cwd=ROOT,
            env=self.env(),
            stdout=web_log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        wait_for(self._healthy, 60, "the registry's web server")
        self.wait_worker_ready()

    def start_worker(self) -> None:
        """Start a worker (again, after :meth:`kill_worker`); its log is ``worker-<n>.log``."""
        self.workers_started += 1
        log = (self.workdir / f"worker-{self.workers_started}.log").open("ab")
        self.worker = subprocess.Popen(  # noqa: S603
            WORKER_COMMAND,
            cwd=ROOT,
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def supervise_worker(self) -> bool:
        """Start the worker again if it has exited or logged that it is stopping on an error, as
        the deployment's supervisor does (docker-compose.yml: ``restart: unless-stopped``). True
        if it had to."""
        assert self.worker is not None
        if self.worker.poll() is None:
            if "Unrecoverable error" not in self.worker_log():
                return False
            # Stopping but not gone: a liveness check would kill it.
            self.kill_worker()
        self.start_worker()
        return True

    def worker_log(self) -> str:
        path = self.workdir / f"worker-{self.workers_started}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def wait_worker_ready(self) -> None:
        worker = self.worker
        assert worker is not None

        def ready() -> bool:
            assert worker.poll() is None, self.worker_log()
            return " ready." in self.worker_log()

        wait_for(ready, 60, "the Celery worker")

    def kill_worker(self) -> None:
        """SIGKILL the worker's whole process group: no shutdown, no acknowledgement."""
        assert self.worker is not None
        os.killpg(self.worker.pid, signal.SIGKILL)
        self.worker.wait(timeout=10)

    def _healthy(self) -> bool:
        assert self.web is not None
        assert self.web.poll() is None, (self.workdir / "web.log").read_text(errors="replace")
        return healthy(self.url)

    def stop(self) -> None:
        for process in (self.web, self.worker):
            if process is not None:
                stop_process(process)

    def logs(self) -> str:
        names = ["web.log"] + [f"worker-{n}.log" for n in range(1, self.workers_started + 1)]
        return "\n".join(
            f"--- {name} ---\n" + (self.workdir / name).read_text(errors="replace")[-6000:]
            for name in names
            if (self.workdir / name).exists()
        )


@dataclass
class PrivateRedis:
    """A ``redis-server`` of the test's own, on a free port, that it may stop and start
    (nothing persisted: a restart starts empty, as a crashed Redis without AOF does)."""

    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @staticmethod
    def available() -> bool:
        return shutil.which("redis-server") is not None

    def start(self) -> None:
        self.process = subprocess.Popen(  # noqa: S603
            [
                shutil.which("redis-server") or "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_for(lambda: listening(self.port), 20, "the private Redis")

    def stop(self) -> None:
        """Kill it (SIGKILL: a crash, not a shutdown) and wait until the port is closed."""
        if self.process is not None:
            stop_process(self.process, signal.SIGKILL)
            wait_for(lambda: not listening(self.port), 10, "the private Redis to stop")


def postgres_bindir() -> Path | None:
    """The folder of PostgreSQL's server programs (``initdb``, ``pg_ctl``), if installed."""
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    candidates = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"),
        key=lambda path: int(path.parts[-3]) if path.parts[-3].isdigit() else 0,
    )
    return candidates[-1].parent if candidates else None


@dataclass
class PrivatePostgres:
    """A PostgreSQL cluster of the test's own (``initdb`` in a temporary folder, a free port,
    trust authentication on 127.0.0.1), which the test may stop and start. Run as the
    ``postgres`` system user when the test runs as root (PostgreSQL refuses root)."""

    bindir: Path
    port: int = field(default_factory=free_port)
    folder: Path | None = None

    @property
    def data(self) -> Path:
        assert self.folder is not None
        return self.folder / "data"

    def url(self, database: str = "registry") -> str:
        return f"postgres://{self._user()}@127.0.0.1:{self.port}/{database}"

    @staticmethod
    def _as_root() -> bool:
        return os.geteuid() == 0

    def _user(self) -> str:
        return "postgres" if self._as_root() else os.environ.get("USER", "postgres")

    def _run(self, *args: str, timeout: float = 60) -> None:
        command = [str(self.bindir / args[0]), *args[1:]]
        if self._as_root():
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(  # noqa: S603
            command,
            check=True,
            timeout=timeout,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )

    def init(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="registry-drill-pg-"))
        if self._as_root():
            shutil.chown(self.folder, "postgres", "postgres")
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", self._user(), "-E", "UTF8")
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(
                f"\nport = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.folder}'\nfsync = off\n"
                "max_connections = 60\n"
            )

    def start(self) -> None:
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.folder / "server.log"), "-w", "start"
        )
        wait_for(lambda: listening(self.port), 30, "the private PostgreSQL")

    def stop(self, mode: str = "fast") -> None:
        """``fast``: every session is ended and the server stops (what a restart by an
        operator or a failover does to the clients)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")
        wait_for(lambda: not listening(self.port), 30, "the private PostgreSQL to stop")

    def create_database(self, name: str) -> None:
        import psycopg2

        conn = psycopg2.connect(self.url("postgres"))
        conn.autocommit = True
        with conn.cursor() as cursor:
            cursor.execute(f'CREATE DATABASE "{name}"')
        conn.close()

    def destroy(self) -> None:
        if self.folder is None:
            return
        if (self.data / "postmaster.pid").exists():
            try:
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
            except subprocess.CalledProcessError:
                pass
        shutil.rmtree(self.folder, ignore_errors=True)
        self.folder = None
