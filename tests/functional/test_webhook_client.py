"""The webhook client against real servers on 127.0.0.1: plain HTTP, and HTTPS for "hook.test".

The certificate for hook.test is made here (self-signed), the client trusts
it through its ``context`` keyword, and a fake resolver maps the name to
127.0.0.1: no real DNS is asked, so a request that arrives proves the
client connected to the address it checked.
"""

from __future__ import annotations

import datetime
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from chalicelib.notify import webhook
from tests.fake_resolver import FakeResolver, resolving
from tests.receiver import Receiver, receiver

HOST = "hook.test"


def post(url: str, *, headers: dict[str, str] | None = None, timeout: float = 2.0, **kw: Any) -> webhook.Outcome:
    return webhook.post(url, b'{"n": 1}', headers or {}, timeout=timeout, allow_loopback=True, secret=None, **kw)


# --- an HTTPS (or plain) server that answers as told ----------------------------------------------------------

@dataclass
class Server:
    port: int = 0
    status: int = 200
    reply_headers: dict[str, str] = field(default_factory=dict)
    reply_body: bytes = b""
    requests: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    server_names: list[str | None] = field(default_factory=list)
    """The SNI of each TLS handshake."""


@contextmanager
def serve(tls: ssl.SSLContext | None = None, **reply: Any) -> Iterator[Server]:
    state = Server(**reply)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            return None

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            state.requests.append((self.path, dict(self.headers.items()), body))
            self.send_response(state.status)
            for name, value in state.reply_headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(state.reply_body)))
            self.end_headers()
            self.wfile.write(state.reply_body)

    class Quiet(ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request: Any, client_address: Any) -> None:
            return None  # a client that gave up (or failed the TLS handshake) is what some tests do

    server = Quiet(("127.0.0.1", 0), Handler)
    if tls is not None:
        tls.sni_callback = lambda _sock, name, _ctx: state.server_names.append(name)
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@dataclass(frozen=True)
class Certificate:
    cert: Path
    key: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, self.key)
        return context

    def client_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.cert))


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    """A self-signed certificate for hook.test, its own trust anchor."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, HOST)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(HOST)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, content_commitment=False,
                                     key_encipherment=False, data_encipherment=False, key_agreement=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    paths = Certificate(folder / "cert.pem", folder / "key.pem")
    paths.cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths.key.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                            serialization.NoEncryption()))
    return paths


@pytest.fixture
def hook() -> Iterator[Receiver]:
    with receiver() as state:
        yield state


# --- plain HTTP -----------------------------------------------------------------------------------------------

def test_a_delivery_carries_the_body_the_headers_the_delivery_id_and_a_valid_signature(hook: Receiver) -> None:
    outcome = webhook.post(f"{hook.url}/in?x=1", b'{"n": 1}', {"X-Api-Key": "k"}, timeout=2, allow_loopback=True,
                           secret="s3cret", delivery_id="d-1")
    assert outcome == webhook.Outcome("delivered", "200")
    [request] = hook.requests
    assert (request.path, request.body) == ("/in?x=1", b'{"n": 1}')
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["X-Api-Key"] == "k"
    assert request.headers["X-Zaqar-Delivery-Id"] == "d-1"
    timestamp = int(request.headers["X-Zaqar-Signature"].split(",")[0][2:])
    assert request.headers["X-Zaqar-Signature"] == webhook.signature("s3cret", timestamp, b'{"n": 1}')


def test_post_headers_may_override_the_content_type(hook: Receiver) -> None:
    assert post(hook.url, headers={"content-type": "text/plain"}).status == "delivered"
    assert [v for k, v in hook.requests[0].headers.items() if k.lower() == "content-type"] == ["text/plain"]


def test_the_request_reaches_the_checked_address_and_the_name_is_resolved_once(hook: Receiver) -> None:
    port = hook.url.rsplit(":", 1)[1]
    # Given a name that answers loopback for the check, then the metadata address to anyone asking again
    resolver = FakeResolver([["127.0.0.1"], ["169.254.169.254"]])
    # When posting to it
    outcome = post(f"http://{HOST}:{port}/hook", resolver=resolver)
    # Then the request arrived, by name, over the address that was checked
    assert outcome.status == "delivered", outcome
    assert resolver.calls == [(HOST, int(port))]
    assert hook.requests[0].headers["Host"] == f"{HOST}:{port}"


def test_the_next_checked_address_is_tried_when_one_refuses_connections(hook: Receiver) -> None:
    port = hook.url.rsplit(":", 1)[1]  # nothing listens on 127.0.0.2 (loopback, but another address)
    outcome = post(f"http://{HOST}:{port}/", resolver=resolving("127.0.0.2", "127.0.0.1"))
    assert outcome.status == "delivered", outcome
    assert len(hook.requests) == 1


def test_connection_refused_everywhere_is_worth_retrying(hook: Receiver) -> None:
    port = hook.url.rsplit(":", 1)[1]
    outcome = post(f"http://{HOST}:{port}/", resolver=resolving("127.0.0.2"))
    assert outcome.status == "retry" and "ConnectionRefusedError" in outcome.detail and "127.0.0.2" in outcome.detail


def test_a_name_that_does_not_resolve_is_worth_retrying() -> None:
    outcome = post(f"http://{HOST}/", resolver=FakeResolver([socket.gaierror(socket.EAI_NONAME, "Name unknown")]))
    assert outcome == webhook.Outcome("retry", f"DNS: {HOST} does not resolve (Name unknown)")


@pytest.mark.parametrize("value", ["a\r\nX-Injected: 1", "a\nb", "a\x00b"])
def test_headers_with_line_breaks_fail_with_a_reason_and_are_never_sent(hook: Receiver, value: str) -> None:
    resolver = resolving("127.0.0.1")
    port = hook.url.rsplit(":", 1)[1]
    outcome = post(f"http://{HOST}:{port}/", headers={"X-Evil": value}, resolver=resolver)
    assert outcome.status == "failed" and "the value of X-Evil may only contain printable ASCII" in outcome.detail
    assert resolver.calls == []  # not even resolved
    assert hook.requests == []


def test_headers_we_own_fail_rather_than_being_sent(hook: Receiver) -> None:
    outcome = post(hook.url, headers={"Host": "elsewhere.example"})
    assert outcome.status == "failed" and "may not set Host" in outcome.detail
    assert hook.requests == []


def test_a_redirect_is_not_followed(hook: Receiver) -> None:
    with serve(status=302, reply_headers={"Location": f"{hook.url}/elsewhere"}) as redirecting:
        outcome = post(f"http://127.0.0.1:{redirecting.port}/")
    assert outcome == webhook.Outcome("failed", f"HTTP 302: redirects are not followed (to {hook.url}/elsewhere)")
    assert len(redirecting.requests) == 1
    assert hook.requests == []


def test_a_slow_server_times_out_and_is_worth_retrying(hook: Receiver) -> None:
    hook.delay_s = 1.5
    outcome = post(hook.url, timeout=0.3)
    assert outcome.status == "retry" and "timed out after 0.3s" in outcome.detail, outcome


@pytest.mark.parametrize(("status", "expected"), [(500, "retry"), (503, "retry"), (429, "retry"), (404, "failed"),
                                                  (400, "failed"), (201, "delivered"), (204, "delivered")])
def test_statuses_decide_the_outcome(hook: Receiver, status: int, expected: str) -> None:
    hook.statuses.append(status)
    outcome = post(hook.url)
    assert outcome.status == expected and str(status) in outcome.detail


def test_the_start_of_an_error_body_is_kept_in_the_detail() -> None:
    with serve(status=404, reply_body=b"no such hook\r\n" + b"x" * 100_000) as server:
        outcome = post(f"http://127.0.0.1:{server.port}/")
    assert outcome.status == "failed" and outcome.detail.startswith("HTTP 404: no such hook xxx")
    assert len(outcome.detail) < 300


def test_a_6to4_form_of_the_metadata_address_is_refused() -> None:
    resolver = resolving("127.0.0.1")
    outcome = post("http://[2002:a9fe:a9fe::]/latest/meta-data", resolver=resolver)
    assert outcome == webhook.Outcome(
        "failed", "refused: 2002:a9fe:a9fe:: embeds 169.254.169.254 (6to4), a link-local address (cloud metadata)")
    named = post(f"http://{HOST}/latest/meta-data", resolver=resolving("2002:a9fe:a9fe::"))
    assert named.status == "failed" and f"(resolved from {HOST})" in named.detail


def test_loopback_is_refused_at_delivery_unless_allowed(hook: Receiver) -> None:
    outcome = webhook.post(hook.url, b"{}", {}, timeout=1, allow_loopback=False, secret=None)
    assert outcome.status == "failed" and "loopback" in outcome.detail
    assert hook.requests == []


@pytest.mark.parametrize("url", ["http://[::1", "http://:80/", "ftp://8.8.8.8/", "http://a..b/"])
def test_invalid_urls_fail_without_raising(url: str) -> None:
    assert post(url).status == "failed"


def test_an_ipv6_literal_works() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")

    class V6(ThreadingHTTPServer):
        address_family = socket.AF_INET6
        daemon_threads = True

    try:
        server = V6(("::1", 0), _Ok)
    except OSError:
        pytest.skip("::1 is not available")
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        outcome = post(f"http://[::1]:{server.server_address[1]}/v6")
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    assert outcome == webhook.Outcome("delivered", "200")
    assert _Ok.seen[-1] == ("/v6", f"[::1]:{server.server_address[1]}")


class _Ok(BaseHTTPRequestHandler):
    seen: list[tuple[str, str]] = []  # noqa: RUF012 (one test reads it)

    def log_message(self, *args: Any) -> None:
        return None

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        _Ok.seen.append((self.path, str(self.headers.get("Host"))))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()


# --- HTTPS ----------------------------------------------------------------------------------------------------

def test_https_verifies_the_certificate_against_the_host_name_and_sends_it_as_sni(certificate: Certificate) -> None:
    with serve(certificate.server_context()) as server:
        resolver = FakeResolver([["127.0.0.1"], ["10.0.0.1"]])
        outcome = post(f"https://{HOST}:{server.port}/secure", resolver=resolver,
                       context=certificate.client_context())
    assert outcome == webhook.Outcome("delivered", "200")
    assert resolver.calls == [(HOST, server.port)]
    assert server.server_names == [HOST]
    [(path, headers, body)] = server.requests
    assert (path, headers["Host"], body) == ("/secure", f"{HOST}:{server.port}", b'{"n": 1}')


def test_https_to_a_name_the_certificate_does_not_cover_is_a_tls_failure_worth_retrying(
        certificate: Certificate) -> None:
    with serve(certificate.server_context()) as server:
        outcome = post(f"https://other.test:{server.port}/", resolver=resolving("127.0.0.1"),
                       context=certificate.client_context())
    assert outcome.status == "retry"
    assert outcome.detail.startswith("TLS: Hostname mismatch") and "other.test" in outcome.detail, outcome
    assert server.requests == []


def test_https_with_an_untrusted_certificate_is_a_tls_failure(certificate: Certificate) -> None:
    with serve(certificate.server_context()) as server:
        outcome = post(f"https://{HOST}:{server.port}/", resolver=resolving("127.0.0.1"),
                       context=ssl.create_default_context())  # the system CAs do not know our certificate
    assert outcome.status == "retry" and outcome.detail.startswith("TLS: "), outcome
    assert server.requests == []


def test_https_to_a_plain_http_server_is_a_tls_failure(hook: Receiver, certificate: Certificate) -> None:
    port = hook.url.rsplit(":", 1)[1]
    outcome = post(f"https://{HOST}:{port}/", resolver=resolving("127.0.0.1"), context=certificate.client_context())
    assert outcome.status == "retry" and "TLS" in outcome.detail, outcome


def test_the_process_wide_tls_context_is_created_once() -> None:
    assert webhook.default_context() is webhook.default_context()
    assert webhook.default_context().check_hostname
