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
    lookaround: bool = False
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
    cuts: list[_Cut] = []
    frames: list[_Frame] = []
    groups: list[_Group] = [_Group()]
    unbounded_in_part = 0
    i = begin
    n = len(source)
    while i < n:
        ch = source[i]
        atom_start = i
        atom_group: _Group | None = None
        atom_atomic = False
        if ch == "\\":
            if i + 1 < n and source[i + 1] in "123456789":
                raise UnsafeRegex(f"backreference at {i}: not supported (it can backtrack exponentially)")
            i += 2
        elif ch == "[":
            i = _skip_class(source, i)
        elif ch == "(":
            if source.startswith("(?P=", i):
                raise UnsafeRegex(f"named backreference at {i}: not supported (it can backtrack exponentially)")
            if source.startswith("(?#", i):
                end = source.find(")", i)
                i = n if end < 0 else end + 1
                continue
            look = source.startswith(("(?=", "(?!", "(?<=", "(?<!"), i)
            frames.append(_Frame(i, lookaround=look, atomic=source.startswith("(?>", i)))
            groups.append(_Group())
            i += 1
            continue
        elif ch == ")":
            if not frames:
                raise UnsafeRegex(f"unbalanced ')' at {i}")
            frame = frames.pop()
            atom_group = groups.pop()
            atom_atomic = frame.atomic
            atom_start = frame.start
            i += 1
        elif ch == "|":
            groups[-1].alternation = True
            if not frames:
                cuts.append(_Cut(i, i + 1, True))
                unbounded_in_part = 0
            i += 1
            continue
        elif ch in "^$":
            i += 1
            continue
        else:
            i += 1
        quant = _QUANTIFIER.match(source, i) if i < n else None
        if quant is None:
            if atom_group is not None and atom_group.unbounded:
                groups[-1].unbounded = True
            continue
        q_end = quant.end()
        possessive = q_end < n and source[q_end] == "+"
        if q_end < n and source[q_end] in "?+":
            q_end += 1
        repeats, unbounded, minimum = _bounds(quant)
        if atom_group is not None and repeats and not (atom_atomic or possessive):
            what = source[atom_start:q_end]
            if atom_group.unbounded:
                raise UnsafeRegex(
                    f"nested repetition {what!r}: a repeated group that itself repeats without bound can "
                    "backtrack exponentially; remove the inner or outer repetition"
                )
            if atom_group.alternation and unbounded:
                raise UnsafeRegex(
                    f"repeated alternation {what!r}: alternatives under an unbounded repetition can backtrack "
                    "exponentially; use a character class or a bound like {0,8}"
                )
        wildcard = source[atom_start:i] == "." and not frames
        if wildcard and unbounded:
            cuts.append(_Cut(atom_start, q_end, False, minimum))
        elif unbounded or (atom_group is not None and atom_group.unbounded):
            groups[-1].unbounded = True
            if unbounded and not possessive:
                unbounded_in_part += 1
                if unbounded_in_part > _MAX_UNBOUNDED:
                    raise UnsafeRegex(
                        f"more than {_MAX_UNBOUNDED} unbounded repetitions between wildcards (at {atom_start}): "
                        "bound them ({1,64}), make them possessive (++), or separate the parts with .*"
                    )
        if wildcard and unbounded:
            unbounded_in_part = 0
        i = q_end
    if frames:
        raise UnsafeRegex(f"unbalanced '(' at {frames[-1].start}")
    return cuts


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
