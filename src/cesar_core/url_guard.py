"""The URL guard: which URLs a server may fetch from or post to, on the operator's terms.

A transcription server that fetches URLs on request is an open door to the machines behind
it (server-side request forgery). Every URL, and every redirect it leads to, is resolved
and refused when any of its addresses is loopback, private, link-local, reserved or
multicast, unless the operator allows private addresses. An IPv6 address that carries an
IPv4 one (IPv4-mapped, IPv4-compatible, 6to4, NAT64) is judged by the IPv4 address inside,
since that is where the packets end up.

This module only decides; it imports no HTTP client, so that the service can refuse a URL
when a job is submitted without loading one. Connections go through
:mod:`cesar_core.guarded_http`, which connects to the very addresses checked here.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from urllib.parse import unquote, urlsplit

from attrs import frozen

from .errors import InvalidOptionsError
from .settings import Settings, redact

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: The longest URL accepted unless ``max_url_length`` says otherwise.
DEFAULT_MAX_URL_LENGTH = 8192
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
#: Local-use NAT64 (RFC 8215): the translator is on the operator's own network.
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")
#: IPv4-compatible addresses (deprecated, but still routed by some stacks).
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")


class UrlRefusedError(InvalidOptionsError):
    """The URL is malformed, or points where Cesar may not fetch from."""

    code = "url_refused"


class UnresolvableHostError(UrlRefusedError):
    """The URL's host name does not resolve (now: DNS may recover)."""

    code = "url_unresolvable"


@frozen(kw_only=True)
class FetchPolicy:
    """Limits on fetching audio from URLs (and on where webhooks may go)."""

    max_bytes: int = 2 * 1024**3
    #: The longest wait for a connection or for the next bytes.
    timeout_seconds: float = 30.0
    #: The whole download, redirects included (``download_timeout_seconds``).
    deadline_seconds: float = 900.0
    #: After ``rate_grace_seconds``, the average rate since the start must stay at least
    #: this (``download_min_bytes_per_second``); 0 turns the check off.
    min_bytes_per_second: float = 1024.0
    rate_grace_seconds: float = 30.0
    max_redirects: int = 5
    #: Longer URLs are refused before anything else is looked at (``max_url_length``).
    max_url_length: int = DEFAULT_MAX_URL_LENGTH
    allow_private: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> FetchPolicy:
        """The limits the operator set (``max_download_bytes``, ``download_*``,
        ``max_url_length``, ``allow_private_urls``)."""
        return cls(
            max_bytes=settings.max_download_bytes,
            deadline_seconds=settings.download_timeout_seconds,
            min_bytes_per_second=settings.download_min_bytes_per_second,
            max_url_length=settings.max_url_length,
            allow_private=settings.allow_private_urls,
        )


def url_filename(url: str) -> str | None:
    """The last path segment of ``url``, for messages and the stored file's suffix."""
    name = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
    return name or None


def shown_url(url: str) -> str:
    shown = redact(url)
    return repr(shown if len(shown) <= 200 else shown[:200] + "...")


def parse_url(url: str, policy: FetchPolicy) -> tuple[str, int]:
    """The host and port of ``url``; :class:`UrlRefusedError` for anything that is not a
    well-formed http(s) URL within ``max_url_length``. Resolves nothing."""
    if len(url) > policy.max_url_length:
        raise UrlRefusedError(
            f"The URL is {len(url):,} characters long; the limit is {policy.max_url_length:,}.",
            hint="Use a shorter URL, or raise max_url_length.",
        )
    try:
        if re.search(r"[\x00-\x1f\x7f]", url):
            raise ValueError("it contains control characters")
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
        if re.search(r"\s", parts.netloc):
            raise ValueError("its host contains spaces")
        if port == 0:
            raise ValueError("port 0")
    except ValueError as exc:
        raise UrlRefusedError(
            f"{shown_url(url)} is not a valid URL ({exc}).",
            hint="Check the host, and the port (1 to 65535); IPv6 hosts go in brackets.",
        ) from None
    if parts.scheme not in ("http", "https") or not host:
        raise UrlRefusedError(
            f"{shown_url(url)} is not an http or https URL.",
            hint="Pass a URL such as https://host/a.mp3",
        )
    return host, port or (443 if parts.scheme == "https" else 80)


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries, if it is one of the forms that reach it:
    IPv4-mapped, IPv4-compatible, 6to4 or NAT64 (64:ff9b::/96)."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64 or address in _IPV4_COMPATIBLE:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public(address: IPAddress) -> bool:
    """Whether Cesar may connect to ``address`` without ``allow_private``: a global unicast
    address, judged by the IPv4 address inside when it carries one."""
    if isinstance(address, ipaddress.IPv6Address):
        if address in _NAT64_LOCAL or address.is_site_local:
            return False
        inner = embedded_ipv4(address)
        if inner is not None:
            return is_public(inner)
    return address.is_global and not (address.is_multicast or address.is_reserved)


def vetted_addresses(
    host: str, port: int, policy: FetchPolicy, *, shown: str | None = None
) -> list[str]:
    """Resolve ``host`` once and return its addresses, all of them allowed by ``policy``.

    Raises :class:`UnresolvableHostError` when the name does not resolve, and
    :class:`UrlRefusedError` when any address is private or local (one bad address is
    enough: which one a client connects to is not ours to predict). Messages name
    ``shown`` (the URL, redacted) when given, else the host.
    """
    shown = shown or repr(host)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError, ValueError) as exc:
        raise UnresolvableHostError(
            f"The host of {shown} cannot be resolved ({exc}).", hint="Check the URL."
        ) from None
    found: dict[IPAddress, None] = {}
    for info in infos:
        if info[0] in (socket.AF_INET, socket.AF_INET6):
            found[ipaddress.ip_address(info[4][0])] = None
    if not found:
        raise UnresolvableHostError(
            f"The host of {shown} cannot be resolved (no IP address).", hint="Check the URL."
        )
    if not policy.allow_private:
        for address in found:
            if not is_public(address):
                raise UrlRefusedError(
                    f"{shown} resolves to {address}, a private or local address; Cesar "
                    "does not fetch from those.",
                    hint="To fetch from your own network, set CESAR_ALLOW_PRIVATE_URLS=1 on "
                    "the API nodes and workers.",
                )
    return [str(address) for address in found]


def check_url(url: str, policy: FetchPolicy) -> None:
    """Refuse URLs that are malformed, not http(s), or whose host resolves to a private
    address: the early answer at submission. The connection is checked again when made."""
    host, port = parse_url(url, policy)
    vetted_addresses(host, port, policy, shown=shown_url(url))
