"""The URL guard: which addresses it refuses (embedded IPv4 included), malformed URLs, and
a host name that answers a public address to the check and loopback to the connection.

The only stand-in is the DNS resolver (``socket.getaddrinfo``), which a test cannot
otherwise control; the servers, the client and the TLS handshakes are real.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cesar_core.errors import CesarError, InvalidOptionsError
from cesar_core.fetch import FetchPolicy, UrlRefusedError, check_url, download
from cesar_core.settings import redact

from .conftest import DATA

PUBLIC = "2001:4860:4860::8888"  # a global address nothing in the test listens on
NAT64 = ipaddress.ip_network("64:ff9b::/96")
NAT64_LOCAL = ipaddress.ip_network("64:ff9b:1::/48")


def accepted(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    host = f"[{address}]" if address.version == 6 else str(address)
    try:
        check_url(f"http://{host}/a.mp3", FetchPolicy())
    except UrlRefusedError:
        return False
    return True


def public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return address.is_global and not address.is_multicast


def wrapped(inner: ipaddress.IPv4Address, rest: int) -> list[ipaddress.IPv6Address]:
    """``inner`` as IPv4-mapped, IPv4-compatible, NAT64 and 6to4 (``rest``: the 6to4
    address's own subnet and interface bits)."""
    value = int(inner)
    return [
        ipaddress.IPv6Address((0xFFFF << 32) | value),
        ipaddress.IPv6Address(value),
        ipaddress.IPv6Address(int(NAT64.network_address) | value),
        ipaddress.IPv6Address((0x2002 << 112) | (value << 80) | (rest & (2**80 - 1))),
    ]


def embedded(address: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """Every IPv4 address ``address`` carries, found independently of the guard."""
    found = []
    value = int(address)
    if value >> 32 in (0, 0xFFFF):
        found.append(ipaddress.IPv4Address(value & 0xFFFFFFFF))
    if address in NAT64:
        found.append(ipaddress.IPv4Address(value & 0xFFFFFFFF))
    if value >> 112 == 0x2002:
        found.append(ipaddress.IPv4Address((value >> 80) & 0xFFFFFFFF))
    return found


@pytest.mark.parametrize(
    "address",
    [
        "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
        "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
        "64:ff9b:1::a9fe:a9fe",  # local-use NAT64
        "2002:7f00:1::",  # 6to4 of 127.0.0.1
        "2002:a9fe:a9fe::1",  # 6to4 of 169.254.169.254
        "::127.0.0.1",  # IPv4-compatible
        "::ffff:127.0.0.1",  # IPv4-mapped
        "::ffff:169.254.169.254",
        "fec0::1",  # site-local
        "ff02::1",  # multicast
        "224.0.0.1",
        "100.64.0.1",  # shared address space (carrier NAT)
    ],
)
def test_addresses_that_wrap_or_are_private_are_refused(address: str) -> None:
    assert not accepted(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["64:ff9b::808:808", "::ffff:8.8.8.8", "2002:808:808::1"])
def test_public_ipv4_behind_a_wrapper_is_judged_as_itself(address: str) -> None:
    assert accepted(ipaddress.ip_address(address))


@settings(max_examples=300, deadline=None)
@given(st.ip_addresses(v=4), st.integers(min_value=0, max_value=2**80 - 1))
def test_a_wrapped_ipv4_address_is_judged_like_the_address_itself(
    inner: ipaddress.IPv4Address, rest: int
) -> None:
    verdict = accepted(inner)
    assert verdict == public(inner)
    for address in wrapped(inner, rest):
        assert accepted(address) == verdict, address


@settings(max_examples=500, deadline=None)
@given(st.ip_addresses(v=6))
def test_any_ipv6_address_accepted_is_global_once_unwrapped(
    address: ipaddress.IPv6Address,
) -> None:
    if accepted(address):
        assert public(address) or embedded(address), address
        assert all(public(inner) for inner in embedded(address)), address
        assert address not in NAT64_LOCAL


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://[::1/a.mp3", "is not a valid URL"),
        ("http://example.org:65536/a.mp3", "is not a valid URL"),
        ("http://example.org:99999999/a.mp3", "is not a valid URL"),
        ("http://example.org:port/a.mp3", "is not a valid URL"),
        ("http://exa mple.org/a.mp3", "is not a valid URL"),
        ("http://example.org\x00.evil/a.mp3", "is not a valid URL"),
        ("http://example.org/" + "a" * 9000, "characters long; the limit is 8,192"),
    ],
)
def test_malformed_urls_are_refused_cleanly(url: str, message: str) -> None:
    with pytest.raises(UrlRefusedError, match=message) as caught:
        check_url(url, FetchPolicy())
    assert isinstance(caught.value, InvalidOptionsError)
    assert caught.value.hint


def test_the_url_length_limit_is_a_setting() -> None:
    from cesar_core import Settings

    policy = FetchPolicy.from_settings(Settings(max_url_length=100))
    assert policy.max_url_length == 100
    with pytest.raises(UrlRefusedError, match="the limit is 100"):
        check_url("http://example.org/" + "a" * 100, policy)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://h/a.mp3?password=hunter2&x=1", "https://h/a.mp3?password=***&x=1"),
        (
            "https://h/a?token=t&api_key=k&Signature=s",
            "https://h/a?token=***&api_key=***&Signature=***",
        ),
        (
            "https://b.s3.amazonaws.com/a.mp3?X-Amz-Signature=abc&X-Amz-Credential=id&n=2",
            "https://b.s3.amazonaws.com/a.mp3?X-Amz-Signature=***&X-Amz-Credential=***&n=2",
        ),
        (
            "https://h/a?sig=1&access_token=2&secret=3&key=4",
            "https://h/a?sig=***&access_token=***&secret=***&key=***",
        ),
        ("https://u:pw@h/a?monkey=1&keyword=2", "https://u:***@h/a?monkey=1&keyword=2"),
        ("postgresql://someone:secret@db:5432/x", "postgresql://someone:***@db:5432/x"),
        ("https://h/a.mp3", "https://h/a.mp3"),
    ],
)
def test_redact_hides_passwords_and_secrets_in_the_query(url: str, shown: str) -> None:
    assert redact(url) == shown


