"""Explanation over the call graph: which cause an observed symptom belongs to.

A symptom on service A (slower, erroring, logging differently) is explained by a cause on a service A
depends on: the callee answers late or wrongly, and A waits, retries, holds its pool across the call
or fails. The registry says, per fault type, which symptoms it produces on its callers and on its
direct callees (a CPU-starved or delayed pod also stretches the calls it makes).

Every observation counts once in total, shared among the services that can explain it:

- the services it speaks about directly (an edge's delay speaks about both ends), and the strongest
  service elsewhere whose fault explains it, share it by responsibility: the posterior weight of each
  one's best hypothesis (prior, change and specific evidence, in log-odds) against the others'. Only
  evidence of what failed counts there: that a service's requests fail says where a failure shows,
  and it shows on the victims of a failure below as much as on its culprit. A symptom that
  a strong deeper cause explains counts almost wholly for that cause (a caller logging its callee's
  failure is a victim, not a second culprit), one a weak cause below could explain stays mostly
  where it is seen;
- a cause can only take symptoms it explains (a callee's CPU does not explain which code path its
  caller takes), and only when it keeps an above-noise observation of its own;
- "own evidence" is recomputed from what each service keeps until the shares settle, so a service
  whose evidence went to a deeper cause has little left to claim its callers' with.

What no formed hypothesis can explain stays unexplained, and the diagnosis lists it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Literal

import networkx as nx

Relation = Literal["local", "callers", "callees"]
ROUNDS = 4  # assignment rounds; ownership settles in two or three on real call graphs


class CallGraph:
    """Who calls whom (caller → callee edges), from the topology and the spans."""

    def __init__(self, edges: Mapping[str, Iterable[str]]) -> None:
        self._graph: nx.DiGraph[str] = nx.DiGraph()
        for caller, callees in edges.items():
            self._graph.add_node(caller)
            for callee in callees:
                if callee != caller:
                    self._graph.add_edge(caller, callee)
        self._upstream: dict[str, set[str]] = {}

    def services(self) -> list[str]:
        return sorted(self._graph.nodes)

    def callers_of(self, service: str) -> set[str]:
        """Every service that calls `service`, directly or through others."""
        if service not in self._graph:
            return set()
        if service not in self._upstream:
            self._upstream[service] = set(nx.ancestors(self._graph, service))
        return self._upstream[service]

    def callees_of(self, service: str) -> set[str]:
        return set(self._graph.successors(service)) if service in self._graph else set()

    def calls(self, service: str) -> bool:
        return service in self._graph and self._graph.out_degree(service) > 0

    def relation(self, symptom_service: str, cause_service: str) -> Relation | None:
        """How a symptom on one service relates to a cause on another: the symptom's service calls
        the cause (transitively: "callers"), or the cause calls it directly ("callees")."""
        if symptom_service == cause_service:
            return "local"
        if symptom_service in self.callers_of(cause_service):
            return "callers"
        if symptom_service in self.callees_of(cause_service):
            return "callees"
        return None

    def as_dict(self) -> dict[str, list[str]]:
        return {s: sorted(self._graph.successors(s)) for s in sorted(self._graph.nodes) if self._graph.out_degree(s)}


@dataclass(frozen=True)
class Claim:
    """One way an observation can count: for one hypothesis (service, fault type), under `signal`,
    locally (`value`: what it adds there) or as a symptom the hypothesis explains."""

    observation: str
    service: str
    fault_type: str
    signal: str
    relation: Relation
    value: float
    above_noise: bool
    base: float  # the hypothesis' prior and change evidence: its responsibility starts there
    specific: bool  # says what failed (not only where it showed, not a mere symptom)
    symptom: bool = False  # a symptom signal (latency, errors): says something is wrong here or below

    @property
    def hypothesis(self) -> tuple[str, str]:
        return (self.service, self.fault_type)


def assign(claims: Iterable[Claim]) -> list[Claim]:
    """The claims that count, each with the share of its observation it keeps (its value scaled).

    A hypothesis' own strength is the sum of the specific local claims it keeps: evidence of what
    failed, not of where a failure showed (a service whose requests fail shows it whatever made them
    fail) nor a symptom. An observation is shared among the services that can explain it (the ones
    it speaks about, and the strongest one elsewhere whose fault explains it) by responsibility: the
    posterior weight of each one's best hypothesis counting the observation its own way (its prior
    and change evidence, its other specific evidence, and what this observation is worth to it)
    against the others'. A service explains another's symptom only when it keeps an
    above-noise observation of its own that is more than a symptom — one that says what failed or
    where a failure starts (a change below the noise explains nothing, and neither does its own
    latency: a slower service may be one more victim of the fault its callers show).
    Responsibilities settle over a few rounds."""
    by_observation: dict[str, list[Claim]] = {}
    for claim in claims:
        by_observation.setdefault(claim.observation, []).append(claim)
    kept = [c for group in by_observation.values() for c in group if c.relation == "local"]
    owned: list[Claim] = []
    for _ in range(ROUNDS):
        strength: dict[tuple[str, str], float] = {}
        share: dict[tuple[str, tuple[str, str]], float] = {}
        eligible: set[tuple[str, str]] = set()
        for claim in kept:
            if claim.specific:
                strength[claim.hypothesis] = strength.get(claim.hypothesis, 0.0) + max(claim.value, 0.0)
                share[(claim.observation, claim.hypothesis)] = max(claim.value, 0.0)
            if claim.above_noise and (claim.specific or not claim.symptom):
                eligible.add(claim.hypothesis)
        new = [c for group in by_observation.values() for c in _shared(group, strength, share, eligible)]
        if _same(new, owned):
            break
        owned = new
        kept = [c for c in owned if c.relation == "local"]
    return owned


def _same(a: list[Claim], b: list[Claim]) -> bool:
    return len(a) == len(b) and all(
        x.hypothesis == y.hypothesis and x.observation == y.observation and abs(x.value - y.value) < 1e-6
        for x, y in zip(a, b, strict=True)
    )


def _shared(
    group: list[Claim],
    strength: Mapping[tuple[str, str], float],
    share: Mapping[tuple[str, tuple[str, str]], float],
    eligible: set[tuple[str, str]],
) -> list[Claim]:
    usable = [c for c in group if c.relation == "local" or c.hypothesis in eligible]
    if not usable:
        return []
    # A symptom a strong deeper cause explains goes almost wholly to it; one that a weak cause below
    # could explain stays mostly where it is seen.
    best: dict[str, float] = {}
    for c in usable:
        others = strength.get(c.hypothesis, 0.0) - share.get((c.observation, c.hypothesis), 0.0)
        score = c.base + others + c.value
        best[c.service] = max(best.get(c.service, -math.inf), score)
    local = {c.service for c in usable if c.relation == "local"}
    remote = {s: v for s, v in best.items() if s not in local}
    if remote:
        # Of the causes elsewhere only the strongest competes: many weak ones must not dilute it.
        deepest = max(remote, key=lambda s: (remote[s], s))
        best = {s: v for s, v in best.items() if s in local or s == deepest}
    top = max(best.values())
    weight = {s: math.exp(v - top) for s, v in best.items()}
    total = sum(weight.values())
    return [replace(c, value=c.value * weight[c.service] / total) for c in usable if c.service in weight]
