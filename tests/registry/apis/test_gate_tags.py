"""Gate tags: the version tags a stage policy requires (``validation_status=passed`` before
Production) are set and deleted only by whom the policy names, never by the requester of the
move by virtue of CAN_EDIT, or the gate would certify itself.

Alice (CAN_EDIT) is the data scientist who asks for the move; Bob
(CAN_MANAGE_PRODUCTION_VERSIONS) approves; Vera (CAN_EDIT) is in the ``validators`` group.
The tags are written with the unmodified ``mlflow`` client; policies through their API.
"""

from __future__ import annotations

import warnings

import mlflow
import pytest
from django.contrib.auth.models import Group
from mlflow import MlflowClient
from mlflow.exceptions import RestException
from rest_framework.test import APIClient

from accounts.models import RegisteredModelGrant
from registry import services
from registry.models import (
    AuditEntry,
    ModelVersion,
    ModelVersionTag,
    RegisteredModel,
    StagePolicy,
)
from tests.conftest import PASSWORD, basic_auth
from webhooks.models import WebhookEvent

pytestmark = pytest.mark.django_db(transaction=True)

POLICIES = "/api/2.0/registry/stage-policies/"
GATE = "validation_status"


@pytest.fixture
def people(django_user_model, settings):
    settings.REGISTRY = {**settings.REGISTRY, "DEFAULT_PERMISSION_LEVEL": "NONE"}
    users = {
        name: django_user_model.objects.create_user(name, password=PASSWORD)
        for name in ("owner", "alice", "bob", "vera")
    }
    users["root"] = django_user_model.objects.create_superuser("root", password=PASSWORD)
    services.registered_model_create(actor=users["owner"], name="m")
    services.model_version_create(actor=users["owner"], name="m", source="s3://b/m/1")
    registered_model = RegisteredModel.objects.get(name="m")
    for name, level in [
        ("alice", "CAN_EDIT"),
        ("bob", "CAN_MANAGE_PRODUCTION_VERSIONS"),
        ("vera", "CAN_EDIT"),
    ]:
        RegisteredModelGrant.objects.create(
            registered_model=registered_model, user=users[name], level=level
        )
    Group.objects.create(name="validators").user_set.add(users["vera"])
    Group.objects.create(name="ml-leads").user_set.add(users["alice"])
    return users


class SignedIn:
    """An ``mlflow`` client whose calls are made as ``username``: the client reads its
    credentials from the environment at each request, so they are set just before each call."""

    def __init__(self, client: MlflowClient, username: str, monkeypatch) -> None:
        self._client, self._username, self._monkeypatch = client, username, monkeypatch

    def __getattr__(self, name: str):
        method = getattr(self._client, name)

        def call(*args, **kwargs):
            self._monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", self._username)
            return method(*args, **kwargs)

        return call


@pytest.fixture
def as_user(live_server, monkeypatch):
    """``as_user("alice")``: an ``mlflow`` client signed in as that user."""
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", PASSWORD)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    mlflow.set_registry_uri(live_server.url)
    warnings.simplefilter("ignore", FutureWarning)
    client = MlflowClient(tracking_uri=live_server.url, registry_uri=live_server.url)
    return lambda username: SignedIn(client, username, monkeypatch)


def api(username: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=basic_auth(username))
    return client


def set_policy(username: str, **fields):
    response = api(username).post(POLICIES + "set", fields, format="json")
    assert response.status_code == 200, response.content
    return response.json()["policy"]


def snapshot():
    return (
        sorted(ModelVersionTag.objects.values_list("model_version__version", "key", "value")),
        sorted(ModelVersion.objects.values_list("version", "current_stage")),
        WebhookEvent.objects.count(),
    )


def refused(call, *args, **kwargs) -> str:
    """The call is refused with 403 PERMISSION_DENIED and changes nothing; its message."""
    before = snapshot()
    with pytest.raises(RestException) as excinfo:
        call(*args, **kwargs)
    assert excinfo.value.error_code == "PERMISSION_DENIED"
    assert snapshot() == before
    return excinfo.value.message


