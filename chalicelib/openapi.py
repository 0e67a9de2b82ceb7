"""The API described for tools: an OpenAPI 3.1 document of the REST API and JSON Schemas
of the websocket frames, built from the configured limits (``GET /openapi.json``).

The document says what the service accepts and answers; the code that
enforces it is in ``chalicelib.api`` (validation messages a person can act
on). ``tests/functional/test_openapi.py`` checks the document against the
OpenAPI 3.1 meta-schema, against the app's routes, and every answer of a
run of requests against the response schemas.
"""

from __future__ import annotations

import copy
import functools
import json
from typing import Any

from chalicelib.config import Limits

JSON = "application/json"
PATCH_TYPE = "application/openstack-messaging-v2.0-json-patch"
Schema = dict[str, Any]
DEFAULT_LIMITS = Limits()
EXPECTED = "x-expected"
"""An extension keyword of a schema: what it accepts in words, for error messages (validators ignore it)."""
INT32_MAX = 2**31 - 1
"""Largest weight, subscription ttl or claim count: what every store keeps as a number (PostgreSQL's integer)."""
MIN_SUBSCRIPTION_TTL = 60
MAX_SUBSCRIBER_LEN = 1024
MAX_POOL_URI_LEN = 255
MAX_ATTRIBUTES = 10
MAX_REDRIVE = 1000
"""Dead letters one redrive call moves at most (chalicelib.api.redrive)."""
ATTRIBUTE_NAME = "^[A-Za-z0-9_.-]{1,256}$"


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _integer(low: int, high: int, default: int | None = None) -> Schema:
    schema: Schema = {"type": "integer", "minimum": low, "maximum": high}
    if default is not None:
        schema["default"] = default
    return schema


