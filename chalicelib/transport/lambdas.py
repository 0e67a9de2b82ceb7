"""The event-source Lambdas: stream deliveries, retries, the outbox relay, housekeeping."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from chalice.app import WebsocketAPI

from chalicelib import runtime
from chalicelib.notify.notifier import Notifier
from chalicelib.transport.aws import ChaliceSender

_lock = threading.Lock()
_notifier: Notifier | None = None


def notifier(websocket_api: WebsocketAPI) -> Notifier:
    """This container's notifier; websocket pushes go through API Gateway's management API."""
    global _notifier
    if _notifier is None:
        with _lock:
            if _notifier is None:
                services = runtime.services()
                settings = services.settings
                if settings.websocket_api_id is not None:
                    # outside a websocket handler Chalice cannot know the API: configuration says
                    websocket_api.configure_from_api_id(settings.websocket_api_id, settings.websocket_stage)
                pusher = ChaliceSender(websocket_api) if websocket_api._endpoint is not None else None
                _notifier = Notifier(services, pusher=pusher)
    return _notifier


def reset() -> None:
    global _notifier
    with _lock:
        _notifier = None


def on_stream(records: Sequence[dict[str, Any]], websocket_api: WebsocketAPI) -> dict[str, Any]:
    from chalicelib.notify import dispatch

    return dispatch.on_stream(notifier(websocket_api), records)


def on_retry_queue(records: Sequence[dict[str, Any]], websocket_api: WebsocketAPI) -> dict[str, Any]:
    from chalicelib.notify import dispatch

    return dispatch.on_retry_queue(notifier(websocket_api), records)


def relay() -> int:
    from chalicelib.api import relay as outbox_relay

    return outbox_relay.run(runtime.services())


def housekeeping(websocket_api: WebsocketAPI) -> dict[str, int]:
    from chalicelib.api import housekeeping as sweep

    services = runtime.services()
    counts = sweep.run(services)
    counts["connections_expired"] = close_expired_connections(websocket_api)
    return counts


def close_expired_connections(websocket_api: WebsocketAPI) -> int:
    """Close websocket connections whose token expired (upstream closes them at expiry)."""
    import time

    from chalicelib.transport import websocket

    services = runtime.services()
    expired = services.connections.expired(now=time.time())
    sender = ChaliceSender(websocket_api) if notifier(websocket_api).can_push else None
    for connection_id in expired:
        if sender is not None:
            sender.send(connection_id, '{"error": "Authentication expired."}')
            sender.close(connection_id)
        websocket.on_disconnect(services, connection_id)
    return len(expired)


def migrate() -> dict[str, str]:
    from chalicelib.storage.catalog import Catalog

    catalog = Catalog(runtime.services().settings.catalog_url)
    try:
        catalog.migrate()
    finally:
        catalog.close()
    return {"catalog": "migrated"}
