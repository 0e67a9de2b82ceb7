"""DEFAULT_PROJECT (noauth only): the project of requests that send no X-Project-ID, over REST and websocket;
unset, a missing X-Project-ID stays a 400."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from chalice.test import Client

from chalicelib.api.context import Services
from chalicelib.config import Settings
from tests.conftest import make_settings
from tests.functional.conftest import Api
from tests.functional.test_websocket import FakeManagementApi, Ws, fake_management

UNSET = pytest.mark.parametrize("default_project", [None])


@pytest.fixture
def pool_kind() -> str:
    return "redis"


@pytest.fixture
def default_project(project: str) -> str | None:
    return project  # the test's own project, so its keys are cleaned up after it


@pytest.fixture
def settings(tmp_path: Path, redis_url: str, default_project: str | None) -> Settings:
    extra = {} if default_project is None else {"DEFAULT_PROJECT": default_project}
    return make_settings(tmp_path, redis_url, **extra)


@pytest.fixture
def management(services: Services) -> Iterator[FakeManagementApi]:
    with fake_management() as fake:
        yield fake


def test_rest_requests_without_x_project_id_act_for_the_default_project(chalice_client: Client, project: str) -> None:
    anonymous = Api(chalice_client, None)  # type: ignore[arg-type]  # sends no X-Project-ID
    assert anonymous.put("/v2/queues/orders").status == 201
    assert anonymous.post_messages("orders", {"n": 1})
    named = Api(chalice_client, project)
    assert [q["name"] for q in named.get("/v2/queues").json["queues"]] == ["orders"]
    other = Api(chalice_client, project + "-other")  # a header still wins
    assert other.get("/v2/queues").json["queues"] == []


@UNSET
def test_without_a_default_project_a_missing_x_project_id_is_400(chalice_client: Client,
                                                                 default_project: None) -> None:
    reply = Api(chalice_client, None).put("/v2/queues/orders")  # type: ignore[arg-type]
    assert reply.status == 400 and "X-Project-ID" in reply.json["description"]


def _frames(ws: Ws) -> tuple[tuple[int, Any], tuple[int, Any]]:
    del ws.headers["X-Project-ID"]
    return ws("queue_create", {"queue_name": "orders"}), ws("queue_list")


def test_websocket_frames_without_x_project_id_act_for_the_default_project(
        management: FakeManagementApi, chalice_client: Client, project: str) -> None:
    created, listed = _frames(Ws(management, project).connect())
    assert created[0] == 201 and [q["name"] for q in listed[1]["queues"]] == ["orders"]
    assert [q["name"] for q in Api(chalice_client, project).get("/v2/queues").json["queues"]] == ["orders"]


@UNSET
def test_without_a_default_project_websocket_frames_need_x_project_id(
        management: FakeManagementApi, project: str, default_project: None) -> None:
    created, _listed = _frames(Ws(management, project).connect())
    assert created[0] == 400 and "X-Project-ID" in created[1]["error"]
