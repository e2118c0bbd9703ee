"""Keep the deployment files (Dockerfile, docker-compose.yml, .env.example, the MLflow tracking
server's deploy/mlflow/Dockerfile) in step with the settings module, with each other, with the
README and with docs/configuration.md, and check the start-up guards that deployments rely on.

No database is used: the files are parsed, and the service is started in subprocesses.
"""

from __future__ import annotations

import fnmatch
import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
MLFLOW_DOCKERFILE = REPO / "deploy" / "mlflow" / "Dockerfile"
MLFLOW_LOCK = REPO / "requirements-mlflow.lock"

APP_SERVICES = ("migrate", "web", "worker", "beat")
LONG_RUNNING_APP_SERVICES = ("web", "worker", "beat")
# The registry services that call the MLflow tracking server (runs:/, models:/ sources).
MLFLOW_CLIENT_SERVICES = ("web", "worker")
LONG_RUNNING_SERVICES = (
    "postgres",
    "redis",
    "minio",
    "mlflow-postgres",
    "mlflow",
    *LONG_RUNNING_APP_SERVICES,
)
ONE_SHOT_SERVICES = ("minio-init", "migrate")

# env_str("NAME", ...), env_bool("NAME", ...) and so on in config/settings.py.
_READER_CALL = re.compile(r"""\benv_(?:str|bool|int|float|list)\(\s*["']([A-Z][A-Z0-9_]*)["']""")

# Variables the application environment may carry although config/settings.py does not read
# them: consumed by libraries (boto3, `createsuperuser --noinput`) or by the image's command.
_NOT_READ_BY_SETTINGS = re.compile(r"^(AWS_[A-Z0-9_]+|DJANGO_SUPERUSER_[A-Z]+|GUNICORN_[A-Z]+)$")

# ${NAME}, ${NAME:-default}, ${NAME:?message} in the compose file ($${...} is an escape).
_INTERPOLATION = re.compile(r"(?<!\$)\$\{([A-Z][A-Z0-9_]*)")

_ENV_EXAMPLE_LINE = re.compile(r"^#?\s*([A-Z][A-Z0-9_]*)=", re.MULTILINE)


def _settings_variables() -> set[str]:
    source = (REPO / "config" / "settings.py").read_text(encoding="utf-8")
    return set(_READER_CALL.findall(source))


def _compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text(encoding="utf-8"))


def _default(value: str) -> str:
    """``value`` as compose fills it in when no variable is set: ${NAME:-default} -> default."""
    return re.sub(r"(?<!\$)\$\{[A-Z][A-Z0-9_]*:-([^}]*)\}", r"\1", value)


def _environment(service: dict) -> dict[str, str]:
    """A service's environment as a mapping, whichever of the two compose forms it uses."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {name: "" if value is None else str(value) for name, value in env.items()}


def _env_example_variables() -> set[str]:
    return set(_ENV_EXAMPLE_LINE.findall((REPO / ".env.example").read_text(encoding="utf-8")))


def _dockerfile_instructions(path: Path = REPO / "Dockerfile") -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs of a Dockerfile, continuation lines joined."""
    lines = [
        line
        for line in path.read_text(encoding="utf-8").splitlines()
        if not line.lstrip().startswith("#")
    ]
    text = re.sub(r"\\\n", " ", "\n".join(lines))
    instructions = []
    for line in text.splitlines():
        if line.strip():
            keyword, _, arguments = line.strip().partition(" ")
            instructions.append((keyword.upper(), arguments.strip()))
    return instructions


def _clean_env(**overrides: str) -> dict[str, str]:
    """The current environment minus everything the settings read, plus ``overrides``.

    The test process may itself carry DATABASE_URL, DJANGO_SECRET_KEY and the like (the test
    settings set some), so they are removed before starting the service.
    """
    env = os.environ.copy()
    for name in _settings_variables() | {"DJANGO_SECRET_KEY", "DATABASE_URL", "DJANGO_DEBUG"}:
        env.pop(name, None)
        env.pop(f"{name}_FILE", None)
    env["DJANGO_SETTINGS_MODULE"] = "config.settings"
    env.update(overrides)
    return env


def _refusal(result: subprocess.CompletedProcess[str]) -> str:
    """The ImproperlyConfigured message a failed start printed ('' if there is none).

    Only the message counts: the traceback's source lines name variables whatever failed.
    """
    match = re.search(r"ImproperlyConfigured: (.*)", result.stderr + result.stdout)
    return match.group(1) if match else ""


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=REPO, env=env, capture_output=True, text=True, timeout=180, check=False
    )


