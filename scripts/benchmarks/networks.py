"""The show on emulated networks: glass-to-glass, freezes, frame rate and picture size
per viewer, the publisher's bitrate over time, and recovery after an outage.

Each scenario runs in its own lab (tests/netlab.py): `vitrine serve`, an aiortc
publisher drawing a counter and its send time into a 640x360 30 fps picture (H264, as
the relay prefers), and decoding aiortc viewers, each host in a network namespace with
its profile on its link. Needs root, iproute2 and nftables.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from perfdoc import write_section  # noqa: E402

from tests.netlab import (  # noqa: E402
    PROFILES,
    TURN_IP,
    Agent,
    Host,
    Lab,
    lip_sync,
    now_ms,
    summarise,
    unavailable,
    wait_playing,
)

OUTAGE = 5.0


class Scenario:
    """Who is on which profile, and what happens during the show."""

    def __init__(
        self,
        name: str,
        publisher: str,
        viewers: list[str],
        describe: str,
        during: Callable[[Host, Agent, float], dict[str, Any]] | None = None,
        turn: bool = False,
        simulcast: bool = False,
    ) -> None:
        self.name, self.publisher, self.viewers = name, publisher, viewers
        self.describe, self.during, self.turn = describe, during, turn
        self.simulcast = simulcast


def bandwidth_drop(host: Host, _publisher: Agent, seconds: float) -> dict[str, Any]:
    time.sleep(seconds / 2)
    host.set_rate(500)
    time.sleep(seconds / 2)
    return {"event": "uplink 3 -> 0.5 Mbit/s at half time"}


def outage(host: Host, publisher: Agent, seconds: float, reconnect: bool = True) -> dict[str, Any]:
    time.sleep(seconds / 3)
    host.blackout(True)
    time.sleep(OUTAGE)
    host.blackout(False)
    back = now_ms()  # the link is back: recovery is counted from here
    if reconnect:
        publisher.ask(op="reconnect")
    time.sleep(max(seconds * 2 / 3 - OUTAGE, 5))
    how = "then a new WHIP session (the studio reconnects)" if reconnect else "same session"
    return {"event": f"{OUTAGE:.0f} s without UDP at a third, {how}", "back": back}


def outage_same_session(host: Host, publisher: Agent, seconds: float) -> dict[str, Any]:
    return outage(host, publisher, seconds, reconnect=False)


SCENARIOS = [
    Scenario("clean", "clean", ["clean", "clean"], "no limit, no loss"),
    Scenario(
        "4g",
        "4g",
        ["clean", "4g"],
        "publisher and one viewer on 4G: 50 ms RTT, jitter +/-10 ms, 1% loss, 4 Mbit/s up",
    ),
    Scenario(
        "wifi",
        "clean",
        ["wifi", "wifi"],
        "viewers on bad Wi-Fi: 120 ms RTT, jitter +/-15 ms, 5% loss, 100-300 ms "
        "blackouts every 2-5 s",
    ),
    Scenario(
        "wifi-simulcast",
        "clean",
        ["clean", "wifi"],
        "a publisher sending three layers (640x360 at 900, 320x180 at 300, 160x90 at 100 "
        "kbit/s, as a browser's studio), one viewer on a clean link and one on bad Wi-Fi",
        simulcast=True,
    ),
    Scenario("narrow", "narrow", ["clean", "clean"], "publisher on 900 kbit/s up, 5% loss"),
    Scenario(
        "drop", "drop", ["clean", "clean"], "publisher's uplink 3 Mbit/s, then 0.5", bandwidth_drop
    ),
    Scenario(
        "drop-simulcast",
        "drop",
        ["clean", "clean"],
        "the three-layer publisher's uplink 3 Mbit/s, then 0.5: it stops its largest layer "
        "when the relay's estimate falls under what it sends, as a browser does",
        bandwidth_drop,
        simulcast=True,
    ),
    Scenario(
        "outage",
        "outage",
        ["clean", "clean"],
        "publisher's link dead for 5 s, then it publishes again (a new WHIP session)",
        outage,
    ),
    Scenario(
        "outage-same-session",
        "outage",
        ["clean"],
        "publisher's link dead for 5 s, its session kept (ICE consent outlives 5 s)",
        outage_same_session,
    ),
    Scenario("nat", "clean", ["nat"], "viewer behind a masquerading router"),
    Scenario("udp-blocked", "clean", ["udp-blocked"], "viewer whose UDP is blocked"),
    Scenario(
        "udp-blocked-turn",
        "clean",
        ["udp-blocked"],
        "viewer whose UDP is blocked, with coturn serving TURN over TLS on 443 and "
        "media.turn_secret",
        turn=True,
    ),
    Scenario("udp-blocked-publisher", "udp-blocked", [], "publisher whose UDP is blocked"),
]


def bitrate_series(samples: list[list[int]], step: float = 5.0) -> list[int]:
    """The publisher's video kbit/s, averaged over `step` seconds."""
    if len(samples) < 2:
        return []
    out: list[int] = []
    start = samples[0]
    for sample in samples[1:]:
        if sample[1] < start[1]:  # a new session counts from zero
            start = [start[0], 0, 0]
        if (sample[0] - start[0]) / 1000 >= step:
            out.append(round((sample[1] - start[1]) * 8 / ((sample[0] - start[0]) / 1000) / 1000))
            start = sample
    return out


