"""Benchmark of the local stack: ``python -m bench.run`` (or ``make bench``; ``make bench-upstream``).

Starts the local stack exactly as ``make run`` does (``python -m infra.local``
with its defaults: embedded moto for Kinesis ``EVENT_STREAM``, SQS
``RETRY_QUEUE`` and SES, the websocket/delivery process, ``WORKERS`` = CPU
count), except that ``POOL_URL`` names the benchmark's Redis
(``BENCH_REDIS_URL``, or an embedded Redis of the benchmark's own) so that
upstream, with ``--upstream VENV``, can share it. Then it measures, per
operation and concurrency: requests/s, p50/p99 latency, CPU time per request
of the whole stack (every process under ``infra.local``: REST workers, the
websocket/delivery process, the parent; moto is reported in a column of its
own since it stands in for AWS), Redis commands per request (``INFO
commandstats`` deltas: every command Redis ran, inside scripts too), Redis's
own CPU per request (``INFO cpu`` deltas; in neither side's CPU column, since
the Redis is shared) and Redis round trips per request (counted by a TCP
proxy in front of Redis in a separate pass, ``bench/roundtrips.py``).

Each phase starts once the server's CPU is back to its idle rate, and ends,
after the last reply, once it is back there again: work a request leaves
behind (publishing to and reading from the event stream, deliveries) is
counted for that request's row, not the next one.

The "post 1 (1 webhook subscription)" rows subscribe a webhook on the queue
first, pointing at ``bench/receiver.py`` (a process of its own, counted for
neither side), post N messages, wait until all N notifications arrived, and
count CPU until the last one did. Upstream runs them with its notifier on.

Load comes from threads in this process; the load generator shares the
machine's cores with the servers, so throughput and latency are lower
bounds, while CPU per request and round trips are properties of the servers.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import socket
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

import psutil
import redis

from bench.process import ProcessServer, free_port
from bench.roundtrips import RoundTripProxy

ROOT = Path(__file__).resolve().parents[1]
NOTIFY_OP = "post 1 (1 webhook subscription)"
BASE_OPS = ["post 1", "post 10", "list 10", "get", "claim 10", "delete (claimed)", "release", "claim 10 + delete"]
# the rows the CPU target is about: at most this fraction of upstream's CPU per request
CPU_TARGET_OPS = ["post 1", "post 10", "claim 10 + delete", "release", "list 10"]
CPU_TARGET_CONCURRENCIES = [1, 8]
CPU_TARGET_RATIO = 0.25
WEBHOOK_P50_TARGET_MS = 100.0
NONE = "-"  # a cell with nothing measured


class Server(Protocol):
    port: int
    proxy: RoundTripProxy | None
    keep_alive: bool

    def cpu_split(self) -> tuple[float, float]: ...

    def describe(self) -> str: ...

    def stop(self) -> None: ...


# ---------------------------------------------------------------- the local stack, as `make run` starts it

# Variables the stack reads, beside what the regular expression below finds in its sources: the benchmark
# clears them all, so that the stack runs on its own defaults whatever the calling shell exports.
_KNOWN_VARIABLES = {
    "PORT", "WS_PORT", "MOTO_PORT", "WORKERS", "POOL_URL", "CATALOG_URL", "DATA_DIR", "STATE_URL", "EVENT_STREAM",
    "RETRY_QUEUE", "SES_SENDER", "SIGNING_KEY", "MESSAGE_ENCRYPTION_KEY", "WEBHOOK_ALLOW_LOOPBACK", "WEBHOOK_TIMEOUT",
    "REQUEST_LOG", "PUBLIC_URL", "WEBSOCKET_API_ID", "WEBSOCKET_STAGE", "ADMIN_MODE", "AUTH_STRATEGY",
    "REQUIRE_CONFIRMATION", "CATALOG_AUTO_MIGRATE", "CATALOG_CACHE_TTL", "CLIENT_ID_UUID_SAFE",
}
_READ_PATTERN = re.compile(r'\benv(?:iron)?(?:\.get\(|\.setdefault\(|\.pop\(|\[|,\s*)\s*"([A-Z][A-Z0-9_]+)"')


def stack_variables() -> set[str]:
    names = set(_KNOWN_VARIABLES)
    for path in [ROOT / "chalicelib" / "config.py", *sorted((ROOT / "infra" / "local").glob("*.py"))]:
        names |= set(_READ_PATTERN.findall(path.read_text()))
    return names


def _cmdline(proc: psutil.Process) -> str:
    try:
        return " ".join(proc.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return ""


class Stack(ProcessServer):
    keep_alive = True

    def __init__(self, redis_url: str, proxy: RoundTripProxy | None = None, workers: int | None = None) -> None:
        redis_url = self._prepare(redis_url, proxy, "zaqar-bench-")
        work = Path(self._dir.name)
        variables = stack_variables()
        env = {k: v for k, v in os.environ.items() if k not in variables and not k.startswith("AWS_")}
        self.cleared = sorted(k for k in os.environ if k not in env)
        self.workers_override = workers
        self.moto_port, self.ws_port = free_port(), free_port()
        # ports and the data folder are chosen so as not to collide with a `make run` on this machine
        env.update({"PORT": str(self.port), "WS_PORT": str(self.ws_port), "MOTO_PORT": str(self.moto_port),
                    "DATA_DIR": str(work / "data"), "POOL_URL": redis_url})
        if workers is not None:
            env["WORKERS"] = str(workers)
        self._log = work / "stack.log"
        self._stand_ins: dict[int, bool] = {}
        self._listeners: set[int] = set()
        with self._log.open("wb") as log:
            self.process = subprocess.Popen([sys.executable, "-m", "infra.local"], cwd=ROOT, env=env, stdout=log,
                                            stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
                conn.request("GET", "/")
                ok = conn.getresponse().status == 300
                conn.close()
                if ok:
                    socket.create_connection(("127.0.0.1", self.ws_port), timeout=1).close()
                    return
            except OSError:
                pass
            time.sleep(0.1)
        output = self._log.read_text(errors="replace")[-3000:]
        self.stop()
        raise RuntimeError(f"the local stack did not start:\n{output}")

    def _stand_in(self, proc: psutil.Process) -> bool:
        """The embedded AWS is whichever process of the tree listens on MOTO_PORT (and anything under it),
        however the stack starts it."""
        known = self._stand_ins.get(proc.pid)
        if known is None:
            listeners = self._aws_listeners()
            try:
                lineage = {proc.pid, *(p.pid for p in proc.parents())}
            except psutil.NoSuchProcess:
                lineage = {proc.pid}
            known = bool(lineage & listeners)
            if listeners:  # cache only once the listener is known
                self._stand_ins[proc.pid] = known
        return known

    def _aws_listeners(self) -> set[int]:
        if not self._listeners:
            for proc in [psutil.Process(self.process.pid), *psutil.Process(self.process.pid).children(recursive=True)]:
                try:
                    if any(c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == self.moto_port
                           for c in proc.net_connections(kind="tcp")):
                        self._listeners.add(proc.pid)
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    pass
        return self._listeners

    def describe(self) -> str:
        log = self._log.read_text(errors="replace")
        match = re.search(r"\((\d+) workers\)", log)
        parent = psutil.Process(self.process.pid)
        forked = [p for p in parent.children() if not self._stand_in(p)]
        moto = [p for p in parent.children(recursive=True) if self._stand_in(p)]
        commands = "; ".join(sorted({_cmdline(p).replace(sys.executable, "python") for p in moto})) or "not found"
        aws = self._aws_resources()
        workers = match.group(1) if match else "?"
        source = f"WORKERS={self.workers_override} (--workers)" if self.workers_override else \
            f"WORKERS unset: CPU count, {os.cpu_count()}"
        lines = [
            f"ours: {sys.executable} -m infra.local, make run's defaults; {workers} REST workers ({source}) and the "
            f"websocket/delivery process: {len(forked)} processes forked from the parent, all counted",
            f"  embedded AWS (moto), the {len(moto)} process(es) listening on MOTO_PORT and under it, CPU reported "
            f"apart: {commands}; {aws}",
            "  POOL_URL = the benchmark's Redis instead of make run's embedded Redis under DATA_DIR "
            "(both stacks share it); PORT, WS_PORT, MOTO_PORT, DATA_DIR: free ports and a temporary folder",
        ]
        if self.cleared:
            lines.append(f"  cleared from the inherited environment: {', '.join(self.cleared)}")
        return "\n".join(lines)

    def _aws_resources(self) -> str:
        try:
            import boto3

            options: dict[str, Any] = {
                "endpoint_url": f"http://127.0.0.1:{self.moto_port}", "region_name": "us-east-1",
                "aws_access_key_id": "local", "aws_secret_access_key": "local"}
            streams = boto3.client("kinesis", **options).list_streams()["StreamNames"]
            queues = [u.rsplit("/", 1)[1] for u in boto3.client("sqs", **options).list_queues().get("QueueUrls", [])]
            senders = boto3.client("ses", **options).list_identities()["Identities"]
            return f"Kinesis streams {streams}, SQS queues {queues}, SES identities {senders}"
        except Exception as exc:  # a description only: never fail the run for it
            return f"(could not list its resources: {exc})"


# ---------------------------------------------------------------- load and measurement

@dataclass
class Result:
    stack: str
    operation: str
    concurrency: int
    requests: int
    seconds: float
    latencies_ms: list[float]
    cpu_ms: float
    aux_cpu_ms: float
    redis_round_trips: float | None
    redis_commands: float
    redis_cpu_ms: float = 0.0
    errors: int = 0
    delivered: int | None = None
    delivery_ms: list[float] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    def row(self) -> dict[str, Any]:
        lat = sorted(self.latencies_ms) or [0.0]
        n = max(1, self.requests)
        return {
            "stack": self.stack,
            "operation": self.operation,
            "concurrency": self.concurrency,
            "requests": self.requests,
            "req_per_s": round(self.requests / self.seconds, 1) if self.seconds else 0.0,
            "p50_ms": round(statistics.median(lat), 3),
            "p99_ms": round(percentile(lat, 0.99), 3),
            "cpu_ms_per_req": round(self.cpu_ms / n, 3),
            "aux_cpu_ms_per_req": round(self.aux_cpu_ms / n, 3),
            "redis_round_trips_per_req": (
                None if self.redis_round_trips is None else round(self.redis_round_trips / n, 2)
            ),
            "redis_cmds_per_req": round(self.redis_commands / n, 1),
            "redis_cpu_ms_per_req": round(self.redis_cpu_ms / n, 3),
            "errors": self.errors,
            "delivered": self.delivered,
            "delivery_p50_ms": round(statistics.median(self.delivery_ms), 1) if self.delivery_ms else None,
            "delivery_p99_ms": round(percentile(sorted(self.delivery_ms), 0.99), 1) if self.delivery_ms else None,
            **({"deletes_per_group": self.extra["deletes_per_group"]} if "deletes_per_group" in self.extra else {}),
        }


def percentile(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] if ordered else 0.0


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


Step = Callable[[Client, int], int | None]
"""One unit of a phase (a request, or a claim and its deletes); returns an unexpected status, or None."""


def request(make: Callable[[int], tuple[str, str, Any]], expect: set[int],
            on_reply: Callable[[int, Any, dict[str, str]], None] | None = None) -> Step:
    def step(client: Client, index: int) -> int | None:
        method, path, body = make(index)
        status, headers, reply = client(method, path, body)
        if status not in expect:
            return status
        if on_reply is not None:
            on_reply(index, reply, headers)
        return None
    return step


def command_stats(client: redis.Redis) -> dict[str, int]:
    stats = client.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in stats.items()}


def redis_cpu_seconds(client: redis.Redis) -> float:
    """CPU Redis has used (user + system, its own getrusage), whichever stack asked."""
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def command_total(client: redis.Redis) -> int:
    """Every command Redis ran but the benchmark's own INFO."""
    return sum(calls for name, calls in command_stats(client).items() if name != "info")


