"""`resilience compare`: medians and max over repeats with never counted, invalid runs apart, the best Flux-only
mode against the operator (and its wording at the tolerance), Markdown and the Allure summary page, bad input."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from reports_support import NOT_RECOVERED, entry, load, recovered, write_json

from assertions.schema import WaitEnded
from foundation.errors import UserError
from reports import allure_files, compare, matrix
from reports.matrix import build_cells
from resilience.cli import main


def runs(fault: str, mode: str, ttrs: list[float | None], **kw: Any) -> list[dict[str, Any]]:
    """One entry per repeat: recovered in each TTR, never for None."""
    return [
        entry(fault, mode, NOT_RECOVERED if ttr is None else recovered(ttr), repeat=i, **kw)
        for i, ttr in enumerate(ttrs, 1)
    ]


def versus(entries: list[dict[str, Any]], fault: str = "selector-change") -> str:
    table = compare.compare(entries)
    return next(row.versus for row in table.rows if row.fault == fault)


def cells(table: compare.Comparison, fault: str, mode: str) -> dict[str, str]:
    """One mode's cells of a fault's row, by column header."""
    row = next(r for r in table.rows if r.fault == fault)
    return dict(zip(compare.columns(table), compare.group_cells(row.figures.get(mode), table.loaded), strict=True))


def test_median_and_max_over_repeats() -> None:
    table = compare.compare(runs("selector-change", "operator", [7.0, 6.1, 5.8]))
    shown = cells(table, "selector-change", "operator")
    assert shown["TTR med / max"] == "6.1 / 7.0"
    assert shown["detect"] == "2.0"
    assert shown["data kept"] == "3/3"
    assert shown["verdicts"] == "3 pass"
    assert shown["invalid"] == "0"


def test_a_repeat_that_never_recovered_counts_as_never() -> None:
    one = compare.compare(runs("selector-change", "operator", [6.0, 7.0, None]))
    assert cells(one, "selector-change", "operator")["TTR med / max"] == "7.0 / never (1/3)"
    two = compare.compare(runs("selector-change", "operator", [6.0, None, None]))
    shown = cells(two, "selector-change", "operator")
    assert shown["TTR med / max"] == "never (2/3)"
    assert shown["verdicts"] == "1 pass, 2 not-recovered"


def test_a_repeat_whose_wait_was_cut_short_is_not_within_its_wait_not_never() -> None:
    """Cut short once its verdict was decided, a run's TTR is only known to exceed the wait: said so, not invented."""
    cut = WaitEnded(by="decided", after=70.4, detail="ttr.max 60s passed")
    short = [entry("selector-change", "none", NOT_RECOVERED, repeat=3, wait_ended=cut)]
    full = runs("selector-change", "none", [65.0, None])
    shown = cells(compare.compare(full + short), "selector-change", "none")
    assert shown["TTR med / max"] == "not within 70 (2/3)"
    one = cells(compare.compare(runs("selector-change", "none", [65.0, 66.0]) + short), "selector-change", "none")
    assert one["TTR med / max"] == "66.0 / not within 70 (1/3)"
    assert "| not within 70 (1/1) |" in compare.render_markdown(compare.compare(short))


def test_the_matrix_and_the_run_chart_say_how_long_a_cut_wait_was() -> None:
    cut = WaitEnded(by="decided", after=70.4, detail="ttr.max 60s passed")
    short = entry("selector-change", "none", NOT_RECOVERED, wait=540.0, wait_ended=cut)
    (cell,) = build_cells([short])
    assert matrix.ttr_text(cell) == "not recovered in 70s"
    (whole,) = build_cells([entry("selector-change", "none", NOT_RECOVERED, wait=540.0)])
    assert matrix.ttr_text(whole) == "not recovered in 540s"
    assert matrix.cut_short(short) == 70.4 and matrix.cut_short(entry("x", "none", recovered(5.0))) is None


