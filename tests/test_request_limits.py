"""Bodies the API will not read: JSON nested too deeply (400) and bodies over
DATA_UPLOAD_MAX_MEMORY_SIZE (413), each in the error envelope with nothing changed, while
artifact uploads, which stream their raw body to the store, still take large files."""

from __future__ import annotations

import json

import pytest
from django.conf import settings

from config.parsers import MAX_JSON_DEPTH
from registry import services
from registry.models import RegisteredModel, RegisteredModelTag

pytestmark = pytest.mark.django_db

PREFIX = "/api/2.0/mlflow/"
ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"


def _nested(depth: int) -> object:
    """A list nested ``depth`` levels deep (``[[[]]]`` is 3)."""
    value: list = []
    for _ in range(depth - 1):
        value = [value]
    return value


def _snapshot():
    return (
        sorted(RegisteredModel.objects.values_list("name", "description")),
        sorted(RegisteredModelTag.objects.values_list("key", "value")),
    )


@pytest.fixture
def model(user):
    return services.registered_model_create(actor=user, name="m", description="before")


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH, 990, 5_000, 100_000])
def test_json_nested_too_deeply_is_refused_with_400(api, model, depth):
    before = _snapshot()
    # Inside "tags" (a list the serializer walks) and in a field it ignores.
    for body in (
        {"name": "m", "key": "k", "value": "v", "extra": _nested(depth)},
        {"name": "m", "tags": _nested(depth)},
    ):
        # json.dumps itself recurses; build the text for the deepest cases by hand.
        text = json.dumps(body) if depth < 500 else _deep_text(body, depth)
        response = api.post(
            PREFIX + "registered-models/set-tag", text, content_type="application/json"
        )
        assert response.status_code == 400, response.content[:300]
        assert response.json() == {
            "error_code": "INVALID_PARAMETER_VALUE",
            "message": f"The request body nests JSON objects and arrays more than "
            f"{MAX_JSON_DEPTH} levels deep; the API accepts at most that many.",
        }
    assert _snapshot() == before


def _deep_text(body: dict, depth: int) -> str:
    """``body`` as JSON text, its nested list (``_nested(depth)``) written out by hand."""
    marker = "__NESTED__"
    shallow = {key: marker if isinstance(value, list) else value for key, value in body.items()}
    return json.dumps(shallow).replace(
        json.dumps(marker), "[" * (depth - 1) + "[]" + "]" * (depth - 1)
    )


def test_json_at_the_depth_bound_is_read(api, model):
    # One level under the bound, as a value the endpoint ignores: the request succeeds.
    body = {"name": "m", "key": "k", "value": "v", "extra": _nested(MAX_JSON_DEPTH - 1)}
    response = api.post(PREFIX + "registered-models/set-tag", body, format="json")
    assert response.status_code == 200, response.content
    assert RegisteredModelTag.objects.get(registered_model=model, key="k").value == "v"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("post", "registered-models/create"),
        ("patch", "registered-models/update"),
        ("post", "registered-models/set-tag"),
    ],
)
def test_a_body_over_the_upload_limit_is_refused_with_413(api, model, method, path):
    before = _snapshot()
    big = "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)
    body = json.dumps({"name": "m", "description": big, "key": "k", "value": big})
    response = getattr(api, method)(PREFIX + path, body, content_type="application/json")
    assert response.status_code == 413, response.content[:300]
    payload = response.json()
    assert payload["error_code"] == "RESOURCE_LIMIT_EXCEEDED"
    assert str(settings.DATA_UPLOAD_MAX_MEMORY_SIZE) in payload["message"]
    assert "artifact" in payload["message"]
    assert _snapshot() == before


def test_too_many_query_parameters_are_refused_with_400(api, model):
    query = "&".join(f"p{i}=1" for i in range(settings.DATA_UPLOAD_MAX_NUMBER_FIELDS + 1))
    response = api.get(f"{PREFIX}registered-models/search?{query}")
    assert response.status_code == 400, response.content[:300]
    payload = response.json()
    assert payload["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "DATA_UPLOAD_MAX_NUMBER_FIELDS" in payload["message"]


@pytest.fixture
def store(settings, tmp_path):
    root = tmp_path / "store"
    root.mkdir()
    settings.ARTIFACT_STORE_URI = root.as_uri()
    return root


@pytest.mark.parametrize("content_type", ["application/octet-stream", "application/json"])
def test_artifact_uploads_still_take_files_over_the_limit(api, store, content_type):
    # An artifact that is itself a large JSON document, nested deeply: it is a file, stored as
    # sent, never parsed.
    size = 2 * settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 17
    body = (b"[" * 2000 + b"]" * 2000).ljust(size, b" ")
    response = api.put(f"{ARTIFACTS}/uploads/alice/big/model.json", body, content_type=content_type)
    assert (response.status_code, response.json()) == (200, {})
    stored = [path for path in store.rglob("model.json") if path.is_file()]
    assert len(stored) == 1
    assert stored[0].read_bytes() == body
