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
serving HTTP with ``infra.local.http``.
"""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

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


class Gateway:
    def __init__(self, app: Callable[[dict[str, Any], Any], dict[str, Any]], routes: dict[str, dict[str, Any]], stage: str = "api") -> None:
        self._app = app
        self._routes = RouteTable(routes)
        self._stage = stage

    def event(self, method: str, target: str, headers: list[tuple[str, str]], body: bytes, source_ip: str) -> dict[str, Any] | dict[str, Any]:
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
        """One invocation; callers run one at a time per process, as a Lambda container does."""
        event = self.event(method, target, headers, body, source_ip)
        if "statusCode" in event:
            return event
        return self._app(event, LambdaContext())
