"""Which shop pages may frame the player: the origin of the shop's cart link template plus
embed.allowed_origins. The same list makes the embeddable pages' `frame-ancestors` and the
player's postMessage checks, so a page that may not frame the player cannot talk to it."""

from __future__ import annotations

from urllib.parse import urlsplit


def origin_of(url: str) -> str | None:
    """`scheme://host[:port]` of an http(s) address, lower case; None for anything else
    (a relative link, a template with no host, another scheme)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    host = parts.hostname
    if parts.scheme not in ("http", "https") or not host or "{" in host:
        return None
    if ":" in host:
        host = f"[{host}]"
    default = {"http": 80, "https": 443}[parts.scheme]
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")


def framing_origins(allowed: str, cart_url_template: str) -> tuple[str, ...]:
    """The origins that may frame the player, in a stable order without repeats."""
    found: list[str] = []
    for candidate in [cart_url_template, *allowed.split(",")]:
        origin = origin_of(candidate) if candidate.strip() else None
        if origin and origin not in found:
            found.append(origin)
    return tuple(found)


def embeddable_csp(policy: str, origins: tuple[str, ...]) -> str:
    """`policy` (the pages' CSP, with `frame-ancestors 'self'`) letting `origins` frame
    the page too. The only place an embeddable page's framing rule is made."""
    ancestors = " ".join(("'self'", *origins))
    return policy.replace("frame-ancestors 'self'", f"frame-ancestors {ancestors}")
