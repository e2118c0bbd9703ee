"""Stage policies: how many approvers, self-approval, direct transitions, required tags and
request expiry. Every refusal names the rule and leaves stages and requests as they were."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import DatabaseError, connection, transaction
from django.utils import timezone

from accounts.models import RegisteredModelGrant
from kernel.errors import RegistryError
from registry import selectors, services
from registry.models import (
    Activity,
    AuditEntry,
    ModelVersion,
    RegisteredModel,
    StagePolicy,
    TransitionApproval,
    TransitionRequest,
)
from registry.tasks import transition_requests_expire_task

pytestmark = pytest.mark.django_db


@pytest.fixture
def team(django_user_model, settings):
    """owner (CAN_MANAGE), alice and carol (Production level), bob (Staging level)."""
    settings.REGISTRY = {**settings.REGISTRY, "DEFAULT_PERMISSION_LEVEL": "NONE"}
    owner = django_user_model.objects.create_user("owner", password="owner-password-1")
    services.registered_model_create(actor=owner, name="m")
    for n in (1, 2):
        services.model_version_create(actor=owner, name="m", source=f"s3://b/m/{n}")
    registered_model = RegisteredModel.objects.get()
    people = {"owner": owner}
    for name, level in [
        ("alice", "CAN_MANAGE_PRODUCTION_VERSIONS"),
        ("carol", "CAN_MANAGE_PRODUCTION_VERSIONS"),
        ("bob", "CAN_MANAGE_STAGING_VERSIONS"),
    ]:
        people[name] = django_user_model.objects.create_user(name, password=f"{name}-password-1")
        RegisteredModelGrant.objects.create(
            registered_model=registered_model, user=people[name], level=level
        )
    return people


def policy(**fields) -> StagePolicy:
    return StagePolicy.objects.create(
        registered_model=RegisteredModel.objects.get(name="m"), stage="Production", **fields
    )


def state():
    return (
        list(ModelVersion.objects.order_by("version").values_list("version", "current_stage")),
        list(TransitionRequest.objects.order_by("pk").values_list("pk", "status")),
        TransitionApproval.objects.count(),
    )


def refused(call, rule: str, **kwargs) -> RegistryError:
    before = state()
    with pytest.raises(RegistryError) as excinfo:
        call(**kwargs)
    assert excinfo.value.code == "PERMISSION_DENIED"
    assert rule in excinfo.value.message
    assert state() == before
    return excinfo.value


def approve(actor, version="1", stage="Production"):
    return services.transition_request_approve(
        actor=actor, name="m", version=version, stage=stage, archive_existing_versions=True
    )


def test_two_approvals_from_two_distinct_eligible_approvers(team):
    policy(required_approvals=2, allow_self_approval=False)
    services.transition_request_create(
        actor=team["alice"], name="m", version="1", stage="Production"
    )

    first = approve(team["carol"])
    assert first.activity_type == "APPROVED_REQUEST"
    assert "Approval 1 of 2" in first.system_comment
    assert ModelVersion.objects.get(version=1).current_stage == "None"

    with pytest.raises(RegistryError, match="already approved"):
        approve(team["carol"])
    refused(approve, "allow_self_approval", actor=team["alice"])
    with pytest.raises(RegistryError) as excinfo:
        approve(team["bob"])  # Staging level: not eligible for Production
    assert "CAN_MANAGE_PRODUCTION_VERSIONS" in excinfo.value.message

    approve(team["owner"])
    assert ModelVersion.objects.get(version=1).current_stage == "Production"
    assert TransitionRequest.objects.get().status == "APPROVED"
    assert list(TransitionApproval.objects.values_list("approver_username", flat=True)) == [
        "carol",
        "owner",
    ]


def test_one_rejection_closes_a_request_with_approvals(team):
    policy(required_approvals=2)
    services.transition_request_create(
        actor=team["alice"], name="m", version="1", stage="Production"
    )
    approve(team["carol"])
    services.transition_request_reject(
        actor=team["owner"], name="m", version="1", stage="Production", comment="not yet"
    )
    assert TransitionRequest.objects.get().status == "REJECTED"
    assert ModelVersion.objects.get(version=1).current_stage == "None"


def test_direct_transition_can_be_forbidden(team):
    policy(allow_direct_transition=False)
    error = refused(
        services.model_version_stage_transition,
        "allow_direct_transition",
        actor=team["owner"],
        name="m",
        version="1",
        stage="Production",
    )
    assert "Production stage policy of model 'm'" in error.message
    # Other stages keep the default: direct moves to Staging still work.
    services.model_version_stage_transition(
        actor=team["bob"], name="m", version="1", stage="Staging"
    )
    # And the request path still reaches Production.
    services.transition_request_create(actor=team["bob"], name="m", version="1", stage="Production")
    approve(team["alice"])
    assert ModelVersion.objects.get(version=1).current_stage == "Production"


def test_required_version_tags(team):
    policy(required_version_tags={"validation_status": "passed"})
    refused(
        services.model_version_stage_transition,
        "required_version_tags needs validation_status=passed",
        actor=team["alice"],
        name="m",
        version="1",
        stage="Production",
    )
    services.model_version_tag_set(
        actor=team["owner"], name="m", version="1", key="validation_status", value="failed"
    )
    services.transition_request_create(actor=team["bob"], name="m", version="1", stage="Production")
    error = refused(approve, "validation_status=passed", actor=team["alice"])
    assert "'failed'" in error.message
    services.model_version_tag_set(
        actor=team["owner"], name="m", version="1", key="validation_status", value="passed"
    )
    approve(team["alice"])
    assert ModelVersion.objects.get(version=1).current_stage == "Production"


def test_expired_requests_are_closed_by_the_beat_task(team):
    policy(request_ttl=timedelta(minutes=5))
    request = services.transition_request_create(
        actor=team["bob"], name="m", version="1", stage="Production"
    )
    assert request.expires_at is not None
    assert transition_requests_expire_task() == 0  # not yet due
    TransitionRequest.objects.filter(pk=request.pk).update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert transition_requests_expire_task() == 1
    request.refresh_from_db()
    assert request.status == "EXPIRED"
    closing = Activity.objects.filter(request=request).last()
    assert (closing.activity_type, closing.actor_username) == ("CANCELLED_REQUEST", "")
    assert "Expired" in closing.system_comment
    with pytest.raises(RegistryError) as excinfo:
        approve(team["alice"])
    assert excinfo.value.code == "RESOURCE_DOES_NOT_EXIST"
    # A new request may be opened again.
    services.transition_request_create(actor=team["bob"], name="m", version="1", stage="Production")


def test_a_move_closes_the_requests_it_made_moot(team):
    services.transition_request_create(actor=team["bob"], name="m", version="1", stage="Staging")
    services.model_version_stage_transition(
        actor=team["alice"], name="m", version="1", stage="Staging"
    )
    request = TransitionRequest.objects.get()
    assert request.status == "SUPERSEDED"
    closing = Activity.objects.filter(request=request, activity_type="CANCELLED_REQUEST").get()
    assert "reached Staging another way" in closing.system_comment


def test_the_registry_default_policy_applies_when_the_model_has_none(team):
    StagePolicy.objects.create(
        registered_model=None, stage="Production", allow_direct_transition=False
    )
    refused(
        services.model_version_stage_transition,
        "registry-wide Production stage policy",
        actor=team["owner"],
        name="m",
        version="1",
        stage="Production",
    )


def test_a_models_own_policy_cannot_relax_the_registry_wide_one(team, django_user_model):
    """The admin's registry-wide Production policy (two approvals, no direct moves, a required
    tag, a day's expiry) is a floor: the owner's laxer policy for their model tightens nothing
    away. The model's policy may still be stricter where it says so (three approvals)."""
    admin = django_user_model.objects.create_superuser("admin", password="admin-password-1")
    services.stage_policy_set(
        actor=admin,
        stage="Production",
        required_approvals=2,
        allow_direct_transition=False,
        required_version_tags=[{"key": "validation", "value": "passed"}],
        request_ttl_seconds=86400,
    )
    services.stage_policy_set(
        actor=team["owner"],
        name="m",
        stage="Production",
        required_approvals=1,
        allow_direct_transition=True,
        allow_self_approval=True,
        required_version_tags=[{"key": "owner_ok", "value": "yes"}],
        request_ttl_seconds=7 * 86400,
    )

    refused(
        services.model_version_stage_transition,
        "with the registry-wide one as its floor",
        actor=team["owner"],
        name="m",
        version="1",
        stage="Production",
    )
    services.model_version_tag_set(
        actor=team["owner"], name="m", version="1", key="owner_ok", value="yes"
    )
    services.model_version_tag_set(
        actor=team["owner"], name="m", version="1", key="validation", value="passed"
    )
    request = services.transition_request_create(
        actor=team["owner"], name="m", version="1", stage="Production"
    )
    assert request.expires_at - request.created_at == timedelta(days=1)
    approve(team["alice"])
    assert ModelVersion.objects.get(version=1).current_stage == "None"  # one of two
    approve(team["carol"])
    assert ModelVersion.objects.get(version=1).current_stage == "Production"

    # Stricter than the floor where the model says so.
    services.stage_policy_set(
        actor=team["owner"], name="m", stage="Production", required_approvals=3
    )
    effective = selectors.stage_policy_effective(
        registered_model=RegisteredModel.objects.get(name="m"), stage="Production"
    )
    assert (effective.required_approvals, effective.allow_direct_transition) == (3, False)
    assert effective.required_version_tags == {"owner_ok": "yes", "validation": "passed"}
    # Reading the policy in force changed neither stored policy.
    assert StagePolicy.objects.get(registered_model__name="m").allow_direct_transition is True
    assert StagePolicy.objects.get(registered_model=None).required_approvals == 2


