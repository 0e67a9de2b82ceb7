"""Subscription filter policies with Amazon SNS's syntax and semantics.

Zaqar subscriptions carry ``options.filter_policy`` and ``options.filter_policy_scope``; this module
validates such a policy once (:func:`compile_policy`, which raises :class:`PolicyError` naming the
problem and where it is) and matches messages against the compiled form (:meth:`FilterPolicy.matches`).
Pure and stdlib-only; ``ipaddress`` is imported only by a policy that uses ``cidr``.

Scopes
    ``MessageAttributes`` (the default) applies the policy to the message's attributes, which map a name
    to one of our equivalents of SNS's types: a ``str`` is a String, an ``int``/``float`` (never a
    ``bool``) is a Number, a ``list[str]`` is a String.Array whose elements are matched one by one, a
    ``bool`` matches the literals ``true``/``false``. An attribute whose value is ``None`` counts as
    absent. ``MessageBody`` applies it to the body when that is a JSON object (a ``dict``); nested policy
    objects follow nested body objects. Any other body matches no policy that has keys.

Matching
    The keys of a policy (and of each nested object, and of each ``$or`` alternative) are ANDed; the
    conditions in one key's array are ORed. A key matches when at least one of its conditions matches
    at least one of the values found there:

    * a string, number, ``true``, ``false`` or ``null`` matches that exact value, type included: ``"5"``
      is not ``5``, ``1`` is not ``true``, but ``5`` is ``5.0``; strings are case-sensitive;
    * ``prefix``, ``suffix``, ``equals-ignore-case`` and ``cidr`` match strings only, ``numeric`` numbers
      only (message numbers are compared as given, without rounding them to five decimals);
    * ``anything-but`` needs the key to be present (the documented way to also accept its absence is to
      add ``{"exists": false}`` to the array) and then matches any value its argument would not match,
      whatever the value's type (``null`` included, as EventBridge does in bodies);
    * ``exists: true`` needs a value that is neither ``null`` nor empty (``""``, ``[]``, or an object:
      ``exists`` only looks at leaves); ``exists: false`` is its exact opposite, absence included.

    Arrays: a String.Array attribute, and an array in the body at a leaf, match when any element matches
    (nested arrays are flattened). The documented exception is ``anything-but`` on a String.Array: it
    matches only when no element is excluded. In a body, an array under a nested policy object is
    matched element by element: all of that object's keys must match within one element. (Our reading:
    SNS does not document it; it is the array consistency of AWS's event-matching engine, and what SNS
    was seen to do with S3's ``Records[]``.)

    SNS documents that "exists": false "only matches if at least one attribute is present": a message
    with no attributes at all (``None`` or empty) matches no attributes-scope policy that has keys. In
    body scope an empty object is an object, and ``exists: false`` matches it.

``$or``
    As SNS documents it, ``"$or"`` is an OR only when its value is an array of at least two objects none of
    whose keys is an operator name; otherwise it is an ordinary key named ``$or`` (so ``{"$or": [{"a":
    ["x"]}]}`` is refused: its one object is read as a condition with the unknown operator ``a``).

Constraints (the refusals, checked in this order)
    * the policy is a JSON object (a ``dict``, or a ``str`` holding one);
    * at most 256 KB (262,144 bytes) of compact UTF-8 JSON;
    * every value is an array of conditions, non-empty, or (``MessageBody`` only) an object of nested keys;
    * each condition is a string, a number, ``true``, ``false``, ``null`` or an object with exactly one
      known operator whose argument has the right type; numbers lie within -1e9..1e9 with at most five
      decimal places; ``numeric`` is ``["=", n]`` or one or two comparisons, a lower bound (``>``/``>=``)
      before an upper one (``<``/``<=``), the lower below the upper; ``anything-but`` takes a string, a
      number, a non-empty list of strings or of numbers (not mixed), or ``{"prefix": "..."}``: SNS
      documents only ``prefix`` inside ``anything-but`` and refuses ``suffix`` there;
    * at most 5 keys. SNS counts "attribute names": in ``MessageAttributes`` every key (policies are
      flat there); in ``MessageBody`` only the top-level (parent) keys, nested keys not counted, as the
      current SNS guide spells out. ``$or`` itself is not a name; the keys of its alternatives are names
      of the level the ``$or`` sits at, so a top-level ``$or`` adds its alternatives' distinct keys;
    * at most 150 combinations. SNS multiplies the number of values in each array; a nested array's
      size is multiplied by its depth (SNS's own example, ``{"a": {"b": {"c": [4 values]}}, "d": {"e":
      [3 values]}}``, gives 3 x 4 x 2 x 3 = 72); a ``$or`` contributes the sum of its alternatives'
      combinations. This reproduces what SNS accepts and refuses: 150 and 152 for flat ``$or`` policies,
      160 for a nested one.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, Final, Literal, TypeAlias

__all__ = ["AttributeValue", "FilterPolicy", "PolicyError", "Scope", "compile_policy"]

Scope = Literal["MessageAttributes", "MessageBody"]
AttributeValue: TypeAlias = str | int | float | bool | list[str]

SCOPES: Final = ("MessageAttributes", "MessageBody")
MAX_KEYS: Final = 5
MAX_COMBINATIONS: Final = 150
MAX_BYTES: Final = 256 * 1024
MAX_MAGNITUDE: Final = 1e9
MAX_DECIMALS: Final = 5
OPERATORS: Final = frozenset({"anything-but", "cidr", "equals-ignore-case", "exists", "numeric", "prefix", "suffix"})
OR: Final = "$or"

_ROOT = "filter_policy"
_LOWER = (">", ">=")
_UPPER = ("<", "<=")
_MISSING: Final = object()
_OR_HINT = (' ("$or" is an ordinary key here: it is an OR only with an array of at least 2 objects'
            " whose keys are not operator names)")


class PolicyError(ValueError):
    """A filter policy that SNS would refuse; the message names the problem and where it is."""


# --- the compiled form ---------------------------------------------------------------------------------------

Numeric = Callable[[float], bool]


class _Values:
    """A set of positive conditions, precompiled: is one message value matched by any of them?"""

    __slots__ = ("false", "folded", "networks", "null", "numbers", "prefixes", "ranges", "strings", "suffixes",
                 "true")

    def __init__(self) -> None:
        self.strings: frozenset[str] = frozenset()
        self.numbers: frozenset[float] = frozenset()
        self.folded: frozenset[str] = frozenset()  # equals-ignore-case, lower-cased
        self.prefixes: tuple[str, ...] = ()
        self.suffixes: tuple[str, ...] = ()
        self.ranges: tuple[Numeric, ...] = ()
        self.networks: tuple[Any, ...] = ()  # ipaddress networks
        self.true = False
        self.false = False
        self.null = False

    def test(self, value: object) -> bool:
        if isinstance(value, str):
            if value in self.strings:
                return True
            if self.prefixes and value.startswith(self.prefixes):
                return True
            if self.suffixes and value.endswith(self.suffixes):
                return True
            if self.folded and value.lower() in self.folded:
                return True
            return bool(self.networks) and _in_networks(value, self.networks)
        if isinstance(value, bool):
            return self.true if value else self.false
        if isinstance(value, (int, float)):
            if value in self.numbers:
                return True
            return any(check(value) for check in self.ranges)
        if value is None:
            return self.null
        return False


class _Leaf:
    """One key's array of conditions."""

    __slots__ = ("every", "excluded", "exists_false", "exists_true", "values")

    def __init__(self, values: _Values | None, excluded: tuple[_Values, ...], exists_true: bool,
                 exists_false: bool, every: bool) -> None:
        self.values = values  # the positive conditions, None when there are none
        self.excluded = excluded  # one per anything-but condition: what it excludes
        self.exists_true = exists_true
        self.exists_false = exists_false
        self.every = every  # anything-but on an array needs every element to pass (String.Array attributes)

    def match(self, present: bool, raw: object) -> bool:
        if not present:
            return self.exists_false
        array = True
        if isinstance(raw, list):
            found: list[object] | tuple[object, ...] = _scalars(raw)
        elif isinstance(raw, dict):
            found = ()  # an object is not a leaf
        else:
            found, array = (raw,), False
        if self.exists_true or self.exists_false:
            filled = any(value is not None and value != "" for value in found)
            if filled and self.exists_true:
                return True
            if not filled and self.exists_false:
                return True
        values = self.values
        if values is not None:
            for value in found:
                if values.test(value):
                    return True
        for excluded in self.excluded:
            if array and self.every:
                if found and not any(excluded.test(value) for value in found):
                    return True
            elif any(not excluded.test(value) for value in found):
                return True
        return False


