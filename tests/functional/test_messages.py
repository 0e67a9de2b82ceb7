"""Message endpoints."""

from __future__ import annotations

import time

from chalicelib.api.context import Services
from tests.functional.conftest import Api


def test_post_returns_resources_in_order_and_location(api: Api) -> None:
    reply = api.post("/v2/queues/q1/messages", {"messages": [{"body": {"n": 1}}, {"body": [2], "ttl": 60}]})
    assert reply.status == 201
    ids = [href.rsplit("/", 1)[1] for href in reply.json["resources"]]
    assert reply.json["resources"] == [f"/v2/queues/q1/messages/{mid}" for mid in ids]
    assert reply.headers["location"] == f"/v2/queues/q1/messages?ids={','.join(ids)}"


def test_post_creates_the_queue_lazily(api: Api) -> None:
    api.post_messages("lazy", "x")
    assert api.get("/v2/queues/lazy").status == 200
    assert [q["name"] for q in api.get("/v2/queues").json["queues"]] == ["lazy"]


def test_list_hides_own_messages_unless_echo(api: Api, other: Api) -> None:
    api.post_messages("q1", "mine")
    assert api.get("/v2/queues/q1/messages").json == {"messages": [], "links": []}
    assert [m["body"] for m in api.get("/v2/queues/q1/messages?echo=true").json["messages"]] == ["mine"]
    assert [m["body"] for m in other.get("/v2/queues/q1/messages").json["messages"]] == ["mine"]


def test_list_pages_with_next_links_until_empty(api: Api, other: Api) -> None:
    api.post_messages("q1", *range(7))
    seen = []
    href = "/v2/queues/q1/messages?limit=3"
    for _ in range(10):
        page = other.get(href).json
        if not page["messages"]:
            assert page["links"] == []
            break
        seen += [m["body"] for m in page["messages"]]
        href = page["links"][0]["href"]
    assert seen == list(range(7))


def test_message_fields_and_get_by_id(api: Api) -> None:
    (mid,) = api.post_messages("q1", {"k": "v"}, ttl=120)
    message = api.get(f"/v2/queues/q1/messages/{mid}").json
    assert message == {"id": mid, "href": f"/v2/queues/q1/messages/{mid}", "ttl": 120, "age": message["age"],
                       "body": {"k": "v"}}
    assert 0 <= message["age"] <= 2


def test_get_by_ids_skips_unknown_and_404s_when_none(api: Api) -> None:
    a, b = api.post_messages("q1", "a", "b")
    reply = api.get(f"/v2/queues/q1/messages?ids={b},nope,{a}")
    assert [m["body"] for m in reply.json["messages"]] == ["b", "a"]
    assert api.get("/v2/queues/q1/messages?ids=nope,other").status == 404
    assert api.get("/v2/queues/q1/messages/nope").status == 404


def test_delete_by_id_and_by_ids(api: Api) -> None:
    a, b, c = api.post_messages("q1", "a", "b", "c")
    assert api.delete(f"/v2/queues/q1/messages/{a}").status == 204
    assert api.delete(f"/v2/queues/q1/messages/{a}").status == 204
    assert api.delete(f"/v2/queues/q1/messages?ids={b},unknown").status == 204
    assert [m["id"] for m in api.get("/v2/queues/q1/messages?echo=true").json["messages"]] == [c]


def test_delete_claimed_message_without_claim_is_403(api: Api) -> None:
    (mid,) = api.post_messages("q1", "a")
    claim = api.post("/v2/queues/q1/claims").json["messages"][0]
    claim_id = claim["href"].split("claim_id=")[1]
    assert api.delete(f"/v2/queues/q1/messages/{mid}").status == 403
    # another claim's id is a client mistake about the claim (400, as upstream), not a refusal
    assert api.delete(f"/v2/queues/q1/messages/{mid}?claim_id=0123456789abcdef0123456789abcdef").status == 400
    assert api.get(f"/v2/queues/q1/messages/{mid}").status == 200
    assert api.delete(f"/v2/queues/q1/messages/{mid}?claim_id={claim_id}").status == 204
    assert api.get(f"/v2/queues/q1/messages/{mid}").status == 404


