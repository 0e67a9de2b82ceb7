"""The Lua scripts of the Redis driver: one typed wrapper per script.

Each wrapper builds its script's ARGV from named parameters and turns its
reply into named fields; the protocol of each (ARGV and reply) is written at
the top of its file in ``lua/``. How a script is run is the caller's: a
wrapper gets a ``Run`` (the driver's, which translates backend failures and
waits for replicas when the pool asks it to) and hands it the script, its
keys and its ARGV.

The per-queue scripts get the prelude ``lua/_common.lua`` and a queue's
``QueueKeys`` as KEYS; ``unflag`` runs alone on the pool-wide outbox index.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from chalicelib.storage import base
from chalicelib.storage.redis.keys import OUTBOXES, QueueKeys, tag_body

Arg = str | int
"""One ARGV value (redis-py sends an int as its decimal text)."""

_LUA = Path(__file__).with_name("lua")
_PRELUDE = (_LUA / "_common.lua").read_text()


@dataclasses.dataclass(frozen=True, eq=False)
class Lua:
    """One script as the server runs it. ``read_only`` ones change nothing a caller is told of (``list`` and
    ``stats`` reclaim expired data first, as any script may again), so they never wait for replicas."""

    name: str
    source: str
    read_only: bool = False


_DEFINED: list[Lua] = []


def _script(name: str, *, read_only: bool = False, prelude: bool = True) -> Lua:
    text = (_LUA / f"{name}.lua").read_text()
    script = Lua(name, _PRELUDE + "\n" + text if prelude else text, read_only)
    _DEFINED.append(script)
    return script


POST = _script("post")
LIST = _script("list", read_only=True)
GET_MANY = _script("get_many", read_only=True)
DELETE = _script("delete")
DELETE_MANY = _script("delete_many")
CLAIM = _script("claim")
CLAIM_GET = _script("claim_get", read_only=True)
CLAIM_UPDATE = _script("claim_update")
CLAIM_DELETE = _script("claim_delete")
STATS = _script("stats", read_only=True)
QUEUE_PUT = _script("queue_put")
QUEUE_DELETE = _script("queue_delete")
PURGE = _script("purge")
DEAD_LETTER_ACCEPT = _script("dead_letter_accept")
GC = _script("gc")
LISTEN = _script("listen")
LISTEN_LOWER = _script("listen_lower")
OUTBOX_RECORD = _script("outbox_record")
OUTBOX_LEASE = _script("outbox_lease")
OUTBOX_RELEASE = _script("outbox_release")
UNFLAG = _script("unflag", prelude=False)  # KEYS[1] is the pool's outbox index, not a queue's keys
ALL: tuple[Lua, ...] = tuple(_DEFINED)
"""Every script, for the driver to register with its client."""

Run = Callable[[Lua, Sequence[str], Sequence[Arg]], Any]
"""Runs a script with these KEYS and ARGV and returns its reply as redis-py decoded it."""


class UnexpectedReply(Exception):
    """A script answered outside its protocol: a bug (a script and its wrapper out of step)."""

    def __init__(self, script: Lua, reply: Any) -> None:
        super().__init__(f"{script.name}.lua replied {reply!r}")


def _flag(value: bool) -> str:
    return "1" if value else "0"


def _optional(value: int | str | None) -> Arg:
    """'' stands for none in the scripts' ARGV."""
    return "" if value is None else value


# -- message records -----------------------------------------------------

RECORD_FIELDS = ("id", "k", "t", "cr", "e", "d", "x", "c", "ce", "cc", "body")
"""The fields emit() in lua/_common.lua appends per message, in its order: the id, the record JSON's own
fields (``k`` marker, ``t`` ttl, ``cr`` created, ``e`` expires, ``d`` visible from, ``x`` encrypted, ``c``
claim id, ``ce`` claim expires, ``cc`` claim count) and the body."""


def record(fields: Mapping[str, Any]) -> base.MessageRecord:
    """A message from its fields by their names in lua/_common.lua (a record JSON with ``id`` and ``body``)."""
    return base.MessageRecord(
        id=fields["id"],
        marker=int(fields["k"]),
        ttl=int(fields["t"]),
        created_ms=int(fields["cr"]),
        expires_ms=int(fields["e"]),
        delay_until_ms=int(fields["d"]),
        encrypted=bool(fields["x"]),
        claim_id=fields["c"] or None,
        claim_expires_ms=int(fields["ce"]),
        claim_count=int(fields["cc"]),
        body=fields["body"],
    )


