"""Fuzzing the websocket API: thousands of generated hostile frames through the ``$default`` handler.

Every frame must get exactly one reply (never an exception into API
Gateway, which would close the connection with 1011), the reply must be
Zaqar's envelope, a status below 500 (a 503 only for a missing setting),
and every error Zaqar's websocket error body ``{"exception", "error"}``;
the connection stays usable. The seed is fixed; ``FUZZ_SEED=<n>`` and
``FUZZ_SCALE=<factor>`` explore further.
"""

from __future__ import annotations

import json
import os
import random
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import app as app_module
from chalicelib.api.context import Services
from chalicelib.config import Settings
from chalicelib.transport.ws_actions import ACTIONS
from infra.local.gateway import LambdaContext
from tests.functional.hostile import Hostile, deep, pool_settings
from tests.functional.test_websocket import FakeManagementApi, _event, fake_management

SEED = int(os.environ.get("FUZZ_SEED", "20260602"))
FRAMES = int(4000 * float(os.environ.get("FUZZ_SCALE", "1")))  # per pool kind

TEMPLATES: dict[str, dict[str, Any]] = {
    "authenticate": {},
    "queue_list": {"limit": 5, "detailed": True, "marker": "wq"},
    "queue_create": {"queue_name": "wq", "metadata": {"_default_message_ttl": 60, "note": [1, 2]}},
    "queue_delete": {"queue_name": "wq2"},
    "queue_get": {"queue_name": "wq"},
    "queue_get_stats": {"queue_name": "wq"},
    "queue_purge": {"queue_name": "wq", "resource_types": ["messages", "subscriptions"]},
    "queue_redrive": {"queue_name": "wq", "destination": "wq2", "limit": 5},
    "message_list": {"queue_name": "wq", "limit": 5, "echo": True, "include_claimed": True, "marker": "1"},
    "message_get": {"queue_name": "wq", "message_id": "MESSAGE"},
    "message_get_many": {"queue_name": "wq", "message_ids": ["MESSAGE", "MESSAGE"]},
    "message_post": {"queue_name": "wq", "messages": [{"body": {"a": [1, "x"]}, "ttl": 60}, {"body": "b"}]},
    "message_delete": {"queue_name": "wq", "message_id": "MESSAGE", "claim_id": "CLAIM"},
    "message_delete_many": {"queue_name": "wq", "message_ids": ["MESSAGE"]},
    "claim_create": {"queue_name": "wq", "ttl": 60, "grace": 60, "limit": 2},
    "claim_get": {"queue_name": "wq", "claim_id": "CLAIM"},
    "claim_update": {"queue_name": "wq", "claim_id": "CLAIM", "ttl": 120, "grace": 60},
    "claim_delete": {"queue_name": "wq", "claim_id": "CLAIM"},
    "subscription_create": {"queue_name": "wq", "subscriber": "http://example.com/hook", "ttl": 3600,
                            "options": {"post_headers": {"X-A": "b"}, "include_message_id": True}},
    "subscription_get": {"queue_name": "wq", "subscription_id": "SUBSCRIPTION"},
    "subscription_list": {"queue_name": "wq", "limit": 5},
    "subscription_delete": {"queue_name": "wq", "subscription_id": "SUBSCRIPTION"},
}
# topic actions: their queue twins' bodies, for a topic
TEMPLATES.update({
    f"topic_{action}": {("topic_name" if k == "queue_name" else k): v for k, v in TEMPLATES[action].items()}
    for action in ("message_list", "message_get", "message_get_many", "message_post", "subscription_create",
                   "subscription_get", "subscription_list", "subscription_delete")})
TEMPLATES.update({
    action.replace("queue_", "topic_"): {("topic_name" if k == "queue_name" else k): v
                                         for k, v in TEMPLATES[action].items()}
    for action in ("queue_list", "queue_create", "queue_delete", "queue_get", "queue_get_stats", "queue_purge")})
PLACEHOLDERS = {"MESSAGE": "message", "CLAIM": "claim", "SUBSCRIPTION": "subscription"}


@pytest.fixture
def settings(tmp_path: Path, redis_url: str, pool_url: str) -> Settings:
    return pool_settings(tmp_path, redis_url, pool_url, SIGNING_KEY="fuzz-signing-key", REQUEST_LOG="false")


@pytest.fixture
def management(services: Services) -> Iterator[FakeManagementApi]:
    with fake_management() as fake:
        yield fake


