"""Event vocabularies and payload shapes of the two webhook APIs, and payload templates.

An event is stored once, as flat data (``model_name``, ``version`` and the fields of its type).
Each delivery renders it for its hook:

- Databricks hooks get Databricks' flat payload: ``event``, ``webhook_id``, ``event_timestamp``
  (ms), ``model_name``, ``version`` and the type's fields, plus a readable ``text`` (shapes
  Databricks' documentation leaves out follow the same pattern).
- MLflow hooks get ``{"entity", "action", "timestamp", "data"}`` with MLflow's ``data`` shapes.
- A hook with a payload template gets the template, its ``${field}`` placeholders filled in
  (see :func:`render_template`).
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime
from typing import Any

from kernel.errors import RegistryError
from webhooks.models import EventType, Webhook, WebhookFlavor

E = EventType


def webhook_public_id(webhook: Webhook) -> str:
    """The hook's id as its API shows it and its payloads carry it: Databricks ids are 32 hex
    digits; MLflow's are UUID4 strings. Both parse as the code."""
    return public_id(webhook.flavor, webhook.code)


def public_id(flavor: str, code: uuid.UUID) -> str:
    return code.hex if flavor == WebhookFlavor.DATABRICKS else str(code)


#: Per-stage variants: one change also fires the narrower event for its target stage.
STAGE_VARIANTS = {
    E.MODEL_VERSION_TRANSITIONED_STAGE: {
        "Staging": E.MODEL_VERSION_TRANSITIONED_TO_STAGING,
        "Production": E.MODEL_VERSION_TRANSITIONED_TO_PRODUCTION,
        "Archived": E.MODEL_VERSION_TRANSITIONED_TO_ARCHIVED,
    },
    E.TRANSITION_REQUEST_CREATED: {
        "Staging": E.TRANSITION_REQUEST_TO_STAGING_CREATED,
        "Production": E.TRANSITION_REQUEST_TO_PRODUCTION_CREATED,
        "Archived": E.TRANSITION_REQUEST_TO_ARCHIVED_CREATED,
    },
}

#: MLflow's (entity, action) pairs this registry emits, and the event each stands for.
MLFLOW_EVENTS: dict[tuple[str, str], str] = {
    ("REGISTERED_MODEL", "CREATED"): E.REGISTERED_MODEL_CREATED,
    ("MODEL_VERSION", "CREATED"): E.MODEL_VERSION_CREATED,
    ("MODEL_VERSION_TAG", "SET"): E.MODEL_VERSION_TAG_SET,
    ("MODEL_VERSION_TAG", "DELETED"): E.MODEL_VERSION_TAG_DELETED,
    ("MODEL_VERSION_ALIAS", "CREATED"): E.MODEL_VERSION_ALIAS_CREATED,
    ("MODEL_VERSION_ALIAS", "DELETED"): E.MODEL_VERSION_ALIAS_DELETED,
}
MLFLOW_PAIRS: dict[str, tuple[str, str]] = {event: pair for pair, event in MLFLOW_EVENTS.items()}
#: Pairs MLflow knows but this registry has nothing to emit for (no prompts, no AI gateway).
MLFLOW_UNSUPPORTED_PAIRS = {
    ("PROMPT", "CREATED"),
    ("PROMPT_VERSION", "CREATED"),
    ("PROMPT_TAG", "SET"),
    ("PROMPT_TAG", "DELETED"),
    ("PROMPT_VERSION_TAG", "SET"),
    ("PROMPT_VERSION_TAG", "DELETED"),
    ("PROMPT_ALIAS", "CREATED"),
    ("PROMPT_ALIAS", "DELETED"),
    ("BUDGET_POLICY", "EXCEEDED"),
}

