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
serving :meth:`Gateway.respond` with ``infra.local.http`` (waitress).

Nothing a client sends makes it raise: a request target that cannot be
parsed (``//[``, an absolute URI with a broken IPv6 host) is answered 400
in Zaqar's error format, and an exception escaping the app is answered 500
(and logged) instead of ending the worker.
"""

from __future__ import annotations

import base64
import functools
import json
import logging
import re
import time
import uuid
from collections.abc import Callable
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from infra.local.logs import AccessLog

log = logging.getLogger(__name__)
_STATUS_LINES = {status.value: f"{status.value} {status.phrase}" for status in HTTPStatus}
# hop-by-hop headers (RFC 9110 7.6.1), and the framing the server writes itself
_NOT_SENT = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection", "te",
             "trailer", "trailers", "transfer-encoding", "upgrade", "content-length"}
_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_FIELD_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]*")
_PARAM = re.compile(r"\{([A-Za-z0-9_]+)\}")


def _regex(template: str, prefix: str) -> str:
    parts = []
    for segment in template.split("/"):
        found = _PARAM.fullmatch(segment)
        parts.append(f"(?P<{prefix}{found.group(1)}>[^/]+)" if found else re.escape(segment))
    return "/".join(parts)


class RouteTable:
    """Maps a concrete path to the route template it belongs to, with one regular expression for all of them."""

    def __init__(self, routes: dict[str, dict[str, Any]]) -> None:
        self.methods = {path: sorted(methods) for path, methods in routes.items()}
        # literal segments win over parameters, as in API Gateway: the first alternative that matches wins
        ordered = sorted(routes, key=lambda path: (path.count("{"), path))
        self._routes: dict[str, tuple[str, list[tuple[str, str]]]] = {}
        alternatives = []
        for index, template in enumerate(ordered):
            prefix = f"p{index}_"
            alternatives.append(f"(?P<r{index}>{_regex(template, prefix)})")
            params = [(prefix + name, name) for name in _PARAM.findall(template)]
            self._routes[f"r{index}"] = (template, params)
        self._pattern = re.compile("^(?:" + "|".join(alternatives) + ")$")

    def match(self, path: str) -> tuple[str, dict[str, str]] | None:
        if path != "/" and path.endswith("/"):
            path = path[:-1]
        found = self._pattern.match(path)
        if found is None or found.lastgroup is None:
            return None
        template, params = self._routes[found.lastgroup]
        return template, {name: unquote(found.group(group)) for group, name in params}


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
        self.invoked_function_arn = f"arn:aws:lambda:us-east-1:000000000000:function:{function_name}"
        self._deadline = time.monotonic() + 60

    @functools.cached_property
    def aws_request_id(self) -> str:
        """Made when first read (an API Gateway request carries its own requestId, which is read instead)."""
        return str(uuid.uuid4())

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
        if target.startswith("/") and not target.startswith("//") and "#" not in target and "\t" not in target:
            raw_path, _, raw_query = target.partition("?")  # origin-form, as clients send it: urlsplit's answer
        else:
            split = urlsplit(target)
            raw_path, raw_query = split.path, split.query
        path = unquote(raw_path) or "/"
        matched = self._routes.match(path)
        if matched is None:
            return _error(404, "Not found", f"No resource at {path[:200]}.")
        template, params = matched
        allowed = self._routes.methods[template]
        if method not in allowed:
            return _error(405, "Method not allowed", f"{method} is not allowed on {path[:200]}.", {"Allow": ", ".join(allowed)})
        single = dict(headers)
        multi: dict[str, list[str]]
        if len(single) == len(headers):  # each name once (waitress joins repeated headers)
            multi = {name: [value] for name, value in headers}
        else:
            multi = {}
            for name, value in headers:
                multi.setdefault(name, []).append(value)
        query = parse_qs(raw_query, keep_blank_values=True) if raw_query else {}
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

    # -- HTTP ------------------------------------------------------------------------------------

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


def printable_error(exc: Exception) -> str:
    return str(exc)[:100] or type(exc).__name__


def render(result: dict[str, Any], method: str) -> tuple[str, list[tuple[str, str]], bytes]:
    """A proxy result as an HTTP status line, headers and body, as API Gateway would send it. Headers HTTP cannot
    carry (a name that is no token, a value with a control character or beyond Latin-1) and those the server
    sets itself (hop-by-hop, Content-Length) are dropped."""
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
        pairs = [(str(name), str(value)) for name, value in (result.get("headers") or {}).items()]
        for name, values in (result.get("multiValueHeaders") or {}).items():
            pairs.extend((str(name), str(value)) for value in values)
    except Exception:
        log.exception("the app returned a proxy result that cannot be sent")
        return render(_error(500, "Internal server error", "The service returned an invalid response."), method)
    headers: list[tuple[str, str]] = []
    typed = False
    for name, value in pairs:
        lower = name.lower()
        if lower in _NOT_SENT or not _TOKEN.fullmatch(name) or not _FIELD_VALUE.fullmatch(value):
            continue
        typed = typed or lower == "content-type"
        headers.append((name, value))
    if status in (204, 304) or status < 200:
        payload = b""
    else:
        headers.append(("Content-Length", str(len(payload))))
        if payload and not typed:
            headers.append(("Content-Type", "application/json"))
    if method == "HEAD":
        payload = b""
    return _STATUS_LINES.get(status) or f"{status} Unknown", headers, payload


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
