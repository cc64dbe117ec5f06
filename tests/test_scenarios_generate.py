"""Every scenario generates a bundle that loads, carries its fault in the telemetry (not only in
ground_truth.json), recovers under the right mitigation, and is deterministic per seed."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import subprocess
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime
from pathlib import Path

import polars as pl
import pytest

from warroom.scenarios import generate, list_scenarios
from warroom.sources import conventions as cv
from warroom.sources.bundle import load_bundle
from warroom.sources.incident_telemetry import IncidentTelemetry

NAMES = [info.name for info in list_scenarios()]
SEEDS = (1, 2)


@pytest.fixture(scope="module")
def bundles(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, int], Path]:
    root = tmp_path_factory.mktemp("scenarios")
    jobs = [(name, seed, root / f"{name}-{seed}") for name in NAMES for seed in SEEDS]
    # Two worker processes (spawned: forking a process that runs polars threads can deadlock).
    with ProcessPoolExecutor(max_workers=2, mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(generate, name, seed, out, "small", "bundle") for name, seed, out in jobs]
        return {(name, seed): future.result() for (name, seed, _), future in zip(jobs, futures, strict=True)}


def _truth(path: Path) -> dict:
    return json.loads((path / "ground_truth.json").read_text())


def _series(frame: pl.DataFrame, service: str, metric: str, agg: str = "max") -> pl.DataFrame:
    selected = frame.filter((pl.col("service") == service) & (pl.col("metric") == metric))
    return selected.group_by("timestamp").agg(getattr(pl.col("value"), agg)()).sort("timestamp")


def _after_onset(frame: pl.DataFrame, truth: dict) -> pl.DataFrame:
    onset = datetime.fromisoformat(truth["onset"].replace("Z", "+00:00"))
    return frame.filter(pl.col("timestamp") >= onset)


def test_catalogue_has_the_ten_scenarios_of_issue_4() -> None:
    infos = list_scenarios()
    assert len(infos) == 10
    assert {i.path for i in infos} == {"database", "application", "infrastructure"}
    assert sum(i.security for i in infos) == 1 and sum(i.data_loss for i in infos) == 1


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("name", NAMES)
def test_bundle_loads_with_all_modalities(bundles: dict[tuple[str, int], Path], name: str, seed: int) -> None:
    path = bundles[(name, seed)]
    bundle = load_bundle(path)
    assert bundle.missing_modalities() == []
    assert bundle.baseline is not None and bundle.baseline.metrics is not None
    truth = _truth(path)
    assert truth["scenario"] == name and truth["seed"] == seed
    assert truth["path"] in ("database", "application", "infrastructure")
    assert set(truth["recovering_actions"]) <= set(bundle.recorded_actions() or [])
    assert set(truth["action_effects"]) == set(bundle.recorded_actions() or [])
    assert bundle.manifest.business.revenue_per_minute and bundle.manifest.business.revenue_per_minute > 0
    assert bundle.manifest.objectives.rto_minutes == 30 and bundle.manifest.comms.cadence_minutes == 15
    assert bundle.metrics is not None and bundle.metrics.get_column("instance").n_unique() > 10
    logs = bundle.logs
    assert logs is not None and logs.get_column("trace_id").null_count() < logs.height
    traces = bundle.traces
    assert traces is not None and traces.get_column("parent_span_id").null_count() < traces.height
    if truth["change_id"] is not None:
        changes = bundle.changes
        assert changes is not None
        row = changes.filter(pl.col("id") == truth["change_id"])
        assert row.height == 1
        assert row["service"][0] in (truth["service"], "database") or row["kind"][0] != "deploy"
        assert changes.height > 3  # unrelated changes too


@pytest.mark.parametrize("name", NAMES)
def test_code_location_is_real_in_the_repository(
    bundles: dict[tuple[str, int], Path], name: str, tmp_path: Path
) -> None:
    path = bundles[(name, 1)]
    truth = _truth(path)
    location = truth["code_location"]
    if location is None:
        assert truth["change_id"] is None or name in ("bad-config",)
        return
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(path / "repo.bundle"), str(clone)], check=True)
    text = subprocess.run(
        ["git", "show", f"{location['commit']}:{location['file']}"],
        cwd=clone,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    line = text.splitlines()[location["line"] - 1]
    # The line is one the offending commit added or changed.
    diff = subprocess.run(
        ["git", "show", "--format=", "-U0", location["commit"], "--", location["file"]],
        cwd=clone, check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    assert f"+{line}" in diff.splitlines()
    history = subprocess.run(["git", "log", "--format=%H"], cwd=clone, check=True, capture_output=True, text=True)
    commits = history.stdout.split()
    assert location["commit"] in commits and commits[0] != location["commit"]  # not simply HEAD
    assert len(commits) > 20


@pytest.mark.parametrize("seed", SEEDS)
def test_pool_leak_code_misses_the_release(bundles: dict[tuple[str, int], Path], seed: int, tmp_path: Path) -> None:
    path = bundles[("pool-exhaustion", seed)]
    location = _truth(path)["code_location"]
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "--quiet", str(path / "repo.bundle"), str(clone)], check=True)
    text = subprocess.run(
        ["git", "show", f"{location['commit']}:{location['file']}"],
        cwd=clone,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    lines = text.splitlines()
    line = lines[location["line"] - 1]
    assert "Conn(ctx)" in line or "getconn()" in line
    # The rest of that function: up to the next top-level closing brace or definition.
    rest = []
    for following in lines[location["line"] :]:
        if following in ("}",) or following.startswith("def "):
            break
        rest.append(following)
    body = "\n".join(rest)
    assert "defer conn.Close()" not in body and "finally:" not in body
    assert "return" in body  # there is a path out of the function


def _key_metric(main: pl.DataFrame, truth: dict) -> tuple[str, str, str]:
    """The series an SRE would look at first for this fault: (service, metric, aggregation of replicas)."""
    service = truth["service"]
    picks = {
        "db_pool_exhaustion": (service, cv.DB_POOL_UTILIZATION, "max"),
        "missing_index": ("database", cv.DB_CPU_UTILIZATION, "max"),
        "load_saturation": (service, cv.CPU_UTILIZATION, "mean"),
        "memory_leak": (service, cv.MEMORY_UTILIZATION, "max"),
        "slow_dependency": ("payment-provider", cv.LATENCY_P99, "max"),
        "bad_config": ("gateway", cv.ERROR_RATE, "mean"),
        "network_delay": (None, cv.NETWORK_LATENCY_MS, "max"),
        "certificate_expiry": ("gateway", cv.ERROR_RATE, "mean"),
        "credential_stuffing": ("auth", cv.AUTH_FAILURES, "sum"),
        "data_loss_migration": ("checkout", cv.ERROR_RATE, "mean"),
    }
    svc, metric, agg = picks[truth["fault_type"]]
    if svc is None:  # network delay: the caller's round-trip time, whichever service that is
        rtt = main.filter(pl.col("metric") == metric).group_by("service").agg(pl.col("value").max())
        svc = str(rtt.sort("value")["service"][-1])
    return svc, metric, agg


def _key_signal(bundle: IncidentTelemetry, truth: dict) -> tuple[float, float]:
    """The key series' median (during the incident, on the baseline day)."""
    main, base = bundle.metrics, bundle.baseline.metrics if bundle.baseline else None
    assert main is not None and base is not None
    svc, metric, agg = _key_metric(main, truth)
    during = _after_onset(_series(main, svc, metric, agg), truth)["value"].median()
    before = _series(base, svc, metric, agg)["value"].median()
    return float(during), float(before)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", NAMES)
