"""The whole lab, for real, on the compressed timeline: up, a deploy that keeps its socket, a
fault, a real alert delivered to a loopback webhook, a capture, down.

Runs with `make test-lab` (pytest -m lab). The commands run in-process through the real command
line (Typer's runner): the lab's own processes are real, only the CLI's start-up is shared.
"""

from __future__ import annotations

import gzip
import json
import os
import smtplib
import threading
import time
import tomllib
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import httpx
import pytest
from typer.testing import CliRunner

from warroom.actions.contract import RunOptions, default_registry
from warroom.actions.runbook import load_runbooks, plan_from_diagnosis
from warroom.cli import app
from warroom.incident import RootCauseCandidate
from warroom.lab import comms_sink, deploy, faults, processes, serve_config
from warroom.lab import repo as shop_repo
from warroom.lab.client import LabClient
from warroom.lab.topology import SERVICES, LabPaths, read_state

pytestmark = [pytest.mark.lab, pytest.mark.timeout(300)]
Received = list[tuple[str, dict]]


class Recorder(BaseHTTPRequestHandler):
    """A loopback webhook receiver standing in for warroom serve's intake; keeps every body."""

    received: ClassVar[Received] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        type(self).received.append((self.path, json.loads(body)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        return None


def _warroom(*args: str) -> str:
    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, f"warroom {' '.join(args)}: {result.output}{result.exception!r}"
    return result.output


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LabPaths, Received]]:
    root = tmp_path_factory.mktemp("lab")
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    hook = f"http://127.0.0.1:{server.server_address[1]}/api/v1/alerts/alertmanager"
    paths = LabPaths(root)
    try:
        _warroom("lab", "up", "--dir", str(root), "--products=5000", "--timeline=compressed", "--alert-webhook", hook)
        yield paths, Recorder.received
    finally:
        CliRunner().invoke(app, ["lab", "down", "--dir", str(root)])
        server.shutdown()


def _wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def _hammer(port: int, outcomes: list[str], done: threading.Event) -> None:
    # A new connection for every request: a closed listener would show as ConnectError.
    while not done.is_set():
        try:
            outcomes.append(str(httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10).status_code))
        except httpx.HTTPError as exc:
            outcomes.append(type(exc).__name__)


def test_a_deploy_keeps_the_socket(lab: tuple[LabPaths, Received]) -> None:
    paths, _ = lab
    client = LabClient(paths)
    before = client.status()["services"]["gateway"]
    commit = shop_repo.commit_files(
        paths.repo,
        {"shop/gateway/README.md": "The gateway: the shop's public API. Deploys keep its socket.\n"},
        "Amara Okafor <amara.okafor@shop.example>",
        "gateway: a README for newcomers",
    )
    outcomes: list[str] = []
    done = threading.Event()
    hammer = threading.Thread(target=_hammer, args=(before["port"], outcomes, done))
    hammer.start()
    try:
        time.sleep(0.5)
        client.deploy("gateway", commit, deployed_by="test")
        time.sleep(0.5)
    finally:
        done.set()
        hammer.join(15)
    after = client.status()["services"]["gateway"]
    assert (after["commit"], after["port"]) == (commit, before["port"]) and after["pid"] != before["pid"]
    assert len(outcomes) > 5
    assert set(outcomes) == {"200"}, {o for o in outcomes if o != "200"}
    record = deploy.read_log(paths)[-1]
    assert (record.service, record.commit, record.kind) == ("gateway", commit, "deploy")
    assert [c.sha for c in record.commits] == [commit] and record.author == "Amara Okafor"


