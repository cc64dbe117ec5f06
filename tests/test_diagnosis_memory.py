"""Metric-only CPU and memory faults: the service whose own series departs from its own reference,
and the kind of fault from the shape of that departure — a leak keeps growing after its onset, a
bigger working set steps up and stays, a CPU fault is the CPU itself — whether memory is a share of
a limit or only a working set (no limit known). A leak's extra garbage-collection CPU does not make
it a CPU fault."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from warroom.analysis.diagnosis import diagnose
from warroom.sources import conventions as cv
from warroom.sources.canonical import Telemetry

T0 = datetime(2026, 1, 1, 12, tzinfo=UTC)
SERVICES = ("frontend", "cart", "catalog", "payment", "shipping")
FAULTY = "cart"


def _frames(fault: str, memory_metric: str, seed: int) -> tuple[pl.DataFrame, pl.DataFrame]:
    """A reference half an hour before and a 20-minute window whose fault starts at minute 5."""
    rng = np.random.default_rng(seed)
    periods: list[list[dict[str, object]]] = [[], []]
    for rows, start, minutes in ((periods[0], T0 - timedelta(minutes=40), 30), (periods[1], T0, 20)):
        for i in range(minutes):
            for k, service in enumerate(SERVICES):
                cpu = 0.15 + 0.03 * k + rng.normal(0, 0.01)
                memory = 0.35 + 0.05 * k + rng.normal(0, 0.003)
                latency = 20 + 5 * k + rng.normal(0, 1.5)
                if rows is periods[1] and i >= 5 and service == FAULTY:
                    if fault == "leak":  # grows every minute; the collector works harder
                        memory += 0.025 * (i - 4)
                        cpu += 0.12
                        latency += 3
                    elif fault == "step":  # a bigger working set from one minute to the next
                        memory += 0.3 + rng.normal(0, 0.004)
                        cpu += 0.1
                    else:  # a CPU hog
                        cpu = 0.97 + rng.normal(0, 0.005)
                        latency += 60
                if memory_metric == cv.MEMORY_USAGE_MIB:
                    memory *= 512  # MiB, with no limit to take a share of
                for metric, value in (
                    (cv.CPU_UTILIZATION, cpu),
                    (memory_metric, memory),
                    (cv.LATENCY_P99, latency),
                    (cv.REQUEST_RATE, 10 + rng.normal(0, 0.3)),
                ):
                    rows.append(
                        {
                            "timestamp": start + timedelta(minutes=i),
                            "service": service,
                            "metric": metric,
                            "value": float(value),
                            "instance": f"{service}-0",
                        }
                    )
    return pl.DataFrame(periods[0]), pl.DataFrame(periods[1])


@pytest.mark.parametrize("memory_metric", [cv.MEMORY_UTILIZATION, cv.MEMORY_USAGE_MIB])
@pytest.mark.parametrize(
    ("fault", "expected"), [("leak", "memory_leak"), ("step", "memory_pressure"), ("cpu", "cpu_contention")]
)
def test_metric_only_cpu_and_memory_faults(fault: str, expected: str, memory_metric: str) -> None:
    reference, window = _frames(fault, memory_metric, seed=len(fault) + len(memory_metric))
    d = diagnose(
        Telemetry(metrics=window),
        Telemetry(metrics=reference),
        alert_time=T0 + timedelta(minutes=8),
        window_start=T0,
        window_end=T0 + timedelta(minutes=20),
    )
    top = d.top()
    assert top is not None and not d.inconclusive
    assert top.service == FAULTY
    if expected == "cpu_contention":
        # minute-level pod CPU with no node or throttling series: contention and consumption share it
        assert top.fault_type in ("cpu_contention", "cpu_consumption")
    else:
        assert top.fault_type == expected
