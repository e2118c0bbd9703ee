"""Benchmark: the registry's artifact copy against a plain boto3 copy of the same objects.

    .venv/bin/python bench/artifact_copy.py [--large-mib 896] [--small 128] [--small-kib 1024]

Starts an S3-compatible server (moto) in its own process, puts a "model" of one large file
plus many small ones (1 GiB in all by default) into a source bucket, then in the same run:

1. plain: boto3's managed ``copy`` of every object (server-side, multipart, the same part size
   and thread counts as the registry), 8 objects at a time;
2. registry: ``registry.artifacts.copy.copy_tree`` (the code the Celery task runs: server-side
   copy plus one streaming read of each object to hash it, size checks), in a separate process
   whose peak resident memory (``ru_maxrss``) is reported; that process is the worker's stand-in;
3. registry, streamed: the same S3 → S3 copy with ``ARTIFACT_SERVER_SIDE_COPY=false`` (every
   byte streams through the process into a multipart upload), and into a local-folder store;
   each in its own process.

Prints a Markdown table (throughput in MiB/s over the bytes copied, peak RSS in MiB) and the
CPU seconds each copy cost: the copying process's own and the S3 server's (read from
``/proc/<pid>/stat`` around each copy). On a shared machine the seconds of wall time move with
the load; the CPU seconds are the work each way of copying asks for, and move much less.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository's testing_support
from testing_support.network import free_port

ROOT = Path(__file__).resolve().parent.parent
MIB = 1024 * 1024


def _client(endpoint: str):
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}, max_pool_connections=32),
    )


def _transfer_config():
    from boto3.s3.transfer import TransferConfig

    return TransferConfig(
        multipart_threshold=16 * MIB, multipart_chunksize=16 * MIB, max_concurrency=4
    )


def _populate(s3, large_mib: int, small: int, small_kib: int) -> list[str]:
    s3.create_bucket(Bucket="source")
    keys = []
    block = os.urandom(MIB)

    class Repeat:
        """A large object of random-looking bytes without holding it in memory."""

        def __init__(self, size: int) -> None:
            self.left = size

        def read(self, n: int = -1) -> bytes:
            n = self.left if n < 0 else min(n, self.left)
            out = (block * (n // MIB + 1))[:n]
            self.left -= n
            return out

    s3.upload_fileobj(
        Repeat(large_mib * MIB), "source", "model/weights.bin", Config=_transfer_config()
    )
    keys.append("model/weights.bin")
    for index in range(small):
        key = f"model/shards/part-{index:04d}.bin"
        s3.put_object(Bucket="source", Key=key, Body=os.urandom(small_kib * 1024))
        keys.append(key)
    return keys


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _plain_copy(s3, keys: list[str]) -> float:
    s3.create_bucket(Bucket="plain")
    config = _transfer_config()
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(
            pool.map(
                lambda key: s3.copy({"Bucket": "source", "Key": key}, "plain", key, Config=config),
                keys,
            )
        )
    return time.perf_counter() - start


_CHILD = r"""
import json, os, resource, sys, time
import django
django.setup()
from registry.artifacts.copy import copy_tree
from registry.artifacts.sources import S3Source
from registry.artifacts.storage import get_store
def hwm():
    # VmHWM (peak RSS of this process image); ru_maxrss would carry the parent's over exec.
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
def cpu():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
baseline = hwm()
cpu_start = cpu()
start = time.perf_counter()
manifest = copy_tree(S3Source("source", "model"), get_store(), "models/bench/1")
elapsed = time.perf_counter() - start
cpu_used = cpu() - cpu_start
peak = hwm()
print(json.dumps({"seconds": elapsed, "bytes": manifest.total_size, "files": len(manifest.files),
                  "peak_kib": peak, "baseline_kib": baseline, "digest": manifest.digest,
                  "cpu": cpu_used}))