def records(flat: Sequence[Any]) -> list[base.MessageRecord]:
    """The messages of a reply's tail, ``len(RECORD_FIELDS)`` fields each (see emit() in lua/_common.lua)."""
    width = len(RECORD_FIELDS)
    if len(flat) % width:
        raise ValueError(f"{len(flat)} reply fields are no whole number of {width}-field message records")
    return [record(dict(zip(RECORD_FIELDS, flat[i : i + width], strict=True))) for i in range(0, len(flat), width)]


def record_from_json(message_id: str, raw: str, body: str) -> base.MessageRecord:
    """A message from its record JSON (as the ``r`` hash and a dead letter's ``r`` hold it) and its body."""
    return record({**json.loads(raw), "id": message_id, "body": body})


# -- queues ----------------------------------------------------------------

SETTING_FIELDS = {
    "default_ttl": "s.ttl",
    "default_delay": "s.delay",
    "max_post_size": "s.maxpost",
    "dead_letter_queue": "s.dlq",
    "dead_letter_ttl": "s.dlqttl",
    "max_claim_count": "s.maxcc",
}
"""The queue hash's field of each ``QueueSettings`` attribute the scripts act on (``s.enc`` aside)."""


def _settings_argv(settings: base.QueueSettings) -> list[Arg]:
    argv: list[Arg] = []
    for attr, field in SETTING_FIELDS.items():
        value = getattr(settings, attr)
        if value is not None:
            argv += [field, str(value)]
    if settings.encrypted:
        argv += ["s.enc", "1"]
    return argv


def queue_put(
    run: Run, keys: QueueKeys, *, mode: Literal["create", "update"], metadata: Mapping[str, Any],
    settings: base.QueueSettings, event_id: str | None,
) -> bool:
    """Creates the queue (``create``: False when it exists) or replaces its metadata (``update``: False when it
    is missing)."""
    argv: list[Arg] = [mode, json.dumps(metadata, separators=(",", ":")), event_id or "", *_settings_argv(settings)]
    return bool(run(QUEUE_PUT, keys, argv))


def queue_delete(run: Run, keys: QueueKeys, *, event_id: str | None) -> bool:
    """True when the queue existed."""
    return bool(run(QUEUE_DELETE, keys, [event_id or ""]))


def purge(run: Run, keys: QueueKeys, *, event_id: str | None, resource_types: Sequence[str]) -> bool:
    """True when the queue existed."""
    return bool(run(PURGE, keys, [event_id or "", *resource_types]))


def stats(run: Run, keys: QueueKeys) -> base.Stats:
    now, total, claimed, *flat = run(STATS, keys, [])
    found = records(flat)  # the oldest, then the newest (one message: once or twice)
    return base.Stats(
        total=int(total),
        claimed=int(claimed),
        oldest=found[0] if found else None,
        newest=found[-1] if found else None,
        now_ms=int(now),
    )


# -- messages --------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class PostRefused:
    """A post the script stored nothing of: the queue is ``missing`` (and not to be created), takes only
    encrypted bodies (``encrypt``), the request is over its ``max_post_size`` (``too_large``, ``limit``), or
    its idempotency key is bound to another post (``conflict``)."""

    reason: Literal["missing", "encrypt", "too_large", "conflict"]
    limit: int = 0


