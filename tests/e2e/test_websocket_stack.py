"""The local stack's websocket API over real sockets."""

from __future__ import annotations

import json
import threading
import time
import uuid
from typing import Any

import pytest
import requests
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.e2e.conftest import Stack

pytestmark = pytest.mark.e2e


class Client:
    def __init__(self, sock: ClientConnection, project: str) -> None:
        self.sock = sock
        self.headers = {"Client-ID": str(uuid.uuid4()), "X-Project-ID": project}

    def __call__(self, action: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        self.sock.send(json.dumps({"action": action, "headers": self.headers, "body": body or {}}))
        reply = json.loads(self.sock.recv(timeout=10))
        return reply["headers"]["status"], reply["body"]


def test_round_trip_with_a_plain_websocket_client(stack: Stack, project: str) -> None:
    with connect(stack.ws) as sock:
        ws = Client(sock, project)
        assert ws("queue_create", {"queue_name": "wsq"}) == (201, "Queue wsq created.")
        status, _posted = ws("message_post", {"queue_name": "wsq", "messages": [{"body": {"n": i}} for i in range(3)]})
        assert status == 201
        status, listed = ws("message_list", {"queue_name": "wsq", "echo": True})
        assert [m["body"] for m in listed["messages"]] == [{"n": 0}, {"n": 1}, {"n": 2}]
        status, claim = ws("claim_create", {"queue_name": "wsq", "limit": 2})
        assert status == 201
        for message in claim["messages"]:
            assert ws("message_delete", {"queue_name": "wsq", "message_id": message["id"],
                                         "claim_id": claim["claim_id"]}) == (204, {})
        status, stats = ws("queue_get_stats", {"queue_name": "wsq"})
        assert stats["messages"]["total"] == 1
        assert ws("queue_delete", {"queue_name": "wsq"})[0] == 204


def test_python_zaqarclient_websocket_transport(stack: Stack, project: str) -> None:
    from zaqarclient import transport
    from zaqarclient.transport import request

    conf = {"auth_opts": {"backend": "noauth", "options": {"os_project_id": project, "os_auth_token": "unused"}}}
    with transport.get_transport_for(stack.ws, options=conf) as ws:

        def send(action: str, body: dict[str, Any]) -> Any:
            response = ws.send(request.Request(stack.ws, action, content=json.dumps(body)))
            return response.status_code, json.loads(response.content)

        assert send("queue_create", {"queue_name": "zcq"})[0] == 201
        status, posted = send("message_post", {"queue_name": "zcq", "messages": [{"body": "hello", "ttl": 300}]})
        assert status == 201 and len(posted["message_ids"]) == 1
        status, claim = send("claim_create", {"queue_name": "zcq"})
        assert status == 201 and claim["messages"][0]["body"] == "hello"
        status, _ = send("message_delete", {"queue_name": "zcq", "message_id": posted["message_ids"][0],
                                            "claim_id": claim["claim_id"]})
        assert status == 204
        assert send("queue_get_stats", {"queue_name": "zcq"})[1]["messages"]["total"] == 0
        assert send("queue_delete", {"queue_name": "zcq"})[0] == 204


def test_bad_and_oversize_frames_get_errors_and_the_socket_stays_open(stack: Stack, project: str) -> None:
    with connect(stack.ws, max_size=None) as sock:
        ws = Client(sock, project)
        sock.send("{not json")
        assert json.loads(sock.recv(timeout=10))["headers"]["status"] == 400
        sock.send(json.dumps({"action": "teleport", "headers": ws.headers, "body": {}}))
        assert json.loads(sock.recv(timeout=10))["headers"]["status"] == 400
        big = {"queue_name": "q", "messages": [{"body": "x" * (130 * 1024)}]}
        sock.send(json.dumps({"action": "message_post", "headers": ws.headers, "body": big}))
        reply = json.loads(sock.recv(timeout=10))
        assert reply["headers"]["status"] == 413
        assert ws("queue_list")[0] == 200


def test_binary_frames_close_the_connection_like_api_gateway(stack: Stack) -> None:
    with connect(stack.ws) as sock:
        sock.send(b"\x00\x01binary")
        with pytest.raises(ConnectionClosed) as closed:
            sock.recv(timeout=10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1003


def test_fifty_concurrent_connections(stack: Stack, project: str) -> None:
    failures: list[BaseException] = []

    def session(index: int) -> None:
        try:
            with connect(stack.ws) as sock:
                ws = Client(sock, project)
                queue = f"c{index}"
                assert ws("message_post", {"queue_name": queue, "messages": [{"body": index}]})[0] == 201
                status, claim = ws("claim_create", {"queue_name": queue})
                assert status == 201 and claim["messages"][0]["body"] == index
                assert ws("queue_delete", {"queue_name": queue})[0] == 204
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=session, args=(i,)) for i in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert failures == []


def test_disconnect_removes_that_connections_subscriptions(stack: Stack, project: str) -> None:
    with connect(stack.ws) as sock:
        ws = Client(sock, project)
        assert ws("subscription_create", {"queue_name": "subq"})[0] == 201
        _status, listed = ws("subscription_list", {"queue_name": "subq"})
        assert len(listed["subscriptions"]) == 1
    headers = {"Client-ID": str(uuid.uuid4()), "X-Project-ID": project}
    url = f"{stack.http}/v2/queues/subq/subscriptions"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        remaining = requests.get(url, headers=headers, timeout=5).json()["subscriptions"]
        if not remaining:
            break
        time.sleep(0.1)
    assert remaining == []
