"""The hash chains of the trail and the audit entries, read back
(docs/decisions/0017-tamper-evident-trail.md): their heads, to export, and the first row that
does not match, for ``manage.py verify_trail``."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from kernel import hashchain
from registry.models import ACTIVITY_HASHED_FIELDS, Activity, AuditEntry
from registry.models.audit import AUDIT_HASHED_FIELDS


@dataclass(frozen=True)
class TrailHeads:
    # The audit chain's last row_hash (GENESIS when empty) and its number of rows.
    audit_head: str
    audit_rows: int
    # One hash of every model's trail head: sha256 over "<model id> <head>\n" lines sorted by
    # model id, and the number of rows and of chains under it.
    trail_root: str
    trail_rows: int
    trail_chains: int


def trail_heads() -> TrailHeads:
    """The heads to keep elsewhere: a copy of an older value that a later verify_trail run
    cannot reach from the rows is proof the past was rewritten."""
    audit = AuditEntry.objects.order_by("-id").values_list("row_hash", flat=True).first()
    heads = (
        Activity.objects.order_by("registered_model_id", "-id")
        .distinct("registered_model_id")
        .values_list("registered_model_id", "row_hash")
        if _distinct_on()
        else _heads_portable()
    )
    lines = "".join(f"{model_id} {head}\n" for model_id, head in sorted(heads))
    return TrailHeads(
        audit_head=audit or hashchain.GENESIS,
        audit_rows=AuditEntry.objects.count(),
        trail_root=hashlib.sha256(lines.encode("ascii")).hexdigest(),
        trail_rows=Activity.objects.count(),
        trail_chains=lines.count("\n"),
    )


def _distinct_on() -> bool:
    from django.db import connection

    return bool(connection.features.can_distinct_on_fields)


def _heads_portable() -> list[tuple[int, str]]:
    heads: dict[int, str] = {}
    for model_id, head in Activity.objects.order_by("id").values_list(
        "registered_model_id", "row_hash"
    ):
        heads[model_id] = head
    return list(heads.items())


@dataclass(frozen=True)
class TrailBreak:
    table: str
    row_id: int
    chain: str
    reason: str
    row: Any

    def __str__(self) -> str:
        return f"{self.table} row id={self.row_id} ({self.chain}): {self.reason}"


def _chains() -> Iterator[tuple[int, list[Activity]]]:
    """Each model's trail, in chain order, one model at a time."""
    model_ids = (
        Activity.objects.order_by("registered_model_id")
        .values_list("registered_model_id", flat=True)
        .distinct()
    )
    for model_id in model_ids:
        yield model_id, list(Activity.objects.filter(registered_model_id=model_id).order_by("id"))


def trail_first_break(*, progress: Any = None) -> list[TrailBreak]:
    """The first row of each chain that does not follow from the rows before it (at most one
    per chain: once a chain is broken, every row after it differs too). ``progress`` is
    called with the number of rows checked as it goes."""
    breaks = []
    audit = list(AuditEntry.objects.order_by("id"))
    found = hashchain.first_break(audit, AUDIT_HASHED_FIELDS)
    if found:
        row, reason = found
        breaks.append(TrailBreak("registry_auditentry", row.pk, "audit chain", reason, row))
    if progress:
        progress(len(audit))
    for model_id, rows in _chains():
        found = hashchain.first_break(rows, ACTIVITY_HASHED_FIELDS)
        if found:
            row, reason = found
            chain = f"trail of registered model id={model_id} ('{row.model_name}')"
            breaks.append(TrailBreak("registry_activity", row.pk, chain, reason, row))
        if progress:
            progress(len(rows))
    return breaks
