"""Webhook secrets and Authorization headers become Fernet tokens (webhooks/crypto.py).

The column type does not change; the data step encrypts the plain values already stored, and
the reverse step turns them back into plain text. Raw SQL: the model would decrypt on read.
"""

from django.db import migrations

import webhooks.crypto


def _convert(schema_editor, convert):
    connection = schema_editor.connection
    quote = connection.ops.quote_name
    table, secret, authorization = quote("webhooks_webhook"), quote("secret"), quote("authorization")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id, {secret}, {authorization} FROM {table}")  # noqa: S608
        rows = cursor.fetchall()
        for pk, old_secret, old_authorization in rows:
            cursor.execute(
                f"UPDATE {table} SET {secret} = %s, {authorization} = %s WHERE id = %s",  # noqa: S608
                [convert(old_secret), convert(old_authorization), pk],
            )


def _is_token(value):
    try:
        webhooks.crypto.decrypt(value)
    except Exception:  # noqa: BLE001 - anything that does not decrypt is a plain value
        return False
    return True


def encrypt_plain_values(apps, schema_editor):
    def convert(value):
        if not value or _is_token(value):
            return value
        return webhooks.crypto.encrypt(value)

    _convert(schema_editor, convert)


def decrypt_to_plain_values(apps, schema_editor):
    _convert(schema_editor, lambda value: webhooks.crypto.decrypt(value) if value else value)


class Migration(migrations.Migration):
    dependencies = [
        ("webhooks", "0001_initial"),
    ]

    operations = [
        migrations.AlterField(
            model_name="webhook",
            name="authorization",
            field=webhooks.crypto.EncryptedTextField(blank=True, default=""),
        ),
        migrations.AlterField(
            model_name="webhook",
            name="secret",
            field=webhooks.crypto.EncryptedTextField(blank=True, default=""),
        ),
        migrations.RunPython(encrypt_plain_values, decrypt_to_plain_values),
    ]
