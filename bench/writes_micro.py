"""In-process micro-benchmark of the two writes a deployment pipeline calls most: create model
version (with one tag) and transition stage, each ``--count`` times through Django's test
client, one caller, signed in with an API token (docs/performance.md, "Writes: statements per
request").

    .venv/bin/python bench/writes_micro.py [--count 500] [--profile]

``--profile`` runs each write's timed loop under cProfile and prints the functions with the
most time of their own and the most cumulative time (the profile in docs/performance.md).

It runs the code of the checkout it is started from, on a database of its own (the name of
``DATABASE_URL``'s database with ``_writes_micro`` appended, created afresh and dropped at the
end), in reference mode (``ARTIFACT_MODE=reference``: versions are READY at once, nothing is
copied, as ``mlflow server`` does), so no worker or store is needed. No network, no server: it
measures what a request costs in the process and in PostgreSQL, not what a client sees (that
is ``make bench``). Note the load average beside its numbers: the machine's other work moves
them.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.test_settings")
os.environ["ARTIFACT_MODE"] = "reference"

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import setup_test_environment  # noqa: E402
from rest_framework.test import APIClient  # noqa: E402

from accounts import services as account_services  # noqa: E402
from registry import services  # noqa: E402

WARM_UP = 20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=500, help="calls of each write")
    parser.add_argument("--profile", action="store_true", help="cProfile each timed loop")
    arguments = parser.parse_args()
    count = arguments.count
    profiles: dict[str, cProfile.Profile] = {}

    def profiled(label: str) -> cProfile.Profile | None:
        if not arguments.profile:
            return None
        profiles[label] = profile = cProfile.Profile()
        profile.enable()
        return profile

    setup_test_environment()
    name = f"{connection.settings_dict['NAME']}_writes_micro"
    connection.settings_dict["TEST"]["NAME"] = name
    connection.creation.create_test_db(verbosity=0, autoclobber=True)
    try:
        user = get_user_model().objects.create_user("bench", password="bench-password-1")
        secret = account_services.api_token_create(actor=user, name="bench").secret
        services.registered_model_create(actor=user, name="m")
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")

        def call(path: str, body: dict[str, object]) -> None:
            response = client.post(f"/api/2.0/mlflow/{path}", body, format="json")
            if response.status_code != 200:
                raise SystemExit(f"{path}: {response.status_code} {response.content!r}")

        for number in range(WARM_UP):
            call("model-versions/create", {"name": "m", "source": f"s3://bench/m/w{number}"})
        started = time.perf_counter()
        profile = profiled("create model version")
        for number in range(count):
            call(
                "model-versions/create",
                {
                    "name": "m",
                    "source": f"s3://bench/m/{number}",
                    "tags": [{"key": "run", "value": str(number)}],
                },
            )
        if profile:
            profile.disable()
        create = time.perf_counter() - started
        started = time.perf_counter()
        profile = profiled("transition stage")
        for number in range(count):
            call(
                "model-versions/transition-stage",
                {
                    "name": "m",
                    "version": str(WARM_UP + 1 + number),
                    "stage": "Staging",
                    "archive_existing_versions": False,
                },
            )
        if profile:
            profile.disable()
        transition = time.perf_counter() - started
    finally:
        connection.creation.destroy_test_db(name, verbosity=0)
    load = os.getloadavg()[0]
    for label, seconds in (("create model version", create), ("transition stage", transition)):
        print(  # noqa: T201
            f"{label}: {count / seconds:.0f}/s, {seconds / count * 1000:.2f} ms per call "
            f"(load average {load:.2f})"
        )
    for label, profile in profiles.items():
        for order in ("tottime", "cumulative"):
            out = io.StringIO()
            pstats.Stats(profile, stream=out).sort_stats(order).print_stats(25)
            print(f"--- {label}, by {order} ---\n{out.getvalue()}")  # noqa: T201


if __name__ == "__main__":
    main()
