"""Benchmark of the local stack: ``python -m bench.run`` (or ``make bench``).

Starts the local stack (``python -m infra.local``) against ``BENCH_REDIS_URL``
(default: an embedded Redis of its own) and measures, per operation and
concurrency: requests/s, p50/p99 latency, the stack's CPU time per request
(all worker processes, from /proc), and Redis round trips and commands per
request (from ``INFO commandstats`` deltas: round trips are EVALSHA/EVAL
calls plus commands the driver sends outside scripts; "commands" counts
every command Redis executed, inside scripts too).

Load comes from threads in this process over keep-alive connections; the
load generator shares the machine's cores with the server, so throughput
and latency are lower bounds, while CPU per request and round trips are
properties of the server alone.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import redis

from bench.process import ProcessServer
from bench.roundtrips import RoundTripProxy

ROOT = Path(__file__).resolve().parents[1]


class Server(Protocol):
    port: int
    proxy: RoundTripProxy | None
    keep_alive: bool

    def cpu_seconds(self) -> float: ...

    def stop(self) -> None: ...


@dataclass
class Result:
    stack: str
    operation: str
    concurrency: int
    requests: int
    seconds: float
    latencies_ms: list[float]
    cpu_ms: float
    redis_round_trips: float | None
    redis_commands: float
    errors: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        lat = sorted(self.latencies_ms)
        return {
            "stack": self.stack,
            "operation": self.operation,
            "concurrency": self.concurrency,
            "requests": self.requests,
            "req_per_s": round(self.requests / self.seconds, 1),
            "p50_ms": round(statistics.median(lat), 3),
            "p99_ms": round(lat[min(len(lat) - 1, int(len(lat) * 0.99))], 3),
            "cpu_ms_per_req": round(self.cpu_ms / self.requests, 3),
            "redis_round_trips_per_req": (
                None if self.redis_round_trips is None else round(self.redis_round_trips / self.requests, 2)
            ),
            "redis_cmds_per_req": round(self.redis_commands / self.requests, 1),
            "errors": self.errors,
        }


class Stack(ProcessServer):
    keep_alive = True

    def __init__(self, redis_url: str, workers: int, proxy: RoundTripProxy | None = None) -> None:
        redis_url = self._prepare(redis_url, proxy, "zaqar-bench-")
        env = {**os.environ, "PORT": str(self.port), "DATA_DIR": self._dir.name, "POOL_URL": redis_url,
               "WORKERS": str(workers)}
        env.pop("CATALOG_URL", None)
        self.process = subprocess.Popen([sys.executable, "-m", "infra.local"], cwd=ROOT, env=env,
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
                conn.request("GET", "/")
                ok = conn.getresponse().status == 300
                conn.close()
                if ok:
                    return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError("the local stack did not start")

class Client:
    def __init__(self, server: Server, project: str) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        self.headers = {"Client-ID": str(uuid.uuid4()), "X-Project-ID": project, "Content-Type": "application/json"}
        if not server.keep_alive:
            self.headers["Connection"] = "close"

    def __call__(self, method: str, path: str, body: Any = None) -> tuple[int, dict[str, str], Any]:
        payload = None if body is None else json.dumps(body)
        try:
            self.conn.request(method, path, body=payload, headers=self.headers)
            response = self.conn.getresponse()
        except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
            # the server closed an idle keep-alive connection before this request: open a new one
            self.conn.close()
            self.conn.request(method, path, body=payload, headers=self.headers)
            response = self.conn.getresponse()
        raw = response.read()
        headers = {name.lower(): value for name, value in response.getheaders()}
        return response.status, headers, json.loads(raw) if raw else None


def command_stats(client: redis.Redis) -> dict[str, int]:
    stats = client.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in stats.items()}


def run_phase(stack: Server, rds: redis.Redis, project: str, name: str, concurrency: int, count: int,
              make_request: Callable[[Client, int], tuple[str, str, Any]], expect: set[int],
              on_reply: Callable[[int, Any, dict[str, str]], None] | None = None) -> Result:
    proxy = stack.proxy
    clients = [Client(stack, project) for _ in range(concurrency)]
    latencies: list[float] = []
    errors = [0]
    unexpected: dict[int, int] = {}
    lock = threading.Lock()
    counter = iter(range(count))

    def worker(client: Client) -> None:
        mine: list[float] = []
        while True:
            with lock:
                index = next(counter, None)
            if index is None:
                break
            method, path, body = make_request(client, index)
            start = time.perf_counter()
            status, headers, reply = client(method, path, body)
            mine.append((time.perf_counter() - start) * 1000)
            if status not in expect:
                with lock:
                    errors[0] += 1
                    unexpected[status] = unexpected.get(status, 0) + 1
            elif on_reply is not None:
                on_reply(index, reply, headers)
        with lock:
            latencies.extend(mine)

    before_cmds = command_stats(rds)
    before_trips = proxy.round_trips if proxy is not None else 0
    before_cpu = stack.cpu_seconds()
    started = time.perf_counter()
    threads = [threading.Thread(target=worker, args=(c,)) for c in clients]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    cpu = stack.cpu_seconds() - before_cpu
    after_cmds = command_stats(rds)
    for client in clients:
        client.conn.close()
    delta = {k: v - before_cmds.get(k, 0) for k, v in after_cmds.items() if v != before_cmds.get(k, 0)}
    delta.pop("info", None)
    round_trips = None if proxy is None else proxy.round_trips - before_trips
    return Result(type(stack).__name__, name, concurrency, count, elapsed, latencies, cpu * 1000, round_trips, sum(delta.values()),
                  errors[0], {"commands": delta, "unexpected_statuses": unexpected})


def seed(stack: Server, project: str, queue: str, count: int) -> list[str]:
    client = Client(stack, project)
    ids: list[str] = []
    for start in range(0, count, 20):
        n = min(20, count - start)
        status, _, body = client("POST", f"/v2/queues/{queue}/messages",
                                 {"messages": [{"body": {"n": start + i, "pad": "x" * 64}} for i in range(n)]})
        assert status == 201, body
        ids += [href.rsplit("/", 1)[1] for href in body["resources"]]
    client.conn.close()
    return ids


def one_round(stack: Server, rds: redis.Redis, conc: int, count: int) -> list[Result]:
    """Every operation once at one concurrency, in a fresh project."""
    project = f"bench-{uuid.uuid4().hex[:8]}"
    body = {"event": "bench", "pad": "x" * 64}
    results = [
        run_phase(stack, rds, project, "post 1", conc, count,
                  lambda c, i: ("POST", "/v2/queues/post1/messages", {"messages": [{"body": body}]}), {201}),
        run_phase(stack, rds, project, "post 10", conc, count,
                  lambda c, i: ("POST", "/v2/queues/post10/messages", {"messages": [{"body": body}] * 10}), {201}),
    ]
    ids = seed(stack, project, "work", count * 10)
    results.append(run_phase(
        stack, rds, project, "list 10", conc, count,
        lambda c, i: ("GET", "/v2/queues/work/messages?limit=10&echo=true", None),
        {200}))
    results.append(run_phase(stack, rds, project, "get", conc, count,
                             lambda c, i: ("GET", f"/v2/queues/work/messages/{ids[i % len(ids)]}", None), {200}))
    claimed: dict[int, tuple[str, list[str]]] = {}

    def keep_claim(index: int, reply: Any, headers: dict[str, str]) -> None:
        claimed[index] = (headers["location"].rsplit("/", 1)[1], [m["id"] for m in reply["messages"]])

    results.append(run_phase(stack, rds, project, "claim 10", conc, count,
                             lambda c, i: ("POST", "/v2/queues/work/claims?limit=10", {"ttl": 300, "grace": 60}),
                             {201}, keep_claim))
    deletions = [(cid, mids[0]) for cid, mids in claimed.values()]
    results.append(run_phase(
        stack, rds, project, "delete (claimed)", conc, len(deletions),
        lambda c, i: ("DELETE", f"/v2/queues/work/messages/{deletions[i][1]}?claim_id={deletions[i][0]}", None),
        {204}))
    releases = [cid for cid, _ in claimed.values()]
    results.append(run_phase(stack, rds, project, "release", conc, len(releases),
                             lambda c, i: ("DELETE", f"/v2/queues/work/claims/{releases[i]}", None), {204}))
    cleanup = Client(stack, project)
    for queue in ("post1", "post10", "work"):
        cleanup("DELETE", f"/v2/queues/{queue}")
    cleanup.conn.close()
    return results


def claim_scaling(stack: Server, rds: redis.Redis, live_claims: int, count: int) -> Result:
    """Claim cost with ``live_claims`` claims holding the oldest messages."""
    project = f"bench-{uuid.uuid4().hex[:8]}"
    seed(stack, project, "scale", (live_claims + count) * 10)
    client = Client(stack, project)
    for _ in range(live_claims):
        status, _, _ = client("POST", "/v2/queues/scale/claims?limit=10", {"ttl": 600})
        assert status == 201
    result = run_phase(stack, rds, project, f"claim 10 ({live_claims} live claims)", 1, count,
                       lambda c, i: ("POST", "/v2/queues/scale/claims?limit=10", {"ttl": 300}), {201})
    client("DELETE", "/v2/queues/scale")
    client.conn.close()
    return result


def measure(start: Callable[[RoundTripProxy | None], Server], redis_url: str, rds: redis.Redis,
            concurrencies: list[int], count: int) -> list[Result]:
    """Timed runs on a stack talking to Redis directly, then round trips counted on one behind the proxy."""
    stack = start(None)
    try:
        results = [r for conc in concurrencies for r in one_round(stack, rds, conc, count)]
        results += [claim_scaling(stack, rds, live, min(count, 200)) for live in (0, 250)]
    finally:
        stack.stop()
    proxy = RoundTripProxy(redis_url)
    counted = start(proxy)
    try:
        one_round(counted, rds, 2, 10)  # warm up: every worker loads its scripts once
        trips = one_round(counted, rds, 1, 50) + [claim_scaling(counted, rds, live, 20) for live in (0, 250)]
    finally:
        counted.stop()
        proxy.close()
    per_op = {r.operation: r.redis_round_trips / r.requests for r in trips if r.redis_round_trips is not None}
    for result in results:
        result.redis_round_trips = per_op.get(result.operation, 0.0) * result.requests
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=int(os.environ.get("BENCH_REQUESTS", "1000")))
    parser.add_argument("--concurrency", default=os.environ.get("BENCH_CONCURRENCY", "1,8,32"))
    parser.add_argument("--workers", type=int, default=int(os.environ.get("WORKERS", "2")))
    parser.add_argument("--upstream", type=Path, help="a virtualenv with zaqar==23.0.1 and pyuwsgi to compare with")
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "latest.json")
    args = parser.parse_args()
    concurrencies = [int(c) for c in args.concurrency.split(",")]

    embedded = None
    redis_url = os.environ.get("BENCH_REDIS_URL")
    if not redis_url:
        from infra.local.embedded_redis import EmbeddedRedis

        embedded = EmbeddedRedis(Path(tempfile.mkdtemp(prefix="zaqar-bench-redis-")), persistent=False)
        redis_url = embedded.url
    rds = redis.Redis.from_url(redis_url)
    results: list[Result] = []
    try:
        results += measure(lambda proxy: Stack(redis_url, args.workers, proxy), redis_url, rds, concurrencies,
                           args.requests)
        if args.upstream is not None:
            from bench.upstream import UpstreamStack

            venv = args.upstream
            results += measure(lambda proxy: UpstreamStack(venv, redis_url, proxy=proxy), redis_url, rds,
                               concurrencies, args.requests)
    finally:
        if embedded is not None:
            embedded.stop()
    rows = [r.row() for r in results]
    columns = ["stack", "operation", "concurrency", "requests", "req_per_s", "p50_ms", "p99_ms", "cpu_ms_per_req",
               "redis_round_trips_per_req", "redis_cmds_per_req", "errors"]
    print(f"redis {redis_url}, {args.workers} stack workers, {os.cpu_count()} cores")
    print(" | ".join(columns))
    for row in rows:
        print(" | ".join(str(row[c]) for c in columns))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"rows": rows, "commands": [r.extra for r in results]}, indent=1))
    # upstream's own failures are findings, not a failed run
    return 1 if any(r.errors for r in results if r.stack == "Stack") else 0


if __name__ == "__main__":
    sys.exit(main())