class _Node:
    """An object of the policy: its leaves, its nested objects (body scope) and its ``$or`` groups, ANDed."""

    __slots__ = ("children", "leaves", "none_is_absent", "ors")

    def __init__(self, leaves: tuple[tuple[str, _Leaf], ...], children: tuple[tuple[str, _Node], ...],
                 ors: tuple[tuple[_Node, ...], ...], none_is_absent: bool) -> None:
        self.leaves = leaves
        self.children = children
        self.ors = ors
        self.none_is_absent = none_is_absent

    def match(self, context: Mapping[str, object] | None) -> bool:
        for key, leaf in self.leaves:
            raw = _MISSING if context is None else context.get(key, _MISSING)
            present = raw is not _MISSING and not (raw is None and self.none_is_absent)
            if not leaf.match(present, raw):
                return False
        for key, child in self.children:
            raw = _MISSING if context is None else context.get(key, _MISSING)
            if isinstance(raw, dict):
                if not child.match(raw):
                    return False
            elif isinstance(raw, list) and (objects := _objects(raw)):
                if not any(child.match(item) for item in objects):
                    return False
            elif not child.match(None):  # nothing below: every leaf of the child is absent
                return False
        return all(any(alternative.match(context) for alternative in group) for group in self.ors)


class FilterPolicy:
    """A compiled filter policy; build it with :func:`compile_policy`.

    ``scope`` is the scope it was compiled for, ``key_names`` the keys SNS counts against the limit of 5,
    ``combinations`` the complexity SNS limits to 150.
    """

    __slots__ = ("_root", "combinations", "key_names", "scope")

    def __init__(self, root: _Node | None, scope: Scope, key_names: tuple[str, ...], combinations: int) -> None:
        self._root = root
        self.scope: Scope = scope
        self.key_names = key_names
        self.combinations = combinations

    def matches(self, *, attributes: Mapping[str, AttributeValue] | None, body: object) -> bool:
        """Whether the message passes the policy: its attributes in MessageAttributes scope, else its body."""
        root = self._root
        if root is None:  # the empty policy {} filters nothing
            return True
        if self.scope == "MessageAttributes":
            if not attributes:  # SNS: an empty set of attributes matches no policy, not even "exists": false
                return False
            return root.match(attributes)
        return isinstance(body, dict) and root.match(body)

    def __repr__(self) -> str:
        return f"<FilterPolicy {self.scope} keys={list(self.key_names)} combinations={self.combinations}>"


