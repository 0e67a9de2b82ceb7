"""Pools and flavors: the operator's side of placement."""

from __future__ import annotations

import logging
from typing import Any

from chalicelib import errors
from chalicelib.api import bodies, validation
from chalicelib.api.context import Services
from chalicelib.storage.pools import Pool

log = logging.getLogger(__name__)


def _inventory(services: Services) -> Any:
    from chalicelib.storage.inventory import Inventory

    return Inventory(services.pooling.catalog)


def _name(kind: str, name: str) -> str:
    if not name or len(name) > 64 or not validation.QUEUE_NAME.match(name):
        raise errors.Invalid(f"{kind} names may only contain ASCII letters, digits, '_', '-' and '.', up to 64.")
    return name


def _reachable(services: Services, uri: str) -> None:
    from chalicelib.storage.pooling import open_store

    try:
        store = open_store(uri)  # InvalidBody for a malformed URI, a scheme no driver serves or a standalone MongoDB
    except errors.Unavailable:
        raise errors.InvalidBody(f"Cannot connect to {uri}: the pool was not registered.") from None
    except errors.ServiceError:
        raise
    except Exception as exc:  # the driver's own parser refused what uri_problem let through
        log.warning("pool URI %r refused by its driver: %s", uri[:80], exc)
        raise errors.InvalidBody(f"Pool URI {uri[:80]!r} is not usable: {exc}."[:400]) from None
    try:
        if not store.ping():
            raise errors.InvalidBody(f"Cannot connect to {uri}: the pool was not registered.")
    finally:
        store.close()


def _pool_fields(services: Services, body: Any, *, partial: bool) -> dict[str, Any]:
    bodies.check("PoolPatch" if partial else "Pool", body, services.settings.limits,
                 "The pool update" if partial else "The pool")
    fields: dict[str, Any] = {key: bodies.whole(body[key]) for key in ("weight", "options") if key in body}
    if "uri" in body:
        uri = body["uri"]
        from chalicelib.storage.pooling import uri_problem

        problem = uri_problem(uri)
        if problem is not None:
            raise errors.InvalidBody(f"uri {uri[:80]!r} is not a usable pool URI: {problem}.")
        fields["uri"] = uri
    if "flavor" in body:
        flavor = body["flavor"]
        if flavor is not None:
            _name("Flavor", flavor)
            if not services.pooling.catalog.flavor_exists(flavor):
                raise errors.InvalidBody(f"Flavor {flavor} does not exist.")
        fields["flavor"] = flavor
    if "uri" in fields:
        _reachable(services, fields["uri"])  # last: the only check that connects to anything
    return fields


def pool_view(pool: Pool, *, detailed: bool) -> dict[str, Any]:
    view: dict[str, Any] = {"name": pool.name, "href": f"/v2/pools/{pool.name}", "weight": pool.weight,
                            "uri": pool.uri, "flavor": pool.flavor}
    if detailed:
        view["options"] = pool.options
    return view


def pool_list(services: Services, *, marker: str | None, limit: int) -> list[Pool]:
    found: list[Pool] = _inventory(services).pool_page(marker=marker, limit=limit)
    return found


def pool_get(services: Services, name: str) -> Pool:
    found: Pool | None = _inventory(services).pool_get(_name("Pool", name))
    if found is None:
        raise errors.NotFound(f"Pool {name} does not exist.")
    return found


def pool_create(services: Services, name: str, body: Any) -> None:
    name = _name("Pool", name)  # before the fields: their last check connects to the pool
    fields = _pool_fields(services, body, partial=False)
    pool = Pool(name, fields["uri"], fields["weight"], fields.get("flavor"), fields.get("options", {}))
    _inventory(services).pool_create(pool)
    services.pooling.refresh()


def pool_update(services: Services, name: str, body: Any) -> Pool:
    name = _name("Pool", name)
    fields = _pool_fields(services, body, partial=True)
    updated: Pool | None = _inventory(services).pool_update(name, fields)
    if updated is None:
        raise errors.NotFound(f"Pool {name} does not exist.")
    services.pooling.refresh()
    return updated


def pool_delete(services: Services, name: str) -> None:
    _inventory(services).pool_delete(_name("Pool", name))
    services.pooling.refresh()


# -- flavors ------------------------------------------------------------------------


def capabilities(services: Services, pool_names: list[str]) -> list[str]:
    """What every pool of a flavor offers (FIFO, CLAIMS, DURABILITY, AOD, HIGH_THROUGHPUT)."""
    sets = [services.pooling.store(name).capabilities for name in pool_names]
    return sorted(frozenset.intersection(*sets)) if sets else []


def flavor_view(services: Services, flavor: dict[str, Any], *, detailed: bool = True) -> dict[str, Any]:
    view: dict[str, Any] = {"name": flavor["name"], "href": f"/v2/flavors/{flavor['name']}",
                            "pool_list": flavor["pool_list"]}
    if detailed:
        view["capabilities"] = capabilities(services, flavor["pool_list"])
    return view


def _flavor_fields(services: Services, body: Any, *, partial: bool) -> tuple[list[str] | None, dict[str, Any] | None]:
    bodies.check("FlavorPatch" if partial else "Flavor", body, services.settings.limits,
                 "The flavor update" if partial else "The flavor")
    pool_list, caps = body.get("pool_list"), body.get("capabilities")
    if partial and pool_list is None and caps is None:
        raise errors.InvalidBody("Say what to change: pool_list or capabilities.")
    return pool_list, caps


def flavor_list(services: Services, *, marker: str | None, limit: int) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = _inventory(services).flavor_page(marker=marker, limit=limit)
    return found


def flavor_get(services: Services, name: str) -> dict[str, Any]:
    found: dict[str, Any] | None = _inventory(services).flavor_get(_name("Flavor", name))
    if found is None:
        raise errors.NotFound(f"Flavor {name} does not exist.")
    return found


def flavor_create(services: Services, name: str, body: Any) -> None:
    pool_list, caps = _flavor_fields(services, body, partial=False)
    assert pool_list is not None
    _inventory(services).flavor_put(_name("Flavor", name), pool_list=pool_list, capabilities=caps or {}, create=True)
    services.pooling.refresh()


def flavor_update(services: Services, name: str, body: Any) -> dict[str, Any]:
    current = flavor_get(services, name)
    pool_list, caps = _flavor_fields(services, body, partial=True)
    _inventory(services).flavor_put(
        name, pool_list=pool_list if pool_list is not None else current["pool_list"],
        capabilities=caps if caps is not None else current["capabilities"], create=False,
    )
    services.pooling.refresh()
    return flavor_get(services, name)


def flavor_delete(services: Services, name: str) -> None:
    _inventory(services).flavor_delete(_name("Flavor", name))
    services.pooling.refresh()
