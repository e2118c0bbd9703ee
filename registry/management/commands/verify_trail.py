"""Recompute the hash chains of the trail and the audit entries and name the first row of each
chain that does not match (docs/decisions/0017-tamper-evident-trail.md).

Exits 0 when every chain holds, 1 otherwise; prints the heads either way, to compare with a
copy kept elsewhere (the periodic export logs them)."""

from __future__ import annotations

import sys
from typing import Any

from django.core.management.base import BaseCommand
from tqdm import tqdm

from registry.models import Activity, AuditEntry
from registry.selectors.trail import trail_first_break, trail_heads


class Command(BaseCommand):
    help = "Check the hash chains of the activity trail and the audit entries."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--no-progress", action="store_true", help="Do not draw a progress bar."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        total = Activity.objects.count() + AuditEntry.objects.count()
        with tqdm(
            total=total,
            unit="row",
            desc="verify_trail",
            file=sys.stderr,
            disable=options["no_progress"] or None,
        ) as bar:
            breaks = trail_first_break(progress=bar.update)
        heads = trail_heads()
        self.stdout.write(
            f"audit head {heads.audit_head} ({heads.audit_rows} rows); trail root "
            f"{heads.trail_root} ({heads.trail_rows} rows in {heads.trail_chains} chains)"
        )
        if not breaks:
            self.stdout.write(self.style.SUCCESS("Every chain holds."))
            return
        for found in breaks:
            self.stdout.write(self.style.ERROR(f"First bad row: {found}"))
        sys.exit(1)
