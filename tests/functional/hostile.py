"""Hostile input for the fuzz tests: strings, URIs, JSON documents and mutations of valid bodies.

Everything is drawn from a :class:`random.Random` the caller seeds, so a run
is reproducible from its seed.
"""

from __future__ import annotations

import base64
import json
import random
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

from chalicelib.api.inputs import MAX_JSON_DEPTH
from chalicelib.config import Settings
from tests.conftest import kind_settings

NUL = "\x00"
SURROGATE = "\ud800"

STRINGS: list[str] = [
    "", " ", NUL, f"a{NUL}b", SURROGATE, "\udfff", "a\udc80b", "\x01", "\n", "\r\n", "\t", "\x7f", "\x85",
    "\u2028", "\ufeff", "\uffff", "\U0010ffff", "é", "日本語", "💥", "%00", "%ED%A0%80", "%zz", "../../etc/passwd",
    "*", "?", "#", "/", "\\", "'", '"', "a" * 65, "b" * 300, "c" * 5000, "-1", "0", "1", "99999999999999999999",
    str(2**64), "-" + "9" * 40, "1e999", "NaN", "Infinity", "true", "null", "[]", "{}", "${jndi:ldap://x}",
    "<script>", "\u0663", "\uff11\uff12", "0x10", " 1", "1 ", "fuzz-q", "q1", "0" * 32, "f" * 64, "messages", "subscriptions",
    "GET", "2099-01-01T00:00:00", "1970-01-01T00:00:00", "not-a-date", "linear", "admin",
]

URIS: list[str] = [
    "http://[::1", "http://[::1]]", "http://[::1]x/", "http://[v1.x]/", "http://[zz]/", "http://]", "http://[",
    "http://example.com:99999/", "http://example.com:0/", "http://example.com:-1/", "http://exa mple.com/",
    "http://a\x00b/", "http://\ud800/", "http://example.com/\x00", "https://%zz/", "http://:80/", "http:///x",
    "trust+http://[::1", "trust+https://example.com/", "mailto:a@[::1", "mailto:a@b?subject=%0d%0aBcc:x",
    "mailto:", "mailto:a@b,c@d", "mailto:a\x00@b.c", "ftp://example.com/", "websocket:abc", "javascript:alert(1)",
    "http://example.com/hook", "https://example.com/hook?x=1", "http://127.0.0.1:1/", "http://[::ffff:7f00:1]/",
    "redis://[::1", "redis://127.0.0.1:99999", "redis://127.0.0.1:0/0", "redis://:", "redis://", "redis:",
    "redis", "rediss://[fe80::1%25eth0", "redis://127.0.0.1:1/0", "redis://127.0.0.1:6379/notanumber",
    "redis://a\x00b:6379", "unix://", "unix:///", "unix:///nonexistent.sock", "mongodb://[::1",
    "mongodb://a:99999/db", "mongodb://h1:1,h2:99999/db", "mongodb://h1:1,[::1/db", "mongodb+srv://",
    "mongodb://", "mongodb://?", "mongodb+srv://a:1/db", "gopher://x", "://", ":", "", "x" * 300,
]

URI_FIELDS = frozenset({"uri", "subscriber"})
CONTENT_TYPES = ["application/json", "application/json; charset=utf-8", "application/openstack-messaging-v2.0-json-patch",
                 "application/x-www-form-urlencoded", "text/plain", "", "application/octet-stream", "*/*",
                 "application/json\x00"]


def pool_settings(tmp_path: Path, redis_url: str, pool_url: str, **extra: str) -> Settings:
    """The functional suite's settings on this kind of default pool, plus ``extra``."""
    return kind_settings(tmp_path, redis_url, pool_url, **extra)


def api_event(method: str, template: str, params: dict[str, str] | None = None, *,
              headers: dict[str, str] | None = None, query: dict[str, list[str]] | None = None,
              body: str | None = None, encoded: bool = False) -> dict[str, Any]:
    """The API Gateway proxy event (payload 1.0) of a request, as Lambda gets it: path parameters decoded."""
    params = params or {}
    headers = headers or {}
    path = template
    for name, value in params.items():
        path = path.replace("{" + name + "}", quote(value.encode("utf-8", "surrogatepass"), safe=""))
    return {
        "resource": template, "path": path, "httpMethod": method,
        "headers": headers, "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": {k: v[-1] for k, v in query.items()} if query else None,
        "multiValueQueryStringParameters": query or None,
        "pathParameters": params or None, "stageVariables": None,
        "requestContext": {"resourcePath": template, "httpMethod": method, "path": f"/api{path}",
                           "stage": "api", "requestId": str(uuid.uuid4()), "identity": {"sourceIp": "127.0.0.1"},
                           "requestTimeEpoch": int(time.time() * 1000)},
        "body": body, "isBase64Encoded": encoded,
    }


def deep(depth: int, kind: str = "[") -> str:
    close = "]" if kind == "[" else "}"
    if kind == "[":
        return "[" * depth + "]" * depth
    return '{"a":' * (depth - 1) + "{}" + close * (depth - 1)


