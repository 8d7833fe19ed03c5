"""What each message of the live room protocol does (docs/protocol.md).

One small function per client message type, looked up in `HANDLERS`; staff-only types
are checked against the client's role before their handler runs.
"""

from __future__ import annotations

import re
import time
import unicodedata
from collections.abc import Awaitable, Callable
from typing import Any

from appliance.catalog import products, shows
from appliance.catalog.products import show_link
from appliance.catalog.shop import Shop
from appliance.engagement import service as engagement
from appliance.engagement.codes import CodePool, parse_codes
from appliance.engagement.service import EngagementService
from appliance.i18n import locales
from appliance.i18n.translate import N_
from appliance.kpis.events import EventLog
from appliance.room.hub import CLOSE_POLICY, Client, Room, RoomHub, fold
from appliance.room.sanctions import HINT_SECONDS, NO_ADDRESS
from appliance.room.store import RoomStore
from appliance.storage.db import Database

MAX_TEXT = 300
NAME_MIN, NAME_MAX = 2, 24
CODE_RE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
RESERVED_NAMES = {"admin", "administrator", "moderator", "host", "staff", "vitrine", "system"}
RESERVED = {fold(name) for name in RESERVED_NAMES}  # compared as they look


NOTICES = {
    "bad_message": N_("That message was not understood."),
    "rate_limited": N_("Slow down a little: some of your messages were not sent."),
    "too_long": N_("Messages are limited to 300 characters."),
    "no_name": N_("Choose a name before you chat."),
    "name_invalid": N_("Names are 2 to 24 letters or digits, and cannot be a staff name."),
    "name_taken": N_("Someone here already uses that name."),
    "muted": N_("A moderator muted you for a while."),
    "slow_mode": N_("Slow mode is on: wait a little before your next message."),
    "chat_closed": N_("The chat is closed."),
    "not_allowed": N_("Only the show's team can do that."),
    "not_found": N_("That is no longer there."),
    "offer_gone": N_("This offer is over or all codes are taken."),
    "banned": N_("You cannot take part in this show's chat."),
    "too_many_connections": N_(
        "Too many chat connections from your network: close another tab and reload."
    ),
    "show_ended": N_("This show has ended: its chat is closed."),
    "no_address": N_("That viewer's connection is no longer known: ban the viewer instead."),
}


def notice(client: Client, code: str) -> None:
    now = time.monotonic()
    if code == "rate_limited" and now - client.last_notice < 1.0:
        return
    client.last_notice = now
    client.send_messages({"type": "notice", "code": code, "text": client.tr.gettext(NOTICES[code])})


def clean(text: Any, limit: int) -> str | None:
    """Plain text of at most `limit` characters, control characters removed."""
    if not isinstance(text, str):
        return None
    text = unicodedata.normalize("NFC", text)
    text = "".join(ch for ch in text if ch in "\n" or unicodedata.category(ch)[0] != "C")
    text = text.strip()
    return text if text and len(text) <= limit else None


def product_card(
    product: products.Product,
    show_id: int,
    shop: Shop,
    viewer_image: Callable[[str | None], str | None] = lambda name: name,
) -> dict[str, Any]:
    """The pinned product as viewers get it; its image is the resized copy for phones."""
    image = viewer_image(product.image)
    return {
        "id": product.id,
        "name": product.name,
        "price": locales.format_money(product.price_minor, product.currency, shop.language),
        "price_minor": product.price_minor,
        "currency": product.currency,
        "image": f"/uploads/{image}" if image else None,
        "cart_url": show_link(product.cart_link(shop.cart_url_template), show_id),
        "product_url": show_link(product.product_url, show_id),
    }


