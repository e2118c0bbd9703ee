"""Who may call what: every API endpoint × every kind of caller.

Callers: anonymous, signed in with no grant, each of the five levels granted directly, the same
levels granted through a group, and a registry admin. The registry-wide default level is NONE
here, so a caller holds exactly what the cell says. Each cell asserts the status and error
code, and for a refused call, that nothing in the database changed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.urls import get_resolver
from rest_framework.test import APIClient

from accounts.models import ApiToken, RegisteredModelGrant
from accounts.permissions import Level
from registry import services
from registry.models import (
    Activity,
    AliasApproval,
    AliasPolicy,
    AliasRequest,
    Comment,
    ImportRun,
    ModelVersion,
    ModelVersionTag,
    PointerMove,
    PromotionRecord,
    RegisteredModel,
    RegisteredModelAlias,
    RegisteredModelTag,
    StagePolicy,
    TransitionRequest,
)
from tests.conftest import PASSWORD, basic_auth
from webhooks.models import Webhook, WebhookDelivery, WebhookFlavor
from webhooks.services.management import webhook_create

pytestmark = pytest.mark.django_db

MLFLOW = "/api/2.0/mlflow/"
ALWAYS = "signed-in"  # any signed-in caller
FILTERED = "filtered"  # any signed-in caller; the answer lists only readable models
AUTHOR = "author"  # only the author of the thing (here "owner", who is not a caller)
ADMIN = "admin"  # registry admins only (registry-wide webhooks, cleaning another's uploads)
NOBODY = "nobody"  # refused to every caller, admins included (another user's uploads)
OWN_UPLOADS = "own uploads"  # listing uploads/: each caller sees their own area, admins all
PUBLIC = "public"  # anyone, anonymous callers included (the registry's public keys)


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    payload: dict[str, Any]
    needs: Level | str  # a level on model "m", ALWAYS or FILTERED
    result_key: str = ""  # for FILTERED: the list in the answer

    @property
    def id(self) -> str:
        return f"{self.method.upper()} {self.path}"


ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"


def _permissions_path(suffix: str = "") -> str:
    return "/api/2.0/permissions/registered-models/{id}" + suffix


ENDPOINTS = [
    Endpoint("post", MLFLOW + "registered-models/create", {"name": "{caller}-model"}, ALWAYS),
    Endpoint("get", MLFLOW + "registered-models/get", {"name": "m"}, Level.CAN_READ),
    Endpoint(
        "post",
        MLFLOW + "registered-models/rename",
        {"name": "m", "new_name": "m2"},
        Level.CAN_MANAGE,
    ),
    Endpoint(
        "patch",
        MLFLOW + "registered-models/update",
        {"name": "m", "description": "x"},
        Level.CAN_EDIT,
    ),
    Endpoint("delete", MLFLOW + "registered-models/delete", {"name": "m"}, Level.CAN_MANAGE),
    Endpoint(
        "get", MLFLOW + "registered-models/search", {}, FILTERED, result_key="registered_models"
    ),
    Endpoint(
        "post", MLFLOW + "registered-models/get-latest-versions", {"name": "m"}, Level.CAN_READ
    ),
    Endpoint(
        "get", MLFLOW + "registered-models/get-latest-versions", {"name": "m"}, Level.CAN_READ
    ),
    Endpoint(
        "post",
        MLFLOW + "registered-models/set-tag",
        {"name": "m", "key": "k", "value": "v"},
        Level.CAN_EDIT,
    ),
    Endpoint(
        "delete", MLFLOW + "registered-models/delete-tag", {"name": "m", "key": "t"}, Level.CAN_EDIT
    ),
    Endpoint(
        "post",
        MLFLOW + "registered-models/alias",
        {"name": "m", "alias": "prod", "version": "1"},
        Level.CAN_EDIT,
    ),
    Endpoint(
        "get",
        MLFLOW + "registered-models/alias",
        {"name": "m", "alias": "champion"},
        Level.CAN_READ,
    ),
    Endpoint(
        "delete",
        MLFLOW + "registered-models/alias",
        {"name": "m", "alias": "champion"},
        Level.CAN_EDIT,
    ),
    Endpoint(
        "post",
        MLFLOW + "model-versions/create",
        {"name": "m", "source": "s3://b/3"},
        Level.CAN_EDIT,
    ),
    Endpoint("get", MLFLOW + "model-versions/get", {"name": "m", "version": "1"}, Level.CAN_READ),
    Endpoint(
        "patch",
        MLFLOW + "model-versions/update",
        {"name": "m", "version": "1", "description": "x"},
        Level.CAN_EDIT,
    ),
    Endpoint(
        "delete", MLFLOW + "model-versions/delete", {"name": "m", "version": "1"}, Level.CAN_MANAGE
    ),
    Endpoint(
        "post",
        MLFLOW + "model-versions/transition-stage",
        {"name": "m", "version": "1", "stage": "Staging", "archive_existing_versions": False},
        Level.CAN_MANAGE_STAGING_VERSIONS,
    ),
    Endpoint(
        "post",
        MLFLOW + "model-versions/transition-stage",
        {"name": "m", "version": "2", "stage": "Production", "archive_existing_versions": True},
        Level.CAN_MANAGE_PRODUCTION_VERSIONS,
    ),
    Endpoint("get", MLFLOW + "model-versions/search", {}, FILTERED, result_key="model_versions"),
    Endpoint(
        "get",
        MLFLOW + "model-versions/get-download-uri",
        {"name": "m", "version": "1"},
        Level.CAN_READ,
    ),
    Endpoint(
        "post",
        MLFLOW + "model-versions/set-tag",
        {"name": "m", "version": "1", "key": "k", "value": "v"},
        Level.CAN_EDIT,
    ),
    Endpoint(
        "delete",
        MLFLOW + "model-versions/delete-tag",
        {"name": "m", "version": "1", "key": "t"},
        Level.CAN_EDIT,
    ),
    Endpoint("get", MLFLOW + "databricks/registered-models/get", {"name": "m"}, Level.CAN_READ),
    Endpoint(
        "post",
        MLFLOW + "transition-requests/create",
        {"name": "m", "version": "1", "stage": "Staging"},
        Level.CAN_READ,
    ),
    Endpoint(
        "post",
        MLFLOW + "transition-requests/approve",
        {"name": "m", "version": "2", "stage": "Staging", "archive_existing_versions": False},
        Level.CAN_MANAGE_STAGING_VERSIONS,
    ),
    Endpoint(
        "post",
        MLFLOW + "transition-requests/reject",
        {"name": "m", "version": "2", "stage": "Staging"},
        Level.CAN_MANAGE_STAGING_VERSIONS,
    ),
    Endpoint(
        "delete",
        MLFLOW + "transition-requests/delete",
        {"name": "m", "version": "2", "stage": "Staging", "creator": "owner"},
        Level.CAN_MANAGE,
    ),
    Endpoint(
        "get", MLFLOW + "transition-requests/list", {"name": "m", "version": "2"}, Level.CAN_READ
    ),
    Endpoint(
        "post",
        MLFLOW + "comments/create",
        {"name": "m", "version": "1", "comment": "hi"},
        Level.CAN_READ,
    ),
    Endpoint("patch", MLFLOW + "comments/update", {"id": "{comment}", "comment": "x"}, AUTHOR),
    Endpoint("delete", MLFLOW + "comments/delete", {"id": "{comment}"}, Level.CAN_MANAGE),
    Endpoint(
        "post",
        MLFLOW + "databricks/model-versions/transition-stage",
        {"name": "m", "version": "1", "stage": "Staging", "archive_existing_versions": False},
        Level.CAN_MANAGE_STAGING_VERSIONS,
    ),
    Endpoint(
        "get",
        MLFLOW + "model-versions/get-activities",
        {"name": "m", "version": "1"},
        Level.CAN_READ,
    ),
    Endpoint(
        "get",
        "/api/2.0/registry/model-versions/activities",
        {"name": "m", "version": "1"},
        Level.CAN_READ,
    ),
    Endpoint("get", "/api/2.0/registry/stage-policies/list", {"name": "m"}, Level.CAN_READ),
    Endpoint(
        "post",
        "/api/2.0/registry/stage-policies/set",
        {"name": "m", "stage": "Production", "required_approvals": 2},
        Level.CAN_MANAGE,
    ),
    Endpoint(
        "delete",
        "/api/2.0/registry/stage-policies/delete",
        {"name": "m", "stage": "Staging"},
        Level.CAN_MANAGE,
    ),
    # The registry-wide policies are floors under every model's own: only an admin sets them.
    Endpoint(
        "post",
        "/api/2.0/registry/stage-policies/set",
        {"stage": "Archived", "required_approvals": 1, "allow_direct_transition": True},
        ADMIN,
    ),
    Endpoint("delete", "/api/2.0/registry/stage-policies/delete", {"stage": "Archived"}, ADMIN),
    # Governed aliases: a model's alias policies need CAN_MANAGE, the registry-wide ones an
    # admin; anyone who reads a model may ask for an alias move; deciding a request to move an
    # alias no policy protects needs what moving it directly needs (CAN_EDIT).
    Endpoint("get", "/api/2.0/registry/alias-policies/list", {"name": "m"}, Level.CAN_READ),
    Endpoint(
        "post",
        "/api/2.0/registry/alias-policies/set",
        {"name": "m", "alias": "champion", "protected": True},
        Level.CAN_MANAGE,
    ),
    Endpoint(
        "delete",
        "/api/2.0/registry/alias-policies/delete",
        {"name": "m", "alias": "champion"},
        Level.CAN_MANAGE,
    ),
    Endpoint(
        "post",
        "/api/2.0/registry/alias-policies/set",
        {"alias": "champion", "protected": True},
        ADMIN,
    ),
    Endpoint("delete", "/api/2.0/registry/alias-policies/delete", {"alias": "champion"}, ADMIN),
    Endpoint(
        "post",
        "/api/2.0/registry/alias-requests/create",
        {"name": "m", "alias": "champion", "version": "2"},
        Level.CAN_READ,
    ),
    Endpoint(
        "post",
        "/api/2.0/registry/alias-requests/approve",
        {"name": "m", "alias": "challenger", "version": "2"},
        Level.CAN_EDIT,
    ),
    Endpoint(
        "post",
        "/api/2.0/registry/alias-requests/reject",
        {"name": "m", "alias": "challenger", "version": "2"},
        Level.CAN_EDIT,
    ),
    Endpoint(
        "delete",
        "/api/2.0/registry/alias-requests/delete",
        {"name": "m", "alias": "challenger", "version": "2"},
        Level.CAN_MANAGE,
    ),
    Endpoint("get", "/api/2.0/registry/alias-requests/list", {"name": "m"}, Level.CAN_READ),
    Endpoint(
        "get", "/api/2.0/registry/aliases/history", {"name": "m", "alias": "stable"}, Level.CAN_READ
    ),
    Endpoint(
        "post",
        "/api/2.0/registry/aliases/rollback",
        {"name": "m", "alias": "stable"},
        Level.CAN_EDIT,
    ),
    Endpoint(
        "get",
        "/api/2.0/registry/registered-models/as-of",
        {"name": "m", "alias": "stable", "timestamp": "4102444800000"},
        Level.CAN_READ,
    ),
    # Webhooks: a model's hooks need CAN_MANAGE on it; registry-wide (all MLflow) hooks an admin.
    Endpoint(
        "post",
        MLFLOW + "registry-webhooks/create",
        {
            "model_name": "m",
            "events": ["MODEL_VERSION_CREATED"],
            "http_url_spec": {"url": "http://127.0.0.1:9/new"},
        },
        Level.CAN_MANAGE,
    ),
    Endpoint("get", MLFLOW + "registry-webhooks/list", {}, ALWAYS),
    Endpoint(
        "patch",
        MLFLOW + "registry-webhooks/update",
        {"id": "{hook}", "description": "changed"},
        Level.CAN_MANAGE,
    ),
    Endpoint("delete", MLFLOW + "registry-webhooks/delete", {"id": "{hook}"}, Level.CAN_MANAGE),
    Endpoint("post", MLFLOW + "registry-webhooks/test", {"id": "{hook}"}, Level.CAN_MANAGE),
    Endpoint(
        "post",
        MLFLOW + "webhooks",
        {
            "name": "new-hook",
            "url": "http://127.0.0.1:9/ml",
            "events": [{"entity": "model_version", "action": "created"}],
        },
        ADMIN,
    ),
    Endpoint("get", MLFLOW + "webhooks", {}, ALWAYS),
    Endpoint("get", MLFLOW + "webhooks/{mlhook}", {}, ADMIN),
    Endpoint("patch", MLFLOW + "webhooks/{mlhook}", {"description": "changed"}, ADMIN),
    Endpoint("delete", MLFLOW + "webhooks/{mlhook}", {}, ADMIN),
    Endpoint("post", MLFLOW + "webhooks/{mlhook}/test", {}, ADMIN),
    Endpoint("get", "/api/2.0/registry/webhooks/{hook}/deliveries", {}, Level.CAN_MANAGE),
    Endpoint(
        "get", "/api/2.0/registry/webhooks/{hook}/deliveries/{delivery}", {}, Level.CAN_MANAGE
    ),
    Endpoint(
        "post",
        "/api/2.0/registry/webhooks/{hook}/deliveries/{delivery}/redeliver",
        {},
        Level.CAN_MANAGE,
    ),
    # Artifacts: a version's files need CAN_READ; uploads any user who may create versions, in
    # their own area (uploads/<username>/). Another user's area ("owner"'s) is refused, but for
    # admins reading and deleting (cleanup); nobody writes or registers it.
    Endpoint("get", ARTIFACTS, {"path": "{folder}"}, Level.CAN_READ),
    Endpoint("get", ARTIFACTS + "/{folder}/MLmodel", {}, Level.CAN_READ),
    Endpoint("put", ARTIFACTS + "/uploads/{caller}/f.txt", {}, ALWAYS),
    Endpoint("get", ARTIFACTS, {"path": "uploads/{caller}"}, ALWAYS),
    Endpoint("get", ARTIFACTS + "/uploads/{caller}/mine.txt", {}, ALWAYS),
    Endpoint("delete", ARTIFACTS + "/uploads/{caller}/mine.txt", {}, ALWAYS),
    Endpoint(
        "post",
        MLFLOW + "model-versions/create",
        {"name": "m", "source": "mlflow-artifacts:/uploads/{caller}/model"},
        Level.CAN_EDIT,
    ),
    Endpoint("get", ARTIFACTS, {"path": "uploads"}, OWN_UPLOADS),
    Endpoint("get", ARTIFACTS, {"path": "uploads/owner"}, ADMIN),
    Endpoint("get", ARTIFACTS + "/uploads/owner/model/MLmodel", {}, ADMIN),
    Endpoint("delete", ARTIFACTS + "/uploads/owner/model/MLmodel", {}, ADMIN),
    Endpoint("delete", ARTIFACTS + "/uploads/owner", {}, ADMIN),
    Endpoint("put", ARTIFACTS + "/uploads/owner/model/MLmodel", {}, NOBODY),
    Endpoint(
        "post",
        MLFLOW + "model-versions/create",
        {"name": "m", "source": "mlflow-artifacts:/uploads/owner/model"},
        NOBODY,
    ),
    Endpoint(
        "post",
        "/api/2.0/registry/model-versions/retry-registration",
        {"name": "m", "version": "4"},
        NOBODY,
    ),
    Endpoint(
        "get",
        "/api/2.0/registry/model-versions/manifest",
        {"name": "m", "version": "1"},
        Level.CAN_READ,
    ),
    Endpoint(
        "post",
        "/api/2.0/registry/model-versions/retry-registration",
        {"name": "m", "version": "3"},
        Level.CAN_EDIT,
    ),
    Endpoint(
        "post",
        "/api/2.0/registry/imports/start",
        {"source_url": "http://127.0.0.1:9", "artifacts": "reference"},
        ADMIN,
    ),
    Endpoint("get", "/api/2.0/registry/imports/get", {"id": "{import_run}"}, ADMIN),
    Endpoint("get", "/api/2.0/registry/signing-keys", {}, PUBLIC),
    Endpoint(
        "get",
        "/api/2.0/registry/model-versions/promotion-records",
        {"name": "m", "version": "1"},
        Level.CAN_READ,
    ),
    Endpoint("get", "/api/2.0/registry/promotion-records/get", {"id": "{record}"}, Level.CAN_READ),
    Endpoint("post", "/api/2.0/registry/tokens/create", {"name": "ci"}, ALWAYS),
    Endpoint("get", "/api/2.0/registry/tokens/list", {}, ALWAYS),
    Endpoint("post", "/api/2.0/registry/tokens/revoke", {"token_id": "{token}"}, ALWAYS),
    Endpoint("get", _permissions_path("/permissionLevels"), {}, Level.CAN_READ),
    Endpoint("get", _permissions_path(), {}, Level.CAN_MANAGE),
    Endpoint(
        "patch",
        _permissions_path(),
        {"access_control_list": [{"user_name": "owner", "permission_level": "CAN_READ"}]},
        Level.CAN_MANAGE,
    ),
    Endpoint("put", _permissions_path(), {"access_control_list": []}, Level.CAN_MANAGE),
]

LEVELS = [level for level in Level if level is not Level.NONE]
CALLERS = (
    ["anonymous", "no-grant"]
    + [f"user-{level.name}" for level in LEVELS]
    + [f"group-{level.name}" for level in LEVELS]
    + ["admin"]
)


def _held(caller: str) -> Level:
    if caller == "admin":
        return Level.CAN_MANAGE
    if caller.startswith(("user-", "group-")):
        return Level[caller.split("-", 1)[1]]
    return Level.NONE


def snapshot() -> dict[str, list[tuple[Any, ...]]]:
    """Everything a refused call must leave as it was."""
    return {
        "models": list(
            RegisteredModel.objects.order_by("pk").values_list(
                "pk", "name", "description", "updated_at", "last_version_number"
            )
        ),
        "versions": list(
            ModelVersion.objects.order_by("pk").values_list(
                "pk", "version", "current_stage", "description", "updated_at", "status"
            )
        ),
        "model_tags": list(RegisteredModelTag.objects.order_by("pk").values_list("key", "value")),
        "version_tags": list(ModelVersionTag.objects.order_by("pk").values_list("key", "value")),
        "aliases": list(
            RegisteredModelAlias.objects.order_by("pk").values_list("alias", "model_version")
        ),
        "grants": list(
            RegisteredModelGrant.objects.order_by("pk").values_list("user", "group", "level")
        ),
        "activities": list(Activity.objects.order_by("pk").values_list("pk")),
        "import_runs": list(ImportRun.objects.order_by("pk").values_list("pk", "status")),
        "tokens": list(ApiToken.objects.order_by("pk").values_list("pk", "revoked_at")),
        "requests": list(TransitionRequest.objects.order_by("pk").values_list("pk", "status")),
        "comments": list(Comment.objects.order_by("pk").values_list("pk", "text")),
        "policies": list(
            StagePolicy.objects.order_by("pk").values_list("pk", "stage", "required_approvals")
        ),
        "alias policies": list(
            AliasPolicy.objects.order_by("pk").values_list("pk", "alias", "protected")
        ),
        "alias requests": list(AliasRequest.objects.order_by("pk").values_list("pk", "status")),
        "alias approvals": list(AliasApproval.objects.order_by("pk").values_list("pk")),
        "history": list(PointerMove.objects.order_by("pk").values_list("pk")),
        "webhooks": list(
            Webhook.objects.order_by("pk").values_list("pk", "description", "status", "url")
        ),
        "deliveries": list(
            WebhookDelivery.objects.order_by("pk").values_list("pk", "status", "attempt_count")
        ),
        "stored files": _stored_files(),
    }


def _stored_files() -> list[tuple[str, str]]:
    """Every file of the (local) store, with a hash of its bytes."""
    from registry.artifacts.storage import get_store

    root = get_store().path("")
    return sorted(
        (path.relative_to(root).as_posix(), hashlib.sha256(path.read_bytes()).hexdigest())
        for path in root.rglob("*")
        if path.is_file()
    )


@pytest.fixture
def world(settings, tmp_path):
    """Model "m" (owned by "owner") with versions, tags, an alias, a request, a comment, a
    policy, webhooks with a delivery, stored files, and one caller per kind."""
    settings.REGISTRY = {**settings.REGISTRY, "DEFAULT_PERMISSION_LEVEL": "NONE"}
    settings.ARTIFACT_STORE_URI = (tmp_path / "store").as_uri()
    users = get_user_model()
    owner = users.objects.create_user("owner", password=PASSWORD)
    services.registered_model_create(
        actor=owner, name="m", tags=[{"key": "t", "value": "1"}], description="model"
    )
    services.model_version_create(
        actor=owner, name="m", source="s3://b/1", tags=[{"key": "t", "value": "1"}]
    )
    services.model_version_create(actor=owner, name="m", source="s3://b/2")
    # Signed: the alias moves below write promotion records (versions with a digest).
    settings.PROVENANCE = {
        **settings.PROVENANCE,
        "SIGNING_KEY": ec.generate_private_key(ec.SECP256R1())
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode(),
    }
    ModelVersion.objects.update(artifact_digest="sha256:" + "ab" * 32)
    services.registered_model_alias_set(actor=owner, name="m", alias="champion", version="1")
    # "stable" moved once, so it can be rolled back; a request to point "challenger" at 2.
    services.registered_model_alias_set(actor=owner, name="m", alias="stable", version="2")
    services.registered_model_alias_set(actor=owner, name="m", alias="stable", version="1")
    services.alias_request_create(actor=owner, name="m", alias="challenger", version="2")
    services.transition_request_create(actor=owner, name="m", version="2", stage="Staging")
    services.comment_create(actor=owner, name="m", version="1", comment="first")
    StagePolicy.objects.create(
        registered_model=RegisteredModel.objects.get(name="m"), stage="Staging"
    )
    webhook_create(
        actor=owner,
        flavor=WebhookFlavor.DATABRICKS,
        model_name="m",
        events=["MODEL_VERSION_CREATED"],
        url="http://127.0.0.1:9/hook",
    )
    webhook_create(
        actor=None,
        flavor=WebhookFlavor.MLFLOW,
        name="ml-hook",
        events=[{"entity": "model_version", "action": "created"}],
        url="http://127.0.0.1:9/ml",
    )
    services.model_version_create(actor=owner, name="m", source="s3://b/3")  # one delivery each
    services.model_version_create(
        actor=owner, name="m", source="mlflow-artifacts:/uploads/owner/model"
    )
    # The copies of versions 3 and 4 failed: their registration can be retried (version 4's
    # only by the owner of the uploaded files).
    ModelVersion.objects.filter(version__in=[3, 4]).update(
        status="FAILED_REGISTRATION", status_message="Copy failed: the store was down."
    )
    ImportRun.objects.create(source_url="http://127.0.0.1:9", status="SUCCEEDED")
    # A finished delivery (only those can be redelivered) and files in the store.
    WebhookDelivery.objects.update(status="FAILED")
    registered_model = RegisteredModel.objects.get(name="m")
    store = tmp_path / "store"
    for folder in (f"models/{registered_model.code}/1", "uploads/owner/model"):
        (store / folder).mkdir(parents=True)
    (store / f"models/{registered_model.code}/1/MLmodel").write_text("flavors: {}")
    (store / "uploads/owner/model/MLmodel").write_text("the owner's model")
    registered_model = RegisteredModel.objects.get(name="m")
    for caller in CALLERS[1:]:
        user = users.objects.create_user(caller, password=PASSWORD, is_superuser=caller == "admin")
        (store / "uploads" / caller).mkdir()
        (store / "uploads" / caller / "mine.txt").write_text(f"{caller}'s file")
        if caller.startswith("user-"):
            RegisteredModelGrant.objects.create(
                registered_model=registered_model, user=user, level=_held(caller).name
            )
        elif caller.startswith("group-"):
            group = Group.objects.create(name=f"team-{caller}")
            group.user_set.add(user)
            RegisteredModelGrant.objects.create(
                registered_model=registered_model, group=group, level=_held(caller).name
            )
    return registered_model


def _client(caller: str) -> APIClient:
    client = APIClient()
    if caller != "anonymous":
        client.credentials(HTTP_AUTHORIZATION=basic_auth(caller))
    return client


def _fill(value: Any, caller: str, registered_model: RegisteredModel, token: str) -> Any:
    if isinstance(value, str):
        return value.format(
            caller=caller,
            id=registered_model.code.hex,
            token=token,
            comment=Comment.objects.get().code,
            hook=Webhook.objects.get(flavor=WebhookFlavor.DATABRICKS).code.hex,
            mlhook=Webhook.objects.get(flavor=WebhookFlavor.MLFLOW).code,
            delivery=WebhookDelivery.objects.filter(webhook__flavor="DATABRICKS").first().code,
            folder=f"models/{registered_model.code}/1",
            import_run=ImportRun.objects.get().code,
            record=PromotionRecord.objects.get(kind="ALIAS", pointer="champion").code,
        )
    return value


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=[e.id for e in ENDPOINTS])
def test_authorization(world, endpoint: Endpoint, caller: str):
    token = ""
    if caller != "anonymous":
        owner = get_user_model().objects.get(username=caller)
        token = str(ApiToken.objects.create(user=owner, name="t", prefix="p", digest=caller).code)
    path = _fill(endpoint.path, caller, world, token)
    payload = {key: _fill(value, caller, world, token) for key, value in endpoint.payload.items()}
    before = snapshot()

    client = _client(caller)
    if endpoint.method == "get":
        response = client.get(path, payload)
    elif "mlflow-artifacts" in path:
        response = getattr(client, endpoint.method)(
            path, b"file body", content_type="application/octet-stream"
        )
    else:
        response = getattr(client, endpoint.method)(path, payload, format="json")
    body = response.json() if response["Content-Type"] == "application/json" else {}

    if endpoint.needs == PUBLIC:
        assert response.status_code == 200, body
        return
    if caller == "anonymous":
        assert (response.status_code, body["error_code"]) == (401, "UNAUTHENTICATED")
        assert snapshot() == before
        return
    held = _held(caller)
    if endpoint.needs == FILTERED:
        assert response.status_code == 200, body
        listed = body.get(endpoint.result_key, [])
        expected = (
            RegisteredModel.objects.count()
            if endpoint.result_key == "registered_models"
            else ModelVersion.objects.count()
        )
        assert len(listed) == (expected if held >= Level.CAN_READ else 0)
    elif endpoint.needs == OWN_UPLOADS:
        assert response.status_code == 200, body
        listed = [entry["path"] for entry in body["files"]]
        assert listed == (sorted(["owner", *CALLERS[1:]]) if caller == "admin" else [caller])
    elif endpoint.needs == NOBODY or (endpoint.needs == ADMIN and caller != "admin"):
        assert (response.status_code, body["error_code"]) == (403, "PERMISSION_DENIED"), body
        assert snapshot() == before
        if "uploads/owner" in path + str(payload):
            # The rule and the caller's own area; or, before it, the level the model needs.
            message = body["message"]
            area_rule = "only in their own area" in message
            assert (area_rule and f"yours is uploads/{caller}/" in message) or (
                not area_rule and "CAN_EDIT" in message
            ), body
    elif endpoint.needs == ADMIN:
        assert response.status_code == 200, body
    elif endpoint.needs == AUTHOR:
        assert (response.status_code, body["error_code"]) == (403, "PERMISSION_DENIED"), body
        assert snapshot() == before
    elif endpoint.needs == ALWAYS or held >= endpoint.needs:
        assert response.status_code == 200, body
    else:
        assert (response.status_code, body["error_code"]) == (403, "PERMISSION_DENIED"), body
        assert endpoint.needs.name in body["message"]
        assert snapshot() == before


@pytest.mark.parametrize("caller", CALLERS)
def test_the_policy_floor_holds_for_every_caller(world, caller: str):
    """Policy floor: the registry-wide Production policy forbids direct moves and asks for two
    approvals; model "m"'s own policy allows both. No caller, admins included, moves a version
    straight to Production or approves it in alone; each is refused by the level they lack or
    by the floor, and nothing changes."""
    StagePolicy.objects.create(
        registered_model=None,
        stage="Production",
        required_approvals=2,
        allow_direct_transition=False,
    )
    StagePolicy.objects.create(
        registered_model=world,
        stage="Production",
        required_approvals=1,
        allow_direct_transition=True,
        allow_self_approval=True,
    )
    before = snapshot()
    client = _client(caller)
    moved = client.post(
        MLFLOW + "databricks/model-versions/transition-stage",
        {"name": "m", "version": "1", "stage": "Production", "archive_existing_versions": False},
        format="json",
    )
    body = moved.json()
    if caller == "anonymous":
        assert (moved.status_code, body["error_code"]) == (401, "UNAUTHENTICATED")
    elif _held(caller) < Level.CAN_MANAGE_PRODUCTION_VERSIONS:
        assert (moved.status_code, body["error_code"]) == (403, "PERMISSION_DENIED"), body
        assert "CAN_MANAGE_PRODUCTION_VERSIONS" in body["message"]
    else:
        assert (moved.status_code, body["error_code"]) == (403, "PERMISSION_DENIED"), body
        assert "registry-wide one as its floor" in body["message"]
        assert "allow_direct_transition is off" in body["message"], body
    assert snapshot() == before

    listed = client.get("/api/2.0/registry/stage-policies/list", {"name": "m"})
    if _held(caller) >= Level.CAN_READ:
        production = next(p for p in listed.json()["policies"] if p["stage"] == "Production")
        assert production["registry_floor"] is True
        assert production["required_approvals"] == 2
        assert production["allow_direct_transition"] is False


def test_the_matrix_covers_every_api_endpoint():
    """A new endpoint must be added to the matrix above."""
    covered = {e.path.replace(MLFLOW, "api/2.0/mlflow/").lstrip("/") for e in ENDPOINTS}
    covered = {path.replace("{folder}/MLmodel", "<path:path>") for path in covered}
    covered = {path.replace("uploads/{caller}/f.txt", "<path:path>") for path in covered}
    placeholders = {
        "{id}": "<str:model_id>",
        "{hook}": "<str:webhook_id>",
        "{mlhook}": "<str:webhook_id>",
        "{delivery}": "<str:delivery_id>",
    }
    for placeholder, converter in placeholders.items():
        covered = {path.replace(placeholder, converter) for path in covered}
    routes = set()

    def walk(patterns, prefix=""):
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if hasattr(pattern, "url_patterns"):
                walk(pattern.url_patterns, route)
            else:
                routes.add(route)

    walk(get_resolver().url_patterns)
    api_routes = {
        route
        for route in routes
        if route.startswith("api/2.0/")
        and not route.startswith(("api/2.0/preview/", "api/schema", "api/docs"))
    }
    assert api_routes - covered == set()
