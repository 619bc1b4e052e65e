"""The local provider: a real Kubernetes control plane, kwok and Flux as supervised processes."""
