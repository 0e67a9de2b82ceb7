"""Zaqar's websocket protocol on API Gateway's websocket routes.

A frame is ``{"action", "headers", "body"}``; the reply is ``{"request":
<the request with "api": "v2">, "body": ..., "headers": {"status": N}}``.
Each action is one call into ``chalicelib.api``, the same call REST makes.
Errors answer ``{"exception", "error"}`` with a status, and the connection
stays usable. Frames are text (API Gateway refuses binary frames) and at
most 128 KB, API Gateway's limit for one message.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from chalicelib import errors, observability
from chalicelib.api import claims, messages, queues, subscriptions, validation
from chalicelib.api.context import Caller, Services
from chalicelib.transport import auth, render

log = logging.getLogger(__name__)
MAX_FRAME_BYTES = 128 * 1024


class Sender(Protocol):
    """Delivers to a connection (API Gateway's management API, or a local stand-in)."""

    def send(self, connection_id: str, text: str) -> bool:
        """False when the connection is gone."""

    def close(self, connection_id: str) -> None: ...


class Frame:
    """One request on a connection, with what every action needs."""

    def __init__(self, services: Services, connection_id: str, request: dict[str, Any],
                 project: str | None = None) -> None:
        self.services = services
        self.connection_id = connection_id
        self.request = request
        self.project = project
        headers = request.get("headers")
        body = request.get("body", {})
        if not isinstance(headers, dict):
            raise errors.Invalid('The frame needs a "headers" object with Client-ID and X-Project-ID.')
        if body is None:
            body = {}
        if not isinstance(body, dict):
            raise errors.Invalid('The frame "body" must be a JSON object.')
        self.headers: dict[str, Any] = {str(k).lower(): v for k, v in headers.items()}
        self.body: dict[str, Any] = body

    def header(self, name: str) -> str | None:
        value = self.headers.get(name.lower())
        return value if isinstance(value, str) else None

    @property
    def caller(self) -> Caller:
        settings = self.services.settings
        client = validation.client_id(self.header("Client-ID"), strict_uuid=settings.client_id_uuid_strict)
        project = validation.project_id(self.project, settings.limits)
        return Caller(project=project, client_id=client)

    def field(self, name: str, default: Any = None, *, required: bool = False) -> Any:
        if name not in self.body or self.body[name] is None:
            if required:
                raise errors.Invalid(f"{self.request.get('action')} needs {name} in its body.")
            return default
        return self.body[name]

    def text(self, name: str) -> str:
        value = self.field(name, required=True)
        if not isinstance(value, str):
            raise errors.Invalid(f"{name} must be a string.")
        return value

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        value = self.field(name, default)
        try:
            return validation.integer(value, name, low, high)
        except errors.InvalidBody as exc:
            raise errors.Invalid(exc.description) from None

    def flag(self, name: str, default: bool) -> bool:
        value = self.field(name, default)
        if not isinstance(value, bool):
            raise errors.Invalid(f"{name} must be true or false.")
        return value

    def ids(self, name: str) -> list[str]:
        value = self.field(name, required=True)
        limit = self.services.settings.limits.max_messages_per_page
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            raise errors.Invalid(f"{name} must be a non-empty list of ids.")
        if len(value) > limit:
            raise errors.Invalid(f"{name} may list at most {limit} ids.")
        return value


Reply = tuple[int, Any]


# -- actions: one api call each ----------------------------------------------------


def _authenticate(frame: Frame) -> Reply:
    try:
        identity = auth.identify(frame.services, frame.headers, method="GET", path="/v2")
    except errors.Unauthorized as exc:
        raise errors.Unauthorized(f"Authentication failed. {exc.description}") from None
    project = validation.project_id(identity.project, frame.services.settings.limits)
    frame.services.connections.authenticate(frame.connection_id, project=project, expires=identity.expires)
    return 200, {"message": "Authentified."}


def _queue_list(frame: Frame) -> Reply:
    limits = frame.services.settings.limits
    detailed = frame.flag("detailed", False)
    page = queues.queue_list(
        frame.services, frame.caller, marker=frame.field("marker"),
        limit=frame.integer("limit", limits.default_queues_per_page, 1, limits.max_queues_per_page),
        detailed=detailed, name=None, with_count=False, filters={},
    )
    items = [{"name": q.name, **({"metadata": q.metadata} if detailed else {})} for q in page.items]
    body: dict[str, Any] = {"queues": items}
    if page.next_marker is not None:
        body["marker"] = page.next_marker
    return 200, body


def _queue_create(frame: Frame) -> Reply:
    name = frame.text("queue_name")
    metadata = frame.field("metadata", {})
    size = len(json.dumps(metadata))
    created = queues.queue_create(frame.services, frame.caller, name, metadata, size=size).value
    return (201 if created else 204), f"Queue {name} created."


def _queue_delete(frame: Frame) -> Reply:
    name = frame.text("queue_name")
    queues.queue_delete(frame.services, frame.caller, name)
    return 204, f"Queue {name} removed."


def _queue_get(frame: Frame) -> Reply:
    return 200, queues.queue_get(frame.services, frame.caller, frame.text("queue_name"))


def _queue_get_stats(frame: Frame) -> Reply:
    name = frame.text("queue_name")
    found = queues.queue_stats(frame.services, frame.caller, name)
    return (200 if found is not None else 404), render.stats(name, found)


def _queue_purge(frame: Frame) -> Reply:
    name = frame.text("queue_name")
    types = frame.field("resource_types")
    queues.queue_purge(frame.services, frame.caller, name, None if types is None else {"resource_types": types})
    return 204, {}


def _message_list(frame: Frame) -> Reply:
    limits = frame.services.settings.limits
    marker = frame.field("marker")
    page = messages.message_list(
        frame.services, frame.caller, frame.text("queue_name"),
        marker=None if marker is None else str(marker),
        limit=frame.integer("limit", limits.default_messages_per_page, 1, limits.max_messages_per_page),
        echo=frame.flag("echo", False), include_claimed=frame.flag("include_claimed", False),
        include_delayed=frame.flag("include_delayed", False),
    )
    body: dict[str, Any] = {"messages": [render.ws_message(m) for m in page.items]}
    if page.items and page.next_marker is not None:
        body["marker"] = page.next_marker  # upstream drops it; with it, websocket clients can page
    return 200, body


def _message_get(frame: Frame) -> Reply:
    found = messages.message_get(frame.services, frame.caller, frame.text("queue_name"), frame.text("message_id"))
    return 200, {"messages": render.ws_message(found)}


def _message_get_many(frame: Frame) -> Reply:
    try:
        found = messages.message_get_many(
            frame.services, frame.caller, frame.text("queue_name"), frame.ids("message_ids")
        )
    except errors.NotFound:
        found = []
    return 200, {"messages": [render.ws_message(m) for m in found]}


def _message_post(frame: Frame) -> Reply:
    items = frame.field("messages", required=True)
    body = {"messages": items}
    size = len(json.dumps(body))
    ids = messages.message_post(frame.services, frame.caller, frame.text("queue_name"), body, size=size).value
    return 201, {"message_ids": ids}


def _message_delete(frame: Frame) -> Reply:
    claim_id = frame.field("claim_id")
    messages.message_delete(
        frame.services, frame.caller, frame.text("queue_name"), frame.text("message_id"),
        claim_id=None if claim_id is None else str(claim_id),
    )
    return 204, {}


def _message_delete_many(frame: Frame) -> Reply:
    queue = frame.text("queue_name")
    has_ids, has_pop = frame.field("message_ids") is not None, frame.field("pop") is not None
    if has_ids == has_pop:
        raise errors.Invalid("Give either message_ids or pop (not both) to delete messages.")
    if has_pop:
        limit = frame.services.settings.limits.max_messages_per_claim_or_pop
        popped = messages.message_pop(frame.services, frame.caller, queue, frame.integer("pop", 1, 1, limit)).value
        return 200, {"messages": [render.popped(m) for m in popped]}
    messages.message_delete_many(frame.services, frame.caller, queue, frame.ids("message_ids"))
    return 204, {}


def _claim_create(frame: Frame) -> Reply:
    limits = frame.services.settings.limits
    limit = frame.integer("limit", limits.default_messages_per_claim, 1, limits.max_messages_per_claim_or_pop)
    options = {k: frame.body[k] for k in ("ttl", "grace") if k in frame.body}
    claim = claims.claim_create(frame.services, frame.caller, frame.text("queue_name"), options, limit=limit).value
    if claim is None:
        return 204, {"claim_id": None}
    return 201, {"claim_id": claim.id, "messages": [render.ws_message(m, claim_id=claim.id) for m in claim.messages]}


def _claim_get(frame: Frame) -> Reply:
    claim = claims.claim_get(frame.services, frame.caller, frame.text("queue_name"), frame.text("claim_id"))
    return 200, {"age": claim.age, "ttl": claim.ttl,
                 "messages": [render.ws_message(m, claim_id=claim.id) for m in claim.messages]}


def _claim_update(frame: Frame) -> Reply:
    claim_id = frame.text("claim_id")
    options = {k: frame.body[k] for k in ("ttl", "grace") if k in frame.body}
    claims.claim_update(frame.services, frame.caller, frame.text("queue_name"), claim_id, options)
    return 204, f"Claim {claim_id} updated."


def _claim_delete(frame: Frame) -> Reply:
    claim_id = frame.text("claim_id")
    claims.claim_delete(frame.services, frame.caller, frame.text("queue_name"), claim_id)
    return 204, f"Claim {claim_id} deleted."


def _subscription_create(frame: Frame) -> Reply:
    queue = frame.text("queue_name")
    body = {k: frame.body[k] for k in ("subscriber", "ttl", "options") if k in frame.body}
    try:
        sid, _created = subscriptions.subscription_create(
            frame.services, frame.caller, queue, body, connection_id=frame.connection_id
        ).value
    except errors.Conflict as exc:
        raise errors.Conflict(f"Subscription {queue} not created. {exc.description}") from None
    return 201, {"subscription_id": sid, "message": f"Subscription {queue} created."}


def _subscription_get(frame: Frame) -> Reply:
    found = subscriptions.subscription_get(
        frame.services, frame.caller, frame.text("queue_name"), frame.text("subscription_id")
    )
    return 200, render.subscription(found)


def _subscription_list(frame: Frame) -> Reply:
    limits = frame.services.settings.limits
    page = subscriptions.subscription_list(
        frame.services, frame.caller, frame.text("queue_name"), marker=frame.field("marker"),
        limit=frame.integer("limit", limits.default_subscriptions_per_page, 1, limits.max_subscriptions_per_page),
    )
    body: dict[str, Any] = {"subscriptions": [render.subscription(s) for s in page.items]}
    if page.next_marker is not None:
        body["marker"] = page.next_marker
    return 200, body


def _subscription_delete(frame: Frame) -> Reply:
    sid = frame.text("subscription_id")
    subscriptions.subscription_delete(frame.services, frame.caller, frame.text("queue_name"), sid)
    return 204, f"Subscription {sid} removed."


ACTIONS: dict[str, Callable[[Frame], Reply]] = {
    "authenticate": _authenticate,
    "queue_list": _queue_list,
    "queue_create": _queue_create,
    "queue_delete": _queue_delete,
    "queue_get": _queue_get,
    "queue_get_stats": _queue_get_stats,
    "queue_purge": _queue_purge,
    "message_list": _message_list,
    "message_get": _message_get,
    "message_get_many": _message_get_many,
    "message_post": _message_post,
    "message_delete": _message_delete,
    "message_delete_many": _message_delete_many,
    "claim_create": _claim_create,
    "claim_get": _claim_get,
    "claim_update": _claim_update,
    "claim_delete": _claim_delete,
    "subscription_create": _subscription_create,
    "subscription_get": _subscription_get,
    "subscription_list": _subscription_list,
    "subscription_delete": _subscription_delete,
}


# -- who may do what over a connection -------------------------------------------------

# The REST method each message action maps to, for pre-signed frames (as upstream).
SIGNED_ACTIONS = {"message_list": "GET", "message_get": "GET", "message_get_many": "GET", "message_post": "POST",
                  "message_delete": "DELETE", "message_delete_many": "DELETE"}


class AuthenticationExpired(errors.Unauthorized):
    pass


def _project(services: Services, connection_id: str, frame: Frame, action: str) -> str | None:
    """The tenant a frame acts for, from its signed headers, its own headers (noauth) or the connection."""
    if "url-signature" in frame.headers:
        method = SIGNED_ACTIONS.get(action)
        if method is None:
            raise errors.Forbidden("Pre-signed frames may only use message actions.")
        queue = frame.body.get("queue_name")
        path = f"/v2/queues/{queue}/messages"
        return auth.identify(services, frame.headers, method=method, path=path).project
    if services.settings.auth_strategy == "noauth":
        return frame.header("X-Project-ID")
    connection = services.connections.get(connection_id)
    if connection is None or not connection.authenticated:
        raise errors.Forbidden("Not authentified: send an authenticate frame with X-Auth-Token first.")
    if connection.expires is not None and connection.expires <= time.time():
        raise AuthenticationExpired("Authentication expired.")
    claimed = frame.header("X-Project-ID")
    if claimed and claimed != connection.project:
        raise errors.Forbidden("X-Project-ID is not the project this connection authenticated for.")
    return connection.project


# -- envelope -------------------------------------------------------------------------


def _reply(request: dict[str, Any], status: int, body: Any) -> str:
    echoed = {
        "action": request.get("action"),
        "body": request.get("body", {}),
        "headers": request.get("headers", {}),
        "api": "v2",
    }
    return json.dumps({"request": echoed, "body": body, "headers": {"status": status}}, separators=(",", ":"))


def _failure(request: dict[str, Any], exc: errors.ServiceError) -> str:
    return _reply(request, exc.status, {"exception": type(exc).__name__, "error": exc.description})


def answer(services: Services, connection_id: str, text: str) -> str:
    """The reply to one frame; never raises for anything the client sent."""
    if len(text.encode()) > MAX_FRAME_BYTES:
        return _failure({}, errors.PayloadTooLarge(
            f"A websocket message may be at most {MAX_FRAME_BYTES} bytes (API Gateway's limit); "
            "post large batches over REST."))
    try:
        request = json.loads(text)
    except ValueError as exc:
        return _failure({}, errors.Invalid(f"Can't decode text (JSON) request: {exc}."))
    if not isinstance(request, dict):
        return _failure({}, errors.Invalid("A request must be a JSON object with action, headers and body."))
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
    except Exception:  # a bug: say so without details, and log it (REST gets Chalice's 500)
        log.exception("websocket %s failed", request.get("action"))
        return _reply(request, 500, {"exception": "InternalError", "error": "Unexpected error."})
    return _reply(request, status, body)


# -- the three routes ------------------------------------------------------------------


def on_connect(services: Services, connection_id: str, source_ip: str) -> None:
    services.connections.open(connection_id, now_ms=int(time.time() * 1000), source_ip=source_ip)


def on_message(services: Services, sender: Sender, connection_id: str, text: str) -> None:
    started = time.perf_counter()
    reply = answer(services, connection_id, text)
    if services.settings.request_log:
        _log_frame(reply, started, connection_id)
    if not sender.send(connection_id, reply):
        on_disconnect(services, connection_id)  # gone: clean up now rather than retry
    elif '"exception":"AuthenticationExpired"' in reply:
        sender.close(connection_id)  # as upstream closes at token expiry (API Gateway sets no close code)


def _log_frame(reply: str, started: float, connection_id: str) -> None:
    try:
        envelope = json.loads(reply)
        request = envelope.get("request") or {}
        headers = {str(k).lower(): v for k, v in (request.get("headers") or {}).items()}
        status = int(envelope["headers"]["status"])
    except (ValueError, KeyError, TypeError, AttributeError):
        return
    observability.emit(observability.request_record(
        transport="websocket", operation=str(request.get("action")), status=status,
        latency_ms=(time.perf_counter() - started) * 1000, request_id=connection_id,
        project=headers.get("x-project-id"), queue=(request.get("body") or {}).get("queue_name"),
    ))


def on_disconnect(services: Services, connection_id: str) -> None:
    """Forget the connection and remove the subscriptions made over it."""
    subscriptions.subscriptions_of_connection_delete(services, connection_id)
    services.connections.close(connection_id)
