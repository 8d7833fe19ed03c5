"""Request plumbing shared by every view: the signed-in user, roles, CSRF, rendering."""

from __future__ import annotations

import functools
import secrets
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec, TypeVar

from quart import abort, g, render_template, request, session
from werkzeug.datastructures import MultiDict

from appliance.db import Database
from appliance.shows import Show, get_show
from appliance.users import User

P = ParamSpec("P")
R = TypeVar("R")

CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"


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


def client_address(trust_proxy: bool, connection: Any = None) -> str:
    """The client's address: the proxy's X-Forwarded-For when trusted, else the peer's.

    `connection` is the current request (default) or websocket.
    """
    connection = request if connection is None else connection
    if trust_proxy:
        forwarded = connection.headers.get("X-Forwarded-For", "")
        if forwarded:
            return str(forwarded.split(",")[0].strip())
    return str(connection.remote_addr or "unknown")


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
