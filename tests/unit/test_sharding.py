"""Shards of the chaos matrix, black-boxed with pytester and --collect-only: `--shard I/N` for every I of several N
selects each cell in exactly one shard, balanced by count or by earlier runs' durations; bad values are usage
errors naming the option before any cluster is touched."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from reports_support import entry, recovered

from scenarios.sharding import Cell, digest, plan

pytest_plugins = ("pytester",)

FAULT_NAMES = ("selector-change", "source-outage", "helm-upgrade-broken", "dependency-cycle", "unhealthy-rollout")
ENV = ("RESILIENCE_SHARD", "RESILIENCE_EARLIER_RUNS", "RESILIENCE_RUN_ID", "RESILIENCE_PROFILE", "RESILIENCE_REPEAT")
SUITE = f"""
import pytest


@pytest.mark.parametrize("fault_name", {list(FAULT_NAMES)!r})
def test_fault(fault_name, run_fault):
    run_fault(fault_name)


def test_not_a_cell():
    pass
"""
# Five faults x three recoveries x two repeats.
MATRIX = ("--recovery", "none,flux-native,operator", "--repeat", "2")


@pytest.fixture
def suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.Pytester:
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RESILIENCE_STATE", str(tmp_path / "state"))
    monkeypatch.setenv("RESILIENCE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.makeconftest('pytest_plugins = ["clusters.pytest_plugin", "scenarios.plugin"]\n')
    pytester.makepyfile(test_chaos=SUITE)
    return pytester


def collected(pytester: pytest.Pytester, *args: str) -> list[str]:
    result = pytester.runpytest("--collect-only", "-q", "-p", "no:cacheprovider", *MATRIX, *args)
    assert result.ret == pytest.ExitCode.OK, result.outlines + result.errlines
    return [line.split("::", 1)[1] for line in result.outlines if line.startswith("test_chaos.py::")]


def cells_only(ids: list[str]) -> list[str]:
    return [i for i in ids if i != "test_not_a_cell"]


@pytest.mark.parametrize("count", [1, 2, 3, 4, 7])
def test_every_cell_is_in_exactly_one_shard(suite: pytest.Pytester, count: int) -> None:
    everything = cells_only(collected(suite))
    assert len(everything) == 5 * 3 * 2
    shards = [cells_only(collected(suite, "--shard", f"{i}/{count}")) for i in range(1, count + 1)]
    together = Counter(test for shard in shards for test in shard)
    assert set(together) == set(everything)
    assert set(together.values()) == {1}, [t for t, n in together.items() if n > 1]
    sizes = [len(shard) for shard in shards]
    assert max(sizes) - min(sizes) <= 1, sizes  # no durations known: balanced by count


def test_a_test_that_is_no_cell_runs_in_every_shard(suite: pytest.Pytester) -> None:
    for i in (1, 2):
        assert "test_not_a_cell" in collected(suite, "--shard", f"{i}/2")


def test_shards_follow_the_selection_and_the_environment(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    selected = cells_only(collected(suite, "-k", "selector or outage"))
    monkeypatch.setenv("RESILIENCE_SHARD", "2/2")
    second = cells_only(collected(suite, "-k", "selector or outage"))
    first = cells_only(collected(suite, "-k", "selector or outage", "--shard", "1/2"))  # the CLI wins
    assert sorted(first + second) == sorted(selected) and not set(first) & set(second)


def ran(fault: str, recovery: str, **recorded: Any) -> dict[str, Any]:
    """A summary entry of an earlier run, complete as the strict reader wants it."""
    return {**entry(fault, recovery, recovered(10.0)), **recorded}


def test_earlier_durations_balance_the_shards(suite: pytest.Pytester, tmp_path: Path) -> None:
    """One fault takes ten times as long as the others under none and operator: its four long cells are spread
    over the shards, and the shards' total time differs by less than the longest cell."""
    seconds = {name: 600.0 if name == "helm-upgrade-broken" else 60.0 for name in FAULT_NAMES}
    earlier = [ran(f, r, run_seconds=s) for f, s in seconds.items() for r in ("none", "operator")]
    path = tmp_path / "earlier.json"
    path.write_text(json.dumps(earlier))
    shards = [cells_only(collected(suite, "--shard", f"{i}/3", f"--earlier-runs={path}")) for i in (1, 2, 3)]
    assert sorted(t for s in shards for t in s) == sorted(cells_only(collected(suite)))

    def long(test: str) -> bool:
        return "helm-upgrade-broken" in test and "flux-native" not in test

    totals = [sum(600 if long(t) else 60 for t in shard) for shard in shards]
    assert max(totals) - min(totals) < 600, totals
    assert sorted(sum(long(t) for t in shard) for shard in shards) == [1, 1, 2]
    # flux-native has no earlier duration: it weighs the median of the known ones, and still runs once.
    assert sum("flux-native" in t for s in shards for t in s) == 10


