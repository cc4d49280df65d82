"""Fetching audio from a URL: streamed, capped, timed, and never into private networks.

Which URLs may be fetched is decided by :mod:`cesar_core.url_guard` (re-exported here);
every redirect is checked again. The check and the connection use one answer: the
connection goes to the address that was checked (see :mod:`cesar_core.guarded_http`), so a
name that answers a public address first and a loopback one next (DNS rebinding) gets
nowhere. httpx is imported only when a download starts.

A download also has an overall deadline and a minimum rate, and stops when its caller says
so: a server that sends a byte now and then must not hold a worker slot forever.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import urljoin

from .errors import CesarError
from .settings import redact
from .url_guard import (
    DEFAULT_MAX_URL_LENGTH,
    FetchPolicy,
    UnresolvableHostError,
    UrlRefusedError,
    check_url,
    parse_url,
    shown_url,
    url_filename,
    vetted_addresses,
)

__all__ = [
    "DEFAULT_MAX_URL_LENGTH",
    "DownloadError",
    "DownloadRejectedError",
    "DownloadStopped",
    "FetchPolicy",
    "UnresolvableHostError",
    "UrlRefusedError",
    "check_url",
    "download",
    "parse_url",
    "retryable_status",
    "url_filename",
    "vetted_addresses",
]

T = TypeVar("T")

#: How often a waiting download asks its caller whether to stop.
STOP_POLL_SECONDS = 0.1


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
                f"{shown_url(self.url)} did not finish within {policy.deadline_seconds:g} s "
                f"({received:,} bytes received).",
                hint="Raise download_timeout_seconds for large files or slow servers.",
            )
        rate = policy.min_bytes_per_second
        if rate > 0 and elapsed >= policy.rate_grace_seconds and received < rate * elapsed:
            raise DownloadError(
                f"{shown_url(self.url)} arrived slower than {rate:,g} bytes/s "
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
                                    f"{shown_url(url)} is larger than the limit of "
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
                    f"{shown_url(url)} is not a valid URL ({exc}).", hint="Check the URL."
                ) from None
            except httpx.TransportError as exc:
                raise DownloadError(
                    f"Could not fetch {redact(url)}: {exc or type(exc).__name__}.",
                    hint="Check that the server is up and reachable from the workers.",
                ) from exc
    raise DownloadRejectedError(
        f"{shown_url(url)} redirected more than {policy.max_redirects} times.",
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
