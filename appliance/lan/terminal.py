"""What `vitrine serve --lan` prints: the studio's address, a QR code of it to scan with
the phone's camera, and how to get past the certificate warning."""

from __future__ import annotations

import io
import sys

import segno


def qr_text(url: str) -> str:
    """A QR code of `url` drawn with half-block characters (two modules a character)."""
    out = io.StringIO()
    segno.make(url, error="m").terminal(out=out, compact=True, border=2)
    return out.getvalue()


def banner(url: str) -> str:
    return (
        f"\nOn a phone on the same Wi-Fi, open {url}\n"
        f"or scan this code with its camera:\n\n{qr_text(url)}\n"
        "The phone warns that the connection is not private (the certificate is this "
        "machine's own): tap Advanced (Show details), then Proceed (visit this website).\n"
    )


def print_banner(url: str) -> None:
    """Print the banner; without its QR code when the terminal cannot show it."""
    try:
        print(banner(url), flush=True)
    except UnicodeEncodeError:
        print(f"\nOn a phone on the same Wi-Fi, open {url}\n", flush=True)
    sys.stdout.flush()
