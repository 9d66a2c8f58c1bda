"""The HTTP transport webhook deliveries go through: it connects only where the policy allows.

The receiver's name is resolved here, each address judged by the
:class:`~repolink.netpolicy.NetworkPolicy`, and the TCP connection made to the address judged —
never to the name again, so a DNS answer that changes between the check and the connection
(DNS rebinding) changes nothing. TLS still verifies the certificate against the URL's name.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import typing

import httpcore
import httpx

from repolink.netpolicy import NetworkPolicy


class TargetForbidden(Exception):
    """The receiver's every address is one the policy refuses."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _CheckedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, connecting to policy-checked addresses only."""

    def __init__(self, policy: NetworkPolicy) -> None:
        self._policy = policy
        self._backend = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        address = await self._checked_address(host, port, timeout)
        return await self._backend.connect_tcp(
            address,
            port,
            timeout=timeout,
            local_address=local_address,
            socket_options=socket_options,
        )

    async def _checked_address(self, host: str, port: int, timeout: float | None) -> str:
        try:
            infos = await asyncio.wait_for(
                asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM),
                timeout,
            )
        except (OSError, TimeoutError) as exc:
            raise httpcore.ConnectError(f"cannot resolve the receiver's name: {exc}") from None
        refusal = "no address"
        for *_, sockaddr in infos:
            text = str(sockaddr[0])
            refused = self._policy.address_refusal(ipaddress.ip_address(text.split("%")[0]))
            if refused is None:
                return text
            refusal = refused
        raise TargetForbidden(f"the receiver's name resolves to {refusal}")

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise TargetForbidden("a Unix socket")

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


class CheckedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport with no proxy from the environment, over :class:`_CheckedBackend`."""

    def __init__(self, policy: NetworkPolicy) -> None:
        super().__init__(trust_env=False)
        # httpx takes no network backend; its pool is rebuilt with one, as httpx builds it.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            network_backend=_CheckedBackend(policy),
        )