# --- The settings scan itself -----------------------------------------------------------------


def test_settings_scan_finds_the_known_variables():
    # Guards the checks below against passing vacuously if the readers are renamed.
    assert {"DJANGO_SECRET_KEY", "DJANGO_DEBUG", "DATABASE_URL", "CELERY_BROKER_URL"} <= (
        _settings_variables()
    )


# --- docker-compose.yml -----------------------------------------------------------------------


def test_compose_has_every_service():
    services = _compose()["services"]
    expected = {
        "postgres",
        "redis",
        "minio",
        "minio-init",
        "mlflow-postgres",
        "mlflow",
        "migrate",
        "web",
        "worker",
        "beat",
    }
    assert expected <= set(services)


@pytest.mark.parametrize("name", LONG_RUNNING_SERVICES)
def test_long_running_service_has_a_healthcheck(name):
    healthcheck = _compose()["services"][name].get("healthcheck")
    assert healthcheck, f"{name} has no healthcheck"
    assert not healthcheck.get("disable")
    assert healthcheck.get("test"), f"{name}'s healthcheck has no test"


@pytest.mark.parametrize("name", ONE_SHOT_SERVICES)
def test_one_shot_service_is_not_restarted(name):
    # A restart policy would run a finished job again and again.
    assert _compose()["services"][name].get("restart", "no") == "no"


@pytest.mark.parametrize("name", LONG_RUNNING_APP_SERVICES)
def test_app_service_waits_for_its_dependencies(name):
    depends_on = _compose()["services"][name]["depends_on"]
    assert isinstance(depends_on, dict), "depends_on needs the long form to carry conditions"
    for dependency in ("postgres", "redis"):
        assert depends_on[dependency]["condition"] == "service_healthy"
    for job in ("minio-init", "migrate"):
        assert depends_on[job]["condition"] == "service_completed_successfully"


def test_migrate_waits_for_postgres():
    depends_on = _compose()["services"]["migrate"]["depends_on"]
    assert depends_on["postgres"]["condition"] == "service_healthy"


def test_service_commands():
    services = _compose()["services"]
    assert "manage.py migrate --noinput" in services["migrate"]["command"]
    assert services["worker"]["command"].startswith("celery -A config worker")
    assert services["beat"]["command"].startswith("celery -A config beat")
    # The web service runs the image's default command (gunicorn, checked below).
    assert "command" not in services["web"]


def test_app_services_share_one_image_and_the_common_environment():
    compose = _compose()
    common = compose["x-app-env"]
    images = {compose["services"][name].get("image") for name in APP_SERVICES}
    assert len(images) == 1
    assert None not in images
    for name in APP_SERVICES:
        env = _environment(compose["services"][name])
        assert {key: env.get(key) for key in common} == {k: str(v) for k, v in common.items()}


def test_secret_key_is_required_and_debug_is_off():
    env = _environment(_compose()["services"]["web"])
    # ${VAR:?message} makes compose refuse to start when it is unset or empty.
    assert env["DJANGO_SECRET_KEY"].startswith("${DJANGO_SECRET_KEY:?")
    assert env["DJANGO_DEBUG"] == "false"


@pytest.mark.parametrize("name", APP_SERVICES)
def test_app_environment_only_holds_variables_the_service_reads(name):
    read = _settings_variables()
    unknown = {
        variable
        for variable in _environment(_compose()["services"][name])
        if variable not in read
        and variable.removesuffix("_FILE") not in read
        and not _NOT_READ_BY_SETTINGS.match(variable)
    }
    assert not unknown, f"{name} sets variables nothing reads: {sorted(unknown)}"


def test_compose_defaults_everything_but_the_secret_key():
    text = (REPO / "docker-compose.yml").read_text(encoding="utf-8")
    for match in re.finditer(r"(?<!\$)\$\{([A-Z][A-Z0-9_]*)([^}]*)\}", text):
        name, modifier = match.groups()
        if name == "DJANGO_SECRET_KEY":
            assert modifier.startswith(":?")
        else:
            assert modifier.startswith(":-"), f"${{{name}}} has no default"


# --- .env.example -----------------------------------------------------------------------------


def test_env_example_lists_every_variable_the_settings_read():
    missing = _settings_variables() - _env_example_variables()
    assert not missing, f".env.example does not mention {sorted(missing)}"


