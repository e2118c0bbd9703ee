"""The bounded API fuzzing pass: every operation of the schema, a fixed number of examples."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, settings

from tests.security import fuzzing

pytestmark = pytest.mark.django_db

schema = fuzzing.load_schema()


@pytest.fixture
def seeded(settings, tmp_path):
    settings.ARTIFACT_STORE_URI = (tmp_path / "store").as_uri()
    seeded = fuzzing.seed_registry()
    with fuzzing.connection_kept_open():
        yield seeded


@schema.parametrize()
@settings(
    max_examples=25,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_fuzz(case, seeded):
    case.call_and_validate(headers=seeded.headers, checks=fuzzing.CHECKS)
