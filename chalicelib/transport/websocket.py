"""Zaqar's websocket protocol on API Gateway's websocket routes.

A frame is ``{"action", "headers", "body"}``; the reply is ``{"request":
<the request with "api": "v2">, "body": ..., "headers": {"status": N}}``.
Each action is one call into ``chalicelib.api``, the same call REST makes.
Errors answer ``{"exception", "error"}`` with a status (Zaqar's websocket
error body), and the connection stays usable: :func:`on_frame` is the
boundary, every frame gets exactly one reply whatever fails (anything
unexpected is a 500 naming the request id, its traceback in the log).
Frames are text (API Gateway refuses binary frames), at most 128 KB, API
Gateway's limit for one message, and checked like REST input
(:mod:`chalicelib.api.inputs`) before any action runs.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any, Protocol

from chalicelib import errors, observability
from chalicelib.api import connections, inputs
from chalicelib.api.context import Services
from chalicelib.transport import auth
from chalicelib.transport.ws_actions import ACTIONS, Frame

log = logging.getLogger(__name__)
MAX_FRAME_BYTES = 128 * 1024


class Sender(Protocol):
    """Delivers to a connection (API Gateway's management API, or a local stand-in)."""

    def send(self, connection_id: str, text: str) -> bool:
        """False when the connection is gone."""

    def close(self, connection_id: str) -> None: ...


# -- who may do what over a connection -------------------------------------------------

# The REST method each message action maps to, for pre-signed frames (as upstream).
SIGNED_ACTIONS = {"message_list": "GET", "message_get": "GET", "message_get_many": "GET", "message_post": "POST",
                  "message_delete": "DELETE", "message_delete_many": "DELETE"}


def _project(services: Services, connection_id: str, frame: Frame, action: str) -> str | None:
    """The tenant a frame acts for, from its signed headers, its own headers (noauth) or the connection."""
    if "url-signature" in frame.headers:
        method = SIGNED_ACTIONS.get(action)
        if method is None:
            raise errors.Forbidden("Pre-signed frames may only use message actions.")
        queue = frame.body.get("queue_name")
        path = f"/v2/queues/{queue}/messages"
        return auth.identify(services, frame.headers, method=method, path=path).project
    if services.settings.auth_strategy == "noauth":  # the frame's own headers, read as REST reads a request's
        return auth.identify(services, frame.headers, method="GET", path="/v2").project
    return connections.connection_project(services, connection_id, claimed=frame.header("X-Project-ID"))


# -- envelope -------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Answer:
    """The reply to one frame, with what the route needs to know about it without re-reading it."""

    text: str
    status: int
    action: str | None = None
    project: str | None = None
    queue: str | None = None
    close: bool = False
    """The connection must be closed after this reply (its authentication expired)."""


def _reply(request: dict[str, Any], status: int, body: Any, *, project: str | None = None,
           close: bool = False) -> Answer:
    echoed = {
        "action": request.get("action"),
        "body": request.get("body", {}),
        "headers": request.get("headers", {}),
        "api": "v2",
    }
    text = json.dumps({"request": echoed, "body": body, "headers": {"status": status}}, separators=(",", ":"))
    body_fields = request.get("body")
    queue = body_fields.get("queue_name", body_fields.get("topic_name")) if isinstance(body_fields, dict) else None
    action = request.get("action")
    return Answer(text, status, action if isinstance(action, str) else None, project,
                  queue if isinstance(queue, str) else None, close)


def _failure(request: dict[str, Any], exc: errors.ServiceError) -> Answer:
    return _reply(request, exc.status, {"exception": type(exc).__name__, "error": exc.description},
                  close=isinstance(exc, connections.AuthenticationExpired))


def answer(services: Services, connection_id: str, text: str, *, request_id: str | None = None) -> Answer:
    """The reply to one frame; never raises, whatever the frame holds or whatever fails."""
    request: dict[str, Any] = {}
    try:
        return _answer(services, connection_id, text, request)
    except Exception:  # a bug: say so with the request id, and log the traceback
        rid = f"req-{request_id or uuid.uuid4()}"
        log.exception("websocket %s on %s failed (%s)", str(request.get("action"))[:64], connection_id, rid)
        return _internal(request, rid)


def _internal(request: dict[str, Any], request_id: str) -> Answer:
    error = errors.InternalError(request_id)
    try:
        return _reply(request, 500, {"exception": type(error).__name__, "error": error.description})
    except Exception:  # the request itself cannot be echoed
        return _reply({}, 500, {"exception": type(error).__name__, "error": error.description})


def _answer(services: Services, connection_id: str, text: str, request: dict[str, Any]) -> Answer:
    if len(text.encode("utf-8", "surrogatepass")) > MAX_FRAME_BYTES:
        return _failure({}, errors.PayloadTooLarge(
            f"A websocket message may be at most {MAX_FRAME_BYTES} bytes (API Gateway's limit); "
            "post large batches over REST."))
    try:
        # one more level than REST bodies, for the envelope: the same documents fit both transports
        parsed = inputs.parse_json(text, "The frame", depth=inputs.MAX_JSON_DEPTH + 1)
    except inputs.NotJSON as exc:
        return _failure({}, errors.Invalid(f"Can't decode text (JSON) request: {exc.reason}."))  # upstream's words
    except errors.InvalidBody as exc:
        return _failure({}, errors.Invalid(exc.description))
    if not isinstance(parsed, dict):
        return _failure({}, errors.Invalid("A request must be a JSON object with action, headers and body."))
    request.update(parsed)
    name = request.get("action")
    action = ACTIONS.get(name) if isinstance(name, str) else None
    if action is None:
        return _failure(request, errors.Invalid(f"Invalid action: {str(request.get('action'))[:64]!r}."))
    try:
        frame = Frame(services, connection_id, request)
        if name != "authenticate":
            frame.project = _project(services, connection_id, frame, str(name))
        status, body = action(frame)
    except errors.ServiceError as exc:
        if exc.status >= 500:
            log.warning("websocket %s: %s", request.get("action"), exc.description)
        return _failure(request, exc)
    return _reply(request, status, body, project=frame.project)


# -- the three routes ------------------------------------------------------------------


def on_connect(services: Services, connection_id: str, source_ip: str) -> None:
    connections.connection_open(services, connection_id, source_ip=source_ip)


def on_message(services: Services, sender: Sender, connection_id: str, text: str, *,
               request_id: str | None = None) -> None:
    started = time.perf_counter()
    reply = answer(services, connection_id, text, request_id=request_id)
    try:
        if services.settings.request_log:
            observability.emit(observability.request_record(
                transport="websocket", operation=str(reply.action), status=reply.status,
                latency_ms=(time.perf_counter() - started) * 1000, request_id=connection_id,
                project=reply.project, queue=reply.queue,
            ))
    except Exception:
        log.exception("websocket request log failed (%s)", request_id)
    if not sender.send(connection_id, reply.text):
        on_disconnect(services, connection_id)  # gone: clean up now rather than retry
    elif reply.close:
        sender.close(connection_id)  # as upstream closes at token expiry (API Gateway sets no close code)


def on_frame(services: Callable[[], Services], sender: Sender, connection_id: str, text: str | None, *,
             request_id: str | None = None) -> None:
    """The ``$default`` route's boundary: exactly one reply per frame, and nothing raised to API Gateway
    (which would close the connection, or answer in its own format). Services that cannot be built
    answer their 503; anything else unexpected a 500 with the request id."""
    request_id = request_id or str(uuid.uuid4())
    rid = f"req-{request_id}"
    try:
        built = services()
    except errors.ServiceError as exc:
        log.warning("websocket frame on %s: %s", connection_id, exc.description)
        _send_quietly(sender, connection_id, _failure({}, exc).text)
        return
    except Exception:
        log.exception("websocket frame on %s failed (%s)", connection_id, rid)
        _send_quietly(sender, connection_id, _internal({}, rid).text)
        return
    try:
        on_message(built, sender, connection_id, text if isinstance(text, str) else "", request_id=request_id)
    except Exception:  # sending or cleaning up failed: the reply may be lost, the connection is not
        log.exception("websocket frame on %s failed (%s)", connection_id, rid)


def _send_quietly(sender: Sender, connection_id: str, text: str) -> None:
    try:
        sender.send(connection_id, text)
    except Exception:
        log.exception("websocket reply to %s could not be sent", connection_id)


def on_disconnect(services: Services, connection_id: str) -> None:
    """Forget the connection and remove the subscriptions made over it."""
    connections.connection_close(services, connection_id)