def nested_value(depth: int) -> Any:
    """A parsed document of exactly ``depth`` nested lists (built without recursion)."""
    value: Any = []
    for _ in range(depth - 1):
        value = [value]
    return value


class Hostile:
    """Draws hostile values from a seeded generator."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def string(self) -> str:
        if self.chance(0.15):
            return self.random_text(self.rng.randint(0, 40))
        return self.rng.choice(STRINGS)

    def random_text(self, length: int) -> str:
        """Any code points, surrogates and controls included."""
        pools = [(0, 0x20), (0x20, 0x7F), (0x7F, 0xA0), (0xA0, 0xD7FF), (0xD800, 0xDFFF), (0xE000, 0x10FFFF)]
        chars = []
        for _ in range(length):
            low, high = self.rng.choice(pools)
            chars.append(chr(self.rng.randint(low, high)))
        return "".join(chars)

    def uri(self) -> str:
        return self.rng.choice(URIS)

    def scalar(self) -> Any:
        return self.rng.choice([
            None, True, False, 0, -1, 1, 60, 2**31, 2**63, -(2**63) - 1, 2**64, 10**40, 1.5, -0.0, 1e308,
            self.string(), self.uri(), [], {}, [self.string()], {self.string(): self.string()},
        ])

    def value(self) -> Any:
        """A hostile value to put in place of a field (as a Python object, dumped later)."""
        roll = self.rng.random()
        if roll < 0.08:
            return nested_value(self.rng.choice([MAX_JSON_DEPTH - 3, MAX_JSON_DEPTH, MAX_JSON_DEPTH + 1, 200]))
        if roll < 0.15:
            return {self.string(): self.scalar() for _ in range(self.rng.randint(1, 3))}
        if roll < 0.22:
            return [self.scalar() for _ in range(self.rng.randint(0, 4))]
        return self.scalar()

    def mutate(self, document: Any) -> Any:
        """A copy of ``document`` with one node replaced, a hostile key added or a node dropped."""
        copy = json.loads(json.dumps(document))
        if not isinstance(copy, dict | list) or self.chance(0.08):
            return self.value()
        nodes: list[Any] = [copy]
        stack = [copy]
        while stack:
            node = stack.pop()
            children = list(node.values()) if isinstance(node, dict) else node if isinstance(node, list) else []
            for child in children:
                if isinstance(child, dict | list):
                    nodes.append(child)
                    stack.append(child)
        target = self.rng.choice(nodes)
        roll = self.rng.random()
        if isinstance(target, dict):
            if target and roll < 0.6:
                key = self.rng.choice(list(target))
                target[key] = self.uri() if key in URI_FIELDS and self.chance(0.6) else self.value()
            elif target and roll < 0.75:
                del target[self.rng.choice(list(target))]
            else:
                target[self.string()] = self.value()
        elif isinstance(target, list):
            if target and roll < 0.7:
                target[self.rng.randrange(len(target))] = self.value()
            else:
                target.append(self.value())
        return copy

    def body_text(self, template: Any) -> tuple[str | None, bool]:
        """A request body for a route whose valid body looks like ``template``: (text, base64-encoded)."""
        roll = self.rng.random()
        if roll < 0.35:
            return json.dumps(self.mutate(template)), False
        if roll < 0.45:
            return json.dumps(template), False
        if roll < 0.53:
            return self.rng.choice([deep(10000), deep(10000, "{"), deep(MAX_JSON_DEPTH + 1), deep(MAX_JSON_DEPTH),
                                    '{"messages": [' * 5000]), False
        if roll < 0.61:
            escaped = self.rng.choice(['"\\ud800"', '"\\udfff\\ud800"', '"a\\u0000b"', '{"\\ud800": 1}',
                                       '{"\\u0000": 1}', '{"messages": [{"body": "\\ud83d"}]}',
                                       '{"messages": [{"body": {"\\u0000k": 1}}]}', '{"resource_types": ["\\u0000"]}'])
            return escaped, False
        if roll < 0.68:
            return self.rng.choice(["NaN", "Infinity", "-Infinity", "1e999", "-1e999", "9" * 5000,
                                    '{"ttl": 1e999}', '{"ttl": NaN}', '{"messages": [{"body": Infinity}]}',
                                    '{"messages": [{"body": ' + "9" * 4400 + "}]}", '{"weight": 1e400}']), False
        if roll < 0.74:
            raw = bytes(self.rng.randrange(256) for _ in range(self.rng.randint(1, 64)))
            return base64.b64encode(raw).decode(), True
        if roll < 0.77:
            return self.rng.choice(["not base64!", "====", "YQ"]), True
        if roll < 0.82:
            text = json.dumps(template)
            return text[: self.rng.randint(0, max(0, len(text) - 1))], False
        if roll < 0.85:
            encoded = json.dumps(template).encode(self.rng.choice(["utf-16", "utf-32", "utf-8-sig"]))
            return base64.b64encode(encoded).decode(), True
        if roll < 0.9:
            return json.dumps(self.value()), False
        if roll < 0.95:
            return None, False
        return self.random_text(self.rng.randint(1, 30)), False
