"""Every upstream version the project builds and runs, in one place.

The local provider runs these exact releases; the build cache is keyed by them, so changing a pin here is
the whole upgrade. Pins were chosen as the newest releases that build with Go 1.26 from the module proxy; the
Flux controllers as one flux2 release (FLUX_RELEASE).
"""

from __future__ import annotations

from dataclasses import dataclass

KUBERNETES_VERSION = "v1.36.3"
# promtool and the Prometheus server come from one upstream module at one pin (Go module v0.316.0 = Prometheus 3.16.0).
PROMETHEUS_VERSION = "v0.316.0"
# The newest Alertmanager that builds from the module proxy: from v0.32 on, the module embeds a web UI (ui/app/dist)
# that its zip does not contain, so `go build` fails with "pattern app/dist: no matching files found".
ALERTMANAGER_VERSION = "v0.31.1"
# Prometheus' README ("Service discovery plugins"): remove_all_sd leaves out every optional service discovery (and
# its cloud SDK) but file, static and http, which are all our scrape configs use (monitoring/stack/local.py).
# .promu.yml's release tags add nothing here: netgo is implied by CGO_ENABLED=0, builtinassets needs the web UI
# assets the module zip does not contain. Alertmanager's (netgo) likewise; etcd, kwok, Flux, Helm and actionlint
# release builds set no tags.
_PROMETHEUS_TAGS = ("remove_all_sd",)
# Where Prometheus' tools read their version from (shown by /api/v1/status/buildinfo and --version).
_PROMETHEUS_VERSION_PKG = "github.com/prometheus/common/version"


def _prometheus_ldflags(release: str) -> tuple[str, ...]:
    return (f"-X {_PROMETHEUS_VERSION_PKG}.Version={release}", f"-X {_PROMETHEUS_VERSION_PKG}.Branch=release")


@dataclass(frozen=True)
class GoComponent:
    """One upstream Go module built into one or more binaries.

    `packages` maps binary name -> Go package path. `local_replace_version` is the version used for modules
    the upstream go.mod replaces with a local directory and requires at v0.0.0 (Kubernetes' staging repos);
    other local replaces are resolved at the version the upstream go.mod requires. `tags` are the Go build tags
    upstream's own builds use to leave out what is not used (each pin says where upstream sets them).
    """

    name: str
    module: str
    version: str
    packages: dict[str, str]
    ldflags: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    local_replace_version: str | None = None
    crd_dir: str | None = None
    # What needs it (see PURPOSES). Components a cluster needs are built up front by `resilience build`; the
    # others are built by `resilience build --for PURPOSE` (what `make test` / `make chaos` run) or on demand.
    needed_for: tuple[str, ...] = ("cluster",)

    @property
    def optional(self) -> bool:
        """Not needed to run a cluster: built for its purpose or on first use, not by a plain `resilience build`."""
        return "cluster" not in self.needed_for


def _k8s_ldflags(version: str) -> tuple[str, ...]:
    major, minor = version.lstrip("v").split(".")[:2]
    pkgs = ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version")
    flags: list[str] = []
    for pkg in pkgs:
        flags += [
            f"-X {pkg}.gitVersion={version}",
            f"-X {pkg}.gitMajor={major}",
            f"-X {pkg}.gitMinor={minor}",
        ]
        flags += [f"-X {pkg}.gitTreeState=clean"]
    return tuple(flags)