def test_the_requester_cannot_certify_the_version_they_ask_to_promote(people, as_user):
    set_policy(
        "owner",
        name="m",
        stage="Production",
        required_version_tags=[{"key": GATE, "value": "passed"}],
    )
    alice = as_user("alice")

    # CAN_EDIT writes ordinary tags...
    alice.set_model_version_tag("m", "1", "notes", "AUC 0.93")
    # ...but not the gate: with no gate_tag_groups, only who could approve the move may.
    message = refused(alice.set_model_version_tag, "m", "1", GATE, "passed")
    assert "Refused by the Production stage policy of model 'm'" in message
    assert f"'{GATE}' is one of its gate tags" in message
    assert "approve moves into Production (CAN_MANAGE_PRODUCTION_VERSIONS)" in message
    assert "alice has CAN_EDIT" in message
    refused(alice.create_model_version, "m", "s3://b/m/2", tags={GATE: "passed"})

    # The approver may; then the requester can neither delete nor overwrite the result.
    as_user("bob").set_model_version_tag("m", "1", GATE, "failed")
    refused(alice.delete_model_version_tag, "m", "1", GATE)
    refused(alice.set_model_version_tag, "m", "1", GATE, "passed")
    assert ModelVersionTag.objects.get(key=GATE).value == "failed"

    # And so the gate holds: the move is refused until someone eligible records a pass.
    services.transition_request_create(
        actor=people["alice"], name="m", version="1", stage="Production"
    )
    with pytest.raises(Exception, match="required_version_tags needs validation_status=passed"):
        services.transition_request_approve(
            actor=people["bob"], name="m", version="1", stage="Production"
        )
    assert ModelVersion.objects.get(version=1).current_stage == "None"


def test_a_policy_names_who_sets_its_gate_tags(people, as_user):
    policy = set_policy(
        "owner",
        name="m",
        stage="Production",
        required_version_tags=[{"key": GATE, "value": "passed"}],
        gate_tag_groups=["validators"],
    )
    assert policy["gate_tag_groups"] == ["validators"]
    listed = api("alice").get(POLICIES + "list", {"name": "m"}).json()["policies"]
    assert [p["gate_tag_groups"] for p in listed if p["stage"] == "Production"] == [["validators"]]

    # Named groups replace the default: the approver is no longer enough, nor the requester.
    for username in ("bob", "alice"):
        message = refused(as_user(username).set_model_version_tag, "m", "1", GATE, "passed")
        assert "Refused by the Production stage policy of model 'm'" in message
        assert "only members of the group(s) 'validators' (gate_tag_groups)" in message
        assert f"{username} is in none of them" in message

    vera = as_user("vera")
    vera.set_model_version_tag("m", "1", GATE, "passed")
    vera.create_model_version("m", "s3://b/m/2", tags={GATE: "passed"})
    vera.delete_model_version_tag("m", "2", GATE)
    assert list(ModelVersionTag.objects.values_list("model_version__version", "key")) == [(1, GATE)]
    # Registry admins may always.
    as_user("root").delete_model_version_tag("m", "1", GATE)
    assert not ModelVersionTag.objects.filter(key=GATE).exists()


