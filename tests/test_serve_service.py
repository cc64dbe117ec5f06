"""`warroom serve --replay examples/checkout-pool-exhaustion` as a real process on loopback.

One server is started, sent the example's alert, and SIGKILLed (with its worker pool) in the
middle of the investigation; a second process on the same store must finish the run. The other
tests then use that restarted server, in file order: the acceptance flow over the API, the
incident room in a real Chromium, and schemathesis over the OpenAPI spec."""

from __future__ import annotations

import os
import signal
import subprocess
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from serve_support import Served, am_payload, free_port, wait_for
from warroom.serve.auth import COOKIE
from warroom.store.repository import Store
from warroom.store.tokens import audit_entries

if TYPE_CHECKING:
    from playwright.sync_api import Page

ARTIFACTS = Path(__file__).resolve().parents[1] / "out" / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")


def _get(served: Served, path: str, role: str = "viewer", **params: Any) -> httpx.Response:
    return httpx.get(f"{served.url}{path}", headers=served.headers(role), params=params, timeout=10)


def _post(served: Served, path: str, role: str, body: Any = None) -> httpx.Response:
    return httpx.post(f"{served.url}{path}", headers=served.headers(role), json=body, timeout=10)


def _run(served: Served, incident_id: str) -> str | None:
    return _get(served, f"/api/v1/incidents/{incident_id}").json()["run_status"]


def _interruptions(events: list[dict[str, Any]]) -> list[str]:
    """What each "run … was resumed" note of the engine says the run was doing when it stopped."""
    return [e["data"]["interruption"]["previous_status"] for e in events if "interruption" in e["data"]]


def _reject_the_rest(served: Served, incident_id: str) -> None:
    """A commander rejects every action waiting, as each comes up (the plan's actions reach their
    gate one after another), until the run finishes."""

    def finished() -> bool:
        for other in _get(served, f"/api/v1/incidents/{incident_id}/actions").json():
            if other["status"] == "awaiting_approval":
                reject = f"/api/v1/incidents/{incident_id}/actions/{other['action_id']}/reject"
                assert _post(served, reject, "commander", {"reason": "one change at a time"}).status_code == 200
        return _run(served, incident_id) == "succeeded"

    wait_for(finished, 90, "the run to finish, every action still waiting rejected", every=0.5)


@pytest.fixture(scope="module")
def crashed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("serve")
    served = Served(root, f"sqlite:///{root / 'warroom.db'}")
    served.make_tokens()
    served.start()
    try:
        first = _post(served, "/api/v1/alerts/alertmanager", "responder", am_payload())
        assert first.status_code == 202, first.text
        incident_id = first.json()["incidents"][0]
        store = Store(served.db_url)
        run_id = store.latest_run(incident_id).id
        # SIGKILL once at least one step is committed and the run is still going
        wait_for(lambda: store.steps(run_id) and store.get_run(run_id).status == "running", 60, "a first step")
        steps_before = len(store.steps(run_id))
        survivors = served.kill(signal.SIGKILL)
        served.start()
        yield {
            "served": served,
            "incident_id": incident_id,
            "run_id": run_id,
            "steps_before": steps_before,
            "survivors": survivors,
            "store": store,
        }
    finally:
        served.stop()


def test_a_killed_run_resumes_without_losing_or_repeating_anything(crashed: dict[str, Any]) -> None:
    served, incident_id, store = crashed["served"], crashed["incident_id"], crashed["store"]
    assert crashed["survivors"] == []
    wait_for(lambda: _run(served, incident_id) == "waiting_approval", 90, "the resumed run to reach its gate")
    events = _get(served, f"/api/v1/incidents/{incident_id}/timeline").json()["events"]
    kinds = Counter(e["kind"] for e in events)
    assert kinds["resumed"] == 1
    # the engine's own note of the crash: exactly one, for the run that was really running
    assert _interruptions(events) == ["running"]
    repeated = Counter((e["kind"], e["source"], e["summary"]) for e in events if e["kind"] != "alert")
    assert [k for k, n in repeated.items() if n > 1] == []
    steps = store.steps(crashed["run_id"])
    assert len(steps) > crashed["steps_before"]
    assert len({s.key for s in steps}) == len(steps)