#: The fields of each event type beyond ``model_name`` and ``version`` (Databricks payloads
#: leave out artifact locations, so ``source`` and ``run_id`` are MLflow-only).
_DATABRICKS_FIELDS: dict[str, tuple[str, ...]] = {
    E.REGISTERED_MODEL_CREATED: (),
    E.MODEL_VERSION_CREATED: (),
    E.MODEL_VERSION_TAG_SET: ("tags",),
    E.MODEL_VERSION_TAG_DELETED: ("key",),
    E.MODEL_VERSION_ALIAS_CREATED: ("alias",),
    E.MODEL_VERSION_ALIAS_DELETED: ("alias",),
    E.COMMENT_CREATED: ("comment",),
    E.TRANSITION_REQUEST_APPROVED: ("to_stage", "from_stage", "comment"),
    E.TRANSITION_REQUEST_REJECTED: ("to_stage", "from_stage", "comment"),
    E.MODEL_VERSION_READY: ("status",),
    E.MODEL_VERSION_REGISTRATION_FAILED: ("status", "status_message"),
    E.WEBHOOK_DISABLED: ("disabled_webhook_id", "consecutive_failures", "last_error"),
    # The stage the version was in when it was deleted.
    E.MODEL_VERSION_DELETED: ("from_stage",),
    E.REGISTERED_MODEL_DELETED: (),
    # Governed aliases: ``version`` is the version the alias names (or would name).
    E.MODEL_VERSION_ALIAS_MOVED: ("alias", "from_version", "to_version", "comment"),
    E.ALIAS_REQUEST_CREATED: ("alias", "from_version", "to_version", "comment", "request_id"),
    E.ALIAS_REQUEST_APPROVED: ("alias", "from_version", "to_version", "comment", "request_id"),
    E.ALIAS_REQUEST_REJECTED: ("alias", "from_version", "to_version", "comment", "request_id"),
    E.TRAIL_HEAD_EXPORTED: ("audit_head", "audit_rows", "trail_root", "trail_rows", "trail_chains"),
}

#: Events only registry-wide hooks may subscribe to: before the model exists, or once it and
#: its own hooks are gone.
REGISTRY_WIDE_ONLY = (E.REGISTERED_MODEL_CREATED, E.REGISTERED_MODEL_DELETED, E.TRAIL_HEAD_EXPORTED)
for _generic, _variants in STAGE_VARIANTS.items():
    _fields = (
        ("to_stage", "from_stage")
        if _generic == E.MODEL_VERSION_TRANSITIONED_STAGE
        else ("to_stage", "from_stage", "comment")
    )
    for _event in (_generic, *_variants.values()):
        _DATABRICKS_FIELDS[_event] = _fields


def expand(event_type: str, data: dict[str, Any]) -> list[str]:
    """The event types one change fires: the event itself and its per-stage variant."""
    variant = STAGE_VARIANTS.get(event_type, {}).get(data.get("to_stage", ""))  # type: ignore[call-overload]
    return [event_type, variant] if variant else [event_type]


def _version_text(data: dict[str, Any]) -> str:
    return f"registered model '{data.get('model_name', '')}' version {data.get('version', '')}"


