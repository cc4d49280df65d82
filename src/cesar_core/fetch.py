"""Fetching audio from a URL: streamed, capped, timed, and never into private networks.

A transcription server that fetches URLs on request is an open door to the machines behind
it (server-side request forgery). Every URL, and every redirect it leads to, is resolved
and refused when any of its addresses is loopback, private, link-local, reserved or
multicast, unless the operator allows private addresses. An IPv6 address that carries an
IPv4 one (IPv4-mapped, IPv4-compatible, 6to4, NAT64) is judged by the IPv4 address inside,
since that is where the packets end up.

The check and the connection use one answer: the connection goes to the address that was
checked (see :mod:`cesar_core.guarded_http`), so a name that answers a public address first
and a loopback one next (DNS rebinding) gets nowhere.

A download also has an overall deadline and a minimum rate, and stops when its caller says
so: a server that sends a byte now and then must not hold a worker slot forever.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import unquote, urljoin, urlsplit

from attrs import frozen

from .errors import CesarError, InvalidOptionsError
from .settings import Settings, redact

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
T = TypeVar("T")

#: The longest URL accepted unless ``max_url_length`` says otherwise.
DEFAULT_MAX_URL_LENGTH = 8192
#: How often a waiting download asks its caller whether to stop.
STOP_POLL_SECONDS = 0.1
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


class DownloadError(CesarError):
    """The server could not be reached or failed (5xx, 429, timeouts); worth retrying."""

    code = "download_failed"
    permanent = False


class DownloadRejectedError(CesarError):
    """The server answered, but not with the audio (4xx, too large, too many redirects)."""

    code = "download_rejected"


class DownloadStopped(Exception):
    """The caller's ``stop`` check turned true: the job was cancelled or deleted, or its
    worker is stopping. Not an error of the download: the caller decides what follows."""


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


def _shown(url: str) -> str:
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
            f"{_shown(url)} is not a valid URL ({exc}).",
            hint="Check the host, and the port (1 to 65535); IPv6 hosts go in brackets.",
        ) from None
    if parts.scheme not in ("http", "https") or not host:
        raise UrlRefusedError(
            f"{_shown(url)} is not an http or https URL.",
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
    vetted_addresses(host, port, policy, shown=_shown(url))


class _Clock:
    """The overall deadline, the minimum rate and the caller's stop check of one download."""

    def __init__(self, url: str, policy: FetchPolicy, stop: Callable[[], bool] | None) -> None:
        self.url, self.policy, self.stop = url, policy, stop
        self.started = time.monotonic()

    def check(self, received: int) -> None:
        if self.stop is not None and self.stop():
            raise DownloadStopped
        policy, elapsed = self.policy, time.monotonic() - self.started
        if elapsed >= policy.deadline_seconds:
            raise DownloadError(
                f"{_shown(self.url)} did not finish within {policy.deadline_seconds:g} s "
                f"({received:,} bytes received).",
                hint="Raise download_timeout_seconds for large files or slow servers.",
            )
        rate = policy.min_bytes_per_second
        if rate > 0 and elapsed >= policy.rate_grace_seconds and received < rate * elapsed:
            raise DownloadError(
                f"{_shown(self.url)} arrived slower than {rate:,g} bytes/s "
                f"({received:,} bytes in {elapsed:.1f} s).",
                hint="Lower download_min_bytes_per_second for slow servers (0 turns it off).",
            )

    def next_check(self, received: int) -> float:
        """Seconds until :meth:`check` could fail if nothing more arrives."""
        policy = self.policy
        at = self.started + policy.deadline_seconds
        if policy.min_bytes_per_second > 0:
            starved = max(policy.rate_grace_seconds, received / policy.min_bytes_per_second)
            at = min(at, self.started + starved)
        wait = at - time.monotonic()
        return min(wait, STOP_POLL_SECONDS) if self.stop is not None else wait

    async def within(self, step: Awaitable[T], received: int) -> T:
        """Await ``step``, but no longer than the deadline, the rate or the caller allow."""
        task = asyncio.ensure_future(step)
        try:
            while True:
                self.check(received)
                done, _ = await asyncio.wait({task}, timeout=max(0.0, self.next_check(received)))
                if done:
                    return task.result()
        finally:
            if not task.done():
                task.cancel()
                await asyncio.wait({task})


