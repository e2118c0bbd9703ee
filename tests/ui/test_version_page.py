"""The version page (docs/ui.md, "Version page"): the summary before the timeline and the
forms behind buttons, the rules said to those who may not act, the MLmodel preview captured by
the real copy (never read from the store by the page), the run link, and the comparison of two
versions with its readable refusals."""

from __future__ import annotations

import re
from html import unescape

import pytest
from django.test import Client
from django.urls import reverse

from registry import services
from registry.artifacts.mlmodel import MLMODEL_MAX_BYTES
from registry.models import ModelVersion, ModelVersionManifest
from tests.ui.conftest import MODEL
from tests.ui.model_files import copied_version, mlflow_model

pytestmark = pytest.mark.django_db


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _page(user, number: int) -> str:
    response = _client(user).get(
        reverse("ui:version-detail", kwargs={"name": MODEL, "version": number})
    )
    assert response.status_code == 200
    return unescape(response.content.decode())


def _compare(user, query: str):
    return _client(user).get(reverse("ui:version-compare", kwargs={"name": MODEL}) + query)


def _text(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html.replace("<wbr>", "")).split())


def test_summary_comes_first_with_the_tags_the_policy_requires(story):
    services.stage_policy_set(
        actor=story.owner,
        name=MODEL,
        stage="Production",
        required_version_tags={"validation_status": "passed", "bias_review": "done"},
    )
    services.model_version_tag_set(
        actor=story.owner, name=MODEL, version=2, key="validation_status", value="pending"
    )
    services.model_version_update(
        actor=story.owner, name=MODEL, version=2, description="Retrained on **November**."
    )
    services.registered_model_alias_set(
        actor=story.owner, name=MODEL, alias="challenger", version=2
    )

    html = _page(story.carol, 2)

    # The summary, then the actions, then the requests and the timeline.
    order = [html.index(marker) for marker in ('id="h-summary"', 'id="h-act"', 'id="h-timeline"')]
    assert order == sorted(order)
    summary = _text(html[order[0] : order[1]])
    assert "Production needs" in summary
    assert "validation_status=passed ✗ now pending" in summary
    assert "bias_review=done ✗ no such tag" in summary
    assert "@challenger" in summary
    assert "alias history" in summary
    assert "Retrained on November" in summary
    assert "Compare with version 1 (the one before)" in summary


def test_forms_are_behind_buttons_and_readers_are_told_the_rules(story):
    carol = _page(story.carol, 2)
    # Carol (CAN_READ) may request a move, behind a button; no edit, no delete, but the rule.
    assert re.search(r'<details class="edit panel" data-testid="transition-panel">', carol)
    assert 'data-testid="version-edit"' not in carol
    assert 'data-testid="delete-version-form"' not in carol
    rules = _text(carol[carol.index('data-testid="version-rules"') :])
    assert "Editing this version's description and tags needs “Can edit” on the model." in rules
    assert "Deleting this version needs “Can manage” on the model." in rules
    assert "Moving directly needs “Can manage staging versions”" in rules

    owner = _page(story.owner, 2)
    assert 'data-testid="delete-version-form"' in owner
    assert 'data-testid="delete-rule"' not in owner
    assert 'data-testid="move-rule"' not in owner  # the owner may move it directly
    # Every form of the actions card sits in a closed panel.
    actions = owner[owner.index('id="h-act"') : owner.index('id="h-requests"')]
    assert actions.count("<form") == 4
    assert "<form" not in re.sub(r"<details.*?</details>", "", actions, flags=re.DOTALL)
    assert " open>" not in actions


def test_failed_and_pending_versions_are_marked(story):
    ModelVersion.objects.filter(registered_model=story.model, version=2).update(
        status="FAILED_REGISTRATION", status_message="Copy failed: the source is gone."
    )
    html = _page(story.carol, 2)
    marker = _text(html[html.index('data-testid="status-marker"') :][:400])
    assert "Registration failed. Copy failed: the source is gone." in marker
    assert "Retrying the registration needs “Can edit” on the model." in _text(html)
    assert 'data-testid="retry-panel"' in _page(story.alice, 2)

    ModelVersion.objects.filter(registered_model=story.model, version=2).update(
        status="PENDING_REGISTRATION", status_message="Copy attempt 1 of 4 failed: slow down."
    )
    marker = _text(_page(story.carol, 2).split('data-testid="status-marker"')[1][:400])
    assert "Pending registration" in marker
    assert "Copy attempt 1 of 4 failed" in marker


