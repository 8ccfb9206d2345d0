"""Which addresses a server-side fetch may reach: public ones only."""

from __future__ import annotations

import asyncio
import ipaddress
import socket

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class PreviewFailed(Exception):
    """A link that cannot be previewed; ``status`` is what the client is told."""

    status = 502


class Refused(PreviewFailed):
    """The URL may not be fetched; the message says why."""

    status = 422


_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def _unwrap(address: IPAddress) -> IPAddress:
    """An IPv6 address that carries an IPv4 one, as that IPv4 address.

    IPv4-mapped (``::ffff:a.b.c.d``), IPv4-compatible (``::a.b.c.d``), 6to4
    (``2002:AABB:CCDD::/48``) and the NAT64 well-known prefix
    (``64:ff9b::a.b.c.d``): a gateway or relay would deliver each to the
    IPv4 address inside, so that is the address to judge.
    """
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.sixtofour is not None:
            return address.sixtofour
        packed = address.packed
        if address in _NAT64:
            return ipaddress.IPv4Address(packed[12:])
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
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )
    except (socket.gaierror, UnicodeError) as exc:  # no such name, or not a valid one
        raise Refused(f"{host} does not resolve") from exc
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
