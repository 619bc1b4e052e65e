"""foundation.processes with real tiny processes: a python child serving /readyz is awaited, stopped and reaped
with its own child; exits and timeouts while awaited name the log; tied children die with their parent; pid
records never name a stranger."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from foundation.ports import ephemeral_port
from foundation.processes import (
    Child,
    ProcessExited,
    ProcessRecord,
    alive,
    file_exists,
    http_ready,
    kill_group,
    port_open,
    process_start_time,
    spawn,
    stop_all,
    terminate,
    tied_to_parent,
)
from foundation.waiting import WaitTimeout, wait_until

PATIENCE = 15.0  # a guard against hanging, not a timing assertion
SLEEP = shutil.which("sleep") or "/bin/sleep"

# A server of /readyz that first starts a child of its own (which ignores SIGTERM) and writes its pid.
SERVER = textwrap.dedent(
    """
    import http.server, subprocess, sys
    child = subprocess.Popen(["sh", "-c", "trap '' TERM; exec sleep 100"])
    open(sys.argv[2], "w").write(str(child.pid))

    class Ready(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200 if self.path == "/readyz" else 404)
            self.end_headers()

        def log_message(self, *args):
            pass

    print("serving", flush=True)
    http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), Ready).serve_forever()
    """
)


def sh(script: str) -> list[str]:
    return ["sh", "-c", script]


def until(condition: Callable[[], Any], what: str = "condition") -> Any:
    return wait_until(condition, PATIENCE, what, interval=0.02)


@pytest.fixture
def children() -> Iterator[list[Child]]:
    """Every child a test spawns, stopped at the end whatever happened."""
    made: list[Child] = []
    yield made
    stop_all(made, grace=0.0)


def read_pid(path: Path) -> int:
    return int(until(lambda: path.exists() and path.read_text().strip(), what=f"the pid in {path}"))


@pytest.mark.process
@pytest.mark.slow
def test_a_server_is_awaited_on_its_url_then_stopped_and_reaped_with_its_own_child(
    tmp_path: Path, children: list[Child]
) -> None:
    port, pid_file, log = ephemeral_port(), tmp_path / "grandchild.pid", tmp_path / "server.log"
    server = spawn([sys.executable, "-c", SERVER, str(port), str(pid_file)], log=log, what="the server")
    children.append(server)
    server.wait_ready(http_ready(f"http://127.0.0.1:{port}/readyz"), timeout=PATIENCE)
    assert port_open("127.0.0.1", port)()
    assert not http_ready(f"http://127.0.0.1:{port}/other")()
    assert os.getpgid(server.pid) == server.pid  # a group of its own
    grandchild = read_pid(pid_file)
    assert os.getpgid(grandchild) == server.pid and alive(grandchild)
    assert server.stop(grace=PATIENCE) == -signal.SIGTERM
    assert not alive(server.pid) and process_start_time(server.pid) is None  # reaped, not a zombie
    until(lambda: not alive(grandchild), what="the grandchild's death")  # it ignored SIGTERM: the group SIGKILL
    assert server.tail() == "serving"


@pytest.mark.process
@pytest.mark.slow
def test_stop_escalates_to_sigkill_when_sigterm_is_ignored(tmp_path: Path, children: list[Child]) -> None:
    marker = tmp_path / "trapped"
    child = spawn(sh(f"trap '' TERM; touch {marker}; sleep 100"))
    children.append(child)
    assert child.what == "`sh`"  # the program, not the setpriv wrapping it
    child.wait_ready(file_exists(marker), timeout=PATIENCE)
    assert child.stop(grace=0.2) == -signal.SIGKILL
    assert child.stop() == -signal.SIGKILL  # a second stop is quiet


@pytest.mark.process
def test_an_exit_while_awaited_fails_at_once_with_the_log_tail(tmp_path: Path, children: list[Child]) -> None:
    child = spawn(sh("echo starting; echo bad flag --x >&2; exit 3"), log=tmp_path / "x.log", what="the x server")
    children.append(child)
    with pytest.raises(ProcessExited, match=r"^the x server exited with 3: starting \| bad flag --x$"):
        child.wait_ready(lambda: False, timeout=PATIENCE)
    with pytest.raises(ProcessExited):
        child.check_alive()


@pytest.mark.process
@pytest.mark.slow
def test_a_timeout_names_what_was_awaited_and_the_log(tmp_path: Path, children: list[Child]) -> None:
    child = spawn(sh("echo still starting; sleep 100"), log=tmp_path / "slow.log", what="the slow one")
    children.append(child)
    until(lambda: child.tail() == "still starting", what="the log line")
    with pytest.raises(WaitTimeout, match=r"waiting for the slow one to be ready: still starting"):
        child.wait_ready(lambda: False, timeout=0.2)
    child.check_alive()


@pytest.mark.process
def test_env_is_laid_over_this_processes_environment_and_output_without_a_log_is_dropped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, children: list[Child]
) -> None:
    monkeypatch.setenv("KEPT", "yes")
    out = tmp_path / "env.txt"
    child = spawn(sh(f'echo "$KEPT $ADDED $PWD" > {out}; echo noise'), env={"ADDED": "too"}, cwd=tmp_path)
    children.append(child)
    assert child.wait(PATIENCE) and child.returncode == 0
    assert out.read_text().split() == ["yes", "too", str(tmp_path)]
    assert child.tail() == "(no log)"


# The middle process spawns a tied child, writes its pid, and is then killed: the kernel signals the child.
MIDDLE = textwrap.dedent(
    """
    import sys, time
    from foundation.processes import spawn
    child = spawn([sys.argv[3], "100"], die_with_parent=int(sys.argv[2]))
    open(sys.argv[1], "w").write(str(child.pid))
    time.sleep(100)
    """
)


@pytest.mark.process
@pytest.mark.slow
@pytest.mark.parametrize("setpriv", [True, False], ids=["setpriv", "prctl"])
def test_a_spawned_child_dies_with_its_parent(tmp_path: Path, children: list[Child], setpriv: bool) -> None:
    if setpriv and shutil.which("setpriv") is None:
        pytest.skip("util-linux setpriv is not installed")
    pid_file = tmp_path / "child.pid"
    root = str(Path(__file__).resolve().parents[2])
    path = os.environ["PATH"] if setpriv else str(Path(sys.executable).parent)  # no setpriv: prctl in the child
    env = {"PYTHONPATH": root, "PATH": path}
    middle = spawn([sys.executable, "-c", MIDDLE, str(pid_file), str(int(signal.SIGTERM)), SLEEP], env=env)
    children.append(middle)
    child = read_pid(pid_file)
    assert alive(child)
    os.kill(middle.pid, signal.SIGKILL)  # the middle only: the child is in a session of its own
    assert middle.wait(PATIENCE)
    until(lambda: not alive(child), what="the tied child's death")


@pytest.mark.process
@pytest.mark.slow
def test_a_daemon_may_outlive_its_parent(tmp_path: Path, children: list[Child]) -> None:
    pid_file = tmp_path / "child.pid"
    env = {"PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    script = MIDDLE.replace("die_with_parent=int(sys.argv[2])", "die_with_parent=None")
    middle = spawn([sys.executable, "-c", script, str(pid_file), "0", SLEEP], env=env)
    children.append(middle)
    child = read_pid(pid_file)
    try:
        os.kill(middle.pid, signal.SIGKILL)
        assert middle.wait(PATIENCE)
        with pytest.raises(WaitTimeout):
            wait_until(lambda: not alive(child), 0.5, "the daemon's death", interval=0.05)
    finally:
        kill_group(child, signal.SIGKILL)


def test_process_record_round_trip(tmp_path: Path) -> None:
    me = ProcessRecord(os.getpid(), process_start_time(os.getpid()), "/usr/bin/python3")
    me.write(tmp_path / "me.pid")
    assert ProcessRecord.read(tmp_path / "me.pid") == me
    assert me.alive()
    unknown_start = ProcessRecord(os.getpid(), None, "")
    unknown_start.write(tmp_path / "u.pid")
    assert ProcessRecord.read(tmp_path / "u.pid") == unknown_start
    assert unknown_start.alive()


@pytest.mark.parametrize("content", ["", "abc\n1\nx\n", "12\n", "12\nnot-a-number\nx\n"])
def test_unreadable_pid_files_read_as_none(tmp_path: Path, content: str) -> None:
    (tmp_path / "bad.pid").write_text(content)
    assert ProcessRecord.read(tmp_path / "bad.pid") is None
    assert ProcessRecord.read(tmp_path / "missing.pid") is None


def test_a_pid_with_another_start_time_is_not_alive() -> None:
    start = process_start_time(os.getpid())
    assert start is not None
    assert not ProcessRecord(os.getpid(), start + 1, "python").alive()
    assert not alive(os.getpid(), start - 1)


@pytest.mark.process
def test_a_finished_process_is_not_alive_even_as_a_zombie() -> None:
    proc = subprocess.Popen(["true"])
    until(lambda: not alive(proc.pid), what="the exit")
    assert process_start_time(proc.pid) is not None  # not reaped yet: a zombie
    proc.wait()
    assert not alive(proc.pid) and process_start_time(proc.pid) is None


@pytest.mark.process
def test_process_start_time_survives_parentheses_and_spaces_in_the_command_name(tmp_path: Path) -> None:
    odd = tmp_path / "sl) e (p"
    shutil.copy(shutil.which("sleep") or "/bin/sleep", odd)
    proc = subprocess.Popen([str(odd), "100"])
    try:
        start = until(lambda: process_start_time(proc.pid), what="the start time")
        assert isinstance(start, int) and alive(proc.pid, start)
        mine = process_start_time(os.getpid())
        assert mine is not None and start >= mine  # field 22, not a field shifted by the odd name
    finally:
        proc.kill()
        proc.wait()


def test_tied_to_parent_wraps_with_setpriv_when_present(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    setpriv = tmp_path / "setpriv"
    setpriv.write_text("#!/bin/sh\n")
    setpriv.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    argv = ["sleep", "1"]
    assert tied_to_parent(argv) == [str(setpriv), "--pdeathsig", "KILL", "--", "sleep", "1"]
    setpriv.unlink()
    wrapped = tied_to_parent(argv)
    assert wrapped == argv and wrapped is not argv


@pytest.mark.process
@pytest.mark.slow
@pytest.mark.skipif(shutil.which("setpriv") is None, reason="util-linux setpriv is not installed")
def test_a_tied_process_dies_with_its_parent(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    # The middle shell starts the tied child, records its pid, then exits: the kernel kills the child.
    argv = " ".join(tied_to_parent(["sleep", "100"]))
    parent = subprocess.Popen(sh(f"{argv} & echo $! > {pid_file}; sleep 0.3"), start_new_session=True)
    try:
        child = int(until(lambda: pid_file.exists() and pid_file.read_text().strip(), what="the child"))
        parent.wait(timeout=PATIENCE)
        until(lambda: not alive(child), what="the tied child's death")
    finally:
        kill_group(parent.pid, signal.SIGKILL)


@pytest.mark.process
def test_kill_group_of_a_gone_process_is_quiet() -> None:
    proc = subprocess.Popen(["true"], start_new_session=True)
    proc.wait()
    kill_group(proc.pid, signal.SIGKILL)


@pytest.mark.process
@pytest.mark.slow
def test_terminate_escalates_to_sigkill_for_a_group_that_ignores_sigterm(tmp_path: Path) -> None:
    marker = tmp_path / "ready"
    proc = subprocess.Popen(sh(f"trap '' TERM; touch {marker}; sleep 100"), start_new_session=True)
    try:
        until(marker.exists, what="the trap")
        record = ProcessRecord(proc.pid, process_start_time(proc.pid), "sh")
        terminate(record, grace=0.2)
        assert not record.alive()
        assert proc.wait(timeout=PATIENCE) == -signal.SIGKILL
    finally:
        kill_group(proc.pid, signal.SIGKILL)


@pytest.mark.process
@pytest.mark.slow
def test_terminate_never_signals_a_stranger_with_a_reused_pid() -> None:
    proc = subprocess.Popen(["sleep", "100"], start_new_session=True)
    try:
        start = process_start_time(proc.pid)
        assert start is not None
        terminate(ProcessRecord(proc.pid, start + 1, "sleep"), grace=0.1)
        with pytest.raises(subprocess.TimeoutExpired):
            proc.wait(timeout=0.3)
        assert alive(proc.pid, start)
    finally:
        proc.kill()
        proc.wait()
