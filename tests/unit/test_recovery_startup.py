"""`recover` before its API server answers: retries with backoff, a line per attempt, a deadline, a clean stop."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ctlruntime import startup
from ctlruntime.errors import ApiUnreachable
from foundation.errors import UserError
from foundation.ports import ephemeral_port
from kubeapi import ApiError, Forbidden, TemporaryApiError
from recovery.operator import Config, Operator
from testsupport.fakekube import FakeKube

DOWN = TemporaryApiError(0, "Unreachable", "Failed to establish a new connection: [Errno 111] Connection refused")


@pytest.fixture(autouse=True)
def quick(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(startup, "FIRST_DELAY", 0.01)


class Flaky(FakeKube):
    """An API server that refuses connections `down` times, then answers."""

    def __init__(self, down: int) -> None:
        super().__init__()
        self.down = down
        self.pings = 0

    def ping(self, timeout: float = 5.0) -> str:
        self.pings += 1
        if self.pings <= self.down:
            raise DOWN
        return "v1"


def test_the_operator_waits_for_the_api_server_then_starts(caplog: pytest.LogCaptureFixture) -> None:
    kube = Flaky(down=3)
    operator = Operator(kube, Config(metrics_host=None, api_server="https://k:6443 from --kubeconfig k"))  # type: ignore[arg-type]
    with caplog.at_level(logging.WARNING, logger="ctlruntime.startup"):
        try:
            assert operator.start() is True
        finally:
            operator.stop.set()
            operator.shutdown()
    lines = [r for r in caplog.records if r.name == "ctlruntime.startup"]
    assert kube.pings == 4 and len(lines) == 3  # one line per failed attempt
    assert all(r.exc_info is None for r in lines)  # and no traceback
    assert [r.fields["attempt"] for r in lines] == [1, 2, 3]  # type: ignore[attr-defined]
    assert lines[0].fields["server"] == "https://k:6443 from --kubeconfig k"  # type: ignore[attr-defined]


def test_after_the_deadline_one_line_names_the_server_and_exit_is_3() -> None:
    calls = []

    def down() -> None:
        calls.append(time.monotonic())
        raise DOWN

    started = time.monotonic()
    with pytest.raises(ApiUnreachable) as err:
        startup.until_answered(down, timeout=0.3, stop=threading.Event(), server="https://k:6443 from KUBECONFIG=a:b")
    assert 0.3 <= time.monotonic() - started < 2 and len(calls) > 2
    message = str(err.value)
    assert err.value.exit_code == 3 and "\n" not in message
    assert message.startswith("the API server https://k:6443 from KUBECONFIG=a:b did not answer within")
    assert "Connection refused" in message and "--startup-timeout" in message


def test_a_stop_while_waiting_ends_the_wait_at_once() -> None:
    stop = threading.Event()
    threading.Timer(0.2, stop.set).start()
    started = time.monotonic()
    assert startup.until_answered(lambda: (_ for _ in ()).throw(DOWN), timeout=60, stop=stop, server="s") is None
    assert time.monotonic() - started < 5


def test_what_waiting_cannot_fix_is_not_waited_for() -> None:
    kube = FakeKube()
    kube.fail_next["ping"] = Forbidden(401, "Unauthorized", "Unauthorized")
    operator = Operator(kube, Config(metrics_host=None, api_server="https://k:6443"))  # type: ignore[arg-type]
    with pytest.raises(UserError, match=r"https://k:6443 refused the credentials .*fix the kubeconfig's user"):
        operator.run()
    kube.fail_next["ping"] = ApiError(400, "BadRequest", "a proxy in front refused it")
    operator = Operator(kube, Config(metrics_host=None, api_server="https://k:6443"))  # type: ignore[arg-type]
    with pytest.raises(UserError, match=r"https://k:6443 refused a startup read: 400 BadRequest: a proxy"):
        operator.run()
    kube.fail_next["list"] = Forbidden(403, "Forbidden", "configmaps is forbidden")
    operator = Operator(kube, Config(metrics_host=None))  # type: ignore[arg-type]
    with pytest.raises(UserError, match="cannot read ConfigMaps in flux-system: configmaps is forbidden"):
        operator.run()


@pytest.mark.process
def test_recover_against_a_server_that_is_not_up_exits_3_without_a_traceback(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    port = ephemeral_port()
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        f"clusters: [{{name: c, cluster: {{server: 'https://127.0.0.1:{port}'}}}}]\n"
        "users: [{name: c, user: {token: t}}]\ncontexts: [{name: c, context: {cluster: c, user: c}}]\n"
    )
    proc = subprocess.run(
        [sys.executable, "-m", "resilience.cli", "recover", "--metrics-addr", "off", "--startup-timeout", "1"],
        capture_output=True,
        text=True,
        env={**os.environ, "KUBECONFIG": str(kubeconfig)},
        timeout=60,
    )
    assert proc.returncode == 3, proc.stderr
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"resilience: error: the API server https://127.0.0.1:{port} from KUBECONFIG={kubeconfig}")
    attempts = [line for line in proc.stderr.splitlines() if "does not answer yet" in line]
    assert len(attempts) >= 2 and all("attempt=" in line for line in attempts)


@pytest.mark.process
def test_a_busy_metrics_port_is_refused_before_waiting_for_the_api_server() -> None:
    kube = Flaky(down=1000)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        operator = Operator(kube, Config(metrics_host="127.0.0.1", metrics_port=port))  # type: ignore[arg-type]
        with pytest.raises(
            UserError, match=rf"^--metrics-addr 127.0.0.1:{port}: cannot listen \(Address already in use\)"
        ):
            operator.run()
    assert kube.pings == 0
    assert not [t for t in threading.enumerate() if t.name.startswith(("worker-", "lease", "config", "informer-"))]
