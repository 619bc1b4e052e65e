"""The operator's probes: /healthz while it serves, /readyz only once it has started (patterns and states read)."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from recovery.metrics import Metrics, View


@pytest.fixture
def served() -> Iterator[tuple[Metrics, str]]:
    metrics = Metrics(lambda: View(now=0.0))
    port = metrics.serve("127.0.0.1", 0)
    yield metrics, f"http://127.0.0.1:{port}"
    metrics.stop()


def status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as e:
        return e.code


@pytest.mark.process
def test_ready_only_after_start_while_healthy_and_scraped_all_along(served: tuple[Metrics, str]) -> None:
    metrics, base = served
    assert (status(f"{base}/healthz"), status(f"{base}/readyz")) == (200, 503)
    with urllib.request.urlopen(f"{base}/metrics", timeout=5) as response:
        assert b"flux_recovery_leader" in response.read()
    metrics.ready.set()
    assert status(f"{base}/readyz") == 200
