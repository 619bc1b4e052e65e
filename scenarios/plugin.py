"""The chaos suite's pytest plugin: options, validation before any cluster, parametrization, the run fixture.

Options resolve CLI > environment > profile (from the SLO file) > default, and a bad value names where it came
from. Everything (SLO file, recovery modes, profile) is validated in pytest_configure, before a cluster is
touched. Tests ask for `run_fault` and are parametrized by recovery mode and repeat index.
"""

from __future__ import annotations

import os
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from assertions import slo as slo_model
from assertions.schema import entry_problem
from assertions.verdict import Judgement, RunResult, Verdict, evidence_from_entry, judge
from clusters.model import Cluster
from clusters.paths import state_root
from clusters.providers import shard_refusal
from clusters.pytest_plugin import MONITORING_DEFAULT, monitoring_option, monitoring_wanted, provider_name
from foundation.errors import UserError
from injectors import baseline_key
from injectors.registry import FAULTS, families, fault
from loadgen import choice
from loadgen.run import LoadPlan
from monitoring.facts.rules import duration
from scenarios import hooks
from scenarios.baseline_store import DEFAULT_MAX_AGE, BaselineStore, BaselineStoreWarning
from scenarios.recoveries import RecoveryMode, parse
from scenarios.runner import ScenarioRun

DEFAULT_SLO = Path(__file__).with_name("slo.yaml")
DEFAULT_BASELINES = ("none",)
# More runs per cell than this is a typo, not a plan (the nightly profile runs 3).
MAX_REPEAT = 100


@dataclass
class SuiteConfig:
    """The resolved options of a chaos session."""

    slo: slo_model.SloFile
    recoveries: list[RecoveryMode]
    repeat: int
    baselines: tuple[str, ...]
    run_dir: Path
    faults: tuple[str, ...] | None = None
    load: LoadPlan | None = None
    started: dict[str, RecoveryMode] = field(default_factory=dict)
    monitoring: bool = False  # the profile's; --monitoring / RESILIENCE_MONITORING decide first
    profile: str | None = None
    store: BaselineStore | None = None  # None: every baseline is measured (scenarios.baseline_store)
    wait_full: bool = False  # --wait-full: every recovery wait to its give-up time (assertions.decided)


SUITE = pytest.StashKey[SuiteConfig]()
# The longest a stored baseline may be reused (a longer age would keep a baseline no one measures again).
MAX_AGE_LIMIT = 365 * 86400.0
# The user property naming what the baseline store did for a test's cell (reused, or why it was measured).
STORE_PROPERTY = "resilience.baseline_store"
RUN_DIR_KEY = "resilience_run_dir"
# Shards of the matrix (--shard I/N), what the session is meant to cover, and runs slowed by their neighbours.
pytest_plugins = ["scenarios.sharding"]


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    pluginmanager.add_hookspecs(hooks)


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("chaos", "GitOps chaos scenarios")
    group.addoption(
        "--recovery",
        action="append",
        help="recovery under test (repeatable, or comma-separated): "
        "none | flux-native | flux-tuned | operator | staged | command:<cmd> | manifest:<path>  "
        "[env RESILIENCE_RECOVERY]",
    )
    group.addoption("--slo", help=f"SLO file (default {DEFAULT_SLO.name} shipped with the suite) [env RESILIENCE_SLO]")
    group.addoption(
        "--repeat", help="runs per fault and recovery (default 1, or the profile's) [env RESILIENCE_REPEAT]"
    )
    group.addoption("--profile", help="a profile of the SLO file: quick | nightly | release [env RESILIENCE_PROFILE]")
    group.addoption(
        "--baseline",
        action="append",
        help="recovery modes that are baselines (repeatable, or comma-separated): a missed time budget does not "
        "fail their tests or the gate; lost data, invalid runs and harness errors still do "
        "(default: the profile's baselines, else none) [env RESILIENCE_BASELINE]",
    )
    group.addoption(
        "--load",
        help="teams delivering through Flux during every fault: none | a load profile of the SLO file (light, "
        "heavy, api-pressure) | a locustfile FILE.py of your own, run beside the light teams (default: none, or "
        "the profile's) [env RESILIENCE_LOAD]",
    )
    group.addoption(
        "--load-workers",
        help="locust worker processes for the load, 0 to 64 (default: the load profile's) [env "
        "RESILIENCE_LOAD_WORKERS]",
    )
    group.addoption("--run-dir", help="where revert records and timelines go (default runs/<time>-<pid>)")
    group.addoption(
        "--baseline-store",
        metavar="DIR",
        help="where baseline runs (none, flux-native, flux-tuned) are kept and reused from while their key holds; "
        "none: measure every one (default: baselines/ under the state directory) [env RESILIENCE_BASELINE_STORE]",
    )
    group.addoption(
        "--baseline-max-age",
        help=f"reuse a stored baseline run younger than this, e.g. 12h, 7d (default {DEFAULT_MAX_AGE}) "
        "[env RESILIENCE_BASELINE_MAX_AGE]",
    )
    group.addoption(
        "--fresh-baselines",
        action="store_true",
        default=None,
        help="measure every baseline again (and store it) [env RESILIENCE_FRESH_BASELINES=1]",
    )
    group.addoption(
        "--wait-full",
        action="store_true",
        default=None,
        help="wait for recovery up to each budget's give-up time, even once the verdict can no longer change (a "
        "run that has not recovered past its ttr.max, its alerts paged): a TTR measured beyond its budget, for "
        "benchmarks [env RESILIENCE_WAIT_FULL]",
    )


