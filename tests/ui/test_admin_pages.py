"""The admin's own pages: plural names that read right, a record's actions as buttons on its
page (the same action functions as the bulk actions, so the same services and the same audit
entries), a link to the record's page in the web UI, and no typed audit fields."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from registry import services
from registry.models import (
    AliasRequest,
    AuditEntry,
    ModelVersion,
    TransitionRequest,
    VersionTagChange,
)
from tests.ui.conftest import MODEL

pytestmark = pytest.mark.django_db


def _admin(django_user_model, username: str = "root") -> Client:
    user = django_user_model.objects.create_superuser(username=username, password="x" * 12)
    client = Client()
    client.force_login(user)
    return client


def _change_url(model: str, pk: int) -> str:
    return reverse(f"admin:{model}_change", args=[pk])


def _run_url(model: str, pk: int, action: str) -> str:
    return reverse(f"admin:{model}_object_action", args=[pk, action])


def test_plural_names_read_right(django_user_model):
    html = _admin(django_user_model).get(reverse("admin:index")).content.decode()
    for name in ["Registered model aliases", "Webhook deliveries", "API tokens"]:
        assert name in html
    for wrong in ["aliass", "deliverys", "Api tokens"]:
        assert wrong not in html


def test_a_request_is_approved_from_its_own_page_under_its_policy(story, django_user_model):
    services.stage_policy_set(
        actor=story.owner, name=MODEL, stage="Production", required_approvals=2
    )
    request = services.transition_request_create(
        actor=story.alice, name=MODEL, version=2, stage="Production"
    )
    model = "registry_transitionrequest"
    first = _admin(django_user_model, "root1")
    page = first.get(_change_url(model, request.pk)).content.decode()
    assert 'data-testid="object-actions"' in page
    for action in ["approve", "approve_and_archive", "reject", "cancel"]:
        assert f'action="{_run_url(model, request.pk, action)}"' in page
    assert f'href="/models/{MODEL}/versions/2/"' in page  # the link to the UI page

    response = first.post(
        _run_url(model, request.pk, "approve_and_archive"),
        {"action": "approve_and_archive"},
        follow=True,
    )
    assert response.redirect_chain == [(_change_url(model, request.pk), 302)]
    assert "the policy needs more approvers" in response.content.decode()
    request.refresh_from_db()
    assert request.status == "OPEN"
    # The same admin again does not count twice: the service's refusal, shown on the page.
    again = first.post(_run_url(model, request.pk, "approve"), {"action": "approve"}, follow=True)
    assert "has already approved this request" in again.content.decode()

    second = _admin(django_user_model, "root2")
    done = second.post(
        _run_url(model, request.pk, "approve_and_archive"),
        {"action": "approve_and_archive"},
        follow=True,
    )
    assert "approved; the version is now in Production." in done.content.decode()
    request.refresh_from_db()
    assert request.status == "APPROVED"
    stages = dict(
        ModelVersion.objects.filter(registered_model__name=MODEL).values_list(
            "version", "current_stage"
        )
    )
    assert stages == {1: "Archived", 2: "Production"}
    # Audited as the bulk actions are.
    outcomes = [
        (entry.actor_username, entry.detail["admin_action"], entry.detail["outcome"])
        for entry in AuditEntry.objects.filter(action=AuditEntry.Action.ADMIN_ACTION)
    ]
    assert outcomes[0][:2] == ("root1", "approve_and_archive")
    assert outcomes[1] == ("root1", "approve", "refused")
    assert outcomes[2][:2] == ("root2", "approve_and_archive")
    # A closed request offers no buttons.
    closed = second.get(_change_url(model, request.pk)).content.decode()
    assert 'data-testid="object-actions"' not in closed


def test_a_version_moves_from_its_own_page_and_a_get_changes_nothing(story, django_user_model):
    client = _admin(django_user_model)
    version = ModelVersion.objects.get(registered_model__name=MODEL, version=2)
    model = "registry_modelversion"
    page = client.get(_change_url(model, version.pk)).content.decode()
    assert "Move to Staging (archive the versions there)" in page
    assert 'data-action="transition_to_none"' not in page  # it is in None already
    assert f'href="/models/{MODEL}/versions/2/"' in page

    opened = client.get(_run_url(model, version.pk, "transition_to_staging"))
    assert opened.status_code == 302
    version.refresh_from_db()
    assert version.current_stage == "None"

    client.post(
        _run_url(model, version.pk, "transition_to_staging"), {"action": "transition_to_staging"}
    )
    version.refresh_from_db()
    assert version.current_stage == "Staging"
    unknown = client.post(_run_url(model, version.pk, "delete_everything"), {})
    assert unknown.status_code == 404


def test_an_alias_request_is_decided_from_its_own_page(story, django_user_model):
    services.alias_policy_set(actor=story.owner, name=MODEL, alias="champion", protected=True)
    request = services.alias_request_create(
        actor=story.alice, name=MODEL, alias="champion", version=2
    )
    client = _admin(django_user_model)
    model = "registry_aliasrequest"
    page = client.get(_change_url(model, request.pk)).content.decode()
    assert f'href="/models/{MODEL}/#aliases"' in page
    client.post(_run_url(model, request.pk, "reject"), {"action": "reject"})
    request.refresh_from_db()
    assert request.status == "REJECTED"
    assert AliasRequest.objects.get().closing_comment == "Rejected in the admin."


def test_the_grant_form_does_not_take_a_creation_time(story, django_user_model):
    client = _admin(django_user_model)
    html = client.get(reverse("admin:accounts_registeredmodelgrant_add")).content.decode()
    assert 'name="created_at' not in html
    policy_html = client.get(reverse("admin:registry_stagepolicy_add")).content.decode()
    assert 'name="updated_at' not in policy_html


def test_staff_without_the_registry_cannot_run_a_records_action(story, django_user_model):
    request = services.transition_request_create(
        actor=story.alice, name=MODEL, version=2, stage="Staging"
    )
    staff = django_user_model.objects.create_user(
        username="staff", password="x" * 12, is_staff=True
    )
    client = Client()
    client.force_login(staff)
    response = client.post(
        _run_url("registry_transitionrequest", request.pk, "approve"), {"action": "approve"}
    )
    assert response.status_code == 404
    assert TransitionRequest.objects.get().status == "OPEN"


def test_the_tag_history_is_listed_and_read_only(story, django_user_model):
    services.model_version_tag_set(
        actor=story.owner, name=MODEL, version=2, key="validation_status", value="passed"
    )
    client = _admin(django_user_model)
    html = client.get(reverse("admin:registry_versiontagchange_changelist")).content.decode()
    assert "Version tag changes" in html
    assert "validation_status" in html
    change = VersionTagChange.objects.get()
    assert client.get(reverse("admin:registry_versiontagchange_add")).status_code == 403
    page = client.get(_change_url("registry_versiontagchange", change.pk)).content.decode()
    assert 'name="_save"' not in page
