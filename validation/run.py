"""The validate pipeline: read the tree, build its roots, check the Flux graph, compare with the base.

Only the roots whose inputs changed since the base are rendered at the base, so a one-line change in a
large tree costs one extra small build, not a second build of everything.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from fluxmodel.graph import is_reconciled
from foundation.errors import UserError
from validation import gitrev
from validation.diff import compare, forced_units
from validation.dryrun import Applier, ClusterApplier, dry_run
from validation.findings import BASE_UNRENDERED, BUILD, ERROR, OUTSIDE, REMOTE, WARNING, Finding, display_path
from validation.graphcheck import graph_findings, staged_findings
from validation.render import Kustomize, Rendered, RootResult, kustomization_file
from validation.tree import Kustomization, Tree, raw_objects, scan


@dataclass
class Options:
    """What to validate and how (the CLI flags)."""

    path: Path
    base: str | None = None
    staged: bool = False
    no_diff: bool = False
    kubectl: str = "kubectl"
    jobs: int | None = None
    server_dry_run: bool = False
    kubeconfig: Path | None = None


@dataclass
class Report:
    """The findings and what was done to find them (for the summary line and the benchmark)."""

    findings: list[Finding] = field(default_factory=list)
    roots: int = 0
    manifests: int = 0
    compared: int = 0
    base: gitrev.Base | None = None
    processes: int = 0

    def summary(self) -> str:
        if self.base is None:
            against = "no base revision compared"
        else:
            against = f"{self.compared} compared with {self.base.description} ({self.base.commit[:12]})"
        return f"{self.roots} kustomization root(s) built, {self.manifests} plain manifest(s) read, {against}"


@dataclass
class _Side:
    """One rendered tree (the new one or the base), with how to name its files as the user sees them."""

    tree: Tree
    top: Path
    results: dict[Path, RootResult]
    plain: list[Rendered]  # the objects of the plain manifests read

    def rel(self, path: Path) -> str:
        return path.relative_to(self.top).as_posix()

    def built(self, unit: Path) -> bool:
        """Whether a unit's objects are known: a root built without error, or a plain manifest (a file)."""
        res = self.results.get(unit)
        return not unit.is_dir() if res is None else not res.error

    def objects(self, units: set[Path] | None = None) -> list[Rendered]:
        """Objects of the built roots and of the plain manifests (of `units` only, if given)."""
        every = [o for res in self.results.values() for o in res.objects] + self.plain
        return [o for o in every if units is None or o.unit in units]


def validate(opts: Options, applier: Applier | None = None) -> Report:
    """Run every check; UserError for bad input, findings for everything else."""
    scope = _scope(opts.path)
    top = _top(opts, scope)
    report = Report()
    report.base = None if opts.no_diff else gitrev.resolve_base(top, opts.base, staged=opts.staged)
    kustomize = Kustomize(opts.kubectl, opts.jobs)
    kustomize.check()
    with ExitStack() as stack:
        new_top = stack.enter_context(gitrev.checkout(top, gitrev.STAGED)) if opts.staged else top

        def display(path: Path) -> str:
            return display_path(top / path.relative_to(new_top))

        tree = scan(new_top, new_top / scope.relative_to(top), strict=True)
        roots = tree.roots()
        plain = _plain(tree.raw_files, strict=True)
        if not roots and not plain:
            raise _nothing_to_validate(opts)
        report.manifests = len({r.file for r in plain})
        report.findings += _problem_findings(tree, roots, display)
        results = kustomize.build([r for r in roots if not tree.problems(r)])
        report.roots = len(results)
        report.findings += [_build_finding(res, display) for res in results.values() if res.error]
        new = _Side(tree, new_top, results, plain)
        objects = new.objects()
        report.findings += graph_findings(objects, display)
        report.findings += staged_findings(objects, display)
        if report.base is not None:
            report.findings += _compare_with_base(
                opts=opts,
                top=top,
                report=report,
                new=new,
                new_objects=objects,
                kustomize=kustomize,
                display=display,
            )
        if opts.server_dry_run:
            report.findings += dry_run(objects, applier or ClusterApplier(opts.kubeconfig), display)
    report.processes = kustomize.processes
    report.findings = sorted(set(report.findings))
    return report


def _scope(path: Path) -> Path:
    """PATH resolved; UserError naming it unless it is a directory."""
    try:
        scope = path.resolve()
    except (OSError, RuntimeError) as e:  # RuntimeError: a symlink loop (Python < 3.13)
        raise UserError(f"{path}: cannot be resolved ({e}); pass the directory of the GitOps tree") from None
    if not scope.is_dir():
        problem = "not a directory" if scope.exists() else "no such directory"
        raise UserError(f"{path}: {problem}; pass the directory of the GitOps tree to validate")
    return scope


def _top(opts: Options, scope: Path) -> Path:
    """The repository top: what Flux's source holds, and the boundary no kustomization entry may leave.

    Outside git (allowed with --no-diff alone) there is no such boundary: the filesystem root stands in.
    """
    if opts.no_diff and not opts.staged:
        return gitrev.find_top(scope) or Path(scope.anchor)
    return gitrev.repo_top(scope)


class NothingToValidate(UserError):
    """PATH holds nothing to check: an error (a run that checked nothing never passes), unless the caller said
    an empty scope is expected (a hook on a commit without manifests: --allow-empty)."""


