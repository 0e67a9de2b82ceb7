"""Dead-letter redrive (beyond upstream, as SQS's): ``POST /v2/queues/{dead_letter_queue}/redrive`` moves
dead-lettered messages back to the queue each came from (or to ``destination``), claimable again with a
fresh claim count, body, attributes and ttl kept.

Each message is moved exactly once, whatever stops the call: the call claims a page of dead letters (so no
consumer takes them meanwhile), posts each to its queue keyed by the dead letter's own id (the key bound as
long as the dead letter can live), then deletes it under that claim. A call that died in between leaves its
claim to expire; made again, it posts with the same keys, which the destinations answer with the first
posts' ids, storing nothing, and deletes what is left. Messages another claim holds wait for a later
call, as do those whose origin is unknown (dead-lettered before queues remembered it) when no destination
is given.
"""

from __future__ import annotations

import json
from typing import Any

from chalicelib import errors
from chalicelib.api import bodies, claims, messages, validation
from chalicelib.api.context import Caller, Outcome, Services
from chalicelib.openapi import MAX_REDRIVE  # at most, and the default: a bigger queue takes several calls

REDRIVE_CLIENT = "00000000-0000-4000-8000-00000000000d"
"""The Client-ID redriven posts are made with."""
PAGE = 20
CLAIM_TTL = 60
"""Seconds a page of dead letters is held while it moves (a call that dies leaves them for the next)."""


def redrive(services: Services, caller: Caller, queue: str, body: Any) -> Outcome[int]:
    """Move up to ``limit`` dead letters of ``queue`` back; how many were moved."""
    limits = services.settings.limits
    validation.queue_name(queue, limits)
    body = {} if body is None else body
    bodies.check("Redrive", body, limits, "The redrive")
    destination: str | None = body.get("destination")
    if destination == queue:
        raise errors.InvalidBody(f"destination must be another queue than {queue}, the one redriven.")
    limit = int(bodies.whole(body.get("limit", MAX_REDRIVE)))
    mover = Caller(project=caller.project, client_id=REDRIVE_CLIENT, credentials=caller.credentials)
    moved = 0
    while moved < limit:
        claim = claims.claim_create(services, mover, queue, {"ttl": CLAIM_TTL, "grace": limits.min_claim_grace},
                                    limit=min(PAGE, limit - moved)).value
        if claim is None:
            break
        before = moved
        for message in claim.messages:
            target = destination or message.source
            if target is None or target == queue:
                continue
            _move(services, mover, queue, message, target, claim.id)
            moved += 1
        if moved - before < len(claim.messages):  # what cannot move goes back, for consumers or a later call
            claims.claim_delete(services, mover, queue, claim.id)
        if moved == before:
            break
    return Outcome(moved)


def _move(services: Services, mover: Caller, queue: str, message: messages.Message, target: str,
          claim_id: str) -> None:
    limits = services.settings.limits
    ttl = min(limits.max_message_ttl, max(limits.min_message_ttl, message.ttl - message.age))
    item: dict[str, Any] = {"body": message.body, "ttl": ttl}
    if message.attributes:
        item["attributes"] = message.attributes
    document = {"messages": [item]}
    messages.message_post(services, mover, target, document, size=len(json.dumps(document)),
                          idempotency_key=f"redrive:{queue}:{message.id}",
                          window_s=max(60, message.ttl - message.age + CLAIM_TTL))  # outlives the dead letter
    messages.message_delete(services, mover, queue, message.id, claim_id=claim_id)