COMPONENTS: tuple[GoComponent, ...] = (
    GoComponent(
        name="kubernetes",
        module="k8s.io/kubernetes",
        version=KUBERNETES_VERSION,
        packages={
            "kube-apiserver": "k8s.io/kubernetes/cmd/kube-apiserver",
            "kube-controller-manager": "k8s.io/kubernetes/cmd/kube-controller-manager",
            "kube-scheduler": "k8s.io/kubernetes/cmd/kube-scheduler",
        },
        ldflags=_k8s_ldflags(KUBERNETES_VERSION),
        # What hack/lib/golang.sh builds release binaries with: grpcnotrace drops golang.org/x/net/trace.
        tags=("selinux", "notest", "grpcnotrace"),
        local_replace_version="v0." + KUBERNETES_VERSION.split(".", 1)[1],
    ),
    GoComponent(
        name="etcd",
        module="go.etcd.io/etcd/server/v3",
        version="v3.6.16",
        packages={"etcd": "go.etcd.io/etcd/server/v3"},
    ),
    GoComponent(
        name="kwok",
        module="sigs.k8s.io/kwok",
        version="v0.8.0",
        packages={"kwok": "sigs.k8s.io/kwok/cmd/kwok"},
        ldflags=("-X sigs.k8s.io/kwok/pkg/consts.Version=v0.8.0",),
    ),
    GoComponent(
        name="source-controller",
        module="github.com/fluxcd/source-controller",
        version="v1.9.3",
        packages={"source-controller": "github.com/fluxcd/source-controller"},
        crd_dir="config/crd/bases",
    ),
    GoComponent(
        name="kustomize-controller",
        module="github.com/fluxcd/kustomize-controller",
        version="v1.9.3",
        packages={"kustomize-controller": "github.com/fluxcd/kustomize-controller"},
        crd_dir="config/crd/bases",
    ),
    GoComponent(
        name="helm-controller",
        module="github.com/fluxcd/helm-controller",
        version="v1.6.2",
        packages={"helm-controller": "github.com/fluxcd/helm-controller"},
        crd_dir="config/crd/bases",
    ),
    GoComponent(
        name="helm",
        module="helm.sh/helm/v3",
        version="v3.22.0",
        packages={"helm": "helm.sh/helm/v3/cmd/helm"},
        ldflags=("-X helm.sh/helm/v3/internal/version.version=v3.22.0",),
    ),
    GoComponent(
        name="prometheus",
        module="github.com/prometheus/prometheus",
        version=PROMETHEUS_VERSION,
        packages={"promtool": "github.com/prometheus/prometheus/cmd/promtool"},
        tags=_PROMETHEUS_TAGS,
        # The alert rules' checks in the tests, and `cluster up --monitoring` checking them before start-up.
        needed_for=("test", "chaos"),
    ),
    # The monitoring of a local cluster (`cluster up --monitoring`, the nightly and release profiles): a separate
    # component from promtool, so neither build invalidates the other; the Go build cache shares their packages.
    GoComponent(
        name="prometheus-server",
        module="github.com/prometheus/prometheus",
        version=PROMETHEUS_VERSION,
        packages={"prometheus": "github.com/prometheus/prometheus/cmd/prometheus"},
        ldflags=_prometheus_ldflags("3.16.0"),
        tags=_PROMETHEUS_TAGS,
        needed_for=("test", "chaos"),
    ),
    GoComponent(
        name="alertmanager",
        module="github.com/prometheus/alertmanager",
        version=ALERTMANAGER_VERSION,
        packages={"alertmanager": "github.com/prometheus/alertmanager/cmd/alertmanager"},
        ldflags=_prometheus_ldflags(ALERTMANAGER_VERSION.lstrip("v")),
        needed_for=("test", "chaos"),
    ),
    GoComponent(
        name="actionlint",
        module="github.com/rhysd/actionlint",
        version="v1.7.12",
        packages={"actionlint": "github.com/rhysd/actionlint/cmd/actionlint"},
        ldflags=("-X github.com/rhysd/actionlint.version=v1.7.12",),
        needed_for=("test",),
    ),
)

# The Flux release these controllers ship in, for reports: the three pins above are exactly the controllers of
# fluxcd/flux2 v2.9.2's manifests (manifests/bases/*/kustomization.yaml). It is the newest flux2 release whose
# controllers all build from the Go module proxy here: v2.9.3 to v2.9.5 need source-controller v1.9.4+ (which requires
# github.com/fluxcd/pkg/artifact v0.18.2+, not served) or helm-controller v1.6.3 (which replaces Helm with the
# github.com/fluxcd/helm/v4 fork, not served); v2.10 is not served. Bump them together, from one flux2 release.
FLUX_RELEASE = "v2.9.2"
FLUX_DISTRIBUTION = f"{FLUX_RELEASE} (source-controller v1.9.3, kustomize-controller v1.9.3, helm-controller v1.6.2)"


# Why a component is built; `make test` builds for "test", `make chaos` for "chaos" (both include "cluster").
PURPOSES: dict[str, str] = {
    "cluster": "run a local cluster (cluster up, every scenario)",
    "test": "the project's test suite (make test): a cluster, plus promtool for the alert rules, monitoring, and "
    "actionlint for the shipped CI workflows",
    "chaos": "the chaos suite (make chaos): a cluster, plus what its profiles turn on (monitoring)",
}


def components_for(purpose: str) -> tuple[GoComponent, ...]:
    """The components a purpose needs: its own, and every cluster component (each purpose runs a cluster)."""
    if purpose not in PURPOSES:
        raise KeyError(purpose)
    return tuple(c for c in COMPONENTS if "cluster" in c.needed_for or purpose in c.needed_for)


def component(name: str) -> GoComponent:
    for c in COMPONENTS:
        if c.name == name:
            return c
    raise KeyError(f"unknown component {name!r}; known: {', '.join(c.name for c in COMPONENTS)}")
