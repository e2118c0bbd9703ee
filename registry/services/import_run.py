"""One import run (docs/migrating.md): read the source's models, and for each, in a pool of
``concurrency`` threads, import the model, then its versions lowest first, then its aliases
(``registry.services.importing``, one transaction each). Reports progress to a
:class:`Progress` and returns the report."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from celery import current_app
from django.db import connections, transaction
from django.utils import timezone

from accounts import permissions
from kernel.errors import RegistryError
from kernel.queueing import enqueue_on_commit
from registry import validation
from registry.importing.source import (
    RegistrySource,
    SourceReadError,
    credentials,
)
from registry.models import ImportRun, ImportRunStatus, ModelVersion, ModelVersionStatus
from registry.services.importing import (
    NOT_IMPORTED,
    SKIPPED_FILES_MESSAGE,
    ArtifactMode,
    Outcome,
    import_aliases,
    import_model,
    import_run_record,
    import_version,
    reserve_version_numbers,
)

PROMPT_TAG = "mlflow.prompt.is_prompt"


_PLURAL = {
    "model": "models",
    "version": "versions",
    "aliases": "aliases",
    "reserve": "reserved_numbers",
    "copy": "copies",
}


def count_key(outcome: Outcome) -> str:
    """The outcome's key in the counts: ``versions_imported``, ``models_conflict``, ..."""
    return f"{_PLURAL[outcome.kind]}_{outcome.result}"


class Progress:
    """What a run tells as it goes; the command's tqdm bars or log lines implement it."""

    def models_found(self, count: int) -> None:
        pass

    def versions_found(self, count: int) -> None:
        pass

    def done(self, outcome: Outcome) -> None:
        pass

    def copies_found(self, count: int) -> None:
        pass

    def copied_bytes(self, count: int) -> None:
        pass

    def close(self) -> None:
        pass


@dataclass
class ImportReport:
    source: str
    dry_run: bool
    options: dict[str, Any]
    outcomes: list[Outcome] = field(default_factory=list)
    started: float = field(default_factory=time.monotonic)
    seconds: float = 0.0

    def counts(self) -> dict[str, int]:
        counted = Counter(count_key(o) for o in self.outcomes)
        return dict(sorted(counted.items()))

    def as_dict(self) -> dict[str, Any]:
        def of(*results: str) -> list[dict[str, Any]]:
            return [o.as_dict() for o in self.outcomes if o.result in results]

        return {
            "source": self.source,
            "dry_run": self.dry_run,
            "options": self.options,
            "seconds": round(self.seconds, 3),
            "counts": self.counts(),
            "imported": of("imported", "updated"),
            "skipped": of("unchanged", "skipped"),
            "conflicts": of("conflict"),
            "failed": of("failed"),
        }


def registry_import(
    *,
    source: RegistrySource,
    models: list[str],
    artifacts: ArtifactMode,
    concurrency: int,
    dry_run: bool,
    progress: Progress,
    reserve: dict[str, int] | None = None,
    wait: float = 0,
) -> ImportReport:
    """Import every model ``models`` selects (all if empty) from ``source``; for the models
    in ``reserve``, count the numbers up to its value as given out. With ``wait`` (seconds),
    then wait that long at most for the copies of the versions it created, and report each
    (copied, with its size, or failed, with the reason)."""
    reserve = reserve or {}
    options = {
        "models": models,
        "artifacts": artifacts,
        "concurrency": concurrency,
        "reserve": reserve,
        "wait": wait,
    }
    report = ImportReport(source=source.url, dry_run=dry_run, options=options)
    lock = threading.Lock()

    def done(outcome: Outcome) -> None:
        with lock:
            report.outcomes.append(outcome)
            progress.done(outcome)

    names = source.model_names(models)
    progress.models_found(len(names))
    for name in sorted(set(reserve) - set(names)):
        done(Outcome("reserve", name, 0, "failed", "not among the models of this run"))

    def one_model(name: str) -> None:
        try:
            _import_one(source, name, artifacts, dry_run, done, progress)
            if name in reserve:
                done(
                    reserve_version_numbers(
                        source_url=source.url,
                        name=name,
                        highest=reserve[name],
                        dry_run=dry_run,
                    )
                )
        finally:
            connections.close_all()  # this thread's connections

    # A dry run's transactions roll back, so a version cannot see its model's: one thread, in
    # order, and the versions of a model not here yet are counted as they would be imported.
    with ThreadPoolExecutor(max_workers=1 if dry_run else max(1, concurrency)) as pool:
        for future in [pool.submit(one_model, name) for name in names]:
            future.result()
    if wait > 0 and not dry_run:
        created = [
            (o.name, o.version)
            for o in report.outcomes
            if o.kind == "version" and o.result == "imported"
        ]
        _wait_for_copies(created, wait, done, progress)
    report.seconds = time.monotonic() - report.started
    progress.close()
    if not dry_run:
        import_run_record(source_url=source.url, counts=report.counts(), options=options)
    return report


