"""The `vitrine` command (also `python -m appliance`)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import json
import os
import re
import signal
import sqlite3
import sys
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from appliance.accounts.security import password_problem
from appliance.config import Config, ConfigError, load_config
from appliance.storage import db as dbmod
from appliance.storage.datadir import unwritable

Handler = Callable[[argparse.Namespace, Config], int]


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="PATH", help="TOML configuration file")
    parser.add_argument(
        "--data-dir", metavar="DIR", help="data directory (overrides storage.data_dir)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vitrine", description="Vitrine: self-hosted live shopping."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("serve", help="serve the shop (web site, admin, live shows)")
    _common(p)
    p.add_argument("--host", help="listen address (overrides server.host)")
    p.add_argument("--port", help="listen port (overrides server.port)")
    p.add_argument("--demo", action="store_true", help="create the demo shop first if it never was")
    p.add_argument(
        "--lan",
        action="store_true",
        help="HTTPS on this machine's LAN address (self-signed certificate), to try the studio "
        "from a phone on the same Wi-Fi; prints the address and a QR code",
    )
    p.set_defaults(handler=cmd_serve)

    p = sub.add_parser("migrate", help="apply pending database migrations")
    _common(p)
    p.add_argument(
        "--dry-run", action="store_true", help="list the migrations that would run; change nothing"
    )
    p.set_defaults(handler=cmd_migrate)

    p = sub.add_parser("create-admin", help="create an admin account")
    _common(p)
    p.add_argument("--email", required=True)
    p.add_argument("--name", default="Admin")
    p.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    p.set_defaults(handler=cmd_create_admin)

    p = sub.add_parser(
        "backup", help="copy the database (online), uploads and replays to a new folder"
    )
    _common(p)
    p.add_argument(
        "--output",
        metavar="DIR",
        help="target folder (default: backup.folder, else DATA/backups, then /STAMP)",
    )
    p.set_defaults(handler=cmd_backup)

    p = sub.add_parser(
        "restore", help="put a backup in place of the data directory (the server stopped)"
    )
    _common(p)
    p.add_argument("folder", metavar="FOLDER", help="a folder made by `vitrine backup`")
    p.set_defaults(handler=cmd_restore)

    p = sub.add_parser("seed-demo", help="create the demo shop (only once per database)")
    _common(p)
    p.set_defaults(handler=cmd_seed_demo)

    shows = sub.add_parser("shows", help="list or create shows")
    shows_sub = shows.add_subparsers(dest="shows_command", required=True, metavar="ACTION")
    p = shows_sub.add_parser("list", help="list shows as JSON lines")
    _common(p)
    p.set_defaults(handler=cmd_shows_list)
    p = shows_sub.add_parser("create", help="schedule a show and print it as JSON")
    _common(p)
    p.add_argument("--title", required=True)
    p.add_argument(
        "--starts-at",
        required=True,
        help="ISO 8601 date and time, e.g. 2026-12-01T18:30 (shop time zone unless an "
        "offset such as +01:00 or Z is given)",
    )
    p.add_argument("--duration", type=int, default=60, help="minutes (default 60)")
    p.add_argument("--description", default="")
    p.set_defaults(handler=cmd_shows_create)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Every command may write the data directory (migrations at least), which holds the
    # session key, password hashes and stream keys: what it creates is this user's alone.
    os.umask(0o077)
    overrides = {
        "storage.data_dir": getattr(args, "data_dir", None),
        "server.host": getattr(args, "host", None),
        "server.port": getattr(args, "port", None),
    }
    try:
        config = load_config(args.config, overrides=overrides)
        if getattr(args, "lan", False):
            from appliance import lan

            config = lan.lan_config(args.config, overrides)
    except ConfigError as exc:
        print(f"vitrine: configuration error: {exc}", file=sys.stderr)
        return 2
    if (problem := unwritable(config.data_dir)) is not None:
        print(f"vitrine: {problem}", file=sys.stderr)
        return 2
    handler: Handler = args.handler
    try:
        return handler(args, config)
    except dbmod.SchemaTooNew as exc:
        print(f"vitrine: {exc}", file=sys.stderr)
        return 3


def _db_path(config: Config) -> Path:
    return config.data_dir / "vitrine.sqlite3"


def _with_db(config: Config, work: Callable[[dbmod.Database], Awaitable[Any]]) -> Any:
    dbmod.migrate_sync(_db_path(config), config.data_dir / "backups")

    async def run() -> Any:
        database = dbmod.Database(_db_path(config))
        await database.open()
        try:
            return await work(database)
        finally:
            await database.close()

    return asyncio.run(run())


def cmd_migrate(args: argparse.Namespace, config: Config) -> int:
    if args.dry_run:
        return _migrate_dry_run(config)
    applied = dbmod.migrate_sync(_db_path(config), config.data_dir / "backups")
    version = dbmod.latest_version()
    print(f"applied {len(applied)} migration(s); schema version {version}")
    return 0


def cmd_create_admin(args: argparse.Namespace, config: Config) -> int:
    from appliance.accounts import users

    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        asked = _ask_password("Password for the new admin: ")
        if asked is None:
            print(
                "vitrine: no terminal to ask the password on: pipe it in with --password-stdin",
                file=sys.stderr,
            )
            return 2
        password = asked
    if (problem := password_problem(password)) is not None:
        print(
            f"vitrine: password refused ({problem.replace('_', ' ')}; at least 10 characters)",
            file=sys.stderr,
        )
        return 2
    if "@" not in args.email:
        print("vitrine: --email must be an email address", file=sys.stderr)
        return 2

    async def work(database: dbmod.Database) -> int:
        try:
            user = await users.create_user(database, args.email, args.name, "admin", password)
        except users.DuplicateEmail:
            print(f"vitrine: an account with email {args.email} already exists", file=sys.stderr)
            return 1
        print(f"created admin {user.email} (id {user.id}); sign in at {config.base_url}/login")
        return 0

    result: int = _with_db(config, work)
    return result


def _ask_password(prompt: str) -> str | None:
    """The password typed at the terminal, or None when there is no terminal to ask on
    (a service, a pipe): getpass would read standard input or fail with EOFError."""
    try:
        with open("/dev/tty", "rb"):
            pass
    except OSError:
        if not sys.stdin.isatty():
            return None
    try:
        return getpass.getpass(prompt)
    except EOFError:
        return None


def _migrate_dry_run(config: Config) -> int:
    path = _db_path(config)
    version = 0
    if path.exists():
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            version = dbmod.current_version_sync(conn)
        finally:
            conn.close()
    latest = dbmod.latest_version()
    if version > latest:
        raise dbmod.SchemaTooNew(
            f"{path} has schema version {version} but this Vitrine knows only up to {latest}"
        )
    pending = [name for number, name, _ in dbmod.migration_files() if number > version]
    if not pending:
        print(f"schema version {version}: nothing to migrate")
        return 0
    print(f"schema version {version}; {len(pending)} migration(s) would run:")
    for name in pending:
        print(f"  {name}")
    if version > 0:
        print("(the database is backed up first, into DATA/backups)")
    return 0


def cmd_backup(args: argparse.Namespace, config: Config) -> int:
    from appliance.backups.copy import (
        BackupError,
        default_folder,
        make_backup,
        record_last,
        stamped,
    )

    if args.output:
        target = Path(args.output)
    else:
        parent = Path(config.backup.folder).expanduser() if config.backup.folder else None
        target = stamped(parent or default_folder(config.data_dir))
    try:
        backup = make_backup(config.data_dir, target)
    except BackupError as exc:
        print(f"vitrine: {exc}", file=sys.stderr)
        return 1
    record_last(config.data_dir, backup)
    print(
        f"backed up the database (schema version {backup.schema_version}), uploads and "
        f"replays of {config.data_dir} to {backup.folder} ({backup.bytes / 1e6:.1f} MB)"
    )
    return 0


def cmd_restore(args: argparse.Namespace, config: Config) -> int:
    from appliance.backups.restore import RestoreError, restore

    try:
        done = restore(Path(args.folder), config.data_dir)
    except RestoreError as exc:
        print(f"vitrine: {exc}", file=sys.stderr)
        return 1
    print(
        f"restored {args.folder} into {config.data_dir} (schema version "
        f"{done.schema_version}; migrated at the next start if older than this Vitrine's)"
    )
    if done.aside is not None:
        print(f"the data it replaced is kept in {done.aside}")
    return 0


def cmd_seed_demo(args: argparse.Namespace, config: Config) -> int:
    from appliance.catalog.demo import seed_demo
    from appliance.storage.uploads import UploadStore

    async def work(database: dbmod.Database) -> bool:
        store = UploadStore(config.data_dir / "uploads", config.limits.max_image_bytes)
        return await seed_demo(database, store)

    created = _with_db(config, work)
    print("created the demo shop" if created else "the demo shop was created before; left as is")
    return 0


SERVING_FILE = "serving-url"  # in the data folder: where `vitrine serve` is answering now


def _site_url(config: Config) -> str:
    """The address for links the CLI prints: server.public_url, else the address the
    server of this data folder is serving on (it may have been started with --port),
    else the configured host and port."""
    if not config.server.public_url:
        with contextlib.suppress(OSError, UnicodeDecodeError):
            served = (config.data_dir / SERVING_FILE).read_text().strip()
            if re.fullmatch(r"https?://[A-Za-z0-9.:\[\]_-]+", served):
                return served
    return config.base_url


def _show_json(show: Any, config: Config) -> dict[str, Any]:
    base = _site_url(config)
    return {
        "id": show.id,
        "title": show.title,
        "status": show.status,
        "starts_at": datetime.fromtimestamp(show.starts_at, ZoneInfo("UTC")).isoformat(),
        "page_url": f"{base}/shows/{show.id}",
        "whip_url": f"{base}/whip/{show.id}",
        "stream_key": show.stream_key,
    }


def cmd_shows_list(args: argparse.Namespace, config: Config) -> int:
    from appliance.catalog import shows

    async def work(database: dbmod.Database) -> list[Any]:
        return await shows.list_shows(database)

    for show in _with_db(config, work):
        print(json.dumps(_show_json(show, config)))
    return 0


def cmd_shows_create(args: argparse.Namespace, config: Config) -> int:
    from appliance.catalog import shows
    from appliance.catalog.shop import get_shop
    from appliance.i18n.forms import clean_text

    title = clean_text(args.title)
    if not title or len(title) > 120:
        print("vitrine: --title must be 1 to 120 characters", file=sys.stderr)
        return 2
    if not 5 <= args.duration <= 24 * 60:
        print("vitrine: --duration must be 5 to 1440 minutes", file=sys.stderr)
        return 2
    try:
        moment = datetime.fromisoformat(args.starts_at.replace("Z", "+00:00"))
    except ValueError:
        print(
            f"vitrine: --starts-at: not an ISO 8601 date and time: {args.starts_at!r}",
            file=sys.stderr,
        )
        return 2

    async def work(database: dbmod.Database) -> Any:
        nonlocal moment
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=ZoneInfo((await get_shop(database)).timezone))
        data = shows.ShowData(
            title=title,
            description=clean_text(args.description, multiline=True)[:4000],
            starts_at=int(moment.timestamp()),
            duration_minutes=args.duration,
            host_id=None,
        )
        show_id = await shows.create_show(database, data)
        return await shows.get_show(database, show_id)

    print(json.dumps(_show_json(_with_db(config, work), config), indent=2))
    return 0


def _quiet_cancellations(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    if not isinstance(context.get("exception"), asyncio.CancelledError):
        loop.default_exception_handler(context)


def cmd_serve(args: argparse.Namespace, config: Config) -> int:
    from hypercorn.asyncio import serve

    from appliance.app import create_app
    from appliance.backups.running import ServerLock
    from appliance.logs import setup_logging
    from appliance.room.collector import FullCollections
    from appliance.serving import hypercorn_config

    setup_logging()
    # Held while serving, so that `vitrine restore` never replaces the data under us.
    lock = ServerLock(dbmod.private_dir(config.data_dir))
    if not lock.acquire():
        print(
            f"vitrine: warning: another process holds {lock.path}: is a server already "
            "serving this data directory?",
            file=sys.stderr,
        )
    if args.demo:
        cmd_seed_demo(args, config)
    app = create_app(config)
    hc = hypercorn_config(config)
    if args.lan:
        from appliance import lan

        cert, key = lan.ensure_certificate(config.data_dir, config.server.host)
        hc.certfile, hc.keyfile = str(cert), str(key)
    services = app.extensions["vitrine"]

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)

        @app.before_serving
        async def announce() -> None:
            from appliance.accounts.users import admin_exists

            print(f"Vitrine is serving {config.base_url}  (data: {config.data_dir})", flush=True)
            with contextlib.suppress(OSError):
                (config.data_dir / SERVING_FILE).write_text(config.base_url + "\n")
            if not await admin_exists(services.db):
                print(
                    "No admin yet. Create yours at "
                    f"{config.base_url}/setup?token={services.setup_token}\n"
                    "  (or run: vitrine create-admin --email you@example.com)",
                    flush=True,
                )
            if args.lan:
                from appliance import lan

                lan.print_banner(f"{config.base_url}/admin/shows")

        # Full garbage collections over thousands of connections pause the live room for
        # up to a second or more: the room's tick decides when they happen.
        collector = FullCollections()
        collector.take_over()
        app.extensions["vitrine.rooms"].hub.collector = collector

        async def shutdown_trigger() -> None:
            # Hypercorn stops listening when this returns, then waits (at most its
            # graceful_timeout) for open connections: room sockets and media sessions are
            # ended first, so that wait is short and the process exits within seconds.
            await stop.wait()
            # The connection tasks of closed websockets live on while Hypercorn's ping
            # task sleeps; its graceful timeout then cancels them, and Python 3.11's
            # stream callback logs each cancellation as an error. Stopping, it is none.
            loop.set_exception_handler(_quiet_cancellations)
            await app.extensions["vitrine.begin_shutdown"]()

        await serve(app, hc, shutdown_trigger=shutdown_trigger)

    try:
        asyncio.run(run())
    finally:
        with contextlib.suppress(OSError):
            (config.data_dir / SERVING_FILE).unlink(missing_ok=True)  # nobody serves it now
        lock.release()
    return 0