def post(
    run: Run, keys: QueueKeys, *, create: bool, client_id: str, encrypted: bool, request_size: int,
    default_ttl: int, event_id: str | None, stream_all: bool, messages: Sequence[base.NewMessage],
    idempotency: base.Idempotency | None = None,
) -> base.Posted | PostRefused:
    keyed = idempotency or base.Idempotency("", "", 0)
    argv: list[Arg] = [
        _flag(create), client_id, _flag(encrypted), request_size, default_ttl, event_id or "", _flag(stream_all),
        keyed.key, keyed.digest, keyed.window_ms,
    ]
    for message in messages:
        argv += [message.id, _optional(message.ttl), _optional(message.delay), message.body]
    status, *rest = run(POST, keys, argv)
    if status == "missing":
        return PostRefused("missing")
    if status == "encrypt":
        return PostRefused("encrypt")
    if status == "too_large":
        return PostRefused("too_large", limit=int(rest[0]))
    if status == "conflict":
        return PostRefused("conflict")
    if status == "repeat":
        now, count, *tail = rest
        ids, pairs = [str(i) for i in tail[: int(count)]], tail[int(count) :]
        return base.Posted(ids=ids, now_ms=int(now), repeated=True,
                           effective=[(int(pairs[i]), int(pairs[i + 1])) for i in range(0, len(pairs), 2)])
    if status != "ok":
        raise UnexpectedReply(POST, status)
    now, stored, leased, *tail = rest
    pairs, pending = tail[: 2 * len(messages)], tail[2 * len(messages) :]
    return base.Posted(
        ids=[m.id for m in messages],
        now_ms=int(now),
        effective=[(int(pairs[i]), int(pairs[i + 1])) for i in range(0, len(pairs), 2)],
        event_stored=bool(stored),
        pending=[str(entry) for entry in pending] if leased else None,
    )


def list_(
    run: Run, keys: QueueKeys, *, marker: str | None, limit: int, client_id: str, echo: bool,
    include_claimed: bool, include_delayed: bool, scan_budget: int,
) -> base.Page[base.MessageRecord]:
    """list.lua (the name is not to shadow the builtin)."""
    argv: list[Arg] = [
        marker or "0", limit, client_id, int(echo), int(include_claimed), int(include_delayed), scan_budget,
    ]
    now, next_marker, *flat = run(LIST, keys, argv)
    return base.Page(
        items=records(flat), next_marker=str(next_marker) if next_marker not in ("", None) else None, now_ms=int(now)
    )


def get_many(run: Run, keys: QueueKeys, *, ids: Sequence[str]) -> base.Records:
    """The live messages among ``ids``, in that order."""
    now, *flat = run(GET_MANY, keys, ids)
    return base.Records(items=records(flat), now_ms=int(now))


DeleteOutcome = Literal["ok", "claimed", "not_claimed"]


def delete(run: Run, keys: QueueKeys, *, message_id: str, claim_id: str | None, event_id: str | None) -> DeleteOutcome:
    """``ok`` (deleted, or there was none), ``claimed`` (no claim id was given and a live claim holds it) or
    ``not_claimed`` (a claim id was given but it is not the message's live claim)."""
    out = run(DELETE, keys, [message_id, claim_id or "", event_id or ""])
    if out == "ok":
        return "ok"
    if out == "claimed":
        return "claimed"
    if out == "not_claimed":
        return "not_claimed"
    raise UnexpectedReply(DELETE, out)


def delete_many(run: Run, keys: QueueKeys, *, ids: Sequence[str], event_id: str | None) -> int:
    """How many of ``ids`` existed (all of them are gone, whatever their claims)."""
    return int(run(DELETE_MANY, keys, [event_id or "", *ids]))


# -- claims ----------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Claimed:
    now_ms: int
    dead_ids: list[str]
    """Messages claimed ``max_claim_count`` times already: moved to the dead-letter outbox (``x``) instead."""
    items: list[base.MessageRecord]


def _claim(
    run: Run, keys: QueueKeys, *, claim_id: str, ttl: int, grace: int, limit: int, scan_budget: int, pop: bool,
    event_id: str | None,
) -> Claimed:
    argv: list[Arg] = [claim_id, ttl, grace, limit, scan_budget, int(pop), event_id or ""]
    now, n_dead, *rest = run(CLAIM, keys, argv)
    dead = int(n_dead)
    return Claimed(now_ms=int(now), dead_ids=[str(i) for i in rest[:dead]], items=records(rest[dead:]))


def claim(
    run: Run, keys: QueueKeys, *, claim_id: str, ttl: int, grace: int, limit: int, scan_budget: int,
    event_id: str | None,
) -> Claimed:
    """Claims up to ``limit`` free messages, oldest first."""
    return _claim(run, keys, claim_id=claim_id, ttl=ttl, grace=grace, limit=limit, scan_budget=scan_budget,
                  pop=False, event_id=event_id)


def pop(run: Run, keys: QueueKeys, *, limit: int, scan_budget: int, event_id: str | None) -> base.Records:
    """claim.lua popping: up to ``limit`` free messages, oldest first, deleted as they are returned."""
    claimed = _claim(run, keys, claim_id="", ttl=1, grace=0, limit=limit, scan_budget=scan_budget, pop=True,
                     event_id=event_id)
    return base.Records(items=claimed.items, now_ms=claimed.now_ms)  # a pop moves no dead letters


