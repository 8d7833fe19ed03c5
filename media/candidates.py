"""Announcing a public address in an SDP answer, for a server behind 1:1 NAT."""

from __future__ import annotations

import re

_HOST_CANDIDATE = re.compile(
    r"^a=candidate:(\S+) (\d+) (udp|UDP) (\d+) (\S+) (\d+) typ host([^\r\n]*)", re.M
)


def announce_public_ip(sdp: str, public_ip: str) -> str:
    """Add, after each host candidate, the same port on `public_ip` (lower priority)."""
    if not public_ip:
        return sdp

    def add(match: re.Match[str]) -> str:
        foundation, component, proto, priority, _ip, port, rest = match.groups()
        public = (
            f"a=candidate:{foundation}p {component} {proto} {max(int(priority) - 1, 1)} "
            f"{public_ip} {port} typ host{rest}"
        )
        return match.group(0) + "\r\n" + public if public_ip != _ip else match.group(0)

    return _HOST_CANDIDATE.sub(add, sdp)