def test_invalid_runs_are_left_out_of_the_figures_and_counted() -> None:
    entries = runs("selector-change", "operator", [6.0, 8.0])
    entries.append(entry("selector-change", "operator", recovered(1.0), repeat=3, invalid="foreign activity"))
    shown = cells(compare.compare(entries), "selector-change", "operator")
    assert shown["TTR med / max"] == "7.0 / 8.0"
    assert shown["data kept"] == "2/2"
    assert shown["verdicts"] == "2 pass"
    assert shown["invalid"] == "invalid 1"


def test_only_invalid_runs_show_no_figure() -> None:
    entries = [entry("selector-change", "operator", recovered(1.0), invalid="foreign activity")]
    entries += runs("selector-change", "flux-native", [9.0])
    shown = cells(compare.compare(entries), "selector-change", "operator")
    assert shown["TTR med / max"] == "-"
    assert shown["invalid"] == "invalid 1"
    assert versus(entries) == "no valid operator run"


def test_data_kept_counts_repeats_without_violations() -> None:
    entries = runs("selector-change", "operator", [6.0, 7.0])
    entries[1]["data_violations"] = ["lost a row"]
    assert cells(compare.compare(entries), "selector-change", "operator")["data kept"] == "1/2"


def test_serving_counts_from_the_injection_and_the_next_commit_from_its_push() -> None:
    entries = runs("selector-change", "operator", [6.0, 7.0, 8.0])
    entries[0]["since_injected"] = {"serving": 3.0}
    entries[1]["since_injected"] = {"serving": 5.0}
    entries[1]["phases"]["serving"] = 2.0  # a phase's own share of the timeline: not the figure
    for e in entries:
        e["next_commit"] = {"pushed_at": 9.0, "taken_after": 4.0}
    shown = cells(compare.compare(entries), "selector-change", "operator")
    assert shown["serving"] == "4.0 (2/3)"
    assert shown["next commit"] == "4.0"
    bare = cells(compare.compare(runs("selector-change", "operator", [6.0])), "selector-change", "operator")
    assert (bare["serving"], bare["next commit"]) == ("-", "-")


def test_a_next_commit_pushed_and_not_taken_is_never_and_one_not_pushed_is_absent() -> None:
    assert compare.next_commit({"next_commit": {"pushed_at": 9.0, "taken_after": 4.5}}) == 4.5
    assert compare.next_commit({"next_commit": {"pushed_at": 9.0, "taken_after": None}}) == compare.NEVER
    assert compare.next_commit({"phases": {"next-commit": 30.0}}) is None


def test_downtime_under_load_only() -> None:
    entries = [{**e, "load": load(downtime=2.0)} for e in runs("selector-change", "operator", [6.0, 7.0])]
    table = compare.compare(entries)
    assert table.loaded
    assert cells(table, "selector-change", "operator")["downtime"] == "2.0"
    assert "downtime" not in compare.columns(compare.compare(runs("selector-change", "operator", [6.0])))


def test_the_best_flux_mode_is_the_fastest_that_recovered_every_time() -> None:
    entries = [
        *runs("selector-change", "operator", [2.0, 2.0, 2.0]),
        *runs("selector-change", "flux-native", [4.0, 4.0, None]),  # faster, but not every time
        *runs("selector-change", "flux-tuned", [8.0, 8.4, 8.2]),
        *runs("selector-change", "none", [None, None, None]),
    ]
    assert versus(entries) == "4.1x faster than flux-tuned"


def test_ratio_of_two_or_more_has_one_decimal() -> None:
    entries = [*runs("selector-change", "operator", [6.1]), *runs("selector-change", "flux-tuned", [25.6])]
    assert versus(entries) == "4.2x faster than flux-tuned"


@pytest.mark.parametrize(
    ("flux", "operator", "said"),
    [
        (5.9, 6.1, "flux-tuned as fast (5.9 s vs 6.1 s)"),
        (11.0, 10.0, "flux-tuned as fast (11.0 s vs 10.0 s)"),  # exactly the tolerance
        (11.2, 10.0, "1.12x faster than flux-tuned"),  # just over it
        (10.0, 11.0, "flux-tuned as fast (10.0 s vs 11.0 s)"),
        (3.0, 6.0, "flux-tuned faster (3.0 s vs 6.0 s)"),
    ],
)
def test_as_fast_within_the_tolerance(flux: float, operator: float, said: str) -> None:
    entries = [*runs("selector-change", "operator", [operator]), *runs("selector-change", "flux-tuned", [flux])]
    assert versus(entries) == said