def schemas(limits: Limits) -> dict[str, Schema]:
    """Every schema the document and the websocket frames share, by name."""
    name = {"type": "string", "pattern": "^[A-Za-z0-9_.-]+$", "minLength": 1, "maxLength": limits.max_queue_name,
            EXPECTED: "ASCII letters, digits, underscores, dashes and dots"}
    ttl = _integer(limits.min_message_ttl, limits.max_message_ttl)
    link = {"type": "object", "required": ["rel", "href"],
            "properties": {"rel": {"type": "string"}, "href": {"type": "string"}}}
    attributes = {
        "type": "object", "maxProperties": MAX_ATTRIBUTES, EXPECTED: (
            f"a JSON object of at most {MAX_ATTRIBUTES} attributes, each a string, a number, true or false, or "
            "an array of strings"),
        "propertyNames": {"type": "string", "pattern": ATTRIBUTE_NAME, EXPECTED: (
            "an attribute name of 1 to 256 ASCII letters, digits, underscores, dots and dashes")},
        "additionalProperties": {"type": ["string", "number", "boolean", "array"], "items": {"type": "string"},
                                 EXPECTED: "a string, a number, true or false, or an array of strings"},
        "description": ("Beyond upstream: named values beside the body, returned with the message and matched "
                        "by subscriptions' filter_policy (the MessageAttributes scope)."),
    }
    message = {
        "type": "object", "required": ["id", "href", "ttl", "age", "body"],
        "properties": {"id": {"type": "string"}, "href": {"type": "string"}, "ttl": {"type": "integer"},
                       "age": {"type": "integer"}, "body": {}, "checksum": {"type": "string"},
                       "claim_id": {"type": ["string", "null"]}, "claim_count": {"type": "integer"},
                       "attributes": attributes},
    }
    metadata = {"type": "object", "description": (
        "Free metadata; reserved keys (leading underscore) set the queue's behaviour, for example "
        "_default_message_ttl, _default_message_delay, _max_messages_post_size, _dead_letter_queue, "
        "_dead_letter_queue_messages_ttl, _max_claim_count, _enable_encrypt_messages, _flavor.")}
    subscription = {
        "type": "object", "required": ["id", "source", "subscriber", "ttl", "age", "options"],
        "properties": {"id": {"type": "string"}, "source": {"type": "string"}, "subscriber": {"type": "string"},
                       "ttl": {"type": "integer"}, "age": {"type": "integer"}, "options": {"type": "object"},
                       "confirmed": {"type": "boolean"}, "signing_secret": {"type": "string"}},
    }
    subscription_fields = {"type": "object", "properties": {
        "subscriber": {"type": "string", "minLength": 1, "maxLength": MAX_SUBSCRIBER_LEN, "description": (
            "http(s)://, trust+http(s)://, mailto:, queue:NAME (beyond upstream: forwards into that queue of the "
            "project) or, over the websocket API, the connection itself")},
        "ttl": _integer(MIN_SUBSCRIPTION_TTL, INT32_MAX),
        "options": {"type": "object", "description": (
            "post_headers, post_data, subject, from, include_message_id, _retry_policy, and beyond upstream "
            "filter_policy (Amazon SNS's syntax) with filter_policy_scope (MessageAttributes or MessageBody)")}}}
    pool = {"type": "object", "additionalProperties": False, "properties": {
        "weight": _integer(0, INT32_MAX), "uri": {"type": "string", "minLength": 1, "maxLength": MAX_POOL_URI_LEN},
        "flavor": {"type": ["string", "null"]}, "options": {"type": "object"}}}
    return {
        "Error": {"type": "object", "required": ["title", "description"],
                  "properties": {"title": {"type": "string"}, "description": {"type": "string"}}},
        "QueueName": name,
        "Link": link,
        "QueueMetadata": metadata,
        "MessageAttributes": attributes,
        "NewMessage": {"type": "object", "required": ["body"], "properties": {
            "body": {"description": "Any JSON value."}, "ttl": {**ttl, "type": ["integer", "null"]},
            "delay": {**_integer(0, limits.max_message_delay), "type": ["integer", "null"]},
            "attributes": _ref("MessageAttributes")}},
        "MessagePost": {"type": "object", "required": ["messages"], EXPECTED: (
            'a JSON object like {"messages": [{"body": ...}]}'), "properties": {
            "messages": {"type": "array", "minItems": 1, "items": _ref("NewMessage")}}},
        "Posted": {"type": "object", "required": ["resources"],
                   "properties": {"resources": {"type": "array", "items": {"type": "string"}}}},
        "Message": message,
        "Popped": {"type": "object", "required": ["messages"], "properties": {"messages": {
            "type": "array", "items": {"type": "object", "required": ["id", "body"], "properties": {
                "id": {"type": "string"}, "ttl": {"type": "integer"}, "age": {"type": "integer"}, "body": {},
                "attributes": attributes}}}}},
        "MessageList": {"type": "object", "required": ["messages"], "properties": {
            "messages": {"type": "array", "items": _ref("Message")},
            "links": {"type": "array", "items": link}}},
        "ClaimCreate": {"type": "object", "properties": {
            "ttl": _integer(limits.min_claim_ttl, limits.max_claim_ttl, limits.default_claim_ttl),
            "grace": _integer(limits.min_claim_grace, limits.max_claim_grace, limits.default_claim_grace)}},
        "Claim": {"type": "object", "required": ["age", "ttl", "href", "messages"], "properties": {
            "age": {"type": "integer"}, "ttl": {"type": "integer"}, "href": {"type": "string"},
            "messages": {"type": "array", "items": _ref("Message")}}},
        "Stats": {"type": "object", "required": ["messages"], "properties": {"messages": {
            "type": "object", "required": ["free", "claimed", "total"],
            "properties": {"free": {"type": "integer"}, "claimed": {"type": "integer"},
                           "total": {"type": "integer"}, "oldest": {"type": "object"},
                           "newest": {"type": "object"}}}}},
        **{f"{kind.title()}List": {"type": "object", "required": [f"{kind}s", "links"], "properties": {
            f"{kind}s": {"type": "array", "items": {"type": "object", "required": ["name", "href"], "properties": {
                "name": name, "href": {"type": "string"}, "metadata": metadata}}},
            "links": {"type": "array", "items": link}, "count": {"type": "integer"}}} for kind in ("queue", "topic")},
        "Redrive": {"type": "object", "additionalProperties": False, "description": (
            "Beyond upstream: which dead letters to move back (each to the queue it came from, or all to "
            "destination) and how many at most."), "properties": {
            "destination": name, "limit": _integer(1, MAX_REDRIVE)}},
        "Redriven": {"type": "object", "required": ["moved"], "properties": {"moved": {"type": "integer"}}},
        "Purge": {"type": "object", "additionalProperties": False, "properties": {"resource_types": {
            "type": "array", "minItems": 1, "items": {"enum": ["messages", "subscriptions"]}}}},
        "Share": {"type": "object", "additionalProperties": False, "properties": {
            "paths": {"type": "array", "minItems": 1, "items": {"enum": ["messages", "subscriptions", "claims"]}},
            "methods": {"type": "array", "minItems": 1, "items": {
                "type": "string", "description": "GET, HEAD, OPTIONS, POST, PUT, DELETE or PATCH, in any case"}},
            "expires": {"type": "string", "description": "an ISO 8601 time such as 2030-01-01T00:00:00 "
                        "(a day from now when not given)"}}},
        "Signed": {"type": "object", "required": ["signature", "expires", "paths", "methods", "project"],
                   "properties": {"signature": {"type": "string"}, "expires": {"type": "string"},
                                  "paths": {"type": "array", "items": {"type": "string"}},
                                  "methods": {"type": "array", "items": {"type": "string"}},
                                  "project": {"type": "string"}}},
        "SubscriptionCreate": {**subscription_fields, "required": ["subscriber"]},
        "WebsocketSubscribe": {**subscription_fields, "description": (
            "Over the websocket API a subscription without a subscriber is the connection's own.")},
        "SubscriptionUpdate": {**subscription_fields, "minProperties": 1, "additionalProperties": False},
        "SubscriptionCreated": {"type": "object", "required": ["subscription_id"], "properties": {
            "subscription_id": {"type": "string"}, "signing_secret": {"type": "string"}}},
        "Subscription": subscription,
        "SubscriptionList": {"type": "object", "required": ["subscriptions"], "properties": {
            "subscriptions": {"type": "array", "items": subscription},
            "links": {"type": "array", "items": link}}},
        "Confirm": {"type": "object", "required": ["confirmed"], "properties": {"confirmed": {"type": "boolean"}}},
        "JsonPatch": {"type": "array", "minItems": 1, "items": {
            "type": "object", "required": ["op", "path"], "properties": {
                "op": {"enum": ["add", "remove", "replace"]},
                "path": {"type": "string", "pattern": "^/metadata/[^/]+$",
                         EXPECTED: "/metadata/ and one key (~1 for a slash in it, ~0 for a tilde)"},
                "value": {}},
            "if": {"properties": {"op": {"enum": ["add", "replace"]}}}, "then": {"required": ["value"]}}},
        "Pool": {**pool, "required": ["weight", "uri"]},
        "PoolPatch": {**pool, "minProperties": 1},
        "Flavor": {"type": "object", "required": ["pool_list"], "additionalProperties": False, "properties": {
            "pool_list": {"type": "array", "minItems": 1, "items": {"type": "string"}},
            "capabilities": {"type": ["object", "null"]}}},
        "FlavorPatch": {"type": "object", "minProperties": 1, "additionalProperties": False, "properties": {
            "pool_list": {"type": ["array", "null"], "minItems": 1, "items": {"type": "string"}},
            "capabilities": {"type": ["object", "null"]}}},
        "Health": {"type": "object", "required": ["catalog_reachable"], "properties": {
            "catalog_reachable": {"type": "boolean"}}, "additionalProperties": {"type": "object"}},
        "Listing": {"type": "object", "description": "A page of pools or flavors.",
                    "properties": {"links": {"type": "array", "items": link}},
                    "additionalProperties": {"type": "array"}},
    }