def test_mlmodel_preview_is_captured_by_the_copy(story, store, tmp_path):
    source = mlflow_model(
        tmp_path / "sources" / "fraud-3",
        columns=[("amount", "double", True), ("country", "string", False)],
        params=[("threshold", "double", 0.5)],
    )
    version = copied_version(story.owner, MODEL, source)
    manifest = ModelVersionManifest.objects.get(model_version=version)
    assert manifest.mlmodel_captured
    assert not manifest.mlmodel_truncated
    assert manifest.mlmodel_text == (source / "MLmodel").read_text()
    # The page does not read the store: with the copy gone, the preview is still there.
    for path in sorted(store.rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()

    html = _page(story.carol, version.version)
    preview = html[html.index('data-testid="mlmodel"') : html.index('id="h-files"')]
    text = _text(preview)
    assert "python_function" in text
    assert "sklearn" in text
    assert "MLflow version 3.17.2" in text
    assert "amount double yes" in text
    assert "country string no" in text
    assert "tensor float64 [-1]" in text
    assert "threshold double 0.5" in text
    assert '<details class="raw" data-testid="mlmodel-raw">' in preview  # collapsed
    assert "signature:" in preview
    details = _text(html[html.index('id="h-meta"') : html.index('data-testid="mlmodel"')])
    assert version.artifact_digest in details
    assert "Signed no: the registry had no signing key" in details


def test_a_long_mlmodel_is_kept_cut_and_the_page_says_so(story, store, tmp_path):
    source = mlflow_model(
        tmp_path / "sources" / "wide",
        columns=[(f"feature_{n:05d}_" + "x" * 40, "double", True) for n in range(1500)],
    )
    assert (source / "MLmodel").stat().st_size > MLMODEL_MAX_BYTES
    version = copied_version(story.owner, MODEL, source)
    manifest = ModelVersionManifest.objects.get(model_version=version)
    assert manifest.mlmodel_truncated
    assert len(manifest.mlmodel_text.encode()) <= MLMODEL_MAX_BYTES

    html = _page(story.carol, version.version)
    assert "longer than the 64 KiB" in _text(html)
    assert 'data-testid="signature-inputs"' not in html


def test_an_mlmodel_that_is_not_yaml_is_shown_raw(story, store, tmp_path):
    source = tmp_path / "sources" / "broken"
    source.mkdir()
    (source / "MLmodel").write_text("flavors: [unclosed\n")
    version = copied_version(story.owner, MODEL, source)
    html = _page(story.carol, version.version)
    assert "The MLmodel file could not be read:" in _text(html)
    assert "flavors: [unclosed" in html


def test_versions_without_a_preview_say_why(story, store, settings, tmp_path):
    # Reference mode: the registry keeps no copy, and so never read the file.
    settings.ARTIFACTS = {**settings.ARTIFACTS, "MODE": "reference"}
    reference = services.model_version_create(
        actor=story.owner, name=MODEL, source="s3://models/fraud/ref"
    )
    assert reference.is_reference
    assert "keeps no copy of this version's files" in _text(_page(story.carol, reference.version))
    settings.ARTIFACTS = {**settings.ARTIFACTS, "MODE": "copy"}
    # A copy made before the registry kept the MLmodel file (the migration leaves it so).
    source = mlflow_model(tmp_path / "sources" / "old", columns=[("amount", "double", True)])
    old = copied_version(story.owner, MODEL, source)
    ModelVersionManifest.objects.filter(model_version=old).update(
        mlmodel_captured=False, mlmodel_text=""
    )
    assert "copied before the registry kept a preview" in _text(_page(story.carol, old.version))
    # A copy without an MLmodel file.
    bare = tmp_path / "sources" / "bare"
    bare.mkdir()
    (bare / "weights.bin").write_bytes(b"0" * 10)
    plain = copied_version(story.owner, MODEL, bare)
    assert "have no MLmodel file at their top level" in _text(_page(story.carol, plain.version))


def test_run_link_to_the_tracking_servers_ui_when_configured(story, settings):
    html = _page(story.carol, 2)
    assert 'data-testid="run-link"' not in html
    assert "run2" in _text(html)

    settings.REGISTRY = {**settings.REGISTRY, "TRACKING_UI_URL": "https://mlflow.example.com"}
    html = _page(story.carol, 2)
    assert 'href="https://mlflow.example.com/#/runs/run2"' in html


def test_compare_two_versions_marks_the_differences(story, store, tmp_path):
    services.stage_policy_set(actor=story.owner, name=MODEL, stage="Production")
    first = copied_version(
        story.owner,
        MODEL,
        mlflow_model(tmp_path / "sources" / "a", columns=[("amount", "double", True)]),
        run_id="runA",
        tags=[{"key": "team", "value": "risk"}, {"key": "auc", "value": "0.91"}],
    )
    second = copied_version(
        story.owner,
        MODEL,
        mlflow_model(
            tmp_path / "sources" / "b",
            columns=[("amount", "float", True), ("country", "string", False)],
        ),
        run_id="runB",
        tags=[{"key": "team", "value": "risk"}, {"key": "auc", "value": "0.94"}],
    )
    services.registered_model_alias_set(
        actor=story.owner, name=MODEL, alias="champion", version=second.version
    )

    response = _compare(story.carol, f"?a={first.version}&b={second.version}")

    assert response.status_code == 200
    html = response.content.decode().replace("<wbr>", "")

    def row(testid: str, label: str) -> str:
        section = html[html.index(f'data-testid="{testid}"') :]
        found = re.search(
            r'<tr class="(\w+)"[^>]*>\s*<th scope="row">(?:<code[^>]*>)?'
            + re.escape(label)
            + r"(?=[<\s])",
            section,
        )
        assert found, label
        return found.group(1)

    assert row("compare-metadata", "Run") == "differs"
    assert row("compare-metadata", "Created by") == "same"
    assert row("compare-metadata", "Aliases") == "differs"
    assert row("compare-metadata", "Stage") == "same"
    assert row("compare-tags", "auc") == "differs"
    assert row("compare-tags", "team") == "same"
    assert row("compare-signature-inputs", "amount") == "differs"
    assert row("compare-signature-inputs", "country") == "differs"
    assert row("compare-signature-outputs", "(unnamed 1)") == "same"
    digests = _text(html[html.index('data-testid="compare-digest"') :][:600])
    assert first.artifact_digest in digests
    assert second.artifact_digest in digests
    # Reachable from both pages.
    assert f"?a={first.version}&b={second.version}" in _page(story.carol, second.version)
    model_page = _client(story.carol).get(reverse("ui:model-detail", kwargs={"name": MODEL}))
    assert 'data-testid="compare-form"' in model_page.content.decode()


@pytest.mark.parametrize(
    ("query", "status", "message"),
    [
        ("", 400, "Missing value for required parameter 'a'."),
        ("?a=1", 400, "Missing value for required parameter 'b'."),
        ("?a=one&b=2", 400, "Parameter 'a' must be a version number, got 'one'."),
        ("?a=1&b=-2", 400, "Parameter 'b' must be a version number, got '-2'."),
        ("?a=1&b=99999999999", 400, "Parameter 'b' must be a version number"),
        ("?a=1&b=7", 404, f"Model Version (name={MODEL}, version=7) not found"),
    ],
)
def test_compare_refuses_bad_input_readably(story, query, status, message):
    response = _compare(story.carol, query)
    assert response.status_code == status
    assert message in unescape(response.content.decode())


def test_compare_needs_read_access_like_the_version_page(story, settings, django_user_model):
    settings.REGISTRY = {**settings.REGISTRY, "DEFAULT_PERMISSION_LEVEL": "NONE"}
    outsider = django_user_model.objects.create_user(username="dave", password="x" * 12)
    refused = _compare(outsider, "?a=1&b=2")
    version_page = _client(outsider).get(
        reverse("ui:version-detail", kwargs={"name": MODEL, "version": 2})
    )
    assert refused.status_code == version_page.status_code
    assert refused.status_code in (403, 404)
    assert _compare(story.carol, "?a=1&b=2").status_code == 200
    unknown = _client(story.carol).get(
        reverse("ui:version-compare", kwargs={"name": "no-such-model"}) + "?a=1&b=2"
    )
    assert unknown.status_code == 404
