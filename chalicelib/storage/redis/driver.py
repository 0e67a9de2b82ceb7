"""The Redis pool driver: one Lua script, so one round trip, per operation."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Literal
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import redis
from redis.commands.core import Script

from chalicelib import errors
from chalicelib.storage import base
from chalicelib.storage.redis import keys, scripts

WAIT_ATTEMPTS = 8
"""Tries of a write that waits for replicas when the cluster moved its slot, lost its primary or asked to try
again, before it is a 503."""
DEFAULT_WAIT_TIMEOUT_MS = 1000
# How many index entries one list or claim may look at before it returns
# what it found (with a marker to go on): it bounds the time a script holds Redis.
SCAN_BUDGET = 5000
GC_BUDGET = 1000
"""How many of each kind of expired data one gc run may reclaim."""


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


class RedisStore(base.MessageStore):
    capabilities = frozenset({"FIFO", "CLAIMS", "AOD", "HIGH_THROUGHPUT"})

    def __init__(self, url: str) -> None:
        self._wait = replica_wait(url)
        self._client = connect(url)
        self._cluster = hasattr(self._client, "get_node_from_key")
        self._stale_slots = False
        self._scripts: dict[scripts.Lua, Script] = {
            script: self._client.register_script(script.source) for script in scripts.ALL
        }

    def _run(self, what: str, *, wait: bool = True) -> scripts.Run:
        """How this pool runs a script (``what`` it does, for a 503's message): plain EVALSHA, or with
        ``wait_replicas`` and ``wait``, a write followed by WAIT (``_run_and_wait``); read-only ones never wait."""

        def run(script: scripts.Lua, names: Sequence[str], args: Sequence[scripts.Arg]) -> Any:
            with translated(what):
                if not wait or self._wait is None or script.read_only:
                    return self._scripts[script](keys=list(names), args=list(args))
                return self._run_and_wait(self._scripts[script], list(names), list(args))

        return run

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
        self, mode: Literal["create", "update"], project: str, queue: str, metadata: Mapping[str, Any],
        settings: base.QueueSettings, event_id: str | None,
    ) -> bool:
        return scripts.queue_put(self._run("store the queue"), keys.queue_keys(project, queue), mode=mode,
                                 metadata=metadata, settings=settings, event_id=event_id)

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
        scripts.queue_delete(self._run("delete the queue"), keys.queue_keys(project, queue), event_id=event_id)

    def queue_purge(
        self, *, project: str, queue: str, event_id: str | None = None, resource_types: Sequence[str] = ("messages",)
    ) -> None:
        scripts.purge(self._run("purge the queue"), keys.queue_keys(project, queue), event_id=event_id,
                      resource_types=resource_types)

    def queue_stats(self, *, project: str, queue: str) -> base.Stats:
        return scripts.stats(self._run("count messages"), keys.queue_keys(project, queue))

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
        idempotency: base.Idempotency | None = None,
    ) -> base.Posted:
        reply = scripts.post(
            self._run("store the messages"), keys.queue_keys(project, queue), create=create, client_id=client_id,
            encrypted=encrypted, request_size=request_size, default_ttl=default_ttl, event_id=event_id,
            stream_all=stream_all, messages=messages, idempotency=idempotency,
        )
        if isinstance(reply, base.Posted):
            return reply
        if reply.reason == "missing":
            raise base.QueueMissing(queue)
        if reply.reason == "encrypt":
            raise base.EncryptionRequired(queue)
        if reply.reason == "conflict":
            raise base.IdempotencyConflict(queue)
        raise base.PostTooLarge(reply.limit)

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
        return scripts.list_(
            self._run("list messages"), keys.queue_keys(project, queue), marker=marker, limit=limit,
            client_id=client_id, echo=echo, include_claimed=include_claimed, include_delayed=include_delayed,
            scan_budget=SCAN_BUDGET,
        )

    def message_get_many(self, *, project: str, queue: str, ids: Sequence[str]) -> base.Records:
        return scripts.get_many(self._run("read messages"), keys.queue_keys(project, queue), ids=ids)

    def message_delete(
        self, *, project: str, queue: str, message_id: str, claim_id: str | None, event_id: str | None = None
    ) -> None:
        outcome = scripts.delete(self._run("delete the message"), keys.queue_keys(project, queue),
                                 message_id=message_id, claim_id=claim_id, event_id=event_id)
        if outcome == "claimed":
            raise errors.MessageIsClaimed(message_id=message_id)
        if outcome == "not_claimed":
            raise errors.MessageNotClaimed(message_id=message_id, claim_id=claim_id or "")

    def message_delete_many(
        self, *, project: str, queue: str, ids: Sequence[str], event_id: str | None = None
    ) -> int:
        return scripts.delete_many(self._run("delete messages"), keys.queue_keys(project, queue), ids=ids,
                                   event_id=event_id)

    def message_pop(self, *, project: str, queue: str, limit: int, event_id: str | None = None) -> base.Records:
        return scripts.pop(self._run("pop messages"), keys.queue_keys(project, queue), limit=limit,
                           scan_budget=SCAN_BUDGET, event_id=event_id)

    # -- claims -----------------------------------------------------------

    def claim_create(
        self, *, project: str, queue: str, claim_id: str, ttl: int, grace: int, limit: int,
        event_id: str | None = None,
    ) -> base.ClaimResult:
        claimed = scripts.claim(self._run("claim messages"), keys.queue_keys(project, queue), claim_id=claim_id,
                                ttl=ttl, grace=grace, limit=limit, scan_budget=SCAN_BUDGET, event_id=event_id)
        letters = self._dead_letters(project, queue, claimed.dead_ids) if claimed.dead_ids else []
        return base.ClaimResult(claim_id=claim_id, items=claimed.items, now_ms=claimed.now_ms, dead_letters=letters)

    def claim_get(self, *, project: str, queue: str, claim_id: str) -> base.Claim | None:
        return scripts.claim_get(self._run("read the claim"), keys.queue_keys(project, queue), claim_id=claim_id)

    def claim_update(
        self, *, project: str, queue: str, claim_id: str, ttl: int, grace: int, event_id: str | None = None
    ) -> bool:
        return scripts.claim_update(self._run("renew the claim"), keys.queue_keys(project, queue),
                                    claim_id=claim_id, ttl=ttl, grace=grace, event_id=event_id)

    def claim_delete(self, *, project: str, queue: str, claim_id: str, event_id: str | None = None) -> None:
        scripts.claim_delete(self._run("release the claim"), keys.queue_keys(project, queue), claim_id=claim_id,
                             event_id=event_id)

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
                    record=scripts.record_from_json(message_id, item["r"], item["b"]),
                    target=item["q"],
                    ttl=int(item["t"]) if item["t"] != "" else None,
                )
            )
        return letters

    def dead_letter_pending(self, *, project: str, queue: str) -> list[base.DeadLetter]:
        return self._dead_letters(project, queue, None)

    def dead_letter_accept(self, *, project: str, queue: str, letters: Sequence[base.DeadLetter]) -> None:
        if letters:
            scripts.dead_letter_accept(self._run("store dead letters"), keys.queue_keys(project, queue),
                                       letters=letters)

    def dead_letter_done(self, *, project: str, queue: str, ids: Sequence[str]) -> None:
        if ids:
            with translated("forget dead letters"):
                self._client.hdel(keys.queue_keys(project, queue).x, *ids)

    def outbox_record(self, *, project: str, queue: str, event_id: str, kind: str, data: Mapping[str, Any]) -> None:
        scripts.outbox_record(self._run("record the event"), keys.queue_keys(project, queue), event_id=event_id,
                              kind=kind, data=data)

    def outbox_lease(self, *, project: str, queue: str, holder: str) -> list[str] | None:
        return scripts.outbox_lease(self._run("read the outbox"), keys.queue_keys(project, queue), holder=holder)

    def outbox_release(
        self, *, project: str, queue: str, holder: str, published: Sequence[str], keep: bool
    ) -> list[str]:
        return scripts.outbox_release(self._run("mark events published"), keys.queue_keys(project, queue),
                                      holder=holder, published=published, keep=keep)

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
        # never waits for replicas (the pool-wide index is on no queue's slot): an unflag a failover loses
        # leaves the queue flagged, and the relay only looks at it again
        return scripts.unflag(self._run("update the outbox index", wait=False), project=flagged.project,
                              queue=flagged.queue, since_ms=flagged.since_ms)

    def listen(self, *, project: str, queue: str, until_ms: int) -> int:
        return scripts.listen(self._run("record the subscribers"), keys.queue_keys(project, queue), until_ms=until_ms)

    def listeners(self, *, project: str, queue: str) -> base.Listeners:
        with translated("read the subscribers record"):
            until, gen = self._client.hmget(keys.queue_keys(project, queue).l, ["until", "gen"])
        return base.Listeners(until_ms=int(until or 0), generation=int(gen or 0))

    def listen_lower(self, *, project: str, queue: str, until_ms: int, generation: int) -> bool:
        return scripts.listen_lower(self._run("record the subscribers"), keys.queue_keys(project, queue),
                                    until_ms=until_ms, generation=generation)

    def gc(self, *, project: str, queue: str, stale_before_ms: int) -> int:
        collected = scripts.gc(self._run("reclaim expired data"), keys.queue_keys(project, queue), budget=GC_BUDGET,
                               stale_before_ms=stale_before_ms)
        if collected.stale:
            self.outbox_flag(project=project, queue=queue)
        return collected.reclaimed
