"""MongoDB pools keep the driver contract when writes fail halfway, when clients race, when containers'
clocks disagree and when the server stops answering.

Run on the wire-protocol server (nx-27017, a real server process on loopback: tests/wire_mongodb.py) and,
where no concurrency or server clock is involved, on mongomock too.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from pymongo import errors as mongo_errors

from chalicelib import errors
from chalicelib.storage import base
from chalicelib.storage.base import NewMessage, QueueSettings
from chalicelib.storage.mongodb.driver import MongoStore, queue_id
from tests.leases import expire_lease
from tests.mongodb_races import deleted_while_posting
from tests.wire_mongodb import wire_mongodb

pytestmark = pytest.mark.mongodb
Q = "orders"
FAR = 2**50


def _wire_store(server: str, clock: Callable[[], float] = time.time, options: str = "",
                transactions: bool | None = None) -> MongoStore:
    return MongoStore(f"{server}/zaqar_{uuid.uuid4().hex[:12]}?unreliable=true&directConnection=true{options}",
                      clock=clock, transactions=transactions)


@pytest.fixture(params=["mongomock", "wire"])
def store(request: pytest.FixtureRequest) -> Iterator[MongoStore]:
    if request.param == "mongomock":
        import mongomock

        driver = MongoStore(client=mongomock.MongoClient(), database="failures", unreliable=True)
    else:
        driver = _wire_store(request.getfixturevalue("wire_mongodb_url"))
    yield driver
    driver._client.drop_database(driver._queues.database.name)
    driver.close()


@pytest.fixture
def wire_store(wire_mongodb_url: str) -> Iterator[MongoStore]:
    driver = _wire_store(wire_mongodb_url)
    yield driver
    driver._client.drop_database(driver._queues.database.name)
    driver.close()


class _FailOnce:
    """A collection whose ``method`` raises AutoReconnect on its ``nth`` call (as a dropped connection does)."""

    def __init__(self, inner: Any, method: str, nth: int = 1) -> None:
        self._inner, self._method, self._left = inner, method, nth

    def __getattr__(self, name: str) -> Any:
        found = getattr(self._inner, name)
        if name != self._method:
            return found

        def call(*args: Any, **kwargs: Any) -> Any:
            self._left -= 1
            if self._left == 0:
                raise mongo_errors.AutoReconnect("connection reset (injected)")
            return found(*args, **kwargs)

        return call


def _post(store: MongoStore, project: str, body: str, *, queue: str = Q) -> base.Posted:
    return store.message_post(project=project, queue=queue, messages=[NewMessage(uuid.uuid4().hex, body, None, None)],
                              client_id="producer", create=True, encrypted=False, request_size=10, default_ttl=3600,
                              event_id=uuid.uuid4().hex)


def _listed(store: MongoStore, project: str, queue: str = Q) -> list[str]:
    page = store.message_list(project=project, queue=queue, marker=None, limit=20, client_id="reader", echo=True,
                              include_claimed=True, include_delayed=True)
    return [r.body for r in page.items]


def _published(store: MongoStore, project: str) -> list[base.StoredEvent]:
    """Every event the outbox hands out, published (and so taken out) as a publisher would (one that takes
    over from the posts' own leases: nobody publishes here)."""
    expire_lease(store, project, Q)
    out: list[base.StoredEvent] = []
    entries = store.outbox_lease(project=project, queue=Q, holder="publisher") or []
    while entries:
        events = [base.StoredEvent.from_json(e) for e in entries]
        out += events
        entries = store.outbox_release(project=project, queue=Q, holder="publisher",
                                       published=[e.id for e in events], keep=True)
    return out


@pytest.mark.parametrize(("collection", "method", "nth", "answered"), [
    ("_queues", "find_one", 1, False),                # reading the queue
    ("_heads", "find_one_and_update", 1, False),      # taking the event's sequence
    ("_batches", "insert_one", 1, False),             # the batch, messages and event in one document
    ("_queues", "update_one", 1, True),               # recording the marker: the post is in already
    ("_heads", "find_one_and_update", 2, True),       # trying the publish lease: the event waits for the relay
])
def test_a_post_failing_at_any_step_is_stored_with_its_event_or_not_at_all(
        store: MongoStore, project: str, collection: str, method: str, nth: int, answered: bool) -> None:
    store.queue_create(project=project, queue=Q, metadata={}, settings=QueueSettings())
    store.listen(project=project, queue=Q, until_ms=FAR)
    original = getattr(store, collection)
    setattr(store, collection, _FailOnce(original, method, nth))
    try:
        if answered:
            posted = _post(store, project, '"once"')
            assert posted.event_stored
        else:
            with pytest.raises(errors.Unavailable):
                _post(store, project, '"once"')
    finally:
        setattr(store, collection, original)
    if not answered:
        assert _listed(store, project) == []
        posted = _post(store, project, '"once"')  # the client's retry
    assert _listed(store, project) == ['"once"']
    events = [e for e in _published(store, project) if e.kind == base.POSTED]
    assert [[m.id for m in e.posted.messages] for e in events if e.posted] == [posted.ids]


def test_a_dead_letter_is_in_its_queue_or_its_target_never_in_neither(store: MongoStore, project: str) -> None:
    store.queue_create(project=project, queue=Q, metadata={},
                       settings=QueueSettings(dead_letter_queue="dead", max_claim_count=1))
    (mid,) = _post(store, project, '"poison"').ids
    first = store.claim_create(project=project, queue=Q, claim_id="c1", ttl=60, grace=60, limit=1)
    store.claim_delete(project=project, queue=Q, claim_id=first.claim_id)
    second = store.claim_create(project=project, queue=Q, claim_id="c2", ttl=60, grace=60, limit=1)
    assert second.items == [] and [d.record.id for d in second.dead_letters] == [mid]
    assert _listed(store, project) == []  # out of reach in its queue: nobody lists or claims it
    assert store.claim_create(project=project, queue=Q, claim_id="c3", ttl=60, grace=60, limit=1).items == []
    batches = store._batches
    store._batches = _FailOnce(batches, "insert_one")  # the target's write fails
    try:
        with pytest.raises(errors.Unavailable):
            store.dead_letter_accept(project=project, queue="dead", letters=second.dead_letters)
    finally:
        store._batches = batches
    assert [d.record.id for d in store.dead_letter_pending(project=project, queue=Q)] == [mid]  # still here
    assert _listed(store, project, "dead") == []
    pending = store.dead_letter_pending(project=project, queue=Q)  # what housekeeping retries with
    store.dead_letter_accept(project=project, queue="dead", letters=pending)
    store.dead_letter_accept(project=project, queue="dead", letters=pending)  # a retry after a lost reply
    store.dead_letter_done(project=project, queue=Q, ids=[mid])
    assert store.dead_letter_pending(project=project, queue=Q) == []
    assert _listed(store, project, "dead") == ['"poison"']


def test_a_post_racing_its_queues_delete_lands_once_in_the_queue_that_exists(store: MongoStore, project: str) -> None:
    store.queue_create(project=project, queue=Q, metadata={}, settings=QueueSettings())
    _post(store, project, '"before"')
    with deleted_while_posting(store, project, Q):
        _post(store, project, '"during"')
    _post(store, project, '"after"')  # no duplicate marker, no 500
    assert _listed(store, project) == ['"during"', '"after"']
    incarnation = store._queues.find_one({"_id": queue_id(project, Q)})["g"]
    assert store._batches.count_documents({"p": project, "q": Q, "g": {"$ne": incarnation}}) == 0  # no orphans


def test_paging_while_others_post_never_skips_a_message(wire_store: MongoStore, project: str) -> None:
    wire_store.queue_create(project=project, queue=Q, metadata={}, settings=QueueSettings())
    posted: list[str] = []
    failures: list[BaseException] = []
    lock = threading.Lock()
    writing = threading.Event()
    writing.set()

    def write(n: int) -> None:
        try:
            for i in range(40):
                ids = wire_store.message_post(
                    project=project, queue=Q, messages=[NewMessage(uuid.uuid4().hex, f'"{n}-{i}-{j}"', None, None)
                                                        for j in range(1 + i % 3)],
                    client_id="producer", create=True, encrypted=False, request_size=10, default_ttl=3600,
                    event_id=None).ids
                with lock:
                    posted.extend(ids)
        except BaseException as exc:  # surfaced below
            failures.append(exc)

    seen: list[str] = []
    markers: list[int] = []

    def read() -> None:
        marker: str | None = None
        try:
            while True:
                still_writing = writing.is_set()
                page = wire_store.message_list(project=project, queue=Q, marker=marker, limit=7, client_id="reader",
                                               echo=True, include_claimed=True, include_delayed=True)
                seen.extend(r.id for r in page.items)
                markers.extend(r.marker for r in page.items)
                marker = page.next_marker or marker
                if not page.items and not still_writing:
                    return  # caught up after the last post
        except BaseException as exc:
            failures.append(exc)

    writers = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    reader = threading.Thread(target=read)
    reader.start()
    for thread in writers:
        thread.start()
    for thread in writers:
        thread.join()
    writing.clear()
    reader.join(timeout=120)
    assert failures == []
    assert markers == sorted(set(markers))  # every page after the last: no marker twice, none going back
    assert len(seen) == len(set(seen)) and set(seen) == set(posted)  # and none skipped


def test_claims_and_expiry_follow_the_servers_clock_not_the_containers(wire_mongodb_url: str, project: str) -> None:
    server = _wire_store(wire_mongodb_url)
    name = server._queues.database.name
    ahead = MongoStore(f"{wire_mongodb_url}/{name}?unreliable=true&directConnection=true",
                       clock=lambda: time.time() + 61)  # a container whose clock runs 61 s ahead
    try:
        (mid,) = _post(server, project, '"held"').ids
        held = server.claim_create(project=project, queue=Q, claim_id="c1", ttl=60, grace=60, limit=1)
        assert [m.id for m in held.items] == [mid]
        assert ahead.claim_create(project=project, queue=Q, claim_id="c2", ttl=60, grace=60, limit=1).items == []
        short = ahead.message_post(project=project, queue=Q, messages=[NewMessage("m2", '"short"', 60, None)],
                                   client_id="p", create=True, encrypted=False, request_size=10, default_ttl=3600,
                                   event_id=None)
        assert abs(short.now_ms - held.now_ms) < 30_000  # both read the server's time
        assert '"short"' in _listed(server, project)  # not expired on arrival
    finally:
        server._client.drop_database(name)
        server.close()
        ahead.close()


def test_a_pool_that_stops_answering_is_a_503_not_an_error(tmp_path: Path, project: str) -> None:
    with wire_mongodb(tmp_path) as url:
        store = _wire_store(url, options="&serverSelectionTimeoutMS=300&timeoutMS=1000")
        _post(store, project, '"before"')
    started = time.monotonic()  # the server is gone now
    with pytest.raises(errors.Unavailable):
        _post(store, project, '"after"')
    with pytest.raises(errors.Unavailable):
        store.message_list(project=project, queue=Q, marker=None, limit=5, client_id="r", echo=True,
                           include_claimed=False, include_delayed=False)
    assert time.monotonic() - started < 30  # within the timeouts, far below a Lambda's
    store.close()


def test_concurrent_claims_never_exceed_the_max_claim_count(wire_store: MongoStore, project: str) -> None:
    wire_store.queue_create(project=project, queue=Q, metadata={},
                            settings=QueueSettings(dead_letter_queue="dead", max_claim_count=3))
    (mid,) = _post(wire_store, project, '"contended"').ids
    claims: list[str] = []
    dead: list[str] = []
    failures: list[BaseException] = []
    lock = threading.Lock()

    def churn() -> None:
        try:
            for _ in range(15):
                result = wire_store.claim_create(project=project, queue=Q, claim_id=uuid.uuid4().hex, ttl=60, grace=60,
                                                 limit=1)
                with lock:
                    claims.extend(m.id for m in result.items)
                    dead.extend(d.record.id for d in result.dead_letters)
                wire_store.claim_delete(project=project, queue=Q, claim_id=result.claim_id)
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=churn) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert claims == [mid] * 3 and dead == [mid]  # claimed exactly max_claim_count times, then dead-lettered once


