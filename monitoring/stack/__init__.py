"""Prometheus, Alertmanager and the alert receiver as processes beside a cluster, and the harness's handle on them.
Knows no cluster type: the cluster layer says where the stack lives and runs the processes it describes."""
