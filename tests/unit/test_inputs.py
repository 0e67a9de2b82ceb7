"""The edge's input rules (chalicelib.api.inputs), pool URI shapes and webhook authorities, with
hypothesis properties (derandomized: the same examples every run)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib import errors
from chalicelib.api import inputs
from chalicelib.rules.addresses import authority_problem
from chalicelib.storage.pooling import uri_problem

LIMIT = inputs.MAX_JSON_DEPTH
PROPERTY = settings(derandomize=True, max_examples=400, deadline=None, database=None)


def depth_of(document: Any) -> int:
    """The nesting of a parsed document (iteratively)."""
    deepest, stack = 0, [(document, 1)]
    while stack:
        value, level = stack.pop()
        if isinstance(value, dict | list):
            deepest = max(deepest, level)
            stack.extend((item, level + 1) for item in (value.values() if isinstance(value, dict) else value))
    return deepest


@pytest.mark.parametrize(("text", "exceeds"), [
    ("[" * LIMIT + "]" * LIMIT, False),
    ("[" * (LIMIT + 1) + "]" * (LIMIT + 1), True),
    ('{"a":' * LIMIT + "1" + "}" * LIMIT, False),
    ('{"a":' * (LIMIT + 1) + "1" + "}" * (LIMIT + 1), True),
    (json.dumps(["[" * 1000, "{" * 1000]), False),
    (json.dumps(['\\"[[[' * 500]), False),
    ('["' + "[" * 1000, False),  # a string that never ends: the parser says so
    ("[]" * 100_000, False),
    ("[" * 100_000, True),  # beyond Python's recursion limit: the parser stops
    ("[" * 500 + "]" * 500, True),  # within it: the parsed document is measured
])
def test_the_depth_counts_arrays_and_objects_not_brackets_in_strings(text: str, exceeds: bool) -> None:
    try:
        inputs.parse_json(text, "The body")
        refusal = ""
    except errors.InvalidBody as exc:  # invalid JSON that is not too deep is the parser's to name
        refusal = exc.description
    assert (f"more than {LIMIT} deep" in refusal) is exceeds, refusal


@pytest.mark.parametrize(("raw", "words"), [
    ("[" * 10_000 + "]" * 10_000, [f"more than {LIMIT} deep"]),
    ("NaN", ["NaN is not a JSON number"]),
    ("[-Infinity]", ["-Infinity"]),
    ("1e400", ["too large"]),
    ("9" * 4301, ["4300 digits"]),
    ("-" + "9" * 4301, ["4300 digits"]),
    ('"\\u0000"', ["NUL"]),
    ('{"\\ud800": 1}', ["key", "U+D800"]),
    ('[1, {"a": ["\\udfff"]}]', ["at '[1].a[0]'", "U+DFFF"]),
    ('{"a": "b\udc80"}', ["at 'a'", "U+DC80"]),  # a raw lone surrogate in text (a str, not UTF-8 bytes)
    (b"\xc3\x28", ["not UTF-8"]),
    ("{", ["not valid JSON"]),
])
def test_parse_json_refuses_with_a_reason(raw: str | bytes, words: list[str]) -> None:
    with pytest.raises(errors.InvalidBody) as refused:
        inputs.parse_json(raw, "The body")
    for word in words:
        assert word in refused.value.description, refused.value.description


def test_parse_json_accepts_what_every_backend_stores() -> None:
    text = json.dumps({"a": [1, -2.5, "\U0001f600", "tab\tand\nnewline", None, True], "é": {"x" * 10: 9 ** 40}})
    assert inputs.parse_json(text, "The body") == json.loads(text)
    assert inputs.parse_json("9" * 4300, "The body") == int("9" * 4300)


def test_text_rules() -> None:
    assert inputs.text_problem("a\tb\nc") is None
    assert inputs.text_problem("a\x00") == "a NUL character (U+0000)"
    assert inputs.text_problem("\udc80") == "a lone surrogate (U+DC80)"
    assert inputs.text_problem("a\tb", controls=True) is None
    assert inputs.text_problem("a\tb", controls=True, tab=False) == "a control character (U+0009)"
    assert inputs.text_problem("\x85 and \u2028 are storable", controls=True) is None
    with pytest.raises(errors.Invalid, match="The header 'x-a' contains a control character"):
        inputs.check_headers([("x-a", "v\r\n")])
    with pytest.raises(errors.Invalid, match="query parameter 'm'"):
        inputs.check_query({"m": ["ok", "\x00"]})
    with pytest.raises(errors.Invalid, match="The queue_name in the path"):
        inputs.check_path({"queue_name": "q\x7f"})


@pytest.mark.parametrize("uri", [
    "redis://127.0.0.1:6379/13", "rediss://:secret@cache.example:6380/0?ssl_cert_reqs=none",
    "redis://[::1]:6379/0", "redis://[fe80::1%25eth0]:6379", "redis://cache.example/0?cluster=true",
    "REDIS://cache.example", "unix:///tmp/redis.sock?db=2", "mongodb://db1,db2,db3/zaqar?replicaSet=rs0",
    "mongodb://user:pw@[::1]:27017,db2:27018/zaqar", "mongodb+srv://cluster0.example.net/zaqar",
    "mongodb://mongomock.invalid/zaqar_functional?unreliable=true",
])
def test_pool_uris_that_are_well_formed(uri: str) -> None:
    assert uri_problem(uri) is None


@pytest.mark.parametrize(("uri", "why"), [
    ("redis://[::1", "closing bracket"), ("redis://[::1]junk", "follows"), ("redis://h:99999", "outside 1..65535"),
    ("redis://h:0", "outside"), ("redis://h:" + "9" * 30, "outside"), ("redis://h:x", "not a number"),
    ("redis://h/x", "database"), ("redis://h]", "bracket"), ("http://h", "scheme 'http'"), ("redis", "no scheme"),
    ("redis:h", "redis://"), ("redis://", "no host"), ("unix://", "socket's path"), ("mongodb://h1,,h2/db", "empty"),
    ("mongodb://h1:1,h2:70000/db", "70000"), ("mongodb+srv://a,b/db", "one host"), ("mongodb+srv://a:1/db", "no port"),
    ("redis://a\x00b", "control"), ("redis://a b", "space"), ("", "empty"),
])
def test_pool_uris_that_are_malformed(uri: str, why: str) -> None:
    problem = uri_problem(uri)
    assert problem is not None and why in problem, problem


@pytest.mark.parametrize(("netloc", "why"), [
    ("[::1]", None), ("u:p@[::1]:80", None), ("[::1]:", None), ("host.example:8080", None),
    ("[::1]]", "follows"), ("[::1]x", "follows"), ("[::1]:8x", "follows"), ("[v1.x]", "IPvFuture"),
    ("a]b", "bracket"), ("a[b", "bracket"), ("[::1", "closing bracket"), ("a\x01b", "control"),
])
def test_webhook_authorities(netloc: str, why: str | None) -> None:
    problem = authority_problem(netloc)
    assert (problem is None) if why is None else (problem is not None and why in problem), problem


# -- properties ----------------------------------------------------------------------------

# any code point, lone surrogates and NUL included (st.text() alone never draws a surrogate)
ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=12)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | ANY_TEXT,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(ANY_TEXT, children, max_size=4),
    max_leaves=40,
)


@PROPERTY
@given(st.text(max_size=200) | st.binary(max_size=200) | JSON_VALUES.map(json.dumps))
def test_any_text_is_parsed_or_refused_with_invalid_body(raw: str | bytes) -> None:
    try:
        document = inputs.parse_json(raw, "The body")
    except errors.InvalidBody:
        return
    # storable: no NUL or lone surrogate anywhere, so it encodes strictly (json.dumps alone escapes them to ASCII)
    assert not any(inputs.text_problem(part) for part in _strings(document)), document
    json.dumps(document, ensure_ascii=False).encode("utf-8")
    text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    assert document == json.loads(text)  # and what any JSON parser reads there


@PROPERTY
@given(JSON_VALUES)
def test_the_depth_check_agrees_with_the_parsed_depth(document: Any) -> None:
    for limit in (0, 1, 2, 3, 5):
        assert inputs.nests_deeper(document, limit) is (depth_of(document) > limit), (document, limit)


@PROPERTY
@given(JSON_VALUES)
def test_documents_without_unstorable_text_round_trip(document: Any) -> None:
    unstorable = any(inputs.text_problem(part) for part in _strings(document))
    for text in (json.dumps(document), json.dumps(document, ensure_ascii=False)):  # escaped, and raw
        try:
            parsed = inputs.parse_json(text, "The body")
        except errors.InvalidBody:
            assert unstorable or depth_of(document) > LIMIT
            continue
        assert not unstorable and parsed == json.loads(text)


@PROPERTY
@given(st.text(max_size=120))
def test_uri_checks_never_raise(text: str) -> None:
    """A problem is a sentence or None, whatever the text (never an exception)."""
    for problem in (uri_problem(text), uri_problem("redis://" + text), uri_problem("mongodb://" + text),
                    authority_problem(text)):
        assert problem is None or (isinstance(problem, str) and problem), problem


def _strings(document: Any) -> list[str]:
    found, stack = [], [document]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            found.append(value)
        elif isinstance(value, dict):
            found.extend(value)
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return found
