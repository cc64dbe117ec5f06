"""The fault-type registry: one name per kind of fault, shared by the diagnosis engine, the runbooks,
the scenario generator, the benchmarks and the workflows' decide conditions.

The registry is data (`analysis/data/fault_types.yaml`): per fault type its family, investigation
path, runbook, prior, the evidence signals that support or contradict it, the symptoms it explains on
other services, and which changes and code findings can bring it in. Every other name in use (the
Nezha dataset's labels, earlier warroom versions) is mapped onto the registry's in one alias table.
"""

from __future__ import annotations

import math
import re
from functools import cache
from importlib import resources
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

Path = Literal["database", "application", "infrastructure"]
# "mechanism": the path of the signature the fault shows (a config change that shrank a pool is
# investigated where the pool is), else the application's
Route = Literal["database", "application", "infrastructure", "mechanism"]
Relation = Literal["callers", "callees"]  # a symptom on a service that calls the faulty one / is called by it
DATA_FILE = "data/fault_types.yaml"


class ChangeLink(BaseModel):
    """Which changes can bring a fault in, and how fast it shows after them."""

    model_config = ConfigDict(extra="forbid")

    kinds: list[str] = Field(default_factory=list)
    code: list[str] = Field(default_factory=list)
    lead_minutes: float = Field(30.0, gt=0)
    required: bool = False
    # required on a service we run and see inside, not on an outside dependency (which has no change
    # of ours): a service of ours does not slow down for its callers on its own
    required_inside: bool = False

    def needed(self, external: bool) -> bool:
        """Whether a hypothesis of this fault type needs a candidate change to be formed."""
        return self.required or (self.required_inside and not external)


class SignalInfo(BaseModel):
    """One evidence signal of the vocabulary the detectors emit."""

    model_config = ConfigDict(extra="forbid")

    modality: Literal["metrics", "logs", "traces", "changes", "code"]
    symptom: bool = False  # says something is wrong, not which fault: capped at the model's symptom_cap
    description: str
    decides: str = ""  # what a person would query to get it, when it is missing