def _scalars(items: list[Any]) -> list[object]:
    """The leaf values of a JSON array: nested arrays flattened, objects left out."""
    found: list[object] = []
    for item in items:
        if isinstance(item, list):
            found.extend(_scalars(item))
        elif not isinstance(item, dict):
            found.append(item)
    return found


def _objects(items: list[Any]) -> list[Mapping[str, object]]:
    """The objects of a JSON array, nested arrays flattened."""
    found: list[Mapping[str, object]] = []
    for item in items:
        if isinstance(item, dict):
            found.append(item)
        elif isinstance(item, list):
            found.extend(_objects(item))
    return found


def _in_networks(value: str, networks: tuple[Any, ...]) -> bool:
    import ipaddress  # only policies with cidr pay for it

    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return False
    return any(address in network for network in networks)


# --- compiling -----------------------------------------------------------------------------------------------

def compile_policy(policy: object, scope: Scope = "MessageAttributes") -> FilterPolicy:
    """Validate ``policy`` (a JSON object, or a string of JSON holding one) for ``scope`` and compile it.

    Raises :class:`PolicyError` for anything SNS would refuse; see the module's docstring for the rules.
    """
    if scope not in SCOPES:
        raise PolicyError(f'filter_policy_scope: must be "MessageAttributes" or "MessageBody", not {_show(scope)}')
    if isinstance(policy, str):
        try:
            policy = json.loads(policy)
        except ValueError as exc:
            raise PolicyError(f"{_ROOT}: not valid JSON ({exc})") from None
    if not isinstance(policy, dict):
        raise PolicyError(f"{_ROOT}: must be a JSON object, not {_kind(policy)}")
    size = _size(policy)
    if size > MAX_BYTES:
        raise PolicyError(f"{_ROOT}: {size} bytes of JSON, at most {MAX_BYTES} (256 KB)")
    if not policy:
        return FilterPolicy(None, scope, (), 0)
    compiler = _Compiler(scope)
    names: dict[str, None] = {}
    root, combinations = compiler.node(policy, _ROOT, 1, names)
    if len(names) > MAX_KEYS:
        counted = "top-level keys" if scope == "MessageBody" else "keys"
        raise PolicyError(f"{_ROOT}: at most {MAX_KEYS} keys, this one has {len(names)}"
                          f" ({counted}: {', '.join(names)})")
    if combinations > MAX_COMBINATIONS:
        raise PolicyError(f"{_ROOT}: {combinations} combinations of values, at most {MAX_COMBINATIONS}")
    return FilterPolicy(root, scope, tuple(names), combinations)