def text(event_type: str, data: dict[str, Any], actor: str) -> str:
    """The sentence for chat receivers (Databricks' ``text``)."""
    who = actor or "The registry"
    mv = _version_text(data)
    if event_type == E.REGISTERED_MODEL_CREATED:
        return f"{who} created registered model '{data.get('model_name', '')}'."
    if event_type == E.MODEL_VERSION_CREATED:
        return f"{who} created {mv}."
    if event_type in STAGE_VARIANTS[E.MODEL_VERSION_TRANSITIONED_STAGE].values() or (
        event_type == E.MODEL_VERSION_TRANSITIONED_STAGE
    ):
        return (
            f"Registered model '{data.get('model_name', '')}' version {data.get('version', '')} "
            f"transitioned from {data.get('from_stage', '')} to {data.get('to_stage', '')}."
        )
    if event_type in STAGE_VARIANTS[E.TRANSITION_REQUEST_CREATED].values() or (
        event_type == E.TRANSITION_REQUEST_CREATED
    ):
        return f"{who} requested a transition of {mv} to {data.get('to_stage', '')}."
    if event_type == E.MODEL_VERSION_TAG_SET:
        pair = f"'{data.get('key', '')}' => '{data.get('value', '')}'"
        return f"{who} set version tag(s) {pair} for {mv}."
    if event_type == E.MODEL_VERSION_TAG_DELETED:
        return f"{who} deleted version tag '{data.get('key', '')}' of {mv}."
    if event_type == E.MODEL_VERSION_ALIAS_CREATED:
        return f"{who} pointed alias '{data.get('alias', '')}' at {mv}."
    if event_type == E.MODEL_VERSION_ALIAS_DELETED:
        return (
            f"{who} deleted alias '{data.get('alias', '')}' of registered model "
            f"'{data.get('model_name', '')}'."
        )
    if event_type == E.MODEL_VERSION_ALIAS_MOVED:
        was = data.get("from_version", "")
        return (
            f"{who} moved alias '{data.get('alias', '')}' of registered model "
            f"'{data.get('model_name', '')}' "
            + (f"from version {was} " if was else "")
            + f"to version {data.get('to_version', '')}."
        )
    if event_type in (E.ALIAS_REQUEST_CREATED, E.ALIAS_REQUEST_APPROVED, E.ALIAS_REQUEST_REJECTED):
        verb = {
            E.ALIAS_REQUEST_CREATED: "requested",
            E.ALIAS_REQUEST_APPROVED: "approved",
            E.ALIAS_REQUEST_REJECTED: "rejected",
        }[event_type]  # type: ignore[index]
        return f"{who} {verb} pointing alias '{data.get('alias', '')}' at {mv}."
    if event_type == E.COMMENT_CREATED:
        return f"A user commented on {mv}."
    if event_type == E.TRANSITION_REQUEST_APPROVED:
        return f"{who} approved the transition of {mv} to {data.get('to_stage', '')}."
    if event_type == E.TRANSITION_REQUEST_REJECTED:
        return f"{who} rejected the transition of {mv} to {data.get('to_stage', '')}."
    if event_type == E.MODEL_VERSION_READY:
        return f"{mv[0].upper()}{mv[1:]} is ready."
    if event_type == E.MODEL_VERSION_REGISTRATION_FAILED:
        return f"{mv[0].upper()}{mv[1:]} failed to register: {data.get('status_message', '')}"
    if event_type == E.MODEL_VERSION_DELETED:
        return f"{who} deleted {mv} (it was in {data.get('from_stage', '')})."
    if event_type == E.REGISTERED_MODEL_DELETED:
        return f"{who} deleted registered model '{data.get('model_name', '')}'."
    if event_type == E.TRAIL_HEAD_EXPORTED:
        return (
            f"Trail heads: audit {data.get('audit_head', '')} ({data.get('audit_rows', '')} "
            f"rows), trail root {data.get('trail_root', '')} ({data.get('trail_rows', '')} rows)."
        )
    if event_type == E.WEBHOOK_DISABLED:
        return (
            f"Webhook {data.get('disabled_webhook_id', '')} was disabled after "
            f"{data.get('consecutive_failures', '')} failed deliveries in a row."
        )
    return event_type


def databricks_payload(
    *, event_type: str, data: dict[str, Any], webhook_id: str, at: datetime, actor: str
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "event": event_type,
        "webhook_id": webhook_id,
        "event_timestamp": int(at.timestamp() * 1000),
    }
    if data.get("model_name"):
        payload["model_name"] = data["model_name"]
    if data.get("version"):
        payload["version"] = data["version"]
    for field in _DATABRICKS_FIELDS.get(event_type, ()):
        if field == "tags":
            payload["tags"] = [{"key": data.get("key", ""), "value": data.get("value", "")}]
        elif field in data:
            payload[field] = data[field]
    payload["text"] = text(event_type, data, actor)
    return payload


