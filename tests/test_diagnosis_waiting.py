"""Explanation over the call graph when a caller waits on a slower callee: the caller's pool held
across the slower call saturates and its requests time out, and all of that is the callee's doing
when the callee's own span time rose first and the caller's did not, or did only as time waiting
for its pool, or only by the time its calls spend on the wire. A caller whose own work got slower
keeps its evidence; so does one whose symptoms came first."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import polars as pl

from warroom.analysis import traces as traces_mod
from warroom.analysis.diagnosis import hypotheses as hyp
from warroom.analysis.diagnosis.evidence import Observation
from warroom.analysis.diagnosis.graph import CallGraph, assign
from warroom.analysis.faults import registry

T0 = datetime(2026, 1, 1, 12, tzinfo=UTC)
EXTERNAL: set[str] = set()


def _obs(signal: str, service: str, z: float, minute: float | None) -> Observation:
    return Observation(
        id=f"{signal}-{service}",
        detector="test",
        modality="metrics",
        signal=signal,
        service=service,
        strength=z,
        noise=3.5,
        onset=None if minute is None else T0 + timedelta(minutes=minute),
        query=f"{signal} of {service}",
    )


def _rank(observations: list[Observation], changed: frozenset[str] = frozenset()) -> list[hyp.Hypothesis]:
    """The engine's scoring steps after detection, without change attribution: a fault type only a
    change brings in forms a hypothesis only on a service in `changed` (one with a candidate change)."""
    reg = registry()
    graph = CallGraph({"gateway": ["checkout"], "checkout": ["payment", "postgres"]})
    worth = hyp.Worth(reg, observations, 4)
    formed = [
        h
        for h in hyp.form(observations, reg, worth, EXTERNAL, set())
        if h.service in changed or not reg.fault_types[h.fault_type].change.needed(h.service in EXTERNAL)
    ]
    base = {h.key: h.log_prior for h in formed}
    owned = assign(hyp.claims(observations, formed, graph, reg, worth, base, EXTERNAL))
    hyp.score(formed, {o.id: o for o in observations}, owned, reg, worth)
    hyp.adopt_mechanisms(formed, reg)
    return sorted(formed, key=lambda h: -h.log_odds)


def _caller_symptoms(minute: float) -> list[Observation]:
    return [
        _obs("db_pool_wait_ms.up", "checkout", 1000.0, minute),
        _obs("db_pool_utilization.up", "checkout", 14.0, minute),
        _obs("deepest_error.up", "checkout", 11.0, minute),
        _obs("latency.up", "checkout", 1000.0, minute),
    ]


def test_a_slower_callee_explains_its_callers_pool_saturation() -> None:
    slow_payment = [_obs("self_time.up", "payment", 300.0, 0.0), _obs("latency.up", "payment", 800.0, 0.0)]
    top = _rank(_caller_symptoms(1.0) + slow_payment, frozenset({"payment"}))[0]
    assert (top.service, top.fault_type) == ("payment", "slow_dependency")
    taken = {u.observation for u in top.uses if u.relation == "callers"}
    assert {"db_pool_wait_ms.up-checkout", "db_pool_utilization.up-checkout"} <= taken
    # without a change of its own, a service of ours is not hypothesised a slow dependency
    unchanged = _rank(_caller_symptoms(1.0) + slow_payment)
    assert ("payment", "slow_dependency") not in {h.key for h in unchanged}


def test_a_caller_whose_own_time_rose_keeps_its_pool_evidence() -> None:
    """Its own work got slower (no request waited for a connection): its pool's saturation is its own."""
    slow_payment = [_obs("self_time.up", "payment", 300.0, 0.0)]
    own = [_obs("self_time.up", "checkout", 40.0, 1.0)]
    no_pool_wait = [o for o in _caller_symptoms(1.0) if o.signal != "db_pool_wait_ms.up"]
    top = _rank(no_pool_wait + slow_payment + own)[0]
    assert (top.service, top.fault_type) == ("checkout", "db_pool_exhaustion")


