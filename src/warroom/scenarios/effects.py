"""What a fault (or a mitigation) does to the system, as arrays over replicas and time.

A scenario's fault model turns its plan into Effects for a period; the request simulator and the
telemetry writer read them. Arrays are shaped (replicas, steps) unless noted.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class ServiceEffect:
    """How one service misbehaves: slower, failing, or hanging until a timeout."""

    lat_mult: np.ndarray
    lat_add_ms: np.ndarray
    p_error: np.ndarray
    p_hang: np.ndarray
    hang_ms: float = 5000.0  # how long a hanging request waits before the service gives up
    error_message: str = "internal error"
    hang_message: str = "timed out"
    error_status: int = 500
    hang_status: int = 503
    operations: frozenset[str] | None = None  # only these operations are affected (None: all)
    caller_message: str | None = None  # what callers log when this service fails (e.g. a TLS error)

    @classmethod
    def neutral(cls, replicas: int, steps: int) -> ServiceEffect:
        return cls(
            lat_mult=np.ones((replicas, steps)),
            lat_add_ms=np.zeros((replicas, steps)),
            p_error=np.zeros((replicas, steps)),
            p_hang=np.zeros((replicas, steps)),
        )


@dataclass
class LogEvents:
    """Log lines emitted outside any request (pool monitors, the kubelet, a database)."""

    service: str
    replica: np.ndarray  # int, per line
    time_s: np.ndarray  # epoch seconds, per line
    level: str
    messages: list[str]
    attributes: list[str] | None = None  # JSON objects as text, per line


@dataclass
class Effects:
    # Keyed by service, or by "service:operation" for an effect on one operation only.
    services: dict[str, ServiceEffect] = field(default_factory=dict)
    # (service, metric) → (replicas, steps): replaces the healthy value of that series.
    metrics: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)
    # (service, metric) → (replicas, steps): added to the healthy value (e.g. extra CPU).
    metric_add: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)
    logs: list[LogEvents] = field(default_factory=list)
    # (caller, callee) → (steps,): extra one-way network delay in ms.
    edge_delay_ms: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)
    # Steps at which a service's pods were replaced (deploy, restart): new pod names from then on.
    rollouts: dict[str, list[int]] = field(default_factory=dict)
    # Pod generation each service starts the period with (a later period continues the count).
    generation_base: dict[str, int] = field(default_factory=dict)
    # Front-door traffic multiplier per step (e.g. an attack adds login requests), by endpoint path.
    extra_traffic: dict[str, np.ndarray] = field(default_factory=dict)
    # Client IPs and users of the extra traffic, per endpoint path: (ips, users) pools to draw from.
    extra_sources: dict[str, tuple[list[str], list[str]]] = field(default_factory=dict)

    # (caller, callee) → timeout in ms per step, replacing the call's configured timeout.
    call_timeouts: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)
    # Calls with Call.gate == name happen only at steps where the array is true.
    gates: dict[str, np.ndarray] = field(default_factory=dict)
    # "service:operation" → (probability per step, HTTP status, message): client errors such as 401.
    client_errors: dict[str, tuple[np.ndarray, int, str]] = field(default_factory=dict)
    # "service:operation" → (HTTP status, message) for every request of the extra traffic.
    extra_failures: dict[str, tuple[int, str]] = field(default_factory=dict)
    # Database table → multiplier of its row count per step (1 = intact).
    table_rows: dict[str, np.ndarray] = field(default_factory=dict)

    def service(self, name: str, replicas: int, steps: int) -> ServiceEffect:
        if name not in self.services:
            self.services[name] = ServiceEffect.neutral(replicas, steps)
        return self.services[name]
