"""The bound on a web request's SQL statements (DATABASE_STATEMENT_TIMEOUT_MS) and on the LIKE /
ILIKE patterns of search filters, through the API.

A statement is made to outlast a small bound deterministically: another database session holds
a lock the request's statement must wait for. The session is a plain psycopg2 connection, as
another client of the database would be.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psycopg2
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from registry import services
from registry.models import AuditEntry, RegisteredModel, RegisteredModelTag
from registry.search import MAX_LIKE_PATTERN_LENGTH, MAX_LIKE_WILDCARDS
from webhooks.models import WebhookDelivery, WebhookEvent

ROOT = Path(__file__).resolve().parent.parent
MODELS = "/api/2.0/mlflow/registered-models"
VERSIONS = "/api/2.0/mlflow/model-versions"

pytestmark = pytest.mark.django_db(transaction=True)


def _database_url() -> str:
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    host = f"{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}"
    return f"postgres://{db['USER']}{password}@{host}/{db['NAME']}"


@pytest.fixture(autouse=True)
def _fresh_connection_afterwards():
    """The requests of a test leave their small bound on this thread's connection; the
    database flush after the test gets a new one."""
    yield
    connection.close()


@pytest.fixture
def other_session():
    """Another session on the test database, in a transaction of its own."""
    session = psycopg2.connect(_database_url())
    try:
        yield session
    finally:
        session.rollback()
        session.close()


@pytest.fixture
def model(user):
    return services.registered_model_create(
        actor=user, name="m", tags=[{"key": "team", "value": "red"}]
    )


def _timed(call):
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


def test_a_search_past_the_timeout_answers_400_and_the_next_request_is_served(
    api, model, other_session, settings
):
    settings.DATABASE_STATEMENT_TIMEOUT_MS = 300
    with other_session.cursor() as cursor:
        table = RegisteredModelTag._meta.db_table
        cursor.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")

    response, elapsed = _timed(
        lambda: api.get(f"{MODELS}/search", {"filter": "tags.team LIKE 're%'"})
    )

    assert response.status_code == 400, response.content
    assert response.json() == {
        "error_code": "INVALID_PARAMETER_VALUE",
        "message": "The search took longer than the registry allows "
        "(DATABASE_STATEMENT_TIMEOUT_MS = 300 ms) and was stopped. Narrow the filter (fewer or "
        "shorter LIKE / ILIKE patterns, an exact name or tag value) or ask for fewer results.",
    }
    assert elapsed < 10  # cancelled at the bound, not when the lock went away
    other_session.rollback()  # the lock is released

    # The same connection serves the next request.
    response = api.get(f"{MODELS}/search", {"filter": "tags.team LIKE 're%'"})
    assert response.status_code == 200, response.content
    assert [m["name"] for m in response.json()["registered_models"]] == ["m"]


def test_a_write_past_the_timeout_answers_503_and_changes_nothing(
    api, model, other_session, settings
):
    settings.DATABASE_STATEMENT_TIMEOUT_MS = 300
    with other_session.cursor() as cursor:
        cursor.execute(
            f"SELECT 1 FROM {RegisteredModel._meta.db_table} WHERE name = 'm' FOR UPDATE"
        )
    audit, events, deliveries = (
        AuditEntry.objects.count(),
        WebhookEvent.objects.count(),
        WebhookDelivery.objects.count(),
    )

    response, elapsed = _timed(lambda: api.delete(f"{MODELS}/delete", {"name": "m"}, format="json"))

    assert response.status_code == 503, response.content
    assert response["Retry-After"] == "5"
    assert response.json() == {
        "error_code": "TEMPORARILY_UNAVAILABLE",
        "message": "A database statement of this request ran longer than the registry allows "
        "(DATABASE_STATEMENT_TIMEOUT_MS = 300 ms) and was cancelled; nothing was changed. Try "
        "again in a few seconds.",
    }
    assert elapsed < 10
    other_session.rollback()
    assert RegisteredModel.objects.filter(name="m").exists()
    assert RegisteredModelTag.objects.filter(registered_model=model).count() == 1
    assert AuditEntry.objects.count() == audit
    assert WebhookEvent.objects.count() == events
    assert WebhookDelivery.objects.count() == deliveries

    # Retried once the lock is gone, on the same connection, the request goes through.
    response = api.delete(f"{MODELS}/delete", {"name": "m"}, format="json")
    assert response.status_code == 200, response.content
    assert not RegisteredModel.objects.filter(name="m").exists()


def test_a_web_page_past_the_timeout_answers_a_503_page(
    client, user, model, other_session, settings
):
    settings.DATABASE_STATEMENT_TIMEOUT_MS = 300
    client.force_login(user)
    with other_session.cursor() as cursor:
        cursor.execute(f"LOCK TABLE {RegisteredModel._meta.db_table} IN ACCESS EXCLUSIVE MODE")
    response = client.get("/models/m/")
    assert response.status_code == 503
    assert "DATABASE_STATEMENT_TIMEOUT_MS = 300 ms" in response.content.decode()
    other_session.rollback()
    assert client.get("/models/m/").status_code == 200


def test_long_patterns_against_long_tag_values_are_cut_by_the_timeout(api, user, settings):
    """The reported case: LIKE patterns against 100,000-character tag values, which took 2.7 s
    for four models. What the pattern limits still allow is cut at the bound."""
    value = "a" * 100_000
    for index in range(12):
        services.registered_model_create(
            actor=user, name=f"big-{index}", tags=[{"key": "blob", "value": value}]
        )
    pattern = "%" + "a" * (MAX_LIKE_PATTERN_LENGTH - 3) + "b%"  # never matches, scans all
    settings.DATABASE_STATEMENT_TIMEOUT_MS = 30
    response = api.get(f"{MODELS}/search", {"filter": f"tags.blob LIKE '{pattern}'"})
    assert response.status_code == 400, response.content
    assert "DATABASE_STATEMENT_TIMEOUT_MS = 30 ms" in response.json()["message"]
    assert RegisteredModel.objects.count() == 12


@pytest.mark.parametrize(
    ("path", "subject"),
    [(f"{MODELS}/search", "tags.`team`"), (f"{VERSIONS}/search", "name")],
)
@pytest.mark.parametrize("comparator", ["LIKE", "ILIKE"])
def test_patterns_over_the_limits_are_refused_naming_them(api, model, path, subject, comparator):
    key = "team" if subject.startswith("tags") else "name"
    long = "%" + "x" * MAX_LIKE_PATTERN_LENGTH
    response = api.get(path, {"filter": f"{subject} {comparator} '{long}'"})
    assert response.status_code == 400
    assert response.json() == {
        "error_code": "INVALID_PARAMETER_VALUE",
        "message": f"The {comparator} pattern for '{key}' is too long: "
        f"{MAX_LIKE_PATTERN_LENGTH + 1} characters (at most {MAX_LIKE_PATTERN_LENGTH} are "
        "allowed).",
    }

    wild = "%x" * 10 + "_" * (MAX_LIKE_WILDCARDS - 10 + 1)
    response = api.get(path, {"filter": f"{subject} {comparator} '{wild}'"})
    assert response.status_code == 400
    assert response.json() == {
        "error_code": "INVALID_PARAMETER_VALUE",
        "message": f"The {comparator} pattern for '{key}' has too many wildcards: "
        f"{MAX_LIKE_WILDCARDS + 1} (at most {MAX_LIKE_WILDCARDS} % and _ are allowed; write a "
        "literal % or _ as \\% or \\_).",
    }


def test_patterns_at_the_limits_and_escaped_wildcards_are_accepted(api, user, model):
    name = "a_" * 40 + "b"  # 40 underscores, each matched literally below
    services.registered_model_create(actor=user, name=name)
    escaped = name.replace("_", "\\_")
    response = api.get(f"{MODELS}/search", {"filter": f"name LIKE '{escaped}'"})
    assert response.status_code == 200, response.content
    assert [m["name"] for m in response.json()["registered_models"]] == [name]

    at_limit = "%" * MAX_LIKE_WILDCARDS + "x" * (MAX_LIKE_PATTERN_LENGTH - MAX_LIKE_WILDCARDS)
    response = api.get(f"{MODELS}/search", {"filter": f"tags.team ILIKE '{at_limit}'"})
    assert response.status_code == 200, response.content
    assert response.json().get("registered_models", []) == []


def test_the_bound_is_for_web_requests_only(tmp_path):
    """Management commands (migrate among them) and Celery tasks never pass through the web
    middleware: a statement longer than the web bound runs to its end there."""
    code = (
        "from django.db import connection\n"
        "cursor = connection.cursor()\n"
        "cursor.execute('SELECT pg_sleep(0.5)')\n"
        "cursor.execute('SHOW statement_timeout')\n"
        "print('statement_timeout', cursor.fetchone()[0])\n"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.test_settings",
        "DATABASE_URL": _database_url(),
        "DATABASE_STATEMENT_TIMEOUT_MS": "50",
    }
    result = subprocess.run(  # noqa: S603
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "statement_timeout 0" in result.stdout


def test_the_bound_is_set_once_per_connection(api, anonymous_api, model, settings):
    settings.DATABASE_STATEMENT_TIMEOUT_MS = 1234
    api.get(f"{MODELS}/get", {"name": "m"})
    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        assert cursor.fetchone()[0] == "1234ms"
    # A second request on the same connection sets nothing again.
    with CaptureQueriesContext(connection) as captured:
        api.get(f"{MODELS}/get", {"name": "m"})
    assert not [q for q in captured.captured_queries if "statement_timeout" in q["sql"]]

    # A connection the request opens itself gets the bound as it opens; a request that needs
    # no database opens none.
    connection.close()
    assert anonymous_api.get("/api/schema/").status_code == 200
    assert connection.connection is None
    api.get(f"{MODELS}/get", {"name": "m"})
    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        assert cursor.fetchone()[0] == "1234ms"

    settings.DATABASE_STATEMENT_TIMEOUT_MS = 0  # back to the server's default
    api.get(f"{MODELS}/get", {"name": "m"})
    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        assert cursor.fetchone()[0] == "0"
