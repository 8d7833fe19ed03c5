"""TURN credentials that expire, for a TURN server sharing a secret with Vitrine.

The TURN REST convention (coturn's `use-auth-secret`): the user name is the Unix time
at which the credential expires, a colon and a label; the password is the base64 of
HMAC-SHA1 of that user name, keyed with the secret both sides know. Vitrine issues a
fresh pair with every page that publishes or plays, so nothing long-lived is ever
written into a page, and the TURN server checks them without asking Vitrine.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time


def rest_credentials(
    secret: str, ttl_seconds: int, label: str = "vitrine", now: float | None = None
) -> tuple[str, str]:
    """(user name, password) valid for `ttl_seconds` from `now`."""
    expires = int(time.time() if now is None else now) + ttl_seconds
    username = f"{expires}:{label}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode()
