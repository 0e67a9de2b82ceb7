"""trust+http subscribers against a real Keystone (tests/keystone_server.py): the trust made at subscribe
time, the trust-scoped token the webhook receives, and the trust's end with its subscription."""

from __future__ import annotations

import calendar
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from chalice.test import Client

import app as app_module
from chalicelib import runtime
from chalicelib.api.context import Services
from tests.conftest import installed, make_settings
from tests.functional.test_notifications import SENDER, Flow, local_aws
from tests.integration.test_keystone import As, keystone_settings
from tests.keystone_server import PASSWORD, Keystone
from tests.receiver import Receiver, receiver

pytestmark = pytest.mark.keystone
TRUSTEE = {"TRUSTEE_USERNAME": "zaqar", "TRUSTEE_PASSWORD": PASSWORD}


def _build(tmp_path: Path, redis_url: str, keystone: Keystone, **extra: str) -> Services:
    settings = make_settings(tmp_path, redis_url, **{
        **keystone_settings(tmp_path, redis_url, keystone), "EVENT_STREAM": "zaqar-events",
        "RETRY_QUEUE": "zaqar-retries", "SES_SENDER": SENDER, "WEBHOOK_ALLOW_LOOPBACK": "true",
        "WEBHOOK_TIMEOUT": "2", **extra})
    return runtime.build(settings)


@pytest.fixture
def aws() -> Iterator[None]:
    with local_aws():
        yield


@contextmanager
def _install(services: Services, redis_url: str, keystone: Keystone) -> Iterator[Client]:
    with installed(services, redis_url=redis_url, projects=keystone.projects.values()), \
            Client(app_module.app) as client:
        yield client


@pytest.fixture
def flow(aws: None, tmp_path: Path, redis_url: str, keystone: Keystone) -> Iterator[tuple[Client, Flow]]:
    services = _build(tmp_path, redis_url, keystone, **TRUSTEE)
    with _install(services, redis_url, keystone) as client:
        yield client, Flow(services)


@pytest.fixture
def hook() -> Iterator[Receiver]:
    with receiver() as state:
        yield state


def _user_id(keystone: Keystone, name: str) -> str:
    status, _, found = keystone.call("GET", f"/v3/users?name={name}", token=keystone.token("admin", "admin"))
    assert status == 200
    return str(found["users"][0]["id"])


def _trust(keystone: Keystone, trust_id: str, token: str) -> tuple[int, Any]:
    status, _, body = keystone.call("GET", f"/v3/OS-TRUST/trusts/{trust_id}", token=token)
    return status, body


def _validate(keystone: Keystone, token: str) -> dict[str, Any]:
    status, _, body = keystone.call("GET", "/v3/auth/tokens", token=keystone.token("admin", "admin"),
                                    headers={"X-Subject-Token": token})
    assert status == 200, status
    return dict(body["token"])


def _subscribe(alice: As, url: str, **body: Any) -> str:
    status, reply = alice("POST", "/v2/queues/orders/subscriptions", {"subscriber": f"trust+{url}", **body})
    assert status == 201, reply
    return str(reply["subscription_id"])


def test_the_webhook_gets_a_token_scoped_to_the_trust_made_at_subscribe_time(
        flow: tuple[Client, Flow], hook: Receiver, keystone: Keystone) -> None:
    client, pump = flow
    alice_token = keystone.token("alice", "alpha")
    alice = As(client, alice_token)
    before = time.time()
    sid = _subscribe(alice, f"{hook.url}/hook", ttl=600)
    after = time.time()
    _status, subscription = alice("GET", f"/v2/queues/orders/subscriptions/{sid}")
    trust_id = subscription["options"]["trust_id"]
    status, trust = _trust(keystone, trust_id, alice_token)
    assert status == 200, trust
    trust = trust["trust"]
    assert trust["trustor_user_id"] == _user_id(keystone, "alice")
    assert trust["trustee_user_id"] == _user_id(keystone, "zaqar")
    assert trust["project_id"] == keystone.projects["alpha"] and trust["impersonation"] is True
    assert {r["name"] for r in trust["roles"]} >= {"member"}
    expires = calendar.timegm(time.strptime(trust["expires_at"][:19], "%Y-%m-%dT%H:%M:%S"))
    assert before + 600 - 1 <= expires <= after + 600 + 1  # the trust ends with the subscription (to the second)

    assert alice("POST", "/v2/queues/orders/messages", {"messages": [{"body": {"order": 1}}]})[0] == 201
    pump.drain()
    (received,) = hook.wait_for(1)
    assert received.path == "/hook" and received.json["body"] == {"order": 1}
    token = received.headers["X-Auth-Token"]
    assert token != alice_token
    found = _validate(keystone, token)
    assert found["OS-TRUST:trust"]["id"] == trust_id
    assert found["project"]["id"] == keystone.projects["alpha"]
    assert found["user"]["id"] == trust["trustor_user_id"]  # impersonation: the receiver sees alice

    assert alice("DELETE", f"/v2/queues/orders/subscriptions/{sid}")[0] == 204
    assert _trust(keystone, trust_id, alice_token)[0] == 404


