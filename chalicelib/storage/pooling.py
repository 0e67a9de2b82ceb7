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


SCHEMES = ("redis", "rediss", "unix", "mongodb", "mongodb+srv")


def _port_problem(port: str) -> str | None:
    if not port.isascii() or not port.isdigit():
        return f"the port {port[:20]!r} is not a number"
    if not 1 <= int(port) <= 65535:
        return f"the port {int(port) if len(port) < 10 else port[:10] + '...'} is outside 1..65535"
    return None


def _host_problem(host_port: str, *, port_allowed: bool = True) -> str | None:
    """One ``host[:port]`` of a pool URI: a name or a bracketed IPv6 address, and a port in range."""
    import ipaddress

    if host_port.startswith("["):
        end = host_port.find("]")
        if end == -1:
            return "an IPv6 address lacks its closing bracket"
        try:
            ipaddress.IPv6Address(host_port[1:end].split("%", 1)[0])
        except ValueError:
            return f"{host_port[: end + 1][:60]!r} is not an IPv6 address"
        host, rest = host_port[: end + 1], host_port[end + 1 :]
        if rest and not rest.startswith(":"):
            return f"{rest[:20]!r} follows the IPv6 address"
        port = rest[1:] if rest else None
    else:
        host, _, port_text = host_port.partition(":")
        port = port_text if ":" in host_port else None
        if not host:
            return "a host is empty"
        if any(c in "[]" for c in host_port):
            return "a bracket is not around an IPv6 address"
    if port is not None:
        if not port_allowed:
            return "mongodb+srv URIs take no port"
        return _port_problem(port)
    return None


def uri_problem(uri: str) -> str | None:
    """Why ``uri`` cannot be a pool URI (malformed, or a scheme no driver serves), or None.

    Checked before any driver sees it: a driver's own parser fails in its own ways."""
    if not uri or any(c.isspace() or ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in uri):
        return "the URI is empty or contains a space or a control character"
    scheme, colon, rest = uri.partition(":")
    if not colon or scheme.lower() not in SCHEMES:
        return (f"the scheme {scheme[:20]!r} is not supported (use redis, rediss, unix, mongodb or mongodb+srv)"
                if colon else "the URI has no scheme (use redis, rediss, unix, mongodb or mongodb+srv)")
    scheme = scheme.lower()
    if not rest.startswith("//"):
        return f"a {scheme} URI starts with {scheme}://"
    authority = rest[2:].split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    path = rest[2 + len(authority):].split("?", 1)[0]
    if scheme == "unix":
        return None if path.strip("/") else "a unix URI names the socket's path (unix:///path/to/redis.sock)"
    hosts = authority.rpartition("@")[2]
    if not hosts:
        return "the URI names no host"
    if scheme.startswith("redis"):
        problem = _host_problem(hosts)
        if problem is None and path.strip("/") and not (path.strip("/").isascii() and path.strip("/").isdigit()):
            problem = f"the database {path.strip('/')[:20]!r} is not a number"
        return problem
    listed = hosts.split(",")
    if scheme == "mongodb+srv" and len(listed) > 1:
        return "a mongodb+srv URI names exactly one host"
    for host in listed:
        problem = _host_problem(host, port_allowed=scheme == "mongodb")
        if problem is not None:
            return problem
    return None


def open_store(uri: str) -> MessageStore:
    """A driver for a pool URI, chosen by its scheme."""
    problem = uri_problem(uri)
    if problem is not None:
        raise errors.InvalidBody(f"Pool URI {uri[:80]!r} is not usable: {problem}.")
    scheme = uri.split(":", 1)[0].lower()
    if scheme in {"redis", "rediss", "unix"}:
        from chalicelib.storage.redis.driver import RedisStore

        return RedisStore(uri)
    if scheme in {"mongodb", "mongodb+srv"}:
        from chalicelib.storage.mongodb.driver import MongoStore

        return MongoStore(uri)
    raise errors.InvalidBody(  # not reached: uri_problem refuses other schemes
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