def test_only_admins_set_registry_defaults_and_managers_model_policies(team, django_user_model):
    with pytest.raises(RegistryError) as excinfo:
        services.stage_policy_set(actor=team["owner"], stage="Production", required_approvals=2)
    assert excinfo.value.code == "PERMISSION_DENIED"
    with pytest.raises(RegistryError):
        services.stage_policy_set(actor=team["alice"], name="m", stage="Production")
    saved = services.stage_policy_set(
        actor=team["owner"],
        name="m",
        stage="production",
        required_approvals=2,
        required_version_tags=[{"key": "validation_status", "value": "passed"}],
        request_ttl_seconds=3600,
    )
    assert (saved.stage, saved.required_approvals, saved.request_ttl) == (
        "Production",
        2,
        timedelta(hours=1),
    )
    root = django_user_model.objects.create_superuser("root", password="root-password-1")
    services.stage_policy_set(actor=root, stage="Staging", allow_self_approval=False)
    assert StagePolicy.objects.filter(registered_model=None, stage="Staging").exists()
    services.stage_policy_delete(actor=team["owner"], name="m", stage="Production")
    assert not StagePolicy.objects.filter(registered_model__isnull=False).exists()


def test_registry_wide_policy_changes_are_audited_with_the_nil_model_code(team, django_user_model):
    root = django_user_model.objects.create_superuser("root", password="root-password-1")
    services.stage_policy_set(actor=root, stage="Staging", required_approvals=2)
    services.stage_policy_delete(actor=None, stage="Staging")  # the registry itself
    set_entry, deleted_entry = AuditEntry.objects.order_by("id")
    assert [
        (entry.action, entry.model_name, entry.model_code.int, entry.actor_username)
        for entry in (set_entry, deleted_entry)
    ] == [("STAGE_POLICY_SET", "", 0, "root"), ("STAGE_POLICY_DELETED", "", 0, "")]
    assert set_entry.detail["stage"] == deleted_entry.detail["stage"] == "Staging"
    assert (set_entry.detail["before"], set_entry.detail["after"]["required_approvals"]) == (
        None,
        2,
    )
    assert deleted_entry.detail["before"]["required_approvals"] == 2


def test_deleting_a_model_is_audited_and_the_audit_is_append_only(team):
    services.registered_model_delete(actor=team["owner"], name="m")
    entry = AuditEntry.objects.get()
    assert (entry.action, entry.model_name, entry.actor_username) == (
        "REGISTERED_MODEL_DELETED",
        "m",
        "owner",
    )
    assert entry.detail == {"versions": 2}
    for statement in (
        "UPDATE registry_auditentry SET model_name = 'x'",
        "DELETE FROM registry_auditentry",
    ):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(statement)
    assert AuditEntry.objects.get().model_name == "m"


def test_raw_sql_cannot_rewrite_the_activity_trail(team):
    services.transition_request_create(actor=team["bob"], name="m", version="1", stage="Staging")
    for statement in (
        "UPDATE registry_activity SET actor_username = 'someone else'",
        "DELETE FROM registry_activity",
    ):
        with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute(statement)
    assert Activity.objects.get().actor_username == "bob"
