"""Who may do what to which show: the one rule every view, the studio, the room socket,
WHIP and the APIs ask.

Roles alone do not decide: a host acts on the shows they host, a moderator on the shows an
admin assigned them to (`show_moderators`), an admin on every show.

| action     | admin | host of the show | assigned moderator | anyone else |
|------------|-------|------------------|--------------------|-------------|
| view       | yes   | yes              | yes                | no          |
| edit       | yes   | yes              | no                 | no          |
| publish    | yes   | yes              | no                 | no          |
| moderate   | yes   | yes              | yes                | no          |
| kpis       | yes   | yes              | no                 | no          |
| replay     | yes   | yes              | no                 | no          |
| assign     | yes   | no               | no                 | no          |
| delete     | yes   | no               | no                 | no          |

A show with no host yet belongs to the admins: no host may see, edit or publish it (nor
take it by naming themselves its host, which is `assign`). A host who schedules a show is
its host. `publish` is whoever may hold the stream key: read it, rotate it, go live, end.
`replay` publishes, renames and trims a show's replay; deleting a replay, like deleting the
show, is `delete`. Staff rights in a live room are decided when the socket connects.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal, get_args

from quart import abort

from appliance.accounts.users import User
from appliance.catalog import shows
from appliance.catalog.shows import Show
from appliance.storage.db import Database

Action = Literal["view", "edit", "publish", "moderate", "assign", "delete", "kpis", "replay"]
ACTIONS: tuple[Action, ...] = get_args(Action)
HOST_ACTIONS: frozenset[Action] = frozenset(
    {"view", "edit", "publish", "moderate", "kpis", "replay"}
)
MODERATOR_ACTIONS: frozenset[Action] = frozenset({"view", "moderate"})


def rule(user: User | None, action: Action, show: Show, assigned: bool) -> bool:
    """The rule itself, pure: `assigned` says whether `user` is among the show's
    moderators (only asked of moderators)."""
    if user is None or not user.active:
        return False
    if user.role == "admin":
        return True
    if user.role == "host":
        return action in HOST_ACTIONS and show.host_id is not None and show.host_id == user.id
    if user.role == "moderator":
        return action in MODERATOR_ACTIONS and assigned
    return False


async def may(db: Database, user: User | None, action: Action, show: Show) -> bool:
    """Whether `user` may do `action` to `show`."""
    assigned = (
        user is not None
        and user.role == "moderator"
        and action in MODERATOR_ACTIONS
        and await shows.is_moderator(db, show.id, user.id)
    )
    return rule(user, action, show, assigned)


async def allowed(db: Database, user: User | None, show: Show) -> frozenset[Action]:
    """Every action `user` may do to `show` (for pages that show or hide controls)."""
    return frozenset([a for a in ACTIONS if await may(db, user, a, show)])


async def show_for(db: Database, user: User | None, show_id: int, action: Action) -> Show:
    """The show if `user` may do `action` to it; else the request ends with 404 (no such
    show), 401 (nobody signed in) or 403."""
    show = await shows.get_show(db, show_id)
    if show is None:
        abort(404)
    if not await may(db, user, action, show):
        abort(401 if user is None else 403)
    return show


async def permitted(
    db: Database, user: User | None, action: Action, items: Iterable[Show]
) -> list[Show]:
    """The shows of `items` that `user` may do `action` to, in the same order (one query
    at most, where `may` would ask once a show)."""
    if user is None:
        return []
    assigned: set[int] = set()
    if user.role == "moderator" and action in MODERATOR_ACTIONS:
        assigned = set(await shows.shows_of_moderator(db, user.id))
    return [s for s in items if rule(user, action, s, s.id in assigned)]


async def visible(db: Database, user: User | None, items: Iterable[Show]) -> list[Show]:
    """The shows of `items` that `user` may `view`: an admin all, the others theirs."""
    return await permitted(db, user, "view", items)


def may_schedule(user: User | None) -> bool:
    """Whether `user` may schedule a new show (admins and hosts; a host is its host)."""
    return user is not None and user.active and user.role in ("admin", "host")


def may_assign_new(user: User | None) -> bool:
    """Whether `user` chooses the host and moderators of a show they schedule: those who
    may `assign` on every show, the admins."""
    return user is not None and user.active and user.role == "admin"
