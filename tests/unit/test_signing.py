"""Pre-signed URLs (chalicelib.signing): what ``sign`` produces and what ``verify`` accepts.

The signature is recomputed here from upstream Zaqar's definition (zaqar/common/urls.py: an HMAC-SHA256 of
the sorted paths, the sorted methods, the project and the expiry ``%Y-%m-%dT%H:%M:%S`` in UTC, joined by the
two characters backslash and ``n``), so a URL signed by upstream's tooling verifies here. ``verify`` returns
True for a signature that matches, has not expired and covers the request's method and path; every way of
getting one of those wrong (expired, tampered signature, another key, another project, a method or path that
was not signed, a widened list of methods or paths, a moved expiry, an unreadable expiry) returns False, and
never raises. The Keystone integration test checks the same rules through the REST API; these run without it.
"""

from __future__ import annotations

import hashlib
import hmac
import time

import pytest

from chalicelib.signing import sign, verify

KEY = "the-deployments-signing-key"
PROJECT = "3f1c6a2e9b7d4e0a8c5b1d2f4a6e8c0b"
MESSAGES = "/v2/queues/shared/messages"
SUBSCRIPTIONS = "/v2/queues/shared/subscriptions"
EXPIRES_MS = 1_700_000_000_000
EXPIRES = "2023-11-14T22:13:20"  # 1700000000 in UTC
BEFORE = 1_700_000_000 - 1.0


def upstream_signature(key: str, paths: list[str], methods: list[str], project: str, expires: str) -> str:
    joined_paths, joined_methods = ",".join(sorted(paths)), ",".join(sorted(methods))
    body = rf"{joined_paths}\n{joined_methods}\n{project}\n{expires}"  # upstream's r'%(paths)s\n%(methods)s...'
    return hmac.new(key.encode(), body.encode(), hashlib.sha256).hexdigest()


def grant(**changes: object) -> dict[str, object]:
    """verify()'s arguments for a GET of the shared messages, signed for GET and POST; ``changes`` alter them."""
    signed = sign(KEY, project=PROJECT, paths=[MESSAGES, SUBSCRIPTIONS], methods=["POST", "GET"],
                  expires_ms=EXPIRES_MS)
    arguments: dict[str, object] = {"signature": signed.signature, "project": signed.project, "paths": signed.paths,
                                    "methods": signed.methods, "expires": signed.expires, "method": "GET",
                                    "path": MESSAGES, "now": BEFORE}
    arguments.update(changes)
    return arguments


def accepted(key: str = KEY, **changes: object) -> bool:
    return verify(key, **grant(**changes))  # type: ignore[arg-type]


# --- sign -------------------------------------------------------------------------------------------------------

def test_sign_computes_upstreams_signature_and_sorts_what_it_signs() -> None:
    signed = sign(KEY, project=PROJECT, paths=[SUBSCRIPTIONS, MESSAGES], methods=["POST", "GET"],
                  expires_ms=EXPIRES_MS)
    assert signed.expires == EXPIRES
    assert signed.paths == [MESSAGES, SUBSCRIPTIONS] and signed.methods == ["GET", "POST"]
    assert signed.project == PROJECT
    assert signed.signature == upstream_signature(KEY, [MESSAGES, SUBSCRIPTIONS], ["GET", "POST"], PROJECT, EXPIRES)
    # the separator is a backslash and an n, not a line break
    newline = "\n".join([f"{MESSAGES},{SUBSCRIPTIONS}", "GET,POST", PROJECT, EXPIRES])
    assert signed.signature != hmac.new(KEY.encode(), newline.encode(), hashlib.sha256).hexdigest()


def test_the_expiry_is_written_in_utc_whatever_the_local_time_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Pacific/Auckland")
    time.tzset()
    try:
        assert sign(KEY, project=PROJECT, paths=[MESSAGES], methods=["GET"], expires_ms=EXPIRES_MS).expires == EXPIRES
        assert accepted()
        assert not accepted(now=BEFORE + 1)  # the deadline is read back in UTC too
    finally:
        monkeypatch.undo()
        time.tzset()


# --- verify: accepted -------------------------------------------------------------------------------------------

def test_a_valid_signature_verifies_for_each_signed_method_and_path() -> None:
    for method in ("GET", "POST"):
        for path in (MESSAGES, SUBSCRIPTIONS):
            assert accepted(method=method, path=path), (method, path)


def test_an_upstream_signature_verifies() -> None:
    signature = upstream_signature(KEY, [MESSAGES], ["GET"], PROJECT, "2100-05-31T17:00:17")
    assert verify(KEY, signature=signature, project=PROJECT, paths=[MESSAGES], methods=["GET"],
                  expires="2100-05-31T17:00:17", method="GET", path=MESSAGES)  # now: the real clock


