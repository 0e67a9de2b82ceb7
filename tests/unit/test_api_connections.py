"""The websocket connection operations (chalicelib.api.connections) over an in-memory connection store: what a
connection may act for, when it must close, and what closing it removes."""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import pytest

from chalicelib import errors
from chalicelib.api import connections
from chalicelib.api.context import Services
from chalicelib.config import Settings
from chalicelib.events.model import NullSink

PROJECT = "3f1c6a2e9b7d4e0a8c5b1d2f4a6e8c0b"


@dataclasses.dataclass(frozen=True)
class Record:
    project: str | None
    authenticated: bool
    expires: float | None
    source_ip: str


class FakeConnections:
    """The connection store's contract, in memory; every call recorded in ``calls``."""

    def __init__(self, calls: list[str]) -> None:
        self.calls = calls
        self.records: dict[str, Record] = {}

    def open(self, connection_id: str, *, now_ms: int, source_ip: str) -> None:
        self.calls.append(f"open {connection_id}")
        self.records[connection_id] = Record(None, False, None, source_ip)

    def get(self, connection_id: str) -> Record | None:
        return self.records.get(connection_id)

    def authenticate(self, connection_id: str, *, project: str, expires: float | None = None) -> None:
        self.calls.append(f"authenticate {connection_id}")
        self.records[connection_id] = dataclasses.replace(self.records[connection_id], project=project,
                                                          authenticated=True, expires=expires)

    def expired(self, *, now: float, limit: int = 500) -> list[str]:
        return [cid for cid, r in self.records.items() if r.expires is not None and r.expires <= now][:limit]

    def close(self, connection_id: str) -> None:
        self.calls.append(f"close {connection_id}")
        self.records.pop(connection_id, None)


class FakeSubscriptions:
    def __init__(self, calls: list[str]) -> None:
        self.calls = calls

    def delete_for_connection(self, connection_id: str) -> list[Any]:
        self.calls.append(f"delete subscriptions of {connection_id}")
        return []


@pytest.fixture
def calls() -> list[str]:
    return []


@pytest.fixture
def services(calls: list[str]) -> Services:
    fakes: Any = (FakeSubscriptions(calls), FakeConnections(calls))
    return Services(settings=Settings.from_mapping({}), pooling=None,  # type: ignore[arg-type]
                    subscriptions=fakes[0], connections=fakes[1], deliveries=None,  # type: ignore[arg-type]
                    sink=NullSink())


def test_an_authenticated_connection_acts_for_its_project(services: Services) -> None:
    connections.connection_open(services, "c1", source_ip="10.0.0.1")
    connections.connection_authenticate(services, "c1", project=PROJECT, expires=time.time() + 60)
    assert connections.connection_project(services, "c1", claimed=None) == PROJECT
    assert connections.connection_project(services, "c1", claimed=PROJECT) == PROJECT


@pytest.mark.parametrize("opened", [True, False], ids=["not-authenticated", "unknown"])
def test_a_connection_that_did_not_authenticate_acts_for_no_one(services: Services, opened: bool) -> None:
    if opened:
        connections.connection_open(services, "c1", source_ip="10.0.0.1")
    with pytest.raises(errors.Forbidden, match="authenticate frame"):
        connections.connection_project(services, "c1", claimed=PROJECT)


def test_a_frame_may_not_claim_another_project_than_its_connection_s(services: Services) -> None:
    connections.connection_open(services, "c1", source_ip="10.0.0.1")
    connections.connection_authenticate(services, "c1", project=PROJECT, expires=None)
    with pytest.raises(errors.Forbidden, match="X-Project-ID"):
        connections.connection_project(services, "c1", claimed="another-project")


def test_a_connection_whose_credentials_expired_is_told_so_and_listed_for_closing(services: Services) -> None:
    connections.connection_open(services, "c1", source_ip="10.0.0.1")
    connections.connection_open(services, "c2", source_ip="10.0.0.2")
    connections.connection_authenticate(services, "c1", project=PROJECT, expires=time.time() - 1)
    connections.connection_authenticate(services, "c2", project=PROJECT, expires=time.time() + 60)
    with pytest.raises(connections.AuthenticationExpired) as raised:
        connections.connection_project(services, "c1", claimed=None)
    assert raised.value.status == 401 and isinstance(raised.value, errors.Unauthorized)
    assert connections.connections_expired(services) == ["c1"]


@pytest.mark.parametrize("project", [None, "", "p" * 257], ids=["none", "empty", "too-long"])
def test_authenticating_for_no_valid_project_is_refused_and_records_nothing(
        services: Services, calls: list[str], project: str | None) -> None:
    connections.connection_open(services, "c1", source_ip="10.0.0.1")
    with pytest.raises(errors.Invalid, match="X-Project-ID"):
        connections.connection_authenticate(services, "c1", project=project, expires=None)
    assert calls == ["open c1"]


def test_closing_a_connection_removes_its_subscriptions_before_the_connection(
        services: Services, calls: list[str]) -> None:
    connections.connection_open(services, "c1", source_ip="10.0.0.1")
    connections.connection_close(services, "c1")
    assert calls == ["open c1", "delete subscriptions of c1", "close c1"]
    with pytest.raises(errors.Forbidden):
        connections.connection_project(services, "c1", claimed=None)