def _wait_for_copies(
    created: list[tuple[str, int]],
    timeout: float,
    done: Callable[[Outcome], None],
    progress: Progress,
) -> None:
    """Wait for the copies of the versions created (the worker makes them), reporting each."""
    pending: dict[int, tuple[str, int]] = {}
    for name, number in created:
        # The copies: not references, nor versions imported without their files. Some may be
        # done already.
        found = (
            ModelVersion.objects.filter(
                registered_model__name=name, version=number, storage_location=""
            )
            .exclude(status_message=SKIPPED_FILES_MESSAGE)
            .values_list("pk", flat=True)
        )
        pending.update((pk, (name, number)) for pk in found)
    progress.copies_found(len(pending))
    deadline = time.monotonic() + timeout
    while pending:
        finished = ModelVersion.objects.filter(pk__in=list(pending)).exclude(
            status=ModelVersionStatus.PENDING_REGISTRATION
        )
        for version in finished.select_related("manifest"):
            name, number = pending.pop(version.pk)
            if version.status == ModelVersionStatus.READY:
                size = version.manifest.total_size if hasattr(version, "manifest") else 0
                progress.copied_bytes(size)
                done(Outcome("copy", name, number, "imported", f"{size} bytes"))
            else:
                done(Outcome("copy", name, number, "failed", version.status_message))
        if not pending or time.monotonic() >= deadline:
            break
        time.sleep(1)
    for name, number in pending.values():
        done(Outcome("copy", name, number, "skipped", f"still being copied after {timeout:g} s"))


def _import_one(
    source: RegistrySource,
    name: str,
    artifacts: ArtifactMode,
    dry_run: bool,
    done: Callable[[Outcome], None],
    progress: Progress,
) -> None:
    try:
        model = source.model(name)
        numbers = source.version_numbers(name)
    except SourceReadError as exc:
        done(Outcome("model", name, 0, "failed", str(exc)))
        return
    if model.tags.get(PROMPT_TAG, "").lower() == "true":
        # MLflow 3 keeps its prompts as registered models; the mlflow client hides them.
        done(Outcome("model", name, 0, "skipped", "an MLflow prompt, not a model"))
        return
    progress.versions_found(len(numbers))
    outcome = import_model(source_url=source.url, model=model, dry_run=dry_run)
    done(outcome)
    if not dry_run and (
        outcome.result == "failed"
        or (outcome.result == "conflict" and outcome.reason == NOT_IMPORTED)
    ):
        # Versions of a model that is not here, or not the source's, are not imported.
        for number in numbers:
            done(Outcome("version", name, number, "skipped", f"its model {outcome.result}"))
        return
    for number in numbers:
        try:
            version = source.version(name, number)
        except SourceReadError as exc:
            done(Outcome("version", name, number, "failed", str(exc)))
            continue
        done(
            import_version(
                source_url=source.url, version=version, artifacts=artifacts, dry_run=dry_run
            )
        )
    done(import_aliases(source_url=source.url, model=model, dry_run=dry_run))


# --- Runs started from the API (docs/migrating.md, "Without shell access") ---------------------

RUN_TASK = "registry.tasks.import_run_task"
ARTIFACT_MODES = ("copy", "reference", "skip")
MAX_CONCURRENCY = 64
# The progress is written to the run's row at most this often (seconds), and at the end.
PROGRESS_INTERVAL = 1.0


