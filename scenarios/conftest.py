"""The chaos suite: the cluster fixture, the scenario plugin and the reports plugin (when installed)."""

from __future__ import annotations

import importlib.util

pytest_plugins = ["clusters.pytest_plugin", "scenarios.plugin"]
if importlib.util.find_spec("reports.plugin") is not None:
    pytest_plugins.append("reports.plugin")
