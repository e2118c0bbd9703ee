"""The checks of a hook's fields as the APIs send them: each returns the cleaned value or
raises ``RegistryError`` (INVALID_PARAMETER_VALUE) with the message the client sees."""

from __future__ import annotations

import re
import unicodedata
from typing import Any
from urllib.parse import urlsplit

from kernel.errors import RegistryError
from webhooks import http, payloads
from webhooks.conf import webhook_settings
from webhooks.models import EventType, WebhookFlavor, WebhookStatus

URL_MAX_LENGTH = 2048
DESCRIPTION_MAX_LENGTH = 1000
_MLFLOW_NAME = re.compile(r"^(?=.{1,63}$)[a-z0-9]([a-z0-9._-]*[a-z0-9])?$", re.IGNORECASE)


def clean_url(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise RegistryError.invalid("Missing value for required parameter 'url'.")
    value = value.strip()
    if len(value) > URL_MAX_LENGTH:
        raise RegistryError.invalid(f"Webhook URL is longer than {URL_MAX_LENGTH} characters.")
    if any(char.isspace() or unicodedata.category(char) == "Cc" for char in value):
        # Sent as they are, they would be escaped in the path but break the host name.
        raise RegistryError.invalid(
            "Webhook URL must not contain spaces or control characters: percent-encode them."
        )
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        raise RegistryError.invalid(f"Invalid webhook URL '{http.sanitize_url(value)}'.") from None
    allowed = webhook_settings().allowed_schemes
    if parts.scheme.lower() not in allowed:
        raise RegistryError.invalid(
            f"Invalid webhook URL scheme '{parts.scheme}': allowed are {', '.join(allowed)}."
        )
    if not parts.hostname:
        raise RegistryError.invalid("Webhook URL must have a host name.")
    return value


def clean_text(value: Any, field: str, max_length: int) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise RegistryError.invalid(f"Invalid value for parameter '{field}': expected a string.")
    if len(value) > max_length:
        raise RegistryError.invalid(f"'{field}' is longer than {max_length} characters.")
    return value


def clean_authorization(value: Any) -> str:
    """The ``Authorization`` header's value: refused unless it can be sent as one, so a line
    break can neither add headers nor make every delivery fail later."""
    value = clean_text(value, "authorization", 4000)
    if not http.is_header_value(value):
        raise RegistryError.invalid(
            "Invalid value for parameter 'authorization': it is sent as an HTTP header, so it "
            "may not hold line breaks or other control characters, nor characters outside "
            "Latin-1."
        )
    return value


def clean_template(value: Any) -> str:
    return payloads.validate_template(value, max_body_bytes=webhook_settings().max_body_bytes)


def clean_status(value: Any, flavor: str) -> str:
    allowed = (
        WebhookStatus.values
        if flavor == WebhookFlavor.DATABRICKS
        else [WebhookStatus.ACTIVE, WebhookStatus.DISABLED]
    )
    if value in (None, ""):
        return WebhookStatus.ACTIVE
    if value not in allowed:
        raise RegistryError.invalid(
            f"Invalid webhook status '{value}': use one of {', '.join(allowed)}."
        )
    return str(value)


def clean_databricks_events(value: Any, *, registry_wide: bool) -> list[str]:
    if not isinstance(value, list) or not value:
        raise RegistryError.invalid("Missing value for required parameter 'events'.")
    events: list[str] = []
    for item in value:
        if item not in EventType.values:
            raise RegistryError.invalid(
                f"Invalid webhook event '{item}': use one of {', '.join(EventType.values)}."
            )
        if item in payloads.REGISTRY_WIDE_ONLY and not registry_wide:
            raise RegistryError.invalid(
                f"{item} can be used only on registry-wide webhooks (without model_name)."
            )
        if item not in events:
            events.append(item)
    return events


def clean_mlflow_events(value: Any) -> list[str]:
    if not isinstance(value, list) or not value:
        raise RegistryError.invalid("Webhook events cannot be empty.")
    events: list[str] = []
    for item in value:
        pair = mlflow_event_pair(item)
        if pair in payloads.MLFLOW_UNSUPPORTED_PAIRS:
            raise RegistryError.invalid(
                f"Webhook event {pair[0].lower()}.{pair[1].lower()} is not supported by this "
                "registry (it has no prompts or AI gateway)."
            )
        event = payloads.MLFLOW_EVENTS.get(pair)
        if event is None:
            raise RegistryError.invalid(
                f"Invalid webhook event: entity {pair[0]} with action {pair[1]}."
            )
        if event not in events:
            events.append(event)
    return events


def mlflow_event_pair(item: Any) -> tuple[str, str]:
    """``{"entity": "MODEL_VERSION", "action": "CREATED"}`` (names, any case) as a pair."""
    if not isinstance(item, dict):
        raise RegistryError.invalid("Each webhook event must be an object with entity and action.")
    entity, action = item.get("entity"), item.get("action")
    if not isinstance(entity, str) or not isinstance(action, str) or not entity or not action:
        raise RegistryError.invalid("Each webhook event needs an entity and an action.")
    return entity.upper(), action.upper()


def clean_name(value: Any) -> str:
    if value is None or not isinstance(value, str) or not _MLFLOW_NAME.match(value):
        raise RegistryError.invalid(
            f"Invalid webhook name '{value}': 1 to 63 letters, digits, '.', '_' or '-', "
            "starting and ending with a letter or digit."
        )
    return value


def clean_bool(value: Any, field: str, default: bool) -> bool:
    if value is None:
        return default
    if not isinstance(value, bool):
        raise RegistryError.invalid(f"Invalid value for parameter '{field}': expected a boolean.")
    return value
