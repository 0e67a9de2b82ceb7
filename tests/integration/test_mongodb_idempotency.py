"""Keyed (idempotent) posts on MongoDB pools when a post stops halfway, when gc takes the batch that binds a
key, when a window ends under a batch that still holds messages and when posts race (see the driver's
*Keyed posts*).

Run on mongomock and on the wire-protocol server (nx-27017, tests/wire_mongodb.py), standalone and with
transactions forced.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from pymongo import errors as mongo_errors

from chalicelib import errors
from chalicelib.storage import base
from chalicelib.storage.base import NewMessage, QueueSettings
from chalicelib.storage.mongodb.driver import EMPTY_KEEP_MS, MongoStore, _key, queue_id
from tests.leases import expire_lease
from tests.mongodb_races import deleted_while_posting

pytestmark = pytest.mark.mongodb
Q = "orders"
FAR = 2**50


def _wire_store(server: str, transactions: bool | None = None) -> MongoStore:
    return MongoStore(f"{server}/zaqar_{uuid.uuid4().hex[:12]}?unreliable=true&directConnection=true",
                      transactions=transactions)


@pytest.fixture(params=["mongomock", "wire", "wire-transactions"])
def store(request: pytest.FixtureRequest) -> Iterator[MongoStore]:
    if request.param == "mongomock":
        import mongomock

        driver = MongoStore(client=mongomock.MongoClient(), database="idempotency", unreliable=True)
    else:
        driver = _wire_store(request.getfixturevalue("wire_mongodb_url"),
                             transactions=True if request.param == "wire-transactions" else None)
    yield driver
    driver._client.drop_database(driver._queues.database.name)
    driver.close()


@pytest.fixture
def wire_store(wire_mongodb_url: str) -> Iterator[MongoStore]:
    driver = _wire_store(wire_mongodb_url)
    yield driver
    driver._client.drop_database(driver._queues.database.name)
    driver.close()


class _Crash(BaseException):
    """The process stops here (nothing of the driver's own handling may take it for a pool error)."""


class _StopAt:
    """A collection whose ``method`` fails on its ``nth`` call: before it reaches the server (``after`` False)
    or once the server did it (``after`` True), with ``error``."""

    def __init__(self, inner: Any, method: str, nth: int, *, after: bool, error: BaseException) -> None:
        self._inner, self._method, self._left, self._after, self._error = inner, method, nth, after, error

    def __getattr__(self, name: str) -> Any:
        found = getattr(self._inner, name)
        if name != self._method:
            return found

        def call(*args: Any, **kwargs: Any) -> Any:
            self._left -= 1
            if self._left != 0:
                return found(*args, **kwargs)
            if self._after:
                found(*args, **kwargs)
            raise self._error

        return call


def _keyed(store: MongoStore, project: str, key: str, body: str, *, digest: str = "d1", window_ms: int = 300_000,
           queue: str = Q, ids: list[str] | None = None) -> base.Posted:
    messages = [NewMessage(i, body, None, None) for i in ids or [uuid.uuid4().hex]]
    return store.message_post(project=project, queue=queue, messages=messages, client_id="producer", create=True,
                              encrypted=False, request_size=10, default_ttl=3600, event_id=uuid.uuid4().hex,
                              idempotency=base.Idempotency(key, digest, window_ms))


def _listed(store: MongoStore, project: str, queue: str = Q) -> list[str]:
    page = store.message_list(project=project, queue=queue, marker=None, limit=20, client_id="reader", echo=True,
                              include_claimed=True, include_delayed=True)
    return [r.body for r in page.items]


def _posted_ids(store: MongoStore, project: str) -> list[list[str]]:
    """The messages of every message.posted event the outbox hands out, published as a publisher would."""
    expire_lease(store, project, Q)
    out: list[list[str]] = []
    entries = store.outbox_lease(project=project, queue=Q, holder="publisher") or []
    while entries:
        events = [base.StoredEvent.from_json(e) for e in entries]
        out += [[m.id for m in e.posted.messages] for e in events if e.posted]
        entries = store.outbox_release(project=project, queue=Q, holder="publisher",
                                       published=[e.id for e in events], keep=True)
    return out


def _binding(store: MongoStore, project: str, key: str, queue: str = Q) -> dict[str, Any] | None:
    found: dict[str, Any] | None = store._batches.find_one({"ik": _key(project, queue, key)})
    return found


def _age(store: MongoStore, project: str, by_ms: int) -> None:
    """Make the project's batches look ``by_ms`` older (whole documents replaced, as the driver writes them)."""
    for batch in list(store._batches.find({"p": project})):
        store._batches.replace_one({"_id": batch["_id"]}, {**batch, "cr": int(batch["cr"]) - by_ms})


@pytest.mark.parametrize(("collection", "method", "nth", "after", "stored"), [
    ("_batches", "insert_one", 1, False, False),      # the batch never reached the server
    ("_batches", "insert_one", 1, True, True),        # the batch went in, the process stopped before its reply
    ("_queues", "update_one", 1, False, True),        # before recording the marker
    ("_heads", "find_one_and_update", 2, False, True),  # before trying the publish lease
])
def test_a_keyed_post_that_stops_halfway_is_stored_once_and_its_retry_answers_it(
        store: MongoStore, project: str, collection: str, method: str, nth: int, after: bool, stored: bool) -> None:
    store.queue_create(project=project, queue=Q, metadata={}, settings=QueueSettings())
    store.listen(project=project, queue=Q, until_ms=FAR)
    first_ids = [uuid.uuid4().hex]
    original = getattr(store, collection)
    setattr(store, collection, _StopAt(original, method, nth, after=after, error=_Crash()))
    try:
        with pytest.raises(_Crash):
            _keyed(store, project, "k1", '"once"', ids=first_ids)
    finally:
        setattr(store, collection, original)
    retry = _keyed(store, project, "k1", '"once"')  # the client's retry: same key, same digest, new ids
    assert retry.repeated is stored
    assert retry.ids == (first_ids if stored else retry.ids)
    assert _listed(store, project) == ['"once"']
    assert _posted_ids(store, project) == [retry.ids]  # one message.posted event, of the stored post
    assert _keyed(store, project, "k1", '"once"').ids == retry.ids


def test_a_lost_reply_is_a_503_and_the_retry_answers_the_stored_post(store: MongoStore, project: str) -> None:
    first_ids = [uuid.uuid4().hex]
    batches = store._batches
    store._batches = _StopAt(batches, "insert_one", 1, after=True,
                             error=mongo_errors.AutoReconnect("connection reset (injected)"))
    try:
        with pytest.raises(errors.Unavailable):
            _keyed(store, project, "k1", '"once"', ids=first_ids)
    finally:
        store._batches = batches
    again = _keyed(store, project, "k1", '"once"')
    assert again.repeated and again.ids == first_ids and _listed(store, project) == ['"once"']


def test_gc_leaves_the_binding_of_an_emptied_batch_until_its_window_ends(store: MongoStore, project: str) -> None:
    window = 3_000
    first = _keyed(store, project, "k1", '"keyed"', window_ms=window)
    (later,) = store.message_post(project=project, queue=Q, messages=[NewMessage(uuid.uuid4().hex, '"plain"', None,
                                                                                  None)],
                                  client_id="producer", create=True, encrypted=False, request_size=10,
                                  default_ttl=3600, event_id=None).ids
    store.message_delete_many(project=project, queue=Q, ids=first.ids)
    _age(store, project, EMPTY_KEEP_MS + 1)  # emptied long enough ago, and below the queue's highest marker
    store.gc(project=project, queue=Q, stale_before_ms=0)
    tombstone = _binding(store, project, "k1")
    assert tombstone is not None and int(tombstone["k"]) < 0 and tombstone["m"] == []  # the batch itself is gone
    assert store._batches.count_documents({"p": project, "k": {"$gt": 0}}) == 1  # the plain post's
    again = _keyed(store, project, "k1", '"keyed"', window_ms=window)
    assert again.repeated and again.ids == first.ids and again.effective == first.effective
    with pytest.raises(base.IdempotencyConflict):
        _keyed(store, project, "k1", '"other"', digest="d2")
    assert _listed(store, project) == ['"plain"']  # no page, claim or pop reads a tombstone
    claimed = store.claim_create(project=project, queue=Q, claim_id="c1", ttl=60, grace=60, limit=10)
    assert [m.id for m in claimed.items] == [later]
    assert store.queue_stats(project=project, queue=Q).total == 1
    store.gc(project=project, queue=Q, stale_before_ms=0)
    assert _binding(store, project, "k1") is not None  # the window still runs
    time.sleep(max(0.0, (first.now_ms + window - store._now()) / 1000) + 0.05)
    store.gc(project=project, queue=Q, stale_before_ms=0)
    assert _binding(store, project, "k1") is None  # gone with its window
    fresh = _keyed(store, project, "k1", '"keyed again"', digest="d2")
    assert not fresh.repeated and fresh.ids != first.ids
    assert _listed(store, project) == ['"plain"', '"keyed again"']


def test_a_window_ending_under_a_batch_that_still_holds_messages_frees_the_key(
        store: MongoStore, project: str) -> None:
    first = _keyed(store, project, "k1", '"first"', window_ms=200)
    old = store._batches.find_one(store._holding(project, Q, first.ids))
    time.sleep(0.3)
    second = _keyed(store, project, "k1", '"second"', digest="d2")
    assert not second.repeated and _listed(store, project) == ['"first"', '"second"']
    bound = _binding(store, project, "k1")
    assert bound is not None and bound["ki"] == second.ids
    # a compare and set that read the old batch before its binding was released does not write it back
    assert store._change(old, lambda rows: [{**m, "cc": 5} for m in rows]) is not None
    bound = _binding(store, project, "k1")
    assert bound is not None and bound["ki"] == second.ids
    assert _keyed(store, project, "k1", '"second"', digest="d2").ids == second.ids
    assert store.claim_create(project=project, queue=Q, claim_id="c1", ttl=60, grace=60, limit=10).items


def test_a_release_that_stops_before_its_post_leaves_the_key_free(store: MongoStore, project: str) -> None:
    _keyed(store, project, "k1", '"first"', window_ms=100)
    time.sleep(0.2)
    batches = store._batches
    store._batches = _StopAt(batches, "insert_one", 1, after=False, error=_Crash())
    try:
        with pytest.raises(_Crash):
            _keyed(store, project, "k1", '"second"', digest="d2")
    finally:
        store._batches = batches
    assert _binding(store, project, "k1") is None  # released (its window had ended), nothing bound in its place
    second = _keyed(store, project, "k1", '"second"', digest="d2")
    assert not second.repeated and _listed(store, project) == ['"first"', '"second"']


def test_a_purge_keeps_the_queues_keys_and_a_delete_forgets_them(store: MongoStore, project: str) -> None:
    first = _keyed(store, project, "k1", '"a"')
    store.queue_purge(project=project, queue=Q, event_id=uuid.uuid4().hex)
    assert _listed(store, project) == []
    again = _keyed(store, project, "k1", '"a"')
    assert again.repeated and again.ids == first.ids and _listed(store, project) == []
    store.queue_delete(project=project, queue=Q, event_id=uuid.uuid4().hex)
    assert store._batches.count_documents({"p": project}) == 0  # nothing left behind the queue
    fresh = _keyed(store, project, "k1", '"a"')
    assert not fresh.repeated and _listed(store, project) == ['"a"']


def test_a_keyed_post_racing_its_queues_delete_lands_once(store: MongoStore, project: str) -> None:
    store.queue_create(project=project, queue=Q, metadata={}, settings=QueueSettings())
    with deleted_while_posting(store, project, Q):
        posted = _keyed(store, project, "k1", '"during"')
    assert not posted.repeated and _listed(store, project) == ['"during"']
    again = _keyed(store, project, "k1", '"during"')
    assert again.repeated and again.ids == posted.ids
    incarnation = store._queues.find_one({"_id": queue_id(project, Q)})["g"]
    assert store._batches.count_documents({"p": project, "g": {"$ne": incarnation}}) == 0


def test_many_posts_racing_over_a_few_keys_store_each_key_once(wire_store: MongoStore, project: str) -> None:
    keys = [f"k{n}" for n in range(4)]
    answers: dict[str, set[tuple[str, ...]]] = {key: set() for key in keys}
    failures: list[BaseException] = []
    lock = threading.Lock()

    def write(n: int) -> None:
        try:
            for i in range(12):
                key = keys[(n + i) % len(keys)]
                posted = _keyed(wire_store, project, key, f'"{key}"', digest=key)
                with lock:
                    answers[key].add(tuple(posted.ids))
        except BaseException as exc:  # surfaced below
            failures.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert all(len(ids) == 1 for ids in answers.values())  # every post of a key answered the same ids
    assert sorted(_listed(wire_store, project)) == sorted(f'"{key}"' for key in keys)  # each stored once
