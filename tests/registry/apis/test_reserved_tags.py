"""Version tag keys under ``registry.`` are the registry's: a key that only looks like one
(another case, surrounding spaces, fullwidth forms, accents, letters of another script) is
refused like the real prefix, wherever a version tag key comes in, and nothing is written.

Driven by the unmodified ``mlflow`` client where it sends the key (its own checks let every one
of these keys through), and over the API for the rest.
"""

from __future__ import annotations

import warnings

import mlflow
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import RestException
from rest_framework.test import APIClient

from registry import services
from registry.models import ModelVersion, ModelVersionTag, RegisteredModelTag
from tests.conftest import PASSWORD
from webhooks.models import WebhookEvent

PREFIX = "/api/2.0/mlflow/"

LOOK_ALIKES = [
    " registry.artifacts.digest",  # a leading space
    "registry.artifacts.digest ",  # a trailing one
    "Registry.artifacts.digest",
    "REGISTRY.artifacts.digest",
    "r\u0435gistry.artifacts.digest",  # Cyrillic е
    "\u0433\u0435gistry.x",  # Cyrillic г and е
    "r\u0435g\u0456\u0455tr\u0443.x",  # Cyrillic е, і, ѕ, у: only r, g, t stay Latin
    "\u0280\u1d07\u0262\u026a\ua731\u1d1b\u0280\u028f.x",  # Latin small capitals, none ASCII
    "reg\u03b9stry.x",  # Greek iota
    "r\u03b5gistry.x",  # Greek epsilon, in no table: a substitute next to the prefix's letters
    "\uff52\uff45\uff47\uff49\uff53\uff54\uff52\uff59.x",  # fullwidth
    "r\u00e9gistry.x",  # an accent
    "registry\ua4f8x",  # a Lisu letter that looks like a full stop
]

#: Keys near the prefix that are not mistaken for it stay anyone's.
ORDINARY = ["registry_x", "my.registry.x", "registr.x", "reg istry.x", "登録.x"]


def snapshot():
    return (
        sorted(ModelVersionTag.objects.values_list("model_version_id", "key", "value")),
        sorted(ModelVersion.objects.values_list("registered_model__name", "version")),
        WebhookEvent.objects.count(),
    )


@pytest.fixture
def model(user):
    services.registered_model_create(actor=user, name="m")
    services.model_version_create(actor=user, name="m", source="s3://b/m/1")
    return ModelVersion.objects.get(registered_model__name="m", version=1)


@pytest.fixture
def mlflow_client(live_server, user, monkeypatch) -> MlflowClient:
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", user.username)
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", PASSWORD)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    mlflow.set_registry_uri(live_server.url)
    warnings.simplefilter("ignore", FutureWarning)
    return MlflowClient(tracking_uri=live_server.url, registry_uri=live_server.url)


def assert_reserved(excinfo: pytest.ExceptionInfo[RestException]) -> None:
    assert excinfo.value.error_code == "INVALID_PARAMETER_VALUE"
    assert "is reserved" in excinfo.value.message
    assert "'registry.'" in excinfo.value.message


@pytest.mark.django_db(transaction=True)
def test_the_mlflow_client_cannot_write_look_alike_reserved_tags(mlflow_client, model):
    before = snapshot()
    for key in LOOK_ALIKES:
        with pytest.raises(RestException) as excinfo:
            mlflow_client.set_model_version_tag("m", "1", key, "sha256:forged")
        assert_reserved(excinfo)
        with pytest.raises(RestException) as excinfo:
            mlflow_client.create_model_version("m", "s3://b/m/2", tags={key: "sha256:forged"})
        assert_reserved(excinfo)
    assert snapshot() == before

    for key in ORDINARY:
        mlflow_client.set_model_version_tag("m", "1", key, "v")
    assert set(mlflow_client.get_model_version("m", "1").tags) == set(ORDINARY)


@pytest.mark.django_db
@pytest.mark.parametrize("key", LOOK_ALIKES, ids=[ascii(key) for key in LOOK_ALIKES])
def test_look_alike_reserved_tags_are_refused_on_every_way_in(api: APIClient, model, key):
    ModelVersionTag.objects.create(model_version=model, key=key, value="sha256:old")
    before = snapshot()
    calls = [
        ("post", "model-versions/set-tag", {"name": "m", "version": "1", "key": key, "value": "x"}),
        (
            "post",
            "model-versions/create",
            {"name": "m", "source": "s3://b/m/2", "tags": [{"key": key, "value": "x"}]},
        ),
    ]
    for method, path, payload in calls:
        response = getattr(api, method)(PREFIX + path, payload, format="json")
        assert response.status_code == 400, (path, response.content)
        body = response.json()
        assert body["error_code"] == "INVALID_PARAMETER_VALUE"
        assert "is reserved" in body["message"]
        assert "'registry.'" in body["message"]
    assert snapshot() == before


@pytest.mark.django_db
@pytest.mark.parametrize("key", LOOK_ALIKES, ids=[ascii(key) for key in LOOK_ALIKES])
def test_a_look_alike_stored_before_the_rule_can_be_deleted(api: APIClient, model, key):
    """Deleting forges nothing: a look-alike stored before writes were refused can be removed,
    by the API and so by the admin's delete action, which calls the same service."""
    ModelVersionTag.objects.create(model_version=model, key=key, value="sha256:old")
    response = api.delete(
        PREFIX + "model-versions/delete-tag",
        {"name": "m", "version": "1", "key": key},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert not ModelVersionTag.objects.filter(model_version=model, key=key).exists()


@pytest.mark.django_db
def test_the_registrys_own_tags_cannot_be_deleted(api: APIClient, model):
    ModelVersionTag.objects.create(model_version=model, key="registry.origin", value="x")
    before = snapshot()
    response = api.delete(
        PREFIX + "model-versions/delete-tag",
        {"name": "m", "version": "1", "key": "registry.origin"},
        format="json",
    )
    assert (response.status_code, response.json()["error_code"]) == (
        400,
        "INVALID_PARAMETER_VALUE",
    )
    assert "is reserved" in response.json()["message"]
    assert snapshot() == before


@pytest.mark.django_db
def test_model_tags_have_no_reserved_prefix(api: APIClient, model):
    """Only version tags are reserved; registered-model tags under any prefix stay the user's."""
    response = api.post(
        PREFIX + "registered-models/set-tag",
        {"name": "m", "key": "Registry.owner", "value": "risk"},
        format="json",
    )
    assert response.status_code == 200
    assert RegisteredModelTag.objects.filter(key="Registry.owner").exists()
