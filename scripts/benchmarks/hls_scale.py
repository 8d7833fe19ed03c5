"""How many LL-HLS clients of one live show, and how many readers of its room feed, this
machine serves, straight from Vitrine and through the nginx of docs/media.md.

A real `vitrine serve` (recording off) gets a 640x360 counter-stamped WHIP publisher (the
network lab's publisher, its own process); Debian's nginx runs docs/media.md's block as
tests/test_nginx_hls.py does, its access log keeping only the requests it passed to
Vitrine. The clients are hls_load.py's, in `procs` processes. Each step measures, over its
window once every client has started: the parts delivered against the parts the show made
times the clients, how long after the first client each client got a part, Vitrine's HLS
answers a second (its /metrics counter), and the CPU of Vitrine, nginx and the generator
(their processes' own clocks, psutil), with the load average.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import websockets
from benchserver import free_port, percentile
from hls_load import raise_open_files, worker

from tests.conftest import ROOT, LiveServer, launch, stop
from tests.test_nginx_hls import NGINX, nginx_conf

TOKEN = "bench-hls-metrics"
HLS_ANSWERS = re.compile(r'^vitrine_http_requests_total\{route="hls",status="[^"]+"\} (\S+)$', re.M)
HLS_SHED = re.compile(r'^vitrine_hls_shed_total\{reason="[^"]+"\} (\S+)$', re.M)
HINT_NUMBER = re.compile(r'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="[^"]*p(\d+)\.m4s"')
FEED_URI = re.compile(r"^/rooms/\d+/feed\?after=(\d+)$")


@dataclass
class Stage:
    vitrine: LiveServer
    show: int
    publisher: subprocess.Popen[bytes] | None
    nginx: subprocess.Popen[bytes]
    nginx_port: int
    nginx_log: Path
    folder: Path

    def close(self) -> None:
        for process in (self.publisher, self.nginx):
            if process is not None and process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
        stop(self.vitrine)
        shutil.rmtree(self.folder, ignore_errors=True)


def get(url: str, headers: dict[str, str] | None = None) -> bytes:
    request = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(request, timeout=30) as r:
        return bytes(r.read())


def start_publisher(vitrine: LiveServer, show: int, key: str, folder: Path) -> Any:
    """The network lab's WHIP publisher (a stamped 640x360 picture), in its own process."""
    with (folder / "publisher.log").open("ab") as log:
        publisher = subprocess.Popen(
            [
                *(sys.executable, "-m", "tests.netlab", "publisher"),
                *(f"{vitrine.url}/whip/{show}", key, "--bind", "127.0.0.1"),
                *("--size", "640x360"),
            ],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
        )
    assert publisher.stdout is not None
    ready = publisher.stdout.readline()
    assert b"ready" in ready, (folder / "publisher.log").read_text()
    return publisher


