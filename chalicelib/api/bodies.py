"""Request bodies checked against the JSON Schemas the API publishes.

The schemas are those of :mod:`chalicelib.openapi` (``GET /openapi.json``),
so what the document says and what the service enforces cannot drift: a
body that breaks its schema is refused here, on either transport, with a
400 naming the field, what it must be and what it got. What a schema cannot
say (a subscriber URI's shape, reserved metadata, retry policies, the size
of a post) the api operations check after this.

The schemas are compiled with fastjsonschema, once per container and
schema, on first use, rather than with ``jsonschema``. Measured after the
app's own imports (``make bench-validation``): ``jsonschema`` costs 35 ms
of import and 28 µs to check a one-message post (210 µs for ten), about
what serving the rest of the request costs; fastjsonschema costs 1.3 ms of
import, 6 ms to compile a schema the first time, then 2 µs (13 µs).
The schemas keep to keywords that draft 7 and draft 2020-12 (OpenAPI 3.1's
dialect) read alike, and a test checks both engines agree on them.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from chalicelib import errors
from chalicelib.config import Limits
from chalicelib.openapi import EXPECTED, schemas

if TYPE_CHECKING:
    from fastjsonschema import JsonSchemaValueException

Check = Callable[[Any], Any]
_TYPES = {"integer": "an integer", "number": "a number", "string": "a string", "object": "a JSON object",
          "array": "a JSON array", "boolean": "true or false", "null": "null"}


@functools.lru_cache(maxsize=64)
def compiled(name: str, limits: Limits) -> Check:
    """The check of schema ``name`` (a component of the OpenAPI document) for these limits."""
    import fastjsonschema

    shared = schemas(limits)
    document = {"$schema": "http://json-schema.org/draft-07/schema#", "definitions": shared, **shared[name]}
    text = json.dumps(document).replace("#/components/schemas/", "#/definitions/")
    check: Check = fastjsonschema.compile(json.loads(text), use_formats=False)
    return check


def check(name: str, body: Any, limits: Limits, what: str) -> None:
    """Raise InvalidBody, saying what is wrong, unless ``body`` fits schema ``name``."""
    validate = compiled(name, limits)
    from fastjsonschema import JsonSchemaValueException

    try:
        validate(body)
    except JsonSchemaValueException as exc:
        raise errors.InvalidBody(sentence(exc, what)) from None


def whole(value: Any) -> Any:
    """An integer field as an int: JSON Schema counts 120.0 as an integer, and so does the schema check."""
    return int(value) if isinstance(value, float) else value


def _shown(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _type_of(value: Any) -> str:
    if isinstance(value, bool):
        return "true or false"
    for python, name in ((dict, "an object"), (list, "an array"), (str, "a string"), (int, "an integer"),
                         (float, "a number")):
        if isinstance(value, python):
            return name
    return "null"


def _where(exc: JsonSchemaValueException, what: str) -> str:
    """The field as a person writes it: ``messages[0].ttl``; the body itself is ``what``."""
    name = str(exc.name or "data").removeprefix("data")
    if not name:
        return what
    return what + name if name.startswith("[") else name.removeprefix(".")


def sentence(exc: JsonSchemaValueException, what: str) -> str:
    """What is wrong, as a sentence: the field, what it must be, what it is."""
    where, rule, value = _where(exc, what), exc.rule, exc.value
    definition: dict[str, Any] = exc.definition if isinstance(exc.definition, dict) else {}
    hint = definition.get(EXPECTED)
    if rule == "type":
        wanted = definition.get("type")
        kinds = wanted if isinstance(wanted, list) else [wanted]
        named = hint or " or ".join(_TYPES.get(str(kind), str(kind)) for kind in kinds)
        return f"{where} must be {named}, not {_type_of(value)}."
    if rule in ("minimum", "maximum"):
        low, high = definition.get("minimum"), definition.get("maximum")
        if low is not None and high is not None:
            return f"{where} must be between {low} and {high}; got {_shown(value)}."
        return f"{where} must be at {'least' if rule == 'minimum' else 'most'} {exc.rule_definition}; got {value}."
    if rule == "required":
        missing = [key for key in exc.rule_definition if not isinstance(value, dict) or key not in value]
        return f"{where} needs {', '.join(json.dumps(key) for key in missing)}."
    if rule == "additionalProperties":
        known = sorted(definition.get("properties", {}))
        unknown = sorted(key for key in (value if isinstance(value, dict) else {}) if key not in known)
        return f"{where} has no {', '.join(_shown(key) for key in unknown)}: use {', '.join(known)}."
    if rule == "minProperties":
        return f"{where} is empty: say what to change ({', '.join(sorted(definition.get('properties', {})))})."
    if rule == "propertyNames":
        names = definition.get("propertyNames", {})
        bad = [key for key in (value if isinstance(value, dict) else {})
               if not re.search(str(names.get("pattern", "")), key)]
        wanted = names.get(EXPECTED) or f"a name matching {names.get('pattern')}"
        return f"{where}: {_shown(bad[0] if bad else '')} is not {wanted}."
    if rule == "maxProperties":
        return f"{where} may have at most {exc.rule_definition} entries; it has {len(value)}."
    if rule == "minItems":
        return f"{where} must list at least {exc.rule_definition} item(s); got {len(value)}."
    if rule == "maxItems":
        return f"{where} may list at most {exc.rule_definition} item(s); got {len(value)}."
    if rule == "enum":
        return f"{where} must be one of {', '.join(map(str, exc.rule_definition))}; got {_shown(value)}."
    if rule == "pattern":
        wanted = hint or f"a string matching {definition.get('pattern')}"
        return f"{where} must be {wanted}; got {_shown(value)}."
    if rule in ("minLength", "maxLength"):
        low, high = definition.get("minLength", 0), definition.get("maxLength")
        size = f"{low} to {high} characters long" if high is not None else f"at least {low} characters long"
        return f"{where} must be {size}; got {len(value)}."
    return f"{where} is not valid ({exc.message.replace('data.', '').replace('data', 'the body')})."
