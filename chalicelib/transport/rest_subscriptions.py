"""REST routes of subscriptions (``/v2/queues/{queue_name}/subscriptions``).

The handlers' bodies take the :class:`~chalicelib.transport.collection.Collection` they serve:
:mod:`chalicelib.transport.rest_topics` routes a topic's subscriptions to the same bodies.
"""

from __future__ import annotations

from urllib.parse import urlencode

from chalice.app import Blueprint, Response

from chalicelib.api import subscriptions, validation
from chalicelib.transport import render
from chalicelib.transport.collection import QUEUES, Collection
from chalicelib.transport.http import ANY, caller_of, current_services, empty, json_reply, param, read_body, zaqar_view

bp = Blueprint(__name__)


def _subscriptions_path(collection: Collection, name: str) -> str:
    return f"{collection.path(name)}/subscriptions"


# -- the bodies, for queues and topics ----------------------------------------------------


def create(collection: Collection, name: str) -> Response:
    services = current_services()
    caller = collection.scope(services, caller_of(services))
    body, _size = read_body()
    sid, _created = subscriptions.subscription_create(services, caller, name, body).value
    reply = {"subscription_id": sid}
    secret = subscriptions.signing_secret(services, sid)
    if secret is not None:
        reply["signing_secret"] = secret  # beyond upstream: lets the receiver verify X-Zaqar-Signature
    return json_reply(reply, status=201, headers={"Location": _subscriptions_path(collection, name)})


def listing(collection: Collection, name: str) -> Response:
    services = current_services()
    caller = collection.scope(services, caller_of(services))
    limits = services.settings.limits
    limit = validation.query_int(
        param("limit"), "limit", limits.default_subscriptions_per_page, 1, limits.max_subscriptions_per_page
    )
    page = subscriptions.subscription_list(services, caller, name, marker=param("marker"), limit=limit)
    links = []
    if page.next_marker is not None:
        query = urlencode({"marker": page.next_marker, "limit": limit})
        links.append({"rel": "next", "href": f"{_subscriptions_path(collection, name)}?{query}"})
    return json_reply({"subscriptions": [render.subscription(s) for s in page.items], "links": links})


def get(collection: Collection, name: str, subscription_id: str) -> Response:
    services = current_services()
    caller = collection.scope(services, caller_of(services))
    found = subscriptions.subscription_get(services, caller, name, subscription_id)
    return json_reply(render.subscription(found, signing_secret=subscriptions.signing_secret(services, found.id)))


def update(collection: Collection, name: str, subscription_id: str) -> Response:
    services = current_services()
    caller = collection.scope(services, caller_of(services))
    body, _size = read_body()
    subscriptions.subscription_update(services, caller, name, subscription_id, body)
    return empty(headers={"Location": f"{_subscriptions_path(collection, name)}/{subscription_id}"})


def delete(collection: Collection, name: str, subscription_id: str) -> Response:
    services = current_services()
    subscriptions.subscription_delete(services, collection.scope(services, caller_of(services)), name, subscription_id)
    return empty()


def confirm(collection: Collection, name: str, subscription_id: str) -> Response:
    services = current_services()
    caller = collection.scope(services, caller_of(services))  # the confirm URL's signed headers are checked here
    body, _size = read_body()
    subscriptions.subscription_confirm(services, caller, name, subscription_id, body)
    return empty(headers={"Location": f"{_subscriptions_path(collection, name)}/{subscription_id}/confirm"})


# -- the routes of queues ---------------------------------------------------------------------


@bp.route("/v2/queues/{queue_name}/subscriptions", methods=["POST"], content_types=ANY)
@zaqar_view
def subscription_create(queue_name: str) -> Response:
    return create(QUEUES, queue_name)


@bp.route("/v2/queues/{queue_name}/subscriptions", methods=["GET"], content_types=ANY)
@zaqar_view
def subscription_list(queue_name: str) -> Response:
    return listing(QUEUES, queue_name)


@bp.route("/v2/queues/{queue_name}/subscriptions/{subscription_id}", methods=["GET"], content_types=ANY)
@zaqar_view
def subscription_get(queue_name: str, subscription_id: str) -> Response:
    return get(QUEUES, queue_name, subscription_id)


@bp.route("/v2/queues/{queue_name}/subscriptions/{subscription_id}", methods=["PATCH"], content_types=ANY)
@zaqar_view
def subscription_update(queue_name: str, subscription_id: str) -> Response:
    return update(QUEUES, queue_name, subscription_id)


@bp.route("/v2/queues/{queue_name}/subscriptions/{subscription_id}", methods=["DELETE"], content_types=ANY)
@zaqar_view
def subscription_delete(queue_name: str, subscription_id: str) -> Response:
    return delete(QUEUES, queue_name, subscription_id)


@bp.route("/v2/queues/{queue_name}/subscriptions/{subscription_id}/confirm", methods=["PUT"], content_types=ANY)
@zaqar_view
def subscription_confirm(queue_name: str, subscription_id: str) -> Response:
    return confirm(QUEUES, queue_name, subscription_id)
