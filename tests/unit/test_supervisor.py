"""The local cluster's supervisor and process bookkeeping with real tiny processes (sleep, sh) in a tmp layout:
restarts with backoff recorded in restarts.jsonl, kills, holds, group stops, start-up failures, pid files."""

from __future__ import annotations

import json
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from clusters.local.components import ComponentSpec, Probe
from clusters.local.layout import ClusterLayout
from clusters.local.supervisor import Backoff, ComponentExited, Supervisor, probe, read_restarts
from foundation.errors import HarnessError
from foundation.processes import ProcessRecord, alive

FAST = Backoff(first=0.0, base=0.05, cap=0.1, reset_after=600.0)
PATIENCE = 15.0  # a guard against hanging, not a timing assertion


def sh(script: str) -> list[str]:
    return ["sh", "-c", script]


SPECS = {
    "sleeper": ComponentSpec("sleeper", ["sleep", "100"], Probe()),
    "crasher": ComponentSpec("crasher", sh("echo starting up; echo boom: bad flag >&2; exit 3"), Probe()),
    # The grandchild ignores SIGTERM: only the group SIGKILL after the leader exits gets it.
    "tree": ComponentSpec(
        "tree", sh("""(trap '' TERM; exec sleep 100) & echo $! > "$CHILD_PID_FILE"; sleep 100"""), Probe()
    ),
    "env": ComponentSpec("env", sh('echo "FOO=$FOO PWD=$PWD"; sleep 100'), Probe(), env={"FOO": "bar"}),
}


@pytest.fixture
def layout(tmp_path: Path) -> ClusterLayout:
    return ClusterLayout(tmp_path / "c1")


@pytest.fixture
def make_sup(layout: ClusterLayout, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Supervisor]]:
    monkeypatch.setenv("CHILD_PID_FILE", str(layout.root / "grandchild.pid"))
    made: list[Supervisor] = []

    def make(specs: dict[str, ComponentSpec] | None = None, backoff: Backoff = FAST) -> Supervisor:
        sup = Supervisor(layout, specs or SPECS, backoff)
        made.append(sup)
        return sup

    yield make
    for sup in made:
        sup.stop_all()


def until(condition: Callable[[], Any], sup: Supervisor | None = None, what: str = "condition") -> Any:
    """Poll the supervisor (when given) until `condition` holds; fails after PATIENCE seconds."""
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline:
        if sup is not None:
            sup.poll()
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    pytest.fail(f"{what} did not happen within {PATIENCE}s")


def supervising(sup: Supervisor, name: str) -> Supervisor:
    """`sup` running `name` as a restartable component."""
    sup.restartable.add(name)
    sup.start(name)
    return sup


def restarts(layout: ClusterLayout, count: int) -> Callable[[], list[dict[str, Any]]]:
    """The recorded restarts once there are `count` of them (none before)."""

    def recorded() -> list[dict[str, Any]]:
        found = read_restarts(layout.restarts_file)
        return found if len(found) >= count else []

    return recorded


# -- Backoff ---------------------------------------------------------------------------------------------


def test_default_backoff_is_immediate_then_doubles_from_ten_seconds_to_the_cap() -> None:
    assert [Backoff().delay(n) for n in range(1, 10)] == [0, 10, 20, 40, 80, 160, 300, 300, 300]
    assert Backoff().delay(0) == 0


@given(first=st.floats(0, 5), base=st.floats(0.01, 50), cap=st.floats(0.01, 1000), n=st.integers(2, 60))
def test_backoff_never_exceeds_the_cap_and_never_shrinks(first: float, base: float, cap: float, n: int) -> None:
    backoff = Backoff(first=first, base=base, cap=cap)
    assert backoff.delay(1) == first
    assert backoff.delay(n) <= cap
    assert backoff.delay(n + 1) >= backoff.delay(n)


# -- starting, restarting, killing -----------------------------------------------------------------------


@pytest.mark.process
def test_start_writes_a_pid_file_naming_the_live_process(
    make_sup: Callable[..., Supervisor], layout: ClusterLayout
) -> None:
    sup = make_sup()
    sup.start("sleeper")
    record = ProcessRecord.read(layout.pid_file("sleeper"))
    assert record is not None and record.alive()
    assert record.pid == sup.status()["sleeper"]["pid"] and record.executable == "sleep"
    sup.start("sleeper")  # already running: a no-op
    assert sup.status()["sleeper"]["pid"] == record.pid
    sup.stop("sleeper")
    assert not layout.pid_file("sleeper").exists() and not record.alive()


