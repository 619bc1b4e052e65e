"""The shipped CI pipelines: actionlint (pinned in clusters/pins.py, built from the Go module proxy) passes on the
GitHub workflows and fails on broken copies of them; the GitHub and GitLab pipelines shard the suite, cache the
upstream build by a key derived from the pins, and merge every shard into one report and one gate."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from clusters.build import cache_key, require

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
GITLAB = ROOT / "ci" / "gitlab" / "chaos.yml"


def actionlint(where: Path) -> subprocess.CompletedProcess[str]:
    """actionlint over the workflows under `where` (shellcheck and pyflakes left out: not pinned here)."""
    binary = require("actionlint").binary("actionlint")
    return subprocess.run(
        [str(binary), "-no-color", "-oneline", "-shellcheck=", "-pyflakes="],
        cwd=where,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.process
def test_actionlint_passes_on_the_shipped_workflows() -> None:
    assert sorted(p.name for p in WORKFLOWS.glob("*.yml")) == ["chaos.yml", "nightly.yml", "release-gate.yml"]
    proc = actionlint(ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout == ""


BREAKAGES = [
    ("chaos.yml", "${{ matrix.shard }}/${{ strategy.job-total }}", "${{ matrix.shrad }}/${{ strategy.job-total }}",
     'property "shrad" is not defined'),
    ("nightly.yml", "      profile: nightly\n", "", 'input "profile" is required'),
    ("release-gate.yml", "    tags:\n", "    tag:\n", 'unexpected key "tag"'),
    ("chaos.yml", "runs-on: ubuntu-24.04\n    timeout-minutes: 30", "runs-on: ubuntu-24.04\n    timeout-minutes: half",
     "expecting a single ${{...}} expression or float number literal"),
]  # fmt: skip


@pytest.mark.process
@pytest.mark.parametrize(("name", "old", "new", "complaint"), BREAKAGES)
def test_actionlint_fails_on_a_broken_copy(tmp_path: Path, name: str, old: str, new: str, complaint: str) -> None:
    copy = tmp_path / ".github" / "workflows"
    shutil.copytree(WORKFLOWS, copy)
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)  # actionlint looks for the repository
    text = (copy / name).read_text()
    assert old in text, f"the breakage no longer applies to {name}"
    (copy / name).write_text(text.replace(old, new, 1))
    proc = actionlint(tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f".github/workflows/{name}:" in proc.stdout and complaint in proc.stdout, proc.stdout


def steps_run(job: dict) -> str:
    return "\n".join(str(step.get("run", "")) for step in job["steps"])


def test_github_shards_cache_by_the_pins_and_gate_every_shard_at_once() -> None:
    chaos = yaml.safe_load((WORKFLOWS / "chaos.yml").read_text())
    jobs = chaos["jobs"]
    assert "resilience build --cache-key --for chaos" in steps_run(jobs["upstream"])
    shard = steps_run(jobs["shard"])
    for flag in ('--shard "$SHARD"', '--run-id "$RUN_ID"', "RESILIENCE_EARLIER_RUNS", '--profile "$PROFILE"'):
        assert flag in shard
    assert jobs["shard"]["strategy"]["fail-fast"] is False
    gate = steps_run(jobs["gate"])
    assert "resilience gate --summary shards/*/summary.json" in gate and '--profile "$PROFILE"' in gate
    assert "--results shards/*/allure-results --summary shards/*/summary.json" in gate
    assert jobs["gate"]["if"] == "${{ !cancelled() }}"  # a failed shard still reaches the gate, which fails


def test_gitlab_shards_like_github_and_keys_its_cache_on_the_pins() -> None:
    pipeline = yaml.safe_load(GITLAB.read_text())
    shard = pipeline["chaos-shard"]
    script = "\n".join(shard["script"])
    assert isinstance(shard["parallel"], int) and shard["parallel"] > 1
    assert '--shard "$CI_NODE_INDEX/$CI_NODE_TOTAL"' in script and '--run-id "$CI_PIPELINE_ID"' in script
    assert "clusters/pins.py" in pipeline[".upstream-cache"]["key"]["files"]
    gate = "\n".join(pipeline["chaos-gate"]["script"])
    assert "resilience gate --summary out/shard-*/summary.json" in gate and '--profile "$CHAOS_PROFILE"' in gate
    profiles = {rule["variables"]["CHAOS_PROFILE"] for rule in pipeline[".chaos-when"]["rules"]}
    assert profiles == {"nightly", "release"}


def test_the_pipelines_name_profiles_the_slo_file_defines() -> None:
    defined = set(yaml.safe_load((ROOT / "scenarios" / "slo.yaml").read_text())["profiles"])
    used = set(re.findall(r"profile: (\w+)", (WORKFLOWS / "nightly.yml").read_text()))
    used |= set(re.findall(r"profile: (\w+)", (WORKFLOWS / "release-gate.yml").read_text()))
    assert used == {"nightly", "release"} <= defined


def test_the_cache_key_changes_exactly_with_a_pin(monkeypatch: pytest.MonkeyPatch) -> None:
    from clusters import build, pins

    chaos, test = cache_key("chaos"), cache_key("test")
    assert chaos == cache_key("chaos") and chaos != test  # actionlint and promtool are the tests' only
    bumped = tuple(
        pins.GoComponent(**{**c.__dict__, "version": "v9.9.9"}) if c.name == "etcd" else c for c in pins.COMPONENTS
    )
    monkeypatch.setattr(build, "components_for", lambda purpose: tuple(c for c in bumped if c.name != "actionlint"))
    assert cache_key("chaos") != chaos
