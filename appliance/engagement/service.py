"""The room protocol's messages for polls, quizzes and giveaways (docs/protocol.md), and
each room's share of them (`Engagement`), ticked with the room.

The room hands its messages of these types here (`KINDS`, staff-only `STAFF_ONLY`). This
package sees a room and its clients only through the small protocols below.
"""

from __future__ import annotations

import re
import time
import unicodedata
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol

from babel.support import NullTranslations

from appliance.engagement import giveaways, polls
from appliance.engagement.giveaways import Giveaway
from appliance.engagement.polls import Poll
from appliance.engagement.store import EngagementStore
from appliance.i18n.translate import N_

LINGER = 8.0  # seconds a closed poll is still given to clients who join
NO_ADDRESS = ("", "unknown")
EMAIL_RE = re.compile(r"^[^@\s<>\"',;]{1,64}@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$")

NOTICES = {
    "bad_message": N_("That message was not understood."),
    "not_allowed": N_("Only the show's team can do that."),
    "show_ended": N_("This show has ended: its chat is closed."),
    "not_found": N_("That is no longer there."),
    "poll_closed": N_("This poll is closed."),
    "already_voted": N_("You have already voted."),
    "giveaway_closed": N_("This giveaway is not taking entries."),
    "not_eligible": N_("This giveaway is for viewers who took part: chat, vote or answer."),
    "already_won": N_("You already won a giveaway in this show."),
    "already_entered": N_("Someone on your connection has already entered."),
    "no_entrants": N_("Nobody can be drawn: no entrant is left."),
    "claim_pending": N_("The winner still has time to claim: draw again after that."),
    "bad_email": N_("Enter a valid email address."),
    "claim_over": N_("The time to claim this prize is over."),
}


class Member(Protocol):
    """A client of the room, as this package sees it."""

    viewer: str
    address: str
    name: str | None
    staff_user: int | None
    tr: NullTranslations
    said_hello: bool

    @property
    def staff(self) -> bool: ...

    def send_messages(self, *messages: dict[str, Any]) -> None: ...


class Place(Protocol):
    """A room, as this package sees it."""

    show_id: int
    status: str
    last_said: dict[str, float]  # viewers who chatted

    @property
    def clients(self) -> Iterable[Member]: ...

    @property
    def engagement(self) -> Engagement: ...

    def broadcast(self, message: dict[str, Any]) -> None: ...

    def show_offset(self, now: float | None = None) -> float | None: ...


Act = Callable[[int, int | None, str, str, dict[str, Any]], None]  # the moderation log


class Events(Protocol):
    def add_now(self, show_id: int, viewer: str, kind: str, props: dict[str, Any]) -> None: ...


def notice(client: Member, code: str) -> None:
    client.send_messages({"type": "notice", "code": code, "text": client.tr.gettext(NOTICES[code])})


def clean(text: Any, limit: int) -> str | None:
    """One line of plain text of 1..limit characters, control characters removed."""
    if not isinstance(text, str):
        return None
    text = unicodedata.normalize("NFC", text)
    text = "".join(ch for ch in text if unicodedata.category(ch)[0] != "C").strip()
    return text if text and len(text) <= limit else None


def int_in(msg: dict[str, Any], key: str, low: int, high: int) -> int | None:
    value = msg.get(key)
    if isinstance(value, int) and not isinstance(value, bool) and low <= value <= high:
        return value
    return None


def hint(client: Member) -> str:
    return "" if client.address in NO_ADDRESS else client.address


