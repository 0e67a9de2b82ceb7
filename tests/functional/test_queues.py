"""Queue endpoints, as Zaqar's code behaves."""

from __future__ import annotations

import pytest

from tests.functional.conftest import PATCH_TYPE, Api

RESERVED = {
    "_max_messages_post_size": 262144,
    "_default_message_ttl": 3600,
    "_default_message_delay": 0,
    "_dead_letter_queue": None,
    "_dead_letter_queue_messages_ttl": None,
    "_max_claim_count": None,
    "_enable_encrypt_messages": False,
}


def test_versions_answer_300_without_any_header(api: Api) -> None:
    reply = api.get("/", headers={"Client-ID": None, "X-Project-ID": None})
    assert reply.status == 300
    assert reply.json["versions"][0]["id"] == "2"


def test_home_document_is_json_home(api: Api) -> None:
    reply = api.get("/v2")
    assert reply.status == 200
    assert reply.headers["content-type"] == "application/json-home"
    assert "rel/queue" in reply.json["resources"]


def test_ping_answers_204_when_storage_answers(api: Api) -> None:
    assert api.get("/v2/ping").status == 204
    assert api.call("HEAD", "/v2/ping").status == 204


def test_put_creates_201_then_204_with_location(api: Api) -> None:
    first = api.put("/v2/queues/fizbit", {"colour": "blue"})
    assert (first.status, first.headers["location"]) == (201, "/v2/queues/fizbit")
    again = api.put("/v2/queues/fizbit", {"colour": "red"})
    assert again.status == 204
    assert api.get("/v2/queues/fizbit").json == {**RESERVED, "colour": "blue"}


def test_get_metadata_fills_in_reserved_defaults(api: Api) -> None:
    api.put("/v2/queues/q1", {"_default_message_ttl": 120, "x": 1})
    assert api.get("/v2/queues/q1").json == {**RESERVED, "_default_message_ttl": 120, "x": 1}


def test_a_missing_queue_reads_as_an_empty_one_with_the_defaults(api: Api) -> None:
    # v2 queues are lazy (upstream answers the same): GET and purge of a queue nobody made
    reply = api.get("/v2/queues/nothere")
    assert (reply.status, reply.json) == (200, RESERVED)
    assert api.post("/v2/queues/nothere/purge").status == 204
    assert api.get("/v2/queues").json["queues"] == []  # reading it did not create it


def test_patch_adds_replaces_and_removes_metadata(api: Api) -> None:
    api.put("/v2/queues/q1", {"a": 1, "b": 2, "_default_message_ttl": 100})
    patch = [
        {"op": "add", "path": "/metadata/c", "value": {"deep": True}},
        {"op": "replace", "path": "/metadata/a", "value": 10},
        {"op": "remove", "path": "/metadata/b"},
        {"op": "remove", "path": "/metadata/_default_message_ttl"},
        {"op": "add", "path": "/metadata/slash~1tilde~0", "value": 1},
    ]
    reply = api.patch("/v2/queues/q1", patch, headers={"Content-Type": PATCH_TYPE})
    assert reply.status == 200
    expected = {**RESERVED, "a": 10, "c": {"deep": True}, "slash/tilde~": 1}
    assert reply.json == expected
    assert api.get("/v2/queues/q1").json == expected


def test_patch_with_another_media_type_is_415(api: Api) -> None:
    api.put("/v2/queues/q1", {"a": 1})
    reply = api.patch("/v2/queues/q1", [{"op": "add", "path": "/metadata/b", "value": 1}])
    assert reply.status == 415
    assert "application/openstack-messaging-v2.0-json-patch" in reply.json["description"]


def test_patch_replacing_a_missing_key_is_409_and_changes_nothing(api: Api) -> None:
    api.put("/v2/queues/q1", {"a": 1})
    patch = [{"op": "add", "path": "/metadata/b", "value": 1}, {"op": "replace", "path": "/metadata/zz", "value": 1}]
    reply = api.patch("/v2/queues/q1", patch, headers={"Content-Type": PATCH_TYPE})
    assert reply.status == 409
    assert api.get("/v2/queues/q1").json == {**RESERVED, "a": 1}


def test_patch_of_a_missing_queue_is_404(api: Api) -> None:
    reply = api.patch("/v2/queues/nope", [{"op": "add", "path": "/metadata/b", "value": 1}],
                      headers={"Content-Type": PATCH_TYPE})
    assert reply.status == 404


def test_delete_is_idempotent_and_removes_messages(api: Api) -> None:
    api.post_messages("q1", "hello")
    assert api.delete("/v2/queues/q1").status == 204
    assert api.delete("/v2/queues/q1").status == 204
    assert api.get("/v2/queues/q1").json == RESERVED
    assert api.get("/v2/queues").json["queues"] == []
    assert api.get("/v2/queues/q1/messages?echo=true").json == {"messages": [], "links": []}


def test_list_pages_by_name_with_next_links(api: Api) -> None:
    for name in ["c", "a", "b", "d"]:
        api.put(f"/v2/queues/{name}", {"n": name})
    first = api.get("/v2/queues?limit=3&detailed=true").json
    assert [q["name"] for q in first["queues"]] == ["a", "b", "c"]
    assert first["queues"][0]["metadata"] == {**RESERVED, "n": "a"}
    assert first["queues"][0]["href"] == "/v2/queues/a"
    next_href = first["links"][0]["href"]
    second = api.get(next_href).json
    assert [q["name"] for q in second["queues"]] == ["d"]
    assert "metadata" in second["queues"][0]