def _size(policy: dict[Any, Any]) -> int:
    def refuse(value: object) -> object:
        raise PolicyError(f"{_ROOT}: holds {_kind(value)}, which is not a JSON value")

    try:
        text = json.dumps(policy, separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=refuse)
    except ValueError as exc:
        if isinstance(exc, PolicyError):
            raise
        raise PolicyError(f"{_ROOT}: not JSON ({exc})") from None
    return len(text.encode("utf-8", "surrogatepass"))


class _Compiler:
    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self.body = scope == "MessageBody"

    def node(self, obj: dict[Any, Any], path: str, depth: int,
             names: dict[str, None] | None) -> tuple[_Node, int]:
        """Compile one policy object; ``names`` collects the key names SNS counts (top level only)."""
        leaves: list[tuple[str, _Leaf]] = []
        children: list[tuple[str, _Node]] = []
        ors: list[tuple[_Node, ...]] = []
        combinations = 1
        for key, value in obj.items():
            if not isinstance(key, str):
                raise PolicyError(f"{path}: keys must be strings, not {_show(key)}")
            where = _child(path, key)
            if key == OR and _is_or(value):
                alternatives: list[_Node] = []
                total = 0
                for index, branch in enumerate(value):
                    if not branch:
                        raise PolicyError(f'{where}[{index}]: an alternative of "$or" needs at least one key')
                    alternative, count = self.node(branch, f"{where}[{index}]", depth, names)
                    alternatives.append(alternative)
                    total += count
                ors.append(tuple(alternatives))
                combinations *= total
                continue
            if names is not None:
                names[key] = None
            if isinstance(value, dict):
                if not self.body:
                    hint = _OR_HINT if key == OR else ""
                    raise PolicyError(f"{where}: nested objects need the MessageBody scope;"
                                      f" a MessageAttributes policy is flat{hint}")
                if not value:
                    raise PolicyError(f"{where}: an empty object; give it keys or remove it")
                child, count = self.node(value, where, depth + 1, None)
                children.append((key, child))
                combinations *= count
            elif isinstance(value, list):
                try:
                    leaves.append((key, self.leaf(value, where)))
                except PolicyError as exc:
                    if key == OR:
                        raise PolicyError(f"{exc}{_OR_HINT}") from None
                    raise
                combinations *= len(value) * depth
            else:
                also = " or an object of nested keys" if self.body else ""
                hint = _OR_HINT if key == OR else ""
                raise PolicyError(f"{where}: must be an array of conditions{also}, not {_kind(value)}{hint}")
        node = _Node(tuple(leaves), tuple(children), tuple(ors), none_is_absent=not self.body)
        return node, combinations

    def leaf(self, conditions: list[Any], path: str) -> _Leaf:
        if not conditions:
            raise PolicyError(f"{path}: the array of conditions is empty; give at least one")
        positive = _Builder()
        excluded: list[_Values] = []
        exists_true = exists_false = False
        for index, condition in enumerate(conditions):
            where = f"{path}[{index}]"
            if not isinstance(condition, dict):
                positive.literal(condition, where)
                continue
            if len(condition) != 1:
                have = ", ".join(_show(key) for key in condition) or "none"
                raise PolicyError(f"{where}: a condition object holds exactly one operator, this one has"
                                  f" {len(condition)} ({have})")
            ((operator, argument),) = condition.items()
            if operator in ("prefix", "suffix", "equals-ignore-case"):
                if not isinstance(argument, str):
                    raise PolicyError(f'{where}: "{operator}" needs a string, not {_kind(argument)}')
                positive.string_operator(operator, argument)
            elif operator == "anything-but":
                excluded.append(self.anything_but(argument, _child(where, operator)))
            elif operator == "numeric":
                check = self.numeric(argument, _child(where, operator), positive)
                if check is not None:
                    positive.ranges.append(check)
            elif operator == "exists":
                if not isinstance(argument, bool):
                    raise PolicyError(f'{where}: "exists" needs true or false, not {_kind(argument)}')
                if argument:
                    exists_true = True
                else:
                    exists_false = True
            elif operator == "cidr":
                positive.networks.append(_network(argument, where))
            else:
                known = ", ".join(sorted(OPERATORS))
                raise PolicyError(f"{where}: unknown operator {_show(operator)} (the operators are {known})")
        values = positive.build() if positive.used else None
        return _Leaf(values, tuple(excluded), exists_true, exists_false, every=not self.body)

    def anything_but(self, argument: object, path: str) -> _Values:
        excluded = _Builder()
        if isinstance(argument, dict):
            if len(argument) != 1 or "prefix" not in argument:
                other = next((key for key in argument if key != "prefix"), None)
                if other is None:
                    raise PolicyError(f'{path}: takes {{"prefix": "..."}} with exactly one key, this one has none')
                note = " (SNS supports only prefix there)" if other in OPERATORS else ""
                raise PolicyError(f'{path}: {_show(other)} is not supported inside "anything-but"{note};'
                                  ' only {"prefix": "..."} is')
            prefix = argument["prefix"]
            if not isinstance(prefix, str):
                raise PolicyError(f'{path}: "prefix" needs a string, not {_kind(prefix)}')
            if not prefix:
                raise PolicyError(f'{path}: an empty "prefix" would exclude every string')
            excluded.string_operator("prefix", prefix)
        elif isinstance(argument, list):
            if not argument:
                raise PolicyError(f'{path}: "anything-but" needs at least one value')
            strings = [item for item in argument if isinstance(item, str)]
            for index, item in enumerate(argument):
                if not isinstance(item, str) and not _is_number(item):
                    raise PolicyError(f"{path}[{index}]: the values of anything-but are strings or numbers,"
                                      f" not {_kind(item)}")
            if strings and len(strings) != len(argument):
                raise PolicyError(f"{path}: the values of anything-but are strings or numbers, not both")
            for index, item in enumerate(argument):
                excluded.literal(item, f"{path}[{index}]")
        elif isinstance(argument, str) or _is_number(argument):
            excluded.literal(argument, path)
        else:
            raise PolicyError(f'{path}: "anything-but" takes a string, a number, a list of strings or of numbers,'
                              f' or {{"prefix": "..."}}; not {_kind(argument)}')
        return excluded.build()

    def numeric(self, argument: object, path: str, positive: _Builder) -> Numeric | None:
        """Validate a numeric condition; ["=", n] joins the exact numbers (None), the rest becomes a check."""
        example = ' such as [">", 0, "<=", 100] or ["=", 5]'
        if not isinstance(argument, list):
            raise PolicyError(f'{path}: needs a list{example}, not {_kind(argument)}')
        if not argument:
            raise PolicyError(f"{path}: the list is empty; it needs a comparison and a number{example}")
        first = argument[0]
        if not isinstance(first, str) or first not in ("=", *_LOWER, *_UPPER):
            raise PolicyError(f"{path}[0]: {_show(first)} is not a comparison; use =, <, <=, > or >=")
        low = self._operand(argument, 1, first, path)
        if len(argument) == 2:
            if first == "=":
                positive.numbers.add(low)
                return None
            return _bound(first, low)
        if first == "=":
            raise PolicyError(f'{path}: "=" stands alone; it takes no second comparison')
        if first in _UPPER:
            raise PolicyError(f"{path}: put the lower bound (> or >=) first and the upper bound (< or <=) second")
        second = argument[2]
        if not isinstance(second, str) or second not in _UPPER:
            raise PolicyError(f"{path}[2]: the second comparison must be an upper bound, < or <=, not {_show(second)}")
        high = self._operand(argument, 3, second, path)
        if len(argument) > 4:
            raise PolicyError(f"{path}: at most two comparisons, a lower and an upper bound;"
                              f" this one has {len(argument)} items")
        if not low < high:
            raise PolicyError(f"{path}: the lower bound {_show(low)} must be below the upper bound {_show(high)}")
        return _between(first, low, second, high)

    @staticmethod
    def _operand(argument: list[Any], index: int, operator: str, path: str) -> float:
        if len(argument) <= index:
            raise PolicyError(f'{path}: "{operator}" needs a number after it')
        value = argument[index]
        if not _is_number(value):
            raise PolicyError(f'{path}[{index}]: "{operator}" needs a number, not {_kind(value)}')
        number: float = value  # kept as given (an int stays an int), so messages quote the policy
        _check_number(number, f"{path}[{index}]")
        return number


