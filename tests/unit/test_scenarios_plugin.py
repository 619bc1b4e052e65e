"""The chaos suite's pytest plugin, black-boxed with pytester and --collect-only: bad options are usage errors
naming the option (or variable) before any cluster is touched; profiles pick faults, recoveries and repeats;
test ids carry recovery and repeat."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from injectors.registry import FAULTS, fault

pytest_plugins = ("pytester",)

FAULT_NAMES = ("selector-change", "source-outage", "helm-upgrade-broken")
ENV = (
    "RESILIENCE_RECOVERY",
    "RESILIENCE_SLO",
    "RESILIENCE_REPEAT",
    "RESILIENCE_PROFILE",
    "RESILIENCE_PROVIDER",
    "RESILIENCE_BASELINE",
    "RESILIENCE_MONITORING",
    "RESILIENCE_LOAD",
    "RESILIENCE_LOAD_WORKERS",
)

SUITE = f"""
import pytest


@pytest.mark.parametrize("fault_name", {list(FAULT_NAMES)!r})
def test_fault(fault_name, run_fault):
    run_fault(fault_name)
"""


@pytest.fixture
def suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.Pytester:
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    # Where a cluster would leave its state: it must stay empty.
    monkeypatch.setenv("RESILIENCE_STATE", str(tmp_path / "state"))
    monkeypatch.setenv("RESILIENCE_CACHE", str(tmp_path / "cache"))
    # The inner runs need only the suite's plugins (allure, kind, locust... would only slow them down).
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.makeconftest('pytest_plugins = ["clusters.pytest_plugin", "scenarios.plugin"]\n')
    pytester.makepyfile(test_chaos=SUITE)
    return pytester


def collect(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest("--collect-only", "-q", "-p", "no:cacheprovider", *args)


def collected(result: pytest.RunResult) -> list[str]:
    return [line.split("::", 1)[1] for line in result.outlines if line.startswith("test_chaos.py::")]


def usage_error(result: pytest.RunResult) -> str:
    assert result.ret == pytest.ExitCode.USAGE_ERROR, result.outlines + result.errlines
    errors = [line for line in result.errlines if line.startswith("ERROR: ")]
    assert len(errors) == 1, result.errlines
    assert collected(result) == []
    return errors[0].removeprefix("ERROR: ")


def no_cluster_touched(tmp_path: Path) -> None:
    assert not (tmp_path / "state").exists()
    assert not (tmp_path / "cache").exists()


# -- bad input: usage errors naming the option before any cluster is touched ------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("--recovery", "operatr"),
            "Invalid recovery 'operatr' from --recovery: use one of none, flux-native, flux-tuned, operator, staged, "
            "command:<cmd>, manifest:<path>",
        ),
        (("--recovery", "operator,command:"), "Invalid recovery 'command:' from --recovery: command: needs a command"),
        (("--repeat", "0"), "Invalid repeat '0' from --repeat: a whole number from 1 to 100"),
        (("--repeat", "two"), "Invalid repeat 'two' from --repeat: a whole number from 1 to 100"),
        (("--repeat", "1.5"), "Invalid repeat '1.5' from --repeat: a whole number from 1 to 100"),
        (("--repeat", "1000000"), "Invalid repeat '1000000' from --repeat: a whole number from 1 to 100"),
        (("--recovery", ","), "Invalid recovery ',' from --recovery: name at least one recovery"),
        (("--recovery", " , ,"), "Invalid recovery ' , ,' from --recovery: name at least one recovery"),
        (
            ("--baseline", "nonne"),
            "Invalid baseline 'nonne' from --baseline: use one of none, flux-native, flux-tuned, operator, staged",
        ),
        (("--baseline", ","), "Invalid baseline ',' from --baseline: name at least one baseline"),
        (("--provider", "nope"), "Invalid provider 'nope' from --provider: choose one of local, kind, existing"),
    ],
)
def test_bad_options_are_usage_errors_naming_the_option(
    suite: pytest.Pytester, tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    assert usage_error(collect(suite, *args)).startswith(message)
    no_cluster_touched(tmp_path)


def test_a_missing_manifest_names_the_option(suite: pytest.Pytester, tmp_path: Path) -> None:
    error = usage_error(collect(suite, "--recovery", "manifest:missing.yaml"))
    assert error.startswith("Invalid recovery 'manifest:missing.yaml' from --recovery: missing.yaml: ")
    no_cluster_touched(tmp_path)


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("RESILIENCE_RECOVERY", "bogus", "Invalid recovery 'bogus' from RESILIENCE_RECOVERY: use one of "),
        ("RESILIENCE_REPEAT", "-1", "Invalid repeat '-1' from RESILIENCE_REPEAT: a whole number from 1 to 100"),
        ("RESILIENCE_BASELINE", "operatr", "Invalid baseline 'operatr' from RESILIENCE_BASELINE: use one of "),
        ("RESILIENCE_PROVIDER", "nope", "Invalid provider 'nope' from RESILIENCE_PROVIDER: choose one of "),
        (
            "RESILIENCE_PROFILE",
            "weekly",
            "unknown profile 'weekly' (profiles: nightly, quick, release, staged) (from RESILIENCE_PROFILE)",
        ),
    ],
)
def test_bad_environment_values_name_the_variable(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv(variable, value)
    error = usage_error(collect(suite))
    assert message in error
    no_cluster_touched(tmp_path)


def test_an_unknown_profile_names_the_profiles_and_the_option(suite: pytest.Pytester, tmp_path: Path) -> None:
    error = usage_error(collect(suite, "--profile", "weekly"))
    assert error.endswith("unknown profile 'weekly' (profiles: nightly, quick, release, staged) (from --profile)")
    assert "scenarios/slo.yaml" in error
    no_cluster_touched(tmp_path)


def test_a_missing_slo_file_names_the_file_and_the_option(suite: pytest.Pytester, tmp_path: Path) -> None:
    error = usage_error(collect(suite, "--slo", "nope.yaml"))
    assert error == "nope.yaml: cannot read the SLO file (No such file or directory); pass --slo FILE (from --slo)"
    no_cluster_touched(tmp_path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("defaults:\n  ttr: {max: 0}\n", "team.yaml: defaults.ttr.max: expected a finite positive number of seconds"),
        ("defaults:\n  ttr: {max: .nan}\n", "team.yaml: line 2: .nan is not a finite number"),
        ("defaults:\n  wait: .inf\n", "team.yaml: line 2: .inf is not a finite number"),
        ("", "team.yaml: top level: no budgets (neither defaults nor scenarios)"),
        ("scenarios:\n  selector-chnage: {}\n", "team.yaml: scenarios.selector-chnage: unknown fault (known: "),
        ("defaults:\n  ttr: {max: 60\n", "team.yaml: not valid YAML at line 3: "),
        (
            "profiles:\n  ci: {recoveries: [operatr]}\n",
            "team.yaml: profiles.ci.recoveries: unknown ",
        ),
    ],
)
def test_a_bad_slo_file_names_the_file_the_key_and_the_option(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, content: str, message: str
) -> None:
    (suite.path / "team.yaml").write_text(content)
    error = usage_error(collect(suite, "--slo", "team.yaml"))
    assert error.startswith(message) and error.endswith("(from --slo)")
    monkeypatch.setenv("RESILIENCE_SLO", "team.yaml")
    assert usage_error(collect(suite)).endswith("(from RESILIENCE_SLO)")
    no_cluster_touched(tmp_path)


# -- resolution: defaults, profiles, CLI over environment over profile --------------------------------------


def test_by_default_each_fault_runs_once_under_the_operator(suite: pytest.Pytester, tmp_path: Path) -> None:
    result = collect(suite)
    assert result.ret == pytest.ExitCode.OK
    assert collected(result) == [f"test_fault[operator-r1-{name}]" for name in FAULT_NAMES]
    no_cluster_touched(tmp_path)


def test_ids_carry_recovery_and_repeat(suite: pytest.Pytester) -> None:
    result = collect(suite, "--recovery", "operator,none", "--recovery", "operator", "--repeat", "2")
    ids = collected(result)
    assert len(ids) == 2 * 2 * len(FAULT_NAMES)
    assert "test_fault[operator-r1-selector-change]" in ids
    assert "test_fault[none-r2-helm-upgrade-broken]" in ids
    assert not any("r3" in i for i in ids)


def test_a_command_recovery_id_is_its_spec(suite: pytest.Pytester) -> None:
    ids = collected(collect(suite, "--recovery", "command:true"))
    assert ids[0] == "test_fault[command:true-r1-selector-change]"


def test_a_profile_sets_recoveries_and_repeat(suite: pytest.Pytester) -> None:
    ids = collected(collect(suite, "--profile", "nightly"))
    # The nightly profile's fifth mode, staged, runs only the staged faults: none of these.
    assert len(ids) == 3 * 4 * len(FAULT_NAMES)
    assert {i.split("[")[1].split("-r")[0] for i in ids} == {"none", "flux-native", "flux-tuned", "operator"}


def test_a_profiles_mode_the_provider_cannot_run_is_left_out_and_said(suite: pytest.Pytester) -> None:
    result = collect(suite, "--profile", "nightly", "--provider", "kind")
    ids = collected(result)
    assert {i.split("[")[1].split("-r")[0] for i in ids} == {"none", "flux-native", "operator"}
    assert any(
        "profile nightly: flux-tuned left out: the kind provider starts no Flux shard" in line
        for line in result.outlines
    )


def test_the_command_line_overrides_the_environment_and_the_profile(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RESILIENCE_RECOVERY", "none")
    monkeypatch.setenv("RESILIENCE_REPEAT", "2")
    ids = collected(collect(suite, "--profile", "nightly", "--recovery", "flux-native"))
    assert sorted(ids) == sorted(f"test_fault[flux-native-r{i}-{name}]" for i in (1, 2) for name in FAULT_NAMES)
    monkeypatch.setenv("RESILIENCE_PROFILE", "nightly")
    ids = collected(collect(suite, "--repeat", "1"))
    assert ids == [f"test_fault[none-r1-{name}]" for name in FAULT_NAMES]


def test_a_profile_of_a_custom_slo_file_deselects_the_other_faults(suite: pytest.Pytester, tmp_path: Path) -> None:
    (suite.path / "team.yaml").write_text(
        textwrap.dedent(
            """\
            defaults: {ttr: {max: 60}}
            profiles:
              quick: {repeat: 2, recoveries: [none, operator], faults: [source-outage]}
            """
        )
    )
    result = collect(suite, "--slo", "team.yaml", "--profile", "quick")
    assert result.ret == pytest.ExitCode.OK
    assert collected(result) == [
        "test_fault[none-r1-source-outage]",
        "test_fault[none-r2-source-outage]",
        "test_fault[operator-r1-source-outage]",
        "test_fault[operator-r2-source-outage]",
    ]
    result.stdout.fnmatch_lines(["*4/12 tests collected (8 deselected)*"])
    no_cluster_touched(tmp_path)


def test_tests_are_marked_with_their_fault_family(suite: pytest.Pytester) -> None:
    assert fault("source-outage").family == "control-plane"
    ids = collected(collect(suite, "-m", "control-plane"))
    assert ids == ["test_fault[operator-r1-source-outage]"]
    result = suite.runpytest("--markers", "-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["@pytest.mark.selector: the selector fault family"])


def test_the_shipped_catalog_names_match(suite: pytest.Pytester) -> None:
    assert set(FAULT_NAMES) <= set(FAULTS)


PROBE = """
from clusters.pytest_plugin import monitoring_wanted
from scenarios.plugin import SUITE