def claim_get(run: Run, keys: QueueKeys, *, claim_id: str) -> base.Claim | None:
    """The live claim and the messages it still holds; None when it ended or never was."""
    out = run(CLAIM_GET, keys, [claim_id])
    if len(out) < 2:
        return None
    now, raw, *flat = out
    doc = json.loads(raw)
    return base.Claim(
        id=claim_id,
        ttl=int(doc["t"]),
        grace=int(doc["g"]),
        created_ms=int(doc["cr"]),
        items=records(flat),
        now_ms=int(now),
    )


def claim_update(run: Run, keys: QueueKeys, *, claim_id: str, ttl: int, grace: int, event_id: str | None) -> bool:
    """Renews a live claim from now; False when it is gone."""
    return bool(run(CLAIM_UPDATE, keys, [claim_id, ttl, grace, event_id or ""]))


def claim_delete(run: Run, keys: QueueKeys, *, claim_id: str, event_id: str | None) -> bool:
    """Releases a claim; False when there was none (idempotent)."""
    return bool(run(CLAIM_DELETE, keys, [claim_id, event_id or ""]))


# -- dead letters, subscribers, the outbox and housekeeping ----------------


def dead_letter_accept(run: Run, keys: QueueKeys, *, letters: Sequence[base.DeadLetter]) -> int:
    """Appends the letters with their ids kept (one already here is skipped); how many were added."""
    argv: list[Arg] = []
    for letter in letters:
        rec = letter.record
        raw = {
            "k": rec.marker, "t": rec.ttl, "cr": rec.created_ms, "e": rec.expires_ms, "d": 0,
            "u": "", "x": int(rec.encrypted), "c": "", "ce": 0, "cc": rec.claim_count,
        }
        argv += [rec.id, json.dumps(raw), rec.body, _optional(letter.ttl)]
    return int(run(DEAD_LETTER_ACCEPT, keys, argv))


@dataclasses.dataclass(frozen=True)
class Collected:
    reclaimed: int
    """Expired messages and ended claims removed."""
    stale: bool
    """The outbox holds an entry written before ``stale_before_ms`` and no publish lease is live."""


def gc(run: Run, keys: QueueKeys, *, budget: int, stale_before_ms: int) -> Collected:
    """Reclaims at most ``budget`` of each kind of expired data."""
    reclaimed, stale = run(GC, keys, [budget, stale_before_ms])
    return Collected(reclaimed=int(reclaimed), stale=bool(int(stale)))


def listen(run: Run, keys: QueueKeys, *, until_ms: int) -> int:
    """Raises the listening horizon to ``until_ms`` (never lowers it); the new generation."""
    return int(run(LISTEN, keys, [until_ms]))


def listen_lower(run: Run, keys: QueueKeys, *, until_ms: int, generation: int) -> bool:
    """Lowers the horizon unless the generation moved since ``generation`` was read; True when lowered."""
    return bool(run(LISTEN_LOWER, keys, [until_ms, generation]))


def outbox_record(run: Run, keys: QueueKeys, *, event_id: str, kind: str, data: Mapping[str, Any]) -> None:
    run(OUTBOX_RECORD, keys, [event_id, kind, json.dumps(dict(data), separators=(",", ":"))])


def outbox_lease(run: Run, keys: QueueKeys, *, holder: str) -> list[str] | None:
    """The pending entries (the lease is ``holder``'s when there are any); None when another holds it."""
    taken, *entries = run(OUTBOX_LEASE, keys, [holder])
    return [str(entry) for entry in entries] if int(taken) else None


def outbox_release(run: Run, keys: QueueKeys, *, holder: str, published: Sequence[str], keep: bool) -> list[str]:
    """Forgets the published entries; with ``keep``, the next ones (the lease renewed), else the lease goes."""
    return [str(entry) for entry in run(OUTBOX_RELEASE, keys, [holder, _flag(keep), *published])]


def unflag(run: Run, *, project: str, queue: str, since_ms: int) -> bool:
    """Takes the queue off the pool's outbox index unless it was flagged again after ``since_ms``."""
    return bool(run(UNFLAG, [OUTBOXES], [tag_body(project, queue), since_ms]))
