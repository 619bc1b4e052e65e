"""Fault injectors: a registry of faults, each with setup, inject, proof of fault and a persisted revert record."""
