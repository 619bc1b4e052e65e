"""Selector faults: a Deployment's selector changes under a live workload, directly or through kustomize labels.

All three end in kustomize-controller's dry-run failing with `spec.selector ... field is immutable`; the
desired state in Git is valid, so recovery means the new selector is live (the Deployment was replaced): the app
serves once `web` is available with it.
"""

from __future__ import annotations

from typing import Any, ClassVar

from assertions.steady import Check
from fluxmodel.signatures import SELECTOR_IMMUTABLE
from injectors import apps
from injectors.base import WEB_PODS, Fault, FaultContext, serves_spec, standard_setup, web_app


class _WebSelectorFault(Fault):
    """A selector fault on the common `web` Deployment; `web()` builds it (a benchmark varies its pods' start-up)."""

    family = "selector"
    signature = SELECTOR_IMMUTABLE
    serves = WEB_PODS
    # The selector Git holds after the fault (as kustomize renders it).
    selector: ClassVar[dict[str, str]]

    def web(self, ctx: FaultContext, labels: dict[str, str]) -> dict[str, Any]:
        """The `web` Deployment with `labels` as its selector and pod template labels."""
        return apps.deployment("web", ctx.namespace, labels)

    def setup(self, ctx: FaultContext) -> None:
        standard_setup(ctx, web_app(ctx, self.web(ctx, {"app": "web"})))

    def serving(self, ctx: FaultContext) -> Check:
        shown = ",".join(f"{k}={v}" for k, v in sorted(self.selector.items()))
        selector = self.selector
        return serves_spec(ctx.namespace, "web", f"at selector {shown}", lambda obj: apps.match_labels(obj) == selector)


class SelectorChange(_WebSelectorFault):
    name = "selector-change"
    summary = "a Deployment's spec.selector and template labels change in Git"
    selector: ClassVar[dict[str, str]] = {"app": "web", "track": "stable"}

    def inject(self, ctx: FaultContext) -> None:
        changed = self.web(ctx, self.selector)
        ctx.prove(ctx.refused(changed, "spec.selector", "field is immutable"), "an immutable selector change")
        ctx.commit("Select only stable pods", write={f"{ctx.path}/deployment.yaml": apps.dump(changed)})
        ctx.reconcile(ctx.kustomization_ref())


class _KustomizeLabels(_WebSelectorFault):
    labels_field: ClassVar[dict[str, Any]]
    selector: ClassVar[dict[str, str]] = {"app": "web", "team": "payments"}

    def inject(self, ctx: FaultContext) -> None:
        # What kustomize renders: the label lands in metadata, the selector and the pod template.
        rendered = self.web(ctx, self.selector)
        rendered["metadata"]["labels"] = {"team": "payments"}
        ctx.prove(ctx.refused(rendered, "spec.selector", "field is immutable"), "a selector rewrite")
        files = web_app(ctx, **self.labels_field)
        kustomization = {f"{ctx.path}/kustomization.yaml": files[f"{ctx.path}/kustomization.yaml"]}
        ctx.commit(f"Label the app for team ownership ({self.name})", write=kustomization)
        ctx.reconcile(ctx.kustomization_ref())


class CommonLabelsPropagation(_KustomizeLabels):
    name = "commonlabels-propagation"
    summary = "kustomize commonLabels added to a live app's kustomization (rewrites selectors)"
    labels_field: ClassVar[dict[str, Any]] = {"commonLabels": {"team": "payments"}}


class LabelsIncludeSelectors(_KustomizeLabels):
    name = "labels-include-selectors"
    summary = "kustomize labels with includeSelectors: true added to a live app (what `kustomize edit fix` writes)"
    labels_field: ClassVar[dict[str, Any]] = {"labels": [{"pairs": {"team": "payments"}, "includeSelectors": True}]}
