"""Redis key names: the one place that knows them (the pools' and the state Redis's).

Every key of a queue carries the hash tag ``{<project>/<queue>}``, so each
Lua script touches a single Redis Cluster slot. The project is
percent-encoded (everything but letters, digits and ``_.-~``), which makes
the tag injective: no project id, whatever characters it holds, can produce
another tenant's keys, and no ``{``, ``}`` or ``/`` of a project id can cut
the tag short. Queue names cannot hold those characters at all.

The per-queue structures are documented in ``lua/_common.lua``. Deleting a
queue (``lua/queue_delete.lua``) keeps three of them: the outbox (``o``,
``ob``), whose events must still be published, and

- ``zq:{<tag>}:l`` (hash): ``until`` (ms) - the queue has subscribers who
  can receive until then - and ``gen``, bumped by every raise, so a
  lowering computed from an older view of the subscriptions can be refused;
  ``seq``, the last outbox sequence, which goes on counting when the queue
  is made again; ``lh``/``le``, the publish lease's holder and expiry.
- ``zq:outboxes`` (sorted set, one per pool): the tags of queues whose
  outbox holds events that a request could not publish, scored by when
  that was noticed; the relay reads only these.
"""

from __future__ import annotations

from typing import NamedTuple
from urllib.parse import quote, unquote

PREFIX = "zq"
OUTBOXES = f"{PREFIX}:outboxes"
CONNECTION_EXPIRIES = "zc:expiries"
"""(state Redis, sorted set) websocket connection ids by when their authentication expires."""


def connection(connection_id: str) -> str:
    """(state Redis, hash) one websocket connection: when it connected, from where, its project and expiry."""
    return "zc:{" + connection_id + "}"


def delivery(event_id: str, subscription_id: str, item: str) -> str:
    """(state Redis, string) one delivered (event, subscription, message or kind); the event id is the hash
    tag, so a batch's records share slots with nothing else's. What follows ``zn:`` is the delivery id
    receivers de-duplicate on."""
    return f"zn:{{{event_id}}}:{subscription_id}:{item}"


class QueueKeys(NamedTuple):
    """The keys of one queue, in the order the scripts expect (KEYS[1..16])."""

    q: str
    m: str
    f: str
    d: str
    cm: str
    e: str
    r: str
    b: str
    c: str
    ce: str
    x: str
    o: str
    ob: str
    l: str  # noqa: E741 - the schema's own name
    i: str
    ie: str




def tag_body(project: str, queue: str) -> str:
    return quote(project, safe="") + "/" + queue


def from_tag_body(body: str) -> tuple[str, str]:
    """The (project, queue) of a ``tag_body``."""
    project, _, queue = body.rpartition("/")
    return unquote(project), queue


def tag(project: str, queue: str) -> str:
    return "{" + tag_body(project, queue) + "}"


def queue_keys(project: str, queue: str) -> QueueKeys:
    base = f"{PREFIX}:{tag(project, queue)}:"
    return QueueKeys(*(base + suffix for suffix in QueueKeys._fields))


def queue_hash(project: str, queue: str) -> str:
    return f"{PREFIX}:{tag(project, queue)}:q"
