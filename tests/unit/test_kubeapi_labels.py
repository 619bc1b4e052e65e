"""Label selectors: apimachinery's grammar, its matching rules, a canonical spelling, and refusals that say where."""

from __future__ import annotations

import re

import pytest

from kubeapi import LabelSelector, SelectorError

LABELS = {"app": "web", "tier": "db", "replicas": "3", "example.com/mode": "operator"}


@pytest.mark.parametrize(
    ("text", "matches"),
    [
        ("app=web", True),
        ("app==web", True),
        ("app!=web", False),
        ("app", True),
        ("!app", False),
        ("!missing", True),
        ("missing!=x", True),
        ("tier in (db, cache)", True),
        ("tier notin (db)", False),
        ("replicas>2,replicas<4", True),
        ("app>2", False),  # not a number: no match, as the server
        ("example.com/mode=operator, app = web", True),
        ("app=web,tier=web", False),
        ("app=", False),
    ],
)
def test_selectors_match_as_the_api_server_does(text: str, matches: bool) -> None:
    assert LabelSelector.parse(text).matches(LABELS) is matches


def test_equal_selectors_print_the_same() -> None:
    a = LabelSelector.parse("tier in (db,cache), app==web, !legacy")
    b = LabelSelector.parse("!legacy,app=web,tier in (cache, db)")
    assert str(a) == str(b) == "app=web,!legacy,tier in (cache,db)"
    assert LabelSelector.parse(str(a)) == a


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty"),
        ("  ", "empty"),
        ("a==b==c", "expected ',' between requirements, found '=='"),
        ("=x", "expected a label key, found '='"),
        ("a b", "after key 'a'"),
        ("a in ()", "expected a value, found ')'"),
        ("a in (b", "found the end"),
        ("a,", "expected a label key, found the end"),
        ("a>b", "whole number"),
        ("-a=b", "label key '-a'"),
        ("Example.com/a=b", "prefix must be a DNS subdomain"),
        ("a=" + "v" * 64, "at most 63"),
        ("a=b c", "between requirements"),
    ],
)
def test_bad_selectors_are_refused_saying_what_was_expected(text: str, fragment: str) -> None:
    with pytest.raises(SelectorError, match=re.escape(fragment)) as err:
        LabelSelector.parse(text)
    assert "\n" not in str(err.value)