def test_the_registry_wide_gate_is_a_floor_tag_by_tag(people, as_user):
    set_policy(
        "root",
        stage="Production",
        required_version_tags=[{"key": GATE, "value": "passed"}],
        gate_tag_groups=["validators"],
    )
    # The model's owner names another group and a gate tag of the model's own.
    set_policy(
        "owner",
        name="m",
        stage="Production",
        required_version_tags=[{"key": "fairness", "value": "ok"}],
        gate_tag_groups=["ml-leads"],
    )
    alice, vera = as_user("alice"), as_user("vera")
    # The registry-wide policy decides its own gate tag: the model's group does not relax it.
    message = refused(alice.set_model_version_tag, "m", "1", GATE, "passed")
    assert "Refused by the registry-wide Production stage policy" in message
    assert "'validators'" in message
    # The model's own gate tag is the model's to give.
    alice.set_model_version_tag("m", "1", "fairness", "ok")
    message = refused(vera.set_model_version_tag, "m", "1", "fairness", "ok")
    assert "Refused by the Production stage policy of model 'm'" in message
    assert "'ml-leads'" in message
    vera.set_model_version_tag("m", "1", GATE, "passed")

    # A tag both require needs both: here a validator who is also an ML lead.
    set_policy(
        "owner",
        name="m",
        stage="Production",
        required_version_tags=[
            {"key": GATE, "value": "passed"},
            {"key": "fairness", "value": "ok"},
        ],
    )
    refused(vera.set_model_version_tag, "m", "1", GATE, "failed")
    Group.objects.get(name="ml-leads").user_set.add(people["vera"])
    vera.set_model_version_tag("m", "1", GATE, "failed")


@pytest.mark.parametrize(
    ("groups", "error"),
    [
        (["validators", "validatorz"], "groups that do not exist: 'validatorz'"),
        ("validators", "'gate_tag_groups': Expected a list"),
        ([{"name": "validators"}], "'gate_tag_groups.0': Not a valid string"),
        ([f"g{n}" for n in range(21)], "'gate_tag_groups': Ensure this field has no more than 20"),
    ],
)
def test_gate_tag_groups_must_name_existing_groups(people, groups, error):
    set_policy("owner", name="m", stage="Production", gate_tag_groups=["validators"])
    before = (
        list(StagePolicy.objects.values_list("stage", "gate_tag_groups")),
        AuditEntry.objects.count(),
    )
    response = api("owner").post(
        POLICIES + "set",
        {"name": "m", "stage": "Production", "gate_tag_groups": groups},
        format="json",
    )
    assert response.status_code == 400, response.content
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert error in response.json()["message"]
    assert before == (
        list(StagePolicy.objects.values_list("stage", "gate_tag_groups")),
        AuditEntry.objects.count(),
    )


def test_only_the_models_managers_name_its_gate_tag_groups(people):
    response = api("alice").post(
        POLICIES + "set",
        {"name": "m", "stage": "Production", "gate_tag_groups": ["ml-leads"]},
        format="json",
    )
    assert response.status_code == 403
    assert response.json()["error_code"] == "PERMISSION_DENIED"
    assert not StagePolicy.objects.exists()


def test_a_copy_leaves_behind_the_gate_tags_its_copier_may_not_set(people, as_user):
    """mlflow's ``copy_model_version`` sends every tag of the version it copies. A version
    certified in another model must be certified again here: the gate tag stays behind for
    a copier who may not set it, the other tags come along, and the copy is not refused."""
    set_policy("root", stage="Production", required_version_tags=[{"key": GATE, "value": "passed"}])
    services.registered_model_create(actor=people["owner"], name="dev")
    services.model_version_create(
        actor=people["owner"],
        name="dev",
        source="s3://b/dev/1",
        tags=[{"key": "team", "value": "risk"}],
    )
    services.model_version_tag_set(
        actor=people["root"], name="dev", version="1", key=GATE, value="passed"
    )
    dev = RegisteredModel.objects.get(name="dev")
    for name in ("alice", "bob"):
        RegisteredModelGrant.objects.create(
            registered_model=dev, user=people[name], level="CAN_READ"
        )

    copied = as_user("alice").copy_model_version("models:/dev/1", "m")
    assert copied.version == "2"
    assert as_user("alice").get_model_version("m", "2").tags == {"team": "risk"}

    # Whoever may set the gate tag keeps it.
    kept = as_user("bob").copy_model_version("models:/dev/1", "m")
    assert as_user("bob").get_model_version("m", kept.version).tags == {
        "team": "risk",
        GATE: "passed",
    }
