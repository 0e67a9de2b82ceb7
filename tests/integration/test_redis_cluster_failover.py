"""Redis Cluster pools under failure: a real cluster of 3 primaries with a replica each (tests/redis_cluster.py),
a producer and a consumer on one queue, and a primary killed or the queue's slot moved under that load.

With ``wait_replicas=1`` every acknowledged write is on a replica before the answer, so a failover loses no
acknowledged post, gives no message to two claims and brings back no acknowledged delete; what fails in between
is a 503 (errors.Unavailable), and the same store goes on after the failover without a restart.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from redis.cluster import key_slot

from chalicelib import errors
from chalicelib.storage.base import NewMessage
from chalicelib.storage.redis import keys
from chalicelib.storage.redis.driver import RedisStore
from tests.redis_cluster import Cluster, redis_cluster

pytestmark = [pytest.mark.redis, pytest.mark.cluster]
Q = "busy"


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    with redis_cluster(tmp_path) as running:
        yield running


@dataclass
class Load:
    """A producer and a consumer on one queue, and what each was told."""

    store: RedisStore
    project: str
    posted: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    tried: set[str] = field(default_factory=set)
    """every message a delete was sent for: a 503'd delete may still have been applied"""
    claims: dict[str, str] = field(default_factory=dict)
    """message id -> the claim that got it first; a second claim of it is a double claim"""
    double: list[str] = field(default_factory=list)
    unavailable: int = 0
    other: list[BaseException] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def _guard(self, call: Callable[..., Any], *args: Any) -> Any:
        """call(*args); None after a 503 (counted), and the load stops at anything else."""
        try:
            return call(*args)
        except errors.Unavailable:
            with self.lock:
                self.unavailable += 1
            time.sleep(0.02)
        except BaseException as exc:  # anything but a 503 is a failure of the test
            self.other.append(exc)
            self.stop.set()
        return None

    def _post(self, message: NewMessage) -> str:
        self.store.message_post(project=self.project, queue=Q, messages=[message], client_id="producer",
                                create=True, encrypted=False, request_size=10, default_ttl=300, event_id=None)
        return message.id

    def _claim(self, claim_id: str) -> list[str]:
        result = self.store.claim_create(project=self.project, queue=Q, claim_id=claim_id, ttl=300, grace=60,
                                         limit=5)
        return [m.id for m in result.items]

    def _delete(self, message_id: str, claim_id: str) -> str:
        self.store.message_delete(project=self.project, queue=Q, message_id=message_id, claim_id=claim_id)
        return message_id

    def produce(self) -> None:
        while not self.stop.is_set():
            posted = self._guard(self._post, NewMessage(uuid.uuid4().hex, '"m"', 300, None))
            if posted is not None:
                with self.lock:
                    self.posted.append(posted)

    def consume(self) -> None:
        while not self.stop.is_set():
            claim_id = uuid.uuid4().hex
            got = self._guard(self._claim, claim_id)
            if got is None:
                continue
            with self.lock:
                for mid in got:
                    if mid in self.claims:
                        self.double.append(mid)
                    self.claims.setdefault(mid, claim_id)
            for mid in got:
                with self.lock:
                    self.tried.add(mid)
                if self._guard(self._delete, mid, claim_id) is not None:
                    with self.lock:
                        self.deleted.append(mid)
            if not got:
                time.sleep(0.01)

    def run(self, during: float, event: Callable[[], object], after: float) -> None:
        threads = [threading.Thread(target=self.produce), threading.Thread(target=self.consume)]
        for thread in threads:
            thread.start()
        time.sleep(during)
        event()
        time.sleep(after)
        self.stop.set()
        for thread in threads:
            thread.join(timeout=60)

    def present(self) -> set[str]:
        page = self.store.message_list(project=self.project, queue=Q, marker=None, limit=20, client_id="audit",
                                       echo=True, include_claimed=True, include_delayed=True)
        found: set[str] = set()
        while page.items:
            found.update(m.id for m in page.items)
            page = self.store.message_list(project=self.project, queue=Q, marker=page.next_marker, limit=20,
                                           client_id="audit", echo=True, include_claimed=True, include_delayed=True)
        return found


def _slot(project: str) -> int:
    return key_slot(keys.queue_keys(project, Q)[0].encode())


def _audit(load: Load) -> None:
    assert load.other == []
    present = load.present()
    lost = set(load.posted) - load.tried - present  # acknowledged, never deleted by anyone, and gone
    resurrected = set(load.deleted) & present
    assert (sorted(lost), sorted(resurrected), load.double) == ([], [], [])
    assert len(load.posted) > 50 and len(load.deleted) > 20  # the load really ran on both sides of the event


def test_a_primary_failover_under_load_loses_no_acknowledged_write(cluster: Cluster) -> None:
    project = f"failover-{uuid.uuid4().hex[:8]}"
    store = RedisStore(cluster.url + "&wait_replicas=1&wait_timeout_ms=1000")
    load = Load(store, project)
    primary = cluster.primary_of(_slot(project))
    load.run(during=2.0, event=lambda: cluster.kill(primary), after=8.0)
    cluster.wait_healthy()
    assert cluster.primary_of(_slot(project)) is not primary  # its replica took over
    _audit(load)
    assert load.unavailable < 2000  # bounded: only while the slot had no primary
    store.close()


def test_moving_the_queues_slot_under_load_gives_only_retried_503s(cluster: Cluster) -> None:
    project = f"moving-{uuid.uuid4().hex[:8]}"
    store = RedisStore(cluster.url + "&wait_replicas=1")
    load = Load(store, project)
    slot = _slot(project)
    source = cluster.primary_of(slot)
    target = next(n for n in cluster.primaries() if n is not source)
    moved: list[int] = []
    load.run(during=1.5, event=lambda: moved.append(cluster.move_slot(slot, target, batch=1, pause_s=0.05)),
             after=2.0)
    assert moved and moved[0] > 0 and cluster.primary_of(slot) is target
    _audit(load)
    store.close()


def test_with_wait_replicas_a_write_its_replica_does_not_have_is_a_503(cluster: Cluster) -> None:
    """The queue's replica stops (SIGSTOP): with wait_replicas=1 a post is a 503 naming the option, never a 201
    the replica has not got; without it the same post is acknowledged at once (and would be lost if the primary
    failed before the replica caught up)."""
    project = f"lagging-{uuid.uuid4().hex[:8]}"
    waiting = RedisStore(cluster.url + "&wait_replicas=1&wait_timeout_ms=300")
    plain = RedisStore(cluster.url)
    primary = cluster.primary_of(_slot(project))
    replica_port = int(primary.client().info("replication")["slave0"]["port"])
    replica = next(n for n in cluster.nodes if n.port == replica_port)

    def post(store: RedisStore, body: str) -> None:
        store.message_post(project=project, queue=Q, messages=[NewMessage(uuid.uuid4().hex, body, 300, None)],
                           client_id="p", create=True, encrypted=False, request_size=10, default_ttl=300,
                           event_id=None)

    post(waiting, '"replicated"')
    os.kill(replica.process.pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        with pytest.raises(errors.Unavailable, match="wait_replicas"):
            post(waiting, '"not replicated"')
        assert time.monotonic() - started < 5  # the wait's own timeout, not the socket's
        post(plain, '"acknowledged at once"')
    finally:
        os.kill(replica.process.pid, signal.SIGCONT)
    post(waiting, '"replicated again"')  # the replica caught up: waiting writes are acknowledged again
    waiting.close()
    plain.close()
