"""Websocket pushes (``websocket:<connection>``) through API Gateway's management API.

A connection that is gone takes its subscriptions with it (``on_gone``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Protocol

from chalicelib.notify.channels import Delivery, Outcome


class Pusher(Protocol):
    def send(self, connection_id: str, text: str) -> bool:
        """False when the connection is gone."""


class WebsocketChannel:
    def __init__(self, pusher: Pusher | None, on_gone: Callable[[str], None]) -> None:
        self._pusher = pusher
        self._on_gone = on_gone

    def deliver(self, delivery: Delivery) -> Outcome:
        if self._pusher is None:
            return Outcome("failed", "websocket pushes are not configured (WEBSOCKET_API_ID)")
        connection = delivery.subscription.subscriber.split(":", 1)[1]
        if self._pusher.send(connection, json.dumps(delivery.payload)):
            return Outcome("delivered")
        self._on_gone(connection)
        return Outcome("failed", "the websocket connection is gone")