def test_alert_to_diagnosis_approvals_and_audit(crashed: dict[str, Any]) -> None:
    served, incident_id = crashed["served"], crashed["incident_id"]
    path = "/api/v1/alerts/alertmanager"
    no_token = httpx.post(f"{served.url}{path}", json=am_payload(), timeout=10)
    assert no_token.status_code == 401
    assert no_token.headers["content-type"].startswith("application/problem+json")
    bad = httpx.post(f"{served.url}{path}", json=am_payload(), headers={"Authorization": "Bearer nope"}, timeout=10)
    assert bad.status_code == 401
    assert _post(served, path, "viewer", am_payload()).status_code == 403
    again = _post(served, path, "responder", am_payload())
    assert again.status_code == 202 and again.json()["incidents"] == [incident_id]

    top = _get(served, f"/api/v1/incidents/{incident_id}/diagnosis").json()["candidates"][0]
    assert (top["service"], top["fault_type"]) == ("checkout", "db_pool_exhaustion")
    evidence = _get(served, f"/api/v1/incidents/{incident_id}/evidence/{top['evidence_ids'][0]}")
    assert evidence.status_code == 200 and evidence.json()["evidence"]["query"]

    actions = _get(served, f"/api/v1/incidents/{incident_id}/actions").json()
    waiting = [a for a in actions if a["status"] == "awaiting_approval"]
    risky = next(a for a in waiting if a["risk"] in ("medium", "high"))
    approve = f"/api/v1/incidents/{incident_id}/actions/{risky['action_id']}/approve"
    assert _post(served, approve, "viewer").status_code == 403
    assert _post(served, approve, "responder").status_code == 403  # risky: a commander's call
    decided = _post(served, approve, "commander")
    assert decided.status_code == 200 and decided.json()["by"] == "commander-token"

    trail = audit_entries(crashed["store"], incident_id)
    assert any(e.actor == "commander-token" and e.path == approve and e.status_code == 200 for e in trail)
    assert any(e.actor == "viewer-token" and e.path == approve and e.status_code == 403 for e in trail)
    action_audit = _get(served, f"/api/v1/incidents/{incident_id}/audit").json()
    assert {"event": "approved", "actor": "commander-token"}.items() <= next(
        a for a in action_audit if a["action_id"] == risky["action_id"] and a["event"] == "approved"
    ).items()

    _reject_the_rest(served, incident_id)
    # every decision queued the waiting run and the executor took it up: none reads as a crash
    events = _get(served, f"/api/v1/incidents/{incident_id}/timeline").json()["events"]
    assert _interruptions(events) == ["running"]  # the one SIGKILL of the fixture
    # a replayed bundle's after/ data never counts as a recovery: the incident stays mitigating
    listed = _get(served, "/api/v1/incidents", status=["mitigating"], service="checkout").json()
    assert incident_id in [i["id"] for i in listed]
    assert _get(served, "/api/v1/incidents", status=["resolved"]).json() == []
    assert _get(served, "/api/v1/incidents", severity=["P3"]).json() == []
    markdown = _get(served, f"/api/v1/incidents/{incident_id}/postmortem", format="md")
    assert markdown.status_code == 200 and "checkout" in markdown.text
    assert _get(served, f"/api/v1/incidents/{incident_id}/metrics").json()["metrics"]

    # the service's own metrics: the restarted server counted the re-sent alert it attached
    assert httpx.get(f"{served.url}/metrics", timeout=10).status_code == 401
    scrape = _get(served, "/metrics").text
    assert 'warroom_alerts_total{outcome="attached"} 1.0' in scrape
    assert 'warroom_runs{status="succeeded"} 1.0' in scrape and "warroom_intake_duration_seconds_count 1.0" in scrape


def test_the_intake_fast_path_answers_as_the_route_and_revocation_counts_at_once(crashed: dict[str, Any]) -> None:
    """The Alertmanager intake's lean path takes only valid requests; the rest get the route's
    problem details. A token revoked through the API fails at its next request, cache or not."""
    served, incident_id = crashed["served"], crashed["incident_id"]
    path = f"{served.url}/api/v1/alerts/alertmanager"
    made = _post(served, "/api/v1/tokens", "admin", {"name": "short-lived", "role": "responder"})
    assert made.status_code == 201, made.text
    token = {"Authorization": f"Bearer {made.json()['token']}"}
    taken = httpx.post(path, json=am_payload(), headers=token, timeout=10)
    assert taken.status_code == 202 and taken.json()["incidents"] == [incident_id]
    assert taken.headers["content-type"] == "application/json"
    bad = httpx.post(path, json={**am_payload(), "version": "3"}, headers=token, timeout=10)
    assert bad.status_code == 422 and bad.headers["content-type"].startswith("application/problem+json")
    assert httpx.delete(f"{served.url}/api/v1/tokens/short-lived", headers=served.headers("admin")).status_code == 200
    refused = httpx.post(path, json=am_payload(), headers=token, timeout=10)
    assert refused.status_code == 401 and refused.headers["content-type"].startswith("application/problem+json")
    trail = [e for e in audit_entries(crashed["store"]) if e.actor == "short-lived"]
    assert sorted(e.status_code for e in trail) == [202, 422]  # the 401 is audited as anonymous


