"""Liveness and health of the catalog and the pools.

``GET /v2/health`` reports, for every pool, whether it answers and how each
storage operation fares on it (upstream's ``operation_status``): a probe
creates a scratch queue, posts messages to it, claims and lists them,
deletes them one by one under the claim, releases the claim, bulk-deletes
the rest and deletes the queue. Each step reports ``seconds``,
``succeeded`` and ``ref``: None, or on failure an id that the log line
carrying the exception also carries.

The scratch queue lives in the project ``""``, which no request can name
(both transports refuse an empty X-Project-ID), so it can never meet a
user's queue, and it is never registered in the catalog, so no listing or
housekeeping sees it. It writes no outbox event. Whatever happens, the
probe ends by deleting the queue (which takes its messages and claims
with it); a failed cleanup is tried once more and then logged with the
queue's name. Even then its messages and claim expire within PROBE_TTL.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from chalicelib import errors
from chalicelib.api.context import Services
from chalicelib.storage.base import ClaimResult, MessageStore, NewMessage, Posted, QueueSettings

log = logging.getLogger(__name__)
T = TypeVar("T")

PROBE_PROJECT = ""
"""The tenant of the scratch queues: validation refuses an empty project id on every transport."""
PROBE_QUEUE_PREFIX = "health-probe-"
PROBE_MESSAGES = 20
PROBE_CLAIM_LIMIT = 10
PROBE_TTL = 60
"""Seconds: messages and the claim outlive the probe by a minute at most."""

OPERATIONS = ("create_queue", "post_messages", "claim_messages", "list_messages", "delete_messages",
              "delete_claim", "bulk_delete_messages", "delete_queue")
"""Every operation a probe that meets no failure reports, in the order it runs them."""


def ping(services: Services) -> bool:
    """True when the catalog and every pool answer."""
    pooling = services.pooling
    if not pooling.catalog.ping():
        return False
    return all(pooling.store(name).ping() for name in pooling.pools())


class _Probe:
    """Runs timed steps on one pool and keeps each step's status."""

    def __init__(self, pool: str) -> None:
        self.pool = pool
        self.status: dict[str, dict[str, Any]] = {}

    def step(self, operation: str, call: Callable[[], T], *, report: bool = True) -> tuple[bool, T | None]:
        ref: str | None = None
        result: T | None = None
        start = time.perf_counter()
        try:
            result = call()
        except Exception:  # a health report describes failures; it must not become one
            ref = uuid.uuid4().hex
            log.exception("health probe: %s failed on pool %s (ref %s)", operation, self.pool, ref)
        seconds = time.perf_counter() - start
        if report:
            self.status[operation] = {"seconds": seconds, "ref": ref, "succeeded": ref is None}
        return ref is None, result


def operation_status(store: MessageStore, *, pool: str) -> dict[str, dict[str, Any]]:
    """Probe every storage operation on a scratch queue of ``store``, then remove the queue."""
    probe = _Probe(pool)
    project, queue = PROBE_PROJECT, PROBE_QUEUE_PREFIX + uuid.uuid4().hex
    created, _ = probe.step("create_queue", lambda: store.queue_create(
        project=project, queue=queue, metadata={}, settings=QueueSettings()))
    try:
        if created:
            _exercise(store, probe, project, queue, str(uuid.uuid4()))
    finally:
        _clean_up(store, probe, project, queue, report=created)
    return probe.status


def _exercise(store: MessageStore, probe: _Probe, project: str, queue: str, client: str) -> None:
    texts = [json.dumps({"event": f"probe_{i}"}) for i in range(PROBE_MESSAGES)]
    messages = [NewMessage(uuid.uuid4().hex, text, PROBE_TTL, 0) for text in texts]
    size = len(json.dumps({"messages": [{"body": t, "ttl": PROBE_TTL} for t in texts]}))

    def post() -> Posted:
        return store.message_post(project=project, queue=queue, messages=messages, client_id=client, create=False,
                                  encrypted=False, request_size=size, default_ttl=PROBE_TTL, event_id=None)

    _, posted = probe.step("post_messages", post)
    if posted is None or not posted.ids:
        return
    ids = posted.ids

    def claim() -> ClaimResult:
        return store.claim_create(project=project, queue=queue, claim_id=uuid.uuid4().hex, ttl=PROBE_TTL,
                                  grace=PROBE_TTL, limit=PROBE_CLAIM_LIMIT)

    _, claimed = probe.step("claim_messages", claim)
    probe.step("list_messages", lambda: store.message_list(
        project=project, queue=queue, marker=None, limit=PROBE_MESSAGES, client_id=client, echo=True,
        include_claimed=True, include_delayed=True))
    if claimed is not None and claimed.items:
        held = claimed

        def delete_claimed() -> None:
            for record in held.items:
                store.message_delete(project=project, queue=queue, message_id=record.id, claim_id=held.claim_id)

        probe.step("delete_messages", delete_claimed)
        probe.step("delete_claim", lambda: store.claim_delete(project=project, queue=queue, claim_id=held.claim_id))
    probe.step("bulk_delete_messages", lambda: store.message_delete_many(project=project, queue=queue, ids=ids))


def _clean_up(store: MessageStore, probe: _Probe, project: str, queue: str, *, report: bool) -> None:
    """Delete the scratch queue (reported as delete_queue when the probe created it); once more on failure."""

    def delete() -> None:
        store.queue_delete(project=project, queue=queue)

    done, _ = probe.step("delete_queue", delete, report=report)
    if not done:  # the report keeps the failure; the retry only cleans up
        done, _ = probe.step("delete_queue", delete, report=False)
    if not done:
        log.error("health probe: pool %s may keep the scratch queue %r of project %r; delete it by hand",
                  probe.pool, queue, project)


def _pool_health(services: Services, name: str) -> tuple[bool, dict[str, dict[str, Any]]]:
    try:
        store = services.pooling.store(name)
    except errors.ServiceError:
        log.exception("health: pool %s cannot be opened", name)
        return False, {}
    if not store.ping():
        return False, {}  # every step would only wait for the same timeout
    return True, operation_status(store, pool=name)


def health(services: Services) -> dict[str, Any]:
    pooling = services.pooling
    report: dict[str, Any] = {"catalog_reachable": pooling.catalog.ping()}
    if not report["catalog_reachable"]:
        return report
    for name, pool in sorted(pooling.pools().items()):
        reachable, status = _pool_health(services, name)
        report[name] = {"storage_reachable": reachable, "operation_status": status, "weight": pool.weight,
                        "flavor": pool.flavor}
    return report
