"""Several Allure results directories (the shards of one run) as one, for one report with one summary page.

Results, containers and attachments have unique names, so the shards' files go side by side; what each shard's
session wrote about the whole run is written once instead: one summary page (TTR per fault x recovery, its
chart and metrics) from the merged summaries, one environment.properties (values that differ between shards
are listed together), one categories.json.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from foundation.errors import UserError
from reports import allure_files, summary
from reports.matrix import build_cells

# Written once for the merged run, not copied from any shard.
PER_SESSION = ("environment.properties", "categories.json")


def _times(results: Path) -> list[tuple[int, int]]:
    out = []
    for path in results.glob("*-result.json"):
        try:
            data = json.loads(path.read_text())
            out.append((int(data["start"]), int(data["stop"])))
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return out


def merge(sources: Sequence[Path], entries: Sequence[Mapping[str, Any]] | None, into: Path) -> Path:
    """Copy the sources into `into` (an empty directory) without their summary pages; write one page for
    `entries` (None: no page, as a single results directory without summaries would have)."""
    for source in sources:
        if not source.is_dir() or not any(source.glob("*-result.json")):
            raise UserError(
                f"--results {source}: no Allure results in it (no *-result.json); pass each shard's results directory"
            )
    into.mkdir(parents=True, exist_ok=True)
    environment: dict[str, list[str]] = {}
    times: list[tuple[int, int]] = []
    for source in sources:
        skip = allure_files.summary_page_files(source) if entries is not None else set()
        for path in sorted(source.iterdir()):
            if path.is_file() and path.name not in skip and path.name not in PER_SESSION:
                target = into / path.name
                if not target.exists():  # a shard given twice adds nothing (the gate refuses it)
                    shutil.copyfile(path, target)
        for key, value in allure_files.read_environment(source).items():
            values = environment.setdefault(key, [])
            if value not in values:
                values.append(value)
        times += [t for t in _times(source)]
    allure_files.write_environment(into, {k: " | ".join(v) for k, v in environment.items()})
    allure_files.write_categories(into)
    if entries:
        cells = build_cells(entries, baselines=summary.recorded_baselines(entries))
        now = int(time.time() * 1000)
        start = min((s for s, _ in times), default=now)
        stop = max((e for _, e in times), default=now)
        allure_files.write_summary(into, cells, start, stop)
    return into
