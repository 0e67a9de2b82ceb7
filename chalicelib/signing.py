"""Zaqar's pre-signed URLs: an HMAC-SHA256 over paths, methods, project and expiry.

The signed text joins the sorted paths, the sorted methods, the project and
the expiry (``%Y-%m-%dT%H:%M:%S``, UTC) with the two characters backslash
and ``n`` between them (upstream formats it from a raw string), so URLs
signed by upstream tooling verify here and the other way round.
"""

from __future__ import annotations

import calendar
import dataclasses
import hashlib
import hmac
import time
from collections.abc import Sequence

_FORMAT = "%Y-%m-%dT%H:%M:%S"
_SEPARATOR = "\\n"


@dataclasses.dataclass(frozen=True)
class Signed:
    signature: str
    expires: str
    paths: list[str]
    methods: list[str]
    project: str


def _digest(key: str, paths: Sequence[str], methods: Sequence[str], project: str, expires: str) -> str:
    text = _SEPARATOR.join([",".join(sorted(paths)), ",".join(sorted(methods)), project, expires])
    return hmac.new(key.encode(), text.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()


def sign(key: str, *, project: str, paths: Sequence[str], methods: Sequence[str], expires_ms: int) -> Signed:
    expires = time.strftime(_FORMAT, time.gmtime(expires_ms / 1000))
    return Signed(_digest(key, paths, methods, project, expires), expires, sorted(paths), sorted(methods), project)


def verify(
    key: str,
    *,
    signature: str,
    project: str,
    paths: Sequence[str],
    methods: Sequence[str],
    expires: str,
    method: str,
    path: str,
    now: float | None = None,
) -> bool:
    """True when the signature matches, has not expired, and allows this method on this path."""
    try:
        deadline = calendar.timegm(time.strptime(expires[:19], _FORMAT))
    except ValueError:
        return False
    if deadline <= (time.time() if now is None else now):
        return False
    # as bytes: compare_digest refuses str with non-ASCII characters, and a signature may hold anything
    expected = _digest(key, paths, methods, project, expires).encode()
    if not hmac.compare_digest(expected, signature.encode("utf-8", "surrogatepass")):
        return False
    if method.upper() not in {m.upper() for m in methods}:
        return False
    # a signed path covers itself and what is below it (".../messages" covers ".../messages/<id>")
    return any(path == allowed or path.startswith(allowed.rstrip("/") + "/") for allowed in paths)


def subscription_secret(signing_key: str, subscription_id: str) -> str:
    """The per-subscription key a webhook receiver uses to verify our signatures."""
    return hmac.new(signing_key.encode(), f"subscription:{subscription_id}".encode(), hashlib.sha256).hexdigest()
