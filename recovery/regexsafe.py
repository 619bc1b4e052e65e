"""Regexes that cannot hang the operator: checked on load, and searched in parts so `.*` costs linear time.

Python's `re` backtracks and holds the GIL, so one bad pattern on one hostile message (a controller message
quoting user data) would freeze every watch. A pattern is therefore checked before use: no nested or
alternated unbounded repetition (exponential), no backreferences, at most two unbounded repetitions between
wildcards. Top-level wildcards (`.*`, `.+`, `.{n,}`) split it into parts searched one after the other, each
from where the previous one ended, so `A.*B.*C` means "A, later B, later C" and never rescans the message.
Messages are searched in their first MAX_MESSAGE characters (Flux puts the cause first).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

MAX_MESSAGE = 4096
FLAGS = re.IGNORECASE | re.DOTALL
_LARGE = 16  # a repetition with a higher upper bound counts as unbounded
_MAX_UNBOUNDED = 2
_GLOBAL_FLAGS = re.compile(r"^\(\?[aiLmsux]+\)")
_QUANTIFIER = re.compile(r"\*|\+|\?|\{(\d*)(,?)(\d*)\}")


class UnsafeRegex(ValueError):
    """The pattern could backtrack catastrophically, or does not compile; the message says which part."""


@dataclass(frozen=True)
class _Frame:
    start: int
    atomic: bool = False


@dataclass
class _Group:
    unbounded: bool = False
    alternation: bool = False


@dataclass(frozen=True)
class _Cut:
    """A place where the pattern splits: a top-level `|` or a top-level unbounded wildcard."""

    start: int
    end: int
    alternation: bool
    min_gap: int = 0


@dataclass(frozen=True)
class _Chain:
    """Parts searched in order, each at least `gap` characters after the previous one; `tail` after the last."""

    parts: tuple[tuple[re.Pattern[str], int], ...]
    tail: int = 0

    def search(self, text: str) -> tuple[int, int] | None:
        start: int | None = None
        pos = 0
        for part, gap in self.parts:
            match = part.search(text, pos + gap)
            if match is None:
                return None
            start = match.start() if start is None else start
            pos = match.end()
        if start is None or pos + self.tail > len(text):
            return None
        return start, pos


@dataclass(frozen=True)
class SafeRegex:
    """A checked pattern: alternatives, each a chain of parts separated by "any text of at least gap chars"."""

    source: str
    alternatives: tuple[_Chain, ...]

    def search(self, text: str) -> tuple[int, int] | None:
        """The span from the first part's start to the last part's end, or None; linear in the parts' cost."""
        text = text[:MAX_MESSAGE]
        for chain in self.alternatives:
            span = chain.search(text)
            if span is not None:
                return span
        return None


def compile_safe(source: str) -> SafeRegex:
    """Check `source` and compile it into parts; UnsafeRegex says what is wrong and how to fix it."""
    if not source:
        raise UnsafeRegex("empty pattern: it would match every message")
    try:
        whole = re.compile(source, FLAGS)
    except re.error as e:
        raise UnsafeRegex(f"not a valid regular expression: {e}") from e
    if whole.search("") is not None:
        raise UnsafeRegex("matches the empty message, so it would match every failure: make it specific")
    prefix_match = _GLOBAL_FLAGS.match(source)
    prefix = prefix_match.group(0) if prefix_match else ""
    cuts = _scan(source, len(prefix))
    alternatives: list[_Chain] = []
    begin, gap = len(prefix), 0
    chain: list[tuple[re.Pattern[str], int]] = []
    for cut in [*cuts, _Cut(len(source), len(source), True)]:
        piece = source[begin : cut.start]
        if piece:
            chain.append((_compile_part(prefix + piece), gap))
            gap = 0
        gap += cut.min_gap
        if cut.alternation:
            if not chain:
                raise UnsafeRegex("an alternative is only a wildcard, so it would match every message")
            alternatives.append(_Chain(tuple(chain), gap))
            chain, gap = [], 0
        begin = cut.end
    return SafeRegex(source, tuple(alternatives))


def _compile_part(text: str) -> re.Pattern[str]:
    try:
        return re.compile(text, FLAGS)
    except re.error as e:
        raise UnsafeRegex(f"the part {text!r} between wildcards does not compile on its own: {e}") from e


def _scan(source: str, begin: int) -> list[_Cut]:
    """Walk the pattern once: reject dangerous constructs, return the top-level cut points."""
    return _Scanner(source).run(begin)


@dataclass(frozen=True)
class _Atom:
    """One quantifiable item: where it starts, and for a group what it contains."""

    start: int
    group: _Group | None = None
    atomic: bool = False