# --- A resolver the test controls, servers that must (or must not) be reached ---------


@dataclass
class FakeDNS:
    """Answers for chosen names, in turn (the last one repeats); other names resolve as
    usual. Counts the questions."""

    answers: dict[str, list[list[str]]] = field(default_factory=dict)
    asked: list[str] = field(default_factory=list)

    def getaddrinfo(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        name = host.decode() if isinstance(host, bytes) else host
        if name not in self.answers:
            return REAL_GETADDRINFO(host, port, *args, **kwargs)
        self.asked.append(name)
        queue = self.answers[name]
        addresses = queue.pop(0) if len(queue) > 1 else queue[0]
        port_number = int(port or 0)
        result = []
        for address in addresses:
            if ":" in address:
                result.append(
                    (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, port_number, 0, 0))
                )
            else:
                result.append((socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port_number)))
        return result


REAL_GETADDRINFO = socket.getaddrinfo


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> FakeDNS:
    fake = FakeDNS()
    monkeypatch.setattr(socket, "getaddrinfo", fake.getaddrinfo)
    return fake


@dataclass
class Seen:
    paths: list[str] = field(default_factory=list)
    hosts: list[str] = field(default_factory=list)
    server_names: list[str | None] = field(default_factory=list)


def audio_handler(seen: Seen) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.paths.append(self.path)
            seen.hosts.append(self.headers["Host"])
            body = (DATA / "speech_en.ogg").read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_POST(self) -> None:
            seen.paths.append(self.path)
            seen.hosts.append(self.headers["Host"])
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    return Handler


@pytest.fixture
def loopback() -> Iterator[tuple[int, Seen]]:
    """A plain HTTP server on loopback, and what reached it."""
    seen = Seen()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), audio_handler(seen))
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield httpd.server_address[1], seen
    httpd.shutdown()
    httpd.server_close()


async def fetch_all(url: str, policy: FetchPolicy) -> bytes:
    return b"".join([chunk async for chunk in download(url, policy)])


def test_a_name_rebound_to_loopback_after_the_check_is_never_fetched(
    dns: FakeDNS, loopback: tuple[int, Seen]
) -> None:
    port, seen = loopback
    dns.answers["rebind.test"] = [[PUBLIC], ["127.0.0.1"]]
    policy = FetchPolicy(timeout_seconds=1)
    with pytest.raises(CesarError):
        asyncio.run(fetch_all(f"http://rebind.test:{port}/speech_en.ogg", policy))
    assert seen.paths == []  # the loopback server was never reached
    assert dns.asked == ["rebind.test"]  # one answer, vetted and then connected to


def test_the_connection_keeps_the_name_in_the_host_header(
    dns: FakeDNS, loopback: tuple[int, Seen]
) -> None:
    port, seen = loopback
    dns.answers["audio.test"] = [["127.0.0.1"]]
    policy = FetchPolicy(allow_private=True, timeout_seconds=5)
    body = asyncio.run(fetch_all(f"http://audio.test:{port}/speech_en.ogg", policy))
    assert body == (DATA / "speech_en.ogg").read_bytes()
    assert seen.hosts == [f"audio.test:{port}"]


def _certificate(directory: Path, name: str) -> tuple[Path, Path]:
    key, cert = directory / f"{name}.key", directory / f"{name}.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-keyout", str(key), "-out", str(cert), "-subj", f"/CN={name}",
            "-addext", f"subjectAltName=DNS:{name}",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return key, cert


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[int, Seen, Path, Path]]:
    """An HTTPS server on loopback with a certificate for ``audio.test`` only."""
    seen = Seen()
    key, cert = _certificate(tmp_path, "audio.test")
    _, other = _certificate(tmp_path, "other.test")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.sni_callback = lambda _sock, name, _ctx: seen.server_names.append(name)  # type: ignore[assignment,func-returns-value]
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), audio_handler(seen))
    httpd.daemon_threads = True
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield httpd.server_address[1], seen, cert, other
    httpd.shutdown()
    httpd.server_close()


def test_tls_checks_the_certificate_against_the_name_not_the_address(
    dns: FakeDNS, tls_server: tuple[int, Seen, Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    port, seen, cert, other = tls_server
    dns.answers["audio.test"] = [["127.0.0.1"]]
    policy = FetchPolicy(allow_private=True, timeout_seconds=5)
    url = f"https://audio.test:{port}/speech_en.ogg"
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    assert asyncio.run(fetch_all(url, policy)) == (DATA / "speech_en.ogg").read_bytes()
    assert seen.server_names == ["audio.test"]
    assert seen.hosts == [f"audio.test:{port}"]
    monkeypatch.setenv("SSL_CERT_FILE", str(other))  # trusts only another name's certificate
    with pytest.raises(CesarError, match="CERTIFICATE_VERIFY_FAILED"):
        asyncio.run(fetch_all(url, policy))
    assert len(seen.paths) == 1
