"""Routing (project, queue) to the pool that holds it.

Placements come from the catalog and are cached per container for a short
time (``CATALOG_CACHE_TTL``, 10 s as upstream); a queue that is not
registered is not cached, so a queue created by another container is seen
at once. Drivers are built once per pool URI and reused across invocations.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from chalicelib import errors
from chalicelib.storage.base import MessageStore
from chalicelib.storage.pools import DEFAULT_POOL, Pool

if TYPE_CHECKING:
    from chalicelib.storage.catalog import Catalog


def open_store(uri: str) -> MessageStore:
    """A driver for a pool URI, chosen by its scheme."""
    scheme = uri.split(":", 1)[0].lower()
    if scheme in {"redis", "rediss", "unix"}:
        from chalicelib.storage.redis.driver import RedisStore

        return RedisStore(uri)
    if scheme in {"mongodb", "mongodb+srv"}:
        from chalicelib.storage.mongodb.driver import MongoStore

        return MongoStore(uri)
    raise errors.InvalidBody(
        f"Pool URI scheme {scheme!r} is not supported (use redis, rediss, unix, mongodb or mongodb+srv)."
    )


def choose_weighted(candidates: list[Pool], rng: Callable[[int, int], int]) -> Pool | None:
    """Pick a pool with probability proportional to its weight; weight 0 is never picked."""
    live = [pool for pool in candidates if pool.weight > 0]
    total = sum(pool.weight for pool in live)
    if total == 0:
        return None
    point = rng(0, total - 1)
    for pool in live:
        if point < pool.weight:
            return pool
        point -= pool.weight
    return live[-1]


class Pooling:
    def __init__(
        self,
        catalog: Catalog,
        *,
        cache_ttl: float,
        opener: Callable[[str], MessageStore] = open_store,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.catalog = catalog
        self._ttl = cache_ttl
        self._open = opener
        self._clock = clock
        self._lock = threading.Lock()
        self._placements: dict[tuple[str, str], tuple[str, float]] = {}
        self._pools: tuple[dict[str, Pool], float] | None = None
        self._stores: dict[str, MessageStore] = {}

    # -- pools ------------------------------------------------------------

    def pools(self) -> dict[str, Pool]:
        cached = self._pools
        if cached is not None and cached[1] > self._clock():
            return cached[0]
        found = {pool.name: pool for pool in self.catalog.pool_list()}
        self._pools = (found, self._clock() + self._ttl)
        return found

    def store(self, pool_name: str) -> MessageStore:
        pool = self.pools().get(pool_name)
        if pool is None:
            self._pools = None
            pool = self.pools().get(pool_name)
        if pool is None:
            raise errors.Unavailable(f"Pool {pool_name} is registered for a queue but missing from the catalog.")
        with self._lock:
            store = self._stores.get(pool.uri)
            if store is None:
                try:
                    store = self._open(pool.uri)
                except errors.Invalid as exc:  # a registered pool that cannot be opened: our configuration
                    raise errors.Unavailable(f"Pool {pool.name} cannot be used: {exc.description}") from None
                self._stores[pool.uri] = store
        return store

    # -- placement --------------------------------------------------------

    def lookup(self, *, project: str, queue: str) -> MessageStore | None:
        """The store holding the queue, or None when the queue is not registered."""
        key = (project, queue)
        hit = self._placements.get(key)
        if hit is not None and hit[1] > self._clock():
            return self.store(hit[0])
        pool = self.catalog.lookup(project=project, queue=queue)
        if pool is None:
            self._placements.pop(key, None)
            return None
        self._placements[key] = (pool, self._clock() + self._ttl)
        return self.store(pool)

    def register(self, *, project: str, queue: str, flavor: str | None = None) -> tuple[MessageStore, bool]:
        """Place a new queue on a pool (weighted among its flavor's pools).

        Returns its store and whether this call placed it.
        """
        candidates = [pool for pool in self.pools().values() if pool.flavor == flavor]
        chosen = choose_weighted(candidates, random.randint)
        if chosen is None:
            if flavor is not None:
                raise errors.Invalid(f"Flavor {flavor} has no pool with a positive weight.")
            chosen = self.pools().get(DEFAULT_POOL)
        if chosen is None:
            raise errors.Unavailable("No message pool is configured.")
        pool, created = self.catalog.register(project=project, queue=queue, pool=chosen.name, flavor=flavor)
        self._placements[(project, queue)] = (pool, self._clock() + self._ttl)
        return self.store(pool), created

    def refresh(self) -> None:
        """Forget the cached pool list (after the admin API changed it)."""
        self._pools = None

    def forget(self, *, project: str, queue: str) -> None:
        self._placements.pop((project, queue), None)

    def unregister(self, *, project: str, queue: str) -> None:
        self.catalog.unregister(project=project, queue=queue)
        self.forget(project=project, queue=queue)

    def close(self) -> None:
        for store in self._stores.values():
            store.close()
        self._stores.clear()
        self.catalog.close()
