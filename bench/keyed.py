"""What an Idempotency-Key costs a post: the app's message post operation (schema check, digest, the pool's
post script) against a Redis started from ``redis-server`` on loopback, plain, keyed with a new key each
time, and repeated with a key already bound, in the same run.

Printed per kind: posts per second, p50 and p99 latency in ms, and this process's CPU per post in ms, then
each kind's ratios to the plain post. Run with ``make bench-keyed`` (ARGS="--posts 5000" for more).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable

from chalicelib import runtime
from chalicelib.api import messages
from chalicelib.api.context import Caller, Services
from chalicelib.config import Settings
from infra.local.embedded_redis import answers, free_port, redis_binaries

BODY = {"messages": [{"body": {"order": 1, "items": ["a", "b"]}, "ttl": 300}]}


def _measure(services: Services, posts: int, key_of: Callable[[int], str | None]) -> dict[str, float]:
    caller = Caller(project=f"bench-{uuid.uuid4().hex[:8]}", client_id=str(uuid.uuid4()))
    latencies = []
    cpu = time.process_time()
    started = time.perf_counter()
    for n in range(posts):
        begin = time.perf_counter()
        messages.message_post(services, caller, "q", BODY, size=64, idempotency_key=key_of(n))
        latencies.append((time.perf_counter() - begin) * 1000)
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu
    latencies.sort()
    return {"posts_s": posts / wall, "p50_ms": statistics.median(latencies),
            "p99_ms": latencies[max(0, int(len(latencies) * 0.99) - 1)], "cpu_ms": cpu / posts * 1000}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--posts", type=int, default=3000)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        server, _ = redis_binaries()
        process = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
                                    "no", "--dir", tmp], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 30
            while not answers(port):
                if time.monotonic() > deadline:
                    raise RuntimeError("redis-server did not start")
                time.sleep(0.05)
            settings = Settings.from_mapping({"POOL_URL": f"redis://127.0.0.1:{port}/0", "DATA_DIR": tmp,
                                              "REQUEST_LOG": "false"})
            services = runtime.build(settings)
            run = uuid.uuid4().hex[:8]
            _measure(services, 300, lambda n: None)  # warm up: scripts, connections, the schema's compiled check
            _measure(services, 300, lambda n: f"warm-{run}-{n}")
            plain = _measure(services, args.posts, lambda n: None)
            keyed = _measure(services, args.posts, lambda n: f"new-{run}-{n}")
            repeated = _measure(services, args.posts, lambda n: f"same-{run}")
            services.pooling.close()
        finally:
            process.terminate()
            process.wait(timeout=10)
    print(f"{args.posts} posts of one message through the app's post operation, one client, Redis on loopback")
    print(f"{'':20}{'plain':>10}{'keyed':>10}{'ratio':>8}{'repeat':>10}{'ratio':>8}")
    for key, label in (("posts_s", "posts/s"), ("p50_ms", "p50 ms"), ("p99_ms", "p99 ms"),
                       ("cpu_ms", "CPU ms/post")):
        print(f"{label:20}{plain[key]:10.3f}{keyed[key]:10.3f}{keyed[key] / plain[key]:8.2f}"
              f"{repeated[key]:10.3f}{repeated[key] / plain[key]:8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
