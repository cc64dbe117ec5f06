"""Secrets planted anywhere in a run never reach a report file."""

from __future__ import annotations

from pathlib import Path

from test_report_support import PLANTED_SECRET, PLANTED_TOKEN, build_record
from warroom.incident import Evidence, Finding
from warroom.redact import SEPARATOR, redact, redact_many, redact_tree
from warroom.report import REPORT_FILES, write_reports

PG_PASSWORD = "pgS3cretPassw0rd"
API_KEY = "sk-live-4f9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c"


def test_no_report_contains_a_planted_secret(tmp_path: Path) -> None:
    record = build_record()
    report = record.phases[1].steps[0].report
    assert report is not None
    # In a finding's detail, in evidence samples (the fixture's log line carries DB_PASSWORD=…),
    # in evidence values under a secret-named key, in the timeline, in the context, in a decision.
    report.findings.append(
        Finding(
            title="Connection string in error log",
            detail=f"dsn=postgresql://checkout:{PG_PASSWORD}@db:5432/orders token {PLANTED_TOKEN}",
            confidence=0.6,
            evidence=[
                Evidence(
                    source="logs",
                    query="checkout-service errors",
                    values={"api_key": API_KEY, "count": 3},
                    samples=[f"Authorization: Bearer {PLANTED_TOKEN}"],
                )
            ],
        )
    )
    record.timeline[0].summary = f"alert fired; webhook called with api_key={API_KEY}"
    record.context["communications"] = [{"text": f"retry with password={PLANTED_SECRET}"}]
    assert record.phases[1].decision is not None
    record.phases[1].decision.rationale = f"password: {PLANTED_SECRET}"

    written = write_reports(record, tmp_path)
    assert set(written) == set(REPORT_FILES)
    for name, path in written.items():
        text = path.read_text()
        for secret in (PLANTED_SECRET, PLANTED_TOKEN, PG_PASSWORD, API_KEY):
            assert secret not in text, f"{secret} leaked into {name}"
    # Redaction keeps the rest of the line readable.
    assert "[REDACTED]" in (tmp_path / "findings.json").read_text()
    assert "postgresql://checkout:[REDACTED]@db:5432/orders" in (tmp_path / "findings.json").read_text()
    assert "Connection string in error log" in (tmp_path / "workflow.md").read_text()


def test_batched_redaction_equals_one_call_per_string() -> None:
    strings = [
        "plain text",
        f"password={PLANTED_SECRET}",
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA",  # unterminated: swallows to the end
        "after the key",
        f"token {PLANTED_TOKEN}",
        "",
        "ends with password=",
        "next line",
        "has \x1e a separator char",
    ]
    batched = redact_many(strings)
    for s in strings:
        single = redact(s)
        # Batching may mask more (a secret seen in one string is masked in all), never less.
        assert batched[s] == single or "[REDACTED]" in batched[s], s
        for secret in (PLANTED_SECRET, PLANTED_TOKEN, "MIIEowIBAAKCAQEA"):
            assert secret not in batched[s]
    assert batched["plain text"] == "plain text"
    assert batched["after the key"] == "after the key"
    assert SEPARATOR not in "".join(batched.values())


def test_redact_tree_masks_values_under_secret_keys() -> None:
    tree = {"db": {"password": "x" * 12, "port": 5432}, "items": [{"secret": 42}, "ok"], "n": 1.5}
    out = redact_tree(tree)
    assert out == {"db": {"password": "[REDACTED]", "port": 5432}, "items": [{"secret": "[REDACTED]"}, "ok"], "n": 1.5}
