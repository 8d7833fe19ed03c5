"""Writes one benchmark's section of docs/perf.md, between markers, keeping the others."""

from __future__ import annotations

import os
import platform
import re
import time
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "perf.md"
HEADER = """# Performance

Figures measured on the project's own machine by the commands named in each section.
The machine is shared and noisy: compare figures measured side by side in one run, and
rerun a benchmark before trusting a change of a few percent.
"""


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} cores ({model}), Python {platform.python_version()}"


def write_section(name: str, body: str) -> None:
    start, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    stamp = time.strftime("%Y-%m-%d")
    section = f"{start}\n{body.rstrip()}\n\nMeasured {stamp} on {machine()}.\n{end}"
    text = DOC.read_text() if DOC.exists() else HEADER
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    text = (
        pattern.sub(lambda _m: section, text)
        if pattern.search(text)
        else f"{text.rstrip()}\n\n{section}\n"
    )
    DOC.write_text(text if text.endswith("\n") else text + "\n")