def _json(schema: Schema, description: str) -> Schema:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Schema]:
    """Errors any operation may answer (404 too: admin routes outside admin mode, unknown resources)."""
    error = _json(_ref("Error"), "An error: what went wrong and what to do.")
    return {str(code): error for code in sorted({*codes, 400, 401, 403, 404, 500, 503})}


def _query(name: str, schema: Schema, description: str = "") -> Schema:
    item: Schema = {"name": name, "in": "query", "required": False, "schema": schema}
    if description:
        item["description"] = description
    return item


def _path_param(name: str, schema: Schema | None = None) -> Schema:
    return {"name": name, "in": "path", "required": True, "schema": schema or {"type": "string", "minLength": 1}}


def _operation(operation_id: str, summary: str, responses: dict[str, Schema], *, body: Schema | None = None,
               media: str = JSON, parameters: list[Schema] | None = None, errors: tuple[int, ...] = ()) -> Schema:
    op: Schema = {"operationId": operation_id, "summary": summary, "responses": {**responses, **_errors(*errors)}}
    if body is not None:
        op["requestBody"] = {"required": True, "content": {media: {"schema": body}}}
    if parameters:
        op["parameters"] = parameters
    return op


NO_CONTENT = {"204": {"description": "Done."}}
IDEMPOTENCY_HEADER: Schema = {
    "name": "Idempotency-Key", "in": "header", "required": False,
    "schema": {"type": "string", "pattern": "^[\\x21-\\x7e]{1,255}$"},
    "description": ("Beyond upstream: a post repeated with this key within IDEMPOTENCY_WINDOW seconds answers the "
                    "first post's ids and stores nothing; the key with other messages is a 422."),
}


