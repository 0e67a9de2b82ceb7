"""The versions document and the v2 JSON-Home document."""

from __future__ import annotations

from typing import Any

VERSIONS: dict[str, Any] = {
    "versions": [
        {
            "id": "2",
            "status": "CURRENT",
            "updated": "2014-9-24T04:06:47Z",
            "media-types": [{"base": "application/json", "type": "application/vnd.openstack.messaging-v2+json"}],
            "links": [{"href": "/v2/", "rel": "self"}],
        }
    ]
}

_JSON = {"accept-post": ["application/json"]}


def _resource(template: str, variables: dict[str, str], methods: list[str], **hints: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {"hints": {"allow": methods, "formats": {"application/json": {}}, **hints}}
    if variables:
        resource["href-template"] = template
        resource["href-vars"] = variables
    else:
        resource["href"] = template
    return resource


_Q = "param/queue_name"


def document(*, admin: bool) -> dict[str, Any]:
    rel = "rel/"
    resources = {
        rel + "queues": _resource("/v2/queues{?marker,limit,detailed}", {"marker": "param/marker", "limit": "param/queue_limit", "detailed": "param/detailed"}, ["GET"]),
        rel + "queue": _resource("/v2/queues/{queue_name}", {"queue_name": _Q}, ["PUT", "GET", "PATCH", "DELETE"]),
        rel + "queue_stats": _resource("/v2/queues/{queue_name}/stats", {"queue_name": _Q}, ["GET"]),
        rel + "queue_purge": _resource("/v2/queues/{queue_name}/purge", {"queue_name": _Q}, ["POST"], **_JSON),
        rel + "messages": _resource("/v2/queues/{queue_name}/messages{?marker,limit,echo,include_claimed,include_delayed}", {"queue_name": _Q, "marker": "param/marker", "limit": "param/messages_limit", "echo": "param/echo", "include_claimed": "param/include_claimed", "include_delayed": "param/include_delayed"}, ["GET"]),
        rel + "post_messages": _resource("/v2/queues/{queue_name}/messages", {"queue_name": _Q}, ["POST"], **_JSON),
        rel + "messages_delete": _resource("/v2/queues/{queue_name}/messages{?ids,pop}", {"queue_name": _Q, "ids": "param/ids", "pop": "param/pop"}, ["DELETE"]),
        rel + "message": _resource("/v2/queues/{queue_name}/messages/{message_id}{?claim_id}", {"queue_name": _Q, "message_id": "param/message_id", "claim_id": "param/claim_id"}, ["GET", "DELETE"]),
        rel + "claim": _resource("/v2/queues/{queue_name}/claims{?limit}", {"queue_name": _Q, "limit": "param/claim_limit"}, ["POST"], **_JSON),
        rel + "claim_manage": _resource("/v2/queues/{queue_name}/claims/{claim_id}", {"queue_name": _Q, "claim_id": "param/claim_id"}, ["GET", "PATCH", "DELETE"]),
        rel + "ping": _resource("/v2/ping", {}, ["GET", "HEAD"]),
    }
    if admin:
        resources[rel + "health"] = _resource("/v2/health", {}, ["GET"])
        resources[rel + "pools"] = _resource("/v2/pools{?marker,limit,detailed}", {"marker": "param/marker", "limit": "param/pool_limit", "detailed": "param/detailed"}, ["GET"])
        resources[rel + "pool"] = _resource("/v2/pools/{pool_name}", {"pool_name": "param/pool_name"}, ["PUT", "GET", "PATCH", "DELETE"])
        resources[rel + "flavors"] = _resource("/v2/flavors{?marker,limit,detailed}", {"marker": "param/marker", "limit": "param/flavor_limit", "detailed": "param/detailed"}, ["GET"])
        resources[rel + "flavor"] = _resource("/v2/flavors/{flavor_name}", {"flavor_name": "param/flavor_name"}, ["PUT", "GET", "PATCH", "DELETE"])
    return {"resources": resources}
