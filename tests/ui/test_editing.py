"""Editing by permission level through Django's test client: each form is shown only to those
whose level allows it, calls the service the API calls (so a forged POST is refused with the
API's words and changes nothing), and answers with post/redirect/get."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import RegisteredModelGrant
from registry import services
from registry.models import ModelVersion, RegisteredModel, RegisteredModelAlias
from tests.ui.conftest import MODEL

pytestmark = pytest.mark.django_db

MODEL_URL = f"/models/{MODEL}/"
VERSION_URL = f"/models/{MODEL}/versions/2/"


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def _messages(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def test_the_controls_follow_the_level(story):
    reader = _client(story.carol).get(MODEL_URL).content.decode()
    editor = _client(story.alice).get(MODEL_URL).content.decode()
    manager = _client(story.owner).get(MODEL_URL).content.decode()
    edit_forms = [reverse(n, args=[MODEL]) for n in ("ui:model-description", "ui:model-tag-set")]
    manage_forms = [
        reverse(n, args=[MODEL])
        for n in ("ui:model-rename", "ui:model-grant-remove", "ui:model-policy")
    ]
    for url in edit_forms + manage_forms:
        assert url not in reader
    assert "needs “Can edit” on this model; you have “Can read”" in reader
    for url in edit_forms:
        assert url in editor
        assert url in manager
    for url in manage_forms:
        assert url not in editor
        assert url in manager
    version_reader = _client(story.carol).get(VERSION_URL).content.decode()
    version_editor = _client(story.alice).get(VERSION_URL).content.decode()
    version_manager = _client(story.owner).get(VERSION_URL).content.decode()
    assert "version-edit" not in version_reader
    assert "version-edit" in version_editor
    assert "delete-version-form" not in version_editor
    assert "delete-version-form" in version_manager


def test_a_forged_edit_by_a_reader_is_refused_and_changes_nothing(story):
    client = _client(story.carol)
    response = client.post(
        reverse("ui:model-description", args=[MODEL]), {"d-description": "defaced"}, follow=True
    )
    assert response.redirect_chain == [(MODEL_URL + "#about", 303)]
    assert any("CAN_EDIT" in m or "may not" in m for m in _messages(response))
    # What was typed comes back in the form (the reader has none: the page shows no form).
    assert RegisteredModel.objects.get(name=MODEL).description.startswith("Scores card")
    for name, data in [
        ("ui:model-tag-set", {"tag-key": "x", "tag-value": "y"}),
        ("ui:model-tag-delete", {"key": "team"}),
        ("ui:model-rename", {"rn-new_name": "stolen"}),
        ("ui:model-delete", {"del-confirm": MODEL}),
    ]:
        assert client.post(reverse(name, args=[MODEL]), data).status_code == 303, name
    registered_model = RegisteredModel.objects.get(name=MODEL)
    assert {t.key for t in registered_model.tags.all()} == {"team"}


def test_an_editor_edits_and_a_refused_description_is_kept(story):
    client = _client(story.alice)
    saved = client.post(
        reverse("ui:model-description", args=[MODEL]), {"d-description": "New *text*"}
    )
    assert saved.status_code == 302
    assert RegisteredModel.objects.get(name=MODEL).description == "New *text*"
    page = client.get(MODEL_URL)
    assert "<em>text</em>" in page.content.decode()
    assert page.context["description_form"]["description"].value() == "New *text*"
    # A version's tag whose key is not valid: refused with the service's words, text kept.
    refused = client.post(
        reverse("ui:version-tag-set", args=[MODEL, 2]),
        {"tag-key": "bad key/../", "tag-value": "v"},
        follow=True,
    )
    assert refused.redirect_chain == [(VERSION_URL + "#edit", 303)]
    assert refused.context["tag_form"]["key"].value() == "bad key/../"
    assert _messages(refused)


def test_rename_and_delete_by_a_manager(story):
    client = _client(story.owner)
    wrong = client.post(
        reverse("ui:model-delete", args=[MODEL]), {"del-confirm": "nope"}, follow=True
    )
    assert "Type the model's name" in " ".join(_messages(wrong))
    renamed = client.post(reverse("ui:model-rename", args=[MODEL]), {"rn-new_name": "fraud-2"})
    assert renamed["Location"] == "/models/fraud-2/"
    # Version 1 is in Production: its deletion is refused, and the page said so before.
    page = client.get("/models/fraud-2/versions/1/")
    assert [g.reason for g in page.context["delete_guards"]] == ["it is in Production"]
    refused = client.post(
        reverse("ui:version-delete", args=["fraud-2", 1]), {"confirm": "yes"}, follow=True
    )
    assert "may not be deleted" in " ".join(_messages(refused))
    assert ModelVersion.objects.filter(registered_model__name="fraud-2").count() == 2
    unconfirmed = client.post(reverse("ui:version-delete", args=["fraud-2", 2]), {})
    assert unconfirmed.status_code == 303
    deleted = client.post(reverse("ui:version-delete", args=["fraud-2", 2]), {"confirm": "yes"})
    assert deleted.status_code == 302
    assert list(
        ModelVersion.objects.filter(registered_model__name="fraud-2").values_list(
            "version", flat=True
        )
    ) == [1]
    model_page = client.get("/models/fraud-2/")
    assert "version 1 (it is in Production)" in model_page.content.decode()
    services.model_version_stage_transition(
        actor=story.owner, name="fraud-2", version=1, stage="Archived"
    )
    assert "delete-model-form" in client.get("/models/fraud-2/").content.decode()
    gone = client.post(reverse("ui:model-delete", args=["fraud-2"]), {"del-confirm": "fraud-2"})
    assert gone["Location"] == reverse("ui:model-list")
    assert not RegisteredModel.objects.filter(name="fraud-2").exists()


def test_a_protected_alias_is_deleted_only_by_those_its_policy_names(story):
    services.registered_model_alias_set(actor=story.owner, name=MODEL, alias="champion", version=1)
    services.alias_policy_set(
        actor=story.owner, name=MODEL, alias="champion", protected=True, direct_users=["bob"]
    )
    page = _client(story.alice).get(MODEL_URL).content.decode()
    assert reverse("ui:alias-delete", args=[MODEL, "champion"]) not in page
    assert "Only those its policy names may delete it." in page
    refused = _client(story.alice).post(
        reverse("ui:alias-delete", args=[MODEL, "champion"]), follow=True
    )
    assert refused.redirect_chain == [(MODEL_URL + "#aliases", 303)]
    assert RegisteredModelAlias.objects.filter(alias="champion").exists()
    assert (
        _client(story.bob).post(reverse("ui:alias-delete", args=[MODEL, "champion"])).status_code
        == 302
    )
    assert not RegisteredModelAlias.objects.filter(alias="champion").exists()


def test_grants_change_remove_and_a_downgrade_asks_first(story):
    client = _client(story.owner)
    url = reverse("ui:model-grant", args=[MODEL])
    page = client.get(MODEL_URL)
    labels = {row["principal"]: row["label"] for row in page.context["grant_rows"]}
    assert labels["bob"] == "Can manage production versions"
    asked = client.post(url, {"principal": "bob", "level": "CAN_READ"}, follow=True)
    assert asked.redirect_chain == [(MODEL_URL + "#permissions", 303)]
    assert "This lowers bob from “Can manage production versions” to “Can read”" in " ".join(
        _messages(asked)
    )
    assert asked.context["grant_form"]["principal"].value() == "bob"
    assert (
        RegisteredModelGrant.objects.get(user=story.bob).level == "CAN_MANAGE_PRODUCTION_VERSIONS"
    )
    raised = client.post(url, {"principal": "alice", "level": "CAN_MANAGE_STAGING_VERSIONS"})
    assert raised.status_code == 302  # raising asks nothing
    lowered = client.post(url, {"principal": "bob", "level": "CAN_READ", "confirm_downgrade": "on"})
    assert lowered.status_code == 302
    assert RegisteredModelGrant.objects.get(user=story.bob).level == "CAN_READ"
    removed = client.post(reverse("ui:model-grant-remove", args=[MODEL]), {"principal": "carol"})
    assert removed.status_code == 302
    assert not RegisteredModelGrant.objects.filter(user=story.carol).exists()
    by_editor = _client(story.alice).post(
        reverse("ui:model-grant-remove", args=[MODEL]), {"principal": "bob"}
    )
    assert by_editor.status_code == 303
    assert RegisteredModelGrant.objects.filter(user=story.bob).exists()


def test_the_policy_form_holds_the_current_policy_and_saves_tags_and_expiry(story):
    services.stage_policy_set(
        actor=story.owner,
        name=MODEL,
        stage="Production",
        required_approvals=2,
        allow_self_approval=False,
        allow_direct_transition=False,
        required_version_tags={"validation_status": "passed"},
        request_ttl_seconds=int(timedelta(hours=48).total_seconds()),
    )
    client = _client(story.owner)
    rows = {row["policy"].stage: row for row in client.get(MODEL_URL).context["policy_rows"]}
    form = rows["Production"]["form"]
    assert {name: form[name].value() for name in form.fields} == {
        "stage": "Production",
        "required_approvals": 2,
        "allow_self_approval": False,
        "allow_direct_transition": False,
        "required_tags": "validation_status=passed",
        "request_ttl_hours": 48,
        "shown_ttl_seconds": 48 * 3600,
    }
    assert rows["Staging"]["form"]["required_approvals"].value() == 1
    saved = client.post(
        reverse("ui:model-policy", args=[MODEL]),
        {
            "stage": "Staging",
            "p-Staging-stage": "Staging",
            "p-Staging-required_approvals": "1",
            "p-Staging-required_tags": "smoke=passed\nowner=risk",
            "p-Staging-request_ttl_hours": "6",
        },
    )
    assert saved.status_code == 302
    policy = story.model.stage_policies.get(stage="Staging")
    assert policy.required_version_tags == {"smoke": "passed", "owner": "risk"}
    assert policy.request_ttl == timedelta(hours=6)
    bad = client.post(
        reverse("ui:model-policy", args=[MODEL]),
        {
            "stage": "Staging",
            "p-Staging-stage": "Staging",
            "p-Staging-required_approvals": "1",
            "p-Staging-required_tags": "no equals sign",
        },
        follow=True,
    )
    assert "key=value" in " ".join(_messages(bad))
    kept = {row["policy"].stage: row for row in bad.context["policy_rows"]}["Staging"]["form"]
    assert kept["required_tags"].value() == "no equals sign"


def test_an_expiry_set_to_the_minute_survives_a_save_that_leaves_the_hours(story):
    services.stage_policy_set(
        actor=story.owner, name=MODEL, stage="Staging", request_ttl_seconds=90 * 60
    )
    client = _client(story.owner)
    form = {row["policy"].stage: row for row in client.get(MODEL_URL).context["policy_rows"]}[
        "Staging"
    ]["form"]
    data = {"stage": "Staging"}
    for name in form.fields:
        value = form[name].value()
        if value is not False:
            data[form.add_prefix(name)] = "on" if value is True else str(value)
    data["p-Staging-required_approvals"] = "3"
    assert client.post(reverse("ui:model-policy", args=[MODEL]), data).status_code == 302
    policy = story.model.stage_policies.get(stage="Staging")
    assert (policy.required_approvals, policy.request_ttl) == (3, timedelta(minutes=90))
    data["p-Staging-request_ttl_hours"] = "5"
    client.post(reverse("ui:model-policy", args=[MODEL]), data)
    assert story.model.stage_policies.get(stage="Staging").request_ttl == timedelta(hours=5)


def test_breakable_escapes_and_adds_break_points_only():
    from ui.templatetags.ui_text import breakable

    assert breakable("MODEL_VERSION_CREATED") == "MODEL_<wbr>VERSION_<wbr>CREATED"
    assert breakable("<b>a.b</b>") == "&lt;b&gt;a.<wbr>b&lt;/<wbr>b&gt;"
    assert breakable("plain words") == "plain words"
