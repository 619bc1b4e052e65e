"""The system under test installs and runs without the harness: an operator image gets none of its packages."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HARNESS_ONLY = ("pytest", "pytest_kind", "allure", "allure_commons", "matplotlib", "locust", "cryptography")
# Run a command with the harness's third-party packages unimportable, as in the Containerfile's image.
BLOCKED = f"""
import sys
from importlib.abc import MetaPathFinder

class Absent(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in {HARNESS_ONLY!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None

sys.meta_path.insert(0, Absent())
from resilience.cli import main
sys.exit(main(sys.argv[1:]))
"""


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", BLOCKED, *args], capture_output=True, text=True, cwd=ROOT)


@pytest.mark.process
def test_recover_validate_and_explain_run_without_the_harness() -> None:
    for command in ("recover", "validate", "explain", "stage"):
        proc = run(command, "--help")
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.startswith(f"usage: resilience {command}")
    message = "Helm upgrade failed for release ns/app with chart app@1.2.3: boom"
    proc = run("explain", "--kind", "HelmRelease", "--message", message)
    assert proc.returncode == 0 and '"verdict": "acts-later"' in proc.stdout, proc.stderr


@pytest.mark.process
def test_commands_whose_dependencies_are_absent_are_left_out_not_a_traceback() -> None:
    proc = run("--help")
    assert proc.returncode == 0, proc.stderr
    commands = {line.split()[0] for line in proc.stdout.splitlines() if line.startswith("    ") and line.split()}
    assert {"recover", "explain", "validate", "stage"} <= commands


def test_the_package_requires_none_of_the_harness() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    required = " ".join(project["dependencies"]).lower().replace("-", "_")
    assert not [name for name in HARNESS_ONLY if name in required]
    assert {"pytest", "allure-pytest", "matplotlib"} <= {
        d.split(">")[0] for d in project["optional-dependencies"]["harness"]
    }
