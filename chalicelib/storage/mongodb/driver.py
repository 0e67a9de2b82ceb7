"""The MongoDB pool driver: each atomic step of the contract changes one document.

MongoDB makes a change to one document atomic; changing several at once
needs a replica-set transaction, which mongomock and the wire-protocol
servers the tests run on do not have. So every step that must be atomic
here is one conditional write of one document:

- ``batches``: one document per post, with its messages and, when someone
  listens, their message.posted event. ``_id`` is ``queue/project/k``:
  ``k``, the batch's marker, is one more than the queue's highest, and the
  insert itself claims it (a taken ``_id`` is a duplicate key, and the post
  tries the next one). A batch with marker ``k`` therefore exists only
  once every lower marker was taken, so paging in marker order never skips
  a message that was committed before the page was read (a counter taken
  before the insert, as upstream's driver and our earlier one did, lets a
  later post commit first). Fields: p, q, h (the queue's ``_id``), k, g (the queue's incarnation),
  v (version: every change of the document checks and bumps it), cr
  (created), u (client), x (encrypted), m (the messages), and while the
  event waits to be published: ei (its id), es (its sequence), ew
  (written), ev (its outbox entry, see ``base.StoredEvent``); n, how many
  messages it still holds. A keyed post's batch also binds its idempotency key
  (see *Keyed posts* below): ik, kd, kw, ki, ke.
- Each message of ``m``: i (id), o (its place in the batch, for markers),
  t (ttl), em (expires), d (visible from), b (body), c / ce (claim id and
  expiry), cc (claim count), cs / ct / cg (the claim's start, ttl and
  grace: a claim is nothing but what its messages say), and dl / dt once
  a claim found it over the queue's ``_max_claim_count``: bound for dead
  letter queue ``dl`` (with ttl ``dt``), it is held out of reach (``ce``
  far ahead) until the target has its copy, and only then removed, so it
  is never in neither place.
- ``queues``: ``_id`` ``queue/project``; p, q, meta (the metadata as JSON
  text: keys may start with ``$`` or hold dots), s (the reserved settings
  the driver acts on), g (a new id at each creation: a post that raced
  the queue's delete sees it changed and takes its batch back), k (the
  highest marker handed out, so markers keep growing after batches go).
- ``heads``: per queue (``_id`` as the queue's, and p, q), kept when the queue is deleted: until and gen (who
  listens), seq (the last event sequence handed out), pub (the last one
  published), lh / le (the publish lease's holder and expiry).
- ``outbox``: the events of other changes (``_id`` the event id; p, q, h
  (the queue's ``_id``), s, w, doc). On a replica set or mongos each is
  written in one transaction with its change (``_with_its_event``); on a
  standalone server, right after it (see the README's Limitations).

Keyed posts (``base.Idempotency``): the batch of a keyed post binds its key in
the same insert that stores its messages. ik is the key (with its project and
queue: ``_key``), under a unique sparse index, so the insert itself is the
check: of concurrent posts with one key exactly one batch goes in, the others
get a duplicate key and answer from the bound batch. kd is the post's digest,
kw the end of its window, ki its message ids and ke their (ttl, delay): what a
repeat answers after the messages are gone. A batch keeps these fields through
claims and deletes (every change replaces the whole document). When gc takes
an emptied keyed batch whose window still runs, it replaces it (one compare and
set, so the binding never leaves the collection) with a tombstone: no messages,
the binding fields, and ``k`` = kw - ``TOMBSTONE``, below every marker (so no
page, claim or pop ever reads it) and in window order (so gc removes the
tombstones whose window ended with one range on the marker index). A binding
whose window ended is released by the next post with its key (``ik`` unset, and
``v`` bumped so that no compare and set writes it back; or the tombstone
deleted), and that post goes in. A purge keeps the queue's bindings (as
tombstones); a deleted queue forgets them with its batches (nothing is left
behind a queue that is not made again). Unkeyed posts write none of this: the
sparse index holds keyed batches only.

A keyed post's writes, in order: the queue (read, or made), the binding (read;
an expired one released: harmless whenever it stops), the event's sequence (a
gap the publisher waits out, as for any post that fails), the batch (messages,
event and binding at once: before it nothing is stored and the key is free;
after it the post is stored and its retry is a repeat), the marker on the queue
(gc records it if the post stops before), the publish lease (the relay's, if
the post stops before).

Claims and pops change a batch only if its version is still the one read
(compare and set), so two consumers never take the same message and a claim
count is never judged on a stale read. Times are the server's clock:
``hello``'s ``localTime``, measured every ``CLOCK_EVERY_S`` seconds, gives
this container's offset from it (without ``localTime``, as on mongomock,
the local clock is used). Writes go with majority write concern and reads
with majority read concern unless the pool URI says otherwise, and every
operation has ``timeoutMS`` (5 s unless the URI says otherwise), well below
the Lambda timeout.
"""

from __future__ import annotations

import contextvars
import datetime
import functools
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from typing import Any, TypeVar, cast
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import pymongo
import pymongo.uri_parser
from pymongo import ReturnDocument
from pymongo import errors as mongo_errors

from chalicelib import errors
from chalicelib.storage import base

log = logging.getLogger(__name__)
SCAN = 32
"""Batches read at a time when looking for messages to list, claim or pop."""
ATTEMPTS = 16
"""Tries of one compare-and-set (or of one marker) before a busy queue is reported as unavailable."""
CLOCK_EVERY_S = 30.0
GAP_WAIT_MS = 10_000
"""How long the publisher waits for an event sequence that was handed out and not written yet (its
writer may still be writing it: every operation times out well before this) before going on without it."""
GAP_POLLS = 10
GAP_POLL_S = 0.02
"""A holder facing such a gap looks again this often (200 ms in all) before it gives the lease up."""
EMPTY_KEEP_MS = 60_000
"""An emptied batch stays this long (and while it holds the queue's highest marker) before gc removes it."""
HELD = 2**62
"""``ce`` of a message bound for its dead-letter queue: no claim can take it."""
SHIFT = 20
"""A message's marker is its batch's ``k`` shifted by this, plus its place in the batch."""
TOMBSTONE = 2**62
"""``k`` of a tombstone (see *Keyed posts*) is the end of its key's window minus this: below every marker."""
_KEY_FIELDS = ("ik", "kd", "kw", "ki", "ke")
"""The fields of a batch that binds an idempotency key."""
DEFAULT_OPTIONS = {"serverSelectionTimeoutMS": "3000", "connectTimeoutMS": "3000", "timeoutMS": "5000",
                   "w": "majority", "readConcernLevel": "majority"}
_SETTINGS = ("default_ttl", "default_delay", "max_post_size", "dead_letter_queue", "dead_letter_ttl",
             "max_claim_count", "encrypted")
_UNAVAILABLE = (mongo_errors.ConnectionFailure, mongo_errors.ServerSelectionTimeoutError, mongo_errors.NetworkTimeout,
                mongo_errors.NotPrimaryError, mongo_errors.ExecutionTimeout, mongo_errors.WTimeoutError,
                mongo_errors.WriteConcernError)


