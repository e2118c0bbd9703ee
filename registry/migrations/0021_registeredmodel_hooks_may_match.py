"""``RegisteredModel.hooks_may_match`` (docs/decisions/0021-writes-in-fewer-statements.md): True
for every model (always safe), then False where no ACTIVE hook with a subscription can match,
as webhooks/services/matching.py computes it."""

from django.db import migrations, models
from django.db.models import Exists, OuterRef, Q


def compute(apps, schema_editor):
    RegisteredModel = apps.get_model("registry", "RegisteredModel")
    Webhook = apps.get_model("webhooks", "Webhook")
    matching = Webhook.objects.filter(
        Q(registered_model__isnull=True) | Q(registered_model=OuterRef("pk")),
        status="ACTIVE",
        subscriptions__isnull=False,
    )
    RegisteredModel.objects.exclude(Exists(matching)).update(hooks_may_match=False)


class Migration(migrations.Migration):
    dependencies = [
        ("registry", "0020_mlmodel_preview"),
        ("webhooks", "0006_admin_names"),
    ]

    operations = [
        migrations.AddField(
            model_name="registeredmodel",
            name="hooks_may_match",
            field=models.BooleanField(db_default=True, default=True, editable=False),
        ),
        migrations.RunPython(compute, migrations.RunPython.noop, elidable=True),
    ]
