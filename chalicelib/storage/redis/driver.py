"""The Redis pool driver: one Lua script, so one round trip, per operation."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import redis
from redis.commands.core import Script

from chalicelib import errors
from chalicelib.storage import base
from chalicelib.storage.redis import keys

_LUA = Path(__file__).with_name("lua")
_SCRIPTS = (
    "post", "list", "get_many", "delete", "delete_many", "claim", "claim_get",
    "claim_update", "claim_delete", "stats", "queue_put", "dead_letter_accept", "gc", "purge",
    "listen", "listen_lower", "queue_delete", "outbox_record", "outbox_lease", "outbox_release",
)
_STANDALONE = ("unflag",)  # scripts on pool-wide keys: no per-queue prelude
_READ_ONLY = frozenset({"list", "get_many", "claim_get", "stats"})
WAIT_ATTEMPTS = 8
"""Tries of a write that waits for replicas when the cluster moved its slot, lost its primary or asked to try
again, before it is a 503."""
DEFAULT_WAIT_TIMEOUT_MS = 1000
# How many index entries one list or claim may look at before it returns
# what it found (with a marker to go on): it bounds the time a script holds Redis.
SCAN_BUDGET = 5000
_SETTING_FIELDS = {
    "default_ttl": "s.ttl",
    "default_delay": "s.delay",
    "max_post_size": "s.maxpost",
    "dead_letter_queue": "s.dlq",
    "dead_letter_ttl": "s.dlqttl",
    "max_claim_count": "s.maxcc",
}


def _script_sources() -> dict[str, str]:
    prelude = (_LUA / "_common.lua").read_text()
    sources = {name: prelude + "\n" + (_LUA / f"{name}.lua").read_text() for name in _SCRIPTS}
    sources.update({name: (_LUA / f"{name}.lua").read_text() for name in _STANDALONE})
    return sources


@contextlib.contextmanager
def translated(what: str) -> Iterator[None]:
    """Backend failures become Unavailable; anything else is a bug and propagates."""
    try:
        yield
    except (
        redis.ConnectionError,
        redis.TimeoutError,
        redis.BusyLoadingError,
        redis.exceptions.ClusterError,
        redis.exceptions.RedisClusterException,
        redis.exceptions.TryAgainError,  # a slot moving, or a node failing over: the same request works soon
        redis.exceptions.ClusterDownError,
        redis.exceptions.AskError,  # MovedError too
    ) as exc:
        raise errors.Unavailable(f"The message pool could not {what}.") from exc
    except redis.exceptions.OutOfMemoryError as exc:
        raise errors.Unavailable(f"The message pool is full and could not {what}.") from exc
    except redis.ReadOnlyError as exc:
        raise errors.Unavailable(f"The message pool is read-only and could not {what}.") from exc


def replica_wait(url: str) -> tuple[int, int] | None:
    """``wait_replicas=N`` (and ``wait_timeout_ms``, 1000 by default) of a pool URI: every acknowledged write
    waits until N replicas have it; None without the option."""
    query = parse_qs(urlsplit(url).query)
    raw = query.get("wait_replicas", [""])[-1]
    if not raw:
        return None
    timeout = query.get("wait_timeout_ms", [str(DEFAULT_WAIT_TIMEOUT_MS)])[-1]
    if not raw.isdigit() or not timeout.isdigit() or int(timeout) < 1:
        raise errors.InvalidBody("wait_replicas and wait_timeout_ms must be whole numbers (wait_timeout_ms at least 1).")
    return (int(raw), int(timeout)) if int(raw) > 0 else None


def connect(url: str) -> Any:
    """A client for a pool URI; ``?cluster=true`` selects Redis Cluster (e.g. ElastiCache cluster mode)."""
    from redis.connection import URL_QUERY_ARGUMENT_PARSERS

    parts = urlsplit(url)
    query = parse_qs(parts.query)
    cluster = query.pop("cluster", ["false"])[-1].lower() in {"1", "true", "yes"}
    # a pool URI may carry options meant for others: pass on only what redis-py understands
    known = {k: v for k, v in query.items() if k in URL_QUERY_ARGUMENT_PARSERS or k.startswith("ssl_")}
    clean = urlunsplit(parts._replace(query=urlencode(known, doseq=True)))
    options: dict[str, Any] = {"decode_responses": True, "socket_timeout": 5, "socket_connect_timeout": 3}
    if cluster:
        from redis.cluster import RedisCluster

        return RedisCluster.from_url(clean, **options)
    return redis.Redis.from_url(clean, **options)


RECORD_WIDTH = 11  # fields per message in script replies: see emit() in lua/_common.lua


def _records(flat: Sequence[Any]) -> list[base.MessageRecord]:
    return [
        base.MessageRecord(
            id=flat[i],
            marker=int(flat[i + 1]),
            ttl=int(flat[i + 2]),
            created_ms=int(flat[i + 3]),
            expires_ms=int(flat[i + 4]),
            delay_until_ms=int(flat[i + 5]),
            encrypted=bool(flat[i + 6]),
            claim_id=flat[i + 7] or None,
            claim_expires_ms=int(flat[i + 8]),
            claim_count=int(flat[i + 9]),
            body=flat[i + 10],
        )
        for i in range(0, len(flat), RECORD_WIDTH)
    ]


def _record_from_json(message_id: str, raw: str, body: str) -> base.MessageRecord:
    rec = json.loads(raw)
    fields = [message_id, rec["k"], rec["t"], rec["cr"], rec["e"], rec["d"], rec["x"], rec["c"], rec["ce"], rec["cc"]]
    return _records([*fields, body])[0]


def _settings_argv(settings: base.QueueSettings) -> list[str]:
    argv: list[str] = []
    for attr, field in _SETTING_FIELDS.items():
        value = getattr(settings, attr)
        if value is not None:
            argv += [field, str(value)]
    if settings.encrypted:
        argv += ["s.enc", "1"]
    return argv


class RedisStore(base.MessageStore):
    capabilities = frozenset({"FIFO", "CLAIMS", "AOD", "HIGH_THROUGHPUT"})

    def __init__(self, url: str) -> None:
        self._wait = replica_wait(url)
        self._client = connect(url)
        self._cluster = hasattr(self._client, "get_node_from_key")
        self._stale_slots = False
        self._scripts: dict[str, Script] = {
            name: self._client.register_script(source)
            for name, source in _script_sources().items()
        }

    def _run(self, name: str, project: str, queue: str, args: Sequence[Any], what: str) -> Any:
        with translated(what):
            names = list(keys.queue_keys(project, queue))
            if self._wait is None or name in _READ_ONLY:
                return self._scripts[name](keys=names, args=list(args))
            return self._run_and_wait(self._scripts[name], names, list(args))

    def _run_and_wait(self, script: Script, names: list[str], args: list[Any]) -> Any:
        """The script and ``WAIT`` in one pipeline on one connection (WAIT counts the replicas that have this
        connection's writes), on the primary that serves the queue's slot. Fewer replicas than asked in time is
        a 503: the write is on the primary and may not survive its failure."""
        assert self._wait is not None
        count, timeout_ms = self._wait
        asking: tuple[str, int] | None = None
        for attempt in range(WAIT_ATTEMPTS):
            try:
                node = self._node_for(names[0], asking)
                pipe = node.pipeline(transaction=False)
                if asking is not None:
                    pipe.execute_command("ASKING")
                # EVALSHA itself, not the Script object: in a pipeline that would first ask SCRIPT EXISTS, a round
                # trip more on every write
                pipe.evalsha(script.sha, len(names), *names, *args)
                pipe.execute_command("WAIT", count, timeout_ms)
                replies = pipe.execute(raise_on_error=False)
                if isinstance(replies[-2], redis.exceptions.NoScriptError):  # a new primary, or a restarted one
                    node.script_load(script.script)
                    continue
                for reply in replies:
                    if isinstance(reply, Exception):
                        raise reply
            except redis.exceptions.AskError as exc:  # the slot is moving and this queue's keys are there already
                asking = (exc.host, int(exc.port))
                continue
            except (redis.exceptions.MovedError, redis.exceptions.TryAgainError, redis.exceptions.ClusterDownError,
                    redis.ConnectionError, redis.TimeoutError):
                if attempt == WAIT_ATTEMPTS - 1 or not self._cluster:
                    self._stale_slots = self._cluster
                    raise
                self._stale_slots, asking = True, None
                time.sleep(0.02 * 2**attempt)  # 2.5 s in all before the slot is reported unavailable
                continue
            result, acknowledged = replies[-2], int(replies[-1])
            if acknowledged < count:
                raise errors.Unavailable(
                    f"The write reached {acknowledged} of the {count} replica(s) the pool waits for "
                    f"(wait_replicas) within {timeout_ms} ms, so it may not survive a failover; it may be stored.")
            return result
        raise redis.exceptions.ClusterError("the queue's slot kept moving")

    def _node_for(self, key: str, asking: tuple[str, int] | None) -> Any:
        """A client of the node to send this queue's writes to (the pool's own client outside a cluster)."""
        if not self._cluster:
            return self._client
        if self._stale_slots:
            self._client.nodes_manager.initialize()  # after a failover or a slot move: ask the cluster again
            self._stale_slots = False
        if asking is not None:
            node = self._client.get_node(host=asking[0], port=asking[1])
            if node is None:
                self._client.nodes_manager.initialize()
                node = self._client.get_node(host=asking[0], port=asking[1])
        else:
            node = self._client.get_node_from_key(key)
        return self._client.get_redis_connection(node)

    def ping(self) -> bool:
        try:
            return bool(self._client.ping())
        except redis.RedisError:
            return False

    def close(self) -> None:
        # a cluster client's close() leaves its nodes' pools connected: disconnect them first
        for node in self._client.get_nodes() if hasattr(self._client, "get_nodes") else []:
            if node.redis_connection is not None:
                node.redis_connection.connection_pool.disconnect()
        self._client.close()

    # -- queues -----------------------------------------------------------

    def _queue_put(
        self, mode: str, project: str, queue: str, metadata: Mapping[str, Any], settings: base.QueueSettings,
        event_id: str | None,
    ) -> bool:
        argv = [mode, json.dumps(metadata, separators=(",", ":")), event_id or "", *_settings_argv(settings)]
        return bool(self._run("queue_put", project, queue, argv, "store the queue"))

    def queue_create(
        self, *, project: str, queue: str, metadata: Mapping[str, Any], settings: base.QueueSettings,
        event_id: str | None = None,
    ) -> bool:
        return self._queue_put("create", project, queue, metadata, settings, event_id)

    def queue_set(
        self, *, project: str, queue: str, metadata: Mapping[str, Any], settings: base.QueueSettings,
        event_id: str | None = None,
    ) -> bool:
        return self._queue_put("update", project, queue, metadata, settings, event_id)

    def queue_get(self, *, project: str, queue: str) -> dict[str, Any] | None:
        return self.queue_get_many(project=project, queues=[queue])[0]

    def queue_get_many(self, *, project: str, queues: Sequence[str]) -> list[dict[str, Any] | None]:
        with translated("read queues"):
            if len(queues) == 1:
                raws = [self._client.hget(keys.queue_hash(project, queues[0]), "meta")]
            else:
                pipe = self._client.pipeline(transaction=False)
                for name in queues:
                    pipe.hget(keys.queue_hash(project, name), "meta")
                raws = pipe.execute()
        return [None if raw is None else json.loads(raw) for raw in raws]

    def queue_delete(self, *, project: str, queue: str, event_id: str | None = None) -> None:
        self._run("queue_delete", project, queue, [event_id or ""], "delete the queue")

    def queue_purge(
        self, *, project: str, queue: str, event_id: str | None = None, resource_types: Sequence[str] = ("messages",)
    ) -> None:
        self._run("purge", project, queue, [event_id or "", *resource_types], "purge the queue")

    def queue_stats(self, *, project: str, queue: str) -> base.Stats:
        out = self._run("stats", project, queue, [], "count messages")
        found = _records(out[3:])
        return base.Stats(
            total=int(out[1]),
            claimed=int(out[2]),
            oldest=found[0] if found else None,
            newest=found[-1] if found else None,
            now_ms=int(out[0]),
        )

    # -- messages ---------------------------------------------------------

    def message_post(
        self,
        *,
        project: str,
        queue: str,
        messages: Sequence[base.NewMessage],
        client_id: str,
        create: bool,
        encrypted: bool,
        request_size: int,
        default_ttl: int,
        event_id: str | None,
        stream_all: bool = False,
    ) -> base.Posted:
        argv: list[Any] = [
            "1" if create else "0", client_id, "1" if encrypted else "0", request_size, default_ttl,
            event_id or "", "1" if stream_all else "0",
        ]
        for message in messages:
            argv += [
                message.id,
                "" if message.ttl is None else message.ttl,
                "" if message.delay is None else message.delay,
                message.body,
            ]
        out = self._run("post", project, queue, argv, "store the messages")
        status = out[0]
        if status == "missing":
            raise base.QueueMissing(queue)
        if status == "encrypt":
            raise base.EncryptionRequired(queue)
        if status == "too_large":
            raise base.PostTooLarge(int(out[1]))
        end = 4 + 2 * len(messages)
        effective = [(int(out[i]), int(out[i + 1])) for i in range(4, end, 2)]
        return base.Posted(ids=[m.id for m in messages], now_ms=int(out[1]), effective=effective,
                           event_stored=bool(out[2]), pending=list(out[end:]) if out[3] else None)

    def message_list(
        self,
        *,
        project: str,
        queue: str,
        marker: str | None,
        limit: int,
        client_id: str,
        echo: bool,
        include_claimed: bool,
        include_delayed: bool,
    ) -> base.Page[base.MessageRecord]:
        argv = [
            marker or "0", limit, client_id, int(echo), int(include_claimed), int(include_delayed), SCAN_BUDGET,
        ]
        out = self._run("list", project, queue, argv, "list messages")
        next_marker = str(out[1]) if out[1] not in ("", None) else None
        return base.Page(items=_records(out[2:]), next_marker=next_marker, now_ms=int(out[0]))

    def message_get_many(self, *, project: str, queue: str, ids: Sequence[str]) -> base.Records:
        out = self._run("get_many", project, queue, ids, "read messages")
        return base.Records(items=_records(out[1:]), now_ms=int(out[0]))

    def message_delete(
        self, *, project: str, queue: str, message_id: str, claim_id: str | None, event_id: str | None = None
    ) -> None:
        out = self._run("delete", project, queue, [message_id, claim_id or "", event_id or ""], "delete the message")
        if out == "claimed":
            raise errors.MessageIsClaimed(message_id=message_id)
        if out == "not_claimed":
            raise errors.MessageNotClaimed(message_id=message_id, claim_id=claim_id or "")

    def message_delete_many(
        self, *, project: str, queue: str, ids: Sequence[str], event_id: str | None = None
    ) -> int:
        return int(self._run("delete_many", project, queue, [event_id or "", *ids], "delete messages"))

    def message_pop(self, *, project: str, queue: str, limit: int, event_id: str | None = None) -> base.Records:
        argv = ["", 1, 0, limit, SCAN_BUDGET, 1, event_id or ""]
        out = self._run("claim", project, queue, argv, "pop messages")
        skip = 2 + int(out[1])
        return base.Records(items=_records(out[skip:]), now_ms=int(out[0]))

    # -- claims -----------------------------------------------------------

    def claim_create(
        self, *, project: str, queue: str, claim_id: str, ttl: int, grace: int, limit: int,
        event_id: str | None = None,
    ) -> base.ClaimResult:
        argv = [claim_id, ttl, grace, limit, SCAN_BUDGET, 0, event_id or ""]
        out = self._run("claim", project, queue, argv, "claim messages")
        n_dead = int(out[1])
        dead_ids = out[2 : 2 + n_dead]
        letters = self._dead_letters(project, queue, dead_ids) if dead_ids else []
        return base.ClaimResult(
            claim_id=claim_id, items=_records(out[2 + n_dead :]), now_ms=int(out[0]), dead_letters=letters
        )

    def claim_get(self, *, project: str, queue: str, claim_id: str) -> base.Claim | None:
        out = self._run("claim_get", project, queue, [claim_id], "read the claim")
        if len(out) < 2:
            return None
        claim = json.loads(out[1])
        return base.Claim(
            id=claim_id,
            ttl=int(claim["t"]),
            grace=int(claim["g"]),
            created_ms=int(claim["cr"]),
            items=_records(out[2:]),
            now_ms=int(out[0]),
        )

    def claim_update(
        self, *, project: str, queue: str, claim_id: str, ttl: int, grace: int, event_id: str | None = None
    ) -> bool:
        argv = [claim_id, ttl, grace, event_id or ""]
        return bool(self._run("claim_update", project, queue, argv, "renew the claim"))

    def claim_delete(self, *, project: str, queue: str, claim_id: str, event_id: str | None = None) -> None:
        self._run("claim_delete", project, queue, [claim_id, event_id or ""], "release the claim")

    # -- dead letters and housekeeping ------------------------------------

    def _dead_letters(self, project: str, queue: str, ids: Sequence[str] | None) -> list[base.DeadLetter]:
        outbox = keys.queue_keys(project, queue).x
        with translated("read dead letters"):
            if ids is None:
                raw: dict[Any, Any] = dict(self._client.hgetall(outbox))
            else:
                raw = dict(zip(ids, self._client.hmget(outbox, list(ids)), strict=True))
        letters = []
        for message_id, text in raw.items():
            if text is None:
                continue
            item = json.loads(text)
            letters.append(
                base.DeadLetter(
                    record=_record_from_json(message_id, item["r"], item["b"]),
                    target=item["q"],
                    ttl=int(item["t"]) if item["t"] != "" else None,
                )
            )
        return letters

    def dead_letter_pending(self, *, project: str, queue: str) -> list[base.DeadLetter]:
        return self._dead_letters(project, queue, None)

    def dead_letter_accept(self, *, project: str, queue: str, letters: Sequence[base.DeadLetter]) -> None:
        argv: list[Any] = []
        for letter in letters:
            rec = letter.record
            raw = {
                "k": rec.marker, "t": rec.ttl, "cr": rec.created_ms, "e": rec.expires_ms, "d": 0,
                "u": "", "x": int(rec.encrypted), "c": "", "ce": 0, "cc": rec.claim_count,
            }
            argv += [rec.id, json.dumps(raw), rec.body, "" if letter.ttl is None else letter.ttl]
        if argv:
            self._run("dead_letter_accept", project, queue, argv, "store dead letters")

    def dead_letter_done(self, *, project: str, queue: str, ids: Sequence[str]) -> None:
        if ids:
            with translated("forget dead letters"):
                self._client.hdel(keys.queue_keys(project, queue).x, *ids)

    def outbox_record(self, *, project: str, queue: str, event_id: str, kind: str, data: Mapping[str, Any]) -> None:
        argv = [event_id, kind, json.dumps(dict(data), separators=(",", ":"))]
        self._run("outbox_record", project, queue, argv, "record the event")

    def outbox_lease(self, *, project: str, queue: str, holder: str) -> list[str] | None:
        out = self._run("outbox_lease", project, queue, [holder], "read the outbox")
        return list(out[1:]) if int(out[0]) else None

    def outbox_release(
        self, *, project: str, queue: str, holder: str, published: Sequence[str], keep: bool
    ) -> list[str]:
        argv = [holder, "1" if keep else "0", *published]
        return list(self._run("outbox_release", project, queue, argv, "mark events published"))

    def outbox_flag(self, *, project: str, queue: str) -> None:
        with translated("remember the unpublished events"):
            # the container's clock, as the relay's flagged_before_ms: one round trip
            self._client.zadd(keys.OUTBOXES, {keys.tag_body(project, queue): int(time.time() * 1000)})

    def outbox_flagged(self, *, flagged_before_ms: int, limit: int) -> list[base.Flagged]:
        with translated("read the outbox index"):
            rows = self._client.zrangebyscore(keys.OUTBOXES, "-inf", flagged_before_ms, start=0, num=limit,
                                              withscores=True)
        return [base.Flagged(*keys.from_tag_body(member), int(score)) for member, score in rows]

    def outbox_unflag(self, *, flagged: base.Flagged) -> bool:
        member = keys.tag_body(flagged.project, flagged.queue)
        with translated("update the outbox index"):
            return bool(self._scripts["unflag"](keys=[keys.OUTBOXES], args=[member, flagged.since_ms]))

    def listen(self, *, project: str, queue: str, until_ms: int) -> int:
        return int(self._run("listen", project, queue, [until_ms], "record the subscribers"))

    def listeners(self, *, project: str, queue: str) -> base.Listeners:
        with translated("read the subscribers record"):
            until, gen = self._client.hmget(keys.queue_keys(project, queue).l, ["until", "gen"])
        return base.Listeners(until_ms=int(until or 0), generation=int(gen or 0))

    def listen_lower(self, *, project: str, queue: str, until_ms: int, generation: int) -> bool:
        return bool(self._run("listen_lower", project, queue, [until_ms, generation], "record the subscribers"))

    def gc(self, *, project: str, queue: str, stale_before_ms: int) -> int:
        reclaimed, stale = self._run("gc", project, queue, [1000, stale_before_ms], "reclaim expired data")
        if int(stale):
            self.outbox_flag(project=project, queue=queue)
        return int(reclaimed)