def test_the_shops_runbook_reverts_a_config_change_through_the_change_path(lab: tuple[LabPaths, Received]) -> None:
    """The first action the shop's runbook plans for the fault runs through warroom's http adapter,
    with the token from the environment file `lab up` wrote, and the lab records it as a change."""
    paths, _ = lab
    config = tomllib.loads(paths.serve_config.read_text())
    env = serve_config.read_env(paths)
    truth = faults.inject(paths, "slow_dependency")
    change = deploy.read_log(paths)[-1]
    candidate = RootCauseCandidate(
        rank=1, service="payment", fault_type="slow_dependency", indicator="", confidence=0.9, change_id=change.id
    )
    books = load_runbooks(config["actions"]["runbooks"], include_builtin=False)
    _, plan = plan_from_diagnosis([candidate], books, config["actions"]["vars"])
    adapter = default_registry().get(plan[0].parameters["adapter"])
    params = adapter.parse(plan[0].parameters["params"])
    assert not adapter.execute(params, RunOptions(env={})).ok  # no token, no change
    result = adapter.execute(params, RunOptions(env=env))
    assert result.ok, result.detail
    record = deploy.read_log(paths)[-1]
    assert (record.service, record.kind, record.deployed_by) == ("payment", "config", "warroom")
    assert record.description == 'Revert "payment: flush the ledger every 5 s"'
    assert LabClient(paths).status()["services"]["payment"]["commit"] == record.commit
    assert "flush_interval_ms: 20\n" in shop_repo.git(paths.repo, "show", f"{record.commit}:config/payment.yaml")
    # The incident over, `lab end` finds the change already undone and deploys HEAD as it is.
    _warroom("lab", "end", "slow_dependency", "--dir", str(paths.root))
    assert shop_repo.head(paths.repo) == record.commit and truth.commit is not None
    # The stakeholder channels of warroom.toml reach the lab's webhook and mail server.
    httpx.post(config["comms"]["channels"][0]["url"], json={"text": "update 1"}).raise_for_status()
    mail = config["comms"]["channels"][1]
    with smtplib.SMTP(mail["host"], mail["port"], timeout=10) as smtp:
        smtp.sendmail(mail["from"], mail["to"], "Subject: update 1\r\n\r\nThe shop is degraded.\r\n")
    assert len(list((paths.comms_received / "webhook").glob("*.json"))) == 1
    assert b"The shop is degraded." in comms_sink.received(paths.comms_received / "mail")[0].read_bytes()


def test_the_shops_runbook_blocks_an_attacks_networks_at_the_gateway(lab: tuple[LabPaths, Received]) -> None:
    """Credential stuffing's first action commits a block rule to the gateway's configuration and
    deploys it: the attack's network gets 403, the shop's customers do not; its undo lifts it."""
    paths, _ = lab
    config = tomllib.loads(paths.serve_config.read_text())
    env = serve_config.read_env(paths)
    candidate = RootCauseCandidate(
        rank=1, service="auth", fault_type="credential_stuffing", indicator="", confidence=0.9
    )
    books = load_runbooks(config["actions"]["runbooks"], include_builtin=False)
    measured = {"attack_networks": ["100.64.0.0/20"], "attack_networks_text": "100.64.0.0/20"}
    _, plan = plan_from_diagnosis([candidate], books, {**config["actions"]["vars"], **measured})
    assert plan[0].kind == "block_sources"
    adapter = default_registry().get(plan[0].parameters["adapter"])
    params = adapter.parse(plan[0].parameters["params"])
    options = RunOptions(env=env)
    result = adapter.execute(params, options)
    assert result.ok, result.detail
    record = deploy.read_log(paths)[-1]
    assert (record.service, record.kind, record.deployed_by) == ("gateway", "config", "warroom")
    assert "100.64.0.0/20" in shop_repo.git(paths.repo, "show", f"{record.commit}:config/gateway.yaml")
    port = LabClient(paths).status()["services"]["gateway"]["port"]

    def login_from(address: str) -> int:
        body = {"email": "someone@shop.example", "password": "wrong"}
        headers = {"x-forwarded-for": address}
        return httpx.post(f"http://127.0.0.1:{port}/api/login", json=body, headers=headers, timeout=10).status_code

    assert login_from("100.64.3.7") == 403
    assert login_from("198.18.0.9") != 403
    undone = adapter.undo(params, result, options)
    assert undone is not None and undone.ok, undone
    assert login_from("100.64.3.7") != 403
    assert deploy.read_log(paths)[-1].description.startswith("gateway: remove the block as rule warroom-auth")


