"""Bad input on every endpoint answers 400 or 404 in the error envelope, never a 500."""

from __future__ import annotations

import json

import pytest

from registry import models, services
from registry.models import TAG_VALUE_MAX_LENGTH

pytestmark = pytest.mark.django_db

PREFIX = "/api/2.0/mlflow/"

# (method, path, a valid request) for every endpoint of the protocol.
ENDPOINTS = [
    ("post", "registered-models/create", {"name": "new-model"}),
    ("get", "registered-models/get", {"name": "m"}),
    ("post", "registered-models/rename", {"name": "m", "new_name": "m2"}),
    ("patch", "registered-models/update", {"name": "m", "description": "d"}),
    ("delete", "registered-models/delete", {"name": "m"}),
    ("get", "registered-models/search", {"filter": "name = 'm'", "max_results": "10"}),
    ("post", "registered-models/get-latest-versions", {"name": "m", "stages": ["None"]}),
    ("get", "registered-models/get-latest-versions", {"name": "m", "stages": "None"}),
    ("post", "registered-models/set-tag", {"name": "m", "key": "k", "value": "v"}),
    ("delete", "registered-models/delete-tag", {"name": "m", "key": "k"}),
    ("post", "registered-models/alias", {"name": "m", "alias": "prod", "version": "1"}),
    ("get", "registered-models/alias", {"name": "m", "alias": "champion"}),
    ("delete", "registered-models/alias", {"name": "m", "alias": "champion"}),
    ("post", "model-versions/create", {"name": "m", "source": "s3://b/m/2"}),
    ("get", "model-versions/get", {"name": "m", "version": "1"}),
    ("patch", "model-versions/update", {"name": "m", "version": "1", "description": "d"}),
    ("delete", "model-versions/delete", {"name": "m", "version": "1"}),
    (
        "post",
        "model-versions/transition-stage",
        {"name": "m", "version": "1", "stage": "Staging", "archive_existing_versions": False},
    ),
    ("get", "model-versions/search", {"filter": "name = 'm'", "max_results": "10"}),
    ("get", "model-versions/get-download-uri", {"name": "m", "version": "1"}),
    ("post", "model-versions/set-tag", {"name": "m", "version": "1", "key": "k", "value": "v"}),
    ("delete", "model-versions/delete-tag", {"name": "m", "version": "1", "key": "k"}),
    # The Databricks extensions and the approval workflow.
    ("get", "databricks/registered-models/get", {"name": "m"}),
    (
        "post",
        "transition-requests/create",
        {"name": "m", "version": "1", "stage": "Production", "comment": "c"},
    ),
    (
        "post",
        "transition-requests/approve",
        {"name": "m", "version": "1", "stage": "Staging", "archive_existing_versions": False},
    ),
    ("post", "transition-requests/reject", {"name": "m", "version": "1", "stage": "Staging"}),
    (
        "delete",
        "transition-requests/delete",
        {"name": "m", "version": "1", "stage": "Staging", "creator": "alice"},
    ),
    ("get", "transition-requests/list", {"name": "m", "version": "1"}),
    ("post", "comments/create", {"name": "m", "version": "1", "comment": "c"}),
    (
        "post",
        "databricks/model-versions/transition-stage",
        {"name": "m", "version": "1", "stage": "Archived", "archive_existing_versions": False},
    ),
    ("get", "model-versions/get-activities", {"name": "m", "version": "1"}),
]
BODY_ENDPOINTS = [e for e in ENDPOINTS if e[0] != "get"]
# Searches have no required parameter: an empty query lists everything.
REQUIRED_ENDPOINTS = [e for e in ENDPOINTS if not e[1].endswith("search")]


def _ids(endpoints):
    return [f"{method.upper()} {path}" for method, path, _ in endpoints]


ENDPOINT_IDS = _ids(ENDPOINTS)
BODY_IDS = _ids(BODY_ENDPOINTS)

WRONG_TYPES = [{"nested": "object"}, [1, 2], True, None]
LONG = "x" * 5000


@pytest.fixture(autouse=True)
def existing_model(user):
    services.registered_model_create(actor=user, name="m")
    services.model_version_create(actor=user, name="m", source="s3://b/m/1")
    services.registered_model_alias_set(actor=user, name="m", alias="champion", version="1")
    services.transition_request_create(actor=user, name="m", version="1", stage="Staging")


def call(api, method, path, payload):
    if method == "get":
        return api.get(PREFIX + path, payload)
    return getattr(api, method)(PREFIX + path, payload, format="json")


def assert_client_error(response, allowed=(400, 404)):
    assert response.status_code in allowed, (response.status_code, response.content[:300])
    body = response.json()
    assert set(body) == {"error_code", "message"}
    assert isinstance(body["error_code"], str)
    assert body["error_code"]
    assert isinstance(body["message"], str)
    assert body["message"]
    return body


