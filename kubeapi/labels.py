"""Kubernetes label selectors (`app=web,tier!=db,env in (a,b),!legacy`): parsed, matched and printed canonically.

The API server filters lists and watches by the selector text, so a bad selector must be refused before it is
sent (the server's error would come only when the first list runs); the same parser lets in-memory fakes and
callers that got an object some other way apply exactly the filter the server applies. The grammar is
apimachinery's labels.Parse: `key`, `!key`, `key=v`, `key==v`, `key!=v`, `key in (v,...)`, `key notin (v,...)`,
`key>n`, `key<n`, joined by commas.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_PREFIX = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_TOKEN = re.compile(r"\s*(?:(?P<op>==|!=|=|!|\(|\)|,|>|<)|(?P<word>[^\s=!(),<>]+))")
_SETS = ("in", "notin")


class SelectorError(ValueError):
    """The text is not a label selector; the message says where and what was expected."""


@dataclass(frozen=True, order=True)
class Requirement:
    """One term: `op` is exists, !, =, !=, in, notin, > or <."""

    key: str
    op: str
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        value = labels.get(self.key)
        if self.op == "exists":
            return value is not None
        if self.op == "!":
            return value is None
        if self.op in ("=", "in"):
            return value is not None and value in self.values
        if self.op in ("!=", "notin"):
            return value is None or value not in self.values
        try:
            number, bound = int(value or ""), int(self.values[0])
        except ValueError:
            return False
        return number > bound if self.op == ">" else number < bound

    def __str__(self) -> str:
        if self.op == "exists":
            return self.key
        if self.op == "!":
            return f"!{self.key}"
        if self.op in _SETS:
            return f"{self.key} {self.op} ({','.join(self.values)})"
        return f"{self.key}{self.op}{self.values[0]}"


@dataclass(frozen=True)
class LabelSelector:
    """Requirements that must all hold; str() is canonical (sorted, `==` as `=`), so equal selectors print equal."""

    requirements: tuple[Requirement, ...]

    @classmethod
    def parse(cls, text: str) -> LabelSelector:
        """The selector in `text`; SelectorError for anything the API server would refuse, and for ''."""
        tokens = list(_tokens(text))
        if not tokens:
            raise SelectorError("empty selector")
        parser = _Parser(tokens)
        requirements = [parser.requirement()]
        while parser.peek() is not None:
            parser.expect(",", "',' between requirements")
            requirements.append(parser.requirement())
        return cls(tuple(sorted(set(requirements))))

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        return all(r.matches(labels or {}) for r in self.requirements)

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


def _tokens(text: str) -> Iterator[str]:
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            if not text[pos:].strip():
                return
            raise SelectorError(f"unexpected {text[pos:]!r}")
        pos = match.end()
        if match.lastgroup is not None:
            yield match[match.lastgroup]


class _Parser:
    def __init__(self, tokens: list[str]):
        self.tokens = tokens
        self.pos = 0

    def peek(self) -> str | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> str | None:
        token = self.peek()
        self.pos += 1
        return token

    def expect(self, wanted: str, what: str) -> None:
        token = self.take()
        if token != wanted:
            raise SelectorError(f"expected {what}, found {_found(token)}")

    def word(self, what: str) -> str:
        token = self.take()
        if token is None or not _is_word(token):
            raise SelectorError(f"expected {what}, found {_found(token)}")
        return token

    def requirement(self) -> Requirement:
        if self.peek() == "!":
            self.take()
            return Requirement(_key(self.word("a label key after '!'")), "!")
        key = _key(self.word("a label key"))
        op = self.peek()
        if op is None or op == ",":
            return Requirement(key, "exists")
        self.take()
        if op in ("=", "==", "!="):
            value = self.peek()
            value = self.word("a value") if value is not None and _is_word(value) else ""
            return Requirement(key, "!=" if op == "!=" else "=", (_value(value),))
        if op in (">", "<"):
            bound = self.word(f"a whole number after '{op}'")
            if not re.fullmatch(r"-?\d+", bound):
                raise SelectorError(f"{key}{op}{bound}: expected a whole number after '{op}'")
            return Requirement(key, op, (bound,))
        if op in _SETS:
            self.expect("(", f"'(' after '{op}'")
            values = [_value(self.word("a value"))]
            while self.peek() == ",":
                self.take()
                values.append(_value(self.word("a value")))
            self.expect(")", "',' or ')' in the value list")
            return Requirement(key, op, tuple(sorted(set(values))))
        raise SelectorError(f"after key {key!r} expected =, ==, !=, in, notin, >, < or ',', found {_found(op)}")


def _is_word(token: str) -> bool:
    return token not in ("==", "!=", "=", "!", "(", ")", ",", ">", "<")


def _found(token: str | None) -> str:
    return "the end" if token is None else repr(token)


def _key(key: str) -> str:
    prefix, _, name = key.rpartition("/")
    if "/" in key and (not prefix or len(prefix) > 253 or not _PREFIX.match(prefix)):
        raise SelectorError(f"label key {key!r}: the prefix must be a DNS subdomain (like example.com)")
    if not name or len(name) > 63 or not _NAME.match(name):
        raise SelectorError(
            f"label key {key!r}: the name must be 1-63 letters, digits, '-', '_' or '.', "
            "starting and ending with a letter or digit"
        )
    return key


def _value(value: str) -> str:
    if value and (len(value) > 63 or not _NAME.match(value)):
        raise SelectorError(
            f"label value {value!r}: at most 63 letters, digits, '-', '_' or '.', "
            "starting and ending with a letter or digit"
        )
    return value
