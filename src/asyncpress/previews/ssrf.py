"""Which addresses a server-side fetch may reach: public ones only."""

from __future__ import annotations

import asyncio
import ipaddress
import socket

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class Refused(Exception):
    """The URL may not be fetched; the message says why."""


def _unwrap(address: IPAddress) -> IPAddress:
    """IPv4-mapped (::ffff:a.b.c.d) and IPv4-compatible (::a.b.c.d) forms, as IPv4."""
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        packed = address.packed
        if packed[:12] == bytes(12) and packed[12:] != bytes(4):
            return ipaddress.IPv4Address(packed[12:])
    return address


def is_public(address: IPAddress) -> bool:
    """Loopback, private, link-local (169.254.169.254 too), multicast, reserved,
    unspecified, shared (100.64/10) and documentation ranges are not public."""
    address = _unwrap(address)
    return address.is_global and not (
        address.is_multicast
        or address.is_reserved
        or address.is_loopback
        or address.is_link_local
        or address.is_unspecified
        or address.is_private
    )


async def system_resolve(host: str, port: int) -> list[str]:
    """Every address the host resolves to (the loop's resolver runs in a thread)."""
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    return sorted({str(info[4][0]) for info in infos})


def vet(host: str, addresses: list[str]) -> str:
    """The address to connect to, if every address of ``host`` is public."""
    if not addresses:
        raise Refused(f"{host} does not resolve")
    for text in addresses:
        address = ipaddress.ip_address(text.split("%", 1)[0])
        if not is_public(address):
            raise Refused(f"{host} resolves to a non-public address ({address})")
    return addresses[0]