def test_fault_is_visible_in_the_telemetry(bundles: dict[tuple[str, int], Path], name: str) -> None:
    for seed in SEEDS:
        path = bundles[(name, seed)]
        during, before = _key_signal(load_bundle(path), _truth(path))
        assert during > 1.5 * before + 1e-3, (name, seed, during, before)


def _health(frame: pl.DataFrame, tail_minutes: float = 15.0) -> tuple[float, float]:
    """Gateway error rate and p99 over the last minutes of a period."""
    end = frame.get_column("timestamp").max()
    assert isinstance(end, datetime)
    recent = frame.filter(pl.col("timestamp") >= end - pl.duration(minutes=tail_minutes))
    errors = _series(recent, "gateway", cv.ERROR_RATE, "mean")["value"].mean()
    p99 = _series(recent, "gateway", cv.LATENCY_P99, "median")["value"].median()
    return float(errors), float(p99)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", NAMES)
def test_right_mitigation_recovers_and_wrong_one_does_not(bundles: dict[tuple[str, int], Path], name: str) -> None:
    path = bundles[(name, 1)]
    bundle, truth = load_bundle(path), _truth(path)
    assert bundle.baseline is not None and bundle.baseline.metrics is not None
    base_err, base_p99 = _health(bundle.baseline.metrics, 60)
    for kind, effect in truth["action_effects"].items():
        metrics = bundle.after(kind).metrics
        assert metrics is not None
        err, p99 = _health(metrics)
        healthy = err <= max(3 * base_err, 0.01) and p99 <= 1.5 * base_p99
        if effect == "recovers":
            assert healthy, (kind, err, p99, base_err, base_p99)
        elif effect == "no_effect" and truth["fault_type"] not in ("credential_stuffing", "memory_leak"):
            # Credential stuffing hurts security, not the front door's golden signals; a leak is intermittent.
            assert not healthy, (kind, err, p99, base_err, base_p99)


