"""Subscription options and mailto subscribers: what a subscriber may configure.

Each check raises :class:`chalicelib.errors.InvalidBody` with a message that
names the offending field or header. The notifier runs the same checks
before delivering, so a subscription stored before a rule existed cannot
slip a line break into an HTTP request or an email header.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from chalicelib import errors

SIGNATURE_HEADER = "X-Zaqar-Signature"
DELIVERY_ID_HEADER = "X-Zaqar-Delivery-Id"

MAX_HEADERS = 32
MAX_HEADER_NAME = 256
MAX_HEADER_VALUE = 4096
MAX_POST_DATA = 16 * 1024
MAX_SUBJECT = 200

# Framing and hop-by-hop headers belong to the HTTP client: a subscriber that
# set them could split or smuggle requests, or talk to a proxy on our behalf.
CLIENT_HEADERS = frozenset({
    "host", "content-length", "transfer-encoding", "connection", "keep-alive", "upgrade", "te",
    "trailer", "proxy-authorization", "proxy-connection", "expect",
})
OUR_HEADERS = frozenset({SIGNATURE_HEADER.lower(), DELIVERY_ID_HEADER.lower()})

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 tchar
_FIELD_VALUE = re.compile(r"[\t\x20-\x7e]*")
_ADDRESS = re.compile(r"[^@\s,;<>\"\[\]]+@[^@\s,;<>\".\[\]]+(\.[^@\s,;<>\".\[\]]+)*")  # no address literals
_RECIPIENT_FIELDS = frozenset({"to", "cc", "bcc"})


def check_post_headers(value: Any) -> dict[str, str]:
    """``options.post_headers``: a JSON object of header names to values that are safe to send as they are."""
    if not isinstance(value, Mapping):
        raise errors.InvalidBody("options.post_headers must be a JSON object mapping header names to string values.")
    if len(value) > MAX_HEADERS:
        raise errors.InvalidBody(f"options.post_headers may set at most {MAX_HEADERS} headers; it sets {len(value)}.")
    seen: set[str] = set()
    for name, header_value in value.items():
        _check_header_name(name, seen)
        _check_header_value(name, header_value)
    return dict(value)


def _check_header_name(name: Any, seen: set[str]) -> None:
    if not isinstance(name, str) or not 1 <= len(name) <= MAX_HEADER_NAME or not _TOKEN.fullmatch(name):
        raise errors.InvalidBody(
            f"options.post_headers: {str(name)[:80]!r} is not a valid header name (1 to {MAX_HEADER_NAME} "
            "ASCII letters, digits or !#$%&'*+-.^_`|~)."
        )
    lowered = name.lower()
    if lowered in CLIENT_HEADERS:
        raise errors.InvalidBody(f"options.post_headers may not set {name}: the HTTP client sets it.")
    if lowered in OUR_HEADERS:
        raise errors.InvalidBody(f"options.post_headers may not set {name}: the notifier sets it on every delivery.")
    if lowered in seen:
        raise errors.InvalidBody(f"options.post_headers sets {name} twice (header names are case-insensitive).")
    seen.add(lowered)


def _check_header_value(name: str, value: Any) -> None:
    if not isinstance(value, str):
        raise errors.InvalidBody(f"options.post_headers: the value of {name} must be a string.")
    if len(value) > MAX_HEADER_VALUE:
        raise errors.InvalidBody(
            f"options.post_headers: the value of {name} may be at most {MAX_HEADER_VALUE} characters long; "
            f"it has {len(value)}."
        )
    if not _FIELD_VALUE.fullmatch(value):
        bad = next(c for c in value if not _FIELD_VALUE.fullmatch(c))
        raise errors.InvalidBody(
            f"options.post_headers: the value of {name} may only contain printable ASCII, spaces and tabs; "
            f"it contains {bad!r}."
        )


def check_post_data(value: Any) -> str | None:
    """``options.post_data``: a template of at most MAX_POST_DATA bytes (UTF-8), or None."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise errors.InvalidBody('options.post_data must be a string template (its "$zaqar_message$" is replaced).')
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError as exc:
        raise errors.InvalidBody("options.post_data is not valid Unicode text (it contains a lone surrogate).") from exc
    if size > MAX_POST_DATA:
        raise errors.InvalidBody(f"options.post_data may be at most {MAX_POST_DATA} bytes (UTF-8); it has {size}.")
    return value


