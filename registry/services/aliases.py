"""Aliases: a name for one version of a model, set and deleted under the model's row lock."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from accounts import permissions
from accounts.models import User
from accounts.permissions import Level
from registry import validation
from registry.models import RegisteredModelAlias
from registry.selectors import registered_model_by_name
from registry.services.common import lock_model_version
from webhooks.models import EventType
from webhooks.services.outbox import webhook_event_emit


def registered_model_alias_set(
    *, actor: User | None, name: Any, alias: Any, version: Any
) -> RegisteredModelAlias:
    name = validation.require_string(name, "name")
    alias = validation.alias_name(alias, for_set=True)
    number = validation.version_number(version)
    with transaction.atomic():
        registered_model, model_version = lock_model_version(
            name, number, actor=actor, level=Level.CAN_EDIT, action="edit the aliases of"
        )
        # The model row lock serialises alias writers, so this upsert cannot race.
        registered_model_alias, _ = RegisteredModelAlias.objects.update_or_create(
            registered_model=registered_model,
            alias=alias,
            defaults={"model_version": model_version},
        )
        webhook_event_emit(
            event=EventType.MODEL_VERSION_ALIAS_CREATED,
            registered_model=registered_model,
            model_version=model_version,
            payload_data={"alias": alias},
            actor=actor,
        )
    return registered_model_alias


def registered_model_alias_delete(*, actor: User | None, name: Any, alias: Any) -> None:
    name = validation.require_string(name, "name")
    alias = validation.alias_name(alias, for_set=False)
    registered_model = registered_model_by_name(name)
    permissions.require_level(actor, registered_model, Level.CAN_EDIT, action="edit the aliases of")
    with transaction.atomic():
        deleted, _ = RegisteredModelAlias.objects.filter(
            registered_model=registered_model, alias=alias
        ).delete()
        if deleted:
            webhook_event_emit(
                event=EventType.MODEL_VERSION_ALIAS_DELETED,
                registered_model=registered_model,
                payload_data={"alias": alias},
                actor=actor,
            )
