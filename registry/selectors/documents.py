"""The hot reads of the protocol, each in one SQL statement that returns the response's JSON
(docs/decisions/0019-hot-reads-in-one-statement.md).

Get model version, get by alias, get latest versions and get registered model read the model,
the caller's grants on it, the version(s), their tags and aliases with one statement whose
result is the protocol's object, built by the database (``json_build_object``/``json_agg`` on
PostgreSQL, ``json_object``/``json_group_array`` on SQLite, the embedded default): the
vendor is chosen in :class:`_Dialect` alone. A call signed with an API token
(``accounts.authentication.folded_token``) has the token checked in the same statement, by
the rules of ``accounts.services.api_token_folded_accept``.

The searches keep their ORM queryset (filters, ordering, page tokens: ``registry/search``,
``kernel/paging``) and add the same JSON as one annotation of each row, so a page is one
statement too.

What is revealed follows the ORM selectors (``registry/selectors/versions.py``): a missing model
is 404, a model the caller may not read is 403 whether or not the version exists, then the
version's own 404. The JSON is what the output serializers of ``registry/apis.py`` render
(``tests/registry/apis/test_documents.py`` compares them).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from django.db import connection
from django.db.models.expressions import RawSQL
from django.utils import timezone

from accounts import permissions
from accounts import services as accounts_services
from accounts.models import ApiToken, PermissionLevel, RegisteredModelGrant, User
from accounts.permissions import Level
from accounts.services import Caller
from kernel.errors import RegistryError
from registry import validation
from registry.errors import model_version_not_found, registered_model_not_found
from registry.models import (
    ModelVersion,
    ModelVersionTag,
    RegisteredModel,
    RegisteredModelAlias,
    RegisteredModelTag,
    Stage,
)

# --- The vendor switch --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Dialect:
    """The few SQL spellings that differ between PostgreSQL and SQLite."""

    postgresql: bool

    def obj(self, *pairs: tuple[str, str]) -> str:
        """A JSON object of ``(key, SQL expression)`` pairs, keys in this order."""
        function = "json_build_object" if self.postgresql else "json_object"
        arguments = ", ".join(f"'{key}', {value}" for key, value in pairs)
        return f"{function}({arguments})"

    def array(self, element: str, source: str, order: str, *, objects: bool = True) -> str:
        """A JSON array (``[]`` when empty) of ``element`` over ``source`` (``FROM ... WHERE``),
        in ``order``, usable as a value of :meth:`obj`."""
        if self.postgresql:
            return f"COALESCE((SELECT json_agg({element} ORDER BY {order}) {source}), '[]'::json)"
        # SQLite before 3.44 has no ORDER BY inside an aggregate: the ordered rows come from a
        # subquery. A JSON value loses its JSON-ness through a subquery: json() restores it.
        item = "json(x)" if objects else "x"
        return (
            f"json((SELECT json_group_array({item}) FROM "
            f"(SELECT {element} AS x {source} ORDER BY {order})))"
        )

    def millis(self, column: str) -> str:
        """A timestamp as whole milliseconds since the epoch (what ``kernel.api.milliseconds``
        gives: truncated, exactly)."""
        if self.postgresql:
            return f"floor(extract(epoch from {column}) * 1000)::bigint"
        # Stored as text 'YYYY-MM-DD HH:MM:SS[.ffffff]' in UTC. '%%' is a literal '%' in a
        # statement with parameters (every one here has some).
        return (
            f"(CAST(strftime('%%s', {column}) AS INTEGER) * 1000 "
            f"+ CAST(substr({column} || '.000', 21, 3) AS INTEGER))"
        )

    def text(self, column: str) -> str:
        return f"{column}::text" if self.postgresql else f"CAST({column} AS TEXT)"

    def hex(self, column: str) -> str:
        """A UUID column as 32 hex digits (SQLite stores it so)."""
        return f"replace({column}::text, '-', '')" if self.postgresql else column


@cache
def _dialect(vendor: str) -> _Dialect:
    return _Dialect(postgresql=vendor == "postgresql")


def _tables() -> dict[str, str]:
    return {
        "model": RegisteredModel._meta.db_table,
        "version": ModelVersion._meta.db_table,
        "version_tag": ModelVersionTag._meta.db_table,
        "model_tag": RegisteredModelTag._meta.db_table,
        "alias": RegisteredModelAlias._meta.db_table,
        "grant": RegisteredModelGrant._meta.db_table,
        "token": ApiToken._meta.db_table,
        "user": User._meta.db_table,
        "user_groups": User.groups.through._meta.db_table,
    }


def _load(value: Any) -> Any:
    """psycopg parses ``json`` columns; SQLite returns the text."""
    return json.loads(value) if isinstance(value, str) else value


# --- The JSON of versions and models ---------------------------------------------------------


def _version_tags(d: _Dialect, t: dict[str, str], version: str) -> str:
    return d.array(
        d.obj(("key", "vt.key"), ("value", "vt.value")),
        f"FROM {t['version_tag']} vt WHERE vt.model_version_id = {version}.id",
        "vt.id",
    )


def _version_json(d: _Dialect, t: dict[str, str], v: str, model_name: str, *, aliases: bool) -> str:
    """A version as ``ModelVersionSerializer`` (``aliases``) or ``ModelVersionSummarySerializer``
    renders it; ``v`` is the version's table alias, ``model_name`` its model's name."""
    pairs = [
        ("name", model_name),
        ("version", d.text(f"{v}.version")),
        ("creation_timestamp", d.millis(f"{v}.created_at")),
        ("last_updated_timestamp", d.millis(f"{v}.updated_at")),
        ("current_stage", f"{v}.current_stage"),
        ("description", f"{v}.description"),
        ("source", f"{v}.source"),
        ("run_id", f"{v}.run_id"),
        ("run_link", f"{v}.run_link"),
        ("status", f"{v}.status"),
        ("status_message", f"{v}.status_message"),
        ("tags", _version_tags(d, t, v)),
        ("model_id", f"{v}.model_id"),
        ("artifact_digest", f"{v}.artifact_digest"),
    ]
    if aliases:
        pairs.append(
            (
                "aliases",
                d.array(
                    "va.alias",
                    f"FROM {t['alias']} va WHERE va.model_version_id = {v}.id",
                    "va.alias",
                    objects=False,
                ),
            )
        )
    return d.obj(*pairs)


def _latest_versions(d: _Dialect, t: dict[str, str], m: str, stages: str, *, aliases: bool) -> str:
    """The highest version of model ``m`` in each of ``stages`` (SQL), by version."""
    return d.array(
        _version_json(d, t, "lv", f"{m}.name", aliases=aliases),
        f"FROM {t['version']} lv WHERE lv.registered_model_id = {m}.id "
        f"AND lv.current_stage IN ({stages}) AND lv.version = ("
        f"SELECT MAX(hv.version) FROM {t['version']} hv "
        f"WHERE hv.registered_model_id = {m}.id AND hv.current_stage = lv.current_stage)",
        "lv.version",
    )


def _model_json(d: _Dialect, t: dict[str, str], m: str, *, databricks: bool = False) -> str:
    """A registered model as ``RegisteredModelSerializer`` renders it (with the Databricks
    variant's ``id`` and ``user_id``; its ``permission_level`` is the caller's, added after)."""
    stages = ", ".join(f"'{stage}'" for stage in Stage.values)
    pairs = [
        ("name", f"{m}.name"),
        ("creation_timestamp", d.millis(f"{m}.created_at")),
        ("last_updated_timestamp", d.millis(f"{m}.updated_at")),
        ("description", f"{m}.description"),
        ("latest_versions", _latest_versions(d, t, m, stages, aliases=False)),
        (
            "tags",
            d.array(
                d.obj(("key", "mt.key"), ("value", "mt.value")),
                f"FROM {t['model_tag']} mt WHERE mt.registered_model_id = {m}.id",
                "mt.id",
            ),
        ),
        (
            "aliases",
            d.array(
                d.obj(("alias", "ma.alias"), ("version", d.text("mav.version"))),
                f"FROM {t['alias']} ma JOIN {t['version']} mav ON mav.id = ma.model_version_id "
                f"WHERE ma.registered_model_id = {m}.id",
                "ma.alias",
            ),
        ),
    ]
    if databricks:
        pairs += [
            ("id", d.hex(f"{m}.code")),
            (
                "user_id",
                f"COALESCE((SELECT cu.username FROM {t['user']} cu "
                f"WHERE cu.id = {m}.created_by_id), {m}.created_by_name)",
            ),
        ]
    return d.obj(*pairs)


# --- The caller -------------------------------------------------------------------------------

_RANKS = " ".join(
    f"WHEN '{level.value}' THEN {Level.of(level.value).value}" for level in PermissionLevel
)


def _grant_level(t: dict[str, str], m: str, user: str) -> str:
    """The highest grant of ``user`` (SQL) and their groups on model ``m``, as a
    :class:`Level` number (NULL: none)."""
    return (
        f"(SELECT MAX(CASE g.level {_RANKS} ELSE 0 END) FROM {t['grant']} g "
        f"WHERE g.registered_model_id = {m}.id AND (g.user_id = {user} OR g.group_id IN "
        f"(SELECT ug.group_id FROM {t['user_groups']} ug WHERE ug.user_id = {user})))"
    )


@dataclass(frozen=True)
class Answer:
    """A read's response ``body``, and who the statement found asking: the signed-in ``user``
    and, for a folded token, the ``token`` (what DRF would set as ``request.auth``)."""

    body: dict[str, Any]
    user: Any
    token: ApiToken | None = None
    error: RegistryError | None = None


class TokenRefused(Exception):
    """The token did not sign the call in: the view authenticates the usual way (which gives
    the usual refusal, or for HTTP Basic tries the secret as a password) and asks again."""


def _auth_join(d: _Dialect, t: dict[str, str], caller: Caller) -> tuple[str, list[Any]]:
    """The ``auth`` row the rest of the statement reads ``auth.user_id`` from: the token's
    (with its checks) for a token, else the signed-in user's id."""
    if caller.token_digest is None:
        return "LEFT JOIN (SELECT %s AS user_id) AS auth ON TRUE", [caller.user.pk]
    now = timezone.now()
    adapt = connection.ops.adapt_datetimefield_value
    return (
        f"LEFT JOIN (SELECT tk.id AS token_id, tu.id AS user_id, tu.username, tu.is_active, "
        f"tu.is_superuser, tu.is_staff, "
        f"(tk.revoked_at IS NULL AND (tk.expires_at IS NULL OR tk.expires_at > %s)) AS token_ok, "
        f"(tk.last_used_at IS NULL OR tk.last_used_at < %s) AS token_stale "
        f"FROM {t['token']} tk JOIN {t['user']} tu ON tu.id = tk.user_id "
        f"WHERE tk.digest = %s) AS auth ON TRUE",
        [adapt(now), adapt(now - accounts_services.LAST_USED_RESOLUTION), caller.token_digest],
    )


