"""A local stand-in for API Gateway's REST API in front of the Chalice app.

Each HTTP request becomes the API Gateway proxy event (payload format 1.0)
that Lambda would receive, is handed to the app, and the proxy result is
written back. Unlike ``chalice local`` it disables Nagle's algorithm (no
40 ms stalls on keep-alive connections), matches routes with one compiled
regex, and answers unknown paths and methods the way Zaqar does (404, or
405 with ``Allow``) instead of API Gateway's 403.

Like a Lambda container, one process runs one invocation at a time (Chalice
keeps the current request on the app object); the stack forks several
worker processes that share the listening socket for concurrency, each
serving :meth:`Gateway.wsgi` with ``infra.local.http`` (waitress).

Nothing a client sends makes it raise: a request target that cannot be
parsed (``//[``, an absolute URI with a broken IPv6 host) is answered 400
in Zaqar's error format, and an exception escaping the app is answered 500
(and logged) instead of ending the worker.
"""

from __future__ import annotations

import base64
import json
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from infra.local.logs import AccessLog

log = logging.getLogger(__name__)
StartResponse = Callable[[str, list[tuple[str, str]]], Any]
_REASONS = {status.value: status.phrase for status in HTTPStatus}
# what a WSGI application may not set (PEP 3333); waitress refuses them
_HOP_BY_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
               "transfer-encoding", "upgrade"}
_PARAM = re.compile(r"\{([A-Za-z0-9_]+)\}")


def _regex(template: str) -> str:
    parts = []
    for segment in template.split("/"):
        found = _PARAM.fullmatch(segment)
        parts.append(f"(?P<{found.group(1)}>[^/]+)" if found else re.escape(segment))
    return "^" + "/".join(parts) + "$"


class RouteTable:
    """Maps a concrete path to the route template it belongs to."""

    def __init__(self, routes: dict[str, dict[str, Any]]) -> None:
        self.methods = {path: sorted(methods) for path, methods in routes.items()}
        # literal segments win over parameters, as in API Gateway
        ordered = sorted(routes, key=lambda path: (path.count("{"), path))
        self._patterns = [(path, re.compile(_regex(path))) for path in ordered]

    def match(self, path: str) -> tuple[str, dict[str, str]] | None:
        if path != "/" and path.endswith("/"):
            path = path[:-1]
        for template, pattern in self._patterns:
            found = pattern.match(path)
            if found:
                return template, {k: unquote(v) for k, v in found.groupdict().items()}
        return None


def _error(status: int, title: str, description: str, extra: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json", **(extra or {})},
        "multiValueHeaders": {},
        "body": json.dumps({"title": title, "description": description}),
    }


class LambdaContext:
    """The attributes of Lambda's context object that Chalice and our code read."""

    def __init__(self, function_name: str = "api_handler") -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = 512
        self.aws_request_id = str(uuid.uuid4())
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:000000000000:function:{function_name}"
        self._deadline = time.monotonic() + 60

    def get_remaining_time_in_millis(self) -> int:
        return int((self._deadline - time.monotonic()) * 1000)


def bad_request(description: str) -> dict[str, Any]:
    return _error(400, "Bad request", description)