def _paths(limits: Limits) -> dict[str, Schema]:
    queue = _path_param("queue_name", _ref("QueueName"))
    page = [_query("marker", {"type": "string"}), _query("limit", {"type": "integer", "minimum": 1})]
    ids = _query("ids", {"type": "string"}, "Comma-separated message ids; the parameter may also be repeated.")
    claim_id = _query("claim_id", {"type": "string"})
    paths: dict[str, Schema] = {
        "/": {"get": _operation("versions", "The API versions (300 Multiple Choices).", {
            "300": _json({"type": "object"}, "The versions.")})},
        "/openapi.json": {"get": _operation("openapi", "This document.", {
            "200": _json({"type": "object"}, "The OpenAPI 3.1 document.")})},
        "/openapi/websocket.json": {"get": _operation("websocket_frames", "JSON Schema of websocket request "
                                                      "frames.", {"200": _json({"type": "object"}, "The schema.")})},
        "/v2": {"get": _operation("home", "The JSON home document.", {
            "200": {"description": "The home document.",
                    "content": {"application/json-home": {"schema": {"type": "object"}}}}})},
        "/v2/ping": {
            "get": _operation("ping", "Is the service up?", NO_CONTENT),
            "head": _operation("ping_head", "Is the service up?", NO_CONTENT),
        },
        "/v2/health": {"get": _operation("health", "Catalog and pools, with each storage operation timed "
                                         "(admin).", {"200": _json(_ref("Health"), "The report.")})},
        "/v2/queues": {"get": _operation("queue_list", "Queues of the project, by name.", {
            "200": _json(_ref("QueueList"), "A page of queues.")}, parameters=[
                *page, _query("detailed", {"type": "boolean"}), _query("with_count", {"type": "boolean"}),
                _query("name", {"type": "string"})])},
        "/v2/queues/{queue_name}": {
            "parameters": [queue],
            "put": _operation("queue_create", "Create a queue (201), or leave an existing one alone (204).", {
                "201": {"description": "Created."}, **NO_CONTENT}, body=_ref("QueueMetadata")),
            "get": _operation("queue_get", "The queue's metadata with the reserved defaults (an absent queue "
                              "reads as an empty one).", {"200": _json(_ref("QueueMetadata"), "The metadata.")}),
            "patch": _operation("queue_update", "Change the metadata with a JSON patch.", {
                "200": _json(_ref("QueueMetadata"), "The whole, updated metadata.")}, body=_ref("JsonPatch"),
                media=PATCH_TYPE, errors=(404, 409, 415)),
            "delete": _operation("queue_delete", "Delete the queue and its messages.", NO_CONTENT),
        },
        "/v2/queues/{queue_name}/stats": {"parameters": [queue], "get": _operation(
            "queue_stats", "Message counts, oldest and newest.", {"200": _json(_ref("Stats"), "The counts.")})},
        "/v2/queues/{queue_name}/redrive": {"parameters": [queue], "post": _operation(
            "queue_redrive", "Beyond upstream: move this dead-letter queue's messages back to the queues they "
            "came from (or to destination), claimable again, each exactly once.", {
                "200": _json(_ref("Redriven"), "How many were moved.")}, body=_ref("Redrive"))},
        "/v2/queues/{queue_name}/purge": {"parameters": [queue], "post": _operation(
            "queue_purge", "Remove messages and/or subscriptions; keep the queue.", NO_CONTENT, body=_ref("Purge"))},
        "/v2/queues/{queue_name}/share": {"parameters": [queue], "post": _operation(
            "queue_share", "A pre-signed URL for the queue.", {"200": _json(_ref("Signed"), "The signature.")},
            body=_ref("Share"))},
        "/v2/queues/{queue_name}/messages": {
            "parameters": [queue],
            "post": _operation("message_post", "Post messages (all or nothing).", {
                "201": _json(_ref("Posted"), "Where each message is.")}, body=_ref("MessagePost"), errors=(413, 422),
                parameters=[IDEMPOTENCY_HEADER]),
            "get": _operation("message_list", "A page of messages, or the messages named by ids.", {
                "200": _json(_ref("MessageList"), "Messages.")}, parameters=[
                    *page, ids, _query("echo", {"type": "boolean"}), _query("include_claimed", {"type": "boolean"}),
                    _query("include_delayed", {"type": "boolean"})], errors=(404,)),
            "delete": _operation("message_delete_many", "Delete messages by ids, or pop some (give one of them).", {
                "200": _json(_ref("Popped"), "The popped messages (gone from the queue: no href)."), **NO_CONTENT},
                parameters=[
                    ids, _query("pop", _integer(1, limits.max_messages_per_claim_or_pop))]),
        },
        "/v2/queues/{queue_name}/messages/{message_id}": {
            "parameters": [queue, _path_param("message_id")],
            "get": _operation("message_get", "One message.", {"200": _json(_ref("Message"), "The message.")},
                              errors=(404,)),
            "delete": _operation("message_delete", "Delete a message (with its claim id when claimed).",
                                 NO_CONTENT, parameters=[claim_id]),
        },
        "/v2/queues/{queue_name}/claims": {"parameters": [queue], "post": _operation(
            "claim_create", "Claim messages.", {
                "201": _json({"type": "object", "required": ["messages"], "properties": {
                    "messages": {"type": "array", "items": _ref("Message")}}}, "The claimed messages."),
                **NO_CONTENT}, body=_ref("ClaimCreate"), parameters=[
                    _query("limit", _integer(1, limits.max_messages_per_claim_or_pop))])},
        "/v2/queues/{queue_name}/claims/{claim_id}": {
            "parameters": [queue, _path_param("claim_id")],
            "get": _operation("claim_get", "A live claim and its messages.", {
                "200": _json(_ref("Claim"), "The claim.")}, errors=(404,)),
            "patch": _operation("claim_update", "Renew a claim from now.", NO_CONTENT, body=_ref("ClaimCreate"),
                                errors=(404,)),
            "delete": _operation("claim_delete", "Release a claim.", NO_CONTENT),
        },
        "/v2/queues/{queue_name}/subscriptions": {
            "parameters": [queue],
            "post": _operation("subscription_create", "Subscribe (the same unconfirmed subscriber again answers "
                               "the same subscription).", {"201": _json(_ref("SubscriptionCreated"), "Subscribed.")},
                               body=_ref("SubscriptionCreate"), errors=(409,)),
            "get": _operation("subscription_list", "A page of subscriptions.", {
                "200": _json(_ref("SubscriptionList"), "Subscriptions.")}, parameters=page),
        },
        "/v2/queues/{queue_name}/subscriptions/{subscription_id}": {
            "parameters": [queue, _path_param("subscription_id")],
            "get": _operation("subscription_get", "One subscription.", {
                "200": _json(_ref("Subscription"), "The subscription.")}, errors=(404,)),
            "patch": _operation("subscription_update", "Change subscriber, ttl or options.", NO_CONTENT,
                                body=_ref("SubscriptionUpdate"), errors=(404, 409)),
            "delete": _operation("subscription_delete", "Unsubscribe.", NO_CONTENT),
        },
        "/v2/queues/{queue_name}/subscriptions/{subscription_id}/confirm": {
            "parameters": [queue, _path_param("subscription_id")],
            "put": _operation("subscription_confirm", "Confirm or unconfirm a subscription.", NO_CONTENT,
                              body=_ref("Confirm"), errors=(404,)),
        },
    }
    for kind, schema, patch in (("pools", "Pool", "PoolPatch"), ("flavors", "Flavor", "FlavorPatch")):
        item = _path_param(f"{kind[:-1]}_name")
        paths[f"/v2/{kind}"] = {"get": _operation(f"{kind[:-1]}_list", f"A page of {kind} (admin).", {
            "200": _json(_ref("Listing"), f"{kind.title()}.")}, parameters=[
                *page, _query("detailed", {"type": "boolean"})])}
        paths[f"/v2/{kind}/{{{kind[:-1]}_name}}"] = {
            "parameters": [item],
            "put": _operation(f"{kind[:-1]}_create", f"Create or replace a {kind[:-1]} (admin).", {
                "201": {"description": "Created."}, **NO_CONTENT}, body=_ref(schema), errors=(409,)),
            "get": _operation(f"{kind[:-1]}_get", f"One {kind[:-1]} (admin).", {
                "200": _json({"type": "object"}, f"The {kind[:-1]}.")}, parameters=[
                    _query("detailed", {"type": "boolean"})], errors=(404,)),
            "patch": _operation(f"{kind[:-1]}_update", f"Change a {kind[:-1]} (admin).", {
                "200": _json({"type": "object"}, f"The {kind[:-1]}.")}, body=_ref(patch), errors=(404, 409)),
            "delete": _operation(f"{kind[:-1]}_delete", f"Delete a {kind[:-1]} (admin).", NO_CONTENT,
                                 errors=(409,)),
        }
    paths.update(_topic_paths(paths))
    paths.update(_console_paths())
    return paths