def _cancel_in_the_room(served: Served, page: Page) -> None:
    """A commander cancels another incident's investigation from the room, with a reason;
    viewers and responders are not offered the button, and the API refuses them."""
    from playwright.sync_api import expect

    other = am_payload("CheckoutErrorsHigh", fingerprint="0f1e2d3c4b5a6978", service="checkout")
    sent = _post(served, "/api/v1/alerts/alertmanager", "responder", other)
    assert sent.status_code == 202 and sent.json()["runs_queued"] == 1, sent.text
    third = sent.json()["incidents"][0]
    for role in ("viewer", "responder"):
        seen = httpx.get(f"{served.url}/incidents/{third}", cookies={COOKIE: served.tokens[role]}, timeout=10)
        assert seen.status_code == 200 and 'id="cancel-run"' not in seen.text
        assert _post(served, f"/api/v1/incidents/{third}/cancel", role, {"reason": "mine"}).status_code == 403
    page.goto(f"{served.url}/incidents/{third}")
    page.once("dialog", lambda dialog: dialog.accept("a duplicate of the checkout incident"))
    page.click("#cancel-run")
    expect(page.locator("#timeline li.k-cancelled")).to_contain_text("a duplicate", timeout=15_000)
    expect(page.locator("#run-status")).to_contain_text("cancelled", timeout=15_000)
    expect(page.locator("#cancel-run")).to_have_count(0)
    page.screenshot(path=str(ARTIFACTS / "serve-cancelled.png"), full_page=True)


@pytest.mark.skipif(
    not CHROMIUM.exists() and not os.environ.get("CI"),  # in CI a missing browser fails the test
    reason="Debian's chromium is not installed (.ci/run installs it)",
)
def test_incident_room_in_chromium(crashed: dict[str, Any]) -> None:
    from playwright.sync_api import expect, sync_playwright

    served = crashed["served"]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"]
    args += ["--disable-background-networking", "--disable-component-update", "--disable-sync"]
    with sync_playwright() as pw:
        browser = pw.chromium.launch_persistent_context(
            str(served.root / "chromium-profile"), executable_path=str(CHROMIUM), args=args, headless=True
        )
        try:
            page = browser.new_page()
            page.goto(f"{served.url}/incidents")
            page.fill("#token", served.tokens["commander"])
            page.click("button[type=submit]")
            expect(page.locator("h1")).to_have_text("Incidents")

            # the replayed bundle's own alert (a new group: the first incident is resolved) opens an
            # incident while the list is open
            sent = _post(served, "/api/v1/replay/alert", "responder")
            assert sent.status_code == 202 and sent.json()["runs_queued"] == 1, sent.text
            new_id = sent.json()["incidents"][0]
            row = page.locator(f"#incidents tr[data-id='{new_id}'] a")
            expect(row).to_be_visible(timeout=15_000)
            page.screenshot(path=str(ARTIFACTS / "serve-incidents.png"), full_page=True)
            row.click()

            expect(page.locator("#timeline li.k-alert").first).to_be_visible()
            approve = page.locator("#actions button.approve").first
            expect(approve).to_be_visible(timeout=60_000)  # the run reached its approval gate
            expect(page.locator("#diagnosis")).to_contain_text("db_pool_exhaustion")
            expect(page.locator("#charts svg").first).to_be_visible()  # the investigation's key series
            page.screenshot(path=str(ARTIFACTS / "serve-incident.png"), full_page=True)

            action_id = approve.locator("xpath=ancestor::tr").get_attribute("data-action")
            approve.click()
            status = page.locator(f"#actions tr[data-action='{action_id}'] .action-status")
            expect(status).to_have_text("approved", timeout=15_000)

            page.locator("#diagnosis a.ev").first.click()
            expect(page.locator("#query")).not_to_be_empty()
            page.go_back()
            # and the documentation's, with the data after the action, once the run has written its reports
            _reject_the_rest(served, new_id)
            page.reload()
            expect(page.locator("#charts svg").first).to_be_visible()
            page.click("#postmortem-link")
            expect(page.locator("body")).to_contain_text("checkout")
            page.screenshot(path=str(ARTIFACTS / "serve-postmortem.png"), full_page=True)
            _cancel_in_the_room(served, page)
        finally:
            browser.close()


