"""Drive the local stack over real HTTP: raw requests on one keep-alive
connection (as curl would send them), then python-zaqarclient."""

from __future__ import annotations

import http.client
import json
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

pytestmark = pytest.mark.e2e


class Raw:
    """Plain HTTP/1.1 on one keep-alive connection, nothing hidden."""

    def __init__(self, url: str, project: str) -> None:
        parts = urlsplit(url)
        self.conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
        self.headers = {"Client-ID": str(uuid.uuid4()), "X-Project-ID": project, "Content-Type": "application/json"}

    def __call__(self, method: str, path: str, body: Any = None, **extra: str) -> tuple[int, dict[str, str], Any]:
        payload = None if body is None else json.dumps(body)
        self.conn.request(method, path, body=payload, headers={**self.headers, **extra})
        response = self.conn.getresponse()
        raw = response.read()
        headers = {k.lower(): v for k, v in response.getheaders()}
        return response.status, headers, json.loads(raw) if raw else None


@pytest.fixture
def call(stack_url: str, project: str) -> Iterator[Raw]:
    raw = Raw(stack_url, project)
    yield raw
    raw.conn.close()


def test_round_trip_over_http(call: Raw) -> None:
    status, headers, _ = call("PUT", "/v2/queues/e2e", {"purpose": "test"})
    assert (status, headers["location"]) == (201, "/v2/queues/e2e")
    status, headers, body = call("POST", "/v2/queues/e2e/messages", {"messages": [{"body": {"n": i}} for i in range(3)]})
    assert status == 201 and len(body["resources"]) == 3
    status, headers, body = call("POST", "/v2/queues/e2e/claims?limit=2", {"ttl": 60})
    assert status == 201
    claim_path = urlsplit(headers["location"]).path
    for message in body["messages"]:
        assert call("DELETE", message["href"])[0] == 204
    assert call("GET", claim_path)[2]["messages"] == []
    status, _, stats = call("GET", "/v2/queues/e2e/stats")
    assert stats["messages"]["total"] == 1
    assert call("DELETE", "/v2/queues/e2e")[0] == 204


def test_unknown_paths_and_methods_answer_like_zaqar(call: Raw) -> None:
    status, _, body = call("GET", "/v2/nothing/here")
    assert status == 404 and body["title"] == "Not found"
    status, headers, body = call("POST", "/v2/ping")
    assert status == 405 and headers["allow"] == "GET, HEAD"
    assert call("HEAD", "/v2/ping")[0] == 204


def test_python_zaqarclient_full_round_trip(stack_url: str, project: str) -> None:
    from zaqarclient.queues.v2 import client

    conf = {"auth_opts": {"backend": "noauth", "options": {"os_project_id": project}}}
    cli = client.Client(stack_url, version=2, conf=conf)
    queue = cli.queue("zc-queue", force_create=True)
    queue.metadata(new_meta={"owner": "zaqarclient"})
    assert queue.metadata(force_reload=True)["owner"] == "zaqarclient"
    queue.post([{"body": {"event": "one"}, "ttl": 300}, {"body": {"event": "two"}}])
    listed = list(queue.messages(echo=True))
    assert [m.body for m in listed] == [{"event": "one"}, {"event": "two"}]
    claim = queue.claim(ttl=120, grace=60, limit=5)
    claimed = list(claim)
    assert [m.body for m in claimed] == [{"event": "one"}, {"event": "two"}]
    stats = queue.stats["messages"]
    assert stats["total"] == 2 and stats["claimed"] == 2
    for message in claimed:
        message.delete()
    assert queue.stats["messages"]["total"] == 0
    listed_queues, count = cli.queues(with_count=True)
    assert [q.name for q in listed_queues] == ["zc-queue"] and count == 1
    queue.delete()
    assert [q.name for q in cli.queues()[0]] == []


@pytest.mark.keystone
def test_python_zaqarclient_through_keystone(keystone_stack: Any, keystone: Any, redis_url: str) -> None:
    from zaqarclient.queues.v2 import client

    from tests.conftest import _delete_project_keys
    from tests.keystone_server import PASSWORD

    options = {"os_auth_url": f"{keystone.url}/v3", "os_username": "alice", "os_password": PASSWORD,
               "os_project_name": "alpha", "os_user_domain_name": "Default", "os_project_domain_name": "Default"}
    cli = client.Client(keystone_stack.http, version=2, conf={"auth_opts": {"backend": "keystone", "options": options}})
    try:
        queue = cli.queue("ks-queue", force_create=True)
        queue.post([{"body": {"via": "keystone"}}])
        claimed = list(queue.claim(ttl=60, grace=60, limit=5))
        assert [m.body for m in claimed] == [{"via": "keystone"}]
        for message in claimed:
            message.delete()
        assert queue.stats["messages"]["total"] == 0
        queue.delete()
        anonymous = client.Client(keystone_stack.http, version=2,
                                  conf={"auth_opts": {"backend": "noauth", "options": {"os_project_id": "alpha"}}})
        with pytest.raises(Exception, match="401"):
            list(anonymous.queues()[0])
    finally:
        _delete_project_keys(redis_url, keystone.projects["alpha"])
