"""JSON with finite numbers only: what a run wrote is a measurement, and a measurement that is not finite is bad input.

`json.loads` reads NaN, Infinity and -Infinity, and an overflowing literal such as 1e999 as infinity; a TTR of NaN
compares false against every budget, so a reader that let one through could pass a run that measured nothing.
"""

from __future__ import annotations

import json
import math
from typing import Any


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a finite number")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text} is not a finite number")
    return value


def loads(text: str) -> Any:
    """Parse JSON; ValueError ("NaN is not a finite number") for a number that is not finite,
    json.JSONDecodeError (a ValueError too) for text that is not JSON."""
    return json.loads(text, parse_constant=_refuse_constant, parse_float=_finite_float)
