"""The rows of the UI's lists, with what the actor may do with each: the actor's levels and the
policies in force are read once for the page and handed to every row, so a list costs the same
queries however long it is."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from urllib.parse import quote

from accounts import permissions
from accounts.permissions import Level
from registry import selectors
from registry.artifacts import mlmodel
from registry.artifacts.mlmodel import MLmodelPreview
from registry.conf import registry_settings
from registry.models import (
    Activity,
    ActivityType,
    AliasRequest,
    Comment,
    ModelVersionManifest,
    ModelVersionStatus,
    PointerMove,
    Stage,
    StagePolicy,
    TransitionRequest,
    TransitionRequestStatus,
    VersionTagChange,
)
from registry.selectors import aliases as alias_selectors
from registry.selectors import readiness as readiness_selectors
from registry.selectors.readiness import Readiness, TagNeed
from ui.markdown import render_comment

# "Waiting for me" looks at this many open requests at most (oldest first), so the page costs
# a bounded number of queries however many requests are open.
WAITING_SCAN_LIMIT = 200

DECIDE_ACTIONS = {
    "APPROVE_TRANSITION_REQUEST",
    "REJECT_TRANSITION_REQUEST",
    "APPROVE_ALIAS_REQUEST",
    "REJECT_ALIAS_REQUEST",
}


@dataclass(frozen=True)
class RequestRow:
    """A request and what the actor may do with it: a transition request, or, with ``kind``
    "alias", a request to move an alias."""

    request: TransitionRequest | AliasRequest
    actions: list[str]
    kind: str = "stage"
    # Where the request stands against its policy, and what the viewer may do (request cards).
    readiness: Readiness | None = None
    # What the viewer typed in its comment box before a refusal (alias cards; docs/ui.md).
    typed_comment: str = ""


def _waits_for(actor: Any, request: TransitionRequest | AliasRequest, actions: list[str]) -> bool:
    """The actor may approve or reject the request, and has not approved it already (their
    part is done; it waits for others)."""
    return bool(DECIDE_ACTIONS.intersection(actions)) and not permissions.has_approved(
        actor, request
    )


def transition_requests_waiting_for(*, actor: Any, standing: bool = False) -> list[RequestRow]:
    """The open requests, across the models the actor can read, that the actor may approve or
    reject (``request_available_actions``, the rule the API reports) and has not approved
    already, oldest first: transition requests and alias requests. With ``standing``, each
    with its readiness (one more query, for the versions' tags)."""
    if not permissions.is_signed_in(actor):
        return []
    candidates = selectors.transition_requests_open_readable(actor=actor, limit=WAITING_SCAN_LIMIT)
    models = {
        request.model_version.registered_model_id: request.model_version.registered_model
        for request in candidates
    }
    levels = permissions.effective_levels(actor, models)
    policies = selectors.stage_policies_effective_many(registered_models=models.values())
    rows = []
    for request in candidates:
        model_id = request.model_version.registered_model_id
        actions = selectors.request_available_actions(
            actor, request, level=levels[model_id], policy=policies[model_id][request.to_stage]
        )
        if _waits_for(actor, request, actions):
            rows.append(RequestRow(request=request, actions=actions))
    rows += _alias_requests_waiting_for(actor)
    rows.sort(key=lambda row: (row.request.created_at, row.kind, row.request.pk))
    if not standing:
        return rows
    tags = readiness_selectors.version_tags(
        model_versions=[row.request.model_version for row in rows]
    )
    alias_policies = alias_selectors.alias_policies_effective_many(
        pairs=[
            (row.request.registered_model, row.request.alias)
            for row in rows
            if isinstance(row.request, AliasRequest)
        ]
    )
    standing_rows = []
    for row in rows:
        asked = row.request
        present = tags.get(asked.model_version_id, {})
        if isinstance(asked, AliasRequest):
            policy = alias_policies[(asked.registered_model_id, asked.alias)]
            readiness = readiness_selectors.alias_request_readiness(asked, policy, present)
        else:
            stage_policy = policies[asked.model_version.registered_model_id][asked.to_stage]
            readiness = readiness_selectors.transition_request_readiness(
                asked, stage_policy, present
            )
        standing_rows.append(replace(row, readiness=readiness))
    return standing_rows


def _alias_requests_waiting_for(actor: Any) -> list[RequestRow]:
    """The open alias requests the actor may approve or reject, read as the transition requests
    are: the actor's levels, groups and the policies in force once for all of them."""
    candidates = alias_selectors.alias_requests_open_readable(actor=actor, limit=WAITING_SCAN_LIMIT)
    if not candidates:
        return []
    models = {request.registered_model_id: request.registered_model for request in candidates}
    levels = permissions.effective_levels(actor, models)
    groups = permissions.group_names(actor)
    policies = alias_selectors.alias_policies_effective_many(
        pairs=[(request.registered_model, request.alias) for request in candidates]
    )
    rows = []
    for request in candidates:
        actions = alias_selectors.alias_request_available_actions(
            actor,
            request,
            level=levels[request.registered_model_id],
            policy=policies[(request.registered_model_id, request.alias)],
            groups=groups,
        )
        if _waits_for(actor, request, actions):
            rows.append(RequestRow(request=request, actions=actions, kind="alias"))
    return rows


def request_rows(
    *,
    actor: Any,
    requests: list[TransitionRequest],
    level: Level,
    policies: dict[str, StagePolicy],
    present_tags: dict[str, str],
) -> list[RequestRow]:
    """The requests of one version, with ``level`` the actor's on its model, ``policies`` the
    policies in force for its model, by stage, and ``present_tags`` the version's tags: each
    with its readiness, and the actions shown to the actor (Approve only where it would
    succeed: ``readiness.for_viewer``)."""
    rows = []
    for request in requests:
        policy = policies[request.to_stage]
        actions = selectors.request_available_actions(actor, request, level=level, policy=policy)
        readiness = readiness_selectors.for_viewer(
            readiness_selectors.transition_request_readiness(request, policy, present_tags),
            actor=actor,
            request=request,
            policy=policy,
            actions=actions,
            decide_rule=readiness_selectors.stage_decide_rule(request),
        )
        rows.append(RequestRow(request=request, actions=readiness.actions, readiness=readiness))
    return rows


@dataclass(frozen=True)
class TimelineEntry:
    """One line of a version's timeline (docs/ui.md, "Timeline"). ``kind`` is "created",
    "ready", "failed", "activity" (an entry of the trail), "comment" (a comment that still
    exists, with what the viewer may do with it), "alias" (a move of an alias to or from the
    version), "alias_request", "alias_approval" or "alias_closed" (a request to point an alias
    at the version, an approval of it, its closing other than by the move). An approval
    carries its place among the request's approvals (``approval_label``, "Approval 1 of 2"),
    and ``partial`` when the request stayed open after it."""

    kind: str
    at: datetime | None
    activity: Activity | None = None
    comment: dict[str, Any] | None = None
    move: PointerMove | None = None
    tag_change: VersionTagChange | None = None
    alias_request: AliasRequest | None = None
    approval: Any = None
    partial: bool = False
    approval_label: str = ""

    @property
    def css(self) -> str:
        if self.partial:
            return "event-partial_approval"
        if self.activity is not None and self.kind == "activity":
            return f"event-{self.activity.activity_type.lower()}"
        if self.kind == "alias_approval":
            return "event-approved_request"
        if self.kind == "alias_request":
            return "event-requested_transition"
        if self.kind == "alias_closed" and self.alias_request is not None:
            return f"event-{self.alias_request.status.lower()}_request"
        return f"event-{self.kind}"


def _approval_labels(
    activities: list[Activity], policies: dict[str, StagePolicy]
) -> dict[int, tuple[str, bool]]:
    """Each approval's "Approval k of n" and whether it left its request open: the final one
    is the one recorded when the request closed as approved (the service closes it at the
    time of that approval, in the same transaction). One query, for those requests."""
    approvals = [
        (activity, activity.request_id)
        for activity in activities
        if activity.activity_type == ActivityType.APPROVED_REQUEST
        and activity.request_id is not None
    ]
    closed = selectors.transition_requests_closed_as_approved(
        ids={request_id for _activity, request_id in approvals}
    )
    seen: dict[int, int] = {}
    labels = {}
    for activity, request_id in approvals:
        seen[request_id] = seen.get(request_id, 0) + 1
        place = seen[request_id]
        policy = policies.get(activity.to_stage)
        needed = policy.required_approvals if policy is not None else 0
        # The policy in force now; it may have changed since, so a count past it says no "of".
        label = f"Approval {place} of {needed}" if needed >= place else f"Approval {place}"
        partial = closed.get(request_id) != activity.created_at
        labels[activity.pk] = (label, partial)
    return labels


def _alias_request_entries(model_version: Any) -> list[TimelineEntry]:
    """The requests to point an alias at the version: asked, each approval with its place
    under the alias policy in force, and a closing other than the move (the move itself is
    an alias entry). Two queries, and one for the policies when there are requests."""
    requests = alias_selectors.alias_requests_of_version(model_version=model_version)
    registered_model = model_version.registered_model
    policies = alias_selectors.alias_policies_effective_many(
        pairs=[(registered_model, request.alias) for request in requests]
    )
    entries = []
    for request in requests:
        entries.append(
            TimelineEntry(kind="alias_request", at=request.created_at, alias_request=request)
        )
        needed = policies[(registered_model.pk, request.alias)].required_approvals
        approvals = list(request.approvals.all())
        for place, approval in enumerate(approvals, start=1):
            final = request.status == TransitionRequestStatus.APPROVED and place == len(approvals)
            entries.append(
                TimelineEntry(
                    kind="alias_approval",
                    at=approval.created_at,
                    alias_request=request,
                    approval=approval,
                    partial=not final,
                    approval_label=(
                        f"Approval {place} of {needed}" if needed >= place else f"Approval {place}"
                    ),
                )
            )
        if request.status not in (TransitionRequestStatus.OPEN, TransitionRequestStatus.APPROVED):
            entries.append(
                TimelineEntry(
                    kind="alias_closed",
                    at=request.closed_at or request.created_at,
                    alias_request=request,
                )
            )
    return entries


def version_timeline(
    *,
    actor: Any,
    model_version: Any,
    manifest: Any,
    level: Level,
    policies: dict[str, StagePolicy],
    comment_limit: int = 500,
    tag_change_limit: int = 500,
) -> list[TimelineEntry]:
    """The version's one timeline, oldest first: its creation, its readiness or failure, the
    trail (stage moves, requests, each approval with its place, decisions), its comments with
    what the viewer may do with them (in place of the trail's NEW_COMMENT entries, which keep
    only the first text), the moves of aliases to or from it, and the latest changes of its
    tags (docs/decisions/0022-version-tag-history.md). A fixed number of queries,
    however long the timeline (tests/ui/test_query_counts.py)."""
    registered_model = model_version.registered_model
    activities = selectors.model_version_activities(
        actor=actor, name=registered_model.name, version=model_version.version
    )
    comments = selectors.model_version_comments(model_version=model_version, limit=comment_limit)
    moves = alias_selectors.alias_moves_of_version(
        registered_model=registered_model, version=model_version.version
    )
    tag_changes = selectors.model_version_tag_changes(
        registered_model=registered_model, version=model_version.version, limit=tag_change_limit
    )
    labels = _approval_labels(activities, policies)
    # A comment and its NEW_COMMENT entry are written together, with the same instant and
    # author (registry/services/comments.py): that pairs them.
    rows = {
        (comment.created_at, comment.author_username): row
        for comment, row in zip(
            comments, comment_rows(actor=actor, comments=comments, level=level), strict=True
        )
    }
    entries = [TimelineEntry(kind="created", at=model_version.created_at)]
    if model_version.status == ModelVersionStatus.READY:
        entries.append(
            TimelineEntry(kind="ready", at=manifest.created_at if manifest is not None else None)
        )
    elif model_version.status == ModelVersionStatus.FAILED_REGISTRATION:
        entries.append(TimelineEntry(kind="failed", at=None))
    for activity in activities:
        if activity.activity_type == ActivityType.NEW_COMMENT:
            row = rows.pop((activity.created_at, activity.actor_username), None)
            if row is not None:
                entries.append(TimelineEntry(kind="comment", at=activity.created_at, comment=row))
                continue
        label, partial = labels.get(activity.pk, ("", False))
        entries.append(
            TimelineEntry(
                kind="activity",
                at=activity.created_at,
                activity=activity,
                partial=partial,
                approval_label=label,
            )
        )
    # Comments with no trail entry of their own (none are written so; kept rather than lost).
    entries += [
        TimelineEntry(kind="comment", at=row["comment"].created_at, comment=row)
        for row in rows.values()
    ]
    entries += [TimelineEntry(kind="alias", at=move.created_at, move=move) for move in moves]
    entries += _alias_request_entries(model_version)
    entries += [
        TimelineEntry(kind="tag", at=change.created_at, tag_change=change) for change in tag_changes
    ]

    # Readiness without a time of its own (no manifest) stays just after the creation; a move
    # made by an approval is written at the approval's instant, and follows it.
    def place(entry: TimelineEntry) -> tuple[Any, int]:
        if entry.kind == "created" or entry.at is None:
            return model_version.created_at, 0 if entry.kind == "created" else 1
        return entry.at, 3 if entry.kind == "alias" else 2

    return sorted(entries, key=place)


def comment_rows(*, actor: Any, comments: list[Comment], level: Level) -> list[dict[str, Any]]:
    """The comments of one version, with ``level`` the actor's on its model, each with its text
    as safe HTML (links made clickable: ui/markdown.py)."""
    return [
        {
            "comment": comment,
            "html": render_comment(comment.text),
            "actions": selectors.comment_available_actions(actor, comment, level=level),
        }
        for comment in comments
    ]


# --- The version page's summary, its MLmodel preview and the comparison of two versions --------
# (docs/ui.md, "Version page" and "Comparing versions"; docs/decisions/0020-mlmodel-preview.md)


@dataclass(frozen=True)
class GateTags:
    """The tags the policy of ``stage`` requires on a version before it moves there, each with
    the value the version has now (``TagNeed.now``, None: no such tag)."""

    stage: str
    tags: list[TagNeed]

    @property
    def met(self) -> bool:
        return all(need.met for need in self.tags)


def gate_tag_needs(
    *, policies: dict[str, StagePolicy], present_tags: dict[str, str]
) -> list[GateTags]:
    """For each stage whose policy in force requires tags, those tags against the version's
    (the terms ``readiness.transition_request_readiness`` reads; no query)."""
    return [
        GateTags(
            stage=stage,
            tags=[
                TagNeed(key=key, value=value, now=present_tags.get(key))
                for key, value in sorted(policies[stage].required_version_tags.items())
            ],
        )
        for stage in Stage.values
        if stage in policies and policies[stage].required_version_tags
    ]


def tracking_run_url(run_id: str) -> str:
    """The run's page on the MLflow tracking server's UI (``REGISTRY_TRACKING_UI_URL``), or ""
    when none is configured. MLflow's UI resolves ``#/runs/<run id>`` to the run's page in its
    experiment (tests/ui/test_browser_version_page.py opens it on a real server)."""
    base = registry_settings().tracking_ui_url
    if not base or not run_id:
        return ""
    return f"{base}/#/runs/{quote(run_id, safe='')}"


def mlmodel_preview(manifest: ModelVersionManifest | None) -> MLmodelPreview | None:
    """The preview of the ``MLmodel`` captured with the version's copy (None when none was)."""
    if manifest is None or not manifest.mlmodel_captured or not manifest.mlmodel_text:
        return None
    return mlmodel.parse(manifest.mlmodel_text, manifest.mlmodel_truncated)


def mlmodel_absence(model_version: Any, manifest: ModelVersionManifest | None) -> str:
    """Why the version has no ``MLmodel`` preview, in a sentence ("" when it has one)."""
    if model_version.is_reference:
        return (
            "The registry keeps no copy of this version's files, so it has not read its "
            "MLmodel file: open it at the source."
        )
    if model_version.status == ModelVersionStatus.PENDING_REGISTRATION:
        return "The preview appears once the registry has copied and verified the files."
    if model_version.status == ModelVersionStatus.FAILED_REGISTRATION or manifest is None:
        return "The files were not copied, so there is no MLmodel file to show."
    if not manifest.mlmodel_captured:
        return (
            "This version was copied before the registry kept a preview of the MLmodel file; "
            "download the file below to read it."
        )
    if not manifest.mlmodel_text:
        return "The version's files have no MLmodel file at their top level (or an empty one)."
    return ""


@dataclass(frozen=True)
class ComparedRow:
    """One line of a comparison: a label and each version's value, and whether they differ."""

    label: str
    a: str
    b: str
    # Shown as code (an address, an id, a digest).
    code: bool = False

    @property
    def differs(self) -> bool:
        return self.a != self.b


def _schema_rows(a: list[mlmodel.SchemaField], b: list[mlmodel.SchemaField]) -> list[ComparedRow]:
    """The fields of one part of two signatures side by side, by name (``a``'s order, then
    those only ``b`` has)."""

    def shown(row: mlmodel.SchemaField | None) -> str:
        if row is None:
            return "—"
        extra = [] if row.required else ["optional"]
        if row.default:
            extra.append(f"default {row.default}")
        return row.type + (f" ({', '.join(extra)})" if extra else "")

    by_name_a = {row.name: row for row in a}
    by_name_b = {row.name: row for row in b}
    names = list(by_name_a) + [name for name in by_name_b if name not in by_name_a]
    return [
        ComparedRow(label=name, a=shown(by_name_a.get(name)), b=shown(by_name_b.get(name)))
        for name in names
    ]


def version_comparison(a: Any, b: Any) -> dict[str, Any]:
    """Two versions (from ``selectors.model_version_pair``) side by side: their metadata, tags,
    files digest and signature schema, each line marked where they differ. No query."""

    def creator(model_version: Any) -> str:
        user = model_version.created_by
        return (user.get_username() if user else "") or model_version.created_by_name or "—"

    def files(model_version: Any) -> str:
        if model_version.is_reference:
            return "not copied (reference)"
        return {
            ModelVersionStatus.READY: "copied",
            ModelVersionStatus.PENDING_REGISTRATION: "being copied",
        }.get(model_version.status, "copy failed")

    def aliases(model_version: Any) -> str:
        return ", ".join(f"@{alias.alias}" for alias in model_version.alias_list) or "—"

    metadata = [
        ComparedRow(
            "Created",
            a.created_at.strftime("%Y-%m-%d %H:%M"),
            b.created_at.strftime("%Y-%m-%d %H:%M"),
        ),
        ComparedRow("Created by", creator(a), creator(b)),
        ComparedRow("Source", a.source, b.source, code=True),
        ComparedRow("Run", a.run_id or "—", b.run_id or "—", code=True),
        ComparedRow("Status", a.get_status_display(), b.get_status_display()),
        ComparedRow("Stage", a.current_stage, b.current_stage),
        ComparedRow("Aliases", aliases(a), aliases(b)),
        ComparedRow("Files", files(a), files(b)),
    ]
    tags_a = {tag.key: tag.value for tag in a.tag_list}
    tags_b = {tag.key: tag.value for tag in b.tag_list}
    tags = [
        ComparedRow(
            key,
            tags_a[key] if key in tags_a else "—",
            tags_b[key] if key in tags_b else "—",
        )
        for key in sorted(tags_a.keys() | tags_b.keys())
    ]
    previews = [mlmodel_preview(version.manifest_or_none) for version in (a, b)]
    schema = []
    parts = (("Inputs", "inputs"), ("Outputs", "outputs"), ("Parameters", "params"))
    for label, attribute in parts:
        rows = _schema_rows(
            *(getattr(preview, attribute) if preview is not None else [] for preview in previews)
        )
        if rows:
            schema.append({"label": label, "rows": rows})
    return {
        "metadata": metadata,
        "tags": tags,
        "digest": ComparedRow(
            "Files digest", a.artifact_digest or "—", b.artifact_digest or "—", code=True
        ),
        "schema": schema,
        "previews": previews,
        "absences": [
            mlmodel_absence(version, version.manifest_or_none) if preview is None else ""
            for version, preview in zip((a, b), previews, strict=True)
        ],
    }


# How many of a model's latest alias moves its page shows.
ALIAS_HISTORY_ON_PAGE = 20


@dataclass(frozen=True)
class AliasRow:
    """An alias on the model page: the version it names (with its stage), whether a policy
    protects it, and whether the actor may move it directly (else they ask)."""

    alias: str
    model_version: Any
    protected: bool
    may_move: bool

    @property
    def names_archived(self) -> bool:
        return bool(self.model_version.current_stage == "Archived")


def alias_panel(*, actor: Any, registered_model: Any, level: Level) -> dict[str, Any]:
    """The model page's aliases, their open requests (with what the actor may do) and their
    latest moves, read with a fixed number of queries whatever their number."""
    aliases = alias_selectors.aliases_with_versions(registered_model=registered_model)
    requests = alias_selectors.alias_requests_open_of(registered_model=registered_model)
    names = {row.alias for row in aliases} | {request.alias for request in requests}
    policies = alias_selectors.alias_policies_effective_many(
        pairs=[(registered_model, name) for name in names]
    )
    groups = permissions.group_names(actor)
    rows = []
    for row in aliases:
        policy = policies[(registered_model.pk, row.alias)]
        rows.append(
            AliasRow(
                alias=row.alias,
                model_version=row.model_version,
                protected=any(part.protected for part in permissions.alias_policy_parts(policy)),
                may_move=permissions.may_move_alias_directly(actor, policy, level, groups),
            )
        )
    present = readiness_selectors.version_tags(
        model_versions=[request.model_version for request in requests]
    )
    request_rows = []
    for request in requests:
        policy = policies[(registered_model.pk, request.alias)]
        actions = alias_selectors.alias_request_available_actions(
            actor, request, level=level, policy=policy, groups=groups
        )
        readiness = readiness_selectors.for_viewer(
            readiness_selectors.alias_request_readiness(
                request, policy, present.get(request.model_version_id, {})
            ),
            actor=actor,
            request=request,
            policy=policy,
            actions=actions,
            decide_rule=readiness_selectors.alias_decide_rule(),
        )
        request_rows.append(
            RequestRow(
                request=request, actions=readiness.actions, kind="alias", readiness=readiness
            )
        )
    return {
        "alias_rows": rows,
        "alias_request_rows": request_rows,
        "alias_history": alias_selectors.alias_history_recent(
            registered_model=registered_model, limit=ALIAS_HISTORY_ON_PAGE
        ),
        "archived_aliases": [row.alias for row in rows if row.names_archived],
    }


# "My requests" shows at most this many of the user's requests of each kind (newest first).
MY_REQUESTS_LIMIT = 200


@dataclass(frozen=True)
class MyRequestRow:
    """A request the user made, with its standing if it is open (``readiness``: the approvals
    that count of those required, what the move still needs)."""

    request: TransitionRequest | AliasRequest
    kind: str
    readiness: Readiness | None


def requests_of(*, actor: Any) -> list[MyRequestRow]:
    """The transition and alias requests the actor made, newest first; the open ones with
    their readiness under the policies in force, read together for all of them."""
    stage_requests = selectors.transition_requests_by(actor=actor, limit=MY_REQUESTS_LIMIT)
    alias_requests = alias_selectors.alias_requests_by(actor=actor, limit=MY_REQUESTS_LIMIT)
    open_stage = [r for r in stage_requests if r.status == TransitionRequestStatus.OPEN]
    open_alias = [r for r in alias_requests if r.status == TransitionRequestStatus.OPEN]
    tags = readiness_selectors.version_tags(
        model_versions=[r.model_version for r in open_stage] + [r.model_version for r in open_alias]
    )
    stage_policies = selectors.stage_policies_effective_many(
        registered_models={
            r.model_version.registered_model_id: r.model_version.registered_model
            for r in open_stage
        }.values()
    )
    alias_policies = alias_selectors.alias_policies_effective_many(
        pairs=[(r.registered_model, r.alias) for r in open_alias]
    )
    rows = [
        MyRequestRow(
            request=request,
            kind="stage",
            readiness=readiness_selectors.transition_request_readiness(
                request,
                stage_policies[request.model_version.registered_model_id][request.to_stage],
                tags.get(request.model_version_id, {}),
            )
            if request.status == TransitionRequestStatus.OPEN
            else None,
        )
        for request in stage_requests
    ]
    rows += [
        MyRequestRow(
            request=request,
            kind="alias",
            readiness=readiness_selectors.alias_request_readiness(
                request,
                alias_policies[(request.registered_model_id, request.alias)],
                tags.get(request.model_version_id, {}),
            )
            if request.status == TransitionRequestStatus.OPEN
            else None,
        )
        for request in alias_requests
    ]
    return sorted(rows, key=lambda row: (row.request.created_at, row.request.pk), reverse=True)


@dataclass(frozen=True)
class AttemptRun:
    """Tries of one delivery in a row that ended alike (same outcome, HTTP status and error),
    shown as one line of the delivery log: "Tries 2–6", the error once."""

    attempts: list[Any]

    @property
    def first(self) -> Any:
        return self.attempts[0]

    @property
    def last(self) -> Any:
        return self.attempts[-1]

    @property
    def count(self) -> int:
        return len(self.attempts)


@dataclass(frozen=True)
class DeliveryRow:
    """A delivery of the log with its tries in runs; ``same_error_as_above`` when its last
    error is the one of the delivery shown just before (the log then says so, not the error)."""

    delivery: Any
    runs: list[AttemptRun]
    same_error_as_above: bool


def _runs(attempts: list[Any]) -> list[AttemptRun]:
    runs: list[list[Any]] = []
    for attempt in attempts:
        key = (attempt.outcome, attempt.response_status, attempt.error)
        previous = runs[-1][-1] if runs else None
        if (
            previous is not None
            and (
                previous.outcome,
                previous.response_status,
                previous.error,
            )
            == key
        ):
            runs[-1].append(attempt)
        else:
            runs.append([attempt])
    return [AttemptRun(attempts=run) for run in runs]


def delivery_rows(deliveries: list[Any]) -> list[DeliveryRow]:
    """The delivery log with repeated errors collapsed (docs/ui.md, "Webhooks"): the tries of
    prefetched ``attempts``, no query of their own."""
    rows = []
    previous_error = None
    for delivery in deliveries:
        rows.append(
            DeliveryRow(
                delivery=delivery,
                runs=_runs(list(delivery.attempts.all())),
                same_error_as_above=bool(delivery.last_error)
                and delivery.last_error == previous_error,
            )
        )
        previous_error = delivery.last_error
    return rows
