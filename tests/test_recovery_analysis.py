"""analysis.recovery: the statistical recovery test on synthetic telemetry and on a real bundle."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from warroom.analysis.recovery import (
    ERROR_RATE,
    LATENCY,
    SUCCESS_RATE,
    SignalCheck,
    Tolerance,
    Verdict,
    assess_recovery,
    first_sustained_breach,
    margin_for,
    verify_after,
)
from warroom.sources.bundle import load_bundle
from warroom.sources.canonical import Telemetry
from warroom.sources.manifest import Slo

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "recovery"))
from synth import Shape, write_bundle

T0 = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
SLO = Slo(latency_p99_ms=500, error_rate=0.01)


def metrics(start: datetime, n: int, latency: np.ndarray, errors: np.ndarray) -> pl.DataFrame:
    times = [start + timedelta(seconds=15 * i) for i in range(n)]
    return pl.DataFrame(
        {
            "timestamp": times * 2,
            "service": ["api"] * (2 * n),
            "metric": [LATENCY] * n + [ERROR_RATE] * n,
            "value": np.concatenate([latency, errors]),
        }
    )


def window(rng: np.random.Generator, start: datetime, n: int, lat: float, err: float) -> Telemetry:
    return Telemetry(
        metrics=metrics(start, n, lat + rng.normal(0, 15, n), np.clip(err + rng.normal(0, 0.001, n), 0, 1))
    )


def test_same_distribution_is_recovered_with_a_significant_test() -> None:
    rng = np.random.default_rng(7)
    result = assess_recovery(
        window(rng, T0, 120, 180, 0.003), window(rng, T0 + timedelta(hours=1), 60, 180, 0.003), slo=SLO
    )
    assert result.verdict == Verdict.RECOVERED
    by = {c.signal: c for c in result.checks}
    assert by[LATENCY].p_value is not None and by[LATENCY].p_value < 0.05
    assert by[LATENCY].statistic is not None
    assert by[LATENCY].baseline_value == pytest.approx(180, abs=10)
    # Success rate is derived from the error rate when no success metric exists.
    assert by[SUCCESS_RATE].verdict == Verdict.RECOVERED
    assert by[SUCCESS_RATE].current_value == pytest.approx(1 - by[ERROR_RATE].current_value, abs=0.002)


def test_latency_still_high_is_not_recovered() -> None:
    rng = np.random.default_rng(8)
    result = assess_recovery(
        window(rng, T0, 120, 180, 0.003), window(rng, T0 + timedelta(hours=1), 60, 1500, 0.003), slo=SLO
    )
    assert result.verdict == Verdict.NOT_RECOVERED
    by = {c.signal: c for c in result.checks}
    assert by[LATENCY].verdict == Verdict.NOT_RECOVERED
    assert by[LATENCY].within_slo is False
    assert by[ERROR_RATE].verdict == Verdict.RECOVERED
    assert "latency_p99_ms" in result.reason


def test_elevated_error_rate_alone_fails_recovery() -> None:
    rng = np.random.default_rng(9)
    result = assess_recovery(
        window(rng, T0, 120, 180, 0.003), window(rng, T0 + timedelta(hours=1), 60, 180, 0.04), slo=SLO
    )
    by = {c.signal: c for c in result.checks}
    assert by[LATENCY].verdict == Verdict.RECOVERED
    assert by[ERROR_RATE].verdict == Verdict.NOT_RECOVERED
    assert by[SUCCESS_RATE].verdict == Verdict.NOT_RECOVERED
    assert result.verdict == Verdict.NOT_RECOVERED


def test_too_few_samples_is_not_enough_data() -> None:
    rng = np.random.default_rng(10)
    result = assess_recovery(
        window(rng, T0, 120, 180, 0.003), window(rng, T0 + timedelta(hours=1), 4, 180, 0.003), slo=SLO
    )
    assert result.verdict == Verdict.INSUFFICIENT_DATA
    assert all(c.verdict == Verdict.INSUFFICIENT_DATA for c in result.checks)
    assert "not enough data" in result.checks[0].reason


def test_the_margin_is_relative_to_the_slo() -> None:
    """A 100 ms shift is within tolerance when the SLO leaves much headroom, not when it leaves little."""
    rng = np.random.default_rng(11)
    before = window(rng, T0, 120, 180, 0.003)
    after = window(rng, T0 + timedelta(hours=1), 60, 280, 0.003)
    tight = assess_recovery(before, after, slo=Slo(latency_p99_ms=500, error_rate=0.01))
    loose = assess_recovery(before, after, slo=Slo(latency_p99_ms=2000, error_rate=0.01))
    assert {c.signal: c for c in tight.checks}[LATENCY].verdict == Verdict.NOT_RECOVERED
    assert {c.signal: c for c in loose.checks}[LATENCY].verdict == Verdict.RECOVERED
    base = np.full(50, 180.0)
    assert margin_for(LATENCY, base, 500, Tolerance()) == pytest.approx(0.25 * 320)


def test_a_shift_finer_than_the_histograms_buckets_is_not_called_a_regression() -> None:
    """A p99 from prometheus_client's buckets: 49 ms before, 61 ms after (live, checkout after its
    rollback), across the 50 ms bound and within the 25 ms width of the bucket the baseline sits
    in: what the measurement cannot tell apart is recovered. Without the resolution the same shift
    is 25 % above the baseline, beyond the 20 % margin."""
    rng = np.random.default_rng(12)

    def period(start: datetime, n: int, p99: float, resolution: float | None) -> Telemetry:
        frame = metrics(start, n, p99 + rng.normal(0, 0.8, n), np.full(n, 0.002))
        if resolution is not None:
            width = pl.when(pl.col("metric") == LATENCY).then(resolution).otherwise(None)
            frame = frame.with_columns(width.cast(pl.Float64).alias("resolution"))
        return Telemetry(metrics=frame)

    def latency(resolution: float | None) -> SignalCheck:
        before = period(T0, 120, 49.0, resolution)
        after = period(T0 + timedelta(hours=1), 60, 61.0, resolution)
        return {c.signal: c for c in assess_recovery(before, after).checks}[LATENCY]

    assert latency(None).verdict == Verdict.NOT_RECOVERED
    resolved = latency(25.0)
    assert resolved.verdict == Verdict.RECOVERED
    assert resolved.margin == resolved.resolution == 25.0
    assert "bucket width" in resolved.reason


def test_an_inconclusive_test_is_reported_as_not_enough_data() -> None:
    """Post-action values sitting right at the tolerance limit cannot be told apart either way."""
    rng = np.random.default_rng(12)
    before = window(rng, T0, 40, 180, 0.003)
    limit = 180 + 0.25 * (500 - 180)
    after = window(rng, T0 + timedelta(hours=1), 12, limit, 0.003)
    check = {c.signal: c for c in assess_recovery(before, after, slo=SLO).checks}[LATENCY]
    assert check.verdict == Verdict.INSUFFICIENT_DATA
    assert "inconclusive" in check.reason


def test_onset_is_the_first_sustained_breach() -> None:
    times = [T0 + timedelta(minutes=i) for i in range(10)]
    values = np.array([1, 1, 9, 1, 1, 9, 9, 9, 9, 1], dtype=float)
    assert first_sustained_breach(times, values, 5.0, True) == times[5]
    assert first_sustained_breach(times, values, 50.0, True) is None


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_bundle(tmp_path_factory.mktemp("recovery") / "bundle", seed=3)


def test_verify_after_reads_each_mitigation_from_the_bundle(bundle_dir: Path) -> None:
    bundle = load_bundle(bundle_dir)
    good = verify_after(bundle, "recycle_pool")
    bad = verify_after(bundle, "raise_pool_size")
    assert good.verdict == Verdict.RECOVERED and good.recovered
    assert bad.verdict == Verdict.NOT_RECOVERED and not bad.recovered
    assert good.action == "recycle_pool"
    # The recovery time lies inside the post-action window, after the action started.
    assert good.recovered_at is not None and good.recovered_at > bundle.manifest.effective_window().end
    latency = {c.signal: c for c in bad.checks}[LATENCY]
    assert latency.source == "metrics" and "checkout" in latency.services


def test_verify_after_an_action_without_telemetry(bundle_dir: Path) -> None:
    result = verify_after(load_bundle(bundle_dir), "scale_out")
    assert result.verdict == Verdict.INSUFFICIENT_DATA
    assert "scale_out" in result.reason and "recycle_pool" in result.reason


def test_signals_are_derived_from_traces_without_metrics(tmp_path: Path) -> None:
    root = write_bundle(tmp_path / "b", seed=4, shape=Shape(modalities=("traces", "changes")))
    bundle = load_bundle(root)
    good, bad = verify_after(bundle, "restart"), verify_after(bundle, "kill_long_queries")
    assert {c.source for c in good.checks} == {"traces"}
    assert good.verdict == Verdict.RECOVERED
    assert {c.signal: c for c in bad.checks}[LATENCY].verdict == Verdict.NOT_RECOVERED


def test_signals_are_derived_from_logs_without_metrics_or_traces(tmp_path: Path) -> None:
    root = write_bundle(tmp_path / "b", seed=5, shape=Shape(modalities=("logs",)))
    bundle = load_bundle(root)
    good, bad = verify_after(bundle, "rollback"), verify_after(bundle, "raise_pool_size")
    by_good = {c.signal: c for c in good.checks}
    assert by_good[LATENCY].source == "logs" and "duration" in by_good[LATENCY].query
    assert by_good[ERROR_RATE].source == "logs"
    assert good.verdict == Verdict.RECOVERED
    assert bad.verdict == Verdict.NOT_RECOVERED


def test_baseline_folder_is_used_when_present(tmp_path: Path) -> None:
    root = write_bundle(tmp_path / "b", seed=6)
    # A baseline/ folder with a much slower "normal": now even the good action is not "worse".
    slow = load_bundle(root).metrics
    assert slow is not None
    (root / "baseline").mkdir()
    shifted = slow.with_columns(
        pl.when(pl.col("metric") == LATENCY).then(pl.col("value") + 5000).otherwise(pl.col("value")).alias("value")
    )
    shifted.write_parquet(root / "baseline" / "metrics.parquet")
    result = verify_after(load_bundle(root), "raise_pool_size")
    assert {c.signal: c for c in result.checks}[LATENCY].verdict == Verdict.RECOVERED


def test_a_temporary_recovery_that_regresses_is_not_recovered(tmp_path: Path) -> None:
    root = write_bundle(tmp_path / "b", seed=13, shape=Shape(recovering=("rollback",), temporary=("restart",)))
    bundle = load_bundle(root)
    temporary = verify_after(bundle, "restart")
    assert temporary.verdict == Verdict.NOT_RECOVERED
    latency = {c.signal: c for c in temporary.checks}[LATENCY]
    assert "regressed" in latency.reason
    assert verify_after(bundle, "rollback").verdict == Verdict.RECOVERED


def test_symptoms_gone_but_the_fault_signature_left_is_not_recovered(tmp_path: Path) -> None:
    """A bigger pool hides the leak: latency and errors are back, pool utilisation is not."""
    root = write_bundle(tmp_path / "b", seed=14, shape=Shape(recovering=("rollback",), masked=("raise_pool_size",)))
    bundle = load_bundle(root)
    masked = verify_after(bundle, "raise_pool_size")
    by = {(c.signal, tuple(c.services)): c for c in masked.checks}
    assert by[(LATENCY, ("checkout", "gateway"))].verdict == Verdict.RECOVERED
    pool = by[("db_pool_utilization", ("checkout",))]
    assert pool.verdict == Verdict.NOT_RECOVERED and not pool.advisory
    assert masked.verdict == Verdict.NOT_RECOVERED
    # Without the automatic fault signature, only the symptoms are judged.
    assert verify_after(bundle, "raise_pool_size", indicators=[]).verdict == Verdict.RECOVERED


def test_a_bucket_of_spans_is_stamped_at_its_end_as_a_scraped_sample_is() -> None:
    """A fault's first slow spans at 12:00:03 read as 'left its baseline at 12:00:05', not at 12:00:00
    (before the deploy at 12:00:02 that caused them)."""
    from warroom.analysis.recovery import trace_series

    t0 = datetime(2026, 1, 1, 12, tzinfo=UTC)
    starts = [t0 + timedelta(seconds=3, milliseconds=100 * i) for i in range(10)]
    spans = pl.DataFrame(
        {
            "trace_id": [f"t{i}" for i in range(10)],
            "span_id": [f"s{i}" for i in range(10)],
            "parent_span_id": [None] * 10,
            "service": ["catalog"] * 10,
            "operation": ["GET /"] * 10,
            "start_time": starts,
            "end_time": [s + timedelta(milliseconds=80) for s in starts],
        },
        schema_overrides={"parent_span_id": pl.String},
    )
    series = trace_series(spans, "latency_p99_ms", ["catalog"], timedelta(seconds=5))
    assert series is not None and series.times == [t0 + timedelta(seconds=5)]
