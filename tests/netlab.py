"""A network lab: Vitrine, a publisher and viewers on their own emulated networks.

Each host is a network namespace joined to a hub namespace (a bridge) by a veth pair,
with an address of the benchmarking range 198.18.0.0/15; nothing leaves the machine.
A profile shapes each host's link:

- bandwidth: `tc tbf` on the host's side (its uplink) and on the hub's side (its
  downlink), with a deep queue as cellular uplinks have;
- random loss: nftables `numgen` drops a share of the UDP datagrams each way;
- bursts and outages: a rule that drops all UDP, added and removed as the show goes;
- delay and jitter: this kernel has no `netem`, so a small UDP forwarder (`forward`
  below) runs in the host's namespace and holds each datagram for the delay plus a
  random jitter (order kept), both ways. The host's peer gathers its ICE candidate on
  an address only its own namespace knows, and the server's candidate in the SDP
  answer is rewritten to the forwarder's address: the forwarder is the only path;
- NAT: the viewer sits behind a router namespace that masquerades it (nftables);
- UDP blocked: the host's namespace drops every UDP datagram on its link.

The lab's own processes (the server, agents, forwarders) run under `ip netns exec`;
agents speak JSON lines on stdin/stdout. Run `python -m tests.netlab ROLE ...` for one
(publisher, viewer, forward): the lab does it for you.

Glass-to-glass: the publisher draws a frame counter and its send time (the shared
CLOCK_MONOTONIC, in ms) into the picture; each viewer decodes every frame, reads both
back and notes when it got it, so delay, freezes, frame rate and picture size are
measured by what a viewer actually sees.

Lip sync: the publisher's audio is silent but for a 10 ms tone burst once a second,
captured at the same instant as every 30th frame (both tracks are paced from one
origin). Each viewer maps the RTP timestamps of those frames and of the bursts it
decodes to the sender's clock through the sender reports it gets (as a player
aligns audio and video), and reports the offset of each burst from its frame.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import ctypes
import fractions
import itertools
import json
import math
import os
import random
import re
import secrets
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PREFIX = "vtl"  # every namespace of the lab: vtl<pid>-<n>-<role>
SERVER_IP = "198.18.0.1"
SERVER_PORT = 8080
PORT_RANGE = (40000, 40199)  # the server's UDP ports, so a forwarder can listen on them
FORWARDER_IP = "198.19.200.1"  # on a host's lo, only that host reaches it
HIDDEN_IP = "198.19.200.2"  # the host's peer, behind its forwarder
TURN_IP = "198.18.0.3"
CLOCK = time.CLOCK_MONOTONIC  # shared by every namespace: send and decode times compare


# -- profiles ------------------------------------------------------------------------


@dataclass(frozen=True)
class Profile:
    """One host's link. Delays are one way, applied in each direction."""

    name: str
    up_kbit: int = 0  # 0: no limit
    down_kbit: int = 0
    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    loss: float = 0.0  # share of UDP datagrams dropped, each way
    bursts: bool = False  # plus UDP blackouts of 100-300 ms every 2-5 s
    nat: bool = False
    udp_blocked: bool = False
    queue_ms: int = 8000  # bottleneck queue: a cellular uplink's buffer is deep

    @property
    def forwarder(self) -> bool:
        return self.delay_ms > 0 or self.jitter_ms > 0


PROFILES = {
    p.name: p
    for p in (
        Profile("clean"),
        Profile("4g", up_kbit=4000, delay_ms=25, jitter_ms=10, loss=0.01),
        Profile("wifi", delay_ms=60, jitter_ms=15, loss=0.05, bursts=True),
        Profile("narrow", up_kbit=900, loss=0.05),  # the 900 kbit/s uplink
        Profile("drop", up_kbit=3000),  # then 500 kbit/s mid-show (Host.set_rate)
        Profile("outage"),  # clean, then 5 s with no UDP at all (Host.blackout)
        Profile("nat", nat=True),
        Profile("udp-blocked", udp_blocked=True),
    )
}


# -- running commands ----------------------------------------------------------------


def sh(*args: str, check: bool = True, input: str | None = None) -> str:
    result = subprocess.run(args, capture_output=True, text=True, input=input, timeout=30)
    if check and result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {result.stderr.strip()}")
    return result.stdout


def nft(ns: str, script: str) -> None:
    sh("ip", "netns", "exec", ns, "nft", "-f", "-", input=script)


def unavailable() -> str | None:
    """Why the lab cannot run here, or None."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    for tool in ("ip", "tc", "nft"):
        if shutil.which(tool) is None:
            return f"`{tool}` is not installed (iproute2, nftables)"
    name = f"{PREFIX}{os.getpid()}-probe"
    try:
        sh("ip", "netns", "add", name)
    except (RuntimeError, OSError) as exc:
        return f"cannot create a network namespace: {exc}"
    sh("ip", "netns", "del", name, check=False)
    return None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale() -> None:
    """Remove the namespaces (and their processes) of lab runs whose process is gone."""
    for line in sh("ip", "netns", "list", check=False).splitlines():
        name = line.split()[0] if line.strip() else ""
        match = re.match(rf"{PREFIX}(\d+)-", name)
        if match and not _alive(int(match.group(1))):
            _delete_namespace(name)


def _delete_namespace(name: str) -> None:
    for pid in sh("ip", "netns", "pids", name, check=False).split():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid), signal.SIGKILL)
    sh("ip", "netns", "del", name, check=False)


_libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNET = 0x40000000


def in_namespace(ns: str, fn: Callable[[], Any]) -> Any:
    """Call `fn` on a thread that has entered namespace `ns` (setns is per thread)."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            with open(f"/var/run/netns/{ns}") as handle:
                if _libc.setns(handle.fileno(), CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns failed")
            box["value"] = fn()
        except BaseException as exc:  # handed to the caller
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box.get("value")


def http(ns: str, method: str, url: str, body: bytes | None = None) -> tuple[int, str]:
    def call() -> tuple[int, str]:
        request = urllib.request.Request(url, data=body, method=method)
        try:
            with urllib.request.urlopen(request, timeout=10) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    result: tuple[int, str] = in_namespace(ns, call)
    return result


# -- agents, driven over JSON lines ----------------------------------------------------


class Agent:
    """A lab process in a namespace: JSON commands on stdin, JSON answers on stdout."""

    def __init__(self, ns: str, args: list[str], log: Path, env: dict[str, str]) -> None:
        self.log = log
        with log.open("a") as err:
            self.proc = subprocess.Popen(
                ["ip", "netns", "exec", ns, sys.executable, "-m", "tests.netlab", *args],
                cwd=ROOT,
                env={**os.environ, **env},
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
            )
        self._buffer = b""
        self.first = self.read(60)

    def read(self, timeout: float = 30) -> dict[str, Any]:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([fd], [], [], max(left, 0))
            if not ready:
                raise TimeoutError(f"no answer from {self.log.name}:\n{self.log.read_text()}")
            chunk = os.read(fd, 65536)
            if not chunk:
                raise RuntimeError(f"{self.log.name} stopped:\n{self.log.read_text()[-3000:]}")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        answer: dict[str, Any] = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"{self.log.name}: {answer['error']}")
        return answer

    def ask(self, timeout: float = 30, **command: Any) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(command).encode() + b"\n")
        self.proc.stdin.flush()
        return self.read(timeout)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for pipe in (self.proc.stdin, self.proc.stdout):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()