@pytest.mark.parametrize(("method", "path", "valid"), ENDPOINTS, ids=ENDPOINT_IDS)
def test_the_valid_request_succeeds(api, method, path, valid):
    """The baseline: each malformed variant below differs from a request that works."""
    response = call(api, method, path, valid)
    assert response.status_code == 200, response.content
    assert isinstance(response.json(), dict)


@pytest.mark.parametrize(("method", "path", "valid"), BODY_ENDPOINTS, ids=BODY_IDS)
@pytest.mark.parametrize(
    "raw", ["{not json", "", "[1, 2", '"just a string"', "[]", "null", "\x00\xff"]
)
def test_malformed_json_body(api, method, path, valid, raw):
    response = getattr(api, method)(PREFIX + path, raw, content_type="application/json")
    assert_client_error(response, allowed=(400,))


@pytest.mark.parametrize(("method", "path", "valid"), BODY_ENDPOINTS, ids=BODY_IDS)
def test_non_json_content_type(api, method, path, valid):
    response = getattr(api, method)(PREFIX + path, "name=m", content_type="text/plain")
    assert_client_error(response, allowed=(400,))


@pytest.mark.parametrize(
    ("method", "path", "valid"), REQUIRED_ENDPOINTS, ids=_ids(REQUIRED_ENDPOINTS)
)
def test_missing_required_fields(api, method, path, valid):
    response = call(api, method, path, {})
    body = assert_client_error(response, allowed=(400,))
    assert body["error_code"] == "INVALID_PARAMETER_VALUE"


@pytest.mark.parametrize(("method", "path", "valid"), BODY_ENDPOINTS, ids=BODY_IDS)
@pytest.mark.parametrize("wrong", WRONG_TYPES, ids=["object", "list", "bool", "null"])
def test_wrong_types_in_each_field(api, method, path, valid, wrong):
    for field in valid:
        if field == "archive_existing_versions" and wrong is True:
            continue  # a boolean is the right type there
        if field in {"description", "comment"} and wrong is None:
            continue  # null means "none", as in the protocol
        payload = {**valid, field: wrong}
        response = call(api, method, path, payload)
        assert_client_error(response)


@pytest.mark.parametrize(("method", "path", "valid"), ENDPOINTS, ids=ENDPOINT_IDS)
def test_over_long_values_in_each_field(api, method, path, valid):
    for field, value in valid.items():
        if not isinstance(value, str) or field in {"description", "value", "comment"}:
            continue  # free text (5,000 characters is fine); the tag value limit is below
        response = call(api, method, path, {**valid, field: LONG})
        assert_client_error(response)


@pytest.mark.parametrize(
    ("path", "extra"),
    [
        ("registered-models/set-tag", {"name": "m"}),
        ("model-versions/set-tag", {"name": "m", "version": "1"}),
    ],
)
def test_over_long_tag_values_and_keys(api, path, extra):
    response = api.post(
        PREFIX + path,
        {**extra, "key": "k", "value": "v" * (TAG_VALUE_MAX_LENGTH + 1)},
        format="json",
    )
    assert assert_client_error(response, allowed=(400,))["error_code"] == "INVALID_PARAMETER_VALUE"
    response = api.post(PREFIX + path, {**extra, "key": "k" * 251, "value": "v"}, format="json")
    assert_client_error(response, allowed=(400,))
    # The largest allowed value is stored whole.
    response = api.post(
        PREFIX + path, {**extra, "key": "k", "value": "v" * TAG_VALUE_MAX_LENGTH}, format="json"
    )
    assert response.status_code == 200


BROKEN_FILTERS = [
    "name =",
    "name = 'unterminated",
    'name = "unterminated',
    "= 'x'",
    "name 'x'",
    "name == 'x'",
    "name = 'a' OR name = 'b'",
    "(name = 'a')",
    "NOT name = 'a'",
    "name IN ()",
    "name IN ('a'",
    "name IS NULL",
    "tags. = 'x'",
    "tags.`unterminated = 'x'",
    "foo = 'x'",
    "name = 'a' AND",
    "AND name = 'a'",
    "name = 'a' name = 'b'",
    "version_number > 1.5",
    "version_number > 'abc'",
    "name LIKE 5",
    ";DROP TABLE registry_registeredmodel;--",
    "\x00",
    "name = '\x00'",
]


@pytest.mark.parametrize("path", ["registered-models/search", "model-versions/search"])
@pytest.mark.parametrize("broken", BROKEN_FILTERS)
def test_broken_filter_strings(api, path, broken):
    response = api.get(PREFIX + path, {"filter": broken})
    body = assert_client_error(response, allowed=(400,))
    assert body["error_code"] == "INVALID_PARAMETER_VALUE"


