"""Liveness and health of the catalog and the pools."""

from __future__ import annotations

from typing import Any

from chalicelib.api.context import Services


def ping(services: Services) -> bool:
    """True when the catalog and every pool answer."""
    pooling = services.pooling
    if not pooling.catalog.ping():
        return False
    return all(pooling.store(name).ping() for name in pooling.pools())


def health(services: Services) -> dict[str, Any]:
    pooling = services.pooling
    report: dict[str, Any] = {"catalog_reachable": pooling.catalog.ping()}
    if not report["catalog_reachable"]:
        return report
    for name, pool in sorted(pooling.pools().items()):
        report[name] = {"storage_reachable": pooling.store(name).ping(), "weight": pool.weight, "flavor": pool.flavor}
    return report
