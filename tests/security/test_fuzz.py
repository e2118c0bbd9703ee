"""The bounded API fuzzing pass: every operation of the schema, a fixed number of examples.

One test per operation (schemathesis parametrizes ``test_fuzz``). Derandomized, so every run
sends the same requests and a failure in CI reproduces locally; no example database is kept.
``EXAMPLES`` generated cases per operation and generation mode (fitting the schema, and not),
plus schemathesis's explicit examples and coverage cases. The long, randomized pass is
``bench/fuzz_long.py``; docs/security.md ("API fuzzing") has both.
"""

from __future__ import annotations

import re

import pytest
from django.urls import get_resolver
from hypothesis import HealthCheck, settings

from tests.security import fuzzing

pytestmark = pytest.mark.django_db

EXAMPLES = 25

schema = fuzzing.load_schema()


@pytest.fixture
def seeded(settings, tmp_path):
    settings.ARTIFACT_STORE_URI = (tmp_path / "store").as_uri()
    seeded = fuzzing.seed_registry()
    with fuzzing.connection_kept_open():
        yield seeded


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_fuzz(case, seeded):
    case.call_and_validate(headers=seeded.headers, checks=fuzzing.CHECKS)


def test_every_api_route_is_in_the_fuzzed_schema():
    """A route missing from the schema would never be fuzzed. The MLflow routes are listed once,
    under /api/2.0/mlflow/ (the other two prefixes serve the same views)."""
    routes = set()

    def walk(patterns, prefix=""):
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if hasattr(pattern, "url_patterns"):
                walk(pattern.url_patterns, route)
            else:
                routes.add("/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route))

    walk(get_resolver().url_patterns)
    api_routes = {
        route
        for route in routes
        if route.startswith("/api/2.0/") and not route.startswith("/api/2.0/preview/")
    }
    fuzzed = {operation.ok().path for operation in schema.get_all_operations()}
    assert api_routes - fuzzed == set()
    assert len(fuzzed) == len(api_routes)
