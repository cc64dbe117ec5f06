"""The replay source: a bundle served as if live sees only what was recorded by the replay's now."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from serve_support import EXAMPLE
from warroom.sources.bundle import BundleSource
from warroom.sources.contract import ReplaySpec
from warroom.sources.registry import open_source
from warroom.sources.replay import ReplaySource

STARTED = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def _at(elapsed: timedelta) -> ReplaySource:
    return ReplaySource(EXAMPLE, started_at=STARTED, wall_clock=lambda: STARTED + elapsed)


def test_reads_stop_at_the_replays_now_and_say_so() -> None:
    fired = BundleSource(EXAMPLE).manifest().alert.fired_at
    whole = BundleSource(EXAMPLE).incident().telemetry
    early = _at(timedelta(seconds=30)).incident()
    assert early.telemetry.metrics is not None and whole.metrics is not None
    assert early.telemetry.metrics["timestamp"].max() <= fired + timedelta(seconds=30)
    assert 0 < early.telemetry.metrics.height < whole.metrics.height
    assert any(line.startswith("replay:") for line in early.limitations)
    assert all(q.end == fired + timedelta(seconds=30) for q in early.queries)
    late = _at(timedelta(hours=2)).incident()
    assert late.telemetry.metrics is not None and late.telemetry.metrics.height == whole.metrics.height
    assert late.limitations == []


def test_a_replay_reopens_as_a_replay_from_its_spec() -> None:
    spec = _at(timedelta(0)).spec()
    assert isinstance(spec, ReplaySpec) and spec.started_at == STARTED
    reopened = open_source(spec)
    assert isinstance(reopened, ReplaySource) and reopened.describe().startswith("replay of bundle")
