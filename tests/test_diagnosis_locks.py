"""Lock contention seen from the database server, and the changes and samples that must not decide.

- A database server's lock-wait lines (PostgreSQL's "still waiting for ShareLock") are the work of
  the one service whose client spans send the waiting statement, and a server that logged nothing
  in the reference still shows them as a surge.
- A lock held by a long transaction drains its sender's pool like a leak: lock_contention adopts
  the pool-exhaustion signature and wins where the database shows the waits.
- A change already rolled back (or reverted) before the onset is not a candidate for the incident,
  nor is a revert made after the alert (the response's own, in a replayed change log).
- One sample out of line, back by the next one, is a blip, not a fault.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import polars as pl

from support_diagnosis import ranked_without_changes
from warroom.analysis import metrics as metrics_mod
from warroom.analysis.changes import ChangeRecord
from warroom.analysis.diagnosis import hypotheses as hyp
from warroom.analysis.diagnosis.attribution import (
    CodeEvidence,
    candidates,
    first_remedy,
    remediations_after,
    undo_pairs,
    undone_before,
    with_code,
)
from warroom.analysis.diagnosis.detectors import logs as log_detector
from warroom.analysis.diagnosis.evidence import Observation
from warroom.analysis.diagnosis.periods import Periods
from warroom.analysis.faults import registry
from warroom.sources.canonical import Telemetry

T0 = datetime(2026, 1, 1, 12, tzinfo=UTC)
SPAN_COLUMNS = [
    *("trace_id", "span_id", "parent_span_id", "service", "operation"),
    *("start_time", "end_time", "status", "attributes"),
]
UPDATE = "UPDATE inventory SET stock = stock - {} WHERE product_id = {}"


def _lines(start: datetime, seconds: int, *, waits: bool) -> pl.DataFrame:
    rows = []
    for s in range(0, seconds, 2):
        at = start + timedelta(seconds=s)
        rows.append((at, "checkout", "INFO", f"order placed {s}", None, "{}"))
        if waits and s % 10 == 0:
            attrs = {"db.system": "postgresql", "db.event": "lock_wait", "db.statement": UPDATE.format("$1", "$2")}
            message = f"process {1000 + s} still waiting for ShareLock on transaction 35832 after 1000.1 ms"
            rows.append((at, "postgresql", "INFO", message, None, json.dumps(attrs)))
    return pl.DataFrame(
        rows, schema=["timestamp", "service", "level", "message", "trace_id", "attributes"], orient="row"
    ).with_columns(pl.col("timestamp").cast(pl.Datetime("us", "UTC")), pl.col("trace_id").cast(pl.String))


def _db_spans(start: datetime, statements: dict[str, str]) -> pl.DataFrame:
    rows = []
    for i, (caller, statement) in enumerate(statements.items()):
        attrs = {"db.system": "postgresql", "db.query.text": statement, "warroom.caller": caller}
        rows.append((f"t{i}", f"s{i}", None, "postgresql", "UPDATE", start, start, "OK", json.dumps(attrs)))
    return pl.DataFrame(
        rows,
        schema=SPAN_COLUMNS,
        orient="row",
    ).with_columns(
        pl.col("start_time", "end_time").cast(pl.Datetime("us", "UTC")), pl.col("parent_span_id").cast(pl.String)
    )


def _lock_observations(statements: dict[str, str]) -> list[Observation]:
    reference = _lines(T0 - timedelta(minutes=10), 300, waits=False)
    window = _lines(T0, 300, waits=True)
    spans = _db_spans(T0, statements)
    periods = Periods(
        Telemetry(logs=pl.concat([reference, window]), traces=spans), Telemetry(), T0, T0 + timedelta(minutes=5)
    )
    reg = registry()
    result, _ = log_detector.detect(periods, reg.signals, reg.log_patterns)
    return [o for o in result.observations if o.signal == "log_pattern.lock_wait"]


def test_a_servers_lock_waits_are_the_statements_sender() -> None:
    found = _lock_observations({"checkout": UPDATE.format("%s", "%s"), "catalog": "SELECT id FROM products"})
    assert [(o.service, o.above_noise) for o in found] == [("checkout", True)]


def test_a_statement_several_services_send_stays_the_servers() -> None:
    found = _lock_observations({"checkout": UPDATE.format("%s", "%s"), "catalog": UPDATE.format("?", "?")})
    assert [o.service for o in found] == ["postgresql"]


def _obs(signal: str, service: str, z: float) -> Observation:
    return Observation(
        id=f"{signal}-{service}", detector="test", modality="metrics", signal=signal, service=service,
        strength=z, noise=3.5, query=f"{signal} of {service}",
    )  # fmt: skip


def _top(observations: list[Observation]) -> hyp.Hypothesis:
    return ranked_without_changes(observations, {"gateway": ["checkout"]})[0]


def test_lock_waits_turn_a_drained_pool_into_lock_contention() -> None:
    pool = [_obs("db_pool_wait_ms.up", "checkout", 1000.0), _obs("db_pool_timeouts.up", "checkout", 23.0)]
    assert _top(pool).fault_type == "db_pool_exhaustion"
    top = _top([*pool, _obs("log_pattern.lock_wait", "checkout", 9.0)])
    assert (top.fault_type, top.mechanism) == ("lock_contention", "db_pool_exhaustion")


def _change(cid: str, minutes: float, version: str, kind: str = "deploy", description: str = "") -> ChangeRecord:
    return ChangeRecord(
        id=cid, time=T0 + timedelta(minutes=minutes), service="checkout", kind=kind, version=version,
        commit=version * 3, description=description,
    )  # fmt: skip


def test_a_change_undone_before_the_onset_is_no_candidate() -> None:
    records = [
        _change("initial", -60, "aaaa"),
        _change("leak", -20, "bbbb"),
        _change("rollback", -15, "aaaa", kind="rollback"),
        _change("task", -8, "cccc"),
        _change("revert", -4, "dddd", description="Revert task: This reverts commit cccccccccccc"),
        _change("config", -3, "c1", kind="config"),
        _change("later", 2, "aaaa"),
    ]
    pairs = undo_pairs(records)
    assert undone_before(pairs, T0) == {"leak", "task"}
    # what happened after the onset does not undo what was running when it began
    assert undone_before(pairs, T0 - timedelta(minutes=10)) == {"leak"}
    # a replayed change log holds the response's own reverts: made after the alert, never the cause
    assert remediations_after(pairs, T0 - timedelta(minutes=10)) == {"revert"}
    assert remediations_after(pairs, T0 + timedelta(minutes=5)) == set()


def test_a_deploy_that_names_the_version_it_replaced_and_brings_another_revert_undoes_nothing() -> None:
    # the lab's live cpu_consumption deploy: its description names the version it replaced and lists
    # a revert of another service's commit that the same deploy range carried
    brought = (
        'catalog: one card per product family; Revert "deploy: scale payment to zero"; from aaaaaaaaaaaa; '
        "commits eeee, This reverts commit ffffffffffff."
    )
    records = [_change("initial", -60, "aaaaaaaaaaaa"), _change("cards", -2, "eeee", description=brought)]
    assert undo_pairs(records) == []


def test_a_change_that_put_back_what_ran_before_weighs_less_and_the_first_remedy_ends_the_period() -> None:
    records = [_change("initial", -60, "aaaa"), _change("leak", -30, "bbbb"), _change("rollback", -12, "aaaa")]
    pairs = undo_pairs(records)
    fault = registry().fault_types["db_pool_exhaustion"]
    params = registry().model
    plain = {a.change.id: a.time_llr for a in candidates(records, "checkout", fault, T0, params)}
    restoring = {undo.id for _, undo in pairs}
    lowered = {a.change.id: a.time_llr for a in candidates(records, "checkout", fault, T0, params, (), restoring)}
    assert restoring == {"rollback"}
    assert lowered["rollback"] == plain["rollback"] + params.restored_version_llr
    assert lowered["leak"] == plain["leak"]
    # the response's first undoing after the alert, not one from before it
    assert first_remedy(pairs, T0 - timedelta(minutes=20)) == T0 - timedelta(minutes=12)
    assert first_remedy(pairs, T0) is None


def test_a_restoring_changes_diff_locates_but_does_not_accuse() -> None:
    # The lab's fifth run: the revert of an earlier fault's setting, nine minutes before a deploy
    # that locked rows across a call, was blamed: its diff's "setting removed" outweighed its own
    # restore. What it puts back already ran; a new change's finding still counts in full.
    records = [
        _change("initial", -90, "c0", kind="config"),
        _change("timeout", -30, "c1", kind="config"),
        _change("revert", -12, "c0", kind="config"),
        _change("task", -3, "dddd"),
    ]
    fault = registry().fault_types["bad_config"]
    params = registry().model
    restoring = {undo.id for _, undo in undo_pairs(records)}
    assert restoring == {"revert"}

    def lookup(change: ChangeRecord) -> list[CodeEvidence]:
        return [CodeEvidence(kind="config_change", file="config/checkout.yaml", line=7, llr=2.2)]

    found = {
        a.change.id: with_code(a, fault, lookup, params)
        for a in candidates(records, "checkout", fault, T0, params, (), restoring)
    }
    revert = found["revert"]
    assert revert.code is not None and revert.code.line == 7 and revert.code_llr == 0.0
    assert "lines that ran before" in revert.reasons[-1]
    assert found["timeout"].code_llr == 2.2


def test_a_revert_is_known_by_gits_subject_when_the_deploy_log_keeps_no_body() -> None:
    """A deploy log with subjects only: `Revert "<subject>"` undoes the change of that subject, and a
    revert of that revert (nested quotes) undoes the revert."""
    records = [
        _change("task", -30, "aaaa", description="checkout: reconcile stock every minute; from 0000"),
        _change("revert", -20, "bbbb", description='Revert "checkout: reconcile stock every minute"; from aaaa'),
        _change("again", -10, "cccc", description='Revert "Revert "checkout: reconcile stock every minute""'),
        _change("other", -5, "dddd", description='Revert "checkout: something else"'),
    ]
    pairs = {(change.id, undo.id) for change, undo in undo_pairs(records)}
    assert ("task", "revert") in pairs and ("revert", "again") in pairs
    assert not any(undo == "other" for _, undo in pairs)


def test_a_one_sample_blip_is_not_a_fault_but_a_held_step_is() -> None:
    def scored(values: list[float]) -> float:
        frame = pl.DataFrame(
            {
                "timestamp": [T0 + timedelta(minutes=m - 20) for m in range(len(values))],
                "service": "checkout",
                "metric": "cpu_utilization",
                "value": values,
            }
        ).with_columns(pl.col("timestamp").cast(pl.Datetime("us", "UTC")))
        out = metrics_mod.score_series(frame, None, T0, T0 + timedelta(minutes=10))
        return float(out.get_column("z")[0])

    quiet = [0.10, 0.11, 0.09, 0.10, 0.12, 0.10, 0.11, 0.09, 0.10, 0.11] * 2
    assert scored([*quiet, 0.10, 0.95, 0.10, 0.11]) < 3.0  # back by the next sample
    assert scored([*quiet, 0.10, 0.95, 0.96, 0.97]) > 20.0  # held
    assert scored([*quiet, 0.10, 0.11, 0.10, 0.95]) > 20.0  # the latest sample: nothing says it came back


def test_a_database_named_by_its_clients_spans_is_a_server_with_no_code_faults() -> None:
    # The lab's bad_config, live: checkout's sessions ended by the server (the idle-in-transaction
    # timeout checkout's own setting asked for) failed its database client spans, and PostgreSQL —
    # named only by those spans and its log, its exporter's series under another name — was blamed
    # for a code exception of its own.
    from warroom.analysis.diagnosis.engine import _servers
    from warroom.analysis.diagnosis.graph import CallGraph

    spans = _db_spans(T0, {"checkout": UPDATE.format("%s", "%s")})
    periods = Periods(Telemetry(traces=spans), Telemetry(), T0, T0 + timedelta(minutes=5))
    graph = CallGraph({"checkout": ["postgresql"]})
    assert _servers(periods, graph) == {"postgresql"}
    reg = registry()
    failing = [_obs("deepest_error.up", "postgresql", 24.0), _obs("span_error.up", "postgresql", 5.0)]
    worth = hyp.Worth(reg, failing, 2)
    kinds = {h.fault_type for h in hyp.form(failing, reg, worth, set(), {"postgresql"})}
    assert kinds and not kinds & {"code_exception", "code_error"}
    assert {"code_exception", "code_error"} <= {h.fault_type for h in hyp.form(failing, reg, worth, set(), set())}