class _Builder:
    """Collects positive conditions before freezing them into :class:`_Values`."""

    def __init__(self) -> None:
        self.strings: set[str] = set()
        self.numbers: set[float] = set()
        self.folded: set[str] = set()
        self.prefixes: list[str] = []
        self.suffixes: list[str] = []
        self.ranges: list[Numeric] = []
        self.networks: list[Any] = []
        self.true = self.false = self.null = False
        self.literals = 0

    @property
    def used(self) -> bool:
        return bool(self.literals or self.folded or self.prefixes or self.suffixes or self.ranges
                    or self.networks or self.numbers)

    def literal(self, value: object, path: str) -> None:
        if isinstance(value, str):
            self.strings.add(value)
        elif isinstance(value, bool):
            if value:
                self.true = True
            else:
                self.false = True
        elif isinstance(value, (int, float)):
            _check_number(value, path)
            self.numbers.add(value)
        elif value is None:
            self.null = True
        elif isinstance(value, list):
            raise PolicyError(f"{path}: a condition cannot be an array; list the values in the key's own array")
        else:
            raise PolicyError(f"{path}: a condition is a string, a number, true, false, null or an object"
                              f" with one operator, not {_kind(value)}")
        self.literals += 1

    def string_operator(self, operator: str, argument: str) -> None:
        if operator == "prefix":
            self.prefixes.append(argument)
        elif operator == "suffix":
            self.suffixes.append(argument)
        else:
            self.folded.add(argument.lower())

    def build(self) -> _Values:
        values = _Values()
        values.strings = frozenset(self.strings)
        values.numbers = frozenset(self.numbers)
        values.folded = frozenset(self.folded)
        values.prefixes = tuple(self.prefixes)
        values.suffixes = tuple(self.suffixes)
        values.ranges = tuple(self.ranges)
        values.networks = tuple(self.networks)
        values.true, values.false, values.null = self.true, self.false, self.null
        return values


