"""The versions document and the v2 JSON-Home document."""

from __future__ import annotations

import copy
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

# The relations are upstream's v2 home document (zaqar/transport/wsgi/v2_0/homedoc.py),
# quirks included, so a client comparing the two finds the same names, templates,
# variables and hints: ``rel/message_delete`` names its claim variable ``claim``
# (the route reads ``claim_id``), ``rel/subscriptions_post`` lists a ``limit`` its
# template lacks, ``rel/ping`` has a template without variables and ``rel/health``
# a plain href. ``rel/message`` and ``rel/claim_manage`` are ours: the same routes,
# one relation per path, with the variables the routes read.


def _rel(template: str, variables: dict[str, str] | None, allow: list[str], *, accepts_json: bool = False,
         plain: bool = False) -> dict[str, Any]:
    hints: dict[str, Any] = {"allow": allow, "formats": {"application/json": {}}}
    if accepts_json:
        hints["accept-post"] = ["application/json"]
    resource: dict[str, Any] = {"href" if plain else "href-template": template}
    if variables is not None:
        resource["href-vars"] = variables
    resource["hints"] = hints
    return resource


_Q = {"queue_name": "param/queue_name"}
_MESSAGE = {**_Q, "message_id": "param/message_id"}
_CLAIM = {**_Q, "claim_id": "param/claim_id"}
_SUBSCRIPTION = {**_Q, "subscriptions_id": "param/subscriptions_id"}
_QUEUE = "/v2/queues/{queue_name}"
_MESSAGES = _QUEUE + "/messages"
_CLAIMS = _QUEUE + "/claims"
_SUBSCRIPTIONS = _QUEUE + "/subscriptions"

RESOURCES: dict[str, dict[str, Any]] = {
    "rel/queues": _rel("/v2/queues{?marker,limit,detailed}",
                       {"marker": "param/marker", "limit": "param/queue_limit", "detailed": "param/detailed"},
                       ["GET"]),
    "rel/queue": _rel(_QUEUE, _Q, ["GET", "PUT", "DELETE", "PATCH"]),
    "rel/queue_stats": _rel(_QUEUE + "/stats", _Q, ["GET"]),
    "rel/queue_share": _rel(_QUEUE + "/share", _Q, ["POST"], accepts_json=True),
    "rel/queue_purge": _rel(_QUEUE + "/purge", _Q, ["POST"], accepts_json=True),
    "rel/messages": _rel(_MESSAGES + "{?marker,limit,echo,include_claimed}",
                         {**_Q, "marker": "param/marker", "limit": "param/messages_limit", "echo": "param/echo",
                          "include_claimed": "param/include_claimed"}, ["GET"]),
    "rel/post_messages": _rel(_MESSAGES, _Q, ["POST"], accepts_json=True),
    "rel/messages_delete": _rel(_MESSAGES + "{?ids,pop}", {**_Q, "ids": "param/ids", "pop": "param/pop"},
                                ["DELETE"]),
    "rel/message_delete": _rel(_MESSAGES + "/{message_id}{?claim}", {**_MESSAGE, "claim": "param/claim_id"},
                               ["DELETE"]),
    "rel/message_get": _rel(_MESSAGES + "/{message_id}", _MESSAGE, ["GET"]),
    "rel/message": _rel(_MESSAGES + "/{message_id}{?claim_id}", {**_MESSAGE, "claim_id": "param/claim_id"},
                        ["GET", "DELETE"]),
    "rel/claim": _rel(_CLAIMS + "/{claim_id}", _CLAIM, ["GET"]),
    "rel/post_claim": _rel(_CLAIMS + "{?limit}", {**_Q, "limit": "param/claim_limit"}, ["POST"], accepts_json=True),
    "rel/patch_claim": _rel(_CLAIMS + "/{claim_id}", _CLAIM, ["PATCH"], accepts_json=True),
    "rel/delete_claim": _rel(_CLAIMS + "/{claim_id}", _CLAIM, ["DELETE"]),
    "rel/claim_manage": _rel(_CLAIMS + "/{claim_id}", _CLAIM, ["GET", "PATCH", "DELETE"]),
    "rel/subscriptions_get": _rel(_SUBSCRIPTIONS + "{?marker,limit}",
                                  {**_Q, "marker": "param/marker", "limit": "param/subscription_limit"}, ["GET"]),
    "rel/subscriptions_post": _rel(_SUBSCRIPTIONS, {**_Q, "limit": "param/subscription_limit"}, ["POST"],
                                   accepts_json=True),
    "rel/subscription": _rel(_SUBSCRIPTIONS + "/{subscriptions_id}", _SUBSCRIPTION, ["GET", "DELETE"]),
    "rel/subscription_patch": _rel(_SUBSCRIPTIONS + "/{subscriptions_id}", _SUBSCRIPTION, ["PATCH"],
                                   accepts_json=True),
    "rel/ping": _rel("/v2/ping", None, ["GET"]),
}

ADMIN_RESOURCES: dict[str, dict[str, Any]] = {
    "rel/pools": _rel("/v2/pools{?detailed,limit,marker}",
                      {"detailed": "param/detailed", "limit": "param/pool_limit", "marker": "param/marker"}, ["GET"]),
    "rel/pool": _rel("/v2/pools/{pool_name}", {"pool_name": "param/pool_name"}, ["GET", "PUT", "PATCH", "DELETE"]),
    "rel/flavors": _rel("/v2/flavors{?detailed,limit,marker}",
                        {"detailed": "param/detailed", "limit": "param/flavor_limit", "marker": "param/marker"},
                        ["GET"]),
    "rel/flavor": _rel("/v2/flavors/{flavor_name}", {"flavor_name": "param/flavor_name"},
                       ["GET", "PUT", "PATCH", "DELETE"]),
    "rel/health": _rel("/v2/health", None, ["GET"], plain=True),
}
"""Listed too in admin mode, where these routes exist."""


def document(*, admin: bool) -> dict[str, Any]:
    resources = {**RESOURCES, **(ADMIN_RESOURCES if admin else {})}
    return {"resources": copy.deepcopy(resources)}
