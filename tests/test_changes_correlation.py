"""Change correlation: time to onset × relation to the suspect; changes after onset never blamed."""

from __future__ import annotations

from datetime import timedelta

import polars as pl

from support_specialists import ONSET, START, changes, metrics
from warroom.analysis.changes import correlate_changes, detect_onset, previous_change, relation_to, service_graph
from warroom.analysis.diagnosis.attribution import change_records

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


def test_a_lone_early_hop_of_one_signal_is_not_the_onset() -> None:
    """A low-traffic service's p99 over its threshold a minute before anything else moved (the ninth
    live run's slow_dependency): the onset is where signals move together, not that hop."""
    t0 = ONSET - timedelta(minutes=20)
    rows = []
    for i in range(300):  # every 5 s: 20 minutes before the onset, 5 after
        t = t0 + timedelta(seconds=5 * i)
        hop = ONSET - timedelta(seconds=65) <= t < ONSET - timedelta(seconds=50)  # three samples high
        faulty = t >= ONSET
        rows.append((t, "checkout", "latency_p99_ms", 500.0 if hop or faulty else 50.0 + (i % 3)))
        rows.append((t, "payment", "latency_p99_ms", 900.0 if faulty else 20.0 + (i % 2)))
        rows.append((t, "checkout", "db_pool_utilization", 1.0 if t >= ONSET + timedelta(seconds=10) else 0.1))
    frame = pl.DataFrame(rows, schema=["timestamp", "service", "metric", "value"], orient="row")
    found = detect_onset(frame, None, ONSET - timedelta(minutes=5), ONSET + timedelta(hours=1))
    assert found == ONSET
    # the hop alone, with nothing after it: then it is all the data shows
    alone = frame.filter((pl.col("service") == "checkout") & (pl.col("metric") == "latency_p99_ms"))
    alone = alone.filter(pl.col("timestamp") < ONSET)
    assert detect_onset(alone, None, ONSET - timedelta(minutes=5), ONSET + timedelta(hours=1)) == ONSET - timedelta(
        seconds=65
    )


def test_a_change_is_diffed_against_what_ran_before_it_a_rollback_included() -> None:
    """Live: checkout's leaky deploy was rolled back, then a revert of it deployed. Diffed against
    the leaky deploy (the last of its kind), the revert's diff showed the leak's lines removed and
    was blamed for the next fault; against what the rollback put back it changes nothing."""
    t0 = ONSET - timedelta(hours=1)
    rows = [
        ("d1", 0, "checkout", "deploy", "aaa"),
        ("d2", 10, "checkout", "deploy", "bbb"),  # the leak
        ("c1", 12, "checkout", "config", "ccc"),  # configuration: the other side
        ("r1", 15, "checkout", "rollback", "aaa"),
        ("d3", 20, "checkout", "deploy", "ddd"),  # the revert of bbb
        ("c2", 25, "checkout", "config", "eee"),
        ("p1", 18, "payment", "deploy", "fff"),
    ]
    frame = pl.DataFrame(
        {
            "id": [r[0] for r in rows],
            "time": [t0 + timedelta(minutes=r[1]) for r in rows],
            "service": [r[2] for r in rows],
            "kind": [r[3] for r in rows],
            "commit": [r[4] for r in rows],
        }
    )
    by_id = {r.id: r for r in change_records(frame)}
    before = {name: previous_change(frame, by_id[name]) for name in ("d3", "c2", "d1")}
    assert before["d3"] is not None and before["d3"]["id"] == "r1" and before["d3"]["commit"] == "aaa"
    assert before["c2"] is not None and before["c2"]["id"] == "c1"
    assert before["d1"] is None


def test_minute_level_signals_a_sample_apart_corroborate_each_other() -> None:
    """Series sampled once a minute move a sample apart: the first of them is the onset, not an
    earlier lone hop (with half a minute, no coarse signal corroborates another and the hop wins)."""
    t0 = ONSET - timedelta(minutes=40)
    rows = []
    for i in range(45):
        t = t0 + timedelta(minutes=i)
        rows.append((t, "checkout", "db_pool_utilization", 1.0 if t >= ONSET else 0.1 + 0.01 * (i % 3)))
        rows.append((t, "gateway", "latency_p99_ms", 900.0 if t >= ONSET + timedelta(minutes=1) else 50.0 + (i % 3)))
        hop = ONSET - timedelta(minutes=10) <= t < ONSET - timedelta(minutes=7)  # three samples, alone
        rows.append((t, "catalog", "latency_p99_ms", 700.0 if hop else 40.0 + (i % 3)))
    frame = pl.DataFrame(rows, schema=["timestamp", "service", "metric", "value"], orient="row")
    assert detect_onset(frame, None, ONSET - timedelta(minutes=10), ONSET + timedelta(hours=1)) == ONSET
