"""The harness's handle on the monitoring beside a cluster: Prometheus, Alertmanager, and the receiver alerts reach.

Prometheus scrapes the Flux controllers and the API server by static configuration; the recovery processes the
harness starts beside the cluster (the operator, the stage controller, a read-only monitor for modes without the
operator) are scrape targets it registers at run time through file-based service discovery (`scrape`), since
their ports are chosen when they start. Alertmanager sends every notification to the harness's receiver, which
appends it to one JSON lines file (`notifications`). The timings of the alert path live here, in one place: they
are what a time to alert is made of beyond the rules' own thresholds and `for`.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ctlruntime.timeparse import parse_time
from foundation.errors import HarnessError
from monitoring.facts.notification import Notification

# File-based service discovery jobs: the recovery operator and the stage controller (every series kept), and the
# read-only monitor run for recovery modes without the operator (its recovery_* series are dropped: it decides
# nothing).
OPERATOR_JOB = "recovery-operator"
STAGES_JOB = "stage-controller"
MONITOR_JOB = "recovery-monitor"
SCRAPE_JOBS: tuple[str, ...] = (OPERATOR_JOB, STAGES_JOB, MONITOR_JOB)
_TARGET_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class AlertTimings:
    """How often Prometheus scrapes and evaluates, and how long Alertmanager holds a new group (seconds)."""

    scrape_interval: int = 5
    evaluation_interval: int = 5
    group_wait: int = 5
    group_interval: int = 10
    repeat_interval: int = 4 * 3600
    # The API server's metrics are large; a slower scrape keeps Prometheus light on two cores.
    apiserver_scrape_interval: int = 15

    @property
    def delivery_seconds(self) -> int:
        """The longest a condition that held for its rule's `for` takes to reach the receiver: a scrape to see the
        metric change, an evaluation to start the `for` and one to end it, Alertmanager's group wait."""
        return self.scrape_interval + 2 * self.evaluation_interval + self.group_wait

    @property
    def resolve_seconds(self) -> int:
        """The longest a cleared condition takes to reach the receiver as resolved (resolved alerts wait for the
        group's next interval, not its group wait)."""
        return self.scrape_interval + self.evaluation_interval + self.group_interval

    def to_json(self) -> dict[str, int]:
        return {
            "scrape_interval": self.scrape_interval,
            "evaluation_interval": self.evaluation_interval,
            "group_wait": self.group_wait,
            "group_interval": self.group_interval,
            "repeat_interval": self.repeat_interval,
            "apiserver_scrape_interval": self.apiserver_scrape_interval,
        }


TIMINGS = AlertTimings()


@dataclass(frozen=True)
class Monitoring:
    """Where a cluster's monitoring answers and writes, and the rules it evaluates."""

    prometheus_url: str
    alertmanager_url: str
    receiver_url: str
    notifications_file: Path
    targets_dir: Path
    rules_source: str
    rules_shipped: bool
    timings: AlertTimings = TIMINGS

    def scrape(self, job: str, name: str, address: str, labels: dict[str, str] | None = None) -> Path:
        """Make Prometheus scrape `address` under `job` (picked up within seconds); returns the target file."""
        if job not in SCRAPE_JOBS:
            raise HarnessError(f"unknown scrape job {job!r}; known: {', '.join(SCRAPE_JOBS)}")
        directory = self.targets_dir / job
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{_TARGET_NAME.sub('_', name)}.json"
        tmp = path.with_name(f".{path.name}.tmp")  # Prometheus must never read half a file
        tmp.write_text(json.dumps([{"targets": [address], "labels": dict(labels or {})}]) + "\n")
        tmp.replace(path)
        return path

    def notifications(self, since: float = 0.0) -> list[Notification]:
        """Every notification received at or after `since` (Unix time), oldest first."""
        try:
            lines = self.notifications_file.read_text().splitlines()
        except FileNotFoundError:
            return []
        out = []
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:  # a line still being written
                continue
            payload = record.get("payload") or {}
            if float(record.get("received", 0)) >= since:
                out.append(
                    Notification(
                        float(record["received"]), str(payload.get("status", "")), tuple(payload.get("alerts") or ())
                    )
                )
        return out

    def query(self, promql: str, timeout: float = 10.0) -> list[dict[str, Any]]:
        """An instant query's result vector; HarnessError naming the query when Prometheus refuses it."""
        data = self._get(f"/api/v1/query?{urllib.parse.urlencode({'query': promql})}", repr(promql), timeout)
        result = data.get("result") or []
        return list(result) if isinstance(result, list) else []

    def firing_since(self, since: float, timeout: float = 10.0) -> list[dict[str, str]]:
        """The labels of the alerts Prometheus has firing that became active at or after `since` (Unix time)."""
        alerts = self._get("/api/v1/alerts", "the alerts API", timeout).get("alerts") or []
        return [
            dict(a.get("labels") or {})
            for a in alerts
            if a.get("state") == "firing" and (parse_time(a.get("activeAt")) or 0.0) >= since
        ]

    def _get(self, path: str, what: str, timeout: float) -> dict[str, Any]:
        try:
            with urllib.request.urlopen(f"{self.prometheus_url}{path}", timeout=timeout) as resp:  # noqa: S310
                body = json.loads(resp.read())
        except urllib.error.HTTPError as e:
            detail = e.read().decode(errors="replace")[:300]
            raise HarnessError(f"Prometheus refused {what}: HTTP {e.code} {detail}") from e
        except (OSError, ValueError) as e:
            raise HarnessError(f"Prometheus at {self.prometheus_url} did not answer {what}: {e}") from e
        data = body.get("data") if isinstance(body, dict) else None
        return data if isinstance(data, dict) else {}

    def to_json(self) -> dict[str, Any]:
        return {
            "prometheus": self.prometheus_url,
            "alertmanager": self.alertmanager_url,
            "receiver": self.receiver_url,
            "notifications": str(self.notifications_file),
            "targets": str(self.targets_dir),
            "rules": self.rules_source,
            "rules_shipped": self.rules_shipped,
            "timings_seconds": self.timings.to_json(),
        }
