"""Subscriptions in the catalog, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from chalicelib import errors
from chalicelib.storage.catalog import Catalog
from chalicelib.storage.subscriptions import SubscriptionStore

NOW = 1_800_000_000_000


def make(store: SubscriptionStore, subscriber: str, *, now: int = NOW, ttl: int = 60, queue: str = "q",
         connection: str | None = None) -> str:
    subscription, created = store.create(project="p", queue=queue, subscriber=subscriber, ttl=ttl, options={"a": 1},
                                         confirmed=False, connection=connection, now_ms=now)
    assert created
    return subscription.id


def test_one_live_subscription_per_subscriber_and_expired_ones_are_replaced(catalog: Catalog) -> None:
    store = SubscriptionStore(catalog)
    first = make(store, "http://h/a")
    again, created = store.create(project="p", queue="q", subscriber="http://h/a", ttl=60, options={},
                                  confirmed=False, connection=None, now_ms=NOW + 1)
    assert (again.id, created) == (first, False)
    later = NOW + 61_000
    replaced = make(store, "http://h/a", now=later)
    assert replaced != first
    assert store.get(project="p", queue="q", sid=first, now_ms=later) is None


def test_listing_is_oldest_first_and_skips_expired(catalog: Catalog) -> None:
    store = SubscriptionStore(catalog)
    ids = [make(store, f"http://h/{i}", now=NOW + i, ttl=60 + i) for i in range(4)]
    assert [s.id for s in store.page(project="p", queue="q", marker=None, limit=10, now_ms=NOW)] == ids
    assert [s.id for s in store.page(project="p", queue="q", marker=ids[1], limit=10, now_ms=NOW)] == ids[2:]
    assert [s.id for s in store.page(project="p", queue="q", marker=None, limit=10, now_ms=NOW + 61_500)] == ids[2:]


def test_update_resets_expiry_and_refuses_a_taken_subscriber(catalog: Catalog) -> None:
    store = SubscriptionStore(catalog)
    make(store, "http://h/a")
    sid = make(store, "http://h/b")
    updated = store.update(project="p", queue="q", sid=sid, changes={"ttl": 600, "options": {}}, now_ms=NOW + 1000)
    assert updated is not None and updated.expires_ms == NOW + 601_000 and updated.options == {}
    with pytest.raises(errors.Conflict):
        store.update(project="p", queue="q", sid=sid, changes={"subscriber": "http://h/a"}, now_ms=NOW)
    assert store.update(project="p", queue="q", sid="missing", changes={"ttl": 60}, now_ms=NOW) is None


def test_deleting_by_connection_queue_and_expiry(catalog: Catalog) -> None:
    store = SubscriptionStore(catalog)
    mine = make(store, "websocket:conn-1", connection="conn-1")
    make(store, "websocket:conn-2", connection="conn-2")
    make(store, "http://h/other", queue="q2", ttl=1)
    assert [s.id for s in store.delete_for_connection("conn-1")] == [mine]
    assert len(store.delete_expired(now_ms=NOW + 2000)) == 1
    assert len(store.delete_for_queue(project="p", queue="q")) == 1
    assert store.page(project="p", queue="q", marker=None, limit=10, now_ms=NOW) == []


def test_confirm_flips_the_flag(catalog: Catalog) -> None:
    store = SubscriptionStore(catalog)
    sid = make(store, "mailto:a@h")
    confirmed = store.confirm(project="p", queue="q", sid=sid, confirmed=True, now_ms=NOW)
    assert confirmed is not None and confirmed.confirmed
    assert [s.id for s in store.live_for_queue(project="p", queue="q", now_ms=NOW)] == [sid]