def test_the_order_of_the_paths_and_methods_given_back_does_not_matter() -> None:
    assert accepted(paths=[SUBSCRIPTIONS, MESSAGES], methods=["POST", "GET"])


def test_the_requests_method_is_compared_without_case() -> None:
    assert accepted(method="get")


def test_a_signed_path_covers_what_is_below_it() -> None:
    assert accepted(path=f"{MESSAGES}/6f1d2c3b4a5e4d6c8b7a9f0e1d2c3b4a")
    assert accepted(path=f"{SUBSCRIPTIONS}/019bbf1e2a40c4e1d3a59b7f20d86e4c/confirm")


# --- verify: refused --------------------------------------------------------------------------------------------

def test_an_expired_signature_is_refused_from_its_expiry_on() -> None:
    assert accepted(now=1_700_000_000 - 0.001)
    assert not accepted(now=1_700_000_000)
    assert not accepted(now=1_700_000_000 + 86400)


def test_expiry_is_judged_by_the_real_clock_by_default() -> None:
    past = sign(KEY, project=PROJECT, paths=[MESSAGES], methods=["GET"], expires_ms=int((time.time() - 60) * 1000))
    future = sign(KEY, project=PROJECT, paths=[MESSAGES], methods=["GET"], expires_ms=int((time.time() + 60) * 1000))
    for signed, expected in ((past, False), (future, True)):
        assert verify(KEY, signature=signed.signature, project=PROJECT, paths=signed.paths, methods=signed.methods,
                      expires=signed.expires, method="GET", path=MESSAGES) is expected


@pytest.mark.parametrize("signature", [
    "0" * 64,
    "",
    "deadbeef",
])
def test_a_made_up_signature_is_refused(signature: str) -> None:
    assert not accepted(signature=signature)


def test_a_signature_with_one_character_changed_is_refused() -> None:
    good = str(grant()["signature"])
    for position in (0, 31, 63):
        flipped = "1" if good[position] != "1" else "2"
        assert not accepted(signature=good[:position] + flipped + good[position + 1:]), position
    assert not accepted(signature=good[:-1])
    assert not accepted(signature=good + "0")
    assert not accepted(signature=good.upper())


def test_a_signature_with_characters_no_hex_digest_has_does_not_raise() -> None:
    for signature in ("é" * 64, "\ud800" * 64, "\x00" * 64):
        assert not accepted(signature=signature)


def test_a_signature_made_with_another_key_is_refused() -> None:
    assert not accepted(key="another-deployments-key")


@pytest.mark.parametrize("project", ["another-project", PROJECT.upper(), PROJECT + " ", ""])
def test_another_project_is_refused(project: str) -> None:
    assert not accepted(project=project)


@pytest.mark.parametrize("method", ["DELETE", "PUT", "PATCH", "HEAD", ""])
def test_a_method_that_was_not_signed_is_refused(method: str) -> None:
    assert not accepted(method=method)


@pytest.mark.parametrize("path", [
    "/v2/queues/shared/claims",  # another resource of the queue
    "/v2/queues/shared",  # the queue itself, above the signed paths
    "/v2/queues/shared/messagesx",  # a name that starts like a signed one is not below it
    "/v2/queues/shared2/messages",  # another queue
    "/v2/queues/other/messages",
    "/v2/queues/Shared/messages",
    "",
])
def test_a_path_that_was_not_signed_is_refused(path: str) -> None:
    assert not accepted(path=path)


def test_widening_the_signed_methods_or_paths_breaks_the_signature() -> None:
    assert not accepted(methods=["GET", "POST", "DELETE"], method="DELETE")
    assert not accepted(paths=[MESSAGES, SUBSCRIPTIONS, "/v2/queues/shared/claims"], path="/v2/queues/shared/claims")
    assert not accepted(paths=["/v2/queues/shared"], path=MESSAGES)
    # narrowing too: the signature covers exactly the lists that were signed
    assert not accepted(methods=["GET"])
    assert not accepted(paths=[MESSAGES])


def test_moving_the_expiry_breaks_the_signature() -> None:
    assert not accepted(expires="2023-11-14T22:13:21")
    assert not accepted(expires="2099-01-01T00:00:00")
    assert not accepted(expires=EXPIRES + "Z")  # the same instant, written otherwise, is not what was signed


@pytest.mark.parametrize("expires", ["", "tomorrow", "2023-11-14", "14/11/2023 22:13:20", "2023-13-14T22:13:20"])
def test_an_expiry_that_is_not_a_time_is_refused(expires: str) -> None:
    assert not accepted(expires=expires)
