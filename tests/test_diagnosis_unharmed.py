"""Evidence of absence: a CPU rise on a service whose own requests were measured and did not slow or
fail weighs the model's unharmed_llr against its CPU hypotheses; where no harm signal was measured
on it (a metric-only set without its latency), the absence says nothing."""

from __future__ import annotations

from importlib import resources

import pytest
import yaml
from pydantic import ValidationError

from warroom.analysis.diagnosis import hypotheses as hyp
from warroom.analysis.diagnosis.evidence import Observation
from warroom.analysis.faults import DATA_FILE, Registry, registry


def _obs(signal: str, service: str, z: float) -> Observation:
    return Observation(
        id=f"{signal}-{service}", detector="test", modality="metrics", signal=signal, service=service,
        strength=z, noise=3.5, query=f"{signal} of {service}",
    )  # fmt: skip


def _cpu_hypotheses(observations: list[Observation], measured: dict[str, set[str]]) -> dict[str, hyp.Hypothesis]:
    reg = registry()
    worth = hyp.Worth(reg, observations, 3)
    formed = hyp.form(observations, reg, worth, set(), set(), measured)
    return {h.fault_type: h for h in formed if h.service == "catalog" and h.fault_type.startswith("cpu_")}


def test_cpu_rise_with_measured_unmoved_latency_is_weighed_against() -> None:
    reg = registry()
    cpu = [_obs("cpu_utilization.up", "catalog", 12.0)]
    found = _cpu_hypotheses(cpu, {"latency.up": {"catalog", "gateway"}})
    assert {"cpu_consumption", "cpu_contention"} <= set(found)
    for h in found.values():
        assert h.unharmed_llr == reg.model.unharmed_llr < 0
        assert h.log_odds == h.log_prior + h.unharmed_llr + h.evidence_llr


def test_cpu_rise_without_any_measured_harm_signal_is_not_weighed() -> None:
    cpu = [_obs("cpu_utilization.up", "catalog", 12.0)]
    # latency measured elsewhere only: nothing is known of catalog's own requests
    found = _cpu_hypotheses(cpu, {"latency.up": {"gateway"}})
    assert found and all(h.unharmed_llr == 0.0 for h in found.values())
    assert all(h.unharmed_llr == 0.0 for h in _cpu_hypotheses(cpu, {}).values())


def test_cpu_rise_that_slows_the_service_is_not_weighed() -> None:
    observations = [_obs("cpu_utilization.up", "catalog", 12.0), _obs("latency.up", "catalog", 8.0)]
    found = _cpu_hypotheses(observations, {"latency.up": {"catalog"}})
    assert found and all(h.unharmed_llr == 0.0 for h in found.values())


def test_registry_rejects_an_unknown_harm_signal() -> None:
    raw = yaml.safe_load(resources.files("warroom.analysis").joinpath(DATA_FILE).read_text(encoding="utf-8"))
    raw["fault_types"]["cpu_consumption"]["harms"] = ["nope.up"]
    with pytest.raises(ValidationError, match="unknown signal"):
        Registry.model_validate(raw)
