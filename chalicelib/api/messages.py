"""Message operations, shared by the REST and websocket transports."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import threading
import time
import uuid
from collections.abc import Sequence
from typing import Any

from chalicelib import attributes, crypto, errors
from chalicelib.api import bodies, outbox, validation
from chalicelib.api.context import Caller, Outcome, Services
from chalicelib.api.queues import ensure_queue
from chalicelib.attributes import Attributes
from chalicelib.storage import base

log = logging.getLogger(__name__)
IDEMPOTENCY_KEY = "Idempotency-Key"
"""The header (REST, and a websocket frame's headers) that makes a message post idempotent."""
MAX_MARKER = 2**63 - 1  # a marker is a message's position in its queue, a signed 64-bit number (MongoDB's too)


@dataclasses.dataclass(frozen=True)
class Message:
    id: str
    ttl: int
    age: int
    body: Any
    claim_id: str | None
    claim_count: int
    created_ms: int
    attributes: Attributes | None = None
    source: str | None = None
    """The queue a dead letter came from (not shown: what redrive moves it back to)."""


@dataclasses.dataclass(frozen=True)
class MessagePage:
    items: list[Message]
    next_marker: str | None


def clear_text(services: Services, record: base.MessageRecord) -> str:
    """The record's stored text in clear (decrypted when it is encrypted)."""
    if not record.encrypted:
        return record.body
    key = services.settings.message_encryption_key
    if key is None:
        raise errors.Unavailable("This message is encrypted and no MESSAGE_ENCRYPTION_KEY is configured.")
    try:
        return crypto.decrypt(key, record.body)
    except ValueError:
        raise errors.Unavailable(
            f"Message {record.id} cannot be decrypted with the configured MESSAGE_ENCRYPTION_KEY."
        ) from None


def sealed(services: Services, record: base.MessageRecord, text: str) -> str:
    """Stored text for ``record``'s place: encrypted again when the record is."""
    key = services.settings.message_encryption_key
    return crypto.encrypt(key, text) if record.encrypted and key is not None else text


def to_message(services: Services, record: base.MessageRecord, now_ms: int) -> Message:
    text = clear_text(services, record)
    live_claim = record.claim_id if record.claim_id and record.claim_expires_ms > now_ms else None
    stored = attributes.unpack(text)
    return Message(
        id=record.id,
        ttl=record.ttl,
        age=max(0, (now_ms - record.created_ms) // 1000),
        body=json.loads(stored.body),
        claim_id=live_claim,
        claim_count=record.claim_count,
        created_ms=record.created_ms,
        attributes=stored.attributes,
        source=stored.source,
    )


def to_messages(services: Services, records: Sequence[base.MessageRecord], now_ms: int) -> list[Message]:
    return [to_message(services, record, now_ms) for record in records]


class _EncryptedQueues:
    """Which queues encrypt, learnt from the pool, so a post needs one round trip."""

    def __init__(self, ttl: float = 60.0) -> None:
        self._ttl = ttl
        self._seen: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    def __contains__(self, key: tuple[str, str]) -> bool:
        until = self._seen.get(key)
        return until is not None and until > time.monotonic()

    def add(self, key: tuple[str, str]) -> None:
        with self._lock:
            if len(self._seen) > 10000:
                self._seen.clear()
            self._seen[key] = time.monotonic() + self._ttl


def _encrypted_queues(services: Services) -> _EncryptedQueues:
    return services.shared.once("encrypted_queues", _EncryptedQueues)


New = tuple[Any, int | None, int | None, Attributes | None]
"""A message to post: body, ttl, delay, attributes."""


def _digest(parsed: Sequence[New]) -> str:
    """What a keyed post carries, to tell its repeat (same digest) from other messages under its key."""
    canonical = json.dumps([list(item) for item in parsed], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _parse_new(services: Services, body: Any) -> list[New]:
    bodies.check("MessagePost", body, services.settings.limits, "The request body")
    return [(item["body"], bodies.whole(item.get("ttl")), bodies.whole(item.get("delay")), item.get("attributes"))
            for item in body["messages"]]


def message_post(services: Services, caller: Caller, queue: str, body: Any, *, size: int,
                 idempotency_key: str | None = None, window_s: float | None = None,
                 via: str | None = None) -> Outcome[list[str]]:
    """Append messages (created lazily with the queue); all or nothing, ids in request order.

    With ``idempotency_key`` (the Idempotency-Key header) a post repeated within the window
    (IDEMPOTENCY_WINDOW, or ``window_s``) answers the first post's ids and stores nothing; the same key
    with other messages is an IdempotencyConflict. The pool decides in the post's own atomic step.
    ``via`` marks messages forwarded by a ``queue:`` subscription (see chalicelib.attributes).

    A queue nobody listens to costs one pool round trip and nothing else.
    When the queue has subscribers who can receive (or every event is
    streamed), the pool writes the ``message.posted`` event to the queue's
    outbox in the same atomic step and, when no other request is
    publishing that queue, hands this one the publish lease: the event is
    then published right away and forgotten (a second round trip), or,
    when the stream cannot take it, flagged for the relay.
    """
    limits = services.settings.limits
    validation.queue_name(queue, limits)
    if size > limits.max_messages_post_size:
        raise errors.InvalidBody(
            f"Message posts may be at most {limits.max_messages_post_size} bytes; this one is {size}."
        )
    parsed = _parse_new(services, body)
    keyed = None
    if idempotency_key is not None:
        window = services.settings.idempotency_window if window_s is None else window_s
        keyed = base.Idempotency(validation.idempotency_key(idempotency_key), _digest(parsed), int(window * 1000))
    ids = [uuid.uuid4().hex for _ in parsed]
    store = services.pooling.lookup(project=caller.project, queue=queue)
    create = registered = store is None
    if store is None:
        store, registered = ensure_queue(services, caller, queue)
    try:
        lease, store, ids = _post(services, caller, queue, store, ids, parsed, size=size, create=create, keyed=keyed,
                                  via=via)
    except errors.Unavailable:
        if registered:  # a lazily created queue must not outlive a failed post
            services.pooling.unregister(project=caller.project, queue=queue)
        raise
    if lease is not None:
        outbox.publish(services, store, caller.project, queue, *lease)
    return Outcome(ids)


def _post(
    services: Services,
    caller: Caller,
    queue: str,
    store: base.MessageStore,
    ids: list[str],
    parsed: list[New],
    *,
    size: int,
    create: bool,
    keyed: base.Idempotency | None = None,
    via: str | None = None,
) -> tuple[tuple[str, list[str]] | None, base.MessageStore, list[str]]:
    """One post script call, retried when the pool tells what it needs (at most twice).

    Returns (lease holder, entries to publish) when the pool stored the
    event and handed this post the queue's publish lease, the store, and the
    ids (a repeated keyed post's are its first post's).
    """
    limits = services.settings.limits
    key = (caller.project, queue)
    texts = [attributes.pack(json.dumps(item[0], separators=(",", ":")), item[3], via=via) for item in parsed]
    encrypt = key in _encrypted_queues(services)
    event_id = uuid.uuid4().hex if services.sink.durable else None  # no stream: no outbox either
    stream_all = services.sink.durable and services.sink.complete
    for _attempt in range(3):
        bodies = texts
        if encrypt:
            secret = services.settings.message_encryption_key
            if secret is None:
                raise errors.Unavailable("Queue encrypts messages but no MESSAGE_ENCRYPTION_KEY is configured.")
            bodies = [crypto.encrypt(secret, text) for text in texts]
        new = [
            base.NewMessage(mid, text, ttl, delay)
            for mid, text, (_b, ttl, delay, _a) in zip(ids, bodies, parsed, strict=True)
        ]
        try:
            posted = store.message_post(
                project=caller.project, queue=queue, messages=new, client_id=caller.client_id, create=create,
                encrypted=encrypt, request_size=size, default_ttl=limits.default_message_ttl, event_id=event_id,
                stream_all=stream_all, idempotency=keyed,
            )
        except base.QueueMissing:
            # the placement was cached but the queue is gone: register it again
            services.pooling.forget(project=caller.project, queue=queue)
            store, _ = ensure_queue(services, caller, queue)
            create = True
            continue
        except base.EncryptionRequired:
            _encrypted_queues(services).add(key)
            encrypt = True
            continue
        except base.PostTooLarge as exc:
            raise errors.InvalidBody(
                f"Queue {queue} accepts posts of at most {exc.limit} bytes; this one is {size}."
            ) from None
        except base.IdempotencyConflict:
            assert keyed is not None
            raise errors.IdempotencyConflict(key=keyed.key, window=keyed.window_ms // 1000) from None
        if posted.pending is None or event_id is None:
            return None, store, posted.ids
        return (event_id, posted.pending), store, posted.ids
    raise errors.Unavailable("The messages could not be stored.")


def message_list(
    services: Services,
    caller: Caller,
    queue: str,
    *,
    marker: str | None,
    limit: int,
    echo: bool,
    include_claimed: bool,
    include_delayed: bool,
) -> MessagePage:
    validation.queue_name(queue, services.settings.limits)
    if marker is not None and not (marker.isascii() and marker.isdigit() and len(marker) <= 20
                                   and int(marker) <= MAX_MARKER):
        raise errors.Invalid(f"Invalid marker {marker[:40]!r}: use the marker of a next link.")
    store = services.pooling.lookup(project=caller.project, queue=queue)
    if store is None:
        return MessagePage([], None)
    page = store.message_list(
        project=caller.project, queue=queue, marker=marker, limit=limit, client_id=caller.client_id,
        echo=echo, include_claimed=include_claimed, include_delayed=include_delayed,
    )
    return MessagePage(to_messages(services, page.items, page.now_ms), page.next_marker)


def message_get_many(services: Services, caller: Caller, queue: str, ids: Sequence[str]) -> list[Message]:
    """The existing messages among ``ids``; 404 when none exists."""
    validation.queue_name(queue, services.settings.limits)
    wanted = [mid for mid in ids if validation.message_id(mid)]
    store = services.pooling.lookup(project=caller.project, queue=queue)
    found: list[Message] = []
    if store is not None and wanted:
        records = store.message_get_many(project=caller.project, queue=queue, ids=wanted)
        found = to_messages(services, records.items, records.now_ms)
    if not found:
        raise errors.NotFound(f"None of the requested messages exists in queue {queue}.")
    return found


def message_get(services: Services, caller: Caller, queue: str, message_id: str) -> Message:
    try:
        return message_get_many(services, caller, queue, [message_id])[0]
    except errors.NotFound:
        raise errors.MessageNotFound(queue=queue, message_id=message_id) from None


def message_delete(
    services: Services, caller: Caller, queue: str, message_id: str, *, claim_id: str | None
) -> Outcome[None]:
    validation.queue_name(queue, services.settings.limits)
    store = services.pooling.lookup(project=caller.project, queue=queue)
    if store is None or not validation.message_id(message_id):
        return Outcome(None)
    if claim_id is not None and not validation.message_id(claim_id):
        raise errors.MessageNotClaimed(message_id=message_id, claim_id=claim_id[:64])
    event_id = outbox.change_event_id(services)
    store.message_delete(project=caller.project, queue=queue, message_id=message_id, claim_id=claim_id,
                         event_id=event_id)
    outbox.after_change(services, store, caller.project, queue, event_id)
    return Outcome(None)


def message_delete_many(services: Services, caller: Caller, queue: str, ids: Sequence[str]) -> Outcome[None]:
    validation.queue_name(queue, services.settings.limits)
    wanted = [mid for mid in ids if validation.message_id(mid)]
    store = services.pooling.lookup(project=caller.project, queue=queue)
    if store is None or not wanted:
        return Outcome(None)
    event_id = outbox.change_event_id(services)
    store.message_delete_many(project=caller.project, queue=queue, ids=wanted, event_id=event_id)
    outbox.after_change(services, store, caller.project, queue, event_id)
    return Outcome(None)


def message_pop(services: Services, caller: Caller, queue: str, limit: int) -> Outcome[list[Message]]:
    """Remove and return up to ``limit`` claimable messages, oldest first."""
    validation.queue_name(queue, services.settings.limits)
    store = services.pooling.lookup(project=caller.project, queue=queue)
    if store is None:
        return Outcome([])
    event_id = outbox.change_event_id(services)
    records = store.message_pop(project=caller.project, queue=queue, limit=limit, event_id=event_id)
    outbox.after_change(services, store, caller.project, queue, event_id if records.items else None)
    return Outcome(to_messages(services, records.items, records.now_ms))
