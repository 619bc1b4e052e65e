"""Every upstream component the test suite or the chaos suite uses is built by the README's two commands.

A component built only "on demand" or by hand is a missing install step that a warm cache hides: this reads the
components the code asks for (`require("name")`) and the commands `make test` / `make chaos` run.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from clusters.pins import COMPONENTS, components_for

ROOT = Path(__file__).resolve().parents[2]
# Where the test session and the chaos suite run code from (benchmarks build what they need themselves).
USED_FROM = (
    "tests",
    "scenarios",
    "clusters",
    "injectors",
    "assertions",
    "reports",
    "recovery",
    "validation",
    "staging",
)
REQUIRE = re.compile(r"""\brequire\(\s*["']([a-z0-9-]+)["']""")


def required_components(top: str) -> set[str]:
    names: set[str] = set()
    for path in (ROOT / top).rglob("*.py"):
        if path == Path(__file__).resolve():
            continue
        names |= set(REQUIRE.findall(path.read_text()))
    return names


def make_commands(target: str) -> str:
    """What `make TARGET` would run (dry run, every prerequisite remade)."""
    proc = subprocess.run(["make", "-n", "-B", target], cwd=ROOT, capture_output=True, text=True, check=True)
    return proc.stdout


def test_the_scan_finds_what_the_code_requires() -> None:
    """The guard below can fail: the scan sees the promtool tests and the local provider's binaries."""
    used = set().union(*(required_components(top) for top in USED_FROM))
    assert {"prometheus", "helm"} <= used
    assert used <= {c.name for c in COMPONENTS}


@pytest.mark.process
@pytest.mark.parametrize(
    ("target", "purpose", "tops"), [("test", "test", USED_FROM), ("chaos", "chaos", USED_FROM[1:])]
)
def test_the_readme_commands_build_every_component_their_code_requires(
    target: str, purpose: str, tops: tuple[str, ...]
) -> None:
    readme_head = (ROOT / "README.md").read_text().splitlines()[:3]
    assert any(line.strip().startswith(f"make {target} ") for line in readme_head)
    assert f"resilience build --for {purpose}" in make_commands(target)
    built = {c.name for c in components_for(purpose)}
    used = set().union(*(required_components(top) for top in tops))
    assert used <= built, f"`make {target}` does not build {sorted(used - built)}: add the purpose in clusters/pins.py"


def test_monitoring_is_built_by_make_test_and_make_chaos() -> None:
    """`monitoring` tests and the nightly profile run what monitoring.stack.local requires by name."""
    from monitoring.stack.local import BINARIES

    for purpose in ("test", "chaos"):
        built = {c.name for c in components_for(purpose)}
        assert set(BINARIES.values()) <= built, f"--for {purpose} does not build {set(BINARIES.values()) - built}"
