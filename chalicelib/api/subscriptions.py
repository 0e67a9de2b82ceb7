"""Subscription operations, shared by the REST and websocket transports.

Delivery (webhook, email, websocket push) is the notifier's work; these
operations keep the subscriptions and emit the events it will act on.
"""

from __future__ import annotations

import dataclasses
import json
import time
import unicodedata
from typing import Any
from urllib.parse import urlsplit

from chalicelib import errors, topics
from chalicelib.api import bodies, listeners, outbox, trust_subscribers, validation
from chalicelib.api.context import Caller, Outcome, Services
from chalicelib.api.queues import create_in_place
from chalicelib.config import Limits
from chalicelib.rules import addresses, retry_policy, trust
from chalicelib.rules import options as rules
from chalicelib.storage import base
from chalicelib.storage.base import QueueSettings

WEBSOCKET_SCHEME = "websocket"
QUEUE_SCHEME = "queue"  # fan-out to a queue of the same project (chalicelib.notify.channels.queue)
DEFAULT_TTL = 3600
WITH_MESSAGE_ID = "include_message_id"  # the option notify.payloads reads
WEBHOOK_SCHEMES = frozenset({"http", "https"}) | trust.SCHEMES


@dataclasses.dataclass(frozen=True)
class Subscription:
    """A subscription as both transports show it."""

    id: str
    queue: str
    subscriber: str
    ttl: int
    age: int
    """Seconds since it was made."""
    options: dict[str, Any]
    confirmed: bool


@dataclasses.dataclass(frozen=True)
class SubscriptionPage:
    items: list[Subscription]
    next_marker: str | None


def _now_ms() -> int:
    return int(time.time() * 1000)


