"""Process bookkeeping that survives a crash: pid files with start times, and safe group kills.

A pid alone can be reused by an unrelated process; the start time from /proc makes a pid file name exactly
one process, so the sweeper never signals a stranger.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
from dataclasses import dataclass
from pathlib import Path

from foundation.waiting import poll


def process_start_time(pid: int) -> int | None:
    """Start time of a process in clock ticks since boot (field 22 of /proc/PID/stat), None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses; fields after the last ')' are fixed.
    fields = stat.rsplit(")", 1)[1].split()
    return int(fields[19])


def alive(pid: int, start_time: int | None = None) -> bool:
    """True when `pid` runs (and is not a zombie) and, if given, started at `start_time`."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    if state == "Z":
        return False
    return start_time is None or process_start_time(pid) == start_time


def tied_to_parent(argv: list[str]) -> list[str]:
    """`argv` wrapped so the kernel SIGKILLs the process when its parent dies (util-linux setpriv)."""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "KILL", "--", *argv] if setpriv else list(argv)


def kill_group(pid: int, sig: int) -> None:
    """Signal the process group led by `pid` (every child was started in its own session)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


@dataclass(frozen=True)
class ProcessRecord:
    """What a pid file holds: pid, start time and the executable, one per line."""

    pid: int
    start_time: int | None
    executable: str

    def write(self, path: Path) -> None:
        path.write_text(f"{self.pid}\n{self.start_time or ''}\n{self.executable}\n")

    @classmethod
    def read(cls, path: Path) -> ProcessRecord | None:
        try:
            lines = path.read_text().splitlines()
            return cls(int(lines[0]), int(lines[1]) if lines[1] else None, lines[2] if len(lines) > 2 else "")
        except (OSError, ValueError, IndexError):
            return None

    def alive(self) -> bool:
        return alive(self.pid, self.start_time)


def terminate(record: ProcessRecord, grace: float = 2.0) -> None:
    """SIGTERM the record's process group, then SIGKILL it if still there after `grace` seconds."""
    if not record.alive():
        return
    kill_group(record.pid, signal.SIGTERM)
    if not poll(lambda: not record.alive(), grace, interval=0.05):
        kill_group(record.pid, signal.SIGKILL)
        poll(lambda: not record.alive(), 2.0, interval=0.05)
