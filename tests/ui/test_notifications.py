"""Email notifications, received by a real SMTP server process (aiosmtpd): a request waits for
those who may decide it, the requester hears of the decision (not of a partial approval),
nobody is told of their own act, a user who turned them off gets none, and without a mail
server nothing is sent (docs/ui.md, "Notifications")."""

from __future__ import annotations

import email.header

import pytest
from django.test import Client
from django.urls import reverse

from registry import services
from tests.processes import SmtpServer
from tests.ui.conftest import MODEL

pytestmark = pytest.mark.django_db

BASE_URL = "https://registry.example.com"
VERSION_LINK = f"{BASE_URL}/models/{MODEL}/versions/2/"


@pytest.fixture
def smtp(tmp_path):
    server = SmtpServer(tmp_path)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def mail_to(smtp, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = smtp.port
    settings.NOTIFICATIONS = {"ENABLED": True, "BASE_URL": BASE_URL}
    return smtp


def _received(smtp: SmtpServer, since: int = 0) -> list[tuple[str, str, str]]:
    """(to, subject, body) of each message received, after the first ``since``."""
    found = []
    for message in smtp.messages()[since:]:
        header = str(email.header.make_header(email.header.decode_header(message["Subject"])))
        subject = " ".join(header.split())  # unfolded
        body = message.get_payload(decode=True).decode()
        found.append((message["To"], subject, body))
    return sorted(found)


def test_requests_and_decisions_are_emailed_to_who_they_concern(
    story, mail_to, django_capture_on_commit_callbacks
):
    services.stage_policy_set(
        actor=story.owner, name=MODEL, stage="Production", required_approvals=2
    )
    with django_capture_on_commit_callbacks(execute=True):
        services.transition_request_create(
            actor=story.alice, name=MODEL, version=2, stage="Production", comment="ready"
        )
    waiting = _received(mail_to)
    # Bob (CAN_MANAGE_PRODUCTION_VERSIONS) and Olivia (CAN_MANAGE) may decide; not Carol
    # (CAN_READ), not Alice who asked.
    assert [to for to, _, _ in waiting] == ["bob@example.com", "olivia@example.com"]
    to, subject, body = waiting[0]
    assert subject == f"[Model registry] {MODEL} version 2 → Production waits for your decision"
    assert "alice asks to move version 2 of fraud-detector from None to Production." in body
    assert "2 approval(s) needed" in body
    assert f"Decide it here: {VERSION_LINK}" in body
    assert f"{BASE_URL}/my-requests/" in body  # where to turn them off

    # The first of two approvals tells nobody; the second (the move) tells Alice.
    with django_capture_on_commit_callbacks(execute=True):
        services.transition_request_approve(
            actor=story.bob, name=MODEL, version=2, stage="Production"
        )
    assert len(mail_to.messages()) == 2
    with django_capture_on_commit_callbacks(execute=True):
        services.transition_request_approve(
            actor=story.owner, name=MODEL, version=2, stage="Production", comment="ship it"
        )
    [(to, subject, body)] = _received(mail_to, since=2)
    assert to == "alice@example.com"
    assert subject == (
        f"[Model registry] Your request for {MODEL} version 2 → Production was approved"
    )
    assert "olivia approved: version 2 is now in Production." in body
    assert "Their comment: ship it" in body
    assert f"The version: {VERSION_LINK}" in body

    # Bob turns them off in the UI; the next request reaches Olivia alone, its rejection Alice.
    client = Client()
    client.force_login(story.bob)
    client.post(reverse("ui:email-notifications"), {})
    story.bob.refresh_from_db()
    assert story.bob.email_notifications is False
    with django_capture_on_commit_callbacks(execute=True):
        request = services.transition_request_create(
            actor=story.alice, name=MODEL, version=2, stage="Archived"
        )
    assert [to for to, _, _ in _received(mail_to, since=3)] == ["olivia@example.com"]
    with django_capture_on_commit_callbacks(execute=True):
        services.transition_request_reject(
            actor=story.owner, name=MODEL, version=2, stage="Archived", request_id=request.code
        )
    [(to, subject, _)] = _received(mail_to, since=4)
    assert (to, subject) == (
        "alice@example.com",
        f"[Model registry] Your request for {MODEL} version 2 → Archived was rejected",
    )


def test_alias_requests_are_emailed_too(story, mail_to, django_capture_on_commit_callbacks):
    services.alias_policy_set(actor=story.owner, name=MODEL, alias="champion", protected=True)
    with django_capture_on_commit_callbacks(execute=True):
        services.alias_request_create(actor=story.alice, name=MODEL, alias="champion", version=2)
    waiting = _received(mail_to)
    assert [to for to, _, _ in waiting] == ["bob@example.com", "olivia@example.com"]
    assert f"{BASE_URL}/models/{MODEL}/#aliases" in waiting[0][2]
    with django_capture_on_commit_callbacks(execute=True):
        services.alias_request_approve(actor=story.bob, name=MODEL, alias="champion", version=2)
    [(to, subject, body)] = _received(mail_to, since=2)
    assert to == "alice@example.com"
    assert subject == (
        f"[Model registry] Your request that {MODEL} @champion name version 2 was approved"
    )
    assert "bob approved it: @champion now names version 2." in body
    # A rejection reaches the requester too, with the reason; the rejecter hears nothing.
    with django_capture_on_commit_callbacks(execute=True):
        services.alias_request_create(actor=story.alice, name=MODEL, alias="champion", version=1)
    asked = len(mail_to.messages())
    with django_capture_on_commit_callbacks(execute=True):
        services.alias_request_reject(
            actor=story.bob, name=MODEL, alias="champion", version=1, comment="not validated"
        )
    [(to, subject, body)] = _received(mail_to, since=asked)
    assert to == "alice@example.com"
    assert subject == (
        f"[Model registry] Your request that {MODEL} @champion name version 1 was rejected"
    )
    assert "bob rejected it." in body
    assert "Their comment: not validated" in body


def test_nothing_is_sent_without_a_mail_server(story, smtp, django_capture_on_commit_callbacks):
    # The test settings, like a deployment without EMAIL_HOST: notifications are off.
    with django_capture_on_commit_callbacks(execute=True):
        services.transition_request_create(
            actor=story.alice, name=MODEL, version=2, stage="Staging"
        )
    assert smtp.messages() == []
