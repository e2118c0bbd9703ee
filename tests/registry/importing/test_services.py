"""The import's writes (registry/services/importing.py) one object at a time: what each run
decides for an object that is new, unchanged, changed on the source, changed here, or both
(docs/migrating.md). The whole run against a real ``mlflow server`` is
test_import_registry.py."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from registry import services
from registry.importing.source import SourceModel, SourceVersion
from registry.models import (
    Activity,
    AuditEntry,
    ImportedObject,
    ModelVersion,
    PointerMove,
    RegisteredModel,
    VersionTagChange,
)
from registry.services.importing import import_aliases, import_model, import_version

pytestmark = pytest.mark.django_db

URL = "http://old-mlflow:5000"
CREATED = datetime(2024, 3, 1, 12, 0, 0, 123000, tzinfo=UTC)


def _model(**changes) -> SourceModel:
    fields = {
        "name": "churn",
        "description": "Churn",
        "tags": {"team": "risk"},
        "aliases": {},
        "user_id": "",
        "created_at": CREATED,
        "updated_at": CREATED,
    }
    return SourceModel(**(fields | changes))


def _version(number: int, **changes) -> SourceVersion:
    fields = {
        "name": "churn",
        "version": number,
        "description": "",
        "source": f"s3://old-bucket/churn/{number}",
        "run_id": "",
        "run_link": "",
        "status": "READY",
        "current_stage": "None",
        "tags": {},
        "user_id": "",
        "created_at": CREATED,
        "updated_at": CREATED,
        "model_id": "",
    }
    return SourceVersion(**(fields | changes))


def _import_version(version: SourceVersion, **kwargs):
    return import_version(source_url=URL, version=version, artifacts="reference", **kwargs)


def test_creators_are_mapped_to_users_by_name_else_kept_as_text(django_user_model):
    bob = django_user_model.objects.create_user(username="bob", password="x")
    assert import_model(source_url=URL, model=_model(user_id="bob")).result == "imported"
    assert _import_version(_version(1, user_id="carol")).result == "imported"
    model = RegisteredModel.objects.get(name="churn")
    assert (model.created_by, model.created_by_name, model.created_at) == (bob, "", CREATED)
    version = ModelVersion.objects.get(version=1)
    assert (version.created_by, version.created_by_name) == (None, "carol")
    # The creator manages the model, as when it is created here.
    assert model.grants.filter(user=bob, level="CAN_MANAGE").exists()


def test_numbers_are_kept_and_never_given_twice(user):
    import_model(source_url=URL, model=_model())
    for number in (2, 5):
        assert _import_version(_version(number)).result == "imported"
    model = RegisteredModel.objects.get(name="churn")
    assert model.last_version_number == 5
    # A number below the counter was given out (a gap): never created afterwards.
    late = _import_version(_version(3))
    assert (late.result, "already given out" in late.reason) == ("conflict", True)
    # A version made here takes the next number.
    made = services.model_version_create(actor=None, name="churn", source="s3://b/m")
    assert made.version == 6


def test_stages_are_set_directly_and_on_the_trail_and_history():
    import_model(source_url=URL, model=_model())
    _import_version(_version(1, current_stage="Production"))
    entry = Activity.objects.get(model_name="churn", version=1)
    assert (entry.activity_type, entry.from_stage, entry.to_stage) == (
        "SYSTEM_TRANSITION",
        "",
        "Production",
    )
    assert entry.system_comment == f"Imported from {URL}."
    move = PointerMove.objects.get(kind="STAGE")
    assert (move.pointer, move.to_version, move.cause) == ("Production", 1, "IMPORTED")
    assert AuditEntry.objects.filter(action="IMPORTED", detail__version=1).exists()


def test_a_second_run_changes_nothing_and_a_source_change_updates():
    import_model(source_url=URL, model=_model())
    _import_version(_version(1, tags={"a": "1"}))
    assert import_model(source_url=URL, model=_model()).result == "unchanged"
    assert _import_version(_version(1, tags={"a": "1"})).result == "unchanged"
    changed = _import_version(_version(1, tags={"a": "2"}, current_stage="Staging"))
    assert changed.result == "updated"
    version = ModelVersion.objects.get(version=1)
    assert (version.current_stage, list(version.tags.values_list("value", flat=True))) == (
        "Staging",
        ["2"],
    )


def test_tags_an_import_writes_are_on_the_tag_history():
    """docs/decisions/0022-version-tag-history.md: the tags a version is imported with, and
    those a later run changes, adds or removes, each as a change caused by the import."""
    import_model(source_url=URL, model=_model())
    _import_version(_version(1, tags={"a": "1", "b": "x"}))
    _import_version(_version(1, tags={"a": "1"}))
    _import_version(_version(1, tags={"a": "1"}))  # unchanged: nothing recorded
    _import_version(_version(1, tags={"a": "2", "c": "new"}))
    assert list(
        VersionTagChange.objects.order_by("id").values_list(
            "version", "key", "old_value", "new_value", "cause", "actor_username"
        )
    ) == [
        (1, "a", None, "1", "IMPORTED", ""),
        (1, "b", None, "x", "IMPORTED", ""),
        (1, "b", "x", None, "IMPORTED", ""),
        (1, "a", "1", "2", "IMPORTED", ""),
        (1, "c", None, "new", "IMPORTED", ""),
    ]


def test_changes_here_are_never_overwritten():
    import_model(source_url=URL, model=_model())
    _import_version(_version(1))
    services.registered_model_update(actor=None, name="churn", description="edited here")
    services.model_version_update(actor=None, name="churn", version=1, description="mine")
    # Unchanged on the source: the change here stays, nothing to report.
    assert import_model(source_url=URL, model=_model()).result == "unchanged"
    # Changed on both: a conflict, and the change here stays.
    conflict = import_model(source_url=URL, model=_model(description="Churn v2"))
    assert conflict.result == "conflict"
    assert _import_version(_version(1, description="theirs")).result == "conflict"
    assert RegisteredModel.objects.get(name="churn").description == "edited here"
    assert ModelVersion.objects.get(version=1).description == "mine"


def test_a_model_made_here_is_adopted_if_identical_else_a_conflict():
    services.registered_model_create(actor=None, name="churn", description="Churn")
    services.registered_model_tag_set(actor=None, name="churn", key="team", value="risk")
    assert import_model(source_url=URL, model=_model()).result == "unchanged"
    assert ImportedObject.objects.filter(kind="MODEL").count() == 1
    services.registered_model_create(actor=None, name="other", description="Ours")
    clash = import_model(source_url=URL, model=_model(name="other"))
    assert clash.result == "conflict"


def test_a_version_deleted_here_after_the_import_is_not_brought_back():
    import_model(source_url=URL, model=_model())
    _import_version(_version(1))
    services.model_version_delete(actor=None, name="churn", version=1)
    gone = _import_version(_version(1))
    assert (gone.result, gone.reason) == ("conflict", "deleted here since it was imported")
    assert not ModelVersion.objects.exists()


def test_what_cannot_be_imported_is_reported_and_the_rest_goes_on():
    import_model(source_url=URL, model=_model())
    pending = _import_version(_version(1, status="PENDING_REGISTRATION"))
    assert (pending.result, pending.reason) == (
        "skipped",
        "the source's version is PENDING_REGISTRATION",
    )
    reserved = _import_version(_version(2, tags={"registry.digest": "forged"}))
    assert reserved.result == "failed"
    assert "reserved" in reserved.reason
    local_path = import_version(
        source_url=URL, version=_version(3, source="/tmp/x"), artifacts="reference"
    )
    assert local_path.result == "failed"
    assert _import_version(_version(4)).result == "imported"
    assert list(ModelVersion.objects.values_list("version", flat=True)) == [4]


def test_skip_leaves_versions_waiting_for_a_registration_retry():
    import_model(source_url=URL, model=_model())
    assert import_version(source_url=URL, version=_version(1), artifacts="skip").result == (
        "imported"
    )
    version = ModelVersion.objects.get(version=1)
    assert version.status == "FAILED_REGISTRATION"
    assert "--artifacts skip" in version.status_message


def test_aliases_wait_for_their_versions():
    import_model(source_url=URL, model=_model())
    _import_version(_version(1))
    model = _model(aliases={"champion": 1, "challenger": 2})
    first = import_aliases(source_url=URL, model=model)
    assert first.result == "imported"
    assert "@challenger (version 2)" in first.reason
    _import_version(_version(2))
    assert import_aliases(source_url=URL, model=model).result == "updated"
    aliases = dict(
        RegisteredModel.objects.get(name="churn").aliases.values_list(
            "alias", "model_version__version"
        )
    )
    assert aliases == {"champion": 1, "challenger": 2}
    assert import_aliases(source_url=URL, model=model).result == "unchanged"


def test_a_dry_run_writes_nothing():
    outcome = import_model(source_url=URL, model=_model(), dry_run=True)
    assert outcome.result == "imported"
    assert _import_version(_version(1), dry_run=True).result == "imported"
    assert not RegisteredModel.objects.exists()
    assert not AuditEntry.objects.exists()
    assert not ImportedObject.objects.exists()


def test_waiting_for_copies_reports_each_copied_failed_or_still_pending():
    from registry.services.import_run import Progress, _wait_for_copies

    import_model(source_url=URL, model=_model())
    for number in (1, 2, 3):
        import_version(source_url=URL, version=_version(number), artifacts="copy")
    # Version 1 was copied (the stand-in for the worker makes it READY at once).
    ModelVersion.objects.filter(version=2).update(
        status="FAILED_REGISTRATION", status_message="Source s3://old-bucket/churn/2: not found."
    )
    ModelVersion.objects.filter(version=3).update(status="PENDING_REGISTRATION")
    outcomes = []
    _wait_for_copies([("churn", 1), ("churn", 2), ("churn", 3)], 0, outcomes.append, Progress())
    assert sorted((o.version, o.result, o.reason) for o in outcomes) == [
        (1, "imported", "0 bytes"),
        (2, "failed", "Source s3://old-bucket/churn/2: not found."),
        (3, "skipped", "still being copied after 0 s"),
    ]
