"""Vitrine's settings: one typed table, validated once at start.

Every key has a section, a name, a default and a help line. Values come from the
defaults, then a TOML file, then `VITRINE_<SECTION>_<KEY>` environment variables, then
command-line overrides; the last one wins. A bad value stops the start with one line
naming the key, the value and what was expected.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ENV_PREFIX = "VITRINE_"


class ConfigError(ValueError):
    """A setting has a value Vitrine cannot use; the message names the key."""


def _setting(
    default: Any,
    help: str,
    check: Callable[[Any], str | None] | None = None,
    key: str | None = None,
) -> Any:
    """One setting; `key` names it where its attribute cannot (`email.from`: `from_`)."""
    return field(default=default, metadata={"help": help, "check": check, "key": key})


def _port(value: int) -> str | None:
    return None if 1 <= value <= 65535 else "a port number from 1 to 65535"


def _positive(value: float) -> str | None:
    return None if value > 0 else "a number greater than 0"


def _url(value: str) -> str | None:
    if value == "":
        return None
    parts = urlsplit(value)
    if parts.scheme in ("http", "https") and parts.netloc and parts.path in ("", "/"):
        return None
    return "an http:// or https:// address with no path, like https://shop.example.com"


DEFAULT_TRUSTED_PROXIES = "127.0.0.0/8, ::1"


def _networks(value: str) -> str | None:
    import ipaddress

    for part in filter(None, (p.strip() for p in value.split(","))):
        try:
            ipaddress.ip_network(part, strict=False)
        except ValueError:
            return "a comma-separated list of IP addresses or networks, like 10.0.0.0/8, ::1"
    return None


@dataclass(frozen=True)
class ServerSettings:
    host: str = _setting(
        "127.0.0.1", "Address the web server listens on (0.0.0.0 in the container)."
    )
    port: int = _setting(8080, "TCP port of the web server.", _port)
    public_url: str = _setting(
        "",
        "Address viewers use to reach this server, e.g. https://live.myshop.com. "
        "Empty means http://HOST:PORT. Cookies are marked Secure when it starts with https.",
        _url,
    )
    proxy_headers: bool = _setting(
        False,
        "Read X-Forwarded-For from a reverse proxy in front of Vitrine (the client address "
        "used by rate limits and per-address caps), only on connections from "
        "server.trusted_proxies. Behind a proxy, turn it on: otherwise every client has the "
        "proxy's address and shares its limits.",
    )
    trusted_proxies: str = _setting(
        DEFAULT_TRUSTED_PROXIES,
        "Reverse proxies whose X-Forwarded-For is believed, comma-separated addresses or "
        "networks (10.0.0.0/8). The client is the right-most forwarded hop that is not one "
        "of them: hops further left are written by the client and could be anything.",
        _networks,
    )
    backlog: int = _setting(1024, "Pending TCP connections the server queues.", _positive)
    websocket_compression: bool = _setting(
        False,
        "Accept permessage-deflate on websockets. Off: it more than doubles the CPU cost of "
        "each live-room frame.",
    )
    websocket_direct_writes: bool = _setting(
        True,
        "Write each live-room frame straight to every viewer's connection, built once for "
        "all. Off: every frame goes through the server's websocket stack, at about twice "
        "the CPU; for comparison only (scripts/loadtest --paths).",
    )


@dataclass(frozen=True)
class StorageSettings:
    data_dir: str = _setting(
        "./data", "Folder holding the database, uploads and recordings; back it up whole."
    )


def _cap(value: int) -> str | None:
    return None if value >= 0 else "0 (no cap) or more"


def _workers(value: int) -> str | None:
    return None if value >= -1 else "-1 (one per core), 0 (none) or more"


@dataclass(frozen=True)
class LimitsSettings:
    max_image_bytes: int = _setting(
        5_000_000, "Largest image upload (product images, covers, logo), in bytes.", _positive
    )
    max_image_pixels: int = _setting(
        40_000_000,
        "Largest image upload in pixels (width times height, read from the file's header): "
        "a small file can hold a picture too big for a phone to open.",
        _positive,
    )
    max_csv_bytes: int = _setting(2_000_000, "Largest product CSV import, in bytes.", _positive)
    max_form_bytes: int = _setting(
        12_000_000, "Largest request body of any admin form, in bytes.", _positive
    )
    login_attempts: int = _setting(
        5, "Failed sign-ins allowed per address and account in one window.", _positive
    )
    login_window_seconds: int = _setting(
        300, "Length of the sign-in rate-limit window, in seconds.", _positive
    )
    whep_sessions_per_address: int = _setting(
        40,
        "Most video sessions (WHEP) of one show from one client address; more get 429. A shop's "
        "Wi-Fi or a mobile carrier's NAT can put dozens of real viewers behind one address, "
        "so keep it well above 1; behind a reverse proxy, set server.proxy_headers or every "
        "viewer shares the proxy's address. 0: no cap.",
        _cap,
    )
    room_sockets_per_address: int = _setting(
        50,
        "Most live-room connections (chat) of one show from one client address; more are "
        "refused with 429. A little above the video cap: a viewer may have two tabs open. "
        "0: no cap.",
        _cap,
    )


def _addresses(value: str) -> str | None:
    import ipaddress

    for part in filter(None, (p.strip() for p in value.split(","))):
        try:
            ipaddress.ip_address(part)
        except ValueError:
            return "a comma-separated list of IP addresses, like 127.0.0.1"
    return None


def _ice_urls(value: str) -> str | None:
    for part in filter(None, (p.strip() for p in value.split(","))):
        if not part.startswith(("stun:", "turn:", "turns:")):
            return "a comma-separated list of stun:, turn: or turns: URLs"
    return None


def _ip_or_empty(value: str) -> str | None:
    return _addresses(value) if "," not in value else "one IP address"


@dataclass(frozen=True)
class MediaSettings:
    ice_servers: str = _setting(
        "",
        "STUN/TURN servers for WebRTC, comma-separated, e.g. stun:stun.example.com:3478. "
        "Given to the server's peer connections and to the browser pages.",
        _ice_urls,
    )
    turn_username: str = _setting("", "User name for the turn: servers in media.ice_servers.")
    turn_password: str = _setting("", "Password for the turn: servers in media.ice_servers.")
    turn_secret: str = _setting(
        "",
        "Shared secret of the turn:/turns: servers in media.ice_servers (coturn's "
        "use-auth-secret, the TURN REST convention): each page that publishes or plays gets "
        "its own user name and password, valid media.turn_ttl_seconds, instead of "
        "media.turn_username and media.turn_password. The server itself then uses no TURN.",
    )
    turn_ttl_seconds: int = _setting(
        6 * 3600,
        "How long the TURN credentials given with a page stay valid, in seconds: a viewer's "
        "relay lasts at most this long, so keep it above a show's length.",
        _positive,
    )
    host_addresses: str = _setting(
        "",
        "Local addresses to gather ICE candidates on, comma-separated. Empty: every "
        "interface except loopback. 127.0.0.1 for tests and same-machine use.",
        _addresses,
    )
    public_ip: str = _setting(
        "",
        "Public address to announce beside the local ones, for a server behind 1:1 NAT "
        "(a cloud VM or a container with published UDP ports).",
        _ip_or_empty,
    )
    grace_seconds: int = _setting(
        60, "How long a live show waits for its publisher to come back after a drop.", _positive
    )
    max_viewers: int = _setting(
        0,
        "Most concurrent video viewers of one show; past it viewers get the HLS rendition. "
        "A viewer counts once its connection is up; sessions still connecting (at most "
        "twice this many) do not take a place. 0: computed at start from the relay's "
        "measured CPU per forwarded packet, a 1.2 Mbit/s show and the cores the relay has "
        "(docs/media.md gives the formula).",
        _cap,
    )
    workers: int = _setting(
        -1,
        "Relay worker processes owning the viewers' video connections, each on its own "
        "core; the publisher's packets reach each worker once. -1: one per core the server "
        "may use (at most 8; a container's CPU limit counts), none on a one-core machine. "
        "0: the viewers are served by the main process.",
        _workers,
    )
    ice_connect_seconds: int = _setting(
        10,
        "How long a new video session (WHEP) may take to connect; one still not connected "
        "after this is closed and its place freed.",
        _positive,
    )
    record: bool = _setting(
        True,
        "Record every show as it goes (fragmented MP4 under <data_dir>/recordings, about "
        "11 MB a minute at 1.5 Mbit/s), for its replay.",
    )
    hls: bool = _setting(
        True,
        "Write a low-latency HLS rendition of every live H264 show, in memory (/hls/<show>/"
        "index.m3u8), for viewers WebRTC cannot reach or past media.max_viewers.",
    )
    hls_only: bool = _setting(
        False,
        "Viewer pages play every show over HLS, never WebRTC (a CDN carries all viewers; "
        "a few seconds more delay).",
    )
    hls_base_url: str = _setting(
        "",
        "Address of a CDN or caching nginx in front of /hls/ (e.g. https://cdn.example.com); "
        "viewer pages fetch HLS from it. Empty: from this server.",
        _url,
    )
    hls_answers_per_second: int = _setting(
        1000,
        "Most HLS answers (playlists, parts, segments) this process gives a second, all "
        "shows and clients together; past it requests get 503 with Retry-After: 1 and the "
        "players retry, so HLS load never starves the show's own publisher. One core "
        "answers about 900-1,100 a second (docs/perf.md). 0: no budget.",
        _cap,
    )
    hls_held_requests: int = _setting(
        1000,
        "Most blocking HLS requests (a playlist or part asked for before it exists) held at "
        "once; past it such requests get 503 with Retry-After: 1. 0: no limit.",
        _cap,
    )


@dataclass(frozen=True)
class KpiSettings:
    heartbeat_seconds: int = _setting(
        15,
        "How often a viewer page reports that the show is still on screen (seconds). "
        "Watch time is counted in steps of this length.",
        _positive,
    )
    events_per_minute: int = _setting(
        120, "Most KPI events one viewer may send per minute; more get 429.", _positive
    )


def _not_negative(value: float) -> str | None:
    return None if value >= 0 else "0 or more"


@dataclass(frozen=True)
class ReplaySettings:
    keep_days: int = _setting(
        0,
        "Delete replays older than this many days (0 keeps them for ever).",
        _not_negative,
    )
    keep_gb: float = _setting(
        0.0,
        "Most disk the replays may use, in GB; past it the oldest are deleted, unpublished "
        "ones first (0 sets no limit).",
        _not_negative,
    )
    min_free_gb: float = _setting(
        2.0,
        "Free disk space a show needs to go live, in GB; with less the studio refuses, "
        "since its recording would fill the disk (0 turns the check off).",
        _not_negative,
    )


def _command(value: str) -> str | None:
    import shlex

    try:
        shlex.split(value)
    except ValueError:
        return "a command line with balanced quotes"
    return None


@dataclass(frozen=True)
class MetricsSettings:
    token: str = _setting(
        "",
        "Bearer token Prometheus sends to read /metrics. Empty: /metrics is off (404). "
        "Use a long random value, e.g. from `openssl rand -hex 32`.",
    )
    allow: str = _setting(
        "",
        "Addresses or networks that may read /metrics without the token, comma-separated "
        "(e.g. 127.0.0.1, 10.0.0.0/8). Only used once metrics.token is set.",
        _networks,
    )


@dataclass(frozen=True)
class BackupSettings:
    every_hours: float = _setting(
        0.0,
        "Make a backup (database, uploads, replays) every this many hours while serving, "
        "in a worker thread. 0: no scheduled backups (`vitrine backup` still works).",
        _not_negative,
    )
    keep: int = _setting(
        7,
        "How many backups to keep in backup.folder; older ones are deleted (0 keeps all).",
        _cap,
    )
    folder: str = _setting(
        "", "Where scheduled backups go, one folder each. Empty: <data_dir>/backups."
    )
    after_command: str = _setting(
        "",
        "A command run after each scheduled backup with the backup's folder as its last "
        "argument (an off-site copy: rclone, rsync, restic...). Logged; stopped after an hour.",
        _command,
    )


@dataclass(frozen=True)
class EngagementSettings:
    contact_days: float = _setting(
        30.0,
        "Days a giveaway winner's email is kept for the retailer; then it is deleted "
        "(docs/privacy.md).",
        _positive,
    )
    guest_link_hours: float = _setting(
        24.0,
        "Hours a guest link (a guest joining the live from their own phone) stays valid "
        "before it is used; it works once.",
        _positive,
    )


def _origins(value: str) -> str | None:
    for part in filter(None, (p.strip() for p in value.split(","))):
        if _url(part) is not None:
            return "a comma-separated list of origins, like https://shop.example.com"
    return None


@dataclass(frozen=True)
class EmbedSettings:
    allowed_origins: str = _setting(
        "",
        "Shop sites that may show the player (embed.js), comma-separated origins like "
        "https://shop.example.com; the origin of the shop's cart link is always allowed.",
        _origins,
    )
    next_within_hours: float = _setting(
        168.0,
        "The embed's button announces the next show (countdown, add to calendar) when it "
        "starts within this many hours; 0: the button shows only while a show is live.",
        _not_negative,
    )


def _email_address(value: str) -> str | None:
    if value == "" or ("@" in value and " " not in value.strip() and "<" not in value):
        return None
    return "an email address, like shows@myshop.com"


def _webhook_url(value: str) -> str | None:
    parts = urlsplit(value)
    if value == "" or (parts.scheme in ("http", "https") and parts.netloc):
        return None
    return "an http:// or https:// address, like https://hooks.myshop.com/vitrine"


@dataclass(frozen=True)
class EmailSettings:
    smtp_host: str = _setting(
        "",
        "Mail server (SMTP) the reminder emails go through. Empty: no emails, and show pages "
        'offer no "Notify me".',
    )
    smtp_port: int = _setting(
        587, "Port of the mail server: 587 (STARTTLS), 465 (TLS from the start) or 25.", _port
    )
    username: str = _setting("", "User name for the mail server; empty: no login.")
    password: str = _setting("", "Password for the mail server.")
    from_: str = _setting(
        "",
        "Sender address of the reminder emails, e.g. shows@myshop.com (the shop's name is "
        "shown beside it). Needed with email.smtp_host.",
        _email_address,
        key="from",
    )
    starttls: bool = _setting(
        True,
        "Encrypt the connection with STARTTLS before logging in (port 465 always uses TLS). "
        "Turn it off only for a mail server on this machine.",
    )
    per_second: float = _setting(
        5.0, "Most reminder emails sent per second (mail providers throttle bursts).", _positive
    )
    batch_size: int = _setting(
        50,
        "Emails sent over one connection to the mail server before it is reopened.",
        _positive,
    )
    timeout_seconds: int = _setting(
        20,
        "How long to wait for the mail server at each step before trying again later.",
        _positive,
    )
    retry_seconds: float = _setting(
        60.0,
        "First wait before retrying an email (or a webhook delivery) refused for now; each "
        "next wait is four times longer, at most 6 hours.",
        _positive,
    )
    hour_before: bool = _setting(
        True, "Also email those who asked for a reminder an hour before each show starts."
    )
    keep_days: int = _setting(
        7,
        "Days after a show ends before the addresses signed up for its reminders are "
        "deleted (0: at once).",
        _not_negative,
    )


@dataclass(frozen=True)
class NotifySettings:
    webhook_url: str = _setting(
        "",
        "Address that receives a signed JSON POST when a show is scheduled, goes live and "
        "ends (docs/reminders.md), for the shop's own email or SMS tools. Empty: none.",
        _webhook_url,
    )
    webhook_secret: str = _setting(
        "",
        "Key of the webhook's HMAC-SHA256 signature (X-Vitrine-Signature). Empty: the "
        "conversion secret shown in Settings -> Sales reporting.",
    )


@dataclass(frozen=True)
class Config:
    server: ServerSettings = field(default_factory=ServerSettings)
    storage: StorageSettings = field(default_factory=StorageSettings)
    limits: LimitsSettings = field(default_factory=LimitsSettings)
    media: MediaSettings = field(default_factory=MediaSettings)
    kpis: KpiSettings = field(default_factory=KpiSettings)
    replays: ReplaySettings = field(default_factory=ReplaySettings)
    email: EmailSettings = field(default_factory=EmailSettings)
    notify: NotifySettings = field(default_factory=NotifySettings)
    metrics: MetricsSettings = field(default_factory=MetricsSettings)
    backup: BackupSettings = field(default_factory=BackupSettings)
    engagement: EngagementSettings = field(default_factory=EngagementSettings)
    embed: EmbedSettings = field(default_factory=EmbedSettings)
    source: str = "defaults"

    @property
    def data_dir(self) -> Path:
        return Path(self.storage.data_dir).expanduser().resolve()

    @property
    def base_url(self) -> str:
        if self.server.public_url:
            return self.server.public_url.rstrip("/")
        host = self.server.host
        if host in ("0.0.0.0", "::", ""):  # noqa: S104 - a bind-all address is not a link
            host = "127.0.0.1"
        return f"http://{host}:{self.server.port}"

    @property
    def https(self) -> bool:
        return self.base_url.startswith("https://")


SECTIONS: dict[str, type] = {
    "server": ServerSettings,
    "storage": StorageSettings,
    "limits": LimitsSettings,
    "media": MediaSettings,
    "kpis": KpiSettings,
    "replays": ReplaySettings,
    "email": EmailSettings,
    "notify": NotifySettings,
    "metrics": MetricsSettings,
    "backup": BackupSettings,
    "engagement": EngagementSettings,
    "embed": EmbedSettings,
}


@dataclass(frozen=True)
class SettingInfo:
    section: str
    key: str
    type: type
    default: Any
    help: str
    attribute: str = ""  # the dataclass field, when it is not `key`

    @property
    def name(self) -> str:
        return f"{self.section}.{self.key}"

    @property
    def env(self) -> str:
        return f"{ENV_PREFIX}{self.section.upper()}_{self.key.upper()}"


def settings_table() -> list[SettingInfo]:
    """Every setting Vitrine knows, in documentation order."""
    rows = []
    for section, cls in SECTIONS.items():
        hints = {f.name: f for f in dataclasses.fields(cls)}
        for name, f in hints.items():
            key = f.metadata.get("key") or name
            rows.append(
                SettingInfo(
                    section, key, _field_type(cls, name), f.default, f.metadata["help"], name
                )
            )
    return rows


def _field_type(cls: type, name: str) -> type:
    annotation = cls.__annotations__[name]
    return {"str": str, "int": int, "bool": bool, "float": float}[annotation]


def _coerce(info: SettingInfo, raw: Any, from_text: bool) -> Any:
    want = info.type
    expected = {str: "text", int: "an integer", bool: "true or false", float: "a number"}[want]
    value: Any
    if from_text and isinstance(raw, str) and want is not str:
        text = raw.strip().lower()
        try:
            if want is bool:
                if text not in ("true", "false", "1", "0", "yes", "no", "on", "off"):
                    raise ValueError(text)
                value = text in ("true", "1", "yes", "on")
            else:
                value = want(text)
        except ValueError:
            raise ConfigError(f"{info.name}: expected {expected}, got {raw!r}") from None
    else:
        value = raw
        ok = isinstance(value, want) and not (want is not bool and isinstance(value, bool))
        if want is float and isinstance(value, int) and not isinstance(value, bool):
            value, ok = float(value), True
        if not ok:
            raise ConfigError(f"{info.name}: expected {expected}, got {raw!r}")
    return value


def load_config(
    path: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Config:
    """Build the configuration: defaults < TOML file < environment < overrides."""
    environ = os.environ if environ is None else environ
    file_values: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        p = Path(path)
        try:
            with p.open("rb") as fh:
                file_values = tomllib.load(fh)
        except FileNotFoundError:
            raise ConfigError(f"--config: no such file {str(p)!r}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{p}: not valid TOML ({exc})") from None
        source = str(p)
        for section, body in file_values.items():
            if section not in SECTIONS:
                raise ConfigError(f"{section}: unknown section (known: {', '.join(SECTIONS)})")
            if not isinstance(body, dict):
                raise ConfigError(f"{section}: expected a [{section}] table")
            known = {f.metadata.get("key") or f.name for f in dataclasses.fields(SECTIONS[section])}
            for key in body:
                if key not in known:
                    raise ConfigError(
                        f"{section}.{key}: unknown setting (known: {', '.join(sorted(known))})"
                    )

    values: dict[str, dict[str, Any]] = {s: {} for s in SECTIONS}
    for info in settings_table():
        value: Any = info.default
        if info.key in file_values.get(info.section, {}):
            value = _coerce(info, file_values[info.section][info.key], from_text=False)
        if info.env in environ:
            value = _coerce(info, environ[info.env], from_text=True)
        if overrides and overrides.get(info.name) is not None:
            value = _coerce(info, overrides[info.name], from_text=True)
        check = _check_of(info)
        if check is not None and (problem := check(value)) is not None:
            raise ConfigError(f"{info.name}: expected {problem}, got {value!r}")
        values[info.section][info.attribute or info.key] = value
    return Config(
        server=ServerSettings(**values["server"]),
        storage=StorageSettings(**values["storage"]),
        limits=LimitsSettings(**values["limits"]),
        media=MediaSettings(**values["media"]),
        kpis=KpiSettings(**values["kpis"]),
        replays=ReplaySettings(**values["replays"]),
        email=EmailSettings(**values["email"]),
        notify=NotifySettings(**values["notify"]),
        metrics=MetricsSettings(**values["metrics"]),
        backup=BackupSettings(**values["backup"]),
        engagement=EngagementSettings(**values["engagement"]),
        embed=EmbedSettings(**values["embed"]),
        source=source,
    )


def _check_of(info: SettingInfo) -> Callable[[Any], str | None] | None:
    for f in dataclasses.fields(SECTIONS[info.section]):
        if f.name == (info.attribute or info.key):
            check: Callable[[Any], str | None] | None = f.metadata["check"]
            return check
    return None