CONSOLE_TYPES = ("text/html", "text/css", "text/javascript", "image/svg+xml")


def _console_paths() -> dict[str, Schema]:
    """The web console's static files (``chalicelib.transport.rest_console``): no headers needed."""
    text = {"type": "string"}
    file_param = _path_param("file", {"type": "string", "minLength": 1, "description": (
        "One of the console's files (index.html, console.css, console.js, ...); any other name is a 404.")})
    page = {"description": "The console's page.", "content": {"text/html": {"schema": text}}}
    return {
        "/console": {"get": _operation("console", "The web console (the page itself at /console/; /console "
                                       "redirects to console/index.html).", {
            "200": page, "302": {"description": "To console/index.html, the query kept."}})},
        "/console/{file}": {"parameters": [file_param], "get": _operation("console_file", "A file of the web console.", {
            "200": {"description": "The file.", "content": {media: {"schema": text} for media in CONSOLE_TYPES}},
            "304": {"description": "Not modified (If-None-Match named its ETag)."}})},
    }


TOPICS_NOTE = ("Topics are beyond upstream's working set (upstream has these routes, but by code reading its "
               "topic message and subscription routes fail). A topic is a queue without claims: its messages "
               "are kept for their ttl, listed and delivered to the topic's subscriptions.")
_TOPIC_ROUTES = {
    "": ("put", "get", "patch", "delete"), "/stats": ("get",), "/purge": ("post",),
    "/messages": ("post", "get"), "/messages/{message_id}": ("get",),
    "/subscriptions": ("post", "get"), "/subscriptions/{subscription_id}": ("get", "patch", "delete"),
    "/subscriptions/{subscription_id}/confirm": ("put",),
}


