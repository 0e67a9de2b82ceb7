"""Message attributes: named values beside a message's body (beyond upstream).

An attribute is a string, a number, true or false, or an array of strings,
named by 1 to 256 letters, digits, ``_``, ``.`` or ``-``; a message has at
most ten (the ``MessageAttributes`` schema of :mod:`chalicelib.openapi`
says so and the post's schema check enforces it). They are what a
subscription's ``filter_policy`` matches in its default scope.

Stored inside the message's one stored text, ahead of the body: a record
separator, a compact JSON object (``a``: the attributes; ``v``: where a
message forwarded by a ``queue:`` subscription came from; ``s``: the queue a
dead letter left, for redrive), a line break, the body's JSON.
JSON text never starts with a record separator and compact JSON holds no
raw line break, so a message stored without attributes (any stored before
they existed) reads as it always did, and the pools, their scripts, the
outbox, dead letters and encryption carry attributes wherever the body
goes without knowing of them. In an encrypted queue they are encrypted
with the body.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, NamedTuple

MARK = "\x1e"

Attributes = dict[str, Any]


class Stored(NamedTuple):
    body: str
    """The body's JSON text."""
    attributes: Attributes | None
    via: str | None
    """``queues/NAME`` or ``topics/NAME`` of a message a ``queue:`` subscription forwarded here."""
    source: str | None = None
    """The queue a dead letter came from (what redrive moves it back to)."""


def pack(body_text: str, attributes: Mapping[str, Any] | None, *, via: str | None = None,
         source: str | None = None) -> str:
    """The stored text of a body (JSON text) with these attributes (none, no ``via``, no ``source``: the body
    text itself)."""
    head: dict[str, Any] = {}
    if attributes:
        head["a"] = dict(attributes)
    if via:
        head["v"] = via
    if source:
        head["s"] = source
    if not head:
        return body_text
    return MARK + json.dumps(head, separators=(",", ":")) + "\n" + body_text


def unpack(stored: str) -> Stored:
    """The body, attributes and origin of a stored text."""
    if not stored.startswith(MARK):
        return Stored(stored, None, None)
    head_text, _, body_text = stored.partition("\n")
    head = json.loads(head_text[1:])
    if not isinstance(head, dict):
        return Stored(body_text, None, None)
    found, via, source = head.get("a"), head.get("v"), head.get("s")
    return Stored(body_text, found if isinstance(found, dict) else None, via if isinstance(via, str) else None,
                  source if isinstance(source, str) else None)