class Engagement:
    """One room's poll, giveaway and who took part, for this show."""

    def __init__(self, show_id: int, store: EngagementStore | None = None) -> None:
        self.show_id = show_id
        self.store = store
        self.poll: Poll | None = None
        self.closed_at = 0.0  # monotonic time the last poll closed
        self.giveaway: Giveaway | None = None
        self.voters: set[str] = set()
        self.quiz_right: set[str] = set()
        self.winners: set[str] = set()  # one win per viewer per show

    async def load(self) -> None:
        """What the show had before a restart: who voted, found a quiz or won, and the
        poll and giveaway on screen when the server stopped. A poll still within its time
        is open again for what is left of it (its votes kept); one whose time ran out
        meanwhile is closed with the votes it had. The giveaway comes back with its
        entrants and draws: entries go on, and a winner may still claim in time (or, the time
        being up, the prize is drawn again at the first tick)."""
        if self.store is None:
            return
        self.voters, self.quiz_right = await self.store.participants(self.show_id)
        self.winners = await self.store.winners(self.show_id)
        poll = await self.store.last_poll(self.show_id)
        if poll is not None:
            self.poll = poll
            if poll.expired():
                self.close_poll(float("-inf"))  # closed while down: not on screen again
                poll.dirty = False
        giveaway = await self.store.last_giveaway(self.show_id)
        current = giveaway.current if giveaway is not None else None
        if giveaway is not None and (
            giveaway.open
            or (
                current is not None
                and not giveaway.claimed
                and current.viewer not in giveaway.left_out
            )
        ):
            self.giveaway = giveaway  # a claimed prize is over: nothing to show again

    def state(self, now: float | None = None) -> dict[str, Any]:
        """What a joining client gets in `state`: the poll (open, or closed a moment
        ago: its result is still on screen) and the giveaway."""
        now = time.monotonic() if now is None else now
        poll = self.poll
        shown = poll is not None and (poll.open or now - self.closed_at < LINGER)
        giveaway = self.giveaway
        return {
            "poll": poll.message() if poll is not None and shown else None,
            "giveaway": giveaway.message(self.show_id) if giveaway is not None else None,
        }

    def close_poll(self, now: float) -> None:
        poll = self.poll
        if poll is None or not poll.open:
            return
        poll.close()
        self.closed_at = now
        self.quiz_right |= poll.right()
        if self.store is not None:
            self.store.poll_closed(poll)

    def welcome(self, client: Member) -> None:
        """After `state`: staff get the proof of the current draw; a winner who reloaded
        the page is told again that they won, until they claim or the time is up."""
        giveaway = self.giveaway
        current = giveaway.current if giveaway is not None else None
        if giveaway is None or current is None:
            return
        if client.staff:
            staff = giveaway.staff_message()
            if staff is not None:
                client.send_messages(staff)
        elif (
            client.viewer == current.viewer
            and not giveaway.claimed
            and not giveaway.lapsed()
            and current.viewer not in giveaway.left_out
        ):
            client.send_messages(won_message(giveaway, current))

    def draw(self, giveaway: Giveaway) -> giveaways.Draw | None:
        found = giveaway.pick(self.winners)
        if found is not None:
            self.winners.add(found.viewer)
            if self.store is not None:
                self.store.drawn(giveaway, found)
        return found

    def tick(self, now: float, room: Place) -> None:
        """From the room's tick (monotonic `now`): close a poll whose time is up, send
        counts that changed (at most once a second), redraw a prize not claimed in time."""
        poll = self.poll
        if poll is not None:
            if poll.expired():
                self.close_poll(now)
            if poll.due(now):
                room.broadcast(poll.message())
                poll.dirty = False
                poll.sent_at = now
        giveaway = self.giveaway
        if giveaway is None:
            return
        current = giveaway.current
        if current is not None and current.viewer not in giveaway.left_out and giveaway.lapsed():
            giveaway.left_out.add(current.viewer)
            self.winners.discard(current.viewer)
            if self.store is not None:
                self.store.lapsed(giveaway, current)
            announce(room, giveaway, self.draw(giveaway))
        if giveaway.dirty and (not giveaway.open or now - giveaway.sent_at >= polls.RESULT_EVERY):
            room.broadcast(giveaway.message(self.show_id))
            giveaway.dirty = False
            giveaway.sent_at = now


def announce(room: Place, giveaway: Giveaway, found: giveaways.Draw | None) -> None:
    """After a draw: staff get its proof (entrant count, seed hash), the winner's own
    sockets are told, and everyone gets the giveaway with its winner at the next tick."""
    staff = giveaway.staff_message()
    for client in list(room.clients):
        if not client.said_hello:
            continue
        if client.staff:
            if found is None:
                notice(client, "no_entrants")
            elif staff is not None:
                client.send_messages(staff)
        elif found is not None and client.viewer == found.viewer:
            client.send_messages(won_message(giveaway, found))