class Bench:
    """One started server: its idle CPU rate, and phases run against it."""

    WINDOW_S = 0.25  # /proc counts CPU in 10 ms ticks: a window must hold several

    def __init__(self, server: Server, label: str, rds: redis.Redis, idle_s: float = 3.0) -> None:
        self.server, self.label, self.rds = server, label, rds
        time.sleep(0.5)
        own0, aux0 = server.cpu_split()
        trips0 = server.proxy.round_trips if server.proxy is not None else 0
        cmds0 = command_total(rds)
        time.sleep(idle_s)
        own1, aux1 = server.cpu_split()
        self.idle_rate = (own1 - own0) / idle_s  # CPU seconds per second while nothing is asked of it
        self.idle_aux_rate = (aux1 - aux0) / idle_s
        self.idle_trips_rate = ((server.proxy.round_trips - trips0) / idle_s) if server.proxy is not None else None
        self.idle_cmds_rate = (command_total(rds) - cmds0) / idle_s

    def quiesce(self, limit_s: float = 20.0) -> float:
        """Wait until the server's CPU over one window is back near its idle rate; returns the seconds waited."""
        started = time.monotonic()
        threshold = self.idle_rate + self.idle_aux_rate
        threshold = threshold * 1.5 + 0.05
        last, at = sum(self.server.cpu_split()), started
        while time.monotonic() - started < limit_s:
            time.sleep(self.WINDOW_S)
            now, now_at = sum(self.server.cpu_split()), time.monotonic()
            if (now - last) / (now_at - at) <= threshold:
                break
            last, at = now, now_at
        return time.monotonic() - started

    def phase(self, project: str, name: str, concurrency: int, count: int, step: Step,
              settle: Callable[[], dict[str, Any]] | None = None) -> Result:
        print(f"  {self.label}: {name}, concurrency {concurrency}, {count} requests", file=sys.stderr, flush=True)
        proxy = self.server.proxy
        clients = [Client(self.server, project) for _ in range(concurrency)]
        latencies: list[float] = []
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
                start = time.perf_counter()
                status = step(client, index)
                mine.append((time.perf_counter() - start) * 1000)
                if status is not None:
                    with lock:
                        unexpected[status] = unexpected.get(status, 0) + 1
            with lock:
                latencies.extend(mine)

        waited_before = self.quiesce()
        before_cmds = command_stats(self.rds)
        before_trips = proxy.round_trips if proxy is not None else 0
        before_own, before_aux = self.server.cpu_split()
        before_redis = redis_cpu_seconds(self.rds)
        started = time.perf_counter()
        threads = [threading.Thread(target=worker, args=(c,)) for c in clients]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
        settled = settle() if settle is not None else {}
        drained = self.quiesce()
        after_own, after_aux = self.server.cpu_split()
        after_redis = redis_cpu_seconds(self.rds)
        after_cmds = command_stats(self.rds)
        for client in clients:
            client.conn.close()
        delta = {k: v - before_cmds.get(k, 0) for k, v in after_cmds.items() if v != before_cmds.get(k, 0)}
        delta.pop("info", None)  # the benchmark's own
        round_trips = None if proxy is None else proxy.round_trips - before_trips
        errors = sum(unexpected.values()) + int(settled.get("missing", 0))
        return Result(self.label, name, concurrency, count, elapsed, latencies, (after_own - before_own) * 1000,
                      (after_aux - before_aux) * 1000, round_trips, sum(delta.values()),
                      (after_redis - before_redis) * 1000, errors,
                      settled.get("delivered"), settled.get("delivery_ms", []),
                      {"commands": delta, "unexpected_statuses": unexpected, "quiesce_before_s": round(waited_before, 2),
                       "drain_after_s": round(drained, 2),
                       **{k: v for k, v in settled.items() if k not in ("delivery_ms",)}})


