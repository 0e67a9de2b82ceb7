"""Fuzzing the REST API: thousands of generated hostile requests across every route, on both pool kinds.

Requests are API Gateway proxy events handed to the Chalice app in process
(as Lambda would get them: path parameters decoded, so NUL and lone
surrogates reach the app as API Gateway can deliver them), a share of them
through ``chalice.test.Client``. Every answer must be below 500 (a 503 only
for what is deliberately unavailable: a setting this deployment lacks)
and every error Zaqar's ``{"title", "description"}``. The seed is fixed:
a failure names the request that caused it, and reruns reproduce it.
``FUZZ_SEED=<n>`` and ``FUZZ_SCALE=<factor>`` explore further (both fuzz tests).
"""

from __future__ import annotations

import base64
import json
import os
import random
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from chalice.test import Client

import app as app_module
from chalicelib import errors, runtime
from chalicelib.api.context import Services
from chalicelib.config import Settings
from infra.local.gateway import LambdaContext
from tests.conftest import installed, make_settings
from tests.functional.hostile import CONTENT_TYPES, Hostile, api_event, pool_settings

SEED = int(os.environ.get("FUZZ_SEED", "20260601"))
REQUESTS = int(5000 * float(os.environ.get("FUZZ_SCALE", "1")))  # per pool kind
VIA_CLIENT = 0.15  # the share sent through chalice.test.Client
PATCH_TYPE = "application/openstack-messaging-v2.0-json-patch"
SIGNING_KEY = "fuzz-signing-key"
ALLOWED_503 = {errors.NotConfigured.title}  # a setting is missing: deliberate, and says which

BODIES: dict[tuple[str, str], Any] = {
    ("PUT", "/v2/queues/{queue_name}"): {"_default_message_ttl": 60, "_max_claim_count": 3, "note": "x"},
    ("PATCH", "/v2/queues/{queue_name}"): [{"op": "add", "path": "/metadata/a", "value": 1},
                                           {"op": "remove", "path": "/metadata/_max_claim_count"}],
    ("POST", "/v2/queues/{queue_name}/messages"): {"messages": [{"body": {"a": [1, "x"]}, "ttl": 60, "delay": 0},
                                                                 {"body": "plain"}]},
    ("POST", "/v2/queues/{queue_name}/claims"): {"ttl": 60, "grace": 60},
    ("PATCH", "/v2/queues/{queue_name}/claims/{claim_id}"): {"ttl": 60, "grace": 60},
    ("POST", "/v2/queues/{queue_name}/purge"): {"resource_types": ["messages", "subscriptions"]},
    ("POST", "/v2/queues/{queue_name}/share"): {"paths": ["messages", "claims"], "methods": ["GET", "POST"],
                                                "expires": "2099-01-01T00:00:00"},
    ("POST", "/v2/queues/{queue_name}/subscriptions"): {
        "subscriber": "http://example.com/hook", "ttl": 3600,
        "options": {"post_headers": {"X-A": "b"}, "post_data": '{"m": "$zaqar_message$"}',
                    "include_message_id": True,
                    "_retry_policy": {"minimum_delay": 5, "maximum_delay": 30, "retry_backoff_function": "linear"}}},
    ("PATCH", "/v2/queues/{queue_name}/subscriptions/{subscription_id}"): {
        "subscriber": "mailto:a@example.com?subject=hi", "ttl": 7200, "options": {"subject": "s"}},
    ("PUT", "/v2/queues/{queue_name}/subscriptions/{subscription_id}/confirm"): {"confirmed": True},
    ("PUT", "/v2/pools/{pool_name}"): {"weight": 10, "uri": "redis://127.0.0.1:1/0", "flavor": None,
                                       "options": {"a": 1}},
    ("PATCH", "/v2/pools/{pool_name}"): {"weight": 20, "options": {"b": 2}},
    ("PUT", "/v2/flavors/{flavor_name}"): {"pool_list": ["default"], "capabilities": {"durable": True}},
    ("PATCH", "/v2/flavors/{flavor_name}"): {"pool_list": ["default"]},
}
QUERY_NAMES = ["limit", "marker", "detailed", "with_count", "name", "echo", "include_claimed", "include_delayed",
               "ids", "pop", "claim_id"]
VALID_QUERY = {"limit": ["1", "5", "20"], "detailed": ["true", "false"], "with_count": ["true"], "echo": ["true"],
               "include_claimed": ["true"], "include_delayed": ["false"], "pop": ["1", "3"], "name": ["fuzz"]}


@pytest.fixture
def settings(tmp_path: Path, redis_url: str, pool_url: str) -> Settings:
    """The functional settings with admin mode (the pool and flavor routes) and a signing key (share)."""
    return pool_settings(tmp_path, redis_url, pool_url, ADMIN_MODE="true", SIGNING_KEY=SIGNING_KEY,
                         REQUEST_LOG="false", CATALOG_CACHE_TTL="0")