@pytest.mark.process
def test_components_get_their_env_and_run_in_the_cluster_directory(
    make_sup: Callable[..., Supervisor], layout: ClusterLayout
) -> None:
    sup = make_sup()
    sup.start("env")
    line = until(lambda: "FOO=" in layout.log("env").read_text() and layout.log("env").read_text(), what="env output")
    assert f"FOO=bar PWD={layout.root}" in line
    assert "starting env" in line


@pytest.mark.process
def test_a_restartable_component_that_exits_is_restarted_and_recorded(
    make_sup: Callable[..., Supervisor], layout: ClusterLayout
) -> None:
    sup = supervising(make_sup(), "crasher")
    first, second = until(restarts(layout, 2), sup, "two restarts")[:2]
    assert first["component"] == "crasher" and first["exit_code"] == 3 and first["signal"] is None
    assert (first["restart_number"], first["delay_seconds"]) == (1, 0.0)
    assert (second["restart_number"], second["delay_seconds"]) == (2, 0.05)
    assert isinstance(first["pid"], int) and first["pid"] != second["pid"]
    until(lambda: sup.status()["crasher"]["restarts"] >= 2, sup, "restart count")
    assert sup.status()["crasher"]["last_exit"] == 3
    assert layout.log("crasher").read_text().count("starting crasher") >= 2


@pytest.mark.process
def test_a_component_not_marked_restartable_stays_down(
    make_sup: Callable[..., Supervisor], layout: ClusterLayout
) -> None:
    sup = make_sup()
    sup.start("crasher")
    assert until(sup.poll, what="the exit") == ["crasher"]
    for _ in range(5):
        sup.poll()
    assert sup.status()["crasher"] == {
        "pid": None,
        "running": False,
        "restarts": 0,
        "held": False,
        "last_exit": 3,
        "log": str(layout.log("crasher")),
    }
    assert read_restarts(layout.restarts_file) == []
    assert not layout.pid_file("crasher").exists()


@pytest.mark.process
def test_an_exit_is_reported_by_one_poll_only(make_sup: Callable[..., Supervisor]) -> None:
    sup = make_sup()
    sup.start("crasher")
    assert until(sup.poll, what="the exit") == ["crasher"]
    assert sup.poll() == []


@pytest.mark.process
@pytest.mark.slow
def test_a_long_enough_good_run_resets_the_backoff(make_sup: Callable[..., Supervisor], layout: ClusterLayout) -> None:
    flaky = {"flaky": ComponentSpec("flaky", sh("sleep 0.3; exit 1"), Probe())}
    sup = supervising(make_sup(flaky, Backoff(first=0.0, base=0.05, cap=0.1, reset_after=0.0)), "flaky")
    assert [r["delay_seconds"] for r in until(restarts(layout, 2), sup, "two restarts")[:2]] == [0.0, 0.0]


@pytest.mark.process
def test_kill_with_sigkill_is_recorded_as_that_signal_and_restarted(
    make_sup: Callable[..., Supervisor], layout: ClusterLayout
) -> None:
    sup = supervising(make_sup(), "sleeper")
    killed = sup.kill("sleeper")
    (event,) = until(restarts(layout, 1), sup, "the restart")
    assert event["signal"] == "SIGKILL" and event["exit_code"] is None and event["pid"] == killed
    new_pid = until(lambda: sup.status()["sleeper"]["pid"], sup, "the new process")
    assert new_pid != killed and not alive(killed)


@pytest.mark.process
def test_kill_with_sigterm_is_recorded_as_sigterm(make_sup: Callable[..., Supervisor], layout: ClusterLayout) -> None:
    sup = supervising(make_sup(), "sleeper")
    sup.kill("sleeper", signal.SIGTERM)
    assert until(restarts(layout, 1), sup, "the restart")[0]["signal"] == "SIGTERM"


@pytest.mark.process
def test_killing_a_component_that_is_not_running_is_a_harness_error(make_sup: Callable[..., Supervisor]) -> None:
    sup = make_sup()
    with pytest.raises(HarnessError, match=r"^sleeper is not running$"):
        sup.kill("sleeper")
    sup.start("crasher")
    until(sup.poll, what="the exit")
    with pytest.raises(HarnessError, match=r"^crasher is not running$"):
        sup.kill("crasher")


