"""The model page's aliases: each with its version's stage, a warning when it names an Archived
version, set / request / rollback / decide by permission, and the history. The forms call the
same services as the API, so a protected alias refuses "Move now" to anyone it does not name."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from registry import services
from registry.models import AliasRequest, AuditEntry, RegisteredModelAlias
from tests.ui.conftest import MODEL

pytestmark = pytest.mark.django_db


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _model_url() -> str:
    return reverse("ui:model-detail", kwargs={"name": MODEL})


def _aliases() -> dict[str, int]:
    return dict(RegisteredModelAlias.objects.values_list("alias", "model_version__version"))


def _move(user, alias: str, version: int, action: str, follow: bool = False):
    return _client(user).post(
        reverse("ui:alias-move", kwargs={"name": MODEL}),
        {"a-alias": alias, "a-version": version, "a-comment": "why", "action": action},
        follow=follow,
    )


def test_the_page_shows_each_alias_with_its_stage_and_warns_of_archived_ones(story):
    services.registered_model_alias_set(actor=story.owner, name=MODEL, alias="champion", version=1)
    services.registered_model_alias_set(actor=story.owner, name=MODEL, alias="next", version=2)
    html = _client(story.carol).get(_model_url()).content.decode()
    assert 'data-testid="alias-table"' in html
    assert 'data-testid="alias-archived-warning"' not in html
    services.model_version_stage_transition(
        actor=story.owner, name=MODEL, version=2, stage="Production", archive_existing_versions=True
    )
    response = _client(story.carol).get(_model_url())
    assert [row.alias for row in response.context["alias_rows"]] == ["champion", "next"]
    assert response.context["archived_aliases"] == ["champion"]
    assert "@champion names an Archived version" in response.content.decode()
    # Carol (CAN_READ) may ask, not move: no "Move now".
    assert 'value="move"' not in response.content.decode()


def test_move_request_approve_and_rollback_through_the_forms(story):
    services.registered_model_alias_set(actor=story.owner, name=MODEL, alias="champion", version=1)
    services.alias_policy_set(actor=story.owner, name=MODEL, alias="champion", protected=True)
    # Alice (CAN_EDIT) may not move it now: refused with the policy's words, nothing changed.
    refused = _move(story.alice, "champion", 2, "move", follow=True)
    assert refused.redirect_chain == [(_model_url() + "#aliases", 303)]
    assert "Refused by the alias policy of &#x27;@champion&#x27;" in refused.content.decode()
    assert _aliases() == {"champion": 1}
    # She asks; Bob approves on the model page.
    assert _move(story.alice, "champion", 2, "request").status_code == 302
    request = AliasRequest.objects.get()
    page = _client(story.bob).get(_model_url())
    [row] = page.context["alias_request_rows"]
    assert row.actions == ["APPROVE_ALIAS_REQUEST", "REJECT_ALIAS_REQUEST"]
    decided = _client(story.bob).post(
        reverse(
            "ui:alias-request-decide",
            kwargs={
                "name": MODEL,
                "alias": "champion",
                "version": 2,
                "code": request.code,
                "decision": "approve",
            },
        ),
        {"comment": "ok"},
        follow=True,
    )
    assert "Approved: @champion now names version 2." in decided.content.decode()
    assert _aliases() == {"champion": 2}
    history = [(m.from_version, m.to_version) for m in decided.context["alias_history"]]
    assert history == [(1, 2), (None, 1)]
    # Rolling back a protected alias Alice may not move is a request; the owner's too (the
    # policy names nobody).
    rollback = reverse("ui:alias-rollback", kwargs={"name": MODEL, "alias": "champion"})
    response = _client(story.alice).post(rollback, follow=True)
    assert "it is protected, so the move waits for approval" in response.content.decode()
    assert AliasRequest.objects.filter(status="OPEN", rollback=True).count() == 1
    assert _aliases() == {"champion": 2}


def test_the_admin_decides_alias_requests_through_the_service_and_lists_the_history(
    story, django_user_model
):
    root = django_user_model.objects.create_superuser(username="root", password="x" * 12)
    admin = Client()
    admin.force_login(root)
    services.registered_model_alias_set(actor=story.owner, name=MODEL, alias="champion", version=1)
    services.alias_policy_set(
        actor=story.owner, name=MODEL, alias="champion", protected=True, required_approvals=2
    )
    request = services.alias_request_create(
        actor=story.alice, name=MODEL, alias="champion", version=2
    )
    changelist = reverse("admin:registry_aliasrequest_changelist")
    response = admin.post(
        changelist, {"action": "approve", "_selected_action": [request.pk]}, follow=True
    )
    # One approval of two: recorded, the alias stays, and the admin says why.
    assert "Approval 1 of 2." in response.content.decode()
    assert _aliases() == {"champion": 1}
    entry = AuditEntry.objects.filter(action="ADMIN_ACTION").get()
    assert (entry.detail["admin_action"], entry.detail["outcome"]) == (
        "approve",
        "Approval 1 of 2.",
    )
    for page in (
        changelist,
        reverse("admin:registry_aliaspolicy_changelist"),
        reverse("admin:registry_pointermove_changelist"),
    ):
        assert admin.get(page).status_code == 200