_AUTH_COLUMNS = [
    "token_id",
    "username",
    "is_active",
    "is_superuser",
    "is_staff",
    "token_ok",
    "token_stale",
]


def _read(
    caller: Caller,
    columns: list[str],
    joins: str,
    params: list[Any],
) -> tuple[Any, ApiToken | None, dict[str, Any]]:
    """One statement: ``SELECT columns FROM auth joins``; ``columns`` may read ``auth.user_id``
    (the caller's user), ``joins`` are ``LEFT JOIN``s, ``params`` theirs. Returns the actor
    (for a token, the user the statement found, once ``accounts.services`` accepted the token)
    and the token, and the row as a dict."""
    d = _dialect(connection.vendor)
    t = _tables()
    auth_sql, auth_params = _auth_join(d, t, caller)
    selected = list(columns)
    if caller.token_digest is not None:
        selected += ["auth.user_id"] + [f"auth.{column}" for column in _AUTH_COLUMNS]
    sql = f"SELECT {', '.join(selected)} FROM (SELECT 1 AS one) AS one {auth_sql} {joins}"
    with connection.cursor() as cursor:
        cursor.execute(sql, [*auth_params, *params])
        names = [column[0] for column in cursor.description]
        found = cursor.fetchone()
    row = dict(zip(names, found, strict=True))
    if caller.token_digest is None:
        return caller.user, None, row
    accepted = accounts_services.api_token_folded_accept(caller, row)
    if accepted is None:
        raise TokenRefused
    return accepted[0], accepted[1], row


