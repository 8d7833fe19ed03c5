"""How many viewers the relay holds: the default of `media.max_viewers`.

    max_viewers = budget × relay_cores / (cpu_per_packet × packets_per_second)

- cpu_per_packet: server CPU per forwarded packet, process-wide, as `scripts/bench relay`
  measures it (docs/perf.md): about 28 µs on the reference machine;
- packets_per_second: what one viewer of a 1.2 Mbit/s 720p30 H264 show with Opus
  receives, about 140 video and 50 audio packets a second;
- relay_cores: 1 without workers (the relay shares the main process's one event loop),
  else the workers that have a core each (min(workers, cores));
- budget: the share of each of those cores the relay may take and leave the live room,
  the pages, the recording and the HLS writer room to breathe.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

CPU_PER_PACKET = 28e-6  # seconds
PACKETS_PER_SECOND = 190
BUDGET = 0.6
MOST_WORKERS = 8  # what `media.workers = -1` starts at most, whatever the cores


def usable_cpus(cgroup: Path = Path("/sys/fs/cgroup/cpu.max")) -> int:
    """The cores this process may use: those it may run on (a container's cpuset), and
    no more than its cgroup's CPU quota (`--cpus` of a container), rounded up."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    try:
        quota, period = cgroup.read_text().split()[:2]
        if quota != "max":
            cpus = min(cpus, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cpus)


def workers_for(setting: int, cpus: int) -> int:
    """The relay workers to start: `setting`, or for -1 one per core (at most
    MOST_WORKERS), and none on a one-core machine, where a worker would only add the
    feed's copies to the one core the main process already uses."""
    if setting >= 0:
        return setting
    return 0 if cpus < 2 else min(cpus, MOST_WORKERS)


def relay_cores(workers: int, cpus: int) -> int:
    return 1 if workers <= 0 else max(1, min(workers, cpus))


def default_max_viewers(workers: int, cpus: int) -> int:
    """The admission limit of one show when the operator sets none."""
    per_core = BUDGET / (CPU_PER_PACKET * PACKETS_PER_SECOND)
    return max(1, int(per_core * relay_cores(workers, cpus)))
