"""Access to the Kubernetes API for every layer: one client factory, one error mapping, unstructured objects.

Flux objects are custom resources, so the project reads and writes plain dicts through the dynamic client
rather than generated models; API errors become the classes in kubeapi.errors, mapped in one place.
"""

from kubeapi.client import Kube, connect, connect_in_cluster
from kubeapi.errors import ApiError, Conflict, Forbidden, Invalid, NotFound, TemporaryApiError, UnknownKind
from kubeapi.kubeconfig import Kubeconfig, KubeconfigError
from kubeapi.labels import LabelSelector, SelectorError

__all__ = [
    "ApiError",
    "Conflict",
    "Forbidden",
    "Invalid",
    "Kube",
    "Kubeconfig",
    "KubeconfigError",
    "LabelSelector",
    "NotFound",
    "SelectorError",
    "TemporaryApiError",
    "UnknownKind",
    "connect",
    "connect_in_cluster",
]
