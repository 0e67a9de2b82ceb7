"""Backends that do not answer: 503 in Zaqar's format, never a 500."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from chalice.test import Client

from app import app
from chalicelib import runtime
from tests.conftest import make_settings
from tests.functional.conftest import Api


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def dead_pool_api(tmp_path: Path, project: str) -> Iterator[Api]:
    settings = make_settings(tmp_path, f"redis://127.0.0.1:{_closed_port()}/0")
    services = runtime.build(settings)
    services.pooling.catalog.register(project=project, queue="known", pool="default")
    runtime.install(services)
    with Client(app) as client:
        yield Api(client, project)
    runtime.install(None)


@pytest.fixture
def dead_catalog_api(tmp_path: Path, project: str, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:
    settings = make_settings(
        tmp_path, redis_url, CATALOG_URL=f"postgresql+pg8000://postgres@127.0.0.1:{_closed_port()}/none"
    )
    runtime.install(None)
    monkeypatch.setattr(runtime, "get_settings", lambda: settings)
    with Client(app) as client:
        yield Api(client, project)
    runtime.install(None)


REQUESTS = [
    ("PUT", "/v2/queues/q1", {}),
    ("POST", "/v2/queues/q1/messages", {"messages": [{"body": 1}]}),
    ("GET", "/v2/queues/known", None),
    ("GET", "/v2/queues/known/messages", None),
    ("POST", "/v2/queues/known/claims", None),
    ("GET", "/v2/queues/known/stats", None),
    ("DELETE", "/v2/queues/known/messages/0123456789abcdef0123456789abcdef", None),
    ("GET", "/v2/ping", None),
]


@pytest.mark.parametrize(("method", "path", "body"), REQUESTS)
def test_unreachable_pool_gives_503(dead_pool_api: Api, method: str, path: str, body: object) -> None:
    reply = dead_pool_api.call(method, path, body)
    assert reply.status == 503, reply.raw
    assert reply.json["title"] == "Service temporarily unavailable"
    assert reply.json["description"].endswith("Please try again in a few seconds.")


def test_a_failed_create_lazy_post_or_subscription_leaves_no_queue_behind(dead_pool_api: Api) -> None:
    assert dead_pool_api.put("/v2/queues/q1", {"a": 1}).status == 503
    assert dead_pool_api.post("/v2/queues/q2/messages", {"messages": [{"body": 1}]}).status == 503
    assert dead_pool_api.post("/v2/queues/q3/subscriptions", {"subscriber": "http://example.test/x"}).status == 503
    assert [q["name"] for q in dead_pool_api.get("/v2/queues").json["queues"]] == ["known"]


@pytest.mark.parametrize(("method", "path", "body"), REQUESTS)
def test_unreachable_catalog_gives_503(dead_catalog_api: Api, method: str, path: str, body: object) -> None:
    reply = dead_catalog_api.call(method, path, body)
    assert reply.status == 503, reply.raw
    assert set(reply.json) == {"title", "description"}
