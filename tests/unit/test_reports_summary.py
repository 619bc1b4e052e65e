"""summary.json read/write and schema, the fault x recovery cells, the side-by-side HTML matrix and the PNG charts."""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path

import pytest
from reports_support import NOT_RECOVERED, entry, recovered, write_json

from assertions.verdict import Verdict
from foundation.errors import UserError
from reports import charts, summary
from reports.matrix import build_cells, render_html, render_table


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_write_sorts_validates_and_round_trips(tmp_path: Path) -> None:
    entries = [
        entry("selector-change", "operator", recovered(14.8)),
        entry("helm-upgrade-failed", "operator", recovered(20.0)),
        entry("selector-change", "none", NOT_RECOVERED),
        entry("selector-change", "command:./fix.sh", recovered(30.0)),
        entry("selector-change", "flux-native", recovered(50.0)),
    ]
    path = tmp_path / "deep" / "summary.json"
    summary.write(path, entries)
    back = summary.read(path)
    assert [(e["fault"], e["recovery"]) for e in back] == [
        ("helm-upgrade-failed", "operator"),
        ("selector-change", "none"),
        ("selector-change", "flux-native"),
        ("selector-change", "operator"),
        ("selector-change", "command:./fix.sh"),
    ]
    assert isinstance(json.loads(path.read_text()), list)
    assert [p.name for p in path.parent.iterdir()] == ["summary.json"], "no temporary files left behind"


def test_write_refuses_a_bad_entry_and_keeps_the_old_file(tmp_path: Path) -> None:
    path = write_json(tmp_path / "summary.json", [entry("a", "none", recovered(1.0))])
    before = path.read_text()
    with pytest.raises(UserError, match=r"\[0\]\.verdict: expected one of"):
        summary.write(path, [{**entry("a", "none", recovered(1.0)), "verdict": "fast"}])
    assert path.read_text() == before


def test_entries_carry_the_required_keys() -> None:
    e = entry("selector-change", "operator", recovered(14.8))
    for key in ("fault", "recovery", "verdict", "ttr_seconds", "phases"):
        assert key in e
    assert e["verdict"] in ("pass", "breach", "not-recovered", "invalid")
    assert summary.entry_problem(e, "[0]") is None


def test_cells_group_repeats_and_take_the_worst() -> None:
    cells = build_cells(
        [
            entry("selector-change", "operator", recovered(10.0), repeat=1),
            entry("selector-change", "operator", recovered(70.0), repeat=2),
            entry("selector-change", "operator", recovered(12.0), repeat=3),
        ]
    )
    [cell] = cells
    assert len(cell.runs) == 3
    assert cell.ttr_max == pytest.approx(70.0) and cell.ttr_p95 == pytest.approx(70.0)
    assert cell.verdict is Verdict.BREACH and cell.worst.ttr == pytest.approx(70.0)
    assert cell.counts() == {"pass": 2, "breach": 1}


def test_html_matrix_puts_recovery_modes_side_by_side() -> None:
    cells = build_cells(
        [
            entry("selector-change", "none", NOT_RECOVERED, ttr_max=120),
            entry("selector-change", "flux-native", recovered(75.2)),
            entry("selector-change", "operator", recovered(14.8)),
            entry("helm-upgrade-failed", "operator", recovered(28.3), family="helm"),
        ]
    )
    html = render_html(cells)
    header = re.findall(r"<th[^>]*>([^<]*)</th>", html)
    assert header == ["fault", "none", "flux-native", "operator"]
    rows = html.split("<tr>")[2:]
    assert len(rows) == 2  # one row per fault
    selector = next(r for r in rows if "selector-change" in r)
    cells_text = re.findall(r"<td[^>]*>(.*?)</td>", selector)
    assert "not recovered in 240s" in cells_text[1] and "NOT-RECOVERED" in cells_text[1]
    assert "75.2s" in cells_text[2] and "BREACH" in cells_text[2]
    assert "14.8s" in cells_text[3] and "PASS" in cells_text[3]
    helm = next(r for r in rows if "helm-upgrade-failed" in r)
    assert helm.count("not run") == 2


def test_text_table_names_each_fault_once() -> None:
    cells = build_cells(
        [entry("selector-change", "none", NOT_RECOVERED), entry("selector-change", "operator", recovered(14.8))]
    )
    table = render_table(cells)
    assert table.count("selector-change") == 1
    assert table.splitlines()[0].split()[:4] == ["FAULT", "RECOVERY", "RUNS", "TTR"]


@pytest.mark.parametrize(
    "run",
    [
        entry("selector-change", "operator", {"injected": 0, "visible": 1, "detected": 2, "acted": 3, "recovered": 9}),
        entry("selector-change", "flux-native", recovered(75.2)),
        entry("selector-change", "none", NOT_RECOVERED),
        entry("source-outage", "operator", {"injected": 0.0}, invalid="proof of fault missing"),
    ],
    ids=["pass", "breach", "not-recovered", "invalid"],
)
def test_run_chart_is_a_png(run: dict[str, object]) -> None:
    width, height = png_size(charts.run_chart(run))
    assert width >= 600 and height >= 150


def test_matrix_chart_grows_with_the_cells() -> None:
    few = build_cells([entry("a", "operator", recovered(5.0))])
    many = build_cells(
        [entry(f, r, recovered(5.0)) for f in ("a", "b", "c") for r in ("none", "flux-native", "operator")]
        + [entry("d", "operator", NOT_RECOVERED), entry("e", "none", {"injected": 0.0}, invalid="no proof")]
    )
    small, large = png_size(charts.matrix_chart(few)), png_size(charts.matrix_chart(many))
    assert small[0] == large[0] and large[1] > small[1]
