"""The published API description: valid OpenAPI 3.1, every route in it, served without headers,
the copy in docs/ up to date, and the answers of a whole session conforming to it."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from openapi_spec_validator import validate

import app as app_module
from chalicelib import openapi
from chalicelib.config import Limits
from chalicelib.transport.ws_actions import ACTIONS
from tests.functional.conftest import PATCH_TYPE, Api, Reply

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_the_document_is_valid_openapi_3_1() -> None:
    validate(openapi.document())  # raises with the place and the reason


def test_every_route_and_method_is_described_and_nothing_else() -> None:
    described = {(path, method.upper()) for path, item in openapi.document()["paths"].items()
                 for method in item if method != "parameters"}
    routes = {(path, method) for path, methods in app_module.app.routes.items() for method in methods}
    assert described == routes


def test_the_copies_in_docs_are_the_current_documents() -> None:
    # regenerate with: .venv/bin/python -m chalicelib.openapi docs
    assert json.loads((DOCS / "openapi.json").read_text()) == openapi.document()
    assert json.loads((DOCS / "websocket-frames.schema.json").read_text()) == openapi.websocket_frames()


def test_it_is_served_without_headers(api: Api) -> None:
    bare = api._client.http.request("GET", "/openapi.json", headers={})
    assert bare.status_code == 200
    assert json.loads(bare.body) == openapi.document()
    frames = api._client.http.request("GET", "/openapi/websocket.json", headers={})
    assert json.loads(frames.body)["properties"]["action"]["enum"] == sorted(ACTIONS)


def _validator(schema: dict[str, Any]) -> jsonschema.protocols.Validator:
    defs = openapi.schemas(Limits())
    text = json.dumps({**schema, "$defs": defs}).replace("#/components/schemas/", "#/$defs/")
    cls = jsonschema.validators.validator_for({"$schema": "https://json-schema.org/draft/2020-12/schema"})
    return cls(json.loads(text))  # type: ignore[no-any-return]


def _operation(method: str, path: str) -> dict[str, Any]:
    for template, item in openapi.document()["paths"].items():
        pattern = "^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$"
        if re.match(pattern, path.split("?")[0]) and method.lower() in item:
            return dict(item[method.lower()])
    raise AssertionError(f"{method} {path} is not in the document")


class Checked:
    """Every answer checked against the document: its status listed, its JSON body of the listed schema."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.seen: list[tuple[str, str, int]] = []

    def __call__(self, method: str, path: str, body: Any = None, **kw: Any) -> Reply:
        reply = self.api.call(method, path, body, **kw)
        operation = _operation(method, path)
        listed = operation["responses"].get(str(reply.status))
        assert listed is not None, f"{method} {path} answered {reply.status}, which the document does not list"
        schema = listed.get("content", {}).get("application/json", {}).get("schema")
        if schema is not None:
            errors = sorted(_validator(schema).iter_errors(reply.json), key=str)
            assert not errors, f"{method} {path} {reply.status}: {errors[0].message} at {list(errors[0].path)}"
        self.seen.append((method, path, reply.status))
        return reply


@pytest.fixture
def call(api: Api) -> Checked:
    return Checked(api)


def test_a_whole_session_conforms_to_the_document(call: Checked) -> None:
    q = "/v2/queues/described"
    assert call("PUT", q, {"_default_message_ttl": 600, "owner": "me"}).status == 201
    assert call("GET", q).status == 200
    assert call("PATCH", q, [{"op": "add", "path": "/metadata/b", "value": 1}],
                headers={"Content-Type": PATCH_TYPE}).status == 200
    assert call("GET", "/v2/queues?detailed=true&with_count=true").status == 200
    posted = call("POST", f"{q}/messages", {"messages": [{"body": {"n": n}, "ttl": 300} for n in range(4)]})
    ids = [href.rsplit("/", 1)[1] for href in posted.json["resources"]]
    assert call("GET", f"{q}/messages?echo=true&limit=2").status == 200
    assert call("GET", f"{q}/messages?ids={ids[0]}&ids={ids[1]}").status == 200
    assert call("GET", f"{q}/messages/{ids[0]}").status == 200
    assert call("GET", f"{q}/stats").status == 200
    claim = call("POST", f"{q}/claims?limit=2", {"ttl": 60, "grace": 60})
    claim_path = claim.headers["location"]
    assert call("GET", claim_path).status == 200
    assert call("PATCH", claim_path, {"ttl": 120}).status == 204
    claim_id = claim_path.rsplit("/", 1)[1]
    assert call("DELETE", f"{q}/messages/{ids[0]}?claim_id={claim_id}").status == 204
    assert call("DELETE", f"{q}/messages/{ids[1]}").status == 403
    assert call("DELETE", claim_path).status == 204
    assert call("DELETE", f"{q}/messages?pop=1").status == 200
    assert call("DELETE", f"{q}/messages?ids={ids[3]}").status == 204
    made = call("POST", f"{q}/subscriptions", {"subscriber": "http://example.test/h", "ttl": 3600})
    sid = made.json["subscription_id"]
    assert call("GET", f"{q}/subscriptions").status == 200
    assert call("GET", f"{q}/subscriptions/{sid}").status == 200
    assert call("PATCH", f"{q}/subscriptions/{sid}", {"ttl": 7200}).status == 204
    assert call("PUT", f"{q}/subscriptions/{sid}/confirm", {"confirmed": True}).status == 204
    assert call("DELETE", f"{q}/subscriptions/{sid}").status == 204
    # without a SIGNING_KEY (as here) sharing is a 400 that must conform as well
    assert call("POST", f"{q}/share", {"paths": ["messages"], "methods": ["GET"]}).status == 400
    assert call("POST", f"{q}/purge", {"resource_types": ["messages"]}).status == 204
    # mistakes are described too: every error body is {title, description}
    assert call("POST", f"{q}/messages", {"messages": []}).status == 400
    assert call("GET", f"{q}/claims/0123456789abcdef0123456789abcdef").status == 404
    assert call("GET", f"{q}/messages/0123456789abcdef0123456789abcdef").status == 404
    assert call("PUT", f"{q}/subscriptions/nope/confirm", {"confirmed": True}).status == 404
    assert call("GET", "/v2/ping").status == 204
    assert call("DELETE", q).status == 204
    assert len(call.seen) >= 30


def test_websocket_frames_are_described() -> None:
    schema = openapi.websocket_frames()
    validator = jsonschema.Draft202012Validator(schema)
    assert validator.is_valid({"action": "message_post", "headers": {},
                               "body": {"queue_name": "q", "messages": [{"body": 1}]}})
    assert not validator.is_valid({"action": "message_post", "headers": {}, "body": {"queue_name": "q"}})
    assert not validator.is_valid({"action": "queue_get", "headers": {}, "body": {"queue_name": "bad name"}})
    assert not validator.is_valid({"action": "no_such_action", "headers": {}})