@pytest.mark.process
def test_hold_keeps_a_component_down_until_release(make_sup: Callable[..., Supervisor], layout: ClusterLayout) -> None:
    sup = supervising(make_sup(), "sleeper")
    before = sup.status()["sleeper"]["pid"]
    sup.hold("sleeper", None)
    for _ in range(10):
        sup.poll()
    status = sup.status()["sleeper"]
    assert (status["running"], status["held"]) == (False, True)
    assert not alive(before) and not layout.pid_file("sleeper").exists()
    assert read_restarts(layout.restarts_file) == []  # an outage, not a crash
    sup.release("sleeper")
    status = sup.status()["sleeper"]
    assert status["running"] and not status["held"] and status["pid"] != before


@pytest.mark.process
@pytest.mark.slow
def test_a_timed_hold_ends_by_itself(make_sup: Callable[..., Supervisor]) -> None:
    sup = make_sup()
    sup.start("sleeper")
    sup.hold("sleeper", 0.2)
    assert sup.status()["sleeper"]["held"]
    until(lambda: sup.status()["sleeper"]["running"], sup, "the end of the hold")
    assert not sup.status()["sleeper"]["held"]


@pytest.mark.process
def test_stop_all_kills_the_whole_process_group(make_sup: Callable[..., Supervisor], layout: ClusterLayout) -> None:
    sup = make_sup()
    sup.start_all(["tree", "sleeper"])
    pid_file = layout.root / "grandchild.pid"
    grandchild = int(until(lambda: pid_file.exists() and pid_file.read_text().strip(), what="the grandchild"))
    child = sup.status()["tree"]["pid"]
    assert alive(grandchild) and alive(child)
    sup.stop_all()
    until(lambda: not alive(grandchild), what="the grandchild's death")
    assert not alive(child)
    assert not any(layout.pids_dir.iterdir())
    assert all(not s["running"] for s in sup.status().values())


@pytest.mark.process
def test_wait_ready_fails_at_once_with_the_log_tail_when_a_component_exits(
    make_sup: Callable[..., Supervisor], layout: ClusterLayout
) -> None:
    sup = make_sup()
    sup.start_all(["sleeper", "crasher"])
    never = Probe(tcp=("127.0.0.1", 9))
    sup.specs = {**sup.specs, "sleeper": ComponentSpec("sleeper", ["sleep", "100"], never)}
    with pytest.raises(ComponentExited) as info:
        sup.wait_ready(["sleeper"], timeout=PATIENCE)
    message = str(info.value)
    assert message.startswith("crasher exited during start-up: ")
    assert "starting up | boom: bad flag" in message and f"(log: {layout.log('crasher')})" in message
    assert isinstance(info.value, HarnessError)


@pytest.mark.process
@pytest.mark.slow
def test_wait_ready_times_out_naming_the_pending_component(make_sup: Callable[..., Supervisor]) -> None:
    specs = {"deaf": ComponentSpec("deaf", sh("echo listening soon; sleep 100"), Probe(tcp=("127.0.0.1", 9)))}
    sup = make_sup(specs)
    sup.start("deaf")
    with pytest.raises(HarnessError, match=r"^deaf not ready after 0s: .*listening soon") as info:
        sup.wait_ready(["deaf"], timeout=0.3)
    assert not isinstance(info.value, ComponentExited)


@pytest.mark.process
def test_wait_ready_returns_when_every_probe_passes(make_sup: Callable[..., Supervisor]) -> None:
    sup = make_sup()
    sup.start_all(["sleeper", "env"])
    sup.wait_ready(["sleeper", "env"], timeout=PATIENCE)


def test_log_tail_without_a_log(make_sup: Callable[..., Supervisor]) -> None:
    assert make_sup().log_tail("never-started") == "(no log)"


def test_read_restarts_of_a_missing_file_is_empty(tmp_path: Path) -> None:
    assert read_restarts(tmp_path / "restarts.jsonl") == []
    (tmp_path / "r.jsonl").write_text(json.dumps({"component": "a"}) + "\n\n")
    assert read_restarts(tmp_path / "r.jsonl") == [{"component": "a"}]


# -- probes ----------------------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200 if self.path == "/healthz" else 500)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def http_port() -> Iterator[int]:
    server = HTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.mark.process
def test_probes(http_port: int) -> None:
    assert probe(Probe())
    assert probe(Probe(tcp=("127.0.0.1", http_port)))
    assert probe(Probe(url=f"http://127.0.0.1:{http_port}/healthz"))
    assert not probe(Probe(url=f"http://127.0.0.1:{http_port}/broken"))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    assert not probe(Probe(tcp=("127.0.0.1", closed)), timeout=0.5)
    assert not probe(Probe(url=f"http://127.0.0.1:{closed}/healthz"), timeout=0.5)
    assert not probe(Probe(url="not a url"))