def _fired(received: Received, alertname: str, service: str) -> bool:
    return any(
        path == "/api/v1/alerts/alertmanager"
        and payload["version"] == "4"
        and any(
            (a["status"], a["labels"].get("alertname"), a["labels"].get("service")) == ("firing", alertname, service)
            for a in payload["alerts"]
        )
        for path, payload in received
    )


def test_fault_to_alert_to_capture_to_down(lab: tuple[LabPaths, Received], tmp_path: Path) -> None:
    paths, received = lab
    # Healthy traffic flows end to end before anything breaks.
    _wait_for(lambda: '"http.response.status_code": 200' in paths.service_log("payment").read_text(), 90, "payments")
    assert not _fired(received, "ServiceDown", "payment")

    _warroom("lab", "break", "dependency_down", "--dir", str(paths.root))
    _wait_for(lambda: _fired(received, "ServiceDown", "payment"), 90, "Alertmanager to deliver payment's ServiceDown")

    out = tmp_path / "captures" / "payment-down"
    _warroom("lab", "capture", "--dir", str(paths.root), "--out", str(out), "--since", "3m", "--gzip")
    expected = {
        "metrics/prometheus.jsonl.gz",
        "traces/otlp-traces.jsonl.gz",
        "logs/otlp-logs.jsonl.gz",
        "logs/supervisor.log.gz",
        "deploys.jsonl",
        "repo.bundle",
        "prometheus/rules.yml",
    }
    captured = {str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()}
    assert expected <= captured
    # A service's log records are in the OTLP logs once, not also in a copy of its log file.
    assert not {f"logs/{service}.log.gz" for service in SERVICES} & captured
    # The truth sits beside the capture, never inside it.
    truth = json.loads((out.parent / "payment-down.truth.json").read_text())
    assert (truth["service"], truth["fault_type"], truth["change_kind"]) == ("payment", "dependency_down", "config")
    assert not any("truth" in p.name for p in out.rglob("*"))

    with gzip.open(out / "metrics/prometheus.jsonl.gz", "rt") as handle:
        rows = [json.loads(line) for line in handle]
    names = {row["metric"] for row in rows}
    assert {"http_requests_total", "http_request_duration_seconds_bucket", "db_client_connection_max", "up"} <= names
    # Every raw sample once, at its real scrape time: one up sample of payment per scrape, and the
    # last ones 0 after it was up (the window may reach back before the lab's start, when it was not).
    ups = [(r["timestamp"], r["value"]) for r in rows if (r["metric"], r["labels"].get("service")) == ("up", "payment")]
    assert ups == sorted(set(ups))
    values = [value for _, value in ups]
    last_up = max(i for i, value in enumerate(values) if value == 1)
    assert last_up < len(values) - 1 and set(values[last_up + 1 :]) == {0}, values
    alerts = sorted((out / "alerts").glob("*.json"))
    assert any(json.loads(p.read_bytes())["status"] == "firing" for p in alerts)
    deploys = [json.loads(line) for line in (out / "deploys.jsonl").read_text().splitlines()]
    assert deploys[-1]["commit"] == truth["commit"] and deploys[-1]["kind"] == "scale"
    with gzip.open(out / "traces/otlp-traces.jsonl.gz", "rt") as handle:
        spans = [
            span
            for line in handle
            for rs in json.loads(line)["resourceSpans"]
            for ss in rs["scopeSpans"]
            for span in ss["spans"]
        ]
    assert any(a["key"] == "db.query.text" for span in spans for a in span.get("attributes", []))

    recorded = [line.split() for line in paths.pids.read_text().splitlines()]
    state = read_state(paths)
    assert state is not None
    _warroom("lab", "down", "--dir", str(paths.root))
    assert read_state(paths) is None
    assert not [pid for pid, started, *_ in recorded if processes.start_time(int(pid)) == started]
    assert not Path(f"/sys/fs/cgroup/memory/warroom-lab-{state.supervisor_pid}").exists()
    assert not os.path.exists(paths.state)