def test_only_the_operator_recovers() -> None:
    entries = [*runs("selector-change", "operator", [6.0]), *runs("selector-change", "flux-native", [None])]
    assert versus(entries) == "only the operator recovers"
    partly = [*runs("selector-change", "operator", [6.0, 6.0]), *runs("selector-change", "flux-native", [5, None])]
    assert versus(partly) == "only the operator recovers every repeat"


def test_the_operator_not_recovering_is_said() -> None:
    entries = [*runs("selector-change", "operator", [None, None]), *runs("selector-change", "flux-tuned", [9.0, 9.0])]
    assert versus(entries) == "the operator did not recover; flux-tuned did (9.0 s)"
    partly = [*runs("selector-change", "operator", [5.0, None]), *runs("selector-change", "none", [None, None])]
    assert versus(partly) == (
        "the operator did not recover in 1/2 repeats; no Flux-only mode recovered in every repeat either"
    )


def test_modes_default_to_the_natural_order_and_follow_the_flag() -> None:
    entries = [
        *runs("selector-change", "operator", [6.0]),
        *runs("selector-change", "command:my-fix", [6.0]),
        *runs("selector-change", "flux-tuned", [6.0]),
        *runs("selector-change", "none", [None]),
    ]
    assert compare.compare(entries).modes == ("none", "flux-tuned", "operator", "command:my-fix")
    assert compare.compare(entries, ["operator", "none"]).modes == ("operator", "none")
    with pytest.raises(UserError, match="no runs under flux-native"):
        compare.compare(entries, ["operator", "flux-native"])


def test_no_comparison_column_without_the_operator_and_a_flux_mode() -> None:
    table = compare.compare(runs("selector-change", "flux-native", [6.0]))
    assert not table.versus
    assert "operator vs best Flux" not in compare.grid(table)[1]


def test_a_fault_not_run_under_a_mode() -> None:
    entries = [*runs("selector-change", "operator", [6.0]), *runs("image-pull", "flux-native", [6.0])]
    table = compare.compare(entries)
    assert cells(table, "image-pull", "operator")["TTR med / max"] == "not run"
    assert versus(entries, "image-pull") == "-"
    assert versus(entries, "selector-change") == "no Flux-only mode ran"


def test_markdown_and_text() -> None:
    entries = [*runs("selector-change", "operator", [6.1]), *runs("selector-change", "command:a|b", [25.6])]
    table = compare.compare(entries, flux_modes=["command:a|b"])
    markdown = compare.render_markdown(table).splitlines()
    assert markdown[0].startswith("| fault | operator: TTR med / max | operator: detect |")
    assert markdown[0].endswith("| command:a\\|b: invalid | operator vs best Flux |")
    assert markdown[1] == "|" + "---|" * (2 + 2 * len(compare.columns(table)))
    assert markdown[2].startswith("| selector-change | 6.1 / 6.1 |")
    assert markdown[2].endswith("| 4.2x faster than command:a\\|b |")
    text = compare.render_text(table).splitlines()
    assert text[0].split()[:2] == ["operator", "-" * len(text[0].split()[1])]
    assert text[1].split()[:4] == ["fault", "TTR", "med", "/"]


# -- the command ----------------------------------------------------------------------------------------------


@pytest.fixture
def summary_path(tmp_path: Path) -> Path:
    return write_json(
        tmp_path / "summary.json",
        [
            *runs("selector-change", "none", [None, None, None]),
            *runs("selector-change", "flux-native", [40.0, 44.0, None]),
            *runs("selector-change", "flux-tuned", [25.0, 26.0, 27.5]),
            *runs("selector-change", "operator", [6.1, 5.8, 7.0]),
            *runs("image-pull", "flux-tuned", [5.9, 6.0, 5.7], family="image"),
            *runs("image-pull", "operator", [6.1, 6.3, 6.0], family="image"),
            entry("image-pull", "operator", recovered(1.0), repeat=4, family="image", invalid="foreign activity"),
        ],
    )


