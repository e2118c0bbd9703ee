"""Waiting for me lists only what still waits for the user (not what they approved already),
the navigation counts it on every page, and "My requests" shows a requester their requests
with where the open ones stand (docs/ui.md)."""

from __future__ import annotations

import itertools

import pytest
from django.test import Client
from django.urls import reverse

from registry import services
from tests.ui.conftest import MODEL
from tests.ui.test_query_counts import _same_count

pytestmark = pytest.mark.django_db

numbers = itertools.count(1)


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _count_in_nav(user) -> str | None:
    html = _client(user).get(reverse("ui:model-list")).content.decode()
    marker = 'data-testid="waiting-count"'
    if marker not in html:
        return None
    return html.split(marker, 1)[1].split(">", 1)[1].split("<", 1)[0]


def test_a_request_the_user_approved_no_longer_waits_for_them(story):
    services.stage_policy_set(
        actor=story.owner, name=MODEL, stage="Production", required_approvals=2
    )
    request = services.transition_request_create(
        actor=story.alice, name=MODEL, version=2, stage="Production"
    )
    waiting = reverse("ui:waiting")
    assert [row.request for row in _client(story.bob).get(waiting).context["rows"]] == [request]
    assert _count_in_nav(story.bob) == "1"

    services.transition_request_approve(actor=story.bob, name=MODEL, version=2, stage="Production")

    assert _client(story.bob).get(waiting).context["rows"] == []
    assert _count_in_nav(story.bob) is None
    # It still waits for the owner, who has not decided.
    assert [row.request for row in _client(story.owner).get(waiting).context["rows"]] == [request]
    assert _count_in_nav(story.owner) == "1"
    assert _count_in_nav(story.carol) is None


def test_an_alias_request_the_user_approved_no_longer_waits_for_them(story):
    services.alias_policy_set(
        actor=story.owner, name=MODEL, alias="champion", protected=True, required_approvals=2
    )
    services.alias_request_create(actor=story.alice, name=MODEL, alias="champion", version=2)
    assert _count_in_nav(story.bob) == "1"
    services.alias_request_approve(actor=story.bob, name=MODEL, alias="champion", version=2)
    assert _client(story.bob).get(reverse("ui:waiting")).context["rows"] == []
    assert _count_in_nav(story.owner) == "1"


def test_my_requests_shows_the_requesters_requests_and_where_they_stand(story):
    services.stage_policy_set(
        actor=story.owner,
        name=MODEL,
        stage="Production",
        required_approvals=2,
        required_version_tags={"validation_status": "passed"},
    )
    services.transition_request_create(actor=story.alice, name=MODEL, version=2, stage="Production")
    services.transition_request_approve(actor=story.bob, name=MODEL, version=2, stage="Production")
    staging = services.transition_request_create(
        actor=story.alice, name=MODEL, version=2, stage="Staging"
    )
    services.transition_request_reject(
        actor=story.bob, name=MODEL, version=2, stage="Staging", request_id=staging.code
    )
    services.alias_policy_set(actor=story.owner, name=MODEL, alias="champion", protected=True)
    services.alias_request_create(actor=story.alice, name=MODEL, alias="champion", version=2)
    services.transition_request_create(actor=story.carol, name=MODEL, version=2, stage="Archived")

    response = _client(story.alice).get(reverse("ui:my-requests"))

    rows = response.context["page"].object_list
    assert [(row.kind, row.request.status) for row in rows] == [
        ("alias", "OPEN"),
        ("stage", "REJECTED"),
        ("stage", "OPEN"),
    ]
    html = " ".join(response.content.decode().split())
    assert "Approval 1 of 2 · needs <code>validation_status=passed</code>" in html
    assert "@champion → version 2" in html
    assert "Rejected" in html
    assert _client(story.owner).get(reverse("ui:my-requests")).context["page"].object_list == []


def test_my_requests_is_paged(story):
    for _ in range(30):
        version = services.model_version_create(
            actor=story.owner, name=MODEL, source=f"s3://m/{next(numbers)}"
        ).version
        services.transition_request_create(
            actor=story.alice, name=MODEL, version=version, stage="Staging"
        )
    client = _client(story.alice)
    first = client.get(reverse("ui:my-requests"))
    assert len(first.context["page"].object_list) == 25
    assert 'rel="next"' in first.content.decode()
    second = client.get(reverse("ui:my-requests"), {"page": 2})
    assert len(second.context["page"].object_list) == 5


def test_my_requests_reads_a_fixed_number_of_queries(story):
    def add_requests(count: int) -> None:
        for _ in range(count):
            version = services.model_version_create(
                actor=story.owner, name=MODEL, source=f"s3://m/{next(numbers)}"
            ).version
            services.transition_request_create(
                actor=story.alice, name=MODEL, version=version, stage="Staging"
            )
            alias = f"a{next(numbers)}"
            services.alias_policy_set(actor=story.owner, name=MODEL, alias=alias, protected=True)
            services.alias_request_create(
                actor=story.alice, name=MODEL, alias=alias, version=version
            )

    _same_count(_client(story.alice), reverse("ui:my-requests"), add_requests)


def test_waiting_for_me_says_where_each_request_stands(story):
    services.stage_policy_set(
        actor=story.owner,
        name=MODEL,
        stage="Production",
        required_approvals=2,
        required_version_tags={"validation_status": "passed"},
    )
    services.transition_request_create(actor=story.alice, name=MODEL, version=2, stage="Production")
    services.transition_request_approve(actor=story.bob, name=MODEL, version=2, stage="Production")
    response = _client(story.owner).get(reverse("ui:waiting"))
    [row] = response.context["rows"]
    assert (row.readiness.counted_number, row.readiness.required) == (1, 2)
    html = " ".join(response.content.decode().split())
    assert "Approval 1 of 2 · needs <code>validation_status=passed</code>" in html
