"""The cluster's Helm chart repository: charts packaged with the pinned helm CLI into a served directory.

Scenarios publish new versions of a chart (different values, broken manifests) exactly as a chart author
would, and helm-controller pulls them through source-controller like any HTTP repository.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from foundation.errors import HarnessError

BASE_CHARTS = ("demo-app",)


def chart_source(name: str) -> Path:
    """Directory of a chart shipped with the project (clusters/chart_sources/NAME)."""
    return Path(str(resources.files("clusters") / "chart_sources" / name))


@dataclass(frozen=True)
class ChartRepo:
    """A directory of packaged charts plus index.yaml, served at `url`."""

    directory: Path
    url: str
    helm: Path

    def _helm(self, *args: str) -> None:
        with tempfile.TemporaryDirectory(prefix="helm-home-") as home:
            env = {
                **os.environ,
                "HELM_CACHE_HOME": f"{home}/cache",
                "HELM_CONFIG_HOME": f"{home}/config",
                "HELM_DATA_HOME": f"{home}/data",
            }
            proc = subprocess.run([str(self.helm), *args], capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            raise HarnessError(f"helm {' '.join(args)} failed: {proc.stderr.strip()}")

    def publish(self, chart: str, version: str, values: Mapping[str, Any] | None = None) -> str:
        """Package `chart` (a shipped chart name) at `version` with `values` merged over its defaults."""
        with tempfile.TemporaryDirectory(prefix="chart-") as tmp:
            src = Path(tmp) / chart
            shutil.copytree(chart_source(chart), src)
            meta = yaml.safe_load((src / "Chart.yaml").read_text())
            meta["version"] = version
            meta["appVersion"] = version
            (src / "Chart.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))
            if values:
                defaults = yaml.safe_load((src / "values.yaml").read_text()) or {}
                defaults.update(values)
                (src / "values.yaml").write_text(yaml.safe_dump(defaults, sort_keys=False))
            self.directory.mkdir(parents=True, exist_ok=True)
            self._helm("package", str(src), "--destination", str(self.directory))
        self.reindex()
        return version

    def reindex(self) -> None:
        self._helm("repo", "index", str(self.directory), "--url", self.url)

    def versions(self, chart: str) -> list[str]:
        try:
            index = yaml.safe_load((self.directory / "index.yaml").read_text()) or {}
        except OSError:
            return []
        return [str(e["version"]) for e in (index.get("entries") or {}).get(chart, [])]