class Gateway:
    def __init__(self, app: Callable[[dict[str, Any], Any], dict[str, Any]], routes: dict[str, dict[str, Any]],
                 stage: str = "api", access_log: AccessLog | None = None) -> None:
        self._app = app
        self._routes = RouteTable(routes)
        self._stage = stage
        self.access_log = access_log or AccessLog(enabled=False)

    def event(self, method: str, target: str, headers: list[tuple[str, str]], body: bytes, source_ip: str) -> dict[str, Any]:
        """The proxy event for one request, or a proxy result (``statusCode``) answering it; never raises."""
        try:
            return self._event(method, target, headers, body, source_ip)
        except Exception as exc:  # urlsplit's "Invalid IPv6 URL", and whatever else hostile input finds
            return bad_request(f"The request target cannot be parsed ({printable_error(exc)}).")

    def _event(self, method: str, target: str, headers: list[tuple[str, str]], body: bytes, source_ip: str) -> dict[str, Any]:
        split = urlsplit(target)
        path = unquote(split.path) or "/"
        matched = self._routes.match(path)
        if matched is None:
            return _error(404, "Not found", f"No resource at {path[:200]}.")
        template, params = matched
        allowed = self._routes.methods[template]
        if method not in allowed:
            return _error(405, "Method not allowed", f"{method} is not allowed on {path[:200]}.", {"Allow": ", ".join(allowed)})
        single: dict[str, str] = {}
        multi: dict[str, list[str]] = {}
        for name, value in headers:
            single[name] = value
            multi.setdefault(name, []).append(value)
        query = parse_qs(split.query, keep_blank_values=True) if split.query else {}
        try:
            text, encoded = body.decode(), False
        except UnicodeDecodeError:
            text, encoded = base64.b64encode(body).decode(), True
        now = time.time()
        return {
            "resource": template,
            "path": path,
            "httpMethod": method,
            "headers": single,
            "multiValueHeaders": multi,
            "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
            "multiValueQueryStringParameters": query or None,
            "pathParameters": params or None,
            "stageVariables": None,
            "requestContext": {
                "resourcePath": template,
                "httpMethod": method,
                "path": f"/{self._stage}{path}",
                "stage": self._stage,
                "requestId": str(uuid.uuid4()),
                "requestTimeEpoch": int(now * 1000),
                "identity": {"sourceIp": source_ip},
            },
            "body": text if body else None,
            "isBase64Encoded": encoded,
        }

    def handle(self, method: str, target: str, headers: list[tuple[str, str]], body: bytes, source_ip: str) -> dict[str, Any]:
        """One invocation; callers run one at a time per process, as a Lambda container does. Never raises."""
        event = self.event(method, target, headers, body, source_ip)
        if "statusCode" in event:
            return event
        try:
            result = self._app(event, LambdaContext())
        except Exception:  # Lambda would report the invocation as failed; API Gateway answers 502
            log.exception("%s %s: the app raised", method, event["path"][:200])
            return _error(500, "Internal server error", "The service could not handle the request.")
        if not isinstance(result, dict) or "statusCode" not in result:
            log.error("%s %s: the app returned no proxy result", method, event["path"][:200])
            return _error(500, "Internal server error", "The service could not handle the request.")
        return result

    # -- WSGI ---------------------------------------------------------------------------------

    def respond(self, method: str, target: str, headers: list[tuple[str, str]], body: bytes,
                source_ip: str) -> tuple[str, list[tuple[str, str]], bytes]:
        """One HTTP request answered: status line, headers and body (and its line in the access log)."""
        started = time.perf_counter()
        result = self.handle(method, target, headers, body, source_ip)
        status, response_headers, payload = render(result, method)
        code = int(status[:3])
        self.access_log.request(method, target.split("?", 1)[0], code, (time.perf_counter() - started) * 1000,
                                error_description(code, result))
        return status, response_headers, payload

    def wsgi(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """The gateway as a WSGI application, for any WSGI server (``infra.local.http`` calls :meth:`respond`
        directly, without the WSGI environment in between)."""
        method = str(environ.get("REQUEST_METHOD") or "GET")
        target = str(environ.get("REQUEST_URI") or _target_of(environ))
        try:
            stream = environ.get("wsgi.input")
            body = stream.read() if stream is not None else b""
        except Exception:
            log.exception("reading a request body")
            body = b""
        status, response_headers, payload = self.respond(method, target, _headers_of(environ), body,
                                                         str(environ.get("REMOTE_ADDR") or "127.0.0.1"))
        start_response(status, response_headers)
        return [payload]


def printable_error(exc: Exception) -> str:
    return str(exc)[:100] or type(exc).__name__


def _target_of(environ: dict[str, Any]) -> str:
    from urllib.parse import quote

    path = str(environ.get("PATH_INFO") or "/").encode("latin-1", "replace").decode("utf-8", "replace")
    query = str(environ.get("QUERY_STRING") or "")
    return quote(path) + (f"?{query}" if query else "")


def _headers_of(environ: dict[str, Any]) -> list[tuple[str, str]]:
    """The request's headers, named as clients usually spell them (WSGI keeps no case and joins repeats)."""
    headers = []
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            headers.append((key[5:].replace("_", "-").title(), str(value)))
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH") and value:
            headers.append((key.replace("_", "-").title(), str(value)))
    return headers


def render(result: dict[str, Any], method: str) -> tuple[str, list[tuple[str, str]], bytes]:
    """A proxy result as a WSGI status, headers and body, as API Gateway would send it."""
    try:
        status = int(result.get("statusCode") or 500)
        if not 100 <= status <= 599:
            raise ValueError(status)
        payload = result.get("body") or b""
        if result.get("isBase64Encoded"):
            payload = base64.b64decode(payload)
        elif isinstance(payload, str):
            payload = payload.encode()
        elif not isinstance(payload, bytes):
            raise TypeError(type(payload).__name__)
        headers: list[tuple[str, str]] = []
        for name, value in (result.get("headers") or {}).items():
            headers.append((str(name), str(value)))
        for name, values in (result.get("multiValueHeaders") or {}).items():
            headers.extend((str(name), str(value)) for value in values)
    except Exception:
        log.exception("the app returned a proxy result that cannot be sent")
        return render(_error(500, "Internal server error", "The service returned an invalid response."), method)
    headers = [(name, value) for name, value in headers
               if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length"
               and not any(c in name or c in value for c in "\r\n\0")]
    if status in (204, 304) or 100 <= status < 200:
        payload = b""
    else:
        headers.append(("Content-Length", str(len(payload))))
        if payload and not any(name.lower() == "content-type" for name, _ in headers):
            headers.append(("Content-Type", "application/json"))
    if method == "HEAD":
        payload = b""
    return f"{status} {_REASONS.get(status, 'Unknown')}", headers, payload


def error_description(status: int, result: dict[str, Any]) -> str | None:
    """The description of an error answer (Zaqar's format, or API Gateway's ``message``), for the log."""
    if status < 400:
        return None
    try:
        body = result.get("body")
        if result.get("isBase64Encoded") or not body:
            return None
        document = json.loads(body)
    except Exception:
        return None
    if isinstance(document, dict):
        text = document.get("description") or document.get("message") or document.get("title")
        return str(text) if text else None
    return None
