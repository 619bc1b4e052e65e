"""Assertions: steady state, proof of fault, timelines, SLO budgets and verdicts."""
