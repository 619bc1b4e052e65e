"""The recovery components the harness measures: health monitor, pattern-based recovery, lifecycle, dependencies.

`resilience recover` watches Flux Kustomizations and HelmReleases, serves Prometheus metrics, matches failure
messages against patterns (ConfigMap `flux-recovery-config` or a file) and runs the pattern's recovery action
with retries, escalation and a Lease so only one instance acts. `resilience explain` shows which pattern a
message matches and what would be done. Layers: patterns/engine are pure; actions and the operator talk to
the API through kubeapi; nothing here imports the harness (clusters, injectors, scenarios).
"""
