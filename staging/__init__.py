"""The stage controller (`resilience stage`): StagedKustomizations move a Git revision stage to stage.

A revision enters a stage only after every stage it depends on passed it (checks green, health checks green
within their timeout, soak done). A stage is held at its revision by pinning its own GitRepository, the one
pinning mechanism the recovery operator uses too (recovery.actions.sources), so Flux's drift correction and
the operator's pins never move it. Part of the system under test: it imports none of the harness.
"""
