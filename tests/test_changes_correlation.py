"""Change correlation: time to onset × relation to the suspect; changes after onset never blamed."""

from __future__ import annotations

from datetime import timedelta

import polars as pl

from support_specialists import ONSET, START, changes, metrics
from warroom.analysis.changes import correlate_changes, detect_onset, relation_to, service_graph

GRAPH = {"gateway": {"checkout", "catalog"}, "checkout": {"database"}, "catalog": {"database"}}


def test_same_service_deploy_beats_a_closer_unrelated_one() -> None:
    result = correlate_changes(changes(), ONSET, "checkout", GRAPH)
    assert result.ranked[0].id == "chg-2"
    assert result.rollback_candidate is not None and result.rollback_candidate.id == "chg-2"
    assert result.rollback_action == "rollback"
    assert [c.id for c in result.after_onset] == ["chg-5"]
    relations = {c.id: c.relation for c in result.ranked}
    assert relations["chg-2"] == "same_service" and relations["chg-3"] == "two_hops"
    assert result.ranked[0].score > 2 * next(c.score for c in result.ranked if c.id == "chg-3")
    assert result.evidence is not None and result.evidence.values["top"] == "chg-2"


def test_config_change_gives_revert_and_no_changes_is_not_enough_evidence() -> None:
    frame = changes().filter(pl.col("id") == "chg-4")
    result = correlate_changes(frame, ONSET, "gateway", GRAPH)
    assert result.rollback_action == "revert_config"
    empty = correlate_changes(changes().filter(pl.col("id") == "chg-5"), ONSET, "checkout", GRAPH)
    assert empty.rollback_candidate is None and "not enough evidence" in empty.verdict


def test_graph_from_traces_and_relations() -> None:
    t0 = START
    traces = pl.DataFrame(
        {
            "trace_id": ["t1", "t1", "t1"],
            "span_id": ["a", "b", "c"],
            "parent_span_id": [None, "a", "b"],
            "service": ["gateway", "checkout", "database"],
            "operation": ["GET", "POST", "SELECT"],
            "start_time": [t0, t0, t0],
            "end_time": [t0, t0, t0],
        }
    )
    graph = service_graph(None, traces)
    assert graph == {"gateway": {"checkout"}, "checkout": {"database"}}
    assert relation_to("database", "checkout", graph) == "dependency"
    assert relation_to("gateway", "checkout", graph) == "dependent"
    assert relation_to("search", "checkout", graph) == "unrelated"


def test_onset_detected_from_metrics() -> None:
    found = detect_onset(metrics("pool_leak"), ["checkout"], ONSET - timedelta(minutes=10), ONSET + timedelta(hours=1))
    assert ONSET <= found <= ONSET + timedelta(minutes=5)
    quiet = detect_onset(metrics("none"), ["checkout"], ONSET - timedelta(minutes=10), ONSET + timedelta(hours=1))
    assert quiet == ONSET + timedelta(hours=1)