class RoomService:
    """The live rooms' behaviour, with what it needs from the rest of Vitrine."""

    def __init__(
        self,
        db: Database,
        store: RoomStore,
        shop: Callable[[], Awaitable[Shop]],
        events: EventLog | None = None,
        viewer_image: Callable[[str | None], str | None] = lambda name: name,
        engagement: EngagementService | None = None,
    ) -> None:
        self.db = db
        self.store = store
        self.shop = shop
        self.events = events  # KPI events: chat and like
        self.viewer_image = viewer_image  # UploadStore.viewer_name
        self.engagement = engagement  # polls, quizzes and giveaways (appliance/engagement)
        self.hub = RoomHub(self.load_room)
        self._staff_names: set[str] = set()
        self._staff_names_at = -1e9

    async def load_room(self, show_id: int) -> Room:
        show = await shows.get_show(self.db, show_id)
        if show is None:
            raise LookupError(show_id)
        room = Room(show_id, show.status, show.live_started_at)
        if self.engagement is not None:
            room.engagement = self.engagement.new(show_id)
            await room.engagement.load()
        for message, viewer in await self.store.recent(show_id):
            room.remember(message, viewer, "")
            room.sanctions.seen(viewer, 0.0)  # they were here before this start
        for sanction in await self.store.sanctions(show_id):
            room.sanctions.add(sanction)
        pinned = await self.store.open_pin(show_id)
        if pinned is not None:
            product = await products.get_product(self.db, pinned)
            if product is not None:
                room.product = product_card(product, show_id, await self.shop(), self.viewer_image)
        return room

    def show_status(self, show_id: int, status: str, live_started_at: float | None) -> None:
        """The show went live or ended: everyone in its room hears it."""
        room = self.hub.rooms.get(show_id)
        if room is None:
            return
        room.status = status
        room.live_started_at = live_started_at
        room.broadcast({"type": "status", "status": status})

    async def handle(self, room: Room, client: Client, message: Any) -> None:
        kind = message.get("type") if isinstance(message, dict) else None
        handler = HANDLERS.get(kind) if isinstance(kind, str) else None
        if handler is None:
            client.bad_frames += 1
            if client.bad_frames >= 20:
                client.close(CLOSE_POLICY)
            notice(client, "bad_message")
            return
        client.bad_frames = 0
        if not client.said_hello and kind != "hello":
            notice(client, "bad_message")
            return
        if kind in STAFF_ONLY and not client.staff:
            notice(client, "not_allowed")
            return
        await handler(self, room, client, message)

    async def valid_name(self, room: Room, client: Client, raw: Any) -> str | None:
        name = clean(raw, NAME_MAX)
        if name is None or len(name) < NAME_MIN or "\n" in name:
            notice(client, "name_invalid")
            return None
        folded = fold(name)
        if not folded or folded in RESERVED or folded in await self.staff_names():
            notice(client, "name_invalid")
            return None
        if folded in room.names_in_use(client):
            notice(client, "name_taken")
            return None
        return name

    async def staff_names(self) -> set[str]:
        """Staff names as folded for comparison; read at most every 30 s, not per join."""
        now = time.monotonic()
        if now - self._staff_names_at > 30:
            rows = await self.db.fetchall("SELECT name FROM users")
            self._staff_names = {fold(row["name"]) for row in rows}
            self._staff_names_at = now
        return self._staff_names

    def send_sanctions(self, room: Room, to: Client | None = None) -> None:
        """The room's mutes and bans, to one staff client or to all staff in the room."""
        message = {"type": "sanctions", "sanctions": room.sanctions.listing()}
        for client in [to] if to is not None else list(room.clients):
            if client.staff and client.said_hello:
                client.send_messages(message)

    def log(
        self, room: Room, client: Client, action: str, target: str = "", **details: Any
    ) -> None:
        self.store.action(room.show_id, client.staff_user, action, target, details)


Handler = Callable[[RoomService, Room, Client, dict[str, Any]], Awaitable[None]]


async def on_hello(svc: RoomService, room: Room, client: Client, msg: dict[str, Any]) -> None:
    if client.said_hello:
        return
    if not client.staff and msg.get("name") is not None:
        client.name = await svc.valid_name(room, client, msg.get("name"))
    client.said_hello = True
    room.sanctions.seen(client.viewer)
    client.send_messages(
        {
            "type": "welcome",
            "v": 1,
            "viewer": client.viewer,
            "name": client.name,
            "staff": client.staff,
            "role": client.role,
        },
        room.state(),
    )
    room.engagement.welcome(client)  # a reloaded winner's page, the draw's proof to staff
    if client.staff:
        svc.send_sanctions(room, client)


