"""What the local stack costs when nothing happens.

``python -m bench.idle [--messages N] [--seconds S]`` starts the local stack
as ``make run`` does (``python -m infra.local``: REST workers, the
websocket/delivery process, the embedded AWS and an embedded Redis), on
free loopback ports with a temporary DATA_DIR. Optionally it first posts N
messages (one POST, so one stream record, each) to a queue with a webhook
subscriber and waits until all N notifications arrived, so that the stream
has grown. Then it leaves the stack alone and reads, from /proc, the CPU
time (user + system) of every process of the stack's process tree at the
start and at the end of the idle window, and prints CPU milliseconds per
second of wall time: in total and per process.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import requests

from tests.receiver import receiver

ROOT = Path(__file__).resolve().parents[1]
TICKS = os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Sample:
    pid: int
    parent: int
    cpu_s: float


def _stat(pid: int) -> Sample | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()  # after "pid (comm) "
    # fields[0] is the state, [1] the parent; utime and stime are fields 14 and 15 of stat(5)
    return Sample(pid, int(fields[1]), (int(fields[11]) + int(fields[12])) / TICKS)


def tree(root: int) -> dict[int, Sample]:
    """Every live process under root (root included), from /proc."""
    samples = [s for s in (_stat(int(p)) for p in os.listdir("/proc") if p.isdigit()) if s is not None]
    children: dict[int, list[Sample]] = {}
    for sample in samples:
        children.setdefault(sample.parent, []).append(sample)
    found: dict[int, Sample] = {}
    top = _stat(root)
    todo = [top] if top is not None else []
    while todo:
        sample = todo.pop()
        found[sample.pid] = sample
        todo.extend(children.get(sample.pid, []))
    return found


def _listening_inodes(port: int) -> set[str]:
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            parts = line.split()
            if parts[3] == "0A" and int(parts[1].rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                inodes.add(parts[9])
    return inodes


def _holds(pid: int, inodes: set[str]) -> bool:
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with_target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if with_target.startswith("socket:[") and with_target[8:-1] in inodes:
                return True
    except OSError:
        return False
    return False


def roles(root: int, pids: list[int], ws_port: int) -> dict[int, str]:
    """A name for each process: supervisor, REST worker, websocket/delivery, moto, redis."""
    ws = _listening_inodes(ws_port)
    names = {}
    for pid in pids:
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            command = "?"
        if pid == root:
            names[pid] = "supervisor"
        elif "redis-server" in command:
            names[pid] = "redis"
        elif "moto" in command or "infra.local.aws" in command:
            names[pid] = "aws (moto)"
        elif _holds(pid, ws):
            names[pid] = "websocket + deliveries"
        else:
            names[pid] = "REST worker"
    return names


def _grow(base: str, count: int, subscribed: bool) -> None:
    """Post count messages, one POST (so one stream record) each, to a queue with a webhook subscriber
    (or none), and wait until the delivery loop has read them all: every notification arrived or, with
    no subscriber, that of one last message posted to a subscribed queue (the stream has one shard,
    read in order)."""
    headers = {"Client-ID": str(uuid.uuid4()), "X-Project-ID": "bench-idle"}
    with receiver() as hook:
        marker = "grow" if subscribed else "marker"
        requests.post(f"{base}/v2/queues/{marker}/subscriptions", headers=headers, json={"subscriber": hook.url},
                      timeout=10).raise_for_status()

        def post(i: int) -> None:
            with requests.Session() as http:
                for j in range(i, count, 8):
                    http.post(f"{base}/v2/queues/grow/messages", headers=headers, json={"messages": [{"body": j}]},
                              timeout=30).raise_for_status()

        started = time.monotonic()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(post, range(8)))
        posted = time.monotonic() - started
        if not subscribed:
            requests.post(f"{base}/v2/queues/marker/messages", headers=headers, json={"messages": [{"body": "last"}]},
                          timeout=30).raise_for_status()
        expected = count if subscribed else 1
        hook.wait_for(expected, timeout=max(60.0, count / 5))
        print(f"posted {count} messages in {posted:.1f} s; {len(hook.requests)} of {expected} notifications "
              f"arrived in {time.monotonic() - started:.1f} s", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=0, help="messages to post first, to grow the stream")
    parser.add_argument("--subscriber", action=argparse.BooleanOptionalAction, default=True,
                        help="whether the queue those messages go to has a webhook subscriber")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the idle window")
    parser.add_argument("--settle", type=float, default=5.0, help="wait this long before measuring")
    args = parser.parse_args()
    port, ws_port = _free_port(), _free_port()
    with tempfile.TemporaryDirectory(prefix="zaqar-idle-bench-") as data:
        env = {**os.environ, "PORT": str(port), "WS_PORT": str(ws_port), "MOTO_PORT": str(_free_port()),
               "DATA_DIR": data}
        for name in ("POOL_URL", "CATALOG_URL", "AWS_ENDPOINT_URL", "EVENT_STREAM", "RETRY_QUEUE"):
            env.pop(name, None)
        stack = subprocess.Popen([sys.executable, "-m", "infra.local"], cwd=ROOT, env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            base = f"http://127.0.0.1:{port}"
            for _ in range(600):
                if stack.poll() is not None:
                    raise SystemExit(f"the local stack exited with {stack.returncode}")
                try:
                    if requests.get(base + "/", timeout=1).status_code == 300:
                        break
                except (requests.ConnectionError, requests.Timeout):
                    time.sleep(0.1)
            if args.messages:
                _grow(base, args.messages, args.subscriber)
            time.sleep(args.settle)
            before, started = tree(stack.pid), time.monotonic()
            time.sleep(args.seconds)
            after, elapsed = tree(stack.pid), time.monotonic() - started
            names = roles(stack.pid, sorted(after), ws_port)
        finally:
            stack.terminate()
            stack.wait(timeout=30)
    rows = []
    for pid, sample in sorted(after.items()):
        start = before[pid].cpu_s if pid in before else 0.0
        rows.append((names.get(pid, "?"), pid, (sample.cpu_s - start) * 1000 / elapsed))
    total = sum(rate for _name, _pid, rate in rows)
    grown = f", after {args.messages} messages" if args.messages else ""
    print(f"idle CPU of the local stack over {elapsed:.1f} s{grown}: {total:.1f} ms/s "
          f"({len(rows)} processes; resolution {1000 / TICKS / elapsed:.1f} ms/s per process)")
    for name, pid, rate in sorted(rows, key=lambda row: -row[2]):
        print(f"  {rate:7.1f} ms/s  {name} (pid {pid})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