class FrameFuzzer:
    def __init__(self, rng: random.Random, management: FakeManagementApi, project: str) -> None:
        self.rng = rng
        self.hostile = Hostile(rng)
        self.management = management
        self.connection = uuid.uuid4().hex[:16] + "="
        self.headers = {"Client-ID": str(uuid.uuid4()), "X-Project-ID": project}
        self.seen: dict[str, list[str]] = {"message": [], "claim": [], "subscription": []}
        self.failures: list[str] = []
        self.statuses: dict[int, int] = {}

    def connect(self) -> None:
        assert app_module.ws_connect(_event("ws_connect", self.connection), LambdaContext()) == {"statusCode": 200}

    def _filled(self, value: Any) -> Any:
        if isinstance(value, str) and value in PLACEHOLDERS:
            known = self.seen[PLACEHOLDERS[value]] or ["0" * 32]
            return self.rng.choice(known[-20:])
        if isinstance(value, list):
            return [self._filled(item) for item in value]
        if isinstance(value, dict):
            return {key: self._filled(item) for key, item in value.items()}
        return value

    def frame(self) -> str:
        roll = self.rng.random()
        if roll < 0.06:
            return self.rng.choice([deep(10000), deep(10000, "{"), '{"action": ' + deep(5000),
                                    '{"action": "queue_list", "headers": {}, "body": ' + deep(200) + "}"])
        if roll < 0.1:
            return self.rng.choice(["", "not json", "[]", "null", "1e999", "NaN", '"\\ud800"', "{", '{"action"',
                                    self.hostile.random_text(self.rng.randint(1, 40)), "x" * (129 * 1024)])
        action: Any = self.rng.choice(list(TEMPLATES))
        body: Any = self._filled(TEMPLATES[action])
        if self.hostile.chance(0.55):
            body = self.hostile.mutate(body)
        headers: Any = dict(self.headers)
        if self.hostile.chance(0.2):
            headers = self.hostile.mutate(headers)
        if self.hostile.chance(0.08):
            headers.update({"URL-Signature": self.hostile.string(), "URL-Paths": self.hostile.string(),
                            "URL-Methods": "GET", "URL-Expires": "2099-01-01T00:00:00"}) if isinstance(
                headers, dict) else None
        if self.hostile.chance(0.04):
            action = self.hostile.value()
        request: dict[str, Any] = {"action": action, "headers": headers, "body": body}
        if self.hostile.chance(0.04):
            del request[self.rng.choice(list(request))]
        text = json.dumps(request)
        if self.hostile.chance(0.05):  # hostile escapes written into the text itself
            text = text.replace('"wq"', self.rng.choice(['"w\\u0000q"', '"\\udc00"', '"wq\\ud800"']), 1)
        return text

    def send(self, text: str) -> None:
        before = len(self.management.sent.get(self.connection, []))
        try:
            app_module.ws_message(_event("ws_message", self.connection, text), LambdaContext())
        except Exception as exc:  # API Gateway would close the connection
            self.failures.append(f"the handler raised {exc!r} <- {text[:300]!a}")
            return
        sent = self.management.sent.get(self.connection, [])
        if len(sent) != before + 1:
            self.failures.append(f"{len(sent) - before} replies <- {text[:300]!a}")
            return
        problem, status = self.problem(sent[-1])
        self.statuses[status] = self.statuses.get(status, 0) + 1
        if problem is not None:
            self.failures.append(f"{problem}: {sent[-1][:300]!a} <- {text[:300]!a}")

    def problem(self, text: str) -> tuple[str | None, int]:
        try:
            reply = json.loads(text, parse_constant=lambda name: (_ for _ in ()).throw(ValueError(name)))
        except ValueError:
            return "a reply that is not JSON", 0
        if not isinstance(reply, dict) or set(reply) != {"request", "body", "headers"}:
            return "a reply that is not Zaqar's envelope", 0
        status = reply["headers"].get("status") if isinstance(reply["headers"], dict) else None
        if not isinstance(status, int):
            return "a reply without a status", 0
        self.harvest(reply)
        if status < 400:
            return None, status
        body = reply["body"]
        if status == 404 and reply["request"].get("action") in {"queue_get_stats", "topic_get_stats"} \
                and set(body) == {"messages"}:
            return None, status  # upstream's answer for a queue that does not exist: zero stats
        if not isinstance(body, dict) or set(body) != {"exception", "error"}:
            return "an error body that is not Zaqar's", status
        if not all(isinstance(body[k], str) and body[k] for k in ("exception", "error")):
            return "an empty exception or error", status
        if status >= 500 and not (status == 503 and body["exception"] == "NotConfigured"):
            return "a server error", status
        return None, status

    def harvest(self, reply: dict[str, Any]) -> None:
        body = reply["body"]
        if not isinstance(body, dict):
            return
        ids = body.get("message_ids")
        if isinstance(ids, list):
            self.seen["message"].extend(str(i) for i in ids)
        for key, kind in (("claim_id", "claim"), ("subscription_id", "subscription")):
            if isinstance(body.get(key), str):
                self.seen[kind].append(body[key])


def test_thousands_of_hostile_frames_get_one_zaqar_reply_each(
        management: FakeManagementApi, project: str, pool_kind: str) -> None:
    fuzzer = FrameFuzzer(random.Random(f"{SEED}-{pool_kind}"), management, project)
    fuzzer.connect()
    started = time.monotonic()
    for _ in range(FRAMES):
        fuzzer.send(fuzzer.frame())
    elapsed = time.monotonic() - started
    print(f"\nwebsocket fuzz on {pool_kind}: {FRAMES} frames in {elapsed:.1f} s, "
          f"statuses {sorted(fuzzer.statuses.items())}")
    assert not fuzzer.failures, f"{len(fuzzer.failures)} bad replies, the first ones:\n" + "\n".join(fuzzer.failures[:15])
    assert sum(n for s, n in fuzzer.statuses.items() if 0 < s < 300) > FRAMES * 0.1, "the fuzz should also get through"
    fuzzer.send(json.dumps({"action": "queue_list", "headers": fuzzer.headers, "body": {}}))
    last = json.loads(management.sent[fuzzer.connection][-1])
    assert last["headers"]["status"] == 200, "the connection is still usable"
    assert management.deleted == []


def test_every_action_is_fuzzed() -> None:
    assert set(TEMPLATES) == set(ACTIONS)
