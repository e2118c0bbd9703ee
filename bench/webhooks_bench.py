"""Webhook delivery benchmark: event-to-first-attempt latency and deliveries per second.

One Celery worker process (threads pool) on Redis delivers to a local receiver (http.server on
127.0.0.1 that answers 200 at once). The database is migrated first.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/registry_bench \\
    CELERY_BROKER_URL=redis://127.0.0.1:6379/1 \\
    .venv/bin/python bench/webhooks_bench.py [--latency-events 300] [--events 1000] [--hooks 3]

- Latency: events are made one at a time through the real service (a version tag set); for
  each, the time from the commit of the change to the receiver getting the request.
- Throughput: ``events x hooks`` deliveries are written and queued with the worker stopped;
  then the worker starts and the time from its first delivery to the last is measured, so the
  figure is the worker's own rate, not the producer's.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from http.server import ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DJANGO_SECRET_KEY", "bench-only")
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/registry_bench")
os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/1")
os.environ.setdefault("WEBHOOKS_ALLOWED_NETWORKS", "127.0.0.0/8")
os.environ.setdefault("WEBHOOKS_ALLOWED_SCHEMES", "http")
os.environ.setdefault("DJANGO_LOG_LEVEL", "WARNING")


class Arrivals:
    """Arrival times, and a condition to wait on: the bench waits without polling, so it
    takes no CPU from the worker on a small machine."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.lock = threading.Condition()

    def count(self) -> int:
        with self.lock:
            return len(self.times)

    def add(self, at: float) -> None:
        with self.lock:
            self.times.append(at)
            self.lock.notify_all()


def _receiver(arrivals: Arrivals) -> ThreadingHTTPServer:
    from testing_support.network import serve_posts  # from ROOT, on the path above

    def on_post(path: str, headers: object, body: bytes) -> int:
        arrivals.add(time.perf_counter())
        return 200

    return serve_posts(on_post)


def _worker(concurrency: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(  # noqa: S603
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "config",
            "worker",
            "--pool=threads",
            f"--concurrency={concurrency}",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--loglevel=WARNING",
        ],
        cwd=ROOT,
        env=os.environ.copy(),
        start_new_session=True,
    )


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads) so far, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wait(arrivals: Arrivals, count: int, timeout: float) -> None:
    with arrivals.lock:
        if not arrivals.lock.wait_for(lambda: len(arrivals.times) >= count, timeout):
            raise SystemExit(f"timed out: {len(arrivals.times)} of {count} arrived")


def _say(*parts: object) -> None:
    sys.stdout.write(" ".join(str(part) for part in parts) + "\n")


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency-events", type=int, default=300)
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--hooks", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args()
    load_before = os.getloadavg()

    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    import redis
    from django.conf import settings

    from accounts.models import User
    from registry import services as registry_services
    from registry.models import ModelVersion, ModelVersionStatus, RegisteredModel
    from webhooks.models import Webhook, WebhookDelivery, WebhookEvent, WebhookFlavor
    from webhooks.services.management import webhook_create

    redis.Redis.from_url(settings.CELERY_BROKER_URL).flushdb()
    WebhookDelivery.objects.all().delete()
    WebhookEvent.objects.all().delete()
    Webhook.objects.all().delete()
    RegisteredModel.objects.filter(name="bench").delete()
    admin, _ = User.objects.get_or_create(username="bench-admin", defaults={"is_superuser": True})
    registry_services.registered_model_create(actor=admin, name="bench")
    registry_services.model_version_create(actor=admin, name="bench", source="s3://bench/1")
    ModelVersion.objects.update(status=ModelVersionStatus.READY)

    arrivals = Arrivals()
    server = _receiver(arrivals)
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    hook = webhook_create(
        actor=admin,
        flavor=WebhookFlavor.DATABRICKS,
        events=["MODEL_VERSION_TAG_SET"],
        url=url,
        secret="bench-secret",
    )

    # Latency, one event at a time, worker running and warmed up.
    worker = _worker(args.concurrency)
    try:
        for index in range(20):  # warm-up: worker start, connections, imports
            registry_services.model_version_tag_set(
                actor=admin, name="bench", version="1", key="warm", value=str(index)
            )
        _wait(arrivals, 20, 60)
        latencies = []
        for index in range(args.latency_events):
            before = arrivals.count()
            started = time.perf_counter()
            registry_services.model_version_tag_set(
                actor=admin, name="bench", version="1", key="k", value=str(index)
            )
            _wait(arrivals, before + 1, 30)
            latencies.append((arrivals.times[before] - started) * 1000)
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(30)

    # Throughput: queue everything with no worker, then let one worker drain it.
    for index in range(1, args.hooks):
        webhook_create(
            actor=admin,
            flavor=WebhookFlavor.DATABRICKS,
            events=["MODEL_VERSION_TAG_SET"],
            url=f"{url}/{index}",
            secret="bench-secret",
        )
    already = arrivals.count()
    produce_start = time.perf_counter()
    for index in range(args.events):
        registry_services.model_version_tag_set(
            actor=admin, name="bench", version="1", key="t", value=str(index)
        )
    produce_seconds = time.perf_counter() - produce_start
    total = args.events * args.hooks
    worker = _worker(args.concurrency)
    try:
        _wait(arrivals, already + 1, 120)
        cpu_start = _cpu_seconds(worker.pid)
        _wait(arrivals, already + total, 600)
        cpu_seconds = _cpu_seconds(worker.pid) - cpu_start
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(30)
    times = arrivals.times[already : already + total]
    drain_seconds = times[-1] - times[0]
    server.shutdown()

    _say(f"latency (event committed -> first attempt received), {len(latencies)} events:")
    _say(
        f"  p50 {statistics.median(latencies):.1f} ms   p99 {_percentile(latencies, 0.99):.1f} ms"
        f"   max {max(latencies):.1f} ms"
    )
    _say(
        f"throughput: {total} deliveries ({args.events} events x {args.hooks} hooks), one "
        f"worker process, threads pool, concurrency {args.concurrency}:"
    )
    _say(f"  {total / drain_seconds:.0f} deliveries/s (drained in {drain_seconds:.2f} s)")
    share = 100 * cpu_seconds / drain_seconds
    _say(
        f"  worker CPU while draining: {cpu_seconds:.2f} s ({share:.0f} % of one core, "
        f"{1000 * cpu_seconds / total:.2f} ms per delivery)"
    )
    _say(f"  producing the events (service calls, rows + queueing): {produce_seconds:.2f} s")
    before, after = (" ".join(f"{x:.2f}" for x in load) for load in (load_before, os.getloadavg()))
    _say(f"load average (1, 5, 15 min): {before} before, {after} after")
    hook.delete()


if __name__ == "__main__":
    main()
