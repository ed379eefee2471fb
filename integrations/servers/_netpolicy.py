"""Where an outgoing webhook may point: public addresses, plus networks an operator allows.

A chat user chooses the webhook URL, and the notifications server POSTs to it from inside
the operator's network. Left open, `/notify webhook http://10.0.0.5/admin` or the cloud
metadata address would make the bot a proxy into that network (SSRF). So the address is
checked after name resolution, every resolved address must pass, the connection goes to the
address that was checked (a second lookup could answer differently) and redirects are not
followed. `NOTIFICATIONS_WEBHOOK_ALLOW` (comma-separated networks, e.g. `127.0.0.1/32`)
opens chosen private networks: a receiver on the same host, a test.
"""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Mapping

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

ALLOW_ENV = "NOTIFICATIONS_WEBHOOK_ALLOW"


class AddressRefused(PermissionError):
    """The webhook's host is (or resolves to) an address outside the allowed ones."""


def allowed_networks(environ: Mapping[str, str] | None = None) -> tuple[IPNetwork, ...]:
    """The operator's extra networks; a malformed entry is an error naming it."""
    raw = (os.environ if environ is None else environ).get(ALLOW_ENV, "")
    networks = []
    for entry in filter(None, (part.strip() for part in raw.split(","))):
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError as exc:
            raise ValueError(f"{ALLOW_ENV}: {entry!r} is not a network") from exc
    return tuple(networks)


def check_address(address: IPAddress, allowed: tuple[IPNetwork, ...]) -> None:
    """Pass a public unicast address or one inside `allowed`; refuse anything else."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # judged as the IPv4 address it reaches
    if any(address in network for network in allowed):
        return
    if address.is_global and not address.is_multicast:
        return
    raise AddressRefused(f"{address} is not a public address")


def literal_address(host: str) -> IPAddress | None:
    """The address a host names without a lookup (an IP literal or localhost), else None."""
    name = host.strip("[]").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return ipaddress.ip_address("127.0.0.1")
    try:
        return ipaddress.ip_address(name)
    except ValueError:
        return None


def vetted_address(host: str, port: int, allowed: tuple[IPNetwork, ...]) -> str:
    """Resolve `host`; every address must pass; the first one is where to connect."""
    literal = literal_address(host)
    if literal is not None:
        check_address(literal, allowed)
        return str(literal)
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    for address in addresses:
        check_address(address, allowed)
    return str(addresses[0])
