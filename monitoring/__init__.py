"""Monitoring beside a cluster, in one package of two layers (import-linter's layers contract in pyproject.toml).

`monitoring.facts` is pure and low: the shipped rules and what each promises, the alerts a run's faults made due
and the phases they mark, coverage. The judge (assertions), reports and scenarios read it. `monitoring.stack` is
the process part under the cluster layer: Prometheus, Alertmanager and the alert receiver, their configuration
and command lines, and the harness's handle on them; the local provider runs it.
"""