def _needs_grants(caller: Caller) -> bool:
    """Whether the caller's grants can change a read's answer: not when the registry default
    already gives CAN_READ (``permissions.require_level``), nor for an admin."""
    if permissions.default_level() >= Level.CAN_READ:
        return False
    return caller.user is None or not permissions.is_admin(caller.user)


def _require_readable(actor: Any, name: str, grant_level: Any) -> None:
    held = None
    if not permissions.is_admin(actor):
        held = max(permissions.default_level(), Level(grant_level or 0))
    permissions.require_held(actor, name, held, Level.CAN_READ, action="read")


# --- The reads --------------------------------------------------------------------------------


def _answer(actor: Any, token: ApiToken | None, body: Callable[[], dict[str, Any]]) -> Answer:
    """The answer once the statement ran: ``body()``, or the refusal it raises (404, 403, 400),
    given with who asked either way."""
    try:
        return Answer(body(), actor, token)
    except RegistryError as exc:
        return Answer({}, actor, token, error=exc)


def _model_read(
    caller: Caller, name: str, columns: list[str], joins: str, params: list[Any], *, grants: bool
) -> tuple[Any, ApiToken | None, dict[str, Any]]:
    """``_read`` of the model called ``name`` (``m``), the caller's grants on it when they can
    change the answer (or ``grants``), and ``columns`` over ``joins``."""
    t = _tables()
    columns = ["m.id AS model_pk", *columns]
    if grants or _needs_grants(caller):
        columns.append(f"{_grant_level(t, 'm', 'auth.user_id')} AS grant_level")
    return _read(
        caller, columns, f"LEFT JOIN {t['model']} m ON m.name = %s {joins}", [name, *params]
    )


