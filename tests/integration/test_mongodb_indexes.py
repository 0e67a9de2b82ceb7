"""Every query the MongoDB driver makes is served by an index (``explain`` on a real MongoDB: set
MONGODB_URL). The wire-protocol server the other tests use plans its queries in SQLite, so it cannot
show this."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib.storage.base import Idempotency, NewMessage, QueueSettings
from chalicelib.storage.mongodb.driver import MongoStore, _key

pytestmark = pytest.mark.mongodb
Q = "orders"


@pytest.fixture
def store(real_mongodb_url: str) -> Iterator[MongoStore]:
    driver = MongoStore(real_mongodb_url, unreliable=True)
    yield driver
    driver.close()


def _stages(plan: Any) -> list[dict[str, Any]]:
    found = []
    stack = [plan]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if "stage" in node:
                found.append(node)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


def _index_used(cursor: Any) -> set[str]:
    stages = _stages(cursor.explain()["queryPlanner"]["winningPlan"])
    assert not [s for s in stages if s["stage"] == "COLLSCAN"], stages
    return {s["indexName"] for s in stages if s["stage"] == "IXSCAN"}


def test_each_query_shape_uses_its_index(store: MongoStore) -> None:
    project = f"p-{uuid.uuid4().hex[:8]}"
    store.queue_create(project=project, queue=Q, metadata={}, settings=QueueSettings())
    for n in range(30):
        store.message_post(project=project, queue=Q, messages=[NewMessage(uuid.uuid4().hex, f'"{n}"', None, None)],
                           client_id="c", create=True, encrypted=False, request_size=1, default_ttl=3600, event_id=None)
    scope = {"p": project, "q": Q}
    batches = store._batches
    assert _index_used(batches.find({**scope, "k": {"$gte": 0}, "n": {"$gt": 0}}).sort("k", 1)) == {"marker"}
    assert _index_used(batches.find(store._holding(project, Q, ["a", "b"]))) == {"message"}
    assert _index_used(batches.find({**scope, "m": {"$elemMatch": {"c": "claim"}}})) == {"claim"}
    assert _index_used(batches.find({**scope, "es": {"$exists": True}}).sort("es", 1)) == {"event"}
    assert _index_used(batches.find({**scope, "m": {"$elemMatch": {"dl": {"$exists": True}}}})) == {"dead_letter"}
    assert _index_used(batches.find({**scope, "m": {"$elemMatch": {"em": {"$lte": 0}}}})) == {"expiry"}
    assert _index_used(store._outbox.find(scope).sort("s", 1)) == {"sequence"}
    # keyed posts: the binding's lookup, the emptied keyed batches gc turns into tombstones, the tombstones it removes
    store.message_post(project=project, queue=Q, messages=[NewMessage(uuid.uuid4().hex, '"keyed"', None, None)],
                       client_id="c", create=True, encrypted=False, request_size=1, default_ttl=3600, event_id=None,
                       idempotency=Idempotency("k1", "d1", 300_000))
    assert _index_used(batches.find({"ik": _key(project, Q, "k1")})) == {"idempotency"}
    assert _index_used(batches.find({**scope, "n": 0, "cr": {"$lt": 0}, "es": {"$exists": False},
                                     "k": {"$gt": 0, "$lt": 40}})) == {"marker"}
    assert _index_used(batches.find({**scope, "k": {"$lte": -1}})) == {"marker"}
    assert _index_used(store._outbox.find({"w": {"$lte": 0}})) == {"written"}
    store.queue_delete(project=project, queue=Q)
