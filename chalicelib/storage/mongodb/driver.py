"""The MongoDB pool driver.

Collections (in the database named by the pool URI, ``zaqar`` by default):

- ``queues``: one document per queue, ``_id`` = {p, q}; metadata kept as a
  JSON string (metadata keys may start with ``$`` or hold dots), the
  reserved settings the driver acts on, and ``ctr``, the marker counter.
- ``messages``: ``_id`` = message id; p, q, k (marker: unique per queue,
  from ``ctr``), t (ttl), cr (created ms), em (expires ms) and e (the same
  as a date, for the TTL index that reclaims expired messages), d (visible
  from, ms), u (client), x (encrypted), c / ce / cc (claim id, claim
  expiry ms, claim count), b (body text).
- ``claims``: ``_id`` = claim id; p, q, em / e, t, g, cr, ids.
- ``deadletters``: messages a claim took out for their dead-letter queue.
- ``outbox``: events waiting to be published, ``_id`` = event id; p, q,
  s (the event's sequence in its queue), w (written, ms) and doc (the entry
  as JSON text, see ``base.StoredEvent``). An entry goes in right after its
  change (a separate write: no transactions yet) and leaves once its
  publisher reports it published. Entries still here after the grace time
  are the relay's work, so there is no separate index of flagged queues.
- ``listeners``: ``_id`` = {p, q}, kept when the queue is deleted: until
  (ms: the queue has subscribers who can receive until then) and gen (bumped
  by every ``listen``); seq (the last sequence handed to an event of the
  queue, so numbering goes on across a delete); lh and le (holder and
  expiry ms of the publish lease, both absent while nobody holds it).

A claim takes each candidate with a conditional update (``ce`` still in
the past), so two consumers never win the same message; the publish lease
is taken the same way. Times are this process's clock in milliseconds.
"""

from __future__ import annotations

import datetime
import json
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import pymongo
import pymongo.uri_parser
from pymongo import ReturnDocument
from pymongo import errors as mongo_errors

from chalicelib import errors
from chalicelib.storage import base

SCAN = 64
_SETTINGS = ("default_ttl", "default_delay", "max_post_size", "dead_letter_queue", "dead_letter_ttl",
             "max_claim_count", "encrypted")


@contextmanager
def translated(what: str) -> Iterator[None]:
    try:
        yield
    except (mongo_errors.ConnectionFailure, mongo_errors.ServerSelectionTimeoutError, mongo_errors.NetworkTimeout,
            mongo_errors.NotPrimaryError, mongo_errors.ExecutionTimeout) as exc:
        raise errors.Unavailable(f"The message pool could not {what}.") from exc


def _date(ms: int) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.UTC)


def _record(doc: Mapping[str, Any]) -> base.MessageRecord:
    return base.MessageRecord(
        id=doc["_id"], marker=int(doc["k"]), ttl=int(doc["t"]), created_ms=int(doc["cr"]), expires_ms=int(doc["em"]),
        body=doc["b"], encrypted=bool(doc.get("x")), claim_id=doc.get("c") or None,
        claim_expires_ms=int(doc.get("ce") or 0), claim_count=int(doc.get("cc") or 0),
        delay_until_ms=int(doc.get("d") or 0),
    )


def _without_unreliable(url: str) -> tuple[str, bool]:
    """Take our own ``unreliable=true`` option out of a pool URI (pymongo does not know it)."""
    parts = urlsplit(url)
    query = parse_qs(parts.query, keep_blank_values=True)
    flag = query.pop("unreliable", ["false"])[-1].lower() in {"1", "true", "yes"}
    return urlunsplit(parts._replace(query=urlencode(query, doseq=True))), flag


def require_durability(client: Any) -> None:
    """Refuse a standalone server: without a replica set a crash can lose acknowledged writes."""
    hello = client.admin.command("hello")
    if not hello.get("setName") and hello.get("msg") != "isdbgrid":
        raise errors.InvalidBody(
            "This MongoDB pool is a standalone server, which can lose acknowledged writes: use a replica set "
            "or mongos, or add unreliable=true to the pool URI to accept that."
        )


