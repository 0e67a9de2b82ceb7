"""Claim operations, shared by the REST and websocket transports."""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Sequence
from typing import Any

from chalicelib import attributes, errors
from chalicelib.api import bodies, outbox, validation
from chalicelib.api.context import Caller, Outcome, Services
from chalicelib.api.messages import Message, clear_text, sealed, to_messages
from chalicelib.api.queues import ensure_queue
from chalicelib.storage.base import DeadLetter, MessageStore

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class ClaimView:
    id: str
    ttl: int
    grace: int
    age: int
    messages: list[Message]


def _ttl_grace(services: Services, body: Any) -> tuple[int, int]:
    limits = services.settings.limits
    body = {} if body is None else body
    bodies.check("ClaimCreate", body, limits, "The claim")
    return (bodies.whole(body.get("ttl", limits.default_claim_ttl)),
            bodies.whole(body.get("grace", limits.default_claim_grace)))


def _store(services: Services, caller: Caller, queue: str) -> MessageStore | None:
    validation.queue_name(queue, services.settings.limits)
    return services.pooling.lookup(project=caller.project, queue=queue)


def hand_over(services: Services, caller: Caller, source: MessageStore, queue: str, letters: Sequence[DeadLetter]) -> None:
    """Move dead letters from ``queue``'s outbox into their dead-letter queues.

    Accepting is idempotent, so a hand-over interrupted here is finished by a
    later claim or by housekeeping without duplicates.
    """
    by_target: dict[str, list[DeadLetter]] = {}
    for letter in letters:
        by_target.setdefault(letter.target, []).append(_remembering(services, letter, queue))
    for target, group in by_target.items():
        try:
            store, _ = ensure_queue(services, caller, target)
            store.dead_letter_accept(project=caller.project, queue=target, letters=group)
            source.dead_letter_done(project=caller.project, queue=queue, ids=[g.record.id for g in group])
        except errors.Unavailable:
            log.warning("dead letters of %s wait in its outbox: %s is unavailable", queue, target)


def _remembering(services: Services, letter: DeadLetter, queue: str) -> DeadLetter:
    """The dead letter, its stored text saying it left ``queue`` (what redrive moves it back to). A text
    that cannot be read (encrypted, no key) goes as it is: redrive then needs a destination for it."""
    try:
        stored = attributes.unpack(clear_text(services, letter.record))
    except errors.Unavailable:
        return letter
    if stored.source == queue:
        return letter
    text = attributes.pack(stored.body, stored.attributes, via=stored.via, source=queue)
    record = dataclasses.replace(letter.record, body=sealed(services, letter.record, text))
    return dataclasses.replace(letter, record=record)


def claim_create(
    services: Services, caller: Caller, queue: str, body: Any, *, limit: int
) -> Outcome[ClaimView | None]:
    """Claim up to ``limit`` messages; None when nothing could be claimed."""
    ttl, grace = _ttl_grace(services, body)
    store = _store(services, caller, queue)
    if store is None:
        return Outcome(None)
    event_id = outbox.change_event_id(services)
    result = store.claim_create(
        project=caller.project, queue=queue, claim_id=uuid.uuid4().hex, ttl=ttl, grace=grace, limit=limit,
        event_id=event_id,
    )
    if result.dead_letters:
        hand_over(services, caller, store, queue, result.dead_letters)
    if not result.items:
        return Outcome(None)
    outbox.after_change(services, store, caller.project, queue, event_id)
    messages = to_messages(services, result.items, result.now_ms)
    return Outcome(ClaimView(result.claim_id, ttl, grace, 0, messages))


def claim_get(services: Services, caller: Caller, queue: str, claim_id: str) -> ClaimView:
    store = _store(services, caller, queue)
    claim = None
    if store is not None and validation.message_id(claim_id):
        claim = store.claim_get(project=caller.project, queue=queue, claim_id=claim_id)
    if claim is None:
        raise errors.ClaimNotFound(queue=queue, claim_id=claim_id[:64])
    return ClaimView(
        id=claim.id,
        ttl=claim.ttl,
        grace=claim.grace,
        age=max(0, (claim.now_ms - claim.created_ms) // 1000),
        messages=to_messages(services, claim.items, claim.now_ms),
    )


def claim_update(services: Services, caller: Caller, queue: str, claim_id: str, body: Any) -> Outcome[None]:
    ttl, grace = _ttl_grace(services, body)
    store = _store(services, caller, queue)
    renewed = False
    event_id = outbox.change_event_id(services)
    if store is not None and validation.message_id(claim_id):
        renewed = store.claim_update(project=caller.project, queue=queue, claim_id=claim_id, ttl=ttl, grace=grace,
                                     event_id=event_id)
    if store is None or not renewed:
        raise errors.ClaimNotFound(queue=queue, claim_id=claim_id[:64])
    outbox.after_change(services, store, caller.project, queue, event_id)
    return Outcome(None)


def claim_delete(services: Services, caller: Caller, queue: str, claim_id: str) -> Outcome[None]:
    store = _store(services, caller, queue)
    if store is None or not validation.message_id(claim_id):
        return Outcome(None)
    event_id = outbox.change_event_id(services)
    store.claim_delete(project=caller.project, queue=queue, claim_id=claim_id, event_id=event_id)
    outbox.after_change(services, store, caller.project, queue, event_id)
    return Outcome(None)