class _Busy(Exception):
    """A compare-and-set lost every try."""


class _KeyTaken(Exception):
    """The batch's idempotency key is bound: its insert stored nothing."""


def unreachable(exc: BaseException) -> bool:
    """Whether a driver error says the pool could not be reached or did not answer in time (a retry may cure
    it), rather than that the request was wrong (a bug here)."""
    return isinstance(exc, _UNAVAILABLE) or (isinstance(exc, mongo_errors.PyMongoError) and exc.timeout)


@contextmanager
def translated(what: str) -> Iterator[None]:
    """Driver errors as the service's: what a retry can cure is a 503, the rest (a bug) stays itself."""
    try:
        yield
    except mongo_errors.PyMongoError as exc:
        if unreachable(exc):
            raise errors.Unavailable(f"The message pool could not {what}.") from exc
        raise
    except _Busy as exc:
        raise errors.Unavailable(f"The message pool could not {what}: the queue is too busy.") from exc


def queue_id(project: str, queue: str) -> str:
    return f"{queue}/{project}"  # queue names have no slash: the split is unambiguous


def _bid(project: str, queue: str, k: int) -> str:
    return f"{queue}/{project}/{k}"


def _key(project: str, queue: str, key: str) -> str:
    """The value of ``ik``: an idempotency key is unique per (project, queue), and the index over all of them."""
    return json.dumps([project, queue, key], separators=(",", ":"))


def _record(batch: Mapping[str, Any], m: Mapping[str, Any]) -> base.MessageRecord:
    return base.MessageRecord(
        id=m["i"], marker=(int(batch["k"]) << SHIFT) + int(m["o"]), ttl=int(m["t"]), created_ms=int(batch["cr"]),
        expires_ms=int(m["em"]), body=m["b"], encrypted=bool(batch.get("x")), claim_id=m.get("c") or None,
        claim_expires_ms=int(m.get("ce") or 0), claim_count=int(m.get("cc") or 0), delay_until_ms=int(m.get("d") or 0),
    )


def pool_options(url: str) -> tuple[str, bool]:
    """The pool URI for pymongo: our ``unreliable`` option taken out, our defaults added where it says nothing."""
    parts = urlsplit(url)
    query = parse_qs(parts.query, keep_blank_values=True)
    flag = query.pop("unreliable", ["false"])[-1].lower() in {"1", "true", "yes"}
    given = {name.lower() for name in query}
    for name, value in DEFAULT_OPTIONS.items():
        if name.lower() not in given:
            query[name] = [value]
    return urlunsplit(parts._replace(query=urlencode(query, doseq=True))), flag


def _replicated(hello: Mapping[str, Any]) -> bool:
    """A replica set or mongos: durable writes, and transactions."""
    return bool(hello.get("setName")) or hello.get("msg") == "isdbgrid"


def require_durability(client: Any) -> None:
    """Refuse a standalone server: without a replica set a crash can lose acknowledged writes."""
    if not _replicated(client.admin.command("hello")):
        raise errors.InvalidBody(
            "This MongoDB pool is a standalone server, which can lose acknowledged writes: use a replica set "
            "or mongos, or add unreliable=true to the pool URI to accept that."
        )


def _supports_transactions(client: Any) -> bool:
    try:
        return _replicated(client.admin.command("hello"))
    except (mongo_errors.OperationFailure, NotImplementedError):
        return False  # mongomock


_SESSION: contextvars.ContextVar[Any] = contextvars.ContextVar("mongodb_session", default=None)
"""The session of the transaction the current step runs in, if any."""


class _InSession:
    """A collection whose calls join the current step's transaction (see ``_with_its_event``), if any."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        found = getattr(self._inner, name)
        if not callable(found):
            return found

        def call(*args: Any, **kwargs: Any) -> Any:
            session = _SESSION.get()
            if session is not None:
                kwargs.setdefault("session", session)
            return found(*args, **kwargs)

        return call


F = TypeVar("F", bound=Callable[..., Any])


def _with_its_event(method: F) -> F:
    """On a pool with transactions (a replica set or mongos), run a step that records an event in one
    transaction with its change, retried as MongoDB asks (a write conflict, an unknown commit result)."""

    @functools.wraps(method)
    def step(self: MongoStore, *args: Any, **kwargs: Any) -> Any:
        if not self._transactions or kwargs.get("event_id") is None or _SESSION.get() is not None:
            return method(self, *args, **kwargs)

        def run(session: Any) -> Any:
            token = _SESSION.set(session)
            try:
                return method(self, *args, **kwargs)
            finally:
                _SESSION.reset(token)

        try:
            with self._client.start_session() as session:
                return session.with_transaction(run)
        except mongo_errors.PyMongoError as exc:
            if unreachable(exc) or exc.has_error_label("TransientTransactionError"):
                raise errors.Unavailable("The message pool could not complete the change in time.") from exc
            raise

    return cast(F, step)


class ServerClock:
    """The server's time in ms: the local clock plus the offset ``hello`` showed, measured again now and then."""

    def __init__(self, client: Any, local: Callable[[], float] = time.time, every_s: float = CLOCK_EVERY_S) -> None:
        self._client = client
        self._local = local
        self._every = every_s
        self._offset = 0.0
        self._next = float("-inf")
        self._lock = threading.Lock()

    def _measure(self) -> None:
        before = self._local()
        try:
            hello = self._client.admin.command("hello")
        except (mongo_errors.OperationFailure, NotImplementedError):
            hello = {}  # a server (or mock) that cannot tell its time: the local clock it is
        after = self._local()
        server = hello.get("localTime")
        if isinstance(server, datetime.datetime):
            if server.tzinfo is None:
                server = server.replace(tzinfo=datetime.UTC)
            self._offset = server.timestamp() - (before + after) / 2  # the reply's time is mid-way, give or take
        self._next = after + self._every

    def now_ms(self) -> int:
        now = self._local()
        if now >= self._next:
            with self._lock:
                if now >= self._next:
                    self._measure()
        return int((now + self._offset) * 1000)


