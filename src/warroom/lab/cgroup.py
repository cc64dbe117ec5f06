"""Real memory limits for the services: a cgroup (v1 memory controller) per service.

A worker joins its service's cgroup before it executes, so the kernel's OOM killer ends it when
it goes over the limit and the supervisor restarts it, as a container runtime would. Where no
writable memory controller exists, RLIMIT_AS bounds the worker instead (it then fails with
MemoryError rather than an OOM kill); `MemoryLimit.kind` says which one is in force.

The supervisor publishes the cgroups' readings in cAdvisor's metric names.
"""

from __future__ import annotations

import contextlib
import os
import resource
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

CGROUP_MEMORY_ROOT = Path("/sys/fs/cgroup/memory")


def _writable_controller() -> bool:
    return (CGROUP_MEMORY_ROOT / "cgroup.procs").exists() and os.access(CGROUP_MEMORY_ROOT, os.W_OK)


class MemoryLimit:
    """One service's memory limit (its cgroup, or the rlimit fallback)."""

    def __init__(self, group: str, service: str) -> None:
        self.service = service
        self.kind = "cgroup" if _writable_controller() else "rlimit"
        self.path = CGROUP_MEMORY_ROOT / group / service
        self.limit_bytes = 0
        if self.kind == "cgroup":
            self.path.mkdir(parents=True, exist_ok=True)

    def set(self, limit_bytes: int) -> None:
        self.limit_bytes = limit_bytes
        if self.kind == "cgroup":
            # Swap stays out of it: the machine has none, and a limit must end in an OOM kill.
            (self.path / "memory.limit_in_bytes").write_text(str(limit_bytes))

    def enter(self) -> None:
        """Called in the forked child before exec: puts the worker under the limit."""
        if self.kind == "cgroup":
            (self.path / "cgroup.procs").write_text(str(os.getpid()))
        elif self.limit_bytes:
            resource.setrlimit(resource.RLIMIT_AS, (self.limit_bytes, self.limit_bytes))

    def _read(self, name: str) -> str:
        try:
            return (self.path / name).read_text()
        except OSError:
            return ""

    def readings(self) -> dict[str, float]:
        if self.kind != "cgroup":
            return {"limit": float(self.limit_bytes)}
        stats = dict(line.split() for line in self._read("memory.stat").splitlines() if " " in line)
        oom = dict(line.split() for line in self._read("memory.oom_control").splitlines() if " " in line)
        usage = float(self._read("memory.usage_in_bytes") or 0)
        return {
            "usage": usage,
            "working_set": max(usage - float(stats.get("total_inactive_file", 0)), 0.0),
            "rss": float(stats.get("total_rss", 0)),
            "cache": float(stats.get("total_cache", 0)),
            "limit": float(self._read("memory.limit_in_bytes") or self.limit_bytes),
            "oom_kills": float(oom.get("oom_kill", 0)),
        }

    def remove(self) -> None:
        if self.kind == "cgroup" and self.path.exists():
            # Still has a member (a worker being killed): the sweep at `lab down` retries.
            with contextlib.suppress(OSError):
                self.path.rmdir()


def remove_group(group: str) -> None:
    root = CGROUP_MEMORY_ROOT / group
    if not root.exists():
        return
    for child in sorted(root.glob("*"), reverse=True):
        if child.is_dir():
            try:
                child.rmdir()
            except OSError:
                shutil.rmtree(child, ignore_errors=True)
    with contextlib.suppress(OSError):
        root.rmdir()


class ContainerCollector(Collector):
    """cAdvisor-style series for each service: memory, limit, OOM kills, start time."""

    def __init__(self, limits: dict[str, MemoryLimit], start_times: dict[str, float]) -> None:
        self.limits = limits
        self.start_times = start_times

    def collect(self) -> Iterable[Any]:
        labels = ["container", "id"]
        families: dict[str, GaugeMetricFamily | CounterMetricFamily] = {
            "usage": GaugeMetricFamily("container_memory_usage_bytes", "Memory usage of the cgroup.", labels=labels),
            "working_set": GaugeMetricFamily(
                "container_memory_working_set_bytes", "Usage minus inactive file cache.", labels=labels
            ),
            "rss": GaugeMetricFamily("container_memory_rss", "Anonymous and swap cache memory.", labels=labels),
            "cache": GaugeMetricFamily("container_memory_cache", "Page cache memory.", labels=labels),
            "limit": GaugeMetricFamily("container_spec_memory_limit_bytes", "Memory limit.", labels=labels),
            "oom_kills": CounterMetricFamily("container_oom_events", "OOM kills in the cgroup.", labels=labels),
        }
        start = GaugeMetricFamily("container_start_time_seconds", "Start time of the container.", labels=labels)
        for service, limit in self.limits.items():
            ident = f"/{limit.path.parent.name}/{service}" if limit.kind == "cgroup" else f"/rlimit/{service}"
            for key, value in limit.readings().items():
                families[key].add_metric([service, ident], value)
            if service in self.start_times:
                start.add_metric([service, ident], self.start_times[service])
        yield from families.values()
        yield start
