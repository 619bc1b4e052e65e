"""The `resilience` command line: one entry point over clusters, scenarios, recovery and validation."""
