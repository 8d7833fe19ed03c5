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

CPU_PER_PACKET = 28e-6  # seconds
PACKETS_PER_SECOND = 190
BUDGET = 0.6


def relay_cores(workers: int, cpus: int) -> int:
    return 1 if workers <= 0 else max(1, min(workers, cpus))


def default_max_viewers(workers: int, cpus: int) -> int:
    """The admission limit of one show when the operator sets none."""
    per_core = BUDGET / (CPU_PER_PACKET * PACKETS_PER_SECOND)
    return max(1, int(per_core * relay_cores(workers, cpus)))
