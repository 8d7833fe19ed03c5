"""The real `vitrine serve` under Hypercorn on a free port, driven over HTTP."""

from __future__ import annotations

import http.cookiejar
import re
import sqlite3
import urllib.error
import urllib.parse
import urllib.request

from tests.conftest import PASSWORD, LiveServer


def test_real_server_serves_and_signs_in(live_server: LiveServer) -> None:
    out = live_server.output()
    assert f"Vitrine is serving {live_server.url}" in out
    token = re.search(r"/setup\?token=(\S+)", out).group(1)
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))

    with opener.open(live_server.url + "/") as r:
        assert r.status == 200 and "text/html" in r.headers["Content-Type"]
        assert r.headers["Content-Security-Policy"]
    with opener.open(f"{live_server.url}/setup?token={token}") as r:
        page = r.read().decode()
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    body = urllib.parse.urlencode(
        {
            "csrf_token": csrf,
            "token": token,
            "name": "Owner",
            "email": "owner@example.com",
            "password": PASSWORD,
        }
    ).encode()
    with opener.open(live_server.url + "/setup", data=body) as r:
        assert r.url.endswith("/admin") and "Owner" in r.read().decode()
    try:
        opener.open(f"{live_server.url}/setup?token={token}")
        raise AssertionError("setup must refuse once an admin exists")
    except urllib.error.HTTPError as exc:
        assert exc.code == 404
    db = live_server.data_dir / "vitrine.sqlite3"
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT role FROM users").fetchall() == [("admin",)]
        assert PASSWORD not in conn.execute("SELECT password_hash FROM users").fetchone()[0]
    # SIGTERM stops the server cleanly.
    live_server.process.terminate()
    assert live_server.process.wait(timeout=15) == 0
