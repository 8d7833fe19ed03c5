"""Whether this process may write its data directory, checked before anything opens it."""

from __future__ import annotations

import os
from pathlib import Path


def unwritable(data_dir: Path) -> str | None:
    """One line saying why `data_dir` cannot be written, or None when it can (or can be
    made). The usual case: a host folder bind-mounted on a container's /data, owned by
    root, while the server runs as an unprivileged user."""
    folder = data_dir
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    if os.access(folder, os.W_OK | os.X_OK):
        return None
    owner = folder.stat().st_uid
    if folder == data_dir:
        where = f"the data directory {data_dir}"
    else:
        where = f"{folder}, where the data directory {data_dir} would be made,"
    return (
        f"cannot write {where}: it belongs to uid {owner} and this process runs as uid "
        f"{os.getuid()}. Give it to this user (on the host: chown {os.getuid()}:{os.getgid()} "
        "FOLDER) or use a named volume."
    )