class FaultType(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = ""
    family: str
    path: Route
    runbook: str
    description: str
    prior: float = Field(gt=0, lt=1)
    support: dict[str, float]
    contradict: dict[str, float] = Field(default_factory=dict)
    requires: list[str]  # at least one of these observed on the service …
    requires_all: list[str] = Field(default_factory=list)  # … and every one of these
    explains: dict[Relation, list[str]] = Field(default_factory=dict)
    change: ChangeLink = Field(default_factory=ChangeLink)
    # Fault types whose signature this one can show: a config change can shrink a pool (the service
    # then shows a pool exhaustion), shorten a timeout (errors) or enable a broken flag (exceptions).
    mechanisms: list[str] = Field(default_factory=list)
    # internal: a fault of a service we run and see inside (its code, its resources); external: of a
    # dependency seen only from the outside (no resource series or logs of its own); client: of the
    # work a service sends to a server (a query without an index): never the server's own; any: either
    scope: Literal["internal", "external", "client", "any"] = "any"
    # symptom signals that are this fault type's own evidence on an external dependency (its latency
    # is all we can see of it): counted there without the symptom cap
    own_symptoms: list[str] = Field(default_factory=list)
    # locating signals that say what failed for this fault type (a request leaving its usual path is
    # what an exception does; for a saturated pool it is only where the failure showed)
    signature: list[str] = Field(default_factory=list)
    # signals by which the fault shows on the service's own requests when it is the incident's cause
    # (a CPU-starved service answers late): where one of them was measured on the service and none
    # moved, the hypothesis there weighs the model's unharmed_llr (a CPU rise that slows no request is
    # more likely load than the cause). Empty: no such condition.
    harms: list[str] = Field(default_factory=list)

    @property
    def log_prior(self) -> float:
        return math.log(self.prior)

    def weight(self, signal: str) -> float:
        """The signed weight of a signal: positive supports, negative contradicts, 0 says nothing."""
        return self.support.get(signal, 0.0) - self.contradict.get(signal, 0.0)

    def explains_on(self, relation: Relation, signal: str) -> bool:
        return signal in self.explains.get(relation, [])

    def attributable(self, kind: str) -> bool:
        return kind.lower() in self.change.kinds


class ModelParameters(BaseModel):
    """How evidence turns into log-odds (documented beside the values in the data file)."""

    model_config = ConfigDict(extra="forbid")

    cap: float = Field(gt=0)
    symptom_cap: float = Field(gt=0)
    propagated_weight: float = Field(ge=0, le=1)
    lookback_hours: float = Field(gt=0)
    onset_tolerance_minutes: float = Field(ge=0)
    global_change_share: float = Field(gt=0, le=1)
    code_miss_llr: float = Field(le=0)
    restored_version_llr: float = Field(le=0)
    unharmed_llr: float = Field(le=0)


class Registry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int
    # shared blocks the fault types merge in (YAML anchors); read through the fault types only
    localisation: dict[str, float] = Field(default_factory=dict)
    symptoms: dict[str, list[str]] = Field(default_factory=dict)
    slow_symptoms: dict[str, list[str]] = Field(default_factory=dict)
    model: ModelParameters
    signals: dict[str, SignalInfo]
    log_patterns: dict[str, str]
    fault_types: dict[str, FaultType]
    aliases: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> Registry:
        for name, fault in self.fault_types.items():
            fault.name = name
            used = {*fault.support, *fault.contradict, *fault.requires, *fault.requires_all, *fault.signature}
            used |= set(fault.harms)
            used |= {s for signals in fault.explains.values() for s in signals}
            unknown = sorted(used - set(self.signals))
            if unknown:
                raise ValueError(f"fault type {name}: unknown signal(s) {', '.join(unknown)}")
            missing = sorted((set(fault.requires) | set(fault.requires_all)) - set(fault.support))
            if missing:
                raise ValueError(f"fault type {name}: required signal(s) {', '.join(missing)} not in support")
        total = sum(f.prior for f in self.fault_types.values())
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"priors sum to {total:.4f}, not 1")
        for name, pattern in self.log_patterns.items():
            if f"log_pattern.{name}" not in self.signals:
                raise ValueError(f"log pattern {name}: no signal log_pattern.{name}")
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"log pattern {name}: {exc}") from None
        for name, fault in self.fault_types.items():
            unknown = sorted(set(fault.mechanisms) - set(self.fault_types))
            if unknown:
                raise ValueError(f"fault type {name}: unknown mechanism(s) {', '.join(unknown)}")
        bad = sorted(a for a, target in self.aliases.items() if target not in self.fault_types)
        if bad:
            raise ValueError(f"alias(es) {', '.join(bad)} point at no fault type")
        return self

    def canonical(self, name: str | None) -> str | None:
        """The registry's name for a fault-type name (itself, an alias's target, or None if unknown)."""
        if name is None:
            return None
        key = name.strip().lower().replace("-", "_").replace(" ", "_")
        if key in self.fault_types:
            return key
        return self.aliases.get(key)

    def get(self, name: str) -> FaultType:
        canonical = self.canonical(name)
        if canonical is None:
            raise KeyError(f"unknown fault type {name!r}")
        return self.fault_types[canonical]

    def names(self) -> list[str]:
        return sorted(self.fault_types)


@cache
def registry() -> Registry:
    """The shipped registry (loaded and validated once per process)."""
    text = resources.files("warroom.analysis").joinpath(DATA_FILE).read_text(encoding="utf-8")
    try:
        return Registry.model_validate(yaml.load(text, Loader=yaml.CSafeLoader))
    except ValidationError as exc:  # a broken data file is a programming error of this package
        raise RuntimeError(f"warroom/analysis/{DATA_FILE}: {exc}") from None


def canonical_fault(name: str | None) -> str | None:
    """Shorthand for `registry().canonical(name)`: any fault-type name onto the registry's."""
    return registry().canonical(name)


def path_of(fault_type: str | None, mechanism: str | None = None) -> Path | None:
    """The investigation path of a fault type (None for an unknown name); for one that takes its path
    from the signature it shows, that signature's path."""
    name = canonical_fault(fault_type)
    if name is None:
        return None
    route = registry().fault_types[name].path
    if route != "mechanism":
        return route
    return path_of(mechanism) if mechanism and canonical_fault(mechanism) != name else "application"
