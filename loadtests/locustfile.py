"""Viewers of one live show, as Locust users (run by scripts/loadtest).

Each user loads the show page and its static files, opens the live-room websocket and
stays. Most only read; a few chat; everyone taps hearts now and then, in bursts. The
room-wide rates are set by the environment (defaults: 20 chat messages/s and 200
hearts/s across the room, whatever the number of users).

Each user also reports what a viewer page reports for the KPIs: `join` when the page
opens, then a `heartbeat` every 15 s (docs/kpis.md).

Delivery time is measured in the clients: every chat message carries the time it was
sent, and a sample of the users (the "probes") report, for every message they receive,
how long it took, as a Locust request named "chat delivery". The other users take what
their socket holds twice a second, as a phone's kernel holds it until the page reads: the
server's work per frame is the same, and the load generator is spared a wake-up per
frame per user. A socket the server closes is reported as a failed "dropped" request.
"""

from __future__ import annotations

import json
import os
import random
import secrets
import time

import gevent
import websocket
from locust import FastHttpUser, between, events, task

SHOW = int(os.environ.get("VITRINE_LOAD_SHOW", "1"))
USERS = int(os.environ.get("VITRINE_LOAD_USERS", "100"))
CHAT_RATE = float(os.environ.get("VITRINE_LOAD_CHAT_RATE", "20"))  # messages/s, room-wide
HEART_RATE = float(os.environ.get("VITRINE_LOAD_HEART_RATE", "200"))  # hearts/s, room-wide
PROBE_SHARE = float(os.environ.get("VITRINE_LOAD_PROBES", "0.05"))
HEARTBEAT = 15.0  # seconds, as kpis.heartbeat_seconds
CHATTER_SHARE = 0.10
PING_EVERY = 25.0  # seconds, as web/static/js/room.js; the room closes a socket silent 60 s
DRAIN_EVERY = 0.5  # seconds between reads of a user that is not a probe
STATIC = (
    "/static/css/vitrine.css",
    "/static/js/vitrine.js",
    "/static/js/room.js",
    "/static/js/chat.js",
    "/brand.css",
)


class Viewer(FastHttpUser):
    wait_time = between(1, 3)
    concurrency = 1  # one connection for the page, its files and its reports

    def on_start(self) -> None:
        self.viewer = "v_load_" + secrets.token_urlsafe(12)
        self.chatter = random.random() < CHATTER_SHARE
        self.probe = random.random() < PROBE_SHARE
        self.client.get(f"/shows/{SHOW}", name="/shows/[id]")
        for path in STATIC:
            self.client.get(path, name="static")
        # The page's own viewer id (its cookie), as the page's reports and socket use it.
        cookies = {c.name: c.value for c in self.client.cookiejar}
        self.viewer = cookies.get("vitrine_viewer") or self.viewer
        self.report("join", {"utm_source": "", "referrer": ""})
        self.last_heartbeat = self.last_ping = time.monotonic()
        url = self.host.replace("http", "ws", 1) + f"/ws/shows/{SHOW}"
        started = time.perf_counter()
        try:
            self.ws = websocket.create_connection(
                url,
                origin=self.host,
                cookie=f"vitrine_viewer={self.viewer}",
                timeout=30,
                enable_multithread=True,
            )
        except Exception as exc:
            self.fire("WS", "connect", started, exc)
            self.ws = None
            return
        name = f"u{self.viewer[-10:]}" if self.chatter else None
        self.ws.send(json.dumps({"type": "hello", "v": 1, "name": name}))
        self.fire("WS", "connect", started)
        self.reader = gevent.spawn(self.read)

    def report(self, kind: str, props: dict[str, str] | None = None) -> None:
        body = json.dumps({"show": SHOW, "kind": kind, "props": props or {}})
        self.client.post(
            "/api/events",
            data=body,
            headers={"Content-Type": "text/plain;charset=UTF-8"},
            name=f"/api/events {kind}",
        )

    def fire(
        self,
        kind: str,
        name: str,
        started: float,
        exc: Exception | None = None,
        ms: float | None = None,
    ) -> None:
        events.request.fire(
            request_type=kind,
            name=name,
            response_time=ms if ms is not None else (time.perf_counter() - started) * 1000,
            response_length=0,
            exception=exc,
            context={},
        )

    def dropped(self, why: Exception | None = None) -> None:
        if self.ws is not None:  # not our own close at the end
            self.fire("WS", "dropped", time.perf_counter(), why or ConnectionError("closed"))
            self.ws = None

    def read(self) -> None:
        # Users that are not probes only drain their socket: parsing every frame in
        # Python would make Locust, not the server, the bottleneck.
        while self.ws is not None and not self.probe:
            gevent.sleep(DRAIN_EVERY)
            try:
                if self.ws is not None and not self.ws.sock.recv(1 << 20):
                    return self.dropped()
            except Exception as exc:
                return self.dropped(exc)
        while self.ws is not None:
            try:
                frame = self.ws.recv()
            except Exception as exc:
                return self.dropped(exc)
            if not frame:
                continue
            now = time.time()
            for message in json.loads(frame):
                if message.get("type") == "chat" and message["text"].startswith("t="):
                    sent = float(message["text"][2:].split(" ", 1)[0])
                    self.fire("WS", "chat delivery", 0, ms=(now - sent) * 1000)

    @task
    def behave(self) -> None:
        if time.monotonic() - self.last_heartbeat >= HEARTBEAT:
            self.last_heartbeat = time.monotonic()
            self.report("heartbeat")
        if self.ws is None:
            return
        try:
            # Poisson-ish: each user's share of the room-wide rates, per 2 s on average.
            if self.chatter and random.random() < CHAT_RATE * 2 / max(USERS * CHATTER_SHARE, 1):
                self.ws.send(json.dumps({"type": "chat", "text": f"t={time.time():.4f} hello"}))
            hearts = HEART_RATE * 2 / max(USERS, 1)
            while hearts > 0:
                if random.random() < min(hearts, 1.0):
                    self.ws.send(json.dumps({"type": "heart", "count": 1}))
                hearts -= 1
            if time.monotonic() - self.last_ping >= PING_EVERY:  # as the page does
                self.last_ping = time.monotonic()
                self.ws.send(json.dumps({"type": "ping"}))
        except Exception as exc:
            self.fire("WS", "send", time.perf_counter(), exc)
            self.ws = None

    def on_stop(self) -> None:
        if self.ws is not None:
            ws, self.ws = self.ws, None
            ws.close()