def _none_if_empty(value: Any) -> Any:
    return value if value not in ("", None) else None


def mlflow_payload(*, event_type: str, data: dict[str, Any], at: datetime) -> dict[str, Any]:
    entity, action = MLFLOW_PAIRS[event_type]
    name = data.get("model_name", "")
    body: dict[str, Any]
    if event_type == E.REGISTERED_MODEL_CREATED:
        body = {
            "name": name,
            "tags": data.get("tags", {}),
            "description": data.get("description", ""),
        }
    elif event_type == E.MODEL_VERSION_CREATED:
        body = {
            "name": name,
            "version": data.get("version", ""),
            "source": data.get("source", ""),
            "run_id": _none_if_empty(data.get("run_id")),
            "tags": data.get("tags", {}),
            "description": _none_if_empty(data.get("description")),
        }
    elif event_type == E.MODEL_VERSION_TAG_SET:
        body = {"name": name, "version": data.get("version", ""), "key": data["key"]}
        body["value"] = data.get("value", "")
    elif event_type == E.MODEL_VERSION_TAG_DELETED:
        body = {"name": name, "version": data.get("version", ""), "key": data["key"]}
    elif event_type == E.MODEL_VERSION_ALIAS_CREATED:
        body = {"name": name, "alias": data["alias"], "version": data.get("version", "")}
    else:  # MODEL_VERSION_ALIAS_DELETED
        body = {"name": name, "alias": data["alias"]}
    return {
        "entity": entity.lower(),
        "action": action.lower(),
        "timestamp": at.isoformat(),
        "data": body,
    }


def default_payload(
    *,
    flavor: str,
    event_type: str,
    data: dict[str, Any],
    webhook_id: str,
    at: datetime,
    actor: str,
) -> dict[str, Any]:
    if flavor == WebhookFlavor.MLFLOW:
        return mlflow_payload(event_type=event_type, data=data, at=at)
    return databricks_payload(
        event_type=event_type, data=data, webhook_id=webhook_id, at=at, actor=actor
    )


def example_data(event_type: str, model_name: str | None) -> dict[str, Any]:
    """The data of a made-up event of this type, sent by the test endpoints."""
    data: dict[str, Any] = {"model_name": model_name or "example_model"}
    if event_type not in REGISTRY_WIDE_ONLY:
        data["version"] = "1"
    data.update(
        {
            "source": "models:/123",
            "run_id": "abcd1234abcd5678",
            "description": "An example model version",
            "tags": {"example_key": "example_value"},
            "key": "example_key",
            "value": "example_value",
            "alias": "example_alias",
            "from_version": "2",
            "to_version": "1",  # the version the event is about
            "request_id": "00000000-0000-0000-0000-000000000000",
            "from_stage": "Staging",
            "to_stage": "Production",
            "comment": "An example comment",
            "status": "READY",
            "status_message": "",
            "disabled_webhook_id": "00000000000000000000000000000000",
            "consecutive_failures": 10,
            "last_error": "HTTP 500",
        }
    )
    if event_type == E.MODEL_VERSION_REGISTRATION_FAILED:
        data.update(status="FAILED_REGISTRATION", status_message="Copying the artifacts failed.")
    for stage in ("Staging", "Production", "Archived"):
        if event_type.endswith(f"TO_{stage.upper()}") or f"TO_{stage.upper()}_" in event_type:
            data["to_stage"] = stage
    return data


# --- Payload templates ------------------------------------------------------------------------

TEMPLATE_MAX_LENGTH = 65_536
#: Each placeholder may stand for a large field (a description, a tag value, the whole payload),
#: so their number bounds what one event can make a body grow to.
TEMPLATE_MAX_PLACEHOLDERS = 64
#: Deeper documents cannot be parsed and filled without running out of stack.
TEMPLATE_MAX_DEPTH = 32
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")