def test_trust_tokens_are_reused_while_fresh(flow: tuple[Client, Flow], hook: Receiver, keystone: Keystone) -> None:
    client, pump = flow
    alice = As(client, keystone.token("alice", "alpha"))
    _subscribe(alice, f"{hook.url}/hook")
    for order in (1, 2):
        alice("POST", "/v2/queues/orders/messages", {"messages": [{"body": {"order": order}}]})
        pump.drain()
    first, second = hook.wait_for(2)
    assert first.headers["X-Auth-Token"] == second.headers["X-Auth-Token"]


def test_another_member_of_the_project_deleting_the_subscription_ends_the_trust(
        flow: tuple[Client, Flow], hook: Receiver, keystone: Keystone) -> None:
    client, _pump = flow
    admin = keystone.token("admin", "admin")
    name = f"carol-{time.monotonic_ns()}"
    status, _, carol = keystone.call("POST", "/v3/users", {"user": {
        "name": name, "password": PASSWORD, "domain_id": "default"}}, token=admin)
    assert status == 201
    _, _, roles = keystone.call("GET", "/v3/roles?name=member", token=admin)
    keystone.call("PUT", f"/v3/projects/{keystone.projects['alpha']}/users/{carol['user']['id']}/roles/"
                  f"{roles['roles'][0]['id']}", token=admin)
    alice_token = keystone.token("alice", "alpha")
    alice = As(client, alice_token)
    sid = _subscribe(alice, f"{hook.url}/hook")
    trust_id = alice("GET", f"/v2/queues/orders/subscriptions/{sid}")[1]["options"]["trust_id"]
    # carol is not the trustor, so Keystone refuses her token: the trust's own token deletes it
    assert As(client, keystone.token(name, "alpha"))("DELETE", f"/v2/queues/orders/subscriptions/{sid}")[0] == 204
    assert _trust(keystone, trust_id, alice_token)[0] == 404


def test_changing_the_ttl_makes_a_new_trust_and_a_plain_subscriber_none(
        flow: tuple[Client, Flow], hook: Receiver, keystone: Keystone) -> None:
    client, _pump = flow
    alice_token = keystone.token("alice", "alpha")
    alice = As(client, alice_token)
    sid = _subscribe(alice, f"{hook.url}/hook", ttl=300, options={"post_headers": {"X-Tag": "a"}})
    path = f"/v2/queues/orders/subscriptions/{sid}"
    first = alice("GET", path)[1]["options"]["trust_id"]
    assert alice("PATCH", path, {"options": {"post_headers": {"X-Tag": "b"}}})[0] == 204
    options = alice("GET", path)[1]["options"]
    assert options == {"post_headers": {"X-Tag": "b"}, "trust_id": first}  # the service keeps its trust id
    assert alice("PATCH", path, {"ttl": 900})[0] == 204
    second = alice("GET", path)[1]["options"]["trust_id"]
    assert second != first and _trust(keystone, first, alice_token)[0] == 404
    assert _trust(keystone, second, alice_token)[0] == 200
    assert alice("PATCH", path, {"subscriber": f"{hook.url}/plain"})[0] == 204
    assert "trust_id" not in alice("GET", path)[1]["options"]
    assert _trust(keystone, second, alice_token)[0] == 404