class _Pump:
    """Reads a response body in a task of its own, a few chunks ahead.

    Waiting for the next chunk can then be given up, to check the deadline, the rate or
    the caller's stop, without cancelling a read halfway; and while bytes flow, a chunk is
    taken without a timer or a task of its own (a task per chunk cost a third of the
    throughput on loopback).
    """

    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        self.queue: asyncio.Queue[bytes | Exception | None] = asyncio.Queue(maxsize=8)
        self.task = asyncio.create_task(self._read(chunks))

    async def _read(self, chunks: AsyncIterator[bytes]) -> None:
        try:
            async for chunk in chunks:
                await self.queue.put(chunk)
            await self.queue.put(None)
        except Exception as exc:  # handed to the reader of the queue
            await self.queue.put(exc)

    async def next(self, clock: _Clock, received: int) -> bytes | None:
        """The next chunk, None at the end; raises what reading raised."""
        while True:
            clock.check(received)
            try:
                item = self.queue.get_nowait()
            except asyncio.QueueEmpty:
                try:
                    async with asyncio.timeout(max(0.0, clock.next_check(received))):
                        item = await self.queue.get()
                except TimeoutError:
                    continue
            if isinstance(item, Exception):
                raise item
            return item

    async def close(self) -> None:
        self.task.cancel()
        await asyncio.wait({self.task})


async def download(
    url: str, policy: FetchPolicy, *, stop: Callable[[], bool] | None = None
) -> AsyncGenerator[bytes, None]:
    """Yield the body of ``url`` in chunks, following at most ``max_redirects`` redirects.

    Each redirect target is checked like the original URL, when its connection is made.
    The size is capped while the body streams, whatever the server announced. Raises
    :class:`DownloadStopped` soon after ``stop()`` turns true (it is asked every
    :data:`STOP_POLL_SECONDS` while the download waits).
    """
    import httpx  # imported here: httpx pulls in click and rich when they are installed

    from .guarded_http import guarded_client

    clock = _Clock(url, policy, stop)
    async with guarded_client(policy, policy.timeout_seconds) as client:
        for _ in range(policy.max_redirects + 1):
            parse_url(url, policy)
            try:
                request = client.build_request("GET", url)
                response = await clock.within(client.send(request, stream=True), 0)
                try:
                    if response.is_redirect and "location" in response.headers:
                        url = urljoin(url, response.headers["location"])
                        continue
                    _check_status(url, response)
                    received = 0
                    pump = _Pump(response.aiter_bytes())
                    try:
                        while (chunk := await pump.next(clock, received)) is not None:
                            received += len(chunk)
                            if received > policy.max_bytes:
                                raise DownloadRejectedError(
                                    f"{_shown(url)} is larger than the limit of "
                                    f"{policy.max_bytes:,} bytes.",
                                    hint="Raise max_download_bytes, or send a smaller file.",
                                )
                            yield chunk
                    finally:
                        await pump.close()
                    return
                finally:
                    await response.aclose()
            except httpx.InvalidURL as exc:
                raise UrlRefusedError(
                    f"{_shown(url)} is not a valid URL ({exc}).", hint="Check the URL."
                ) from None
            except httpx.TransportError as exc:
                raise DownloadError(
                    f"Could not fetch {redact(url)}: {exc or type(exc).__name__}.",
                    hint="Check that the server is up and reachable from the workers.",
                ) from exc
    raise DownloadRejectedError(
        f"{_shown(url)} redirected more than {policy.max_redirects} times.",
        hint="Pass the final URL.",
    )


def retryable_status(status: int) -> bool:
    """Whether an HTTP error status may go away by itself: 5xx, timeouts, rate limits."""
    return status >= 500 or status in (408, 429)


def _check_status(url: str, response: Any) -> None:
    status = response.status_code
    if status < 400:
        return
    message = f"Fetching {redact(url)} failed with HTTP {status}."
    if retryable_status(status):
        raise DownloadError(message, hint="The server may recover; the job will be retried.")
    raise DownloadRejectedError(message, hint="Check that the URL is right and public.")