#: What a template may refer to: the flat event fields plus a few envelope values.
TEMPLATE_FIELDS = frozenset(
    {
        "event",
        "webhook_id",
        "delivery_id",
        "event_timestamp",
        "timestamp",
        "model_name",
        "version",
        "from_stage",
        "to_stage",
        "comment",
        "key",
        "value",
        "alias",
        "from_version",
        "to_version",
        "request_id",
        "source",
        "run_id",
        "description",
        "status",
        "status_message",
        "actor",
        "text",
        "payload",
    }
)


class RenderError(Exception):
    """A body that cannot be built from its event and its hook's settings. The message says
    why, in words fit for the delivery log (it never holds a secret)."""


def validate_template(template: Any, *, max_body_bytes: int) -> str:
    """A payload template: a JSON document whose string values may hold ``${field}``
    placeholders. Refused unless it renders, for an example event, to a JSON body within
    ``max_body_bytes``: what passes here cannot fail later for its shape."""
    if template in (None, ""):
        return ""
    if not isinstance(template, str):
        raise RegistryError.invalid("payload_template must be a string holding a JSON document.")
    if len(template) > TEMPLATE_MAX_LENGTH:
        raise RegistryError.invalid(
            f"payload_template is longer than {TEMPLATE_MAX_LENGTH} characters."
        )
    try:
        document = json.loads(template)
    except RecursionError:
        raise RegistryError.invalid(_too_deep()) from None
    except ValueError as exc:
        raise RegistryError.invalid(f"payload_template is not valid JSON: {exc}") from None
    names = _placeholders(document)
    if len(names) > TEMPLATE_MAX_PLACEHOLDERS:
        raise RegistryError.invalid(
            f"payload_template has {len(names)} placeholders; the limit is "
            f"{TEMPLATE_MAX_PLACEHOLDERS}."
        )
    unknown = sorted(set(names) - TEMPLATE_FIELDS)
    if unknown:
        raise RegistryError.invalid(
            f"payload_template refers to unknown field(s) {', '.join(unknown)}; known: "
            + ", ".join(sorted(TEMPLATE_FIELDS))
        )
    try:
        render_template(template, _example_fields(), max_bytes=max_body_bytes)
    except RenderError as exc:
        raise RegistryError.invalid(f"payload_template cannot be used: {exc}") from None
    return template


def _too_deep() -> str:
    return f"payload_template is nested more than {TEMPLATE_MAX_DEPTH} levels deep."


def _placeholders(document: Any) -> list[str]:
    """Every placeholder of the document, in order (repeats included). Refuses documents too
    deep to fill and placeholders in object keys: a key must be a string, and a placeholder
    standing for an object or a number cannot be one."""
    found: list[str] = []
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:  # iterative: the depth is what is being checked
        node, depth = stack.pop()
        if depth > TEMPLATE_MAX_DEPTH:
            raise RegistryError.invalid(_too_deep())
        if isinstance(node, str):
            found.extend(_PLACEHOLDER.findall(node))
        elif isinstance(node, dict):
            for key, value in node.items():
                if _PLACEHOLDER.search(key):
                    shown = key if len(key) <= 80 else key[:77] + "..."
                    raise RegistryError.invalid(
                        f"payload_template has a placeholder in the object key '{shown}': "
                        "placeholders may stand only in string values, not in an object key."
                    )
                stack.append((value, depth + 1))
        elif isinstance(node, list):
            stack.extend((item, depth + 1) for item in node)
    return found