def _nothing_to_validate(opts: Options) -> UserError:
    """A run that would check nothing must not pass: PATH is most likely not the GitOps tree meant."""
    where = " in the staged index" if opts.staged else ""
    return NothingToValidate(
        f"{opts.path}: nothing to validate: no kustomization to build and no Kubernetes manifest below it{where} "
        "(hidden directories and Helm charts are skipped); pass the directory of the GitOps tree"
    )


def _plain(paths: list[Path], *, strict: bool) -> list[Rendered]:
    """The objects of plain manifests, each its own unit."""
    return [Rendered(obj, path, path) for path in paths for obj in raw_objects(path, strict=strict)]


def _affected(side: _Side, changed_dirs: set[str], changed: set[str]) -> set[Path]:
    """Roots with a changed file under any directory of their closure, and changed plain manifests."""
    roots = {r for r in side.tree.roots() if any(side.rel(d) in changed_dirs for d in side.tree.closure(r))}
    return roots | {p for p in side.tree.raw_files if side.rel(p) in changed}


def _compare_with_base(
    *,
    opts: Options,
    top: Path,
    report: Report,
    new: _Side,
    new_objects: list[Rendered],
    kustomize: Kustomize,
    display: Callable[[Path], str],
) -> list[Finding]:
    assert report.base is not None
    changed = gitrev.changed_files(top, report.base, staged=opts.staged)
    changed_dirs = {p.as_posix() for c in changed for p in Path(c).parents}
    new_units = _affected(new, changed_dirs, changed)
    if not new_units:
        return []
    scope_rel = opts.path.resolve().relative_to(top)
    with gitrev.checkout(top, report.base.commit) as base_top:
        tree = scan(base_top, base_top / scope_rel, strict=False) if (base_top / scope_rel).is_dir() else None
        if tree is None:
            return []
        base_units = _affected(_Side(tree, base_top, {}, []), changed_dirs, changed)
        buildable = [u for u in base_units if u.is_dir() and not tree.problems(u)]
        plain = _plain([p for p in tree.raw_files if p in base_units], strict=False)
        base = _Side(tree, base_top, kustomize.build(sorted(buildable)), plain)
        report.compared = len(
            {new.rel(u) for u in new_units if new.built(u)} & {base.rel(u) for u in base_units if base.built(u)}
        )
        findings = _unrendered(base, base_units, buildable, new, display)
        flux = [r.obj for r in new_objects if is_reconciled(r.obj)]
        forced = {new.rel(u) for u in forced_units(flux, new.top, new_units)}
        findings += compare(
            [r for r in base.objects(base_units) if not _failed(base, r)],
            new.objects(new_units),
            base_unit=lambda r: base.rel(r.unit),
            new_unit=lambda r: new.rel(r.unit),
            display=display,
            forced_units=forced,
        )
        return findings


def _failed(side: _Side, r: Rendered) -> bool:
    res = side.results.get(r.unit)
    return res is not None and bool(res.error)


def _unrendered(
    base: _Side, units: set[Path], buildable: list[Path], new: _Side, display: Callable[[Path], str]
) -> list[Finding]:
    """Warnings for roots whose base revision could not be rendered (their comparison is skipped)."""
    out: list[Finding] = []
    new_roots = {new.rel(r): r for r in new.results}
    for unit in sorted(u for u in units if u.is_dir()):
        res = base.results.get(unit)
        unbuilt = "" if unit in buildable else "it has remote, outside or missing bases"
        why = res.error if res and res.error else unbuilt
        if why and base.rel(unit) in new_roots:
            out.append(
                Finding(
                    file=display(kustomization_file(new_roots[base.rel(unit)])),
                    rule=BASE_UNRENDERED,
                    severity=WARNING,
                    message=f"immutable-field comparison skipped: no build at the base revision ({why})",
                )
            )
    return out


def _problem_findings(tree: Tree, roots: list[Path], display: Callable[[Path], str]) -> list[Finding]:
    """A finding per entry that keeps a root from being built, once per entry however many roots share it."""
    out: set[Finding] = set()
    for root in roots:
        for k in tree.problems(root):
            problems = _entry_problems(k, display(root), display)
            out |= {Finding(file=display(k.file), rule=rule, severity=ERROR, message=m) for rule, m in problems}
    return sorted(out)


def _entry_problems(k: Kustomization, blocked: str, display: Callable[[Path], str]) -> Iterator[tuple[str, str]]:
    """Rule and message for each remote (validate never goes online), outside or missing entry of `k`."""
    for entry in k.remote:
        yield (
            REMOTE,
            f"remote base {entry!r} refused: validate builds offline and never fetches, so {blocked} is not "
            "built. Fix: vendor the base into the repository (a copy or a git subtree) and reference it by a "
            "relative path",
        )
    for entry in k.outside:
        yield (
            OUTSIDE,
            f"{entry!r} resolves outside the repository, so {blocked} is not built: Flux's source holds only "
            "the repository, and validate cannot read the path at the base revision. Fix: move what it names "
            "into the repository and reference it by a relative path",
        )
    for entry in k.missing:
        yield BUILD, f"{entry!r} does not exist (relative to {display(k.dir)}), so {blocked} is not built"


def _build_finding(res: RootResult, display: Callable[[Path], str]) -> Finding:
    return Finding(
        file=display(kustomization_file(res.root)),
        rule=BUILD,
        severity=ERROR,
        message=f"kubectl kustomize {display(res.root)} fails: {res.error}",
    )
