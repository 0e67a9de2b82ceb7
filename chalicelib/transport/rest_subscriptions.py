"""REST routes of subscriptions (``/v2/queues/{queue_name}/subscriptions``)."""

from __future__ import annotations

from urllib.parse import urlencode

from chalice.app import Blueprint, Response

from chalicelib.api import subscriptions, validation
from chalicelib.transport import render
from chalicelib.transport.http import ANY, caller_of, current_services, empty, json_reply, param, read_body, zaqar_view

bp = Blueprint(__name__)


def _subscriptions_path(queue: str) -> str:
    return f"{render.queue_path(queue)}/subscriptions"


@bp.route("/v2/queues/{queue_name}/subscriptions", methods=["POST"], content_types=ANY)
@zaqar_view
def subscription_create(queue_name: str) -> Response:
    services = current_services()
    caller = caller_of(services)
    body, _size = read_body()
    sid, _created = subscriptions.subscription_create(services, caller, queue_name, body).value
    reply = {"subscription_id": sid}
    secret = subscriptions.signing_secret(services, sid)
    if secret is not None:
        reply["signing_secret"] = secret  # beyond upstream: lets the receiver verify X-Zaqar-Signature
    return json_reply(reply, status=201, headers={"Location": _subscriptions_path(queue_name)})


@bp.route("/v2/queues/{queue_name}/subscriptions", methods=["GET"], content_types=ANY)
@zaqar_view
def subscription_list(queue_name: str) -> Response:
    services = current_services()
    caller = caller_of(services)
    limits = services.settings.limits
    limit = validation.query_int(
        param("limit"), "limit", limits.default_subscriptions_per_page, 1, limits.max_subscriptions_per_page
    )
    page = subscriptions.subscription_list(services, caller, queue_name, marker=param("marker"), limit=limit)
    links = []
    if page.next_marker is not None:
        query = urlencode({"marker": page.next_marker, "limit": limit})
        links.append({"rel": "next", "href": f"{_subscriptions_path(queue_name)}?{query}"})
    return json_reply({"subscriptions": [render.subscription(s) for s in page.items], "links": links})


@bp.route("/v2/queues/{queue_name}/subscriptions/{subscription_id}", methods=["GET"], content_types=ANY)
@zaqar_view
def subscription_get(queue_name: str, subscription_id: str) -> Response:
    services = current_services()
    found = subscriptions.subscription_get(services, caller_of(services), queue_name, subscription_id)
    return json_reply(render.subscription(found, signing_secret=subscriptions.signing_secret(services, found.id)))


@bp.route("/v2/queues/{queue_name}/subscriptions/{subscription_id}", methods=["PATCH"], content_types=ANY)
@zaqar_view
def subscription_update(queue_name: str, subscription_id: str) -> Response:
    services = current_services()
    caller = caller_of(services)
    body, _size = read_body()
    subscriptions.subscription_update(services, caller, queue_name, subscription_id, body)
    return empty(headers={"Location": f"{_subscriptions_path(queue_name)}/{subscription_id}"})


@bp.route("/v2/queues/{queue_name}/subscriptions/{subscription_id}", methods=["DELETE"], content_types=ANY)
@zaqar_view
def subscription_delete(queue_name: str, subscription_id: str) -> Response:
    services = current_services()
    subscriptions.subscription_delete(services, caller_of(services), queue_name, subscription_id)
    return empty()


@bp.route("/v2/queues/{queue_name}/subscriptions/{subscription_id}/confirm", methods=["PUT"], content_types=ANY)
@zaqar_view
def subscription_confirm(queue_name: str, subscription_id: str) -> Response:
    services = current_services()
    caller = caller_of(services)  # the confirm URL's signed headers are checked here
    body, _size = read_body()
    subscriptions.subscription_confirm(services, caller, queue_name, subscription_id, body)
    return empty(headers={"Location": f"{_subscriptions_path(queue_name)}/{subscription_id}/confirm"})
