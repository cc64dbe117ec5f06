"""Database specialist on in-memory bundles: pool leak vs missing index vs a healthy database, the
diagnosis it hands on, and the change correlation behind it."""

from __future__ import annotations

import pickle

from support_specialists import ONSET, bundle, context
from warroom.agents.database import DatabaseIncidentSpecialist
from warroom.analysis.database import analyse_database


def test_pool_leak_is_pool_exhaustion_on_checkout_with_deploy() -> None:
    b = bundle("pool_leak")
    report = DatabaseIncidentSpecialist().run(context(b))
    top = report.outputs["diagnosis"][0]
    assert top["service"] == "checkout"
    assert top["fault_type"] == "db_pool_exhaustion"
    assert top["change_id"] == "chg-2"  # the checkout deploy, not the closer catalog deploy
    assert report.outputs["suspect_change"]["id"] == "chg-2"
    assert report.outputs["database"]["pool_utilization"] >= 0.95
    assert report.outputs["database"]["db_cpu"] < 0.5
    kinds = {a.kind for a in report.actions}
    assert {"recycle_pool", "raise_pool_size", "rollback"} <= kinds
    ids = {e["id"] for e in report.outputs["evidence"]}
    assert set(top["evidence_ids"]) <= ids and top["evidence_ids"]
    # The pool-timeout log lines are cited with samples.
    log_ev = [e for e in report.outputs["evidence"] if e["source"] == "logs"]
    assert any("timeout acquiring connection" in sample for e in log_ev for sample in e.get("samples") or [])
    pickle.dumps(DatabaseIncidentSpecialist())


def test_missing_index_points_at_the_querying_service() -> None:
    b = bundle("missing_index")
    # The measurements: which fault they point to is the diagnosis engine's answer, not theirs.
    analysis = analyse_database(b.current, None, ONSET, b.manifest.effective_window().end)
    assert analysis.database_service == "database"
    assert analysis.log_counts["table_scan"]["window"] > 0
    assert analysis.slow_query_ms["max"] >= 4000
    report = DatabaseIncidentSpecialist().run(context(b))
    top = report.outputs["diagnosis"][0]
    assert top["fault_type"] == "missing_index"
    assert top["service"] == "checkout"  # the service that sends the scanning statement
    assert "kill_long_queries" in {a.kind for a in report.actions}


def test_healthy_database_says_so() -> None:
    report = DatabaseIncidentSpecialist().run(context(bundle("none")))
    assert "diagnosis" not in report.outputs
    assert report.findings[0].id == "f-db-none"
