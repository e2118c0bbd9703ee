"""The UI's pages and forms through Django's test client: what each person sees, what a
refusal looks like, and that a refused POST changes nothing."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from registry import services
from registry.models import Activity, ModelVersion, TransitionApproval, TransitionRequest
from tests.ui.conftest import MODEL

pytestmark = pytest.mark.django_db


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _version_url(number: int) -> str:
    return reverse("ui:version-detail", kwargs={"name": MODEL, "version": number})


def _decide_url(request: TransitionRequest, decision: str) -> str:
    return reverse(
        "ui:request-decide",
        kwargs={"name": MODEL, "version": 2, "code": str(request.code), "decision": decision},
    )


def test_anonymous_visitors_are_sent_to_sign_in(client):
    response = client.get(reverse("ui:model-list"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("ui:login"))


def test_models_page_shows_production_and_staging_at_a_glance(story):
    response = _client(story.carol).get(reverse("ui:model-list"))
    assert response.status_code == 200
    html = response.content.decode()
    assert MODEL in html
    assert 'class="stage stage-production">v1<' in html


def test_pages_show_the_tags_and_aliases(story):
    services.model_version_tag_set(actor=story.owner, name=MODEL, version=2, key="ds", value="q3")
    services.registered_model_alias_set(actor=story.owner, name=MODEL, alias="champion", version=1)
    client = _client(story.carol)
    tag = '<span class="tag">team=risk</span>'
    assert tag in client.get(reverse("ui:model-list")).content.decode()
    model_html = client.get(reverse("ui:model-detail", kwargs={"name": MODEL})).content.decode()
    assert tag in model_html
    assert "@champion → v1</a>" in model_html
    assert '<span class="tag">@champion</span>' in client.get(_version_url(1)).content.decode()
    assert '<span class="tag">ds=q3</span>' in client.get(_version_url(2)).content.decode()


def test_models_search_by_name_and_tag(story):
    client = _client(story.carol)
    assert MODEL in client.get(reverse("ui:model-list"), {"q": "fraud"}).content.decode()
    assert MODEL not in client.get(reverse("ui:model-list"), {"q": "churn"}).content.decode()
    assert MODEL in client.get(reverse("ui:model-list"), {"tag": "team=risk"}).content.decode()
    assert MODEL not in client.get(reverse("ui:model-list"), {"tag": "team=ops"}).content.decode()
    # Wildcards and quotes typed by the user are matched literally, never a filter error.
    response = client.get(reverse("ui:model-list"), {"q": "%'_"})
    assert response.status_code == 200
    assert MODEL not in response.content.decode()


def test_models_page_is_paged(story):
    for index in range(25):
        services.registered_model_create(actor=story.owner, name=f"m-{index:02d}")
    client = _client(story.carol)
    first = client.get(reverse("ui:model-list"))
    assert first.context["next_url"]
    assert len(first.context["rows"]) == 20
    second = client.get(reverse("ui:model-list") + first.context["next_url"])
    assert len(second.context["rows"]) == 6  # 26 models in all


def test_description_markdown_is_rendered_safely(story):
    services.registered_model_update(
        actor=story.owner,
        name=MODEL,
        description="**bold** [bad](javascript:alert(1)) <script>alert(2)</script>",
    )
    html = _client(story.carol).get(reverse("ui:model-detail", args=[MODEL])).content.decode()
    assert "<strong>bold</strong>" in html
    assert "javascript:" not in html
    assert "<script>alert(2)" not in html


def test_model_page_shows_permissions_only_to_managers(story):
    url = reverse("ui:model-detail", args=[MODEL])
    assert "Stage policies" not in _client(story.carol).get(url).content.decode()
    owner_html = _client(story.owner).get(url).content.decode()
    assert "Stage policies" in owner_html
    assert "Permissions" in owner_html


def test_read_only_user_sees_no_decision_buttons(story):
    services.transition_request_create(
        actor=story.alice, name=MODEL, version=2, stage="Production", comment="ready"
    )
    carol_html = _client(story.carol).get(_version_url(2)).content.decode()
    assert 'data-action="approve"' not in carol_html
    assert 'data-action="reject"' not in carol_html
    assert (
        "Deciding this request needs the level “Can manage production versions” on the model."
    ) in carol_html
    bob_html = _client(story.bob).get(_version_url(2)).content.decode()
    assert 'data-action="approve"' in bob_html
    assert 'data-action="reject"' in bob_html


def test_forged_approve_from_a_read_only_user_is_refused_and_changes_nothing(story):
    request = services.transition_request_create(
        actor=story.alice, name=MODEL, version=2, stage="Production", comment="ready"
    )
    activities = Activity.objects.count()
    client = Client(enforce_csrf_checks=True)
    client.force_login(story.carol)
    page = client.get(_version_url(2))
    token = page.cookies["csrftoken"].value

    response = client.post(
        _decide_url(request, "approve"),
        {f"r-{request.code}-comment": "sneaky", "csrfmiddlewaretoken": token},
        follow=True,
    )

    # Refused, and sent back to the page (post/redirect/get) with the refusal as a message.
    assert response.redirect_chain == [(_version_url(2), 303)]
    html = response.content.decode()
    assert "may not move versions from None to Production" in html
    assert "Traceback" not in html
    request.refresh_from_db()
    assert request.status == "OPEN"
    assert TransitionApproval.objects.count() == 0
    assert Activity.objects.count() == activities
    assert ModelVersion.objects.get(registered_model=story.model, version=2).current_stage == "None"


def test_request_and_approve_through_the_forms(story):
    alice = _client(story.alice)
    response = alice.post(
        reverse("ui:version-transition", kwargs={"name": MODEL, "version": 2}),
        {"t-stage": "Production", "t-comment": "passes validation", "action": "request"},
    )
    assert response.status_code == 302
    request = TransitionRequest.objects.get(status="OPEN")
    waiting = _client(story.bob).get(reverse("ui:waiting"))
    assert [row.request for row in waiting.context["rows"]] == [request]
    assert _client(story.carol).get(reverse("ui:waiting")).context["rows"] == []

    response = _client(story.bob).post(
        _decide_url(request, "approve"),
        {
            f"r-{request.code}-comment": "ship it",
            f"r-{request.code}-archive_existing_versions": "on",
        },
    )

    assert response.status_code == 302
    versions = dict(
        ModelVersion.objects.filter(registered_model=story.model).values_list(
            "version", "current_stage"
        )
    )
    assert versions == {1: "Archived", 2: "Production"}


def test_refused_request_keeps_what_was_typed(story):
    services.transition_request_create(actor=story.alice, name=MODEL, version=2, stage="Production")
    alice = _client(story.alice)
    response = alice.post(
        reverse("ui:version-transition", kwargs={"name": MODEL, "version": 2}),
        {"t-stage": "Production", "t-comment": "again please", "action": "request"},
        follow=True,
    )
    assert response.redirect_chain == [(_version_url(2), 303)]
    html = response.content.decode()
    assert "already exists" in html
    assert "again please" in html
    # Shown once: the next visit has an empty form.
    assert "again please" not in alice.get(_version_url(2)).content.decode()


def test_comments_add_edit_delete_own_only(story):
    alice = _client(story.alice)
    alice.post(
        reverse("ui:comment-create", kwargs={"name": MODEL, "version": 2}), {"c-comment": "hi"}
    )
    comment = story.model.versions.get(version=2).comments.get()
    carol = _client(story.carol)
    html = carol.get(_version_url(2)).content.decode()
    assert (
        reverse("ui:comment-edit", kwargs={"name": MODEL, "version": 2, "code": comment.code})
        not in html
    )
    refused = carol.post(
        reverse("ui:comment-edit", kwargs={"name": MODEL, "version": 2, "code": comment.code}),
        {"comment": "changed"},
    )
    assert refused.status_code == 303
    comment.refresh_from_db()
    assert comment.text == "hi"
    alice.post(
        reverse("ui:comment-edit", kwargs={"name": MODEL, "version": 2, "code": comment.code}),
        {"comment": "hello"},
    )
    comment.refresh_from_db()
    assert comment.text == "hello"
    alice.post(
        reverse("ui:comment-delete", kwargs={"name": MODEL, "version": 2, "code": comment.code})
    )
    assert not story.model.versions.get(version=2).comments.exists()


def test_tokens_created_once_listed_and_revoked(story):
    client = _client(story.alice)
    response = client.post(reverse("ui:tokens"), {"name": "ci"}, follow=True)
    # Created, then shown on the page the browser is sent to: a reload creates nothing.
    assert response.redirect_chain == [(reverse("ui:tokens"), 303)]
    secret = response.context["created"]["secret"]
    assert secret.startswith("mrt_")
    assert secret in response.content.decode()
    assert story.alice.api_tokens.count() == 1
    assert response["Cache-Control"] == "no-store"
    listing = client.get(reverse("ui:tokens")).content.decode()
    assert secret not in listing
    token = story.alice.api_tokens.get()
    client.post(reverse("ui:token-revoke", args=[token.code]))
    token.refresh_from_db()
    assert token.revoked_at is not None


def test_unknown_model_is_a_readable_404(story):
    response = _client(story.carol).get(reverse("ui:model-detail", args=["nope"]))
    assert response.status_code == 404
    assert "Registered Model with name=nope not found" in response.content.decode()


def test_sign_in_and_out(story, client):
    response = client.post(
        reverse("ui:login"), {"username": "alice", "password": "correct-horse-battery-staple"}
    )
    assert response.status_code == 302
    assert client.get(reverse("ui:model-list")).status_code == 200
    client.post(reverse("ui:logout"))
    assert client.get(reverse("ui:model-list")).status_code == 302


def _hook_with_a_delivery(owner, status: str = "FAILED"):
    from webhooks.models import WebhookDelivery, WebhookDeliveryAttempt, WebhookEvent
    from webhooks.services.management import webhook_create

    hook = webhook_create(
        actor=owner,
        flavor="DATABRICKS",
        events=["MODEL_VERSION_CREATED"],
        url="https://hooks.example.com/x",
        model_name=MODEL,
        status="TEST_MODE",
    )
    event = WebhookEvent.objects.create(event_type="MODEL_VERSION_CREATED", model_name=MODEL)
    delivery = WebhookDelivery.objects.create(
        webhook=hook, event=event, body="{}", status=status, attempt_count=1
    )
    WebhookDeliveryAttempt.objects.create(
        delivery=delivery, number=1, outcome="FAILED", response_status=410, error="HTTP 410"
    )
    return hook, delivery


def test_webhook_log_and_redeliver_for_the_model_manager_only(story):
    hook, delivery = _hook_with_a_delivery(story.owner)
    owner = _client(story.owner)
    assert hook in owner.get(reverse("ui:webhook-list")).context["webhooks"]
    page = owner.get(reverse("ui:webhook-detail", args=[hook.code]))
    assert "HTTP 410" in page.content.decode()
    assert _client(story.carol).get(reverse("ui:webhook-list")).context["webhooks"] == []
    carol = _client(story.carol).get(reverse("ui:webhook-detail", args=[hook.code]))
    assert carol.status_code == 403
    redeliver = reverse("ui:delivery-redeliver", args=[hook.code, delivery.code])

    refused = _client(story.carol).post(redeliver, follow=True)

    assert refused.redirect_chain == [(reverse("ui:webhook-detail", args=[hook.code]), 303)]
    assert refused.status_code == 403  # the page itself is not Carol's to read
    delivery.refresh_from_db()
    assert delivery.status == "FAILED"

    response = owner.post(redeliver)

    assert response.status_code == 302
    delivery.refresh_from_db()
    assert delivery.status == "PENDING"


def test_models_search_by_tag_key_alone(story):
    services.registered_model_create(actor=story.owner, name="churn")
    rows = _client(story.carol).get(reverse("ui:model-list"), {"tag": "team"}).context["rows"]
    assert [row["model"].name for row in rows] == [MODEL]


def test_policy_form_sets_the_models_policy(story):
    response = _client(story.owner).post(
        reverse("ui:model-policy", args=[MODEL]),
        {
            "stage": "Production",
            "p-Production-stage": "Production",
            "p-Production-required_approvals": "2",
            "p-Production-allow_direct_transition": "on",
        },
    )
    assert response.status_code == 302
    policy = story.model.stage_policies.get(stage="Production")
    assert (policy.required_approvals, policy.allow_self_approval) == (2, False)
    refused = _client(story.alice).post(
        reverse("ui:model-policy", args=[MODEL]),
        {
            "stage": "Production",
            "p-Production-stage": "Production",
            "p-Production-required_approvals": "1",
        },
        follow=True,
    )
    assert refused.redirect_chain == [(reverse("ui:model-detail", args=[MODEL]) + "#policies", 303)]
    assert "may not" in refused.content.decode()
    assert story.model.stage_policies.get(stage="Production").required_approvals == 2


def test_waiting_for_me_with_private_models(story, settings, django_user_model):
    settings.REGISTRY = {**settings.REGISTRY, "DEFAULT_PERMISSION_LEVEL": "NONE"}
    request = services.transition_request_create(
        actor=story.alice, name=MODEL, version=2, stage="Production"
    )
    outsider = django_user_model.objects.create_user(username="dave", password="x" * 12)
    assert _client(outsider).get(reverse("ui:waiting")).context["rows"] == []
    rows = _client(story.bob).get(reverse("ui:waiting")).context["rows"]
    assert [row.request for row in rows] == [request]


def test_retry_registration_button_for_editors_of_a_failed_version(story):
    ModelVersion.objects.filter(registered_model=story.model, version=2).update(
        status="FAILED_REGISTRATION", status_message="Copy failed after 9 attempts: store down."
    )
    retry_url = reverse("ui:version-registration-retry", kwargs={"name": MODEL, "version": 2})
    carol_html = _client(story.carol).get(_version_url(2)).content.decode()
    assert "Copy failed after 9 attempts: store down." in carol_html
    assert 'data-testid="retry-registration"' not in carol_html
    alice_html = _client(story.alice).get(_version_url(2)).content.decode()
    assert 'data-testid="retry-registration"' in alice_html
    assert f'action="{retry_url}"' in alice_html
    # A ready version offers no retry.
    assert 'data-testid="retry-registration"' not in (
        _client(story.alice).get(_version_url(1)).content.decode()
    )

    refused = _client(story.carol).post(retry_url, follow=True)

    assert refused.redirect_chain == [(_version_url(2), 303)]
    assert "may not retry the registration of versions of" in refused.content.decode()
    assert ModelVersion.objects.get(registered_model=story.model, version=2).status == (
        "FAILED_REGISTRATION"
    )

    response = _client(story.alice).post(retry_url, follow=True)

    assert response.redirect_chain == [(_version_url(2), 302)]
    assert "Registration of version 2 retried" in response.content.decode()
    # The suite's stand-in for the copy worker made it READY at once.
    version = ModelVersion.objects.get(registered_model=story.model, version=2)
    assert (version.status, version.status_message) == ("READY", "")

    again = _client(story.alice).post(retry_url, follow=True)

    assert again.redirect_chain == [(_version_url(2), 303)]
    assert "only FAILED_REGISTRATION versions can retry their registration" in (
        again.content.decode()
    )


def test_waiting_for_me_includes_alias_requests(story):
    """An alias request waits for whoever may decide it: Bob (CAN_MANAGE_PRODUCTION_VERSIONS),
    not Carol (CAN_READ); the page shows the alias, the version it names and the one asked."""
    services.registered_model_alias_set(actor=story.owner, name=MODEL, alias="champion", version=1)
    services.alias_policy_set(actor=story.owner, name=MODEL, alias="champion", protected=True)
    stage = services.transition_request_create(
        actor=story.alice, name=MODEL, version=2, stage="Staging"
    )
    alias = services.alias_request_create(
        actor=story.alice, name=MODEL, alias="champion", version=2
    )
    response = _client(story.bob).get(reverse("ui:waiting"))
    rows = response.context["rows"]
    assert [(row.kind, row.request) for row in rows] == [("stage", stage), ("alias", alias)]
    assert rows[1].actions == ["APPROVE_ALIAS_REQUEST", "REJECT_ALIAS_REQUEST"]
    assert "@champion: version 1 → version 2" in response.content.decode()
    assert _client(story.carol).get(reverse("ui:waiting")).context["rows"] == []
