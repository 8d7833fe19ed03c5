"""Viewers of the live room who are on no socket: they read the feed and send by POST.

Such a viewer is a `Client` like a socket's, kept in the room by viewer id between its
requests (`Room.polled`), so the room's handlers treat its messages exactly as a socket's:
its name, its chat and heart buckets, slow mode, mutes, bans, votes and entries. It counts
as a viewer; an address may have POLLED_FACTOR times `limits.room_sockets_per_address`
of them in a room (they are what is left to viewers the socket cap refuses).

Broadcast frames are not passed to it (it reads them from the feed); what is meant for it
alone (`welcome`, `state`, `named`, notices, `offer_code`, `entered`, `prize_won`...) is
held by its outlet and answered with its next request. It leaves, as a silent socket does,
after two minutes without a request (`Room.close_idle`): the page pings every 50 s.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable
from typing import Any

from appliance.room.hub import Client, Room
from appliance.room.wire import Frame, Send, merge_frames

POLLED_FACTOR = 4
HELD_FRAMES = 32  # frames meant for one polled viewer, kept until its next request


class HeldOutlet:
    """Frames for one polled viewer, kept until its next request takes them."""

    def __init__(self) -> None:
        self.frames: deque[str] = deque(maxlen=HELD_FRAMES)

    def put(self, frame: Frame) -> bool:
        self.frames.append(frame.text)
        return True

    def finish(self, discard: bool) -> None:
        if discard:
            self.frames.clear()

    async def run(self, send: Send, close_code: Callable[[], int]) -> None:
        return  # nothing to send on its own: requests take the frames

    def take(self) -> list[dict[str, Any]]:
        """The held messages, in order, and forget them."""
        if not self.frames:
            return []
        text = merge_frames(list(self.frames))
        self.frames.clear()
        messages: list[dict[str, Any]] = json.loads(text)
        return messages


def join(room: Room, client: Client, cap: int) -> bool:
    """Add a polled viewer's client to the room; False when its address already has
    `cap` polled viewers in this room (0: no cap)."""
    held = room.polled_by_address.get(client.address, 0)
    if cap > 0 and held >= cap:
        return False
    room.polled_by_address[client.address] = held + 1
    client.polled = True
    room.polled[client.viewer] = client
    room.clients.add(client)
    return True


def held(client: Client) -> list[dict[str, Any]]:
    outlet = client.outlet
    return outlet.take() if isinstance(outlet, HeldOutlet) else []
