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

from django.db import connections

from registry.importing.source import RegistrySource, SourceReadError
from registry.services.importing import (
    NOT_IMPORTED,
    ArtifactMode,
    Outcome,
    import_aliases,
    import_model,
    import_run_record,
    import_version,
)


class Progress:
    """What a run tells as it goes; the command's tqdm bars or log lines implement it."""

    def models_found(self, count: int) -> None:
        pass

    def versions_found(self, count: int) -> None:
        pass

    def done(self, outcome: Outcome) -> None:
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
        plural = {"model": "models", "version": "versions", "aliases": "aliases"}
        counted = Counter(f"{plural[o.kind]}_{o.result}" for o in self.outcomes)
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
) -> ImportReport:
    """Import every model ``models`` selects (all if empty) from ``source``."""
    options = {"models": models, "artifacts": artifacts, "concurrency": concurrency}
    report = ImportReport(source=source.url, dry_run=dry_run, options=options)
    lock = threading.Lock()

    def done(outcome: Outcome) -> None:
        with lock:
            report.outcomes.append(outcome)
            progress.done(outcome)

    names = source.model_names(models)
    progress.models_found(len(names))

    def one_model(name: str) -> None:
        try:
            _import_one(source, name, artifacts, dry_run, done, progress)
        finally:
            connections.close_all()  # this thread's connections

    # A dry run's transactions roll back, so a version cannot see its model's: one thread, in
    # order, and the versions of a model not here yet are counted as they would be imported.
    with ThreadPoolExecutor(max_workers=1 if dry_run else max(1, concurrency)) as pool:
        for future in [pool.submit(one_model, name) for name in names]:
            future.result()
    report.seconds = time.monotonic() - report.started
    progress.close()
    if not dry_run:
        import_run_record(source_url=source.url, counts=report.counts(), options=options)
    return report


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
