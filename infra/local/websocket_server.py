"""A local stand-in for API Gateway's websocket API (``chalice local`` has none).

Real websockets on 127.0.0.1:$WS_PORT: each connect, text frame and
disconnect becomes the API Gateway websocket event Lambda receives and is
handed to the app's ``$connect`` / ``$default`` / ``$disconnect`` handlers.
Their replies go through ``app.websocket_api`` as on AWS, whose management
client is replaced here by one that writes to (or closes) the real socket.

Frames of one connection are handled in order; different connections run
concurrently on a thread pool, since the handlers block on Redis and SQL.
Binary frames close the connection with 1003, as API Gateway does.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import importlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from infra.local.gateway import LambdaContext

log = logging.getLogger(__name__)
API_ID = "local"
STAGE = "local"
MAX_MESSAGE = 1024 * 1024  # larger than API Gateway's 128 KB, so the app can answer 413 itself


class GoneException(Exception):
    """What the management API raises for a connection that is no longer there."""


class LocalManagementApi:
    """``apigatewaymanagementapi`` for sockets held by this process."""

    class exceptions:
        GoneException = GoneException

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.sockets: dict[str, ServerConnection] = {}

    def _socket(self, connection_id: str) -> ServerConnection:
        sock = self.sockets.get(connection_id)
        if sock is None:
            raise GoneException(connection_id)
        return sock

    def post_to_connection(self, ConnectionId: str, Data: str | bytes) -> dict[str, Any]:
        sock = self._socket(ConnectionId)
        text = Data.decode() if isinstance(Data, bytes) else Data
        try:
            asyncio.run_coroutine_threadsafe(sock.send(text), self._loop).result(timeout=10)
        except ConnectionClosed:
            raise GoneException(ConnectionId) from None
        return {}

    def delete_connection(self, ConnectionId: str) -> dict[str, Any]:
        sock = self._socket(ConnectionId)
        asyncio.run_coroutine_threadsafe(sock.close(1000, "Closed by the service."), self._loop).result(timeout=10)
        return {}

    def get_connection(self, ConnectionId: str) -> dict[str, Any]:
        self._socket(ConnectionId)
        return {"ConnectionId": ConnectionId}


class LocalSession:
    """What ``app.websocket_api.session`` needs: a way to make the management client."""

    region_name = "us-east-1"

    def __init__(self, client: LocalManagementApi) -> None:
        self._client = client

    def client(self, service_name: str, **kwargs: Any) -> LocalManagementApi:
        return self._client


def _handler(app: Any, route: str) -> Callable[[dict[str, Any], Any], Any]:
    config = app.websocket_handlers[route]
    module_name, _, attr = config.handler_string.rpartition(".")
    handler: Callable[[dict[str, Any], Any], Any] = getattr(importlib.import_module(module_name), attr)
    return handler


class WebsocketGateway:
    def __init__(self, app: Any, port: int, workers: int = 16, sock: socket.socket | None = None) -> None:
        self.app = app
        self.port = port
        self._sock = sock
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ws")
        self._handlers = {route: _handler(app, route) for route in ("$connect", "$default", "$disconnect")}
        self.management: LocalManagementApi | None = None

    def _context(self, route: str, event_type: str, connection_id: str, connected_ms: int, ip: str) -> dict[str, Any]:
        now = int(time.time() * 1000)
        request_id = base64.urlsafe_b64encode(os.urandom(9)).decode()
        return {
            "routeKey": route,
            "eventType": event_type,
            "extendedRequestId": request_id,
            "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now / 1000)),
            "messageDirection": "IN",
            "stage": STAGE,
            "connectedAt": connected_ms,
            "requestTimeEpoch": now,
            "identity": {"sourceIp": ip},
            "requestId": request_id,
            "domainName": f"127.0.0.1:{self.port}",
            "connectionId": connection_id,
            "apiId": API_ID,
        }

    async def _invoke(self, route: str, event: dict[str, Any]) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, self._handlers[route], event, LambdaContext())

    async def connection(self, sock: ServerConnection) -> None:
        assert self.management is not None
        connection_id = base64.urlsafe_b64encode(uuid.uuid4().bytes[:12]).decode()
        connected = int(time.time() * 1000)
        ip = sock.remote_address[0] if sock.remote_address else "127.0.0.1"
        headers = dict(sock.request.headers.raw_items()) if sock.request is not None else {}
        connect = {
            "headers": headers,
            "multiValueHeaders": {k: [v] for k, v in headers.items()},
            "requestContext": self._context("$connect", "CONNECT", connection_id, connected, ip),
            "isBase64Encoded": False,
        }
        result = await self._invoke("$connect", connect)
        if not isinstance(result, dict) or int(result.get("statusCode", 500)) >= 300:
            await sock.close(1011, "Connection refused by the service.")
            return
        self.management.sockets[connection_id] = sock
        code, reason = 1000, ""
        try:
            async for frame in sock:
                if isinstance(frame, bytes):
                    code, reason = 1003, "Binary frames are not supported."
                    await sock.close(code, reason)
                    break
                message = {
                    "requestContext": {
                        **self._context("$default", "MESSAGE", connection_id, connected, ip),
                        "messageId": base64.urlsafe_b64encode(os.urandom(9)).decode(),
                    },
                    "body": frame,
                    "isBase64Encoded": False,
                }
                await self._invoke("$default", message)
        except ConnectionClosed as closed:
            code, reason = (closed.rcvd.code, closed.rcvd.reason) if closed.rcvd else (1006, "")
        finally:
            self.management.sockets.pop(connection_id, None)
            if sock.close_code is not None and code == 1000:
                code, reason = sock.close_code, sock.close_reason or ""
            context = self._context("$disconnect", "DISCONNECT", connection_id, connected, ip)
            disconnect = {
                "headers": {"Host": f"127.0.0.1:{self.port}"},
                "requestContext": {**context, "disconnectStatusCode": code, "disconnectReason": reason},
                "isBase64Encoded": False,
            }
            await self._invoke("$disconnect", disconnect)

    async def run(self, ready: Callable[[], None] | None = None) -> None:
        loop = asyncio.get_running_loop()
        self.management = LocalManagementApi(loop)
        api = self.app.websocket_api
        api.session, api._client, api._endpoint = LocalSession(self.management), None, None
        where: dict[str, Any] = {"sock": self._sock} if self._sock is not None else {"host": "127.0.0.1", "port": self.port}
        async with serve(self.connection, max_size=MAX_MESSAGE, compression=None, **where) as server:
            if ready is not None:
                ready()
            await server.serve_forever()


def _scheduled_event() -> dict[str, Any]:
    """What EventBridge sends a scheduled Lambda."""
    return {
        "version": "0", "id": str(uuid.uuid4()), "detail-type": "Scheduled Event", "source": "aws.events",
        "account": "123456789012", "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/housekeeping"], "detail": {},
    }


def _deliveries(app_module: Any, stop: threading.Event, wake: socket.socket | None = None) -> None:
    """Lambda's event source mappings and the relay and housekeeping schedules, run in this process
    so that deliveries can push to the sockets it holds (see infra.local.deliveries)."""
    import boto3

    from chalicelib import runtime
    from chalicelib.api import relay
    from infra.local.deliveries import DeliveryLoop
    from infra.local.pumps import QueuePump, StreamPump
    from infra.local.wake import WakeReceiver

    settings = runtime.services().settings
    if settings.event_stream is None or settings.retry_queue is None:
        return
    # from the stream's start: the stack made it (moto keeps nothing across restarts), and what was
    # posted before this thread's first read (REST answers before it runs) must not be skipped
    stream = StreamPump(boto3.client("kinesis"), settings.event_stream, app_module.deliver, from_start=True)
    retries = QueuePump(boto3.client("sqs"), settings.retry_queue, app_module.retry)
    loop = DeliveryLoop(
        stream, retries,
        relay=lambda: relay.run(runtime.services(), deadline_s=5),
        housekeeping=lambda: app_module.housekeeping(_scheduled_event(), LambdaContext("housekeeping")),
        wake=WakeReceiver(wake) if wake is not None else None,
    )
    loop.run(stop)


def main(port: int, wake: socket.socket | None = None, sock: socket.socket | None = None) -> None:
    """Serve websockets on port (on sock, listening there, if given); wake, if given, is the delivery
    loop's end of the wake-up channel."""
    import app as app_module

    stop = threading.Event()
    gateway = WebsocketGateway(app_module.app, port, sock=sock)

    def ready() -> None:
        threading.Thread(target=_deliveries, args=(app_module, stop, wake), daemon=True, name="deliveries").start()

    try:
        asyncio.run(gateway.run(ready))
    finally:
        stop.set()
