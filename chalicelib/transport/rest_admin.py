"""The admin REST API: pools and flavors (admin mode only, as upstream)."""

from __future__ import annotations

from urllib.parse import urlencode

from chalice.app import Blueprint, Response

from chalicelib.api import admin, validation
from chalicelib.transport import auth
from chalicelib.transport.rest import ANY, _body, _empty, _json, _param, _services, _who, _zaqar

bp = Blueprint(__name__)
MAX_PAGE = 20


def _admin(*, writes: bool = True) -> None:
    services = _services()
    auth.require_admin_mode(services)
    _caller, identity = _who(services)
    if writes:
        auth.require_admin(identity)


def _page() -> tuple[str | None, int, bool]:
    limit = validation.query_int(_param("limit"), "limit", 10, 1, MAX_PAGE)
    return _param("marker"), limit, validation.query_bool(_param("detailed"), "detailed", False)


def _links(collection: str, names: list[str], limit: int, detailed: bool) -> list[dict[str, str]]:
    if not names:
        return []
    query = urlencode({"marker": names[-1], "limit": limit, "detailed": str(detailed).lower()})
    return [{"rel": "next", "href": f"/v2/{collection}?{query}"}]


@bp.route("/v2/pools", methods=["GET"], content_types=ANY)
@_zaqar
def pool_list() -> Response:
    _admin()
    marker, limit, detailed = _page()
    found = admin.pool_list(_services(), marker=marker, limit=limit)
    return _json({"pools": [admin.pool_view(p, detailed=detailed) for p in found],
                  "links": _links("pools", [p.name for p in found], limit, detailed)})


@bp.route("/v2/pools/{pool_name}", methods=["PUT"], content_types=ANY)
@_zaqar
def pool_create(pool_name: str) -> Response:
    _admin()
    body, _size = _body()
    admin.pool_create(_services(), pool_name, body)
    return _empty(201, {"Location": f"/v2/pools/{pool_name}"})


@bp.route("/v2/pools/{pool_name}", methods=["GET"], content_types=ANY)
@_zaqar
def pool_get(pool_name: str) -> Response:
    _admin()
    detailed = validation.query_bool(_param("detailed"), "detailed", False)
    return _json(admin.pool_view(admin.pool_get(_services(), pool_name), detailed=detailed))


@bp.route("/v2/pools/{pool_name}", methods=["PATCH"], content_types=ANY)
@_zaqar
def pool_update(pool_name: str) -> Response:
    _admin()
    body, _size = _body()
    return _json(admin.pool_view(admin.pool_update(_services(), pool_name, body), detailed=True))


@bp.route("/v2/pools/{pool_name}", methods=["DELETE"], content_types=ANY)
@_zaqar
def pool_delete(pool_name: str) -> Response:
    _admin()
    admin.pool_delete(_services(), pool_name)
    return _empty()


@bp.route("/v2/flavors", methods=["GET"], content_types=ANY)
@_zaqar
def flavor_list() -> Response:
    _admin(writes=False)
    marker, limit, detailed = _page()
    services = _services()
    found = admin.flavor_list(services, marker=marker, limit=limit)
    return _json({"flavors": [admin.flavor_view(services, f, detailed=detailed) for f in found],
                  "links": _links("flavors", [f["name"] for f in found], limit, detailed)})


@bp.route("/v2/flavors/{flavor_name}", methods=["PUT"], content_types=ANY)
@_zaqar
def flavor_create(flavor_name: str) -> Response:
    _admin()
    body, _size = _body()
    admin.flavor_create(_services(), flavor_name, body)
    return _empty(201, {"Location": f"/v2/flavors/{flavor_name}"})


@bp.route("/v2/flavors/{flavor_name}", methods=["GET"], content_types=ANY)
@_zaqar
def flavor_get(flavor_name: str) -> Response:
    _admin(writes=False)
    services = _services()
    return _json(admin.flavor_view(services, admin.flavor_get(services, flavor_name)))


@bp.route("/v2/flavors/{flavor_name}", methods=["PATCH"], content_types=ANY)
@_zaqar
def flavor_update(flavor_name: str) -> Response:
    _admin()
    services = _services()
    body, _size = _body()
    return _json(admin.flavor_view(services, admin.flavor_update(services, flavor_name, body)))


@bp.route("/v2/flavors/{flavor_name}", methods=["DELETE"], content_types=ANY)
@_zaqar
def flavor_delete(flavor_name: str) -> Response:
    _admin()
    admin.flavor_delete(_services(), flavor_name)
    return _empty()