def run(scenario: Scenario, seconds: float, settle: float, tmp: Path) -> dict[str, Any]:
    with Lab(tmp / scenario.name) as lab:
        settings = {"VITRINE_MEDIA_ICE_CONNECT_SECONDS": "5"}
        trust = None
        if scenario.turn:
            secret = secrets.token_hex(16)
            trust = lab.start_turn(secret)
            settings |= {
                "VITRINE_MEDIA_ICE_SERVERS": f"turns:{TURN_IP}:443?transport=tcp",
                "VITRINE_MEDIA_TURN_SECRET": secret,
            }
        server = lab.start_server(settings)
        show, key = server.create_show()
        pub_host = lab.add_host("pub", PROFILES[scenario.publisher])
        publisher = lab.publisher(pub_host, show, key, simulcast=scenario.simulcast)
        viewers = [
            lab.viewer(lab.add_host(f"v{i}", PROFILES[p]), show, page=scenario.turn, trust=trust)
            for i, p in enumerate(scenario.viewers)
        ]
        result: dict[str, Any] = {"scenario": scenario.name, "describe": scenario.describe}
        first_frame: list[int | None] = []
        for viewer in viewers:
            try:
                first_frame.append(wait_playing(viewer, 10))
            except TimeoutError:
                first_frame.append(None)
        time.sleep(settle)  # the publisher's first seconds: its estimate settles
        start = viewers[0].ask(op="report")["now_ms"] if viewers else 0
        if scenario.during is not None:
            result |= scenario.during(pub_host, publisher, seconds)
        else:
            time.sleep(seconds)
        rows = []
        for viewer, profile, first in zip(viewers, scenario.viewers, first_frame, strict=True):
            report = viewer.ask(op="report", since_ms=start)
            elapsed = (report["now_ms"] - start) / 1000
            figures = summarise(report["samples"], elapsed)
            figures |= {
                "profile": profile,
                "state": report["state"],
                "path": report["path"],
                "first_frame_ms": first,
                # The simulcast publisher sends no video sender reports: no lip sync.
                "av": lip_sync([] if scenario.simulcast else report["av"]),
                "seconds": elapsed,
            }
            if "back" in result:
                after = [s for s in report["samples"] if s["at_ms"] >= result["back"]]
                figures["recovery_ms"] = after[0]["at_ms"] - result["back"] if after else None
                # Lip sync after recovery: from 3 s after the link's return.
                later = [p for p in report["av"] if p["at_ms"] >= result["back"] + 3000]
                figures["av"] = lip_sync(later)
            rows.append(figures)
        pub = publisher.ask(op="report")
        result |= {
            "viewers": rows,
            "publisher_state": pub["state"],
            "bitrate": bitrate_series(pub["bitrate"]),
            "retransmits": pub["retransmits"],
            "keyframes": pub["keyframes"],
            "layers": pub.get("layers"),
            "seconds": seconds,
        }
        return result


def fmt(value: Any, spec: str = ".0f") -> str:
    return "–" if value is None else format(value, spec)


HEADER = (
    "| scenario | viewer link | glass-to-glass ms p50 / p95 | freezes > 200 ms / min "
    "| frozen s / min | longest gap ms | fps | picture | A/V ms, abs p50 / max (markers) "
    "| note |\n"
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
)


def rows_of(result: dict[str, Any]) -> list[str]:
    lines = []
    if not result["viewers"]:
        lines.append(
            f"| {result['scenario']} | – | – | – | – | – | – | – | – | publisher "
            f"{result['publisher_state']}: no path without TURN |"
        )
    for v in result["viewers"]:
        note = []
        if v.get("recovery_ms") is not None:
            note.append(f"plays {v['recovery_ms'] / 1000:.1f} s after the link is back")
        if v["frames"] == 0:
            note.append(f"no picture ({v['state']}): no path without TURN")
        elif v["path"] not in (None, "host"):
            note.append(f"path: {v['path']} candidate")
        sizes = v.get("sizes") or {}
        if len(sizes) > 1:
            shown = sorted(sizes.items(), key=lambda item: -item[1])
            total = sum(sizes.values())
            note.append("pictures: " + ", ".join(f"{k} {n * 100 / total:.0f}%" for k, n in shown))
        frozen = v["frozen_ms"] / 1000 * 60 / v["seconds"] if v.get("seconds") else 0.0
        lines.append(
            f"| {result['scenario']} | {v['profile']} | {fmt(v['delay_p50'])} / "
            f"{fmt(v['delay_p95'])} | {v['freezes_per_min']:.1f} | {frozen:.1f} | "
            f"{fmt(v['longest_gap_ms'])} | "
            f"{v['fps']:.1f} | {v['size'] or '–'} | {av_cell(v['av'])} | {'; '.join(note)} |"
        )
    return lines