class _Scanner:
    def __init__(self, source: str):
        self.source = source
        self.cuts: list[_Cut] = []
        self.frames: list[_Frame] = []
        self.groups: list[_Group] = [_Group()]
        self.unbounded_in_part = 0

    def run(self, begin: int) -> list[_Cut]:
        i = begin
        while i < len(self.source):
            atom, i = self._atom(i)
            if atom is not None:
                i = self._quantifier(atom, i)
        if self.frames:
            raise UnsafeRegex(f"unbalanced '(' at {self.frames[-1].start}")
        return self.cuts

    def _atom(self, i: int) -> tuple[_Atom | None, int]:
        """The atom at i (None for group openings, alternation and anchors) and the index after it."""
        source, ch = self.source, self.source[i]
        if ch == "\\":
            if i + 1 < len(source) and source[i + 1] in "123456789":
                raise UnsafeRegex(f"backreference at {i}: not supported (it can backtrack exponentially)")
            return _Atom(i), i + 2
        if ch == "[":
            return _Atom(i), _skip_class(source, i)
        if ch == "(":
            if source.startswith("(?P=", i):
                raise UnsafeRegex(f"named backreference at {i}: not supported (it can backtrack exponentially)")
            if source.startswith("(?#", i):
                end = source.find(")", i)
                return None, len(source) if end < 0 else end + 1
            self.frames.append(_Frame(i, atomic=source.startswith("(?>", i)))
            self.groups.append(_Group())
            return None, i + 1
        if ch == ")":
            if not self.frames:
                raise UnsafeRegex(f"unbalanced ')' at {i}")
            frame = self.frames.pop()
            return _Atom(frame.start, self.groups.pop(), frame.atomic), i + 1
        if ch == "|":
            self.groups[-1].alternation = True
            if not self.frames:
                self.cuts.append(_Cut(i, i + 1, True))
                self.unbounded_in_part = 0
            return None, i + 1
        if ch in "^$":
            return None, i + 1
        return _Atom(i), i + 1

    def _quantifier(self, atom: _Atom, i: int) -> int:
        """Check the quantifier after `atom` (if any); record wildcard cuts; return the index after it."""
        source = self.source
        quant = _QUANTIFIER.match(source, i) if i < len(source) else None
        if quant is None:
            if atom.group is not None and atom.group.unbounded:
                self.groups[-1].unbounded = True
            return i
        end = quant.end()
        possessive = end < len(source) and source[end] == "+"
        if end < len(source) and source[end] in "?+":
            end += 1
        repeats, unbounded, minimum = _bounds(quant)
        if atom.group is not None and repeats and not (atom.atomic or possessive):
            self._check_group(atom, unbounded, source[atom.start : end])
        if source[atom.start : i] == "." and not self.frames and unbounded:
            self.cuts.append(_Cut(atom.start, end, False, minimum))
            self.unbounded_in_part = 0
        elif unbounded or (atom.group is not None and atom.group.unbounded):
            self.groups[-1].unbounded = True
            if unbounded and not possessive:
                self.unbounded_in_part += 1
                if self.unbounded_in_part > _MAX_UNBOUNDED:
                    raise UnsafeRegex(
                        f"more than {_MAX_UNBOUNDED} unbounded repetitions between wildcards (at {atom.start}): "
                        "bound them ({1,64}), make them possessive (++), or separate the parts with .*"
                    )
        return end

    @staticmethod
    def _check_group(atom: _Atom, unbounded: bool, what: str) -> None:
        assert atom.group is not None
        if atom.group.unbounded:
            raise UnsafeRegex(
                f"nested repetition {what!r}: a repeated group that itself repeats without bound can "
                "backtrack exponentially; remove the inner or outer repetition"
            )
        if atom.group.alternation and unbounded:
            raise UnsafeRegex(
                f"repeated alternation {what!r}: alternatives under an unbounded repetition can backtrack "
                "exponentially; use a character class or a bound like {0,8}"
            )


def _skip_class(source: str, i: int) -> int:
    """Index just past the character class starting at i."""
    j = i + 1
    if j < len(source) and source[j] == "^":
        j += 1
    if j < len(source) and source[j] == "]":
        j += 1
    while j < len(source) and source[j] != "]":
        j += 2 if source[j] == "\\" else 1
    return j + 1


def _bounds(quant: re.Match[str]) -> tuple[bool, bool, int]:
    """(repeats more than once, unbounded or large, minimum count) of a quantifier match."""
    text = quant.group(0)
    if text == "*":
        return True, True, 0
    if text == "+":
        return True, True, 1
    if text == "?":
        return False, False, 0
    low, comma, high = quant.group(1), quant.group(2), quant.group(3)
    minimum = int(low or 0)
    if not comma:
        return minimum > 1, minimum > _LARGE, minimum
    if not high:
        return True, True, minimum
    return int(high) > 1, int(high) > _LARGE, minimum
