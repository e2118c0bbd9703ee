"""The tamper-evident trail (docs/decisions/0017-tamper-evident-trail.md): every activity and
audit row carries the hash of the row before it in its chain and of its own content;
``manage.py verify_trail`` recomputes the chains and names the first row that does not match,
as it would after someone with the database dropped the append-only trigger and edited a row."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.db import connection

from kernel import hashchain
from registry import services
from registry.models import Activity, AuditEntry, ModelVersion

pytestmark = pytest.mark.django_db


@pytest.fixture
def history(django_user_model):
    owner = django_user_model.objects.create_user("owner", password="pass-ownerowner")
    root = django_user_model.objects.create_superuser("root", password="root-pass-1")
    for name in ("churn", "fraud"):
        services.registered_model_create(actor=owner, name=name)
        for number in (1, 2):
            services.model_version_create(actor=owner, name=name, source=f"s3://b/{name}/{number}")
        services.model_version_stage_transition(actor=owner, name=name, version=1, stage="Staging")
        services.model_version_stage_transition(
            actor=owner, name=name, version=2, stage="Staging", archive_existing_versions=True
        )
        services.stage_policy_set(actor=root, name=name, stage="Production", required_approvals=2)
    return owner


def _verify() -> tuple[int, str]:
    out = io.StringIO()
    try:
        call_command("verify_trail", "--no-progress", stdout=out)
    except SystemExit as exc:
        return int(exc.code or 0), out.getvalue()
    return 0, out.getvalue()


def _tamper(table: str, sql: str, params: list) -> None:
    """What a database administrator can do: drop the trigger, edit, put the trigger back."""
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TRIGGER {table}_append_only ON {table}")
        cursor.execute(sql, params)
        cursor.execute(
            f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
            "FOR EACH ROW EXECUTE FUNCTION registry_activity_append_only()"
        )


def test_each_model_has_its_own_chain_and_the_audit_one_more(history):
    for model_id in set(Activity.objects.values_list("registered_model_id", flat=True)):
        rows = list(Activity.objects.filter(registered_model_id=model_id).order_by("id"))
        assert rows[0].prev_hash == hashchain.GENESIS
        assert [row.prev_hash for row in rows[1:]] == [row.row_hash for row in rows[:-1]]
    audit = list(AuditEntry.objects.order_by("id"))
    assert len(audit) == 2
    assert audit[1].prev_hash == audit[0].row_hash
    code, out = _verify()
    assert code == 0, out
    assert "Every chain holds." in out


def test_an_edited_trail_row_is_named(history):
    archived = Activity.objects.get(
        model_name="fraud", version=1, activity_type="SYSTEM_TRANSITION"
    )
    _tamper(
        "registry_activity",
        "UPDATE registry_activity SET to_stage = 'Production' WHERE id = %s",
        [archived.pk],
    )
    code, out = _verify()
    assert code == 1
    assert f"First bad row: registry_activity row id={archived.pk}" in out
    assert "('fraud')" in out
    assert "changed after it was written" in out
    # The other model's chain is intact and not named.
    assert "'churn'" not in out


def test_a_deleted_trail_row_names_the_row_after_it(history):
    rows = list(Activity.objects.filter(model_name="churn").order_by("id"))
    _tamper("registry_activity", "DELETE FROM registry_activity WHERE id = %s", [rows[1].pk])
    code, out = _verify()
    assert code == 1
    assert f"registry_activity row id={rows[2].pk}" in out
    assert "a row was removed, inserted or reordered before it" in out


def test_an_edited_audit_row_is_named(history):
    first = AuditEntry.objects.order_by("id").first()
    _tamper(
        "registry_auditentry",
        "UPDATE registry_auditentry SET actor_username = 'nobody' WHERE id = %s",
        [first.pk],
    )
    code, out = _verify()
    assert code == 1
    assert f"First bad row: registry_auditentry row id={first.pk} (audit chain)" in out


def test_the_heads_are_exported_by_the_beat_task_and_the_metrics(
    history, caplog, settings, django_user_model
):
    from django.test import Client

    from registry.selectors.trail import trail_heads
    from registry.tasks import trail_head_export_task
    from webhooks.models import WebhookEvent, WebhookFlavor
    from webhooks.services.management import webhook_create

    webhook_create(
        actor=django_user_model.objects.get(username="root"),
        flavor=WebhookFlavor.DATABRICKS,
        events=["TRAIL_HEAD_EXPORTED"],
        url="https://audit.example.com/heads",
    )
    before = trail_heads()
    with caplog.at_level("INFO", logger="registry.services.trail"):
        exported = trail_head_export_task()
    assert exported["trail_root"] == before.trail_root
    assert f"trail_root={before.trail_root}" in caplog.text
    assert f"audit_head={before.audit_head}" in caplog.text
    (event,) = WebhookEvent.objects.filter(event_type="TRAIL_HEAD_EXPORTED")
    assert (event.data["trail_root"], event.data["audit_head"]) == (
        before.trail_root,
        before.audit_head,
    )
    # A new row moves the head: a copy of the old one kept elsewhere no longer matches.
    services.model_version_stage_transition(actor=history, name="churn", version=1, stage="None")
    assert trail_heads().trail_root != before.trail_root
    assert ModelVersion.objects.get(registered_model__name="churn", version=1).current_stage == (
        "None"
    )

    settings.METRICS_ENABLED = True
    settings.METRICS_TOKEN = ""
    body = Client().get("/metrics").content.decode()
    assert f'registry_trail_head_info{{audit_head="{before.audit_head}"' in body
    assert 'registry_trail_rows{chain="trail"}' in body


@pytest.mark.django_db(transaction=True)
def test_concurrent_writers_keep_every_chain_whole(django_user_model):
    """Comments on one model from several threads at once (each its own connection and
    transaction) serialise on the model's lock; another model's writers never wait for them."""
    import threading

    owner = django_user_model.objects.create_user("owner", password="pass-ownerowner")
    for name in ("churn", "fraud"):
        services.registered_model_create(actor=owner, name=name)
        services.model_version_create(actor=owner, name=name, source=f"s3://b/{name}/1")
    errors: list[BaseException] = []

    def comment(name: str, number: int) -> None:
        try:
            for round_ in range(5):
                services.comment_create(
                    actor=owner, name=name, version=1, comment=f"{number}.{round_}"
                )
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=comment, args=(name, number))
        for number in range(3)
        for name in ("churn", "fraud")
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert Activity.objects.filter(activity_type="NEW_COMMENT").count() == 30
    code, out = _verify()
    assert code == 0, out
    assert "(30 rows in 2 chains)" in out