def test_empty_list_is_200_with_empty_arrays(api: Api) -> None:
    assert api.get("/v2/queues").json == {"queues": [], "links": []}


def test_list_with_count_and_metadata_filters(api: Api) -> None:
    api.put("/v2/queues/a", {"kind": "x", "level": 1})
    api.put("/v2/queues/b", {"kind": "y", "level": 1})
    api.put("/v2/queues/c", {"kind": "x", "level": 2})
    reply = api.get("/v2/queues?kind=x&with_count=true").json
    assert [q["name"] for q in reply["queues"]] == ["a", "c"]
    assert reply["count"] == 3
    assert [q["name"] for q in api.get("/v2/queues?level=1").json["queues"]] == ["a", "b"]
    api.put("/v2/queues/x_b.1")
    assert [q["name"] for q in api.get("/v2/queues?name=b").json["queues"]] == ["b", "x_b.1"]
    assert [q["name"] for q in api.get("/v2/queues?name=_b").json["queues"]] == ["x_b.1"]
    assert api.get("/v2/queues?name=%25").json["queues"] == []


def test_stats_count_messages_and_name_oldest_and_newest(api: Api) -> None:
    ids = api.post_messages("q1", 1, 2, 3)
    api.post("/v2/queues/q1/claims?limit=1")
    stats = api.get("/v2/queues/q1/stats").json["messages"]
    assert (stats["claimed"], stats["free"], stats["total"]) == (1, 2, 3)
    assert stats["oldest"]["href"] == f"/v2/queues/q1/messages/{ids[0]}"
    assert stats["newest"]["href"] == f"/v2/queues/q1/messages/{ids[-1]}"
    assert stats["oldest"]["created"].endswith("Z")


def test_stats_of_a_missing_queue_are_zeros(api: Api) -> None:
    assert api.get("/v2/queues/none/stats").json == {"messages": {"claimed": 0, "free": 0, "total": 0}}


def test_purge_removes_messages_and_keeps_metadata(api: Api) -> None:
    api.put("/v2/queues/q1", {"keep": 1})
    api.post_messages("q1", 1, 2)
    api.post("/v2/queues/q1/claims?limit=1")
    assert api.post("/v2/queues/q1/purge", {"resource_types": ["messages"]}).status == 204
    assert api.get("/v2/queues/q1/stats").json["messages"]["total"] == 0
    assert api.get("/v2/queues/q1").json["keep"] == 1
    assert api.post("/v2/queues/q1/purge").status == 204


def test_purge_with_unknown_resource_type_is_400(api: Api) -> None:
    api.post_messages("q1", 1)
    assert api.post("/v2/queues/q1/purge", {"resource_types": ["claims"]}).status == 400
    assert api.get("/v2/queues/q1/stats").json["messages"]["total"] == 1


def test_queues_of_another_project_are_invisible(api: Api, other: Api) -> None:
    api.put("/v2/queues/shared-name", {"owner": "a"})
    stranger = Api(api._client, api.project + "-b")
    # another project's queue reads as an empty queue of one's own, never as "not found"
    assert stranger.get("/v2/queues/shared-name").json == RESERVED
    assert stranger.post("/v2/queues/shared-name/purge").status == 204
    assert stranger.get("/v2/queues").json["queues"] == []
    assert stranger.delete("/v2/queues/shared-name").status == 204
    assert api.get("/v2/queues/shared-name").json["owner"] == "a"


def test_health_exists_only_in_admin_mode(api: Api) -> None:
    assert api.get("/v2/health", headers={"X-Roles": "admin"}).status == 404


def test_every_response_carries_a_request_id(api: Api) -> None:
    ok = api.get("/v2/queues")
    failed = api.post("/v2/queues/q1/messages", {"messages": []})  # (a missing queue's GET is a 200 now)
    assert (ok.status, failed.status) == (200, 400)
    assert ok.headers["x-openstack-request-id"].startswith("req-")
    assert failed.headers["x-openstack-request-id"].startswith("req-")
    assert ok.headers["x-openstack-request-id"] != failed.headers["x-openstack-request-id"]


def test_each_request_leaves_one_structured_line_with_metrics_and_no_bodies(
    api: Api, capsys: pytest.CaptureFixture[str]
) -> None:
    import json

    capsys.readouterr()
    api.post("/v2/queues/logged/messages", {"messages": [{"body": {"secret": "do-not-log"}}]})
    api.patch("/v2/queues/missing", [], headers={"Content-Type": "application/openstack-messaging-v2.0-json-patch"})
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    post, missing = lines[-2], lines[-1]  # a PATCH of a missing queue is still 404
    assert (post["Operation"], post["status"], post["queue"], post["project"]) == (
        "message_post", 201, "logged", api.project)
    assert post["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "ZaqarServerless"
    assert post["Latency"] >= 0 and post["Errors"] == 0
    assert (missing["status"], missing["Errors"], missing["ServerErrors"]) == (404, 1, 0)
    assert "do-not-log" not in json.dumps(lines)
