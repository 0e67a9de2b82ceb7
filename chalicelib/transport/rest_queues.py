"""REST routes of queues (``/v2/queues``, ``/v2/queues/{queue_name}`` and its stats, purge and share)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from chalice.app import Blueprint, Response

from chalicelib import errors
from chalicelib.api import queues, share, validation
from chalicelib.transport import render
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


@bp.route("/v2/queues", methods=["GET"], content_types=ANY)
@zaqar_view
def queue_list() -> Response:
    services = current_services()
    caller = caller_of(services)
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
        entry: dict[str, Any] = {"name": item.name, "href": render.queue_path(item.name)}
        if detailed:
            entry["metadata"] = item.metadata
        items.append(entry)
    links = []
    if page.next_marker is not None:
        options = {"marker": page.next_marker, "limit": str(limit), "detailed": str(detailed).lower(),
                   "name": params.get("name"), "with_count": str(with_count).lower() if with_count else None}
        query = urlencode({k: v for k, v in options.items() if v is not None})
        links.append({"rel": "next", "href": f"/v2/queues?{query}"})
    body: dict[str, Any] = {"queues": items, "links": links}
    if page.count:
        body["count"] = page.count
    return json_reply(body)


@bp.route("/v2/queues/{queue_name}", methods=["PUT"], content_types=ANY)
@zaqar_view
def queue_create(queue_name: str) -> Response:
    services = current_services()
    caller = caller_of(services)
    metadata, size = read_body(optional=True)
    outcome = queues.queue_create(services, caller, queue_name, metadata, size=size)
    return empty(201 if outcome.value else 204, {"Location": render.queue_path(queue_name)})


@bp.route("/v2/queues/{queue_name}", methods=["GET"], content_types=ANY)
@zaqar_view
def queue_get(queue_name: str) -> Response:
    services = current_services()
    return json_reply(queues.queue_get(services, caller_of(services), queue_name))


@bp.route("/v2/queues/{queue_name}", methods=["PATCH"], content_types=ANY)
@zaqar_view
def queue_update(queue_name: str) -> Response:
    services = current_services()
    caller = caller_of(services)
    queues.check_patch_media_type(header("content-type"))  # before the body, as upstream
    patch, size = read_body()
    outcome = queues.queue_update(services, caller, queue_name, patch, size=size)
    return json_reply(outcome.value)


@bp.route("/v2/queues/{queue_name}", methods=["DELETE"], content_types=ANY)
@zaqar_view
def queue_delete(queue_name: str) -> Response:
    services = current_services()
    queues.queue_delete(services, caller_of(services), queue_name)
    return empty()


@bp.route("/v2/queues/{queue_name}/stats", methods=["GET"], content_types=ANY)
@zaqar_view
def queue_stats(queue_name: str) -> Response:
    services = current_services()
    return json_reply(render.stats(queue_name, queues.queue_stats(services, caller_of(services), queue_name)))


@bp.route("/v2/queues/{queue_name}/purge", methods=["POST"], content_types=ANY)
@zaqar_view
def queue_purge(queue_name: str) -> Response:
    services = current_services()
    caller = caller_of(services)
    body, _size = read_body(optional=True)
    queues.queue_purge(services, caller, queue_name, body)
    return empty()


@bp.route("/v2/queues/{queue_name}/share", methods=["POST"], content_types=ANY)
@zaqar_view
def queue_share(queue_name: str) -> Response:
    services = current_services()
    caller, identity = who(services)
    if identity.signed:
        raise errors.Forbidden("A pre-signed URL cannot be used to make others.")
    body, _size = read_body(optional=True)
    return json_reply(share.share(services, caller, queue_name, body))
