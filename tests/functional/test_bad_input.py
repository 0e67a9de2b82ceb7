"""Bad input: a 4xx in Zaqar's error format with a clear description, and nothing stored."""

from __future__ import annotations

import json

import pytest

from tests.functional.conftest import PATCH_TYPE, Api, Reply

OK_MESSAGE = {"messages": [{"body": "fine"}]}


def assert_error(reply: Reply, status: int, *words: str) -> None:
    assert reply.status == status, reply.raw
    body = reply.json
    assert set(body) == {"title", "description"}
    for word in words:
        assert word.lower() in body["description"].lower(), body["description"]


def stored(api: Api, queue: str = "q1") -> int:
    reply = api.get(f"/v2/queues/{queue}/stats")
    return int(reply.json["messages"]["total"])


@pytest.mark.parametrize(
    ("headers", "words"),
    [
        ({"Client-ID": None}, ["Client-ID"]),
        ({"Client-ID": "not-a-uuid"}, ["Client-ID", "UUID"]),
        ({"X-Project-ID": None}, ["X-Project-ID"]),
        ({"X-Project-ID": "p" * 257}, ["256"]),
    ],
)
def test_missing_or_malformed_headers_are_400_on_every_v2_call(api: Api, headers: dict[str, str | None], words: list[str]) -> None:
    for method, path in [("GET", "/v2/queues"), ("POST", "/v2/queues/q1/messages"), ("GET", "/v2/ping")]:
        body = OK_MESSAGE if method == "POST" else None
        assert_error(api.call(method, path, body, headers=headers), 400, *words)
    assert stored(api) == 0


def test_accept_without_json_is_406(api: Api) -> None:
    assert_error(api.get("/v2/queues", headers={"Accept": "text/html"}), 406, "application/json")


@pytest.mark.parametrize("raw", ['{"messages": [', "not json", "\xff\xfe"])
def test_malformed_json_is_400(api: Api, raw: str) -> None:
    assert_error(api.post("/v2/queues/q1/messages", raw=raw), 400, "JSON")
    assert_error(api.put("/v2/queues/q1", raw=raw), 400, "JSON")
    assert api.get("/v2/queues").json["queues"] == []


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ([{"body": 1}], ["messages"]),
        ({"messages": {"body": 1}}, ["array"]),
        ({"messages": []}, ["messages", "at least 1"]),
        ({"messages": [{"ttl": 60}]}, ["body"]),
        ({"messages": [{"body": 1, "ttl": "60"}]}, ["ttl", "integer"]),
        ({"messages": [{"body": 1, "ttl": True}]}, ["ttl", "integer"]),
        ({"messages": [{"body": 1, "ttl": 59}]}, ["ttl", "60"]),
        ({"messages": [{"body": 1, "ttl": 1209601}]}, ["ttl", "1209600"]),
        ({"messages": [{"body": 1, "delay": 901}]}, ["delay", "900"]),
        ({"messages": [{"body": 1, "delay": -1}]}, ["delay"]),
        ({"messages": [{"body": "ok"}, {"body": 2, "ttl": 1}]}, ["messages[1].ttl"]),
    ],
)
def test_invalid_messages_are_400_and_nothing_is_posted(api: Api, body: object, words: list[str]) -> None:
    api.put("/v2/queues/q1")
    assert_error(api.post("/v2/queues/q1/messages", body), 400, *words)
    assert stored(api) == 0


def test_post_over_the_size_limit_is_400(api: Api) -> None:
    big = {"messages": [{"body": "x" * 262144}]}
    assert_error(api.post("/v2/queues/q1/messages", big), 400, "262144")
    api.put("/v2/queues/small", {"_max_messages_post_size": 100})
    assert_error(api.post("/v2/queues/small/messages", {"messages": [{"body": "y" * 100}]}), 400, "100")
    assert stored(api, "small") == 0


@pytest.mark.parametrize("name", ["has space", "x" * 65, "slash%2Fname", "uni\u00e9"])
def test_bad_queue_names_are_400(api: Api, name: str) -> None:
    assert_error(api.put(f"/v2/queues/{name}"), 400, "queue names")
    assert_error(api.post(f"/v2/queues/{name}/messages", OK_MESSAGE), 400, "queue names")
    assert api.get("/v2/queues").json["queues"] == []


@pytest.mark.parametrize(
    ("metadata", "words"),
    [
        ({"_default_message_ttl": 10}, ["_default_message_ttl", "60"]),
        ({"_default_message_delay": 901}, ["_default_message_delay"]),
        ({"_max_messages_post_size": 262145}, ["_max_messages_post_size"]),
        ({"_max_claim_count": "3"}, ["_max_claim_count", "integer"]),
        ({"_dead_letter_queue": "bad name"}, ["queue names"]),
        ({"_enable_encrypt_messages": "yes"}, ["_enable_encrypt_messages"]),
        ({"_flavor": "gold"}, ["flavor", "gold"]),
        ([1, 2], ["object"]),
    ],
)
def test_invalid_queue_metadata_is_400_and_no_queue_is_made(api: Api, metadata: object, words: list[str]) -> None:
    assert_error(api.put("/v2/queues/q1", metadata), 400, *words)
    assert api.get("/v2/queues").json["queues"] == []


