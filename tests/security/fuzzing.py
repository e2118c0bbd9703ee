"""What the API fuzzing passes share: the schema, the seeded registry, the caller, the checks.

The schema is the service's own OpenAPI document (``/api/schema/``), fetched from the WSGI
application in process, so the fuzzed requests run inside the caller's database transaction
(pytest-django's, or the long pass's own). Generated names rarely match anything, so the request
schemas are widened before loading: every ``name``, ``version``, ``alias``, id, ... may also take
one of the seeded values (``SEEDED``), and generated requests then reach existing objects often
enough to exercise the code behind the lookups, including the refusals for a model the caller
may not manage.

The caller is a realistic one: not an admin, signed in with an API token (Bearer), holding
``CAN_MANAGE`` on two models and the registry-wide default on a third that someone else owns.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import schemathesis
from django.contrib.auth import get_user_model
from django.core.handlers.wsgi import WSGIHandler
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from schemathesis import checks as st_checks

from accounts import services as account_services
from accounts.models import RegisteredModelGrant
from registry import services
from registry.models import Comment, RegisteredModel
from webhooks.models import Webhook, WebhookDelivery, WebhookFlavor
from webhooks.services.management import webhook_create

FUZZER = "fuzzer"
OWNER = "fuzz-owner"
MANAGED_MODELS = ("fuzz-a", "fuzz-b")  # the fuzzer holds CAN_MANAGE on these
OTHER_MODEL = "fuzz-other"  # someone else's: the fuzzer has the registry's default level

# Fixed identities, so the widened schema can name them before anything is seeded.
MODEL_CODES = {
    "fuzz-a": uuid.UUID("0f0f0f0f-0000-4000-8000-00000000000a"),
    "fuzz-b": uuid.UUID("0f0f0f0f-0000-4000-8000-00000000000b"),
    OTHER_MODEL: uuid.UUID("0f0f0f0f-0000-4000-8000-0000000000ff"),
}
DATABRICKS_HOOK = uuid.UUID("0f0f0f0f-0000-4000-8000-000000000d01")
MLFLOW_HOOK = uuid.UUID("0f0f0f0f-0000-4000-8000-000000000e01")
DELIVERY = uuid.UUID("0f0f0f0f-0000-4000-8000-000000000f01")
COMMENT = uuid.UUID("0f0f0f0f-0000-4000-8000-000000000c01")
# A receiver address where nothing listens: a webhook test fails fast with "connection refused".
HOOK_URL = "http://127.0.0.1:9/hook"

# Request fields and parameters that name seeded things, and the values they may take.
SEEDED: dict[str, list[Any]] = {
    "name": [*MANAGED_MODELS, OTHER_MODEL],
    "model_name": [*MANAGED_MODELS, OTHER_MODEL],
    "new_name": ["fuzz-renamed"],
    "version": ["1", "2", "3"],
    "alias": ["champion"],
    "key": ["team"],
    "stage": ["None", "Staging", "Production", "Archived"],
    "model_id": [code.hex for code in MODEL_CODES.values()],
    "webhook_id": [DATABRICKS_HOOK.hex, str(MLFLOW_HOOK)],
    "id": [str(COMMENT), DATABRICKS_HOOK.hex],
    "delivery_id": [str(DELIVERY)],
    "path": [f"models/{MODEL_CODES['fuzz-a']}/1/MLmodel", f"uploads/{FUZZER}/a.txt"],
}


@dataclass(frozen=True)
class Seeded:
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def seed_registry() -> Seeded:
    """The fuzzer, its grants and token, and the objects the widened schema names."""
    users = get_user_model()
    owner = users.objects.create_user(OWNER, password="fuzz-owner-password")  # noqa: S106
    fuzzer = users.objects.create_user(FUZZER, password="fuzzer-password")  # noqa: S106
    for name in (*MANAGED_MODELS, OTHER_MODEL):
        services.registered_model_create(
            actor=owner, name=name, tags=[{"key": "team", "value": "fuzz"}], description="seed"
        )
        RegisteredModel.objects.filter(name=name).update(code=MODEL_CODES[name])
        for number in (1, 2):
            services.model_version_create(
                actor=owner,
                name=name,
                source=f"s3://fuzz-bucket/{name}/{number}",
                tags=[{"key": "team", "value": "fuzz"}],
            )
        services.registered_model_alias_set(actor=owner, name=name, alias="champion", version="1")
    for name in MANAGED_MODELS:
        RegisteredModelGrant.objects.create(
            registered_model=RegisteredModel.objects.get(name=name), user=fuzzer, level="CAN_MANAGE"
        )
    services.transition_request_create(actor=owner, name="fuzz-a", version="2", stage="Staging")
    comment = services.comment_create(actor=owner, name="fuzz-a", version="1", comment="seed")
    Comment.objects.filter(pk=comment.pk).update(code=COMMENT)
    hook = webhook_create(
        actor=owner,
        flavor=WebhookFlavor.DATABRICKS,
        model_name="fuzz-a",
        events=["MODEL_VERSION_CREATED"],
        url=HOOK_URL,
    )
    Webhook.objects.filter(pk=hook.pk).update(code=DATABRICKS_HOOK)
    hook = webhook_create(
        actor=None,
        flavor=WebhookFlavor.MLFLOW,
        name="fuzz-ml-hook",
        events=[{"entity": "model_version", "action": "created"}],
        url=HOOK_URL,
    )
    Webhook.objects.filter(pk=hook.pk).update(code=MLFLOW_HOOK)
    services.model_version_create(actor=owner, name="fuzz-a", source="s3://fuzz-bucket/a/3")
    delivery = WebhookDelivery.objects.filter(webhook__code=DATABRICKS_HOOK).get()
    WebhookDelivery.objects.filter(pk=delivery.pk).update(code=DELIVERY, status="FAILED")
    created = account_services.api_token_create(actor=fuzzer, name="fuzzing")
    return Seeded(token=created.secret)


# --- Schema -------------------------------------------------------------------------------------


def _widen(node: Any, seeded: dict[str, list[Any]]) -> None:
    """Let every property/parameter named in SEEDED also take one of the seeded values."""
    if isinstance(node, dict):
        properties = node.get("properties")
        if isinstance(properties, dict):
            for field, sub in list(properties.items()):
                if field in seeded and isinstance(sub, dict) and sub.get("type") == "string":
                    properties[field] = {"anyOf": [{"enum": seeded[field]}, sub]}
        if "in" in node and node.get("name") in seeded and isinstance(node.get("schema"), dict):
            if node["schema"].get("type") == "string":
                node["schema"] = {"anyOf": [{"enum": seeded[node["name"]]}, node["schema"]]}
        for value in node.values():
            _widen(value, seeded)
    elif isinstance(node, list):
        for item in node:
            _widen(item, seeded)


def widened(raw: dict[str, Any]) -> dict[str, Any]:
    """The schema with request inputs widened to the seeded values (responses untouched)."""
    schema = copy.deepcopy(raw)
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            if isinstance(operation, dict):
                _widen(operation.get("parameters", []), SEEDED)
                _widen(operation.get("requestBody", {}), SEEDED)
    # Request bodies refer to components; widen the request components (not the responses).
    for name, component in schema.get("components", {}).get("schemas", {}).items():
        if name.endswith("Request"):
            _widen(component, SEEDED)
    return schema


def raw_schema(app: WSGIHandler) -> dict[str, Any]:
    """The schema as the service serves it."""
    from django.test import Client

    response = Client().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200, response.content[:500]
    return json.loads(response.content)


@contextmanager
def connection_kept_open() -> Iterator[None]:
    """Keep the caller's database connection (and its transaction) across in-process requests.

    The WSGI handler closes the connection when a request starts and when it finishes; Django's
    test client turns that off for the same reason.
    """
    for signal in (request_started, request_finished):
        signal.disconnect(close_old_connections)
    try:
        yield
    finally:
        for signal in (request_started, request_finished):
            signal.connect(close_old_connections)


def load_schema() -> Any:
    from django.core.wsgi import get_wsgi_application

    app = get_wsgi_application()
    schema = schemathesis.openapi.from_dict(widened(raw_schema(app)))
    schema.app = app
    return schema


# --- Checks -------------------------------------------------------------------------------------


def error_envelope(ctx: Any, response: Any, case: Any) -> bool | None:
    """Every 4xx/5xx of the API is ``{"error_code": str, "message": str}`` and nothing else."""
    if response.status_code < 400:
        return None
    try:
        body = json.loads(response.content)
    except ValueError:
        body = None
    if (
        isinstance(body, dict)
        and set(body) == {"error_code", "message"}
        and isinstance(body["error_code"], str)
        and isinstance(body["message"], str)
    ):
        return None
    raise AssertionError(
        f"{response.status_code} answer is not {{'error_code': str, 'message': str}}: "
        f"{response.content[:300].decode(errors='replace')}"
    )


CHECKS = [
    st_checks.not_a_server_error,
    st_checks.status_code_conformance,
    st_checks.content_type_conformance,
    st_checks.response_schema_conformance,
    st_checks.response_headers_conformance,
    error_envelope,
]


def failed_checks(case: Any, response: Any) -> list[tuple[str, str]]:
    """(check name, message) of every check the response fails, without raising."""
    failed = []
    for check in CHECKS:
        try:
            case.validate_response(response, checks=[check])
        except (AssertionError, BaseExceptionGroup) as exc:
            request = response.request
            failed.append((check.__name__, f"{request.method} {request.url}\n{exc}"))
    return failed


@contextmanager
def artifact_copy_done_at_once() -> Iterator[None]:
    """Versions become READY at once, as in the test suite (``tests/conftest.py``): the seeded
    sources are made up and no copy worker runs."""
    from registry.artifacts import services as artifact_services
    from registry.models import ModelVersion, ModelVersionStatus

    def copied(*, model_version: Any) -> None:
        ModelVersion.objects.filter(pk=model_version.pk).update(status=ModelVersionStatus.READY)
        model_version.status = ModelVersionStatus.READY

    saved = (
        artifact_services.model_version_copy_schedule,
        artifact_services.artifacts_delete_schedule,
    )
    artifact_services.model_version_copy_schedule = copied
    artifact_services.artifacts_delete_schedule = lambda *, folder: None
    try:
        yield
    finally:
        (
            artifact_services.model_version_copy_schedule,
            artifact_services.artifacts_delete_schedule,
        ) = saved