def seed(server: Server, project: str, queue: str, count: int) -> list[str]:
    client = Client(server, project)
    ids: list[str] = []
    for start in range(0, count, 20):
        n = min(20, count - start)
        status, _, body = client("POST", f"/v2/queues/{queue}/messages",
                                 {"messages": [{"body": {"n": start + i, "pad": "x" * 64}} for i in range(n)]})
        assert status == 201, body
        ids += [href.rsplit("/", 1)[1] for href in body["resources"]]
    client.conn.close()
    return ids


def _claim_id(headers: dict[str, str]) -> str:
    return headers["location"].split("?", 1)[0].rsplit("/", 1)[1]


def one_round(bench: Bench, conc: int, count: int) -> list[Result]:
    """Every operation once at one concurrency, in a fresh project."""
    server = bench.server
    project = f"bench-{uuid.uuid4().hex[:8]}"
    body = {"event": "bench", "pad": "x" * 64}
    results = [
        bench.phase(project, "post 1", conc, count,
                    request(lambda i: ("POST", "/v2/queues/post1/messages", {"messages": [{"body": body}]}), {201})),
        bench.phase(project, "post 10", conc, count,
                    request(lambda i: ("POST", "/v2/queues/post10/messages", {"messages": [{"body": body}] * 10}),
                            {201})),
    ]
    ids = seed(server, project, "work", count * 10)
    results.append(bench.phase(project, "list 10", conc, count,
                               request(lambda i: ("GET", "/v2/queues/work/messages?limit=10&echo=true", None), {200})))
    results.append(bench.phase(project, "get", conc, count,
                               request(lambda i: ("GET", f"/v2/queues/work/messages/{ids[i % len(ids)]}", None),
                                       {200})))
    claimed: dict[int, tuple[str, list[str]]] = {}

    def keep_claim(index: int, reply: Any, headers: dict[str, str]) -> None:
        claimed[index] = (_claim_id(headers), [m["id"] for m in reply["messages"]])

    results.append(bench.phase(project, "claim 10", conc, count,
                               request(lambda i: ("POST", "/v2/queues/work/claims?limit=10", {"ttl": 300, "grace": 60}),
                                       {201}, keep_claim)))
    deletions = [(cid, mids[0]) for cid, mids in claimed.values()]
    results.append(bench.phase(
        project, "delete (claimed)", conc, len(deletions),
        request(lambda i: ("DELETE", f"/v2/queues/work/messages/{deletions[i][1]}?claim_id={deletions[i][0]}", None),
                {204})))
    releases = [cid for cid, _ in claimed.values()]
    results.append(bench.phase(project, "release", conc, len(releases),
                               request(lambda i: ("DELETE", f"/v2/queues/work/claims/{releases[i]}", None), {204})))
    seed(server, project, "claimdel", count * 10)
    deleted = [0]
    lock = threading.Lock()

    def claim_and_delete(client: Client, index: int) -> int | None:
        status, headers, reply = client("POST", "/v2/queues/claimdel/claims?limit=10", {"ttl": 300, "grace": 60})
        if status != 201:
            return status
        claim_id = _claim_id(headers)
        bad = None
        for message in reply["messages"]:
            status, _, _ = client("DELETE", f"/v2/queues/claimdel/messages/{message['id']}?claim_id={claim_id}")
            if status != 204:
                bad = status
        with lock:
            deleted[0] += len(reply["messages"])
        return bad

    group = bench.phase(project, "claim 10 + delete", conc, count, claim_and_delete)
    group.extra["deletes_per_group"] = round(deleted[0] / max(1, count), 2)
    results.append(group)
    cleanup = Client(server, project)
    for queue in ("post1", "post10", "work", "claimdel"):
        cleanup("DELETE", f"/v2/queues/{queue}")
    cleanup.conn.close()
    return results


