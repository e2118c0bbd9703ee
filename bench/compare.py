"""Side by side: this registry and ``mlflow server``, same data, same workload, same machine.

    make bench                     # 1,000 models x 20 versions, every operation, then the mix
    make bench ARGS="--scale"      # 10,000 models x 100 versions: searches and latest versions

What it does, from a fresh clone (no input asked):

1. Installs what is missing: ``wrk`` (Debian's package, as root). MLflow and psycopg2-binary
   come from the Makefile's virtualenv ``.venv-mlflow`` (pinned by ``requirements-mlflow.lock``),
   the project's own venv from the Makefile too.
2. Creates two databases on one PostgreSQL cluster (``BENCH_PG_URL``, default
   ``postgres://postgres@127.0.0.1:5432``): ``bench_registry`` and ``bench_mlflow``. MLflow's
   schema is made by MLflow itself, this registry's by its migrations. Both get the same data by
   bulk SQL (``INSERT ... SELECT generate_series``): models with two tags each, versions with two
   tags each, the two highest versions in Production and Staging, every fourth version
   Archived, aliases ``champion`` and ``challenger``. Seeded databases are reused when nothing
   wrote to them since.
3. Starts both servers on 127.0.0.1, each on a free port: this registry as production runs it
   (gunicorn with the Dockerfile's flags, ``DJANGO_DEBUG=false``, Redis as broker and cache,
   calls authenticated with an API token; ``ARTIFACT_MODE=reference``, so a new version is
   READY at once as in MLflow, which copies nothing) and ``mlflow server`` with its defaults
   (no auth).
4. Drives each operation with ``wrk`` (N connections, one thread, a fixed time; requests vary
   through a generated Lua script: random model, version, tag value, page), alternating the
   servers operation by operation, then the mix (80 % reads), then the floor: a trivial JSON
   view with one SQL query on this service's own stack (``bench/floor_settings.py``).
5. Prints a markdown table (requests/s, p50, p99 per server and their ratios, non-2xx counts)
   and writes it with the raw figures to ``bench/results/`` (git-ignored).

Everything listens on loopback only; every load run is bounded by ``--duration``.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import psycopg2
from cryptography.fernet import Fernet

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository's testing_support
from testing_support.network import free_port

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
MLFLOW_VENV = ROOT / ".venv-mlflow"
RESULTS = BENCH / "results"
PG_URL = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432")
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/5")
MODEL = "bench-model-%05d"

READS = [
    "get_version",
    "get_model",
    "latest",
    "alias",
    "search_name",
    "search_tag",
    "search_models",
]
WRITES = ["create_version", "set_tag", "transition"]
SCALE_OPS = ["latest", "search_name", "search_tag"]
LABELS = {
    "get_version": "get model version",
    "get_model": "get registered model",
    "latest": "get latest versions",
    "alias": "get version by alias",
    "search_name": "search versions by name",
    "search_tag": "search versions by tag",
    "search_models": "search registered models (pages of 50)",
    "create_version": "create model version",
    "set_tag": "set version tag",
    "transition": "transition stage",
    "mix": "mix (80 % reads)",
    "floor": "floor: trivial JSON view, 1 query",
}
SINGLE_OBJECT_READS = ["get_version", "get_model", "latest", "alias"]


def log(message: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


# --- Tools ------------------------------------------------------------------------------------


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0:
        sys.exit("wrk is missing: install it (Debian: apt-get install wrk) or run as root.")
    log("installing wrk (apt-get)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    command = ["apt-get", "install", "-y", "-q", "wrk"]
    if subprocess.run(command, env=env, stdin=subprocess.DEVNULL).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, stdin=subprocess.DEVNULL, check=True)
        subprocess.run(command, env=env, stdin=subprocess.DEVNULL, check=True)
    return shutil.which("wrk") or sys.exit("wrk did not install")


def ensure_mlflow() -> tuple[Path, str]:
    """MLflow in its own venv (its dependencies must not meet the project's): the Makefile's
    ``.venv-mlflow``, pinned by ``requirements-mlflow.lock`` (``make bench`` installs it)."""
    python = MLFLOW_VENV / "bin" / "python"
    marker = MLFLOW_VENV / ".installed"
    if not marker.exists():
        sys.exit(
            f"MLflow's virtualenv {MLFLOW_VENV.relative_to(ROOT)} is missing: run "
            "`make .venv-mlflow/.installed` (or `make bench`, which installs it)."
        )
    version = subprocess.run(
        [str(python), "-c", "import mlflow; print(mlflow.__version__)"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    return python, version


# --- Databases and seed -----------------------------------------------------------------------


def pg(database: str = "postgres") -> psycopg2.extensions.connection:
    connection = psycopg2.connect(f"{PG_URL}/{database}")
    connection.autocommit = True
    return connection


def seed_marker(database: str) -> dict | None:
    try:
        with pg(database) as connection, connection.cursor() as cursor:
            cursor.execute("SELECT spec FROM bench_seed")
            row = cursor.fetchone()
            return json.loads(row[0]) if row else None
    except psycopg2.Error:
        return None


def write_marker(database: str, spec: dict) -> None:
    connection = pg(database)
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE IF NOT EXISTS bench_seed (spec text NOT NULL)")
        cursor.execute("DELETE FROM bench_seed")
        cursor.execute("INSERT INTO bench_seed VALUES (%s)", [json.dumps(spec)])
    connection.close()


def recreate_database(name: str) -> None:
    connection = pg()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", [name]
        )
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')
        cursor.execute(f'CREATE DATABASE "{name}"')
    connection.close()


# The same data for both, expressed once: model i (1..M), version j (1..V).
def _stage(j: str, versions: int) -> str:
    return (
        f"CASE WHEN {j} = {versions} THEN 'Production' WHEN {j} = {versions - 1} THEN 'Staging' "
        f"WHEN {j} % 4 = 0 THEN 'Archived' ELSE 'None' END"
    )


def _name(i: str) -> str:
    return f"'bench-model-' || lpad({i}::text, 5, '0')"


SEED_EPOCH_MS = 1_767_225_600_000  # 2026-01-01


def seed_mlflow(database: str, models: int, versions: int) -> None:
    connection = pg(database)
    t = f"{SEED_EPOCH_MS}"
    statements = [
        "TRUNCATE registered_model_aliases, model_version_tags, registered_model_tags, "
        "model_versions, registered_models CASCADE",
        f"""INSERT INTO registered_models (name, creation_time, last_updated_time, description)
            SELECT {_name("i")}, {t} + i, {t} + i, 'Seeded model ' || i
            FROM generate_series(1, {models}) i""",
        f"""INSERT INTO registered_model_tags (key, value, name)
            SELECT 'team', 'team-' || (i % 50), {_name("i")} FROM generate_series(1, {models}) i
            UNION ALL
            SELECT 'domain', 'domain-' || (i % 7), {_name("i")}
            FROM generate_series(1, {models}) i""",
        f"""INSERT INTO model_versions (name, version, creation_time, last_updated_time,
                description, user_id, current_stage, source, run_id, status, status_message,
                run_link)
            SELECT {_name("i")}, j, {t} + i * 1000 + j, {t} + i * 1000 + j, '', 'bench',
                {_stage("j", versions)},
                's3://bench-source/' || {_name("i")} || '/' || j, md5(i || '-' || j), 'READY',
                '', ''
            FROM generate_series(1, {models}) i, generate_series(1, {versions}) j""",
        f"""INSERT INTO model_version_tags (key, value, name, version)
            SELECT 'dataset', 'ds-' || lpad(i::text, 5, '0'), {_name("i")}, j
            FROM generate_series(1, {models}) i, generate_series(1, {versions}) j
            UNION ALL
            SELECT 'quality', CASE WHEN j % 2 = 0 THEN 'passed' ELSE 'pending' END,
                {_name("i")}, j
            FROM generate_series(1, {models}) i, generate_series(1, {versions}) j""",
        f"""INSERT INTO registered_model_aliases (alias, version, name)
            SELECT 'champion', {versions}, {_name("i")} FROM generate_series(1, {models}) i
            UNION ALL
            SELECT 'challenger', {versions - 1}, {_name("i")}
            FROM generate_series(1, {models}) i""",
        "ANALYZE",
    ]
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)
    connection.close()


def seed_registry(database: str, models: int, versions: int, user_id: int) -> None:
    """Bulk rows that keep the registry's invariants: ``last_version_number`` is the highest
    version, every version READY (nothing to copy), the creator's CAN_MANAGE grant per model.
    Run on a freshly migrated database, so model i gets id i."""
    connection = pg(database)
    t = "timestamptz '2026-01-01 00:00:00+00'"
    statements = [
        f"""INSERT INTO registry_registeredmodel (id, code, name, description, created_at,
                updated_at, last_version_number, created_by_id)
            OVERRIDING SYSTEM VALUE
            SELECT i, gen_random_uuid(), {_name("i")}, 'Seeded model ' || i,
                {t} + i * interval '1 ms', {t} + i * interval '1 ms', {versions}, {user_id}
            FROM generate_series(1, {models}) i""",
        f"""SELECT setval(pg_get_serial_sequence('registry_registeredmodel', 'id'), {models})""",
        f"""INSERT INTO accounts_registeredmodelgrant (level, created_at, registered_model_id,
                user_id)
            SELECT 'CAN_MANAGE', {t}, i, {user_id} FROM generate_series(1, {models}) i""",
        f"""INSERT INTO registry_registeredmodeltag (key, value, registered_model_id)
            SELECT 'team', 'team-' || (i % 50), i FROM generate_series(1, {models}) i
            UNION ALL
            SELECT 'domain', 'domain-' || (i % 7), i FROM generate_series(1, {models}) i""",
        f"""INSERT INTO registry_modelversion (id, code, version, current_stage, description,
                source, run_id, run_link, status, status_message, created_at, updated_at,
                created_by_id, registered_model_id, artifact_digest, model_id,
                storage_location)
            OVERRIDING SYSTEM VALUE
            SELECT (i - 1) * {versions} + j, gen_random_uuid(), j, {_stage("j", versions)}, '',
                's3://bench-source/' || {_name("i")} || '/' || j, md5(i || '-' || j), '',
                'READY', '', {t} + (i * 1000 + j) * interval '1 ms',
                {t} + (i * 1000 + j) * interval '1 ms', {user_id}, i, '', '', ''
            FROM generate_series(1, {models}) i, generate_series(1, {versions}) j""",
        f"""SELECT setval(pg_get_serial_sequence('registry_modelversion', 'id'),
                {models * versions})""",
        f"""INSERT INTO registry_modelversiontag (key, value, model_version_id)
            SELECT 'dataset', 'ds-' || lpad(i::text, 5, '0'), (i - 1) * {versions} + j
            FROM generate_series(1, {models}) i, generate_series(1, {versions}) j
            UNION ALL
            SELECT 'quality', CASE WHEN j % 2 = 0 THEN 'passed' ELSE 'pending' END,
                (i - 1) * {versions} + j
            FROM generate_series(1, {models}) i, generate_series(1, {versions}) j""",
        f"""INSERT INTO registry_registeredmodelalias (alias, model_version_id,
                registered_model_id)
            SELECT 'champion', (i - 1) * {versions} + {versions}, i
            FROM generate_series(1, {models}) i
            UNION ALL
            SELECT 'challenger', (i - 1) * {versions} + {versions - 1}, i
            FROM generate_series(1, {models}) i""",
        "ANALYZE",
    ]
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)
    connection.close()


# --- Servers ----------------------------------------------------------------------------------


@dataclass
class Server:
    name: str
    base: str
    process: subprocess.Popen
    database: str
    auth: str = ""
    log_path: Path | None = None
    pids: list[int] = field(default_factory=list)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def wait_ready(url: str, process: subprocess.Popen, log_path: Path, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(
                f"server exited ({process.returncode}); see {log_path}:\n"
                + log_path.read_text()[-3000:]
            )
        try:
            with urllib.request.urlopen(url, timeout=2) as answer:
                if answer.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    sys.exit(f"{url} not ready after {timeout} s; see {log_path}")


def registry_env(database: str) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "floor_settings",
        "PYTHONPATH": f"{BENCH}{os.pathsep}{ROOT}",
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        # Plain HTTP on loopback: nothing to redirect to.
        "DJANGO_SECURE_SSL_REDIRECT": "false",
        "DATABASE_URL": f"{PG_URL}/{database}",
        "CELERY_BROKER_URL": REDIS_URL,
        "DJANGO_CACHE_URL": REDIS_URL,
        "REGISTRY_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "DJANGO_STATIC_ROOT": str(BENCH / "results" / "static"),
        "DJANGO_LOG_LEVEL": "WARNING",
        # Like for like with mlflow server, which records a version and copies nothing: a new
        # version is READY at once. In the default copy mode, with no worker running here,
        # model-versions/create would wait ARTIFACT_REGISTRATION_WAIT_SECONDS (2 s) for a copy
        # that never comes; bench/artifact_copy.py measures the copy itself.
        "ARTIFACT_MODE": "reference",
    }


def prepare_registry(database: str, env: dict[str, str]) -> str:
    """Migrate, create the bench user, return a new API token (printed by create_token)."""
    python = sys.executable
    subprocess.run(
        [python, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True
    )
    # With debug off the web server refuses to start without collectstatic's manifest.
    subprocess.run(
        [python, "manage.py", "collectstatic", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=env,
        check=True,
    )
    script = (
        "from django.contrib.auth import get_user_model;"
        "u, _ = get_user_model().objects.get_or_create(username='bench');"
        "print(u.pk)"
    )
    out = subprocess.run(
        [python, "manage.py", "shell", "-c", script],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return out.strip().splitlines()[-1]


def create_token(env: dict[str, str]) -> str:
    out = subprocess.run(
        [sys.executable, "manage.py", "create_token", "bench", "--name", "bench"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return out.strip().splitlines()[-1]


def gunicorn_command(port: int, workers: int, threads: int, keep_alive: int) -> list[str]:
    # The Dockerfile's CMD, bound to loopback.
    return [
        str(Path(sys.executable).parent / "gunicorn"),
        "config.wsgi:application",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--threads",
        str(threads),
        "--keep-alive",
        str(keep_alive),
        "--access-logfile",
        "-",
    ]


def start_registry(
    env: dict[str, str], token: str, workers: int, threads: int, keep_alive: int, logs: Path
) -> Server:
    port = free_port()
    log_path = logs / "registry.log"
    process = subprocess.Popen(
        gunicorn_command(port, workers, threads, keep_alive),
        cwd=ROOT,
        env=env,
        stdout=log_path.open("w"),
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    wait_ready(f"{base}/health", process, log_path)
    return Server(
        "registry",
        base,
        process,
        env["DATABASE_URL"].rsplit("/", 1)[1],
        auth=f"Bearer {token}",
        log_path=log_path,
    )


def start_mlflow(python: Path, database: str, logs: Path, workers: int | None) -> Server:
    uri = f"{PG_URL.replace('postgres://', 'postgresql+psycopg2://')}/{database}"
    port = free_port()
    artifacts = Path(tempfile.mkdtemp(prefix="bench-mlflow-artifacts-"))
    log_path = logs / "mlflow.log"
    command = [
        str(python.parent / "mlflow"),
        "server",
        "--backend-store-uri",
        uri,
        "--default-artifact-root",
        artifacts.as_uri(),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    if workers:
        command += ["--workers", str(workers)]
    process = subprocess.Popen(
        command,
        env={**os.environ, "PYTHONPATH": ""},
        stdout=log_path.open("w"),
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    return Server("mlflow", base, process, database, log_path=log_path)


def init_mlflow_schema(python: Path, database: str) -> None:
    """MLflow creates its own tables (tracking and registry share the database)."""
    uri = f"{PG_URL.replace('postgres://', 'postgresql+psycopg2://')}/{database}"
    code = (
        "import sys\n"
        "from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore as T\n"
        "from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore as R\n"
        "T(sys.argv[1], sys.argv[2]); R(sys.argv[1])\n"
    )
    subprocess.run(
        [str(python), "-c", code, uri, tempfile.mkdtemp(prefix="bench-mlflow-init-")],
        check=True,
        env={**os.environ, "PYTHONPATH": ""},
        stdin=subprocess.DEVNULL,
    )


# --- Workload ---------------------------------------------------------------------------------

LUA = r"""
local M, V = __MODELS__, __VERSIONS__
local auth = "__AUTH__"
local tokens = { __TOKENS__ }
local ops = { __OPS__ }
local stages = { "Staging", "Production", "Archived", "None" }
local P = "/api/2.0/mlflow/"

local function model(i) return string.format("bench-model-%05d", i) end
local function esc(s)
  return (s:gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", string.byte(c)) end))
end

local b = {}
b.get_version = function()
  return "GET", P .. "model-versions/get?name=" .. model(math.random(M))
    .. "&version=" .. math.random(V)
end
b.get_model = function()
  return "GET", P .. "registered-models/get?name=" .. model(math.random(M))
end
b.latest = function()
  return "POST", P .. "registered-models/get-latest-versions",
    '{"name": "' .. model(math.random(M)) .. '"}'
end
b.alias = function()
  return "GET", P .. "registered-models/alias?name=" .. model(math.random(M)) .. "&alias=champion"
end
b.search_name = function()
  return "GET", P .. "model-versions/search?filter="
    .. esc("name='" .. model(math.random(M)) .. "'")
end
b.search_tag = function()
  return "GET", P .. "model-versions/search?filter="
    .. esc(string.format("tags.dataset='ds-%05d'", math.random(M)))
end
b.search_models = function()
  local t = tokens[math.random(#tokens)]
  local q = "max_results=50"
  if t ~= "" then q = q .. "&page_token=" .. esc(t) end
  return "GET", P .. "registered-models/search?" .. q
end
b.create_version = function()
  local m = model(math.random(M))
  return "POST", P .. "model-versions/create",
    '{"name": "' .. m .. '", "source": "s3://bench-source/' .. m .. '/new"}'
end
b.set_tag = function()
  return "POST", P .. "model-versions/set-tag", string.format(
    '{"name": "%s", "version": "%d", "key": "note", "value": "n-%d"}',
    model(math.random(M)), math.random(V), math.random(1000000))
end
b.transition = function()
  return "POST", P .. "model-versions/transition-stage", string.format(
    '{"name": "%s", "version": "%d", "stage": "%s", "archive_existing_versions": false}',
    model(math.random(M)), math.random(V), stages[math.random(#stages)])
end
b.floor = function() return "GET", "/bench/floor" end

local total = 0
for _, o in ipairs(ops) do total = total + o[2] end

local threads = {}
function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

bad = 0
first_bad = ""
function init(args)
  math.randomseed(os.time() * 100 + (id or 0))
end

function request()
  local r = math.random() * total
  local name = ops[#ops][1]
  for _, o in ipairs(ops) do
    if r < o[2] then name = o[1] break end
    r = r - o[2]
  end
  local method, path, body = b[name]()
  local headers = {}
  if auth ~= "" then headers["Authorization"] = auth end
  if body then headers["Content-Type"] = "application/json" end
  return wrk.format(method, path, headers, body)
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    bad = bad + 1
    if first_bad == "" then first_bad = status .. " " .. string.sub(body or "", 1, 300) end
  end
end

function done(summary, latency, requests)
  local nbad, first = 0, ""
  for _, t in ipairs(threads) do
    nbad = nbad + t:get("bad")
    if first == "" then first = t:get("first_bad") end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "mean_us": %f, '
      .. '"socket_errors": %d, "non2xx": %d, "first_bad": "%s"}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    latency.mean, e.connect + e.read + e.write + e.timeout, nbad,
    first:gsub('[%c"\\]', " ")))
end
"""


def lua_script(
    ops: dict[str, float], models: int, versions: int, auth: str, tokens: list[str]
) -> str:
    return (
        LUA.replace("__MODELS__", str(models))
        .replace("__VERSIONS__", str(versions))
        .replace("__AUTH__", auth)
        .replace("__TOKENS__", ", ".join(json.dumps(t) for t in tokens))
        .replace("__OPS__", ", ".join(f'{{"{k}", {v}}}' for k, v in ops.items()))
    )


def page_tokens(server: Server, pages: int) -> list[str]:
    """The first ``pages`` page tokens of registered-models/search (50 a page), as the server
    itself issues them: tokens are opaque."""
    tokens = [""]
    token = ""
    while len(tokens) < pages:
        query = {"max_results": "50", **({"page_token": token} if token else {})}
        request = urllib.request.Request(
            f"{server.base}/api/2.0/mlflow/registered-models/search?"
            + urllib.parse.urlencode(query),
            headers={"Authorization": server.auth} if server.auth else {},
        )
        for attempt in range(4):
            try:
                with urllib.request.urlopen(request, timeout=120) as answer:
                    token = json.load(answer).get("next_page_token", "")
                break
            except (urllib.error.URLError, OSError) as exc:
                # mlflow server's supervisor restarts a worker that misses its health ping
                # on a busy machine, dropping the request: ask again.
                log(f"{server.name}: page {len(tokens) + 1} failed ({exc}); retrying")
                if attempt == 3:
                    raise
                time.sleep(2)
        if not token:
            break
        tokens.append(token)
    return tokens


@dataclass
class Result:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    non2xx: int
    socket_errors: int
    first_bad: str
    load: str
    app_cpu_ms: float = 0.0  # the server's processes, per request
    db_cpu_ms: float = 0.0  # its PostgreSQL backends, per request

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


_TICK = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> tuple[int, float] | None:
    """(process group, user + system CPU seconds) of a process, from /proc."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[2]), (int(fields[11]) + int(fields[12])) / _TICK


def group_cpu(pgid: int) -> float:
    """CPU seconds used so far by the live processes of a process group (a server's tree:
    it is started in a session of its own)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            found = _cpu_seconds(int(entry.name))
            if found and found[0] == pgid:
                total += found[1]
    return total


def database_cpu(database: str) -> float:
    """CPU seconds used so far by the PostgreSQL backends connected to ``database``."""
    with pg() as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            [database],
        )
        pids = [row[0] for row in cursor.fetchall()]
    connection.close()
    return sum(found[1] for pid in pids if (found := _cpu_seconds(pid)))


def run_wrk(
    wrk: str, server: Server, script: str, clients: int, duration: float, workdir: Path
) -> Result:
    path = workdir / f"{server.name}-{abs(hash(script))}.lua"
    path.write_text(script)
    command = [
        wrk,
        "-t1",
        f"-c{clients}",
        f"-d{duration}s",
        "--timeout",
        "30s",
        "-s",
        str(path),
        server.base,
    ]
    app_before, db_before = group_cpu(server.process.pid), database_cpu(server.database)
    out = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    app_after, db_after = group_cpu(server.process.pid), database_cpu(server.database)
    line = next((x for x in out.stdout.splitlines() if x.startswith("BENCH_RESULT ")), None)
    if line is None:
        sys.exit(f"wrk gave no result:\n{out.stdout}\n{out.stderr}")
    data = json.loads(line.removeprefix("BENCH_RESULT "))
    return Result(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        non2xx=data["non2xx"],
        socket_errors=data["socket_errors"],
        first_bad=data["first_bad"],
        load=load_average(),
        app_cpu_ms=(app_after - app_before) * 1000 / max(data["requests"], 1),
        db_cpu_ms=(db_after - db_before) * 1000 / max(data["requests"], 1),
    )


# --- Report -----------------------------------------------------------------------------------


def label(key: str) -> str:
    op, _, clients = key.partition("@")
    return LABELS[op] + (f", {clients} client" if clients else "")


def _cell(result: Result | None) -> str:
    if result is None:
        return "– | – | – | –"
    return (
        f"{result.rps:,.0f} | {result.p50_ms:.0f} | {result.p99_ms:.0f} | {result.app_cpu_ms:.1f}"
    )


def report(results: dict[str, dict[str, Result]], meta: dict, aims: list[str]) -> str:
    lines = [
        f"Run {meta['started']} → {meta['finished']} UTC; {meta['machine']}",
        f"Data: {meta['models']:,} models × {meta['versions']} versions "
        f"({meta['models'] * meta['versions']:,} versions); {meta['clients']} concurrent clients, "
        f"{meta['duration']} s per operation per server; wrk, one thread, keep-alive.",
        f"Registry: gunicorn {meta['gunicorn']}; MLflow {meta['mlflow_version']}: "
        f"`mlflow server` defaults ({meta['mlflow_server']}).",
        f"Load average (1/5/15 min) at start {meta['load_start']}, at end {meta['load_end']}.",
        "",
        "CPU ms/req: CPU time of the server's own processes (gunicorn or uvicorn workers) "
        "during the run ÷ requests answered; it moves less with the machine's load than req/s. "
        "PostgreSQL's share is not in it (its backends come and go with connection lifetimes). "
        "×: registry req/s ÷ MLflow's; p99 ÷ and CPU ÷: registry's ÷ MLflow's.",
        "",
        "| Operation | Registry req/s | p50 ms | p99 ms | CPU ms/req | MLflow req/s | p50 ms "
        "| p99 ms | CPU ms/req | req/s × | p99 ÷ | CPU ÷ | non-2xx (reg / mlflow) | load after |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for op, by_server in results.items():
        ours, theirs = by_server.get("registry"), by_server.get("mlflow")
        ratio = f"{ours.rps / theirs.rps:.1f}" if ours and theirs and theirs.rps else "–"
        p99 = f"{ours.p99_ms / theirs.p99_ms:.2f}" if ours and theirs and theirs.p99_ms else "–"
        cpu = (
            f"{ours.app_cpu_ms / theirs.app_cpu_ms:.2f}"
            if ours and theirs and theirs.app_cpu_ms > 0
            else "–"
        )
        errors = " / ".join(
            "–" if r is None else str(r.non2xx + r.socket_errors) for r in (ours, theirs)
        )
        last = ours or theirs
        lines.append(
            f"| {label(op)} | {_cell(ours)} | {_cell(theirs)} | {ratio} | {p99} | {cpu} "
            f"| {errors} | {last.load if last else ''} |"
        )
    lines += ["", *aims]
    return "\n".join(lines)


def check_aims(results: dict[str, dict[str, Result]], scale: bool) -> list[str]:
    out = []

    def verdict(ok: bool) -> str:
        return "met" if ok else "NOT met"

    if not scale:
        mix, floor = results.get("mix", {}), results.get("floor", {}).get("registry")
        if "registry" in mix and "mlflow" in mix:
            ours, theirs = mix["registry"], mix["mlflow"]
            x = ours.rps / theirs.rps
            out.append(f"- Aim: mix ≥ 5× MLflow's req/s: {x:.1f}× — {verdict(x >= 5)}")
            r = ours.p99_ms / theirs.p99_ms
            out.append(f"- Aim: mix p99 ≤ ⅓ of MLflow's: {r:.2f} — {verdict(r <= 1 / 3)}")
        if floor:
            for op in SINGLE_OBJECT_READS:
                if "registry" in results.get(op, {}):
                    x = results[op]["registry"].rps / floor.rps
                    out.append(
                        f"- Aim: {LABELS[op]} ≥ 0.6× the floor: {x:.2f}× — {verdict(x >= 0.6)}"
                    )
        # The two writes a deployment pipeline calls most: MLflow's rate, no more CPU.
        for op in ("create_version", "transition"):
            if {"registry", "mlflow"} <= results.get(op, {}).keys():
                ours, theirs = results[op]["registry"], results[op]["mlflow"]
                x, cpu = ours.rps / theirs.rps, ours.app_cpu_ms / theirs.app_cpu_ms
                out.append(
                    f"- Aim: {LABELS[op]} ≥ MLflow's req/s at ≤ its CPU per request: "
                    f"{x:.2f}×, CPU {cpu:.2f}× — {verdict(x >= 1 and cpu <= 1)}"
                )
    else:
        for op, p50, p99 in (("search_name", 20, 100), ("search_tag", 50, None)):
            for key in (op, f"{op}@1"):
                r = results.get(key, {}).get("registry")
                if r:
                    ok = r.p50_ms < p50 and (p99 is None or r.p99_ms < p99)
                    aim = f"p50 < {p50} ms" + (f", p99 < {p99} ms" if p99 else "")
                    out.append(
                        f"- Aim: {LABELS[op]} ({key}) {aim}: {r.p50_ms:.1f} / {r.p99_ms:.1f} ms "
                        f"— {verdict(ok)}"
                    )
    return out


# --- Main -------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--scale", action="store_true", help="10,000 models x 100 versions")
    parser.add_argument("--models", type=int)
    parser.add_argument("--versions", type=int)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--duration", type=int, default=10, help="seconds per op per server")
    parser.add_argument("--ops", help="comma-separated subset of: " + ",".join(READS + WRITES))
    parser.add_argument("--servers", default="registry,mlflow")
    parser.add_argument("--workers", type=int, default=int(os.environ.get("GUNICORN_WORKERS", 3)))
    parser.add_argument("--threads", type=int, default=int(os.environ.get("GUNICORN_THREADS", 4)))
    parser.add_argument("--keep-alive", type=int, default=5)
    parser.add_argument("--mlflow-workers", type=int, help="default: mlflow server's own")
    parser.add_argument("--registry-db", default="bench_registry")
    parser.add_argument("--mlflow-db", default="bench_mlflow")
    parser.add_argument("--reseed", action="store_true", help="seed even if the data is there")
    parser.add_argument("--keep-running", action="store_true", help="leave servers up (debug)")
    args = parser.parse_args()

    models = args.models or (10_000 if args.scale else 1_000)
    versions = args.versions or (100 if args.scale else 20)
    servers_wanted = args.servers.split(",")
    if args.ops:
        ops = args.ops.split(",")
    else:
        ops = SCALE_OPS if args.scale else READS + WRITES + ["mix"]
    writes = any(op in WRITES or op == "mix" for op in ops)
    spec = {"models": models, "versions": versions, "schema": 1}

    started = datetime.now(UTC)
    load_start = load_average()
    RESULTS.mkdir(exist_ok=True)
    logs = RESULTS / f"logs-{started:%Y%m%dT%H%M%S}"
    logs.mkdir()
    workdir = Path(tempfile.mkdtemp(prefix="bench-wrk-"))
    wrk = ensure_wrk()
    mlflow_python, mlflow_version = (
        ensure_mlflow() if "mlflow" in servers_wanted else (None, "not run")
    )
    log(f"MLflow {mlflow_version}; load {load_start}")

    servers: dict[str, Server] = {}
    try:
        env = registry_env(args.registry_db)
        if "mlflow" in servers_wanted:
            marker = seed_marker(args.mlflow_db)
            if args.reseed or marker != {**spec, "clean": True}:
                log(f"seeding {args.mlflow_db}: {models:,} x {versions}")
                recreate_database(args.mlflow_db)
                init_mlflow_schema(mlflow_python, args.mlflow_db)
                seed_mlflow(args.mlflow_db, models, versions)
                write_marker(args.mlflow_db, {**spec, "clean": True})
            servers["mlflow"] = start_mlflow(
                mlflow_python, args.mlflow_db, logs, args.mlflow_workers
            )
            # It takes minutes to boot its workers: the registry is prepared meanwhile.
        if "registry" in servers_wanted:
            marker = seed_marker(args.registry_db)
            if args.reseed or marker != {**spec, "clean": True}:
                log(f"seeding {args.registry_db}: {models:,} x {versions}")
                recreate_database(args.registry_db)
                user_id = int(prepare_registry(args.registry_db, env))
                seed_registry(args.registry_db, models, versions, user_id)
                write_marker(args.registry_db, {**spec, "clean": True})
            else:
                prepare_registry(args.registry_db, env)
            subprocess.run(
                [
                    sys.executable,
                    "-c",
                    f"import redis; redis.Redis.from_url({REDIS_URL!r}).flushdb()",
                ],
                check=True,
            )
            token = create_token(env)
            servers["registry"] = start_registry(
                env, token, args.workers, args.threads, args.keep_alive, logs
            )
            log(f"registry up at {servers['registry'].base}")
        if "mlflow" in servers:
            mlflow = servers["mlflow"]
            # Four workers importing MLflow: minutes on a busy 2-core machine.
            wait_ready(f"{mlflow.base}/health", mlflow.process, mlflow.log_path, timeout=600)
            log(f"mlflow up at {mlflow.base}")
        servers = {name: servers[name] for name in ("registry", "mlflow") if name in servers}
        if writes:
            for name, database in (("registry", args.registry_db), ("mlflow", args.mlflow_db)):
                if name in servers:
                    write_marker(database, {**spec, "clean": False})

        paging = any(op in ("search_models", "mix") for op in ops)
        tokens = {
            name: page_tokens(server, 20) if paging else [""] for name, server in servers.items()
        }
        # Warm up: every worker opens its connection and loads its code.
        for name, server in servers.items():
            run_wrk(
                wrk,
                server,
                lua_script(
                    {"get_version": 1, "search_name": 1},
                    models,
                    versions,
                    server.auth,
                    tokens[name],
                ),
                args.clients,
                3,
                workdir,
            )

        results: dict[str, dict[str, Result]] = {}
        plan: list[tuple[str, dict[str, float], int]] = []
        for op in ops:
            if op == "mix":
                mix = {r: 0.8 / len(READS) for r in READS} | {w: 0.2 / len(WRITES) for w in WRITES}
                plan.append(("mix", mix, args.clients))
            else:
                plan.append((op, {op: 1.0}, args.clients))
                if args.scale and op in ("search_name", "search_tag"):
                    plan.append((f"{op}@1", {op: 1.0}, 1))
        for key, weights, clients in plan:
            results[key] = {}
            for name, server in servers.items():
                script = lua_script(weights, models, versions, server.auth, tokens[name])
                result = run_wrk(wrk, server, script, clients, args.duration, workdir)
                results[key][name] = result
                log(
                    f"{key:16} {name:8} {result.rps:8.1f} req/s  p50 {result.p50_ms:7.1f} ms  "
                    f"p99 {result.p99_ms:7.1f} ms  cpu {result.app_cpu_ms:.1f} ms/req"
                    f"  non-2xx {result.non2xx}"
                    + (f" ({result.first_bad[:120]})" if result.non2xx else "")
                    + f"  load {result.load}"
                )
        if "registry" in servers and not args.scale:
            script = lua_script({"floor": 1.0}, models, versions, "", [""])
            results["floor"] = {
                "registry": run_wrk(
                    wrk, servers["registry"], script, args.clients, args.duration, workdir
                )
            }
            f = results["floor"]["registry"]
            log(
                f"floor            registry {f.rps:8.1f} req/s  p50 {f.p50_ms:7.1f} ms  "
                f"p99 {f.p99_ms:7.1f} ms  load {f.load}"
            )

        finished = datetime.now(UTC)
        meminfo = Path("/proc/meminfo").read_text().split("\n")[0].split()
        meta = {
            "started": f"{started:%Y-%m-%d %H:%M:%S}",
            "finished": f"{finished:%H:%M:%S}",
            "machine": f"{os.cpu_count()} CPUs, {int(meminfo[1]) // 1024 // 1024} GiB memory",
            "models": models,
            "versions": versions,
            "clients": args.clients,
            "duration": args.duration,
            "gunicorn": f"--workers {args.workers} --threads {args.threads} "
            f"--keep-alive {args.keep_alive}",
            "mlflow_version": mlflow_version,
            "mlflow_server": f"--workers {args.mlflow_workers}"
            if args.mlflow_workers
            else "uvicorn, its default workers",
            "load_start": load_start,
            "load_end": load_average(),
        }
        aims = check_aims(results, args.scale)
        table = report(results, meta, aims)
        bad = sum(r.non2xx + r.socket_errors for by in results.values() for r in by.values())
        if bad:
            table += (
                f"\n\n**WARNING: {bad} requests failed (non-2xx or socket errors); the figures "
                "above include them and are not valid.** First failures:\n"
                + "\n".join(
                    f"- {op} / {name}: {r.first_bad[:200]}"
                    for op, by in results.items()
                    for name, r in by.items()
                    if r.non2xx
                )
            )
        print(table)
        stem = RESULTS / f"{started:%Y%m%dT%H%M%S}{'-scale' if args.scale else ''}"
        stem.with_suffix(".md").write_text(table + "\n")
        stem.with_suffix(".json").write_text(
            json.dumps(
                {
                    "meta": meta,
                    "results": {
                        op: {name: {**vars(r), "rps": r.rps} for name, r in by.items()}
                        for op, by in results.items()
                    },
                },
                indent=2,
            )
        )
        log(f"written {stem}.md and .json; server logs in {logs}")
        if bad:
            sys.exit(1)
        if args.keep_running:
            log("servers left running: " + ", ".join(s.base for s in servers.values()))
            signal.pause()
    finally:
        if not args.keep_running:
            for server in servers.values():
                server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
