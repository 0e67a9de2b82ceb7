"""What the edge accepts before anything reaches a backend, shared by the REST and websocket transports.

Input that no backend can store, or that would make the parser itself
fail, is refused with a 400 that says what is wrong and where:

- Text (header names and values, query parameters, path parts, JSON
  strings and object keys) may not contain NUL (PostgreSQL text cannot
  hold it, nor can MongoDB keys) or lone surrogates U+D800..U+DFFF (not
  encodable in UTF-8, so Redis, PostgreSQL and MongoDB all refuse them).
  Header names and values and path parts may not contain HTTP's other
  control characters either (U+0001..U+001F, U+007F: HTTP forbids them in
  header values, and no name or id has them); tab is allowed in header
  values.
- JSON documents (REST bodies, websocket frames) must be UTF-8, nest at
  most :data:`MAX_JSON_DEPTH` arrays and objects (a websocket frame one
  more, for its envelope: the same documents fit both transports),
  checked by an iterative scan of the text before it is parsed, so the
  parser never recurses that deep; they may not use NaN or Infinity (not
  JSON), numbers too large for a double (``1e999`` would read as infinity)
  or integers of more than :data:`MAX_INTEGER_DIGITS` digits.
- REST bodies may be at most :data:`MAX_BODY_BYTES` long (a message post,
  the largest body there is, may be 256 KiB).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from typing import Any

from chalicelib import errors

MAX_JSON_DEPTH = 64
"""Nested arrays and objects in one JSON document: well under what Python's parser and MongoDB (100) allow."""
MAX_INTEGER_DIGITS = 4300
"""Digits of one JSON integer (Python's own limit for converting text to int)."""
MAX_BODY_BYTES = 1024 * 1024
"""Bytes of one REST request body."""

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f\ud800-\udfff]")  # HTTP's CTLs but tab, which header values may hold
_CONTROL_OR_TAB = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")
# a complete string (skipped whole), a bracket, or the quote of a string that never ends
_JSON_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]|"', re.DOTALL)


def _named(char: str) -> str:
    code = ord(char)
    if code == 0:
        return "a NUL character (U+0000)"
    if 0xD800 <= code <= 0xDFFF:
        return f"a lone surrogate (U+{code:04X})"
    return f"a control character (U+{code:04X})"


def text_problem(value: str, *, controls: bool = False, tab: bool = True) -> str | None:
    """What in ``value`` cannot be stored (with ``controls``: or is a control character), or None."""
    pattern = (_CONTROL if tab else _CONTROL_OR_TAB) if controls else _UNSTORABLE
    found = pattern.search(value)
    return None if found is None else _named(found.group())


def check_text(value: str, what: str, *, controls: bool = False, tab: bool = True) -> str:
    """``value``, or Invalid naming ``what`` when it holds a character it may not hold."""
    problem = text_problem(value, controls=controls, tab=tab)
    if problem is not None:
        raise errors.Invalid(f"{what} contains {problem}, which is not accepted.")
    return value


def check_headers(headers: Iterable[tuple[str, Any]]) -> None:
    """Header names and (string) values: nothing unstorable, no control characters but tab in values."""
    for name, value in headers:
        shown = _shown(name)
        check_text(name, f"A header name ({shown})", controls=True, tab=False)
        if isinstance(value, str):
            check_text(value, f"The header {shown}", controls=True)


def check_query(params: Mapping[str, list[str]]) -> None:
    for name, values in params.items():
        shown = _shown(name)
        check_text(name, f"A query parameter name ({shown})")
        for value in values:
            check_text(value, f"The query parameter {shown}")


def check_path(parts: Mapping[str, str]) -> None:
    for name, value in parts.items():
        check_text(value, f"The {name} in the path", controls=True, tab=False)


def _shown(name: str) -> str:
    return ascii(name[:64])


# -- JSON -------------------------------------------------------------------------


class _Refused(ValueError):
    pass


def json_depth_exceeds(text: str, limit: int) -> bool:
    """Whether ``text`` nests more than ``limit`` arrays/objects; a scan, no recursion, strings skipped.

    Invalid JSON is not judged here (the parser says what is wrong with it)."""
    if text.count("[") + text.count("{") <= limit:
        return False
    depth = 0
    for token in _JSON_TOKEN.finditer(text):
        char = token.group()
        if char in "[{":
            depth += 1
            if depth > limit:
                return True
        elif char in "]}":
            depth -= 1
        elif char == '"':
            return False  # a string that never ends: not JSON
    return False


def _constant(name: str) -> Any:
    raise _Refused(f"{name} is not a JSON number")


def _float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise _Refused(f"the number {text[:40]} is too large")
    return value


def _int(text: str) -> int:
    if len(text) - text.startswith("-") > MAX_INTEGER_DIGITS:
        raise _Refused(f"an integer has more than {MAX_INTEGER_DIGITS} digits")
    return int(text)


def parse_json(raw: bytes | str, what: str, *, depth: int = MAX_JSON_DEPTH) -> Any:
    """A JSON document that every backend can store; InvalidBody saying what is wrong otherwise."""
    if isinstance(raw, bytes):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise errors.InvalidBody(f"{what} is not UTF-8 text (byte {exc.start}).") from None
    else:
        text = raw
    if json_depth_exceeds(text, depth):
        raise errors.InvalidBody(f"{what} nests arrays and objects more than {depth} deep.")
    try:
        document = json.loads(text, parse_constant=_constant, parse_float=_float, parse_int=_int)
    except _Refused as exc:
        raise errors.InvalidBody(f"{what} is not accepted: {exc}.") from None
    except (ValueError, RecursionError) as exc:  # RecursionError: cannot happen after the scan, kept as a guard
        raise errors.InvalidBody(f"{what} is not valid JSON: {exc}.") from None
    check_document(document, what)
    return document


def check_document(document: Any, what: str) -> None:
    """Every string and key of a parsed document is storable (iterative: any depth is fine)."""
    stack: list[Any] = [document]
    while stack:  # the fast pass: no paths kept
        value = stack.pop()
        if isinstance(value, str):
            if _UNSTORABLE.search(value):
                break
        elif isinstance(value, dict):
            if any(_UNSTORABLE.search(key) for key in value):
                break
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
        elif isinstance(value, float) and not math.isfinite(value):  # built in Python, not parsed
            break
    else:
        return
    _explain(document, what)


def _explain(document: Any, what: str) -> None:
    """The second pass, for a document the first found wanting: where, and what."""
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(document, ())]
    while stack:
        value, path = stack.pop()
        if isinstance(value, str):
            problem = text_problem(value)
            if problem is not None:
                raise errors.InvalidBody(f"{what} has a string{_at(path)} that contains {problem}.")
        elif isinstance(value, dict):
            for key, item in value.items():
                problem = text_problem(key)
                if problem is not None:
                    raise errors.InvalidBody(f"{what} has a key{_at(path)} that contains {problem}.")
                stack.append((item, (*path, key)))
        elif isinstance(value, list):
            stack.extend((item, (*path, index)) for index, item in enumerate(value))
        elif isinstance(value, float) and not math.isfinite(value):
            raise errors.InvalidBody(f"{what} has a number{_at(path)} that is not finite.")
    raise AssertionError("unreachable: the first pass found a problem")  # pragma: no cover


def _at(path: tuple[str | int, ...]) -> str:
    if not path:
        return ""
    shown = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in path).lstrip(".")
    return f" at {shown[:120]!a}"