class Fuzzer:
    """Builds hostile API Gateway events for the app's routes and checks every answer."""

    def __init__(self, rng: random.Random, project: str, client: Client) -> None:
        self.rng = rng
        self.hostile = Hostile(rng)
        self.project = project
        self.client = client
        self.client_id = str(uuid.uuid4())
        self.routes = [(path, method) for path, methods in sorted(app_module.app.routes.items())
                       for method in sorted(methods)]
        self.seen: dict[str, list[str]] = {"message_id": [], "claim_id": [], "subscription_id": []}
        self.failures: list[str] = []
        self.statuses: dict[int, int] = {}

    # -- building a request -------------------------------------------------------------

    def param(self, name: str) -> str:
        if self.hostile.chance(0.25):
            return self.hostile.string()
        if name == "queue_name":
            return self.rng.choice(["fq", "fq", "fq2", "dlq"])
        if name == "pool_name":
            return self.rng.choice(["fpool", "fpool2"])
        if name == "flavor_name":
            return self.rng.choice(["fflavor", "fflavor2"])
        known = self.seen.get(name) or ["0" * 32]
        return self.rng.choice(known[-20:])

    def headers(self, method: str, path: str) -> dict[str, str]:
        headers = {"Client-ID": self.client_id, "X-Project-ID": self.project, "X-Roles": "admin",
                   "Content-Type": PATCH_TYPE if method == "PATCH" and path == "/v2/queues/{queue_name}"
                   else "application/json", "Host": "127.0.0.1"}
        for _ in range(self.rng.choice([0, 0, 0, 1, 1, 2])):
            roll = self.rng.random()
            if roll < 0.3:
                headers[self.rng.choice(["Client-ID", "X-Project-ID", "X-Roles", "Accept"])] = self.hostile.string()
            elif roll < 0.45:
                headers["Content-Type"] = self.rng.choice(CONTENT_TYPES)
            elif roll < 0.55:
                headers.pop(self.rng.choice(["Client-ID", "X-Project-ID", "X-Roles", "Content-Type"]), None)
            elif roll < 0.7:
                headers.update({"URL-Signature": self.hostile.string(), "URL-Paths": self.hostile.string(),
                                "URL-Methods": self.rng.choice(["GET", self.hostile.string()]),
                                "URL-Expires": self.rng.choice(["2099-01-01T00:00:00", self.hostile.string()])})
            elif roll < 0.8:
                headers["X-Auth-Token"] = self.hostile.string()
            else:
                headers[self.hostile.string() or "X-Empty"] = self.hostile.string()
        return headers

    def query(self) -> dict[str, list[str]]:
        query: dict[str, list[str]] = {}
        for _ in range(self.rng.choice([0, 1, 1, 2, 3])):
            name = self.rng.choice(QUERY_NAMES) if self.hostile.chance(0.85) else self.hostile.string()
            if name in VALID_QUERY and self.hostile.chance(0.5):
                value = self.rng.choice(VALID_QUERY[name])
            elif name in {"ids", "claim_id", "marker"} and self.hostile.chance(0.4):
                known = self.seen["claim_id" if name == "claim_id" else "message_id"] or ["0" * 32]
                value = ",".join(self.rng.choice(known) for _ in range(self.rng.randint(1, 3)))
            else:
                value = self.hostile.string()
            query.setdefault(name, []).append(value)
        return query

    def event(self) -> tuple[dict[str, Any], str]:
        template, method = self.rng.choice(self.routes)
        if self.hostile.chance(0.03):  # a method the route does not have: Chalice answers it itself
            method = self.rng.choice(["POST", "PUT", "PATCH", "DELETE", "GET"])
        params = {name[1:-1]: self.param(name[1:-1]) for name in template.split("/") if name.startswith("{")}
        if method == "DELETE" and params.get("pool_name") == "default":
            params["pool_name"] = "fpool"  # the one pool every queue needs
        body, encoded = None, False
        if (method, template) in BODIES or self.hostile.chance(0.1):
            body, encoded = self.hostile.body_text(BODIES.get((method, template), {}))
        query = self.query()
        headers = self.headers(method, template)
        event = api_event(method, template, params, headers=headers, query=query, body=body, encoded=encoded)
        return event, f"{method} {template} params={params!a} query={query!a} headers={headers!a} body={body!a:.300}"

    # -- sending and checking -------------------------------------------------------------

    def send(self, event: dict[str, Any]) -> tuple[int, dict[str, str], bytes]:
        """Through the app as Lambda gets it, or (when HTTP can carry it) through chalice.test.Client."""
        printable = all(isinstance(v, str) and v.isascii() and v.isprintable()
                        for v in [*event["headers"].keys(), *event["headers"].values()])
        if printable and not event["isBase64Encoded"] and self.hostile.chance(VIA_CLIENT):
            query = "&".join(f"{quote(k.encode('utf-8', 'surrogatepass'))}={quote(v.encode('utf-8', 'surrogatepass'))}"
                             for k, values in (event["multiValueQueryStringParameters"] or {}).items() for v in values)
            body = event["body"]
            payload = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else b""
            target = event["path"] + (f"?{query}" if query else "")
            if all(c.isascii() and c.isprintable() for c in target):
                response = self.client.http.request(event["httpMethod"], target, headers=event["headers"],
                                                    body=payload)
                if response.status_code == 403 and b"Missing Authentication Token" in response.body:
                    return 0, {}, b""  # chalice.local's router could not match the encoded path: not our app
                return response.status_code, {k.lower(): v for k, v in response.headers.items()}, response.body
        result = app_module.app(event, LambdaContext())
        raw = result.get("body") or ""
        body_bytes = base64.b64decode(raw) if result.get("isBase64Encoded") else raw.encode()
        return int(result["statusCode"]), {k.lower(): v for k, v in (result.get("headers") or {}).items()}, body_bytes

    def check(self, status: int, headers: dict[str, str], body: bytes, described: str) -> None:
        self.statuses[status] = self.statuses.get(status, 0) + 1
        problem = self.problem(status, headers, body)
        if problem is not None:
            self.failures.append(f"{problem}: {status} {body[:300]!r} <- {described}")

    @staticmethod
    def problem(status: int, headers: dict[str, str], body: bytes) -> str | None:
        if "x-openstack-request-id" not in headers:
            return "no request id"
        if status < 400:
            return None
        try:
            document = json.loads(body, parse_constant=lambda name: (_ for _ in ()).throw(ValueError(name)))
        except ValueError:
            return "an error body that is not JSON"
        if not isinstance(document, dict) or set(document) != {"title", "description"}:
            return "an error body that is not Zaqar's"
        if not all(isinstance(document[k], str) and document[k] for k in ("title", "description")):
            return "an empty title or description"
        if status >= 500 and not (status == 503 and document["title"] in ALLOWED_503):
            return "a server error"
        return None

    def harvest(self, status: int, headers: dict[str, str], body: bytes) -> None:
        """Ids from successful answers, so later requests reach existing messages, claims and subscriptions."""
        if status not in (200, 201):
            return
        location = headers.get("location", "")
        if "/claims/" in location:
            self.seen["claim_id"].append(location.rsplit("/", 1)[1])
        try:
            document = json.loads(body)
        except ValueError:
            return
        if isinstance(document, dict):
            for href in document.get("resources", []) if isinstance(document.get("resources"), list) else []:
                self.seen["message_id"].append(str(href).rsplit("/", 1)[1])
            if isinstance(document.get("subscription_id"), str):
                self.seen["subscription_id"].append(document["subscription_id"])

    def run(self, count: int) -> int:
        sent = 0
        for _ in range(count):
            event, described = self.event()
            status, headers, body = self.send(event)
            if status == 0:
                continue
            sent += 1
            self.check(status, headers, body, described)
            self.harvest(status, headers, body)
        return sent


