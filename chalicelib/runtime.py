"""The services of this container, built once on first use and reused while warm."""

from __future__ import annotations

import threading

from chalicelib import errors
from chalicelib.api.context import Services
from chalicelib.config import Settings, get_settings
from chalicelib.events.model import EventSink, NullSink

_lock = threading.Lock()
_services: Services | None = None


def build(settings: Settings, sink: EventSink | None = None) -> Services:
    """Open the catalog (migrating it when allowed) and register the default pool."""
    from sqlalchemy import exc as sa_exc

    from chalicelib.storage.catalog import DEFAULT_POOL, Catalog, sql_errors
    from chalicelib.storage.connections import ConnectionStore
    from chalicelib.storage.deliveries import DeliveryLog
    from chalicelib.storage.pooling import Pooling
    from chalicelib.storage.state import StateRedis
    from chalicelib.storage.subscriptions import SubscriptionStore

    try:
        catalog = Catalog(settings.catalog_url)
    except (sa_exc.ArgumentError, ImportError) as exc:  # a URL no engine can be made for, or a missing driver
        raise errors.NotConfigured(f"CATALOG_URL is not usable ({type(exc).__name__}).") from exc
    try:
        if settings.catalog_auto_migrate:
            with sql_errors("The catalog database could not be reached to bring its tables up to date."):
                catalog.migrate()
        catalog.ensure_pool(DEFAULT_POOL, settings.pool_url)  # NotConfigured when the tables are missing
    except BaseException:
        catalog.close()
        raise
    pooling = Pooling(catalog, cache_ttl=settings.catalog_cache_ttl)
    state = StateRedis(settings.state_url or settings.pool_url)
    return Services(
        settings=settings,
        pooling=pooling,
        subscriptions=SubscriptionStore(catalog),
        connections=ConnectionStore(state),
        deliveries=DeliveryLog(state),
        sink=sink or _sink(settings),
    )


def migrate(settings: Settings) -> None:
    """Bring the catalog's tables up to date. Needs the settings and the catalog only: :func:`build` opens
    the default pool through the catalog, which a fresh catalog cannot do yet."""
    from chalicelib.storage.catalog import Catalog, sql_errors

    catalog = Catalog(settings.catalog_url)
    try:
        with sql_errors("The catalog database could not be reached to be migrated."):
            catalog.migrate()
    finally:
        catalog.close()


def _sink(settings: Settings) -> EventSink:
    if settings.event_stream is None:
        return NullSink()
    from chalicelib.events.publisher import KinesisSink

    return KinesisSink(settings.event_stream, complete=settings.event_stream_complete)


def services() -> Services:
    global _services
    if _services is None:
        with _lock:
            if _services is None:
                settings = get_settings()
                if settings.request_log:
                    from chalicelib.observability import configure_logging

                    configure_logging()
                _services = build(settings)
    return _services


def install(built: Services | None) -> None:
    """Replace this container's services (tests and the local stack)."""
    global _services
    with _lock:
        old, _services = _services, built
    if old is not None and old is not built:
        old.pooling.close()
