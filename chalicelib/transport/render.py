"""How results look on the wire, shared by the REST and websocket transports."""

from __future__ import annotations

import time
from typing import Any

from chalicelib.api.messages import Message
from chalicelib.api.queues import QueueStats
from chalicelib.api.subscriptions import Subscription


def queue_path(queue: str, collection: str = "queues") -> str:
    """The path of a queue, or of a topic (``collection="topics"``)."""
    return f"/v2/{collection}/{queue}"


def iso8601(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ms / 1000))


def message(queue: str, item: Message, *, claim_id: str | None = None,
            collection: str = "queues") -> dict[str, Any]:
    """A message as REST shows it: the href carries the claim that holds it."""
    href = f"{queue_path(queue, collection)}/messages/{item.id}"
    claim = claim_id or item.claim_id
    if claim:
        href += f"?claim_id={claim}"
    return _with_attributes({"id": item.id, "href": href, "ttl": item.ttl, "age": item.age, "body": item.body}, item)


def _with_attributes(view: dict[str, Any], item: Message) -> dict[str, Any]:
    """Attributes (beyond upstream) only on messages that have them: other messages look as upstream's do."""
    if item.attributes:
        view["attributes"] = item.attributes
    return view


def ws_message(item: Message, *, claim_id: str | None = None) -> dict[str, Any]:
    """A message as the websocket API shows it."""
    return _with_attributes({"id": item.id, "claim_id": claim_id or item.claim_id, "ttl": item.ttl, "age": item.age,
                             "body": item.body}, item)


def popped(item: Message) -> dict[str, Any]:
    return _with_attributes({"id": item.id, "body": item.body, "ttl": item.ttl, "age": item.age, "claim_id": None,
                             "claim_count": item.claim_count}, item)


def stats(queue: str, found: QueueStats | None, collection: str = "queues") -> dict[str, Any]:
    if found is None:
        return {"messages": {"claimed": 0, "free": 0, "total": 0}}
    counts: dict[str, Any] = {"claimed": found.claimed, "free": found.free, "total": found.total}
    for label, end in (("oldest", found.oldest), ("newest", found.newest)):
        if end is not None:
            counts[label] = {
                "href": f"{queue_path(queue, collection)}/messages/{end.id}",
                "age": end.age,
                "created": iso8601(end.created_ms),
            }
    return {"messages": counts}


def subscription(item: Subscription, *, signing_secret: str | None = None) -> dict[str, Any]:
    """A subscription; with its webhook signing secret (beyond upstream) when one is given."""
    view: dict[str, Any] = {
        "id": item.id,
        "source": item.queue,
        "subscriber": item.subscriber,
        "ttl": item.ttl,
        "age": item.age,
        "options": item.options,
        "confirmed": item.confirmed,
    }
    if signing_secret is not None:
        view["signing_secret"] = signing_secret
    return view
