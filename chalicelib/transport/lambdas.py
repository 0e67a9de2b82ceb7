"""The event-source Lambdas: stream deliveries, retries, the outbox relay, housekeeping."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from chalice.app import WebsocketAPI

from chalicelib import runtime
from chalicelib.transport.aws import ChaliceSender

if TYPE_CHECKING:  # the REST and websocket Lambdas import this module but deliver nothing
    from chalicelib.api.context import Services
    from chalicelib.notify.channels.websocket import Pusher
    from chalicelib.notify.notifier import Notifier

SYSTEM_CLIENT = "00000000-0000-4000-8000-00000000000a"  # the Client-ID of failure records


def notifier(websocket_api: WebsocketAPI) -> Notifier:
    """This container's notifier; websocket pushes go through API Gateway's management API."""
    services = runtime.services()

    def make() -> Notifier:
        settings = services.settings
        if settings.websocket_api_id is not None:
            # outside a websocket handler Chalice cannot know the API: configuration says
            websocket_api.configure_from_api_id(settings.websocket_api_id, settings.websocket_stage)
        pusher = ChaliceSender(websocket_api) if websocket_api._endpoint is not None else None
        return build_notifier(services, pusher)

    return services.shared.once("notifier", make)


def build_notifier(services: Services, pusher: Pusher | None) -> Notifier:
    """The notifier and what it needs from the rest of the service, wired here so that
    notify never calls api operations and api never imports notify."""
    from chalicelib import topics
    from chalicelib.api import messages, queues, subscriptions
    from chalicelib.api.context import Caller
    from chalicelib.keystone_trusts import client as trusts_client
    from chalicelib.notify import payloads
    from chalicelib.notify.channels import Delivery
    from chalicelib.notify.channels.email import EmailChannel
    from chalicelib.notify.channels.queue import QueueChannel
    from chalicelib.notify.channels.trust import TrustChannel
    from chalicelib.notify.channels.webhook import WebhookChannel
    from chalicelib.notify.channels.websocket import WebsocketChannel
    from chalicelib.notify.failures import FAILED_QUEUE, FailureLog
    from chalicelib.notify.notifier import SETTLED_TTL_S, Notifier
    from chalicelib.notify.schedule import RetryQueue

    settings = services.settings

    def post_failure(project: str, record: dict[str, Any]) -> None:
        body = {"messages": [{"body": record, "ttl": settings.limits.max_message_ttl}]}
        caller = Caller(project=project, client_id=SYSTEM_CLIENT)
        messages.message_post(services, caller, FAILED_QUEUE, body, size=len(json.dumps(body)))

    def queue_policy(project: str, queue: str) -> Any:
        return queues.queue_get(services, Caller(project=project, client_id=SYSTEM_CLIENT), queue).get("_retry_policy")

    def connection_gone(connection: str) -> None:
        subscriptions.subscriptions_of_connection_delete(services, connection)

    def forward(delivery: Delivery, queue: str) -> None:
        job = delivery.job
        content = payloads.revealed(settings, job.message, encrypted=job.encrypted)
        message: dict[str, Any] = {"body": content.body, "ttl": job.message.get("ttl")}
        if content.attributes:
            message["attributes"] = content.attributes
        body = {"messages": [message]}
        owner = topics.owner(job.project)[0]
        messages.message_post(services, Caller(project=owner, client_id=SYSTEM_CLIENT), queue, body,
                              size=len(json.dumps(body)), idempotency_key=job.delivery_id,
                              window_s=SETTLED_TTL_S, via=f"{topics.collection(job.project)}/{job.queue}")

    webhooks = WebhookChannel(settings)
    trusts = TrustChannel(webhooks, trusts_client(services) if settings.has_trustee else None)
    return Notifier(
        settings,
        subscriptions=services.subscriptions,
        deliveries=services.deliveries,
        channels={
            "http": webhooks,
            "https": webhooks,
            "trust+http": trusts,
            "trust+https": trusts,
            "mailto": EmailChannel(settings),
            "websocket": WebsocketChannel(pusher, connection_gone),
            "queue": QueueChannel(forward),
        },
        retries=RetryQueue(settings.retry_queue),
        failures=FailureLog(post_failure),
        queue_policy=queue_policy,
    )


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
    from chalicelib.api import connections
    from chalicelib.transport import websocket

    services = runtime.services()
    expired = connections.connections_expired(services)
    notifier(websocket_api)  # configures the management API from the settings
    sender = ChaliceSender(websocket_api) if websocket_api._endpoint is not None else None
    for connection_id in expired:
        if sender is not None:
            sender.send(connection_id, '{"error": "Authentication expired."}')
            sender.close(connection_id)
        websocket.on_disconnect(services, connection_id)
    return len(expired)


def migrate() -> dict[str, str]:
    """Bring the catalog's tables up to date (see :func:`chalicelib.runtime.migrate`)."""
    from chalicelib.config import get_settings

    runtime.migrate(get_settings())
    return {"catalog": "migrated"}
