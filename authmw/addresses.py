"""The client address of a request, believing ``X-Forwarded-For`` only from trusted proxies.

Login throttling counts failures per client address, so the address must be one
a client cannot choose. The TCP peer is such an address; ``X-Forwarded-For`` is
not, because a client can send the header with anything in it. Each proxy
*appends* the address it received the connection from, so only the entries on
the right, added by proxies we run, are facts; everything to their left is
whatever the client wrote.

So: if the peer is not a trusted proxy, the peer is the client and the header is
ignored. If it is, the header is read from the right, skipping the addresses of
trusted proxies, and the first address that is not one of them is the client.
An entry that is not an IP address stops the walk: beyond it nothing can be
believed, and the last trusted hop is the best address known (a proxy of ours
talking for a client we cannot name). The result is always ``None`` or a
canonical IP address string, never text taken verbatim from a header.

Several ``X-Forwarded-For`` header lines form one list (RFC 9110 section 5.3):
join them with ``","`` in the order received before calling
:func:`client_address`. WSGI servers already do.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network

__all__ = ["Network", "client_address", "parse_trusted_proxies"]

#: A trusted proxy network, as :func:`parse_trusted_proxies` returns it.
Network = IPv4Network | IPv6Network

# The IPv4-mapped block ::ffff:0:0/96 (RFC 4291 section 2.5.5.2).
_MAPPED_PREFIX = 96


def parse_trusted_proxies(values: Iterable[str]) -> tuple[Network, ...]:
    """Parse proxy addresses and networks: ``"10.0.0.0/8"``, ``"127.0.0.1"``, ``"::1"``.

    Raises ``ValueError`` on anything else, including a network with host bits
    set (``"10.0.0.1/8"``: did it mean the host or the network?) and an IPv6
    zone (``"fe80::1%eth0"``). IPv4-mapped IPv6 entries become IPv4 networks, as
    the addresses they are compared with do. Raises ``TypeError`` when given one
    string instead of several: iterating it would trust one address per character.
    """
    if isinstance(values, str | bytes):
        raise TypeError("trusted proxies are a sequence of strings, not one string")
    networks: list[Network] = []
    for value in values:
        if not isinstance(value, str):
            # ip_network() also takes integers and bytes; a configuration value is text.
            raise TypeError(f"a trusted proxy is a string, not {type(value).__name__}")
        text = value.strip()
        if "%" in text:
            raise ValueError(f"trusted proxy {value!r}: zone identifiers are not supported")
        try:
            network = ip_network(text, strict=True)
        except ValueError:
            raise ValueError(f"trusted proxy {value!r} is not an IP address or network") from None
        networks.append(_unmap_network(network))
    return tuple(networks)


def client_address(
    peer: str | None,
    forwarded_for: str | None,
    trusted: Sequence[Network],
) -> str | None:
    """Return the address of the client behind ``peer``, or ``None`` if it is unknown.

    ``peer`` is the address of the TCP peer (``REMOTE_ADDR``, the ASGI ``client``);
    ``forwarded_for`` the ``X-Forwarded-For`` value, several header lines joined
    with ``","``; ``trusted`` the networks of the proxies in front of the app.
    A peer that is not an IP address (a Unix socket) gives ``None``.
    """
    if peer is None:
        return None
    hop = _parse(peer)
    if hop is None:
        return None
    if not forwarded_for or not _is_trusted(hop, trusted):
        return str(hop)
    for entry in reversed(forwarded_for.split(",")):
        address = _parse(entry)
        if address is None:
            # Beyond a malformed entry every address could be forged; stop at the
            # last one a trusted proxy vouched for.
            break
        hop = address
        if not _is_trusted(hop, trusted):
            break
    return str(hop)


def _parse(text: str) -> IPv4Address | IPv6Address | None:
    """Parse one address strictly: no port, no brackets, no zone; unmap IPv4-mapped IPv6."""
    text = text.strip(" \t")
    # A zone identifier may hold any character, newline included, and names an
    # interface of the sending host, which means nothing here: refuse it rather
    # than carry header text into logs.
    if "%" in text:
        return None
    try:
        address = ip_address(text)
    except ValueError:
        return None
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        # A dual-stack socket reports IPv4 clients as ::ffff:a.b.c.d; one client
        # must have one address, or it would get two throttling counters.
        return address.ipv4_mapped
    return address


def _unmap_network(network: Network) -> Network:
    if (
        isinstance(network, IPv6Network)
        and network.prefixlen >= _MAPPED_PREFIX
        and network.network_address.ipv4_mapped is not None
    ):
        return IPv4Network((network.network_address.ipv4_mapped, network.prefixlen - 96))
    return network


def _is_trusted(address: IPv4Address | IPv6Address, trusted: Sequence[Network]) -> bool:
    # An IPv4 address is never "in" an IPv6 network (and vice versa): the check is False.
    return any(address in network for network in trusted)