def test_delete_with_claim_id_of_an_unclaimed_message_is_400(api: Api) -> None:
    (mid,) = api.post_messages("q1", "a")
    reply = api.delete(f"/v2/queues/q1/messages/{mid}?claim_id=0123456789abcdef0123456789abcdef")
    assert reply.status == 400
    assert api.get(f"/v2/queues/q1/messages/{mid}").status == 200


def test_pop_returns_raw_records_and_removes_them(api: Api) -> None:
    api.post_messages("q1", "a", "b", "c")
    reply = api.delete("/v2/queues/q1/messages?pop=2")
    assert reply.status == 200
    popped = reply.json["messages"]
    assert [m["body"] for m in popped] == ["a", "b"]
    assert set(popped[0]) == {"id", "body", "ttl", "age", "claim_id", "claim_count"}
    assert [m["body"] for m in api.get("/v2/queues/q1/messages?echo=true").json["messages"]] == ["c"]


def test_per_message_delay_works_on_any_queue(api: Api, other: Api) -> None:
    api.post_messages("q1", "later", delay=1)
    api.post_messages("q1", "now")
    assert [m["body"] for m in other.get("/v2/queues/q1/messages").json["messages"]] == ["now"]
    assert [m["body"] for m in other.get("/v2/queues/q1/messages?include_delayed=true").json["messages"]] == [
        "later", "now"]
    time.sleep(1.1)
    assert [m["body"] for m in other.get("/v2/queues/q1/messages").json["messages"]] == ["later", "now"]


def test_queue_default_delay_applies(api: Api, other: Api) -> None:
    api.put("/v2/queues/q1", {"_default_message_delay": 60})
    api.post_messages("q1", "held")
    assert other.get("/v2/queues/q1/messages").json["messages"] == []
    assert api.post("/v2/queues/q1/claims").status == 204


def test_encrypted_queue_stores_ciphertext_and_returns_clear_bodies(api: Api, services: Services) -> None:
    api.put("/v2/queues/secret", {"_enable_encrypt_messages": True})
    (mid,) = api.post_messages("secret", {"card": "4111"})
    store = services.pooling.lookup(project=api.project, queue="secret")
    assert store is not None
    (stored,) = store.message_get_many(project=api.project, queue="secret", ids=[mid]).items
    assert stored.encrypted and "4111" not in stored.body
    assert api.get(f"/v2/queues/secret/messages/{mid}").json["body"] == {"card": "4111"}
    claimed = api.post("/v2/queues/secret/claims").json["messages"]
    assert claimed[0]["body"] == {"card": "4111"}


def test_dead_letter_queue_receives_messages_claimed_too_often(api: Api) -> None:
    api.put("/v2/queues/work", {"_dead_letter_queue": "dead", "_max_claim_count": 1,
                                "_dead_letter_queue_messages_ttl": 600})
    (mid,) = api.post_messages("work", "poison")
    first = api.post("/v2/queues/work/claims", {"ttl": 60})
    claim_id = first.headers["location"].rsplit("/", 1)[1]
    api.delete(f"/v2/queues/work/claims/{claim_id}")
    assert api.post("/v2/queues/work/claims").status == 204
    moved = api.get(f"/v2/queues/dead/messages/{mid}").json
    assert (moved["body"], moved["ttl"]) == ("poison", 600)
    assert api.get("/v2/queues/work/stats").json["messages"]["total"] == 0


def test_list_parameters_may_be_repeated_or_comma_separated(api: Api) -> None:
    # python-zaqarclient's queue.messages(*ids) sends ?ids=a&ids=b; curl users write ?ids=a,b
    a, b, c, d = api.post_messages("q1", "a", "b", "c", "d")
    for query in (f"ids={a}&ids={b}&ids={c}", f"ids={a},{b}&ids={c}", f"ids={a},{b},{c}"):
        found = api.get(f"/v2/queues/q1/messages?{query}").json["messages"]
        assert sorted(m["id"] for m in found) == sorted([a, b, c]), query
    assert api.delete(f"/v2/queues/q1/messages?ids={a}&ids={b},{c}").status == 204
    assert [m["id"] for m in api.get("/v2/queues/q1/messages?echo=true").json["messages"]] == [d]