async def on_set_name(svc: RoomService, room: Room, client: Client, msg: dict[str, Any]) -> None:
    if client.staff:
        notice(client, "not_allowed")
        return
    name = await svc.valid_name(room, client, msg.get("name"))
    if name is not None:
        client.name = name
        client.send_messages({"type": "named", "name": name})


async def on_chat(svc: RoomService, room: Room, client: Client, msg: dict[str, Any]) -> None:
    text = msg.get("text")
    if isinstance(text, str) and len(text.strip()) > MAX_TEXT:
        notice(client, "too_long")
        return
    text = clean(text, MAX_TEXT)
    if text is None:
        notice(client, "bad_message")
        return
    if client.name is None:
        notice(client, "no_name")
        return
    if room.status == "ended":
        notice(client, "show_ended")
        return
    now = time.time()
    if not client.staff:
        if not room.chat_open:
            notice(client, "chat_closed")
            return
        if room.is_muted(client):
            notice(client, "muted")
            return
        if room.slow_mode and now - room.last_said.get(client.viewer, 0) < room.slow_mode:
            notice(client, "slow_mode")
            return
        if not client.chat_bucket.take():
            notice(client, "rate_limited")
            return
    room.last_said[client.viewer] = now
    message = {
        "type": "chat",
        "id": svc.store.new_message_id(),
        "name": client.name,
        "text": text,
        "staff": client.staff,
        "question": bool(msg.get("question")) and not client.staff,
        "answered": False,
        "at": room.show_offset(now),
    }
    room.remember(message, client.viewer, client.address)
    room.broadcast(message)
    room.chat_total += 1
    svc.store.chat(message, room.show_id, client.viewer, client.staff_user)
    if svc.events is not None and not client.staff:
        svc.events.add_now(room.show_id, client.viewer, "chat", {})


async def on_heart(svc: RoomService, room: Room, client: Client, msg: dict[str, Any]) -> None:
    count = msg.get("count", 1)
    if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= 10:
        notice(client, "bad_message")
        return
    if room.status == "ended":
        notice(client, "show_ended")
        return
    if not client.heart_bucket.take():
        notice(client, "rate_limited")
        return
    room.hearts += count
    room.hearts_total += count
    if svc.events is not None and not client.staff:
        svc.events.add_now(room.show_id, client.viewer, "like", {"count": count})


async def on_ping(svc: RoomService, room: Room, client: Client, msg: dict[str, Any]) -> None:
    client.send_messages({"type": "pong"})


async def on_claim_offer(svc: RoomService, room: Room, client: Client, msg: dict[str, Any]) -> None:
    offer = room.offer
    if offer is None or offer["quantity"] is None:
        notice(client, "offer_gone")
        return
    # One unit per viewer id and per address: a client that reconnects without its
    # cookie from the same address gets the code it already has, not another unit.
    address = "" if client.address in NO_ADDRESS else client.address
    pool: CodePool | None = offer.get("pool")
    if pool is not None:
        await claim_single_use(svc, room, client, offer, pool, address)
        return
    claimed = client.viewer in room.offer_claims or (address and address in room.offer_addresses)
    if not claimed:
        if offer["remaining"] <= 0:
            notice(client, "offer_gone")
            return
        room.offer_claims.add(client.viewer)
        if address:
            room.offer_addresses.add(address)
        offer["remaining"] -= 1
        svc.store.claim(room.show_id, offer["key"], client.viewer, address)
        room.broadcast({"type": "offer", "offer": room.public_offer()})
    client.send_messages({"type": "offer_code", "code": offer["code"]})


# -- staff -------------------------------------------------------------------------


