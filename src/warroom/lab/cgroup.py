"""Containers for the lab's processes: a cgroup per service (v1 memory, cpu and cpuacct controllers).

A worker joins its container before it executes, as a container runtime would put it:
- memory: the kernel's OOM killer ends it when it goes over the limit and the supervisor restarts
  it. Where no writable memory controller exists, RLIMIT_AS bounds the worker instead (it then
  fails with MemoryError rather than an OOM kill); `Container.memory_kind` says which is in force.
- cpu: a CFS quota (the limit, in cores) and a scheduling group of its own. The group matters on a
  shared machine: the kernel's autogroup scheduler gives every session one share, so without it
  the whole lab — every service, the database and the load — would share a single share with
  each of the machine's other sessions, and its latency would be the neighbours' doing.
  Without a writable cpu controller there is no CPU limit (`cpu_kind` is "none").

The supervisor publishes the cgroups' readings under cAdvisor's metric names.
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

CGROUP_ROOT = Path("/sys/fs/cgroup")
CPU_CONTROLLERS = ("cpu", "cpuacct")
CFS_PERIOD_US = 100_000


def _writable(controller: str) -> bool:
    root = CGROUP_ROOT / controller
    return (root / "cgroup.procs").exists() and os.access(root, os.W_OK)


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _pairs(text: str) -> dict[str, float]:
    return {key: float(value) for key, value in (line.split() for line in text.splitlines() if " " in line)}


class Container:
    """One process group's resources: its memory limit (cgroup or rlimit) and its CPU (cgroup or none)."""

    def __init__(self, group: str, name: str) -> None:
        self.name = name
        self.group = group
        self.memory_kind = "cgroup" if _writable("memory") else "rlimit"
        self.cpu_kind = "cgroup" if all(_writable(c) for c in CPU_CONTROLLERS) else "none"
        self.limit_bytes = 0
        for controller in self._controllers():
            self.path(controller).mkdir(parents=True, exist_ok=True)

    def _controllers(self) -> list[str]:
        return (["memory"] if self.memory_kind == "cgroup" else []) + (
            list(CPU_CONTROLLERS) if self.cpu_kind == "cgroup" else []
        )

    def path(self, controller: str) -> Path:
        return CGROUP_ROOT / controller / self.group / self.name

    @property
    def ident(self) -> str:
        """The container's id as cAdvisor labels it (the cgroup path)."""
        return f"/{self.group}/{self.name}"

    def set(self, memory_bytes: int | None = None, cpu_cores: float | None = None) -> None:
        """Apply the limits (None: no limit of that kind)."""
        self.limit_bytes = memory_bytes or 0
        if self.memory_kind == "cgroup" and memory_bytes:
            # Swap stays out of it: the machine has none, and a limit must end in an OOM kill.
            (self.path("memory") / "memory.limit_in_bytes").write_text(str(memory_bytes))
        if self.cpu_kind == "cgroup":
            quota = round(cpu_cores * CFS_PERIOD_US) if cpu_cores else -1
            (self.path("cpu") / "cpu.cfs_period_us").write_text(str(CFS_PERIOD_US))
            (self.path("cpu") / "cpu.cfs_quota_us").write_text(str(quota))

    def enter(self) -> None:
        """Called in the forked child before exec: puts the process in the container."""
        self.adopt(os.getpid())
        if self.memory_kind == "rlimit" and self.limit_bytes:
            resource.setrlimit(resource.RLIMIT_AS, (self.limit_bytes, self.limit_bytes))

    def adopt(self, pid: int) -> None:
        """Move a running process in (its later children are born inside)."""
        for controller in self._controllers():
            with contextlib.suppress(ProcessLookupError):
                (self.path(controller) / "cgroup.procs").write_text(str(pid))

    def adopt_tree(self, pid: int) -> None:
        """Move a running process and every descendant it has forked so far."""
        self.adopt(pid)
        for child in _read(Path(f"/proc/{pid}/task/{pid}/children")).split():
            self.adopt_tree(int(child))

    def readings(self) -> dict[str, float]:
        found: dict[str, float] = {}
        if self.memory_kind == "cgroup":
            memory = self.path("memory")
            stats = _pairs(_read(memory / "memory.stat"))
            usage = float(_read(memory / "memory.usage_in_bytes") or 0)
            found.update(
                usage=usage,
                working_set=max(usage - stats.get("total_inactive_file", 0), 0.0),
                rss=stats.get("total_rss", 0),
                cache=stats.get("total_cache", 0),
                limit=float(_read(memory / "memory.limit_in_bytes") or self.limit_bytes),
                oom_kills=_pairs(_read(memory / "memory.oom_control")).get("oom_kill", 0),
            )
        elif self.limit_bytes:
            found["limit"] = float(self.limit_bytes)
        if self.cpu_kind == "cgroup":
            throttling = _pairs(_read(self.path("cpu") / "cpu.stat"))
            quota = float(_read(self.path("cpu") / "cpu.cfs_quota_us") or -1)
            found.update(
                cpu_usage=float(_read(self.path("cpuacct") / "cpuacct.usage") or 0) / 1e9,
                cfs_periods=throttling.get("nr_periods", 0),
                cfs_throttled_periods=throttling.get("nr_throttled", 0),
                cfs_throttled_seconds=throttling.get("throttled_time", 0) / 1e9,
                cpu_shares=float(_read(self.path("cpu") / "cpu.shares") or 1024),
            )
            if quota > 0:
                found.update(cpu_quota=quota, cpu_period=float(CFS_PERIOD_US))
        return found

    def remove(self) -> None:
        for controller in self._controllers():
            # Still has a member (a worker being killed): the sweep at `lab down` retries.
            with contextlib.suppress(OSError):
                self.path(controller).rmdir()


