"""`resilience report`: bad input (one line, exit 2, nothing touched), the pinned-CLI install through npm, and the
generate wiring (config, history kept and restored, previous report replaced only on success) with stub tools;
plus one real generation when the pinned Allure CLI is already installed."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
from reports_support import make_suite, run_pytest

from reports import htmlreport
from reports.categories import allure3_categories
from resilience.cli import main

STUB_ALLURE = """#!{python}
import json, os, sys
args = sys.argv[1:]
with open(os.environ["STUB_LOG"], "a") as f:
    f.write(json.dumps(args) + "\\n")
if os.environ.get("STUB_EXIT"):
    print("Error: boom", file=sys.stderr)
    sys.exit(int(os.environ["STUB_EXIT"]))
out = args[args.index("-o") + 1]
config = json.load(open(args[args.index("--config") + 1]))
os.makedirs(out, exist_ok=True)
if not os.environ.get("STUB_NO_INDEX"):
    open(os.path.join(out, "index.html"), "w").write("<html>report</html>")
json.dump(config, open(os.path.join(out, "config-seen.json"), "w"))
with open(config["historyPath"], "a") as f:
    f.write(json.dumps({{"uuid": str(len(open(os.environ["STUB_LOG"]).readlines()))}}) + "\\n")
"""


def executable(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)
    return path


@pytest.fixture
def stub_allure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("STUB_LOG", str(tmp_path / "allure-calls.jsonl"))
    return executable(tmp_path / "bin" / "allure", STUB_ALLURE.format(python=sys.executable))


@pytest.fixture
def results(tmp_path: Path) -> Path:
    path = tmp_path / "out" / "allure-results"
    path.mkdir(parents=True)
    (path / "0000-result.json").write_text(json.dumps({"uuid": "0000", "name": "t", "status": "passed"}))
    return path


def report(capsys: pytest.CaptureFixture[str], tmp_path: Path, *args: str) -> tuple[int, str, str]:
    base = [
        "report",
        "--results",
        str(tmp_path / "out" / "allure-results"),
        "--out",
        str(tmp_path / "out" / "allure-report"),
        "--history",
        str(tmp_path / "out" / "history"),
    ]
    code = main([*base, *args])
    out, err = capsys.readouterr()
    return code, out, err


def assert_error(code: int, err: str, exit_code: int, *fragments: str) -> None:
    assert code == exit_code, err
    errors = [line for line in err.strip().splitlines() if line.startswith("resilience: error: ")]
    assert len(errors) == 1 and err.strip().splitlines()[-1] == errors[0], err
    for fragment in fragments:
        assert fragment in errors[0], err


# -- bad input --------------------------------------------------------------------------------------------------


def test_missing_results(capsys: pytest.CaptureFixture[str], tmp_path: Path, stub_allure: Path) -> None:
    code, _, err = report(capsys, tmp_path, "--allure", str(stub_allure))
    assert_error(code, err, 2, "allure-results: no Allure results directory", "--alluredir")
    assert not (tmp_path / "allure-calls.jsonl").exists()


def test_results_without_results(capsys: pytest.CaptureFixture[str], tmp_path: Path, stub_allure: Path) -> None:
    (tmp_path / "out" / "allure-results").mkdir(parents=True)
    (tmp_path / "out" / "allure-results" / "environment.properties").write_text("a=b\n")
    code, _, err = report(capsys, tmp_path, "--allure", str(stub_allure))
    assert_error(code, err, 2, "no Allure results in it (no *-result.json)")


def test_out_is_a_file(capsys: pytest.CaptureFixture[str], tmp_path: Path, results: Path, stub_allure: Path) -> None:
    (tmp_path / "out" / "allure-report").write_text("not a dir")
    code, _, err = report(capsys, tmp_path, "--allure", str(stub_allure))
    assert_error(code, err, 2, "allure-report: exists and is not a directory")


def test_out_holds_something_else(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, results: Path, stub_allure: Path
) -> None:
    precious = tmp_path / "out" / "allure-report" / "notes.txt"
    precious.parent.mkdir()
    precious.write_text("keep me")
    code, _, err = report(capsys, tmp_path, "--allure", str(stub_allure))
    assert_error(code, err, 2, "not written by `resilience report` (no .resilience-report); refusing to replace it")
    assert precious.read_text() == "keep me"


def test_out_holding_an_index_html_not_of_ours_is_kept(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, results: Path, stub_allure: Path
) -> None:
    """A site, a docs build, someone else's report: an index.html is no licence to delete the directory."""
    site = tmp_path / "out" / "allure-report"
    (site / "assets").mkdir(parents=True)
    (site / "index.html").write_text("<html>my site</html>")
    (site / "assets" / "app.js").write_text("precious()")
    code, _, err = report(capsys, tmp_path, "--allure", str(stub_allure))
    assert_error(code, err, 2, f"--out {site}: not empty and not written by `resilience report`", "remove")
    assert (site / "index.html").read_text() == "<html>my site</html>" and (site / "assets" / "app.js").exists()
    assert not (tmp_path / "allure-calls.jsonl").exists()


