"""The trail of a deleted version stays readable through the API: by whoever may read its model
while the model exists, by registry admins once the model is gone too. Deletions are entries
on the trail, written in the deletion's transaction, and the rows cannot be removed."""

from __future__ import annotations

import pytest
from django.db import DatabaseError, connection, transaction
from rest_framework.test import APIClient

from accounts.models import RegisteredModelGrant
from registry import services
from registry.models import Activity, RegisteredModel
from tests.conftest import PASSWORD, basic_auth

pytestmark = pytest.mark.django_db

MLFLOW = "/api/2.0/mlflow"
ACTIVITIES = "/api/2.0/registry/model-versions/activities"


def as_user(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=basic_auth(user.username, PASSWORD))
    return client


@pytest.fixture
def people(django_user_model, settings):
    """root (admin), owner (CAN_MANAGE of m), reader (CAN_READ), outsider (nothing). Version 1
    of m went to Staging by request; version 2 exists."""
    settings.REGISTRY = {**settings.REGISTRY, "DEFAULT_PERMISSION_LEVEL": "NONE"}
    found = {"root": django_user_model.objects.create_superuser("root", password=PASSWORD)}
    for name in ("owner", "reader", "outsider"):
        found[name] = django_user_model.objects.create_user(name, password=PASSWORD)
    services.registered_model_create(actor=found["owner"], name="m")
    RegisteredModelGrant.objects.create(
        registered_model=RegisteredModel.objects.get(), user=found["reader"], level="CAN_READ"
    )
    for n in (1, 2):
        services.model_version_create(actor=found["owner"], name="m", source=f"s3://b/m/{n}")
    services.transition_request_create(
        actor=found["reader"], name="m", version="1", stage="Staging"
    )
    services.transition_request_approve(
        actor=found["owner"], name="m", version="1", stage="Staging"
    )
    return found


def activities(response) -> list[tuple[str, str, str]]:
    assert response.status_code == 200, response.content
    return [
        (a["activity_type"], a["user_id"], a["from_stage"]) for a in response.json()["activities"]
    ]


def error(response, status: int, code: str, text: str) -> None:
    assert response.status_code == status, response.content
    assert response.json()["error_code"] == code
    assert text in response.json()["message"]


def delete_version(client: APIClient, version: str, name: str = "m") -> None:
    response = client.delete(
        f"{MLFLOW}/model-versions/delete", {"name": name, "version": version}, format="json"
    )
    assert response.status_code == 200, response.content


def test_a_deleted_versions_trail_is_read_like_a_live_one(people):
    owner, reader = as_user(people["owner"]), as_user(people["reader"])
    live = activities(reader.get(ACTIVITIES, {"name": "m", "version": "1"}))
    assert live == [
        ("REQUESTED_TRANSITION", "reader", "None"),
        ("APPROVED_REQUEST", "owner", "None"),
    ]

    delete_version(owner, "1")

    assert activities(reader.get(ACTIVITIES, {"name": "m", "version": "1"})) == [
        *live,
        ("DELETED_MODEL_VERSION", "owner", "Staging"),
    ]
    entry = Activity.objects.get(activity_type="DELETED_MODEL_VERSION")
    assert (entry.model_name, entry.version, entry.to_stage) == ("m", 1, "")
    # The version itself is gone, as MLflow's protocol says.
    gone = reader.get(f"{MLFLOW}/model-versions/get", {"name": "m", "version": "1"})
    error(gone, 404, "RESOURCE_DOES_NOT_EXIST", "Model Version (name=m, version=1) not found")
    # The trail is found by the model, whatever it is called now.
    services.registered_model_rename(actor=people["owner"], name="m", new_name="m2")
    assert activities(reader.get(ACTIVITIES, {"name": "m2", "version": "1"}))[-1] == (
        "DELETED_MODEL_VERSION",
        "owner",
        "Staging",
    )


def test_who_may_read_a_deleted_versions_trail(people):
    delete_version(as_user(people["owner"]), "1")
    query = {"name": "m", "version": "1"}

    error(
        as_user(people["outsider"]).get(ACTIVITIES, query),
        403,
        "PERMISSION_DENIED",
        "User 'outsider' may not read registered model 'm'",
    )
    error(APIClient().get(ACTIVITIES, query), 401, "UNAUTHENTICATED", "Authentication")
    # A number the model never gave out: 404, as before.
    error(
        as_user(people["reader"]).get(ACTIVITIES, {**query, "version": "9"}),
        404,
        "RESOURCE_DOES_NOT_EXIST",
        "Model Version (name=m, version=9) not found",
    )


def test_a_deleted_models_trails_are_for_registry_admins(people):
    reader, root = as_user(people["reader"]), as_user(people["root"])
    before = activities(reader.get(ACTIVITIES, {"name": "m", "version": "1"}))
    response = as_user(people["owner"]).delete(
        f"{MLFLOW}/registered-models/delete", {"name": "m"}, format="json"
    )
    assert response.status_code == 200, response.content

    # Every version's deletion is on its trail, in the model deletion's transaction.
    assert activities(root.get(ACTIVITIES, {"name": "m", "version": "1"})) == [
        *before,
        ("DELETED_MODEL_VERSION", "owner", "Staging"),
    ]
    assert activities(root.get(ACTIVITIES, {"name": "m", "version": "2"})) == [
        ("DELETED_MODEL_VERSION", "owner", "None"),
    ]
    # Grants went with the model: nobody else can be said to read it any more.
    for who in ("reader", "owner", "outsider"):
        error(
            as_user(people[who]).get(ACTIVITIES, {"name": "m", "version": "1"}),
            404,
            "RESOURCE_DOES_NOT_EXIST",
            "Registered Model with name=m not found",
        )
    error(
        root.get(ACTIVITIES, {"name": "m", "version": "3"}),
        404,
        "RESOURCE_DOES_NOT_EXIST",
        "Model Version (name=m, version=3) not found",
    )
    # A new model of the same name: the name means the model that has it now.
    services.registered_model_create(actor=people["owner"], name="m")
    error(
        root.get(ACTIVITIES, {"name": "m", "version": "1"}),
        404,
        "RESOURCE_DOES_NOT_EXIST",
        "Model Version (name=m, version=1) not found",
    )

    # And the deletion entries are as append-only as the rest of the trail.
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                "DELETE FROM registry_activity WHERE activity_type = 'DELETED_MODEL_VERSION'"
            )
    assert Activity.objects.filter(activity_type="DELETED_MODEL_VERSION").count() == 2
