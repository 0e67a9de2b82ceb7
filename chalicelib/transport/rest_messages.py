"""REST routes of messages and claims (``/v2/queues/{queue_name}/messages``, ``.../claims``).

Posting, listing and getting messages take the :class:`~chalicelib.transport.collection.Collection`
they serve: :mod:`chalicelib.transport.rest_topics` routes a topic's messages to the same bodies.
Deleting, popping and claiming are for queues only.
"""

from __future__ import annotations

from chalice.app import Blueprint, Response

from chalicelib import errors
from chalicelib.api import claims, messages, validation
from chalicelib.transport import render
from chalicelib.transport.collection import QUEUES, Collection
from chalicelib.transport.http import (
    ANY,
    caller_of,
    current_services,
    empty,
    header,
    json_reply,
    list_param,
    param,
    params_of,
    read_body,
    zaqar_view,
)

bp = Blueprint(__name__)


# -- the bodies, for queues and topics ----------------------------------------------------


def post(collection: Collection, name: str) -> Response:
    services = current_services()
    caller = collection.scope(services, caller_of(services))
    body, size = read_body()
    ids = messages.message_post(services, caller, name, body, size=size,
                                idempotency_key=header(messages.IDEMPOTENCY_KEY)).value
    base = f"{collection.path(name)}/messages"
    return json_reply(
        {"resources": [f"{base}/{mid}" for mid in ids]}, status=201, headers={"Location": f"{base}?ids={','.join(ids)}"}
    )


def listing(collection: Collection, name: str) -> Response:
    services = current_services()
    caller = collection.scope(services, caller_of(services))
    limits = services.settings.limits
    params = params_of()
    listed = list_param("ids")
    if listed is not None:
        ids = validation.query_ids(listed, "ids", limits.max_messages_per_page)
        found = messages.message_get_many(services, caller, name, ids)
        return json_reply({"messages": [render.message(name, m, collection=collection.name) for m in found]})
    limit = validation.query_int(params.get("limit"), "limit", limits.default_messages_per_page, 1, limits.max_messages_per_page)
    echo = validation.query_bool(params.get("echo"), "echo", False)
    include_claimed = validation.query_bool(params.get("include_claimed"), "include_claimed", False)
    include_delayed = validation.query_bool(params.get("include_delayed"), "include_delayed", False)
    page = messages.message_list(
        services, caller, name, marker=params.get("marker"), limit=limit, echo=echo,
        include_claimed=include_claimed, include_delayed=include_delayed,
    )
    links = []
    if page.next_marker is not None and page.items:
        query = f"marker={page.next_marker}&limit={limit}&echo={str(echo).lower()}"
        if include_claimed:
            query += "&include_claimed=true"
        if include_delayed:
            query += "&include_delayed=true"
        links.append({"rel": "next", "href": f"{collection.path(name)}/messages?{query}"})
    shown = [render.message(name, m, collection=collection.name) for m in page.items]
    return json_reply({"messages": shown, "links": links})


def get(collection: Collection, name: str, message_id: str) -> Response:
    services = current_services()
    message = messages.message_get(services, collection.scope(services, caller_of(services)), name, message_id)
    return json_reply(render.message(name, message, collection=collection.name))


# -- the routes of queues ---------------------------------------------------------------------


@bp.route("/v2/queues/{queue_name}/messages", methods=["POST"], content_types=ANY)
@zaqar_view
def message_post(queue_name: str) -> Response:
    return post(QUEUES, queue_name)


@bp.route("/v2/queues/{queue_name}/messages", methods=["GET"], content_types=ANY)
@zaqar_view
def message_list(queue_name: str) -> Response:
    return listing(QUEUES, queue_name)


@bp.route("/v2/queues/{queue_name}/messages", methods=["DELETE"], content_types=ANY)
@zaqar_view
def message_delete_many(queue_name: str) -> Response:
    services = current_services()
    caller = caller_of(services)
    limits = services.settings.limits
    ids_raw, pop_raw = list_param("ids"), param("pop")
    if (ids_raw is None) == (pop_raw is None):
        raise errors.Invalid("Give either ids or pop (not both) to delete messages.")
    if pop_raw is not None:
        count = validation.query_int(pop_raw, "pop", 1, 1, limits.max_messages_per_claim_or_pop)
        popped = messages.message_pop(services, caller, queue_name, count).value
        return json_reply({"messages": [render.popped(m) for m in popped]})
    assert ids_raw is not None
    ids = validation.query_ids(ids_raw, "ids", limits.max_messages_per_page)
    messages.message_delete_many(services, caller, queue_name, ids)
    return empty()


@bp.route("/v2/queues/{queue_name}/messages/{message_id}", methods=["GET"], content_types=ANY)
@zaqar_view
def message_get(queue_name: str, message_id: str) -> Response:
    return get(QUEUES, queue_name, message_id)


@bp.route("/v2/queues/{queue_name}/messages/{message_id}", methods=["DELETE"], content_types=ANY)
@zaqar_view
def message_delete(queue_name: str, message_id: str) -> Response:
    services = current_services()
    caller = caller_of(services)
    messages.message_delete(services, caller, queue_name, message_id, claim_id=param("claim_id") or None)
    return empty()


# -- claims ----------------------------------------------------------------------


@bp.route("/v2/queues/{queue_name}/claims", methods=["POST"], content_types=ANY)
@zaqar_view
def claim_create(queue_name: str) -> Response:
    services = current_services()
    caller = caller_of(services)
    limits = services.settings.limits
    limit = validation.query_int(
        param("limit"), "limit", limits.default_messages_per_claim, 1, limits.max_messages_per_claim_or_pop
    )
    body, _size = read_body(optional=True)
    claim = claims.claim_create(services, caller, queue_name, body, limit=limit).value
    if claim is None:
        return empty()
    rendered = [render.message(queue_name, m, claim_id=claim.id) for m in claim.messages]
    return json_reply(
        {"messages": rendered}, status=201, headers={"Location": f"{render.queue_path(queue_name)}/claims/{claim.id}"}
    )


@bp.route("/v2/queues/{queue_name}/claims/{claim_id}", methods=["GET"], content_types=ANY)
@zaqar_view
def claim_get(queue_name: str, claim_id: str) -> Response:
    services = current_services()
    claim = claims.claim_get(services, caller_of(services), queue_name, claim_id)
    return json_reply({
        "age": claim.age,
        "ttl": claim.ttl,
        "href": f"{render.queue_path(queue_name)}/claims/{claim.id}",
        "messages": [render.message(queue_name, m, claim_id=claim.id) for m in claim.messages],
    })


@bp.route("/v2/queues/{queue_name}/claims/{claim_id}", methods=["PATCH"], content_types=ANY)
@zaqar_view
def claim_update(queue_name: str, claim_id: str) -> Response:
    services = current_services()
    caller = caller_of(services)
    body, _size = read_body(optional=True)
    claims.claim_update(services, caller, queue_name, claim_id, body)
    return empty()


@bp.route("/v2/queues/{queue_name}/claims/{claim_id}", methods=["DELETE"], content_types=ANY)
@zaqar_view
def claim_delete(queue_name: str, claim_id: str) -> Response:
    services = current_services()
    claims.claim_delete(services, caller_of(services), queue_name, claim_id)
    return empty()