def import_run_start(
    *,
    actor: Any,
    source_url: Any,
    token: Any = None,
    username: Any = None,
    password: Any = None,
    models: Any = None,
    artifacts: Any = None,
    concurrency: Any = None,
    dry_run: Any = None,
) -> ImportRun:
    """Queue an import run (admins only): the task runs it after the commit."""
    permissions.require_can_import(actor)
    source_url = validation.require_string(source_url, "source_url")
    parsed = urlparse(source_url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise RegistryError.invalid(
            f"source_url '{source_url}' is not an http(s) URL of a registry."
        )
    if models is None:
        models = []
    if not isinstance(models, list) or not all(isinstance(m, str) and m for m in models):
        raise RegistryError.invalid("Parameter 'models' must be a list of model names.")
    artifacts = artifacts or "copy"
    if artifacts not in ARTIFACT_MODES:
        raise RegistryError.invalid(
            f"Parameter 'artifacts' must be one of {', '.join(ARTIFACT_MODES)}."
        )
    concurrency = 4 if concurrency in (None, "") else concurrency
    try:
        concurrency = int(concurrency)
    except (TypeError, ValueError):
        raise RegistryError.invalid("Parameter 'concurrency' must be an integer.") from None
    if not 1 <= concurrency <= MAX_CONCURRENCY:
        raise RegistryError.invalid(f"Parameter 'concurrency' is between 1 and {MAX_CONCURRENCY}.")
    with transaction.atomic():
        run = ImportRun.objects.create(
            source_url=source_url.rstrip("/"),
            token=str(token or ""),
            username=str(username or ""),
            password=str(password or ""),
            model_names=models,
            artifacts=artifacts,
            concurrency=concurrency,
            dry_run=validation.boolean(dry_run, "dry_run"),
            requested_by_username=permissions.acting_username(actor),
        )
        enqueue_on_commit(current_app.signature(RUN_TASK), run.pk)
    return run


class RunProgress(Progress):
    """The progress of a run from the API, written to its row."""

    def __init__(self, run_id: int) -> None:
        self.run_id = run_id
        self.state: dict[str, Any] = {
            "models_total": 0,
            "models_done": 0,
            "versions_total": 0,
            "versions_done": 0,
            "counts": {},
        }
        self.written = 0.0

    def models_found(self, count: int) -> None:
        self.state["models_total"] = count
        self._write()

    def versions_found(self, count: int) -> None:
        self.state["versions_total"] += count

    def done(self, outcome: Outcome) -> None:
        if outcome.kind == "version":
            self.state["versions_done"] += 1
        elif outcome.kind == "aliases":
            self.state["models_done"] += 1
        key = count_key(outcome)
        self.state["counts"][key] = self.state["counts"].get(key, 0) + 1
        if time.monotonic() - self.written >= PROGRESS_INTERVAL:
            self._write()

    def close(self) -> None:
        self._write()

    def _write(self) -> None:
        self.written = time.monotonic()
        ImportRun.objects.filter(pk=self.run_id).update(progress=dict(self.state))


def import_run_execute(*, run_id: int) -> None:
    """Run a queued run (the task's body). Claimed with a conditional update, so a message
    delivered twice runs it once. Its credentials are dropped when it ends."""
    claimed = ImportRun.objects.filter(pk=run_id, status=ImportRunStatus.QUEUED).update(
        status=ImportRunStatus.RUNNING, started_at=timezone.now()
    )
    if not claimed:
        return
    run = ImportRun.objects.get(pk=run_id)
    outcome: dict[str, Any] = {}
    try:
        url, headers = credentials(run.source_url, run.token, run.username, run.password)
        source = RegistrySource(url, headers)
        source.check()
        report = registry_import(
            source=source,
            models=list(run.model_names),
            artifacts=run.artifacts,  # type: ignore[arg-type]  # one of ARTIFACT_MODES
            concurrency=run.concurrency,
            dry_run=run.dry_run,
            progress=RunProgress(run.pk),
        )
        outcome = {"status": ImportRunStatus.SUCCEEDED, "report": report.as_dict()}
    except SourceReadError as exc:
        outcome = {"status": ImportRunStatus.FAILED, "error": str(exc)}
    finally:
        ImportRun.objects.filter(pk=run_id).update(
            token="",
            password="",
            finished_at=timezone.now(),
            **(outcome or {"status": ImportRunStatus.FAILED, "error": "the run stopped"}),
        )
