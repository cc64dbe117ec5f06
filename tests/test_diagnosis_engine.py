"""The diagnosis engine on the specialists' in-memory shop (gateway → checkout → database, catalog,
auth): which service, which fault type, which change; a fault-free period comes out inconclusive;
the registry and the calibration map hold what they promise."""

from __future__ import annotations

from datetime import datetime, timedelta

import polars as pl
import pytest
import yaml
from pydantic import ValidationError

from support_specialists import FIRED, ONSET, bundle, changes
from warroom.agents.investigation import investigate
from warroom.analysis.diagnosis import diagnose
from warroom.analysis.diagnosis.calibration import (
    CalibrationMap,
    expected_calibration_error,
    fit,
    out_of_sample,
    reliability,
)
from warroom.analysis.faults import DATA_FILE, Registry, canonical_fault, path_of, registry
from warroom.sources.canonical import Telemetry
from warroom.sources.incident_telemetry import IncidentTelemetry


def _diagnose(telemetry: IncidentTelemetry, current: Telemetry | None = None):  # type: ignore[no-untyped-def]
    window = telemetry.manifest.effective_window()
    return diagnose(
        current or telemetry.current,
        telemetry.baseline,
        alert_time=telemetry.manifest.alert.fired_at,
        window_start=window.start,
        window_end=window.end,
        topology=telemetry.topology,
    )


def test_pool_leak_names_the_service_fault_and_the_deploy_that_brought_it() -> None:
    d = investigate(bundle("pool_leak"))
    top = d.top()
    assert top is not None and not d.inconclusive
    assert (top.service, top.fault_type) == ("checkout", "db_pool_exhaustion")
    # The checkout deploy 14 min before the onset, not the catalog deploy 4 min before it (another
    # service) nor the checkout config change after it.
    assert top.change is not None and top.change.change.id == "chg-2"
    assert d.candidates[0].service == "checkout" and not d.candidates[0].inconclusive
    cited = {o.id for o in d.observations}
    assert d.candidates[0].evidence_ids and set(d.candidates[0].evidence_ids) <= cited
    assert 0.0 < d.candidates[0].confidence <= 1.0


def test_missing_index_is_the_querying_service_not_the_database_server() -> None:
    d = investigate(bundle("missing_index"))
    top = d.top()
    assert top is not None and (top.service, top.fault_type) == ("checkout", "missing_index")
    # The server's CPU and long queries count for the client's hypothesis as symptoms on its callee.
    relations = {(u.signal, u.relation) for u in top.uses}
    assert ("db_cpu_utilization.up", "callees") in relations
    assert all(h.service != "database" or h.fault_type != "missing_index" for h in d.hypotheses)


def test_fault_free_period_is_inconclusive() -> None:
    d = investigate(bundle("none"))
    assert d.inconclusive
    assert all(c.inconclusive for c in d.candidates)
    assert d.decide  # says what would decide (or that nothing could be formed)


def test_pool_leak_without_logs_still_localises_checkout() -> None:
    telemetry = bundle("pool_leak")
    current = Telemetry(metrics=telemetry.current.metrics, changes=telemetry.current.changes)
    d = _diagnose(telemetry, current)
    top = d.top()
    assert top is not None and top.service == "checkout" and top.fault_type == "db_pool_exhaustion"


def test_registry_names_aliases_and_paths() -> None:
    reg = registry()
    assert abs(sum(f.prior for f in reg.fault_types.values()) - 1.0) < 1e-6
    # The Nezha labels and the old scenario names land on the registry's names (one alias table).
    assert canonical_fault("exception") == "code_exception"
    assert canonical_fault("return") == "code_error"
    assert canonical_fault("cpu_consumed") == "cpu_consumption"
    assert canonical_fault("Pool-Exhaustion") == "db_pool_exhaustion"
    assert canonical_fault("no_such_fault") is None
    assert path_of("missing_index") == "database" and path_of("network_delay") == "infrastructure"
    # A config change takes the path of the signature it shows.
    assert path_of("bad_config", "db_pool_exhaustion") == "database"
    for fault in reg.fault_types.values():
        assert fault.runbook, fault.name


def test_registry_rejects_an_unknown_signal_and_bad_priors() -> None:
    from importlib import resources

    raw = yaml.safe_load(resources.files("warroom.analysis").joinpath(DATA_FILE).read_text(encoding="utf-8"))
    broken = dict(raw, fault_types={k: dict(v) for k, v in raw["fault_types"].items()})
    broken["fault_types"]["memory_leak"]["support"] = {**raw["fault_types"]["memory_leak"]["support"], "nope.up": 1.0}
    with pytest.raises(ValidationError, match="unknown signal"):
        Registry.model_validate(broken)
    skewed = dict(raw, fault_types={k: dict(v) for k, v in raw["fault_types"].items()})
    skewed["fault_types"]["memory_leak"]["prior"] = 0.5
    with pytest.raises(ValidationError, match="priors sum"):
        Registry.model_validate(skewed)


