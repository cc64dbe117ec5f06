"""A live recovery check that waits for the system (`[actions]` settle, verify_timeout,
verify_every, watch), against a real loopback HTTP service whose health changes while it waits:
the re-queries happen at their due times, a recovery is watched, and a regression during the
watch or no recovery within the timeout is "not recovered"."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from warroom.actions.config import ActionsConfig, Patience
from warroom.actions.contract import Check
from warroom.actions.http import Probe
from warroom.actions.verify import http_probe, waiting_verifier
from warroom.incident import ActionOutcome, RecommendedAction

ACTION = RecommendedAction(id="A1-restart", title="Restart checkout", kind="restart")


class Health:
    """What the service answers, request by request: a list of statuses, the last one repeated."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.asked = 0


@pytest.fixture
def service() -> Iterator[tuple[str, Health]]:
    health = Health([200])

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status = health.statuses[min(health.asked, len(health.statuses) - 1)]
            health.asked += 1
            self.send_response(status)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/healthz", health
    finally:
        server.shutdown()
        server.server_close()


def _check(url: str, patience: Patience, taken: datetime) -> tuple[Check, list[tuple[datetime, Check]]]:
    seen: list[tuple[datetime, Check]] = []
    forgotten: list[str] = []
    verifier = waiting_verifier(
        http_probe(Probe(url=url, expect_status=[200], timeout_s=2)),
        patience,
        forgotten.append,
        lambda action, at, check: seen.append((at, check)),
    )
    outcome = ActionOutcome(action_id=ACTION.id, status="executed", data={"at": taken.isoformat()})
    result = verifier(ACTION, [outcome])
    assert forgotten == [ACTION.kind] * len(seen)  # every re-query asked the source afresh
    return result, seen


def _patience(settle: float, timeout: float, every: float, watch: float) -> Patience:
    return Patience(*(timedelta(seconds=s) for s in (settle, timeout, every, watch)))


def test_waits_to_settle_then_requeries_until_recovered_and_watches(service: tuple[str, Health]) -> None:
    url, health = service
    health.statuses = [503, 503, 200]
    taken = datetime.now(UTC)
    result, seen = _check(url, _patience(0.3, 2.0, 0.1, 0.3), taken)
    assert result.ok is True and "held for 0.3 s" in result.detail
    assert seen[0][0] >= taken + timedelta(seconds=0.3)  # nothing asked before the settle time
    assert [c.ok for _, c in seen[:3]] == [False, False, True] and len(seen) >= 4  # then watched
    # each re-query waits at least for its due time, counted from the action (not the gap between two
    # answers: after a late answer on a busy machine the next one is already due)
    assert all(at >= taken + timedelta(seconds=0.3 + 0.1 * k - 0.01) for k, (at, _) in enumerate(seen))


def test_a_regression_during_the_watch_is_not_recovered(service: tuple[str, Health]) -> None:
    url, health = service
    health.statuses = [200, 200, 503]
    result, seen = _check(url, _patience(0.0, 1.0, 0.1, 1.0), datetime.now(UTC))
    assert result.ok is False and result.detail.startswith("regressed after recovery")
    assert [c.ok for _, c in seen] == [True, True, False, False]  # confirmed by the next re-query


@pytest.mark.parametrize("watch", [1.0, 0.15])
def test_one_failed_requery_during_the_watch_is_not_a_regression(service: tuple[str, Health], watch: float) -> None:
    """A single not-recovered answer (a noisy p99 over a few scrapes) that the next re-query does not
    repeat leaves the recovery standing, also when it is the watch's last (0.15 s: one re-query in
    the watch, then the one that would confirm it)."""
    url, health = service
    health.statuses = [200, 503, 200]
    result, seen = _check(url, _patience(0.0, 1.0, 0.1, watch), datetime.now(UTC))
    assert result.ok is True, [c.ok for _, c in seen]
    assert [c.ok for _, c in seen][:3] == [True, False, True]


def test_no_recovery_within_the_timeout_is_not_recovered(service: tuple[str, Health]) -> None:
    url, health = service
    health.statuses = [503]
    taken = datetime.now(UTC) - timedelta(seconds=5)  # a resumed check: the settle time is long past
    result, seen = _check(url, _patience(1.0, 4.4, 0.2, 0.0), taken)
    assert result.ok is False and result.detail.startswith("not recovered (")
    # due times count from the action, not from the check: only what was left of the timeout
    assert 1 <= len(seen) <= 3


def test_durations_are_validated_like_the_sources_durations() -> None:
    assert ActionsConfig().patience() == _patience(60, 300, 15, 0)
    with pytest.raises(ValueError, match="not a duration"):
        ActionsConfig(settle="soon")
