"""The machine's address on its local network, the one a phone on the same Wi-Fi reaches."""

from __future__ import annotations

import contextlib
import ipaddress
import socket
from urllib.parse import urlsplit

import ifaddr

# A documentation address (RFC 5737): connecting a UDP socket to it sends nothing, but
# makes the kernel choose the source address of the default route.
_PROBE = "192.0.2.1"


def lan_address() -> str | None:
    """The IPv4 address of the default route's interface, else the first private IPv4
    address of any interface; None when the machine has no network but loopback."""
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect((_PROBE, 9))
        address = str(s.getsockname()[0])
        if _usable(address):
            return address
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            if isinstance(ip.ip, str) and _usable(ip.ip) and ipaddress.ip_address(ip.ip).is_private:
                return ip.ip
    return None


def _usable(address: str) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return ip.version == 4 and not (ip.is_loopback or ip.is_unspecified or ip.is_link_local)


def is_loopback_host(host: str) -> bool:
    """Whether a request's Host (name or address, with or without port) names this
    machine itself: there plain HTTP is a secure context and the camera opens."""
    try:
        name = (urlsplit(f"//{host}").hostname or "").lower()
    except ValueError:  # "[not-an-address": nothing of this machine's
        return False
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False
