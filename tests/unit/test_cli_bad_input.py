"""Bad input to the cluster commands: one line naming the culprit and the fix, exit 2, nothing left behind; and
the conventions of every command: usage of the subcommand on an unknown flag, --format, --version, a closed pipe,
output paths nobody may write to."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import pytest
from reports_support import entry, recovered, write_json

from resilience.cli import EXIT_CLOSED_PIPE, main, parse


def run(args: list[str], env: dict[str, str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "resilience.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
    )


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """Isolated state and cache directories, so nothing of a real run is seen or touched."""
    return {
        **os.environ,
        "RESILIENCE_STATE": str(tmp_path / "state"),
        "RESILIENCE_CACHE": str(tmp_path / "cache"),
    }


def assert_clean_error(proc: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("resilience: error: ")]
    # Progress lines may come first; the error is exactly one line, and the last.
    assert len(errors) == 1 and lines[-1] == errors[0], proc.stderr
    for fragment in fragments:
        assert fragment in errors[0]


def assert_nothing_left(env: dict[str, str]) -> None:
    clusters = Path(env["RESILIENCE_STATE"]) / "clusters"
    assert not clusters.exists() or not any(clusters.iterdir())
    leftover = subprocess.run(["pgrep", "-f", env["RESILIENCE_STATE"]], capture_output=True, text=True)
    assert leftover.stdout == ""


def stub_bin(tmp_path: Path, tools: dict[str, str]) -> str:
    """A PATH holding only the given stub tools plus git and the basics."""
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    for name, script in tools.items():
        path = bindir / name
        path.write_text("#!/bin/sh\n" + script + "\n")
        path.chmod(0o755)
    return f"{bindir}:/usr/bin:/bin"


@pytest.mark.process
def test_unknown_provider(env: dict[str, str]) -> None:
    proc = run(["cluster", "up", "--provider", "minikube"], env)
    assert_clean_error(proc, "unknown provider 'minikube'", "local, kind, existing")
    assert_nothing_left(env)


@pytest.mark.process
def test_bad_cluster_name(env: dict[str, str]) -> None:
    proc = run(["cluster", "up", "--name", "Bad_Name"], env)
    assert_clean_error(proc, "bad cluster name 'Bad_Name'")
    assert_nothing_left(env)


@pytest.mark.process
def test_unbuilt_binaries_name_the_build_command(env: dict[str, str]) -> None:
    proc = run(["cluster", "up", "--name", "x"], env)
    assert_clean_error(proc, "is not built yet", "resilience build")
    assert_nothing_left(env)


@pytest.mark.process
def test_missing_go(env: dict[str, str], tmp_path: Path) -> None:
    env = {**env, "PATH": stub_bin(tmp_path, {})}
    env.pop("RESILIENCE_GO", None)
    proc = run(["build", "--component", "kwok"], env)
    assert_clean_error(proc, "Go toolchain not found", "RESILIENCE_GO")
    assert not (Path(env["RESILIENCE_CACHE"]) / "upstream").exists() or not any(
        p.is_dir() for p in (Path(env["RESILIENCE_CACHE"]) / "upstream").iterdir()
    )


@pytest.mark.process
def test_unreachable_proxy_names_the_component_and_leaves_no_partial_build(env: dict[str, str], tmp_path: Path) -> None:
    env = {
        **env,
        "GOPROXY": "http://127.0.0.1:9",
        "GOSUMDB": "off",
        "GOMODCACHE": str(tmp_path / "gomod"),
        "GOFLAGS": "-modcacherw",
    }
    proc = run(["build", "--component", "kwok"], env)
    assert_clean_error(proc, "kwok v0.8.0", "Go module proxy is unreachable", "GOPROXY=http://127.0.0.1:9")
    upstream = Path(env["RESILIENCE_CACHE"]) / "upstream"
    assert [p.name for p in upstream.iterdir() if p.is_dir()] == []


@pytest.mark.process
def test_kind_without_docker(env: dict[str, str], tmp_path: Path) -> None:
    env = {**env, "PATH": stub_bin(tmp_path, {"kind": "exit 0", "kubectl": "exit 0", "flux": "exit 0"})}
    proc = run(["cluster", "up", "--provider", "kind", "--name", "k"], env)
    assert_clean_error(proc, "docker not found on PATH", "--provider local")
    assert_nothing_left(env)


@pytest.mark.process
def test_kind_without_kind(env: dict[str, str], tmp_path: Path) -> None:
    env = {**env, "PATH": stub_bin(tmp_path, {"docker": "exit 0", "kubectl": "exit 0", "flux": "exit 0"})}
    proc = run(["cluster", "up", "--provider", "kind", "--name", "k"], env)
    assert_clean_error(proc, "kind not found on PATH")
    assert_nothing_left(env)


@pytest.mark.process
def test_kind_with_docker_engine_down(env: dict[str, str], tmp_path: Path) -> None:
    docker = "echo 'Cannot connect to the Docker daemon at unix:///var/run/docker.sock' >&2; exit 1"
    path = stub_bin(tmp_path, {"docker": docker, "kind": "exit 0", "kubectl": "exit 0", "flux": "exit 0"})
    proc = run(["cluster", "up", "--provider", "kind", "--name", "k"], {**env, "PATH": path})
    assert_clean_error(proc, "Docker engine not reachable", "Cannot connect to the Docker daemon")
    assert_nothing_left(env)


@pytest.fixture
def kubeconfig(tmp_path: Path) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(
        textwrap.dedent(
            """\
            apiVersion: v1
            kind: Config
            clusters:
            - name: prod
              cluster: {server: "https://127.0.0.1:9"}
            users:
            - name: prod
              user: {token: secret}
            contexts:
            - name: prod
              context: {cluster: prod, user: prod}
            current-context: prod
            """
        )
    )
    return path


@pytest.mark.process
def test_existing_context_not_allowed(env: dict[str, str], kubeconfig: Path) -> None:
    proc = run(["cluster", "up", "--provider", "existing", "--kubeconfig", str(kubeconfig)], env)
    assert_clean_error(proc, "context 'prod' is not allowed", "--allow-context prod")
    assert_nothing_left(env)


@pytest.mark.process
def test_existing_unknown_context(env: dict[str, str], kubeconfig: Path) -> None:
    args = ["--kubeconfig", str(kubeconfig), "--context", "staging", "--allow-context", "staging"]
    proc = run(["cluster", "up", "--provider", "existing", *args], env)
    assert_clean_error(proc, "context 'staging' is not in", "prod")


@pytest.mark.process
def test_existing_missing_kubeconfig(env: dict[str, str], tmp_path: Path) -> None:
    proc = run(["cluster", "up", "--provider", "existing", "--kubeconfig", str(tmp_path / "nope")], env)
    assert_clean_error(proc, "does not exist", "--kubeconfig")


@pytest.mark.process
def test_existing_unreachable_cluster(env: dict[str, str], kubeconfig: Path) -> None:
    proc = run(
        [
            "cluster",
            "up",
            "--provider",
            "existing",
            "--kubeconfig",
            str(kubeconfig),
            "--allow-context",
            "prod",
        ],
        env,
    )
    assert_clean_error(proc, "cannot reach the API server of context 'prod'")
    assert_nothing_left(env)


@pytest.mark.process
def test_down_unknown_cluster(env: dict[str, str]) -> None:
    proc = run(["cluster", "down", "--name", "ghost"], env)
    assert_clean_error(proc, "no local cluster named 'ghost'")


@pytest.mark.process
def test_local_only_flags_refused_for_other_providers(env: dict[str, str], kubeconfig: Path) -> None:
    proc = run(["cluster", "up", "--provider", "existing", "--api-port", "6443"], env)
    assert_clean_error(proc, "--api-port and --nodes apply to the local provider only")
    proc = run(["cluster", "up", "--provider", "existing", "--monitoring"], env)
    assert_clean_error(proc, "--monitoring runs Prometheus and Alertmanager beside a local cluster only")


@pytest.mark.process
def test_monitoring_options_need_monitoring_and_a_readable_rule_file(env: dict[str, str], tmp_path: Path) -> None:
    proc = run(["cluster", "up", "--name", "m", "--prometheus-port", "9090"], env)
    assert_clean_error(proc, "--alert-rules, --prometheus-port and --alertmanager-port need --monitoring")
    bad = tmp_path / "rules.yaml"
    bad.write_text("groups: [")
    proc = run(["cluster", "up", "--name", "m", "--monitoring", "--alert-rules", str(bad)], env)
    assert_clean_error(proc, f"{bad}: the alert rules are not valid YAML at line 1")
    assert not (Path(env["RESILIENCE_STATE"]) / "clusters" / "m").exists()


@pytest.mark.process
def test_down_refuses_name_and_all_together_and_stops_nothing(env: dict[str, str]) -> None:
    keep = Path(env["RESILIENCE_STATE"]) / "clusters" / "keep"
    keep.mkdir(parents=True)
    (keep / "spec.json").write_text('{"name": "keep", "ports": {}}')
    proc = run(["cluster", "down", "--name", "keep", "--all"], env)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines() == [
        "resilience cluster down: error: argument --all: not allowed with argument --name"
        " (see resilience cluster down --help)"
    ]
    assert (keep / "spec.json").exists()


@pytest.mark.process
@pytest.mark.parametrize(
    ("flag", "value", "expected"),
    [
        *(("--timeout", t, "seconds, more than 0 (a plain number like 30)") for t in ("nan", "inf", "-1", "0", "3m")),
        *(("--nodes", n, "a whole number, at least 1") for n in ("0", "1.5", "two")),
        *((f, p, "a whole number from 1 to 65535") for f in ("--api-port", "--prometheus-port") for p in ("0", "x")),
        ("--alertmanager-port", "65536", "a whole number from 1 to 65535"),
    ],
)
def test_cluster_up_numbers_are_checked_before_anything_starts(
    capsys: pytest.CaptureFixture[str],
    env: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    flag: str,
    value: str,
    expected: str,
) -> None:
    monkeypatch.setenv("RESILIENCE_STATE", env["RESILIENCE_STATE"])
    assert main(["cluster", "up", "--name", "x", flag, value]) == 2
    assert capsys.readouterr().err == f"resilience: error: {flag} {value!r}: expected {expected}\n"
    assert_nothing_left(env)


# -- conventions of every command -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "command"),
    [(["gate", "--bogus"], "gate"), (["cluster", "up", "--bogus", "1"], "cluster up"), (["faults", "x"], "faults")],
)
def test_an_unknown_argument_is_one_line_naming_its_subcommand_and_its_help(
    capsys: pytest.CaptureFixture[str], argv: list[str], command: str
) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    (err,) = capsys.readouterr().err.splitlines()
    assert err.startswith(f"resilience {command}: error: unrecognized arguments: ")
    assert err.endswith(f" (see resilience {command} --help)")


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out == f"resilience {version('gitops-resilience')}\n"


FORMATTED = [["cluster", "up"], ["cluster", "list"], ["cluster", "status"], ["build"], ["faults"]]


@pytest.mark.parametrize("command", FORMATTED, ids=" ".join)
def test_every_data_command_takes_format_and_the_old_json_flag(command: list[str]) -> None:
    assert parse([*command, "--format", "json"]).format == "json"
    assert parse([*command, "--format", "text"]).format == "text"
    assert parse([*command, "--json"]).format == "json", "the old spelling still works"
    default = "json" if command == ["cluster", "status"] else "text"  # status printed only JSON before
    assert parse(command).format == default


def test_json_is_no_longer_listed(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["cluster", "list", "--help"])
    out = capsys.readouterr().out
    assert "--format {text,json}" in out and "--json" not in out


def test_format_of_faults_and_cluster_list(
    capsys: pytest.CaptureFixture[str], env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RESILIENCE_STATE", env["RESILIENCE_STATE"])
    assert main(["faults", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {"name", "family", "signature", "summary"} == set(rows[0])
    assert main(["faults"]) == 0
    assert capsys.readouterr().out.splitlines()[0].split()[:2] == [rows[0]["family"], rows[0]["name"]]
    assert main(["cluster", "list", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == []
    assert main(["cluster", "list", "--format", "text"]) == 0
    assert capsys.readouterr().out == "no clusters\n"
    with pytest.raises(SystemExit) as info:
        main(["faults", "--format", "yaml"])
    assert info.value.code == 2
    assert "argument --format: invalid choice: 'yaml' (choose from 'text', 'json')" in capsys.readouterr().err


@pytest.mark.process
def test_output_cut_short_by_a_closed_pipe_exits_quietly(env: dict[str, str]) -> None:
    """`resilience faults | head -1`: the reader is gone before anything is written."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "resilience.cli", "faults"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            timeout=120,
        )
    finally:
        os.close(write_end)
    assert (proc.returncode, proc.stderr) == (EXIT_CLOSED_PIPE, "")


