"""Trying the studio from a phone on the same Wi-Fi, in one command: `vitrine serve --lan`.

Phone browsers open the camera only on secure pages, so the server serves HTTPS on the
machine's LAN address with a self-signed certificate made on first use (kept in the data
directory), announces that address for media, and prints the studio's address with a QR
code to scan. For trying only: a real shop has a domain and a proxy that gets a real
certificate (deploy/compose.yaml).
"""

from appliance.lan.address import is_loopback_host, lan_address
from appliance.lan.certificate import CERT_FILE, KEY_FILE, ensure_certificate
from appliance.lan.settings import lan_config
from appliance.lan.terminal import banner, print_banner, qr_text

__all__ = [
    "CERT_FILE",
    "KEY_FILE",
    "banner",
    "ensure_certificate",
    "is_loopback_host",
    "lan_address",
    "lan_config",
    "print_banner",
    "qr_text",
]
