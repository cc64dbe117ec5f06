"""A saturated CPU ranks below the finding that explains its extra work."""

from __future__ import annotations

from warroom.agents.fusion import _saturation_explained
from warroom.analysis.fault_rules import FaultHypothesis


def _cpu(service: str, load_ratio: float) -> FaultHypothesis:
    return FaultHypothesis(
        service=service,
        fault_type="cpu_saturation",
        score=0.75,
        indicator="cpu_utilization",
        reason="CPU at its limit",
        facts={"load_ratio": load_ratio},
    )


def _finding(service: str, fault_type: str, score: float) -> FaultHypothesis:
    return FaultHypothesis(service=service, fault_type=fault_type, score=score, indicator="x", reason=fault_type)


def test_an_attack_is_the_load() -> None:
    ranked = _saturation_explained([_cpu("auth", 2.3), _finding("auth", "credential_stuffing", 0.7)])
    assert [h.fault_type for h in ranked] == ["credential_stuffing", "cpu_saturation"]
    assert "symptom of the credential stuffing on auth" in ranked[1].reason


def test_without_a_surge_the_database_fault_it_waits_on_leads() -> None:
    ranked = _saturation_explained([_cpu("catalog", 1.17), _finding("catalog", "missing_index", 0.738)])
    assert [h.fault_type for h in ranked] == ["missing_index", "cpu_saturation"]


def test_a_surge_keeps_the_saturation_first_and_other_services_are_not_touched() -> None:
    surge = _saturation_explained([_cpu("catalog", 7.5), _finding("catalog", "missing_index", 0.738)])
    assert surge[0].fault_type == "cpu_saturation"
    elsewhere = _saturation_explained([_cpu("cart", 1.1), _finding("catalog", "missing_index", 0.738)])
    assert elsewhere[0].fault_type == "cpu_saturation" and elsewhere[0].score == 0.75
