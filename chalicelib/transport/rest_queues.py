"""REST routes of queues (``/v2/queues``, ``/v2/queues/{queue_name}`` and its stats, purge and share).

The handlers' bodies take the :class:`~chalicelib.transport.collection.Collection` they serve:
:mod:`chalicelib.transport.rest_topics` routes ``/v2/topics`` to the same bodies.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from chalice.app import Blueprint, Response

from chalicelib import errors
from chalicelib.api import queues, redrive, share, validation
from chalicelib.transport import render
from chalicelib.transport.collection import QUEUES, Collection
from chalicelib.transport.http import (
    ANY,
    caller_of,
    current_services,
    empty,
    header,
    json_reply,
    params_of,
    read_body,
    who,
    zaqar_view,
)

bp = Blueprint(__name__)
_QUEUE_LIST_OPTIONS = {"marker", "limit", "detailed", "name", "with_count"}


# -- the bodies, for queues and topics ----------------------------------------------------


def listing(collection: Collection) -> Response:
    services = current_services()
    caller = collection.scope(services, caller_of(services))
    limits = services.settings.limits
    params = params_of()
    limit = validation.query_int(params.get("limit"), "limit", limits.default_queues_per_page, 1, limits.max_queues_per_page)
    detailed = validation.query_bool(params.get("detailed"), "detailed", False)
    with_count = validation.query_bool(params.get("with_count"), "with_count", False)
    page = queues.queue_list(
        services, caller, marker=params.get("marker"), limit=limit, detailed=detailed, name=params.get("name"),
        with_count=with_count, filters=queues.metadata_filters(params, _QUEUE_LIST_OPTIONS),
    )
    items = []
    for item in page.items:
        entry: dict[str, Any] = {"name": item.name, "href": collection.path(item.name)}
        if detailed:
            entry["metadata"] = collection.reported(services, item.metadata or {})
        items.append(entry)
    links = []
    if page.next_marker is not None:
        options = {"marker": page.next_marker, "limit": str(limit), "detailed": str(detailed).lower(),
                   "name": params.get("name"), "with_count": str(with_count).lower() if with_count else None}
        query = urlencode({k: v for k, v in options.items() if v is not None})
        links.append({"rel": "next", "href": f"/v2/{collection.name}?{query}"})
    body: dict[str, Any] = {collection.name: items, "links": links}
    if page.count:
        body["count"] = page.count
    return json_reply(body)


def create(collection: Collection, name: str) -> Response:
    services = current_services()
    caller = collection.scope(services, caller_of(services))
    metadata, size = read_body(optional=True)
    outcome = queues.queue_create(services, caller, name, metadata, size=size)
    return empty(201 if outcome.value else 204, {"Location": collection.path(name)})


def get(collection: Collection, name: str) -> Response:
    services = current_services()
    caller = collection.scope(services, caller_of(services))
    return json_reply(collection.reported(services, queues.queue_get(services, caller, name)))


def update(collection: Collection, name: str) -> Response:
    services = current_services()
    caller = collection.scope(services, caller_of(services))
    queues.check_patch_media_type(header("content-type"))  # before the body, as upstream
    patch, size = read_body()
    outcome = queues.queue_update(services, caller, name, patch, size=size)
    return json_reply(collection.reported(services, outcome.value))


def delete(collection: Collection, name: str) -> Response:
    services = current_services()
    queues.queue_delete(services, collection.scope(services, caller_of(services)), name)
    return empty()


def stats(collection: Collection, name: str) -> Response:
    services = current_services()
    found = queues.queue_stats(services, collection.scope(services, caller_of(services)), name)
    return json_reply(render.stats(name, found, collection.name))


def purge(collection: Collection, name: str) -> Response:
    services = current_services()
    caller = collection.scope(services, caller_of(services))
    body, _size = read_body(optional=True)
    queues.queue_purge(services, caller, name, body)
    return empty()


# -- the routes of queues ---------------------------------------------------------------------


@bp.route("/v2/queues", methods=["GET"], content_types=ANY)
@zaqar_view
def queue_list() -> Response:
    return listing(QUEUES)


@bp.route("/v2/queues/{queue_name}", methods=["PUT"], content_types=ANY)
@zaqar_view
def queue_create(queue_name: str) -> Response:
    return create(QUEUES, queue_name)


@bp.route("/v2/queues/{queue_name}", methods=["GET"], content_types=ANY)
@zaqar_view
def queue_get(queue_name: str) -> Response:
    return get(QUEUES, queue_name)


@bp.route("/v2/queues/{queue_name}", methods=["PATCH"], content_types=ANY)
@zaqar_view
def queue_update(queue_name: str) -> Response:
    return update(QUEUES, queue_name)


@bp.route("/v2/queues/{queue_name}", methods=["DELETE"], content_types=ANY)
@zaqar_view
def queue_delete(queue_name: str) -> Response:
    return delete(QUEUES, queue_name)


@bp.route("/v2/queues/{queue_name}/stats", methods=["GET"], content_types=ANY)
@zaqar_view
def queue_stats(queue_name: str) -> Response:
    return stats(QUEUES, queue_name)


@bp.route("/v2/queues/{queue_name}/redrive", methods=["POST"], content_types=ANY)
@zaqar_view
def queue_redrive(queue_name: str) -> Response:
    services = current_services()
    body, _size = read_body(optional=True)
    moved = redrive.redrive(services, caller_of(services), queue_name, body).value
    return json_reply({"moved": moved})


@bp.route("/v2/queues/{queue_name}/purge", methods=["POST"], content_types=ANY)
@zaqar_view
def queue_purge(queue_name: str) -> Response:
    return purge(QUEUES, queue_name)


@bp.route("/v2/queues/{queue_name}/share", methods=["POST"], content_types=ANY)
@zaqar_view
def queue_share(queue_name: str) -> Response:
    services = current_services()
    caller, identity = who(services)
    if identity.signed:
        raise errors.Forbidden("A pre-signed URL cannot be used to make others.")
    body, _size = read_body(optional=True)
    return json_reply(share.share(services, caller, queue_name, body))
