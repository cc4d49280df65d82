"""Fetching audio from a URL: streamed, capped, timed out, and never into private networks.

A transcription server that fetches URLs on request is an open door to the machines behind
it (server-side request forgery). Every URL, and every redirect it leads to, is resolved
first and refused when any of its addresses is loopback, private, link-local, reserved or
multicast, unless the operator allows private addresses.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit

from attrs import frozen

from .errors import CesarError, InvalidOptionsError


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


@frozen(kw_only=True)
class FetchPolicy:
    """Limits on fetching audio from URLs."""

    max_bytes: int = 2 * 1024**3
    timeout_seconds: float = 30.0
    max_redirects: int = 5
    allow_private: bool = False


def url_filename(url: str) -> str | None:
    """The last path segment of ``url``, for messages and the stored file's suffix."""
    name = unquote(urlsplit(url).path.rsplit("/", 1)[-1])
    return name or None


def check_url(url: str, policy: FetchPolicy) -> None:
    """Refuse URLs that are not http(s), or whose host resolves to a private address."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UrlRefusedError(
            f"{url!r} is not an http or https URL.", hint="Pass a URL such as https://host/a.mp3"
        )
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise UnresolvableHostError(
            f"The host of {url!r} cannot be resolved ({exc}).", hint="Check the URL."
        ) from None
    if policy.allow_private:
        return
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global or address.is_multicast:
            raise UrlRefusedError(
                f"{url!r} resolves to {address}, a private or local address; Cesar does not "
                "fetch from those.",
                hint="To fetch from your own network, set CESAR_ALLOW_PRIVATE_URLS=1 on the "
                "API nodes and workers.",
            )


async def download(url: str, policy: FetchPolicy) -> AsyncIterator[bytes]:
    """Yield the body of ``url`` in chunks, following at most ``max_redirects`` redirects.

    Each redirect target is checked like the original URL. The size is capped while the body
    streams, whatever the server announced.
    """
    import httpx  # imported here: httpx pulls in click and rich when they are installed

    timeout = httpx.Timeout(policy.timeout_seconds)
    async with httpx.AsyncClient(follow_redirects=False, timeout=timeout) as client:
        for _ in range(policy.max_redirects + 1):
            await asyncio.to_thread(check_url, url, policy)
            try:
                async with client.stream("GET", url) as response:
                    if response.is_redirect and "location" in response.headers:
                        url = urljoin(url, response.headers["location"])
                        continue
                    _check_status(url, response)
                    received = 0
                    async for chunk in response.aiter_bytes():
                        received += len(chunk)
                        if received > policy.max_bytes:
                            raise DownloadRejectedError(
                                f"{url} is larger than the limit of {policy.max_bytes:,} bytes.",
                                hint="Raise max_download_bytes, or send a smaller file.",
                            )
                        yield chunk
                    return
            except httpx.TransportError as exc:
                raise DownloadError(
                    f"Could not fetch {url}: {exc or type(exc).__name__}.",
                    hint="Check that the server is up and reachable from the workers.",
                ) from exc
    raise DownloadRejectedError(
        f"{url} redirected more than {policy.max_redirects} times.", hint="Pass the final URL."
    )


def retryable_status(status: int) -> bool:
    """Whether an HTTP error status may go away by itself: 5xx, timeouts, rate limits."""
    return status >= 500 or status in (408, 429)


def _check_status(url: str, response: Any) -> None:
    status = response.status_code
    if status < 400:
        return
    message = f"Fetching {url} failed with HTTP {status}."
    if retryable_status(status):
        raise DownloadError(message, hint="The server may recover; the job will be retried.")
    raise DownloadRejectedError(message, hint="Check that the URL is right and public.")
