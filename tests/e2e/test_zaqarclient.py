"""python-zaqarclient's v2 operations, unchanged, against the local stack: over HTTP and over websocket.

Over HTTP every operation goes through the client's own API (``Client``,
``Queue``, ``Claim``, ``Subscription``, pools, flavors). Its websocket
transport sends only a request's body (it warns that it "does not yet
support params"), so its high-level calls that carry the queue name as a
parameter cannot work over websocket against any Zaqar, upstream's
included; websocket users (TripleO did) send each action with its body
through the client's transport, which is what the websocket test does, for
every action the websocket API has. Admin operations (pools, flavors,
health) need a stack in admin mode and a caller with the admin role:
python-zaqarclient's noauth backend cannot send roles, so those go through
Keystone; they are REST resources (upstream's websocket API has none).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.conftest import Stack, _start_stack

pytestmark = pytest.mark.e2e


@pytest.fixture
def url(stack: Stack) -> str:
    return stack.http


def noauth_client(url: str, project: str) -> Any:
    from zaqarclient.queues.v2 import client

    options = {"os_project_id": project, "os_auth_token": "unused-in-noauth"}
    return client.Client(url, version=2, conf={"auth_opts": {"backend": "noauth", "options": options}})


def test_queues_metadata_stats_and_purge(url: str, project: str) -> None:
    cli = noauth_client(url, project)
    queue = cli.queue("zc-queues", force_create=True)
    # (queue.exists() cannot tell: v2 queues are lazy, a missing one reads as an empty one)
    assert [q.name for q in cli.queues()[0]] == ["zc-queues"]
    queue.metadata(new_meta={"owner": "zaqarclient", "_default_message_ttl": 600})
    assert queue.metadata(force_reload=True)["owner"] == "zaqarclient"
    queue.post([{"body": n} for n in range(3)])
    assert queue.stats["messages"]["total"] == 3
    queue.purge(resource_types=["messages"])
    assert queue.stats["messages"]["total"] == 0
    listed, count = cli.queues(with_count=True)
    assert [q.name for q in listed] == ["zc-queues"] and count == 1
    queue.delete()
    assert [q.name for q in cli.queues()[0]] == []


def test_messages_get_many_delete_many_and_pop(url: str, project: str) -> None:
    cli = noauth_client(url, project)
    queue = cli.queue("zc-messages", force_create=True)
    queue.post([{"body": {"n": n}, "ttl": 300} for n in range(5)])
    listed = list(queue.messages(echo=True))
    assert [m.body for m in listed] == [{"n": n} for n in range(5)]
    ids = [m.id for m in listed]
    assert queue.message(ids[0]).body == {"n": 0}
    # every id asked for comes back (a server that keeps only the last repeated ?ids= returned one)
    assert sorted(m.id for m in queue.messages(*ids[:3])) == sorted(ids[:3])
    queue.delete_messages(ids[0], ids[1])
    assert [m.body for m in queue.messages(echo=True)] == [{"n": 2}, {"n": 3}, {"n": 4}]
    popped = list(queue.pop(count=2))
    assert [m.body for m in popped] == [{"n": 2}, {"n": 3}]
    queue.message(ids[4]).delete()
    assert queue.stats["messages"]["total"] == 0
    queue.delete()


def test_claims_get_update_and_release(url: str, project: str) -> None:
    cli = noauth_client(url, project)
    queue = cli.queue("zc-claims", force_create=True)
    queue.post([{"body": n} for n in range(3)])
    claim = queue.claim(ttl=120, grace=60, limit=2)
    claimed = list(claim)
    assert [m.body for m in claimed] == [0, 1]
    again = queue.claim(id=claim.id)
    assert again.ttl == 120 and sorted(m.id for m in again) == sorted(m.id for m in claimed)
    claim.update(ttl=300, grace=60)
    assert queue.claim(id=claim.id).ttl == 300
    claimed[0].delete()  # with its claim id
    claim.delete()  # the other one is free again
    assert [m.body for m in queue.claim(ttl=60, grace=60, limit=5)] == [1, 2]
    assert queue.stats["messages"]["claimed"] == 2
    queue.delete()


def test_subscriptions_and_signed_urls(url: str, project: str) -> None:
    cli = noauth_client(url, project)
    queue = cli.queue("zc-subs", force_create=True)
    subscription = cli.subscription("zc-subs", subscriber="http://example.test/hook", ttl=3600,
                                    options={"k": "v"})
    assert subscription.id
    listed = list(cli.subscriptions("zc-subs"))
    assert [s.id for s in listed] == [subscription.id]
    assert listed[0].subscriber == "http://example.test/hook" and listed[0].options == {"k": "v"}
    subscription.update({"ttl": 7200})
    assert [s.ttl for s in queue.subscriptions()] == [7200]
    subscription.delete()
    assert list(cli.subscriptions("zc-subs")) == []
    signed = queue.signed_url(paths=["messages"], methods=["GET", "POST"], ttl_seconds=600)
    assert signed["project"] == project and signed["paths"] == ["/v2/queues/zc-subs/messages"]
    assert sorted(signed["methods"]) == ["GET", "POST"] and len(signed["signature"]) == 64
    queue.delete()


def test_ping_and_home(url: str, project: str) -> None:
    cli = noauth_client(url, project)
    assert cli.ping() is True
    assert "rel/queues" in cli.homedoc()["resources"]


def test_every_websocket_action_through_the_clients_transport(stack: Stack, project: str) -> None:
    import json

    from zaqarclient import transport
    from zaqarclient.transport import errors as client_errors
    from zaqarclient.transport import request

    conf = {"auth_opts": {"backend": "noauth", "options": {"os_project_id": project, "os_auth_token": "unused"}}}
    with transport.get_transport_for(stack.ws, options=conf) as ws:

        def send(action: str, **body: Any) -> Any:
            reply = ws.send(request.Request(stack.ws, action, content=json.dumps(body)))
            return json.loads(reply.content)

        q = {"queue_name": "zc-ws"}
        send("queue_create", **q, metadata={"a": 1})
        assert send("queue_get", **q)["a"] == 1
        assert send("queue_list", detailed=True)["queues"] == [{"name": "zc-ws", "metadata": {"a": 1}}]
        ids = send("message_post", **q, messages=[{"body": n, "ttl": 300} for n in range(6)])["message_ids"]
        assert [m["body"] for m in send("message_list", **q, echo=True)["messages"]] == list(range(6))
        assert send("message_get", **q, message_id=ids[0])["messages"]["body"] == 0  # upstream's shape
        found = send("message_get_many", **q, message_ids=ids[:2])["messages"]
        assert sorted(m["id"] for m in found) == sorted(ids[:2])
        send("message_delete", **q, message_id=ids[0])
        send("message_delete_many", **q, message_ids=ids[1:3])
        assert [m["body"] for m in send("message_delete_many", **q, pop=1)["messages"]] == [3]
        claim = send("claim_create", **q, ttl=120, grace=60, limit=1)
        claim_id = claim["claim_id"]
        assert [m["body"] for m in claim["messages"]] == [4]
        send("claim_update", **q, claim_id=claim_id, ttl=300, grace=60)
        assert send("claim_get", **q, claim_id=claim_id)["ttl"] == 300
        send("claim_delete", **q, claim_id=claim_id)
        counts = send("queue_get_stats", **q)["messages"]
        assert (counts["claimed"], counts["free"], counts["total"]) == (0, 2, 2)
        made = send("subscription_create", **q, subscriber="http://example.test/hook", ttl=600)
        sid = made["subscription_id"]
        assert send("subscription_get", **q, subscription_id=sid)["subscriber"] == "http://example.test/hook"
        assert [s["id"] for s in send("subscription_list", **q)["subscriptions"]] == [sid]
        send("subscription_delete", **q, subscription_id=sid)
        assert send("subscription_list", **q)["subscriptions"] == []
        send("queue_purge", **q, resource_types=["messages"])
        assert send("queue_get_stats", **q)["messages"]["total"] == 0
        send("queue_delete", **q)
        assert send("queue_list")["queues"] == []
        with pytest.raises(client_errors.MalformedRequest):  # errors come back as the client's own exceptions
            send("message_post", **q, messages=[])


@pytest.fixture(scope="module")
def admin_stack(tmp_path_factory: pytest.TempPathFactory, redis_url: str, keystone: Any) -> Iterator[Stack]:
    from tests.keystone_server import PASSWORD

    yield from _start_stack(
        tmp_path_factory.mktemp("admin-stack"), redis_url, AUTH_STRATEGY="keystone", KEYSTONE_URL=keystone.url,
        KEYSTONE_USERNAME="zaqar", KEYSTONE_PASSWORD=PASSWORD, KEYSTONE_PROJECT="service", ADMIN_MODE="true",
    )


@pytest.mark.keystone
def test_pools_flavors_and_health_as_an_admin(admin_stack: Stack, keystone: Any, redis_url: str) -> None:
    from zaqarclient.queues.v2 import client

    from tests.keystone_server import PASSWORD

    options = {"os_auth_url": f"{keystone.url}/v3", "os_username": "admin", "os_password": PASSWORD,
               "os_project_name": "admin", "os_user_domain_name": "Default", "os_project_domain_name": "Default"}
    cli = client.Client(admin_stack.http, version=2, conf={"auth_opts": {"backend": "keystone", "options": options}})
    name = f"zc-pool-{uuid.uuid4().hex[:6]}"
    separator = "&" if "?" in redis_url else "?"
    pool = cli.pool(name, uri=f"{redis_url}{separator}{name}=1", weight=10, options={})  # one URI, one pool
    assert name in [p.name for p in cli.pools(detailed=True)]
    flavor = cli.flavor(f"zc-flavor-{uuid.uuid4().hex[:6]}", pool_list=[name])
    assert flavor.name in [f.name for f in cli.flavors()]
    flavor.delete()
    pool.delete()
    assert name not in [p.name for p in cli.pools()]
    assert "catalog_reachable" in cli.health()