@dataclass
class Host:
    lab: Lab
    ns: str
    ip: str
    profile: Profile
    hub_side: str  # its veth's name in the hub namespace
    link: str = "eth0"  # the interface its traffic leaves by (a NAT router's, behind NAT)
    link_ns: str = ""  # the namespace holding `link`
    agents: list[Agent] = field(default_factory=list)

    @property
    def peer_ip(self) -> str:
        """The address its WebRTC peer gathers candidates on."""
        return HIDDEN_IP if self.profile.forwarder else self.ip

    def set_rate(self, up_kbit: int) -> None:
        """Change the uplink's bandwidth now (a falling bandwidth mid-show)."""
        sh("ip", "-n", self.link_ns or self.ns, "link", "show", self.link)  # still there
        _shape(self.link_ns or self.ns, self.link, up_kbit, self.profile.queue_ms)

    def blackout(self, on: bool) -> None:
        """Drop (or stop dropping) every UDP datagram on this host's link, both ways."""
        ns = self.link_ns or self.ns
        if on:
            nft(
                ns,
                "table inet vtlblackout {\n"
                "  chain in { type filter hook input priority -10; policy accept;\n"
                f'    iifname "{self.link}" meta l4proto udp drop\n  }}\n'
                "  chain out { type filter hook output priority -10; policy accept;\n"
                f'    oifname "{self.link}" meta l4proto udp drop\n  }}\n'
                "  chain pass { type filter hook forward priority -10; policy accept;\n"
                "    meta l4proto udp drop\n  }\n}\n",
            )
        else:
            sh("ip", "netns", "exec", ns, "nft", "delete", "table", "inet", "vtlblackout")