def test_env_example_lists_every_variable_compose_interpolates():
    interpolated = set(_INTERPOLATION.findall((REPO / "docker-compose.yml").read_text("utf-8")))
    missing = interpolated - _env_example_variables()
    assert not missing, f".env.example does not mention {sorted(missing)}"


def test_env_example_lists_nothing_stale():
    known = _settings_variables() | set(
        _INTERPOLATION.findall((REPO / "docker-compose.yml").read_text("utf-8"))
    )
    stale = {
        name
        for name in _env_example_variables()
        if name not in known
        and name.removesuffix("_FILE") not in known
        and not _NOT_READ_BY_SETTINGS.match(name)
    }
    assert not stale, f".env.example lists variables nothing reads: {sorted(stale)}"


def test_env_example_leaves_the_secret_key_empty():
    text = (REPO / ".env.example").read_text(encoding="utf-8")
    assert re.search(r"^DJANGO_SECRET_KEY=$", text, re.MULTILINE)


# --- Dockerfile -------------------------------------------------------------------------------


def test_dockerfile_runs_gunicorn_on_the_wsgi_application():
    commands = [arguments for keyword, arguments in _dockerfile_instructions() if keyword == "CMD"]
    assert commands, "the Dockerfile has no CMD"
    # The last CMD is the one that counts.
    assert "gunicorn config.wsgi:application" in commands[-1]


def test_dockerfile_runs_as_a_non_root_user():
    users = [arguments for keyword, arguments in _dockerfile_instructions() if keyword == "USER"]
    assert users, "the Dockerfile has no USER"
    assert users[-1].split(":")[0] not in {"root", "0"}


def test_dockerfile_checks_health_and_collects_static_files():
    instructions = _dockerfile_instructions()
    healthchecks = [arguments for keyword, arguments in instructions if keyword == "HEALTHCHECK"]
    assert healthchecks
    assert "127.0.0.1:8000/health" in healthchecks[-1]
    runs = [arguments for keyword, arguments in instructions if keyword == "RUN"]
    assert any("collectstatic --noinput" in run for run in runs)


def test_dockerfile_bakes_no_secret_key_into_the_image():
    for keyword, arguments in _dockerfile_instructions():
        if keyword in {"ENV", "ARG"}:
            assert "DJANGO_SECRET_KEY" not in arguments


def test_dockerignore_keeps_local_state_and_secrets_out():
    patterns = set((REPO / ".dockerignore").read_text(encoding="utf-8").split())
    assert {".venv", ".venv-mlflow", ".git", ".env", "var/", "staticfiles/"} <= patterns


# --- The MLflow tracking server (docker-compose.yml's mlflow service) ---------------------------


def _mlflow_service() -> dict:
    return _compose()["services"]["mlflow"]


def _locked_version(package: str) -> str:
    """The version requirements-mlflow.lock pins ``package`` to."""
    name = re.escape(package)
    match = re.search(rf"^{name}==(\S+)$", MLFLOW_LOCK.read_text("utf-8"), re.MULTILINE | re.I)
    assert match, f"requirements-mlflow.lock does not pin {package}"
    return match.group(1)


def _mlflow_options() -> dict[str, str | bool]:
    """The options of the mlflow service's `mlflow server` command: --name value, --name=value
    and bare flags (True)."""
    command = _mlflow_service()["command"]
    assert isinstance(command, list), "keep the mlflow command in list form"
    assert command[:2] == ["mlflow", "server"]
    options: dict[str, str | bool] = {}
    rest = [str(item) for item in command[2:]]
    while rest:
        item = rest.pop(0)
        assert item.startswith("--"), f"unexpected argument {item!r}"
        name, equals, value = item.partition("=")
        if equals:
            options[name] = value
        elif rest and not rest[0].startswith("--"):
            options[name] = rest.pop(0)
        else:
            options[name] = True
    return options


def _mlflow_port() -> int:
    return int(_mlflow_options()["--port"])


def _host_allowed(host: str, patterns: list[str]) -> bool:
    """How `mlflow server` checks a Host header against MLFLOW_SERVER_ALLOWED_HOSTS."""
    return "*" in patterns or any(
        fnmatch.fnmatch(host, pattern) if "*" in pattern else host == pattern
        for pattern in patterns
    )


def test_mlflow_image_is_built_from_its_dockerfile_at_the_repository_root():
    build = _mlflow_service()["build"]
    # The root, so the build can read requirements-mlflow.lock.
    assert build["context"] == "."
    assert REPO / build["dockerfile"] == MLFLOW_DOCKERFILE
    assert MLFLOW_DOCKERFILE.is_file()
    assert _mlflow_service()["image"] != _compose()["x-app"]["image"]