@pytest.mark.parametrize(("options", "words"), [
    ({"trust_id": "0123456789abcdef"}, ["trust_id", "set by the service"]),
    ({"post_headers": {"x-auth-token": "mine"}}, ["X-Auth-Token"]),
])
def test_what_only_the_service_may_set_is_refused(flow: tuple[Client, Flow], hook: Receiver, keystone: Keystone,
                                                  options: dict[str, Any], words: list[str]) -> None:
    client, _pump = flow
    alice = As(client, keystone.token("alice", "alpha"))
    status, body = alice("POST", "/v2/queues/orders/subscriptions",
                         {"subscriber": f"trust+{hook.url}/hook", "options": options})
    assert status == 400, body
    assert all(word.lower() in body["description"].lower() for word in words), body
    assert alice("GET", "/v2/queues/orders/subscriptions")[1]["subscriptions"] == []


def test_refused_addresses_are_refused_for_trust_subscribers_too(flow: tuple[Client, Flow],
                                                                 keystone: Keystone) -> None:
    client, _pump = flow
    alice = As(client, keystone.token("alice", "alpha"))
    status, body = alice("POST", "/v2/queues/orders/subscriptions", {"subscriber": "trust+http://169.254.169.254/"})
    assert status == 400 and "cloud metadata" in body["description"], body


def test_without_a_trustee_trust_subscribers_are_refused_with_what_to_configure(
        aws: None, tmp_path: Path, redis_url: str, keystone: Keystone) -> None:
    with _install(_build(tmp_path, redis_url, keystone), redis_url, keystone) as client:
        alice = As(client, keystone.token("alice", "alpha"))
        status, body = alice("POST", "/v2/queues/orders/subscriptions", {"subscriber": "trust+http://example.test/"})
        assert status == 503 and "TRUSTEE_USERNAME" in body["description"], body
        assert alice("GET", "/v2/queues/orders/subscriptions")[1]["subscriptions"] == []


def test_a_wrong_trustee_password_is_a_configuration_error(
        aws: None, tmp_path: Path, redis_url: str, keystone: Keystone) -> None:
    services = _build(tmp_path, redis_url, keystone, TRUSTEE_USERNAME="zaqar", TRUSTEE_PASSWORD="wrong")
    with _install(services, redis_url, keystone) as client:
        alice = As(client, keystone.token("alice", "alpha"))
        status, body = alice("POST", "/v2/queues/orders/subscriptions", {"subscriber": "trust+http://example.test/"})
        assert status == 503 and "TRUSTEE_PASSWORD" in body["description"], body
        assert alice("GET", "/v2/queues/orders/subscriptions")[1]["subscriptions"] == []


def test_over_websocket_the_frame_that_subscribes_carries_the_token(
        flow: tuple[Client, Flow], hook: Receiver, keystone: Keystone) -> None:
    from tests.functional.test_websocket import Ws, fake_management

    with fake_management() as fake:
        token = keystone.token("alice", "alpha")
        ws = Ws(fake, keystone.projects["alpha"]).connect()
        assert ws("authenticate", **{"X-Auth-Token": token})[0] == 200
        body = {"queue_name": "orders", "subscriber": f"trust+{hook.url}/hook"}
        status, reply = ws("subscription_create", body)
        assert status == 400 and "X-Auth-Token" in reply["error"], reply
        status, reply = ws("subscription_create", body, **{"X-Auth-Token": keystone.token("bob", "beta")})
        assert status == 403, reply
        status, reply = ws("subscription_create", body, **{"X-Auth-Token": token})
        assert status == 201, reply
        sid = reply["subscription_id"]
        _status, found = ws("subscription_get", {"queue_name": "orders", "subscription_id": sid})
        trust_id = found["options"]["trust_id"]
        assert _trust(keystone, trust_id, token)[0] == 200
        assert ws("subscription_delete", {"queue_name": "orders", "subscription_id": sid})[0] == 204
        assert _trust(keystone, trust_id, token)[0] == 404
