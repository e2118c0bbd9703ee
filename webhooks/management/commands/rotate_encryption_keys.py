"""Re-encrypt every stored webhook secret with the first key of REGISTRY_ENCRYPTION_KEYS.

Afterwards the other keys (and the one derived from DJANGO_SECRET_KEY) are no longer needed
for the stored values and can be dropped from the list. Safe to run again and while the
service runs: each row is re-encrypted under its own row lock.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.db import connection, transaction

from webhooks import crypto
from webhooks.models import Webhook


class Command(BaseCommand):
    help = "Re-encrypt the stored webhook secrets with the first REGISTRY_ENCRYPTION_KEYS key."

    def handle(self, *args: Any, **options: Any) -> None:
        table = connection.ops.quote_name(Webhook._meta.db_table)
        secret = connection.ops.quote_name("secret")
        authorization = connection.ops.quote_name("authorization")
        rotated = 0
        for pk in Webhook.objects.order_by("pk").values_list("pk", flat=True).iterator():
            # Raw SQL on the tokens themselves: the ORM would hand back plain values.
            with transaction.atomic(), connection.cursor() as cursor:
                lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
                cursor.execute(
                    f"SELECT {secret}, {authorization} FROM {table} WHERE id = %s{lock}",  # noqa: S608
                    [pk],
                )
                row = cursor.fetchone()
                if row is None:  # deleted meanwhile
                    continue
                cursor.execute(
                    f"UPDATE {table} SET {secret} = %s, {authorization} = %s WHERE id = %s",  # noqa: S608
                    [crypto.rotate(row[0]), crypto.rotate(row[1]), pk],
                )
                rotated += 1
        self.stdout.write(f"Re-encrypted the secrets of {rotated} webhook(s) with the first key.")
