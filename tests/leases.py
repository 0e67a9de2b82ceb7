"""What PUBLISH_LEASE_MS of silence from a lease's holder does, without waiting for it (each driver's own
place for the lease's expiry)."""

from __future__ import annotations

from chalicelib.storage import base


def expire_lease(store: base.MessageStore, project: str, queue: str) -> None:
    from chalicelib.storage.mongodb.driver import MongoStore, queue_id

    if isinstance(store, MongoStore):
        store._heads.update_one({"_id": queue_id(project, queue)}, {"$set": {"le": 0}})
        return
    from chalicelib.storage.redis import keys

    store._client.hset(keys.queue_keys(project, queue).l, "le", 0)  # type: ignore[attr-defined]
