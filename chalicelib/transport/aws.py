"""Glue to API Gateway's websocket management API through Chalice.

``LazySession`` stands in for the boto3 session Chalice wants on
``app.websocket_api.session``: boto3 is imported only when a reply is
actually sent, so REST invocations never pay for it on a cold start.
"""

from __future__ import annotations

import contextlib
from typing import Any

from chalice.app import WebsocketAPI, WebsocketDisconnectedError


class LazySession:
    def __init__(self) -> None:
        self._session: Any = None

    def _real(self) -> Any:
        if self._session is None:
            import boto3

            self._session = boto3.session.Session()
        return self._session

    @property
    def region_name(self) -> str | None:
        region: str | None = self._real().region_name
        return region

    def client(self, service_name: str, **kwargs: Any) -> Any:
        return self._real().client(service_name, **kwargs)


class ChaliceSender:
    """Sends through ``app.websocket_api`` (post_to_connection / delete_connection)."""

    def __init__(self, websocket_api: WebsocketAPI) -> None:
        self._api = websocket_api

    def send(self, connection_id: str, text: str) -> bool:
        try:
            self._api.send(connection_id, text)
        except WebsocketDisconnectedError:
            return False
        return True

    def close(self, connection_id: str) -> None:
        with contextlib.suppress(WebsocketDisconnectedError):
            self._api.close(connection_id)
