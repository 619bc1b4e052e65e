"""The shipped CI pipelines: actionlint (pinned in clusters/pins.py, built from the Go module proxy) passes on the
GitHub workflows and fails on broken copies of them; the GitHub and GitLab pipelines shard the suite, cache the
upstream build by a key derived from the pins, merge every shard into one report and one gate, and keep the baseline
store between runs: restored before the shards, the cells each shard measured merged over it, saved for the next."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from clusters.build import cache_key, require

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"
GITLAB = ROOT / "ci" / "gitlab" / "chaos.yml"
WEEKLY = "17 1 * * 0"  # nightly.yml's schedule with fresh baselines


class GitLabLoader(yaml.SafeLoader):
    """GitLab's YAML: `!reference [job, key]` read as its list."""


def _reference(loader: yaml.SafeLoader, node: yaml.Node) -> list[Any]:
    assert isinstance(node, yaml.SequenceNode)
    return loader.construct_sequence(node)


GitLabLoader.add_constructor("!reference", _reference)


def workflow(name: str) -> dict[Any, Any]:
    return yaml.safe_load((WORKFLOWS / name).read_text())


def gitlab() -> dict[str, Any]:
    return yaml.load(GITLAB.read_text(), Loader=GitLabLoader)


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
    pipeline = gitlab()
    script = "\n".join(pipeline[".chaos-shard"]["script"])
    assert pipeline["chaos-shard"]["parallel"] == 1 and pipeline["chaos-shard-fresh"]["parallel"] > 1
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


# -- the baseline store kept between runs -----------------------------------------------------------------------


def step_index(job: dict[str, Any], found: str) -> int:
    """The one step of `job` whose text (uses, with, run, if) holds `found`."""
    hits = [i for i, step in enumerate(job["steps"]) if found in str(step)]
    assert len(hits) == 1, f"{found!r} in steps {hits}"
    return hits[0]


def test_github_restores_passes_uploads_and_saves_the_baseline_store() -> None:
    chaos = workflow("chaos.yml")
    fresh = chaos[True]["workflow_call"]["inputs"]["fresh_baselines"]  # YAML 1.1 reads the key `on` as True
    assert fresh["type"] == "boolean" and fresh["default"] is False
    store = chaos["env"]["BASELINE_STORE"]
    shard, gate = chaos["jobs"]["shard"], chaos["jobs"]["gate"]
    restore = {"path": "${{ env.BASELINE_STORE }}", "key": "chaos-baselines-${{ github.run_id }}",
               "restore-keys": "chaos-baselines-"}  # fmt: skip
    for job in (shard, gate):
        step = job["steps"][step_index(job, "restore-keys': 'chaos-baselines-")]
        assert step["uses"] == "actions/cache/restore@v4" and step["with"] == restore
    run = shard["steps"][step_index(shard, "pytest scenarios")]
    assert run["env"]["FRESH"] == "${{ inputs.fresh_baselines }}"
    assert '--baseline-store "$BASELINE_STORE" "${fresh[@]}"' in run["run"]
    assert 'if [ "$FRESH" = true ]; then fresh=(--fresh-baselines); fi' in run["run"]
    assert 'touch "$OUT.started"' in run["run"]
    collect, upload = step_index(shard, "$OUT/baselines"), step_index(shard, "upload-artifact")
    assert step_index(shard, "restore-keys': 'chaos-baselines-") < step_index(shard, "pytest scenarios") < collect
    assert collect < upload and shard["steps"][collect]["if"] == "always()"
    assert shard["steps"][upload]["with"]["path"] == "${{ env.OUT }}"  # the store parts go with the shard
    merge, save = step_index(gate, "shards/*/baselines"), step_index(gate, "chaos-baselines-${{ hashFiles")
    assert step_index(gate, "restore-keys': 'chaos-baselines-") < merge < save
    assert gate["steps"][merge]["if"] == "always()"  # a failing gate still keeps its valid baselines
    saved = gate["steps"][save]
    assert saved["uses"] == "actions/cache/save@v4" and saved["if"].startswith("always() && hashFiles(")
    assert saved["with"]["key"] == "chaos-baselines-${{ hashFiles(format('{0}/**', env.BASELINE_STORE)) }}"
    assert store == "baselines"


def test_nightly_reuses_baselines_on_one_runner_and_measures_them_fresh_weekly_on_three() -> None:
    nightly = workflow("nightly.yml")
    crons = [entry["cron"] for entry in nightly[True]["schedule"]]
    assert WEEKLY in crons and len(crons) == 2
    assert nightly[True]["workflow_dispatch"]["inputs"]["fresh_baselines"]["type"] == "boolean"
    reused, fresh = nightly["jobs"]["reused"], nightly["jobs"]["fresh"]
    assert reused["with"]["shards"] == "[1]" and reused["with"].get("fresh_baselines", False) is False
    assert reused["with"]["workers"] <= 2  # one cluster per CPU of a 2-core runner
    assert fresh["with"]["shards"] == "[1, 2, 3]" and fresh["with"]["fresh_baselines"] is True
    assert reused["if"] == f"github.event.schedule != '{WEEKLY}' && !inputs.fresh_baselines"
    assert fresh["if"] == f"github.event.schedule == '{WEEKLY}' || inputs.fresh_baselines"
    assert reused["with"]["profile"] == fresh["with"]["profile"] == "nightly"