def _topic_paths(paths: dict[str, Schema]) -> dict[str, Schema]:
    """The topic routes: the queue routes they share the handlers of, for ``topic_name``, named ``topic_*``."""
    topic = _path_param("topic_name", _ref("QueueName"))
    found: dict[str, Schema] = {"/v2/topics": {"get": _for_topics(paths["/v2/queues"]["get"], "topic_list")}}
    found["/v2/topics"]["get"]["responses"]["200"] = _json(_ref("TopicList"), "A page of topics.")
    for tail, methods in _TOPIC_ROUTES.items():
        item = paths[f"/v2/queues/{{queue_name}}{tail}"]
        parameters = [topic, *item["parameters"][1:]]
        found[f"/v2/topics/{{topic_name}}{tail}"] = {"parameters": parameters, **{
            method: _for_topics(item[method], _topic_operation(item[method]["operationId"])) for method in methods}}
    return found


def _topic_operation(queue_operation: str) -> str:
    """``queue_get`` -> ``topic_get``, ``message_post`` -> ``topic_message_post``."""
    if queue_operation.startswith("queue_"):
        return "topic_" + queue_operation[len("queue_"):]
    return f"topic_{queue_operation}"


def _for_topics(operation: Schema, operation_id: str) -> Schema:
    copied = copy.deepcopy(operation)
    summary = copied["summary"].replace("queue", "topic")
    return {**copied, "operationId": operation_id, "summary": summary, "description": TOPICS_NOTE}


