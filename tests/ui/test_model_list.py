"""The models list beside MLflow's: an order to choose, each model's description and aliases,
and a failed copy marked where the model's versions are listed."""

from __future__ import annotations

import pytest
from django.test import Client
from django.urls import reverse

from registry import services
from registry.models import ModelVersion, ModelVersionStatus
from tests.ui.conftest import MODEL

pytestmark = pytest.mark.django_db


def _page(user, query: str = "") -> str:
    client = Client()
    client.force_login(user)
    response = client.get(reverse("ui:model-list") + query)
    assert response.status_code == 200
    return response.content.decode()


def _order(html: str, names: list[str]) -> list[str]:
    return sorted(names, key=html.index)


def test_the_list_sorts_by_name_either_way_and_by_last_update(story):
    for name in ("alpha", "zulu"):
        services.registered_model_create(actor=story.owner, name=name)
    # The fixture's model is changed last: first when the most recent update comes first.
    services.registered_model_update(actor=story.owner, name=MODEL, description="retrained")
    names = ["alpha", MODEL, "zulu"]
    assert _order(_page(story.owner), names) == ["alpha", MODEL, "zulu"]
    assert _order(_page(story.owner, "?sort=-name"), names) == ["zulu", MODEL, "alpha"]
    assert _order(_page(story.owner, "?sort=-updated"), names) == [MODEL, "zulu", "alpha"]
    assert _order(_page(story.owner, "?sort=updated"), names) == ["alpha", "zulu", MODEL]


def test_an_unknown_order_is_said_and_the_list_stays_by_name(story):
    html = _page(story.owner, "?sort=price")
    assert "Select a valid choice" in html
    assert MODEL in html


def test_the_list_shows_each_models_description_and_aliases(story):
    services.registered_model_alias_set(actor=story.owner, name=MODEL, alias="champion", version=1)
    html = _page(story.carol)
    assert 'data-testid="model-description"' in html
    # The first paragraph, as plain text: the Markdown of the rest stays on the model's page.
    assert "Scores card payments." in html
    assert "**Owner:**" not in html
    assert "Runbook" not in html
    assert "@champion → v1" in html
    assert reverse("ui:version-detail", args=[MODEL, 1]) in html


def test_a_failed_copy_is_marked_in_the_models_versions(story):
    ModelVersion.objects.filter(registered_model=story.model, version=2).update(
        status=ModelVersionStatus.FAILED_REGISTRATION, status_message="source not found"
    )
    client = Client()
    client.force_login(story.carol)
    html = client.get(reverse("ui:model-detail", args=[MODEL])).content.decode()
    assert 'data-testid="copy-failed"' in html


def test_a_description_in_the_list_is_plain_text_and_escaped(story):
    services.registered_model_update(
        actor=story.owner, name=MODEL, description="<img src=x onerror=alert(1)> **Fast** & lean"
    )
    html = _page(story.carol)
    assert "Fast &amp; lean" in html
    assert "<img" not in html
