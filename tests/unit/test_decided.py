"""When a recovery wait may end (assertions.decided): recovered at once; not recovered once the verdict cannot change
(ttr.max passed, the owed pages in, the bad revision past its limits); never a pass the whole wait would not give."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from assertions import criteria, decided
from assertions import slo as slo_model
from assertions.decided import Pages, ended, why_decided
from assertions.slo import Budget, Limit
from assertions.verdict import Evidence, Verdict, judge
from injectors.registry import FAULTS
from monitoring.facts.rules import PROMISES
from monitoring.stack.handle import TIMINGS

BUDGET = Budget(ttr=Limit(max=60.0), wait=540.0)
PAST = 60.0 + decided.margin(BUDGET) + 0.1  # just past ttr.max and its margin


def test_a_recovered_run_ends_at_once_whatever_the_time() -> None:
    end = ended(3.0, BUDGET, 2.5)
    assert end is not None and end.by == "recovered" and end.after == 2.5
    assert end.text() == "ended: recovered at 2.5s"


def test_not_recovered_waits_until_ttr_max_and_its_margin_have_passed() -> None:
    assert ended(59.0, BUDGET, None) is None
    assert ended(60.0 + decided.margin(BUDGET), BUDGET, None) is None  # a recovery in flight may still land
    end = ended(PAST, BUDGET, None)
    assert end is not None and end.by == "decided" and end.detail == "ttr.max 60s passed"
    assert end.text() == f"ended: verdict decided at {PAST:.0f}s (ttr.max 60s passed)"


def test_the_margin_grows_with_a_long_budget() -> None:
    assert decided.margin(BUDGET) == 10.0
    assert decided.margin(Budget(ttr=Limit(max=300.0))) == 30.0


def test_the_give_up_time_still_caps_the_wait() -> None:
    short = Budget(ttr=Limit(max=60.0), wait=65.0)
    end = ended(65.0, short, None)
    assert end is not None and end.by == "gave-up" and end.text() == "ended: give-up wait 65s"


def test_a_budget_without_ttr_max_waits_the_whole_wait() -> None:
    """Any recovery within the wait would pass: nothing is decided before the give-up time."""
    only_wait = Budget(wait=300.0)
    assert ended(299.0, only_wait, None) is None
    assert (end := ended(300.0, only_wait, None)) is not None and end.by == "gave-up"


def test_the_whole_wait_asked_for_is_never_cut_short() -> None:
    assert ended(500.0, BUDGET, None, whole=True) is None
    assert (end := ended(540.0, BUDGET, None, whole=True)) is not None and end.by == "gave-up"


def test_an_owed_page_keeps_the_wait_until_it_pages() -> None:
    waiting = Pages(owed={"FluxKustomizationStuck": 450.0})
    assert why_decided(PAST, BUDGET, pages=lambda: waiting) is None
    assert why_decided(449.0, BUDGET, pages=lambda: waiting) is None
    paged = Pages(owed={"FluxKustomizationStuck": 450.0}, paged={"FluxKustomizationStuck": 421.4})
    assert why_decided(422.0, BUDGET, pages=lambda: paged) == (
        "ttr.max 60s passed, alert FluxKustomizationStuck paged at 421s"
    )


def test_an_owed_page_that_never_came_is_decided_once_its_time_to_page_passed() -> None:
    """A blind spot: the whole wait would find the same."""
    missing = Pages(owed={"FluxKustomizationStuck": 450.0})
    assert why_decided(450.0, BUDGET, pages=lambda: missing) is None
    assert why_decided(450.0 + decided.PAGE_SLACK, BUDGET, pages=lambda: missing) == (
        "ttr.max 60s passed, alert FluxKustomizationStuck not paged by 450s"
    )


def test_pages_are_read_only_once_the_time_has_passed() -> None:
    def never_read() -> Pages:
        raise AssertionError("read before ttr.max passed")

    assert why_decided(30.0, BUDGET, pages=never_read) is None


def test_a_run_owing_no_page_ends_at_ttr_max() -> None:
    assert why_decided(PAST, BUDGET, pages=Pages) == "ttr.max 60s passed"
    unrelated = Pages(paged={"FluxDependencyCycle": 20.0})  # noise paged: nothing owed
    assert why_decided(PAST, BUDGET, pages=lambda: unrelated) == "ttr.max 60s passed"


def test_a_bad_revision_within_its_reach_limit_keeps_the_wait() -> None:
    """The count only grows: until every budgeted stage is over its limit, more waiting could fail the run."""
    staged = dataclasses.replace(BUDGET, measures={"reached": {"canary": 0, "production": 0}})
    assert why_decided(PAST, staged, reached={"canary": 1, "production": 0}) is None
    assert why_decided(PAST, staged, reached={"canary": 1, "production": 2}) == (
        "ttr.max 60s passed, the bad revision past every reached limit"
    )
    assert why_decided(PAST, staged, reached=None) == "ttr.max 60s passed"  # not measured: judged as such


def test_every_criterion_a_baseline_may_not_miss_is_decided_here() -> None:
    """A new non-excusable criterion could fail a run later in the wait: decided.py must wait for it too."""
    assert {c.key for c in criteria.CRITERIA if not c.excusable} == set(decided.NON_EXCUSABLE)


@pytest.mark.parametrize("recovered_late", [61.0, 200.0, 539.0])
def test_a_run_cut_short_never_passes_where_the_whole_wait_would_have_failed(recovered_late: float) -> None:
    """Cut short at the decision, the verdict is not-recovered; the whole wait would have seen a late recovery,
    a breach: neither passes, both are excused for a baseline alike."""
    end = ended(PAST, BUDGET, None)
    assert end is not None
    cut = judge(Evidence(proven=True, wait_ended=end), BUDGET)
    whole = judge(Evidence(ttr=recovered_late, proven=True), BUDGET)
    assert cut.verdict is Verdict.NOT_RECOVERED and whole.verdict is Verdict.BREACH
    assert cut.excusable and whole.excusable


def test_the_judge_says_how_long_the_cut_wait_was() -> None:
    end = ended(PAST, BUDGET, None)
    assert end is not None
    reason = judge(Evidence(proven=True, not_recovered_detail="Kustomization stuck", wait_ended=end), BUDGET).reason
    assert reason == (
        f"not recovered within {PAST:.0f}s of injection (Kustomization stuck); the wait ended: verdict decided at "
        f"{PAST:.0f}s (ttr.max 60s passed)"
    )
    full = judge(Evidence(proven=True, wait_ended=decided.gave_up(BUDGET)), BUDGET).reason
    assert full == "not recovered within 540s of injection"


def test_describe_says_what_ends_a_wait() -> None:
    assert decided.describe(BUDGET) == "ttr.max + margin, 70s (at most 540s)"
    assert (
        decided.describe(BUDGET, monitored=True)
        == "ttr.max + margin, 70s, or later: every page owed by then (at most 540s)"
    )
    assert decided.describe(Budget(ttr=Limit(max=60.0), wait=65.0)) == "the give-up wait, 65s"
    staged = dataclasses.replace(BUDGET, measures={"reached": {"production": 0}})
    assert decided.describe(staged).endswith(", once the bad revision is past every `reached` limit (at most 540s)")


SLO_FILE = Path(__file__).resolve().parents[2] / "scenarios" / "slo.yaml"
VERDICTS_DOC = Path(__file__).resolve().parents[2] / "docs" / "verdicts.md"
TABLE_BEGIN, TABLE_END = "<!-- waits: generated by tests/unit/test_decided.py -->", "<!-- end of waits -->"


def waits_table() -> str:
    """docs/verdicts.md's table of what ends a wait, from the shipped SLO file and alert rules."""
    slo = slo_model.load(SLO_FILE, FAULTS)
    lines = [
        "| fault | modes | ttr.max | give-up wait | not recovered: the wait ends at |",
        "| --- | --- | --- | --- | --- |",
    ]
    for fault, body in sorted(slo.scenarios.items()):
        named = [str(m) for m in body.get("recoveries") or {}]
        rows: dict[str, list[str]] = {}
        for mode in [*named, ""]:
            budget = slo.budget(fault, mode)
            ttr = f"{budget.ttr.max:g}s"
            rows.setdefault(f"{ttr} | {budget.give_up_after:g}s | {decided.describe(budget)}", []).append(mode)
        for text, modes in rows.items():
            shown = "all" if len(rows) == 1 else "the others" if "" in modes else ", ".join(modes)
            lines.append(f"| `{fault}` | {shown} | {text} |")
    lines += [
        "",
        "| alert (with monitoring) | its page is owed, after its condition began |",
        "| --- | --- |",
    ]
    delivery = TIMINGS.delivery_seconds
    for promise in PROMISES:
        owed = promise.holds_for + delivery
        lines.append(f"| `{promise.alert}` | {owed:g}s ({promise.holds_for:g}s to fire + {delivery}s to deliver) |")
    return "\n".join(lines)


def test_the_docs_table_of_what_ends_a_wait_is_the_slo_files() -> None:
    text = VERDICTS_DOC.read_text()
    shown = text.split(TABLE_BEGIN, 1)[1].split(TABLE_END, 1)[0].strip() if TABLE_BEGIN in text else ""
    assert shown == waits_table(), f"update docs/verdicts.md between the markers to:\n{waits_table()}"