def _readable(actor: Any, name: str, row: dict[str, Any]) -> None:
    """404 for a missing model, then 403 unless the actor may read it."""
    if row["model_pk"] is None:
        raise registered_model_not_found(name)
    _require_readable(actor, name, row.get("grant_level"))


def _version_columns() -> list[str]:
    d = _dialect(connection.vendor)
    return [
        "v.id AS version_pk",
        f"{_version_json(d, _tables(), 'v', 'm.name', aliases=True)} AS doc",
    ]


def model_version_document(*, caller: Caller, name: Any, version: Any) -> Answer:
    """``{"model_version": ...}`` of get model version."""
    name = validation.require_string(name, "name")
    number = validation.version_number(version)
    t = _tables()
    actor, token, row = _model_read(
        caller,
        name,
        _version_columns(),
        f"LEFT JOIN {t['version']} v ON v.registered_model_id = m.id AND v.version = %s",
        [number],
        grants=False,
    )

    def body() -> dict[str, Any]:
        _readable(actor, name, row)
        if row["version_pk"] is None:
            raise model_version_not_found(name, number)
        return {"model_version": _load(row["doc"])}

    return _answer(actor, token, body)


def model_version_by_alias_document(*, caller: Caller, name: Any, alias: Any) -> Answer:
    """``{"model_version": ...}`` of get by alias; ``latest`` (any case) is the highest version."""
    name = validation.require_string(name, "name")
    alias = validation.alias_name(alias, for_set=False)
    t = _tables()
    is_latest = alias.lower() == "latest"
    if is_latest:
        join = (
            f"LEFT JOIN {t['version']} v ON v.id = (SELECT hv.id FROM {t['version']} hv "
            f"WHERE hv.registered_model_id = m.id ORDER BY hv.version DESC LIMIT 1)"
        )
        params: list[Any] = []
    else:
        # By the alias's unique (model, alias) key: one index probe.
        join = (
            f"LEFT JOIN {t['alias']} al ON al.registered_model_id = m.id AND al.alias = %s "
            f"LEFT JOIN {t['version']} v ON v.id = al.model_version_id"
        )
        params = [alias]
    actor, token, row = _model_read(caller, name, _version_columns(), join, params, grants=False)

    def body() -> dict[str, Any]:
        _readable(actor, name, row)
        if row["version_pk"] is None:
            if is_latest:
                raise RegistryError.invalid(f"Registered model '{name}' has no versions.")
            # The reference server answers 400 here, not 404; clients match on the message.
            raise RegistryError.invalid(f"Registered model alias {alias} not found.")
        return {"model_version": _load(row["doc"])}

    return _answer(actor, token, body)


