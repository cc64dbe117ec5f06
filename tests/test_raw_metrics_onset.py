"""Onset detection: the first sustained change of the golden signals before the alert, robust to noise."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import polars as pl

from test_raw_folder import alert_payload
from warroom.analysis.changepoint import detect_onset, trend_p
from warroom.sources.bundle import load_bundle

START = datetime(2024, 5, 27, 14, 0, tzinfo=UTC)
STEP = timedelta(seconds=15)


def series(service: str, metric: str, values: np.ndarray, instance: str = "a") -> pl.DataFrame:
    return pl.DataFrame(
        {
            "timestamp": [START + i * STEP for i in range(len(values))],
            "service": service,
            "metric": metric,
            "value": values.astype(float),
            "instance": instance,
        }
    ).with_columns(pl.col("service", "metric", "instance").cast(pl.Categorical))


def noisy(level: float, n: int, spread: float, seed: int) -> np.ndarray:
    return level + np.random.default_rng(seed).normal(0, spread, n)


def at(index: int) -> datetime:
    return START + index * STEP


def test_a_step_in_the_error_rate_is_found_where_it_happened() -> None:
    values = np.concatenate([np.abs(noisy(0.01, 200, 0.004, 1)), np.abs(noisy(0.12, 40, 0.02, 2))])
    onset = detect_onset(series("checkout", "error_rate", values), alert_at=at(230))
    assert onset is not None and onset.service == "checkout" and onset.metric == "error_rate"
    assert abs((onset.at - at(200)).total_seconds()) <= 15
    assert onset.before < 0.02 < 0.1 < onset.after and onset.p_value < 1e-6


def test_a_ramp_starts_where_it_leaves_the_old_level_not_half_way_up() -> None:
    ramp = np.linspace(0.4, 0.95, 120)
    values = np.concatenate([noisy(0.4, 240, 0.01, 3), ramp + np.random.default_rng(4).normal(0, 0.01, 120)])
    onset = detect_onset(series("cart", "memory_utilization", values), alert_at=at(350))
    assert onset is not None
    assert at(240) <= onset.at <= at(240 + 30)  # the first quarter of the ramp, not its middle (300)


def test_noise_and_a_single_spike_are_no_onset() -> None:
    values = noisy(120.0, 300, 8.0, 5)
    values[150] = 2500.0  # one slow request's worth of p99
    assert detect_onset(series("gateway", "latency_p99_ms", values), alert_at=at(290)) is None


def test_a_change_for_the_better_or_after_the_alert_is_no_onset() -> None:
    better = np.concatenate([noisy(400.0, 150, 10.0, 6), noisy(100.0, 150, 10.0, 7)])
    assert detect_onset(series("gateway", "latency_p99_ms", better), alert_at=at(290)) is None
    later = np.concatenate([noisy(0.01, 200, 0.002, 8), noisy(0.3, 100, 0.02, 9)])
    assert detect_onset(series("gateway", "error_rate", later), alert_at=at(150)) is None


def test_the_cause_that_moved_first_is_the_onset() -> None:
    pool = np.concatenate([noisy(0.3, 200, 0.02, 10), np.full(100, 1.0)])  # saturates at 200
    latency = np.concatenate([noisy(80.0, 230, 5.0, 11), noisy(5000.0, 70, 100.0, 12)])  # follows at 230
    success = np.concatenate([noisy(0.999, 240, 0.0005, 13), noisy(0.7, 60, 0.02, 14)])  # falls at 240
    metrics = pl.concat(
        [
            series("checkout", "db_pool_utilization", pool),
            series("gateway", "latency_p99_ms", latency),
            series("gateway", "success_rate", success),
            series("catalog", "request_rate", np.concatenate([noisy(50, 100, 2, 15), noisy(200, 200, 2, 16)])),
        ]
    )
    onset = detect_onset(metrics, alert_at=at(250))
    assert onset is not None and (onset.service, onset.metric) == ("checkout", "db_pool_utilization")
    assert abs((onset.at - at(200)).total_seconds()) <= 15  # traffic is not a golden signal of harm


def test_a_folder_without_incident_yaml_opens_its_window_before_the_onset(tmp_path: Path) -> None:
    folder = tmp_path / "incident"
    folder.mkdir()
    fired = at(260)
    payload = alert_payload()
    payload["alerts"][0]["startsAt"] = fired.isoformat()  # type: ignore[index]
    (folder / "alert.json").write_text(json.dumps(payload))
    lines = []
    requests = errors = 0.0
    for i in range(300):
        requests += 150
        errors += 1 if i < 200 else 30  # errors rise from 0.7 % to 20 % at scrape 200
        for status, count in (("200", requests - errors), ("503", errors)):
            labels = {"service": "checkout", "status": status}
            lines.append(
                json.dumps(
                    {"timestamp": at(i).timestamp(), "metric": "http_requests_total", "labels": labels, "value": count}
                )
            )
    (folder / "prometheus.jsonl").write_text("\n".join(lines) + "\n")
    window = load_bundle(folder).manifest.effective_window()
    # the onset shows within the rate window (four scrapes) of the change; the margin is a minute here
    assert at(200) - timedelta(minutes=2) <= window.start <= at(200) - timedelta(minutes=1)
    assert window.end >= fired


def test_the_alert_given_beside_the_folder_wins_over_alerts_series_inside_it(tmp_path: Path) -> None:
    folder = tmp_path / "incident"
    folder.mkdir()
    alerts = [
        json.dumps(
            {
                "timestamp": at(i).timestamp(),
                "metric": "ALERTS",
                "labels": {"alertname": "Startup", "alertstate": "firing", "service": "gateway"},
                "value": 1,
            }
        )
        for i in range(3)
    ]
    requests = [
        json.dumps(
            {
                "timestamp": at(i).timestamp(),
                "metric": "http_requests_total",
                "labels": {"service": "checkout"},
                "value": 150 * i,
            }
        )
        for i in range(60)
    ]
    (folder / "prometheus.jsonl").write_text("\n".join([*alerts, *requests]) + "\n")
    given = tmp_path / "alert.json"
    payload = alert_payload()
    payload["alerts"][0]["startsAt"] = at(50).isoformat()  # type: ignore[index]
    given.write_text(json.dumps(payload))
    assert load_bundle(folder).manifest.alert.name == "Startup"  # no alert given: the folder's own
    manifest = load_bundle(folder, alert=given).manifest
    assert manifest.alert.name == "CheckoutLatencyHigh" and manifest.alert.fired_at == at(50)


def test_a_warm_up_then_a_held_level_then_the_fault_step_is_onset_at_the_step() -> None:
    # cold start (low latency, load ramping in), the normal level held for a while, then the fault
    warm = np.linspace(40.0, 150.0, 20) + np.random.default_rng(20).normal(0, 4.0, 20)
    values = np.concatenate([warm, noisy(150.0, 120, 10.0, 21), noisy(2000.0, 40, 80.0, 22)])
    onset = detect_onset(series("checkout", "latency_p99_ms", values), alert_at=at(175))
    assert onset is not None and abs((onset.at - at(140)).total_seconds()) <= 15
    assert 120.0 < onset.before < 180.0  # the level before is the held normal, not the warm-up


def test_plateau_step_plateau_step_the_later_step_when_the_middle_level_was_held_longer() -> None:
    values = np.concatenate([noisy(0.2, 30, 0.01, 23), noisy(0.4, 150, 0.01, 24), noisy(0.9, 40, 0.01, 25)])
    onset = detect_onset(series("checkout", "db_pool_utilization", values), alert_at=at(215))
    assert onset is not None and abs((onset.at - at(180)).total_seconds()) <= 15


def test_an_incident_that_began_mildly_after_a_long_steady_period_keeps_its_first_change() -> None:
    # hours of normal, a mild step (the incident), then it worsens: the middle is shorter than the normal
    values = np.concatenate([noisy(0.01, 200, 0.002, 26), noisy(0.05, 60, 0.004, 27), noisy(0.3, 30, 0.02, 28)])
    onset = detect_onset(series("checkout", "error_rate", values), alert_at=at(285))
    assert onset is not None and abs((onset.at - at(200)).total_seconds()) <= 15


def test_a_ramp_after_a_warm_up_stays_one_onset_at_its_start() -> None:
    warm = np.linspace(0.1, 0.4, 15)
    ramp = np.linspace(0.4, 0.95, 80) + np.random.default_rng(29).normal(0, 0.01, 80)
    values = np.concatenate([warm, noisy(0.4, 150, 0.01, 30), ramp])
    onset = detect_onset(series("cart", "memory_utilization", values), alert_at=at(240))
    assert onset is not None and at(165) <= onset.at <= at(165 + 20)  # the ramp's start, not its middle


def test_trend_p_tells_a_ramp_from_a_level() -> None:
    assert trend_p(np.linspace(0.0, 1.0, 30) + np.random.default_rng(31).normal(0, 0.02, 30)) < 1e-6
    assert trend_p(noisy(5.0, 60, 1.0, 32)) > 1e-3
    assert trend_p(np.full(20, 3.0)) == 1.0


def test_a_marginal_change_is_an_onset_alone_but_not_among_many_series() -> None:
    # a rate window filling, then a p50 1 ms higher: p about 6e-4, below 1e-3 for one series only
    values = np.concatenate([np.full(8, 2.5), np.linspace(2.8, 3.1, 6), noisy(3.5, 82, 0.35, 1)])
    alone = series("auth", "latency_p50_ms", values)
    assert detect_onset(alone, alert_at=at(90)) is not None
    quiet = [series(f"svc{i}", "latency_p50_ms", noisy(3.0, 96, 0.3, 40 + i)) for i in range(30)]
    assert detect_onset(pl.concat([alone, *quiet]), alert_at=at(90)) is None
