"""Signed promotion records (docs/decisions/0016-provenance.md), append-only like the trail; and
the hash chains of the trail and the audit entries (docs/decisions/0017-tamper-evident-trail.md).

The rows written before this get their hashes here, in the order they were written (by id): each
model's activities as one chain, the audit entries as another. The append-only triggers refuse
the UPDATE this needs, so they are dropped for the backfill and created again, in the same
transaction, so no other writer sees the tables without them."""

import django.db.models.deletion
import django.utils.timezone
import uuid
from django.conf import settings
from django.db import migrations, models

from kernel import hashchain

# Frozen copies of the lists in registry/models: the hashes written here must be the ones the
# code computes, and neither list may ever change.
ACTIVITY_FIELDS = (
    "model_version_id",
    "registered_model_id",
    "model_name",
    "version",
    "activity_type",
    "from_stage",
    "to_stage",
    "comment",
    "system_comment",
    "request_id",
    "actor_id",
    "actor_username",
    "created_at",
)
AUDIT_FIELDS = ("action", "model_name", "model_code", "detail", "actor_username", "created_at")

TABLES = ("registry_activity", "registry_auditentry")
POSTGRES_DROP = [f"DROP TRIGGER IF EXISTS {table}_append_only ON {table};" for table in TABLES]
POSTGRES_CREATE = [
    f"""CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}
        FOR EACH ROW EXECUTE FUNCTION registry_activity_append_only();"""
    for table in (*TABLES, "registry_promotionrecord")
]
SQLITE_DROP = [
    f"DROP TRIGGER IF EXISTS {table}_no_{op};" for table in TABLES for op in ("update", "delete")
]
SQLITE_CREATE = [
    f"""CREATE TRIGGER {table}_no_{op} BEFORE {op.upper()} ON {table}
       BEGIN SELECT RAISE(ABORT, '{table} is append-only: {op.upper()} is not allowed'); END;"""
    for table in (*TABLES, "registry_promotionrecord")
    for op in ("update", "delete")
]


def _execute(schema_editor, postgres, sqlite):
    vendor = schema_editor.connection.vendor
    for statement in postgres if vendor == "postgresql" else sqlite:
        schema_editor.execute(statement)


def _backfill(model, fields, chain_of):
    heads = {}
    changed = []
    for row in model.objects.order_by("id").iterator(chunk_size=2000):
        chain = chain_of(row)
        heads[chain] = hashchain.link([row], fields, heads.get(chain, hashchain.GENESIS))
        changed.append(row)
        if len(changed) >= 1000:
            model.objects.bulk_update(changed, ["prev_hash", "row_hash"])
            changed = []
    if changed:
        model.objects.bulk_update(changed, ["prev_hash", "row_hash"])


def forwards(apps, schema_editor):
    _execute(schema_editor, POSTGRES_DROP, SQLITE_DROP)
    _backfill(apps.get_model("registry", "Activity"), ACTIVITY_FIELDS, lambda row: row.registered_model_id)
    _backfill(apps.get_model("registry", "AuditEntry"), AUDIT_FIELDS, lambda row: None)
    _execute(schema_editor, POSTGRES_CREATE, SQLITE_CREATE)


def backwards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(
            "DROP TRIGGER IF EXISTS registry_promotionrecord_append_only ON registry_promotionrecord;"
        )
    else:
        for op in ("update", "delete"):
            schema_editor.execute(f"DROP TRIGGER IF EXISTS registry_promotionrecord_no_{op};")


class Migration(migrations.Migration):

    dependencies = [
        ('registry', '0017_imports'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='PromotionRecord',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('code', models.UUIDField(default=uuid.uuid4, editable=False, unique=True)),
                ('model_name', models.CharField(max_length=256)),
                ('version', models.PositiveIntegerField()),
                ('kind', models.CharField(choices=[('ALIAS', 'Alias'), ('STAGE', 'Stage')], max_length=8)),
                ('pointer', models.CharField(max_length=255)),
                ('moved_from', models.CharField(blank=True, default='', max_length=255)),
                ('artifact_digest', models.CharField(max_length=71)),
                ('envelope', models.TextField()),
                ('envelope_digest', models.CharField(max_length=71)),
                ('key_id', models.CharField(max_length=64)),
                ('created_at', models.DateTimeField(default=django.utils.timezone.now)),
            ],
            options={
                'ordering': ['created_at', 'id'],
            },
        ),
        migrations.AddField(
            model_name='activity',
            name='prev_hash',
            field=models.CharField(db_default='', default='', max_length=64),
        ),
        migrations.AddField(
            model_name='activity',
            name='row_hash',
            field=models.CharField(db_default='', default='', max_length=64),
        ),
        migrations.AddField(
            model_name='auditentry',
            name='prev_hash',
            field=models.CharField(db_default='', default='', max_length=64),
        ),
        migrations.AddField(
            model_name='auditentry',
            name='row_hash',
            field=models.CharField(db_default='', default='', max_length=64),
        ),
        migrations.AddIndex(
            model_name='activity',
            index=models.Index(fields=['registered_model', 'id'], name='activity_chain'),
        ),
        migrations.AddField(
            model_name='promotionrecord',
            name='registered_model',
            field=models.ForeignKey(db_constraint=False, on_delete=django.db.models.deletion.DO_NOTHING, related_name='+', to='registry.registeredmodel'),
        ),
        migrations.AddIndex(
            model_name='promotionrecord',
            index=models.Index(fields=['registered_model', 'version', 'id'], name='promotion_record_of'),
        ),
        migrations.AddConstraint(
            model_name='promotionrecord',
            constraint=models.CheckConstraint(condition=models.Q(('kind__in', ['ALIAS', 'STAGE'])), name='promotion_record_kind_valid'),
        ),
        migrations.AddField(
            model_name='modelversionmanifest',
            name='signature_key_id',
            field=models.CharField(blank=True, db_default='', default='', max_length=64),
        ),
        migrations.RunPython(forwards, backwards),
    ]
