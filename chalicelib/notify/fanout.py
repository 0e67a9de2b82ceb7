"""From one stream event to the deliveries it calls for: one job per (live
subscription, message) for ``message.posted``, a confirmation or an
unsubscribe notice for subscription changes. Pure: the caller looks the
subscriptions up."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

from chalicelib.events.model import Event
from chalicelib.notify.jobs import CONFIRMATION, NOTIFICATION, UNSUBSCRIBE, Job
from chalicelib.storage.base import Subscription

WEBSOCKET = "websocket:"


def wants_confirmation(subscription: dict[str, Any], *, require_confirmation: bool) -> bool:
    return (require_confirmation and not subscription.get("confirmed")
            and not str(subscription.get("subscriber", "")).startswith(WEBSOCKET))


@dataclasses.dataclass(frozen=True)
class Planned:
    job: Job
    wait_s: int
    """Seconds to wait before delivering (a delayed message)."""
    subscription: Subscription | None = None
    """The subscription as the fan-out read it, when it did."""


def jobs(event: Event, live: Callable[[], Sequence[Subscription]], *, now_ms: int,
         require_confirmation: bool) -> list[Planned]:
    """Every delivery the event calls for."""
    if event.type == "message.posted":
        encrypted = bool(event.data.get("encrypted"))
        found: list[Planned] = []
        for subscription in live():
            for message in event.data.get("messages", []):
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
