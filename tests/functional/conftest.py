"""The Chalice app driven through ``chalice.test.Client`` (API Gateway proxy events)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from chalice.test import Client

from app import app
from chalicelib.api.context import Services

PATCH_TYPE = "application/openstack-messaging-v2.0-json-patch"


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    raw: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.raw)


class Api:
    """A Zaqar client speaking to the app in-process, one project and client id."""

    def __init__(self, client: Client, project: str) -> None:
        self._client = client
        self.project = project
        self.client_id = str(uuid.uuid4())

    def headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        base = {"Client-ID": self.client_id, "X-Project-ID": self.project, "Content-Type": "application/json"}
        base.update(extra or {})
        return {k: v for k, v in base.items() if v is not None}

    def call(self, method: str, path: str, body: Any = None, *, raw: bytes | str | None = None,
             headers: dict[str, Any] | None = None) -> Reply:
        payload = raw if raw is not None else (json.dumps(body) if body is not None else b"")
        if isinstance(payload, str):
            payload = payload.encode()
        response = self._client.http.request(method, path, headers=self.headers(headers), body=payload)
        lowered = {k.lower(): v for k, v in response.headers.items()}
        return Reply(response.status_code, lowered, response.body)

    def get(self, path: str, **kw: Any) -> Reply:
        return self.call("GET", path, **kw)

    def put(self, path: str, body: Any = None, **kw: Any) -> Reply:
        return self.call("PUT", path, body, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> Reply:
        return self.call("POST", path, body, **kw)

    def patch(self, path: str, body: Any = None, **kw: Any) -> Reply:
        return self.call("PATCH", path, body, **kw)

    def delete(self, path: str, **kw: Any) -> Reply:
        return self.call("DELETE", path, **kw)

    def post_messages(self, queue: str, *bodies: Any, **fields: Any) -> list[str]:
        reply = self.post(f"/v2/queues/{queue}/messages", {"messages": [{"body": b, **fields} for b in bodies]})
        assert reply.status == 201, reply.raw
        return [href.rsplit("/", 1)[1] for href in reply.json["resources"]]


@pytest.fixture
def chalice_client(services: Services) -> Iterator[Client]:
    with Client(app) as client:
        yield client


@pytest.fixture
def api(chalice_client: Client, project: str) -> Api:
    return Api(chalice_client, project)


@pytest.fixture
def other(chalice_client: Client, project: str) -> Api:
    """Another client instance of the same project."""
    return Api(chalice_client, project)