def won_message(giveaway: Giveaway, found: giveaways.Draw) -> dict[str, Any]:
    return {
        "type": "prize_won",
        "id": giveaway.id,
        "prize": giveaway.prize,
        "claim_until": int(found.claim_until),
    }


class EngagementService:
    def __init__(self, store: EngagementStore, act: Act, events: Events | None = None) -> None:
        self.store = store
        self.act = act  # RoomStore.action: the moderation log
        self.events = events  # the KPI event log

    def new(self, show_id: int) -> Engagement:
        return Engagement(show_id, self.store)

    async def handle(self, room: Place, client: Member, msg: dict[str, Any]) -> None:
        """A message of one of KINDS, from a client that said hello (staff-only kinds
        already checked by the room)."""
        await HANDLERS[msg["type"]](self, room, client, msg)

    def log(self, room: Place, client: Member, action: str, target: str, **details: Any) -> None:
        self.act(room.show_id, client.staff_user, action, target, details)

    def event(self, room: Place, client: Member, kind: str, **props: Any) -> None:
        if self.events is not None:
            self.events.add_now(room.show_id, client.viewer, kind, props)


Handler = Callable[[EngagementService, Place, Member, dict[str, Any]], Awaitable[None]]


async def on_start_poll(
    svc: EngagementService, room: Place, client: Member, msg: dict[str, Any]
) -> None:
    question = clean(msg.get("question"), 200)
    raw = msg.get("options")
    options = (
        [clean(o, 60) for o in raw]
        if isinstance(raw, list) and polls.MIN_OPTIONS <= len(raw) <= polls.MAX_OPTIONS
        else []
    )
    seconds = int_in(msg, "seconds", polls.MIN_SECONDS, polls.MAX_SECONDS)
    correct = int_in(msg, "correct", 0, len(options) - 1)
    if (
        question is None
        or not options
        or any(o is None for o in options)
        or seconds is None
        or (msg.get("correct") is not None and correct is None)
    ):
        notice(client, "bad_message")
        return
    if room.status == "ended":
        notice(client, "show_ended")
        return
    state = room.engagement
    now = time.monotonic()
    state.close_poll(now)
    old = state.poll
    if old is not None and old.dirty:
        room.broadcast(old.message())  # the last counts of the poll it replaces
    poll = Poll(
        svc.store.new_poll_id(),
        question,
        [o for o in options if o is not None],
        time.time() + seconds,
        correct,
    )
    state.poll = poll
    poll.sent_at = now
    room.broadcast(poll.message())
    svc.store.poll_started(room.show_id, poll, room.show_offset(), client.staff_user)
    svc.log(room, client, "start_poll", str(poll.id), seconds=seconds, quiz=poll.quiz)


async def on_vote(svc: EngagementService, room: Place, client: Member, msg: dict[str, Any]) -> None:
    poll = room.engagement.poll
    if client.staff:
        notice(client, "not_allowed")
        return
    if poll is None or not poll.open or poll.expired():
        notice(client, "poll_closed")
        return
    option = int_in(msg, "option", 0, len(poll.options) - 1)
    if option is None:
        notice(client, "bad_message")
        return
    if not poll.vote(client.viewer, hint(client), option):
        notice(client, "already_voted")
        return
    room.engagement.voters.add(client.viewer)
    svc.store.vote(poll, client.viewer, option)
    svc.event(room, client, "vote", poll=poll.id)


async def on_end_poll(
    svc: EngagementService, room: Place, client: Member, msg: dict[str, Any]
) -> None:
    poll = room.engagement.poll
    if poll is None or not poll.open:
        notice(client, "poll_closed")
        return
    room.engagement.close_poll(time.monotonic())
    svc.log(room, client, "end_poll", str(poll.id), counts=poll.counts)


