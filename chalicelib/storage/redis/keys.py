"""Redis key names: the one place that knows them.

Every key of a queue carries the hash tag ``{<project>/<queue>}``, so each
Lua script touches a single Redis Cluster slot. The project is
percent-encoded (everything but letters, digits and ``_.-~``), which makes
the tag injective: no project id, whatever characters it holds, can produce
another tenant's keys, and no ``{``, ``}`` or ``/`` of a project id can cut
the tag short. Queue names cannot hold those characters at all.

The per-queue structures are documented in ``lua/_common.lua``.
"""

from __future__ import annotations

from urllib.parse import quote

PREFIX = "zq"
SUFFIXES = ("q", "m", "f", "d", "cm", "e", "r", "b", "c", "ce", "x", "o", "ob")


def tag(project: str, queue: str) -> str:
    return "{" + quote(project, safe="") + "/" + queue + "}"


def queue_keys(project: str, queue: str) -> list[str]:
    """The keys of one queue, in the order the scripts expect (KEYS[1..13])."""
    base = f"{PREFIX}:{tag(project, queue)}:"
    return [base + suffix for suffix in SUFFIXES]


def queue_hash(project: str, queue: str) -> str:
    return f"{PREFIX}:{tag(project, queue)}:q"