def test_thousands_of_hostile_requests_get_no_5xx_and_only_zaqar_errors(
        services: Services, project: str, pool_kind: str) -> None:
    rng = random.Random(f"{SEED}-{pool_kind}")
    with Client(app_module.app) as client:
        fuzzer = Fuzzer(rng, project, client)
        started = time.monotonic()
        sent = fuzzer.run(REQUESTS)
        elapsed = time.monotonic() - started
    print(f"\nREST fuzz on {pool_kind}: {sent} requests in {elapsed:.1f} s, statuses {sorted(fuzzer.statuses.items())}")
    assert sent >= REQUESTS * 0.9
    assert not fuzzer.failures, f"{len(fuzzer.failures)} bad answers, the first ones:\n" + "\n".join(fuzzer.failures[:15])
    assert sum(n for s, n in fuzzer.statuses.items() if s < 300) > REQUESTS * 0.1, "the fuzz should also get through"


@pytest.mark.postgres
def test_hostile_requests_against_a_postgresql_catalog_get_no_5xx(
        tmp_path: Path, redis_url: str, postgres_url: str, project: str) -> None:
    """PostgreSQL refuses what SQLite stores (NUL, over-long or out-of-range values): none of it may come back
    as the 503 of an unreachable catalog."""
    built = runtime.build(make_settings(tmp_path, redis_url, CATALOG_URL=postgres_url, ADMIN_MODE="true",
                                        SIGNING_KEY=SIGNING_KEY, REQUEST_LOG="false", CATALOG_CACHE_TTL="0"))
    with installed(built, close=True), Client(app_module.app) as client:
        fuzzer = Fuzzer(random.Random(f"{SEED}-postgresql"), project, client)
        sent = fuzzer.run(REQUESTS // 3)
    print(f"\nREST fuzz on a PostgreSQL catalog: {sent} requests, statuses {sorted(fuzzer.statuses.items())}")
    assert not fuzzer.failures, f"{len(fuzzer.failures)} bad answers, the first ones:\n" + "\n".join(fuzzer.failures[:15])


def test_the_fuzzer_covers_every_route_and_method(project: str) -> None:
    """Routes come from the app itself: a route added later is fuzzed too."""
    fuzzer = Fuzzer(random.Random(SEED), project, Client(app_module.app))
    reached = set()
    for _ in range(REQUESTS):
        event, _described = fuzzer.event()
        reached.add((event["resource"], event["httpMethod"]))
    assert set(fuzzer.routes) <= reached
