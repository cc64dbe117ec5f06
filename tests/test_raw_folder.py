"""Format v2's folder: files recognised by content, a manifest derived from the alert, paths checked."""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from support_bundle import FIRED, write_bundle
from support_events import otlp_logs_request, record_logs, write_lines
from warroom.cli import app
from warroom.errors import BundleError
from warroom.sources.bundle import BundleSource, load_bundle, validate_bundle


def alert_payload(service: str = "checkout", fired: datetime = FIRED) -> dict[str, object]:
    """An Alertmanager webhook payload (version 4) as Alertmanager sends it."""
    return {
        "version": "4",
        "groupKey": '{}:{alertname="CheckoutLatencyHigh"}',
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "warroom",
        "groupLabels": {"alertname": "CheckoutLatencyHigh"},
        "commonLabels": {"alertname": "CheckoutLatencyHigh", "service": service, "severity": "critical"},
        "commonAnnotations": {"summary": "checkout p99 above 2 s"},
        "externalURL": "http://alertmanager.local:9093",
        "alerts": [
            {
                "status": "firing",
                "labels": {"alertname": "CheckoutLatencyHigh", "service": service, "severity": "critical"},
                "annotations": {"summary": "checkout p99 above 2 s"},
                "startsAt": fired.isoformat(),
                "endsAt": "0001-01-01T00:00:00Z",
                "generatorURL": "http://prometheus.local:9090/graph",
                "fingerprint": "c0ffee1234567890",
            }
        ],
    }


def raw_folder(root: Path) -> Path:
    write_bundle(root, "jsonl")
    (root / "incident.yaml").unlink()
    return root


def test_the_alert_given_beside_the_folder_becomes_the_manifest(tmp_path: Path) -> None:
    root = raw_folder(tmp_path / "b")
    alert = tmp_path / "alert.json"
    alert.write_text(json.dumps(alert_payload()))
    telemetry = load_bundle(root, alert=alert)
    manifest = telemetry.manifest
    assert manifest.alert.name == "CheckoutLatencyHigh" and manifest.alert.service == "checkout"
    assert manifest.alert.fired_at == FIRED
    assert manifest.alert.labels["fingerprint"] == "c0ffee1234567890"
    assert manifest.title == "CheckoutLatencyHigh: checkout p99 above 2 s"
    window = manifest.effective_window()
    assert window.start < FIRED < window.end
    assert telemetry.metrics is not None and telemetry.metrics.height > 0


def test_an_alert_payload_inside_the_folder_is_recognised_by_its_content(tmp_path: Path) -> None:
    root = raw_folder(tmp_path / "b")
    (root / "notification-0001.json").write_text(json.dumps(alert_payload("gateway")))
    summary = validate_bundle(root)
    assert summary["manifest"] == "derived from the alert" and summary["alert"] == "CheckoutLatencyHigh"
    read_as = {entry["file"]: entry["read_as"] for entry in summary["files"]}
    assert read_as["notification-0001.json"].startswith("Alertmanager webhook payload")
    assert read_as["metrics.jsonl"] == "canonical table (format v1)"


def test_no_manifest_and_no_alert_names_what_to_give(tmp_path: Path) -> None:
    root = raw_folder(tmp_path / "b")
    with pytest.raises(BundleError, match="--alert FILE"):
        load_bundle(root)


def test_a_file_no_reader_knows_is_reported_not_silently_used(tmp_path: Path) -> None:
    root = raw_folder(tmp_path / "b")
    (root / "notes.bin").write_bytes(b"\x00\x01garbage")
    alert = tmp_path / "alert.json"
    alert.write_text(json.dumps(alert_payload()))
    entry = next(e for e in validate_bundle(root, alert=alert)["files"] if e["file"] == "notes.bin")
    assert entry["read_as"] == "not recognised"


def test_a_truncated_alert_in_the_folder_says_where_it_breaks(tmp_path: Path) -> None:
    """An alert payload cut short is reported as broken JSON at its line and column, not as a file
    of an unknown shape (an SRE fixes the file; 'no reader knows it' sends them looking for a reader)."""
    root = raw_folder(tmp_path / "b")
    (root / "notification-0001.json").write_text(json.dumps(alert_payload())[:40])
    alert = tmp_path / "alert.json"
    alert.write_text(json.dumps(alert_payload()))
    entry = next(e for e in validate_bundle(root, alert=alert)["files"] if e["file"] == "notification-0001.json")
    assert entry["read_as"] == "not recognised"
    assert entry["notes"] == ["ignored: not JSON (line 1, column 30: unterminated string starting)"]


def test_a_truncated_alert_given_beside_the_folder_is_one_line(tmp_path: Path) -> None:
    root = raw_folder(tmp_path / "b")
    alert = tmp_path / "alert.json"
    alert.write_text('{"alerts": [\n')
    result = CliRunner().invoke(app, ["bundle", "validate", str(root), "--alert", str(alert)])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        f"error: {alert}: not JSON (line 2, column 1: expecting value); expected an Alertmanager webhook payload"
    ]


def test_a_symlink_loop_is_an_error_not_an_absent_modality(tmp_path: Path) -> None:
    root = write_bundle(tmp_path / "b", "jsonl")
    (root / "logs.jsonl").unlink()
    os.symlink(root / "logs.jsonl", root / "logs.jsonl")  # points at itself
    with pytest.raises(BundleError, match=r"logs\.jsonl: cannot be read"):
        load_bundle(root)


def test_validate_prints_each_file_and_a_broken_alert_is_one_line(tmp_path: Path) -> None:
    root = raw_folder(tmp_path / "b")
    alert = tmp_path / "alert.json"
    alert.write_text(json.dumps(alert_payload()))
    result = CliRunner().invoke(app, ["bundle", "validate", str(root), "--alert", str(alert)])
    assert result.exit_code == 0, result.output
    assert "manifest: derived from the alert" in result.output and "metrics.jsonl: canonical table" in result.output
    broken = alert_payload()
    del broken["alerts"][0]["startsAt"]  # type: ignore[index]
    alert.write_text(json.dumps(broken))
    result = CliRunner().invoke(app, ["bundle", "validate", str(root), "--alert", str(alert)])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        f"error: {alert}: field 'alerts.0.startsAt': not an Alertmanager webhook payload: Field required"
    ]


def test_a_post_action_folder_with_otlp_logs_named_logs_jsonl_opens(tmp_path: Path) -> None:
    """A live snapshot's after/<kind>/otlp/logs.jsonl is an OTLP export, not the v1 logs table:
    opening the bundle probes it with the reader that recognises it (it made the snapshot unreadable
    once a second action had been re-queried)."""
    bundle = write_bundle(tmp_path / "b", "jsonl")
    records = record_logs("checkout", lambda log: log.error("pool exhausted"))
    write_lines(_mkdir(bundle / "after" / "restart" / "otlp") / "logs.jsonl", [otlp_logs_request(records)])
    source = BundleSource(bundle)
    assert source.recorded_actions() == ["restart"]


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True)
    return path
