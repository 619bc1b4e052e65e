"""Failure categories of the Allure report: SLO breach, not recovered, invalid, harness error, product failure.

One table, written two ways: `categories.json` in the results directory (Allure 2 format: status + message
regex, what Allure 2 and the classic report read) and the `categories` of the Allure 3 config that
`resilience report` generates, which match the `verdict` label the plugin puts on every scenario test, so the
category does not depend on how a scenario words its failure. Order matters: the first matching category wins.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

FAILED_OR_BROKEN = ("failed", "broken")


@dataclass(frozen=True)
class Category:
    id: str
    name: str
    description: str
    statuses: tuple[str, ...]
    verdict: str | None = None  # value of the `verdict` label (Allure 3)
    message: str | None = None  # message regex (Allure 2; the whole message must match)
    hide: bool = False


CATEGORIES: tuple[Category, ...] = (
    Category(
        "resilience-summary",
        "Resilience summary",
        "The TTR matrix page itself: failed when any fault x recovery did not meet its budget.",
        FAILED_OR_BROKEN,
        verdict="summary",
        message=r"(?s)TTR matrix:.*",
        hide=True,
    ),
    Category(
        "slo-breach",
        "SLO breach",
        "Recovered, but later than the recovery SLO allows (TTR or time to detect over budget).",
        FAILED_OR_BROKEN,
        verdict="breach",
        message=r"(?s).*(\bbreach\b|TTR [0-9.]+s > max|time to detect [0-9.]+s > max|p95 TTR).*",
    ),
    Category(
        "not-recovered",
        "Not recovered within the budget",
        "Steady state did not come back before the scenario gave up waiting.",
        FAILED_OR_BROKEN,
        verdict="not-recovered",
        message=r"(?s).*not[ -]recovered.*",
    ),
    Category(
        "invalid",
        "Invalid run (proof of fault missing)",
        "The fault was never observed, or the cluster was not steady before injection: the run proves nothing.",
        FAILED_OR_BROKEN,
        verdict="invalid",
        message=r"(?s).*(\binvalid\b|proof of fault).*",
    ),
    Category(
        "harness-error",
        "Harness error",
        "The harness itself failed (an exception other than an assertion: a process died, a timeout passed).",
        ("broken",),
    ),
    Category(
        "product-failure",
        "Product failure",
        "An assertion about the product failed outside the recovery budget (steady state, invariants).",
        ("failed",),
    ),
)


def allure2_categories() -> list[dict[str, Any]]:
    """categories.json for the results directory."""
    out = []
    for c in CATEGORIES:
        item: dict[str, Any] = {"name": c.name, "description": c.description, "matchedStatuses": list(c.statuses)}
        if c.message is not None:
            item["messageRegex"] = c.message
        out.append(item)
    return out


def allure3_categories() -> list[dict[str, Any]]:
    """The `categories` of an Allure 3 config: the verdict label decides, the statuses restrict."""
    out = []
    for c in CATEGORIES:
        matchers: dict[str, Any] = {"statuses": list(c.statuses)}
        if c.verdict is not None:
            matchers["labels"] = {"verdict": f"^{c.verdict}$"}
        item: dict[str, Any] = {"id": c.id, "name": c.name, "matchers": matchers}
        if c.verdict not in (None, "summary"):
            item["groupBy"] = [{"label": "fault"}]
        if c.hide:
            item["hide"] = True
        out.append(item)
    return out
