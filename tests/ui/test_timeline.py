"""A version's one timeline (docs/ui.md, "Timeline"): creation and readiness, the trail with
each approval's place, comments in place with their actions, alias moves to and from the
version, links in comments; and its fixed cost in queries."""

from __future__ import annotations

import itertools
import re

import pytest
from django.test import Client
from django.urls import reverse

from registry import services
from registry.models import Comment
from tests.ui.conftest import MODEL
from tests.ui.test_query_counts import _client, _queries, _same_count
from ui.markdown import render_comment

pytestmark = pytest.mark.django_db

_numbers = itertools.count(1)

URL = reverse("ui:version-detail", kwargs={"name": MODEL, "version": 2})


def _timeline(client: Client) -> str:
    html = client.get(URL).content.decode()
    start = html.index('data-testid="timeline"')
    return html[start : html.index("</ol>", start)]


def _plain(fragment: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", fragment).split())


def test_the_timeline_tells_the_versions_story_in_order(story):
    services.stage_policy_set(
        actor=story.owner, name=MODEL, stage="Production", required_approvals=2
    )
    services.registered_model_alias_set(actor=story.owner, name=MODEL, alias="champion", version=1)
    services.registered_model_alias_set(actor=story.owner, name=MODEL, alias="champion", version=2)
    services.registered_model_alias_set(actor=story.owner, name=MODEL, alias="candidate", version=2)
    services.registered_model_alias_set(actor=story.owner, name=MODEL, alias="candidate", version=1)
    services.comment_create(
        actor=story.alice, name=MODEL, version=2, comment="Drift report: https://example.com/d/1."
    )
    gone = services.comment_create(actor=story.carol, name=MODEL, version=2, comment="typo here")
    services.comment_delete(actor=story.carol, id=str(gone.code))
    services.transition_request_create(
        actor=story.alice, name=MODEL, version=2, stage="Production", comment="ship it"
    )
    services.transition_request_approve(actor=story.bob, name=MODEL, version=2, stage="Production")
    services.transition_request_approve(
        actor=story.owner, name=MODEL, version=2, stage="Production"
    )

    html = _timeline(_client(story.carol))
    assert '<a href="https://example.com/d/1" rel="noopener noreferrer nofollow">' in html
    text = _plain(html)
    expected = [
        "Created olivia",
        "Ready",
        "Alias @champion · moved here from version 1",
        "Alias @candidate · set to this version",
        "Alias @candidate · moved to version 1",
        "alice commented",
        "Drift report: https://example.com/d/1 .",
        "Comment (deleted since; the trail keeps its first text)",
        "typo here",
        "Requested transition · None → Production",
        "Approval 1 of 2 (the request stays open) · None → Production bob",
        "Approval 2 of 2 · Approved request · None → Production olivia",
    ]
    positions = [text.find(part) for part in expected]
    assert -1 not in positions, [part for part in expected if part not in text]
    assert positions == sorted(positions), text
    # The comment is shown once, where it happened, not again in a list of its own.
    assert text.count("Drift report") == 1


def test_a_comment_is_in_place_with_what_the_viewer_may_do(story):
    services.comment_create(actor=story.alice, name=MODEL, version=2, comment="first")
    mine = _timeline(_client(story.alice))
    assert "Edit comment" in mine
    assert ">Delete</button>" in mine
    # A reader who did not write it has neither.
    theirs = _timeline(_client(story.carol))
    assert "first" in theirs
    assert "Edit comment" not in theirs
    assert ">Delete</button>" not in theirs
    # The add box follows the timeline, on the same card.
    html = _client(story.carol).get(URL).content.decode()
    assert html.index('data-testid="timeline"') < html.index('data-testid="comment-form"')
    assert html.count('data-testid="comment"') == 1


def test_an_edited_comment_shows_its_text_now(story):
    comment = services.comment_create(actor=story.alice, name=MODEL, version=2, comment="frist")
    services.comment_update(actor=story.alice, id=str(comment.code), comment="first")
    text = _plain(_timeline(_client(story.carol)))
    assert "first (edited)" not in text  # the mark sits beside the author, not the text
    assert "(edited)" in text
    assert "first" in text
    assert "frist" not in text
    assert Comment.objects.count() == 1


def test_links_in_comments_are_clickable_and_safe():
    html = render_comment(
        "See https://example.com/a?b=1, and [the runbook](https://example.com/r) "
        "or <https://example.com/x>. Not javascript:alert(1) nor "
        "[this](javascript:alert(1)) nor <script>alert(1)</script>"
    )
    assert '<a href="https://example.com/a?b=1" rel="noopener noreferrer nofollow">' in html
    assert "https://example.com/a?b=1</a>, and" in html
    assert '<a href="https://example.com/r" rel="noopener noreferrer nofollow">the runbook</a>' in (
        html
    )
    assert '<a href="https://example.com/x"' in html
    assert "javascript:" not in html.replace("javascript:alert(1) nor", "")
    assert "<script" not in html


def test_the_timeline_costs_the_same_queries_however_long(story):
    """Comments, alias moves and approvals each add rows, not queries."""
    services.stage_policy_set(actor=story.owner, name=MODEL, stage="Staging", required_approvals=1)
    client = _client(story.carol)
    stages = iter(["Staging", "None"] * 10)

    def add_rows(count: int) -> None:
        for number in range(count):
            services.comment_create(
                actor=story.alice, name=MODEL, version=2, comment=f"see https://e.com/{number}"
            )
            services.registered_model_alias_set(
                actor=story.owner, name=MODEL, alias=f"a{number}", version=2
            )
            services.registered_model_alias_set(
                actor=story.owner, name=MODEL, alias=f"a{number}", version=1
            )
            stage = next(stages)
            services.transition_request_create(
                actor=story.alice, name=MODEL, version=2, stage=stage
            )
            services.transition_request_approve(
                actor=story.bob if stage == "Staging" else story.owner,
                name=MODEL,
                version=2,
                stage=stage,
            )

    _same_count(client, URL, add_rows)
    assert _queries(client, URL) > 0


def test_alias_requests_of_the_version_are_on_its_timeline(story):
    services.alias_policy_set(
        actor=story.owner, name=MODEL, alias="champion", protected=True, required_approvals=2
    )
    services.alias_request_create(
        actor=story.alice, name=MODEL, alias="champion", version=2, comment="beats v1"
    )
    services.alias_request_approve(
        actor=story.bob, name=MODEL, alias="champion", version=2, comment="numbers ok"
    )
    services.alias_request_approve(actor=story.owner, name=MODEL, alias="champion", version=2)
    services.alias_request_create(actor=story.alice, name=MODEL, alias="shadow", version=2)
    services.alias_request_reject(
        actor=story.owner, name=MODEL, alias="shadow", version=2, comment="not needed"
    )

    text = _plain(_timeline(_client(story.carol)))
    expected = [
        "Requested alias @champion · to this version alice",
        "beats v1",
        "Approval 1 of 2 (the request stays open) · alias @champion bob",
        "numbers ok",
        "Approval 2 of 2 · Approved request · alias @champion olivia",
        "Alias @champion · set to this version (approved request)",
        "Requested alias @shadow",
        "Alias request rejected · @shadow olivia",
        "not needed",
    ]
    positions = [text.find(part) for part in expected]
    assert -1 not in positions, ([part for part in expected if part not in text], text)
    assert positions == sorted(positions), text


def test_alias_requests_cost_no_query_each(story):
    client = _client(story.carol)

    def add_requests(count: int) -> None:
        for _ in range(count):
            alias = f"c{next(_numbers)}"
            services.alias_request_create(actor=story.alice, name=MODEL, alias=alias, version=2)
            services.alias_request_approve(actor=story.bob, name=MODEL, alias=alias, version=2)

    _same_count(client, URL, add_requests)


def test_tag_changes_are_on_the_timeline_in_time_order(story):
    """docs/decisions/0022-version-tag-history.md: who set a tag, to what, from what; who
    removed one; among the rest, in the order they happened."""
    services.model_version_tag_set(
        actor=story.alice, name=MODEL, version=2, key="validation_status", value="pending"
    )
    services.comment_create(actor=story.carol, name=MODEL, version=2, comment="checking")
    services.model_version_tag_set(
        actor=story.owner, name=MODEL, version=2, key="validation_status", value="passed"
    )
    services.model_version_tag_set(actor=story.alice, name=MODEL, version=2, key="x", value="1")
    services.model_version_tag_delete(actor=story.owner, name=MODEL, version=2, key="x")
    services.model_version_tag_delete(actor=story.owner, name=MODEL, version=2, key="absent")
    services.model_version_tag_set(
        actor=story.alice, name=MODEL, version=1, key="other_version", value="v"
    )

    html = _timeline(_client(story.carol))
    text = _plain(html)
    expected = [
        "Created olivia",
        "alice set validation_status = pending",
        "carol commented",
        "olivia set validation_status = passed (was pending)",
        "alice set x = 1",
        "olivia removed tag x (was 1)",
    ]
    positions = [text.find(part) for part in expected]
    assert -1 not in positions, [part for part in expected if part not in text]
    assert positions == sorted(positions), text
    assert html.count('data-testid="tag-change"') == 4
    assert "absent" not in text
    assert "other_version" not in text


def test_tags_given_with_the_version_say_so(story):
    services.model_version_create(
        actor=story.owner,
        name=MODEL,
        source="s3://models/fraud/3",
        tags=[{"key": "team", "value": "risk"}],
    )
    url = reverse("ui:version-detail", kwargs={"name": MODEL, "version": 3})
    text = _plain(_client(story.carol).get(url).content.decode())
    assert "olivia set team = risk (given when the version was created)" in text


def test_tag_changes_cost_no_query_each(story):
    """The version page's queries stay flat as its tag history grows (reader and manager)."""

    def add_changes(count: int) -> None:
        for _ in range(count):
            n = next(_numbers)
            services.model_version_tag_set(
                actor=story.alice, name=MODEL, version=2, key="validation_status", value=str(n)
            )
            services.model_version_tag_set(
                actor=story.alice, name=MODEL, version=2, key=f"k{n}", value="v"
            )
            services.model_version_tag_delete(actor=story.owner, name=MODEL, version=2, key=f"k{n}")

    _same_count(_client(story.carol), URL, add_changes)
    _same_count(_client(story.owner), URL, add_changes)