@pytest.mark.parametrize("transactions", [True, False])
def test_with_transactions_a_claim_and_its_event_are_one_change(wire_mongodb_url: str, project: str,
                                                                  transactions: bool) -> None:
    """The event's write fails after the claim's: in a transaction (a replica set, or forced here on the
    wire-protocol server) the claim is rolled back with it; without one the claim stands and its event is lost."""
    store = _wire_store(wire_mongodb_url, transactions=transactions)
    try:
        store.queue_create(project=project, queue=Q, metadata={}, settings=QueueSettings())
        for body in ('"a"', '"b"'):
            store.message_post(project=project, queue=Q, messages=[NewMessage(uuid.uuid4().hex, body, None, None)],
                               client_id="p", create=True, encrypted=False, request_size=1, default_ttl=3600,
                               event_id=None)
        outbox = store._outbox
        store._outbox = _FailOnce(outbox, "insert_one")
        try:
            with pytest.raises(errors.Unavailable):
                store.claim_create(project=project, queue=Q, claim_id="c1", ttl=60, grace=60, limit=5,
                                   event_id="claimed")
        finally:
            store._outbox = outbox
        held = store.claim_get(project=project, queue=Q, claim_id="c1")
        free = store.claim_create(project=project, queue=Q, claim_id="c2", ttl=60, grace=60, limit=5)
        if transactions:
            assert held is None and len(free.items) == 2  # rolled back: both still free
        else:
            assert held is not None and len(held.items) == 2 and free.items == []  # claimed, and no event
        assert store._outbox.count_documents({"p": project}) == 0  # no event either way: the write failed
    finally:
        store._client.drop_database(store._queues.database.name)
        store.close()