def _view(stored: base.Subscription, now_ms: int) -> Subscription:
    return Subscription(id=stored.id, queue=stored.queue, subscriber=stored.subscriber, ttl=stored.ttl,
                        age=max(0, (now_ms - stored.created_ms) // 1000), options=stored.options,
                        confirmed=stored.confirmed)


def websocket_subscriber(connection_id: str) -> str:
    return f"{WEBSOCKET_SCHEME}:{connection_id}"


def check_subscriber(value: str) -> str:
    """A subscriber URI the service can serve (its type and length are the schema's)."""
    if any(unicodedata.category(c) in {"Cc", "Cs"} for c in value):
        raise errors.InvalidBody(f"subscriber {value[:80]!a} contains a control character or a lone surrogate: "
                                 "percent-encode it.")
    try:
        parts = urlsplit(value)
        netloc, _port = parts.netloc, parts.port
    except ValueError as exc:
        raise errors.InvalidBody(f"subscriber {value[:80]!r} is not a valid URI ({exc}).") from None
    scheme = parts.scheme.lower()
    if scheme in WEBHOOK_SCHEMES and netloc:
        shape = addresses.authority_problem(netloc)
        if shape is not None:
            raise errors.InvalidBody(f"subscriber {value[:80]!r} is not a valid URI ({shape}).")
        return value  # the address is checked again when delivering, after resolving
    if scheme == "mailto" and "@" in parts.path:
        return value
    if scheme == QUEUE_SCHEME:
        name = value.split(":", 1)[1]
        try:
            validation.queue_name(name, Limits())  # the name's length is the schema's and the catalog's
        except errors.Invalid as exc:
            raise errors.InvalidBody(f"subscriber {value[:80]!r} must name a queue (queue:NAME): "
                                     f"{exc.description}") from None
        return QUEUE_SCHEME + ":" + name
    raise errors.InvalidBody(f"Unsupported subscriber {value[:80]!r}: use http://, https://, trust+http(s)://, "
                             "mailto: or queue:.")


def _check_target(services: Services, subscriber: str, options: dict[str, Any]) -> str:
    """Refuse what cannot work or must not happen: webhooks aimed at refused addresses (literal
    IPs; names are checked when delivering), unsafe or foreign email subjects and senders."""
    scheme = urlsplit(subscriber).scheme.lower()
    if scheme in WEBHOOK_SCHEMES:
        reason = addresses.literal_refusal(trust.target(subscriber),
                                           allow_loopback=services.settings.webhook_allow_loopback)
        if reason is not None:
            raise errors.InvalidBody(f"This webhook is not allowed: {reason}.")
    elif scheme == "mailto":
        rules.check_mailto(subscriber, options, sender=services.settings.ses_sender,
                           allowed_senders=services.settings.ses_allowed_senders)
    return subscriber


def _check_options(value: dict[str, Any]) -> dict[str, Any]:
    """What the schema cannot say of options (it says they are an object)."""
    if "_retry_policy" in value:
        retry_policy.check(value["_retry_policy"], "Subscription")
    if value.get("post_headers") is not None:
        rules.check_post_headers(value["post_headers"])
    if value.get(WITH_MESSAGE_ID) is not None and not isinstance(value[WITH_MESSAGE_ID], bool):
        raise errors.InvalidBody(f"options.{WITH_MESSAGE_ID} must be true or false.")
    rules.check_post_data(value.get("post_data"))
    scope = value.get("filter_policy_scope", "MessageAttributes")
    if scope not in ("MessageAttributes", "MessageBody"):
        raise errors.InvalidBody(f"options.filter_policy_scope must be MessageAttributes or MessageBody; got "
                                 f"{json.dumps(scope)[:80]}.")
    if "filter_policy" in value:
        from chalicelib.rules import filter_policy  # only requests that set a policy load it

        try:
            filter_policy.compile_policy(value["filter_policy"], scope)
        except filter_policy.PolicyError as exc:
            raise errors.InvalidBody(f"options.{exc}") from None
    return value


def _check_not_itself(caller: Caller, queue: str, subscriber: str) -> None:
    if subscriber == f"{QUEUE_SCHEME}:{queue}" and not topics.owner(caller.project)[1]:
        raise errors.InvalidBody(f"Queue {queue} cannot subscribe to itself: name another queue.")


def signing_secret(services: Services, subscription_id: str) -> str | None:
    """What the subscriber needs to verify webhook signatures (None without SIGNING_KEY)."""
    from chalicelib.signing import subscription_secret

    key = services.settings.signing_key
    return None if key is None else subscription_secret(key, subscription_id)


def describe(subscription: base.Subscription) -> dict[str, Any]:
    """The event payload of a subscription."""
    return {
        "id": subscription.id,
        "subscriber": subscription.subscriber,
        "ttl": subscription.ttl,
        "options": subscription.options,
        "confirmed": subscription.confirmed,
    }


def _announce(services: Services, kind: str, subscriptions: list[base.Subscription]) -> None:
    """Subscription events go through their queue's outbox, in order with its other events."""
    for s in subscriptions:
        store = services.pooling.lookup(project=s.project, queue=s.queue)
        outbox.record(services, store, s.project, s.queue, kind, describe(s))


def subscription_create(
    services: Services, caller: Caller, queue: str, body: Any, *, connection_id: str | None = None
) -> Outcome[tuple[str, bool]]:
    """Subscribe; returns the id and whether it is new.

    Without ``subscriber`` over a websocket, the connection itself subscribes.
    """
    validation.queue_name(queue, services.settings.limits)
    body = {} if body is None else body
    bodies.check("SubscriptionCreate" if connection_id is None else "WebsocketSubscribe", body,
                 services.settings.limits, "The subscription")
    ttl = bodies.whole(body.get("ttl", DEFAULT_TTL))
    options = _check_options(body.get("options", {}))
    if "subscriber" not in body and connection_id is not None:
        subscriber = websocket_subscriber(connection_id)
    else:
        subscriber = _check_target(services, check_subscriber(body.get("subscriber")), options)
    _check_not_itself(caller, queue, subscriber)
    trust.check_options(options, subscriber=subscriber, current_trust=None)
    require = services.settings.require_confirmation
    now = _now_ms()
    granted = None
    if trust.is_trust(subscriber):  # first: nothing is stored when no trust can be made
        granted = trust_subscribers.grant(services, caller, expires_ms=now + ttl * 1000)
        options = {**options, trust.TRUST_ID: granted}
    try:
        create_in_place(services, caller, queue, {}, QueueSettings())  # lazily created, as upstream does
        subscription, created = services.subscriptions.create(
            project=caller.project, queue=queue, subscriber=subscriber, ttl=ttl, options=options,
            # a queue of the same project, or the connection that asked, needs no confirmation
            confirmed=subscriber.startswith(QUEUE_SCHEME + ":") or (
                connection_id is not None and subscriber.startswith(WEBSOCKET_SCHEME + ":")),
            connection=connection_id if subscriber.startswith(WEBSOCKET_SCHEME + ":") else None, now_ms=now,
        )
    except Exception:
        trust_subscribers.release(services, caller, [granted])
        raise
    if not created:  # the subscription that exists keeps its own trust
        trust_subscribers.release(services, caller, [granted])
    try:
        listeners.raise_for(services, subscription)
    except errors.Unavailable:
        if created:  # a subscription its queue's pool does not know of would never be notified
            services.subscriptions.delete(project=caller.project, queue=queue, sid=subscription.id)
            trust_subscribers.release(services, caller, [granted])
        raise
    if created:
        _announce(services, "subscription.created", [subscription])
    elif not subscription.confirmed:
        # asking again while unconfirmed answers with the same subscription, as upstream does,
        # and sends the confirmation again when confirmations are required
        if require:
            _announce(services, "subscription.confirmation_requested", [subscription])
    else:
        raise errors.Conflict(f"Queue {queue} already has a confirmed subscription for {subscriber}.")
    return Outcome((subscription.id, created))


def subscription_get(services: Services, caller: Caller, queue: str, sid: str) -> Subscription:
    now = _now_ms()
    return _view(_stored(services, caller, queue, sid, now_ms=now), now)


def _stored(services: Services, caller: Caller, queue: str, sid: str, *, now_ms: int) -> base.Subscription:
    validation.queue_name(queue, services.settings.limits)
    found = services.subscriptions.get(project=caller.project, queue=queue, sid=sid[:64], now_ms=now_ms)
    if found is None:
        raise errors.NotFound(f"Subscription {sid[:64]} does not exist in queue {queue}.")
    return found


def subscription_list(
    services: Services, caller: Caller, queue: str, *, marker: str | None, limit: int
) -> SubscriptionPage:
    validation.queue_name(queue, services.settings.limits)
    now = _now_ms()
    items = services.subscriptions.page(project=caller.project, queue=queue, marker=marker, limit=limit, now_ms=now)
    return SubscriptionPage([_view(s, now) for s in items], items[-1].id if items else None)


def subscription_update(services: Services, caller: Caller, queue: str, sid: str, body: Any) -> Outcome[None]:
    validation.queue_name(queue, services.settings.limits)
    bodies.check("SubscriptionUpdate", body, services.settings.limits, "The subscription update")
    changes: dict[str, Any] = {}
    if "ttl" in body:
        changes["ttl"] = bodies.whole(body["ttl"])
    if "options" in body:
        changes["options"] = _check_options(body["options"])
    if "subscriber" in body:
        changes["subscriber"] = check_subscriber(body["subscriber"])
    current = _stored(services, caller, queue, sid, now_ms=_now_ms())
    if "subscriber" in changes or "options" in changes:  # the pair must work together
        subscriber, options = changes.get("subscriber", current.subscriber), changes.get("options", current.options)
        _check_target(services, subscriber, options)
        _check_not_itself(caller, queue, subscriber)
        trust.check_options(options, subscriber=subscriber, current_trust=trust.stored_trust(current.options))
    now = _now_ms()
    granted, retired = _retrust(services, caller, current, changes, now_ms=now)
    try:
        updated = services.subscriptions.update(
            project=caller.project, queue=queue, sid=sid[:64], changes=changes, now_ms=now
        )
    except Exception:
        trust_subscribers.release(services, caller, [granted])
        raise
    if updated is None:
        trust_subscribers.release(services, caller, [granted])
        raise errors.NotFound(f"Subscription {sid[:64]} does not exist in queue {queue}.")
    trust_subscribers.release(services, caller, [retired])
    listeners.raise_for(services, updated)
    _announce(services, "subscription.updated", [updated])
    return Outcome(None)


def _retrust(services: Services, caller: Caller, current: base.Subscription, changes: dict[str, Any], *,
             now_ms: int) -> tuple[str | None, str | None]:
    """Keep ``options.trust_id`` right through an update: a new trust when the subscription becomes a trust
    subscriber or its ttl (so its expiry) changes, none when it stops being one. (new trust, trust to delete)."""
    subscriber = changes.get("subscriber", current.subscriber)
    options = changes.get("options", current.options)
    old = trust.stored_trust(current.options) if trust.is_trust(current.subscriber) else None
    if not trust.is_trust(subscriber):
        if trust.TRUST_ID in options:
            changes["options"] = {k: v for k, v in options.items() if k != trust.TRUST_ID}
        return None, old
    granted = None
    if old is None or "ttl" in changes:
        expires = now_ms + changes["ttl"] * 1000 if "ttl" in changes else current.expires_ms
        granted = trust_subscribers.grant(services, caller, expires_ms=expires)
    kept = granted or old
    if options.get(trust.TRUST_ID) != kept:
        changes["options"] = {**options, trust.TRUST_ID: kept}
    return granted, old if granted else None


def subscription_delete(services: Services, caller: Caller, queue: str, sid: str) -> Outcome[None]:
    validation.queue_name(queue, services.settings.limits)
    removed = services.subscriptions.delete(project=caller.project, queue=queue, sid=sid[:64])
    if removed:
        listeners.lower(services, caller.project, queue)
        trust_subscribers.release(services, caller, trust_subscribers.trusts_of(removed))
    _announce(services, "subscription.deleted", removed)
    return Outcome(None)


def subscription_confirm(services: Services, caller: Caller, queue: str, sid: str, body: Any) -> Outcome[None]:
    validation.queue_name(queue, services.settings.limits)
    bodies.check("Confirm", body, services.settings.limits, "The confirmation")
    confirmed = body["confirmed"]
    updated = services.subscriptions.confirm(
        project=caller.project, queue=queue, sid=sid[:64], confirmed=confirmed, now_ms=_now_ms()
    )
    if updated is None:
        raise errors.NotFound(f"Subscription {sid[:64]} does not exist in queue {queue}.")
    if confirmed:
        listeners.raise_for(services, updated)
    else:
        listeners.lower(services, caller.project, queue)
    _announce(services, "subscription.confirmed" if confirmed else "subscription.unconfirmed", [updated])
    return Outcome(None)


def subscriptions_of_connection_delete(services: Services, connection_id: str) -> Outcome[None]:
    """Remove what a websocket connection subscribed, when it goes away."""
    removed = services.subscriptions.delete_for_connection(connection_id)
    for project, queue in sorted({(s.project, s.queue) for s in removed}):
        listeners.lower(services, project, queue)
    _announce(services, "subscription.deleted", removed)
    return Outcome(None)