def _shape(ns: str, dev: str, kbit: int, queue_ms: int) -> None:
    burst = max(4000, kbit * 1000 // 8 // 50)  # 20 ms of the rate, at least a few packets
    sh(
        "ip",
        "netns",
        "exec",
        ns,
        "tc",
        "qdisc",
        "replace",
        "dev",
        dev,
        "root",
        "tbf",
        "rate",
        f"{kbit}kbit",
        "burst",
        str(burst),
        "latency",
        f"{queue_ms}ms",
    )


def _loss_rules(dev: str, loss: float) -> str:
    per_10k = round(loss * 10000)
    return (
        "table inet vtlloss {\n"
        "  chain in { type filter hook input priority 0; policy accept;\n"
        f'    iifname "{dev}" meta l4proto udp numgen random mod 10000 < {per_10k} drop\n  }}\n'
        "  chain out { type filter hook output priority 0; policy accept;\n"
        f'    oifname "{dev}" meta l4proto udp numgen random mod 10000 < {per_10k} drop\n  }}\n'
        "}\n"
    )


class Server:
    def __init__(self, lab: Lab, host: Host, settings: dict[str, str]) -> None:
        self.lab, self.host = lab, host
        self.url = f"http://{SERVER_IP}:{SERVER_PORT}"
        self.data_dir = lab.tmp / "server-data"
        self.log = lab.tmp / "server.log"
        self.env = {
            **os.environ,
            "VITRINE_STORAGE_DATA_DIR": str(self.data_dir),
            "VITRINE_SERVER_HOST": SERVER_IP,
            "VITRINE_SERVER_PORT": str(SERVER_PORT),
            "VITRINE_MEDIA_HOST_ADDRESSES": SERVER_IP,
            "VITRINE_MEDIA_GRACE_SECONDS": "30",
            "VITRINE_MEDIA_RECORD": "false",
            "VITRINE_LIMITS_WHEP_SESSIONS_PER_ADDRESS": "0",
            **settings,
        }
        with self.log.open("a") as out:
            self.proc = subprocess.Popen(
                ["ip", "netns", "exec", host.ns, sys.executable, "-m", "appliance", "serve"],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while True:
            with contextlib.suppress(OSError):
                if http(host.ns, "GET", self.url + "/healthz")[0] == 200:
                    break
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start:\n{self.log.read_text()}")
            time.sleep(0.2)

    def create_show(self, title: str = "Network lab") -> tuple[int, str]:
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "appliance",
                "shows",
                "create",
                "--title",
                title,
                "--starts-at",
                "2030-01-01T10:00",
            ],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        ).stdout
        created = json.loads(out)
        return int(created["id"]), str(created["stream_key"])

    def status(self, show: int) -> dict[str, Any]:
        code, body = http(self.host.ns, "GET", f"{self.url}/api/shows/{show}/status")
        assert code == 200, body
        result: dict[str, Any] = json.loads(body)
        return result

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Lab:
    """Namespaces, links and processes of one run; `close()` removes them all."""

    def __init__(self, tmp: Path) -> None:
        reason = unavailable()
        if reason:
            raise RuntimeError(reason)
        clean_stale()
        self.tmp = tmp
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.prefix = f"{PREFIX}{os.getpid()}-{secrets.token_hex(2)}"
        self.namespaces: list[str] = []
        self.hosts: list[Host] = []
        self.server: Server | None = None
        self._next_ip = 10
        self._bursts: list[threading.Event] = []
        self.processes: list[subprocess.Popen[bytes]] = []
        try:
            self.hub = self._namespace("hub")
            sh("ip", "-n", self.hub, "link", "add", "br0", "type", "bridge")
            sh("ip", "-n", self.hub, "link", "set", "br0", "up")
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _namespace(self, role: str) -> str:
        name = f"{self.prefix}-{role}"
        sh("ip", "netns", "add", name)
        self.namespaces.append(name)
        sh("ip", "-n", name, "link", "set", "lo", "up")
        return name

    def _attach(self, ns: str, ip: str, hub_side: str) -> None:
        sh(
            "ip",
            "-n",
            self.hub,
            "link",
            "add",
            hub_side,
            "type",
            "veth",
            "peer",
            "name",
            "eth0",
            "netns",
            ns,
        )
        sh("ip", "-n", self.hub, "link", "set", hub_side, "master", "br0", "up")
        sh("ip", "-n", ns, "addr", "add", f"{ip}/24", "dev", "eth0")
        sh("ip", "-n", ns, "link", "set", "eth0", "up")

    def add_host(self, role: str, profile: Profile, ip: str | None = None) -> Host:
        if ip is None:
            ip = f"198.18.0.{self._next_ip}"
            self._next_ip += 1
        n = len(self.hosts)
        ns = self._namespace(role)
        hub_side = f"h{n}"
        host = Host(self, ns, ip, profile, hub_side, link_ns=ns)
        if profile.nat:
            # The host lives on 198.19.<n>.0/24 behind a router that masquerades it.
            router = self._namespace(f"{role}-nat")
            self._attach(router, ip, hub_side)
            inside = f"198.19.{n}."
            sh(
                "ip",
                "-n",
                router,
                "link",
                "add",
                "lan",
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                ns,
            )
            sh("ip", "-n", router, "addr", "add", inside + "1/24", "dev", "lan")
            sh("ip", "-n", router, "link", "set", "lan", "up")
            sh("ip", "-n", ns, "addr", "add", inside + "2/24", "dev", "eth0")
            sh("ip", "-n", ns, "link", "set", "eth0", "up")
            sh("ip", "-n", ns, "route", "add", "default", "via", inside + "1")
            sh("ip", "netns", "exec", router, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
            nft(
                router,
                "table ip vtlnat {\n  chain post { type nat hook postrouting priority 100;\n"
                '    oifname "eth0" masquerade\n  }\n}\n',
            )
            host.ip, host.link_ns = inside + "2", router
        else:
            self._attach(ns, ip, hub_side)
        link_ns = host.link_ns
        if profile.up_kbit:
            _shape(link_ns, "eth0", profile.up_kbit, profile.queue_ms)
        if profile.down_kbit:
            _shape(self.hub, hub_side, profile.down_kbit, profile.queue_ms)
        if profile.loss:
            nft(link_ns, _loss_rules("eth0", profile.loss))
        if profile.udp_blocked:
            nft(
                ns,
                "table inet vtlblock {\n"
                "  chain in { type filter hook input priority 0; policy accept;\n"
                '    iifname != "lo" meta l4proto udp drop\n  }\n'
                "  chain out { type filter hook output priority 0; policy accept;\n"
                '    oifname != "lo" meta l4proto udp drop\n  }\n}\n',
            )
        if profile.forwarder:
            sh("ip", "-n", ns, "addr", "add", f"{FORWARDER_IP}/32", "dev", "lo")
            sh("ip", "-n", ns, "addr", "add", f"{HIDDEN_IP}/32", "dev", "lo")
            low, high = PORT_RANGE
            host.agents.append(
                Agent(
                    ns,
                    [
                        "forward",
                        "--listen",
                        FORWARDER_IP,
                        "--ports",
                        f"{low}-{high}",
                        "--to",
                        SERVER_IP,
                        "--bind",
                        host.ip,
                        "--delay",
                        str(profile.delay_ms),
                        "--jitter",
                        str(profile.jitter_ms),
                    ],
                    self.tmp / f"{role}-forward.log",
                    {},
                )
            )
        if profile.bursts:
            self._start_bursts(host)
        self.hosts.append(host)
        return host

    def _start_bursts(self, host: Host) -> None:
        stop = threading.Event()
        self._bursts.append(stop)

        def run() -> None:
            rng = random.Random(host.ip)
            while not stop.wait(rng.uniform(2.0, 5.0)):
                try:
                    host.blackout(True)
                    stop.wait(rng.uniform(0.1, 0.3))
                    host.blackout(False)
                except RuntimeError:
                    return  # the lab is being taken down

        threading.Thread(target=run, daemon=True).start()

    def start_server(self, settings: dict[str, str] | None = None) -> Server:
        host = self.add_host("server", PROFILES["clean"], SERVER_IP)
        low, high = PORT_RANGE
        sh(
            "ip",
            "netns",
            "exec",
            host.ns,
            "sysctl",
            "-q",
            "-w",
            f"net.ipv4.ip_local_port_range={low} {high}",
        )
        self.server = Server(self, host, settings or {})
        return self.server

    def start_turn(self, secret: str) -> Path:
        """coturn serving TURN over TLS on 443 (TURN REST credentials with `secret`);
        returns its self-signed certificate, for the clients to trust."""
        host = self.add_host("turn", PROFILES["clean"], TURN_IP)
        cert, key = self.tmp / "turn-cert.pem", self.tmp / "turn-key.pem"
        sh(
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=turn.vitrine.test",
            "-addext",
            f"subjectAltName=IP:{TURN_IP}",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        )
        with (self.tmp / "turn.log").open("a") as out:
            self.processes.append(
                subprocess.Popen(
                    [
                        "ip",
                        "netns",
                        "exec",
                        host.ns,
                        "turnserver",
                        "-n",
                        "--no-cli",
                        f"--listening-ip={TURN_IP}",
                        f"--relay-ip={TURN_IP}",
                        "--listening-port=3478",
                        "--tls-listening-port=443",
                        "--no-dtls",
                        f"--cert={cert}",
                        f"--pkey={key}",
                        "--use-auth-secret",
                        f"--static-auth-secret={secret}",
                        "--realm=vitrine.test",
                        "--fingerprint",
                        "--min-port=49152",
                        "--max-port=49999",
                        "--allowed-peer-ip=198.18.0.0-198.18.0.255",
                        "--log-file=stdout",
                        "--simple-log",
                        f"--pidfile={self.tmp / 'turn.pid'}",
                    ],
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            )
        deadline = time.monotonic() + 10
        while ":443" not in sh("ip", "netns", "exec", host.ns, "ss", "-ltn", check=False):
            if time.monotonic() > deadline:
                raise RuntimeError(f"coturn did not start:\n{(self.tmp / 'turn.log').read_text()}")
            time.sleep(0.1)
        return cert

    def publisher(
        self,
        host: Host,
        show: int,
        key: str,
        *,
        width: int = 640,
        height: int = 360,
        simulcast: bool = False,
    ) -> Agent:
        agent = Agent(
            host.ns,
            [
                "publisher",
                f"http://{SERVER_IP}:{SERVER_PORT}/whip/{show}",
                key,
                "--bind",
                host.peer_ip,
                "--size",
                f"{width}x{height}",
                *(["--via", FORWARDER_IP] if host.profile.forwarder else []),
                *(["--simulcast"] if simulcast else []),
            ],
            self.tmp / f"{host.ns}-publisher.log",
            {},
        )
        host.agents.append(agent)
        return agent

    def viewer(
        self, host: Host, show: int, *, page: bool = False, trust: Path | None = None
    ) -> Agent:
        """A decoding viewer. `page`: it takes its ICE servers (and TURN credentials) from
        the show's page, as the player does; `trust`: a certificate it trusts (TURN/TLS)."""
        base = f"http://{SERVER_IP}:{SERVER_PORT}"
        agent = Agent(
            host.ns,
            [
                "viewer",
                f"{base}/whep/{show}",
                "--bind",
                host.peer_ip,
                *(["--via", FORWARDER_IP] if host.profile.forwarder else []),
                *(["--ice-from", f"{base}/shows/{show}"] if page else []),
            ],
            self.tmp / f"{host.ns}-viewer.log",
            {"SSL_CERT_FILE": str(trust)} if trust else {},
        )
        host.agents.append(agent)
        return agent

    def close(self) -> None:
        for stop in self._bursts:
            stop.set()
        for host in self.hosts:
            for agent in host.agents:
                with contextlib.suppress(Exception):
                    agent.stop()
        if self.server is not None:
            self.server.stop()
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        for name in reversed(self.namespaces):
            _delete_namespace(name)
        self.namespaces.clear()


@contextlib.contextmanager
def lab(tmp: Path) -> Iterator[Lab]:
    running = Lab(tmp)
    try:
        yield running
    finally:
        running.close()


def wait_playing(viewer: Agent, timeout: float = 15.0) -> int:
    """Wait until `viewer` decodes frames; return how long it took, in ms."""
    start = viewer.ask(op="report")["now_ms"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        report = viewer.ask(op="report", since_ms=start)
        if report["samples"]:
            return int(report["samples"][0]["at_ms"] - start)
        time.sleep(0.2)
    raise TimeoutError(f"the viewer decoded nothing in {timeout} s")


# -- glass-to-glass measurement ---------------------------------------------------------

COUNTER_BITS, TIME_BITS = 16, 24
BANDS = {"counter": (48, 112), "time": (128, 192), "noise": (208, 304)}  # of 360 rows


def now_ms() -> int:
    return int(time.clock_gettime(CLOCK) * 1000)


def _bits_row(width: int, value: int, bits: int) -> bytes:
    block = width // bits
    row = b"".join(
        (b"\xeb" if (value >> (bits - 1 - i)) & 1 else b"\x10") * block for i in range(bits)
    )
    return row + b"\x80" * (width - len(row))


def stamp_luma(width: int, height: int, counter: int, sent_ms: int, noise: bytes) -> bytes:
    """A luma plane with the counter and send time as blocks, and a band of noise that
    makes the encoder spend its bitrate (a phone's camera is never a still picture)."""
    rows: list[bytes] = []
    grey = b"\x80" * width
    scale = height / 360
    counter_row = _bits_row(width, counter & 0xFFFF, COUNTER_BITS)
    time_row = _bits_row(width, sent_ms & 0xFFFFFF, TIME_BITS)
    bands = {k: (int(a * scale), int(b * scale)) for k, (a, b) in BANDS.items()}
    noise_at = 0
    for y in range(height):
        if bands["counter"][0] <= y < bands["counter"][1]:
            rows.append(counter_row)
        elif bands["time"][0] <= y < bands["time"][1]:
            rows.append(time_row)
        elif bands["noise"][0] <= y < bands["noise"][1]:
            rows.append(noise[noise_at : noise_at + width])
            noise_at += width
        else:
            rows.append(grey)
    return b"".join(rows)


def _read_bits(plane: Any, width: int, height: int, band: tuple[int, int], bits: int) -> int:
    data = bytes(plane)
    scale = height / 360
    y0, y1 = int(band[0] * scale), int(band[1] * scale)
    block = width / bits
    value = 0
    for i in range(bits):
        x = int(block * i + block / 2)
        total = 0
        for y in (y0 + (y1 - y0) // 3, (y0 + y1) // 2, y1 - (y1 - y0) // 3):
            total += data[y * plane.line_size + x]
        value = (value << 1) | (1 if total > 3 * 128 else 0)
    return value


def read_stamp(frame: Any) -> tuple[int, int]:
    """(counter, send time in ms modulo 2**24) drawn into a decoded frame."""
    plane = frame.planes[0]
    w, h = frame.width, frame.height
    return (
        _read_bits(plane, w, h, BANDS["counter"], COUNTER_BITS),
        _read_bits(plane, w, h, BANDS["time"], TIME_BITS),
    )


def delay_ms(sent_ms: int, received_ms: int) -> int:
    return (received_ms - sent_ms) % (1 << TIME_BITS)


@dataclass
class Sample:
    counter: int
    delay_ms: int
    at_ms: int  # when the viewer had the decoded frame
    width: int
    height: int


def summarise(samples: list[dict[str, Any]], seconds: float) -> dict[str, Any]:
    """Glass-to-glass figures of one viewer over `seconds` of watching."""
    delays = sorted(s["delay_ms"] for s in samples)
    times = [s["at_ms"] for s in samples]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    frozen = [g for g in gaps if g > 200]

    def pct(q: float) -> float | None:
        return float(delays[min(len(delays) - 1, int(q * len(delays)))]) if delays else None

    sizes: dict[str, int] = {}
    for s in samples:
        key = f"{s['width']}x{s['height']}"
        sizes[key] = sizes.get(key, 0) + 1
    return {
        "frames": len(samples),
        "fps": len(samples) / seconds if seconds else 0.0,
        "delay_p50": pct(0.5),
        "delay_p95": pct(0.95),
        "delay_max": float(delays[-1]) if delays else None,
        "freezes": len(frozen),
        "freezes_per_min": len(frozen) * 60 / seconds if seconds else 0.0,
        "frozen_ms": sum(frozen),
        "longest_gap_ms": max(gaps, default=None),
        "size": max(sizes, key=lambda k: sizes[k]) if sizes else None,
        "sizes": sizes,
    }


def lip_sync(pairs: list[dict[str, Any]]) -> dict[str, Any]:
    """Audio/video offset figures (ms, audio after video positive) of a viewer's marker
    pairs (`av` in its report)."""
    offsets = sorted(abs(p["offset_ms"]) for p in pairs)
    return {
        "markers": len(offsets),
        "av_abs_p50_ms": offsets[len(offsets) // 2] if offsets else None,
        "av_abs_max_ms": offsets[-1] if offsets else None,
        "av_mean_ms": round(sum(p["offset_ms"] for p in pairs) / len(pairs), 1) if pairs else None,
    }


# -- the processes: forwarder, publisher, viewer ------------------------------------------


def reply(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


async def commands() -> Any:
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            return
        yield json.loads(line)


class _Held:
    """Releases datagrams after delay + jitter, in the order they came (a link
    reorders nothing; its queue only holds). One queue and one timer: asyncio's timers
    due at the same instant may run in any order."""

    def __init__(self, delay: float, jitter: float) -> None:
        self.delay, self.jitter = delay, jitter
        self.last = 0.0
        self.loop = asyncio.get_running_loop()
        self.queue: collections.deque[tuple[float, Callable[[], None]]] = collections.deque()
        self.timer: asyncio.TimerHandle | None = None

    def later(self, send: Callable[[], None]) -> None:
        now = self.loop.time()
        due = now + max(0.0, self.delay + random.uniform(-self.jitter, self.jitter))
        self.last = max(due, self.last)
        self.queue.append((self.last, send))
        if self.timer is None:
            self.timer = self.loop.call_at(self.last, self._release)

    def _release(self) -> None:
        self.timer = None
        now = self.loop.time()
        while self.queue and self.queue[0][0] <= now + 0.0005:
            self.queue.popleft()[1]()
        if self.queue:
            self.timer = self.loop.call_at(self.queue[0][0], self._release)


async def run_forwarder(args: argparse.Namespace) -> None:
    loop = asyncio.get_running_loop()
    delay, jitter = args.delay / 1000, args.jitter / 1000
    low, high = (int(p) for p in args.ports.split("-"))
    upstream_held, downstream_held = _Held(delay, jitter), _Held(delay, jitter)
    sessions: dict[tuple[int, Any], asyncio.DatagramTransport] = {}
    counts = {"up": 0, "down": 0}
    opening: set[asyncio.Future[None]] = set()

    class Back(asyncio.DatagramProtocol):
        def __init__(self, front: asyncio.DatagramTransport, client: Any) -> None:
            self.front, self.client = front, client

        def datagram_received(self, data: bytes, addr: Any) -> None:
            counts["down"] += 1
            downstream_held.later(lambda: self.front.sendto(data, self.client))

        def error_received(self, exc: Exception) -> None:
            pass

    class Front(asyncio.DatagramProtocol):
        def __init__(self, port: int) -> None:
            self.port = port
            self.transport: asyncio.DatagramTransport | None = None

        def connection_made(self, transport: Any) -> None:
            self.transport = transport

        def datagram_received(self, data: bytes, addr: Any) -> None:
            counts["up"] += 1
            back = sessions.get((self.port, addr))
            if back is not None:
                upstream_held.later(lambda: back.sendto(data))
            else:  # the first datagram of a session: open its upstream socket first
                task = asyncio.ensure_future(self.forward(data, addr))
                opening.add(task)
                task.add_done_callback(opening.discard)

        async def forward(self, data: bytes, addr: Any) -> None:
            key = (self.port, addr)
            back = sessions.get(key)
            if back is None:
                assert self.transport is not None
                front = self.transport
                back, _ = await loop.create_datagram_endpoint(
                    lambda: Back(front, addr),
                    local_addr=(args.bind, 0),
                    remote_addr=(args.to, self.port),
                )
                sessions[key] = back
            upstream_held.later(lambda: back.sendto(data))

        def error_received(self, exc: Exception) -> None:
            pass

    def front(port: int) -> Callable[[], Front]:
        return lambda: Front(port)

    for port in range(low, high + 1):
        await loop.create_datagram_endpoint(front(port), local_addr=(args.listen, port))
    reply({"ready": True})
    async for cmd in commands():
        if cmd.get("op") == "report":
            reply({"counts": counts, "sessions": len(sessions)})
        elif cmd.get("op") == "stop":
            break


def _rewrite_candidates(sdp: str, via: str | None) -> str:
    if not via:
        return sdp
    return re.sub(
        rf"^(a=candidate:\S+ \d+ (?:udp|UDP) \d+ ){re.escape(SERVER_IP)}( \d+ typ host)",
        rf"\g<1>{via}\g<2>",
        sdp,
        flags=re.M,
    )


def _page_ice(url: str) -> list[dict[str, Any]]:
    """The ICE servers a page gives its player (data-ice-servers), credentials included."""
    import html

    with urllib.request.urlopen(url, timeout=10) as r:
        page = r.read().decode()
    match = re.search(r'data-ice-servers="([^"]*)"', page)
    if match is None:
        raise RuntimeError(f"no data-ice-servers on {url}")
    servers: list[dict[str, Any]] = json.loads(html.unescape(match.group(1)))
    return servers


def _path(pc: Any) -> str | None:
    """The type of this peer's candidate on the selected pair: host, srflx, prflx, relay."""
    for transceiver in pc.getTransceivers():
        try:
            pair = transceiver.receiver.transport.transport._connection._nominated.get(1)
        except AttributeError:
            continue
        if pair is not None:
            return str(pair.local_candidate.type)
    return None


def _post_sdp(url: str, sdp: str, headers: dict[str, str]) -> tuple[int, str]:
    request = urllib.request.Request(
        url,
        data=sdp.encode(),
        method="POST",
        headers={"Content-Type": "application/sdp", **headers},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _stamped_track_class() -> Any:
    import av
    from aiortc import MediaStreamTrack

    class StampedTrack(MediaStreamTrack):
        """Frames that carry their number and send time; paced like a camera."""

        kind = "video"

        def __init__(self, width: int, height: int, fps: int = 30) -> None:
            super().__init__()
            self.width, self.height, self.fps = width, height, fps
            self.count = 0
            self.start: float | None = None
            self.uv = bytes([128]) * ((width // 2) * (height // 2))
            rows = int(BANDS["noise"][1] * height / 360) - int(BANDS["noise"][0] * height / 360)
            self.noise_size = rows * width
            self.noise = os.urandom(self.noise_size * 2)

        async def recv(self) -> Any:
            if self.start is None:
                self.start = time.monotonic()
            wait = self.start + self.count / self.fps - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            # A moving window over the noise: new detail every frame, cheap to make.
            offset = (self.count * 7919) % self.noise_size
            noise = self.noise[offset : offset + self.noise_size]
            frame = av.VideoFrame(self.width, self.height, "yuv420p")
            frame.planes[0].update(stamp_luma(self.width, self.height, self.count, now_ms(), noise))
            frame.planes[1].update(self.uv)
            frame.planes[2].update(self.uv)
            frame.pts = int(self.count * 90000 / self.fps)
            frame.time_base = fractions.Fraction(1, 90000)
            self.count += 1
            return frame

    return StampedTrack


AUDIO_RATE = 48000
AUDIO_FRAME = 960  # 20 ms
MARKER_EVERY = 30  # video frames (one second at 30 fps): a burst with every 30th frame
BURST_SAMPLES = 480  # 10 ms of 1 kHz tone
BURST = array(
    "h", (int(16000 * math.sin(2 * math.pi * 1000 * i / AUDIO_RATE)) for i in range(BURST_SAMPLES))
).tobytes() + bytes(2 * (AUDIO_FRAME - BURST_SAMPLES))
SILENCE = bytes(2 * AUDIO_FRAME)
LOUD = 8000  # a decoded sample above this is the burst


def _marker_audio_class() -> Any:
    import av
    from aiortc import MediaStreamTrack

    class MarkerAudioTrack(MediaStreamTrack):
        """Silence but for a burst at the instant of every MARKER_EVERY-th video frame:
        paced from the video track's origin, sample for sample."""

        kind = "audio"

        def __init__(self, video: Any) -> None:
            super().__init__()
            self.video = video
            self.count = 0
            self.last_capture = 0.0

        async def recv(self) -> Any:
            if self.video.start is None:  # one origin for both tracks, whichever starts
                self.video.start = time.monotonic()
            at = self.video.start + self.count * AUDIO_FRAME / AUDIO_RATE
            wait = at - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            # Video frame k is captured at start + k/fps; audio frame n starts at
            # start + n/50: the burst opens the audio frame of every marker frame.
            per_marker = AUDIO_RATE * MARKER_EVERY // (self.video.fps * AUDIO_FRAME)
            frame = av.AudioFrame(format="s16", layout="mono", samples=AUDIO_FRAME)
            frame.planes[0].update(BURST if self.count % per_marker == 0 else SILENCE)
            frame.pts = self.count * AUDIO_FRAME
            frame.sample_rate = AUDIO_RATE
            frame.time_base = fractions.Fraction(1, AUDIO_RATE)
            self.count += 1
            self.last_capture = at
            return frame

    return MarkerAudioTrack


def _report_capture_times(pc: Any, video: Any, audio: Any) -> None:
    """Make the publisher's sender reports pair each RTP timestamp with the instant its
    frame was captured, as browsers do, not with when its packet left (aiortc's
    choice, off by the encoding time, which differs between audio and video and grows
    with the machine's load): lip sync is then measured against the true pairing."""
    import struct

    from aiortc import clock
    from aiortc.rtp import RtcpSrPacket

    senders = [t.sender for t in pc.getTransceivers()]
    state: dict[int, dict[str, Any]] = {}
    for sender in senders:
        st = state[sender._ssrc] = {"e": 0, "captures": {}, "origin": None}
        next_frame, send_rtcp = sender._next_encoded_frame, sender._send_rtcp

        async def noted(
            codec: Any, sender: Any = sender, st: Any = st, nf: Any = next_frame
        ) -> Any:
            encoded = await nf(codec)
            if encoded is not None:
                if sender.kind == "video":
                    capture = (video.start or 0.0) + encoded.timestamp / 90000
                else:
                    capture = audio.last_capture
                st["e"] = encoded.timestamp
                st["captures"][encoded.timestamp] = capture
                while len(st["captures"]) > 400:
                    del st["captures"][next(iter(st["captures"]))]
            return encoded

        async def rewritten(packets: list[Any], st: Any = st, send: Any = send_rtcp) -> None:
            for packet in packets:
                if isinstance(packet, RtcpSrPacket) and st["origin"] is not None:
                    info = packet.sender_info
                    capture = st["captures"].get((info.rtp_timestamp - st["origin"]) % (1 << 32))
                    if capture is not None:
                        back = int((time.monotonic() - capture) * (1 << 32))
                        info.ntp_timestamp = (clock.current_ntp_time() - back) % (1 << 64)
            await send(packets)

        sender._next_encoded_frame, sender._send_rtcp = noted, rewritten
    transport = senders[0].transport  # bundled: one for both
    send_rtp = transport._send_rtp

    async def watched(data: bytes) -> None:
        # The first RTP packet of a sender gives its timestamp origin (RTCP packet
        # types, 200-206, are not RTP payload types here).
        if len(data) >= 12 and not 200 <= data[1] <= 206:
            ts, ssrc = struct.unpack("!II", data[4:12])
            st = state.get(ssrc)
            if st is not None and st["origin"] is None:
                st["origin"] = (ts - st["e"]) % (1 << 32)
        await send_rtp(data)

    transport._send_rtp = watched


async def run_publisher(args: argparse.Namespace) -> None:
    from aiortc import RTCPeerConnection, RTCSessionDescription

    from media import aiortc_glue as glue

    glue.set_host_addresses([args.bind])
    width, height = (int(x) for x in args.size.split("x"))
    track = _stamped_track_class()(width, height)
    audio = _marker_audio_class()(track)
    samples: list[tuple[int, int, int]] = []  # (ms, bytes sent, encoder target)
    state: dict[str, Any] = {"pc": None, "connects": 0}
    asked = {"keyframes": 0, "retransmits": 0}

    def count(sender: Any) -> None:
        """Count what the relay asks of this sender: keyframes (PLI/FIR), resends (NACK)."""
        keyframe, retransmit = sender._send_keyframe, sender._retransmit

        def send_keyframe() -> None:
            asked["keyframes"] += 1
            keyframe()

        async def resend(seq: int) -> None:
            asked["retransmits"] += 1
            await retransmit(seq)

        sender._send_keyframe, sender._retransmit = send_keyframe, resend

    async def connect() -> None:
        old = state["pc"]
        if old is not None:
            await old.close()
        pc = RTCPeerConnection()
        # The same track goes on: a phone that reconnects keeps its camera.
        count(pc.addTransceiver(track, direction="sendonly").sender)
        pc.addTransceiver(audio, direction="sendonly")
        _report_capture_times(pc, track, audio)
        await pc.setLocalDescription(await pc.createOffer())
        status, body = await asyncio.to_thread(
            _post_sdp, args.url, pc.localDescription.sdp, {"Authorization": f"Bearer {args.key}"}
        )
        if status != 201:
            raise RuntimeError(f"WHIP answered {status}: {body}")
        await pc.setRemoteDescription(
            RTCSessionDescription(_rewrite_candidates(body, args.via), "answer")
        )
        state["pc"] = pc
        state["connects"] += 1

    async def sample() -> None:
        while True:
            await asyncio.sleep(0.5)
            pc = state["pc"]
            if pc is None:
                continue
            sent, target = 0, 0
            for t in pc.getTransceivers():
                sender = t.sender
                if t.kind != "video":
                    continue
                for s in (await sender.getStats()).values():
                    if s.type == "outbound-rtp":
                        sent = s.bytesSent
                encoder = getattr(sender, "_RTCRtpSender__encoder", None)
                target = getattr(encoder, "target_bitrate", 0) or 0
            samples.append((now_ms(), sent, target))

    if args.simulcast:
        await run_simulcast_publisher(args, track, audio)
        return
    await connect()
    sampler = asyncio.ensure_future(sample())
    reply({"ready": True})
    async for cmd in commands():
        op = cmd.get("op")
        try:
            if op == "report":
                pc = state["pc"]
                reply(
                    {
                        "state": pc.connectionState if pc else "none",
                        "frames": track.count,
                        "connects": state["connects"],
                        **asked,
                        "bitrate": samples,
                    }
                )
            elif op == "reconnect":
                await connect()
                reply({"ok": True, "at_ms": now_ms()})
            elif op == "stop":
                break
        except Exception as exc:  # told to the lab, which raises it in the test
            reply({"error": repr(exc)})
    sampler.cancel()
    if state["pc"] is not None:
        await state["pc"].close()


async def run_simulcast_publisher(args: argparse.Namespace, track: Any, audio: Any) -> None:
    """The stamped picture as three simulcast layers (tests/simulcast_publisher.py),
    stopping its largest layer when the relay's estimate falls under what it sends, as a
    browser does. No sender reports for the video: no lip-sync figures."""
    from tests.simulcast_publisher import RATES, SimulcastPublisher

    publisher = SimulcastPublisher(
        track.width,
        track.height,
        track.fps,
        source=track,
        audio=audio,
        noise=False,
        follow_estimate=True,
    )
    status, body = await asyncio.to_thread(
        _post_sdp, args.url, await publisher.offer(), {"Authorization": f"Bearer {args.key}"}
    )
    if status != 201:
        raise RuntimeError(f"WHIP answered {status}: {body}")
    await publisher.start(_rewrite_candidates(body, args.via))
    samples: list[tuple[int, int, int]] = []

    async def sample() -> None:
        while True:
            await asyncio.sleep(0.5)
            target = sum(RATES[rid] for rid, on in publisher.sending.items() if on)
            samples.append((now_ms(), publisher.bytes_sent, target))

    sampler = asyncio.ensure_future(sample())
    reply({"ready": True})
    async for cmd in commands():
        op = cmd.get("op")
        if op == "report":
            reply(
                {
                    "state": publisher.pc.connectionState,
                    "frames": track.count,
                    "connects": 1,
                    "keyframes": 0,
                    "retransmits": 0,
                    "bitrate": samples,
                    "layers": [rid for rid, on in publisher.sending.items() if on],
                }
            )
        elif op == "stop":
            break
        else:
            reply({"error": f"{op!r}: not for a simulcast publisher"})
    sampler.cancel()
    await publisher.close()


async def run_viewer(args: argparse.Namespace) -> None:
    from aiortc import RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCSessionDescription
    from aiortc.mediastreams import MediaStreamError

    from media import aiortc_glue as glue
    from tests.lab_jitter import GivingUpJitterBuffer

    glue.set_host_addresses([args.bind])
    samples: list[dict[str, Any]] = []
    unreadable = [0]
    servers: list[Any] = []
    if args.ice_from:
        found = await asyncio.to_thread(_page_ice, args.ice_from)
        servers = [RTCIceServer(**entry) for entry in found]
    pc = RTCPeerConnection(RTCConfiguration(iceServers=servers or None))
    pc.addTransceiver("audio", direction="recvonly")
    video = pc.addTransceiver("video", direction="recvonly")
    # aiortc's video jitter buffer waits 512 packets (many seconds at 500 kbit/s) for a
    # packet lost for good; a browser gives up after a few repair round trips and asks
    # for a keyframe. tests/lab_jitter.py does that; the frames held until then still
    # count as late.
    setattr(  # noqa: B010
        video.receiver, "_RTCRtpReceiver__jitter_buffer", GivingUpJitterBuffer()
    )
    readers: list[asyncio.Future[None]] = []
    connected: dict[str, int | None] = {"at_ms": None}
    # Lip sync: the newest sender report per kind, (NTP seconds, RTP timestamp), and
    # the markers seen: (counter, sender's time of the frame, at_ms), (time of the burst).
    reports: dict[str, tuple[float, int]] = {}
    frame_marks: list[tuple[int, float, int]] = []
    burst_marks: list[float] = []
    origins: dict[str, Any] = {}
    for transceiver in pc.getTransceivers():
        _note_sender_reports(transceiver.receiver, transceiver.kind, reports)
        # aiortc hands decoded frames a pts counted from the first RTP timestamp.
        origins[transceiver.kind] = transceiver.receiver._RTCRtpReceiver__timestamp_mapper

    def sender_time(kind: str, pts: int, clock: int) -> float | None:
        report, origin = reports.get(kind), origins[kind]._origin
        if report is None or origin is None:
            return None
        rtp_ts = (pts + origin) % (1 << 32)
        ntp, base = report
        return ntp + ((rtp_ts - base + (1 << 31)) % (1 << 32) - (1 << 31)) / clock

    async def read_audio(track: Any) -> None:
        loud = False
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            channels = len(frame.layout.channels)
            samples = array("h", bytes(frame.planes[0]))[: frame.samples * channels]
            if max(samples, default=0) < LOUD:
                loud = False
                continue
            if loud or frame.pts is None:
                continue
            loud = True
            first = next(i for i, v in enumerate(samples) if v >= LOUD) // channels
            at = sender_time("audio", frame.pts + first, frame.sample_rate)
            if at is not None:
                burst_marks.append(at)

    async def read(track: Any) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            at = now_ms()
            counter, sent = read_stamp(frame)
            lag = delay_ms(sent, at)
            if lag > 60_000:  # not a stamp this source drew (a corrupt picture)
                unreadable[0] += 1
                continue
            samples.append(
                {
                    "counter": counter,
                    "delay_ms": lag,
                    "at_ms": at,
                    "width": frame.width,
                    "height": frame.height,
                }
            )
            if counter % MARKER_EVERY == 0 and frame.pts is not None:
                sent_at = sender_time("video", frame.pts, 90000)
                if sent_at is not None:
                    frame_marks.append((counter, sent_at, at))

    @pc.on("track")
    def on_track(track: Any) -> None:
        reader = read(track) if track.kind == "video" else read_audio(track)
        readers.append(asyncio.ensure_future(reader))

    @pc.on("connectionstatechange")
    def on_state() -> None:
        if pc.connectionState == "connected" and connected["at_ms"] is None:
            connected["at_ms"] = now_ms()

    await pc.setLocalDescription(await pc.createOffer())
    status, body = await asyncio.to_thread(_post_sdp, args.url, pc.localDescription.sdp, {})
    if status != 201:
        reply({"error": f"WHEP answered {status}: {body}"})
        return
    await pc.setRemoteDescription(
        RTCSessionDescription(_rewrite_candidates(body, args.via), "answer")
    )
    reply({"ready": True, "at_ms": now_ms()})
    async for cmd in commands():
        op = cmd.get("op")
        if op == "report":
            since = cmd.get("since_ms", 0)
            reply(
                {
                    "state": pc.connectionState,
                    "path": _path(pc),
                    "connected_ms": connected["at_ms"],
                    "unreadable": unreadable[0],
                    "samples": [s for s in samples if s["at_ms"] >= since],
                    "av": _pair_markers([m for m in frame_marks if m[2] >= since], burst_marks),
                    "now_ms": now_ms(),
                }
            )
        elif op == "stop":
            break
    for reader in readers:
        reader.cancel()
    await pc.close()


def _note_sender_reports(receiver: Any, kind: str, reports: dict[str, tuple[float, int]]) -> None:
    """Keep the newest sender report `receiver` gets (its RTCP handler, wrapped)."""
    from aiortc.rtp import RtcpSrPacket

    handle = receiver._handle_rtcp_packet

    async def noted(packet: Any) -> None:
        if isinstance(packet, RtcpSrPacket):
            info = packet.sender_info
            reports[kind] = (info.ntp_timestamp / (1 << 32), info.rtp_timestamp)
        await handle(packet)

    receiver._handle_rtcp_packet = noted


def _pair_markers(
    frames: list[tuple[int, float, int]], bursts: list[float]
) -> list[dict[str, Any]]:
    """Each marker frame with the burst nearest to it on the sender's clock (within half
    a marker period): the offset, audio after video positive."""
    pairs = []
    for counter, video_at, at_ms in frames:
        near = min(bursts, key=lambda b: abs(b - video_at), default=None)
        if near is not None and abs(near - video_at) < 0.5:
            pairs.append(
                {
                    "counter": counter,
                    "at_ms": at_ms,
                    "offset_ms": round((near - video_at) * 1000, 1),
                }
            )
    return pairs


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.netlab")
    sub = parser.add_subparsers(dest="role", required=True)
    fwd = sub.add_parser("forward", help="hold UDP datagrams for a delay and jitter")
    fwd.add_argument("--listen", required=True)
    fwd.add_argument("--ports", required=True)
    fwd.add_argument("--to", required=True)
    fwd.add_argument("--bind", required=True)
    fwd.add_argument("--delay", type=float, default=0.0, help="ms, one way")
    fwd.add_argument("--jitter", type=float, default=0.0, help="ms, +/-")
    pub = sub.add_parser("publisher", help="publish a stamped picture over WHIP")
    pub.add_argument("url")
    pub.add_argument("key")
    pub.add_argument("--bind", required=True)
    pub.add_argument("--via")
    pub.add_argument("--size", default="640x360")
    pub.add_argument("--simulcast", action="store_true", help="three layers, as a browser")
    view = sub.add_parser("viewer", help="watch over WHEP and read every frame's stamp")
    view.add_argument("url")
    view.add_argument("--bind", required=True)
    view.add_argument("--via")
    view.add_argument("--ice-from", help="a show page whose ICE servers to use")
    args = parser.parse_args()
    run = {"forward": run_forwarder, "publisher": run_publisher, "viewer": run_viewer}
    asyncio.run(run[args.role](args))


if __name__ == "__main__":
    main()