_ON, _OFF = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def _switch(config: pytest.Config, name: str, env: str) -> bool:
    """An on/off option: the flag, or its variable as one of _ON / _OFF (anything else is a usage error)."""
    value, source = _option(config, name, env)
    if value is None:
        return False
    raw = str(value).strip().lower()  # the flag itself is True: "true"
    if raw not in (*_ON, *_OFF):
        raise pytest.UsageError(f"Invalid {raw!r} from {source}: use one of {', '.join(_ON + _OFF)}")
    return raw in _ON


def _option(config: pytest.Config, name: str, env: str) -> tuple[str | list[str] | None, str]:
    value = config.getoption(name)
    if value is not None:
        return value, name
    if os.environ.get(env):  # an empty variable is unset, as in most tools
        return os.environ[env], env
    return None, ""


def _names(value: str | list[str], source: str, what: str) -> list[str]:
    """Comma-separated names from one or more option values; a value that names nothing is an error."""
    values = value if isinstance(value, list) else [value]
    names = [n.strip() for v in values for n in v.split(",") if n.strip()]
    if not names:
        raise pytest.UsageError(f"Invalid {what} {','.join(values)!r} from {source}: name at least one {what}")
    return list(dict.fromkeys(names))


def _resolve(config: pytest.Config) -> SuiteConfig:
    slo_value, slo_source = _option(config, "--slo", "RESILIENCE_SLO")
    slo_path = Path(str(slo_value)) if slo_value else DEFAULT_SLO
    try:
        slo = slo_model.load(slo_path, FAULTS)
    except UserError as e:
        raise pytest.UsageError(f"{e} (from {slo_source or 'the default'})") from e
    profile_value, profile_source = _option(config, "--profile", "RESILIENCE_PROFILE")
    profile = None
    if profile_value:
        try:
            profile = slo.profile(str(profile_value))
        except UserError as e:
            raise pytest.UsageError(f"{e} (from {profile_source})") from e
    recovery_value, recovery_source = _option(config, "--recovery", "RESILIENCE_RECOVERY")
    if recovery_value is None:
        specs = list(profile.recoveries) if profile else ["operator"]
        recovery_source = f"profile {profile.name}" if profile else "the default"
    else:
        specs = _names(recovery_value, recovery_source, "recovery")
    try:
        recoveries = [parse(spec, recovery_source) for spec in dict.fromkeys(specs)]
    except UserError as e:
        raise pytest.UsageError(str(e)) from e
    recoveries = _runnable(config, recoveries, asked=recovery_value is not None, source=recovery_source)
    repeat_value, repeat_source = _option(config, "--repeat", "RESILIENCE_REPEAT")
    repeat = profile.repeat if profile and repeat_value is None else 1
    if repeat_value is not None:
        try:
            repeat = int(str(repeat_value))
            if not 1 <= repeat <= MAX_REPEAT:
                raise ValueError
        except ValueError:
            raise pytest.UsageError(
                f"Invalid repeat {repeat_value!r} from {repeat_source}: a whole number from 1 to {MAX_REPEAT}"
            ) from None
    baseline_value, baseline_source = _option(config, "--baseline", "RESILIENCE_BASELINE")
    baselines = profile.baselines if profile and profile.baselines else tuple(DEFAULT_BASELINES)
    if baseline_value is not None:
        baselines = tuple(_names(baseline_value, baseline_source, "baseline"))
        for name in baselines:
            try:
                parse(name, baseline_source)
            except UserError as e:
                raise pytest.UsageError(str(e).replace("Invalid recovery", "Invalid baseline", 1)) from e
    # xdist workers share the controller's run directory (pytest_configure_node), so one `resilience revert` undoes
    # every worker's leftovers.
    shared = (getattr(config, "workerinput", None) or {}).get(RUN_DIR_KEY)
    default = Path("runs") / f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    run_dir = Path(config.getoption("--run-dir") or shared or default)
    faults = profile.faults if profile else None
    load = _resolve_load(config, slo, profile)
    monitoring = bool(profile and profile.monitoring)
    named = profile.name if profile else None
    wait_full = _switch(config, "--wait-full", "RESILIENCE_WAIT_FULL")
    return SuiteConfig(
        slo,
        recoveries,
        repeat,
        baselines,
        run_dir,
        faults,
        load,
        monitoring=monitoring,
        profile=named,
        store=_resolve_store(config),
        wait_full=wait_full,
    )


