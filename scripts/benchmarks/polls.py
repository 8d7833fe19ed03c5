"""How long a vote takes to reach everyone: the time from one viewer's `vote` to the
poll's new counts arriving at every viewer of the room.

A real `vitrine serve`; the viewers are websocket connections from this process, each
says hello and reads every frame; staff (a signed-in admin) start a poll. Then, one at a
time, a few viewers vote; for each vote, every viewer's delay until it holds a `poll`
message whose counts include that vote. The room sends poll counts at most once a second
(from its tick), so the figure is bounded by about a second plus the fan-out. Delays are
measured in the reading process, so they include its own scheduling under load.
Writes docs/perf.md.

    scripts/bench polls [--viewers 500,2000] [--votes 5]
"""

from __future__ import annotations

import argparse
import asyncio
import http.cookiejar
import json
import os
import re
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import websockets

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchserver import ROOT, VITRINE, BenchServer, percentile, start_server
from perfdoc import write_section

PASSWORD = "bench password for polls"


def staff_cookie(server: BenchServer) -> str:
    env = {**os.environ, "VITRINE_STORAGE_DATA_DIR": str(server.data)}
    subprocess.run(
        [
            *VITRINE,
            "create-admin",
            "--email",
            "bench@example.com",
            "--name",
            "Bench",
            "--password-stdin",
        ],
        input=PASSWORD + "\n",
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    page = opener.open(server.url + "/login").read().decode()
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token is not None
    body = urllib.parse.urlencode(
        {"email": "bench@example.com", "password": PASSWORD, "csrf_token": token.group(1)}
    ).encode()
    opener.open(server.url + "/login", data=body).read()
    return "; ".join(f"{c.name}={c.value}" for c in jar)


class Viewer:
    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.votes_seen = 0  # the largest vote total received so far
        self.when: dict[int, float] = {}  # vote total -> when it first arrived

    async def read(self) -> None:
        async for frame in self.ws:
            now = time.perf_counter()
            for message in json.loads(frame):
                if message.get("type") == "poll":
                    total = sum(message["counts"])
                    if total > self.votes_seen:
                        for n in range(self.votes_seen + 1, total + 1):
                            self.when[n] = now
                        self.votes_seen = total


async def measure(server: BenchServer, cookie: str, viewers: int, votes: int) -> str:
    url = server.url.replace("http://", "ws://") + f"/ws/shows/{server.show}"
    people: list[Viewer] = []
    for n in range(viewers):
        # One vote per address: the voters each come from their own loopback address.
        local = {"local_addr": (f"127.0.0.{n + 2}", 0)} if n < votes else {}
        ws = await websockets.connect(
            url,
            origin=server.url,
            additional_headers={"Cookie": f"vitrine_viewer=v_poll_{n:06d}"},
            open_timeout=60,
            max_queue=None,
            **local,
        )
        await ws.send(json.dumps({"type": "hello", "v": 1}))
        people.append(Viewer(ws))
    readers = [asyncio.ensure_future(p.read()) for p in people]
    staff = await websockets.connect(url, origin=server.url, additional_headers={"Cookie": cookie})
    await staff.send(json.dumps({"type": "hello", "v": 1}))
    question = {"type": "start_poll", "question": "Which colour?", "options": ["Red", "Blue"]}
    await staff.send(json.dumps({**question, "seconds": 600}))
    await asyncio.sleep(3)
    delays: list[float] = []
    for n in range(votes):
        sent = time.perf_counter()
        await people[n].ws.send(json.dumps({"type": "vote", "option": n % 2}))
        await asyncio.sleep(3)  # well past the once-a-second bound
        delays += [(p.when[n + 1] - sent) * 1000 for p in people if n + 1 in p.when]
    missing = votes * viewers - len(delays)
    await staff.close()
    for p in people:
        await p.ws.close()
    for r in readers:
        r.cancel()
    return (
        f"| {viewers} | {votes} | {percentile(delays, 0.5):.0f} | {percentile(delays, 0.95):.0f} "
        f"| {max(delays):.0f} | {missing} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--viewers", default="500,2000")
    parser.add_argument("--votes", type=int, default=5)
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    header = "| viewers | votes | vote to everyone ms p50 | p95 | max | not received |"
    rows = [header, "| --- | --- | --- | --- | --- | --- |"]
    print("\n".join(rows), flush=True)
    for viewers in [int(v) for v in args.viewers.split(",")]:
        server = start_server()
        try:
            row = asyncio.run(measure(server, staff_cookie(server), viewers, args.votes))
        finally:
            server.stop()
        print(row, flush=True)
        rows.append(row)
    if not args.no_write:
        body = (
            "## Live room: a vote's result reaching every viewer\n\n"
            f"`scripts/bench polls --viewers {args.viewers} --votes {args.votes}`: a real server, "
            "the viewers as websocket connections of one reading process, a poll started by "
            "staff; one viewer votes at a time. The delay is from the vote being sent to each "
            "viewer holding counts that include it. Poll counts go out with the room's tick, "
            "at most once a second, so about a second is the design's bound.\n\n" + "\n".join(rows)
        )
        write_section("polls", body)


if __name__ == "__main__":
    main()