@pytest.mark.parametrize("path", ["registered-models/search", "model-versions/search"])
@pytest.mark.parametrize(
    "params",
    [
        {"max_results": "0"},
        {"max_results": "-1"},
        {"max_results": "abc"},
        {"max_results": "1e3"},
        {"max_results": "200001"},
        {"page_token": "not-base64!"},
        {"page_token": "eyJvZmZzZXQiOiAtMX0="},  # {"offset": -1}
        {"page_token": "bm90IGpzb24="},  # "not json"
        {"order_by": "version_number SIDEWAYS"},
        {"order_by": "no_such_key"},
        {"order_by": ["name", "name DESC"]},
    ],
)
def test_bad_search_parameters(api, path, params):
    response = api.get(PREFIX + path, params)
    assert_client_error(response, allowed=(400,))


def test_registered_model_search_limit_is_lower(api):
    response = api.get(PREFIX + "registered-models/search", {"max_results": "1001"})
    assert_client_error(response, allowed=(400,))


def test_unknown_route_and_method_are_enveloped(api):
    response = api.get(PREFIX + "registered-models/no-such-thing")
    assert response.status_code == 404
    assert response.json()["error_code"] == "ENDPOINT_NOT_FOUND"
    response = api.put(
        PREFIX + "registered-models/create", json.dumps({}), content_type="application/json"
    )
    assert response.status_code == 405
    assert set(response.json()) == {"error_code", "message"}


@pytest.mark.parametrize(
    ("method", "payload"),
    [
        ("patch", {"id": "not-a-uuid", "comment": "x"}),
        ("patch", {"id": "00000000-0000-0000-0000-000000000000", "comment": "x"}),
        ("patch", {"id": ["x"], "comment": "x"}),
        ("patch", {"comment": "x"}),
        ("delete", {"id": "not-a-uuid"}),
        ("delete", {}),
    ],
)
def test_bad_comment_ids(api, method, payload):
    path = PREFIX + ("comments/update" if method == "patch" else "comments/delete")
    assert_client_error(getattr(api, method)(path, payload, format="json"))


@pytest.mark.parametrize(
    "payload",
    [
        {"stage": "Prod"},
        {"stage": "Production", "required_approvals": 0},
        {"stage": "Production", "required_approvals": "two"},
        {"stage": "Production", "required_approvals": 11},
        {"stage": "Production", "allow_self_approval": "maybe"},
        {"stage": "Production", "required_version_tags": "validation=passed"},
        {"stage": "Production", "required_version_tags": [{"key": "bad key!", "value": "x"}]},
        {"stage": "Production", "request_ttl_seconds": -1},
        {"name": "missing-model", "stage": "Production"},
        {},
    ],
)
def test_bad_stage_policies(api, payload):
    response = api.post(
        "/api/2.0/registry/stage-policies/set", {"name": "m", **payload}, format="json"
    )
    if "name" in payload and payload["name"] == "missing-model":
        assert response.status_code == 404
    else:
        assert_client_error(response, allowed=(400,))


def test_over_long_comments(api):
    response = api.post(
        PREFIX + "comments/create",
        {"name": "m", "version": "1", "comment": "c" * 65_536},
        format="json",
    )
    assert assert_client_error(response, allowed=(400,))["error_code"] == "INVALID_PARAMETER_VALUE"


@pytest.mark.parametrize(
    ("path", "payload"),
    [
        ("model-versions/set-tag", {"key": "registry.artifacts.digest", "value": "sha256:0"}),
        ("model-versions/delete-tag", {"key": "registry.artifacts.digest"}),
        ("model-versions/set-tag", {"key": "registry.anything", "value": "x"}),
    ],
)
def test_reserved_version_tags_cannot_be_written(api, path, payload):
    """Tags under ``registry.`` stay the registry's (the digest was one): a deployment script
    that still reads the old digest tag must never find one a user wrote."""
    models.ModelVersionTag.objects.create(
        model_version=models.ModelVersion.objects.get(registered_model__name="m", version=1),
        key="registry.artifacts.digest",
        value="sha256:computed",
    )
    method = "delete" if "delete" in path else "post"
    body = assert_client_error(
        call(api, method, path, {"name": "m", "version": "1", **payload}), allowed=(400,)
    )
    assert "reserved" in body["message"]
    assert models.ModelVersionTag.objects.get(key="registry.artifacts.digest").value == (
        "sha256:computed"
    )


def test_reserved_version_tags_cannot_be_given_at_creation(api):
    response = api.post(
        PREFIX + "model-versions/create",
        {"name": "m", "source": "s3://b/m/2", "tags": [{"key": "registry.x", "value": "1"}]},
        format="json",
    )
    assert "reserved" in assert_client_error(response, allowed=(400,))["message"]
    assert models.ModelVersion.objects.filter(registered_model__name="m").count() == 1