def test_calibration_fit_reliability_and_out_of_sample() -> None:
    # Over-confident raw scores: right 60 % of the time at a raw 0.9.
    raw = [0.9] * 100 + [0.2] * 100
    correct = [i % 10 < 6 for i in range(100)] + [i % 10 < 1 for i in range(100)]
    a, b, _ = fit(raw, correct)
    fitted = CalibrationMap(a=a, b=b)
    assert abs(fitted.apply(0.9) - 0.6) < 0.05 and abs(fitted.apply(0.2) - 0.1) < 0.05
    assert expected_calibration_error(raw, correct) == pytest.approx(0.5 * 0.3 + 0.5 * 0.1)
    assert expected_calibration_error([fitted.apply(p) for p in raw], correct) < 0.05
    table = reliability(raw, correct)
    assert [b.cases for b in table] == [100, 100]
    # Leave one group out: each group's predictions come from a map fitted on the other only.
    groups = ["x"] * 100 + ["y"] * 100
    predicted = out_of_sample(raw, correct, groups)
    a_y, b_y, c_y = fit(raw[100:], correct[100:])
    assert predicted[0] == pytest.approx(CalibrationMap(a=a_y, b=b_y, c=c_y).apply(0.9))
    assert pl.Series(predicted).is_between(0, 1).all()


def test_calibration_lowers_the_confidence_an_incident_without_a_modality_earns() -> None:
    # The same raw share is right 9 times in 10 with every modality and 3 in 10 without the logs.
    raw = [0.6] * 200
    missing = [0] * 100 + [1] * 100
    correct = [i % 10 < 9 for i in range(100)] + [i % 10 < 3 for i in range(100)]
    a, b, c = fit(raw, correct, missing)
    model = CalibrationMap(a=a, b=b, c=c)
    assert c < 0
    assert abs(model.apply(0.6) - 0.9) < 0.05 and abs(model.apply(0.6, 1) - 0.3) < 0.05
    assert model.raw_of(model.apply(0.6, 1), 1) == pytest.approx(0.6)


def test_a_replayed_record_ends_the_incident_period_at_the_responses_first_rollback() -> None:
    """The change log of a replayed capture holds the response's rollback two minutes after the
    alert: what follows shows the remedy, so the compared period ends there (a fault of minutes
    averaged with the recovered rest reads as none), and the deploy it undid is still the cause."""
    rollback = FIRED + timedelta(minutes=2)
    log = pl.concat(
        [
            changes(),
            pl.DataFrame(
                [("chg-6", rollback, "checkout", "deploy", "v1.4.0", "a" * 40, "warroom", "roll back to v1.4.0")],
                schema=["id", "time", "service", "kind", "version", "commit", "author", "description"],
                orient="row",
            ).with_columns(pl.col("time").dt.cast_time_unit("us")),
        ]
    )
    d = investigate(bundle("pool_leak", change_frame=log))
    assert d.observations and {o.end for o in d.observations} == {rollback}
    top = d.top()
    assert top is not None and (top.service, top.fault_type) == ("checkout", "db_pool_exhaustion")
    assert top.change is not None and top.change.change.id == "chg-2"


def test_the_compared_period_begins_at_the_measured_onset() -> None:
    """A window that opens before the fault (a lookback, a capture's margin) is compared from the
    measured onset on: what ran before it was healthy, and a median over a healthy half and a faulty
    half barely moves. An onset outside the window changes nothing."""
    telemetry = bundle("pool_leak")
    window = telemetry.manifest.effective_window()
    assert window.start < ONSET < window.end

    def diagnosed(onset: datetime | None):  # type: ignore[no-untyped-def]
        return diagnose(
            telemetry.current,
            telemetry.baseline,
            alert_time=telemetry.manifest.alert.fired_at,
            window_start=window.start,
            window_end=window.end,
            onset=onset,
            topology=telemetry.topology,
        )

    from_onset = diagnosed(ONSET)
    assert from_onset.observations and {o.start for o in from_onset.observations} == {ONSET}
    top = from_onset.top()
    assert top is not None and (top.service, top.fault_type) == ("checkout", "db_pool_exhaustion")
    before_window = diagnosed(window.start - timedelta(minutes=5))
    assert {o.start for o in before_window.observations} == {min(window.start, telemetry.manifest.alert.fired_at)}