async def on_start_giveaway(
    svc: EngagementService, room: Place, client: Member, msg: dict[str, Any]
) -> None:
    prize = clean(msg.get("prize"), 100)
    rule = msg.get("entrants", "all")
    claim = (
        int_in(msg, "claim_seconds", giveaways.CLAIM_MIN, giveaways.CLAIM_MAX)
        if "claim_seconds" in msg
        else giveaways.CLAIM_DEFAULT
    )
    if prize is None or rule not in giveaways.RULES or claim is None:
        notice(client, "bad_message")
        return
    if room.status == "ended":
        notice(client, "show_ended")
        return
    giveaway = Giveaway(svc.store.new_giveaway_id(), prize, rule, claim)
    room.engagement.giveaway = giveaway
    room.broadcast(giveaway.message(room.show_id))
    giveaway.sent_at = time.monotonic()
    svc.store.giveaway_started(room.show_id, giveaway, client.staff_user)
    svc.log(room, client, "start_giveaway", str(giveaway.id), entrants=rule, claim=claim)


def eligible(room: Place, viewer: str, rule: str) -> bool:
    state = room.engagement
    if rule == "chatters":
        return viewer in room.last_said
    if rule == "voters":
        return viewer in state.voters
    if rule == "quiz":
        return viewer in state.quiz_right
    return True


async def on_enter(
    svc: EngagementService, room: Place, client: Member, msg: dict[str, Any]
) -> None:
    giveaway = room.engagement.giveaway
    if client.staff:
        notice(client, "not_allowed")
        return
    if giveaway is None or not giveaway.open:
        notice(client, "giveaway_closed")
        return
    if client.viewer in room.engagement.winners:
        notice(client, "already_won")
        return
    if not eligible(room, client.viewer, giveaway.rule):
        notice(client, "not_eligible")
        return
    if client.viewer not in giveaway.entrants:
        if not giveaway.enter(client.viewer, client.name or "", hint(client)):
            notice(client, "already_entered")  # one entry per address, as for offers
            return
        svc.store.entered(giveaway, client.viewer, client.name or "")
        svc.event(room, client, "giveaway_entry", giveaway=giveaway.id)
    client.send_messages({"type": "entered", "id": giveaway.id})


async def on_draw(svc: EngagementService, room: Place, client: Member, msg: dict[str, Any]) -> None:
    """Draw (or draw again: another winner of the same prize) among the entrants."""
    giveaway = room.engagement.giveaway
    if giveaway is None:
        notice(client, "not_found")
        return
    current = giveaway.current
    if current is not None and not giveaway.claimed and current.viewer not in giveaway.left_out:
        notice(client, "claim_pending")  # the tick redraws if the time runs out
        return
    found = room.engagement.draw(giveaway)
    announce(room, giveaway, found)
    if found is None:
        return
    svc.log(
        room,
        client,
        "draw",
        str(giveaway.id),
        draw=found.number,
        entrants=found.entrants,
        seed_hash=found.seed_hash,
        entrants_hash=found.entrants_hash,
    )


async def on_claim_prize(
    svc: EngagementService, room: Place, client: Member, msg: dict[str, Any]
) -> None:
    """The winner leaves an email for the retailer."""
    giveaway = room.engagement.giveaway
    current = giveaway.current if giveaway is not None else None
    if giveaway is None or current is None or current.viewer != client.viewer:
        notice(client, "not_allowed")
        return
    if giveaway.claimed:
        client.send_messages({"type": "prize_claimed", "id": giveaway.id})
        return
    if giveaway.lapsed() or client.viewer in giveaway.left_out:
        notice(client, "claim_over")
        return
    email = msg.get("email")
    if not isinstance(email, str) or len(email) > 254 or not EMAIL_RE.match(email.strip()):
        notice(client, "bad_email")
        return
    giveaway.claimed = True
    giveaway.contact = email.strip()
    giveaway.dirty = True
    svc.store.claimed(room.show_id, giveaway, current, email.strip())
    client.send_messages({"type": "prize_claimed", "id": giveaway.id})
    staff = giveaway.staff_message()
    for other in list(room.clients):
        if other.staff and other.said_hello and staff is not None:
            other.send_messages(staff)


HANDLERS: dict[str, Handler] = {
    "start_poll": on_start_poll,
    "vote": on_vote,
    "end_poll": on_end_poll,
    "start_giveaway": on_start_giveaway,
    "enter": on_enter,
    "draw": on_draw,
    "claim_prize": on_claim_prize,
}
KINDS = frozenset(HANDLERS)
STAFF_ONLY = frozenset({"start_poll", "end_poll", "start_giveaway", "draw"})
