"""What the queue-stats and subscription operations hand the transports: their own view types, converted from
what the pool and the subscription store keep (over in-memory stand-ins for those)."""

from __future__ import annotations

import time
from typing import Any

from chalicelib.api import queues, subscriptions
from chalicelib.api.context import Caller, Services
from chalicelib.config import Settings
from chalicelib.events.model import NullSink
from chalicelib.storage import base

CALLER = Caller(project="3f1c6a2e9b7d4e0a8c5b1d2f4a6e8c0b", client_id="00000000-0000-4000-8000-000000000001")
POOL_NOW_MS = 1_700_000_000_000  # the pool's clock, far from the container's


def _record(mid: str, created_ms: int) -> base.MessageRecord:
    return base.MessageRecord(id=mid, marker=1, ttl=300, created_ms=created_ms, expires_ms=created_ms + 300_000,
                              body="{}", encrypted=False)


class FakeStore:
    def __init__(self, stats: base.Stats) -> None:
        self.stats = stats

    def queue_stats(self, *, project: str, queue: str) -> base.Stats:
        return self.stats


class FakePooling:
    def __init__(self, stores: dict[str, FakeStore]) -> None:
        self.stores = stores

    def lookup(self, *, project: str, queue: str) -> FakeStore | None:
        return self.stores.get(queue)


class FakeSubscriptions:
    def __init__(self, items: list[base.Subscription]) -> None:
        self.items = items

    def get(self, *, project: str, queue: str, sid: str, now_ms: int) -> base.Subscription | None:
        return next((s for s in self.items if s.id == sid), None)

    def page(self, *, project: str, queue: str, marker: str | None, limit: int, now_ms: int) -> list[base.Subscription]:
        return self.items[:limit]


def _services(pooling: Any = None, subscription_store: Any = None) -> Services:
    return Services(settings=Settings.from_mapping({}), pooling=pooling, subscriptions=subscription_store,
                    connections=None, deliveries=None, sink=NullSink())  # type: ignore[arg-type]


def test_stats_count_free_messages_and_age_the_ends_by_the_pool_s_clock() -> None:
    stats = base.Stats(total=3, claimed=1, oldest=_record("m1", POOL_NOW_MS - 90_500),
                       newest=_record("m3", POOL_NOW_MS - 999), now_ms=POOL_NOW_MS)
    services = _services(FakePooling({"q1": FakeStore(stats)}))
    assert queues.queue_stats(services, CALLER, "q1") == queues.QueueStats(
        claimed=1, free=2, total=3,
        oldest=queues.StatsMessage(id="m1", age=90, created_ms=POOL_NOW_MS - 90_500),
        newest=queues.StatsMessage(id="m3", age=0, created_ms=POOL_NOW_MS - 999),
    )


def test_stats_of_an_empty_queue_have_no_ends_and_of_a_missing_queue_are_none() -> None:
    empty = base.Stats(total=0, claimed=0, oldest=None, newest=None, now_ms=POOL_NOW_MS)
    services = _services(FakePooling({"q1": FakeStore(empty)}))
    assert queues.queue_stats(services, CALLER, "q1") == queues.QueueStats(0, 0, 0, None, None)
    assert queues.queue_stats(services, CALLER, "missing") is None


def test_free_messages_are_never_counted_below_zero() -> None:
    """A claim counted while its messages expired: more claimed than live."""
    skewed = base.Stats(total=1, claimed=2, oldest=None, newest=None, now_ms=POOL_NOW_MS)
    found = queues.queue_stats(_services(FakePooling({"q1": FakeStore(skewed)})), CALLER, "q1")
    assert found is not None and found.free == 0


def _subscription(sid: str, created_ms: int) -> base.Subscription:
    return base.Subscription(id=sid, project=CALLER.project, queue="q1", subscriber="http://example.test/hook",
                             ttl=3600, options={"a": 1}, created_ms=created_ms, expires_ms=created_ms + 3_600_000,
                             confirmed=True, connection=None)


def test_a_subscription_is_shown_with_its_age_and_without_what_only_storage_keeps() -> None:
    created = int(time.time() * 1000) - 42_200
    services = _services(subscription_store=FakeSubscriptions([_subscription("s1", created)]))
    assert subscriptions.subscription_get(services, CALLER, "q1", "s1") == subscriptions.Subscription(
        id="s1", queue="q1", subscriber="http://example.test/hook", ttl=3600, age=42, options={"a": 1},
        confirmed=True,
    )


def test_a_subscription_made_after_now_by_a_skewed_clock_is_zero_seconds_old() -> None:
    future = int(time.time() * 1000) + 5_000
    services = _services(subscription_store=FakeSubscriptions([_subscription("s1", future)]))
    page = subscriptions.subscription_list(services, CALLER, "q1", marker=None, limit=10)
    assert [s.age for s in page.items] == [0] and page.next_marker == "s1"
