"""Message attributes (beyond upstream): named values beside the body, validated on both transports, kept
with the message and shown wherever it is shown; messages without them look as upstream's do."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.api.context import Services
from chalicelib.config import Settings
from chalicelib.events.model import RecordingSink
from chalicelib.notify import payloads
from chalicelib.notify.jobs import NOTIFICATION, Job
from tests.functional.conftest import Api
from tests.functional.test_websocket import Ws, fake_management, management, ws  # noqa: F401 - fixtures

ATTRS: dict[str, Any] = {"color": "red", "size": 3, "ratio": 0.5, "vip": True, "tags": ["a", "b"], "x.y-z_1": ""}


def _post(api: Api, queue: str, *messages: dict[str, Any]) -> list[str]:
    reply = api.post(f"/v2/queues/{queue}/messages", {"messages": list(messages)})
    assert reply.status == 201, reply.raw
    return [href.rsplit("/", 1)[1] for href in reply.json["resources"]]


def test_attributes_come_back_wherever_the_message_is_shown(api: Api) -> None:
    with_attrs, plain = _post(api, "q", {"body": {"n": 1}, "attributes": ATTRS}, {"body": "plain"})
    got = api.get(f"/v2/queues/q/messages/{with_attrs}").json
    assert (got["body"], got["attributes"]) == ({"n": 1}, ATTRS)
    assert "attributes" not in api.get(f"/v2/queues/q/messages/{plain}").json  # as upstream shows it
    listed = api.get("/v2/queues/q/messages?echo=true").json["messages"]
    assert [m.get("attributes") for m in listed] == [ATTRS, None]
    many = api.get(f"/v2/queues/q/messages?ids={with_attrs},{plain}").json["messages"]
    assert [m.get("attributes") for m in many] == [ATTRS, None]
    claimed = api.post("/v2/queues/q/claims?limit=1", {"ttl": 60}).json["messages"]
    assert claimed[0]["attributes"] == ATTRS
    popped = api.delete("/v2/queues/q/messages?pop=1").json["messages"]
    assert popped[0]["body"] == "plain" and "attributes" not in popped[0]


def test_attributes_in_an_encrypted_queue_are_encrypted_with_the_body(api: Api, services: Services) -> None:
    api.put("/v2/queues/secret", {"_enable_encrypt_messages": True})
    (mid,) = _post(api, "secret", {"body": {"card": "4111"}, "attributes": {"owner": "alice-9f"}})
    store = services.pooling.lookup(project=api.project, queue="secret")
    assert store is not None
    (stored,) = store.message_get_many(project=api.project, queue="secret", ids=[mid]).items
    assert stored.encrypted and "alice-9f" not in stored.body
    assert api.get(f"/v2/queues/secret/messages/{mid}").json["attributes"] == {"owner": "alice-9f"}


def test_the_posted_event_carries_the_attributes(api: Api, services: Services) -> None:
    assert isinstance(services.sink, RecordingSink)
    (mid,) = _post(api, "q", {"body": [1], "attributes": {"kind": "order"}})
    posted = [e for e in services.sink.events if e.type == "message.posted" and e.project == api.project]
    assert posted[-1].data["messages"][0]["id"] == mid
    assert posted[-1].data["messages"][0]["attributes"] == {"kind": "order"}
    assert posted[-1].data["messages"][0]["body"] == [1]


@pytest.mark.parametrize(("attributes", "complaint"), [
    ({"a b": "x"}, '"a b" is not an attribute name'),
    ({"": "x"}, '"" is not an attribute name'),
    ({"n" * 257: "x"}, "is not an attribute name of 1 to 256"),
    ({f"k{i}": i for i in range(11)}, "at most 10 entries; it has 11"),
    ({"a": {"nested": 1}}, "attributes.a must be a string, a number, true or false, or an array of strings, not an "
                           "object"),
    ({"a": None}, "attributes.a must be a string, a number, true or false, or an array of strings, not null"),
    ({"a": ["x", 1]}, "attributes.a[1] must be a string, not an integer"),
    (["a"], "attributes must be a JSON object of at most 10 attributes"),
])
def test_bad_attributes_are_a_400_naming_the_problem_and_store_nothing(api: Api, attributes: Any,
                                                                       complaint: str) -> None:
    reply = api.post("/v2/queues/q/messages", {"messages": [{"body": 1}, {"body": 2, "attributes": attributes}]})
    assert reply.status == 400, reply.raw
    assert complaint in reply.json["description"]
    assert reply.json["description"].startswith("messages[1].attributes")
    assert api.get("/v2/queues/q/stats").json["messages"]["total"] == 0


def test_attributes_count_in_the_post_size(api: Api) -> None:
    api.put("/v2/queues/small", {"_max_messages_post_size": 1024})
    assert api.post("/v2/queues/small/messages", {"messages": [{"body": "x"}]}).status == 201
    big = api.post("/v2/queues/small/messages", {"messages": [{"body": "x", "attributes": {"pad": "p" * 1100}}]})
    assert big.status == 400 and "1024" in big.json["description"]


def test_websocket_posts_and_reads_attributes(ws: Ws) -> None:  # noqa: F811 - the fixture
    status, body = ws("message_post", {"queue_name": "q", "messages": [{"body": 1, "attributes": {"k": "v"}},
                                                                       {"body": 2}]})
    assert status == 201
    first, second = body["message_ids"]
    assert ws("message_get", {"queue_name": "q", "message_id": first})[1]["messages"]["attributes"] == {"k": "v"}
    assert "attributes" not in ws("message_get", {"queue_name": "q", "message_id": second})[1]["messages"]
    status, refused = ws("message_post", {"queue_name": "q", "messages": [{"body": 1, "attributes": {"k": {}}}]})
    assert status == 400 and "attributes.k must be" in refused["error"]


def test_notifications_carry_the_attributes_also_from_an_encrypted_queue() -> None:
    from chalicelib import attributes, crypto

    settings = Settings.from_mapping({"MESSAGE_ENCRYPTION_KEY": "k"})
    clear = Job(NOTIFICATION, "e", "p", "q", "s", {"id": "m", "body": {"a": 1}, "ttl": 60, "attributes": {"t": 1}})
    assert payloads.notification(settings, clear)["attributes"] == {"t": 1}
    sealed = crypto.encrypt("k", attributes.pack('{"a":1}', {"t": 2}))
    hidden = Job(NOTIFICATION, "e", "p", "q", "s", {"id": "m", "body": sealed, "ttl": 60}, True)
    document = payloads.notification(settings, hidden)
    assert (document["body"], document["attributes"]) == ({"a": 1}, {"t": 2})
    plain = Job(NOTIFICATION, "e", "p", "q", "s", {"id": "m", "body": "b", "ttl": 60})
    assert "attributes" not in payloads.notification(settings, plain)