def test_the_release_gate_measures_every_baseline_fresh() -> None:
    assert workflow("release-gate.yml")["jobs"]["chaos"]["with"]["fresh_baselines"] is True


def test_gitlab_keeps_the_baseline_store_per_branch_and_honours_fresh_baselines() -> None:
    pipeline = gitlab()
    store = pipeline[".baseline-store-cache"]
    assert store["key"] == "chaos-baselines-$CI_COMMIT_REF_SLUG" and store["paths"] == ["baselines/"]
    assert pipeline["variables"]["FRESH_BASELINES"] == "false"
    shard_cache = [c for c in pipeline[".chaos-shard"]["cache"] if c["key"] == store["key"]]
    gate_cache = [c for c in pipeline["chaos-gate"]["cache"] if c["key"] == store["key"]]
    assert [c["policy"] for c in shard_cache] == ["pull"]
    assert [(c["policy"], c["when"]) for c in gate_cache] == [("pull-push", "always")]
    script = "\n".join(pipeline[".chaos-shard"]["script"])
    assert 'if [ "$FRESH_BASELINES" = true ]; then FRESH=--fresh-baselines; else FRESH=; fi' in script
    assert '--baseline-store baselines ${FRESH:+"$FRESH"}' in script
    tag = next(rule for rule in pipeline[".chaos-when"]["rules"] if rule["if"] == "$CI_COMMIT_TAG")
    assert tag["variables"] == {"CHAOS_PROFILE": "release", "FRESH_BASELINES": "true"}
    assert pipeline["chaos-shard"]["rules"][0] == {
        "if": '$CI_COMMIT_TAG || $FRESH_BASELINES == "true"', "when": "never"
    }  # fmt: skip
    assert pipeline["chaos-shard-fresh"]["rules"][0] == {
        "if": '$CI_COMMIT_TAG == null && $FRESH_BASELINES != "true"', "when": "never"
    }  # fmt: skip
    for job in ("chaos-shard", "chaos-shard-fresh"):
        assert pipeline[job]["rules"][1] == [".chaos-when", "rules"]
    needs = {need["job"]: need for need in pipeline["chaos-gate"]["needs"]}
    assert set(needs) == {"chaos-shard", "chaos-shard-fresh"} and all(n["optional"] for n in needs.values())


def _cell(store: Path, name: str, text: str, mtime: float | None = None) -> None:
    path = store / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    if mtime is not None:
        os.utime(path, (mtime, mtime))


def _scripts(ci: str) -> tuple[list[str], str, str, str]:
    """The shell that collects a shard's store parts, the gate's merge, where the gate finds shard N's files, and
    the shell that runs them."""
    if ci == "github":
        jobs = workflow("chaos.yml")["jobs"]
        collect = jobs["shard"]["steps"][step_index(jobs["shard"], "$OUT/baselines")]["run"]
        merge = jobs["gate"]["steps"][step_index(jobs["gate"], "shards/*/baselines")]["run"]
        return ["bash", "-e", "-o", "pipefail", "-c"], collect, merge, "shards/chaos-shard-{n}"
    pipeline = gitlab()
    script = pipeline[".chaos-shard"]["script"]
    after = next(i for i, line in enumerate(script) if "pytest scenarios" in line) + 1
    merge = next(line for line in pipeline["chaos-gate"]["script"] if "out/shard-*/baselines" in line)
    return ["sh", "-e", "-c"], "status=0\n" + "\n".join(script[after:]), merge, "out/shard-{n}"


@pytest.mark.process
@pytest.mark.parametrize("ci", ["github", "gitlab"])
def test_the_gate_merges_only_what_each_shard_measured_over_the_store(tmp_path: Path, ci: str) -> None:
    shell, collect, merge, artifact = _scripts(ci)
    before, stamp = time.time() - 100, time.time() - 10
    restored = {"f/none/r1.json": "reused", "f/none/r2.json": "old", "g/none/r1.json": "other profile's"}
    measured = {1: {"f/none/r2.json": "new by shard 1"}, 2: {"h/flux-native/r3.json": "new by shard 2"}}
    gate = tmp_path / "gate"
    for n in (1, 2):
        runner = tmp_path / f"runner-{n}"
        for name, text in restored.items():
            _cell(runner / "baselines", name, text, before)
        out = runner / "out" / f"shard-{n}"
        out.mkdir(parents=True)
        (runner / "out" / f"shard-{n}.started").touch()
        os.utime(runner / "out" / f"shard-{n}.started", (stamp, stamp))
        for name, text in measured[n].items():
            _cell(runner / "baselines", name, text)
        env = {**os.environ, "OUT": f"out/shard-{n}", "BASELINE_STORE": "baselines", "GITHUB_WORKSPACE": str(runner)}
        subprocess.run([*shell, collect], cwd=runner, env=env, check=True, timeout=30)
        parts = sorted(str(p.relative_to(out / "baselines")) for p in (out / "baselines").rglob("*.json"))
        assert parts == sorted(measured[n])
        shutil.copytree(out, gate / artifact.format(n=n))
    for name, text in restored.items():
        _cell(gate / "baselines", name, text, before)
    env = {**os.environ, "BASELINE_STORE": "baselines"}
    subprocess.run([*shell, merge], cwd=gate, env=env, check=True, timeout=30)
    merged = {str(p.relative_to(gate / "baselines")): p.read_text() for p in (gate / "baselines").rglob("*.json")}
    assert merged == {**restored, **measured[1], **measured[2]}
