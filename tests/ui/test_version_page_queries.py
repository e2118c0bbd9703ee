"""The version page and the comparison of two versions cost a fixed number of queries however
many tags, versions, aliases and timeline entries there are (pattern: test_query_counts.py)."""

from __future__ import annotations

import itertools

import pytest
from django.urls import reverse

from registry import services
from tests.ui.conftest import MODEL
from tests.ui.model_files import copied_version, mlflow_model
from tests.ui.test_query_counts import _client, _same_count

pytestmark = pytest.mark.django_db

numbers = itertools.count(100)


def test_version_page_with_preview_policy_tags_and_timeline(story, store, tmp_path):
    services.stage_policy_set(
        actor=story.owner,
        name=MODEL,
        stage="Production",
        required_version_tags={"validation_status": "passed"},
    )
    version = copied_version(
        story.owner,
        MODEL,
        mlflow_model(tmp_path / "sources" / "m", columns=[("amount", "double", True)]),
    ).version
    url = reverse("ui:version-detail", kwargs={"name": MODEL, "version": version})

    def add_tags_versions_and_entries(count: int) -> None:
        for _ in range(count):
            n = next(numbers)
            services.model_version_tag_set(
                actor=story.owner, name=MODEL, version=version, key=f"metric_{n}", value="0.9"
            )
            services.model_version_create(actor=story.owner, name=MODEL, source=f"s3://m/{n}")
            services.comment_create(actor=story.alice, name=MODEL, version=version, comment="ok")
            services.registered_model_alias_set(
                actor=story.owner, name=MODEL, alias=f"a{n}", version=version
            )
            services.model_version_stage_transition(
                actor=story.owner,
                name=MODEL,
                version=version,
                stage="Staging" if n % 2 else "None",
            )

    _same_count(_client(story.owner), url, add_tags_versions_and_entries)
    _same_count(_client(story.carol), url, add_tags_versions_and_entries)


def test_compare_page(story, store, tmp_path):
    a = copied_version(
        story.owner,
        MODEL,
        mlflow_model(tmp_path / "sources" / "a", columns=[("amount", "double", True)]),
    ).version
    b = copied_version(
        story.owner,
        MODEL,
        mlflow_model(tmp_path / "sources" / "b", columns=[("amount", "float", True)]),
    ).version
    url = reverse("ui:version-compare", kwargs={"name": MODEL}) + f"?a={a}&b={b}"

    def add_tags_aliases_and_versions(count: int) -> None:
        for _ in range(count):
            n = next(numbers)
            for number in (a, b):
                services.model_version_tag_set(
                    actor=story.owner, name=MODEL, version=number, key=f"k{n}", value=str(number)
                )
            services.registered_model_alias_set(
                actor=story.owner, name=MODEL, alias=f"a{n}", version=a if n % 2 else b
            )
            services.model_version_create(actor=story.owner, name=MODEL, source=f"s3://m/{n}")

    _same_count(_client(story.carol), url, add_tags_aliases_and_versions)
