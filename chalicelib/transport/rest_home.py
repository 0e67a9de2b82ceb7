"""REST routes outside any resource: the versions document, the home document, ping and health."""

from __future__ import annotations

from chalice.app import Blueprint, Response

from chalicelib import errors
from chalicelib.api import health
from chalicelib.transport import auth, home
from chalicelib.transport.http import (
    ANY,
    caller_of,
    current_request,
    current_services,
    empty,
    error_response,
    json_reply,
    who,
    zaqar_view,
)

bp = Blueprint(__name__)


@bp.route("/", methods=["GET"], content_types=ANY)
@zaqar_view
def versions() -> Response:
    return json_reply(home.VERSIONS, status=300)


@bp.route("/v2", methods=["GET"], content_types=ANY)
@zaqar_view
def home_document() -> Response:
    services = current_services()
    caller_of(services)
    document = home.document(admin=services.settings.admin_mode)
    headers: dict[str, str | list[str]] = {"Content-Type": "application/json-home", "Cache-Control": "max-age=86400"}
    return Response(document, headers=headers, status_code=200)


@bp.route("/v2/ping", methods=["GET", "HEAD"], content_types=ANY)
@zaqar_view
def ping() -> Response:
    services = current_services()
    caller_of(services)
    if current_request().method == "HEAD":
        return empty()
    if health.ping(services):
        return empty()
    return error_response(errors.Unavailable("A storage backend does not answer."))


@bp.route("/v2/health", methods=["GET"], content_types=ANY)
@zaqar_view
def health_report() -> Response:
    services = current_services()
    auth.require_admin_mode(services)
    auth.require_admin(who(services)[1])
    return json_reply(health.health(services))
