"""Subscription filter policies (chalicelib.rules.filter_policy): SNS's syntax, semantics and constraints.

The matching cases live in tests/filters/*.json, built from the examples of Amazon's SNS developer guide
(and, where the guide is silent, from behaviour AWS was observed to have); every file is loaded and every
message checked. The refusals are here, one test per constraint and per malformed operator.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from chalicelib.rules.filter_policy import (
    MAX_BYTES,
    FilterPolicy,
    PolicyError,
    Scope,
    compile_policy,
)

FIXTURES = Path(__file__).resolve().parent.parent / "filters"
SCOPES = ("MessageAttributes", "MessageBody")


# --- the fixtures --------------------------------------------------------------------------------------------

def _fixture_files() -> list[Path]:
    return sorted(FIXTURES.glob("*.json"))


def _load(path: Path) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return document


def _messages() -> list[Any]:
    params = []
    for path in _fixture_files():
        for case in _load(path)["cases"]:
            for expected in ("match", "no_match"):
                for index, message in enumerate(case[expected]):
                    params.append(pytest.param(case["policy"], case.get("scope", "MessageAttributes"), message,
                                               expected == "match",
                                               id=f"{path.stem}: {case['name']}: {expected}[{index}]"))
    return params


def test_the_fixtures_are_there() -> None:
    names = {path.stem for path in _fixture_files()}
    assert {"string_exact", "string_prefix", "string_suffix", "equals_ignore_case", "anything_but_string",
            "anything_but_numeric", "numeric_exact", "numeric_range", "exists", "or_operator", "and_or_logic",
            "nested_body", "string_array", "null_and_booleans", "types", "example_filter_policies",
            "cidr"} <= names


@pytest.mark.parametrize("path", _fixture_files(), ids=lambda path: path.stem)
def test_fixture_files_are_well_formed(path: Path) -> None:
    document = _load(path)
    assert set(document) == {"title", "sources", "cases"}
    assert document["sources"] and all(source.startswith("https://") for source in document["sources"])
    names = [case["name"] for case in document["cases"]]
    assert len(names) == len(set(names)), "case names are unique within a file"
    for case in document["cases"]:
        assert set(case) <= {"name", "scope", "policy", "match", "no_match"}, case["name"]
        assert case.get("scope", "MessageAttributes") in SCOPES
        # both lists non-empty: a policy that matched everything, or nothing, would fail some message
        assert case["match"] and case["no_match"], case["name"]
        for message in case["match"] + case["no_match"]:
            assert set(message) <= {"attributes", "body", "why"} and set(message) - {"why"}, (case["name"], message)
        compile_policy(case["policy"], case.get("scope", "MessageAttributes"))  # every fixture policy is valid


def test_the_fixtures_cover_every_operator_in_both_scopes() -> None:
    seen: dict[str, set[str]] = {scope: set() for scope in SCOPES}

    def walk(node: Any, scope: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("$or", "prefix", "suffix", "equals-ignore-case", "anything-but", "numeric", "exists",
                           "cidr"):
                    seen[scope].add(key)
                walk(value, scope)
        elif isinstance(node, list):
            for item in node:
                if item is None or isinstance(item, bool):
                    seen[scope].add(json.dumps(item))
                walk(item, scope)

    for path in _fixture_files():
        for case in _load(path)["cases"]:
            walk(case["policy"], case.get("scope", "MessageAttributes"))
    everything = {"$or", "prefix", "suffix", "equals-ignore-case", "anything-but", "numeric", "exists", "cidr"}
    assert everything | {"null", "false"} <= seen["MessageAttributes"]
    assert everything | {"null", "true"} <= seen["MessageBody"]


@pytest.mark.parametrize(("policy", "scope", "message", "expected"), _messages())
def test_fixture(policy: dict[str, Any], scope: Scope, message: dict[str, Any], expected: bool) -> None:
    compiled = compile_policy(policy, scope)
    got = compiled.matches(attributes=message.get("attributes"), body=message.get("body"))
    assert got is expected, message.get("why", "")


# --- the API -------------------------------------------------------------------------------------------------

def test_the_default_scope_is_message_attributes() -> None:
    compiled = compile_policy({"store": ["example_corp"]})
    assert compiled.scope == "MessageAttributes"
    assert compiled.matches(attributes={"store": "example_corp"}, body=None)
    assert not compiled.matches(attributes=None, body={"store": "example_corp"})


def test_policy_error_is_a_value_error() -> None:
    assert issubclass(PolicyError, ValueError)
    with pytest.raises(ValueError, match="must be a JSON object"):
        compile_policy(["store"])


def test_a_json_string_is_read_as_the_policy() -> None:
    text = '{"store": ["example_corp"], "price_usd": [{"numeric": [">=", 100]}]}'
    compiled = compile_policy(text)
    assert isinstance(compiled, FilterPolicy)
    assert compiled.matches(attributes={"store": "example_corp", "price_usd": 100}, body=None)
    assert not compiled.matches(attributes={"store": "example_corp", "price_usd": 99}, body=None)


def test_the_empty_policy_filters_nothing() -> None:
    for scope in SCOPES:
        compiled = compile_policy({}, scope)  # type: ignore[arg-type]
        assert compiled.matches(attributes=None, body=None)
        assert compiled.matches(attributes={}, body="not an object")
        assert compiled.key_names == () and compiled.combinations == 0


def test_the_compiled_form_does_not_depend_on_the_policy_object() -> None:
    policy: dict[str, Any] = {"store": ["example_corp"], "detail": {"level": [{"prefix": "warn"}]}}
    compiled = compile_policy(policy, "MessageBody")
    message = {"store": "example_corp", "detail": {"level": "warning"}}
    policy["store"][0] = "other_corp"
    policy["detail"]["level"] = [{"prefix": "err"}]
    assert compiled.matches(attributes=None, body=message)
    assert not compiled.matches(attributes=None, body={"store": "other_corp", "detail": {"level": "error"}})


def test_one_compiled_policy_matches_many_messages() -> None:
    compiled = compile_policy({"n": [{"numeric": [">=", 10, "<", 20]}], "kind": [{"anything-but": ["test"]}]})
    results = [compiled.matches(attributes={"n": n, "kind": "real" if n % 2 else "test"}, body=None)
               for n in range(30)]
    assert results == [10 <= n < 20 and n % 2 == 1 for n in range(30)]


def test_matching_does_not_change_the_message() -> None:
    compiled = compile_policy({"Records": {"eventName": [{"prefix": "ObjectCreated:"}]}}, "MessageBody")
    body = {"Records": [{"eventName": "ObjectCreated:Put", "tags": [["a"], ["b"]]}]}
    before = copy.deepcopy(body)
    assert compiled.matches(attributes=None, body=body)
    assert body == before


def test_key_names_and_combinations_are_reported() -> None:
    compiled = compile_policy({"key_a": ["value_one", "value_two", "value_three"], "key_b": ["value_one"],
                               "key_c": ["value_one", "value_two"]})
    assert compiled.key_names == ("key_a", "key_b", "key_c")
    assert compiled.combinations == 6  # 3 x 1 x 2, the guide's example
    assert "combinations=6" in repr(compiled)


def test_nested_combinations_multiply_by_depth_as_the_guide_computes() -> None:
    nested = {"key_a": {"key_b": {"key_c": ["value_one", "value_two", "value_three", "value_four"]}},
              "key_d": {"key_e": ["value_one", "value_two", "value_three"]}}
    assert compile_policy(nested, "MessageBody").combinations == 72  # 3 x 4 x 2 x 3


def test_or_adds_its_alternatives_combinations() -> None:
    # (source * metricName) + (source * metricType * metricId) + (source * metricType * spaceId) = 18 + 48 + 84
    policy = {
        "source": ["aws.cloudwatch", "aws.events", "aws.test"],
        "$or": [
            {"metricName": ["CPUUtilization", "ReadLatency", "TestVal", "TestVal2", "TestVal3", "TestVal4"]},
            {"metricType": ["MetricType", "TestType", "TestType2", "TestType3"],
             "$or": [{"metricId": [1234, 4321, 5678, 9012]}, {"spaceId": [1, 2, 3, 4, 5, 6, 7]}]},
        ],
    }
    compiled = compile_policy(policy)
    assert compiled.combinations == 150  # SNS accepts this one: exactly at the limit
    assert compiled.key_names == ("source", "metricName", "metricType", "metricId", "spaceId")


def test_in_body_scope_only_top_level_keys_are_counted() -> None:
    policy = {"state": ["SUCCESS"], "severity": [{"exists": True}], "message": [{"exists": True}],
              "finding": {"standard_control": [{"exists": True}], "region": [{"exists": True}],
                          "account": [{"exists": True}]}}
    compiled = compile_policy(policy, "MessageBody")  # six leaves, four parent keys: accepted
    assert compiled.key_names == ("state", "severity", "message", "finding")
    assert compiled.combinations == 8  # 1 x 1 x 1 x (1x2)(1x2)(1x2)


def test_keys_repeated_across_or_alternatives_count_once() -> None:
    policy = {"$or": [{"a": ["1"], "b": ["2"], "c": ["3"]}, {"a": ["4"], "d": ["5"], "e": ["6"]}]}
    assert compile_policy(policy).key_names == ("a", "b", "c", "d", "e")


@pytest.mark.parametrize("policy", [
    {"k": [1000000000, -1000000000, 0.00001, 123.45678, -999999999.99999]},
    {"k": [{"numeric": [">=", -1e9, "<=", 1e9]}]},
    {"k": [{"anything-but": [0.5, 1e9]}]},
    {"a": ["1"], "b": ["2"], "c": ["3"], "d": ["4"], "e": ["5"]},
    {"k": [f"value{i}" for i in range(150)]},
    {"k": [{"cidr": "10.0.0.1/24"}]},
    {"k": [{"prefix": ""}]},
    {"k": [{"anything-but": "x"}, {"anything-but": 5}, {"anything-but": {"prefix": "x"}}]},
], ids=["number edges", "numeric edges", "anything-but numbers", "five keys", "150 values", "cidr host bits",
        "empty prefix", "anything-but forms"])
def test_policies_at_the_limits_are_accepted(policy: dict[str, Any]) -> None:
    compile_policy(policy)


def test_the_size_limit_is_256_kb_of_compact_json() -> None:
    overhead = len('{"k":[""]}')
    compile_policy({"k": ["x" * (MAX_BYTES - overhead)]})
    with pytest.raises(PolicyError, match=r"^filter_policy: 262145 bytes of JSON, at most 262144 \(256 KB\)$"):
        compile_policy({"k": ["x" * (MAX_BYTES - overhead + 1)]})


def test_the_size_counts_utf8_bytes() -> None:
    overhead = len('{"k":[""]}')
    with pytest.raises(PolicyError, match="bytes of JSON, at most 262144"):
        compile_policy({"k": ["é" * ((MAX_BYTES - overhead) // 2 + 1)]})


# --- the refusals --------------------------------------------------------------------------------------------

def refused(policy: object, scope: str = "MessageAttributes") -> str:
    with pytest.raises(PolicyError) as caught:
        compile_policy(policy, scope)  # type: ignore[arg-type]
    return str(caught.value)


@pytest.mark.parametrize(("policy", "expected"), [
    ([], "filter_policy: must be a JSON object, not an array"),
    (None, "filter_policy: must be a JSON object, not null"),
    (5, "filter_policy: must be a JSON object, not 5"),
    ('"store"', 'filter_policy: must be a JSON object, not "store"'),
    ("{store: 1}", "filter_policy: not valid JSON"),
    ({1: ["a"]}, "filter_policy: keys must be strings, not 1"),
    ({"a": {1, 2}}, "filter_policy: holds a set, which is not a JSON value"),
    ({"a": [float("nan")]}, "filter_policy: not JSON"),
])
def test_the_policy_must_be_a_json_object(policy: object, expected: str) -> None:
    assert refused(policy).startswith(expected)


def test_the_scope_must_be_one_of_the_two() -> None:
    assert refused({"a": ["x"]}, "Body") == 'filter_policy_scope: must be "MessageAttributes" or "MessageBody", not "Body"'


def test_at_most_five_keys() -> None:
    policy = {f"key{i}": [f"value{i}"] for i in range(1, 7)}
    assert refused(policy) == ("filter_policy: at most 5 keys, this one has 6"
                               " (keys: key1, key2, key3, key4, key5, key6)")
    assert refused(policy, "MessageBody").startswith("filter_policy: at most 5 keys, this one has 6 (top-level keys")


def test_at_most_five_keys_counts_the_keys_of_a_top_level_or() -> None:
    policy = {"a": ["1"], "b": ["2"], "$or": [{"c": ["3"], "d": ["4"]}, {"e": ["5"], "f": ["6"]}]}
    assert refused(policy).startswith("filter_policy: at most 5 keys, this one has 6")
    assert refused(policy, "MessageBody").startswith("filter_policy: at most 5 keys, this one has 6")


def test_at_most_five_top_level_keys_in_body_scope() -> None:
    policy = {f"key{i}": {"nested": ["x"]} for i in range(1, 7)}
    assert refused(policy, "MessageBody").startswith("filter_policy: at most 5 keys, this one has 6")


@pytest.mark.parametrize(("policy", "scope", "expected"), [
    ({"key": [f"value{i}" for i in range(151)]}, "MessageAttributes",
     "filter_policy: 151 combinations of values, at most 150"),
    ({"a": [f"v{i}" for i in range(6)], "b": [f"w{i}" for i in range(30)]}, "MessageAttributes",
     "filter_policy: 180 combinations of values, at most 150"),
    ({"key1": [f"value{i}" for i in range(100)], "key2": [f"value{i}" for i in range(51)]}, "MessageAttributes",
     "filter_policy: 5100 combinations of values, at most 150"),
    # 3 x 4 x 2 x 3 x 1 x 3: nested arrays count their depth (SNS refuses this policy)
    ({"key_a": {"key_b": {"key_c": ["value_one", "value_two", "value_three", "value_four"]}},
      "key_d": {"key_e": ["value_one", "value_two", "value_three"]},
      "key_f": ["value_one", "value_two", "value_three"]}, "MessageBody",
     "filter_policy: 216 combinations of values, at most 150"),
    # (4 x 6) + (4 x 4 x 4) + (4 x 4 x 4) (SNS refuses this policy)
    ({"source": ["aws.cloudwatch", "aws.events", "aws.test", "aws.test2"],
      "$or": [{"metricName": ["CPUUtilization", "ReadLatency", "t1", "t2", "t3", "t4"]},
              {"metricType": ["MetricType", "TestType", "TestType2", "TestType3"],
               "$or": [{"metricId": [1234, 4321, 5678, 9012]}, {"spaceId": [1, 2, 3, 4]}]}]}, "MessageAttributes",
     "filter_policy: 152 combinations of values, at most 150"),
    # (3 + 2) x (2 x 2) x ((1 x 2) + (3 x 2)) (SNS refuses this policy)
    ({"$or": [{"metricName": ["CPUUtilization", "ReadLatency", "TestValue"]}, {"namespace": ["AWS/EC2", "AWS/ES"]}],
      "detail": {"scope": ["Service", "Test"],
                 "$or": [{"source": ["aws.cloudwatch"]},
                         {"type": ["CloudWatch Alarm State Change", "TestValue", "TestValue2"]}]}}, "MessageBody",
     "filter_policy: 160 combinations of values, at most 150"),
])
def test_at_most_150_combinations(policy: dict[str, Any], scope: str, expected: str) -> None:
    assert refused(policy, scope) == expected


@pytest.mark.parametrize(("policy", "expected"), [
    ({"price": [1000000001]}, "filter_policy.price[0]: 1000000001 is outside the numbers SNS accepts, -1e9 to 1e9"),
    ({"price": [-1e9 - 1]}, "filter_policy.price[0]: -1000000001.0 is outside the numbers SNS accepts"),
    ({"price": [1.123456]}, "filter_policy.price[0]: 1.123456 has more than 5 decimal places"),
    ({"price": [0.000001]}, "filter_policy.price[0]: 1e-06 has more than 5 decimal places"),
    ({"price": [{"numeric": [">", 2e9]}]}, "filter_policy.price[0].numeric[1]: 2000000000.0 is outside"),
    ({"price": [{"numeric": [">", 0, "<", 0.123456]}]}, "filter_policy.price[0].numeric[3]: 0.123456 has more than 5"),
    ({"price": [{"anything-but": [1, 10000000000]}]}, "filter_policy.price[0].anything-but[1]: 10000000000 is outside"),
    ({"price": [{"anything-but": 0.1234567}]}, "filter_policy.price[0].anything-but: 0.1234567 has more than 5"),
])
def test_numbers_within_a_billion_and_five_decimals(policy: dict[str, Any], expected: str) -> None:
    assert refused(policy).startswith(expected)


def test_nesting_needs_the_body_scope() -> None:
    policy = {"object": {"key": [{"prefix": "auto-"}]}}
    assert refused(policy) == ("filter_policy.object: nested objects need the MessageBody scope;"
                               " a MessageAttributes policy is flat")
    compile_policy(policy, "MessageBody")


@pytest.mark.parametrize(("policy", "scope", "expected"), [
    ({"key_a": "value_one"}, "MessageAttributes", 'filter_policy.key_a: must be an array of conditions, not "value_one"'),
    ({"key_a": "value_one"}, "MessageBody",
     'filter_policy.key_a: must be an array of conditions or an object of nested keys, not "value_one"'),
    ({"key": 5}, "MessageAttributes", "filter_policy.key: must be an array of conditions, not 5"),
    ({"key": None}, "MessageAttributes", "filter_policy.key: must be an array of conditions, not null"),
    ({"key": True}, "MessageAttributes", "filter_policy.key: must be an array of conditions, not true"),
    ({"detail": {"level": "warn"}}, "MessageBody",
     'filter_policy.detail.level: must be an array of conditions or an object of nested keys, not "warn"'),
    ({"a.b": "x"}, "MessageAttributes", 'filter_policy["a.b"]: must be an array of conditions, not "x"'),
    ({"key": []}, "MessageAttributes", "filter_policy.key: the array of conditions is empty; give at least one"),
    ({"detail": {"level": []}}, "MessageBody",
     "filter_policy.detail.level: the array of conditions is empty; give at least one"),
    ({"detail": {}}, "MessageBody", "filter_policy.detail: an empty object; give it keys or remove it"),
])
def test_every_leaf_is_a_non_empty_array(policy: dict[str, Any], scope: str, expected: str) -> None:
    assert refused(policy, scope) == expected


@pytest.mark.parametrize(("policy", "expected"), [
    ({"key": [["value"]]}, "filter_policy.key[0]: a condition cannot be an array"),
    ({"key": ["a", ("t",)]}, "filter_policy.key[1]: a condition is a string, a number, true, false, null or an"
                             " object with one operator, not a tuple"),
    ({"key": [{"suffix": "value", "prefix": "value2"}]},
     'filter_policy.key[0]: a condition object holds exactly one operator, this one has 2 ("suffix", "prefix")'),
    ({"key": [{}]}, "filter_policy.key[0]: a condition object holds exactly one operator, this one has 0 (none)"),
    ({"key": [{"wrong-operator": True}]}, 'filter_policy.key[0]: unknown operator "wrong-operator" (the operators'
                                          " are anything-but, cidr, equals-ignore-case, exists, numeric, prefix,"
                                          " suffix)"),
    ({"key": [{"Prefix": "a"}]}, 'filter_policy.key[0]: unknown operator "Prefix"'),
    ({"key": [{"wildcard": "a*"}]}, 'filter_policy.key[0]: unknown operator "wildcard"'),
])
def test_conditions_are_literals_or_one_known_operator(policy: dict[str, Any], expected: str) -> None:
    assert refused(policy).startswith(expected)


@pytest.mark.parametrize(("policy", "expected"), [
    ({"color": ["red", {"prefix": 5}]}, 'filter_policy.color[1]: "prefix" needs a string, not 5'),
    ({"color": [{"prefix": None}]}, 'filter_policy.color[0]: "prefix" needs a string, not null'),
    ({"key": [{"suffix": 100}]}, 'filter_policy.key[0]: "suffix" needs a string, not 100'),
    ({"key": [{"suffix": []}]}, 'filter_policy.key[0]: "suffix" needs a string, not an array'),
    ({"key": [{"suffix": ["test", "test2"]}]}, 'filter_policy.key[0]: "suffix" needs a string, not an array'),
    ({"key": [{"equals-ignore-case": True}]}, 'filter_policy.key[0]: "equals-ignore-case" needs a string, not true'),
    ({"key": [{"equals-ignore-case": {"a": 1}}]},
     'filter_policy.key[0]: "equals-ignore-case" needs a string, not an object'),
])
def test_string_operators_need_a_string(policy: dict[str, Any], expected: str) -> None:
    assert refused(policy) == expected


@pytest.mark.parametrize(("argument", "expected"), [
    (None, '"exists" needs true or false, not null'),
    ("no", '"exists" needs true or false, not "no"'),
    (1, '"exists" needs true or false, not 1'),
])
def test_exists_needs_a_boolean(argument: object, expected: str) -> None:
    assert refused({"key": [{"exists": argument}]}) == f"filter_policy.key[0]: {expected}"


@pytest.mark.parametrize(("argument", "expected"), [
    (5, 'numeric: needs a list such as [">", 0, "<=", 100] or ["=", 5], not 5'),
    ("> 5", 'numeric: needs a list such as [">", 0, "<=", 100] or ["=", 5], not "> 5"'),
    ([], "numeric: the list is empty; it needs a comparison and a number"),
    (["operator"], 'numeric[0]: "operator" is not a comparison; use =, <, <=, > or >='),
    ([1, "<="], "numeric[0]: 1 is not a comparison"),
    (["==", 1], 'numeric[0]: "==" is not a comparison'),
    (["=", "000"], 'numeric[1]: "=" needs a number, not "000"'),
    (["=", True], 'numeric[1]: "=" needs a number, not true'),
    ([">="], 'numeric: ">=" needs a number after it'),
    (["=", 5, "<", 6], 'numeric: "=" stands alone; it takes no second comparison'),
    (["<", 100, ">", 10], "numeric: put the lower bound (> or >=) first and the upper bound (< or <=) second"),
    (["<=", 100, "<", 10], "numeric: put the lower bound (> or >=) first"),
    ([">=", 1, ">", 2], 'numeric[2]: the second comparison must be an upper bound, < or <=, not ">"'),
    ([">", 20, 30], "numeric[2]: the second comparison must be an upper bound, < or <=, not 30"),
    ([">", 20, "test"], 'numeric[2]: the second comparison must be an upper bound, < or <=, not "test"'),
    ([">", 20, "="], 'numeric[2]: the second comparison must be an upper bound, < or <=, not "="'),
    ([">", 20, "<="], 'numeric: "<=" needs a number after it'),
    ([">", "20", "<", "30"], 'numeric[1]: ">" needs a number, not "20"'),
    ([">", 20, "<", "30"], 'numeric[3]: "<" needs a number, not "30"'),
    ([">", 3, "<", 1], "numeric: the lower bound 3 must be below the upper bound 1"),
    ([">=", 5, "<=", 5], "numeric: the lower bound 5 must be below the upper bound 5"),
    ([">", 20, "<", 30, "<", 50], "numeric: at most two comparisons, a lower and an upper bound; this one has 6"),
    ([">", 20, "<", 30, 40], "numeric: at most two comparisons"),
])
def test_numeric_needs_a_well_formed_list(argument: object, expected: str) -> None:
    assert refused({"key": [{"numeric": argument}]}).startswith(f"filter_policy.key[0].{expected}")


@pytest.mark.parametrize(("argument", "expected"), [
    ({"wrong-operator": None}, '"wrong-operator" is not supported inside "anything-but"; only {"prefix": "..."} is'),
    ({"suffix": "test"}, '"suffix" is not supported inside "anything-but" (SNS supports only prefix there);'
                         ' only {"prefix": "..."} is'),
    ({"exists": False}, '"exists" is not supported inside "anything-but" (SNS supports only prefix there)'),
    ({"equals-ignore-case": "x"}, '"equals-ignore-case" is not supported inside "anything-but"'),
    ({"prefix": "a", "suffix": "b"}, '"suffix" is not supported inside "anything-but"'),
    ({}, 'takes {"prefix": "..."} with exactly one key, this one has none'),
    ({"prefix": False}, '"prefix" needs a string, not false'),
    ({"prefix": ["a"]}, '"prefix" needs a string, not an array'),
    ({"prefix": ""}, 'an empty "prefix" would exclude every string'),
    ([], '"anything-but" needs at least one value'),
    (["a", 1], "the values of anything-but are strings or numbers, not both"),
    ([True], "[0]: the values of anything-but are strings or numbers, not true"),
    (["a", None], "[1]: the values of anything-but are strings or numbers, not null"),
    ([["a"]], "[0]: the values of anything-but are strings or numbers, not an array"),
    ([{"prefix": "a"}], "[0]: the values of anything-but are strings or numbers, not an object"),
    (True, '"anything-but" takes a string, a number, a list of strings or of numbers, or {"prefix": "..."}; not true'),
    (None, '"anything-but" takes a string, a number, a list of strings or of numbers, or {"prefix": "..."}; not null'),
])
def test_anything_but_takes_strings_numbers_or_a_prefix(argument: object, expected: str) -> None:
    message = refused({"key": [{"anything-but": argument}]})
    assert message.startswith("filter_policy.key[0].anything-but")
    assert expected in message


@pytest.mark.parametrize(("argument", "expected"), [
    (["bad-filter"], '"cidr" needs a string such as "10.0.0.0/24", not an array'),
    (10, '"cidr" needs a string such as "10.0.0.0/24", not 10'),
    ("bad-filter", '"cidr" needs an address and a prefix length such as "10.0.0.0/24", not "bad-filter"'),
    ("10.0.0.0", '"cidr" needs an address and a prefix length'),
    ("bad-filter/64", '"cidr": "bad-filter/64" is not an IP network'),
    ("xx.11.xx/8", '"cidr": "xx.11.xx/8" is not an IP network'),
    ("10.0.0.0/33", '"cidr": "10.0.0.0/33" is not an IP network'),
    ("xxxx:db8:1234:1a00::/64", '"cidr": "xxxx:db8:1234:1a00::/64" is not an IP network'),
])
def test_cidr_needs_an_ip_network(argument: object, expected: str) -> None:
    assert refused({"key": [{"cidr": argument}]}).startswith(f"filter_policy.key[0]: {expected}")


OR_HINT = '("$or" is an ordinary key here: it is an OR only with an array of at least 2 objects'


@pytest.mark.parametrize(("policy", "expected"), [
    ({"$or": [{"metricName": ["CPUUtilization"]}]}, 'filter_policy.$or[0]: unknown operator "metricName"'),
    ({"$or": [{"a": ["x"]}, {"numeric": [">", 1]}]}, 'filter_policy.$or[0]: unknown operator "a"'),
    ({"$or": "metricName"}, 'filter_policy.$or: must be an array of conditions, not "metricName"'),
    ({"$or": []}, "filter_policy.$or: the array of conditions is empty"),
    ({"$or": {"a": ["x"]}}, "filter_policy.$or: nested objects need the MessageBody scope"),
])
def test_or_needs_at_least_two_objects(policy: dict[str, Any], expected: str) -> None:
    message = refused(policy)
    assert message.startswith(expected)
    assert OR_HINT in message


@pytest.mark.parametrize(("policy", "scope", "expected"), [
    ({"$or": [{"a": ["x"]}, {}]}, "MessageAttributes", 'filter_policy.$or[1]: an alternative of "$or" needs at least'
                                                       " one key"),
    ({"$or": [{"a": "x"}, {"b": ["y"]}]}, "MessageAttributes",
     'filter_policy.$or[0].a: must be an array of conditions, not "x"'),
    ({"$or": [{"a": {"b": ["x"]}}, {"c": ["y"]}]}, "MessageAttributes",
     "filter_policy.$or[0].a: nested objects need the MessageBody scope; a MessageAttributes policy is flat"),
    ({"detail": {"$or": [{"a": [{"prefix": 1}]}, {"b": ["y"]}]}}, "MessageBody",
     'filter_policy.detail.$or[0].a[0]: "prefix" needs a string, not 1'),
])
def test_or_alternatives_are_validated_where_they_are(policy: dict[str, Any], scope: str, expected: str) -> None:
    assert refused(policy, scope) == expected
