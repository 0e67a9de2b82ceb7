"""Post-to-delivery latency of webhook notifications in the local stack.

``python -m bench.notify_latency [--messages N]`` starts the local stack
(embedded Redis, moto), subscribes a webhook receiver on loopback, posts
messages one at a time and reports how long each took from the POST being
sent to the notification arriving: p50, p99 and max.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import requests

from tests.receiver import receiver

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=200)
    args = parser.parse_args()
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="zaqar-notify-bench-") as data:
        env = {**os.environ, "PORT": str(port), "WS_PORT": str(_free_port()), "MOTO_PORT": str(_free_port()),
               "DATA_DIR": data}
        for name in ("POOL_URL", "CATALOG_URL", "AWS_ENDPOINT_URL", "EVENT_STREAM", "RETRY_QUEUE"):
            env.pop(name, None)
        stack = subprocess.Popen([sys.executable, "-m", "infra.local"], cwd=ROOT, env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            base = f"http://127.0.0.1:{port}"
            for _ in range(300):
                try:
                    if requests.get(base + "/", timeout=1).status_code == 300:
                        break
                except requests.ConnectionError:
                    time.sleep(0.1)
            headers = {"Client-ID": str(uuid.uuid4()), "X-Project-ID": "bench-notify"}
            latencies: list[float] = []
            with receiver() as hook, requests.Session() as http:
                http.post(f"{base}/v2/queues/lat/subscriptions", headers=headers, json={"subscriber": hook.url},
                          timeout=10).raise_for_status()
                for i in range(args.messages):
                    sent = time.perf_counter()
                    http.post(f"{base}/v2/queues/lat/messages", headers=headers,
                              json={"messages": [{"body": i}]}, timeout=10).raise_for_status()
                    hook.wait_for(i + 1, timeout=30)
                    latencies.append((time.perf_counter() - sent) * 1000)
        finally:
            stack.terminate()
            stack.wait(timeout=30)
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    print(f"post-to-delivery over {len(latencies)} webhook notifications (local stack, moto Kinesis):")
    print(f"p50 {statistics.median(latencies):.1f} ms | p99 {p99:.1f} ms | max {latencies[-1]:.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