def test_a_callers_own_time_spent_waiting_for_its_pool_is_the_slower_callees() -> None:
    """Live (payment's ledger flushed every 5 s): checkout's requests waited for connections that
    others held across the slower payment call; that wait is in no child span, so checkout's own
    span time rose too, after payment's. Still payment's doing."""
    slow_payment = [_obs("self_time.up", "payment", 300.0, 0.0), _obs("latency.up", "payment", 800.0, 0.0)]
    waited = [_obs("self_time.up", "checkout", 900.0, 1.0)]
    top = _rank(_caller_symptoms(1.0) + slow_payment + waited, frozenset({"payment"}))[0]
    assert (top.service, top.fault_type) == ("payment", "slow_dependency")
    taken = {u.observation for u in top.uses if u.relation == "callers"}
    assert {"db_pool_wait_ms.up-checkout", "db_pool_utilization.up-checkout"} <= taken


def _gap(callee: str, caller: str, baseline: float, value: float) -> Observation:
    gap = _obs("call_gap", callee, 2000.0, None)
    roles = {"call_gap.in": callee, "call_gap.out": caller}
    return gap.model_copy(update={"peer": caller, "roles": roles, "baseline": baseline, "value": value})


def _self_time(service: str, baseline: float, value: float) -> Observation:
    return _obs("self_time.up", service, 1600.0, None).model_copy(update={"baseline": baseline, "value": value})


def test_a_callers_own_time_that_is_the_delay_on_the_wire_is_the_delayed_callees() -> None:
    """Generated network delay into checkout: the gateway has no client spans, so the time its calls
    spend on the wire shows as its own span time (2 → 847 ms) while the gap around checkout's spans
    grew more (2 → 1335 ms). The delay is checkout's path, not the gateway's work."""
    delayed = [_gap("checkout", "gateway", 2.0, 1335.0), _self_time("gateway", 2.0, 847.0)]
    delayed.append(_obs("latency.up", "gateway", 900.0, None))
    top = _rank(delayed, frozenset({"gateway"}))[0]
    assert (top.service, top.fault_type) == ("checkout", "network_delay")
    taken = {(u.observation, u.relation): u.llr for u in top.uses}
    assert taken[("self_time.up-gateway", "callers")] > 10
    assert taken[("call_gap-checkout", "callers")] < taken[("call_gap-checkout", "local")]  # counted once in full
    # a gateway whose own time rose beyond the gap did work of its own: it keeps that evidence
    slower = [_gap("checkout", "gateway", 2.0, 300.0), _self_time("gateway", 2.0, 847.0), delayed[2]]

    def most(service: str) -> float:
        ranked = _rank(slower, frozenset({"gateway"}))
        return max(
            u.llr for h in ranked if h.service == service for u in h.uses if u.observation == "self_time.up-gateway"
        )

    assert most("gateway") > 10 and most("checkout") < 0.1


def test_a_callee_slowed_after_the_callers_symptoms_does_not_take_them() -> None:
    late_payment = [_obs("self_time.up", "payment", 300.0, 10.0)]
    top = _rank(_caller_symptoms(1.0) + late_payment)[0]
    assert (top.service, top.fault_type) == ("checkout", "db_pool_exhaustion")


def test_a_silent_callee_whose_calls_fail_is_down() -> None:
    silent = [_obs("span_rate.down", "payment", 14.0, None), _obs("deepest_error.up", "payment", 20.0, 1.0)]
    callers = [_obs("log_pattern.upstream_error", "checkout", 37.0, 1.0), _obs("span_rate.down", "checkout", 6.0, None)]
    top = _rank(silent + callers)[0]
    assert (top.service, top.fault_type) == ("payment", "dependency_down")


def test_deepest_errors_say_when_each_trace_first_erred() -> None:
    rows: list[tuple[str, str, str | None, str, datetime, datetime, str]] = []
    for i in range(4):
        t = T0 + timedelta(seconds=10 * i)
        rows.append((f"t{i}", "a", None, "checkout", t, t + timedelta(milliseconds=20), "ERROR"))
        rows.append(
            (f"t{i}", "b", "a", "payment", t + timedelta(milliseconds=1), t + timedelta(milliseconds=5), "ERROR")
        )
    cols = ["trace_id", "span_id", "parent_span_id", "service", "start_time", "end_time", "status"]
    spans = traces_mod.prepare(pl.DataFrame(rows, schema=cols, orient="row"))
    out = {r["service"]: r for r in traces_mod.deepest_errors(spans).iter_rows(named=True)}
    assert out["payment"]["deepest"] == 4 and out["checkout"]["deepest"] == 0
    assert out["payment"]["times"][0] == T0 + timedelta(milliseconds=1)
