"""Governed aliases through the REST API: alias policies (with the registry-wide floor), alias
requests with their approvals, the history, "as of T", rollback and the deletion guard.

Owner (CAN_MANAGE) sets policies; Alice (CAN_EDIT) is the data scientist; Bob and Carol
(CAN_MANAGE_PRODUCTION_VERSIONS) approve; Rel is in the ``release-managers`` group the policy
names as direct movers. Every refusal is checked to leave aliases, requests and history as
they were.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group
from django.db import DatabaseError, transaction
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.models import RegisteredModelGrant
from registry import services
from registry.models import (
    AliasApproval,
    AliasPolicy,
    AliasRequest,
    AuditEntry,
    ModelVersion,
    PointerMove,
    RegisteredModel,
    RegisteredModelAlias,
)
from tests.conftest import PASSWORD, basic_auth
from webhooks.models import WebhookEvent

pytestmark = pytest.mark.django_db

REGISTRY = "/api/2.0/registry/"
MLFLOW = "/api/2.0/mlflow/"


@pytest.fixture
def team(django_user_model, settings):
    settings.REGISTRY = {**settings.REGISTRY, "DEFAULT_PERMISSION_LEVEL": "NONE"}
    users = {
        name: django_user_model.objects.create_user(name, password=PASSWORD)
        for name in ("owner", "alice", "bob", "carol", "rel", "reader")
    }
    users["root"] = django_user_model.objects.create_superuser("root", password=PASSWORD)
    services.registered_model_create(actor=users["owner"], name="m")
    for n in range(1, 5):
        services.model_version_create(actor=users["owner"], name="m", source=f"s3://b/m/{n}")
    registered_model = RegisteredModel.objects.get(name="m")
    for name, level in [
        ("alice", "CAN_EDIT"),
        ("bob", "CAN_MANAGE_PRODUCTION_VERSIONS"),
        ("carol", "CAN_MANAGE_PRODUCTION_VERSIONS"),
        ("rel", "CAN_EDIT"),
        ("reader", "CAN_READ"),
    ]:
        RegisteredModelGrant.objects.create(
            registered_model=registered_model, user=users[name], level=level
        )
    Group.objects.create(name="release-managers").user_set.add(users["rel"])
    return users


def api(username: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=basic_auth(username))
    return client


def ok(response) -> dict:
    assert response.status_code == 200, response.content
    return response.json()


def call(username: str, method: str, path: str, payload: dict):
    client = api(username)
    url = (MLFLOW if path.startswith("registered-models/alias") else REGISTRY) + path
    if method == "get":
        return client.get(url, payload)
    return getattr(client, method)(url, payload, format="json")


def state():
    """What a refusal must leave as it was."""
    return (
        sorted(RegisteredModelAlias.objects.values_list("alias", "model_version__version")),
        sorted(AliasRequest.objects.values_list("alias", "model_version__version", "status")),
        AliasApproval.objects.count(),
        PointerMove.objects.count(),
        WebhookEvent.objects.count(),
        sorted(ModelVersion.objects.values_list("version", "current_stage")),
    )


def refused(response, code: str, *fragments: str, before=None) -> str:
    body = response.json()
    assert body["error_code"] == code, body
    for fragment in fragments:
        assert fragment in body["message"], body["message"]
    if before is not None:
        assert state() == before
    return body["message"]


def set_alias(username: str, alias: str, version: int):
    return call(
        username,
        "post",
        "registered-models/alias",
        {"name": "m", "alias": alias, "version": version},
    )


def aliases() -> dict[str, int]:
    return dict(RegisteredModelAlias.objects.values_list("alias", "model_version__version"))


def policy(username: str = "owner", **terms) -> dict:
    return ok(call(username, "post", "alias-policies/set", {"name": "m", **terms}))["policy"]


def move(version: str | int, alias: str = "champion") -> dict:
    return {"name": "m", "alias": alias, "version": str(version)}


def test_unprotected_aliases_behave_as_in_mlflow(team):
    ok(set_alias("alice", "champion", 1))
    ok(set_alias("alice", "champion", 2))
    ok(call("alice", "delete", "registered-models/alias", {"name": "m", "alias": "champion"}))
    ok(call("alice", "delete", "registered-models/alias", {"name": "m", "alias": "champion"}))
    assert aliases() == {}
    history = ok(call("reader", "get", "aliases/history", {"name": "m", "alias": "champion"}))
    assert [
        (h["from_version"], h["to_version"], h["cause"], h["user_id"]) for h in history["history"]
    ] == [(None, "1", "SET", "alice"), ("1", "2", "SET", "alice"), ("2", None, "DELETED", "alice")]
    # Unprotected, but a reader still may not set it.
    before = state()
    refused(set_alias("reader", "champion", 1), "PERMISSION_DENIED", "CAN_EDIT", before=before)


def test_a_protected_alias_refuses_direct_moves_naming_the_policy(team):
    ok(set_alias("alice", "champion", 1))
    terms = policy(alias="champion", protected=True, direct_groups=["release-managers"])
    assert (terms["protected"], terms["direct_groups"], terms["source"]) == (
        True,
        ["release-managers"],
        "MODEL",
    )
    before = state()
    for response in (
        set_alias("alice", "champion", 2),
        set_alias("bob", "champion", 2),  # approving is not moving directly
        call("alice", "delete", "registered-models/alias", {"name": "m", "alias": "champion"}),
    ):
        refused(
            response,
            "PERMISSION_DENIED",
            "Refused by the alias policy of '@champion' of model 'm'",
            "'@champion' is protected: only group 'release-managers' may",
            "alias-requests/create",
            before=before,
        )
    # Those the policy names move it directly; other aliases are not affected.
    ok(set_alias("rel", "champion", 2))
    ok(set_alias("alice", "challenger", 3))
    assert aliases() == {"champion": 2, "challenger": 3}
    # An admin is not named either: the policy decides who moves the alias.
    refused(set_alias("root", "champion", 3), "PERMISSION_DENIED", "protected")


def test_the_registry_wide_policy_is_a_floor(team):
    ok(call("root", "post", "alias-policies/set", {"alias": "champion", "protected": True}))
    before = state()
    refused(
        set_alias("alice", "champion", 1),
        "PERMISSION_DENIED",
        "Refused by the registry-wide alias policy of '@champion'",
        before=before,
    )
    # Only admins set the registry-wide policies.
    refused(
        call("owner", "post", "alias-policies/set", {"alias": "champion", "protected": False}),
        "PERMISSION_DENIED",
        "Only registry admins change the registry-wide alias policies.",
    )
    # The model's own policy cannot relax it: naming Rel directly is not enough while the
    # registry-wide one names nobody.
    listed = policy(
        alias="champion",
        protected=False,
        direct_users=["rel"],
        required_approvals=1,
        allowed_stages=["Staging", "Production"],
    )
    assert listed["protected"] is False  # the stored row, as set
    in_force = ok(call("reader", "get", "alias-policies/list", {"name": "m"}))["policies"]
    assert [(p["alias"], p["protected"], p["registry_floor"]) for p in in_force] == [
        ("champion", True, True)
    ]
    refused(
        set_alias("rel", "champion", 1),
        "PERMISSION_DENIED",
        "with the registry-wide one as its floor",
        "only nobody may set it",
    )
    ok(
        call(
            "root",
            "post",
            "alias-policies/set",
            {"alias": "champion", "direct_users": ["rel"], "required_approvals": 2},
        )
    )
    in_force = ok(call("reader", "get", "alias-policies/list", {"name": "m"}))["policies"]
    assert in_force[0]["required_approvals"] == 2
    # Both name Rel now; the model's allowed_stages still hold.
    refused(set_alias("rel", "champion", 1), "PERMISSION_DENIED", "allowed_stages is [Staging")
    services.model_version_stage_transition(
        actor=team["owner"], name="m", version="1", stage="Staging"
    )
    ok(set_alias("rel", "champion", 1))
    assert set(AuditEntry.objects.values_list("action", flat=True)) == {"ALIAS_POLICY_SET"}


def test_two_approvers_no_self_approval_required_tag_and_allowed_stages(team):
    ok(set_alias("rel", "champion", 1))
    policy(
        alias="champion",
        protected=True,
        direct_groups=["release-managers"],
        required_approvals=2,
        allow_self_approval=False,
        required_version_tags=[{"key": "validation_status", "value": "passed"}],
        allowed_stages=["Production"],
    )
    created = ok(call("bob", "post", "alias-requests/create", {**move(2), "comment": "AUC up"}))
    request = created["request"]
    assert (request["alias"], request["version"], request["from_version"], request["status"]) == (
        "champion",
        "2",
        "1",
        "OPEN",
    )
    # The same request twice: refused.
    before = state()
    refused(
        call("alice", "post", "alias-requests/create", move(2)),
        "RESOURCE_ALREADY_EXISTS",
        before=before,
    )
    # The requester may not approve their own; a CAN_EDIT user not named may not decide.
    refused(
        call("bob", "post", "alias-requests/approve", move(2)),
        "PERMISSION_DENIED",
        "allow_self_approval is off",
        before=before,
    )
    refused(
        call("alice", "post", "alias-requests/approve", move(2)),
        "PERMISSION_DENIED",
        "may not decide requests to move alias 'champion'",
        before=before,
    )
    listed = ok(call("carol", "get", "alias-requests/list", {"name": "m"}))["requests"]
    assert listed[0]["available_actions"] == ["APPROVE_ALIAS_REQUEST", "REJECT_ALIAS_REQUEST"]
    first = ok(call("carol", "post", "alias-requests/approve", {**move(2), "comment": "ok"}))
    assert (first["moved"], first["note"]) == (False, "Approval 1 of 2.")
    assert aliases() == {"champion": 1}
    # Carol counts once; Rel (named by the policy) is the second approver, but version 2 has
    # neither the tag nor the stage yet: refused, and Rel's approval is not recorded.
    refused(call("carol", "post", "alias-requests/approve", move(2)), "INVALID_PARAMETER_VALUE")
    before = state()
    refused(
        call("rel", "post", "alias-requests/approve", move(2)),
        "PERMISSION_DENIED",
        "allowed_stages is [Production], and version 2 is in None.",
        before=before,
    )
    services.model_version_stage_transition(
        actor=team["root"], name="m", version="2", stage="Production"
    )
    before = state()
    refused(
        call("rel", "post", "alias-requests/approve", move(2)),
        "PERMISSION_DENIED",
        "required_version_tags needs validation_status=passed on version 2",
        before=before,
    )
    services.model_version_tag_set(
        actor=team["root"], name="m", version="2", key="validation_status", value="passed"
    )
    second = ok(call("rel", "post", "alias-requests/approve", {**move(2), "comment": "ship"}))
    assert (second["moved"], second["request"]["status"]) == (True, "APPROVED")
    assert [a["user_id"] for a in second["request"]["approvals"]] == ["carol", "rel"]
    assert aliases() == {"champion": 2}
    last = PointerMove.objects.filter(kind="ALIAS").last()
    assert (last.from_version, last.to_version, last.cause, str(last.request_code)) == (
        1,
        2,
        "APPROVED_REQUEST",
        request["id"],
    )


def test_reject_and_cancel_close_a_request_and_leave_the_alias(team):
    ok(set_alias("rel", "champion", 1))
    policy(alias="champion", protected=True, direct_users=["rel"])
    ok(call("alice", "post", "alias-requests/create", move(2)))
    ok(call("alice", "post", "alias-requests/create", move(3)))
    before = state()
    refused(
        call("reader", "delete", "alias-requests/delete", move(2)),
        "PERMISSION_DENIED",
        "CAN_MANAGE",
        before=before,
    )
    rejected = ok(call("bob", "post", "alias-requests/reject", {**move(2), "comment": "no"}))
    assert (rejected["request"]["status"], rejected["request"]["closing_comment"]) == (
        "REJECTED",
        "no",
    )
    cancelled = ok(call("alice", "delete", "alias-requests/delete", move(3)))
    assert (cancelled["request"]["status"], cancelled["request"]["closed_by"]) == (
        "CANCELLED",
        "alice",
    )
    assert aliases() == {"champion": 1}
    assert ok(call("reader", "get", "alias-requests/list", {"name": "m"}))["requests"] == []
    refused(call("bob", "post", "alias-requests/approve", move(2)), "RESOURCE_DOES_NOT_EXIST")


def test_a_move_by_another_way_closes_requests_it_made_moot(team):
    ok(set_alias("rel", "champion", 1))
    policy(alias="champion", protected=True, direct_users=["rel"])
    ok(call("alice", "post", "alias-requests/create", move(2)))
    ok(call("alice", "post", "alias-requests/create", move(3)))
    ok(set_alias("rel", "champion", 2))
    assert dict(AliasRequest.objects.values_list("model_version__version", "status")) == {
        2: "SUPERSEDED",
        3: "OPEN",
    }


def test_approvals_are_bound_to_the_digest_they_were_given_for(team):
    ok(set_alias("rel", "champion", 1))
    policy(alias="champion", protected=True, required_approvals=2)
    ModelVersion.objects.filter(version=2).update(artifact_digest="sha256:" + "a" * 64)
    ok(call("alice", "post", "alias-requests/create", move(2)))
    ok(call("bob", "post", "alias-requests/approve", move(2)))
    assert AliasApproval.objects.get().artifact_digest == "sha256:" + "a" * 64
    # Were the version's bytes ever to change (a reference re-pointed), Bob approved others.
    ModelVersion.objects.filter(version=2).update(artifact_digest="sha256:" + "b" * 64)
    second = ok(call("carol", "post", "alias-requests/approve", move(2)))
    assert second["moved"] is False
    assert "bob (given for sha256:aaaa" in second["note"]
    assert aliases() == {"champion": 1}


def test_history_and_as_of_t_replay_a_scripted_sequence(team):
    moments = []

    def mark():
        moments.append(int(timezone.now().timestamp() * 1000))

    mark()  # 0: nothing yet
    ok(set_alias("alice", "champion", 1))
    services.model_version_stage_transition(
        actor=team["root"], name="m", version="1", stage="Production"
    )
    mark()  # 1: champion 1, Production [1]
    ok(set_alias("alice", "champion", 2))
    services.model_version_stage_transition(
        actor=team["root"], name="m", version="2", stage="Production"
    )
    mark()  # 2: champion 2, Production [1, 2]
    services.model_version_stage_transition(
        actor=team["root"],
        name="m",
        version="3",
        stage="Production",
        archive_existing_versions=True,
    )
    ok(call("alice", "delete", "registered-models/alias", {"name": "m", "alias": "champion"}))
    mark()  # 3: no champion, Production [3]
    ok(set_alias("alice", "champion", 3))
    mark()  # 4: champion 3

    def as_of(moment: int, **what) -> list[str]:
        query = {"name": "m", "timestamp": moments[moment], **what}
        return ok(call("reader", "get", "registered-models/as-of", query))["versions"]

    assert [as_of(n, alias="champion") for n in range(5)] == [[], ["1"], ["2"], [], ["3"]]
    assert [as_of(n, stage="production") for n in range(5)] == [
        [],
        ["1"],
        ["1", "2"],
        ["3"],
        ["3"],
    ]
    assert as_of(4, stage="Archived") == ["1", "2"]
    refused(
        call("reader", "get", "registered-models/as-of", {"name": "m", "timestamp": 1}),
        "INVALID_PARAMETER_VALUE",
        "exactly one of 'alias' and 'stage'",
    )
    history = ok(
        call(
            "reader", "get", "aliases/history", {"name": "m", "alias": "champion", "max_results": 2}
        )
    )
    assert [(h["from_version"], h["to_version"]) for h in history["history"]] == [
        (None, "1"),
        ("1", "2"),
    ]
    rest = ok(
        call(
            "reader",
            "get",
            "aliases/history",
            {"name": "m", "alias": "champion", "page_token": history["next_page_token"]},
        )
    )
    assert [(h["from_version"], h["to_version"], h["cause"]) for h in rest["history"]] == [
        ("2", None, "DELETED"),
        (None, "3", "SET"),
    ]
    # The history is append-only in the database.
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        PointerMove.objects.update(to_version=9)
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        PointerMove.objects.all().delete()


def test_rollback_directly_and_as_a_request(team):
    ok(set_alias("alice", "champion", 1))
    ok(set_alias("alice", "champion", 2))
    # Unprotected: whoever may move it rolls it back at once; a reader may not.
    before = state()
    refused(
        call("reader", "post", "aliases/rollback", {"name": "m", "alias": "champion"}),
        "PERMISSION_DENIED",
        "CAN_EDIT",
        before=before,
    )
    back = ok(call("alice", "post", "aliases/rollback", {"name": "m", "alias": "champion"}))
    assert (back["moved"], back["version"]) == (True, "1")
    assert aliases() == {"champion": 1}
    assert PointerMove.objects.filter(kind="ALIAS").last().cause == "ROLLBACK"
    # Protected: Alice's rollback is a request; Rel, named by the policy, moves it directly.
    policy(alias="champion", protected=True, direct_users=["rel"])
    asked = ok(
        call(
            "alice", "post", "aliases/rollback", {"name": "m", "alias": "champion", "comment": "x"}
        )
    )
    assert (asked["moved"], asked["version"], asked["request"]["rollback"]) == (False, "2", True)
    assert aliases() == {"champion": 1}
    approved = ok(call("bob", "post", "alias-requests/approve", move(2)))
    assert approved["moved"] is True
    assert aliases() == {"champion": 2}
    again = ok(call("rel", "post", "aliases/rollback", {"name": "m", "alias": "champion"}))
    assert (again["moved"], again["version"]) == (True, "1")
    # Nothing to go back to.
    refused(
        call("alice", "post", "aliases/rollback", {"name": "m", "alias": "fresh"}),
        "INVALID_PARAMETER_VALUE",
        "nothing to roll back to",
    )


def test_the_deletion_guard(team):
    ok(set_alias("rel", "champion", 1))
    ok(set_alias("rel", "challenger", 2))
    policy(alias="champion", protected=True, direct_users=["rel"])
    services.model_version_stage_transition(
        actor=team["root"], name="m", version="3", stage="Production"
    )
    before = state()
    owner = api("owner")
    for version, why in [(1, "protected alias '@champion' names it"), (3, "it is in Production")]:
        response = owner.delete(
            MLFLOW + "model-versions/delete", {"name": "m", "version": str(version)}, format="json"
        )
        assert response.status_code == 403
        refused(response, "PERMISSION_DENIED", f"Version {version} of 'm'", why, before=before)
    # An unprotected alias goes with its version, as in MLflow; the history records it.
    ok(owner.delete(MLFLOW + "model-versions/delete", {"name": "m", "version": "2"}, format="json"))
    assert aliases() == {"champion": 1}
    gone = PointerMove.objects.filter(kind="ALIAS", pointer="challenger").last()
    assert (gone.from_version, gone.to_version, gone.cause) == (2, None, "VERSION_DELETED")
    # The model: only with force, by its CAN_MANAGE holders, audited.
    before = state()
    response = owner.delete(MLFLOW + "registered-models/delete", {"name": "m"}, format="json")
    refused(
        response,
        "PERMISSION_DENIED",
        "version 1 (protected alias '@champion' names it); version 3 (it is in Production)",
        "force=true",
        before=before,
    )
    refused(
        api("bob").delete(
            MLFLOW + "registered-models/delete", {"name": "m", "force": True}, format="json"
        ),
        "PERMISSION_DENIED",
        "CAN_MANAGE",
        before=before,
    )
    ok(
        owner.delete(
            MLFLOW + "registered-models/delete", {"name": "m", "force": True}, format="json"
        )
    )
    assert not RegisteredModel.objects.exists()
    audit = AuditEntry.objects.get(action="REGISTERED_MODEL_DELETED")
    assert audit.detail == {
        "versions": 3,
        "forced": True,
        "guarded": [
            "version 1 (protected alias '@champion' names it)",
            "version 3 (it is in Production)",
        ],
    }


def test_requests_expire_with_the_policys_ttl(team):
    ok(set_alias("rel", "champion", 1))
    policy(alias="champion", protected=True, request_ttl_seconds=3600)
    created = ok(call("alice", "post", "alias-requests/create", move(2)))["request"]
    assert created["expiration_timestamp"] - created["creation_timestamp"] == 3_600_000
    assert services.alias_requests_expire(now=timezone.now()) == 0
    assert services.alias_requests_expire(now=timezone.now() + timedelta(hours=2)) == 1
    request = AliasRequest.objects.get()
    assert request.status == "EXPIRED"
    assert "request_ttl" in request.closing_comment
    assert aliases() == {"champion": 1}


def test_policy_terms_are_checked(team):
    before = list(AliasPolicy.objects.values_list("pk"))
    for terms, fragment in [
        ({"direct_users": ["nobody-here"]}, "names users that do not exist: 'nobody-here'"),
        ({"direct_groups": ["ghosts"]}, "names groups that do not exist: 'ghosts'"),
        ({"allowed_stages": ["Prod"]}, "Invalid Model Version stage: Prod"),
        ({"alias": "latest"}, "reserved"),
    ]:
        response = call(
            "owner", "post", "alias-policies/set", {"alias": "champion", "name": "m", **terms}
        )
        refused(response, "INVALID_PARAMETER_VALUE", fragment)
    assert list(AliasPolicy.objects.values_list("pk")) == before
    refused(
        call("alice", "post", "alias-policies/set", {"name": "m", "alias": "champion"}),
        "PERMISSION_DENIED",
        "change the alias policies of",
    )
    policy(alias="champion", protected=True)
    ok(call("owner", "delete", "alias-policies/delete", {"name": "m", "alias": "champion"}))
    assert not AliasPolicy.objects.exists()
    assert list(AuditEntry.objects.values_list("action", flat=True)) == [
        "ALIAS_POLICY_SET",
        "ALIAS_POLICY_DELETED",
    ]


def test_as_of_t_before_the_history_began_is_refused(team):
    """A registry that had aliases before the history existed starts it with BASELINE entries
    (migration 0016): earlier times are unknown, and said so, rather than answered empty."""
    began = timezone.now()
    PointerMove.objects.create(
        registered_model_id=RegisteredModel.objects.get().pk,
        model_name="m",
        kind="ALIAS",
        pointer="champion",
        to_version=1,
        cause="BASELINE",
        created_at=began,
    )
    at = int(began.timestamp() * 1000)
    query = {"name": "m", "alias": "champion"}
    refused(
        call("reader", "get", "registered-models/as-of", {**query, "timestamp": at - 1000}),
        "INVALID_PARAMETER_VALUE",
        "The history of aliases and stages begins at",
    )
    answer = ok(call("reader", "get", "registered-models/as-of", {**query, "timestamp": at + 1}))
    assert answer["versions"] == ["1"]