def av_cell(av: dict[str, Any]) -> str:
    if not av["markers"]:
        return "–"
    return f"{fmt(av['av_abs_p50_ms'])} / {fmt(av['av_abs_max_ms'])} ({av['markers']})"


def bitrate_lines(results: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| scenario | publisher video kbit/s, every 5 s | retransmissions | keyframes asked |",
        "| --- | --- | --- | --- |",
    ]
    for r in results:
        series = ", ".join(str(b) for b in r["bitrate"]) or "–"
        if r.get("layers"):
            series += f" (layers sending at the end: {', '.join(r['layers'])})"
        lines.append(f"| {r['scenario']} | {series} | {r['retransmits']} | {r['keyframes']} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--profiles", default=",".join(s.name for s in SCENARIOS))
    parser.add_argument("--seconds", type=float, default=30.0, help="measured per scenario")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds before measuring")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    reason = unavailable()
    if reason:
        raise SystemExit(f"the network lab cannot run here: {reason}")
    wanted = args.profiles.split(",")
    load_before = os.getloadavg()
    results = []
    with tempfile.TemporaryDirectory(prefix="vitrine-netlab-") as tmp:
        for scenario in (s for s in SCENARIOS if s.name in wanted):
            result = run(scenario, args.seconds, args.settle, Path(tmp))
            results.append(result)
            for line in rows_of(result):
                print(line, flush=True)
            print(f"  publisher video kbit/s: {result['bitrate']}", flush=True)
    body = "\n".join(
        [
            "## Networks: glass-to-glass on emulated links",
            "",
            "`scripts/bench networks`: each scenario in its own network lab (tests/netlab.py):",
            "`vitrine serve`, one aiortc publisher (640x360, 30 fps, H264 with a band of noise",
            "so the encoder spends its bitrate, plus Opus) and decoding aiortc viewers, each in",
            "a network namespace with its profile (bandwidth: tc tbf with an 8 s queue; loss:",
            "nftables; delay and jitter: a userspace forwarder). Glass-to-glass is from the",
            "moment the publisher draws a frame (its send time is drawn in the picture) to the",
            f"moment a viewer has decoded it. {args.seconds:.0f} s measured per scenario,",
            f"{args.settle:.0f} s after every viewer plays. The machine is shared (2 cores):",
            "encoding, decoding and the forwarders compete with other work, which shows as",
            "delay; compare scenarios of one run. Load average (1/5/15 min) at the start:",
            f"{' / '.join(f'{x:.1f}' for x in load_before)}; at the end: "
            f"{' / '.join(f'{x:.1f}' for x in os.getloadavg())}.",
            "",
            "Lip sync: the publisher's audio is a 10 ms tone burst with every 30th frame; a",
            "viewer maps those frames and bursts to the sender's clock through the sender",
            "reports the relay sends it, as a player aligns them, and reports the offset",
            "(audio after video positive; Opus's own 6.5 ms look-ahead included). For the",
            "outage, only markers from 3 s after the link's return count.",
            "",
            *(s.name + ": " + s.describe + "." for s in SCENARIOS if s.name in wanted),
            "",
            HEADER,
            *(line for r in results for line in rows_of(r)),
            "",
            *bitrate_lines(results),
            "",
            "Reading the figures. The outage's longest gap is the 5 s outage itself; the",
            "recovery is counted from the link's return. aiortc's H264 encoder never goes",
            "under 500 kbit/s (its MIN_BITRATE): after the drop to 0.5 Mbit/s this publisher",
            "cannot get under the link's rate, whatever the relay's estimate, and viewers fall",
            "behind (browsers go far lower). On bad Wi-Fi a viewer with almost no frames is",
            "one the relay moved to audio only (its estimate under half the video's bitrate,",
            "retried every 15 s): this lab's publisher sends one layer, so audio only is its",
            "one step down. In the -simulcast scenarios the publisher sends three layers",
            "(tests/simulcast_publisher.py, as the studio in a browser does) and stops its",
            "largest when the relay's estimate falls under what it sends; the picture column",
            "and the note show which layers each viewer got;",
            "the other freezes where a packet is lost for good: the lab's viewers give up on",
            "it after 0.5 s without a frame and ask for a keyframe, as a browser does after its",
            "repair attempts (tests/lab_jitter.py). Without TURN a",
            "UDP-blocked viewer or publisher gets no path; with coturn over TLS and",
            "media.turn_secret the viewer plays through a relay candidate.",
        ]
    )
    median = [v["delay_p95"] for r in results for v in r["viewers"] if v["delay_p95"] is not None]
    if median:
        print(f"median glass-to-glass p95 over all viewers: {statistics.median(median):.0f} ms")
    if not args.no_write:
        write_section("networks", body)
        print("\nwritten to docs/perf.md")


if __name__ == "__main__":
    main()
