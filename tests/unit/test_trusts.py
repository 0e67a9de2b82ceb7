"""The Keystone trusts client with a fake Keystone (recorded calls, scripted answers) and a fake clock;
the settings of trustees and of the noauth default project."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import pytest

from chalicelib import errors
from chalicelib.api.context import Credentials
from chalicelib.config import ConfigError, Settings
from chalicelib.keystone_trusts import Reply, TrustRefused, Trusts
from chalicelib.rules import trust

SETTINGS = Settings.from_mapping({"AUTH_STRATEGY": "keystone", "KEYSTONE_URL": "http://keystone.test:5000",
                                  "KEYSTONE_USERNAME": "zaqar", "KEYSTONE_PASSWORD": "pw", "KEYSTONE_PROJECT": "service",
                                  "TRUSTEE_USERNAME": "trustee", "TRUSTEE_PASSWORD": "tpw"})
ALICE = Credentials(token="alice-token", user="alice-id", role_ids=("member-id", "reader-id"))


def _iso(at: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime(at))


class FakeKeystone:
    """Answers like Keystone: trust-scoped tokens that live ``lifetime`` seconds; records every call."""

    def __init__(self, clock: list[float], lifetime: float = 3600) -> None:
        self.clock = clock
        self.lifetime = lifetime
        self.calls: list[tuple[str, str, dict[str, str], Any]] = []
        self.answers: list[Reply] = []
        """Scripted answers, used before the default ones."""
        self.issued = 0

    def __call__(self, method: str, url: str, headers: Mapping[str, str], body: Any) -> Reply:
        self.calls.append((method, url, dict(headers), body))
        if self.answers:
            return self.answers.pop(0)
        if method == "POST" and url.endswith("/v3/auth/tokens"):
            self.issued += 1
            expires = _iso(self.clock[0] + self.lifetime)
            return 201, {"x-subject-token": f"token-{self.issued}"}, {
                "token": {"expires_at": expires, "user": {"id": "trustee-id"}}}
        if method == "POST" and url.endswith("/v3/OS-TRUST/trusts"):
            return 201, {}, {"trust": {"id": "trust-1", **body["trust"]}}
        if method == "DELETE":
            return 204, {}, None
        raise AssertionError((method, url))


@pytest.fixture
def clock() -> list[float]:
    return [1_700_000_000.0]


@pytest.fixture
def keystone(clock: list[float]) -> FakeKeystone:
    return FakeKeystone(clock)


@pytest.fixture
def trusts(keystone: FakeKeystone, clock: list[float]) -> Trusts:
    return Trusts(SETTINGS, transport=keystone, clock=lambda: clock[0])


def test_a_trust_delegates_the_callers_roles_to_the_trustee_with_impersonation(
        trusts: Trusts, keystone: FakeKeystone) -> None:
    assert trusts.create(ALICE, project="alpha", expires_ms=1_700_000_600_000) == "trust-1"
    login, (method, url, headers, body) = keystone.calls
    assert login[3]["auth"]["identity"]["password"]["user"] == {
        "name": "trustee", "password": "tpw", "domain": {"name": "Default"}}
    assert "scope" not in login[3]["auth"]  # only the trustee's user id is needed from it
    assert (method, url, headers["X-Auth-Token"]) == ("POST", "http://keystone.test:5000/v3/OS-TRUST/trusts",
                                                      "alice-token")
    assert body["trust"] == {"trustor_user_id": "alice-id", "trustee_user_id": "trustee-id", "project_id": "alpha",
                             "impersonation": True, "roles": [{"id": "member-id"}, {"id": "reader-id"}],
                             "expires_at": "2023-11-14T22:23:20.000000Z"}
    trusts.create(ALICE, project="alpha", expires_ms=None)
    assert len(keystone.calls) == 3  # the trustee's id is asked once
    assert "expires_at" not in keystone.calls[-1][3]["trust"]


@pytest.mark.parametrize(("status", "kind"), [(401, errors.Unauthorized), (403, errors.Forbidden),
                                              (400, errors.InvalidBody), (500, errors.Unavailable)])
def test_keystone_refusing_a_trust_is_a_clear_error_of_its_kind(
        trusts: Trusts, keystone: FakeKeystone, status: int, kind: type[errors.ServiceError]) -> None:
    keystone.answers = [(201, {"x-subject-token": "t"}, {"token": {"user": {"id": "trustee-id"}}}),
                        (status, {}, {"error": {"message": "roles are missing"}})]
    with pytest.raises(kind, match="roles are missing"):
        trusts.create(ALICE, project="alpha", expires_ms=None)


def test_a_trustee_that_cannot_log_in_names_the_settings_to_check(trusts: Trusts, keystone: FakeKeystone) -> None:
    keystone.answers = [(401, {}, {"error": {"message": "The request you have made requires authentication."}})]
    with pytest.raises(errors.NotConfigured, match="TRUSTEE_PASSWORD"):
        trusts.create(ALICE, project="alpha", expires_ms=None)


def test_trust_tokens_are_cached_per_trust_until_shortly_before_they_expire(
        trusts: Trusts, keystone: FakeKeystone, clock: list[float]) -> None:
    first = trusts.token("trust-1")
    scope = keystone.calls[-1][3]["auth"]["scope"]
    assert scope == {"OS-TRUST:trust": {"id": "trust-1"}}
    assert trusts.token("trust-1") == first and keystone.issued == 1
    assert trusts.token("trust-2") != first and keystone.issued == 2
    clock[0] += 3600 - 61
    assert trusts.token("trust-1") == first
    clock[0] += 2  # less than a minute left: the receiver needs time to validate it
    assert trusts.token("trust-1") != first and keystone.issued == 3
    assert trusts.token("trust-1", fresh=True) != first and keystone.issued == 4


def test_short_lived_tokens_are_reused_for_half_their_life(clock: list[float]) -> None:
    keystone = FakeKeystone(clock, lifetime=20)
    trusts = Trusts(SETTINGS, transport=keystone, clock=lambda: clock[0])
    first = trusts.token("trust-1")
    clock[0] += 9
    assert trusts.token("trust-1") == first
    clock[0] += 2
    assert trusts.token("trust-1") != first


def test_a_trust_keystone_refuses_is_refused_and_an_unanswered_one_unavailable(
        trusts: Trusts, keystone: FakeKeystone) -> None:
    keystone.answers = [(404, {}, {"error": {"message": "Could not find trust: trust-1."}})]
    with pytest.raises(TrustRefused, match="Could not find trust"):
        trusts.token("trust-1")
    keystone.answers = [(502, {}, None)]
    with pytest.raises(errors.Unavailable):
        trusts.token("trust-1")


def test_deleting_tries_the_callers_token_then_the_trusts_own(trusts: Trusts, keystone: FakeKeystone) -> None:
    assert trusts.delete("trust-1", credentials=ALICE)
    assert [(c[0], c[2].get("X-Auth-Token")) for c in keystone.calls] == [("DELETE", "alice-token")]
    keystone.calls.clear()
    keystone.answers = [(403, {}, None)]
    assert trusts.delete("trust-1", credentials=ALICE)
    assert [(c[0], c[2].get("X-Auth-Token")) for c in keystone.calls] == [
        ("DELETE", "alice-token"), ("POST", None), ("DELETE", "token-1")]
    keystone.calls.clear()
    keystone.answers = [(404, {}, None)]
    assert trusts.delete("trust-1", credentials=ALICE)  # already gone counts as gone
    assert [c[0] for c in keystone.calls] == ["DELETE"]  # and the trust's own token is not asked for
    keystone.calls.clear()
    assert trusts.delete("trust-1", credentials=None)
    assert [c[0] for c in keystone.calls] == ["POST", "DELETE"]
    assert keystone.calls[-1][1] == "http://keystone.test:5000/v3/OS-TRUST/trusts/trust-1"
    issued = (201, {"x-subject-token": "t"}, {"token": {"expires_at": _iso(keystone.clock[0] + 3600)}})
    keystone.answers = [(403, {}, None), issued, (500, {}, None)]
    assert not trusts.delete("trust-1", credentials=ALICE)  # logged; the trust expires with its subscription


def test_trust_rules_keep_trust_ids_and_the_token_header_for_the_service() -> None:
    assert trust.target("trust+https://hook.test/x") == "https://hook.test/x"
    assert trust.target("https://hook.test/x") == "https://hook.test/x"
    trust.check_options({"trust_id": "t1"}, subscriber="trust+http://h.test", current_trust="t1")
    with pytest.raises(errors.InvalidBody, match="set by the service"):
        trust.check_options({"trust_id": "t2"}, subscriber="trust+http://h.test", current_trust="t1")
    with pytest.raises(errors.InvalidBody, match="set by the service"):
        trust.check_options({"trust_id": "t2"}, subscriber="http://h.test", current_trust=None)
    with pytest.raises(errors.InvalidBody, match="X-Auth-Token"):
        trust.check_options({"post_headers": {"X-AUTH-TOKEN": "x"}}, subscriber="trust+http://h.test",
                            current_trust=None)
    trust.check_options({"post_headers": {"X-Auth-Token": "x"}}, subscriber="http://h.test", current_trust=None)


def test_trustee_and_default_project_settings() -> None:
    keystone = {"AUTH_STRATEGY": "keystone", "KEYSTONE_URL": "http://k.test", "KEYSTONE_USERNAME": "z",
                "KEYSTONE_PASSWORD": "p", "KEYSTONE_PROJECT": "s"}
    settings = Settings.from_mapping({**keystone, "TRUSTEE_USERNAME": "t", "TRUSTEE_PASSWORD": "p",
                                      "TRUSTEE_USER_DOMAIN": "services"})
    assert (settings.trustee_username, settings.trustee_user_domain) == ("t", "services")
    assert Settings.from_mapping({}).trustee_username is None
    with pytest.raises(ConfigError, match="TRUSTEE_USERNAME and TRUSTEE_PASSWORD"):
        Settings.from_mapping({**keystone, "TRUSTEE_USERNAME": "t"})
    assert Settings.from_mapping({}).default_project is None
    assert Settings.from_mapping({"DEFAULT_PROJECT": " demo "}).default_project == "demo"
    with pytest.raises(ConfigError, match="noauth only"):
        Settings.from_mapping({**keystone, "DEFAULT_PROJECT": "demo"})
    with pytest.raises(ConfigError, match="256"):
        Settings.from_mapping({"DEFAULT_PROJECT": "p" * 257})