def _example_fields() -> dict[str, Any]:
    """The fields of a made-up event with every field set, to try a template on."""
    at = datetime(2024, 1, 1, tzinfo=UTC)
    data = example_data(E.MODEL_VERSION_CREATED, None)
    webhook_id = "0" * 32
    payload = databricks_payload(
        event_type=E.MODEL_VERSION_CREATED,
        data=data,
        webhook_id=webhook_id,
        at=at,
        actor="example_user",
    )
    return template_fields(
        event_type=E.MODEL_VERSION_CREATED,
        data=data,
        webhook_id=webhook_id,
        delivery_id="00000000-0000-0000-0000-000000000000",
        at=at,
        actor="example_user",
        payload=payload,
    )


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value)


class _Budget:
    """Counts what the placeholders put into a body, so a template that repeats a large field
    is stopped before the body is built, not after (a JSON body is at least that long)."""

    def __init__(self, fields: dict[str, Any], max_bytes: int) -> None:
        self.fields = fields
        self.max_bytes = max_bytes
        self.used = 0
        self._sizes: dict[str, int] = {}

    def take(self, name: str, *, whole: bool) -> Any:
        value = self.fields.get(name)
        key = f"{name}/{whole}"
        if key not in self._sizes:
            self._sizes[key] = len(json.dumps(value) if whole else _as_text(value))
        self.used += self._sizes[key]
        if self.used > self.max_bytes:
            raise RenderError(too_large(None, self.max_bytes))
        return value


def too_large(size: int | None, max_bytes: int) -> str:
    what = f"{size} bytes" if size is not None else f"more than {max_bytes} bytes"
    return (
        f"the body would be {what}, over WEBHOOKS_MAX_BODY_BYTES ({max_bytes}); shorten the "
        "payload template or the event's fields"
    )


def _fill(node: Any, budget: _Budget) -> Any:
    if isinstance(node, str):
        whole = _PLACEHOLDER.fullmatch(node)
        if whole:  # "${payload}" keeps the value's JSON type
            return budget.take(whole.group(1), whole=True)
        return _PLACEHOLDER.sub(lambda m: _as_text(budget.take(m.group(1), whole=False)), node)
    if isinstance(node, dict):
        filled = {}
        for key, value in node.items():
            if _PLACEHOLDER.search(key):  # refused at save; a template stored before that
                raise RenderError(
                    "the payload template has a placeholder in an object key; placeholders "
                    "may stand only in string values (update the template)"
                )
            filled[key] = _fill(value, budget)
        return filled
    if isinstance(node, list):
        return [_fill(item, budget) for item in node]
    return node


def render_template(template: str, fields: dict[str, Any], *, max_bytes: int) -> str:
    """Fill a template. Substitution happens on the parsed document and the result is
    serialised by ``json.dumps``, so an event field can never break out of its string (quotes,
    backslashes and control characters in a model name are escaped, not interpreted).

    Raises :class:`RenderError` if the body cannot be built or would exceed ``max_bytes``.
    """
    try:
        body = json.dumps(_fill(json.loads(template), _Budget(fields, max_bytes)))
    except RecursionError:
        raise RenderError(
            f"the payload template is nested more than {TEMPLATE_MAX_DEPTH} levels deep "
            "(update the template)"
        ) from None
    except (TypeError, ValueError) as exc:
        raise RenderError(f"the payload template cannot be rendered ({exc})") from None
    return check_size(body, max_bytes)


def check_size(body: str, max_bytes: int) -> str:
    size = len(body.encode("utf-8"))
    if size > max_bytes:
        raise RenderError(too_large(size, max_bytes))
    return body


def template_fields(
    *,
    event_type: str,
    data: dict[str, Any],
    webhook_id: str,
    delivery_id: str,
    at: datetime,
    actor: str,
    payload: dict[str, Any],
) -> dict[str, Any]:
    fields = {name: data.get(name) for name in TEMPLATE_FIELDS if name in data}
    fields.update(
        event=event_type,
        webhook_id=webhook_id,
        delivery_id=delivery_id,
        event_timestamp=int(at.timestamp() * 1000),
        timestamp=at.isoformat(),
        actor=actor,
        text=text(event_type, data, actor),
        payload=payload,
    )
    return fields
