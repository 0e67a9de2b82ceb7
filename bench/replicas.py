"""What ``wait_replicas=1`` costs a post: the Redis driver against a primary with one replica (both started
from ``redis-server`` on loopback), with and without waiting for the replica, in the same run.

Printed per mode: posts per second, p50 and p99 latency in ms, and this process's CPU per post in ms, then the
ratios of waiting to not waiting. Run with ``make bench-replicas`` (ARGS="--posts 5000" for more).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import redis

from chalicelib.storage.base import NewMessage
from chalicelib.storage.redis.driver import RedisStore
from infra.local.embedded_redis import answers, free_port, redis_binaries


def _server(folder: Path, port: int, *extra: str) -> subprocess.Popen[bytes]:
    folder.mkdir(parents=True, exist_ok=True)
    server, _ = redis_binaries()
    return subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                             "--dir", str(folder), *extra], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _measure(url: str, posts: int) -> dict[str, float]:
    store = RedisStore(url)
    project = f"bench-{uuid.uuid4().hex[:8]}"
    latencies = []
    cpu = time.process_time()
    started = time.perf_counter()
    for n in range(posts):
        begin = time.perf_counter()
        store.message_post(project=project, queue="q", messages=[NewMessage(uuid.uuid4().hex, f'"{n}"', 300, None)],
                           client_id="bench", create=True, encrypted=False, request_size=10, default_ttl=300,
                           event_id=None)
        latencies.append((time.perf_counter() - begin) * 1000)
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu
    store.queue_delete(project=project, queue="q")
    store.close()
    latencies.sort()
    return {"posts_s": posts / wall, "p50_ms": statistics.median(latencies),
            "p99_ms": latencies[int(len(latencies) * 0.99) - 1], "cpu_ms": cpu / posts * 1000}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--posts", type=int, default=2000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        primary_port, replica_port = free_port(), free_port()
        primary = _server(Path(tmp) / "primary", primary_port, "--repl-diskless-sync-delay", "0")
        replica = _server(Path(tmp) / "replica", replica_port, "--replicaof", "127.0.0.1", str(primary_port))
        try:
            deadline = time.monotonic() + 30
            while not (answers(primary_port) and answers(replica_port)):
                if time.monotonic() > deadline:
                    raise RuntimeError("redis-server did not start")
                time.sleep(0.05)
            check = redis.Redis(port=replica_port, decode_responses=True)
            while check.info("replication").get("master_link_status") != "up":
                if time.monotonic() > deadline:
                    raise RuntimeError("the replica did not sync")
                time.sleep(0.05)
            base_url = f"redis://127.0.0.1:{primary_port}/0"
            _measure(base_url, 200)  # warm up both paths' scripts and connections
            plain = _measure(base_url, args.posts)
            waiting = _measure(base_url + "?wait_replicas=1&wait_timeout_ms=1000", args.posts)
        finally:
            for process in (replica, primary):
                process.terminate()
                process.wait(timeout=10)
    print(f"{args.posts} posts of one message, one client, primary with one replica on loopback")
    print(f"{'':20}{'no wait':>10}{'wait_replicas=1':>18}{'ratio':>8}")
    for key, label in (("posts_s", "posts/s"), ("p50_ms", "p50 ms"), ("p99_ms", "p99 ms"),
                       ("cpu_ms", "client CPU ms/post")):
        print(f"{label:20}{plain[key]:10.3f}{waiting[key]:18.3f}{waiting[key] / plain[key]:8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
