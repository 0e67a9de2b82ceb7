"""The SQL catalog on a real SQLite file and on the running PostgreSQL."""

from __future__ import annotations

import threading

from chalicelib.storage.catalog import Catalog
from chalicelib.storage.pooling import Pooling


def test_migrations_are_idempotent(catalog: Catalog) -> None:
    catalog.migrate()
    assert [p.name for p in catalog.pool_list()] == ["default"]


def test_ensure_pool_follows_the_configured_uri(catalog: Catalog) -> None:
    catalog.ensure_pool("default", "redis://127.0.0.1:6379/12")
    assert catalog.pool_list()[0].uri == "redis://127.0.0.1:6379/12"


def test_register_places_once_and_reports_the_winner(catalog: Catalog) -> None:
    assert catalog.register(project="p", queue="q", pool="default") == ("default", True)
    assert catalog.register(project="p", queue="q", pool="default") == ("default", False)
    assert catalog.lookup(project="p", queue="q") == "default"
    assert catalog.lookup(project="other", queue="q") is None


def test_concurrent_registrations_agree_on_one_placement(catalog: Catalog) -> None:
    results: list[tuple[str, bool]] = []

    def register() -> None:
        results.append(catalog.register(project="p", queue="raced", pool="default"))

    threads = [threading.Thread(target=register) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(created for _pool, created in results) == 1
    assert {pool for pool, _created in results} == {"default"}


def test_queue_names_page_in_name_order_per_project(catalog: Catalog) -> None:
    for name in ["b", "a", "d", "c"]:
        catalog.register(project="p", queue=name, pool="default")
    catalog.register(project="p2", queue="zzz", pool="default")
    assert [n for n, _ in catalog.queue_names(project="p", marker=None, limit=3)] == ["a", "b", "c"]
    assert [n for n, _ in catalog.queue_names(project="p", marker="c", limit=3)] == ["d"]
    assert catalog.queue_count(project="p") == 4
    catalog.unregister(project="p", queue="a")
    assert catalog.queue_count(project="p") == 3
    assert [q for _p, q, _pool in catalog.all_queues(after=("p", "c"), limit=10)] == ["d", "zzz"]


def test_long_project_ids_are_stored_whole(catalog: Catalog) -> None:
    project = "x" * 256
    catalog.register(project=project, queue="q", pool="default")
    assert catalog.lookup(project=project, queue="q") == "default"


def test_placement_cache_expires_and_forgets_deleted_queues(catalog: Catalog) -> None:
    now = [0.0]
    opened: list[str] = []

    def opener(uri: str) -> object:
        opened.append(uri)
        return object()

    pooling = Pooling(catalog, cache_ttl=10, opener=opener, clock=lambda: now[0])  # type: ignore[arg-type]
    assert pooling.lookup(project="p", queue="q") is None
    pooling.register(project="p", queue="q")
    catalog.unregister(project="p", queue="q")
    assert pooling.lookup(project="p", queue="q") is not None  # cached placement
    now[0] = 11.0
    assert pooling.lookup(project="p", queue="q") is None
    assert opened == ["redis://127.0.0.1:6379/13"]


def test_deleting_both_pools_of_a_flavor_at_once_keeps_one(catalog: Catalog) -> None:
    from chalicelib import errors
    from chalicelib.storage.inventory import Inventory
    from chalicelib.storage.pools import Pool

    inventory = Inventory(catalog)
    for name in ("pair-a", "pair-b"):
        inventory.pool_create(Pool(name, f"redis://127.0.0.1:6379/13?{name}=1", 1, None, {}))
    inventory.flavor_put("pair", pool_list=["pair-a", "pair-b"], capabilities={}, create=True)
    start = threading.Barrier(2)
    outcomes: dict[str, str] = {}

    def delete(name: str) -> None:
        start.wait()
        try:
            inventory.pool_delete(name)
            outcomes[name] = "deleted"
        except errors.PoolInUseByFlavor:
            outcomes[name] = "refused"
        except errors.Unavailable:  # SQLite: the later writer's snapshot is stale, it gives up
            outcomes[name] = "retry"

    threads = [threading.Thread(target=delete, args=(name,)) for name in ("pair-a", "pair-b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes.values()) in (["deleted", "refused"], ["deleted", "retry"])
    assert len(inventory.flavor_pools("pair")) == 1
