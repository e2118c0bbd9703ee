"""When each of Celery beat's periodic tasks last succeeded: the health detail and the metrics
read it to tell a sweep that stopped running (config/periodic.py). A new, empty table."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("registry", "0013_stage_policy_gate_tag_groups"),
    ]

    operations = [
        migrations.CreateModel(
            name="PeriodicTaskRun",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("name", models.CharField(max_length=200, unique=True)),
                ("last_succeeded_at", models.DateTimeField()),
            ],
        ),
    ]