class MongoStore(base.MessageStore):
    capabilities = frozenset({"FIFO", "CLAIMS", "DURABILITY", "AOD", "HIGH_THROUGHPUT"})

    def __init__(self, url: str | None = None, *, client: Any = None, database: str | None = None,
                 unreliable: bool = False, clock: Callable[[], float] = time.time,
                 transactions: bool | None = None) -> None:
        """``transactions``: run each change with its event in one transaction (default: when the server is
        a replica set or mongos)."""
        if client is None:
            assert url is not None
            url, unreliable_flag = pool_options(url)
            client = pymongo.MongoClient(url, tz_aware=True)
            unreliable = unreliable or unreliable_flag
            database = database or pymongo.uri_parser.parse_uri(url)["database"]
        if not unreliable:
            with translated("be checked for durability"):
                require_durability(client)
        self._client = client
        with translated("be asked about transactions"):
            self._transactions = _supports_transactions(client) if transactions is None else transactions
        db = client[database or "zaqar"]
        self._queues = _InSession(db["queues"])
        self._batches = _InSession(db["batches"])
        self._outbox = _InSession(db["outbox"])
        self._heads = _InSession(db["heads"])
        self._clock = ServerClock(client, clock)
        with translated("prepare its indexes"):
            self._batches.create_index([("p", 1), ("q", 1), ("k", 1)], name="marker")
            self._batches.create_index([("p", 1), ("q", 1), ("m.i", 1)], name="message")
            self._batches.create_index([("p", 1), ("q", 1), ("m.c", 1)], name="claim")
            self._batches.create_index([("p", 1), ("q", 1), ("es", 1)], name="event", sparse=True)
            self._batches.create_index([("ew", 1)], name="event_written", sparse=True)
            self._batches.create_index([("p", 1), ("q", 1), ("m.dl", 1)], name="dead_letter", sparse=True)
            self._batches.create_index([("p", 1), ("q", 1), ("m.em", 1)], name="expiry")
            # one field, sparse: a compound sparse index would hold every batch (p and q are always there)
            self._batches.create_index([("ik", 1)], name="idempotency", unique=True, sparse=True)
            self._outbox.create_index([("p", 1), ("q", 1), ("s", 1)], name="sequence")
            self._outbox.create_index([("w", 1)], name="written")

    def _now(self) -> int:
        with translated("tell the time"):
            return self._clock.now_ms()

    @staticmethod
    def _scope(project: str, queue: str) -> dict[str, Any]:
        return {"p": project, "q": queue}

    def ping(self) -> bool:
        try:
            self._client.admin.command("ping")
        except mongo_errors.PyMongoError:
            return False
        return True

    def close(self) -> None:
        self._client.close()

    # -- queues -----------------------------------------------------------------

    @staticmethod
    def _settings_doc(settings: base.QueueSettings) -> dict[str, Any]:
        return {name: getattr(settings, name) for name in _SETTINGS}

    def _create(self, project: str, queue: str, metadata: Mapping[str, Any], settings: base.QueueSettings,
                now: int) -> dict[str, Any] | None:
        """The new queue's document, or None when it exists. Batches of an earlier queue of the name (a post
        that raced its delete) go first: only the creator removes them, and only other incarnations'."""
        doc = {"_id": queue_id(project, queue), "p": project, "q": queue, "meta": json.dumps(metadata),
               "s": self._settings_doc(settings), "cr": now, "g": uuid.uuid4().hex, "k": 0}
        try:
            self._queues.insert_one(doc)
        except mongo_errors.DuplicateKeyError:
            return None
        leftovers = {**self._scope(project, queue), "g": {"$ne": doc["g"]}}
        if self._batches.find_one(leftovers, {"_id": 1}) is not None:
            self._rescue_events(leftovers)
            self._batches.delete_many(leftovers)
        return doc

    def queue_create(self, *, project: str, queue: str, metadata: Mapping[str, Any],
                     settings: base.QueueSettings, event_id: str | None = None) -> bool:
        now = self._now()
        with translated("store the queue"):
            if self._create(project, queue, metadata, settings, now) is None:
                return False
            if event_id is not None:
                self._record(project, queue, event_id, "queue.created", {"metadata": dict(metadata)}, now)
        return True

    def queue_get(self, *, project: str, queue: str) -> dict[str, Any] | None:
        return self.queue_get_many(project=project, queues=[queue])[0]

    def queue_get_many(self, *, project: str, queues: Sequence[str]) -> list[dict[str, Any] | None]:
        with translated("read queues"):
            found = {d["q"]: json.loads(d["meta"]) for d in self._queues.find(
                {"_id": {"$in": [queue_id(project, q) for q in queues]}}, {"meta": 1, "q": 1})}
        return [found.get(q) for q in queues]

    @_with_its_event
    def queue_set(self, *, project: str, queue: str, metadata: Mapping[str, Any],
                  settings: base.QueueSettings, event_id: str | None = None) -> bool:
        with translated("store the queue"):
            result = self._queues.update_one({"_id": queue_id(project, queue)},
                                             {"$set": {"meta": json.dumps(metadata), "s": self._settings_doc(settings)}})
            if result.matched_count and event_id is not None:
                self._record(project, queue, event_id, "queue.updated", {"metadata": dict(metadata)}, self._now())
        return bool(result.matched_count)

    def _rescue_events(self, where: Mapping[str, Any]) -> None:
        """Move the unpublished message.posted events of batches about to be deleted into the outbox."""
        for doc in self._batches.find({**where, "es": {"$exists": True}}, {"p": 1, "q": 1, "h": 1, "ei": 1, "es": 1,
                                                                              "ew": 1, "ev": 1}):
            if self._outbox.find_one({"_id": doc["ei"]}, {"_id": 1}) is None:  # not moved by an earlier try (a
                # duplicate key would abort a transaction)
                self._outbox.insert_one({"_id": doc["ei"], "p": doc["p"], "q": doc["q"], "h": doc["h"], "s": doc["es"],
                                         "w": doc["ew"], "doc": doc["ev"]})

    @_with_its_event
    def queue_delete(self, *, project: str, queue: str, event_id: str | None = None) -> None:
        scope = self._scope(project, queue)
        with translated("delete the queue"):
            # the queue first: a post racing this delete then finds its incarnation gone and takes its batch back
            gone = self._queues.delete_one({"_id": queue_id(project, queue)}).deleted_count
            self._rescue_events(scope)
            self._batches.delete_many(scope)
            if gone and event_id is not None:  # the outbox and the head stay
                self._record(project, queue, event_id, "queue.deleted", {}, self._now())

    @staticmethod
    def _tombstone(batch: Mapping[str, Any]) -> dict[str, Any]:
        """What stays of a keyed batch that goes while its key's window runs: the binding (see *Keyed posts*)."""
        kept = {name: batch[name] for name in ("_id", "p", "q", "h", "g", "cr", *_KEY_FIELDS)}
        return {**kept, "v": int(batch["v"]) + 1, "k": int(batch["kw"]) - TOMBSTONE, "n": 0, "m": []}

    @_with_its_event
    def queue_purge(self, *, project: str, queue: str, event_id: str | None = None,
                    resource_types: Sequence[str] = ("messages",)) -> None:
        scope = self._scope(project, queue)
        with translated("purge the queue"):
            now = self._now()
            self._rescue_events(scope)
            self._batches.delete_many({**scope, "ik": {"$exists": False}})
            # what is left are keyed batches (and tombstones, which stay as they are): their keys stay bound for
            # the rest of their windows
            for batch in list(self._batches.find({**scope, "k": {"$gt": 0}})):
                # while it still binds the key: a post may have released an expired binding and bound it anew
                if "ik" in batch and int(batch["kw"]) > now and self._batches.replace_one(
                        {"_id": batch["_id"], "ik": batch["ik"]}, self._tombstone(batch)).matched_count:
                    continue
                self._batches.delete_one({"_id": batch["_id"]})
            exists = event_id is not None and self._queues.find_one({"_id": queue_id(project, queue)}, {"_id": 1})
            if exists:
                assert event_id is not None
                self._record(project, queue, event_id, "queue.purged", {"resource_types": list(resource_types)},
                             self._now())

    def _live(self, project: str, queue: str, now: int) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
        """Every live message of the queue (not expired, not bound for a dead-letter queue), oldest first."""
        for batch in self._batches.find({**self._scope(project, queue), "n": {"$gt": 0}}).sort("k", 1):
            for m in batch["m"]:
                if m["em"] > now and "dl" not in m:
                    yield batch, m

    def queue_stats(self, *, project: str, queue: str) -> base.Stats:
        now = self._now()
        total = claimed = 0
        oldest = newest = None
        with translated("count messages"):
            for batch, m in self._live(project, queue, now):
                total += 1
                claimed += m.get("ce", 0) > now
                if oldest is None:
                    oldest = _record(batch, m)
                newest = (batch, m)
        return base.Stats(total, claimed, oldest, _record(*newest) if newest else None, now)

    # -- messages -----------------------------------------------------------------

    def _queue_for_post(self, project: str, queue: str, create: bool, stream_all: bool,
                        event_id: str | None, now: int) -> dict[str, Any]:
        current: dict[str, Any] | None = self._queues.find_one({"_id": queue_id(project, queue)}, {"s": 1, "g": 1, "k": 1})
        while current is None:
            if not create:
                raise base.QueueMissing(queue)
            current = self._create(project, queue, {}, base.QueueSettings(), now)
            if current is not None:
                if stream_all and event_id is not None:
                    self._record(project, queue, uuid.uuid4().hex, "queue.created", {"metadata": {}}, now)
            else:  # made meanwhile by someone else
                current = self._queues.find_one({"_id": queue_id(project, queue)}, {"s": 1, "g": 1, "k": 1})
        return current

    def _insert_batch(self, project: str, queue: str, batch: dict[str, Any], after: int) -> int:
        """Insert the batch with the first free marker above ``after``; its marker. Raises _KeyTaken when the
        batch's idempotency key (``ik``) is bound."""
        k = after + 1
        for _ in range(ATTEMPTS):
            batch.update(_id=_bid(project, queue, k), k=k)
            try:
                self._batches.insert_one(batch)
                return k
            except mongo_errors.DuplicateKeyError:
                there = self._batches.find_one({"_id": batch["_id"]})
                if there is not None and there["m"][:1] and there["m"][0]["i"] == batch["m"][0]["i"]:
                    return k  # ours: an insert that went through before its reply was lost
                if there is None and "ik" in batch:
                    # the marker is free, so the key is taken (or the marker's batch went meanwhile): never
                    # step over a free marker, a later post could still take it
                    raise _KeyTaken from None
                top = self._batches.find_one(self._scope(project, queue), {"k": 1}, sort=[("k", -1)])
                k = max(k, int(top["k"]) if top else 0) + 1
        raise _Busy

    def _bound(self, key: str, now: int) -> dict[str, Any] | None:
        """The batch (or tombstone) binding ``key`` now, or None; a binding whose window ended is released.

        Whatever incarnation of the queue the batch has: one left by a post that raced the queue's delete
        is in the queue until the queue is made again (which removes it, binding and all), or taken back by
        its post, which then posts again with the same ids."""
        doc: dict[str, Any] | None = self._batches.find_one({"ik": key})
        if doc is None or int(doc["kw"]) > now:
            return doc
        where = {"_id": doc["_id"], "ik": key}
        if int(doc["k"]) < 0:
            self._batches.delete_one(where)
        else:  # a version like every change: a compare and set that read the binding cannot write it back
            self._batches.update_one(where, {"$unset": dict.fromkeys(_KEY_FIELDS, ""), "$inc": {"v": 1}})
        return None

    @staticmethod
    def _repeat(bound: Mapping[str, Any], idempotency: base.Idempotency, queue: str, now: int) -> base.Posted:
        if bound["kd"] != idempotency.digest:
            raise base.IdempotencyConflict(queue)
        return base.Posted([str(i) for i in bound["ki"]], now, [(int(t), int(d)) for t, d in bound["ke"]],
                           repeated=True)

    def message_post(self, *, project: str, queue: str, messages: Sequence[base.NewMessage], client_id: str,
                     create: bool, encrypted: bool, request_size: int, default_ttl: int,
                     event_id: str | None, stream_all: bool = False,
                     idempotency: base.Idempotency | None = None) -> base.Posted:
        now = self._now()
        key = None if idempotency is None else _key(project, queue, idempotency.key)
        with translated("store the messages"):
            for _ in range(ATTEMPTS):
                current = self._queue_for_post(project, queue, create, stream_all, event_id, now)
                if key is not None:
                    assert idempotency is not None
                    bound = self._bound(key, now)
                    if bound is not None:  # before anything is written: no sequence, no event, no lease
                        return self._repeat(bound, idempotency, queue, now)
                settings = current.get("s") or {}
                if settings.get("max_post_size") is not None and request_size > settings["max_post_size"]:
                    raise base.PostTooLarge(int(settings["max_post_size"]))
                if settings.get("encrypted") and not encrypted:
                    raise base.EncryptionRequired(queue)
                rows, effective = [], []
                for offset, message in enumerate(messages):
                    ttl = message.ttl if message.ttl is not None else (settings.get("default_ttl") or default_ttl)
                    delay = message.delay if message.delay is not None else (settings.get("default_delay") or 0)
                    rows.append({"i": message.id, "o": offset, "t": ttl, "em": now + ttl * 1000,
                                 "d": now + delay * 1000 if delay else 0, "b": message.body, "c": None, "ce": 0,
                                 "cc": 0})
                    effective.append((ttl, delay))
                batch: dict[str, Any] = {"p": project, "q": queue, "h": queue_id(project, queue), "g": current["g"],
                                         "v": 0, "cr": now,
                                         "u": client_id, "x": encrypted, "m": rows, "n": len(rows)}
                if key is not None:
                    assert idempotency is not None
                    batch.update(ik=key, kd=idempotency.digest, kw=now + idempotency.window_ms,
                                 ki=[m.id for m in messages], ke=[list(pair) for pair in effective])
                sequence = self._event_sequence(project, queue, now, stream_all) if event_id is not None else None
                if sequence is not None:
                    assert event_id is not None
                    entries = [base.PostedEntry(m.id, ttl, delay, m.body)
                               for m, (ttl, delay) in zip(messages, effective, strict=True)]
                    batch.update(ei=event_id, es=sequence, ew=now,
                                 ev=base.PostedEvent(event_id, now, encrypted, entries).to_json(sequence))
                try:
                    k = self._insert_batch(project, queue, batch, int(current.get("k") or 0))
                except _KeyTaken:  # bound by a concurrent post: the next round answers from its batch
                    if sequence is not None:
                        self._skip(project, queue, sequence, now)
                    continue
                except BaseException:
                    if sequence is not None:
                        self._skip(project, queue, sequence, now)
                    raise
                # Committed: the batch is in, with its event. The marker is recorded on the queue of the
                # incarnation read; if that queue is gone (deleted, maybe made again) the batch is taken back
                # and the post goes to whatever queue is there now.
                if self._committed(project, queue, current["g"], k):
                    break
                self._batches.delete_one({"_id": batch["_id"]})
            else:
                raise _Busy
        pending = None
        if sequence is not None and event_id is not None:
            try:  # the post stands either way: without the lease, its event waits for the holder or the relay
                pending = self._take_lease(project, queue, event_id)
            except mongo_errors.PyMongoError as exc:
                if not unreachable(exc):
                    raise
                log.warning("posted to %s, but the publish lease could not be tried; the relay publishes it", queue)
        return base.Posted([m.id for m in messages], now, effective, event_stored=sequence is not None,
                           pending=pending)

    def _skip(self, project: str, queue: str, sequence: int, now: int) -> None:
        """Best effort, for a post whose batch did not go in: an outbox entry saying that ``sequence`` has no event,
        so the publisher goes on at once instead of waiting GAP_WAIT_MS for it."""
        with suppress(mongo_errors.PyMongoError):
            self._outbox.insert_one({"_id": f"skip-{project}-{queue}-{sequence}", "p": project, "q": queue,
                                     "h": queue_id(project, queue), "s": sequence, "w": now, "doc": None})

    def _committed(self, project: str, queue: str, incarnation: str, k: int) -> bool:
        """Record marker ``k`` on the queue if it is still incarnation ``incarnation``; whether it is. When the
        pool does not answer, the inserted batch stands (the queue most likely still exists: the marker is
        recorded again by gc): reporting a stored post as failed would have it posted twice."""
        try:
            return bool(self._queues.update_one({"_id": queue_id(project, queue), "g": incarnation},
                                                {"$max": {"k": k}}).matched_count)
        except mongo_errors.PyMongoError as exc:
            if not unreachable(exc):
                raise
            log.warning("posted to %s, but its marker could not be recorded; gc records it", queue)
            return True

    def _event_sequence(self, project: str, queue: str, now: int, stream_all: bool) -> int | None:
        """The next event sequence of the queue when its post makes an event: every post when
        ``stream_all``, else while someone listens. One write either way."""
        where: dict[str, Any] = {"_id": queue_id(project, queue)}
        if not stream_all:
            where["until"] = {"$gt": now}
        head = self._heads.find_one_and_update(where, {"$inc": {"seq": 1}, "$set": self._scope(project, queue)},
                                               {"seq": 1}, upsert=stream_all, return_document=ReturnDocument.AFTER)
        return None if head is None else int(head["seq"])

    def _holding(self, project: str, queue: str, ids: Iterable[str]) -> dict[str, Any]:
        """The query of the batches holding any of ``ids``: one equality each, the form the wire-protocol server
        the tests use matches (it reads ``$in`` on array elements, and dotted paths under a multikey index, as
        no match)."""
        scope = self._scope(project, queue)
        return {"$or": [{**scope, "m.i": i} for i in ids] or [{**scope, "m.i": None}]}  # each branch indexed

    def _batches_after(self, project: str, queue: str, after_k: int, extra: Mapping[str, Any] | None = None
                       ) -> Iterator[dict[str, Any]]:
        query = {**self._scope(project, queue), "k": {"$gte": after_k}, "n": {"$gt": 0}, **(extra or {})}
        yield from self._batches.find(query).sort("k", 1).batch_size(SCAN)

    def message_list(self, *, project: str, queue: str, marker: str | None, limit: int, client_id: str, echo: bool,
                     include_claimed: bool, include_delayed: bool) -> base.Page[base.MessageRecord]:
        now = self._now()
        after = int(marker) if marker and marker.isdigit() else 0
        items: list[base.MessageRecord] = []
        extra = {} if echo else {"u": {"$ne": client_id}}
        with translated("list messages"):
            for batch in self._batches_after(project, queue, after >> SHIFT, extra):
                for m in batch["m"]:
                    record = _record(batch, m)
                    if (record.marker <= after or m["em"] <= now or "dl" in m
                            or (not include_claimed and m["ce"] > now)
                            or (not include_delayed and m["d"] > now)):
                        continue
                    items.append(record)
                    if len(items) == limit:
                        break
                if len(items) == limit:
                    break
        return base.Page(items, str(items[-1].marker) if items else None, now)

    def message_get_many(self, *, project: str, queue: str, ids: Sequence[str]) -> base.Records:
        now = self._now()
        wanted = set(ids)
        found: dict[str, base.MessageRecord] = {}
        with translated("read messages"):
            for batch in self._batches.find(self._holding(project, queue, wanted)):
                for m in batch["m"]:
                    if m["i"] in wanted and m["em"] > now and "dl" not in m:
                        found[m["i"]] = _record(batch, m)
        return base.Records([found[i] for i in ids if i in found], now)

    def _change(self, batch: dict[str, Any], change: Callable[[list[dict[str, Any]]], list[dict[str, Any]] | None]
                ) -> dict[str, Any] | None:
        """Compare and set one batch: ``change`` gets its messages and returns the new list (None: no
        change). Read again and retried while another writer got in first. The batch as written, or None."""
        for _ in range(ATTEMPTS):
            rows = change([dict(m) for m in batch["m"]])
            if rows is None:
                return None
            # the whole document replaced, not $set on its array: the wire-protocol server the tests use
            # turns sub-documents written by update operators into strings
            written = {**batch, "m": rows, "n": len(rows), "v": int(batch["v"]) + 1}
            if self._batches.replace_one({"_id": batch["_id"], "v": batch["v"]}, written).matched_count:
                return written
            fresh = self._batches.find_one({"_id": batch["_id"]})
            if fresh is None:
                return None  # gone meanwhile (purged, deleted with its queue)
            batch = fresh
        raise _Busy

    @_with_its_event
    def message_delete(self, *, project: str, queue: str, message_id: str, claim_id: str | None,
                       event_id: str | None = None) -> None:
        now = self._now()
        state: dict[str, str] = {}

        def remove(rows: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
            state.clear()
            for index, m in enumerate(rows):
                if m["i"] != message_id:
                    continue
                if m["em"] <= now or "dl" in m:
                    return None  # gone already, or on its way to the dead-letter queue: nothing to delete
                held = m["ce"] > now
                if claim_id is None and held:
                    state["refused"] = "claimed"
                    return None
                if claim_id is not None and (not held or m.get("c") != claim_id):
                    state["refused"] = "not claimed"
                    return None
                state["deleted"] = message_id
                return rows[:index] + rows[index + 1:]
            return None

        with translated("delete the message"):
            batch = self._batches.find_one(self._holding(project, queue, [message_id]))
            if batch is not None:
                self._change(batch, remove)
            if state.get("deleted") and event_id is not None:
                self._record(project, queue, event_id, "message.deleted", {"ids": [message_id]}, now)
        if state.get("refused") == "claimed":
            raise errors.MessageIsClaimed(message_id=message_id)
        if state.get("refused") == "not claimed":
            assert claim_id is not None
            raise errors.MessageNotClaimed(message_id=message_id, claim_id=claim_id)

    def _remove_ids(self, project: str, queue: str, ids: Iterable[str], now: int) -> list[str]:
        """Delete these messages whatever their claims; the ids that were there (in batch order)."""
        wanted = set(ids)
        removed: list[str] = []
        for batch in list(self._batches.find(self._holding(project, queue, wanted))):
            taken: list[str] = []

            def remove(rows: list[dict[str, Any]], taken: list[str] = taken) -> list[dict[str, Any]] | None:
                taken.clear()
                kept = []
                for m in rows:
                    if m["i"] in wanted and "dl" not in m:
                        if m["em"] > now:
                            taken.append(m["i"])
                    else:
                        kept.append(m)
                return kept if len(kept) < len(rows) else None

            self._change(batch, remove)
            removed.extend(taken)
        return removed

    @_with_its_event
    def message_delete_many(self, *, project: str, queue: str, ids: Sequence[str],
                            event_id: str | None = None) -> int:
        now = self._now()
        with translated("delete messages"):
            removed = set(self._remove_ids(project, queue, ids, now))
            if removed and event_id is not None:
                existed = list(dict.fromkeys(i for i in ids if i in removed))  # in request order
                self._record(project, queue, event_id, "message.deleted", {"ids": existed}, now)
        return len(removed)

    def _free(self, m: Mapping[str, Any], now: int) -> bool:
        return m["em"] > now and m["d"] <= now and m["ce"] <= now and "dl" not in m

    @_with_its_event
    def message_pop(self, *, project: str, queue: str, limit: int, event_id: str | None = None) -> base.Records:
        now = self._now()
        taken: list[base.MessageRecord] = []
        with translated("pop messages"):
            for batch in self._batches_after(project, queue, 0):
                chosen: list[base.MessageRecord] = []

                def pop(rows: list[dict[str, Any]], batch: dict[str, Any] = batch,
                        chosen: list[base.MessageRecord] = chosen) -> list[dict[str, Any]] | None:
                    chosen.clear()
                    kept = []
                    for m in rows:
                        if len(taken) + len(chosen) < limit and self._free(m, now):
                            chosen.append(_record(batch, {**m, "cc": int(m.get("cc") or 0) + 1}))
                        else:
                            kept.append(m)
                    return kept if chosen else None

                self._change(batch, pop)
                taken.extend(chosen)
                if len(taken) == limit:
                    break
            if taken and event_id is not None:
                self._record(project, queue, event_id, "message.deleted", {"ids": [m.id for m in taken]}, now)
        return base.Records(taken, now)

    # -- claims -------------------------------------------------------------------

    @_with_its_event
    def claim_create(self, *, project: str, queue: str, claim_id: str, ttl: int, grace: int,
                     limit: int, event_id: str | None = None) -> base.ClaimResult:
        now = self._now()
        claim_end, keep_until = now + ttl * 1000, now + (ttl + grace) * 1000
        taken: list[base.MessageRecord] = []
        dead: list[base.DeadLetter] = []
        with translated("claim messages"):
            current = self._queues.find_one({"_id": queue_id(project, queue)}, {"s": 1}) or {}
            settings = current.get("s") or {}
            dlq, dlq_ttl, max_claims = (settings.get("dead_letter_queue"), settings.get("dead_letter_ttl"),
                                        settings.get("max_claim_count"))
            for batch in self._batches_after(project, queue, 0):
                claimed: list[base.MessageRecord] = []
                doomed: list[base.DeadLetter] = []

                def take(rows: list[dict[str, Any]], batch: dict[str, Any] = batch,
                         claimed: list[base.MessageRecord] = claimed,
                         doomed: list[base.DeadLetter] = doomed) -> list[dict[str, Any]] | None:
                    claimed.clear()
                    doomed.clear()
                    for m in rows:
                        if len(taken) + len(claimed) >= limit:
                            break
                        if not self._free(m, now):
                            continue
                        if dlq and max_claims and int(m.get("cc") or 0) >= max_claims:
                            m.update(dl=dlq, dt=dlq_ttl, ce=HELD, c=None)  # out of reach until the target has it
                            doomed.append(base.DeadLetter(_record(batch, {**m, "ce": 0}), dlq, dlq_ttl))
                            continue
                        m.update(c=claim_id, ce=claim_end, cc=int(m.get("cc") or 0) + 1, cs=now, ct=ttl, cg=grace)
                        if m["em"] < keep_until:
                            m.update(em=keep_until, t=ttl + grace)
                        claimed.append(_record(batch, m))
                    return rows if claimed or doomed else None

                self._change(batch, take)
                taken.extend(claimed)
                dead.extend(doomed)
                if len(taken) == limit:
                    break
            if taken and event_id is not None:
                self._record(project, queue, event_id, "claim.created",
                             {"claim_id": claim_id, "ids": [m.id for m in taken]}, now)
        return base.ClaimResult(claim_id, taken, now, dead)

    def _claim_batches(self, project: str, queue: str, claim_id: str) -> list[dict[str, Any]]:
        return list(self._batches.find({**self._scope(project, queue), "m": {"$elemMatch": {"c": claim_id}}}).sort("k", 1))

    def claim_get(self, *, project: str, queue: str, claim_id: str) -> base.Claim | None:
        now = self._now()
        with translated("read the claim"):
            held = [(b, m) for b in self._claim_batches(project, queue, claim_id) for m in b["m"]
                    if m.get("c") == claim_id and m["ce"] > now and m["em"] > now]
        if not held:
            return None
        first = held[0][1]
        return base.Claim(claim_id, int(first["ct"]), int(first["cg"]), int(first["cs"]),
                          [_record(b, m) for b, m in held], now)

    @_with_its_event
    def claim_update(self, *, project: str, queue: str, claim_id: str, ttl: int, grace: int,
                     event_id: str | None = None) -> bool:
        now = self._now()
        claim_end, keep_until = now + ttl * 1000, now + (ttl + grace) * 1000
        renewed = False

        def renew(rows: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
            changed = False
            for m in rows:
                if m.get("c") == claim_id and m["ce"] > now:
                    m.update(ce=claim_end, cs=now, ct=ttl, cg=grace)
                    if m["em"] < keep_until:
                        m.update(em=keep_until, t=ttl + grace)
                    changed = True
            return rows if changed else None

        with translated("renew the claim"):
            for batch in self._claim_batches(project, queue, claim_id):
                renewed = self._change(batch, renew) is not None or renewed
            if renewed and event_id is not None:
                self._record(project, queue, event_id, "claim.updated",
                             {"claim_id": claim_id, "ttl": ttl, "grace": grace}, now)
        return renewed

    @_with_its_event
    def claim_delete(self, *, project: str, queue: str, claim_id: str, event_id: str | None = None) -> None:
        now = self._now()
        live = False

        def release(rows: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
            nonlocal live
            changed = False
            for m in rows:
                if m.get("c") == claim_id:
                    live = live or m["ce"] > now
                    m.update(c=None, ce=0)
                    changed = True
            return rows if changed else None

        with translated("release the claim"):
            for batch in self._claim_batches(project, queue, claim_id):
                self._change(batch, release)
            if live and event_id is not None:  # an expired claim is gone already
                self._record(project, queue, event_id, "claim.deleted", {"claim_id": claim_id}, now)

    # -- dead letters, outbox, housekeeping ---------------------------------------------

    def dead_letter_accept(self, *, project: str, queue: str, letters: Sequence[base.DeadLetter]) -> None:
        if not letters:
            return
        now = self._now()
        with translated("store dead letters"):
            current = self._queue_for_post(project, queue, True, False, None, now)
            ids = [letter.record.id for letter in letters]
            there = {m["i"] for b in self._batches.find(self._holding(project, queue, ids)) for m in b["m"]}
            rows: list[dict[str, Any]] = []
            for letter in letters:
                rec = letter.record
                if rec.id in there:
                    continue  # handed over already
                ttl, expires = rec.ttl, rec.expires_ms
                if letter.ttl is not None:
                    ttl, expires = letter.ttl, now + letter.ttl * 1000
                rows.append({"i": rec.id, "o": len(rows), "t": ttl, "em": expires, "d": 0, "b": rec.body,
                             "c": None, "ce": 0, "cc": 0})
            if not rows:
                return
            encrypted = letters[0].record.encrypted
            for _ in range(ATTEMPTS):
                batch = {"p": project, "q": queue, "h": queue_id(project, queue), "g": current["g"], "v": 0, "cr": now,
                         "u": "", "x": encrypted,
                         "m": rows, "n": len(rows)}
                k = self._insert_batch(project, queue, batch, int(current.get("k") or 0))
                if self._queues.update_one({"_id": queue_id(project, queue), "g": current["g"]},
                                           {"$max": {"k": k}}).matched_count:
                    return
                self._batches.delete_one({"_id": batch["_id"]})
                current = self._queue_for_post(project, queue, True, False, None, now)
            raise _Busy

    def dead_letter_done(self, *, project: str, queue: str, ids: Sequence[str]) -> None:
        wanted = set(ids)

        def forget(rows: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
            kept = [m for m in rows if not (m["i"] in wanted and "dl" in m)]
            return kept if len(kept) < len(rows) else None

        with translated("forget dead letters"):
            for batch in list(self._batches.find(self._holding(project, queue, wanted))):
                self._change(batch, forget)

    def dead_letter_pending(self, *, project: str, queue: str) -> list[base.DeadLetter]:
        with translated("read dead letters"):
            docs = list(self._batches.find({**self._scope(project, queue), "m": {"$elemMatch": {"dl": {"$exists": True}}}}).sort("k", 1))
        return [base.DeadLetter(_record(b, {**m, "ce": 0}), m["dl"], m.get("dt")) for b in docs for m in b["m"]
                if "dl" in m]

    # The outbox: message.posted events live in their batch until published, the others in ``outbox``.
    # Both carry the queue's event sequence, taken from its head; the publisher hands them out in that
    # order and waits (GAP_WAIT_MS at most) for a sequence that was taken and not written yet.

    def _next_sequence(self, project: str, queue: str) -> int:
        doc = self._heads.find_one_and_update(
            {"_id": queue_id(project, queue)}, {"$inc": {"seq": 1}, "$set": self._scope(project, queue)},
            {"seq": 1}, upsert=True, return_document=ReturnDocument.AFTER)
        return int(doc["seq"])

    def _record(self, project: str, queue: str, event_id: str, kind: str, data: Mapping[str, Any], now: int) -> None:
        sequence = self._next_sequence(project, queue)
        with suppress(mongo_errors.DuplicateKeyError):  # the event is in the outbox already (a retried write)
            self._outbox.insert_one({"_id": event_id, "p": project, "q": queue, "h": queue_id(project, queue),
                                     "s": sequence, "w": now,
                                     "doc": base.event_json(event_id, kind, now, sequence, data)})

    def _pending(self, project: str, queue: str, published: int, now: int) -> list[str]:
        """The next entries in sequence order, from ``published`` + 1 on, stopping before a sequence that was
        handed out and is not written yet (unless the entry after it is older than GAP_WAIT_MS)."""
        scope = self._scope(project, queue)
        found = [(int(d.get("s") or 0), int(d.get("w") or 0), d["doc"], d["_id"]) for d in self._outbox.find(
            scope, {"s": 1, "w": 1, "doc": 1}).sort("s", 1).limit(base.PENDING_COUNT)]
        found += [(int(d["es"]), int(d["ew"]), d["ev"], d["ei"]) for d in self._batches.find(
            {**scope, "es": {"$exists": True}}, {"es": 1, "ew": 1, "ev": 1, "ei": 1}).sort("es", 1).limit(
            base.PENDING_COUNT)]
        found.sort(key=lambda entry: entry[0])
        out: list[str] = []
        skipped: list[str] = []
        passed = published
        size = 0
        expected = published + 1
        for sequence, written, document, entry in found[:base.PENDING_COUNT]:
            if sequence > expected and now - written < GAP_WAIT_MS:
                break  # its writer may still be writing the missing one
            expected = max(expected, sequence + 1)
            if document is None:  # a post that failed: no event has this sequence
                if not out:  # nothing unpublished before it: the holder may count it as published
                    skipped.append(entry)
                    passed = sequence
                continue
            size += len(document)
            if out and size > base.PENDING_BYTES:
                break
            out.append(document)
        if skipped:
            self._heads.update_one({"_id": queue_id(project, queue)}, {"$max": {"pub": passed}})
            self._outbox.delete_many({**scope, "_id": {"$in": skipped}})
        return out

    def _take_lease(self, project: str, queue: str, holder: str, *, look_again: bool = True) -> list[str] | None:
        now = self._now()
        key = {"_id": queue_id(project, queue)}
        taken = self._heads.find_one_and_update(
            {**key, "$or": [{"lh": {"$exists": False}}, {"lh": holder}, {"le": {"$lte": now}}]},
            {"$set": {"lh": holder, "le": now + base.PUBLISH_LEASE_MS}}, {"pub": 1},
            return_document=ReturnDocument.AFTER)
        if taken is None:
            # no head: no event was ever recorded for this queue, so nothing is pending
            return None if self._heads.find_one(key, {"_id": 1}) is not None else []
        return self._leased_pending(project, queue, holder, int(taken.get("pub") or 0), look_again=look_again)

    def _leased_pending(self, project: str, queue: str, holder: str, published: int, *, look_again: bool
                        ) -> list[str]:
        """As the lease's holder: the next entries, or none and the lease given up (a lease is held only
        while there is something to publish)."""
        pending = self._pending(project, queue, published, self._now())
        for _ in range(GAP_POLLS):
            if pending or not self._holds_entries(project, queue):
                break
            # entries wait behind a sequence whose writer is between taking it and writing it: a few ms,
            # typically; giving the lease up now could leave them to the relay if that writer found it held
            time.sleep(GAP_POLL_S)
            pending = self._pending(project, queue, published, self._now())
        if pending:
            return pending
        self._give_up(project, queue, holder)
        # A writer whose entry went in after the read above and who found the lease still held left its
        # entry to us: look once more now that the lease is free.
        if look_again and self._holds_entries(project, queue):
            return self._take_lease(project, queue, holder, look_again=False) or []
        return []

    def _holds_entries(self, project: str, queue: str) -> bool:
        return (self._outbox.find_one(self._scope(project, queue), {"_id": 1}) is not None
                or self._batches.find_one({**self._scope(project, queue), "es": {"$exists": True}},
                                          {"_id": 1}) is not None)

    def _give_up(self, project: str, queue: str, holder: str) -> None:
        self._heads.update_one({"_id": queue_id(project, queue), "lh": holder}, {"$unset": {"lh": "", "le": ""}})

    def outbox_record(self, *, project: str, queue: str, event_id: str, kind: str, data: Mapping[str, Any]) -> None:
        with translated("record the event"):
            self._record(project, queue, event_id, kind, data, self._now())

    def outbox_lease(self, *, project: str, queue: str, holder: str) -> list[str] | None:
        with translated("lease the outbox"):
            return self._take_lease(project, queue, holder)

    def outbox_release(self, *, project: str, queue: str, holder: str, published: Sequence[str],
                       keep: bool) -> list[str]:
        scope = self._scope(project, queue)
        with translated("release the outbox"):
            last = 0
            if published:
                ids = list(published)
                last = max([int(d.get("s") or 0) for d in self._outbox.find({**scope, "_id": {"$in": ids}}, {"s": 1})]
                           + [int(d["es"]) for d in self._batches.find({**scope, "ei": {"$in": ids}}, {"es": 1})]
                           + [0])
                self._outbox.delete_many({**scope, "_id": {"$in": ids}})
                self._batches.update_many({**scope, "ei": {"$in": ids}},  # a version like every change
                                          {"$unset": {"ei": "", "es": "", "ew": "", "ev": ""}, "$inc": {"v": 1}})
            if not keep:
                self._heads.update_one({"_id": queue_id(project, queue), "lh": holder},
                                       {"$unset": {"lh": "", "le": ""}, "$max": {"pub": last}})
                return []
            renewed = self._heads.find_one_and_update(
                {"_id": queue_id(project, queue), "lh": holder},
                {"$set": {"le": self._now() + base.PUBLISH_LEASE_MS}, "$max": {"pub": last}}, {"pub": 1},
                return_document=ReturnDocument.AFTER)
            if renewed is None:
                return []  # lost to another holder: theirs now
            return self._leased_pending(project, queue, holder, int(renewed.get("pub") or 0), look_again=True)

    def outbox_flag(self, *, project: str, queue: str) -> None:
        """Nothing to do: the relay finds every outbox entry older than its grace time by itself."""

    def outbox_flagged(self, *, flagged_before_ms: int, limit: int) -> list[base.Flagged]:
        since: dict[tuple[str, str], int] = {}
        with translated("read the outbox"):
            for collection, field in ((self._outbox, "w"), (self._batches, "ew")):
                rows = collection.aggregate([  # grouped by one field: the test server groups by no compound key
                    {"$match": {field: {"$lte": flagged_before_ms}}},
                    {"$group": {"_id": "$h", "since": {"$min": f"${field}"}, "p": {"$first": "$p"},
                                "q": {"$first": "$q"}}},
                ])
                for row in rows:
                    key = (row["p"], row["q"])
                    since[key] = min(since.get(key, row["since"]), int(row["since"]))
            if not since:
                return []
            now = self._now()
            # a queue whose publish lease is live is being published by its holder
            busy = {d["_id"] for d in self._heads.find(
                {"_id": {"$in": [queue_id(p, q) for p, q in since]}, "le": {"$gt": now}}, {"_id": 1})}
        ordered = sorted((t, p, q) for (p, q), t in since.items() if queue_id(p, q) not in busy)
        return [base.Flagged(p, q, int(t)) for t, p, q in ordered[:limit]]

    def outbox_unflag(self, *, flagged: base.Flagged) -> bool:
        return True  # what is left in the outbox is found again by outbox_flagged

    def listen(self, *, project: str, queue: str, until_ms: int) -> int:
        with translated("record the subscribers"):
            doc = self._heads.find_one_and_update(
                {"_id": queue_id(project, queue)},
                {"$max": {"until": until_ms}, "$inc": {"gen": 1}, "$set": self._scope(project, queue)},
                upsert=True, return_document=ReturnDocument.AFTER)
        return int(doc["gen"])

    def listeners(self, *, project: str, queue: str) -> base.Listeners:
        with translated("read the subscribers record"):
            doc = self._heads.find_one({"_id": queue_id(project, queue)}) or {}
        return base.Listeners(until_ms=int(doc.get("until") or 0), generation=int(doc.get("gen") or 0))

    def listen_lower(self, *, project: str, queue: str, until_ms: int, generation: int) -> bool:
        query: dict[str, Any] = {"_id": queue_id(project, queue), "gen": generation}
        with translated("record the subscribers"):
            if generation == 0:  # never raised: there may be no document yet
                query = {"_id": queue_id(project, queue), "gen": {"$exists": False}}
            return bool(self._heads.update_one(query, {"$set": {"until": until_ms}}).matched_count)

    def gc(self, *, project: str, queue: str, stale_before_ms: int) -> int:
        """Reclaim expired messages and emptied batches of one queue; returns how many messages.

        An emptied batch goes once it is EMPTY_KEEP_MS old and below the queue's recorded highest marker,
        so markers never go back; a keyed one whose window still runs leaves a tombstone, which goes when
        the window ends (see *Keyed posts*). Stale outbox entries need no flag here: ``outbox_flagged`` finds every
        entry older than the relay's grace time by itself, leaving out queues whose publish lease is live.
        """
        now = self._now()
        scope = self._scope(project, queue)
        gone = 0

        def expire(rows: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
            kept = [m for m in rows if m["em"] > now or "dl" in m]
            return kept if len(kept) < len(rows) else None

        with translated("reclaim expired data"):
            for batch in list(self._batches.find({**scope, "m": {"$elemMatch": {"em": {"$lte": now}}}})):
                before = sum(1 for m in batch["m"] if m["em"] <= now and "dl" not in m)
                if self._change(batch, expire) is not None:
                    gone += before
            current = self._queues.find_one({"_id": queue_id(project, queue)}, {"k": 1, "g": 1})
            if current is None:
                return gone
            top = self._batches.find_one(scope, {"k": 1}, sort=[("k", -1)])
            if top is not None:  # a post that died before recording its marker
                self._queues.update_one({"_id": queue_id(project, queue)}, {"$max": {"k": int(top["k"])}})
            highest = max(int(current.get("k") or 0), int(top["k"]) if top else 0)
            emptied = {**scope, "n": 0, "cr": {"$lt": now - EMPTY_KEEP_MS}, "es": {"$exists": False}}
            self._batches.delete_many({**emptied, "k": {"$lt": highest}, "ik": {"$exists": False}})
            # what is left are keyed: such a batch leaves its binding behind while the window runs (see *Keyed
            # posts*)
            for batch in list(self._batches.find({**emptied, "k": {"$gt": 0, "$lt": highest}})):
                where = {"_id": batch["_id"], "v": batch["v"]}
                if "ik" in batch and int(batch["kw"]) > now:
                    self._batches.replace_one(where, self._tombstone(batch))
                else:
                    self._batches.delete_one(where)
            self._batches.delete_many({**scope, "k": {"$lte": now - TOMBSTONE}})  # tombstones past their window
        return gone
