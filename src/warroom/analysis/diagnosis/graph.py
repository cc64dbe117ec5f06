"""Explanation over the call graph: which cause an observed symptom belongs to.

A symptom on service A (slower, erroring, logging differently) is explained by a cause on a service A
depends on: the callee answers late or wrongly, and A waits, retries, holds its pool across the call
or fails. The registry says, per fault type, which symptoms it produces on its callers and on its
direct callees (a CPU-starved or delayed pod also stretches the calls it makes).

Every observation is counted once, for the service that explains it best:

- the services it speaks about directly (an edge's delay speaks about both ends) compete on the
  strength of their own evidence;
- a service below them that can explain it takes it when its own evidence is at least
  `propagation_share` of theirs: symptoms explained by a deeper cause do not count for the shallower
  one (a caller logging its callee's failure is a victim, not a second culprit), and a cause can only
  claim symptoms it explains (a callee's fault does not explain its caller's CPU);
- "own evidence" is recomputed from what each service keeps until the assignment settles, so a
  service whose evidence was claimed by a deeper cause cannot in turn claim its callers'.

What no formed hypothesis can explain stays unexplained, and the diagnosis lists it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
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

    @property
    def hypothesis(self) -> tuple[str, str]:
        return (self.service, self.fault_type)


def assign(claims: Iterable[Claim], share: float) -> list[Claim]:
    """The claims that count: per observation, those of the service that explains it best.

    A hypothesis' own strength is the sum of the local claims it keeps. Per observation the
    strongest local hypothesis and the strongest hypothesis elsewhere that explains it compete;
    the one elsewhere takes it when it keeps an above-noise observation of its own and its strength is
    at least `share` of the local one's. Every claim of the winning service on the observation then
    counts (its fault types compete later, on their scores)."""
    by_observation: dict[str, list[Claim]] = {}
    for claim in claims:
        by_observation.setdefault(claim.observation, []).append(claim)
    kept = [c for group in by_observation.values() for c in group if c.relation == "local"]
    owned: list[Claim] = []
    for _ in range(ROUNDS):
        strength: dict[tuple[str, str], float] = {}
        eligible: set[tuple[str, str]] = set()
        for claim in kept:
            strength[claim.hypothesis] = strength.get(claim.hypothesis, 0.0) + max(claim.value, 0.0)
            if claim.above_noise:
                eligible.add(claim.hypothesis)
        new = [c for group in by_observation.values() for c in _owned(group, strength, eligible, share)]
        if new == owned:
            break
        owned = new
        kept = [c for c in owned if c.relation == "local"]
    return owned


def _owned(
    group: list[Claim], strength: Mapping[tuple[str, str], float], eligible: set[tuple[str, str]], share: float
) -> list[Claim]:
    def key(c: Claim) -> tuple[float, str, str]:
        return (strength.get(c.hypothesis, 0.0), c.service, c.fault_type)

    local = [c for c in group if c.relation == "local"]
    remote = [c for c in group if c.relation != "local" and c.hypothesis in eligible]
    best_local = max(local, key=key) if local else None
    best_remote = max(remote, key=key) if remote else None
    if best_remote is None and best_local is None:
        return []
    winner = best_local
    if best_remote is not None:
        remote_strength = strength.get(best_remote.hypothesis, 0.0)
        local_strength = strength.get(best_local.hypothesis, 0.0) if best_local is not None else 0.0
        # A deeper cause takes the symptom when its own evidence is at least a share of the evidence
        # of the service showing it: the victim's change is what the cause predicts.
        if best_local is None or (remote_strength > 0 and remote_strength >= share * local_strength):
            winner = best_remote
    assert winner is not None
    # The winning service's local claims count, and its remote claims from hypotheses that have
    # evidence of their own (a fault type with nothing of its own explains nothing).
    return [c for c in group if c.service == winner.service and (c.relation == "local" or c.hypothesis in eligible)]