def test_mlflow_image_installs_the_locked_mlflow_with_postgres_and_s3_support():
    instructions = _dockerfile_instructions(MLFLOW_DOCKERFILE)
    copies = [arguments for keyword, arguments in instructions if keyword == "COPY"]
    assert any(copy.split()[0] == "requirements-mlflow.lock" for copy in copies)
    installs = [
        arguments
        for keyword, arguments in instructions
        if keyword == "RUN" and "pip install" in arguments
    ]
    assert len(installs) == 1, installs
    install = installs[0]
    # Constrained by the lock, so every package (drivers and transitive ones too) is pinned.
    assert re.search(r"(?:-c|--constraint)[ =]\S*requirements-mlflow\.lock\b", install)
    # mlflow itself pinned exactly, to the version the tests run `mlflow server` at.
    assert re.findall(r"(?<![\w-])mlflow==(\S+)", install) == [_locked_version("mlflow")]
    for package in ("mlflow-skinny", "mlflow-tracing"):
        assert _locked_version(package) == _locked_version("mlflow")
    # What the official image lacks: the PostgreSQL driver and boto3 (S3 artifacts).
    for package in ("psycopg2-binary", "boto3"):
        assert re.search(rf"(?<![\w-]){re.escape(package)}(?![\w-])", install), package
        _locked_version(package)


def test_mlflow_image_runs_as_a_non_root_user_and_checks_its_health():
    instructions = _dockerfile_instructions(MLFLOW_DOCKERFILE)
    users = [arguments for keyword, arguments in instructions if keyword == "USER"]
    assert users
    assert users[-1].split(":")[0] not in {"root", "0"}
    healthchecks = [arguments for keyword, arguments in instructions if keyword == "HEALTHCHECK"]
    assert healthchecks
    assert f"127.0.0.1:{_mlflow_port()}/health" in healthchecks[-1]


def test_mlflow_server_listens_for_the_other_containers_and_serves_its_artifacts():
    options = _mlflow_options()
    assert options["--host"] == "0.0.0.0"
    assert "--no-serve-artifacts" not in options
    assert options.get("--serve-artifacts") is True
    destination = urlparse(_default(str(options["--artifacts-destination"])))
    assert destination.scheme == "s3"
    # The compose health check calls the server's /health on its own port.
    assert f"127.0.0.1:{_mlflow_port()}/health" in " ".join(
        _mlflow_service()["healthcheck"]["test"]
    )


def test_mlflow_keeps_its_runs_in_its_own_postgres():
    services = _compose()["services"]
    mlflow = _mlflow_service()
    # In the environment, not on the command line that `ps` and compose print.
    assert "--backend-store-uri" not in _mlflow_options()
    uri = _environment(mlflow)["MLFLOW_BACKEND_STORE_URI"]
    parsed = urlparse(_default(uri))
    assert parsed.scheme in {"postgresql", "postgresql+psycopg2"}
    database = services[parsed.hostname]
    assert parsed.hostname != "postgres", "the registry's database is not the tracking server's"
    db_env = _environment(database)
    assert parsed.port == 5432
    assert parsed.username == db_env["POSTGRES_USER"]
    assert parsed.path.lstrip("/") == db_env["POSTGRES_DB"]
    # The raw strings, so a password set in .env reaches both.
    assert f":{db_env['POSTGRES_PASSWORD']}@" in uri
    assert database["volumes"] != services["postgres"]["volumes"]
    assert mlflow["depends_on"][parsed.hostname]["condition"] == "service_healthy"


def test_mlflow_artifacts_go_to_a_bucket_of_their_own_that_minio_init_creates():
    services = _compose()["services"]
    mlflow_env = _environment(_mlflow_service())
    bucket = urlparse(_default(str(_mlflow_options()["--artifacts-destination"]))).netloc
    init = services["minio-init"]
    init_env = _environment(init)
    assert _default(init_env["MLFLOW_BUCKET"]) == bucket
    assert bucket != _default(init_env["REGISTRY_BUCKET"])
    assert '"local/$$MLFLOW_BUCKET"' in init["command"][0]
    assert "mc mb --ignore-existing" in init["command"][0]
    assert _mlflow_service()["depends_on"]["minio-init"]["condition"] == (
        "service_completed_successfully"
    )
    # The same MinIO, with the same credentials as the registry's.
    assert mlflow_env["MLFLOW_S3_ENDPOINT_URL"] == _compose()["x-app-env"]["AWS_ENDPOINT_URL_S3"]
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert mlflow_env[name] == _compose()["x-app-env"][name]