async def on_pin_product(svc: RoomService, room: Room, client: Client, msg: dict[str, Any]) -> None:
    product_id = msg.get("product")
    lineup = {p.id: p for p in await shows.lineup(svc.db, room.show_id)}
    if not isinstance(product_id, int) or product_id not in lineup:
        notice(client, "not_found")
        return
    room.product = product_card(
        lineup[product_id], room.show_id, await svc.shop(), svc.viewer_image
    )
    room.broadcast({"type": "product", "product": room.product})
    svc.store.pin(room.show_id, product_id, room.show_offset())
    svc.log(room, client, "pin_product", str(product_id))


async def on_unpin_product(
    svc: RoomService, room: Room, client: Client, msg: dict[str, Any]
) -> None:
    if room.product is not None:
        room.product = None
        room.broadcast({"type": "product", "product": None})
        svc.store.pin(room.show_id, None, room.show_offset())
        svc.log(room, client, "unpin_product")


def _int_in(msg: dict[str, Any], key: str, low: int, high: int) -> int | None:
    value = msg.get(key)
    if isinstance(value, int) and not isinstance(value, bool) and low <= value <= high:
        return value
    return None


async def claim_single_use(
    svc: RoomService,
    room: Room,
    client: Client,
    offer: dict[str, Any],
    pool: CodePool,
    address: str,
) -> None:
    """A code of its own for each claiming viewer, never one given before: taken from
    the pool without waiting for anything, so concurrent claims cannot share one."""
    keys = (client.viewer, f"@{address}" if address else "")
    code = pool.code_of(*keys)
    if code is None:
        code = pool.take(*keys)
        if code is None:
            notice(client, "offer_gone")
            return
        offer["remaining"] = pool.left
        svc.store.claim(room.show_id, offer["key"], client.viewer, address)
        if svc.engagement is not None:
            svc.engagement.store.code_given(room.show_id, offer["key"], code, client.viewer)
        room.broadcast({"type": "offer", "offer": room.public_offer()})
    client.send_messages({"type": "offer_code", "code": code})


async def on_start_offer(svc: RoomService, room: Room, client: Client, msg: dict[str, Any]) -> None:
    code = msg.get("code")
    minutes = _int_in(msg, "minutes", 1, 120)
    quantity = _int_in(msg, "quantity", 1, 100_000)
    codes = parse_codes(msg.get("codes")) if msg.get("codes") is not None else None
    if (
        (code is None and codes is None)
        or (code is not None and (not isinstance(code, str) or not CODE_RE.match(code)))
        or minutes is None
        or (msg.get("quantity") is not None and quantity is None)
        or (msg.get("codes") is not None and codes is None)
    ):
        notice(client, "bad_message")
        return
    started = time.time()
    pool = CodePool(codes) if codes is not None else None
    if pool is not None:
        quantity = pool.total  # single-use codes: as many units as codes
    room.offer = {
        "code": code,
        "key": f"{code or 'codes'}@{started:.3f}",  # names this offer in offer_claims
        "ends_at": int(started) + minutes * 60,
        "quantity": quantity,
        "remaining": quantity,
        "pool": pool,
    }
    if pool is not None and codes is not None and svc.engagement is not None:
        svc.engagement.store.codes_added(room.show_id, room.offer["key"], codes)
    room.offer_claims = set()
    room.offer_addresses = set()
    room.broadcast({"type": "offer", "offer": room.public_offer()})
    svc.log(room, client, "start_offer", code or "", minutes=minutes, quantity=quantity)


async def on_add_codes(svc: RoomService, room: Room, client: Client, msg: dict[str, Any]) -> None:
    """More single-use codes for the running offer (a frame holds 200 at most)."""
    offer = room.offer
    pool: CodePool | None = offer.get("pool") if offer is not None else None
    codes = parse_codes(msg.get("codes"))
    if offer is None or pool is None:
        notice(client, "not_found")
        return
    if codes is None:
        notice(client, "bad_message")
        return
    added = pool.add(codes)
    offer["quantity"], offer["remaining"] = pool.total, pool.left
    if svc.engagement is not None:
        svc.engagement.store.codes_added(room.show_id, offer["key"], codes)
    room.broadcast({"type": "offer", "offer": room.public_offer()})
    svc.log(room, client, "add_codes", offer["key"], added=added)


