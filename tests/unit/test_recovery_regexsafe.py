"""The pattern engine on hostile messages: huge, unicode, regex metacharacters; no catastrophic backtracking.

Python's `re` cannot be interrupted, so safety comes from refusing dangerous patterns on load and searching
`.*`-separated parts one after the other. The property tests drive every default and design pattern with
generated messages under a deadline far above normal matching time: a backtracking blow-up takes minutes.
"""

from __future__ import annotations

import re
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from recovery.defaults import default_patterns
from recovery.health import Failure
from recovery.patterns import parse
from recovery.regexsafe import MAX_MESSAGE, UnsafeRegex, compile_safe

SEED_PATTERNS = parse(
    "patterns:\n"
    "- {error_pattern: 'field is immutable', recovery_action: recreate_resource}\n"
    "- {error_pattern: 'dry-run failed.*Invalid.*spec.selector', recovery_action: recreate_deployment}\n"
    "- {error_pattern: 'HelmRelease.*failed.*upgrade', recovery_action: rollback_helm_release}\n"
    "- {error_pattern: 'install retries exhausted', recovery_action: reset_helm_release}\n",
    "seed",
)
ALL = [*default_patterns().patterns, *SEED_PATTERNS.patterns]
FRAGMENTS = [
    "dry-run failed",
    " (Invalid): ",
    "spec.selector",
    "field is immutable",
    "Helm upgrade failed for release ",
    " with chart ",
    "dependency '",
    "' is not ready",
    "Failed to upgrade after ",
    " attempt(s)",
    "HelmRelease",
    "Invalid",
    "timeout waiting for",
    "Deployment/ns/web ",
    ".*+?()[]{}|^$\\",
    "\u00e9\u4e2d\U0001f600",
    "\n",
    "a" * 50,
    "'",
]
hostile = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=40)), max_size=300).map("".join)


@settings(max_examples=300, deadline=1000, suppress_health_check=[HealthCheck.too_slow])
@given(message=hostile, reason=st.text(max_size=30))
def test_matching_any_message_terminates_and_never_raises(message: str, reason: str) -> None:
    for kind in ("Kustomization", "HelmRelease"):
        for pattern in ALL:
            span = pattern.regex.search(Failure("Ready", reason, message).subject(kind))
            if span is not None:
                assert 0 <= span[0] <= span[1] <= len(Failure("Ready", reason, message).subject(kind))


@settings(max_examples=60, deadline=2000)
@given(unit=st.sampled_from(FRAGMENTS), repeat=st.integers(min_value=1000, max_value=200_000))
def test_huge_repetitive_messages_stay_cheap(unit: str, repeat: int) -> None:
    message = unit * (repeat // max(1, len(unit)))
    for pattern in ALL:
        pattern.regex.search(f"Kustomization ReconciliationFailed: {message}")


def test_the_worst_case_for_the_design_pattern_is_linear() -> None:
    """`dry-run failed.*Invalid.*spec.selector` on many partial matches: plain re backtracks quadratically."""
    regex = compile_safe("dry-run failed.*Invalid.*spec.selector.*field is immutable")
    message = "dry-run failed Invalid " * 100_000
    started = time.perf_counter()
    assert regex.search(message) is None
    assert time.perf_counter() - started < 2.0  # plain `re` needs minutes on this input


@given(st.text(min_size=1, max_size=200))
def test_a_message_quoted_into_a_pattern_matches_itself(text: str) -> None:
    """Metacharacters in a message are data: escaped, any message is a safe literal pattern."""
    regex = compile_safe(re.escape(text))
    assert regex.search(f"prefix {text} suffix") is not None


@given(st.text(alphabet="fieldsmutab .*+?()[]{}|^$\\\n", max_size=300))
def test_a_literal_pattern_matches_exactly_when_the_phrase_is_there(text: str) -> None:
    regex = compile_safe("field is immutable")
    assert (regex.search(text) is not None) == ("field is immutable" in text)


@pytest.mark.parametrize(
    ("pattern", "why"),
    [
        ("(a+)+$", "nested repetition"),
        ("(a*)*b", "nested repetition"),
        ("(.*a){20}", "nested repetition"),
        ("(x|xx)+y", "repeated alternation"),
        ("(a)\\1", "backreference"),
        ("(?P<x>a)(?P=x)", "backreference"),
        ("a+b+c+d", "more than 2 unbounded"),
        ("", "empty"),
        ("x*", "empty message"),
        (".*|a", "every"),
        ("(unclosed", "not a valid regular expression"),
    ],
)
def test_dangerous_patterns_are_refused(pattern: str, why: str) -> None:
    with pytest.raises(UnsafeRegex, match=re.escape(why)):
        compile_safe(pattern)


@pytest.mark.parametrize(
    "pattern",
    [
        "(?:foo|bar) baz",
        "(a+)",  # one repetition in a group, the group not repeated
        "(?>a+)+b",  # atomic: no backtracking into it
        "a++b+",  # possessive
        "x{1,10}y{2}",
        "[(|)*+]+ literal",
        "(?i)Field Is Immutable",
        "dependency '[^']+' (is not ready|revision is not up to date)",
    ],
)
def test_ordinary_patterns_are_accepted(pattern: str) -> None:
    compile_safe(pattern)


@pytest.mark.parametrize(
    ("pattern", "text", "expected"),
    [
        ("a.*b.*c", "xxaYYbZZc", (2, 9)),
        ("a.*b.*c", "c b a", None),
        ("a.+b", "ab", None),
        ("a.+b", "a-b", (0, 3)),
        ("foo.+", "foo", None),
        ("foo.+", "food", (0, 3)),
        ("^Kustomization.*immutable", "Kustomization X: field is immutable", (0, 35)),
        ("^Kustomization.*immutable", "HelmRelease Kustomization immutable", None),
        ("x|y.*z", "..y..z", (2, 6)),
        ("(?i)ABC.*DEF", "abc def", (0, 7)),
        ("Failed.*UPGRADE", "failed to upgrade", (0, 17)),  # case-insensitive like Flux's changing casing
    ],
)
def test_wildcards_mean_later_in_the_message(pattern: str, text: str, expected: tuple[int, int] | None) -> None:
    assert compile_safe(pattern).search(text) == expected


def test_only_the_head_of_a_huge_message_is_searched() -> None:
    regex = compile_safe("needle")
    assert regex.search("x" * (MAX_MESSAGE - 6) + "needle") == (MAX_MESSAGE - 6, MAX_MESSAGE)
    assert regex.search("needle" + "x" * 10_000_000) == (0, 6)
    assert regex.search("x" * (MAX_MESSAGE + 1) + "needle") is None