HEADERS = [
    {"name": "Client-ID", "in": "header", "required": False, "schema": {"type": "string", "format": "uuid"},
     "description": "The client instance (required on /v2 requests but ping, home and health)."},
    {"name": "X-Project-ID", "in": "header", "required": False, "schema": {"type": "string", "maxLength": 256},
     "description": "The tenant, with AUTH_STRATEGY=noauth (DEFAULT_PROJECT when unset, if configured)."},
]


@functools.lru_cache(maxsize=4)
def document(limits: Limits = DEFAULT_LIMITS, server: str = "") -> dict[str, Any]:
    """The OpenAPI 3.1 document (built once per container and set of limits)."""
    paths = _paths(limits)
    for path, item in paths.items():
        if path.startswith("/v2/") or path == "/v2":
            item.setdefault("parameters", [])
            item["parameters"] = [*HEADERS, *item["parameters"]]
    doc: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": "Zaqar v2 messaging (serverless)", "version": "2.0",
                 "description": "OpenStack Zaqar's v2 REST API: queues, messages, claims, subscriptions, "
                                "pre-signed URLs, pools and flavors; beyond upstream, topics. Errors are "
                                "{title, description}."},
        "paths": paths,
        "components": {
            "schemas": schemas(limits),
            "securitySchemes": {"keystone": {"type": "apiKey", "in": "header", "name": "X-Auth-Token"}},
        },
    }
    if server:
        doc["servers"] = [{"url": server}]
    return doc


