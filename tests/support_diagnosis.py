"""The diagnosis' scoring of hypotheses on given observations, as `diagnose` runs it, for the fault
types that need no change (the tests give observations, not a change log)."""

from __future__ import annotations

from warroom.analysis.diagnosis import hypotheses as hyp
from warroom.analysis.diagnosis.evidence import Observation
from warroom.analysis.diagnosis.graph import CallGraph, assign
from warroom.analysis.faults import registry


def ranked_without_changes(observations: list[Observation], calls: dict[str, list[str]]) -> list[hyp.Hypothesis]:
    """Hypotheses formed from `observations` over the call graph `calls` (caller → callees),
    scored and ranked, most likely first."""
    reg = registry()
    worth = hyp.Worth(reg, observations, 3)
    formed = [
        h
        for h in hyp.form(observations, reg, worth, set(), set())
        if not reg.fault_types[h.fault_type].change.needed(False)
    ]
    base = {h.key: h.log_prior for h in formed}
    owned = assign(hyp.claims(observations, formed, CallGraph(calls), reg, worth, base, set()))
    hyp.score(formed, {o.id: o for o in observations}, owned, reg, worth)
    hyp.adopt_mechanisms(formed, reg)
    return sorted(formed, key=lambda h: -h.log_odds)