@pytest.mark.parametrize("name", NAMES)
def test_the_fault_signal_returns_to_its_baseline_level_after_a_recovering_action(
    bundles: dict[tuple[str, int], Path], name: str
) -> None:
    """The healthy system reads the same on the baseline day and after the fix: otherwise a
    recovery check against the baseline fails for the generator's sake, not the system's."""
    path = bundles[(name, 1)]
    bundle, truth = load_bundle(path), _truth(path)
    assert bundle.metrics is not None and bundle.baseline is not None and bundle.baseline.metrics is not None
    signals = [_key_metric(bundle.metrics, truth)]
    # The service's pool too, where it has one: three scenarios model their own pool readings.
    if _series(bundle.baseline.metrics, truth["service"], cv.DB_POOL_UTILIZATION).height:
        signals.append((truth["service"], cv.DB_POOL_UTILIZATION, "mean"))
    # Scaling out relieves the symptoms but leaves the cause: each replica's share stays above baseline.
    for kind in [k for k in truth["recovering_actions"] if k != "scale_out"]:
        after = bundle.after(kind).metrics
        assert after is not None
        end = after.get_column("timestamp").max()
        assert isinstance(end, datetime)
        recent = after.filter(pl.col("timestamp") >= end - pl.duration(minutes=15))
        for svc, metric, agg in signals:
            base = float(_series(bundle.baseline.metrics, svc, metric, agg)["value"].median())  # type: ignore[arg-type]
            level = float(_series(recent, svc, metric, agg)["value"].median())  # type: ignore[arg-type]
            assert abs(level - base) <= 0.3 * abs(base) + 0.01, (kind, svc, metric, level, base)


def _digest(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_same_seed_gives_identical_bundle(bundles: dict[tuple[str, int], Path], tmp_path: Path) -> None:
    again = generate("missing-index", 2, tmp_path / "again", scale="small", repo="bundle")
    assert _digest(again) == _digest(bundles[("missing-index", 2)])
    assert _digest(bundles[("missing-index", 1)]) != _digest(bundles[("missing-index", 2)])


def test_seeds_vary_the_variant(bundles: dict[tuple[str, int], Path]) -> None:
    variants = {(_truth(p)["service"], _truth(p)["variant"], _truth(p)["onset"]) for p in bundles.values()}
    assert len(variants) == len(bundles)
