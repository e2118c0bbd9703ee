"""The long API fuzzing pass: schemathesis against every operation of the service's own schema.

    DATABASE_URL=postgres://... .venv/bin/python bench/fuzz_long.py [--examples 100] [--seed N]

The same set-up as the bounded pass in ``tests/security/test_fuzz.py`` (``tests/security/
fuzzing.py``: the schema served by the application in process, the seeded registry, a caller
signed in with an API token and holding ``CAN_MANAGE`` on two models, the same checks), but
randomized (a new seed each run unless ``--seed``), in both generation modes (data that fits the
schema and data that does not), and with no stop at the first failure: every response is
checked, and every failure is counted by check and operation, with one example of each.

Each operation runs against a freshly seeded registry in its own transaction, rolled back at the
end, in a throwaway database (``test_<name>_fuzzlong``) created and dropped by the run. Prints
the number of requests sent, per operation and in all, and the failures; exits 1 if any.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.test_settings")


def _say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


class _Rollback(Exception):
    """Leaves an operation's transaction without keeping anything."""


def _fuzz(operation: Any, mode: Any, seeded: Any, seed: int, examples: int, record: Any) -> Any:
    """A Hypothesis test sending ``examples`` generated requests to one operation."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hypothesis_seed

    @hypothesis_seed(seed)
    @settings(
        max_examples=examples,
        database=None,
        deadline=None,
        phases=[Phase.generate],  # no shrinking: every failure is recorded, none stops the run
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        record(operation, case, case.call(headers=seeded.headers))

    return run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=100, help="per operation and mode")
    parser.add_argument("--seed", type=int, default=None, help="default: a random one")
    parser.add_argument("--operation", default="", help="only operations whose label has this")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)

    import django

    django.setup()
    from django.conf import settings
    from django.db import connection, transaction
    from schemathesis import GenerationMode

    from tests.security import fuzzing

    database = settings.DATABASES["default"]
    database.setdefault("TEST", {})["NAME"] = f"test_{database['NAME']}_fuzzlong"
    old_name = connection.creation.create_test_db(verbosity=0, autoclobber=True)
    store = tempfile.TemporaryDirectory(prefix="fuzzlong-store-")
    settings.ARTIFACT_STORE_URI = Path(store.name).as_uri()

    sent: Counter[str] = Counter()
    failures: dict[tuple[str, str], list[str]] = defaultdict(list)  # a few examples of each
    counts: Counter[tuple[str, str]] = Counter()  # failing responses
    statuses: Counter[int] = Counter()
    started = time.monotonic()

    def record(operation: Any, case: Any, response: Any) -> None:
        sent[operation.label] += 1
        statuses[response.status_code] += 1
        for name, message in fuzzing.failed_checks(case, response):
            counts[(name, operation.label)] += 1
            found = failures[(name, operation.label)]
            if len(found) < 3:
                found.append(message)

    try:
        schema = fuzzing.load_schema()
        with fuzzing.artifact_copy_done_at_once(), fuzzing.connection_kept_open():
            operations = [
                result.ok()
                for result in schema.get_all_operations()
                if args.operation in result.ok().label
            ]
            for operation in operations:
                for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                    try:
                        with transaction.atomic():
                            seeded = fuzzing.seed_registry()
                            run = _fuzz(operation, mode, seeded, seed, args.examples, record)
                            run()
                            raise _Rollback
                    except _Rollback:
                        pass
                _say(f"{operation.label}: {sent[operation.label]} requests")
    finally:
        connection.creation.destroy_test_db(old_name, verbosity=0)
        store.cleanup()

    elapsed = time.monotonic() - started
    total_failures = sum(counts.values())
    _say("")
    _say(f"seed: {seed}")
    _say(f"operations: {len(sent)}")
    _say(f"requests sent: {sum(sent.values())} in {elapsed:.0f} s")
    _say("answers by status: " + ", ".join(f"{k}: {v}" for k, v in sorted(statuses.items())))
    _say(f"failing responses: {total_failures} (a response may fail several checks)")
    _say(f"failing (check, operation) pairs: {len(failures)}")
    for (check, label), found in sorted(failures.items()):
        _say(f"\n[{check}] {label}: {counts[(check, label)]} failing responses")
        for message in found:
            _say("    " + message.replace("\n", "\n    ")[:1500])
    return 1 if total_failures else 0


if __name__ == "__main__":
    sys.exit(main())
