"""What the API fuzzing passes found, each kept as a plain regression test.

Each test names what was wrong. Most findings were the schema saying something other than what
the service does (clients generated from it, and the fuzzer, then reject correct answers); the
tests check both sides: the schema as served and a real answer.
"""

from __future__ import annotations

from typing import Any

import pytest

from registry import services
from webhooks.models import WebhookFlavor
from webhooks.services.management import webhook_create

pytestmark = pytest.mark.django_db

MLFLOW = "/api/2.0/mlflow/"
METHODS = ("get", "post", "put", "patch", "delete")


@pytest.fixture
def schema(anonymous_api) -> dict[str, Any]:
    response = anonymous_api.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    return response.json()


def _operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method, path, operation)
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    ]


def _response_schema(schema: dict[str, Any], path: str, method: str, status: str = "200") -> Any:
    content = schema["paths"][path][method]["responses"][status]["content"]
    ref = content["application/json"]["schema"]["$ref"]
    return schema["components"]["schemas"][ref.rsplit("/", 1)[1]]


def _request_schema(schema: dict[str, Any], path: str, method: str) -> Any:
    content = schema["paths"][path][method]["requestBody"]["content"]
    ref = content["application/json"]["schema"]["$ref"]
    return schema["components"]["schemas"][ref.rsplit("/", 1)[1]]


def test_refusals_were_undocumented(schema):
    """Every operation documented only its success, so each 400/401/403/404 the service gives
    (in the envelope) was an undocumented status."""
    assert schema["components"]["schemas"]["Error"] == {
        "type": "object",
        "description": "The one error envelope (``config/exception_handlers.py``).",
        "properties": {"error_code": {"type": "string"}, "message": {"type": "string"}},
        "required": ["error_code", "message"],
    }
    for method, path, operation in _operations(schema):
        for status in ("400", "401", "403", "404"):
            documented = operation["responses"].get(status)
            assert documented, f"{method.upper()} {path} does not document {status}"
            assert documented["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/Error"
            }


def test_refusal_answers_match_the_documented_envelope(api, anonymous_api):
    missing = api.get(MLFLOW + "registered-models/get", {"name": "nope"})
    anonymous = anonymous_api.get(MLFLOW + "registered-models/get", {"name": "nope"})
    invalid = api.post(MLFLOW + "registered-models/create", {}, format="json")
    for response, status in ((missing, 404), (anonymous, 401), (invalid, 400)):
        assert response.status_code == status
        assert set(response.json()) == {"error_code", "message"}


def test_request_bodies_collapsed_into_one_component(schema):
    """Every view's nested ``InputSerializer`` was named ``InputRequest``: the schema gave 20
    operations the request body of ``comments/create`` (``name``, ``version``, ``comment``)."""
    create = _request_schema(schema, MLFLOW + "registered-models/create", "post")
    assert set(create["properties"]) == {"name", "tags", "description"}
    assert create["required"] == ["name"]
    rename = _request_schema(schema, MLFLOW + "registered-models/rename", "post")
    assert set(rename["properties"]) == {"name", "new_name"}
    token = _request_schema(schema, "/api/2.0/registry/tokens/create", "post")
    assert "name" in token["properties"]
    assert "comment" not in token["properties"]


def test_deletes_were_documented_as_204_without_a_body(schema, api):
    """drf-spectacular documents DELETE as 204 with no body; the service answers 200 ``{}``
    (the ``mlflow`` client treats anything but 200 as an error)."""
    for method, path, operation in _operations(schema):
        if method == "delete":
            assert "204" not in operation["responses"], path
            assert "200" in operation["responses"], path
    api.post(MLFLOW + "registered-models/create", {"name": "m"}, format="json")
    response = api.delete(MLFLOW + "registered-models/delete", {"name": "m"}, format="json")
    assert response.status_code == 200
    assert response.json() == {}


@pytest.mark.parametrize(
    ("path", "method"),
    [
        (MLFLOW + "registered-models/search", "get"),
        (MLFLOW + "model-versions/search", "get"),
        (MLFLOW + "registry-webhooks/list", "get"),
        (MLFLOW + "webhooks", "get"),
        ("/api/2.0/registry/tokens/list", "get"),
        ("/api/2.0/registry/webhooks/{webhook_id}/deliveries", "get"),
    ],
)
def test_next_page_token_was_documented_as_always_present(schema, path, method):
    """The last page has no ``next_page_token`` (the clients loop until it is absent); the
    schema said every page has one."""
    assert "next_page_token" not in _response_schema(schema, path, method).get("required", [])


def test_last_page_has_no_next_page_token(api):
    api.post(MLFLOW + "registered-models/create", {"name": "m"}, format="json")
    body = api.get(MLFLOW + "registered-models/search").json()
    assert [model["name"] for model in body["registered_models"]] == ["m"]
    assert "next_page_token" not in body


def test_artifact_listing_of_a_file_was_documented_with_files(schema, api, settings, tmp_path):
    """Listing a file or a missing path answers ``{}`` (the protocol's answer); the schema said
    ``files`` is always there."""
    listing = _response_schema(schema, "/api/2.0/mlflow-artifacts/artifacts", "get")
    assert "files" not in listing.get("required", [])
    settings.ARTIFACT_STORE_URI = (tmp_path / "store").as_uri()
    response = api.get("/api/2.0/mlflow-artifacts/artifacts", {"path": "uploads/alice/none"})
    assert response.status_code == 200
    assert response.json() == {}


def test_webhook_without_template_was_documented_with_one(schema, api, user):
    """A Databricks webhook with no ``payload_template`` is rendered without the key; the
    schema made it required."""
    output = schema["components"]["schemas"]["RegistryWebhookOutput"]
    assert "payload_template" not in output.get("required", [])
    services.registered_model_create(actor=user, name="m")
    webhook_create(
        actor=user,
        flavor=WebhookFlavor.DATABRICKS,
        model_name="m",
        events=["MODEL_VERSION_CREATED"],
        url="http://127.0.0.1:9/hook",
    )
    listed = api.get(MLFLOW + "registry-webhooks/list", {"model_name": "m"}).json()
    assert "payload_template" not in listed["webhooks"][0]


def test_webhook_test_without_an_answer_was_documented_with_a_status_code(schema, api, user):
    """When the receiver cannot be reached there is no HTTP status to report; the schema made
    ``status_code`` required."""
    result = _response_schema(schema, MLFLOW + "registry-webhooks/test", "post")
    assert "status_code" not in result.get("required", [])
    services.registered_model_create(actor=user, name="m")
    webhook = webhook_create(
        actor=user,
        flavor=WebhookFlavor.DATABRICKS,
        model_name="m",
        events=["MODEL_VERSION_CREATED"],
        url="http://127.0.0.1:9/hook",  # the discard port: nothing listens
    )
    response = api.post(MLFLOW + "registry-webhooks/test", {"id": webhook.code.hex}, format="json")
    assert response.status_code == 200
    assert "status_code" not in response.json()
    assert response.json()["body"]


def test_basic_and_bearer_were_not_documented(schema):
    """The schema named only the session cookie; the API clients use HTTP Basic and Bearer."""
    schemes = schema["components"]["securitySchemes"]
    assert schemes["basicAuth"]["scheme"] == "basic"
    assert schemes["bearerAuth"]["scheme"] == "bearer"
    operation = schema["paths"][MLFLOW + "registered-models/get"]["get"]
    assert {"basicAuth": []} in operation["security"]
    assert {"bearerAuth": []} in operation["security"]
