"""The websocket actions: each is one call into ``chalicelib.api``, the same call REST makes.

A :class:`Frame` is one request on a connection; the action reads its body
fields (with the checks the websocket schema implies) and returns the
status and body of the reply. The actions on queues are written for the
frame's :class:`~chalicelib.transport.collection.Collection`: each
``topic_*`` action (beyond upstream) is the queue action of the same name
run for topics (``topic_name`` in the body instead of ``queue_name``).
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Callable
from typing import Any

from chalicelib import errors
from chalicelib.api import (
    claims,
    connections,
    inputs,
    messages,
    queues,
    redrive,
    subscriptions,
    topics,
    validation,
)
from chalicelib.api.context import Caller, Services
from chalicelib.transport import auth, render
from chalicelib.transport.collection import QUEUES, TOPICS, Collection


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
        inputs.check_headers(headers.items())  # as REST's: no control characters in names or values
        self.headers: dict[str, Any] = {str(k).lower(): v for k, v in headers.items()}
        self.body: dict[str, Any] = body
        self.collection: Collection = QUEUES
        """What the frame's actions act on: queues, or topics for the ``topic_*`` actions."""

    def within(self, collection: Collection) -> Frame:
        """This frame, acting on ``collection``."""
        other = copy.copy(self)
        other.collection = collection
        return other

    def header(self, name: str) -> str | None:
        value = self.headers.get(name.lower())
        return value if isinstance(value, str) else None

    def _tenant(self) -> Caller:
        settings = self.services.settings
        client = validation.client_id(self.header("Client-ID"), strict_uuid=settings.client_id_uuid_strict)
        project = validation.project_id(self.project, settings.limits)
        return Caller(project=project, client_id=client)

    @property
    def caller(self) -> Caller:
        """Who asks, as the frame's collection sees it (a topic's caller acts in its topic space)."""
        return self.collection.scope(self.services, self._tenant())

    def caller_with_token(self) -> Caller:
        """The caller, with its Keystone token when this frame carries one (a trust is made with it): the
        connection keeps no token, so a frame that needs one sends X-Auth-Token again."""
        caller = self._tenant()
        token = self.header("X-Auth-Token")
        if token and self.services.settings.auth_strategy == "keystone":
            identity = auth.identify(self.services, {"x-auth-token": token}, method="POST", path="/v2")
            if identity.project != caller.project:
                raise errors.Forbidden(
                    "The frame's X-Auth-Token is not for the project this connection authenticated for.")
            caller = dataclasses.replace(caller, credentials=identity.credentials)
        return self.collection.scope(self.services, caller)

    def name(self) -> str:
        """The queue (``queue_name``) or topic (``topic_name``) the frame acts on."""
        return self.text(self.collection.field)

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

    def marker(self) -> str | None:
        """A paging marker as the previous reply gave it (a string; numbers are accepted)."""
        value = self.field("marker")
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise errors.Invalid("marker must be the marker string of a previous reply.")
        return str(value)

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
    connections.connection_authenticate(frame.services, frame.connection_id, project=identity.project,
                                        expires=identity.expires)
    return 200, {"message": "Authentified."}


def _queue_list(frame: Frame) -> Reply:
    limits = frame.services.settings.limits
    detailed = frame.flag("detailed", False)
    limit = frame.integer("limit", limits.default_queues_per_page, 1, limits.max_queues_per_page)
    page = queues.queue_list(
        frame.services, frame.caller, marker=frame.marker(), limit=limit, detailed=detailed, name=None,
        with_count=False, filters={},
    )
    items = [{"name": q.name, **({"metadata": q.stored or {}} if detailed else {})} for q in page.items]
    body: dict[str, Any] = {frame.collection.name: items}
    if page.next_marker is not None and len(items) == limit:  # a short page is the last one: no marker
        body["marker"] = page.next_marker
    return 200, body


def _queue_create(frame: Frame) -> Reply:
    name = frame.name()
    metadata = frame.field("metadata", {})
    size = len(json.dumps(metadata))
    created = queues.queue_create(frame.services, frame.caller, name, metadata, size=size).value
    return (201 if created else 204), f"{frame.collection.noun} {name} created."


def _queue_delete(frame: Frame) -> Reply:
    name = frame.name()
    queues.queue_delete(frame.services, frame.caller, name)
    return 204, f"{frame.collection.noun} {name} removed."


def _queue_get(frame: Frame) -> Reply:
    found = queues.queue_get(frame.services, frame.caller, frame.name())
    return 200, frame.collection.reported(frame.services, found)


def _queue_get_stats(frame: Frame) -> Reply:
    name = frame.name()
    found = queues.queue_stats(frame.services, frame.caller, name)
    return (200 if found is not None else 404), render.stats(name, found, frame.collection.name)


def _queue_purge(frame: Frame) -> Reply:
    name = frame.name()
    types = frame.field("resource_types")
    queues.queue_purge(frame.services, frame.caller, name, None if types is None else {"resource_types": types})
    return 204, {}


def _queue_redrive(frame: Frame) -> Reply:
    body = {key: frame.field(key) for key in ("destination", "limit") if frame.field(key) is not None}
    return 200, {"moved": redrive.redrive(frame.services, frame.caller, frame.text("queue_name"), body).value}