def test_openapi_contract(crashed: dict[str, Any]) -> None:
    """Every operation of the running server's OpenAPI spec, driven by schemathesis: answers stay
    within the documented responses and schemas, and none is a 5xx. As an admin, so requests get
    past auth; alerts it generates match no route (severity is never 'critical'), so they open no
    incident. (One test over all operations: schemathesis' pytest loader does not run on pytest 9.)"""
    served = crashed["served"]
    schema = schemathesis.openapi.from_url(f"{served.url}/api/v1/openapi.json")
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path.endswith("/timeline/stream") or operation.path.startswith("/api/v1/replay"):
            continue  # an endless SSE response (the browser test reads it); replay opens real runs

        @given(case=operation.as_strategy())
        @settings(max_examples=2, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def exercise(case: Any) -> None:
            case.call_and_validate(base_url=served.url, headers=served.headers("admin"))

        try:
            exercise()
        except (Exception, BaseExceptionGroup) as exc:  # every operation's failures, not only the first
            failures.append(f"{operation.method.upper()} {operation.path}: {str(exc)[:600]}")
    assert failures == []


ALERTMANAGER = Path("/usr/bin/prometheus-alertmanager")


@pytest.mark.skipif(
    not ALERTMANAGER.exists() and not os.environ.get("CI"),
    reason="Debian's prometheus-alertmanager is not installed (.ci/run installs it)",
)
def test_a_real_alertmanager_delivers_to_the_intake(crashed: dict[str, Any], tmp_path: Path) -> None:
    """Alertmanager 0.25 (Debian) posts its own webhook body, with its token, to the intake; the
    alert (severity warning: below the route, so it opens nothing) is stored with its groupKey."""
    served = crashed["served"]
    token = tmp_path / "token"
    token.write_text(served.tokens["responder"], encoding="utf-8")
    port, cluster = free_port(), free_port()
    (tmp_path / "am.yml").write_text(
        f"""
route:
  receiver: warroom
  group_by: [alertname]
  group_wait: 1s
  group_interval: 1s
receivers:
  - name: warroom
    webhook_configs:
      - url: {served.url}/api/v1/alerts/alertmanager
        send_resolved: true
        http_config:
          authorization: {{type: Bearer, credentials_file: {token}}}
""",
        encoding="utf-8",
    )
    process = subprocess.Popen(
        [
            str(ALERTMANAGER),
            f"--config.file={tmp_path / 'am.yml'}",
            f"--storage.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            f"--cluster.listen-address=127.0.0.1:{cluster}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        am = f"http://127.0.0.1:{port}"

        def ready() -> bool:
            try:
                return httpx.get(f"{am}/-/ready", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        wait_for(ready, 30, "Alertmanager to start")
        alert = {
            "labels": {"alertname": "DiskAlmostFull", "service": "catalog", "severity": "warning"},
            "annotations": {"summary": "catalog disk 91% full"},
        }
        assert httpx.post(f"{am}/api/v2/alerts", json=[alert], timeout=5).status_code == 200
        store: Store = crashed["store"]

        def delivered() -> list[Any]:
            from sqlalchemy import select

            from warroom.store.models import AlertRow

            with store.transaction() as session:
                return list(
                    session.scalars(
                        select(AlertRow).where(AlertRow.labels["alertname"].as_string() == "DiskAlmostFull")
                    )
                )

        rows = wait_for(delivered, 30, "Alertmanager's webhook delivery")
        assert rows[0].source == "alertmanager" and 'alertname="DiskAlmostFull"' in rows[0].group_key
        assert rows[0].incident_id is None and "no route" in rows[0].detail
    finally:
        process.terminate()
        process.wait(timeout=10)
