"""Request bodies against the published schemas: the compiled checks agree with a reference
JSON Schema 2020-12 validator (``jsonschema``) on valid bodies and on mutations of them, and
refusals say which field is wrong, what it must be and what it was."""

from __future__ import annotations

import copy
import json
import random
from typing import Any

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib import errors, openapi
from chalicelib.api import bodies
from chalicelib.config import Limits

LIMITS = Limits()
VALID: dict[str, list[Any]] = {
    "MessagePost": [{"messages": [{"body": {"a": [1, None]}, "ttl": 300, "delay": 0}, {"body": "x", "ttl": None}]}],
    "ClaimCreate": [{}, {"ttl": 60, "grace": 43200}],
    "Purge": [{}, {"resource_types": ["messages", "subscriptions"]}],
    "Redrive": [{}, {"destination": "work", "limit": 10}, {"limit": 1000}],
    "Share": [{}, {"paths": ["messages", "claims"], "methods": ["get", "POST"], "expires": "2030-01-01T00:00:00"}],
    "SubscriptionCreate": [{"subscriber": "http://example.test/h", "ttl": 3600, "options": {"a": 1}}],
    "WebsocketSubscribe": [{}, {"ttl": 60}],
    "SubscriptionUpdate": [{"ttl": 7200}, {"subscriber": "mailto:a@b.test", "options": {}}],
    "Confirm": [{"confirmed": False}],
    "JsonPatch": [[{"op": "add", "path": "/metadata/a", "value": 1}, {"op": "remove", "path": "/metadata/b"}]],
    "Pool": [{"weight": 10, "uri": "redis://127.0.0.1:6379", "flavor": None, "options": {}}],
    "PoolPatch": [{"weight": 0}],
    "Flavor": [{"pool_list": ["a", "b"], "capabilities": None}],
    "FlavorPatch": [{"pool_list": None, "capabilities": {"x": 1}}],
    "QueueMetadata": [{}, {"_default_message_ttl": 60, "free": [1, 2]}],
}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8) | st.sampled_from(["messages", "add", "/metadata/a", "GET", "claims", "http://x/"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["body", "ttl", "op", "path", "value", "weight", "uri", "x", "messages"]), inner, max_size=3),
    max_leaves=8,
)


def _reference(name: str) -> jsonschema.protocols.Validator:
    shared = openapi.schemas(LIMITS)
    text = json.dumps({**shared[name], "$defs": shared}).replace("#/components/schemas/", "#/$defs/")
    return jsonschema.Draft202012Validator(json.loads(text))


def _places(document: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a document, the root first."""
    found = [path]
    if isinstance(document, dict):
        for key, value in document.items():
            found += _places(value, (*path, key))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            found += _places(value, (*path, index))
    return found


def _mutate(document: Any, seed: int, value: Any) -> Any:
    """document with one place replaced by value, removed, or given an extra key."""
    rng = random.Random(seed)
    mutated = copy.deepcopy(document)
    path = rng.choice(_places(mutated))
    if not path:
        return value
    parent = mutated
    for step in path[:-1]:
        parent = parent[step]
    choice = rng.randrange(3)
    if choice == 0:
        parent[path[-1]] = value
    elif choice == 1:
        del parent[path[-1]]
    elif isinstance(parent, dict):
        parent["extra"] = value
    else:
        parent.append(value)
    return mutated


def _verdict(name: str, document: Any) -> bool:
    try:
        bodies.check(name, document, LIMITS, "The body")
    except errors.InvalidBody:
        return False
    return True


@pytest.mark.parametrize("name", sorted(VALID))
def test_the_examples_are_valid_for_both_engines(name: str) -> None:
    for example in VALID[name]:
        assert _reference(name).is_valid(example), (name, example)
        assert _verdict(name, example), (name, example)


@pytest.mark.parametrize("name", sorted(VALID))
@settings(max_examples=150, deadline=None)
@given(seed=st.integers(0, 2**32), value=json_values)
def test_both_engines_agree_on_mutated_bodies(name: str, seed: int, value: Any) -> None:
    for example in VALID[name]:
        mutated = _mutate(example, seed, value)
        assert _verdict(name, mutated) == _reference(name).is_valid(mutated), (name, mutated)


def test_every_request_body_schema_of_the_document_has_examples_here() -> None:
    """So that the agreement test above covers every schema a route's body is checked against."""
    named = set()
    for item in openapi.document()["paths"].values():
        for operation in item.values():
            if isinstance(operation, dict) and "requestBody" in operation:
                (media,) = operation["requestBody"]["content"].values()
                named.add(media["schema"]["$ref"].rsplit("/", 1)[1])
    assert named <= set(VALID)


@pytest.mark.parametrize(("name", "body", "sentence"), [
    ("MessagePost", [], 'The body must be a JSON object like {"messages": [{"body": ...}]}, not an array.'),
    ("MessagePost", {"messages": []}, "messages must list at least 1 item(s); got 0."),
    ("MessagePost", {"messages": [{"body": 1}, {"ttl": 60}]}, 'messages[1] needs "body".'),
    ("MessagePost", {"messages": [{"body": 1, "ttl": "60"}]}, "messages[0].ttl must be an integer or null, not a string."),
    ("MessagePost", {"messages": [{"body": 1, "delay": 901}]}, "messages[0].delay must be between 0 and 900; got 901."),
    ("ClaimCreate", {"ttl": True}, "ttl must be an integer, not true or false."),
    ("Purge", {"resource_types": ["messages", "claims"]},
     'resource_types[1] must be one of messages, subscriptions; got "claims".'),
    ("Purge", {"types": []}, 'The body has no "types": use resource_types.'),
    ("Redrive", {"limit": 1001}, "limit must be between 1 and 1000; got 1001."),
    ("Redrive", {"to": "q"}, 'The body has no "to": use destination, limit.'),
    ("SubscriptionUpdate", {}, "The body is empty: say what to change (options, subscriber, ttl)."),
    ("SubscriptionCreate", {"subscriber": ""}, "subscriber must be 1 to 1024 characters long; got 0."),
    ("JsonPatch", [{"op": "add", "path": "/metadata/a/b", "value": 1}],
     'The body[0].path must be /metadata/ and one key (~1 for a slash in it, ~0 for a tilde); got "/metadata/a/b".'),
    ("JsonPatch", [{"op": "replace", "path": "/metadata/a"}], 'The body[0] needs "value".'),
])
def test_a_refusal_names_the_field_what_it_must_be_and_what_it_was(name: str, body: Any, sentence: str) -> None:
    with pytest.raises(errors.InvalidBody) as refused:
        bodies.check(name, body, LIMITS, "The body")
    assert refused.value.description == sentence


def test_limits_shape_the_checks() -> None:
    tight = Limits(max_message_ttl=600)
    body = {"messages": [{"body": 1, "ttl": 601}]}
    assert _verdict("MessagePost", body)
    with pytest.raises(errors.InvalidBody, match="between 60 and 600; got 601"):
        bodies.check("MessagePost", body, tight, "The body")


def test_integral_numbers_are_integers_and_come_out_as_ints() -> None:
    assert _verdict("ClaimCreate", {"ttl": 120.0}) and not _verdict("ClaimCreate", {"ttl": 120.5})
    assert bodies.whole(120.0) == 120 and isinstance(bodies.whole(120.0), int)
    assert bodies.whole(None) is None and bodies.whole(7) == 7
