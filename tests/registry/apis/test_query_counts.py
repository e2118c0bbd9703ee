"""Search and list endpoints run a bounded number of queries whatever the page size."""

from __future__ import annotations

import pytest

from registry import services

pytestmark = pytest.mark.django_db

# Authentication (1) + the page (1) + tags, aliases, latest versions and their tags.
MAX_QUERIES = 8


@pytest.fixture
def populated(user):
    for m in range(30):
        name = f"model-{m:02d}"
        services.registered_model_create(
            actor=user, name=name, tags=[{"key": "team", "value": "a"}]
        )
        for v in range(1, 4):
            services.model_version_create(
                actor=user,
                name=name,
                source=f"s3://b/{name}/{v}",
                tags=[{"key": "n", "value": str(v)}],
            )
        services.model_version_stage_transition(actor=user, name=name, version="2", stage="Staging")
        services.registered_model_alias_set(actor=user, name=name, alias="champion", version="1")


@pytest.mark.parametrize("page_size", [2, 25])
def test_search_registered_models(api, populated, django_assert_max_num_queries, page_size):
    with django_assert_max_num_queries(MAX_QUERIES):
        response = api.get(
            "/api/2.0/mlflow/registered-models/search",
            {"max_results": page_size, "filter": "tags.team = 'a'"},
        )
    body = response.json()
    assert len(body["registered_models"]) == page_size
    first = body["registered_models"][0]
    assert [(v["version"], v["current_stage"]) for v in first["latest_versions"]] == [
        ("2", "Staging"),
        ("3", "None"),
    ]
    assert first["aliases"] == [{"alias": "champion", "version": "1"}]
    assert first["tags"] == [{"key": "team", "value": "a"}]


@pytest.mark.parametrize("page_size", [2, 60])
def test_search_model_versions(api, populated, django_assert_max_num_queries, page_size):
    with django_assert_max_num_queries(MAX_QUERIES):
        response = api.get(
            "/api/2.0/mlflow/model-versions/search",
            {"max_results": page_size, "filter": "name LIKE 'model-%'"},
        )
    versions = response.json()["model_versions"]
    assert len(versions) == page_size
    assert all(v["tags"] and v["tags"][0]["key"] == "n" for v in versions)


@pytest.mark.parametrize("name", ["model-00", "model-29"])
def test_get_latest_versions(api, populated, django_assert_max_num_queries, name):
    with django_assert_max_num_queries(MAX_QUERIES):
        response = api.post(
            "/api/2.0/mlflow/registered-models/get-latest-versions", {"name": name}, format="json"
        )
    assert [v["version"] for v in response.json()["model_versions"]] == ["2", "3"]