def latest_versions_document(*, caller: Caller, name: Any, stages: Any = None) -> Answer:
    """``{"model_versions": [...]}`` of get latest versions: the highest version in each
    requested stage (all four when none is given), by version."""
    name = validation.require_string(name, "name")
    wanted = validation.stages(stages) or list(Stage)
    d = _dialect(connection.vendor)
    # Validated stage values (members of Stage), not the caller's text.
    literal = ", ".join(f"'{Stage(stage).value}'" for stage in wanted)
    columns = [f"{_latest_versions(d, _tables(), 'm', literal, aliases=True)} AS doc"]
    actor, token, row = _model_read(caller, name, columns, "", [], grants=False)

    def body() -> dict[str, Any]:
        _readable(actor, name, row)
        return {"model_versions": _load(row["doc"])}

    return _answer(actor, token, body)


def registered_model_document(*, caller: Caller, name: Any, databricks: bool = False) -> Answer:
    """``{"registered_model": ...}`` of get registered model, or with ``databricks``
    ``{"registered_model_databricks": ...}`` (adds ``id``, ``user_id`` and the caller's
    ``permission_level``)."""
    name = validation.require_string(name, "name")
    d = _dialect(connection.vendor)
    columns = [f"{_model_json(d, _tables(), 'm', databricks=databricks)} AS doc"]
    actor, token, row = _model_read(caller, name, columns, "", [], grants=databricks)

    def body() -> dict[str, Any]:
        _readable(actor, name, row)
        document = _load(row["doc"])
        if not databricks:
            return {"registered_model": document}
        level = (
            Level.CAN_MANAGE
            if permissions.is_admin(actor)
            else max(permissions.default_level(), Level(row["grant_level"] or 0))
        )
        document["permission_level"] = level.name
        return {"registered_model_databricks": document}

    return _answer(actor, token, body)


# --- Searches ---------------------------------------------------------------------------------


def model_version_json_annotation() -> RawSQL:
    """The JSON of each version of a ``model_version_queryset()`` (versions joined to their
    model), as one annotation."""
    d = _dialect(connection.vendor)
    t = _tables()
    return RawSQL(_version_json(d, t, t["version"], f"{t['model']}.name", aliases=True), [])


def registered_model_json_annotation() -> RawSQL:
    """The JSON of each model of a ``registered_model_queryset()``, as one annotation."""
    d = _dialect(connection.vendor)
    t = _tables()
    return RawSQL(_model_json(d, t, t["model"]), [])


def documents(rows: list[Any]) -> list[dict[str, Any]]:
    """The ``document`` annotation of each row of a search page."""
    return [_load(row.document) for row in rows]
