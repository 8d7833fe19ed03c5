"""Who may read /metrics: nobody unless a token is set; then that bearer token, or a
client whose address is in `metrics.allow` (addresses or networks)."""

from __future__ import annotations

import hmac
import ipaddress

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def allowed_networks(allow: str) -> tuple[Network, ...]:
    return tuple(
        ipaddress.ip_network(p.strip(), strict=False) for p in allow.split(",") if p.strip()
    )


def decide(token: str, allow: tuple[Network, ...], address: str, authorization: str | None) -> int:
    """The HTTP status for a scrape: 200 to answer it, 404 while metrics are off (the
    endpoint does not exist), 401 for a missing or wrong token."""
    if not token:
        return 404
    try:
        client = ipaddress.ip_address(address)
    except ValueError:
        client = None
    if client is not None and any(client in network for network in allow):
        return 200
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode()):
        return 200
    return 401
