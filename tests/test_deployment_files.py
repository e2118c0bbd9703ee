"""Keep the deployment files (Dockerfile, docker-compose.yml, .env.example) in step with the
settings module, and check the start-up guards that deployments rely on.

No database is used: the files are parsed, and the service is started in subprocesses.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent

APP_SERVICES = ("migrate", "web", "worker", "beat")
LONG_RUNNING_APP_SERVICES = ("web", "worker", "beat")
LONG_RUNNING_SERVICES = ("postgres", "redis", "minio", *LONG_RUNNING_APP_SERVICES)
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


def _environment(service: dict) -> dict[str, str]:
    """A service's environment as a mapping, whichever of the two compose forms it uses."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {name: "" if value is None else str(value) for name, value in env.items()}


def _env_example_variables() -> set[str]:
    return set(_ENV_EXAMPLE_LINE.findall((REPO / ".env.example").read_text(encoding="utf-8")))


def _dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs of the Dockerfile, continuation lines joined."""
    lines = [
        line
        for line in (REPO / "Dockerfile").read_text(encoding="utf-8").splitlines()
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
    expected = {"postgres", "redis", "minio", "minio-init", "migrate", "web", "worker", "beat"}
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
    assert {".venv", ".git", ".env", "var/", "staticfiles/"} <= patterns


# --- Start-up -----------------------------------------------------------------------------------


def test_gunicorn_loads_the_wsgi_application(tmp_path):
    env = _clean_env(DJANGO_SECRET_KEY="x", DJANGO_DEBUG="false", REGISTRY_DATA_DIR=str(tmp_path))
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


def test_readme_documents_every_setting():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    missing = sorted(name for name in _settings_variables() if f"`{name}`" not in readme)
    assert not missing, f"README.md's Settings table does not mention {missing}"
