"""Request plumbing shared by every view: the signed-in user, roles, CSRF, rendering,
the viewer cookie and the same-origin check of the viewer pages' requests."""

from __future__ import annotations

import functools
import ipaddress
import secrets
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar
from urllib.parse import urlsplit

from quart import abort, g, render_template, request, session
from werkzeug.datastructures import MultiDict

from appliance.accounts.users import User
from appliance.catalog.shows import Show, get_show
from appliance.config import DEFAULT_TRUSTED_PROXIES, ServerSettings
from appliance.storage.db import Database

P = ParamSpec("P")
R = TypeVar("R")
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
VIEWER_COOKIE = "vitrine_viewer"


def current_user() -> User | None:
    user: User | None = getattr(g, "user", None)
    return user


def csrf_token() -> str:
    token = session.get(CSRF_FIELD)
    if not token:
        token = session[CSRF_FIELD] = secrets.token_urlsafe(32)
    return str(token)


def csrf_ok(form: MultiDict[str, str]) -> bool:
    expected = session.get(CSRF_FIELD)
    given = form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER, "")
    return bool(expected) and secrets.compare_digest(str(expected), given)


def staff_required(*roles: str) -> Callable[[Callable[P, Awaitable[R]]], Callable[P, Awaitable[R]]]:
    """Only signed-in staff with one of `roles` (any staff role when none given)."""

    def decorate(view: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
        @functools.wraps(view)
        async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            user = current_user()
            if user is None:
                abort(401)
            if roles and user.role not in roles:
                abort(403)
            return await view(*args, **kwargs)

        return wrapper

    return decorate


admin_required = staff_required("admin")


async def render(template: str, status: int = 200, **context: Any) -> tuple[str, int]:
    return await render_template(template, **context), status


def client_address(server: ServerSettings | bool, connection: Any = None) -> str:
    """The client's address, as rate limits and moderation key on it.

    The direct peer's address, unless forwarded headers are on (`server.proxy_headers`)
    and the peer is one of `server.trusted_proxies`: then the right-most X-Forwarded-For
    hop that is not itself a trusted proxy. Hops left of it were written by the client
    (or by proxies nobody vouches for) and are never believed. `server` may be a bare
    bool (forwarded headers on or off, loopback trusted). `connection` is the current
    request (default) or websocket, or anything with `headers` and `remote_addr`.
    """
    connection = request if connection is None else connection
    peer = _ip(connection.remote_addr)
    if peer is None:
        return str(connection.remote_addr or "unknown")
    if isinstance(server, bool):
        enabled, trusted = server, trusted_networks(DEFAULT_TRUSTED_PROXIES)
    else:
        enabled, trusted = server.proxy_headers, trusted_networks(server.trusted_proxies)
    if not enabled or not _trusted(peer, trusted):
        return str(peer)
    hops = ",".join(connection.headers.getlist("X-Forwarded-For")).split(",")
    client = peer
    for hop in reversed(hops):
        address = _ip(hop)
        if address is None:
            break  # garbage from the far side of a proxy: the proxy is all we know
        client = address
        if not _trusted(address, trusted):
            break
    return str(client)


def _ip(value: Any) -> IPAddress | None:
    """An IP address from a peer address or an X-Forwarded-For hop (which may carry a
    port, or brackets around an IPv6 address), or None."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if text.startswith("[") and "]" in text:
        text = text[1 : text.index("]")]
    elif text.count(":") == 1:
        text = text.partition(":")[0]  # an IPv4 address with a port
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: IPAddress, networks: tuple[IPNetwork, ...]) -> bool:
    return any(address.version == n.version and address in n for n in networks)


@functools.lru_cache(maxsize=8)
def trusted_networks(value: str) -> tuple[IPNetwork, ...]:
    """The networks of a `server.trusted_proxies` value (checked at start by config)."""
    return tuple(
        ipaddress.ip_network(part, strict=False)
        for part in (p.strip() for p in value.split(","))
        if part
    )


async def show_or_404(
    db: Database, show_id: int, not_found: Callable[[], Any] | None = None
) -> Show:
    """The show, or the request ends: 404, or the response `not_found()` makes."""
    show = await get_show(db, show_id)
    if show is None:
        abort(not_found() if not_found is not None else 404)
    return show


async def uploaded_bytes(field: str) -> bytes | None:
    """The bytes of an uploaded file field, or None when no file was chosen."""
    files = await request.files
    storage = files.get(field)
    if storage is None or not storage.filename:
        return None
    data: bytes = storage.read()
    return data


def valid_viewer(value: str | None) -> str | None:
    """The viewer id from the cookie the show page sets, if it looks like one."""
    if not value or not 16 <= len(value) <= 64:
        return None
    return value if value.replace("-", "").replace("_", "").isalnum() else None


def allowed_origin(origin: str | None, base_url: str, host: str | None) -> bool:
    """Only pages of this server may open the room socket or report events (no cross-site
    websocket hijacking, no events forged from another site)."""
    if not origin:
        return False
    parts = urlsplit(origin)
    if parts.scheme not in ("http", "https"):
        return False
    if origin.rstrip("/") == base_url.rstrip("/"):
        return True
    return bool(host) and parts.netloc == host