@pytest.mark.parametrize("name", MLFLOW_CLIENT_SERVICES)
def test_registry_calls_the_mlflow_service(name):
    service = _compose()["services"][name]
    url = urlparse(_default(_environment(service)["MLFLOW_TRACKING_SERVER_URL"]))
    assert url.scheme == "http"
    assert url.hostname == "mlflow"
    assert url.port == _mlflow_port()
    assert service["depends_on"]["mlflow"]["condition"] == "service_healthy"
    # The server refuses (403) a Host it does not know; its /health is exempt, so the health
    # check would not notice.
    allowed = _default(_environment(_mlflow_service())["MLFLOW_SERVER_ALLOWED_HOSTS"]).split(",")
    assert _host_allowed(url.netloc, allowed), f"{url.netloc} is not in {allowed}"


def test_mlflow_is_published_on_this_machine_only():
    # It has no authentication.
    (port,) = _mlflow_service()["ports"]
    address, host_port, container_port = _default(port).split(":")
    assert address == "127.0.0.1"
    assert int(container_port) == _mlflow_port()
    allowed = _default(_environment(_mlflow_service())["MLFLOW_SERVER_ALLOWED_HOSTS"]).split(",")
    for host in ("localhost", "127.0.0.1"):
        assert _host_allowed(f"{host}:{host_port}", allowed)


def test_readme_gives_the_compose_addresses_of_both_servers():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    (mlflow_port,) = _mlflow_service()["ports"]
    mlflow_host_port = _default(mlflow_port).split(":")[-2]
    (web_port,) = _compose()["services"]["web"]["ports"]
    web_host_port = _default(web_port).split(":")[-2]
    assert f'mlflow.set_tracking_uri("http://localhost:{mlflow_host_port}")' in readme
    assert f'mlflow.set_registry_uri("http://localhost:{web_host_port}")' in readme
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_TRACKING_TOKEN"):
        assert f"`{name}`" in readme or f"{name}:" in readme or f'"{name}"' in readme, name


# --- Start-up -----------------------------------------------------------------------------------


def test_gunicorn_loads_the_wsgi_application(tmp_path, collected_static):
    env = _clean_env(
        DJANGO_SECRET_KEY="x",
        DJANGO_DEBUG="false",
        REGISTRY_DATA_DIR=str(tmp_path),
        DJANGO_STATIC_ROOT=str(collected_static),
    )
    result = _run(
        [sys.executable, "-m", "gunicorn", "--check-config", "config.wsgi:application"], env
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_production_refuses_to_start_without_a_secret_key(tmp_path):
    env = _clean_env(DJANGO_DEBUG="false", REGISTRY_DATA_DIR=str(tmp_path))
    result = _run([sys.executable, "manage.py", "check"], env)
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY" in _refusal(result), result.stderr


def test_an_unreadable_boolean_is_refused(tmp_path):
    # The secret key is set, so the only thing wrong is DJANGO_DEBUG's value.
    env = _clean_env(DJANGO_SECRET_KEY="x", DJANGO_DEBUG="yes", REGISTRY_DATA_DIR=str(tmp_path))
    result = _run([sys.executable, "manage.py", "check"], env)
    assert result.returncode != 0
    message = _refusal(result)
    assert "DJANGO_DEBUG" in message, result.stderr
    assert "yes" in message


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("ARTIFACT_MODE", "mirror"),
        ("ARTIFACT_S3_ADDRESSING_STYLE", "host"),
        ("REGISTRY_DEFAULT_PERMISSION_LEVEL", "CAN_EVERYTHING"),
        # The version page links runs there: an http(s) address only.
        ("REGISTRY_TRACKING_UI_URL", "javascript:alert(1)"),
    ],
)
def test_a_value_outside_a_settings_choices_is_refused(tmp_path, variable, value):
    env = _clean_env(DJANGO_SECRET_KEY="x", REGISTRY_DATA_DIR=str(tmp_path), **{variable: value})
    result = _run([sys.executable, "manage.py", "check"], env)
    assert result.returncode != 0
    message = _refusal(result)
    assert variable in message, result.stderr
    assert value in message


def test_configuration_page_documents_every_setting():
    page = (REPO / "docs" / "configuration.md").read_text(encoding="utf-8")
    missing = sorted(name for name in _settings_variables() if f"`{name}`" not in page)
    assert not missing, f"docs/configuration.md's settings table does not mention {missing}"