def pytest_collection_finish(session):
    config = session.config
    (config.rootpath / "probe.txt").write_text(str({expression}))
"""


def probe(suite: pytest.Pytester, expression: str, *args: str) -> str:
    """What `expression` (of the session's config) resolved to, collecting with `args`."""
    conftest = PROBE.replace("{expression}", expression)
    suite.makeconftest('pytest_plugins = ["clusters.pytest_plugin", "scenarios.plugin"]\n' + conftest)
    result = collect(suite, *args)
    assert result.ret == pytest.ExitCode.OK, result.outlines + result.errlines
    return (suite.path / "probe.txt").read_text()


def monitoring(suite: pytest.Pytester, *args: str) -> str:
    return probe(suite, "monitoring_wanted(config)", *args)


def test_monitoring_resolves_cli_then_environment_then_profile(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert monitoring(suite) == "False"
    assert monitoring(suite, "--profile", "nightly") == "True"  # the shipped nightly profile monitors
    assert monitoring(suite, "--profile", "quick") == "False"
    assert monitoring(suite, "--profile", "nightly", "--no-monitoring") == "False"
    monkeypatch.setenv("RESILIENCE_MONITORING", "0")
    assert monitoring(suite, "--profile", "nightly") == "False"
    assert monitoring(suite, "--monitoring") == "True"
    assert monitoring(suite, "--provider", "kind", "--profile", "nightly", "--no-monitoring") == "False"


def baselines(suite: pytest.Pytester, *args: str) -> str:
    return probe(suite, '",".join(config.stash[SUITE].baselines)', *args)


def test_baselines_resolve_cli_then_environment_then_profile(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert baselines(suite) == "none"
    assert baselines(suite, "--profile", "quick") == "none"
    assert baselines(suite, "--profile", "nightly") == "none,flux-native,flux-tuned"  # compared, not gated
    assert baselines(suite, "--profile", "nightly", "--baseline", "none") == "none"
    monkeypatch.setenv("RESILIENCE_BASELINE", "operator")
    assert baselines(suite, "--profile", "nightly") == "operator"


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        ((), "maybe", "Invalid monitoring 'maybe' from RESILIENCE_MONITORING: use one of 1, true, yes, on, 0,"),
        (("--monitoring", "--provider", "kind"), "", "Invalid monitoring from --monitoring: it runs beside local"),
    ],
)
def test_bad_monitoring_requests_are_usage_errors(
    suite: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    args: tuple[str, ...],
    env: str,
    message: str,
) -> None:
    if env:
        monkeypatch.setenv("RESILIENCE_MONITORING", env)
    assert usage_error(collect(suite, *args)).startswith(message)
    no_cluster_touched(tmp_path)


# -- load: --load none|PROFILE|FILE and --load-workers, validated before any cluster ----------------------

GOOD_LOCUSTFILE = """
from locust import User, task


class Shopper(User):
    @task
    def browse(self):
        pass
"""


@pytest.mark.process
@pytest.mark.parametrize(
    ("args", "files", "message"),
    [
        (
            ("--load", "hevy"),
            {},
            "Invalid load 'hevy' from --load: use a load profile of ",
        ),
        (("--load", "missing.py"), {}, "Invalid load 'missing.py' from --load: missing.py: no such locustfile"),
        (
            ("--load", "broken.py"),
            {"broken.py": "from locust import User\nundefined_name\n"},
            "Invalid load 'broken.py' from --load: broken.py: does not import: NameError: name 'undefined_name' is "
            "not defined",
        ),
        (
            ("--load", "empty.py"),
            {"empty.py": "import locust\n"},
            "Invalid load 'empty.py' from --load: empty.py: defines no locust User class",
        ),
        (
            ("--load", "light", "--load-workers", "-1"),
            {},
            "Invalid load workers '-1' from --load-workers: a whole number from 0 to 64",
        ),
        (
            ("--load", "light", "--load-workers", "two"),
            {},
            "Invalid load workers 'two' from --load-workers: a whole number from 0 to 64",
        ),
    ],
)
def test_bad_load_options_are_usage_errors_before_any_cluster(
    suite: pytest.Pytester, tmp_path: Path, args: tuple[str, ...], files: dict[str, str], message: str
) -> None:
    for name, text in files.items():
        (suite.path / name).write_text(text)
    assert usage_error(collect(suite, *args)).startswith(message)
    no_cluster_touched(tmp_path)


def test_an_unknown_load_profile_names_the_profiles_and_the_variable(
    suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("RESILIENCE_LOAD", "medium")
    error = usage_error(collect(suite))
    assert error.startswith("Invalid load 'medium' from RESILIENCE_LOAD: use a load profile of ")
    assert error.endswith("(none, light, heavy, api-pressure) or a locustfile (FILE.py)")
    monkeypatch.setenv("RESILIENCE_LOAD_WORKERS", "100")
    assert usage_error(collect(suite, "--load", "light")).startswith(
        "Invalid load workers '100' from RESILIENCE_LOAD_WORKERS"
    )
    no_cluster_touched(tmp_path)


def test_a_load_profile_with_a_rate_of_zero_names_the_file_and_the_key(suite: pytest.Pytester, tmp_path: Path) -> None:
    (suite.path / "team.yaml").write_text(
        "defaults: {ttr: {max: 60}}\nload_profiles:\n  light: {teams: {same-source: 2}, every: 0}\n"
    )
    error = usage_error(collect(suite, "--slo", "team.yaml", "--load", "light"))
    assert error == (
        "team.yaml: load_profiles.light.every: expected a finite number of seconds > 0, got 0 (from --slo)"
    )
    no_cluster_touched(tmp_path)


@pytest.mark.process
def test_good_load_choices_collect_the_same_tests(suite: pytest.Pytester, tmp_path: Path) -> None:
    (suite.path / "shoppers.py").write_text(GOOD_LOCUSTFILE)
    plain = collected(collect(suite))
    for args in (("--load", "light"), ("--load", "shoppers.py", "--load-workers", "2"), ("--profile", "nightly")):
        result = collect(suite, *args)
        assert result.ret == pytest.ExitCode.OK, result.errlines
        if "--profile" not in args:
            assert collected(result) == plain
    no_cluster_touched(tmp_path)


def test_a_fault_is_collected_only_under_the_modes_it_runs_under(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Staged faults are not run under the operator, nor catalog faults under stages: such cells are deselected,
    so the planned matrix (shards, manifest, gate) never waits for a run that cannot happen."""
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RESILIENCE_STATE", str(tmp_path / "state"))
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.makeconftest('pytest_plugins = ["clusters.pytest_plugin", "scenarios.plugin"]\n')
    names = ["selector-change", "staged-good-change", "staged-controller-kill"]
    pytester.makepyfile(
        test_chaos=f"""
import pytest


@pytest.mark.parametrize("fault_name", {names!r})
def test_fault(fault_name, run_fault):
    run_fault(fault_name)
"""
    )
    result = collect(pytester, "--recovery", "none,operator,staged")
    assert result.ret == pytest.ExitCode.OK, result.outlines + result.errlines
    assert sorted(collected(result)) == sorted(
        [
            "test_fault[none-r1-selector-change]",
            "test_fault[operator-r1-selector-change]",
            "test_fault[none-r1-staged-good-change]",
            "test_fault[staged-r1-staged-good-change]",
            "test_fault[staged-r1-staged-controller-kill]",
        ]
    )


@pytest.mark.process
@pytest.mark.parametrize("provider", ["kind", "existing"])
def test_flux_tuned_on_a_provider_without_a_shard_is_one_line_exit_2_before_any_cluster(
    suite: pytest.Pytester, tmp_path: Path, provider: str
) -> None:
    # A subprocess: pytest.exit's status is what a user's shell sees only outside an in-process run.
    args = ("--collect-only", "-q", "-p", "no:cacheprovider", "--recovery", "none,flux-tuned", "--provider", provider)
    result = suite.runpytest_subprocess(*args)
    assert result.ret == 2, result.outlines + result.errlines
    said = [line for line in result.outlines + result.errlines if "flux-tuned" in line]
    assert len(said) == 1 and "needs its own Flux shard" in said[0] and "--provider local" in said[0]
    assert collected(result) == []
    no_cluster_touched(tmp_path)
