"""An httpx client that connects only to addresses the URL guard has vetted.

Checking a host name and then letting the HTTP client resolve it again leaves a gap: the
name can answer a public address to the check and a loopback one to the connection (DNS
rebinding). Here each new connection resolves its host once, through
:func:`~cesar_core.fetch.vetted_addresses`, and connects to an address that passed. The
request still names the host: httpcore sends it in the ``Host`` header and hands it to TLS
as the server name, so the certificate is checked against the name, not the address.

Proxies from the environment are not used: a proxy resolves names itself, out of the
guard's sight.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import httpcore
import httpx

from .url_guard import FetchPolicy, vetted_addresses

SocketOption = (
    tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]
)


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, with every TCP connection going through the guard."""

    def __init__(
        self, policy: FetchPolicy, inner: httpcore.AsyncNetworkBackend | None = None
    ) -> None:
        self.policy = policy
        self.inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        """Resolve ``host`` once, refuse it unless every address passes, then connect to
        the addresses in the resolver's order until one answers."""
        addresses = await asyncio.to_thread(vetted_addresses, host, port, self.policy)
        failure: Exception | None = None
        for address in addresses:
            try:
                return await self.inner.connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None  # vetted_addresses never returns an empty list
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("Cesar does not fetch from Unix sockets.")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport (its errors, streaming and TLS defaults) on a connection pool
    whose connections go through :class:`GuardedBackend`."""

    def __init__(self, policy: FetchPolicy) -> None:
        ssl_context = httpx.create_ssl_context()  # honours SSL_CERT_FILE / SSL_CERT_DIR
        super().__init__(verify=ssl_context, trust_env=False)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context, network_backend=GuardedBackend(policy)
        )


def guarded_client(policy: FetchPolicy, timeout: float) -> httpx.AsyncClient:
    """A client that follows no redirect by itself (each hop is checked by its caller),
    reads no proxy or ``.netrc`` from the environment, and connects only where
    ``policy`` allows."""
    return httpx.AsyncClient(
        transport=GuardedTransport(policy),
        follow_redirects=False,
        timeout=timeout,
        trust_env=False,
    )
