"""Queue operations, shared by the REST and websocket transports."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

from chalicelib import errors
from chalicelib.api import bodies, listeners, outbox, trust_subscribers, validation
from chalicelib.api.context import Caller, Outcome, Services
from chalicelib.config import Limits
from chalicelib.storage.base import MessageRecord, MessageStore, QueueSettings, Stats

PATCH_MEDIA_TYPE = "application/openstack-messaging-v2.0-json-patch"


@dataclasses.dataclass(frozen=True)
class QueueItem:
    name: str
    metadata: dict[str, Any] | None
    """With the reserved defaults filled in (REST's detailed list), when asked for."""
    stored: dict[str, Any] | None = None
    """As the queue's owner set it (the websocket's detailed list, as upstream's)."""


@dataclasses.dataclass(frozen=True)
class QueuePage:
    items: list[QueueItem]
    next_marker: str | None
    count: int | None


@dataclasses.dataclass(frozen=True)
class StatsMessage:
    """The oldest or the newest message of a queue, as its stats tell of it."""

    id: str
    age: int
    """Seconds since it was posted (by the pool's clock)."""
    created_ms: int


@dataclasses.dataclass(frozen=True)
class QueueStats:
    claimed: int
    free: int
    total: int
    oldest: StatsMessage | None
    newest: StatsMessage | None


def _settings(services: Services, metadata: Mapping[str, Any]) -> QueueSettings:
    return validation.queue_settings(
        metadata,
        services.settings.limits,
        encryption_available=services.settings.message_encryption_key is not None,
    )


def _check_metadata(services: Services, metadata: Any, size: int) -> dict[str, Any]:
    limit = services.settings.limits.max_queue_metadata
    if size > limit:
        raise errors.InvalidBody(f"Queue metadata may be at most {limit} bytes; got {size}.")
    bodies.check("QueueMetadata", metadata, services.settings.limits, "The queue metadata")
    result: dict[str, Any] = metadata
    return result


def with_defaults(services: Services, metadata: Mapping[str, Any]) -> dict[str, Any]:
    """Metadata as Zaqar reports it: reserved keys filled in with their defaults."""
    merged = validation.reserved_defaults(services.settings.limits)
    merged.update(metadata)
    return merged


def _store(services: Services, caller: Caller, name: str) -> MessageStore | None:
    validation.queue_name(name, services.settings.limits)
    return services.pooling.lookup(project=caller.project, queue=name)


def ensure_queue(services: Services, caller: Caller, name: str, flavor: str | None = None) -> tuple[MessageStore, bool]:
    """The store of a queue, registering it on a pool when it is new (lazy creation)."""
    store = services.pooling.lookup(project=caller.project, queue=name)
    if store is not None:
        return store, False
    store, registered = services.pooling.register(project=caller.project, queue=name, flavor=flavor)
    if registered:
        try:
            listeners.restore(services, caller.project, name, store)
        except errors.Unavailable:
            services.pooling.unregister(project=caller.project, queue=name)
            raise
    return store, registered


def create_in_place(
    services: Services, caller: Caller, name: str, metadata: Mapping[str, Any], settings: QueueSettings,
    flavor: str | None = None,
) -> bool:
    """Place the queue (if new) and create it in its pool; True when it did not exist.

    A placement made here is undone when the pool write fails: nothing half-made is left.
    """
    store, registered = ensure_queue(services, caller, name, flavor)
    event_id = outbox.change_event_id(services)
    try:
        created = store.queue_create(project=caller.project, queue=name, metadata=metadata, settings=settings,
                                     event_id=event_id)
    except errors.Unavailable:
        if registered:
            services.pooling.unregister(project=caller.project, queue=name)
        raise
    outbox.after_change(services, store, caller.project, name, event_id if created else None)
    return created


def queue_create(
    services: Services, caller: Caller, name: str, metadata: Any, *, size: int = 0
) -> Outcome[bool]:
    """Create a queue; True when it is new. An existing queue is left unchanged."""
    validation.queue_name(name, services.settings.limits)
    metadata = _check_metadata(services, metadata if metadata is not None else {}, size)
    settings = _settings(services, metadata)
    flavor = metadata.get("_flavor")
    if flavor is not None and not services.pooling.catalog.flavor_exists(flavor):
        raise errors.InvalidBody(f"Flavor {flavor} does not exist.")
    return Outcome(create_in_place(services, caller, name, metadata, settings, flavor))


def queue_get(services: Services, caller: Caller, name: str) -> dict[str, Any]:
    """The queue's metadata with the reserved defaults filled in.

    v2 queues are lazy: a queue that does not exist reads as an empty one
    with the defaults (as upstream answers), so a name taken by another
    project looks exactly like a free one.
    """
    store = _store(services, caller, name)
    metadata = None if store is None else store.queue_get(project=caller.project, queue=name)
    return with_defaults(services, metadata or {})


def queue_delete(services: Services, caller: Caller, name: str) -> Outcome[None]:
    store = _store(services, caller, name)
    if store is None:
        return Outcome(None)
    event_id = outbox.change_event_id(services)
    store.queue_delete(project=caller.project, queue=name, event_id=event_id)
    services.pooling.unregister(project=caller.project, queue=name)
    outbox.after_change(services, store, caller.project, name, event_id)
    return Outcome(None)


def queue_stats(services: Services, caller: Caller, name: str) -> QueueStats | None:
    """Stats, or None when the queue does not exist (REST reports zeros then)."""
    store = _store(services, caller, name)
    if store is None:
        return None
    found = store.queue_stats(project=caller.project, queue=name)
    return QueueStats(claimed=found.claimed, free=max(0, found.total - found.claimed), total=found.total,
                      oldest=_stats_message(found, found.oldest), newest=_stats_message(found, found.newest))


def _stats_message(stats: Stats, record: MessageRecord | None) -> StatsMessage | None:
    if record is None:
        return None
    return StatsMessage(id=record.id, age=max(0, (stats.now_ms - record.created_ms) // 1000),
                        created_ms=record.created_ms)


def queue_purge(services: Services, caller: Caller, name: str, body: Any) -> Outcome[None]:
    """Remove the queue's messages (claimed ones too) and/or subscriptions; keep its metadata."""
    kinds = {"messages", "subscriptions"}
    if body is not None:
        bodies.check("Purge", body, services.settings.limits, "The purge request")
        kinds = set(body.get("resource_types", kinds))
    store = _store(services, caller, name)
    if "subscriptions" in kinds:  # subscriptions outlive their queue: purged even when it does not exist
        removed = services.subscriptions.delete_for_queue(project=caller.project, queue=name)
        listeners.lower(services, caller.project, name)
        trust_subscribers.release(services, caller, trust_subscribers.trusts_of(removed))
    if store is None:
        return Outcome(None)  # a queue that does not exist has no messages to purge (v2 queues are lazy)
    event_id = outbox.change_event_id(services)
    if "messages" in kinds:
        store.queue_purge(project=caller.project, queue=name, event_id=event_id, resource_types=sorted(kinds))
    elif event_id is not None:
        store.outbox_record(project=caller.project, queue=name, event_id=event_id, kind="queue.purged",
                            data={"resource_types": sorted(kinds)})
    outbox.after_change(services, store, caller.project, name, event_id)
    return Outcome(None)


def queue_list(
    services: Services,
    caller: Caller,
    *,
    marker: str | None,
    limit: int,
    detailed: bool,
    name: str | None,
    with_count: bool,
    filters: Mapping[str, Any],
) -> QueuePage:
    """Queues of the project sorted by name, across every pool."""
    catalog = services.pooling.catalog
    need_metadata = detailed or bool(filters)
    items: list[QueueItem] = []
    cursor = marker
    batch = max(limit, 20) if not filters else 100
    while len(items) < limit:
        rows = catalog.queue_names(project=caller.project, marker=cursor, limit=batch, name=name)
        if not rows:
            break
        cursor = rows[-1][0]
        metas = _metadata_for(services, caller, rows) if need_metadata else {}
        for queue, _pool in rows:
            meta = metas.get(queue) if need_metadata else None
            if need_metadata and meta is None:
                continue  # registered but gone from its pool: being deleted
            if filters and not all(meta is not None and meta.get(k) == v for k, v in filters.items()):
                continue
            full = with_defaults(services, meta) if detailed and meta is not None else None
            items.append(QueueItem(queue, full, meta if detailed else None))
            if len(items) == limit:
                break
        if len(rows) < batch:
            break
    count = catalog.queue_count(project=caller.project) if with_count else None
    next_marker = items[-1].name if items else None
    return QueuePage(items, next_marker, count)


def _metadata_for(services: Services, caller: Caller, rows: list[tuple[str, str]]) -> dict[str, dict[str, Any] | None]:
    by_pool: dict[str, list[str]] = {}
    for queue, pool in rows:
        by_pool.setdefault(pool, []).append(queue)
    found: dict[str, dict[str, Any] | None] = {}
    for pool, names in by_pool.items():
        metas = services.pooling.store(pool).queue_get_many(project=caller.project, queues=names)
        found.update(zip(names, metas, strict=True))
    return found


# -- PATCH with JSON patch --------------------------------------------------


def apply_patch(current: Mapping[str, Any], patch: Any, limits: Limits) -> dict[str, Any]:
    """Apply add/replace/remove operations on /metadata/<key>; all or nothing."""
    bodies.check("JsonPatch", patch, limits, "The patch")
    result = dict(current)
    for op in patch:
        kind = op["op"]
        key = op["path"][len("/metadata/"):].replace("~1", "/").replace("~0", "~")
        if kind in {"add", "replace"}:
            if kind == "replace" and key not in result and not key.startswith("_"):
                raise errors.Conflict(f"Cannot replace metadata key {key!r}: it does not exist.")
            result[key] = op["value"]
        elif kind == "remove":
            if key not in result:
                if key.startswith("_"):
                    continue  # removing a reserved key restores its default
                raise errors.Conflict(f"Cannot remove metadata key {key!r}: it does not exist.")
            del result[key]
    return result


def check_patch_media_type(content_type: str | None) -> None:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    if media != PATCH_MEDIA_TYPE:
        raise errors.UnsupportedMediaType(
            f"Queue updates must be sent as {PATCH_MEDIA_TYPE}; got {media or 'no content type'}."
        )


def queue_update(services: Services, caller: Caller, name: str, patch: Any, *, size: int) -> Outcome[dict[str, Any]]:
    """Apply a JSON patch to the metadata and return the whole, updated metadata."""
    store = _store(services, caller, name)
    current = None if store is None else store.queue_get(project=caller.project, queue=name)
    if store is None or current is None:
        raise errors.QueueNotFound(project=caller.project, queue=name)
    updated = apply_patch(current, patch, services.settings.limits)
    encoded = len(json.dumps(updated).encode())
    _check_metadata(services, updated, max(size, encoded))
    settings = _settings(services, updated)
    if updated.get("_flavor") != current.get("_flavor"):
        raise errors.InvalidBody("Changing _flavor of an existing queue is not supported yet.")
    event_id = outbox.change_event_id(services)
    if not store.queue_set(project=caller.project, queue=name, metadata=updated, settings=settings,
                           event_id=event_id):
        raise errors.QueueNotFound(project=caller.project, queue=name)
    outbox.after_change(services, store, caller.project, name, event_id)
    return Outcome(with_defaults(services, updated))


def metadata_filters(params: Mapping[str, str], known: set[str]) -> dict[str, Any]:
    """Query parameters that are not options filter on metadata (numbers as ints)."""
    filters: dict[str, Any] = {}
    for key, raw in params.items():
        if key in known:
            continue
        try:
            filters[key] = int(raw)
        except ValueError:
            filters[key] = raw
    return filters