def test_earlier_durations_put_the_longest_cells_first(suite: pytest.Pytester, tmp_path: Path) -> None:
    """xdist hands tests out in collection order: the long cells start first, not last on one worker."""
    seconds = {"helm-upgrade-broken": 600.0, "dependency-cycle": 300.0, "selector-change": 10.0}
    earlier = [ran(f, "none", run_seconds=s) for f, s in seconds.items()]
    path = tmp_path / "earlier.json"
    path.write_text(json.dumps(earlier))
    plain = collected(suite, "--recovery", "none")
    ordered = collected(suite, "--recovery", "none", f"--earlier-runs={path}")
    assert sorted(ordered) == sorted(plain) and ordered != plain
    faults = [t.split("-", 2)[2].rstrip("]") for t in cells_only(ordered)]
    # the three known, then the two unknown (the median, 300 s) after dependency-cycle in collection order
    assert faults[:2] == ["helm-upgrade-broken"] * 2, faults
    assert faults[-2:] == ["selector-change"] * 2, faults
    assert ordered[-1] == "test_not_a_cell"
    assert plain[0] == "test_fault[none-r1-selector-change]"  # without earlier runs: collection order


@pytest.mark.parametrize(
    ("value", "problem"),
    [("0/3", "0/3"), ("4/3", "4/3"), ("x", "x"), ("3", "3"), ("1/0", "1/0"), ("-1/3", "-1/3"), ("1/x", "1/x")],
)
def test_bad_shards_are_usage_errors_naming_the_option(
    suite: pytest.Pytester, tmp_path: Path, value: str, problem: str
) -> None:
    result = suite.runpytest("--collect-only", "-q", "-p", "no:cacheprovider", f"--shard={value}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.errlines if line.startswith("ERROR: ")]
    assert errors == [
        f"ERROR: Invalid shard {problem!r} from --shard: use I/N with whole numbers 1 <= I <= N, e.g. --shard 2/3"
    ]
    assert not (tmp_path / "state").exists() and not (tmp_path / "cache").exists()


def test_a_bad_shard_from_the_environment_names_the_variable(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RESILIENCE_SHARD", "5/4")
    result = suite.runpytest("--collect-only", "-q", "-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert any(line.startswith("ERROR: Invalid shard '5/4' from RESILIENCE_SHARD: ") for line in result.errlines)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "no such summary file"),
        ("{not json", "not valid JSON"),
        ('{"fault": "x"}', "expected a JSON list of run entries"),
        ('[{"fault": "x", "recovery": "none"}]', "[0]: missing key"),
        ('[{"fault": "x", "recovery": "none", "ttr_seconds": NaN}]', "NaN is not a finite number"),
        ('[{"fault": "x", "recovery": "none", "run_seconds": 1e999}]', "1e999 is not a finite number"),
    ],
)
def test_bad_earlier_runs_are_usage_errors(
    suite: pytest.Pytester, tmp_path: Path, content: str | None, problem: str
) -> None:
    path = tmp_path / "earlier.json"
    if content is not None:
        path.write_text(content)
    result = suite.runpytest("--collect-only", "-q", "-p", "no:cacheprovider", f"--earlier-runs={path}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.errlines if line.startswith("ERROR: ")]
    assert len(errors) == 1 and errors[0].startswith(f"ERROR: Invalid earlier runs '{path}' from --earlier-runs: ")
    assert problem in errors[0]


cells = st.builds(
    Cell,
    st.sampled_from(FAULT_NAMES),
    st.sampled_from(("none", "flux-native", "operator")),
    st.integers(min_value=1, max_value=5),
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(cells, max_size=60),
    st.integers(min_value=1, max_value=9),
    st.dictionaries(st.tuples(st.sampled_from(FAULT_NAMES), st.sampled_from(("none", "operator"))), st.floats(1, 900)),
)
def test_plan_puts_each_cell_in_one_shard_of_n(cells: list[Cell], count: int, durations: dict) -> None:
    shards = plan(cells, count, durations)
    assert set(shards) == set(cells)
    assert all(1 <= s <= count for s in shards.values())
    # The same inputs in any order give the same plan (every shard plans on its own runner).
    assert plan(list(reversed(cells)), count, dict(reversed(list(durations.items())))) == shards
    assert digest(shards, count, durations) == digest(plan(cells, count, durations), count, durations)


def test_the_digest_changes_with_the_durations() -> None:
    cells = [Cell("selector-change", "operator", 1), Cell("source-outage", "operator", 1)]
    assert digest(plan(cells, 2), 2, {}) != digest(plan(cells, 2), 2, {("source-outage", "operator"): 90.0})
