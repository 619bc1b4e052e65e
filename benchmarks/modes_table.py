"""The recovery modes side by side over the whole catalog: the chaos suite's own runs, then `resilience compare`.

    .venv/bin/python benchmarks/modes_table.py [--modes none,flux-native,flux-tuned,operator] [--repeat 3]
        [--workers 2] [--wait 120] [--markdown docs/modes-table.md] [-- PYTEST_ARGS...]

Runs `pytest scenarios` (one session, every mode, `--repeat` repeats, `--workers` xdist workers with a local
cluster each) under the shipped SLO file with every give-up time capped at `--wait` seconds from the injection
(a fault that a mode never recovers costs that long, `--wait-full`: no run stops once its verdict is decided,
so a TTR beyond its budget is measured; the table reads `never` for a fault not recovered in the wait), and prints the
comparison (TTR median and max, detection, serving, next commit, data kept, and the operator against the best Flux
mode per fault). The summary, its manifest and the Markdown table stay in `--out`.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from assertions.schema import MAX_REPEAT, MAX_SECONDS
from foundation import cliargs
from foundation.errors import UserError

ROOT = Path(__file__).resolve().parent.parent
SHIPPED_SLO = ROOT / "scenarios" / "slo.yaml"


def capped(slo: dict[str, Any], wait: float) -> dict[str, Any]:
    """The SLO file with every `wait` no longer than `wait` (the budgets themselves unchanged)."""

    def cap(section: Any) -> None:
        if isinstance(section, dict):
            if isinstance(section.get("wait"), int | float):
                section["wait"] = min(section["wait"], wait)
            for value in section.values():
                cap(value)

    for key in ("defaults", "scenarios"):
        cap(slo.get(key))
    return slo


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--modes", default="none,flux-native,flux-tuned,operator")
    parser.add_argument("--repeat", default="3")
    parser.add_argument("--workers", default="2")
    parser.add_argument("--wait", default="120", help="give-up time cap, seconds from injection")
    parser.add_argument("--out", type=Path, default=ROOT / "out" / "modes")
    parser.add_argument("--markdown", type=Path, help="also write the table here (default: --out/modes-table.md)")
    args, pytest_args = parser.parse_known_args()
    try:  # one line and exit 2 for a bad number, as every command of the project
        args.repeat = cliargs.count("--repeat", args.repeat, 1, MAX_REPEAT)
        args.workers = cliargs.count("--workers", args.workers, 1, 64)
        args.wait = cliargs.seconds("--wait", args.wait, 0.0, MAX_SECONDS, low_ok=False)
    except UserError as e:
        print(f"modes_table: {e}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    slo = args.out / "slo-capped.yaml"
    slo.write_text(yaml.safe_dump(capped(yaml.safe_load(SHIPPED_SLO.read_text()), args.wait), sort_keys=False))
    summary = args.out / "summary.json"
    command = [
        sys.executable, "-m", "pytest", str(ROOT / "scenarios"), "-p", "no:cacheprovider", "-q",
        "-n", str(args.workers), "--recovery", args.modes, "--repeat", str(args.repeat), "--slo", str(slo),
        "--wait-full", "--resilience-summary", str(summary), "--run-dir", str(args.out / "runs"),
        "--alluredir", str(args.out / "allure-results"),
        *[a for a in pytest_args if a != "--"],
    ]  # fmt: skip
    started = time.monotonic()
    code = subprocess.run(command, cwd=ROOT, check=False).returncode
    wall = time.monotonic() - started
    print(f"\nchaos suite: exit {code} in {wall:.0f} s ({args.modes}, {args.repeat} repeats, {args.workers} workers)")
    if not summary.exists():
        return code or 1
    markdown = args.markdown or args.out / "modes-table.md"
    compare = [sys.executable, "-m", "resilience.cli", "compare", str(summary), "--modes", args.modes]
    return subprocess.run([*compare, "--markdown", str(markdown)], cwd=ROOT, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
