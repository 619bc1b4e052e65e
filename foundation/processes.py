"""The one way to run a long-lived process: spawn it in a group of its own, wait until it is ready, stop it.

    child = spawn([sys.executable, "-m", "server"], log=run_dir / "server.log", what="the server")
    child.wait_ready(http_ready(f"http://127.0.0.1:{port}/readyz"), timeout=30)
    ...
    child.stop(grace=10)   # SIGTERM the group, SIGKILL what is left after the grace, reap

Every child runs in a session of its own (so its whole tree can be signalled) and, unless asked otherwise, is
tied to its parent: the kernel signals it when the process that started it dies, so none outlives a crashed
harness, test or benchmark. A pid alone can be reused by an unrelated process; the start time from /proc makes a
pid file (ProcessRecord) name exactly one process, so a sweeper never signals a stranger.

psutil (present with the harness, not in the system under test) has no process groups or parent-death signals,
which are most of this; the rest is a few lines of /proc.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from foundation.errors import HarnessError
from foundation.waiting import poll, wait_until

_PR_SET_PDEATHSIG = 1


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


def tied_to_parent(argv: list[str], sig: int = signal.SIGKILL) -> list[str]:
    """`argv` wrapped so the kernel sends `sig` to the process when its parent dies (util-linux setpriv);
    unchanged without setpriv (spawn then asks prctl in the child)."""
    setpriv = shutil.which("setpriv")
    return (
        [setpriv, "--pdeathsig", signal.Signals(sig).name.removeprefix("SIG"), "--", *argv] if setpriv else list(argv)
    )


def _pdeathsig(sig: int) -> Callable[[], None]:
    """A preexec_fn asking the kernel for `sig` when the parent dies (Linux prctl); libc is loaded here, before
    the fork, so the child only makes the call."""
    try:
        prctl = ctypes.CDLL("libc.so.6", use_errno=True).prctl
    except (OSError, AttributeError):
        return lambda: None
    return lambda: prctl(_PR_SET_PDEATHSIG, sig)


def kill_group(pid: int, sig: int) -> None:
    """Signal the process group led by `pid` (every child was started in its own session); quiet when gone."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


class ProcessExited(HarnessError):
    """A process exited while it was awaited: its log tail says why."""


@dataclass
class Child:
    """A spawned process: its Popen, its log, and the name its errors use."""

    popen: subprocess.Popen[bytes]
    log: Path | None = None
    what: str = "the process"

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def returncode(self) -> int | None:
        return self.popen.returncode

    def poll(self) -> int | None:
        """The exit code, None while it runs (reaps it once it exited)."""
        return self.popen.poll()

    def running(self) -> bool:
        return self.popen.poll() is None

    def signal(self, sig: int) -> None:
        """Signal the child's whole process group."""
        kill_group(self.pid, sig)

    def wait(self, timeout: float) -> bool:
        """Whether it exited (and was reaped) within `timeout` seconds."""
        try:
            self.popen.wait(timeout=max(0.0, timeout))
        except subprocess.TimeoutExpired:
            return False
        return True

    def stop(self, grace: float = 10.0) -> int | None:
        """SIGTERM the group, SIGKILL it after `grace` seconds, reap; the exit code. Never raises."""
        stop_all([self], grace)
        return self.returncode

    def check_alive(self) -> None:
        """ProcessExited (with the log tail) if the process has exited."""
        if self.poll() is not None:
            raise ProcessExited(f"{self.what} exited with {self.returncode}: {self.tail()}")

    def wait_ready(self, ready: Callable[[], bool], timeout: float, what: str = "", interval: float = 0.1) -> None:
        """Wait until `ready()` (a probe: http_ready, port_open, file_exists, or any callable); ProcessExited if the
        process exits first, WaitTimeout (both with the log tail) if the time runs out."""

        def check() -> bool:
            self.check_alive()
            return ready()

        wait_until(check, timeout, what or f"{self.what} to be ready", interval=interval, detail=self.tail)

    def tail(self, lines: int = 5) -> str:
        return log_tail(self.log, lines)


def log_tail(log: Path | None, lines: int = 5) -> str:
    """The last lines of a process's log, on one line (for an error message)."""
    if log is None or not log.exists():
        return "(no log)"
    return " | ".join(log.read_text(errors="replace").strip().splitlines()[-lines:])


def spawn(
    argv: list[str],
    *,
    log: Path | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | str | None = None,
    what: str = "",
    die_with_parent: int | None = signal.SIGKILL,
) -> Child:
    """Start `argv` in a session of its own, stdin closed, stdout and stderr appended to `log` (discarded without
    one), `env` over this process's environment; `die_with_parent`: the signal it gets when its parent dies
    (None: it may outlive it, as a daemon does)."""
    what = what or f"`{Path(argv[0]).name}`"
    preexec: Callable[[], None] | None = None
    if die_with_parent is not None:
        wrapped = tied_to_parent(argv, die_with_parent)
        if wrapped == argv:
            preexec = _pdeathsig(die_with_parent)
        argv = wrapped
    with contextlib.ExitStack() as stack:
        out: IO[bytes] | int = subprocess.DEVNULL
        if log is not None:
            log.parent.mkdir(parents=True, exist_ok=True)
            out = stack.enter_context(log.open("ab"))
        popen = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
            cwd=cwd,
            start_new_session=True,
            preexec_fn=preexec,  # noqa: PLW1509 - only without setpriv, and it only calls prctl
        )
    return Child(popen, log, what)


def stop_all(children: Iterable[Child], grace: float = 10.0) -> None:
    """SIGTERM every child's group at once, SIGKILL what is left after `grace` seconds, reap. Never raises."""
    live = [c for c in children if c.running()]
    for child in live:
        child.signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for child in live:
        if not child.wait(deadline - time.monotonic()):
            child.signal(signal.SIGKILL)
            child.wait(5.0)
        child.signal(signal.SIGKILL)  # stragglers left in the group by a leader that exited


# -- readiness probes: each one check that never raises ---------------------------------------------------------
def port_open(host: str, port: int, timeout: float = 1.0) -> Callable[[], bool]:
    """Ready once something accepts connections on host:port."""

    def check() -> bool:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                return True
        except OSError:
            return False

    return check


def http_ready(
    url: str, timeout: float = 1.0, context: ssl.SSLContext | None = None, statuses: Collection[int] = (200,)
) -> Callable[[], bool]:
    """Ready once `url` answers with one of `statuses`."""

    def check() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=timeout, context=context) as resp:  # noqa: S310
                return int(resp.status) in statuses
        except urllib.error.HTTPError as e:
            return e.code in statuses
        except (OSError, ValueError):
            return False

    return check


def file_exists(path: Path) -> Callable[[], bool]:
    """Ready once `path` exists (a process that writes a file when it serves)."""
    return path.exists


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
    """SIGTERM the record's process group, then SIGKILL it if still there after `grace` seconds (a process this
    one did not start, so it cannot reap it: it waits for it to be gone)."""
    if not record.alive():
        return
    kill_group(record.pid, signal.SIGTERM)
    if not poll(lambda: not record.alive(), grace, interval=0.05):
        kill_group(record.pid, signal.SIGKILL)
        poll(lambda: not record.alive(), 2.0, interval=0.05)