def test_the_command_end_to_end(capsys: pytest.CaptureFixture[str], summary_path: Path, tmp_path: Path) -> None:
    markdown = tmp_path / "docs" / "compare.md"
    code = main(["compare", str(summary_path), "--markdown", str(markdown)])
    out, err = capsys.readouterr()
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == f"19 run(s) from {summary_path}"
    assert [w for w in lines[1].split() if not w.startswith("-")] == ["none", "flux-native", "flux-tuned", "operator"]
    selector = next(line for line in lines if line.startswith("selector-change"))
    assert "never (3/3)" in selector and "44.0 / never (1/3)" in selector and "26.0 / 27.5" in selector
    assert selector.endswith("4.3x faster than flux-tuned")
    image = next(line for line in lines if line.startswith("image-pull"))
    assert "invalid 1" in image and image.endswith("flux-tuned as fast (5.9 s vs 6.1 s)")
    assert lines[-1] == f"markdown: {markdown}"
    assert "| image-pull | not run |" in markdown.read_text()


def test_modes_flag_orders_and_limits(capsys: pytest.CaptureFixture[str], summary_path: Path) -> None:
    assert main(["compare", str(summary_path), "--modes", "operator,flux-tuned"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [w for w in out[1].split() if not w.startswith("-")] == ["operator", "flux-tuned"]


def bad_summary(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bad.json"
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("args", "culprit"),
    [
        (lambda p, t: [str(t / "missing.json")], "missing.json"),
        (lambda p, t: [str(bad_summary(t, "{not json"))], "bad.json"),
        (lambda p, t: [str(bad_summary(t, json.dumps([{"fault": "x"}])))], "bad.json: [0]"),
        (lambda p, t: [str(p), "--modes", "operator,staged"], "no runs under staged"),
        (lambda p, t: [str(p), "--flux-modes", "operator"], "operator is not a Flux-only mode"),
        (lambda p, t: [str(p), "--modes", ","], "--modes ','"),
        (lambda p, t: [str(p), "--markdown", str(p)], "is a summary given"),
        (lambda p, t: [str(bad_summary(t, "[]"))], "no runs to compare"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], summary_path: Path, tmp_path: Path, args: Any, culprit: str
) -> None:
    code = main(["compare", *args(summary_path, tmp_path)])
    out, err = capsys.readouterr()
    assert code == 2
    assert out == ""
    assert err.startswith("resilience: error: ") and err.count("\n") == 1
    assert culprit in err


# -- the Allure summary page ----------------------------------------------------------------------------------


def summary_result(results: Path) -> dict[str, Any]:
    found = [json.loads(p.read_text()) for p in results.glob("*-result.json")]
    return next(r for r in found if r["fullName"] == "resilience.ttr_matrix")


def test_the_summary_page_compares_the_modes_when_more_than_one_ran(summary_path: Path, tmp_path: Path) -> None:
    results = tmp_path / "results"
    entries = json.loads(summary_path.read_text())
    allure_files.write_summary(results, build_cells(entries), 0, 1)
    result = summary_result(results)
    assert "Recovery modes side by side" in result["descriptionHtml"]
    assert "4.3x faster than flux-tuned" in result["descriptionHtml"]
    attached = {a["name"]: a["source"] for a in result["attachments"]}
    assert "4.3x faster than flux-tuned" in (results / attached["Recovery modes compared"]).read_text()
    assert attached["Recovery modes compared"] in allure_files.summary_page_files(results)


def test_one_mode_has_nothing_to_compare(tmp_path: Path) -> None:
    results = tmp_path / "results"
    allure_files.write_summary(results, build_cells(runs("selector-change", "operator", [6.0])), 0, 1)
    result = summary_result(results)
    assert "Recovery modes side by side" not in result["descriptionHtml"]
    assert "Recovery modes compared" not in {a["name"] for a in result["attachments"]}