@pytest.mark.parametrize("flag", ["--out", "--history"])
def test_output_under_a_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, results: Path, stub_allure: Path, flag: str
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    code, _, err = report(capsys, tmp_path, "--allure", str(stub_allure), flag, str(blocker / "sub" / "dir"))
    assert_error(code, err, 2, f"{flag} {blocker / 'sub' / 'dir'}: {blocker} is not a directory")
    assert not (tmp_path / "out" / "allure-report").exists() and not (tmp_path / "out" / "history").exists()


def test_out_is_a_link(capsys: pytest.CaptureFixture[str], tmp_path: Path, results: Path, stub_allure: Path) -> None:
    target = tmp_path / "elsewhere"
    target.mkdir()
    (target / htmlreport.MARKER).write_text("")
    link = tmp_path / "out" / "allure-report"
    link.symlink_to(target)
    code, _, err = report(capsys, tmp_path, "--allure", str(stub_allure))
    assert_error(code, err, 2, f"--out {link}: is a symbolic link")
    assert link.is_symlink() and (target / htmlreport.MARKER).exists()


def test_history_inside_out(capsys: pytest.CaptureFixture[str], tmp_path: Path, results: Path) -> None:
    out = tmp_path / "out" / "allure-report"
    code, _, err = report(capsys, tmp_path, "--allure", "true", "--history", str(out / "history"))
    assert_error(code, err, 2, f"--history {out / 'history'}: must be outside --out {out}, which every report")


def test_empty_paths_are_refused(capsys: pytest.CaptureFixture[str], tmp_path: Path, results: Path) -> None:
    with pytest.raises(SystemExit) as info:
        report(capsys, tmp_path, "--out", "")
    assert info.value.code == 2
    assert "argument --out: empty path" in capsys.readouterr().err


def test_out_inside_results(capsys: pytest.CaptureFixture[str], tmp_path: Path, results: Path) -> None:
    code = main(["report", "--results", str(results), "--out", str(results / "html"), "--allure", "true"])
    _, err = capsys.readouterr()
    assert_error(code, err, 2, "must be outside the results directory")


def test_unknown_allure_executable(capsys: pytest.CaptureFixture[str], tmp_path: Path, results: Path) -> None:
    code, _, err = report(capsys, tmp_path, "--allure", str(tmp_path / "no-such-allure"))
    assert_error(code, err, 2, "no-such-allure: not an executable file")