"""


def _registry_copy(
    endpoint: str, store_uri: str, server_pid: int, server_side: bool = True
) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ARTIFACT_"))}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DJANGO_SECRET_KEY": "bench",
            "DATABASE_URL": "sqlite:///:memory:",
            "ARTIFACT_STORE_URI": store_uri,
            "ARTIFACT_SERVER_SIDE_COPY": "true" if server_side else "false",
            "AWS_ENDPOINT_URL_S3": endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
    )
    server_cpu = _cpu_seconds(server_pid)
    result = subprocess.run(  # noqa: S603
        [sys.executable, "-c", _CHILD],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    measured = json.loads(result.stdout.strip().splitlines()[-1])
    # The server also served the child's listing and start-up: a few requests, noise here.
    measured["server_cpu"] = _cpu_seconds(server_pid) - server_cpu
    return measured


def _say(text: str = "") -> None:
    sys.stdout.write(text + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--large-mib", type=int, default=896)
    parser.add_argument("--small", type=int, default=128)
    parser.add_argument("--small-kib", type=int, default=1024)
    args = parser.parse_args()

    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    moto = subprocess.Popen(  # noqa: S603
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        s3 = _client(endpoint)
        keys = _populate(s3, args.large_mib, args.small, args.small_kib)
        total = sum(s3.head_object(Bucket="source", Key=k)["ContentLength"] for k in keys)
        s3.create_bucket(Bucket="registry")

        server_cpu, own_cpu = _cpu_seconds(moto.pid), _own_cpu()
        plain_seconds = _plain_copy(s3, keys)
        plain = {"cpu": _own_cpu() - own_cpu, "server_cpu": _cpu_seconds(moto.pid) - server_cpu}
        registry = _registry_copy(endpoint, "s3://registry/store", moto.pid)
        through = _registry_copy(endpoint, "s3://registry/streamed", moto.pid, server_side=False)
        with tempfile.TemporaryDirectory() as folder:
            streamed = _registry_copy(endpoint, Path(folder).as_uri(), moto.pid)
    finally:
        moto.terminate()
        moto.wait(timeout=30)

    assert registry["bytes"] == total == streamed["bytes"], (registry, streamed, total)
    assert registry["digest"] == streamed["digest"]

    def rate(seconds: float) -> float:
        return total / MIB / seconds

    def peak(run: dict) -> str:
        return f"{run['peak_kib'] / 1024:.0f} (at start {run['baseline_kib'] / 1024:.0f})"

    rows = [
        ("plain boto3 `copy` (server-side)", plain_seconds, "-", plain),
        (
            "registry copy, S3 → S3 (server-side + hash)",
            registry["seconds"],
            peak(registry),
            registry,
        ),
        (
            "registry copy, S3 → S3, `ARTIFACT_SERVER_SIDE_COPY=false` (streamed + hash)",
            through["seconds"],
            peak(through),
            through,
        ),
        (
            "registry copy, S3 → local folder (streamed + hash)",
            streamed["seconds"],
            peak(streamed),
            streamed,
        ),
    ]
    _say(
        f"{len(keys)} objects, {total / MIB:.0f} MiB ({args.large_mib} MiB + "
        f"{args.small} × {args.small_kib} KiB); {os.cpu_count()} CPUs; "
        f"manifest digest {registry['digest'][:19]}…\n"
    )
    _say(
        "| Copy | Seconds | MiB/s | vs plain | Peak RSS of the copying process (MiB) "
        "| CPU s: copying process + S3 server |"
    )
    _say("|---|---:|---:|---:|---:|---:|")
    for name, seconds, peak_rss, run in rows:
        _say(
            f"| {name} | {seconds:.1f} | {rate(seconds):.0f} | "
            f"{plain_seconds / seconds:.0%} | {peak_rss} | "
            f"{run['cpu']:.1f} + {run['server_cpu']:.1f} |"
        )
    _say(
        f"\n(bench process peak RSS: "
        f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB)"
    )


if __name__ == "__main__":
    main()
