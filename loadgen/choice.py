"""`--load none|PROFILE|FILE` and `--load-workers N` resolved into a LoadPlan, or the one-line reason they are wrong.

Checked before any cluster is touched: a profile must be one of the SLO file's `load_profiles`; a locustfile
must exist, import and define a locust User (checked in a process of its own: importing locust monkey-patches
the importer). A locustfile's users run beside the teams of the `light` profile, so a run under a user's own
traffic still measures delivery.
"""

from __future__ import annotations

from pathlib import Path

from assertions.load_profiles import MAX_WORKERS, NONE
from assertions.slo import SloFile
from foundation.errors import UserError
from loadgen.process import check_locustfile
from loadgen.run import LoadPlan

FILE_PROFILE = "light"  # the teams a user's locustfile runs beside


def looks_like_file(value: str) -> bool:
    return value.endswith(".py") or "/" in value


def workers(value: str, source: str) -> int:
    try:
        count = int(value)
        if not 0 <= count <= MAX_WORKERS:
            raise ValueError
    except ValueError:
        raise UserError(
            f"Invalid load workers {value!r} from {source}: a whole number from 0 to {MAX_WORKERS}"
        ) from None
    return count


def choose(value: str, source: str, slo: SloFile, worker_count: int | None = None) -> LoadPlan | None:
    """The plan for `value` (None: no load); UserError naming the value, where it came from, and the fix."""
    value = value.strip()
    if value == NONE:
        return None
    profile = slo.load_profiles.get(value)
    if profile is not None:
        return LoadPlan(profile, value, None, worker_count)
    if looks_like_file(value):
        problem = check_locustfile(value)
        if problem:
            raise UserError(f"Invalid load {value!r} from {source}: {problem}")
        beside = slo.load_profiles.get(FILE_PROFILE)
        if beside is None:
            raise UserError(
                f"Invalid load {value!r} from {source}: a locustfile runs beside the teams of load profile "
                f"{FILE_PROFILE!r}, which {slo.path} does not define (load_profiles)"
            )
        return LoadPlan(beside, value, str(Path(value).resolve()), worker_count)
    known = ", ".join([NONE, *slo.load_profiles]) if slo.load_profiles else f"{NONE} (it defines no load_profiles)"
    raise UserError(
        f"Invalid load {value!r} from {source}: use a load profile of {slo.path} ({known}) or a locustfile (FILE.py)"
    )
