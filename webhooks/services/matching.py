"""Whether any hook can match a registered model's events: ``RegisteredModel.hooks_may_match``,
which a registry write reads under the model's row lock to skip the subscription lookup of
:func:`~webhooks.services.outbox.webhook_event_emit` when it is False
(docs/decisions/0021-writes-in-fewer-statements.md, which gives the argument in full).

The flag may be True when nothing matches (a lookup that finds nothing, as before); it is never
False while an ACTIVE hook with a subscription, of the model or registry-wide, is committed.
Every transaction that can make a hook match (a hook created, enabled, subscribed to more
events) or stop matching calls :func:`hooks_may_match_refresh` after its change, and a new
model gets its flag from :func:`hooks_may_match_new_model`. On PostgreSQL they serialise with
each other through one transaction-level advisory lock, taken shared for one model's hooks (and
by model creation) and exclusive for registry-wide hooks; one model's flag is recomputed under
its row lock, so a registry write that holds the lock reads the flag of the last committed hook
change, and a change that would set it waits for the write to commit. SQLite runs one writing
transaction at a time (``transaction_mode`` IMMEDIATE), which orders them all the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q

from registry.models import RegisteredModel
from webhooks.models import Webhook, WebhookStatus

# The key of the transaction-level advisory lock that orders the changes of the flags (and the
# creation of models, which computes one) on PostgreSQL: "hooks" in ASCII.
HOOKS_MAY_MATCH_LOCK = 0x686F6F6B73


def _matching_hooks(registered_model: Q | None = None) -> Q:
    return Q(status=WebhookStatus.ACTIVE, subscriptions__isnull=False) & (
        Q(registered_model__isnull=True) | (registered_model or Q(pk__in=[]))
    )


def _lock(*, exclusive: bool) -> None:
    if connection.vendor == "postgresql":
        function = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {function}(%s)", [HOOKS_MAY_MATCH_LOCK])


def hooks_may_match_new_model() -> Exists:
    """The flag of a registered model about to be inserted in the current transaction, as an
    expression for the insert (which returns its value): whether a registry-wide hook can
    match (a hook of its own cannot exist yet). The shared lock, taken here and held to the
    commit, keeps a registry-wide hook from being enabled between the insert's read and its
    commit without that change seeing the new row."""
    _lock(exclusive=False)
    return Exists(Webhook.objects.filter(_matching_hooks()))


@contextmanager
def hooks_changing(registered_model_ids: Iterable[int | None]) -> Iterator[None]:
    """A transaction that changes hooks of these models (``None``: registry-wide hooks) in its
    body, and then recomputes their flags (of every model when ``None`` is among them).

    The locks are taken first, before the body touches a hook: a registry write holding a
    model's row lock may be inserting deliveries that reference a hook (a key-share lock on
    its row), so a deletion that locked the hook first and the model's row second could
    deadlock with it."""
    ids = set(registered_model_ids)
    registry_wide = None in ids
    with transaction.atomic():
        _lock(exclusive=registry_wide)
        models = RegisteredModel.objects.all()
        if not registry_wide:
            models = models.filter(pk__in=ids)
            # Changes of one model's hooks run side by side under the shared lock: its row
            # lock orders them, taken before the statements below read the hooks.
            list(models.select_for_update().order_by("pk").values_list("pk", flat=True))
        yield
        matches = Exists(
            Webhook.objects.filter(_matching_hooks(Q(registered_model=OuterRef("pk"))))
        )
        models.filter(hooks_may_match=False).filter(matches).update(hooks_may_match=True)
        models.filter(hooks_may_match=True).exclude(matches).update(hooks_may_match=False)


def hooks_may_match_refresh(*, registered_model_ids: Iterable[int | None]) -> None:
    """Recompute the flags of these models after a change of their hooks made in the current
    transaction (a hook disabled by the worker)."""
    with hooks_changing(registered_model_ids):
        pass
