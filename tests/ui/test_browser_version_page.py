"""The version page in Chromium (docs/ui.md, "Version page"): the summary with the tags the
Production policy requires comes first, the forms open from buttons, the MLmodel preview (from
the registry's real copy) shows the flavors and the signature with the raw file collapsed, the
comparison with the Production version marks what differs, a reader is told the rules instead
of forms; and the run link opens the run on a real ``mlflow server``."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from registry import services
from tests.conftest import PASSWORD
from tests.processes import MlflowServer
from tests.registry.conftest import private_pem
from tests.ui.browser import SCREENSHOT_DIR, needs_chromium, screenshot_each_width, sign_in
from tests.ui.conftest import MODEL
from tests.ui.model_files import copied_version, mlflow_model, upload

pytest.importorskip("playwright.sync_api")

pytestmark = [pytest.mark.django_db(transaction=True), needs_chromium]


def _ready_for_review(story, tmp_path, s3_sources, settings) -> int:
    """Version 3, copied (and signed) from an MLflow model folder on S3, asked for Production
    under a policy of two approvals, no self-approval and a required validation tag it does
    not have yet."""
    settings.PROVENANCE = {
        **settings.PROVENANCE,
        "SIGNING_KEY": private_pem(ec.generate_private_key(ec.SECP256R1())),
    }
    services.stage_policy_set(
        actor=story.owner,
        name=MODEL,
        stage="Production",
        required_approvals=2,
        allow_self_approval=False,
        allow_direct_transition=False,
        required_version_tags={"validation_status": "passed"},
    )
    folder = mlflow_model(
        tmp_path / "fraud-3",
        columns=[
            ("amount", "double", True),
            ("merchant_category", "string", True),
            ("country", "string", False),
        ],
        params=[("threshold", "double", 0.5)],
    )
    version = copied_version(
        story.owner,
        MODEL,
        upload(s3_sources, folder, "fraud/3"),
        run_id="8a9c0d1e2f3a4b5c6d7e8f9a0b1c2d3e",
        description="Gradient-boosted trees retrained on **November** payments.",
        tags=[
            {"key": "validation_status", "value": "pending"},
            {"key": "auc", "value": "0.947"},
        ],
    ).version
    services.registered_model_alias_set(
        actor=story.owner, name=MODEL, alias="challenger", version=version
    )
    services.transition_request_create(
        actor=story.alice,
        name=MODEL,
        version=version,
        stage="Production",
        comment="Beats version 1 on the November holdout.",
    )
    services.comment_create(
        actor=story.bob, name=MODEL, version=version, comment="Waiting for the bias review."
    )
    return version


def test_the_version_page_summary_first_and_forms_behind_buttons(
    browser, live_server, story, store, s3_sources, settings, tmp_path
):
    version = _ready_for_review(story, tmp_path, s3_sources, settings)
    path = f"/models/{MODEL}/versions/{version}/"
    page = sign_in(browser, live_server.url, "olivia", PASSWORD, at=path)

    # The summary, then the actions, the request and the timeline; at 390 px too.
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        tops = [
            page.locator(selector).bounding_box()["y"]
            for selector in ("#h-summary", "#h-act", "#h-requests", "#h-timeline")
        ]
        assert tops == sorted(tops), (width, tops)
    page.set_viewport_size({"width": 1280, "height": 900})
    summary = page.get_by_test_id("version-summary")
    need = summary.get_by_test_id("gate-need")
    assert " ".join(need.inner_text().split()) == "validation_status=passed ✗ now pending"
    assert "@challenger" in summary.inner_text()
    assert summary.get_by_test_id("version-description").locator("strong").inner_text() == (
        "November"
    )

    # The forms open from their buttons (the owner may also move it directly, but to Production).
    form = page.get_by_test_id("transition-form")
    assert not form.is_visible()
    page.get_by_text("Move or request a move", exact=True).click()
    assert form.is_visible()
    assert not page.get_by_test_id("delete-version-form").is_visible()
    page.get_by_text("Delete this version", exact=True).click()
    assert page.get_by_test_id("delete-version-form").is_visible()

    # The copy is signed, and the page says with which key.
    assert page.get_by_test_id("signed").inner_text().startswith("yes, by the registry (key ")
    assert page.get_by_test_id("model-signature").get_by_role("link").inner_text() == (
        "registry-model.sig"
    )

    # The MLmodel preview: flavors, the signature as tables, the raw file collapsed.
    preview = page.get_by_test_id("mlmodel")
    assert preview.get_by_test_id("flavors").inner_text().split() == ["python_function", "sklearn"]
    inputs = preview.get_by_test_id("signature-inputs")
    assert "merchant_category" in inputs.inner_text()
    assert "threshold" in preview.get_by_test_id("signature-parameters").inner_text()
    raw = preview.get_by_test_id("mlmodel-raw").locator("pre")
    assert not raw.is_visible()
    preview.get_by_text("MLmodel file", exact=True).click()
    assert "loader_module: mlflow.sklearn" in raw.inner_text()

    page.reload()
    screenshot_each_width(page, "version-page")
    # The picture of docs/version-page.png: the top of the page at 1280 px.
    page.screenshot(
        path=str(SCREENSHOT_DIR / "version-page-docs.png"),
        clip={"x": 0, "y": 0, "width": 1280, "height": 1250},
        full_page=True,
    )

    # Compared with the version in Production, from the summary.
    page.get_by_test_id("compare-links").get_by_role(
        "link", name="version 1 (in Production)"
    ).click()
    page.wait_for_url(f"**/models/{MODEL}/compare?a=1&b={version}")
    metadata = page.get_by_test_id("compare-metadata")
    assert metadata.locator('tr[data-differs="yes"]').filter(has_text="Run").count() == 1
    assert metadata.locator('tr[data-differs="no"]').filter(has_text="Created by").count() == 1
    assert page.get_by_test_id("compare-no-preview").inner_text().startswith("Version 1:")
    screenshot_each_width(page, "version-compare")


def test_a_reader_sees_the_rules_not_the_forms(
    browser, live_server, story, store, s3_sources, settings, tmp_path
):
    version = _ready_for_review(story, tmp_path, s3_sources, settings)
    page = sign_in(
        browser, live_server.url, "carol", PASSWORD, at=f"/models/{MODEL}/versions/{version}/"
    )
    rules = page.get_by_test_id("version-rules")
    assert "needs “Can edit” on the model" in rules.get_by_test_id("edit-rule").inner_text()
    assert "needs “Can manage” on the model" in rules.get_by_test_id("delete-rule").inner_text()
    assert page.get_by_test_id("version-edit").count() == 0
    assert page.get_by_test_id("delete-version-form").count() == 0
    screenshot_each_width(page, "version-page-reader")

    # Two versions picked on the model page.
    page.goto(f"{live_server.url}/models/{MODEL}/")
    form = page.get_by_test_id("compare-form")
    form.get_by_label("Compare version").select_option("2")
    form.get_by_label("with version").select_option(str(version))
    form.get_by_role("button", name="Compare").click()
    page.wait_for_url(f"**/models/{MODEL}/compare?a=2&b={version}")
    tags = page.get_by_test_id("compare-tags")
    assert tags.locator('tr[data-differs="yes"]').filter(has_text="validation_status").count() == 1


def test_the_run_link_opens_the_run_on_the_tracking_server(
    browser, live_server, story, settings, tmp_path, monkeypatch
):
    from mlflow import MlflowClient

    monkeypatch.setenv("MLFLOW_DISABLE_TELEMETRY", "true")
    server = MlflowServer(tmp_path / "mlflow")
    server.start()
    try:
        client = MlflowClient(tracking_uri=server.url)
        experiment_id = client.create_experiment("fraud-training")
        run = client.create_run(experiment_id, run_name="november-retrain")
        client.set_terminated(run.info.run_id)
        settings.REGISTRY = {**settings.REGISTRY, "TRACKING_UI_URL": server.url}
        version = services.model_version_create(
            actor=story.owner, name=MODEL, source="s3://models/fraud/3", run_id=run.info.run_id
        ).version

        page = sign_in(
            browser, live_server.url, "carol", PASSWORD, at=f"/models/{MODEL}/versions/{version}/"
        )
        link = page.get_by_test_id("run-link")
        assert link.get_attribute("href") == f"{server.url}/#/runs/{run.info.run_id}"
        link.click()
        # MLflow's UI resolves the run to its page in its experiment, and shows it.
        page.wait_for_url(
            f"{server.url}/#/experiments/{experiment_id}/runs/{run.info.run_id}*", timeout=90_000
        )
        page.get_by_text("november-retrain").first.wait_for(timeout=90_000)
    finally:
        server.stop()