def _message_list(frame: Frame) -> Reply:
    limits = frame.services.settings.limits
    page = messages.message_list(
        frame.services, frame.caller, frame.name(),
        marker=frame.marker(),
        limit=frame.integer("limit", limits.default_messages_per_page, 1, limits.max_messages_per_page),
        echo=frame.flag("echo", False), include_claimed=frame.flag("include_claimed", False),
        include_delayed=frame.flag("include_delayed", False),
    )
    body: dict[str, Any] = {"messages": [render.ws_message(m) for m in page.items]}
    if page.items and page.next_marker is not None:
        body["marker"] = page.next_marker  # upstream drops it; with it, websocket clients can page
    return 200, body


def _message_get(frame: Frame) -> Reply:
    found = messages.message_get(frame.services, frame.caller, frame.name(), frame.text("message_id"))
    return 200, {"messages": render.ws_message(found)}


def _message_get_many(frame: Frame) -> Reply:
    try:
        found = messages.message_get_many(frame.services, frame.caller, frame.name(), frame.ids("message_ids"))
    except errors.NotFound:
        found = []
    return 200, {"messages": [render.ws_message(m) for m in found]}


def _message_post(frame: Frame) -> Reply:
    items = frame.field("messages", required=True)
    body = {"messages": items}
    size = len(json.dumps(body))
    ids = messages.message_post(frame.services, frame.caller, frame.name(), body, size=size,
                                idempotency_key=frame.header(messages.IDEMPOTENCY_KEY)).value
    return 201, {"message_ids": ids}


def _message_delete(frame: Frame) -> Reply:
    claim_id = frame.field("claim_id")
    if claim_id is not None and not isinstance(claim_id, str):
        raise errors.Invalid("claim_id must be the claim's id, a string.")
    messages.message_delete(
        frame.services, frame.caller, frame.text("queue_name"), frame.text("message_id"), claim_id=claim_id,
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
    queue = frame.name()
    body = {k: frame.body[k] for k in ("subscriber", "ttl", "options") if k in frame.body}
    try:
        sid, _created = subscriptions.subscription_create(
            frame.services, frame.caller_with_token(), queue, body, connection_id=frame.connection_id
        ).value
    except errors.Conflict as exc:
        raise errors.Conflict(f"Subscription {queue} not created. {exc.description}") from None
    reply = {"subscription_id": sid, "message": f"Subscription {queue} created."}
    secret = subscriptions.signing_secret(frame.services, sid)
    if secret is not None:
        reply["signing_secret"] = secret
    return 201, reply


def _subscription_get(frame: Frame) -> Reply:
    found = subscriptions.subscription_get(frame.services, frame.caller, frame.name(), frame.text("subscription_id"))
    return 200, render.subscription(found, signing_secret=subscriptions.signing_secret(frame.services, found.id))


def _subscription_list(frame: Frame) -> Reply:
    limits = frame.services.settings.limits
    page = subscriptions.subscription_list(
        frame.services, frame.caller, frame.name(), marker=frame.marker(),
        limit=frame.integer("limit", limits.default_subscriptions_per_page, 1, limits.max_subscriptions_per_page),
    )
    body: dict[str, Any] = {"subscriptions": [render.subscription(s) for s in page.items]}
    if page.next_marker is not None:
        body["marker"] = page.next_marker
    return 200, body


def _subscription_delete(frame: Frame) -> Reply:
    sid = frame.text("subscription_id")
    subscriptions.subscription_delete(frame.services, frame.caller_with_token(), frame.name(), sid)
    return 204, f"Subscription {sid} removed."


def _on_topics(action: Callable[[Frame], Reply]) -> Callable[[Frame], Reply]:
    """The queue action, for the topic the frame's ``topic_name`` names."""

    def topic_action(frame: Frame) -> Reply:
        with topics.worded():
            return action(frame.within(TOPICS))

    return topic_action


ACTIONS: dict[str, Callable[[Frame], Reply]] = {
    "authenticate": _authenticate,
    "queue_list": _queue_list,
    "queue_create": _queue_create,
    "queue_delete": _queue_delete,
    "queue_get": _queue_get,
    "queue_get_stats": _queue_get_stats,
    "queue_purge": _queue_purge,
    "queue_redrive": _queue_redrive,
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
    # topics (beyond upstream, whose websocket API has none)
    "topic_list": _on_topics(_queue_list),
    "topic_create": _on_topics(_queue_create),
    "topic_delete": _on_topics(_queue_delete),
    "topic_get": _on_topics(_queue_get),
    "topic_get_stats": _on_topics(_queue_get_stats),
    "topic_purge": _on_topics(_queue_purge),
    "topic_message_list": _on_topics(_message_list),
    "topic_message_get": _on_topics(_message_get),
    "topic_message_get_many": _on_topics(_message_get_many),
    "topic_message_post": _on_topics(_message_post),
    "topic_subscription_create": _on_topics(_subscription_create),
    "topic_subscription_get": _on_topics(_subscription_get),
    "topic_subscription_list": _on_topics(_subscription_list),
    "topic_subscription_delete": _on_topics(_subscription_delete),
}
