"""When a run's recovery wait may end: as soon as nothing still to come can change its verdict or the record it is
judged by. It decides only when to stop waiting; the verdict stays the one judge's (assertions.verdict).

- Recovered: at once (what follows recovery waits for itself: the next commit, the load's window after it).
- Not recovered, and more than `ttr.max` + `margin` since the injection: a later recovery could be a breach at best,
  never a pass, and the time phases (detect, serving, reporting) are judged only for a run that recovered. What
  can still change is what the non-excusable criteria read, which could turn an excused baseline into a failure:
  - `alerts` (with monitoring): every page the whole wait would owe (its condition holds long enough for the alert
    to be due and delivered before the give-up time, `monitoring.facts.phases.due`) has paged, or its time to page
    has passed (a blind spot, decided);
  - `reached` (how far a bad revision got, a count that only grows): every budgeted stage already over its limit.
  The margin leaves room for watch events still in flight (a recovery received just before `ttr.max`).
- Otherwise: the give-up time (`Budget.give_up_after`), as without this rule; always so when the budget sets no
  `ttr.max` (a recovery at any time within the wait would pass) or the run asks for the whole wait (benchmarks).

A condition that first starts after the wait ended (an escalation the operator has not made yet) is not foreseen.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from assertions.schema import WaitEnded
from assertions.slo import Budget

# A page owed by `by` is given up on this long after (the due time is rounded to the millisecond, and the record's
# watch must end past the owed time for the judge to see the same blind spot).
PAGE_SLACK = 1.0
REACHED = "reached"  # the criterion key of how far a bad revision got (assertions.reached)
ALERTS = "alerts"  # the criterion key of the pages (assertions.alert_criterion), judged even without a budget
# The criteria that a baseline may not miss, each decided here (a new one must be added: tests/unit/test_decided.py).
NON_EXCUSABLE: tuple[str, ...] = (REACHED, ALERTS)


def margin(budget: Budget) -> float:
    """How long past `ttr.max` a not-recovered run still waits: watch events in flight on a loaded host."""
    return max(10.0, 0.1 * (budget.ttr.max or 0.0))


@dataclass(frozen=True)
class Pages:
    """With monitoring: the pages the whole wait would owe (alert -> seconds from the injection by which its page is
    due to arrive) and those that came (alert -> when its first page arrived)."""

    owed: Mapping[str, float] = field(default_factory=dict)
    paged: Mapping[str, float] = field(default_factory=dict)

    def waiting(self, elapsed: float) -> list[str]:
        """The owed alerts neither paged nor past their time to page."""
        return sorted(n for n, by in self.owed.items() if n not in self.paged and elapsed < by + PAGE_SLACK)

    def settled(self) -> str:
        """What was decided about the owed pages, for the record."""
        parts = [
            f"alert {n} paged at {self.paged[n]:.0f}s" if n in self.paged else f"alert {n} not paged by {by:.0f}s"
            for n, by in sorted(self.owed.items(), key=lambda kv: kv[1])
        ]
        return ", ".join(parts)


def why_decided(
    elapsed: float,
    budget: Budget,
    *,
    pages: Callable[[], Pages] | None = None,
    reached: Mapping[str, int] | None = None,
) -> str | None:
    """Why a run that has not recovered `elapsed` seconds after its injection can stop waiting now, or None while
    something still to come could change its verdict. `pages` (read only once the time is past): None without
    monitoring; `reached`: the figure so far (None: not measured)."""
    limit = budget.ttr.max
    if limit is None or elapsed <= limit + margin(budget):
        return None
    why = [f"ttr.max {limit:g}s passed"]
    bound = budget.measures.get(REACHED)
    if bound and reached is not None:
        within = [stage for stage, most in bound.items() if int(reached.get(stage, 0)) <= int(most)]
        if within:
            return None
        why.append("the bad revision past every reached limit")
    if pages is not None:
        seen = pages()
        if seen.waiting(elapsed):
            return None
        if seen.owed:
            why.append(seen.settled())
    return ", ".join(why)


def ended(
    elapsed: float,
    budget: Budget,
    recovered_at: float | None,
    *,
    whole: bool = False,
    pages: Callable[[], Pages] | None = None,
    reached: Mapping[str, int] | None = None,
) -> WaitEnded | None:
    """The end of the recovery wait at `elapsed` seconds from the injection, or None to wait on: recovered, decided
    (unless `whole`: the whole wait asked for), or the give-up time reached."""
    if recovered_at is not None:
        return WaitEnded(by="recovered", after=round(recovered_at, 3))
    give_up = budget.give_up_after
    if elapsed >= give_up:
        return gave_up(budget)
    why = None if whole else why_decided(elapsed, budget, pages=pages, reached=reached)
    return WaitEnded(by="decided", after=round(elapsed, 3), detail=why) if why else None


def gave_up(budget: Budget) -> WaitEnded:
    return WaitEnded(by="gave-up", after=budget.give_up_after)


def describe(budget: Budget, monitored: bool = False) -> str:
    """What ends a not-recovered run's wait under `budget`, in words (docs/verdicts.md's table)."""
    limit = budget.ttr.max
    if limit is None:
        return f"the give-up wait, {budget.give_up_after:g}s"
    at = min(limit + margin(budget), budget.give_up_after)
    if at >= budget.give_up_after:
        return f"the give-up wait, {budget.give_up_after:g}s"
    extra = ", or later: every page owed by then" if monitored else ""
    if budget.measures.get(REACHED):
        extra += ", once the bad revision is past every `reached` limit"
    return f"ttr.max + margin, {at:g}s{extra} (at most {budget.give_up_after:g}s)"
