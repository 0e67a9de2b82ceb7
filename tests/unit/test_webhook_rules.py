"""Rules about subscribers (chalicelib.rules): which addresses a webhook may reach, which options are safe.

Pure: the resolver is a fake that records its calls.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
import socket

import pytest

from chalicelib import errors
from chalicelib.notify import webhook
from chalicelib.rules import options
from chalicelib.rules.addresses import (
    AddressRefused,
    ResolutionFailed,
    literal_refusal,
    refused_reason,
    resolve_checked,
)
from chalicelib.rules.options import check_mailto, check_post_data, check_post_headers, mail_parts
from tests.fake_resolver import FakeResolver, resolving


def reason(address: str, *, allow_loopback: bool = False) -> str | None:
    return refused_reason(ipaddress.ip_address(address), allow_loopback=allow_loopback)


# --- refused_reason -------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("address", "why"), [
    ("169.254.169.254", "169.254.169.254 is a link-local address (cloud metadata)"),
    ("169.254.1.1", "169.254.1.1 is a link-local address"),
    ("100.64.0.1", "100.64.0.1 is in the shared address space 100.64.0.0/10"),
    ("100.127.255.254", "in the shared address space 100.64.0.0/10"),
    ("10.1.2.3", "a private address (10.0.0.0/8)"),
    ("172.16.0.1", "a private address (172.16.0.0/12)"),
    ("192.168.1.1", "a private address (192.168.0.0/16)"),
    ("0.0.0.0", "0.0.0.0 is the unspecified address"),
    ("0.1.2.3", "in the 'this network' range 0.0.0.0/8"),
    ("192.0.0.1", "an IETF protocol assignment"),
    ("192.0.2.1", "a documentation address (192.0.2.0/24)"),
    ("198.51.100.7", "a documentation address (198.51.100.0/24)"),
    ("203.0.113.9", "a documentation address (203.0.113.0/24)"),
    ("198.18.0.1", "in the benchmarking range 198.18.0.0/15"),
    ("198.19.255.255", "in the benchmarking range 198.18.0.0/15"),
    ("240.0.0.1", "a reserved address (240.0.0.0/4)"),
    ("255.255.255.255", "the broadcast address"),
    ("224.0.0.1", "a multicast address"),
    ("233.252.0.1", "a multicast address"),
    ("::", ":: is the unspecified address"),
    ("fe80::1", "a link-local address"),
    ("fe80::1%eth0", "fe80::1%eth0 is a link-local address"),
    ("fc00::1", "a unique local (private) address"),
    ("fd12:3456::1", "a unique local (private) address"),
    ("fd00:ec2::254", "(cloud metadata)"),
    ("fec0::1", "a site-local address"),
    ("2001:db8::1", "a documentation address (2001:db8::/32)"),
    ("3fff::1", "a documentation address (3fff::/20)"),
    ("2001:2::1", "in the benchmarking range 2001:2::/48"),
    ("100::1", "a discard-only address"),
    ("ff02::1", "a multicast address"),
    ("ff0e::1", "a multicast address"),
])
def test_addresses_that_are_not_globally_routable_are_refused_with_a_readable_reason(address: str, why: str) -> None:
    for allow_loopback in (False, True):
        got = reason(address, allow_loopback=allow_loopback)
        assert got is not None and why in got, (address, got)


@pytest.mark.parametrize("address", [
    "8.8.8.8", "1.1.1.1", "100.128.0.1", "2606:4700:4700::1111", "2a00:1450:4001::200e",
    "::ffff:8.8.8.8", "::ffff:0:8.8.8.8", "2002:808:808::1", "64:ff9b::808:808", "64:ff9b:1::808:808",
    "2001:0:4136:e378:8000:63bf:f7f7:f7f7",  # Teredo, client 8.8.8.8
])
def test_globally_routable_addresses_are_allowed(address: str) -> None:
    assert reason(address) is None


@pytest.mark.parametrize("address", ["127.0.0.1", "127.255.255.254", "::1", "::ffff:127.0.0.1", "::127.0.0.1"])
def test_loopback_is_refused_unless_allowed(address: str) -> None:
    refused = reason(address, allow_loopback=False)
    assert refused is not None and "a loopback address" in refused
    assert reason(address, allow_loopback=True) is None


@pytest.mark.parametrize(("address", "why"), [
    ("2002:a9fe:a9fe::", "2002:a9fe:a9fe:: embeds 169.254.169.254 (6to4), a link-local address (cloud metadata)"),
    ("::ffff:169.254.169.254",
     "::ffff:169.254.169.254 embeds 169.254.169.254 (IPv4-mapped), a link-local address (cloud metadata)"),
    ("::ffff:0:10.0.0.1", "::ffff:0:10.0.0.1 embeds 10.0.0.1 (IPv4-translated), a private address (10.0.0.0/8)"),
    ("::10.0.0.1", "::10.0.0.1 embeds 10.0.0.1 (IPv4-compatible), a private address (10.0.0.0/8)"),
    # Teredo stores the client address inverted: ~169.254.169.254 = 86.1.86.1
    ("2001:0:4136:e378:8000:63bf:5601:5601", "embeds 169.254.169.254 (Teredo client)"),
    ("64:ff9b::a9fe:a9fe", "64:ff9b::a9fe:a9fe embeds 169.254.169.254 (NAT64)"),
    ("64:ff9b:1::a9fe:a9fe", "embeds 169.254.169.254 (NAT64)"),
    ("2002:6440:1::", "embeds 100.64.0.1 (6to4), in the shared address space 100.64.0.0/10"),
])
def test_ipv6_forms_that_embed_an_ipv4_address_are_judged_by_it(address: str, why: str) -> None:
    got = reason(address, allow_loopback=True)
    assert got is not None and why in got, got


# --- resolve_checked ------------------------------------------------------------------------------------------

def test_a_name_is_resolved_once_and_its_addresses_returned_deduplicated_in_order() -> None:
    resolver = resolving("1.1.1.1", "2606:4700:4700::1111", "1.1.1.1", "8.8.8.8")
    got = resolve_checked("hook.example", 8443, allow_loopback=False, resolver=resolver)
    assert got == ["1.1.1.1", "2606:4700:4700::1111", "8.8.8.8"]
    assert resolver.calls == [("hook.example", 8443)]


def test_one_refused_address_refuses_the_whole_name() -> None:
    resolver = resolving("8.8.8.8", "169.254.169.254")
    with pytest.raises(AddressRefused) as caught:
        resolve_checked("sneaky.example", 80, allow_loopback=True, resolver=resolver)
    assert caught.value.reason == "169.254.169.254 is a link-local address (cloud metadata) (resolved from sneaky.example)"


def test_a_name_resolving_to_a_6to4_metadata_address_is_refused() -> None:
    with pytest.raises(AddressRefused, match=re.escape("embeds 169.254.169.254")):
        resolve_checked("six.example", 80, allow_loopback=True, resolver=resolving("2002:a9fe:a9fe::1"))


def test_a_resolved_link_local_address_with_a_zone_is_refused() -> None:
    with pytest.raises(AddressRefused, match=re.escape("fe80::1%eth0 is a link-local address")):
        resolve_checked("zone.example", 80, allow_loopback=True, resolver=resolving("fe80::1%eth0"))


def test_loopback_names_follow_the_loopback_rule() -> None:
    resolver = resolving("127.0.0.1", "::1")
    with pytest.raises(AddressRefused, match=re.escape("loopback")):
        resolve_checked("localhost", 80, allow_loopback=False, resolver=resolver)
    assert resolve_checked("localhost", 80, allow_loopback=True, resolver=resolver) == ["127.0.0.1", "::1"]


@pytest.mark.parametrize("error", [socket.gaierror(socket.EAI_NONAME, "Name or service not known"),
                                   socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")])
def test_a_name_that_does_not_resolve_is_a_transient_failure(error: OSError) -> None:
    with pytest.raises(ResolutionFailed, match=re.escape("nowhere.example does not resolve")):
        resolve_checked("nowhere.example", 80, allow_loopback=False, resolver=FakeResolver([error]))


def test_a_name_with_no_address_is_a_transient_failure() -> None:
    with pytest.raises(ResolutionFailed, match=re.escape("no IPv4 or IPv6 address")):
        resolve_checked("empty.example", 80, allow_loopback=False, resolver=resolving())


@pytest.mark.parametrize(("host", "expected"), [
    ("8.8.8.8", ["8.8.8.8"]), ("[2606:4700:4700::1111]", ["2606:4700:4700::1111"]),
    ("2606:4700:4700::1111", ["2606:4700:4700::1111"]), ("127.1", ["127.0.0.1"]), ("0x7f000001", ["127.0.0.1"]),
])
def test_literal_addresses_are_checked_without_resolving(host: str, expected: list[str]) -> None:
    resolver = resolving("10.0.0.1")
    assert resolve_checked(host, 80, allow_loopback=True, resolver=resolver) == expected
    assert resolver.calls == []


@pytest.mark.parametrize(("host", "why"), [
    ("10.0.0.1", "10.0.0.1 is a private address"),
    ("2130706433", "127.0.0.1 is a loopback address (written 2130706433)"),
    ("[::ffff:127.0.0.1]", "embeds 127.0.0.1 (IPv4-mapped), a loopback address"),
    ("a..b.example", "not a valid host name"),
    ("bad host.example", "not a valid host name"),
    ("x" * 64 + ".example", "longer than 63 characters"),
])
def test_refused_literals_and_impossible_names_are_refused_without_resolving(host: str, why: str) -> None:
    resolver = resolving("8.8.8.8")
    with pytest.raises(AddressRefused, match=re.escape(why)):
        resolve_checked(host, 80, allow_loopback=False, resolver=resolver)
    assert resolver.calls == []


# --- literal_refusal ------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("url", "why"), [
    ("http:///hook", "the URL has no host"),
    ("http://:8080/hook", "the URL has no host"),
    ("http://[::1", "the URL cannot be parsed (Invalid IPv6 URL)"),
    ("http://[1.2.3.4]/", "the URL cannot be parsed"),
    ("http://hook.example:0/", "the port 0 is outside 1..65535"),
    ("http://hook.example:65536/", "the URL cannot be parsed (Port out of range"),
    ("http://hook.example:http/", "the URL cannot be parsed (Port could not be cast"),
    ("http://169.254.169.254/latest/meta-data", "169.254.169.254 is a link-local address (cloud metadata)"),
    ("http://[2002:a9fe:a9fe::]/", "2002:a9fe:a9fe:: embeds 169.254.169.254 (6to4)"),
    ("https://[fe80::1%25eth0]:8443/", "fe80::1%eth0 is a link-local address"),
    ("http://[fd00::1]/x", "a unique local (private) address"),
    ("http://127.0.0.1:8000/hook", "127.0.0.1 is a loopback address"),
    ("http://127.1/hook", "127.0.0.1 is a loopback address (written 127.1)"),
    ("http://[::1]:8000/", "::1 is a loopback address"),
    ("http://a..b/", "'a..b' is not a valid host name"),
])
def test_literal_refusal_explains_what_is_wrong_with_the_url(url: str, why: str) -> None:
    got = literal_refusal(url, allow_loopback=False)
    assert got is not None and why in got, got


@pytest.mark.parametrize("url", [
    "http://hook.example/x", "https://hook.example:8443/x?a=1", "http://localhost:8000/hook",
    "http://8.8.8.8/", "http://[2606:4700:4700::1111]:8080/", "https://bücher.example/",
])
def test_names_and_global_literals_pass_at_subscribe_time(url: str) -> None:
    assert literal_refusal(url, allow_loopback=False) is None


def test_loopback_literals_pass_when_loopback_is_allowed() -> None:
    for url in ("http://127.0.0.1:8000/hook", "http://[::1]:8000/", "http://[::ffff:127.0.0.1]/"):
        assert literal_refusal(url, allow_loopback=True) is None, url


@pytest.mark.parametrize("url", ["", "http://", "http://[", "http://]/", "http://[::1]:99999999999/", "mailto:x@y",
                                 "http://%zz/", "http://\x00/", "http://[v1.x]/"])
def test_literal_refusal_never_raises(url: str) -> None:
    literal_refusal(url, allow_loopback=False)


def test_the_signature_format_is_unchanged() -> None:
    digest = hmac.new(b"secret", b"1700000000.{}", hashlib.sha256).hexdigest()
    assert webhook.signature("secret", 1700000000, b"{}") == f"t=1700000000,v1={digest}"
    assert webhook.SIGNATURE_HEADER == options.SIGNATURE_HEADER == "X-Zaqar-Signature"


# --- options.post_headers -------------------------------------------------------------------------------------

def test_acceptable_post_headers_are_returned_as_they_are() -> None:
    headers = {"X-Api-Key": "k3y", "Authorization": "Bearer a.b.c", "Content-Type": "text/plain; charset=utf-8",
               "X-Tabbed": "a\tb c", "X-Odd!#$%&'*+-.^_`|~": "~!@#$%^&*()", "X-Empty": ""}
    assert check_post_headers(headers) == headers
    assert check_post_headers({}) == {}


def test_post_headers_at_the_limits_are_accepted() -> None:
    assert len(check_post_headers({f"X-H{i}": "v" for i in range(32)})) == 32
    assert check_post_headers({"X" * 256: "v" * 4096}) == {"X" * 256: "v" * 4096}


def refusal_of(value: object) -> str:
    with pytest.raises(errors.InvalidBody) as caught:
        check_post_headers(value)
    return caught.value.description


@pytest.mark.parametrize("value", [["X-A", "1"], "X-A: 1", 3, None])
def test_post_headers_must_be_an_object(value: object) -> None:
    assert "options.post_headers must be a JSON object" in refusal_of(value)


def test_at_most_32_post_headers() -> None:
    assert "at most 32 headers; it sets 33" in refusal_of({f"X-H{i}": "v" for i in range(33)})


@pytest.mark.parametrize("name", ["", "X A", "X-A:", "X-A\r\nX-B", "Ünicode", "X(1)", "X@1", "X" * 257])
def test_header_names_must_be_tokens(name: str) -> None:
    message = refusal_of({name: "v"})
    assert "is not a valid header name" in message and repr(name[:80]) in message


@pytest.mark.parametrize(("value", "bad"), [
    ("a\r\nX-Injected: 1", "\r"), ("a\nb", "\n"), ("a\x00b", "\x00"), ("a\x1bb", "\x1b"), ("a\x7fb", "\x7f"),
    ("café", "é"), ("a\u2028b", "\u2028"),
])
def test_header_values_must_be_printable_ascii(value: str, bad: str) -> None:
    message = refusal_of({"X-Value": value})
    assert "the value of X-Value may only contain printable ASCII" in message and repr(bad) in message


def test_header_values_must_be_short_strings() -> None:
    assert "the value of X-Long may be at most 4096 characters long; it has 4097" in refusal_of({"X-Long": "v" * 4097})
    assert "the value of X-Number must be a string" in refusal_of({"X-Number": 3})


@pytest.mark.parametrize("name", ["Host", "content-length", "Transfer-Encoding", "CONNECTION", "Keep-Alive",
                                  "Upgrade", "te", "Trailer", "Proxy-Authorization", "Proxy-Connection", "Expect"])
def test_headers_the_http_client_owns_are_refused(name: str) -> None:
    assert f"may not set {name}: the HTTP client sets it" in refusal_of({name: "x"})


@pytest.mark.parametrize("name", ["X-Zaqar-Signature", "x-zaqar-signature", "X-Zaqar-Delivery-Id", "X-ZAQAR-DELIVERY-ID"])
def test_headers_the_notifier_sets_are_refused(name: str) -> None:
    assert f"may not set {name}: the notifier sets it" in refusal_of({name: "x"})


def test_the_same_header_twice_in_different_cases_is_refused() -> None:
    assert "sets x-api-key twice" in refusal_of({"X-Api-Key": "a", "x-api-key": "b"})


# --- options.post_data ----------------------------------------------------------------------------------------

def test_post_data_is_a_template_of_at_most_16_kib() -> None:
    assert check_post_data(None) is None
    assert check_post_data('{"m": "$zaqar_message$"}') == '{"m": "$zaqar_message$"}'
    assert check_post_data("x" * options.MAX_POST_DATA) == "x" * options.MAX_POST_DATA
    with pytest.raises(errors.InvalidBody, match=re.escape("options.post_data may be at most 16384 bytes")):
        check_post_data("x" * (options.MAX_POST_DATA + 1))


def test_post_data_is_measured_in_utf8_bytes() -> None:
    with pytest.raises(errors.InvalidBody, match=re.escape("it has 16386")):
        check_post_data("é" * 8193)


@pytest.mark.parametrize(("value", "why"), [({"a": 1}, "must be a string"), (3, "must be a string"),
                                            ("\ud800", "lone surrogate")])
def test_post_data_must_be_text(value: object, why: str) -> None:
    with pytest.raises(errors.InvalidBody, match=f"options.post_data .*{why}"):
        check_post_data(value)


# --- mailto ---------------------------------------------------------------------------------------------------

SENDER = "noreply@example.test"
ALLOWED = frozenset({"Alerts@Example.test", "ops@example.test"})


def mailto_refusal(uri: str, opts: dict[str, object] | None = None, *, sender: str | None = SENDER,
                   allowed: frozenset[str] = ALLOWED) -> str:
    with pytest.raises(errors.InvalidBody) as caught:
        check_mailto(uri, opts or {}, sender=sender, allowed_senders=allowed)
    return caught.value.description


@pytest.mark.parametrize(("uri", "opts"), [
    ("mailto:ops@example.test", {}),
    ("MAILTO:first.last+tag@mail.example.test", {}),
    ("mailto:ops@example.test?subject=Orders%20are%20in", {}),
    ("mailto:ops@example.test", {"subject": "Ünïcode is fine: 注文", "from": SENDER}),
    ("mailto:ops@example.test", {"from": "alerts@example.TEST"}),
    ("mailto:ops@example.test?body=ignored", {"from": None, "subject": None}),
    ("mailto:ops@example.test?subject=" + "s" * 200, {"subject": "s" * 200}),
])
def test_acceptable_mailto_subscribers(uri: str, opts: dict[str, object]) -> None:
    check_mailto(uri, opts, sender=SENDER, allowed_senders=ALLOWED)


@pytest.mark.parametrize(("uri", "why"), [
    ("mailto:a@example.test,b@example.test", "exactly one recipient"),
    ("mailto:a@example.test%2Cb@example.test", "exactly one recipient"),
    ("mailto:a@example.test?cc=b@example.test", "exactly one recipient"),
    ("mailto:a@example.test?BCC=b@example.test", "exactly one recipient"),
    ("mailto:?to=b@example.test", "exactly one recipient"),
    ("mailto:ops", "'ops' is not an email address"),
    ("mailto:@example.test", "is not an email address"),
    ("mailto:ops@", "is not an email address"),
    ("mailto:ops@example..test", "is not an email address"),
    ("mailto:a b@example.test", "is not an email address"),
    ("mailto:<ops@example.test>", "is not an email address"),
    ("mailto:ops@example.test%0d%0aBcc:evil@example.test", "is not an email address"),
    ("mailto:ops@example.test?subject=Hi%0d%0aBcc:%20evil@example.test", "The subject= of the mailto subscriber may not contain line breaks"),
    ("mailto:ops@example.test?subject=a%00b", "may not contain line breaks or other control characters"),
    ("mailto:ops@example.test?subject=" + "s" * 201, "may be at most 200 characters long; it has 201"),
    ("mailto:ops@example.test?subject=a&subject=b", "subject= only once"),
    ("http://example.test/", "is not a mailto URI"),
    ("mailto://ops@example.test", "is not a mailto URI"),
])
def test_mailto_subscribers_that_are_refused(uri: str, why: str) -> None:
    assert why in mailto_refusal(uri)


@pytest.mark.parametrize(("opts", "why"), [
    ({"subject": "Hi\r\nBcc: evil@example.test"}, "options.subject may not contain line breaks"),
    ({"subject": "x" * 201}, "options.subject may be at most 200 characters long"),
    ({"subject": 3}, "options.subject must be a string"),
    ({"subject": "\ud800"}, "options.subject is not valid Unicode text"),
    ({"from": "noreply@example.test\r\nBcc: evil@example.test"}, "options.from may not contain line breaks"),
    ({"from": ["noreply@example.test"]}, "options.from must be a string"),
])
def test_mailto_options_that_are_refused(opts: dict[str, object], why: str) -> None:
    assert why in mailto_refusal("mailto:ops@example.test", opts)


def test_a_sender_that_is_not_allowed_is_refused_with_the_allowed_ones() -> None:
    message = mailto_refusal("mailto:ops@example.test", {"from": "ceo@example.test"})
    assert message == ("options.from 'ceo@example.test' is not an allowed sender; "
                       "allowed: Alerts@Example.test, noreply@example.test, ops@example.test.")


def test_without_configured_senders_no_sender_may_be_chosen() -> None:
    message = mailto_refusal("mailto:ops@example.test", {"from": "me@example.test"}, sender=None, allowed=frozenset())
    assert message == "options.from cannot be used: this service has no email sender configured."


def test_mail_parts_take_the_subject_from_the_uri_then_the_options() -> None:
    assert mail_parts("mailto:ops@example.test?subject=Orders%20in+stock", {"subject": "ignored"}) == (
        "ops@example.test", "Orders in stock")
    assert mail_parts("mailto:ops%40example.test", {"subject": "From options"}) == ("ops@example.test", "From options")
    assert mail_parts("mailto:ops@example.test?subject=", {}) == ("ops@example.test", None)
    assert mail_parts("mailto:ops@example.test", {"subject": 3}) == ("ops@example.test", None)
