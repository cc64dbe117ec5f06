"""Alert intake on a real SQLite store: dedupe by fingerprint and group, storms, resolved alerts,
severity floors, routing, payload and configuration errors, tokens kept as digests only."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from serve_support import EXAMPLE, am_payload
from warroom.cli import app
from warroom.config import load_config
from warroom.errors import InputError
from warroom.serve.config import RouteConfig, ServeConfig
from warroom.serve.intake import IntakeResult, RunSettings, accept
from warroom.serve.matchers import parse_matcher
from warroom.serve.payloads import AlertmanagerWebhook, GenericAlert, ReceivedAlert
from warroom.serve.routing import Router
from warroom.store.alerts import alerts_of, look_up_occurrences
from warroom.store.repository import Store
from warroom.store.tokens import find_token, revoke_token


@pytest.fixture(scope="module")
def router() -> Router:
    routes = [
        RouteConfig(name="pages", matchers=['severity=~"critical|P[01]"'], storm_window_s=0),
        RouteConfig(name="storms", matchers=['alertname=~"Disk.*"'], min_severity="P3", storm_window_s=300),
        RouteConfig(name="sourceless", matchers=['team="data"'], bundle=None),
    ]
    return Router(ServeConfig(replay=str(EXAMPLE), routes=routes))


def _received(**kwargs: Any) -> list[ReceivedAlert]:
    return AlertmanagerWebhook.model_validate(am_payload(**kwargs)).received()


def _accept(store: Store, router: Router, tmp_path: Path, alerts: list[ReceivedAlert]) -> IntakeResult:
    with store.transaction() as session:
        return accept(session, store, router, RunSettings(tmp_path / "reports"), alerts)


def test_same_occurrence_and_same_group_attach_to_one_incident(store: Store, router: Router, tmp_path: Path) -> None:
    opened = _accept(store, router, tmp_path, _received())
    assert [a.outcome for a in opened.alerts] == ["opened"] and len(opened.runs) == 1
    incident_id = opened.incident_ids[0]
    resent = _accept(store, router, tmp_path, _received())
    assert resent.incident_ids == [incident_id] and resent.runs == []
    sibling = _accept(store, router, tmp_path, _received(fingerprint="ffff000011112222", service="checkout"))
    assert sibling.alerts[0].outcome == "attached" and sibling.incident_ids == [incident_id]
    resolved = _accept(store, router, tmp_path, _received(status="resolved"))
    assert resolved.incident_ids == [incident_id]
    summaries = [e.summary for e in store.timeline(incident_id) if e.kind.value == "alert"]
    assert len(summaries) == 3 and summaries[-1].startswith("resolved: ApiLatencyP99High")
    # replayed incidents keep the bundle's clock: no event lands at the wall-clock date
    assert all(e.at.year == 2024 for e in store.timeline(incident_id))


@pytest.mark.parametrize("looked_up", [False, True], ids=["one-statement-per-alert", "looked-up-ahead"])
def test_a_batch_holding_an_alert_its_resend_and_its_resolution_stores_one_occurrence(
    store: Store, router: Router, tmp_path: Path, looked_up: bool
) -> None:
    # One group commit: the inserts are deferred to COMMIT, so the re-send and the resolution find
    # the occurrence among the batch's own rows, not in the table; an occurrence stored by an
    # earlier batch is found by its own statement or by the batch's look-up ahead (the service's).
    name = f"Batched{looked_up}"
    fingerprint, earlier = f"b0b0b0b0b0b0b0b{int(looked_up)}", f"e0e0e0e0e0e0e0e{int(looked_up)}"
    [before] = _accept(store, router, tmp_path, _received(name=name, fingerprint=earlier)).incident_ids
    alerts = [
        *_received(name=name, fingerprint=fingerprint),
        *_received(name=name, fingerprint=fingerprint),
        *_received(name=name, fingerprint=fingerprint, status="resolved"),
        *_received(name=name, fingerprint=earlier, status="resolved"),
        *_received(name=name, fingerprint=earlier, status="resolved"),
    ]
    with store.transaction() as session:
        if looked_up:
            look_up_occurrences(session, [[(a.fingerprint, a.starts_at) for a in alerts]])
        result = accept(session, store, router, RunSettings(tmp_path / "reports"), alerts)
    assert [a.outcome for a in result.alerts] == ["attached"] * 5 and result.runs == []
    assert result.incident_ids == [before]  # the same group (the alert name): its open incident
    with store.transaction() as session:
        stored = {a.fingerprint: (a.status, a.outcome) for a in alerts_of(session, before)}
    # what the last receipt made of each, as a re-send in a later batch updates it
    assert stored == {earlier: ("resolved", "attached"), fingerprint: ("resolved", "attached")}
    events = [
        (e.data["fingerprint"], e.summary.split(":")[0]) for e in store.timeline(before) if e.kind.value == "alert"
    ]
    # each occurrence's firing and its resolution once; the re-sends add nothing
    assert events == [(earlier, "firing"), (fingerprint, "firing"), (fingerprint, "resolved"), (earlier, "resolved")]


def test_a_storm_of_groups_becomes_one_incident(store: Store, router: Router, tmp_path: Path) -> None:
    storm = [
        alert
        for n in range(300)
        for alert in _received(
            name=f"DiskFull{n % 7}",
            fingerprint=f"{n:016x}",
            severity="warning",
            service=f"host-{n}",
            group_key=f"disk-{n}",
        )
    ]
    result = _accept(store, router, tmp_path, storm)
    assert len(result.incident_ids) == 1 and len(result.runs) == 1
    assert Counter(a.outcome for a in result.alerts) == {"opened": 1, "attached": 299}


def test_alerts_that_open_no_incident_are_still_stored_with_the_reason(
    store: Store, router: Router, tmp_path: Path
) -> None:
    below = _accept(store, router, tmp_path, _received(name="Slow", severity="info"))
    assert below.alerts[0].outcome == "stored" and "no route" in below.alerts[0].detail
    late = _accept(store, router, tmp_path, _received(name="Gone", fingerprint="0a0a0a0a0a0a0a0a", status="resolved"))
    assert late.alerts[0].outcome == "stored" and "resolved" in late.alerts[0].detail
    generic = GenericAlert(name="Lag", labels={"team": "data"}, severity="critical").received(datetime.now(UTC))
    sourceless = _accept(store, Router(ServeConfig(routes=[RouteConfig(name="r")])), tmp_path, [generic])
    assert sourceless.alerts[0].outcome == "stored" and "no telemetry source" in sourceless.alerts[0].detail
    assert store.list_incidents() == []


def test_secrets_in_alert_text_are_redacted_before_they_are_stored(
    store: Store, router: Router, tmp_path: Path
) -> None:
    alert = _received()[0]
    leaked = "postgresql://app:hunter2secret@db:5432/shop"
    alert = alert.model_copy(update={"annotations": {"summary": f"cannot reach {leaked}"}})
    _accept(store, router, tmp_path, [alert])
    store.close()
    assert b"hunter2secret" not in (tmp_path / "warroom.db").read_bytes()


def test_payload_and_matcher_errors_name_the_field() -> None:
    bad = am_payload()
    bad["version"] = "3"
    with pytest.raises(ValueError, match="version"):
        AlertmanagerWebhook.model_validate(bad)
    zero_end = AlertmanagerWebhook.model_validate(am_payload()).received()[0]
    assert zero_end.ends_at is None  # Alertmanager's 0001-01-01 means "still firing"
    assert parse_matcher('env!~"dev|test"').matches({"env": "prod"})
    assert not parse_matcher('env=~"dev|test"').matches({"env": "devx"})  # anchored, as in Alertmanager
    with pytest.raises(ValueError, match="not a matcher"):
        parse_matcher("severity = critical")


def test_a_bad_serve_table_is_one_line_naming_the_field(tmp_path: Path) -> None:
    config = tmp_path / "warroom.toml"
    config.write_text('[serve]\nport = 8080\n[[serve.routes]]\nname = "x"\nmatchers = ["nope"]\n', encoding="utf-8")
    with pytest.raises(InputError) as caught:
        load_config(config)
    assert "serve.routes.0.matchers" in caught.value.one_line() and "\n" not in caught.value.one_line()
    config.write_text('[serve]\n[[serve.routes]]\nname = "x"\nmin_severity = "P9"\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"field 'serve\.routes\.0\.min_severity': .*'P9' is not a severity"):
        load_config(config)


def test_token_cli_prints_once_stores_a_digest_and_revokes(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 't.db'}"
    runner = CliRunner()
    created = runner.invoke(app, ["token", "create", "--role", "commander", "--name", "alice", "--db", db])
    assert created.exit_code == 0, created.output
    token = created.output.strip()
    assert token.startswith("wr_") and len(token) > 40
    assert token.encode() not in (tmp_path / "t.db").read_bytes()
    store = Store(db)
    assert find_token(store, token).role == "commander"  # type: ignore[union-attr]
    twice = runner.invoke(app, ["token", "create", "--role", "viewer", "--name", "alice", "--db", db])
    assert twice.exit_code == 2 and "already exists" in twice.output
    wrong = runner.invoke(app, ["token", "create", "--role", "root", "--name", "bob", "--db", db])
    assert wrong.exit_code == 2 and "not a role" in wrong.output
    listed = runner.invoke(app, ["token", "list", "--json", "--db", db])
    assert '"alice"' in listed.output and token not in listed.output
    revoke_token(store, "alice")
    assert find_token(store, token) is None


def test_incident_time_of_a_replay_follows_the_first_alert(store: Store, router: Router, tmp_path: Path) -> None:
    first = _received()
    opened = _accept(store, router, tmp_path, first)
    incident = store.get_incident(opened.incident_ids[0])
    assert incident.detected_at == datetime(2024, 5, 12, 18, 49, 30, tzinfo=UTC)
    later = [a.model_copy(update={"starts_at": a.starts_at + timedelta(minutes=5), "fingerprint": "99"}) for a in first]
    _accept(store, router, tmp_path, later)
    alert_times = [e.at for e in store.timeline(incident.id) if e.kind.value == "alert"]
    # the second arrived seconds (engine time) after the first: the replay's clock moved that much
    assert alert_times[1] - alert_times[0] < timedelta(minutes=1)


def test_a_group_firing_again_after_its_incident_went_quiet_opens_a_new_incident(store: Store, tmp_path: Path) -> None:
    """An incident left open (its response failed and nobody closed it) must not swallow its group's
    later alerts: once every alert of it has resolved and stayed quiet for `regroup_after_s`, the
    group's next alert opens a new incident (the ninth live run's bad_config alert joined the
    slow_dependency incident of 50 minutes before, and no incident opened for it)."""
    quick = Router(
        ServeConfig(replay=str(EXAMPLE), routes=[RouteConfig(name="pages", storm_window_s=0, regroup_after_s=0)])
    )
    patient = Router(ServeConfig(replay=str(EXAMPLE), routes=[RouteConfig(name="pages", storm_window_s=0)]))
    group = '{}:{service="checkout"}'

    def fire(router: Router, name: str, fingerprint: str, status: str = "firing") -> IntakeResult:
        alerts = _received(name=name, fingerprint=fingerprint, status=status, group_key=group, service="checkout")
        return _accept(store, router, tmp_path, alerts)

    first = fire(quick, "DBPoolSaturated", "0000aaaa0000aaaa").incident_ids[0]
    # still firing: a sibling of the group joins it
    assert fire(quick, "HighLatencyP99", "0000bbbb0000bbbb").incident_ids == [first]
    fire(quick, "DBPoolSaturated", "0000aaaa0000aaaa", "resolved")
    fire(quick, "HighLatencyP99", "0000bbbb0000bbbb", "resolved")
    # every alert resolved, but not yet quiet for the default half hour: the group's incident still
    assert fire(patient, "HighErrorRatio", "0000cccc0000cccc").incident_ids == [first]
    fire(patient, "HighErrorRatio", "0000cccc0000cccc", "resolved")
    # quiet (here at once): the next alert of the group opens a new incident, and its group follows it
    again = fire(quick, "HighErrorRatio", "0000dddd0000dddd")
    assert again.alerts[0].outcome == "opened" and again.incident_ids != [first]
    assert fire(quick, "HighLatencyP99", "0000eeee0000eeee").incident_ids == again.incident_ids
