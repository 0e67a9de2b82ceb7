"""Claim endpoints."""

from __future__ import annotations

from tests.functional.conftest import Api


def claim_id_of(location: str) -> str:
    return location.rsplit("/", 1)[1]


def test_claim_returns_201_with_messages_and_location(api: Api) -> None:
    ids = api.post_messages("q1", "a", "b", "c")
    reply = api.post("/v2/queues/q1/claims?limit=2", {"ttl": 120, "grace": 60})
    assert reply.status == 201
    cid = claim_id_of(reply.headers["location"])
    assert reply.headers["location"] == f"/v2/queues/q1/claims/{cid}"
    assert [m["id"] for m in reply.json["messages"]] == ids[:2]
    assert reply.json["messages"][0]["href"] == f"/v2/queues/q1/messages/{ids[0]}?claim_id={cid}"


def test_claim_body_is_optional_and_defaults_apply(api: Api) -> None:
    api.post_messages("q1", "a")
    reply = api.post("/v2/queues/q1/claims")
    cid = claim_id_of(reply.headers["location"])
    claim = api.get(f"/v2/queues/q1/claims/{cid}").json
    assert claim["ttl"] == 300
    assert claim["href"] == f"/v2/queues/q1/claims/{cid}"
    assert [m["body"] for m in claim["messages"]] == ["a"]


def test_claim_on_an_empty_or_missing_queue_is_204(api: Api) -> None:
    assert api.post("/v2/queues/none/claims").status == 204
    api.put("/v2/queues/empty")
    assert api.post("/v2/queues/empty/claims").status == 204


def test_claimed_messages_are_not_claimed_again(api: Api) -> None:
    api.post_messages("q1", "a", "b")
    first = api.post("/v2/queues/q1/claims?limit=1").json["messages"]
    second = api.post("/v2/queues/q1/claims?limit=5").json["messages"]
    assert [m["body"] for m in first] == ["a"]
    assert [m["body"] for m in second] == ["b"]
    assert api.post("/v2/queues/q1/claims").status == 204


def test_patch_renews_and_delete_releases(api: Api) -> None:
    api.post_messages("q1", "a")
    cid = claim_id_of(api.post("/v2/queues/q1/claims", {"ttl": 60}).headers["location"])
    assert api.patch(f"/v2/queues/q1/claims/{cid}", {"ttl": 500, "grace": 100}).status == 204
    assert api.get(f"/v2/queues/q1/claims/{cid}").json["ttl"] == 500
    assert api.delete(f"/v2/queues/q1/claims/{cid}").status == 204
    assert api.delete(f"/v2/queues/q1/claims/{cid}").status == 204
    assert api.get(f"/v2/queues/q1/claims/{cid}").status == 404
    assert [m["body"] for m in api.post("/v2/queues/q1/claims").json["messages"]] == ["a"]


def test_unknown_claims_are_404(api: Api) -> None:
    api.put("/v2/queues/q1")
    assert api.get("/v2/queues/q1/claims/0123456789abcdef0123456789abcdef").status == 404
    assert api.patch("/v2/queues/q1/claims/0123456789abcdef0123456789abcdef", {"ttl": 100}).status == 404


def test_listing_with_include_claimed_marks_claimed_hrefs(api: Api, other: Api) -> None:
    api.post_messages("q1", "a", "b")
    cid = claim_id_of(api.post("/v2/queues/q1/claims?limit=1").headers["location"])
    listed = other.get("/v2/queues/q1/messages?include_claimed=true").json["messages"]
    assert listed[0]["href"].endswith(f"?claim_id={cid}")
    assert "claim_id" not in listed[1]["href"]
