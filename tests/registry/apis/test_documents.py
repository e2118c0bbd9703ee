"""The one-statement reads (registry/selectors/documents.py) answer exactly what the output
serializers render from the ORM selectors, signed in with a password, a Bearer token or HTTP
Basic with a token; the token is checked by the statement with the rules of the
authentication classes (docs/decisions/0019-hot-reads-in-one-statement.md).

Run on PostgreSQL by the suite, and on SQLite (the embedded default) with
``DATABASE_URL=sqlite:///...``: the JSON is built by each database's own functions.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts import services as accounts_services
from accounts.models import ApiToken, PermissionLevel
from registry import apis, selectors, services
from tests.conftest import PASSWORD, basic_auth

pytestmark = pytest.mark.django_db


@pytest.fixture
def model(user):
    services.registered_model_create(
        actor=user,
        name="fraud",
        description="Finds fraud",
        tags=[{"key": "team", "value": "risk"}, {"key": "empty", "value": ""}],
    )
    for number in (1, 2, 3, 4):
        services.model_version_create(
            actor=user,
            name="fraud",
            source=f"s3://bucket/fraud/{number}",
            run_id=f"run-{number}",
            description=f'v{number} ünïcode "quoted" \\ back',
            tags=[{"key": "dataset", "value": f"ds-{number}"}, {"key": "k", "value": "v"}],
        )
    services.model_version_stage_transition(actor=user, name="fraud", version=2, stage="Staging")
    services.model_version_stage_transition(actor=user, name="fraud", version=3, stage="Production")
    services.registered_model_alias_set(actor=user, name="fraud", alias="champion", version=2)
    services.registered_model_alias_set(actor=user, name="fraud", alias="beta", version=3)
    services.registered_model_alias_set(actor=user, name="fraud", alias="alpha", version=3)
    services.registered_model_create(actor=user, name="empty")


@pytest.fixture
def secret(user) -> str:
    return accounts_services.api_token_create(actor=None, user=user, name="t").secret


def _clients(user, secret) -> dict[str, APIClient]:
    clients = {}
    for label, header in (
        ("password", basic_auth(user.username)),
        ("bearer", f"Bearer {secret}"),
        ("basic-token", basic_auth(user.username, secret)),
    ):
        clients[label] = APIClient()
        clients[label].credentials(HTTP_AUTHORIZATION=header)
    return clients


def _expected(user) -> dict[str, object]:
    version = selectors.model_version_get(actor=user, name="fraud", version=3)
    latest = selectors.model_version_latest(actor=user, name="fraud")
    detail = selectors.registered_model_detail(actor=user, name="fraud")
    empty = selectors.registered_model_detail(actor=user, name="empty")
    return {
        "version": {"model_version": apis.ModelVersionSerializer(version).data},
        "latest": {"model_versions": apis.ModelVersionSerializer(latest, many=True).data},
        "model": {"registered_model": apis.RegisteredModelSerializer(detail).data},
        "empty": {"registered_model": apis.RegisteredModelSerializer(empty).data},
        "databricks": {
            "registered_model_databricks": apis.DatabricksRegisteredModelSerializer(
                detail, context={"actor": user}
            ).data
        },
    }


def test_same_json_as_the_serializers(user, model, secret):
    expected = _expected(user)
    base = "/api/2.0/mlflow"
    for label, client in _clients(user, secret).items():
        reads = {
            "version": client.get(f"{base}/model-versions/get", {"name": "fraud", "version": 3}),
            "alias": client.get(
                f"{base}/registered-models/alias", {"name": "fraud", "alias": "beta"}
            ),
            "latest-alias": client.get(
                f"{base}/registered-models/alias", {"name": "fraud", "alias": "LATEST"}
            ),
            "latest": client.post(
                f"{base}/registered-models/get-latest-versions", {"name": "fraud"}, format="json"
            ),
            "model": client.get(f"{base}/registered-models/get", {"name": "fraud"}),
            "empty": client.get(f"{base}/registered-models/get", {"name": "empty"}),
            "databricks": client.get(f"{base}/databricks/registered-models/get", {"name": "fraud"}),
        }
        for read, response in reads.items():
            assert response.status_code == 200, (label, read, response.content)
        assert reads["version"].json() == expected["version"], label
        assert reads["alias"].json() == expected["version"], label
        assert reads["latest-alias"].json()["model_version"]["version"] == "4", label
        assert reads["latest"].json() == expected["latest"], label
        assert reads["model"].json() == expected["model"], label
        assert reads["empty"].json() == expected["empty"], label
        assert reads["databricks"].json() == expected["databricks"], label
        assert reads["version"].json()["model_version"]["aliases"] == ["alpha", "beta"]


def test_latest_versions_by_stage(user, model, secret):
    client = _clients(user, secret)["bearer"]
    response = client.get(
        "/api/2.0/mlflow/registered-models/get-latest-versions",
        {"name": "fraud", "stages": "Staging"},
    )
    assert [v["version"] for v in response.json()["model_versions"]] == ["2"]


def test_searches_same_json_as_the_serializers(user, model, secret):
    versions, _ = selectors.model_version_search(actor=user, filter_string="name = 'fraud'")
    models, _ = selectors.registered_model_search(actor=user)
    client = _clients(user, secret)["bearer"]
    response = client.get("/api/2.0/mlflow/model-versions/search", {"filter": "name = 'fraud'"})
    assert response.json() == {
        "model_versions": apis.ModelVersionSerializer(versions, many=True).data
    }
    response = client.get("/api/2.0/mlflow/registered-models/search")
    assert response.json() == {
        "registered_models": apis.RegisteredModelSerializer(models, many=True).data
    }


@pytest.mark.parametrize("scheme", ["bearer", "basic-token"])
def test_revoked_expired_and_inactive_tokens_are_refused(user, model, secret, scheme):
    client = _clients(user, secret)[scheme]
    path = "/api/2.0/mlflow/model-versions/get"
    assert client.get(path, {"name": "fraud", "version": 1}).status_code == 200
    token = ApiToken.objects.get()
    ApiToken.objects.filter(pk=token.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    refused = client.get(path, {"name": "fraud", "version": 1})
    assert refused.status_code == 401
    assert refused.json()["error_code"] == "UNAUTHENTICATED"
    assert refused.has_header("WWW-Authenticate")
    ApiToken.objects.filter(pk=token.pk).update(expires_at=None)
    assert client.get(path, {"name": "fraud", "version": 1}).status_code == 200
    accounts_services.api_token_revoke(actor=user, token_id=token.code)
    assert client.get(path, {"name": "fraud", "version": 1}).status_code == 401
    # Bad input with a bad token: the 401 comes first, as before.
    assert client.get(path, {"name": "fraud", "version": "x"}).status_code == 401
    ApiToken.objects.filter(pk=token.pk).update(revoked_at=None)
    user.is_active = False
    user.save()
    assert client.get(path, {"name": "fraud", "version": 1}).status_code == 401


def test_basic_token_of_another_user_is_refused(user, model, secret, django_user_model):
    django_user_model.objects.create_user(username="bob", password=PASSWORD)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=basic_auth("bob", secret))
    response = client.get("/api/2.0/mlflow/model-versions/get", {"name": "fraud", "version": 1})
    assert response.status_code == 401


def test_last_use_is_recorded(user, model, secret):
    client = _clients(user, secret)["bearer"]
    ApiToken.objects.update(last_used_at=None)
    client.get("/api/2.0/mlflow/registered-models/get", {"name": "fraud"})
    assert ApiToken.objects.get().last_used_at is not None


def test_not_found_and_bad_alias_answers(user, model, django_user_model):
    """A missing model or version is 404, a missing alias or a model without versions 400."""
    reader = django_user_model.objects.create_user(username="reader", password=PASSWORD)
    reader_secret = accounts_services.api_token_create(actor=None, user=reader, name="r").secret
    for header in (f"Bearer {reader_secret}", basic_auth("reader")):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=header)
        path = "/api/2.0/mlflow/model-versions/get"
        missing = client.get(path, {"name": "nope", "version": 1})
        assert missing.status_code == 404
        assert missing.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"
        version_missing = client.get(path, {"name": "fraud", "version": 99})
        assert version_missing.status_code == 404
        alias_missing = client.get(
            "/api/2.0/mlflow/registered-models/alias", {"name": "fraud", "alias": "nope"}
        )
        assert alias_missing.status_code == 400
        no_versions = client.get(
            "/api/2.0/mlflow/registered-models/alias", {"name": "empty", "alias": "latest"}
        )
        assert no_versions.status_code == 400


def test_private_models_need_a_grant(user, model, django_user_model, settings):
    """With a registry default below CAN_READ, the statement reads the caller's grants (their
    own and their groups'): 403 with and without the version, 200 once granted."""
    from django.contrib.auth.models import Group

    settings.REGISTRY = {**settings.REGISTRY, "DEFAULT_PERMISSION_LEVEL": "NONE"}
    reader = django_user_model.objects.create_user(username="reader", password=PASSWORD)
    secret = accounts_services.api_token_create(actor=None, user=reader, name="r").secret
    fraud = selectors.registered_model_by_name("fraud")
    for header in (f"Bearer {secret}", basic_auth("reader")):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=header)
        path = "/api/2.0/mlflow/model-versions/get"
        for version in (1, 99):
            refused = client.get(path, {"name": "fraud", "version": version})
            assert refused.status_code == 403, refused.content
            assert refused.json()["error_code"] == "PERMISSION_DENIED"
        assert client.get(path, {"name": "nope", "version": 1}).status_code == 404
        for other in (
            client.get("/api/2.0/mlflow/registered-models/get", {"name": "fraud"}),
            client.get("/api/2.0/mlflow/registered-models/get-latest-versions", {"name": "fraud"}),
            client.get(
                "/api/2.0/mlflow/registered-models/alias", {"name": "fraud", "alias": "beta"}
            ),
        ):
            assert other.status_code == 403, other.content
    group = Group.objects.create(name="readers")
    reader.groups.add(group)
    accounts_services.registered_model_permissions_update(
        actor=user,
        registered_model=fraud,
        access_control_list=[
            {"group_name": "readers", "permission_level": PermissionLevel.CAN_READ}
        ],
        replace=False,
    )
    for header in (f"Bearer {secret}", basic_auth("reader")):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=header)
        ok = client.get("/api/2.0/mlflow/model-versions/get", {"name": "fraud", "version": 1})
        assert ok.status_code == 200, ok.content
        databricks = client.get(
            "/api/2.0/mlflow/databricks/registered-models/get", {"name": "fraud"}
        )
        assert databricks.json()["registered_model_databricks"]["permission_level"] == "CAN_READ"


def test_a_password_that_looks_like_a_token_still_signs_in(user, model):
    """The statement finds no such token; the call then goes through HTTP Basic as before,
    which tries it as the password."""
    password = "mrt_" + "p" * 43
    user.set_password(password)
    user.save()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=basic_auth(user.username, password))
    response = client.get("/api/2.0/mlflow/model-versions/get", {"name": "fraud", "version": 1})
    assert response.status_code == 200, response.content
    assert response.json()["model_version"]["version"] == "1"
