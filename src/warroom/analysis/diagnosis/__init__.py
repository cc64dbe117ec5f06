"""One diagnosis engine: typed evidence with strengths against noise, hypotheses (service, fault
type, change) in log-odds with priors from the fault-type registry, explanation over the call graph,
change attribution, and calibrated confidence with "inconclusive" as an answer."""

from __future__ import annotations

from warroom.analysis.diagnosis.engine import Diagnosis, diagnose

__all__ = ["Diagnosis", "diagnose"]
