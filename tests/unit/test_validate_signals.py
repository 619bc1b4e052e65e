"""Stopping validate: SIGINT and SIGTERM kill the kubectl processes it started and leave no temp dir."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import terminal
from validate_support import Repo, app_root, needs_git, workload

pytestmark = [
    needs_git,
    pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads process states from /proc"),
]


def _running(pid: int) -> bool:
    """Alive and not a zombie (an orphan's zombie may linger if PID 1 does not reap)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def _pids(path: Path) -> list[int]:
    return [int(p) for p in path.read_text().split()] if path.exists() else []


@pytest.fixture
def slow_kubectl(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """A kubectl that records its pid and its child's, then sleeps; whatever is left is killed afterwards."""
    pids = tmp_path / "pids"
    stub = tmp_path / "slow-kubectl"
    stub.write_text(f'#!/bin/sh\nsleep 60 &\necho "$$ $!" >> {pids}\nwait\n')
    stub.chmod(0o755)
    yield str(stub), pids
    for pid in _pids(pids):
        if _running(pid):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.process
@pytest.mark.slow
@pytest.mark.parametrize(
    ("signum", "code", "group", "mode"),
    [
        (signal.SIGINT, 130, True, "--no-diff"),
        (signal.SIGTERM, 143, False, "--no-diff"),
        (signal.SIGTERM, 143, False, "--staged"),  # with a checkout of the index in the temp dir
    ],
    ids=["ctrl-c-to-the-terminal-group", "sigterm-to-validate", "sigterm-staged"],
)
def test_signal_stops_kubectl_and_removes_temp_dirs(
    tmp_path: Path, slow_kubectl: tuple[str, Path], signum: int, code: int, group: bool, mode: str
) -> None:
    stub, pids = slow_kubectl
    tree = Repo(tmp_path / "tree", init=mode == "--staged")
    for name in ("a", "b"):
        app_root(tree, workload(name=name), rel=name)
    if mode == "--staged":
        tree.git("add", "-A")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    cmd = [sys.executable, "-m", "resilience.cli", "validate", str(tree.path), mode, "--kubectl", stub]
    proc = terminal.popen(
        [*cmd, "--jobs", "2"],
        env={**os.environ, "TMPDIR": str(scratch)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 30
        while len(_pids(pids)) < 4 and time.monotonic() < deadline:  # both kubectl running, with their child
            time.sleep(0.05)
        assert len(_pids(pids)) == 4, proc.communicate()[1] if proc.poll() is not None else "kubectl never started"
        started = time.monotonic()

        os.killpg(proc.pid, signum) if group else proc.send_signal(signum)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    assert proc.returncode == code, err
    assert time.monotonic() - started < 10
    assert out == ""
    assert err.strip().splitlines()[-1].startswith(f"resilience: validate stopped by {signal.Signals(signum).name}")
    assert len(_pids(pids)) == 4  # nothing started after the signal
    deadline = time.monotonic() + 5
    while any(map(_running, _pids(pids))) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [p for p in _pids(pids) if _running(p)]
    assert list(scratch.iterdir()) == []
