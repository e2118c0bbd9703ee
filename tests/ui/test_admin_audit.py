"""Every admin action is written to the append-only audit trail: who, which action, which
object, and the outcome; a success in the same transaction as the change."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from registry import services
from registry.models import AuditEntry, ModelVersion, RegisteredModel
from tests.ui.conftest import MODEL

pytestmark = pytest.mark.django_db


def _admin(django_user_model) -> Client:
    user = django_user_model.objects.create_superuser(username="root", password="x" * 12)
    client = Client()
    client.force_login(user)
    return client


def _admin_entries() -> list[AuditEntry]:
    return list(AuditEntry.objects.filter(action=AuditEntry.Action.ADMIN_ACTION))


def test_a_transition_in_the_admin_is_audited(story, django_user_model):
    client = _admin(django_user_model)
    version = ModelVersion.objects.get(registered_model__name=MODEL, version=2)
    model = version.registered_model

    client.post(
        reverse("admin:registry_modelversion_changelist"),
        {"action": "transition_to_staging", "_selected_action": [version.pk]},
        follow=True,
    )

    version.refresh_from_db()
    assert version.current_stage == "Staging"
    [entry] = _admin_entries()
    assert entry.actor_username == "root"
    assert entry.model_name == MODEL
    assert entry.model_code == model.code
    assert entry.detail == {
        "admin_action": "transition_to_staging",
        "object_type": "registry.modelversion",
        "object_id": str(version.code),
        "object": str(version),
        "outcome": "moved to Staging.",
    }


def test_a_refused_admin_action_is_audited_and_changes_nothing(story, django_user_model):
    services.stage_policy_set(
        actor=story.owner, name=MODEL, stage="Staging", allow_direct_transition=False
    )
    client = _admin(django_user_model)
    version = ModelVersion.objects.get(registered_model__name=MODEL, version=2)

    client.post(
        reverse("admin:registry_modelversion_changelist"),
        {"action": "transition_to_staging", "_selected_action": [version.pk]},
        follow=True,
    )

    version.refresh_from_db()
    assert version.current_stage == "None"
    [entry] = _admin_entries()
    assert entry.detail["outcome"] == "refused"
    assert entry.detail["error"]
    assert entry.actor_username == "root"


def test_deleting_a_model_in_the_admin_is_audited_with_its_name(story, django_user_model):
    client = _admin(django_user_model)
    model = RegisteredModel.objects.get(name=MODEL)

    # Version 1 is in Production: the plain deletion is refused (the deletion guard), and
    # the refusal is audited too; the forced one deletes.
    for action in ("delete_models", "delete_models_forced"):
        client.post(
            reverse("admin:registry_registeredmodel_changelist"),
            {"action": action, "_selected_action": [model.pk]},
            follow=True,
        )

    assert not RegisteredModel.objects.filter(pk=model.pk).exists()
    refused, entry = _admin_entries()
    assert (refused.detail["admin_action"], refused.detail["outcome"]) == (
        "delete_models",
        "refused",
    )
    assert "version 1 (it is in Production)" in refused.detail["error"]
    assert (entry.model_name, entry.model_code) == (MODEL, model.code)
    assert entry.detail["admin_action"] == "delete_models_forced"
    assert entry.detail["object_id"] == str(model.code)
    assert entry.detail["outcome"] == "deleted (forced)."
    # The service's own record of the deletion is there too, in the same transaction.
    assert (
        AuditEntry.objects.filter(
            action=AuditEntry.Action.REGISTERED_MODEL_DELETED, model_code=model.code
        ).count()
        == 1
    )


def test_stage_policies_saved_and_deleted_in_the_admin_are_audited(story, django_user_model):
    client = _admin(django_user_model)
    model = RegisteredModel.objects.get(name=MODEL)

    response = client.post(
        reverse("admin:registry_stagepolicy_add"),
        {
            "registered_model": model.pk,
            "stage": "Production",
            "required_approvals": 2,
            "allow_self_approval": "",
            "allow_direct_transition": "on",
            "required_version_tags": "{}",
            "request_ttl": "",
            "updated_at_0": "2026-01-01",
            "updated_at_1": "00:00:00",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    policy = model.stage_policies.get(stage="Production")
    client.post(reverse("admin:registry_stagepolicy_delete", args=[policy.pk]), {"post": "yes"})

    assert not model.stage_policies.exists()
    saved, deleted = AuditEntry.objects.filter(model_code=model.code).order_by("id")
    terms = {
        "required_approvals": 2,
        "allow_self_approval": False,
        "allow_direct_transition": True,
        "required_version_tags": {},
        "gate_tag_groups": [],
        "request_ttl_seconds": 0,
    }
    assert (saved.action, saved.actor_username, saved.model_name) == (
        AuditEntry.Action.STAGE_POLICY_SET,
        "root",
        MODEL,
    )
    assert saved.detail == {"stage": "Production", "before": None, "after": terms}
    assert deleted.action == AuditEntry.Action.STAGE_POLICY_DELETED
    assert deleted.detail == {"stage": "Production", "before": terms}


def test_a_stage_policy_change_through_the_api_is_audited(story):
    services.stage_policy_set(actor=story.owner, name=MODEL, stage="Staging", required_approvals=1)
    services.stage_policy_set(actor=story.owner, name=MODEL, stage="Staging", required_approvals=3)
    first, second = AuditEntry.objects.filter(action=AuditEntry.Action.STAGE_POLICY_SET)
    assert first.detail["before"] is None
    assert second.detail["before"]["required_approvals"] == 1
    assert second.detail["after"]["required_approvals"] == 3
    assert second.actor_username == story.owner.username
