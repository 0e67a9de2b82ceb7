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
- JSON documents (REST bodies, websocket frames) must be UTF-8 and nest at
  most :data:`MAX_JSON_DEPTH` arrays and objects (a websocket frame one
  more, for its envelope: the same documents fit both transports). The
  parser stops safely (RecursionError) at Python's recursion limit; below
  it, the parsed document is measured level by level, only when it has
  more brackets than the limit. They may not use NaN or Infinity (not
  JSON), numbers too large for a double (``1e999`` would read as infinity)
  or integers of more than :data:`MAX_INTEGER_DIGITS` digits.
- Strings are checked where they can hold NUL or a surrogate at all: a
  ``\\u`` escape of one, or a raw surrogate in text that was not UTF-8
  bytes (the parser refuses raw control characters in strings). A
  document without either is not walked.
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
"""Digits of one JSON integer: Python's own limit for converting text to int, which the parser applies."""
MAX_BODY_BYTES = 1024 * 1024
"""Bytes of one REST request body."""

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f\ud800-\udfff]")  # HTTP's CTLs but tab, which header values may hold
_CONTROL_OR_TAB = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")
# how NUL or a surrogate can reach a parsed document from JSON text: a \u escape of one (or a raw surrogate)
_ESCAPED_UNSTORABLE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")
_SURROGATE = re.compile("[\ud800-\udfff]")
_CONTAINERS = (dict, list)


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
        if _CONTROL_OR_TAB.search(name) or (isinstance(value, str) and _CONTROL.search(value)):
            shown = _shown(name)  # the sentence is made only for what is refused
            check_text(name, f"A header name ({shown})", controls=True, tab=False)
            check_text(value, f"The header {shown}", controls=True)


def check_query(params: Mapping[str, list[str]]) -> None:
    for name, values in params.items():
        if _UNSTORABLE.search(name) or any(_UNSTORABLE.search(value) for value in values):
            shown = _shown(name)
            check_text(name, f"A query parameter name ({shown})")
            for value in values:
                check_text(value, f"The query parameter {shown}")


def check_path(parts: Mapping[str, str]) -> None:
    for name, value in parts.items():
        if _CONTROL_OR_TAB.search(value):
            check_text(value, f"The {name} in the path", controls=True, tab=False)


def _shown(name: str) -> str:
    return ascii(name[:64])


# -- JSON -------------------------------------------------------------------------


class _Refused(ValueError):
    pass


class NotJSON(errors.InvalidBody):
    """Text that does not parse as JSON; ``reason`` is the parser's."""

    def __init__(self, what: str, reason: str) -> None:
        super().__init__(f"{what} is not valid JSON: {reason}.")
        self.reason = reason


def nests_deeper(document: Any, limit: int) -> bool:
    """Whether a parsed document nests more than ``limit`` arrays/objects (level by level, no recursion)."""
    level = [document] if isinstance(document, _CONTAINERS) else []
    for _ in range(limit):
        level = [child for container in level
                 for child in (container.values() if isinstance(container, dict) else container)
                 if isinstance(child, _CONTAINERS)]
        if not level:
            return False
    return bool(level)


def _constant(name: str) -> Any:
    raise _Refused(f"{name} is not a JSON number")


def _float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise _Refused(f"the number {text[:40]} is too large")
    return value


def parse_json(raw: bytes | str, what: str, *, depth: int = MAX_JSON_DEPTH) -> Any:
    """A JSON document that every backend can store; InvalidBody saying what is wrong otherwise."""
    if isinstance(raw, bytes):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise errors.InvalidBody(f"{what} is not UTF-8 text (byte {exc.start}).") from None
        raw_surrogate = False  # UTF-8 cannot encode one
    else:
        text = raw
        raw_surrogate = not text.isascii() and _SURROGATE.search(text) is not None
    try:
        document = json.loads(text, parse_constant=_constant, parse_float=_float)
    except _Refused as exc:
        raise errors.InvalidBody(f"{what} is not accepted: {exc}.") from None
    except RecursionError:  # nested beyond Python's recursion limit: the parser stops there
        raise _too_deep(what, depth) from None
    except json.JSONDecodeError as exc:
        raise NotJSON(what, str(exc)) from None
    except ValueError:  # not a syntax error: int() refuses more digits than Python converts
        raise errors.InvalidBody(
            f"{what} is not accepted: an integer has more than {MAX_INTEGER_DIGITS} digits.") from None
    if text.count("[") + text.count("{") > depth and nests_deeper(document, depth):
        raise _too_deep(what, depth)
    if raw_surrogate or _ESCAPED_UNSTORABLE.search(text):
        check_document(document, what)
    return document


def _too_deep(what: str, depth: int) -> errors.InvalidBody:
    return errors.InvalidBody(f"{what} nests arrays and objects more than {depth} deep.")


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
