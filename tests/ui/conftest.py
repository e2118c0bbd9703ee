"""The story of the UI tests: a model with version 1 in Production and version 2 ready, and four
people: its owner, Alice (CAN_EDIT), Bob (CAN_MANAGE_PRODUCTION_VERSIONS), Carol (CAN_READ)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from accounts.models import PermissionLevel, RegisteredModelGrant
from registry import services
from registry.models import RegisteredModel
from tests.conftest import PASSWORD

# The local store of the copied versions, and sources on the test S3 server.
from tests.ui.model_files import s3_sources, store  # noqa: F401

MODEL = "fraud-detector"


@dataclass
class Story:
    model: RegisteredModel
    owner: Any
    alice: Any
    bob: Any
    carol: Any


def _user(django_user_model, username: str, **extra: Any) -> Any:
    return django_user_model.objects.create_user(
        username=username, email=f"{username}@example.com", password=PASSWORD, **extra
    )


@pytest.fixture
def story(django_user_model) -> Story:
    owner = _user(django_user_model, "olivia")
    alice = _user(django_user_model, "alice")
    bob = _user(django_user_model, "bob")
    carol = _user(django_user_model, "carol")
    model = services.registered_model_create(
        actor=owner,
        name=MODEL,
        description="Scores card payments.\n\n**Owner:** risk team. [Runbook](https://example.com/runbook)",
        tags=[{"key": "team", "value": "risk"}],
    )
    for user, level in [
        (alice, PermissionLevel.CAN_EDIT),
        (bob, PermissionLevel.CAN_MANAGE_PRODUCTION_VERSIONS),
        (carol, PermissionLevel.CAN_READ),
    ]:
        RegisteredModelGrant.objects.create(registered_model=model, user=user, level=level)
    for number in (1, 2):
        services.model_version_create(
            actor=owner, name=MODEL, source=f"s3://models/fraud/{number}", run_id=f"run{number}"
        )
    services.model_version_stage_transition(
        actor=owner, name=MODEL, version=1, stage="Production", comment="first release"
    )
    return Story(model=model, owner=owner, alice=alice, bob=bob, carol=carol)


@pytest.fixture
def browser(monkeypatch):
    """Debian's Chromium through Playwright (``tests/ui/browser.py``), for the browser tests."""
    from django.db import connections

    from tests.ui.browser import CHROMIUM, CHROMIUM_ARGS

    playwright_sync = pytest.importorskip("playwright.sync_api")
    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls are
    # still synchronous and safe.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with playwright_sync.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()
            # The test's queries ran under Playwright's greenlet with a connection of their
            # own: close it, or the test database cannot be dropped at the end.
            connections.close_all()
