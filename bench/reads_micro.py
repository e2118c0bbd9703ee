"""Micro-benchmark: the hot reads in process, through Django's test client (every middleware,
DRF, the real database), signed with an API token (``Authorization: Bearer``).

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/registry \
        .venv/bin/python bench/reads_micro.py [--calls 2000]

Creates a throwaway test database (``test_`` + the configured name), one model with 20
versions (two tags and an alias each, some in Staging and Production), then times ``--calls``
calls of each read and prints, per read, the statements one call runs and the calls per second
of one thread. It measures the work of the process, not a server: ``make bench`` is the real
benchmark (docs/performance.md).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.test_settings")

import django  # noqa: E402

django.setup()

from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402

READS = [
    (
        "get model version",
        "get",
        "/api/2.0/mlflow/model-versions/get",
        {"name": "m", "version": "7"},
    ),
    (
        "get by alias",
        "get",
        "/api/2.0/mlflow/registered-models/alias",
        {"name": "m", "alias": "a7"},
    ),
    ("get registered model", "get", "/api/2.0/mlflow/registered-models/get", {"name": "m"}),
    (
        "latest versions",
        "get",
        "/api/2.0/mlflow/registered-models/get-latest-versions",
        {"name": "m"},
    ),
    (
        "search versions",
        "get",
        "/api/2.0/mlflow/model-versions/search",
        {"filter": "name = 'm'", "max_results": "10"},
    ),
    ("search models", "get", "/api/2.0/mlflow/registered-models/search", {"max_results": "10"}),
]


def populate() -> str:
    from accounts import services as accounts_services
    from accounts.models import User
    from registry import services
    from registry.artifacts import services as artifact_services
    from registry.models import ModelVersion, ModelVersionStatus

    # No worker copies artifacts here: the made-up sources are READY at once (as in the tests).
    artifact_services.model_version_copy_schedule = lambda *, model_version: None  # type: ignore[assignment]

    user = User.objects.create_user(username="bench", password="x")
    for index in range(10):
        services.registered_model_create(
            actor=user,
            name="m" if index == 0 else f"other{index}",
            tags=[{"key": "team", "value": "a"}],
        )
    for number in range(1, 21):
        services.model_version_create(
            actor=user,
            name="m",
            source=f"s3://b/m/{number}",
            tags=[{"key": "n", "value": str(number)}, {"key": "k", "value": "v"}],
        )
        services.registered_model_alias_set(
            actor=user, name="m", alias=f"a{number}", version=number
        )
    ModelVersion.objects.update(status=ModelVersionStatus.READY)
    services.model_version_stage_transition(actor=user, name="m", version="5", stage="Staging")
    services.model_version_stage_transition(actor=user, name="m", version="6", stage="Production")
    return accounts_services.api_token_create(actor=None, user=user, name="bench").secret


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()
    setup_test_environment()
    old_name = connection.settings_dict["NAME"]
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        secret = populate()
        client = Client(HTTP_AUTHORIZATION=f"Bearer {secret}")
        print(f"load average before: {os.getloadavg()}")
        print("| read | statements | calls/s |")
        print("|---|---:|---:|")
        for label, method, path, params in READS:
            for _ in range(50):  # warm up
                response = getattr(client, method)(path, params)
                assert response.status_code == 200, response.content
            statements: list[str] = []

            def count(execute, sql, params, many, context, statements=statements):  # type: ignore[no-untyped-def]
                statements.append(sql)
                return execute(sql, params, many, context)

            # An execute wrapper, not CaptureQueriesContext: each request resets the query log.
            with connection.execute_wrapper(count):
                getattr(client, method)(path, params)
            started = time.perf_counter()
            for _ in range(args.calls):
                getattr(client, method)(path, params)
            elapsed = time.perf_counter() - started
            print(f"| {label} | {len(statements)} | {args.calls / elapsed:.0f} |")
        print(f"load average after: {os.getloadavg()}")
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)


if __name__ == "__main__":
    main()
