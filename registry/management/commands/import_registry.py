"""``manage.py import_registry --from URL``: import another MLflow registry (docs/migrating.md).

Thin: the options, the progress (tqdm bars on a terminal, log lines otherwise) and the report;
the run is ``registry.services.import_run``'s."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from registry.importing.source import (
    RegistrySource,
    SourceReadError,
    credentials_from_environment,
)
from registry.services.import_run import ImportReport, Progress, registry_import
from registry.services.importing import Outcome


class BarProgress(Progress):
    """Two bars on a terminal: models and versions, each with its rate and time left."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.models = tqdm(total=0, unit="model", desc="models  ", file=stream, position=0)
        self.versions = tqdm(total=0, unit="version", desc="versions", file=stream, position=1)
        self.copies: Any = None
        self.bytes: Any = None

    def copies_found(self, count: int) -> None:
        """With --wait: the copies made by the worker, and their bytes."""
        self.copies = tqdm(total=count, unit="copy", desc="copies  ", file=self.stream, position=2)
        self.bytes = tqdm(
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            desc="bytes   ",
            file=self.stream,
            position=3,
        )

    def copied_bytes(self, count: int) -> None:
        self.bytes.update(count)

    def models_found(self, count: int) -> None:
        self.models.total = count
        self.models.refresh()

    def versions_found(self, count: int) -> None:
        assert self.versions.total is not None
        self.versions.total += count
        self.versions.refresh()

    def done(self, outcome: Outcome) -> None:
        if outcome.kind == "version":
            self.versions.update(1)
        elif outcome.kind == "aliases":
            self.models.update(1)
        elif outcome.kind == "copy" and self.copies is not None:
            self.copies.update(1)
        if outcome.result in ("failed", "conflict"):
            self.models.write(_line(outcome), file=self.models.fp)

    def close(self) -> None:
        for bar in (self.bytes, self.copies, self.versions, self.models):
            if bar is not None:
                bar.close()


class LogProgress(Progress):
    """Plain lines, one per model, version or set of aliases written, failed or in conflict,
    and a count every hundred objects."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.seen = 0
        self.models = 0
        self.versions = 0

    def models_found(self, count: int) -> None:
        self.models = count
        self._say(f"{count} models to read")

    def versions_found(self, count: int) -> None:
        self.versions += count

    def copies_found(self, count: int) -> None:
        self._say(f"waiting for {count} copies")

    def done(self, outcome: Outcome) -> None:
        self.seen += 1
        if outcome.result != "unchanged":
            self._say(_line(outcome))
        if self.seen % 100 == 0:
            self._say(f"{self.seen} objects done ({self.versions} versions found so far)")

    def _say(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()


def _line(outcome: Outcome) -> str:
    what = outcome.name if not outcome.version else f"{outcome.name} v{outcome.version}"
    why = f": {outcome.reason}" if outcome.reason else ""
    return f"{outcome.result} {outcome.kind} {what}{why}"


class Command(BaseCommand):
    help = (
        "Import the registered models, versions (with their numbers), tags, stages and aliases "
        "of a registry that speaks the MLflow REST protocol. Safe to run again: it imports only "
        "what is new or changed, and reports conflicts instead of overwriting."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--from",
            dest="source",
            help="the source's URL, e.g. http://mlflow:5000 (default: DATABRICKS_HOST)",
        )
        parser.add_argument(
            "--token", help="bearer token (default: MLFLOW_TRACKING_TOKEN or DATABRICKS_TOKEN)"
        )
        parser.add_argument("--username", help="basic auth (default: MLFLOW_TRACKING_USERNAME)")
        parser.add_argument("--password", help="basic auth (default: MLFLOW_TRACKING_PASSWORD)")
        parser.add_argument(
            "--models",
            nargs="+",
            default=[],
            metavar="NAME",
            help="only these models; a name with %% is a LIKE pattern (e.g. 'churn-%%')",
        )
        parser.add_argument(
            "--artifacts",
            choices=["copy", "reference", "skip"],
            default="copy",
            help="copy the files into the store (default), reference them where they are, or "
            "neither (the versions wait for a registration retry)",
        )
        parser.add_argument(
            "--concurrency", type=int, default=4, help="models imported at once (default 4)"
        )
        parser.add_argument(
            "--reserve",
            nargs="+",
            default=[],
            metavar="NAME=N",
            help="count the numbers up to N as given out for the model NAME: the source's "
            "deleted versions above its highest remaining one, which its API does not show",
        )
        parser.add_argument(
            "--wait",
            type=float,
            default=0,
            metavar="SECONDS",
            help="then wait up to SECONDS for the copies of the versions created (made by the "
            "worker), and report each: copied with its size, or failed with the reason",
        )
        parser.add_argument(
            "--dry-run", action="store_true", help="write nothing; say what would be imported"
        )
        parser.add_argument("--report", type=Path, help="also write the report as JSON here")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["concurrency"] < 1 or options["concurrency"] > 64:
            raise CommandError("--concurrency is between 1 and 64.")
        if options["wait"] < 0:
            raise CommandError("--wait is a number of seconds, 0 or more.")
        reserve: dict[str, int] = {}
        for item in options["reserve"]:
            name, _, number = item.rpartition("=")
            if not name or not number.isdigit() or int(number) < 1:
                raise CommandError(f"--reserve {item}: expected NAME=N, N a version number.")
            reserve[name] = int(number)
        report_path: Path | None = options["report"]
        if report_path is not None and not report_path.parent.is_dir():
            raise CommandError(f"--report: the folder {report_path.parent} does not exist.")
        try:
            url, headers = credentials_from_environment(
                options["source"], options["token"], options["username"], options["password"]
            )
            source = RegistrySource(url, headers)
            source.check()
        except SourceReadError as exc:
            raise CommandError(str(exc)) from exc
        stream = sys.stderr
        progress = BarProgress(stream) if stream.isatty() else LogProgress(self.stdout)
        try:
            report = registry_import(
                source=source,
                models=options["models"],
                artifacts=options["artifacts"],
                concurrency=options["concurrency"],
                dry_run=options["dry_run"],
                progress=progress,
                reserve=reserve,
                wait=options["wait"],
            )
        except SourceReadError as exc:
            raise CommandError(str(exc)) from exc
        self._summary(report)
        if report_path is not None:
            report_path.write_text(json.dumps(report.as_dict(), indent=2) + "\n")
            self.stdout.write(f"Report written to {report_path}")

    def _summary(self, report: ImportReport) -> None:
        data = report.as_dict()
        heading = "Dry run: nothing written. Would be:" if report.dry_run else "Import done:"
        self.stdout.write(f"{heading} ({data['seconds']} s, from {report.source})")
        for key, count in data["counts"].items():
            self.stdout.write(f"  {key}: {count}")
        for title, key in (("Conflicts", "conflicts"), ("Failed", "failed")):
            if data[key]:
                self.stdout.write(f"{title}:")
                for item in data[key]:
                    what = item["name"] + (f" v{item['version']}" if item["version"] else "")
                    self.stdout.write(f"  {item['kind']} {what}: {item['reason']}")