def test_no_npm(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, results: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RESILIENCE_ALLURE_HOME", str(tmp_path / "allure-home"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    monkeypatch.delenv("RESILIENCE_ALLURE", raising=False)
    code, _, err = report(capsys, tmp_path)
    assert_error(code, err, 2, "npm not found on PATH", "--allure BIN")


@pytest.mark.process
def test_npm_ci_fails(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, results: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "allure-home"
    bindir = tmp_path / "npm-bin"
    executable(bindir / "npm", "#!/bin/sh\necho 'npm error code ECONNREFUSED' >&2\nexit 1\n")
    monkeypatch.setenv("RESILIENCE_ALLURE_HOME", str(home))
    monkeypatch.setenv("PATH", str(bindir))
    monkeypatch.delenv("RESILIENCE_ALLURE", raising=False)
    code, _, err = report(capsys, tmp_path)
    assert_error(code, err, 2, f"npm ci in {home} failed (exit 1): npm error code ECONNREFUSED", "npm registry")
    # the pinned manifest and lock were copied for npm ci
    assert json.loads((home / "package.json").read_text())["dependencies"]["allure"] == htmlreport.pinned_version()
    assert (home / "package-lock.json").exists()


# -- install and generate with stubs ----------------------------------------------------------------------------


@pytest.mark.process
def test_installs_the_pinned_cli_with_npm_ci_once(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    results: Path,
    stub_allure: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    home = tmp_path / "allure-home"
    version = htmlreport.pinned_version()
    npm_log = tmp_path / "npm-calls"
    fake_npm = f"""#!/bin/sh
echo "$PWD $*" >> {npm_log}
mkdir -p node_modules/allure node_modules/.bin
echo '{{"name": "allure", "version": "{version}"}}' > node_modules/allure/package.json
cp {stub_allure} node_modules/.bin/allure
"""
    executable(tmp_path / "npm-bin" / "npm", fake_npm)
    monkeypatch.setenv("RESILIENCE_ALLURE_HOME", str(home))
    monkeypatch.setenv("PATH", f"{tmp_path / 'npm-bin'}:/usr/bin:/bin")
    monkeypatch.delenv("RESILIENCE_ALLURE", raising=False)
    code, _, err = report(capsys, tmp_path)
    assert code == 0, err
    assert f"installing allure {version} with npm into {home / 'node_modules'}" in err
    code, out, err = report(capsys, tmp_path)
    assert code == 0, err
    assert "installing" not in err, "installed once, reused after"
    assert npm_log.read_text().splitlines() == [f"{home} ci --no-audit --no-fund --loglevel=error"]
    assert "2 run(s) in the history" in out


@pytest.mark.process
def test_generate_wiring_history_and_replacement(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, results: Path, stub_allure: Path
) -> None:
    out_dir = tmp_path / "out" / "allure-report"
    out_dir.mkdir(parents=True)  # empty: may be written to
    code, out, err = report(capsys, tmp_path, "--allure", str(stub_allure), "--name", "Nightly")
    assert code == 0, err
    assert f"report: {out_dir / 'index.html'} (1 run(s) in the history" in out
    assert (out_dir / "index.html").read_text() == "<html>report</html>"
    assert (out_dir / htmlreport.MARKER).is_file(), "marked as ours, so the next report may replace it"
    config: dict[str, Any] = json.loads((out_dir / "config-seen.json").read_text())
    history = (tmp_path / "out" / "history" / "history.jsonl").resolve()
    assert config["historyPath"] == str(history)
    assert config["name"] == "Nightly"
    assert config["categories"] == allure3_categories()
    assert config["plugins"]["awesome"]["options"]["groupBy"] == ["parentSuite", "suite"]
    args = json.loads((tmp_path / "allure-calls.jsonl").read_text().splitlines()[0])
    assert args[:2] == ["generate", str(results.resolve())]
    # the report carries a copy of the history
    assert (out_dir / "history" / "history.jsonl").read_text() == history.read_text()

    (out_dir / "stale.json").write_text("{}")
    code, out, _ = report(capsys, tmp_path, "--allure", str(stub_allure))
    assert code == 0 and "2 run(s) in the history" in out
    assert not (out_dir / "stale.json").exists(), "the previous report is replaced, not merged"

    # history directory lost, previous report kept (e.g. a CI artifact): its copy is restored first
    shutil.rmtree(tmp_path / "out" / "history")
    code, out, err = report(capsys, tmp_path, "--allure", str(stub_allure))
    assert code == 0
    assert "history restored from the previous report" in err
    assert "3 run(s) in the history" in out
    assert not list((tmp_path / "out").glob(".allure-report.*")), "staging directories are cleaned up"


@pytest.mark.process
def test_generate_failure_keeps_the_previous_report(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    results: Path,
    stub_allure: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out_dir = tmp_path / "out" / "allure-report"
    out_dir.mkdir(parents=True)
    (out_dir / "index.html").write_text("previous")
    (out_dir / htmlreport.MARKER).write_text("")
    monkeypatch.setenv("STUB_EXIT", "1")
    code, _, err = report(capsys, tmp_path, "--allure", str(stub_allure))
    assert_error(code, err, 3, "allure generate failed (exit 1): Error: boom")
    assert (out_dir / "index.html").read_text() == "previous"
    assert not list((tmp_path / "out").glob(".allure-report.*"))


@pytest.mark.process
def test_generate_without_index_is_a_harness_error(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    results: Path,
    stub_allure: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STUB_NO_INDEX", "1")
    code, _, err = report(capsys, tmp_path, "--allure", str(stub_allure))
    assert_error(code, err, 3, "allure generate wrote no index.html")


def test_paths_from_the_environment(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, stub_allure: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RESILIENCE_ALLURE_RESULTS", str(tmp_path / "r"))
    monkeypatch.setenv("RESILIENCE_ALLURE", str(stub_allure))
    code = main(["report"])
    _, err = capsys.readouterr()
    assert_error(code, err, 2, f"{tmp_path / 'r'}: no Allure results directory")


# -- the real, pinned Allure CLI (when installed: `make report` or `resilience report` installs it) ------------

PINNED = htmlreport.allure_home() / "node_modules" / ".bin" / "allure"


@pytest.mark.process
@pytest.mark.skipif(
    not PINNED.exists() or shutil.which("node") is None, reason="pinned Allure CLI not installed (resilience report)"
)
def test_real_report_from_a_chaos_run(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    root = make_suite(tmp_path / "chaos")
    proc = run_pytest(root, "--alluredir", str(tmp_path / "out" / "allure-results"))
    assert proc.returncode == 1, proc.stdout
    for expected_points in (1, 2):
        code, out, err = report(capsys, tmp_path)
        assert code == 0, err
        assert f"({expected_points} run(s) in the history" in out
    html = tmp_path / "out" / "allure-report"
    assert (html / "index.html").exists()
    results = [json.loads(p.read_text()) for p in (html / "data" / "test-results").glob("*.json")]
    page = next(r for r in results if r.get("fullName") == "resilience.ttr_matrix")
    assert "not recovered in 240s" in page["descriptionHtml"]
    categories = json.loads((html / "widgets" / "categories.json").read_text())
    assert "SLO breach" in json.dumps(categories) and "Harness error" in json.dumps(categories)
    metrics = json.loads((html / "widgets" / "metrics.json").read_text())
    assert {m["key"] for m in metrics["current"]} >= {"ttr.selector-change.flux-native"}
    assert metrics["history"], "the second report sees the first one's metrics"
