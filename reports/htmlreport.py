"""`resilience report`: the HTML report from the Allure results, with the pinned Allure 3 CLI, keeping history.

The Allure CLI is the npm package `allure`, pinned by reports/package.json and package-lock.json and installed with
`npm ci` into allure-cli/ of the build cache (clusters.paths.cache_root; or $RESILIENCE_ALLURE_HOME) the first time
it is needed, never among the code. History is Allure 3's history file (out/history/history.jsonl): every generation
appends one point, and the report's trend charts, per-test history and the Metrics page (TTR per fault x recovery)
read it. A copy goes into the report (html/history/), and when the history directory is gone but the previous report
is still there, its copy is restored first, as one does with Allure 2's history folder. Every report holds a marker
file, and --out replaces only a directory that holds it (or an empty one): never a directory this command did not
write.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from clusters.paths import cache_root
from foundation.cliargs import check_output_dir
from foundation.errors import HarnessError, UserError
from reports.categories import allure3_categories

PACKAGE_DIR = Path(__file__).parent  # package.json and package-lock.json: the pin, data of the package
ALLURE_CLI_DIR = "allure-cli"
HISTORY_FILE = "history.jsonl"
MARKER = ".resilience-report"  # in every report we write: what --out may replace
GENERATE_TIMEOUT = 600


@dataclass(frozen=True)
class ReportOptions:
    results: Path
    out: Path
    history: Path
    allure: str | None = None  # an Allure 3 executable; None: the pinned one, installed with npm if absent
    name: str = "GitOps resilience"
    single_file: bool = False


def pinned_version() -> str:
    data = json.loads((PACKAGE_DIR / "package.json").read_text())
    return str(data["dependencies"]["allure"])


def allure_home() -> Path:
    """Where node_modules with the pinned Allure CLI lives: $RESILIENCE_ALLURE_HOME, else allure-cli/ beside the
    upstream build in the per-user cache."""
    explicit = os.environ.get("RESILIENCE_ALLURE_HOME")
    return Path(explicit).expanduser() if explicit else cache_root() / ALLURE_CLI_DIR


def installed_version(home: Path) -> str | None:
    try:
        return str(json.loads((home / "node_modules" / "allure" / "package.json").read_text())["version"])
    except (OSError, ValueError, KeyError):
        return None


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def ensure_allure(explicit: str | None, log: Callable[[str], None]) -> list[str]:
    """The command that runs Allure: the given executable, or the pinned CLI (npm ci when absent or stale)."""
    if explicit:
        found = shutil.which(explicit)
        if found is None:
            raise UserError(f"--allure {explicit}: not an executable file; pass an Allure 3 CLI or leave it out")
        return [found]
    home = allure_home()
    binary = home / "node_modules" / ".bin" / "allure"
    version = pinned_version()
    if binary.exists() and installed_version(home) == version:
        return [str(binary)]
    npm = shutil.which("npm")
    if npm is None:
        raise UserError(
            "npm not found on PATH: the report needs Node.js >= 20 with npm to install the pinned Allure CLI "
            "(or pass --allure BIN)"
        )
    if home.resolve() != PACKAGE_DIR.resolve():
        home.mkdir(parents=True, exist_ok=True)
        for name in ("package.json", "package-lock.json"):
            shutil.copyfile(PACKAGE_DIR / name, home / name)
    log(f"report: installing allure {version} with npm into {home / 'node_modules'}")
    try:
        proc = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=home,
            capture_output=True,
            text=True,
            timeout=GENERATE_TIMEOUT,
        )
    except subprocess.TimeoutExpired:
        raise UserError(f"npm ci in {home} took over {GENERATE_TIMEOUT}s; check access to the npm registry") from None
    if proc.returncode != 0:
        raise UserError(
            f"npm ci in {home} failed (exit {proc.returncode}): {_last_line(proc.stderr or proc.stdout)}; "
            "check access to the npm registry"
        )
    if not binary.exists() or installed_version(home) != version:
        raise HarnessError(f"npm ci in {home} did not install allure {version} ({binary} missing)")
    return [str(binary)]


def check_paths(options: ReportOptions) -> None:
    """Bad paths are UserErrors before anything is installed, generated or removed."""
    results, out = options.results, options.out
    if not results.is_dir():
        raise UserError(
            f"{results}: no Allure results directory; run the chaos suite with --alluredir {results} first "
            "(or pass --results DIR)"
        )
    if not any(results.glob("*-result.json")):
        raise UserError(f"{results}: no Allure results in it (no *-result.json); run the chaos suite with --alluredir")
    res, dest = results.resolve(), out.resolve()
    if dest == res or res in dest.parents or dest in res.parents:
        raise UserError(f"--out {out}: must be outside the results directory {results} (and not contain it)")
    history = options.history.resolve()
    if history == dest or dest in history.parents:
        raise UserError(f"--history {options.history}: must be outside --out {out}, which every report replaces")
    if out.is_symlink():
        raise UserError(f"--out {out}: is a symbolic link, which a report cannot replace; pass a directory")
    check_output_dir(out, "--out", replaced=True)
    check_output_dir(options.history, "--history")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).is_file():
        raise UserError(
            f"--out {out}: not empty and not written by `resilience report` (no {MARKER}); refusing to replace "
            f"it: pass a new or empty directory, or remove {out} yourself"
        )


def allure_config(options: ReportOptions, output: Path) -> dict[str, Any]:
    return {
        "name": options.name,
        "output": str(output),
        "historyPath": str((options.history / HISTORY_FILE).resolve()),
        "categories": allure3_categories(),
        "plugins": {
            "awesome": {
                "options": {
                    "reportName": options.name,
                    "groupBy": ["parentSuite", "suite"],
                    "singleFile": options.single_file,
                }
            }
        },
    }


def build(options: ReportOptions, log: Callable[[str], None]) -> Path:
    """Generate the report into options.out (replacing the previous one only on success); returns index.html."""
    check_paths(options)
    command = ensure_allure(options.allure, log)
    options.history.mkdir(parents=True, exist_ok=True)
    history = options.history / HISTORY_FILE
    kept = options.out / "history" / HISTORY_FILE
    if not history.exists() and kept.exists():
        shutil.copyfile(kept, history)
        log(f"report: history restored from the previous report ({kept})")
    options.out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{options.out.name}.", dir=options.out.parent))
    try:
        config = staging / "allurerc.json"
        output = staging / "report"
        config.write_text(json.dumps(allure_config(options, output.resolve()), indent=2))
        argv = [*command, "generate", str(options.results.resolve()), "-o", str(output.resolve()), "--config"]
        try:
            proc = subprocess.run(
                [*argv, str(config.resolve())],
                capture_output=True,
                text=True,
                timeout=GENERATE_TIMEOUT,
                env={**os.environ, "NO_COLOR": "1"},
            )
        except subprocess.TimeoutExpired:
            raise HarnessError(f"allure generate took over {GENERATE_TIMEOUT}s") from None
        except OSError as e:
            raise UserError(f"cannot run {command[0]}: {e.strerror}") from e
        if proc.returncode != 0:
            raise HarnessError(
                f"allure generate failed (exit {proc.returncode}): {_last_line(proc.stderr + proc.stdout)}"
            )
        if not (output / "index.html").exists():
            raise HarnessError(f"allure generate wrote no index.html ({_last_line(proc.stderr + proc.stdout)})")
        if history.exists():
            (output / "history").mkdir(exist_ok=True)
            shutil.copyfile(history, output / "history" / HISTORY_FILE)
        (output / MARKER).write_text("Written by `resilience report`, which replaces this directory every time.\n")
        if options.out.exists():
            shutil.rmtree(options.out)
        output.replace(options.out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return options.out / "index.html"


def history_points(history_dir: Path) -> int:
    """How many reports the history holds (one line per generation)."""
    try:
        return sum(1 for line in (history_dir / HISTORY_FILE).read_text().splitlines() if line.strip())
    except OSError:
        return 0
