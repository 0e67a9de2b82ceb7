"""``GET /openapi.json`` and ``GET /openapi/websocket.json``: the API described for tools
(see ``chalicelib.openapi``); no headers needed, as for the versions document."""

from __future__ import annotations

from chalice.app import Blueprint, Response

from chalicelib import openapi
from chalicelib.transport.http import ANY, current_services, json_reply, zaqar_view

bp = Blueprint(__name__)


@bp.route("/openapi.json", methods=["GET"], content_types=ANY)
@zaqar_view
def openapi_document() -> Response:
    document = openapi.document(current_services().settings.limits)
    return json_reply(document, headers={"Cache-Control": "max-age=3600"})


@bp.route("/openapi/websocket.json", methods=["GET"], content_types=ANY)
@zaqar_view
def websocket_frames() -> Response:
    return json_reply(openapi.websocket_frames(current_services().settings.limits),
                      headers={"Cache-Control": "max-age=3600"})
