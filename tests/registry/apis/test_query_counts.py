"""Search and list endpoints run a bounded number of queries whatever the page size; write
endpoints run an exact number of statements."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from registry import services
from registry.models import RegisteredModel
from webhooks.models import WebhookDelivery, WebhookFlavor
from webhooks.services.management import webhook_create

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


# --- Writes -----------------------------------------------------------------------------------
#
# Each write endpoint runs an exact number of statements (docs/decisions/0021): counted inside
# the test's transaction, so the service's transaction shows as a SAVEPOINT and its RELEASE
# (BEGIN and COMMIT outside tests), and the request's own two statements are counted too
# (the statement timeout, the signed-in user). A change that adds a statement to a write fails
# here and says which statements ran.

MLFLOW = "/api/2.0/mlflow/"
REGISTRY = "/api/2.0/registry/"


def _statements(captured: list[dict[str, Any]]) -> str:
    return "\n".join(f"  {query['sql'][:150]}" for query in captured)


def assert_statements(api, expected: int, method: str, path: str, body: dict[str, Any]) -> Any:
    with CaptureQueriesContext(connection) as ctx:
        response = getattr(api, method)(path, body, format="json")
    assert response.status_code == 200, response.content
    assert len(ctx.captured_queries) == expected, (
        f"{method.upper()} {path}: {len(ctx.captured_queries)} statements, "
        f"{expected} expected:\n{_statements(ctx.captured_queries)}"
    )
    return response.json()


@pytest.fixture
def versions(user):
    """Model ``m`` with versions 1 to 3 (version 3 in Staging), no hooks."""
    services.registered_model_create(actor=user, name="m")
    for number in range(1, 4):
        services.model_version_create(actor=user, name="m", source=f"s3://b/m/{number}")
    services.model_version_stage_transition(actor=user, name="m", version="3", stage="Staging")


@pytest.fixture
def hook(django_user_model, versions):
    """A registry-wide hook on version events: the writes look its subscriptions up."""
    admin = django_user_model.objects.create_superuser(username="root", password="pass-rootroot")
    return webhook_create(
        actor=admin,
        flavor=WebhookFlavor.DATABRICKS,
        url="https://example.com/hook",
        events=["MODEL_VERSION_CREATED", "MODEL_VERSION_TRANSITIONED_STAGE"],
    )


# Without hooks, and with one that subscribes: the lookup, the event and the delivery. The
# version's tag is one statement, its entry in the tag history one more
# (docs/decisions/0022-version-tag-history.md), and the tests' stand-in for the copy
# (conftest.py) one more.
@pytest.mark.parametrize(("with_hook", "expected"), [(False, 12), (True, 15)])
def test_create_model_version(api, versions, request, with_hook, expected):
    if with_hook:
        request.getfixturevalue("hook")
    body = assert_statements(
        api,
        expected,
        "post",
        MLFLOW + "model-versions/create",
        {"name": "m", "source": "s3://b/m/4", "tags": [{"key": "team", "value": "a"}]},
    )
    assert body["model_version"]["tags"] == [{"key": "team", "value": "a"}]
    assert body["model_version"]["aliases"] == []
    assert WebhookDelivery.objects.exists() == with_hook


@pytest.mark.parametrize(("with_hook", "expected"), [(False, 15), (True, 18)])
def test_transition_stage(api, versions, request, with_hook, expected):
    if with_hook:
        request.getfixturevalue("hook")
    services.registered_model_alias_set(actor=None, name="m", alias="champion", version="2")
    body = assert_statements(
        api,
        expected,
        "post",
        MLFLOW + "model-versions/transition-stage",
        {"name": "m", "version": "2", "stage": "Production", "archive_existing_versions": False},
    )
    assert body["model_version"]["current_stage"] == "Production"
    assert body["model_version"]["aliases"] == ["champion"]
    assert WebhookDelivery.objects.exists() == with_hook


WRITES = [
    # (name, expected statements, method, path, body); run in this order on the fixture data.
    # A new tag: the locked read that gives the old value, a savepoint around the INSERT (a
    # concurrent first set falls back to its row), and the history's INSERT
    # (docs/decisions/0022-version-tag-history.md).
    (
        "set version tag",
        14,
        "post",
        "model-versions/set-tag",
        {"name": "m", "version": "1", "key": "k", "value": "v"},
    ),
    # DELETE ... RETURNING gives the old value; the history's INSERT is one more.
    (
        "delete version tag",
        11,
        "delete",
        "model-versions/delete-tag",
        {"name": "m", "version": "1", "key": "k"},
    ),
    (
        "update version",
        7,
        "patch",
        "model-versions/update",
        {"name": "m", "version": "1", "description": "d"},
    ),
    (
        "set alias",
        13,
        "post",
        "registered-models/alias",
        {"name": "m", "alias": "champion", "version": "1"},
    ),
    ("delete alias", 10, "delete", "registered-models/alias", {"name": "m", "alias": "champion"}),
    (
        "databricks transition",
        26,
        "post",
        "databricks/model-versions/transition-stage",
        {"name": "m", "version": "1", "stage": "Staging", "archive_existing_versions": True},
    ),
    (
        "request transition",
        14,
        "post",
        "transition-requests/create",
        {"name": "m", "version": "2", "stage": "Staging"},
    ),
    (
        "reject request",
        11,
        "post",
        "transition-requests/reject",
        {"name": "m", "version": "2", "stage": "Staging"},
    ),
    (
        "request again",
        14,
        "post",
        "transition-requests/create",
        {"name": "m", "version": "2", "stage": "Staging"},
    ),
    (
        "cancel request",
        10,
        "delete",
        "transition-requests/delete",
        {"name": "m", "version": "2", "stage": "Staging", "creator": "alice"},
    ),
    (
        "request a third time",
        14,
        "post",
        "transition-requests/create",
        {"name": "m", "version": "2", "stage": "Staging"},
    ),
    (
        "approve request",
        20,
        "post",
        "transition-requests/approve",
        {"name": "m", "version": "2", "stage": "Staging", "archive_existing_versions": False},
    ),
    ("comment", 14, "post", "comments/create", {"name": "m", "version": "2", "comment": "c"}),
    (
        "set stage policy",
        13,
        "post",
        REGISTRY + "stage-policies/set",
        {"name": "m", "stage": "Production", "required_approvals": 2},
    ),
    (
        "delete stage policy",
        13,
        "delete",
        REGISTRY + "stage-policies/delete",
        {"name": "m", "stage": "Production"},
    ),
    (
        "set alias policy",
        13,
        "post",
        REGISTRY + "alias-policies/set",
        {"name": "m", "alias": "champion", "protected": True, "direct_users": []},
    ),
    (
        "request alias move",
        16,
        "post",
        REGISTRY + "alias-requests/create",
        {"name": "m", "alias": "champion", "version": "2"},
    ),
    (
        "approve alias move",
        21,
        "post",
        REGISTRY + "alias-requests/approve",
        {"name": "m", "alias": "champion", "version": "2"},
    ),
    (
        "request alias move again",
        16,
        "post",
        REGISTRY + "alias-requests/create",
        {"name": "m", "alias": "champion", "version": "3"},
    ),
    (
        "reject alias move",
        12,
        "post",
        REGISTRY + "alias-requests/reject",
        {"name": "m", "alias": "champion", "version": "3"},
    ),
    (
        "delete alias policy",
        13,
        "delete",
        REGISTRY + "alias-policies/delete",
        {"name": "m", "alias": "champion"},
    ),
    (
        "set model tag",
        5,
        "post",
        "registered-models/set-tag",
        {"name": "m", "key": "k", "value": "v"},
    ),
    ("delete model tag", 5, "delete", "registered-models/delete-tag", {"name": "m", "key": "k"}),
    ("update model", 13, "patch", "registered-models/update", {"name": "m", "description": "d"}),
    ("rename model", 14, "post", "registered-models/rename", {"name": "m", "new_name": "n"}),
    (
        "create model",
        8,
        "post",
        "registered-models/create",
        {"name": "m2", "tags": [{"key": "t", "value": "1"}]},
    ),
    ("delete version", 20, "delete", "model-versions/delete", {"name": "m2", "version": "1"}),
    ("delete model", 23, "delete", "registered-models/delete", {"name": "m2"}),
]


def test_every_other_write(api, user, versions):
    services.model_version_create(actor=user, name="m", source="s3://b/m/4")
    counts = {}
    for name, _expected, method, path, body in WRITES:
        if name == "delete version":
            services.model_version_create(actor=user, name="m2", source="s3://b/m2/1")
        with CaptureQueriesContext(connection) as ctx:
            response = getattr(api, method)(
                path if path.startswith("/") else MLFLOW + path, body, format="json"
            )
        assert response.status_code == 200, (name, response.content)
        counts[name] = len(ctx.captured_queries)
    assert counts == {name: expected for name, expected, *_ in WRITES}


def test_the_remaining_writes(api, user, versions):
    """Comments, aliases deleted and rolled back, tokens, grants and a model's hooks: each write
    runs its pinned number of statements (counted as above)."""
    services.registered_model_alias_set(actor=user, name="m", alias="champion", version="1")
    services.registered_model_alias_set(actor=user, name="m", alias="champion", version="2")
    model_code_hex = RegisteredModel.objects.get(name="m").code.hex
    counts: dict[str, int] = {}

    def run(name: str, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
        with CaptureQueriesContext(connection) as ctx:
            response = getattr(api, method)(
                path if path.startswith("/") else MLFLOW + path, body, format="json"
            )
        assert response.status_code == 200, (name, response.content)
        counts[name] = len(ctx.captured_queries)
        return response.json()

    comment = run(
        "create comment",
        "post",
        "comments/create",
        {"name": "m", "version": "1", "comment": "looks good"},
    )["comment"]["id"]
    run("edit comment", "patch", "comments/update", {"id": comment, "comment": "looks fine"})
    run("delete comment", "delete", "comments/delete", {"id": comment})
    run(
        "roll an alias back",
        "post",
        REGISTRY + "aliases/rollback",
        {"name": "m", "alias": "champion"},
    )
    run("delete alias", "delete", "registered-models/alias", {"name": "m", "alias": "champion"})
    token = run("create token", "post", REGISTRY + "tokens/create", {"name": "ci"})["token"][
        "token_id"
    ]
    run("revoke token", "post", REGISTRY + "tokens/revoke", {"token_id": token})
    acl = {"access_control_list": [{"user_name": user.username, "permission_level": "CAN_MANAGE"}]}
    run("grant", "patch", f"/api/2.0/permissions/registered-models/{model_code_hex}", acl)
    run("replace grants", "put", f"/api/2.0/permissions/registered-models/{model_code_hex}", acl)
    hook = run(
        "create model hook",
        "post",
        "registry-webhooks/create",
        {
            "model_name": "m",
            "events": ["MODEL_VERSION_CREATED"],
            "http_url_spec": {"url": "https://example.com/hook"},
        },
    )["webhook"]["id"]
    run(
        "update model hook", "patch", "registry-webhooks/update", {"id": hook, "status": "DISABLED"}
    )
    run("delete model hook", "delete", "registry-webhooks/delete", {"id": hook})
    assert counts == REMAINING_WRITES


REMAINING_WRITES = {
    # The trail's entry (the model's lock and its chain) and the subscription lookup.
    "create comment": 14,
    "edit comment": 4,
    "delete comment": 4,
    # The alias's history and its signed record, under the model's lock.
    "roll an alias back": 14,
    "delete alias": 10,
    "create token": 7,
    "revoke token": 9,
    "grant": 12,
    "replace grants": 15,
    # Each change of a hook recomputes whether a hook can match (docs/decisions/0021).
    "create model hook": 14,
    "update model hook": 13,
    "delete model hook": 15,
}
