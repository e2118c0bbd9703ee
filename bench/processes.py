"""The processes a benchmark starts (servers, workers, clients), and stopping all of them.

Shared by ``soak.py`` and ``register.py`` (the scripts run from this folder, so it is on their
import path).
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


class Processes:
    """Every process a benchmark starts, each in its own session so that its whole tree can be
    signalled (and Ctrl-C reaches only the benchmark, which stops them); ``stop_all`` ends them
    (TERM, then KILL after a grace period)."""

    def __init__(self) -> None:
        self.started: list[tuple[str, subprocess.Popen]] = []
        self.lock = threading.Lock()

    def start(
        self, name: str, argv: list[str], env: dict[str, str], log: Path, **popen: Any
    ) -> subprocess.Popen:
        """Start ``argv`` in ``ROOT``; its output goes to ``log`` unless ``popen`` says
        otherwise (``stdout=subprocess.PIPE`` for a client the benchmark talks to)."""
        with log.open("ab") as out:
            process = subprocess.Popen(  # noqa: S603
                argv,
                cwd=ROOT,
                env=env,
                stdin=popen.pop("stdin", subprocess.DEVNULL),
                stdout=popen.pop("stdout", out),
                stderr=popen.pop("stderr", out),
                start_new_session=True,
                **popen,
            )
        with self.lock:
            self.started.append((name, process))
        return process

    def stop_all(self, grace: float = 20.0) -> None:
        with self.lock:
            started, self.started = self.started, []
        for _name, process in started:
            if process.poll() is None:
                _signal_group(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for _name, process in started:
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            # The group may outlive its leader (a worker still stopping, mlflow server's CLI
            # outliving its uvicorn or the other way round): KILL what is left.
            _signal_group(process.pid, signal.SIGKILL)
            if process.poll() is None:
                process.wait(5)


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass
