"""Which label names the service: the conventions of common exporters, in order of preference."""

from __future__ import annotations

from collections.abc import Mapping

# `service` and `service_name` are set on purpose; `app` and the Kubernetes names come from pod
# labels; `job` is Prometheus' scrape job, often the service but sometimes a whole exporter, so it
# comes after them; `container` is what cAdvisor knows.
SERVICE_LABELS = (
    "service",
    "service_name",
    "service.name",
    "app",
    "app_kubernetes_io_name",
    "app.kubernetes.io/name",
    "k8s_app",
    "job",
    "container",
)


def service_of(labels: Mapping[str, str], configured: str | None = None) -> str | None:
    """The service a label set belongs to: the configured label, else the first convention present."""
    names = (configured,) if configured else SERVICE_LABELS
    return next((str(labels[name]) for name in names if name and labels.get(name)), None)