def _resolve_store(config: pytest.Config) -> BaselineStore | None:
    """The baseline store, unless turned off or the provider's Flux is not the pins (injectors.baseline_key)."""
    root, _ = _option(config, "--baseline-store", "RESILIENCE_BASELINE_STORE")
    age_value, age_source = _option(config, "--baseline-max-age", "RESILIENCE_BASELINE_MAX_AGE")
    try:
        max_age = duration(DEFAULT_MAX_AGE if age_value is None else str(age_value))
        if not 0 < max_age <= MAX_AGE_LIMIT:
            raise ValueError(age_value)
    except ValueError:
        raise pytest.UsageError(
            f"Invalid baseline max age {age_value!r} from {age_source}: a duration such as 12h or 7d, at most 365d"
        ) from None
    fresh = _switch(config, "--fresh-baselines", "RESILIENCE_FRESH_BASELINES")
    if root == "none" or provider_name(config) not in baseline_key.PINNED_PROVIDERS:
        return None
    path = Path(str(root)).expanduser() if root else state_root() / "baselines"
    return BaselineStore(path, max_age, fresh=fresh)


def _runnable(config: pytest.Config, recoveries: list[RecoveryMode], asked: bool, source: str) -> list[RecoveryMode]:
    """The recoveries the provider can run. One asked for by name that it cannot (flux-tuned needs a Flux shard) is
    bad input: one line, exit 2, before any cluster work. One a profile brings is left out of the plan, and said."""
    provider = provider_name(config)
    refused = {mode.name: why for mode in recoveries if (why := shard_refusal(mode.name, provider))}
    if refused and asked:
        pytest.exit(next(iter(refused.values())), returncode=2)
    if refused:
        names = ", ".join(refused)
        config.issue_config_time_warning(
            pytest.PytestConfigWarning(f"{source}: {names} left out: the {provider} provider starts no Flux shard"), 2
        )
    kept = [mode for mode in recoveries if mode.name not in refused]
    if not kept:
        raise pytest.UsageError(f"{source}: no recovery the {provider} provider can run")
    return kept


def _resolve_load(config: pytest.Config, slo: slo_model.SloFile, profile: slo_model.Profile | None) -> LoadPlan | None:
    workers_value, workers_source = _option(config, "--load-workers", "RESILIENCE_LOAD_WORKERS")
    load_value, load_source = _option(config, "--load", "RESILIENCE_LOAD")
    if load_value is None:
        load_value = profile.load if profile else "none"
        load_source = f"profile {profile.name}" if profile else "the default"
    try:
        workers = None if workers_value is None else choice.workers(str(workers_value), workers_source)
        return choice.choose(str(load_value), load_source, slo, workers)
    except UserError as e:
        raise pytest.UsageError(str(e)) from e


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """xdist controller: hand the session's run directory to each worker."""
    node.workerinput[RUN_DIR_KEY] = str(node.config.stash[SUITE].run_dir)


