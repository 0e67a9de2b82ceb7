"""From one stream event to the deliveries it calls for: one job per (live
subscription, message it takes) for ``message.posted`` (a subscription's
``filter_policy`` decides, in Amazon SNS's syntax: see
``chalicelib.rules.filter_policy``), a confirmation or an unsubscribe notice
for subscription changes. Pure: the caller looks the subscriptions up and
says how to read an encrypted message."""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from chalicelib.events.model import Event
from chalicelib.notify.jobs import CONFIRMATION, NOTIFICATION, UNSUBSCRIBE, Job
from chalicelib.storage.base import Subscription

if TYPE_CHECKING:
    from chalicelib.rules.filter_policy import FilterPolicy

log = logging.getLogger(__name__)
WEBSOCKET = "websocket:"
QUEUE = "queue:"
FILTER_POLICY = "filter_policy"
FILTER_SCOPE = "filter_policy_scope"


def wants_confirmation(subscription: dict[str, Any], *, require_confirmation: bool) -> bool:
    return (require_confirmation and not subscription.get("confirmed")
            and not str(subscription.get("subscriber", "")).startswith((WEBSOCKET, QUEUE)))


@dataclasses.dataclass(frozen=True)
class Planned:
    job: Job
    wait_s: int
    """Seconds to wait before delivering (a delayed message)."""
    subscription: Subscription | None = None
    """The subscription as the fan-out read it, when it did."""


Reveal = Callable[[Mapping[str, Any]], "Content | None"]
"""The body, attributes and origin of a message of the event (None: it cannot be read, e.g. undecryptable)."""


@dataclasses.dataclass(frozen=True)
class Content:
    body: Any
    attributes: Mapping[str, Any] | None
    via: str | None


def plain(message: Mapping[str, Any]) -> Content:
    """What a message of an unencrypted queue's event holds."""
    return Content(message.get("body"), message.get("attributes"), message.get("via"))


def wanted(subscription: Subscription, policy: FilterPolicy | None, content: Content | None) -> bool:
    """Whether the subscription takes this message: its filter ``policy`` (see :func:`filter_of`) matches (a
    message that cannot be read goes on, to fail visibly at delivery), and a forwarded message is not
    forwarded again."""
    if content is None:
        return True
    if content.via and subscription.subscriber.startswith(QUEUE):
        return False
    return policy is None or policy.matches(attributes=content.attributes, body=content.body)


def filter_of(options: Mapping[str, Any]) -> FilterPolicy | None:
    """The subscription's compiled ``filter_policy``, if it has one (checked when it was set)."""
    policy = options.get(FILTER_POLICY)
    if policy is None:
        return None
    scope = str(options.get(FILTER_SCOPE) or "MessageAttributes")
    return _compiled(json.dumps(policy, sort_keys=True), scope)


@functools.lru_cache(maxsize=1024)
def _compiled(policy: str, scope: str) -> FilterPolicy:
    from chalicelib.rules import filter_policy  # only containers whose subscriptions filter load it

    return filter_policy.compile_policy(json.loads(policy), scope)  # type: ignore[arg-type]


def jobs(event: Event, live: Callable[[], Sequence[Subscription]], *, now_ms: int,
         require_confirmation: bool, reveal: Reveal = plain) -> list[Planned]:
    """Every delivery the event calls for: for message.posted, one per (subscription, message it takes)."""
    if event.type == "message.posted":
        encrypted = bool(event.data.get("encrypted"))
        found: list[Planned] = []
        messages = list(event.data.get("messages", []))
        contents: dict[int, Content | None] = {}
        for subscription in live():
            try:
                policy = filter_of(subscription.options)  # once per subscription and event
            except ValueError as exc:  # stored before a rule existed: this subscription alone gets nothing
                log.warning("subscription %s has an unusable filter_policy, nothing delivered: %s",
                            subscription.id, exc)
                continue
            choosy = policy is not None or subscription.subscriber.startswith(QUEUE)
            for index, message in enumerate(messages):
                if choosy:
                    if index not in contents:
                        contents[index] = reveal(message)
                    if not wanted(subscription, policy, contents[index]):
                        continue  # not for this subscription: no delivery, and no failure either
                job = Job(NOTIFICATION, event.id, event.project, event.queue, subscription.id, message, encrypted)
                visible_at = event.time_ms + int(message.get("delay") or 0) * 1000
                found.append(Planned(job, max(0, (visible_at - now_ms + 999) // 1000), subscription))
        return found
    if event.type in {"subscription.created", "subscription.confirmation_requested"} and wants_confirmation(
            event.data, require_confirmation=require_confirmation):
        return [Planned(Job(CONFIRMATION, event.id, event.project, event.queue, str(event.data["id"]), {}), 0)]
    if event.type == "subscription.unconfirmed" and not str(event.data.get("subscriber", "")).startswith(WEBSOCKET):
        return [Planned(Job(UNSUBSCRIBE, event.id, event.project, event.queue, str(event.data["id"]), {}), 0)]
    return []