def start(connections: int, nginx_workers: int, publish: bool = True) -> Stage:
    """Vitrine with one show (live, from a WHIP publisher, when `publish`) and nginx."""
    raise_open_files()
    folder = Path(tempfile.mkdtemp(prefix="vitrine-hls-scale-"))
    vitrine = launch(
        folder / "data",
        folder / "server.log",
        {"VITRINE_MEDIA_RECORD": "false", "VITRINE_METRICS_TOKEN": TOKEN},
    )
    created = json.loads(
        vitrine.cli("shows", "create", "--title", "HLS load", "--starts-at", "2030-01-01T10:00")
    )
    show = int(created["id"])
    publisher = start_publisher(vitrine, show, created["stream_key"], folder) if publish else None
    here = folder / "nginx"
    here.mkdir()
    port = free_port()
    conf = here / "nginx.conf"
    conf.write_text(
        nginx_conf(
            here, port, vitrine.url, workers=nginx_workers, connections=connections, log_hits=False
        )
    )
    assert NGINX is not None, "nginx is not installed (apt-get install nginx-light)"
    nginx = subprocess.Popen(
        [
            NGINX,
            "-p",
            str(here),
            "-c",
            str(conf),
            "-e",
            str(here / "error.log"),
            "-g",
            "daemon off;",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    stage = Stage(vitrine, show, publisher, nginx, port, here / "access.log", folder)
    deadline = time.monotonic() + 20
    path = f"/hls/{show}/index.m3u8" if publish else f"/rooms/{show}/feed"
    while True:  # the rendition (or the room) is there, and nginx answers
        try:
            get(f"{vitrine.url}{path}")
            get(f"http://127.0.0.1:{port}{path}")
            break
        except (urllib.error.HTTPError, OSError):
            if time.monotonic() > deadline:
                stage.close()
                raise RuntimeError("no HLS rendition, or nginx did not start") from None
            time.sleep(0.3)
    return stage


def cpu(processes: list[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


def family(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def hls_answers(stage: Stage) -> tuple[float, float]:
    """Vitrine's count of HLS answers, and of those that were 503s over its budget (shed);
    nan when it does not answer within 30 s."""
    try:
        text = get(f"{stage.vitrine.url}/metrics", {"Authorization": f"Bearer {TOKEN}"})
    except OSError:
        return float("nan"), float("nan")
    answers = sum(float(v) for v in HLS_ANSWERS.findall(text.decode()))
    return answers, sum(float(v) for v in HLS_SHED.findall(text.decode()))


def newest_part(stage: Stage) -> int:
    """The number of the part to come (-1: no rendition, or no answer within 30 s)."""
    for _ in range(200):
        try:
            text = get(f"{stage.vitrine.url}/hls/{stage.show}/index.m3u8").decode()
        except urllib.error.HTTPError as exc:
            if exc.code != 503:
                return -1
            time.sleep(0.02)  # shed by Vitrine's budget, as any client: ask again
            continue
        except OSError:
            return -1
        return int(HINT_NUMBER.findall(text)[0])
    return -1


def machine_busy() -> float:
    """CPU seconds the whole machine has spent busy (every process, every core)."""
    times = psutil.cpu_times()
    return float(sum(times) - times.idle - times.iowait)


@dataclass
class Sample:
    at: float
    machine: float
    vitrine: float
    nginx: float
    generator: float
    answers: float
    shed: float
    part: int
    log: int


def sample(stage: Stage, generator: list[psutil.Process]) -> Sample:
    return Sample(
        time.monotonic(),
        machine_busy(),
        cpu(family(stage.vitrine.process.pid)),
        cpu(family(stage.nginx.pid)),
        cpu(generator),
        *hls_answers(stage),
        newest_part(stage),
        stage.nginx_log.stat().st_size if stage.nginx_log.exists() else 0,
    )


def crowd(kind: str, args: dict[str, Any], clients: int, procs: int) -> tuple[list[Any], Any]:
    context = multiprocessing.get_context("fork")
    out = context.Queue()
    share = [clients // procs + (1 if i < clients % procs else 0) for i in range(procs)]
    started, first = [], 0
    for count in share:
        process = context.Process(target=worker, args=(kind, args, first, count, out))
        process.start()
        started.append(process)
        first += count
    return started, out


def collect(started: list[Any], out: Any) -> list[dict[str, Any]]:
    results = [out.get(timeout=120) for _ in started]
    for process in started:
        process.join(timeout=30)
    return results


def common(a: Sample, b: Sample, results: list[dict[str, Any]], procs: int) -> dict[str, Any]:
    seconds = b.at - a.at
    generator = 100 * (b.generator - a.generator) / seconds
    vitrine = 100 * (b.vitrine - a.vitrine) / seconds
    nginx = 100 * (b.nginx - a.nginx) / seconds
    machine = 100 * (b.machine - a.machine) / seconds / (os.cpu_count() or 1)
    limit = "-"
    if generator >= 85 * procs:
        limit = "generator"
    elif machine >= 90:
        limit = "CPUs"
    errors: Counter[str] = Counter()
    for result in results:
        errors.update(result["errors"])
    return {
        "seconds": seconds,
        "vitrine_cpu": vitrine,
        "nginx_cpu": nginx,
        "generator_cpu": generator,
        "limit": limit,
        "machine_cpu": machine,
        "errors": dict(errors),
        "ramped": max(r["ramped"] for r in results),
        "load": os.getloadavg()[0],
    }


def hls_step(stage: Stage, via: str, clients: int, procs: int, window: float) -> dict[str, Any]:
    port = stage.nginx_port if via == "nginx" else int(stage.vitrine.url.rsplit(":", 1)[1])
    ramp = max(2.0, clients / 1000)
    now = time.monotonic()
    begin, end = now + ramp + 3, now + ramp + 3 + window
    args = {"port": port, "base": f"/hls/{stage.show}", "until": end + 1, "ramp": ramp}
    started, out = crowd("hls", args, clients, procs)
    generator = [psutil.Process(p.pid) for p in started]
    time.sleep(max(0.0, begin - time.monotonic()))
    a = sample(stage, generator)
    time.sleep(max(0.0, end - time.monotonic()))
    b = sample(stage, generator)
    results = collect(started, out)
    arrivals: dict[int, list[float]] = {}
    for result in results:
        for number, times in result["arrivals"].items():
            arrivals.setdefault(number, []).extend(times)
    made = list(range(a.part, b.part))
    delivered = sum(len(arrivals.get(n, [])) for n in made)
    spread = [t - min(arrivals[n]) for n in made if n in arrivals for t in arrivals[n]]
    row = common(a, b, results, procs)
    row.update(
        via=via,
        clients=clients,
        parts=len(made),
        delivered=delivered,
        expected=clients * len(made),
        spread_p50=percentile(spread, 0.5),
        spread_p95=percentile(spread, 0.95),
        origin_rate=(b.answers - a.answers) / row["seconds"],
        shed_rate=(b.shed - a.shed) / row["seconds"],
        requests=sum(r["requests"] for r in results),
    )
    return row


async def chat(stage: Stage, begin: float, end: float, every: float) -> int:
    """A socket viewer sends `bench <send time>` every `every` seconds in [begin, end)."""
    url = stage.vitrine.url.replace("http://", "ws://") + f"/ws/shows/{stage.show}"
    sent = 0
    async with websockets.connect(url, origin=stage.vitrine.url) as ws:  # type: ignore[arg-type]
        await ws.send(json.dumps({"type": "hello", "v": 1, "name": "Bench host"}))
        await asyncio.sleep(max(0.0, begin - time.monotonic()))
        while time.monotonic() < end - every / 2:
            await ws.send(json.dumps({"type": "chat", "text": f"bench {time.monotonic():.6f}"}))
            sent += 1
            await asyncio.sleep(every)
    return sent


def feed_step(stage: Stage, readers: int, procs: int, window: float) -> dict[str, Any]:
    ramp = max(3.0, readers / 1500)
    now = time.monotonic()
    begin, end = now + ramp + 3, now + ramp + 3 + window
    args = {"port": stage.nginx_port, "show": stage.show, "until": end + 2, "ramp": ramp}
    started, out = crowd("feed", args, readers, procs)
    generator = [psutil.Process(p.pid) for p in started]
    time.sleep(max(0.0, begin - 0.2 - time.monotonic()))
    a = sample(stage, generator)
    sent = asyncio.run(chat(stage, begin, end, 2.5))
    b = sample(stage, generator)
    results = collect(started, out)
    delays = [d for r in results for d in r["delays"]]
    with stage.nginx_log.open() as log:
        log.seek(a.log)
        lines = log.read(b.log - a.log).splitlines()
    origin: Counter[str] = Counter()
    for line in lines:
        uri = line.split()[0]
        if FEED_URI.match(uri):
            origin[uri] += 1
    row = common(a, b, results, procs)
    row.update(
        readers=readers,
        sent=sent,
        received=len(delays),
        expected=sent * readers,
        p50=percentile(delays, 0.5),
        p99=percentile(delays, 0.99),
        worst=max(delays, default=float("nan")),
        ticks=len(origin),
        origin=sum(origin.values()),
        origin_rate=sum(origin.values()) / row["seconds"],
    )
    return row


def ms(value: float) -> str:
    return "-" if value != value else f"{value * 1000:.0f}"  # nan: none measured


def clients_table(rows: list[dict[str, Any]], procs: int) -> list[str]:
    lines = [
        f"| path | clients | parts delivered / expected | after the first client p50 / p95 ms "
        "| Vitrine HLS answers/s (+ shed, 503/s) | Vitrine CPU % | nginx CPU % | "
        f"generator CPU % ({procs} procs) | machine busy % | limit | load avg |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        share = 100 * r["delivered"] / r["expected"] if r["expected"] else float("nan")
        errors = ", ".join(f"{k} x{v}" for k, v in sorted(r["errors"].items()))
        lines.append(
            f"| {r['via']} | {r['clients']} | {r['delivered']} / {r['expected']} "
            f"({share:.1f} %){'; ' + errors if errors else ''} | {ms(r['spread_p50'])} / "
            f"{ms(r['spread_p95'])} | {r['origin_rate']:.1f} ({r.get('shed_rate', 0):.0f}) | "
            f"{r['vitrine_cpu']:.0f} | "
            f"{r['nginx_cpu']:.0f} | {r['generator_cpu']:.0f} | {r['machine_cpu']:.0f} | "
            f"{r['limit']} | "
            f"{r['load']:.1f} |"
        )
    return lines


def feed_table(rows: list[dict[str, Any]], procs: int) -> list[str]:
    lines = [
        "| readers | messages received / expected | delay p50 / p99 / max ms | Vitrine "
        "feed requests / ticks | Vitrine feed requests/s | Vitrine CPU % | nginx CPU % | "
        f"generator CPU % ({procs} procs) | machine busy % | limit | load avg |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        errors = ", ".join(f"{k} x{v}" for k, v in sorted(r["errors"].items()))
        lines.append(
            f"| {r['readers']} | {r['received']} / {r['expected']}"
            f"{'; ' + errors if errors else ''} | {ms(r['p50'])} / {ms(r['p99'])} / "
            f"{ms(r['worst'])} | {r['origin']} / {r['ticks']} | {r['origin_rate']:.2f} | "
            f"{r['vitrine_cpu']:.0f} | {r['nginx_cpu']:.0f} | {r['generator_cpu']:.0f} | "
            f"{r['machine_cpu']:.0f} | {r['limit']} | {r['load']:.1f} |"
        )
    return lines


def sweep(
    direct: list[int],
    clients: list[int],
    readers: list[int],
    procs: int,
    window: float,
    nginx_workers: int,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The HLS steps straight from Vitrine (until one delivers under 90 %: past that the
    server's loop starves its own WebRTC publisher), then those through nginx, then the
    feed's: each path with its own fresh server, show and nginx."""
    hls_rows: list[dict[str, Any]] = []
    feed_rows: list[dict[str, Any]] = []
    for via, steps in (("direct", direct), ("nginx", clients), ("feed", readers)):
        if not steps:
            continue
        # Two connections an HLS client; the feed's steps need no video.
        stage = start(2 * max(steps) + 1000, nginx_workers, publish=via != "feed")
        try:
            for count in steps:
                if via == "feed":
                    row = feed_step(stage, count, procs, window)
                    feed_rows.append(row)
                else:
                    row = hls_step(stage, via, count, procs, window)
                    hls_rows.append(row)
                print(json.dumps(row), flush=True)
                if via == "direct" and (
                    not row["parts"]  # the show itself stopped
                    or (row["delivered"] < 0.9 * row["expected"] and not row["shed_rate"])
                ):
                    break  # (with Vitrine shedding load, the next step says if the show lives)
                time.sleep(3)  # the sockets of the step before close
        finally:
            stage.close()
    return hls_rows, feed_rows


def clients_summary(rows: list[dict[str, Any]]) -> list[str]:
    """What the steps say, in words: the most clients served whole on each path, and
    whether Vitrine's load stayed flat behind nginx."""
    lines = []
    for via in ("direct", "nginx"):
        steps = [r for r in rows if r["via"] == via]
        whole = [
            r["clients"] for r in steps if r["expected"] and r["delivered"] >= 0.99 * r["expected"]
        ]
        bound = [r["clients"] for r in steps if r["limit"] != "-"]
        lines.append(
            f"- {'Straight from Vitrine' if via == 'direct' else 'Through nginx'}: "
            + (
                f"{max(whole)} clients got at least 99 % of the parts"
                if whole
                else "no step got 99 % of the parts"
            )
            + (
                f"; the load generator or the machine was the limit at {', '.join(map(str, bound))}"
                if bound
                else ""
            )
            + "."
        )
    nginx = [r for r in rows if r["via"] == "nginx"]
    if len(nginx) >= 2:
        first, last = nginx[0], nginx[-1]
        lines.append(
            f"- Behind nginx, from {first['clients']} to {last['clients']} clients Vitrine "
            f"answered {first['origin_rate']:.1f} then {last['origin_rate']:.1f} HLS requests a "
            f"second with {first['vitrine_cpu']:.0f} then {last['vitrine_cpu']:.0f} % of a core "
            "(its WebRTC relay and HLS writer included)."
        )
    return lines