def pytest_configure(config: pytest.Config) -> None:
    for family in families():
        config.addinivalue_line("markers", f"{family}: the {family} fault family")
    suite = _resolve(config)
    provider = provider_name(config)
    config.stash[SUITE] = suite
    # The profile's monitoring comes after --monitoring and RESILIENCE_MONITORING; it runs beside local clusters.
    if suite.monitoring and monitoring_option(config)[0] is None and provider == "local":
        config.stash[MONITORING_DEFAULT] = True


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    suite = metafunc.config.stash[SUITE]
    if "recovery_name" in metafunc.fixturenames:
        names = [r.name for r in suite.recoveries]
        metafunc.parametrize("recovery_name", names, ids=names, scope="function")
    if "repeat_index" in metafunc.fixturenames:
        indexes = list(range(1, suite.repeat + 1))
        metafunc.parametrize("repeat_index", indexes, ids=[f"r{i}" for i in indexes])


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Keep only the profile's faults, each under the recovery modes it means something under (runs_under: the
    staged faults are not run under the operator, nor the others under stages), so the planned matrix (shards,
    manifest, gate) holds only cells that run; and mark each test with its fault's family."""
    suite = config.stash[SUITE]
    keep: list[pytest.Item] = []
    drop: list[pytest.Item] = []
    for item in items:
        params = getattr(item, "callspec", None)
        name = params.params.get("fault_name") if params else None
        recovery = params.params.get("recovery_name") if params else None
        if name is not None:
            item.add_marker(getattr(pytest.mark, fault(name).family))
        unselected = suite.faults is not None and name is not None and name not in suite.faults
        not_run = name is not None and recovery is not None and not fault(name).runs_under(recovery)
        (drop if unselected or not_run else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep


@pytest.fixture(scope="session")
def suite(request: pytest.FixtureRequest) -> Iterator[SuiteConfig]:
    config = request.config.stash[SUITE]
    yield config
    for mode in config.started.values():
        mode.stop()


@pytest.fixture(scope="session")
def announced(request: pytest.FixtureRequest, cluster: Cluster) -> Cluster:
    """The cluster, after telling reporting plugins what it runs."""
    environment = {
        "provider": cluster.provider,
        "kubernetes": cluster.versions.get("kube-apiserver", "unknown"),
        "flux": ", ".join(
            f"{c} {cluster.versions[c]}"
            for c in ("source-controller", "kustomize-controller", "helm-controller")
            if c in cluster.versions
        ),
    }
    request.config.hook.pytest_resilience_environment(environment=environment)
    return cluster


@pytest.fixture
def run_fault(
    request: pytest.FixtureRequest, suite: SuiteConfig, recovery_name: str, repeat_index: int
) -> Callable[[str], RunResult | None]:
    """Run one fault under this test's recovery mode; fails the test unless the verdict is acceptable. A baseline
    the store holds under the key computed now is reused instead (None), and the cluster is only started to run."""

    def run(name: str) -> RunResult | None:
        chosen = fault(name)
        if not chosen.runs_under(recovery_name):  # deselected at collection when the test names its fault
            pytest.skip(f"{name} is not run under {recovery_name} (see its runs_under)")
        parts = _baseline_parts(request.config, suite, name, recovery_name)
        if parts is not None and suite.store is not None:
            found = suite.store.lookup(name, recovery_name, repeat_index, parts, datetime.now(UTC))
            reused = found.entry is not None and _reuse(request, suite, found.entry)
            why = found.why if reused or found.entry is None else "stored run not valid here"
            request.node.user_properties.append((STORE_PROPERTY, why))
            if reused:
                return None
        announced: Cluster = request.getfixturevalue("announced")
        mode = suite.started.get(recovery_name)
        if mode is None:
            mode = next(r for r in suite.recoveries if r.name == recovery_name)
            mode.start(announced, suite.run_dir)
            suite.started[recovery_name] = mode
        # Imported here: scenarios.sharding is a plugin of its own (pytest_plugins), loaded after this module, and a
        # plugin module imported earlier is not assert-rewritten (pytest warns).
        from scenarios.sharding import PLAN_DIGEST

        scenario = ScenarioRun(
            announced,
            chosen,
            mode,
            suite.slo.budget(name, recovery_name),
            suite.run_dir,
            repeat_index,
            request.node.nodeid,
            baselines=suite.baselines,
            load=suite.load,
            hook=request.config.hook,
            plan=request.config.stash.get(PLAN_DIGEST, ""),
            wait_full=suite.wait_full,
        )
        result = scenario.execute()
        request.config.hook.pytest_resilience_run_result(result=result, item=request.node)
        judgement = result.judged()
        if parts is not None and suite.store is not None and judgement.verdict is not Verdict.INVALID and result.proven:
            suite.store.keep(result.summary_entry(), parts, _run_name(request.config, suite), datetime.now(UTC))
        _outcome(judgement, recovery_name, suite)
        return result

    return run


def _outcome(judgement: Judgement, recovery: str, suite: SuiteConfig) -> None:
    """Fail the test unless the verdict is acceptable (a baseline mode may miss its time budget)."""
    if judgement.verdict is Verdict.INVALID:
        pytest.fail(f"invalid run: {judgement.reason}", pytrace=False)
    excused = judgement.excusable and recovery in suite.baselines
    if not judgement.passed and not excused:
        pytest.fail(f"{judgement.verdict}: {judgement.reason}", pytrace=False)


def _baseline_parts(config: pytest.Config, suite: SuiteConfig, name: str, recovery: str) -> dict[str, Any] | None:
    """The key's parts of a cell the store may hold (injectors.baseline_key), None for a cell it never holds."""
    if suite.store is None or recovery not in baseline_key.STORABLE_MODES:
        return None
    load = suite.load
    try:
        load_digest = baseline_key.load_settings(load.profile, load.locustfile) if load else None
        return baseline_key.parts(
            fault(name),
            recovery,
            suite.slo.budget(name, recovery).to_json(),
            provider_name(config),
            monitoring_wanted(config),
            load.label if load else None,
            load_digest,
        )
    except OSError as e:  # a fault's source or a locustfile not readable: no key, the cell is measured
        warnings.warn(BaselineStoreWarning(f"no baseline key for {name} x {recovery}: {e}"), stacklevel=2)
        return None


def _reuse(request: pytest.FixtureRequest, suite: SuiteConfig, entry: dict[str, Any]) -> bool:
    """Carry a stored baseline over as this test's run: recorded as this session's, marked `reused`, judged by the
    one judge like a fresh run. False (the cell is measured) when it does not make a valid entry here."""
    from scenarios.sharding import PLAN_DIGEST  # see run_fault

    entry.update(test=request.node.nodeid, baselines=list(suite.baselines))
    entry.pop("plan", None)
    if plan := request.config.stash.get(PLAN_DIGEST, ""):
        entry["plan"] = plan
    problem = entry_problem(entry, request.node.nodeid)
    if problem:
        warnings.warn(BaselineStoreWarning(f"stored run not reused: {problem}"), stacklevel=2)
        return False
    request.config.hook.pytest_resilience_reused_run(entry=entry, item=request.node)
    budget = suite.slo.budget(str(entry["fault"]), str(entry["recovery"]))
    _outcome(judge(evidence_from_entry(entry), budget), str(entry["recovery"]), suite)
    return True


def _run_name(config: pytest.Config, suite: SuiteConfig) -> str:
    """What names this run in the store: the run id shards share (CI's pipeline), else the run directory's name."""
    run_id, _ = _option(config, "--run-id", "RESILIENCE_RUN_ID")
    return str(run_id or suite.run_dir.name)


def _store_line(terminalreporter: pytest.TerminalReporter) -> str | None:
    """What the baseline store did this session, from the tests' `resilience.baseline_store` properties (the
    controller sees the workers' reports): how many cells were reused, and why the others were measured."""
    whys = [
        value
        for reports in terminalreporter.stats.values()
        for report in reports
        if getattr(report, "when", None) == "teardown"
        for key, value in getattr(report, "user_properties", ())
        if key == STORE_PROPERTY
    ]
    if not whys:
        return None
    reused = sum(1 for why in whys if str(why).startswith("reused"))
    measured = Counter(str(why) for why in whys if not str(why).startswith("reused"))
    reasons = "; ".join(f"{count} {why}" for why, count in measured.most_common(5))
    return f"baseline store: {reused} cell(s) reused, {sum(measured.values())} measured" + (
        f" ({reasons})" if reasons else ""
    )


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    line = _store_line(terminalreporter)
    if line:
        terminalreporter.write_line(line)
    suite = config.stash.get(SUITE, None)
    if suite is not None and (suite.run_dir / "revert").is_dir():
        terminalreporter.write_line(
            f"chaos run records: {suite.run_dir} (undo leftovers: resilience revert {suite.run_dir})"
        )