TOPIC_ACTIONS = ("queue_list", "queue_create", "queue_delete", "queue_get", "queue_get_stats", "queue_purge",
                 "message_list", "message_get", "message_get_many", "message_post", "subscription_create",
                 "subscription_get", "subscription_list", "subscription_delete")
"""The websocket actions that have a ``topic_*`` twin (beyond upstream): ``topic_name`` for ``queue_name``."""


def _for_topic_frames(body: Schema) -> Schema:
    properties = {("topic_name" if key == "queue_name" else key): value
                  for key, value in body.get("properties", {}).items()}
    found: Schema = {**body, "properties": properties, "description": TOPICS_NOTE}
    if "required" in body:
        found["required"] = ["topic_name" if key == "queue_name" else key for key in body["required"]]
    return found


def websocket_frames(limits: Limits = DEFAULT_LIMITS) -> dict[str, Any]:
    """JSON Schema (2020-12) of a websocket request frame: an action, headers and its body."""
    defs = schemas(limits)
    queue: Schema = {"type": "object", "required": ["queue_name"], "properties": {"queue_name": _ref("QueueName")}}
    bodies: dict[str, Schema] = {
        "authenticate": {"type": "object"},
        "queue_list": {"type": "object", "properties": {"marker": {"type": "string"}, "limit": {"type": "integer"},
                                                        "detailed": {"type": "boolean"}}},
        "queue_create": {**queue, "properties": {**queue["properties"], "metadata": _ref("QueueMetadata")}},
        "queue_delete": queue, "queue_get": queue, "queue_get_stats": queue,
        "queue_purge": {**queue, "properties": {**queue["properties"],
                                                "resource_types": defs["Purge"]["properties"]["resource_types"]}},
        "queue_redrive": {**queue, "properties": {**queue["properties"], **defs["Redrive"]["properties"]}},
        "message_list": queue,
        "message_get": {**queue, "required": ["queue_name", "message_id"]},
        "message_get_many": {**queue, "required": ["queue_name", "message_ids"]},
        "message_post": {**queue, "required": ["queue_name", "messages"],
                         "properties": {**queue["properties"], "messages": defs["MessagePost"]["properties"][
                             "messages"]}},
        "message_delete": {**queue, "required": ["queue_name", "message_id"]},
        "message_delete_many": queue,
        "claim_create": queue,
        "claim_get": {**queue, "required": ["queue_name", "claim_id"]},
        "claim_update": {**queue, "required": ["queue_name", "claim_id"]},
        "claim_delete": {**queue, "required": ["queue_name", "claim_id"]},
        "subscription_create": {**queue, "properties": {**queue["properties"],
                                                        **defs["WebsocketSubscribe"]["properties"]}},
        "subscription_get": {**queue, "required": ["queue_name", "subscription_id"]},
        "subscription_list": queue,
        "subscription_delete": {**queue, "required": ["queue_name", "subscription_id"]},
    }
    bodies.update({_topic_operation(action): _for_topic_frames(bodies[action]) for action in TOPIC_ACTIONS})
    frame = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Zaqar v2 websocket request frame",
        "type": "object",
        "required": ["action", "headers"],
        "properties": {"action": {"enum": sorted(bodies)}, "headers": {"type": "object"}, "body": {}},
        "allOf": [{"if": {"properties": {"action": {"const": action}}},
                   "then": {"properties": {"body": body}}} for action, body in sorted(bodies.items())],
        "$defs": defs,
    }
    # the shared schemas refer to each other as the OpenAPI document places them
    return dict(json.loads(json.dumps(frame).replace("#/components/schemas/", "#/$defs/")))


if __name__ == "__main__":  # python -m chalicelib.openapi DIR: write both documents there
    import sys
    from pathlib import Path

    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "docs")
    folder.mkdir(exist_ok=True)
    (folder / "openapi.json").write_text(json.dumps(document(), indent=1, sort_keys=True) + "\n")
    (folder / "websocket-frames.schema.json").write_text(json.dumps(websocket_frames(), indent=1, sort_keys=True)
                                                          + "\n")
