"""The settings `--lan` changes: listen on the LAN address, call it the public https
address, and gather media candidates on it (the address a phone on the Wi-Fi reaches)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from appliance.config import Config, ConfigError, load_config
from appliance.lan.address import lan_address


def lan_config(path: str | os.PathLike[str] | None, overrides: Mapping[str, Any]) -> Config:
    """The configuration for `vitrine serve --lan`: the file, environment and flags as
    usual, with server.host the LAN address (or --host), server.public_url https on it,
    and media.host_addresses that address alone."""
    host = overrides.get("server.host") or lan_address()
    if not host:
        raise ConfigError(
            "--lan: this machine has no LAN address (is it on a network?); give one with --host"
        )
    chosen = {**overrides, "server.host": host}
    port = load_config(path, overrides=chosen).server.port
    name = f"[{host}]" if ":" in host else host
    return load_config(
        path,
        overrides={
            **chosen,
            "server.public_url": f"https://{name}:{port}",
            "media.host_addresses": host,
        },
    )