class MongoStore(base.MessageStore):
    capabilities = frozenset({"FIFO", "CLAIMS", "DURABILITY", "AOD", "HIGH_THROUGHPUT"})

    def __init__(self, url: str | None = None, *, client: Any = None, database: str | None = None,
                 unreliable: bool = False, clock: Any = time.time) -> None:
        if client is None:
            assert url is not None
            url, unreliable_flag = _without_unreliable(url)
            client = pymongo.MongoClient(url, serverSelectionTimeoutMS=3000, connectTimeoutMS=3000, tz_aware=True)
            unreliable = unreliable or unreliable_flag
            database = database or pymongo.uri_parser.parse_uri(url)["database"]
        if not unreliable:
            with translated("be checked for durability"):
                require_durability(client)
        self._client = client
        db = client[database or "zaqar"]
        self._queues = db["queues"]
        self._messages = db["messages"]
        self._claims = db["claims"]
        self._dead = db["deadletters"]
        self._outbox = db["outbox"]
        self._listeners = db["listeners"]
        self._clock = clock
        with translated("prepare its indexes"):
            self._messages.create_index([("p", 1), ("q", 1), ("k", 1)], unique=True, name="marker")
            self._messages.create_index([("p", 1), ("q", 1), ("ce", 1), ("k", 1)], name="claimable")
            self._messages.create_index([("c", 1)], name="claim")
            self._messages.create_index([("e", 1)], expireAfterSeconds=60, name="ttl")
            self._claims.create_index([("e", 1)], expireAfterSeconds=60, name="ttl")
            self._outbox.create_index([("p", 1), ("q", 1), ("w", 1)], name="pending")
            self._outbox.create_index([("p", 1), ("q", 1), ("s", 1)], name="sequence")
            self._outbox.create_index([("w", 1)], name="written")

    def _now(self) -> int:
        return int(self._clock() * 1000)

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

    def queue_create(self, *, project: str, queue: str, metadata: Mapping[str, Any],
                     settings: base.QueueSettings, event_id: str | None = None) -> bool:
        now = self._now()
        doc = {"_id": self._scope(project, queue), "meta": json.dumps(metadata), "s": self._settings_doc(settings),
               "ctr": 0, "cr": now}
        with translated("store the queue"):
            try:
                self._queues.insert_one(doc)
            except mongo_errors.DuplicateKeyError:
                return False
            if event_id is not None:
                self._record(project, queue, event_id, "queue.created", {"metadata": dict(metadata)}, now)
        return True

    def queue_get(self, *, project: str, queue: str) -> dict[str, Any] | None:
        return self.queue_get_many(project=project, queues=[queue])[0]

    def queue_get_many(self, *, project: str, queues: Sequence[str]) -> list[dict[str, Any] | None]:
        with translated("read queues"):
            found = {d["_id"]["q"]: json.loads(d["meta"]) for d in self._queues.find(
                {"_id": {"$in": [self._scope(project, q) for q in queues]}}, {"meta": 1})}
        return [found.get(q) for q in queues]

    def queue_set(self, *, project: str, queue: str, metadata: Mapping[str, Any],
                  settings: base.QueueSettings, event_id: str | None = None) -> bool:
        with translated("store the queue"):
            result = self._queues.update_one({"_id": self._scope(project, queue)},
                                             {"$set": {"meta": json.dumps(metadata), "s": self._settings_doc(settings)}})
            if result.matched_count and event_id is not None:
                self._record(project, queue, event_id, "queue.updated", {"metadata": dict(metadata)}, self._now())
        return bool(result.matched_count)

    def queue_delete(self, *, project: str, queue: str, event_id: str | None = None) -> None:
        scope = self._scope(project, queue)
        with translated("delete the queue"):
            for collection in (self._messages, self._claims, self._dead):
                collection.delete_many(scope)
            gone = self._queues.delete_one({"_id": scope}).deleted_count
            if gone and event_id is not None:  # the outbox and the listeners document stay
                self._record(project, queue, event_id, "queue.deleted", {}, self._now())

    def queue_purge(self, *, project: str, queue: str, event_id: str | None = None,
                    resource_types: Sequence[str] = ("messages",)) -> None:
        scope = self._scope(project, queue)
        with translated("purge the queue"):
            exists = event_id is not None and self._queues.find_one({"_id": scope}, {"_id": 1}) is not None
            self._messages.delete_many(scope)
            self._claims.delete_many(scope)
            if exists:
                assert event_id is not None
                self._record(project, queue, event_id, "queue.purged", {"resource_types": list(resource_types)},
                             self._now())

    def queue_stats(self, *, project: str, queue: str) -> base.Stats:
        now = self._now()
        live = {**self._scope(project, queue), "em": {"$gt": now}}
        with translated("count messages"):
            total = self._messages.count_documents(live)
            claimed = self._messages.count_documents({**live, "ce": {"$gt": now}})
            oldest = self._messages.find_one(live, sort=[("k", 1)])
            newest = self._messages.find_one(live, sort=[("k", -1)])
        return base.Stats(total, claimed, _record(oldest) if oldest else None, _record(newest) if newest else None, now)

    # -- messages -----------------------------------------------------------------

    def message_post(self, *, project: str, queue: str, messages: Sequence[base.NewMessage], client_id: str,
                     create: bool, encrypted: bool, request_size: int, default_ttl: int,
                     event_id: str | None, stream_all: bool = False) -> base.Posted:
        now = self._now()
        scope = {"_id": self._scope(project, queue)}
        with translated("store the messages"):
            current = self._queues.find_one(scope, {"s": 1})
            if current is None:
                if not create:
                    raise base.QueueMissing(queue)
                created_event = uuid.uuid4().hex if stream_all and event_id is not None else None
                self.queue_create(project=project, queue=queue, metadata={}, settings=base.QueueSettings(),
                                  event_id=created_event)
                current = {"s": {}}
            settings = current.get("s") or {}
            if settings.get("max_post_size") is not None and request_size > settings["max_post_size"]:
                raise base.PostTooLarge(int(settings["max_post_size"]))
            if settings.get("encrypted") and not encrypted:
                raise base.EncryptionRequired(queue)
            counter = self._queues.find_one_and_update(scope, {"$inc": {"ctr": len(messages)}},
                                                       return_document=ReturnDocument.AFTER)
            first = int(counter["ctr"]) - len(messages) + 1
            docs, effective = [], []
            for offset, message in enumerate(messages):
                ttl = message.ttl if message.ttl is not None else (settings.get("default_ttl") or default_ttl)
                delay = message.delay if message.delay is not None else (settings.get("default_delay") or 0)
                expires = now + ttl * 1000
                docs.append({"_id": message.id, "p": project, "q": queue, "k": first + offset, "t": ttl, "cr": now,
                             "em": expires, "e": _date(expires), "d": now + delay * 1000 if delay else 0,
                             "u": client_id, "x": encrypted, "c": None, "ce": 0, "cc": 0, "b": message.body})
                effective.append((ttl, delay))
            store_event = event_id is not None and (stream_all or int(
                (self._listeners.find_one(scope, {"until": 1}) or {}).get("until") or 0) > now)
            self._messages.insert_many(docs, ordered=True)
            pending: list[str] | None = None
            if store_event:
                assert event_id is not None
                entries = [base.PostedEntry(m.id, ttl, delay, m.body)
                           for m, (ttl, delay) in zip(messages, effective, strict=True)]
                event = base.PostedEvent(event_id, now, encrypted, entries)
                sequence = self._next_sequence(project, queue)
                self._store_entry(project, queue, event_id, sequence, now, event.to_json(sequence))
                pending = self._take_lease(project, queue, event_id)
        return base.Posted([m.id for m in messages], now, effective, event_stored=store_event, pending=pending)

    def message_list(self, *, project: str, queue: str, marker: str | None, limit: int, client_id: str, echo: bool,
                     include_claimed: bool, include_delayed: bool) -> base.Page[base.MessageRecord]:
        now = self._now()
        query: dict[str, Any] = {**self._scope(project, queue), "em": {"$gt": now}, "k": {"$gt": int(marker or 0)}}
        if not include_claimed:
            query["ce"] = {"$lte": now}
        if not include_delayed:
            query["d"] = {"$lte": now}
        if not echo:
            query["u"] = {"$ne": client_id}
        with translated("list messages"):
            docs = list(self._messages.find(query).sort("k", 1).limit(limit))
        items = [_record(d) for d in docs]
        return base.Page(items, str(items[-1].marker) if items else None, now)

    def message_get_many(self, *, project: str, queue: str, ids: Sequence[str]) -> base.Records:
        now = self._now()
        with translated("read messages"):
            found = {d["_id"]: d for d in self._messages.find({**self._scope(project, queue), "_id": {"$in": list(ids)},
                                                               "em": {"$gt": now}})}
        return base.Records([_record(found[i]) for i in ids if i in found], now)

    def message_delete(self, *, project: str, queue: str, message_id: str, claim_id: str | None,
                       event_id: str | None = None) -> None:
        now = self._now()
        base_query = {**self._scope(project, queue), "_id": message_id}
        with translated("delete the message"):
            if claim_id is None:
                done = self._messages.delete_one({**base_query, "$or": [{"ce": {"$lte": now}}, {"em": {"$lte": now}}]})
            else:
                done = self._messages.delete_one({**base_query, "c": claim_id, "ce": {"$gt": now}})
            if done.deleted_count:
                if event_id is not None:
                    self._record(project, queue, event_id, "message.deleted", {"ids": [message_id]}, now)
                return
            current = self._messages.find_one(base_query)
        if current is None or current["em"] <= now:
            return
        if claim_id is not None:  # not in a live claim, or in another one
            raise errors.MessageNotClaimed(message_id=message_id, claim_id=claim_id)
        raise errors.MessageIsClaimed(message_id=message_id)

    def message_delete_many(self, *, project: str, queue: str, ids: Sequence[str],
                            event_id: str | None = None) -> int:
        scope = self._scope(project, queue)
        with translated("delete messages"):
            if event_id is None:
                return int(self._messages.delete_many({**scope, "_id": {"$in": list(ids)}}).deleted_count)
            found = {d["_id"] for d in self._messages.find({**scope, "_id": {"$in": list(ids)}}, {"_id": 1})}
            if not found:
                return 0
            gone = int(self._messages.delete_many({**scope, "_id": {"$in": list(found)}}).deleted_count)
            if gone:
                # in request order; a concurrent delete between the read and the delete can make this a superset
                existed = list(dict.fromkeys(i for i in ids if i in found))
                self._record(project, queue, event_id, "message.deleted", {"ids": existed}, self._now())
            return gone

    def _free(self, project: str, queue: str, now: int, after: int) -> list[dict[str, Any]]:
        query = {**self._scope(project, queue), "ce": {"$lte": now}, "d": {"$lte": now}, "em": {"$gt": now},
                 "k": {"$gt": after}}
        return list(self._messages.find(query).sort("k", 1).limit(SCAN))

    def message_pop(self, *, project: str, queue: str, limit: int, event_id: str | None = None) -> base.Records:
        now = self._now()
        taken: list[base.MessageRecord] = []
        after = 0
        with translated("pop messages"):
            while len(taken) < limit:
                candidates = self._free(project, queue, now, after)
                if not candidates:
                    break
                for doc in candidates:
                    after = doc["k"]
                    won = self._messages.find_one_and_delete({"_id": doc["_id"], "ce": {"$lte": now}})
                    if won is not None:
                        taken.append(_record({**won, "cc": int(won.get("cc") or 0) + 1}))
                        if len(taken) == limit:
                            break
            if taken and event_id is not None:
                self._record(project, queue, event_id, "message.deleted", {"ids": [m.id for m in taken]}, now)
        return base.Records(taken, now)

    # -- claims -------------------------------------------------------------------

    def claim_create(self, *, project: str, queue: str, claim_id: str, ttl: int, grace: int,
                     limit: int, event_id: str | None = None) -> base.ClaimResult:
        now = self._now()
        claim_end, keep_until = now + ttl * 1000, now + (ttl + grace) * 1000
        with translated("claim messages"):
            settings = (self._queues.find_one({"_id": self._scope(project, queue)}, {"s": 1}) or {}).get("s") or {}
            dlq, max_claims = settings.get("dead_letter_queue"), settings.get("max_claim_count")
            taken: list[base.MessageRecord] = []
            dead: list[base.DeadLetter] = []
            after = 0
            while len(taken) < limit:
                candidates = self._free(project, queue, now, after)
                if not candidates:
                    break
                for doc in candidates:
                    after = doc["k"]
                    if dlq and max_claims and int(doc.get("cc") or 0) >= max_claims:
                        won = self._messages.find_one_and_delete({"_id": doc["_id"], "ce": {"$lte": now}})
                        if won is not None:
                            letter = base.DeadLetter(_record(won), dlq, settings.get("dead_letter_ttl"))
                            self._dead.insert_one({"_id": won["_id"], "p": project, "q": queue, "target": dlq,
                                                   "ttl": letter.ttl, "doc": {k: v for k, v in won.items() if k != "_id"}})
                            dead.append(letter)
                        continue
                    won = self._messages.find_one_and_update(
                        {"_id": doc["_id"], "ce": {"$lte": now}},
                        {"$set": {"c": claim_id, "ce": claim_end}, "$inc": {"cc": 1}},
                        return_document=ReturnDocument.AFTER,
                    )
                    if won is None:
                        continue  # another consumer was first
                    if won["em"] < keep_until:
                        self._messages.update_one({"_id": won["_id"]}, {"$set": {
                            "em": keep_until, "e": _date(keep_until), "t": ttl + grace}})
                        won = {**won, "em": keep_until, "t": ttl + grace}
                    taken.append(_record(won))
                    if len(taken) == limit:
                        break
            if taken:
                self._claims.insert_one({"_id": claim_id, "p": project, "q": queue, "em": claim_end,
                                         "e": _date(claim_end), "t": ttl, "g": grace, "cr": now,
                                         "ids": [m.id for m in taken]})
                if event_id is not None:
                    self._record(project, queue, event_id, "claim.created",
                                 {"claim_id": claim_id, "ids": [m.id for m in taken]}, now)
        return base.ClaimResult(claim_id, taken, now, dead)

    def _live_claim(self, project: str, queue: str, claim_id: str, now: int) -> dict[str, Any] | None:
        claim: dict[str, Any] | None = self._claims.find_one(
            {"_id": claim_id, **self._scope(project, queue), "em": {"$gt": now}})
        return claim

    def claim_get(self, *, project: str, queue: str, claim_id: str) -> base.Claim | None:
        now = self._now()
        with translated("read the claim"):
            claim = self._live_claim(project, queue, claim_id, now)
            if claim is None:
                return None
            docs = self._messages.find({**self._scope(project, queue), "c": claim_id, "ce": {"$gt": now},
                                        "em": {"$gt": now}}).sort("k", 1)
            items = [_record(d) for d in docs]
        return base.Claim(claim_id, int(claim["t"]), int(claim["g"]), int(claim["cr"]), items, now)

    def claim_update(self, *, project: str, queue: str, claim_id: str, ttl: int, grace: int,
                     event_id: str | None = None) -> bool:
        now = self._now()
        claim_end, keep_until = now + ttl * 1000, now + (ttl + grace) * 1000
        held = {**self._scope(project, queue), "c": claim_id, "ce": {"$gt": now}}
        with translated("renew the claim"):
            if self._live_claim(project, queue, claim_id, now) is None:
                return False
            self._messages.update_many(held, {"$set": {"ce": claim_end}})
            self._messages.update_many({**held, "ce": claim_end, "em": {"$lt": keep_until}}, {"$set": {
                "em": keep_until, "e": _date(keep_until), "t": ttl + grace}})
            self._claims.update_one({"_id": claim_id}, {"$set": {"em": claim_end, "e": _date(claim_end), "t": ttl,
                                                                 "g": grace, "cr": now}})
            if event_id is not None:
                self._record(project, queue, event_id, "claim.updated",
                             {"claim_id": claim_id, "ttl": ttl, "grace": grace}, now)
        return True

    def claim_delete(self, *, project: str, queue: str, claim_id: str, event_id: str | None = None) -> None:
        now = self._now()
        with translated("release the claim"):
            self._messages.update_many({**self._scope(project, queue), "c": claim_id, "ce": {"$gt": now}},
                                       {"$set": {"c": None, "ce": 0}})
            claim = self._claims.find_one_and_delete({"_id": claim_id, **self._scope(project, queue)}, {"em": 1})
            if claim is not None and int(claim["em"]) > now and event_id is not None:  # an expired claim is gone already
                self._record(project, queue, event_id, "claim.deleted", {"claim_id": claim_id}, now)

    # -- dead letters, outbox, housekeeping ---------------------------------------------

    def dead_letter_accept(self, *, project: str, queue: str, letters: Sequence[base.DeadLetter]) -> None:
        if not letters:
            return
        now = self._now()
        with translated("store dead letters"):
            self._queues.update_one({"_id": self._scope(project, queue)},
                                    {"$setOnInsert": {"meta": "{}", "s": {}, "cr": now}, "$inc": {"ctr": 0}},
                                    upsert=True)
            for letter in letters:
                if self._messages.find_one({"_id": letter.record.id}, {"_id": 1}) is not None:
                    continue  # already handed over
                counter = self._queues.find_one_and_update({"_id": self._scope(project, queue)}, {"$inc": {"ctr": 1}},
                                                           return_document=ReturnDocument.AFTER)
                rec = letter.record
                ttl, expires = rec.ttl, rec.expires_ms
                if letter.ttl is not None:
                    ttl, expires = letter.ttl, now + letter.ttl * 1000
                try:
                    self._messages.insert_one({
                        "_id": rec.id, "p": project, "q": queue, "k": int(counter["ctr"]), "t": ttl, "cr": rec.created_ms,
                        "em": expires, "e": _date(expires), "d": 0, "u": "", "x": rec.encrypted, "c": None, "ce": 0,
                        "cc": 0, "b": rec.body,
                    })
                except mongo_errors.DuplicateKeyError:
                    continue

    def dead_letter_done(self, *, project: str, queue: str, ids: Sequence[str]) -> None:
        with translated("forget dead letters"):
            self._dead.delete_many({**self._scope(project, queue), "_id": {"$in": list(ids)}})

    def dead_letter_pending(self, *, project: str, queue: str) -> list[base.DeadLetter]:
        with translated("read dead letters"):
            docs = list(self._dead.find(self._scope(project, queue)))
        return [base.DeadLetter(_record({"_id": d["_id"], **d["doc"]}), d["target"], d.get("ttl")) for d in docs]

    # The outbox. Without transactions an entry is written right after its change, and the sequence is
    # taken just before the entry goes in: two writers of one queue can insert their entries in the other
    # order than their sequences for a moment.

    def _next_sequence(self, project: str, queue: str) -> int:
        doc = self._listeners.find_one_and_update({"_id": self._scope(project, queue)}, {"$inc": {"seq": 1}},
                                                  upsert=True, return_document=ReturnDocument.AFTER)
        return int(doc["seq"])

    def _store_entry(self, project: str, queue: str, event_id: str, sequence: int, now: int, document: str) -> None:
        with suppress(mongo_errors.DuplicateKeyError):  # the event is in the outbox already (a retried write)
            self._outbox.insert_one({"_id": event_id, "p": project, "q": queue, "s": sequence, "w": now,
                                     "doc": document})

    def _record(self, project: str, queue: str, event_id: str, kind: str, data: Mapping[str, Any], now: int) -> None:
        sequence = self._next_sequence(project, queue)
        self._store_entry(project, queue, event_id, sequence, now, base.event_json(event_id, kind, now, sequence, data))

    def _pending(self, project: str, queue: str) -> list[str]:
        """The oldest entries, by sequence (entries of older versions have none: they come first)."""
        out: list[str] = []
        size = 0
        docs = self._outbox.find(self._scope(project, queue), {"doc": 1}).sort("s", 1).limit(base.PENDING_COUNT)
        for doc in docs:
            size += len(doc["doc"])
            if out and size > base.PENDING_BYTES:
                break
            out.append(doc["doc"])
        return out

    def _take_lease(self, project: str, queue: str, holder: str, *, look_again: bool = True) -> list[str] | None:
        now = self._now()
        key = {"_id": self._scope(project, queue)}
        taken = self._listeners.find_one_and_update(
            {**key, "$or": [{"lh": {"$exists": False}}, {"lh": holder}, {"le": {"$lte": now}}]},
            {"$set": {"lh": holder, "le": now + base.PUBLISH_LEASE_MS}}, {"_id": 1})
        if taken is None:
            # no document: no event was ever recorded for this queue, so nothing is pending
            return None if self._listeners.find_one(key, {"_id": 1}) is not None else []
        return self._leased_pending(project, queue, holder, look_again=look_again)

    def _leased_pending(self, project: str, queue: str, holder: str, *, look_again: bool) -> list[str]:
        """As the lease's holder: the next entries, or none and the lease given up (a lease is held only
        while there is something to publish)."""
        pending = self._pending(project, queue)
        if pending:
            return pending
        self._give_up(project, queue, holder)
        # A writer whose entry went in after the read above and who found the lease still held left its
        # entry to us: look once more now that the lease is free.
        if look_again and self._outbox.find_one(self._scope(project, queue), {"_id": 1}) is not None:
            return self._take_lease(project, queue, holder, look_again=False) or []
        return []

    def _give_up(self, project: str, queue: str, holder: str) -> None:
        self._listeners.update_one({"_id": self._scope(project, queue), "lh": holder},
                                   {"$unset": {"lh": "", "le": ""}})

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
            if published:
                self._outbox.delete_many({**scope, "_id": {"$in": list(published)}})
            if not keep:
                self._give_up(project, queue, holder)
                return []
            renewed = self._listeners.find_one_and_update(
                {"_id": scope, "lh": holder}, {"$set": {"le": self._now() + base.PUBLISH_LEASE_MS}}, {"_id": 1})
            if renewed is None:
                return []  # lost to another holder: theirs now
            return self._leased_pending(project, queue, holder, look_again=True)

    def outbox_flag(self, *, project: str, queue: str) -> None:
        """Nothing to do: the relay finds every outbox entry older than its grace time by itself."""

    def outbox_flagged(self, *, flagged_before_ms: int, limit: int) -> list[base.Flagged]:
        pipeline: list[dict[str, Any]] = [
            {"$match": {"w": {"$lte": flagged_before_ms}}},
            {"$group": {"_id": {"p": "$p", "q": "$q"}, "since": {"$min": "$w"}}},
            {"$sort": {"since": 1}},
            # a queue whose publish lease is live is being published by its holder
            {"$lookup": {"from": self._listeners.name, "localField": "_id", "foreignField": "_id", "as": "l"}},
            {"$match": {"l.le": {"$not": {"$gt": self._now()}}}},
            {"$limit": limit},
            {"$project": {"l": 0}},
        ]
        with translated("read the outbox"):
            rows = list(self._outbox.aggregate(pipeline))
        return [base.Flagged(r["_id"]["p"], r["_id"]["q"], int(r["since"])) for r in rows]

    def outbox_unflag(self, *, flagged: base.Flagged) -> bool:
        return True  # what is left in the outbox is found again by outbox_flagged

    def listen(self, *, project: str, queue: str, until_ms: int) -> int:
        with translated("record the subscribers"):
            doc = self._listeners.find_one_and_update(
                {"_id": self._scope(project, queue)}, {"$max": {"until": until_ms}, "$inc": {"gen": 1}},
                upsert=True, return_document=ReturnDocument.AFTER)
        return int(doc["gen"])

    def listeners(self, *, project: str, queue: str) -> base.Listeners:
        with translated("read the subscribers record"):
            doc = self._listeners.find_one({"_id": self._scope(project, queue)}) or {}
        return base.Listeners(until_ms=int(doc.get("until") or 0), generation=int(doc.get("gen") or 0))

    def listen_lower(self, *, project: str, queue: str, until_ms: int, generation: int) -> bool:
        query: dict[str, Any] = {"_id": self._scope(project, queue), "gen": generation}
        with translated("record the subscribers"):
            if generation == 0:  # never raised: there may be no document yet
                query = {"_id": self._scope(project, queue), "gen": {"$exists": False}}
            return bool(self._listeners.update_one(query, {"$set": {"until": until_ms}}).matched_count)

    def gc(self, *, project: str, queue: str, stale_before_ms: int) -> int:
        """Reclaim expired messages and claims.

        Stale outbox entries need no flag here: ``outbox_flagged`` finds every entry older than the relay's
        grace time by itself, leaving out queues whose publish lease is live.
        """
        now = self._now()
        scope = self._scope(project, queue)
        with translated("reclaim expired data"):
            gone = self._messages.delete_many({**scope, "em": {"$lte": now}}).deleted_count
            gone += self._claims.delete_many({**scope, "em": {"$lte": now}}).deleted_count
            self._messages.update_many({**scope, "ce": {"$gt": 0, "$lte": now}}, {"$set": {"c": None, "ce": 0}})
        return int(gone)