def test_oversize_metadata_is_400(api: Api) -> None:
    assert_error(api.put("/v2/queues/q1", {"blob": "x" * 65536}), 400, "65536")
    api.put("/v2/queues/q2", {"small": 1})
    patch = [{"op": "add", "path": "/metadata/blob", "value": "x" * 65536}]
    assert_error(api.patch("/v2/queues/q2", patch, headers={"Content-Type": PATCH_TYPE}), 400, "65536")
    assert "blob" not in api.get("/v2/queues/q2").json


@pytest.mark.parametrize(
    ("patch", "words"),
    [
        ([], ["at least 1"]),
        ({"op": "add"}, ["array"]),
        ([{"op": "move", "path": "/metadata/a", "value": 1}], ["move"]),
        ([{"op": "add", "path": "/other/a", "value": 1}], ["/metadata/"]),
        ([{"op": "add", "path": "/metadata/a/b", "value": 1}], ["one key"]),
        ([{"op": "add", "path": "/metadata/a"}], ["value"]),
        ([{"path": "/metadata/a"}], ["op"]),
        ([{"op": "add", "path": "/metadata/_default_message_ttl", "value": 5}], ["_default_message_ttl"]),
    ],
)
def test_bad_json_patch_documents_are_400_and_change_nothing(api: Api, patch: object, words: list[str]) -> None:
    api.put("/v2/queues/q1", {"a": 1})
    before = api.get("/v2/queues/q1").json
    assert_error(api.patch("/v2/queues/q1", patch, headers={"Content-Type": PATCH_TYPE}), 400, *words)
    assert api.get("/v2/queues/q1").json == before


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("limit=0", ["limit", "1", "20"]),
        ("limit=21", ["limit"]),
        ("limit=ten", ["limit", "integer"]),
        ("echo=maybe", ["echo"]),
        ("include_claimed=2", ["include_claimed"]),
        ("marker=abc", ["marker"]),
        ("ids=" + ",".join(["x"] * 21), ["ids", "20"]),
    ],
)
def test_bad_list_parameters_are_400(api: Api, query: str, words: list[str]) -> None:
    api.post_messages("q1", "a")
    assert_error(api.get(f"/v2/queues/q1/messages?{query}"), 400, *words)


def test_bad_queue_list_parameters_are_400(api: Api) -> None:
    assert_error(api.get("/v2/queues?limit=100"), 400, "limit")
    assert_error(api.get("/v2/queues?detailed=perhaps"), 400, "detailed")


@pytest.mark.parametrize(
    ("query", "words"),
    [("", ["ids", "pop"]), ("ids=a&pop=1", ["ids", "pop"]), ("pop=0", ["pop"]), ("pop=21", ["pop"]), ("ids=", ["ids"])],
)
def test_bad_bulk_delete_is_400_and_deletes_nothing(api: Api, query: str, words: list[str]) -> None:
    api.post_messages("q1", "a")
    assert_error(api.delete(f"/v2/queues/q1/messages?{query}"), 400, *words)
    assert stored(api) == 1


@pytest.mark.parametrize(
    ("path", "body", "words"),
    [
        ("/v2/queues/q1/claims", {"ttl": 59}, ["ttl", "60"]),
        ("/v2/queues/q1/claims", {"ttl": 43201}, ["ttl", "43200"]),
        ("/v2/queues/q1/claims", {"grace": 10}, ["grace"]),
        ("/v2/queues/q1/claims", {"ttl": "100"}, ["integer"]),
        ("/v2/queues/q1/claims", [1], ["object"]),
        ("/v2/queues/q1/claims?limit=21", None, ["limit"]),
        ("/v2/queues/q1/claims?limit=0", None, ["limit"]),
    ],
)
def test_bad_claims_are_400_and_claim_nothing(api: Api, path: str, body: object, words: list[str]) -> None:
    api.post_messages("q1", "a")
    assert_error(api.post(path, body), 400, *words)
    assert api.get("/v2/queues/q1/stats").json["messages"]["claimed"] == 0


def test_bad_claim_renewal_is_400_and_keeps_the_claim(api: Api) -> None:
    api.post_messages("q1", "a")
    cid = api.post("/v2/queues/q1/claims", {"ttl": 100}).headers["location"].rsplit("/", 1)[1]
    assert_error(api.patch(f"/v2/queues/q1/claims/{cid}", {"ttl": 10}), 400, "ttl")
    assert api.get(f"/v2/queues/q1/claims/{cid}").json["ttl"] == 100


def test_form_encoded_bodies_are_400(api: Api) -> None:
    reply = api.post("/v2/queues/q1/messages", raw="a=b", headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert_error(reply, 400, "JSON")


def test_purge_with_bad_body_is_400(api: Api) -> None:
    api.post_messages("q1", "a")
    assert_error(api.post("/v2/queues/q1/purge", {"resource_types": "messages"}), 400, "resource_types")
    assert_error(api.post("/v2/queues/q1/purge", {"what": 1}), 400, "what")
    assert stored(api) == 1


def test_null_ttl_and_delay_mean_the_defaults(api: Api) -> None:
    reply = api.post("/v2/queues/q1/messages", raw=json.dumps({"messages": [{"body": 1, "ttl": None, "delay": None}]}))
    assert reply.status == 201
    listed = api.get("/v2/queues/q1/messages?echo=true").json["messages"]  # visible at once: no delay
    assert [(m["body"], m["ttl"]) for m in listed] == [(1, 3600)]