# -- output paths nobody may write to ------------------------------------------------------------------------


def run_unprivileged(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Root writes anywhere: without that privilege (setpriv) permissions apply to it as to anyone."""
    prefix: list[str] = []
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv: directory permissions would not apply")
        prefix = [setpriv, "--bounding-set=-dac_override,-dac_read_search"]
    return subprocess.run(
        [*prefix, sys.executable, "-m", "resilience.cli", *args], capture_output=True, text=True, env=env, timeout=120
    )


@pytest.fixture
def locked(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "locked"
    path.mkdir(mode=0o555)
    yield path
    path.chmod(0o755)


@pytest.mark.process
def test_gate_junit_into_a_read_only_directory(env: dict[str, str], tmp_path: Path, locked: Path) -> None:
    summary = write_json(tmp_path / "summary.json", [entry("selector-change", "operator", recovered(10.0))])
    proc = run_unprivileged(["gate", "--summary", str(summary), "--junit", str(locked / "gate.xml")], env)
    assert_clean_error(proc, f"--junit {locked / 'gate.xml'}: cannot write in {locked}", "choose a writable path")
    assert proc.stdout == "", "nothing judged, no PASS printed"


@pytest.mark.process
@pytest.mark.parametrize("flag", ["--out", "--history"])
def test_report_into_a_read_only_directory(env: dict[str, str], tmp_path: Path, locked: Path, flag: str) -> None:
    results = tmp_path / "results"
    results.mkdir()
    (results / "0-result.json").write_text("{}")
    paths = {"--out": tmp_path / "html", "--history": tmp_path / "history", flag: locked / "x"}
    args = ["report", "--results", str(results), "--allure", "true"]
    proc = run_unprivileged([*args, *(a for f, p in paths.items() for a in (f, str(p)))], env)
    assert_clean_error(proc, f"{flag} {locked / 'x'}: cannot write in {locked}")
    assert not list(locked.iterdir()) and not (tmp_path / "html").exists() and not (tmp_path / "history").exists()


@pytest.mark.process
@pytest.mark.parametrize(
    ("argv", "fragments"),
    [
        (["recover", "--settle", "nan"], ["--settle 'nan'", "a plain number"]),
        (["recover", "--selector", "a==b==c"], ["--selector 'a==b==c'", "label selector like"]),
        (["recover", "--namespace", "Shop"], ["--namespace 'Shop'", "like flux-system"]),
        (["recover", "--log-format", "xml"], ["recover: argument --log-format", "resilience recover --help"]),
        (["explain", "--kind", "HelmRelease", "--message", " "], ["--message", "paste"]),
        (["explain", "--kind", "HelmRelease", "--message", "m", "--format", "yaml"], ["--format", "'json', 'text'"]),
    ],
)
def test_recovery_commands_refuse_bad_flags_in_one_line(
    env: dict[str, str], kubeconfig: Path, argv: list[str], fragments: list[str]
) -> None:
    proc = run([*argv, *(["--kubeconfig", str(kubeconfig)] if argv[0] == "recover" else [])], env)
    assert_clean_error(proc, *fragments)
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


@pytest.mark.process
def test_recover_names_the_kubeconfig_variable_it_used(env: dict[str, str], tmp_path: Path) -> None:
    listed = f"{tmp_path / 'a'}{os.pathsep}{tmp_path / 'b'}"
    proc = run(["recover"], {**env, "KUBECONFIG": listed})
    assert_clean_error(proc, f"KUBECONFIG={listed}: none of these files exists", "fix KUBECONFIG")
    assert "--kubeconfig " + listed not in proc.stderr


@pytest.mark.parametrize("extra", [["--component", "nope"], ["--all"]])
def test_a_cache_key_is_only_for_a_purpose(capsys: pytest.CaptureFixture[str], extra: list[str]) -> None:
    """A key that ignored --component or --all would name a cache holding something else."""
    assert main(["build", "--cache-key", *extra]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == (
        "resilience: error: --cache-key keys what `resilience build --for PURPOSE` builds: drop --component/--all\n"
    )


def test_a_command_imports_only_the_modules_up_to_its_own() -> None:
    """`cluster up` does not pay for importing the reports' charting library; no command means every module."""
    from resilience.cli import build_parser

    def commands(parser: object) -> set[str]:
        return set(next(a for a in parser._actions if a.dest == "command").choices)  # type: ignore[attr-defined]

    assert "cluster" in commands(build_parser("cluster")) and "gate" not in commands(build_parser("cluster"))
    assert {"cluster", "gate", "recover"} <= commands(build_parser())
    assert {"cluster", "gate"} <= commands(build_parser("no-such-command"))
    assert parse(["cluster", "list"]).command == "cluster"