def mail_parts(uri: str, options: Mapping[str, Any]) -> tuple[str, str | None]:
    """(recipient, subject) of a mailto subscriber that :func:`check_mailto` accepted.

    The subject is the URI's ``?subject=`` (decoded like a query string, as
    Zaqar does: ``+`` is a space), else ``options.subject``, else None.
    """
    parts = urlsplit(uri)
    subjects = _subjects(parts.query)
    if subjects and subjects[0]:
        return unquote(parts.path), subjects[0]
    fallback = options.get("subject")
    return unquote(parts.path), fallback if isinstance(fallback, str) and fallback else None


def check_mailto(uri: str, options: Mapping[str, Any], *, sender: str | None, allowed_senders: frozenset[str]) -> None:
    """A mailto subscriber and its options: one recipient, a safe subject, an allowed sender."""
    try:
        parts = urlsplit(uri)
    except ValueError as exc:
        raise errors.InvalidBody(f"subscriber {uri[:80]!r} cannot be parsed ({exc}).") from exc
    if parts.scheme.lower() != "mailto" or parts.netloc:
        raise errors.InvalidBody(f"subscriber {uri[:80]!r} is not a mailto URI (mailto:user@example.com).")
    recipient = unquote(parts.path)
    if "," in recipient or any(name.lower() in _RECIPIENT_FIELDS for name, _ in _fields(parts.query)):
        raise errors.InvalidBody("A mailto subscriber may name exactly one recipient (no commas, to=, cc= or bcc=).")
    if _text_problem(recipient, 320) or not _ADDRESS.fullmatch(recipient):
        raise errors.InvalidBody(f"subscriber: {recipient[:80]!r} is not an email address (local@domain).")
    subjects = _subjects(parts.query)
    if len(subjects) > 1:
        raise errors.InvalidBody("A mailto subscriber may give subject= only once.")
    for subject in subjects:
        _check_subject(subject, "The subject= of the mailto subscriber")
    if options.get("subject") is not None:
        _check_subject(options["subject"], "options.subject")
    if options.get("from") is not None:
        _check_sender(options["from"], sender=sender, allowed_senders=allowed_senders)


def _fields(query: str) -> list[tuple[str, str]]:
    return parse_qsl(query, keep_blank_values=True)


def _subjects(query: str) -> list[str]:
    return [value for name, value in _fields(query) if name.lower() == "subject"]


def _check_subject(value: Any, what: str) -> None:
    if not isinstance(value, str):
        raise errors.InvalidBody(f"{what} must be a string.")
    problem = _text_problem(value, MAX_SUBJECT)
    if problem is not None:
        raise errors.InvalidBody(f"{what} {problem}.")


def _check_sender(value: Any, *, sender: str | None, allowed_senders: frozenset[str]) -> None:
    if not isinstance(value, str):
        raise errors.InvalidBody("options.from must be a string (an email address).")
    problem = _text_problem(value, 320)
    if problem is not None:
        raise errors.InvalidBody(f"options.from {problem}.")
    allowed = sorted(({sender} if sender else set()) | set(allowed_senders), key=str.lower)
    if value.lower() in {a.lower() for a in allowed}:
        return
    if not allowed:
        raise errors.InvalidBody("options.from cannot be used: this service has no email sender configured.")
    raise errors.InvalidBody(f"options.from {value[:80]!r} is not an allowed sender; allowed: {', '.join(allowed)}.")


def _text_problem(text: str, max_len: int) -> str | None:
    """Why ``text`` cannot go into an email header, or None."""
    if any(unicodedata.category(c) in {"Cc", "Zl", "Zp"} for c in text):
        return "may not contain line breaks or other control characters"
    if len(text) > max_len:
        return f"may be at most {max_len} characters long; it has {len(text)}"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return "is not valid Unicode text (it contains a lone surrogate)"
    return None
