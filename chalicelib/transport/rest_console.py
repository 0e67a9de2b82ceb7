"""``GET /console`` and ``GET /console/{file}``: the web console, static files of ``chalicelib/console/``.

The console is plain HTML, CSS and JavaScript that talks to the public REST API from the browser (same
origin, so no CORS); nothing is rendered here. Only the names in :data:`FILES` are served (no path is ever
built from what the client sent), each read on its first request and kept for the container's life. Every
file is text, so API Gateway passes it through without binary media types. ``/console`` answers the page
itself when the request's path ends with a slash (``/console/``: the local stack and Chalice route it here)
and otherwise redirects to ``console/index.html``, relative, so the stage prefix of an API Gateway URL
(``/v1/console``) is kept and the page's relative links resolve under it.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from pathlib import Path
from urllib.parse import urlencode

from chalice.app import Blueprint, Response

from chalicelib import errors
from chalicelib.transport.http import ANY, current_request, header, zaqar_view

bp = Blueprint(__name__)
FOLDER = Path(__file__).resolve().parent.parent / "console"
_JS = "text/javascript; charset=utf-8"
FILES: dict[str, str] = {
    "index.html": "text/html; charset=utf-8",
    "console.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml; charset=utf-8",
    "api.js": _JS,
    "dom.js": _JS,
    "console.js": _JS,
    "queues.js": _JS,
    "messages.js": _JS,
    "subscriptions.js": _JS,
    "metadata.js": _JS,
    "failed.js": _JS,
}
"""Every file the console has, with its content type: the allow-list (a test checks it against the folder)."""

CONTENT_SECURITY_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
                           "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
"""Scripts, styles and requests from this origin only: nothing inline, no CDN, no other host, no framing."""
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


@dataclasses.dataclass(frozen=True)
class Asset:
    text: str
    etag: str


@functools.cache
def asset(name: str) -> Asset:
    """One allow-listed file, read once per container."""
    text = (FOLDER / name).read_text(encoding="utf-8")
    return Asset(text=text, etag='"' + hashlib.sha256(text.encode()).hexdigest()[:32] + '"')


def serve(name: str) -> Response:
    if name not in FILES:
        raise errors.NotFound(f"The console has no file {name[:80]!r}.")
    found = asset(name)
    headers: dict[str, str | list[str]] = {
        "Content-Type": FILES[name], "Cache-Control": "no-cache", "ETag": found.etag, **SECURITY_HEADERS,
    }
    given = header("if-none-match") or ""
    if found.etag in (tag.strip() for tag in given.split(",")):
        return Response("", headers=headers, status_code=304)
    return Response(found.text, headers=headers, status_code=200)


def _query() -> str:
    params = current_request().query_params
    if not params:
        return ""
    return "?" + urlencode([(name, value) for name in params for value in params.getlist(name)])


@bp.route("/console", methods=["GET"], content_types=ANY)
@zaqar_view
def console_index() -> Response:
    if str(current_request().context.get("path") or "").endswith("/"):
        return serve("index.html")
    return Response("", headers={"Location": "console/index.html" + _query(), "Cache-Control": "no-cache"},
                    status_code=302)


@bp.route("/console/{file}", methods=["GET"], content_types=ANY)
@zaqar_view
def console_file(file: str) -> Response:
    return serve(file)