def weigh_group(group: str, containers: int) -> None:
    """Give the lab's group the CPU weight of its containers together, as if each one were a
    machine's container of its own (a kubepods slice weighs its pods' requests the same way)."""
    shares = CGROUP_ROOT / "cpu" / group / "cpu.shares"
    if shares.exists():
        shares.write_text(str(1024 * containers))


def remove_group(group: str) -> None:
    """Remove every container of the group (the lab's) in every controller."""
    for controller in ("memory", *CPU_CONTROLLERS):
        root = CGROUP_ROOT / controller / group
        if not root.exists():
            continue
        for child in sorted(root.glob("*"), reverse=True):
            if child.is_dir():
                try:
                    child.rmdir()
                except OSError:
                    shutil.rmtree(child, ignore_errors=True)
        with contextlib.suppress(OSError):
            root.rmdir()


# reading -> (cAdvisor metric name, help, counter?)
_FAMILIES = {
    "usage": ("container_memory_usage_bytes", "Memory usage of the cgroup.", False),
    "working_set": ("container_memory_working_set_bytes", "Usage minus inactive file cache.", False),
    "rss": ("container_memory_rss", "Anonymous and swap cache memory.", False),
    "cache": ("container_memory_cache", "Page cache memory.", False),
    "limit": ("container_spec_memory_limit_bytes", "Memory limit.", False),
    "oom_kills": ("container_oom_events", "OOM kills in the cgroup.", True),
    "cpu_usage": ("container_cpu_usage_seconds", "CPU time consumed.", True),
    "cfs_periods": ("container_cpu_cfs_periods", "Enforcement periods that have elapsed.", True),
    "cfs_throttled_periods": ("container_cpu_cfs_throttled_periods", "Periods in which it was throttled.", True),
    "cfs_throttled_seconds": ("container_cpu_cfs_throttled_seconds", "Time it was throttled.", True),
    "cpu_shares": ("container_spec_cpu_shares", "CPU share of the container.", False),
    "cpu_quota": ("container_spec_cpu_quota", "CPU quota (microseconds a period).", False),
    "cpu_period": ("container_spec_cpu_period", "CPU quota period (microseconds).", False),
}


class ContainerCollector(Collector):
    """cAdvisor-style series for each container: memory, CPU, limits, OOM kills, start time."""

    def __init__(self, containers: dict[str, Container], start_times: dict[str, float]) -> None:
        self.containers = containers
        self.start_times = start_times

    def collect(self) -> Iterable[Any]:
        labels = ["container", "id"]
        families: dict[str, GaugeMetricFamily | CounterMetricFamily] = {
            key: (CounterMetricFamily if counter else GaugeMetricFamily)(name, text, labels=labels)
            for key, (name, text, counter) in _FAMILIES.items()
        }
        start = GaugeMetricFamily("container_start_time_seconds", "Start time of the container.", labels=labels)
        for name, container in self.containers.items():
            for key, value in container.readings().items():
                families[key].add_metric([name, container.ident], value)
            if name in self.start_times:
                start.add_metric([name, container.ident], self.start_times[name])
        yield from families.values()
        yield start
