"""Runs that share a host: what each run measures about its neighbours, and the note when a TTR moved more than
noise because of them.

Parallel workers (and whatever else runs on the machine) compete for the CPU that the local cluster's
controllers need, which can slow a recovery down. Each run records the host it ran on (`host` in its summary
entry): the xdist workers of the session, the CPUs, and how busy the CPUs were from start to end of the run
(from /proc/stat). When earlier runs (`--earlier-runs`) give a reference TTR for the cell measured alone (one
worker), a run that had neighbours and whose TTR moved from that reference by more than the SLO file's noise
margin gets a note in its verdict reason. The verdict itself is never changed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from assertions.schema import Host
from assertions.slo import NoiseMargin


@dataclass(frozen=True)
class CpuTimes:
    """Cumulative CPU time of the host, in clock ticks: busy and in total."""

    busy: int
    total: int

    @classmethod
    def now(cls) -> CpuTimes | None:
        try:
            fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        except (OSError, ValueError, IndexError):
            return None
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
        return cls(sum(fields) - idle, sum(fields))


def workers() -> int:
    """The session's xdist workers (1 without xdist)."""
    return int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 1)


def host_record(before: CpuTimes | None, after: CpuTimes | None) -> Host:
    """What a run's summary entry says about the host it shared."""
    busy = None
    if before is not None and after is not None and after.total > before.total:
        busy = round((after.busy - before.busy) / (after.total - before.total), 3)
    return Host(workers=workers(), cpus=os.cpu_count() or 1, cpu_busy=busy)


def neighbour_note(ttr: float | None, host: Host | None, reference: float | None, noise: NoiseMargin) -> str | None:
    """The note for a run with neighbours whose TTR moved from the cell's solo reference by more than noise."""
    if ttr is None or reference is None or host is None or host.workers <= 1:
        return None
    margin = noise.margin(reference)
    if abs(ttr - reference) <= margin:
        return None
    busy = f", CPUs {host.cpu_busy:.0%} busy" if host.cpu_busy is not None else ""
    return (
        f"TTR {ttr:.1f}s moved {ttr - reference:+.1f}s from {reference:.1f}s measured alone (noise margin "
        f"{margin:.1f}s) while {host.workers} workers shared {host.cpus} CPUs{busy}: neighbours may have slowed it"
    )
