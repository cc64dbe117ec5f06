"""incident-documentation-specialist: the timeline reconstructed from the telemetry."""

from __future__ import annotations

import sys
from datetime import datetime, timedelta
from pathlib import Path

from warroom.agents.base import AgentContext
from warroom.agents.documentation import IncidentDocumentationSpecialist
from warroom.sources.bundle import load_bundle

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "recovery"))
from pipeline import base_context
from synth import T0, Shape, write_bundle


def at(event: dict) -> datetime:
    return datetime.fromisoformat(event["at"])


def test_timeline_follows_the_data(tmp_path: Path) -> None:
    shape = Shape(deploy_min=63, onset_min=78, pool_full_min=86, alert_min=95)
    bundle = load_bundle(write_bundle(tmp_path / "b", seed=41, shape=shape))
    context = base_context()
    context["suspect_change"]["id"] = "chg-103"
    context["resolution_plan"] = [
        {"id": "A1-recycle_pool", "kind": "recycle_pool", "title": "Recycle", "target": "checkout"}
    ]
    context["mitigation"] = {
        "outcomes": [{"action_id": "A1-recycle_pool", "status": "verified", "verified": True}],
        "recovered_by": "recycle_pool",
    }
    report = IncidentDocumentationSpecialist().run(AgentContext(bundle, "INC-1", context))
    doc = report.outputs["documentation"]
    timeline = doc["timeline"]
    assert [at(e) for e in timeline] == sorted(at(e) for e in timeline)
    onsets = {(e["service"], e["values"]["signal"]): at(e) for e in timeline if e["kind"] == "onset"}
    onset = T0 + timedelta(minutes=shape.onset_min)
    latency = onsets[("checkout", "latency_p99_ms")]
    assert onset <= latency <= onset + timedelta(minutes=3)  # the ramp starts at onset
    assert ("checkout", "db_pool_utilization") in onsets
    assert ("gateway", "db_pool_utilization") not in onsets  # only services that report the metric
    kinds = [e["kind"] for e in timeline]
    assert {"alert", "change", "first_error", "mitigation", "recovery"} <= set(kinds)
    alert = next(e for e in timeline if e["kind"] == "alert")
    assert at(alert) == T0 + timedelta(minutes=shape.alert_min)
    suspect = next(e for e in timeline if e["kind"] == "change" and e["values"].get("suspect"))
    assert at(suspect) == T0 + timedelta(minutes=shape.deploy_min)
    error = next(e for e in timeline if e["kind"] == "first_error")
    assert at(error) >= onset - timedelta(minutes=1) and "pool" in error["summary"]
    mitigation = next(e for e in timeline if e["kind"] == "mitigation")
    assert at(mitigation) == T0 + timedelta(minutes=shape.end_min)  # first sample after the action
    first_onset = min(onsets.values())
    assert doc["durations"]["onset_to_alert_min"] == round((at(alert) - first_onset).total_seconds() / 60, 2)
    assert doc["durations"]["change_to_onset_min"] == round((first_onset - at(suspect)).total_seconds() / 60, 2)
    assert doc["findings_count"] == len(doc["findings"]) >= 4


def test_missing_modalities_are_gaps(tmp_path: Path) -> None:
    bundle = load_bundle(write_bundle(tmp_path / "b", seed=42, shape=Shape(modalities=("metrics",))))
    report = IncidentDocumentationSpecialist().run(AgentContext(bundle, "INC-1", {}))
    gaps = report.outputs["documentation"]["gaps"]
    assert any("logs" in g for g in gaps) and any("change history" in g for g in gaps)
    assert any(e["kind"] == "onset" for e in report.outputs["documentation"]["timeline"])
    assert report.outputs["documentation"]["findings_count"] == 0