def _is_or(value: object) -> bool:
    """SNS reads "$or" as an OR only for an array of at least 2 objects with no operator among their keys."""
    return (isinstance(value, list) and len(value) >= 2
            and all(isinstance(branch, dict) and not OPERATORS.intersection(branch) for branch in value))


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_number(value: float, path: str) -> None:
    if not -MAX_MAGNITUDE <= value <= MAX_MAGNITUDE:
        raise PolicyError(f"{path}: {_show(value)} is outside the numbers SNS accepts, -1e9 to 1e9")
    if isinstance(value, float) and round(value, MAX_DECIMALS) != value:
        raise PolicyError(f"{path}: {_show(value)} has more than {MAX_DECIMALS} decimal places;"
                          f" SNS keeps {MAX_DECIMALS}")


def _network(argument: object, path: str) -> Any:
    if not isinstance(argument, str):
        raise PolicyError(f'{path}: "cidr" needs a string such as "10.0.0.0/24", not {_kind(argument)}')
    import ipaddress

    if argument.count("/") != 1:
        raise PolicyError(f'{path}: "cidr" needs an address and a prefix length such as "10.0.0.0/24",'
                          f" not {_show(argument)}")
    try:
        return ipaddress.ip_network(argument, strict=False)
    except ValueError as exc:
        raise PolicyError(f'{path}: "cidr": {_show(argument)} is not an IP network ({exc})') from None


def _bound(operator: str, limit: float) -> Numeric:
    if operator == ">":
        return lambda value: value > limit
    if operator == ">=":
        return lambda value: value >= limit
    if operator == "<":
        return lambda value: value < limit
    return lambda value: value <= limit


def _between(low_op: str, low: float, high_op: str, high: float) -> Numeric:
    if low_op == ">":
        if high_op == "<":
            return lambda value: low < value < high
        return lambda value: low < value <= high
    if high_op == "<":
        return lambda value: low <= value < high
    return lambda value: low <= value <= high


def _child(path: str, key: str) -> str:
    plain = key and not key[0].isdigit() and key.replace("_", "").replace("-", "").replace("$", "").isalnum()
    return f"{path}.{key}" if plain else f"{path}[{json.dumps(key, ensure_ascii=False)}]"


def _show(value: object) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _kind(value: object) -> str:
    """How a person would name a value in a message: the value itself when it is short."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, (str, int, float)) or value is None:
        return _show(value)
    return f"a {type(value).__name__}"
