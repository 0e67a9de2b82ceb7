"""The admin REST API: pools and flavors (admin mode only, as upstream)."""

from __future__ import annotations

from urllib.parse import urlencode

from chalice.app import Blueprint, Response

from chalicelib.api import admin, validation
from chalicelib.transport import auth
from chalicelib.transport.http import ANY, current_services, empty, json_reply, param, read_body, who, zaqar_view

bp = Blueprint(__name__)
MAX_PAGE = 20


def _admin(*, writes: bool = True) -> None:
    services = current_services()
    auth.require_admin_mode(services)
    _caller, identity = who(services)
    if writes:
        auth.require_admin(identity)


def _page() -> tuple[str | None, int, bool]:
    limit = validation.query_int(param("limit"), "limit", 10, 1, MAX_PAGE)
    return param("marker"), limit, validation.query_bool(param("detailed"), "detailed", False)


def _links(collection: str, names: list[str], limit: int, detailed: bool) -> list[dict[str, str]]:
    if not names:
        return []
    query = urlencode({"marker": names[-1], "limit": limit, "detailed": str(detailed).lower()})
    return [{"rel": "next", "href": f"/v2/{collection}?{query}"}]


@bp.route("/v2/pools", methods=["GET"], content_types=ANY)
@zaqar_view
def pool_list() -> Response:
    _admin()
    marker, limit, detailed = _page()
    found = admin.pool_list(current_services(), marker=marker, limit=limit)
    return json_reply({"pools": [admin.pool_view(p, detailed=detailed) for p in found],
                  "links": _links("pools", [p.name for p in found], limit, detailed)})


@bp.route("/v2/pools/{pool_name}", methods=["PUT"], content_types=ANY)
@zaqar_view
def pool_create(pool_name: str) -> Response:
    _admin()
    body, _size = read_body()
    admin.pool_create(current_services(), pool_name, body)
    return empty(201, {"Location": f"/v2/pools/{pool_name}"})


@bp.route("/v2/pools/{pool_name}", methods=["GET"], content_types=ANY)
@zaqar_view
def pool_get(pool_name: str) -> Response:
    _admin()
    detailed = validation.query_bool(param("detailed"), "detailed", False)
    return json_reply(admin.pool_view(admin.pool_get(current_services(), pool_name), detailed=detailed))


@bp.route("/v2/pools/{pool_name}", methods=["PATCH"], content_types=ANY)
@zaqar_view
def pool_update(pool_name: str) -> Response:
    _admin()
    body, _size = read_body()
    return json_reply(admin.pool_view(admin.pool_update(current_services(), pool_name, body), detailed=True))


@bp.route("/v2/pools/{pool_name}", methods=["DELETE"], content_types=ANY)
@zaqar_view
def pool_delete(pool_name: str) -> Response:
    _admin()
    admin.pool_delete(current_services(), pool_name)
    return empty()


@bp.route("/v2/flavors", methods=["GET"], content_types=ANY)
@zaqar_view
def flavor_list() -> Response:
    _admin(writes=False)
    marker, limit, detailed = _page()
    services = current_services()
    found = admin.flavor_list(services, marker=marker, limit=limit)
    return json_reply({"flavors": [admin.flavor_view(services, f, detailed=detailed) for f in found],
                  "links": _links("flavors", [f["name"] for f in found], limit, detailed)})


@bp.route("/v2/flavors/{flavor_name}", methods=["PUT"], content_types=ANY)
@zaqar_view
def flavor_create(flavor_name: str) -> Response:
    _admin()
    body, _size = read_body()
    admin.flavor_create(current_services(), flavor_name, body)
    return empty(201, {"Location": f"/v2/flavors/{flavor_name}"})


@bp.route("/v2/flavors/{flavor_name}", methods=["GET"], content_types=ANY)
@zaqar_view
def flavor_get(flavor_name: str) -> Response:
    _admin(writes=False)
    services = current_services()
    return json_reply(admin.flavor_view(services, admin.flavor_get(services, flavor_name)))


@bp.route("/v2/flavors/{flavor_name}", methods=["PATCH"], content_types=ANY)
@zaqar_view
def flavor_update(flavor_name: str) -> Response:
    _admin()
    services = current_services()
    body, _size = read_body()
    return json_reply(admin.flavor_view(services, admin.flavor_update(services, flavor_name, body)))


@bp.route("/v2/flavors/{flavor_name}", methods=["DELETE"], content_types=ANY)
@zaqar_view
def flavor_delete(flavor_name: str) -> Response:
    _admin()
    admin.flavor_delete(current_services(), flavor_name)
    return empty()
