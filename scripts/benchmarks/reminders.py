"""Reminder emails: how many a second reach a local SMTP server when a show goes live,
and how long going live waits for them (it should not wait at all).

Builds a shop in a temporary data directory with one show and N confirmed sign-ups,
starts a real SMTP server (aiosmtpd, in a process of its own) on a free port, runs
`Reminders` as the app does,
tells it the show went live, and times the go-live emails from the moment they are
queued until the server has them all. `email.per_second` is set very high so the figure
is what the sender can do, not the pace a shop would configure.

Writes to docs/perf.md (section "reminders").
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from perfdoc import write_section

from appliance.catalog import shows
from appliance.catalog.shop import get_shop, set_meta
from appliance.config import load_config
from appliance.i18n.locales import load_catalogues
from appliance.reminders.service import Reminders
from appliance.storage import db as dbmod


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def smtp_server(port: int) -> subprocess.Popen[bytes]:
    """aiosmtpd's own command, keeping nothing, once it accepts connections."""
    command = [sys.executable, "-m", "aiosmtpd", "-n", "-c", "aiosmtpd.handlers.Sink"]
    server = subprocess.Popen([*command, "-l", f"127.0.0.1:{port}"])
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return server
        except OSError:
            if time.monotonic() > deadline:
                server.kill()
                raise
            time.sleep(0.05)


async def run(count: int, batch: int, port: int) -> dict[str, float]:
    data = Path(tempfile.mkdtemp(prefix="vitrine-bench-reminders-"))
    config = load_config(
        environ={},
        overrides={
            "storage.data_dir": str(data),
            "email.smtp_host": "127.0.0.1",
            "email.smtp_port": str(port),
            "email.from": "shows@shop.example",
            "email.starttls": "false",
            "email.per_second": "100000",
            "email.batch_size": str(batch),
        },
    )
    dbmod.migrate_sync(data / "vitrine.sqlite3")
    db = dbmod.Database(data / "vitrine.sqlite3")
    await db.open()
    await set_meta(db, "secret_key", "bench")
    start = int(time.time()) + 86400
    show_id = await shows.create_show(db, shows.ShowData("Bench", "", start, 60, None))
    now = int(time.time())
    async with db.transaction() as conn:
        await conn.executemany(
            "INSERT INTO reminder_signups (show_id, email, lang, viewer, nonce, created_at, "
            "confirmed_at) VALUES (?, ?, 'en', '', ?, ?, ?)",
            [(show_id, f"v{n}@example.com", f"n{n}", now, now) for n in range(count)],
        )
    reminders = Reminders(config, db, load_catalogues(), lambda: get_shop(db))
    await reminders.start()
    await reminders.sweep(time.time())  # the show's announcement, out of the way
    await shows.go_live(db, show_id)
    began = time.perf_counter()
    reminders.status_changed(show_id, "live", None)
    listener = time.perf_counter() - began
    while reminders.emails.sent < count:  # noqa: ASYNC110 - each one answered 250
        await asyncio.sleep(0.01)
    took = time.perf_counter() - began
    await reminders.close()
    await db.close()
    return {"count": count, "seconds": took, "per_second": count / took, "listener": listener}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--emails", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=50)
    args = parser.parse_args()
    port = free_port()
    server = smtp_server(port)
    try:
        result = asyncio.run(run(args.emails, args.batch, port))
    finally:
        server.terminate()
        server.wait()
    line = (
        f"| {int(result['count'])} | {args.batch} | {result['seconds']:.2f} s "
        f"| {result['per_second']:.0f} | {result['listener'] * 1e6:.0f} µs |"
    )
    print(line)
    write_section(
        "reminders",
        "## Reminder emails\n\n"
        "`scripts/bench reminders`: go-live emails to N confirmed sign-ups, through a local "
        "SMTP server (aiosmtpd in a process of its own, no TLS), `email.per_second` out of "
        "the way. Building each email (headers, text, the .ics) with Python's email package "
        "takes about as long as sending it; both run in the sender's thread. The last column "
        "is how long the go-live listener took to return (the show waits for nothing more). "
        f"Load average while measuring: {os.getloadavg()[0]:.1f}.\n\n"
        "| emails | batch | all received after | emails/s | go-live listener |\n"
        "| ---: | ---: | ---: | ---: | ---: |\n" + line,
    )


if __name__ == "__main__":
    main()
