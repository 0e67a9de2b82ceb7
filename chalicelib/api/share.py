"""``POST /v2/queues/{q}/share``: pre-signed URLs a holder can use without a token."""

from __future__ import annotations

import calendar
import time
from typing import Any

from chalicelib import errors, signing
from chalicelib.api import bodies, validation
from chalicelib.api.context import Caller, Services

METHODS = ("GET", "HEAD", "OPTIONS", "POST", "PUT", "DELETE", "PATCH")
DEFAULT_LIFETIME_S = 24 * 3600


def share(services: Services, caller: Caller, queue: str, body: Any) -> dict[str, Any]:
    validation.queue_name(queue, services.settings.limits)
    key = services.settings.signing_key
    if key is None:
        raise errors.Invalid("Pre-signed URLs need a SIGNING_KEY, which this deployment does not set.")
    body = {} if body is None else body
    bodies.check("Share", body, services.settings.limits, "The share request")
    paths = body.get("paths", ["messages"])
    methods = body.get("methods", ["GET"])
    refused = [m for m in methods if m.upper() not in METHODS]
    if refused:
        raise errors.InvalidBody(f"methods may only be {', '.join(METHODS)}; got {', '.join(refused)[:80]}.")
    expires = body.get("expires")
    now = time.time()
    if expires is None:
        expires_at = now + DEFAULT_LIFETIME_S
    else:
        try:
            expires_at = float(calendar.timegm(time.strptime(expires[:19], "%Y-%m-%dT%H:%M:%S")))
        except ValueError:
            raise errors.InvalidBody(f"expires {expires[:40]!r} is not an ISO 8601 time.") from None
        if expires_at <= now:
            raise errors.InvalidBody("expires must be in the future.")
    full = [f"/v2/queues/{queue}/{p}" for p in paths]
    signed = signing.sign(key, project=caller.project, paths=full, methods=[m.upper() for m in methods],
                          expires_ms=int(expires_at * 1000))
    return {"project": caller.project, "paths": signed.paths, "methods": signed.methods,
            "expires": signed.expires, "signature": signed.signature}
