"""The benchmark's bulk seed (bench/compare.py) writes rows by raw SQL, so a column added
without a database default breaks it without any other test noticing: this runs the seed on the
test database, small, and reads the seeded data back through the API as the benchmark does."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
from django.db import connection
from rest_framework.test import APIClient

from accounts import services as accounts_services

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="the seed is PostgreSQL SQL"),
]

MODELS, VERSIONS = 3, 4


def _compare() -> ModuleType:
    path = Path(__file__).resolve().parents[1] / "bench" / "compare.py"
    spec = importlib.util.spec_from_file_location("bench_compare", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("bench_compare", module)
    spec.loader.exec_module(module)
    return module


def test_the_seed_fits_the_schema_and_reads_back(django_user_model, monkeypatch):
    compare = _compare()
    settings = connection.settings_dict
    host, port = settings["HOST"] or "127.0.0.1", settings["PORT"] or 5432
    monkeypatch.setattr(compare, "PG_URL", f"postgres://{settings['USER']}@{host}:{port}")
    user = django_user_model.objects.create_user(username="bench", password="x" * 20)
    compare.seed_registry(settings["NAME"], MODELS, VERSIONS, user.pk)

    client = APIClient()
    secret = accounts_services.api_token_create(actor=user, name="bench").secret
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    name = "bench-model-00002"
    got = client.get("/api/2.0/mlflow/model-versions/get", {"name": name, "version": VERSIONS})
    assert got.status_code == 200, got.content
    version = got.json()["model_version"]
    assert version["current_stage"] == "Production"
    assert version["aliases"] == ["champion"]
    assert {tag["key"] for tag in version["tags"]} == {"dataset", "quality"}
    found = client.get(
        "/api/2.0/mlflow/model-versions/search",
        {"filter": "tags.dataset = 'ds-00002'", "max_results": 50},
    )
    assert found.status_code == 200, found.content
    assert len(found.json()["model_versions"]) == VERSIONS
    # Writes work on seeded rows: the next version number follows the seeded ones.
    created = client.post(
        "/api/2.0/mlflow/model-versions/create",
        {"name": name, "source": "s3://bench-source/next"},
        format="json",
    )
    assert created.status_code == 200, created.content
    assert created.json()["model_version"]["version"] == str(VERSIONS + 1)
