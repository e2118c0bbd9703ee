"""Each open request's card says where it stands against the policy in force before anyone
approves, and shows Approve only where the approval would succeed: transition requests on the
version page, alias requests on the model page (docs/ui.md, "Open requests")."""

from __future__ import annotations

import itertools

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from registry import services
from registry.models import TransitionApproval
from tests.ui.conftest import MODEL

pytestmark = pytest.mark.django_db

numbers = itertools.count(1)


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _text(response) -> str:
    assert response.status_code == 200, response.content[:300]
    return " ".join(response.content.decode().split())


def _version_page(user, version: int = 2):
    return _client(user).get(
        reverse("ui:version-detail", kwargs={"name": MODEL, "version": version})
    )


def test_a_request_under_the_default_policy_says_one_approval_and_self_approval(story):
    services.transition_request_create(actor=story.bob, name=MODEL, version=2, stage="Staging")
    html = _text(_version_page(story.bob))
    assert "No approvals yet · 1 needed" in html
    assert "the requester may approve" in html
    assert "needs <code>" not in html
    # Bob may approve his own request here, so the button is there and no note explains.
    assert 'data-action="approve"' in html
    assert 'data-testid="viewer-note"' not in html


def test_the_approve_button_is_kept_for_a_partial_approval_whatever_the_tags(story):
    """Tags are checked when the move applies: the first of two approvals is not refused for
    a missing tag, so it keeps its button, and the card says the tag is missing."""
    services.stage_policy_set(
        actor=story.owner,
        name=MODEL,
        stage="Production",
        required_approvals=2,
        required_version_tags={"validation_status": "passed"},
    )
    services.transition_request_create(actor=story.alice, name=MODEL, version=2, stage="Production")
    html = _text(_version_page(story.bob))
    assert "needs <code>validation_status=passed</code>, now no such tag" in html
    assert 'data-action="approve"' in html
    # A single approval would complete it under a one-approval policy: then it is withheld.
    services.stage_policy_set(
        actor=story.owner, name=MODEL, stage="Production", required_approvals=1
    )
    html = _text(_version_page(story.bob))
    assert 'data-action="approve"' not in html
    assert 'data-action="reject"' in html
    assert "Your approval would complete the count, and the move would be refused" in html


def test_an_approval_given_for_other_files_does_not_count_on_the_card(story):
    services.stage_policy_set(
        actor=story.owner, name=MODEL, stage="Production", required_approvals=2
    )
    services.transition_request_create(actor=story.alice, name=MODEL, version=2, stage="Production")
    services.transition_request_approve(actor=story.bob, name=MODEL, version=2, stage="Production")
    assert "Approval 1 of 2" in _text(_version_page(story.owner))
    TransitionApproval.objects.update(artifact_digest="sha256:" + "00" * 32)
    html = _text(_version_page(story.owner))
    assert "No approvals yet · 2 needed" in html
    assert "Approvals that no longer count: bob (given for other files)" in html


def test_an_alias_request_card_says_its_policy_and_stage(story):
    services.alias_policy_set(
        actor=story.owner,
        name=MODEL,
        alias="champion",
        protected=True,
        required_approvals=2,
        allow_self_approval=False,
        required_version_tags={"validation_status": "passed"},
        allowed_stages=["Production"],
    )
    services.alias_request_create(actor=story.bob, name=MODEL, alias="champion", version=2)
    url = reverse("ui:model-detail", kwargs={"name": MODEL})
    html = _text(_client(story.owner).get(url))
    assert "No approvals yet · 2 needed" in html
    assert "the requester may not approve" in html
    assert "needs <code>validation_status=passed</code>, now no such tag" in html
    assert "needs the version in Production, now None" in html
    bob_html = _text(_client(story.bob).get(url))
    assert "the policy does not let the requester approve" in bob_html
    assert 'data-action="approve"' not in bob_html
    carol_html = _text(_client(story.carol).get(url))
    assert (
        "Deciding this request needs the level “Can manage production versions” on the model"
    ) in carol_html


def test_the_model_page_reads_alias_requests_in_a_fixed_number_of_queries(story):
    client = _client(story.owner)
    url = reverse("ui:model-detail", kwargs={"name": MODEL})

    def add(count: int) -> None:
        for _ in range(count):
            alias = f"a{next(numbers)}"
            services.alias_policy_set(
                actor=story.owner,
                name=MODEL,
                alias=alias,
                protected=True,
                required_version_tags={"validation_status": "passed"},
            )
            services.alias_request_create(actor=story.alice, name=MODEL, alias=alias, version=2)

    def queries() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert client.get(url).status_code == 200
        return len(captured.captured_queries)

    add(2)
    client.get(url)
    few = queries()
    add(8)
    assert queries() == few