def claim_scaling(bench: Bench, live_claims: int, count: int) -> Result:
    """Claim cost with ``live_claims`` claims holding the oldest messages."""
    server = bench.server
    project = f"bench-{uuid.uuid4().hex[:8]}"
    seed(server, project, "scale", (live_claims + count) * 10)
    client = Client(server, project)
    for _ in range(live_claims):
        status, _, _ = client("POST", "/v2/queues/scale/claims?limit=10", {"ttl": 600})
        assert status == 201
    result = bench.phase(project, f"claim 10 ({live_claims} live claims)", 1, count,
                         request(lambda i: ("POST", "/v2/queues/scale/claims?limit=10", {"ttl": 300}), {201}))
    client("DELETE", "/v2/queues/scale")
    client.conn.close()
    return result


# ---------------------------------------------------------------- webhooks

class Receiver:
    """``bench/receiver.py`` in a process of its own (its CPU is nobody's)."""

    def __init__(self) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", "bench.receiver"], cwd=ROOT, stdout=subprocess.PIPE)
        assert self.process.stdout is not None
        line = self.process.stdout.readline().decode()
        if not line.startswith("port "):
            self.process.kill()
            raise RuntimeError("the webhook receiver did not start")
        self.port = int(line.split()[1])
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self._conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)

    def _get(self, path: str) -> Any:
        self._conn.request("GET", path)
        return json.loads(self._conn.getresponse().read())

    def count(self, run: str) -> int:
        return int(self._get(f"/count?run={run}")["count"])

    def wait(self, run: str, count: int, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        seen = self.count(run)
        while seen < count and time.monotonic() < deadline:
            time.sleep(0.01)
            seen = self.count(run)
        return seen

    def arrivals(self, run: str) -> dict[int, float]:
        return {int(seq): float(at) for seq, at in self._get(f"/arrivals?run={run}")["arrivals"]}

    def stats(self, run: str) -> dict[str, Any]:
        return dict(self._get(f"/count?run={run}"))

    def stop(self) -> None:
        self._conn.close()
        self.process.terminate()
        self.process.wait(timeout=10)


def notify_round(bench: Bench, hook: Receiver, conc: int, count: int, timeout: float) -> Result:
    """Posts of 1 message to a queue with one webhook subscription, delivery included."""
    server = bench.server
    project = f"bench-{uuid.uuid4().hex[:8]}"
    path = "/v2/queues/hooked/messages"
    client = Client(server, project)
    status, _, reply = client("POST", "/v2/queues/hooked/subscriptions", {"subscriber": hook.url, "ttl": 3600})
    assert status == 201, (status, reply)
    # one notification through before the row: the delivery path is up and its code loaded, on both sides
    warm = uuid.uuid4().hex
    status, _, reply = client("POST", path, {"messages": [{"body": {"run": warm, "seq": 0}}]})
    assert status == 201, (status, reply)
    warmed = hook.wait(warm, 1, 30)
    if not warmed:
        print(f"  {bench.label}: no notification arrived within 30 s of a warm-up post", file=sys.stderr)
    run = uuid.uuid4().hex
    sent: dict[int, float] = {}

    def post(client: Client, index: int) -> int | None:
        body = {"messages": [{"body": {"run": run, "seq": index, "pad": "x" * 64}}]}
        sent[index] = time.monotonic()
        status, _, _ = client("POST", path, body)
        return None if status == 201 else status

    def settle() -> dict[str, Any]:
        started = time.monotonic()
        arrived = hook.wait(run, count, timeout if warmed else 5)
        return {"delivered": arrived, "missing": count - arrived, "wait_after_last_reply_s": time.monotonic() - started}

    result = bench.phase(project, NOTIFY_OP, conc, count, post, settle)
    arrivals = hook.arrivals(run)
    result.delivery_ms = [(at - sent[seq]) * 1000 for seq, at in arrivals.items() if seq in sent]
    result.extra["receiver"] = hook.stats(run)
    client("DELETE", "/v2/queues/hooked")
    client.conn.close()
    return result


# ---------------------------------------------------------------- a whole run on one configuration

@dataclass
class StackRun:
    label: str
    description: str
    results: list[Result]
    idle: dict[str, float | None]


Plan = Callable[[Bench, bool], list[Result]]
"""What to run on a started server; the flag says this is the round-trip counting pass (keep it short)."""


def measure(label: str, start: Callable[[RoundTripProxy | None], Server], redis_url: str, rds: redis.Redis,
            plan: Plan) -> StackRun:
    """Timed runs on a server talking to Redis directly, then round trips counted on one behind the proxy."""
    print(f"{label}: timed pass", file=sys.stderr, flush=True)
    server = start(None)
    try:
        description = server.describe()
        bench = Bench(server, label, rds)
        idle: dict[str, float | None] = {"cpu_ms_per_s": round(bench.idle_rate * 1000, 1),
                                         "aux_cpu_ms_per_s": round(bench.idle_aux_rate * 1000, 1),
                                         "redis_cmds_per_s": round(bench.idle_cmds_rate, 1)}
        results = plan(bench, False)
    finally:
        server.stop()
    print(f"{label}: round-trip counting pass", file=sys.stderr, flush=True)
    proxy = RoundTripProxy(redis_url)
    counted = start(proxy)
    try:
        counting = Bench(counted, label, rds)
        idle["redis_round_trips_per_s"] = (None if counting.idle_trips_rate is None
                                           else round(counting.idle_trips_rate, 1))
        trips = plan(counting, True)
    finally:
        counted.stop()
        proxy.close()
    per_op = {r.operation: r.redis_round_trips / r.requests for r in trips
              if r.redis_round_trips is not None and r.requests}
    for result in results:
        result.redis_round_trips = per_op.get(result.operation, 0.0) * result.requests
    return StackRun(label, description, results, idle)


def make_plan(concurrencies: list[int], count: int, notify_concurrencies: list[int], hook: Receiver | None,
              timeout: float, base: bool = True) -> Plan:
    def plan(bench: Bench, counting: bool) -> list[Result]:
        results: list[Result] = []
        if base and counting:
            one_round(bench, 2, 10)  # warm up: every worker loads its scripts once
            results += one_round(bench, 1, 50) + [claim_scaling(bench, live, 20) for live in (0, 250)]
        elif base:
            results += [r for conc in concurrencies for r in one_round(bench, conc, count)]
            results += [claim_scaling(bench, live, min(count, 200)) for live in (0, 250)]
        if hook is not None:
            for conc in [1] if counting else notify_concurrencies:
                results.append(notify_round(bench, hook, conc, 50 if counting else count, timeout))
        return results
    return plan


# ---------------------------------------------------------------- output

def _num(value: float | None, digits: int = 2) -> str:
    if value is None:
        return NONE
    return f"{value:.{digits}f}"


def _ratio(ours: float | None, theirs: float | None) -> float | None:
    if ours is None or not theirs:
        return None
    return ours / theirs


def _pair(ours: dict[str, Any] | None, theirs: dict[str, Any] | None, key: str, digits: int = 2) -> str:
    return f"{_num(ours[key] if ours else None, digits)} / {_num(theirs[key] if theirs else None, digits)}"


def ordered_keys(rows: list[dict[str, Any]]) -> list[tuple[str, int]]:
    """(operation, concurrency) in the README's order: every base operation per concurrency, then the rest."""
    keys: list[tuple[str, int]] = []
    for row in rows:
        key = (row["operation"], row["concurrency"])
        if key not in keys:
            keys.append(key)

    def rank(key: tuple[str, int]) -> tuple[int, int, int]:
        op, conc = key
        if op in BASE_OPS:
            return (0, conc, BASE_OPS.index(op))
        if op == NOTIFY_OP:
            return (2, conc, 0)
        return (1, 0, keys.index(key))
    return sorted(keys, key=rank)


def markdown(ours: dict[tuple[str, int], dict[str, Any]], theirs: dict[tuple[str, int], dict[str, Any]],
             keys: list[tuple[str, int]]) -> str:
    header = ["operation", "conc.", "req/s ours / upstream", "p50 ms ours / upstream",
              "CPU ms/req ours / upstream (ratio)", "moto CPU ms/req (ratio incl. moto)",
              "Redis round trips ours / upstream", "Redis cmds ours / upstream", "Redis CPU ms/req ours / upstream",
              "webhooks delivered ours / upstream", "post-to-webhook p50 / p99 ms: ours; upstream", "upstream failures"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for key in keys:
        o, t = ours.get(key), theirs.get(key)
        cpu_ratio = _ratio(o["cpu_ms_per_req"] if o else None, t["cpu_ms_per_req"] if t else None)
        with_moto = _ratio(o["cpu_ms_per_req"] + o["aux_cpu_ms_per_req"] if o else None,
                           t["cpu_ms_per_req"] if t else None)
        notify = key[0] == NOTIFY_OP

        def delivered(row: dict[str, Any] | None) -> str:
            return NONE if row is None or row["delivered"] is None else f"{row['delivered']}/{row['requests']}"

        def latency(row: dict[str, Any] | None) -> str:
            return NONE if row is None or row["delivery_p50_ms"] is None else \
                f"{row['delivery_p50_ms']:.1f} / {row['delivery_p99_ms']:.1f}"

        cells = [
            key[0], str(key[1]),
            _pair(o, t, "req_per_s", 1), _pair(o, t, "p50_ms", 3),
            f"{_pair(o, t, 'cpu_ms_per_req')} ({_num(cpu_ratio)})",
            f"{_num(o['aux_cpu_ms_per_req'] if o else None)} ({_num(with_moto)})",
            _pair(o, t, "redis_round_trips_per_req"), _pair(o, t, "redis_cmds_per_req", 1),
            _pair(o, t, "redis_cpu_ms_per_req", 3),
            f"{delivered(o)} / {delivered(t)}" if notify else NONE,
            f"{latency(o)}; {latency(t)}" if notify else NONE,
            NONE if t is None else str(t["errors"]),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    deletes = sorted({o["deletes_per_group"] for o in [*ours.values(), *theirs.values()] if "deletes_per_group" in o})
    lines += [
        "",
        "- CPU ms/req: user + system CPU of every process of the stack, from /proc (ours: the parent, the REST "
        "workers, the websocket/delivery process; upstream: uWSGI's master and workers); the embedded AWS (moto) "
        "in a column of its own, Redis (shared by both) in another.",
        "- claim 10 + delete: per group, one claim of 10 then a DELETE of each claimed message with its claim id "
        f"({' / '.join(f'{d:g}' for d in deletes) or '-'} deletes per group).",
        f"- {NOTIFY_OP}: a webhook subscribed first; CPU until the last notification arrived at a receiver on "
        "loopback (its own process, counted for neither); latency from sending the POST to the receiver's arrival "
        "time. Upstream with `[storage] message_pipeline = zaqar.notification.notifier`, the other rows without.",
    ]
    return "\n".join(lines) + "\n"


def target_checks(ours: dict[tuple[str, int], dict[str, Any]],
                  theirs: dict[tuple[str, int], dict[str, Any]]) -> list[str]:
    lines = []
    for op in CPU_TARGET_OPS:
        for conc in CPU_TARGET_CONCURRENCIES:
            o, t = ours.get((op, conc)), theirs.get((op, conc))
            if o is None or t is None:
                lines.append(f"CPU {op} c{conc}: not measured on both sides")
                continue
            ratio = _ratio(o["cpu_ms_per_req"], t["cpu_ms_per_req"])
            verdict = "ok" if ratio is not None and ratio <= CPU_TARGET_RATIO else "MISSED"
            lines.append(f"CPU {op} c{conc}: {_num(ratio, 3)} of upstream (target <= {CPU_TARGET_RATIO}): {verdict}")
    for conc in CPU_TARGET_CONCURRENCIES:
        o, t = ours.get((NOTIFY_OP, conc)), theirs.get((NOTIFY_OP, conc))
        if o is None or t is None:
            continue
        ratio = _ratio(o["cpu_ms_per_req"], t["cpu_ms_per_req"])
        verdict = "ok" if ratio is not None and ratio <= 1.0 else "MISSED"
        lines.append(f"CPU {NOTIFY_OP} c{conc}: {_num(ratio, 3)} of upstream with its notifier, moto left out "
                     f"(target <= 1): {verdict}")
    o = ours.get((NOTIFY_OP, 1))
    if o is not None and o["delivery_p50_ms"] is not None:
        verdict = "ok" if o["delivery_p50_ms"] <= WEBHOOK_P50_TARGET_MS else "MISSED"
        lines.append(f"post-to-webhook p50 c1: {o['delivery_p50_ms']} ms (target <= {WEBHOOK_P50_TARGET_MS:g}): "
                     f"{verdict}")
    return lines


def report(runs: list[StackRun], redis_url: str, embedded: bool, args: argparse.Namespace) -> str:
    out: list[str] = []
    out.append(f"redis {redis_url} ({'embedded, started by the benchmark' if embedded else 'BENCH_REDIS_URL'}), "
               f"{os.cpu_count()} cores, {args.requests} requests per row")
    for run in runs:
        out.append(run.description)
        idle = run.idle
        out.append(f"  {run.label} idle: {idle['cpu_ms_per_s']} ms CPU/s"
                   + (f" (+ moto {idle['aux_cpu_ms_per_s']} ms/s)" if run.label == "ours" else "")
                   + f", {idle['redis_cmds_per_s']} Redis cmds/s, {idle.get('redis_round_trips_per_s')} round trips/s"
                   " (counted in every row, as it is part of the configuration)")
    ours_rows = [r.row() for run in runs if run.label == "ours" for r in run.results]
    theirs_rows = [r.row() for run in runs if run.label != "ours" for r in run.results]
    ours = {(r["operation"], r["concurrency"]): r for r in ours_rows}
    theirs = {(r["operation"], r["concurrency"]): r for r in theirs_rows}
    columns = ["stack", "operation", "concurrency", "requests", "req_per_s", "p50_ms", "p99_ms", "cpu_ms_per_req",
               "aux_cpu_ms_per_req", "redis_round_trips_per_req", "redis_cmds_per_req", "redis_cpu_ms_per_req",
               "errors", "delivered",
               "delivery_p50_ms", "delivery_p99_ms"]
    out.append("")
    out.append(" | ".join(columns))
    for row in ours_rows + theirs_rows:
        out.append(" | ".join(str(row[c]) for c in columns))
    keys = ordered_keys(ours_rows + theirs_rows)
    if theirs:
        out.append("")
        out.append("ratios ours / upstream: operation | concurrency | CPU | CPU incl. moto | req/s | p50")
        for key in keys:
            o, t = ours.get(key), theirs.get(key)
            if o is None or t is None:
                continue
            cpu = _ratio(o["cpu_ms_per_req"], t["cpu_ms_per_req"])
            moto = _ratio(o["cpu_ms_per_req"] + o["aux_cpu_ms_per_req"], t["cpu_ms_per_req"])
            out.append(f"{key[0]} | {key[1]} | {_num(cpu)} | {_num(moto)} | "
                       f"{_num(_ratio(o['req_per_s'], t['req_per_s']))} | {_num(_ratio(o['p50_ms'], t['p50_ms']))}")
        out.append("")
        out.extend(target_checks(ours, theirs))
    out.append("")
    out.append(markdown(ours, theirs, keys))
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=int(os.environ.get("BENCH_REQUESTS", "1000")),
                        help="requests (or claim + delete groups) per row")
    parser.add_argument("--concurrency", default=os.environ.get("BENCH_CONCURRENCY", "1,8,32"))
    parser.add_argument("--notify-concurrency", default="1,8",
                        help="concurrencies of the rows with a webhook subscription ('' for none)")
    parser.add_argument("--delivery-timeout", type=float, default=60.0,
                        help="seconds to wait, after the last post of a row, for its notifications")
    parser.add_argument("--workers", type=int, default=None,
                        help="set WORKERS for our stack (default: unset, as make run: one per CPU)")
    parser.add_argument("--upstream", type=Path, help="a virtualenv with zaqar==23.0.1 and pyuwsgi to compare with")
    parser.add_argument("--upstream-processes", type=int, default=4)
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "latest.json")
    parser.add_argument("--markdown", type=Path, help="also write the Markdown table to this file")
    args = parser.parse_args()
    concurrencies = [int(c) for c in args.concurrency.split(",") if c]
    notify_concurrencies = [int(c) for c in args.notify_concurrency.split(",") if c]

    embedded = None
    redis_url = os.environ.get("BENCH_REDIS_URL")
    if not redis_url:
        from infra.local.embedded_redis import EmbeddedRedis

        embedded = EmbeddedRedis(Path(tempfile.mkdtemp(prefix="zaqar-bench-redis-")), persistent=False)
        redis_url = embedded.url
    rds = redis.Redis.from_url(redis_url)
    hook = Receiver() if notify_concurrencies else None
    runs: list[StackRun] = []
    try:
        runs.append(measure("ours", lambda proxy: Stack(redis_url, proxy, args.workers), redis_url, rds,
                            make_plan(concurrencies, args.requests, notify_concurrencies, hook,
                                      args.delivery_timeout)))
        if args.upstream is not None:
            from bench.upstream import UpstreamStack

            venv, processes = args.upstream, args.upstream_processes
            runs.append(measure("upstream", lambda proxy: UpstreamStack(venv, redis_url, processes, proxy), redis_url,
                                rds, make_plan(concurrencies, args.requests, [], None, args.delivery_timeout)))
            if hook is not None:
                runs.append(measure(
                    "upstream", lambda proxy: UpstreamStack(venv, redis_url, processes, proxy, notifier=True),
                    redis_url, rds, make_plan([], args.requests, notify_concurrencies, hook, args.delivery_timeout,
                                              base=False)))
    finally:
        if hook is not None:
            hook.stop()
        if embedded is not None:
            embedded.stop()
    text = report(runs, redis_url, embedded is not None, args)
    print(text)
    table = text[text.rindex("| operation |"):]
    if args.markdown is not None:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(table)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({
        "runs": [{"label": run.label, "description": run.description, "idle": run.idle,
                  "rows": [r.row() for r in run.results], "details": [r.extra for r in run.results]} for run in runs],
    }, indent=1))
    # upstream's own failures are findings, not a failed run
    return 1 if any(r.errors for run in runs if run.label == "ours" for r in run.results) else 0


if __name__ == "__main__":
    sys.exit(main())
