"""HTTP action against a real loopback server: retries with backoff, verify by status/body, undo."""

from __future__ import annotations

from actions_helpers import ServiceState, closed_port, http_service
from warroom.actions.contract import RunOptions
from warroom.actions.http import HttpRequest

OPTS = RunOptions(env={"RESTART_TOKEN": "Bearer tok_live_abcdef1234567890"})


def test_restart_then_health_probe_passes():
    with http_service() as (base, state):
        adapter = HttpRequest()
        params = adapter.parse(
            {
                "method": "POST",
                "url": f"{base}/restart",
                "headers_env": {"Authorization": "RESTART_TOKEN"},
                "verify": {"url": f"{base}/health", "expect_status": [200], "expect_body_contains": "ok"},
                "backoff_s": 0.01,
            }
        )
        result = adapter.execute(params, OPTS)
        assert result.ok and result.data["status"] == 202
        assert state.recorded("/restart")[0].headers["Authorization"] == "Bearer tok_live_abcdef1234567890"
        check = adapter.verify(params, result, OPTS)
        assert check.ok is True
        assert "tok_live" not in result.model_dump_json()


def test_retries_5xx_with_backoff_until_success():
    with http_service(ServiceState(flaky_failures=2)) as (base, state):
        adapter = HttpRequest()
        params = adapter.parse({"url": f"{base}/flaky", "retries": 3, "backoff_s": 0.01})
        result = adapter.execute(params, OPTS)
        assert result.ok
        assert result.data["attempts"] == 3
        assert len(state.recorded("/flaky")) == 3


def test_gives_up_after_retries_and_does_not_retry_4xx():
    with http_service(ServiceState(flaky_failures=10)) as (base, _state):
        adapter = HttpRequest()
        result = adapter.execute(adapter.parse({"url": f"{base}/flaky", "retries": 2, "backoff_s": 0.01}), OPTS)
        assert not result.ok and result.data["status"] == 503 and result.data["attempts"] == 3
        result = adapter.execute(adapter.parse({"url": f"{base}/forbidden", "retries": 2, "backoff_s": 0.01}), OPTS)
        assert not result.ok and result.data["attempts"] == 1


def test_connection_refused_is_a_failure_after_retries():
    adapter = HttpRequest()
    url = f"http://127.0.0.1:{closed_port()}/restart"
    result = adapter.execute(adapter.parse({"method": "POST", "url": url, "retries": 2, "backoff_s": 0.01}), OPTS)
    assert not result.ok
    assert result.data["attempts"] == 3
    assert "ConnectError" in result.detail


def test_timeout_is_reported_as_such():
    with http_service(ServiceState(slow_seconds=2.0)) as (base, _):
        adapter = HttpRequest()
        params = adapter.parse({"url": f"{base}/slow", "timeout_s": 0.2, "retries": 0})
        result = adapter.execute(params, OPTS)
        assert result.timed_out and not result.ok


def test_body_expectation_and_undo_request():
    with http_service() as (base, state):
        adapter = HttpRequest()
        params = adapter.parse(
            {
                "method": "POST",
                "url": f"{base}/rules",
                "json_body": {"block": ["203.0.113.7"]},
                "expect_body_contains": "no-such-text",
                "undo": {"method": "DELETE", "url": f"{base}/rules/1"},
            }
        )
        result = adapter.execute(params, OPTS)
        assert not result.ok and "body lacks" in result.detail
        assert state.recorded("/rules")[0].json() == {"block": ["203.0.113.7"]}
        undone = adapter.undo(params, result, OPTS)
        assert undone is not None and undone.ok
        assert state.recorded("/rules/1")[0].method == "DELETE"