async def on_end_offer(svc: RoomService, room: Room, client: Client, msg: dict[str, Any]) -> None:
    if room.offer is not None:
        svc.log(room, client, "end_offer", room.offer["code"] or room.offer["key"])
        room.offer = None
        room.broadcast({"type": "offer", "offer": None})


def _record(room: Room, client: Client, msg: dict[str, Any]) -> Any:
    message_id = msg.get("id")
    record = room.records.get(message_id) if isinstance(message_id, int) else None
    if record is None or record.message.get("deleted"):
        notice(client, "not_found")
    return record


async def on_pin_message(svc: RoomService, room: Room, client: Client, msg: dict[str, Any]) -> None:
    record = _record(room, client, msg)
    if record is not None:
        room.pinned_message = record.message
        room.broadcast({"type": "pinned_message", "message": record.message})
        svc.log(room, client, "pin_message", str(record.message["id"]))


async def on_unpin_message(
    svc: RoomService, room: Room, client: Client, msg: dict[str, Any]
) -> None:
    if room.pinned_message is not None:
        room.pinned_message = None
        room.broadcast({"type": "pinned_message", "message": None})
        svc.log(room, client, "unpin_message")


async def on_delete(svc: RoomService, room: Room, client: Client, msg: dict[str, Any]) -> None:
    record = _record(room, client, msg)
    if record is None:
        return
    message_id = record.message["id"]
    record.message["deleted"] = True
    room.forget_message(message_id)
    if room.pinned_message is not None and room.pinned_message["id"] == message_id:
        room.pinned_message = None
        room.broadcast({"type": "pinned_message", "message": None})
    room.broadcast({"type": "deleted", "id": message_id})
    svc.store.flag("deleted", message_id)
    svc.log(room, client, "delete", str(message_id), text=record.message["text"])


async def on_mute(svc: RoomService, room: Room, client: Client, msg: dict[str, Any]) -> None:
    record = _record(room, client, msg)
    minutes = _int_in(msg, "minutes", 1, 24 * 60) if "minutes" in msg else 10
    if record is None:
        return
    if minutes is None:
        notice(client, "bad_message")
        return
    now = time.time()
    until = now + minutes * 60
    hint = "" if record.address in NO_ADDRESS else record.address
    sanction = await svc.store.add_sanction(
        room.show_id,
        "mute",
        record.viewer,
        record.message["name"],
        hint,
        min(now + HINT_SECONDS, until) if hint else None,
        False,
        client.staff_user,
        until,
    )
    room.sanctions.add(sanction)
    svc.send_sanctions(room)
    svc.log(room, client, "mute", record.viewer, minutes=minutes, message=record.message["id"])


async def on_ban(svc: RoomService, room: Room, client: Client, msg: dict[str, Any]) -> None:
    """Ban the viewer who wrote a message (and, for a while, a new identity from their
    address); with `address: true`, everyone behind their address until lifted."""
    record = _record(room, client, msg)
    if record is None:
        return
    whole = msg.get("address", False)
    if not isinstance(whole, bool):
        notice(client, "bad_message")
        return
    hint = "" if record.address in NO_ADDRESS else record.address
    if whole and not hint:
        notice(client, "no_address")
        return
    sanction = await svc.store.add_sanction(
        room.show_id,
        "ban",
        record.viewer,
        record.message["name"],
        hint,
        None if whole or not hint else time.time() + HINT_SECONDS,
        whole,
        client.staff_user,
        None,
    )
    room.sanctions.add(sanction)
    for other in list(room.clients):
        if not other.staff and room.is_banned(other):
            notice(other, "banned")
            other.close(CLOSE_POLICY)
    svc.send_sanctions(room)
    svc.log(room, client, "ban", record.viewer, message=record.message["id"], whole_address=whole)


