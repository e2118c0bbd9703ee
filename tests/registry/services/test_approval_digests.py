"""Approvals are bound to the bytes they were given for: each approval of a transition request
records the version's artifact digest, and counts only while the version still has it
(docs/decisions/0015-governed-aliases.md). A managed copy never changes; the rule holds the
line should a version's digest ever differ from the one an approver saw."""

from __future__ import annotations

import pytest

from accounts.models import RegisteredModelGrant
from registry import services
from registry.models import ModelVersion, TransitionApproval

pytestmark = pytest.mark.django_db

DIGEST_A = "sha256:" + "a" * 64
DIGEST_B = "sha256:" + "b" * 64


@pytest.fixture
def team(django_user_model):
    users = {
        name: django_user_model.objects.create_user(name, password="pass-" + name * 3)
        for name in ("owner", "bob", "carol")
    }
    services.registered_model_create(actor=users["owner"], name="m")
    services.model_version_create(actor=users["owner"], name="m", source="s3://b/m/1")
    ModelVersion.objects.update(artifact_digest=DIGEST_A)
    root = django_user_model.objects.create_superuser("root", password="root-pass-1")
    services.stage_policy_set(actor=root, name="m", stage="Production", required_approvals=2)
    for name in ("bob", "carol"):
        RegisteredModelGrant.objects.create(
            registered_model=ModelVersion.objects.get().registered_model,
            user=users[name],
            level="CAN_MANAGE_PRODUCTION_VERSIONS",
        )
    return users


def test_an_approval_for_other_bytes_does_not_count(team):
    services.transition_request_create(actor=team["owner"], name="m", version=1, stage="Production")
    services.transition_request_approve(actor=team["bob"], name="m", version=1, stage="Production")
    assert TransitionApproval.objects.get().artifact_digest == DIGEST_A
    ModelVersion.objects.update(artifact_digest=DIGEST_B)
    activity = services.transition_request_approve(
        actor=team["carol"], name="m", version=1, stage="Production"
    )
    assert ModelVersion.objects.get().current_stage == "None"
    assert "Approval 1 of 2" in activity.system_comment
    assert f"bob (given for {DIGEST_A})" in activity.system_comment


def test_approvals_for_the_same_bytes_count(team):
    services.transition_request_create(actor=team["owner"], name="m", version=1, stage="Production")
    for name in ("bob", "carol"):
        services.transition_request_approve(
            actor=team[name], name="m", version=1, stage="Production"
        )
    assert ModelVersion.objects.get().current_stage == "Production"