async def on_lift(svc: RoomService, room: Room, client: Client, msg: dict[str, Any]) -> None:
    """Undo a mute or ban at once."""
    sanction_id = msg.get("id")
    sanction = room.sanctions.by_id.get(sanction_id) if isinstance(sanction_id, int) else None
    if sanction is None:
        notice(client, "not_found")
        return
    await svc.store.lift_sanction(room.show_id, sanction.id)
    room.sanctions.lift(sanction.id)
    svc.send_sanctions(room)
    svc.log(room, client, "lift", sanction.viewer, kind=sanction.kind, sanction=sanction.id)


async def on_slow_mode(svc: RoomService, room: Room, client: Client, msg: dict[str, Any]) -> None:
    seconds = _int_in(msg, "seconds", 0, 300)
    if seconds is None:
        notice(client, "bad_message")
        return
    room.slow_mode = seconds
    room.broadcast({"type": "chat_state", "open": room.chat_open, "slow_mode": seconds})
    svc.log(room, client, "slow_mode", str(seconds))


async def on_set_chat(svc: RoomService, room: Room, client: Client, msg: dict[str, Any]) -> None:
    is_open = msg.get("open")
    if not isinstance(is_open, bool):
        notice(client, "bad_message")
        return
    room.chat_open = is_open
    room.broadcast({"type": "chat_state", "open": is_open, "slow_mode": room.slow_mode})
    svc.log(room, client, "open_chat" if is_open else "close_chat")


async def on_answer(svc: RoomService, room: Room, client: Client, msg: dict[str, Any]) -> None:
    """Mark a question answered: in writing (`text`, shown under it for everyone and in
    the replay), or on camera (`live`: that moment becomes a chapter of the replay)."""
    record = _record(room, client, msg)
    if record is None or not record.message["question"]:
        if record is not None:
            notice(client, "not_found")
        return
    raw, live = msg.get("text"), msg.get("live", False)
    written = clean(raw, MAX_TEXT) if raw is not None else None
    if (raw is not None and written is None) or not isinstance(live, bool):
        notice(client, "bad_message")
        return
    message = record.message
    message["answered"] = True
    if written is not None:
        message["answer"] = written
    answer = message.get("answer")
    room.broadcast({"type": "answered", "id": message["id"], "answer": answer, "live": live})
    svc.store.flag("answered", message["id"])
    if written is not None or live:
        svc.store.answer(message["id"], answer, live)
    svc.log(room, client, "answer", str(message["id"]), written=written is not None, live=live)


async def on_engagement(svc: RoomService, room: Room, client: Client, msg: dict[str, Any]) -> None:
    """Polls, quizzes and giveaways: their own package (appliance/engagement)."""
    if svc.engagement is None:
        notice(client, "bad_message")
        return
    await svc.engagement.handle(room, client, msg)


HANDLERS: dict[str, Handler] = {
    "hello": on_hello,
    "set_name": on_set_name,
    "chat": on_chat,
    "heart": on_heart,
    "ping": on_ping,
    "claim_offer": on_claim_offer,
    "pin_product": on_pin_product,
    "unpin_product": on_unpin_product,
    "start_offer": on_start_offer,
    "end_offer": on_end_offer,
    "pin_message": on_pin_message,
    "unpin_message": on_unpin_message,
    "delete": on_delete,
    "mute": on_mute,
    "ban": on_ban,
    "lift": on_lift,
    "slow_mode": on_slow_mode,
    "set_chat": on_set_chat,
    "answer": on_answer,
    "add_codes": on_add_codes,
    **{kind: on_engagement for kind in engagement.KINDS},
}
STAFF_ONLY = {
    "pin_product",
    "unpin_product",
    "start_offer",
    "end_offer",
    "pin_message",
    "unpin_message",
    "delete",
    "mute",
    "ban",
    "lift",
    "slow_mode",
    "set_chat",
    "answer",
    "add_codes",
    *engagement.STAFF_ONLY,
}
