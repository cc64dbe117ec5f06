"""Secret redaction: realistic secrets planted in log lines, command output and nested data."""

from __future__ import annotations

import json

import pytest

from warroom.redact import MASK, redact, redact_obj

# (text, the secret that must disappear, a piece of context that must survive)
PLANTED = [
    ("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJalrXUtnFEMI/K7MDENG", "aws_secret"),
    ("using key AKIAIOSFODNN7EXAMPLE for s3 upload", "AKIAIOSFODNN7EXAMPLE", "s3 upload"),
    ('POST /login {"username": "bob", "password": "correct-horse-battery"}', "correct-horse-battery", "bob"),
    ("GET /api Authorization: Bearer abc.def123.ghi456-jkl 200", "abc.def123.ghi456-jkl", "GET /api"),
    (
        "jwt=eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        "dozjgNryP4J3jVmNHl0w5N",
        "jwt=",
    ),
    ("posting to xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx", "xoxb-123456789012", "posting to"),
    (
        "webhook https://hooks.slack.com/services/T0AAAAAAA/B0BBBBBBB/abcdefghijklmnopqrstuvwx",
        "abcdefghijklmnopqrstuvwx",
        "webhook",
    ),
    ("db pool error dsn=postgresql://checkout:Tr0ub4dor&3@db.internal:5432/shop", "Tr0ub4dor", "db.internal:5432"),
    ("Server=db;Database=shop;User Id=app;Password=P@ssw0rd!2024;", "P@ssw0rd!2024", "Database=shop"),
    ("export GITHUB_TOKEN=ghp_0123456789abcdefghijABCDEFGHIJ012345", "ghp_0123456789abcdefghij", "export"),
    ("charge failed key sk_live_4eC39HqLyjWDarjtT1zdp7dc", "sk_live_4eC39HqLyjWDarjtT1zdp7dc", "charge failed"),
    ("curl -u admin:hunter22 https://x -H 'X-Api-Key: 9f8e7d6c5b4a39281706'", "9f8e7d6c5b4a39281706", "curl"),
    ("mysql --password s3cr3tpw --host db", "s3cr3tpw", "--host db"),
    ("redis://:R3disPass@cache:6379/0 timeout", "R3disPass", "cache:6379"),
    (
        "SENDGRID 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 connected",
        "TwL2iGABf9DHoTf",
        "connected",
    ),
]

PEM = """config loaded
-----BEGIN OPENSSH PRIVATE KEY-----
b3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQAAAAAAAAABAAAAMwAAAAtzc2gtZW
QyNTUxOQAAACDlD7Pz7M1d7oS6yKqkqK1b0mZrJqK2Jr4Qm1nq5pTz3wAAAJi2xz1Otsc9
-----END OPENSSH PRIVATE KEY-----
service started on :8080"""

HARMLESS = [
    "GET /api/checkout 200 12ms user_id=4821 order=A-1932",
    "connection pool exhausted: 20/20 in use, waited 5000 ms",
    "token refresh scheduled in 300s",
    "Basic authentication failed for user alice",
    "max_tokens=500 pool_size=20 timeout_ms=2500",
    "deploy abc1234 by jane: add order handler",
]


@pytest.mark.parametrize(("text", "secret", "context"), PLANTED)
def test_planted_secret_is_redacted(text, secret, context):
    out = redact(text)
    assert secret not in out
    assert MASK in out
    assert context in out


def test_private_key_block_is_removed_whole():
    out = redact(PEM)
    assert "b3BlbnNzaC1rZXkt" not in out and "QyNTUxOQ" not in out
    assert out.startswith("config loaded") and out.endswith("service started on :8080")


@pytest.mark.parametrize("text", HARMLESS)
def test_ordinary_lines_are_left_alone(text):
    assert redact(text) == text


def test_redaction_is_idempotent():
    for text, _, _ in PLANTED:
        once = redact(text)
        assert redact(once) == once


def test_nested_data_and_secret_named_keys():
    data = {
        "summary": "login with password=letmein123 failed",
        "headers": {"Authorization": "Basic YWRtaW46aHVudGVyMg==", "Accept": "json"},
        "client_secret": "abc",
        "webhook_url_env": "SLACK_WEBHOOK_URL",
        "items": [{"api_key": 12345678}, ("AKIAIOSFODNN7EXAMPLE",)],
        "count": 3,
    }
    out = redact_obj(data)
    text = json.dumps(out)
    for secret in ("letmein123", "YWRtaW46aHVudGVyMg", '"abc"', "12345678", "AKIAIOSFODNN7EXAMPLE"):
        assert secret not in text
    assert out["webhook_url_env"] == "SLACK_WEBHOOK_URL"  # a variable's name is not a secret
    assert out["headers"]["Accept"] == "json" and out["count"] == 3


def test_a_secret_deep_in_a_large_text_is_redacted():
    lines = [
        f"2026-03-01T12:00:{i % 60:02d}Z checkout INFO GET /api/checkout 200 {i % 97}ms user={i}" for i in range(20000)
    ]
    lines[777] = "ERROR connect failed dsn=postgresql://app:Zz9-secret-Zz9@db/shop"
    text = "\n".join(lines)
    out = redact(text)  # about 2 MB: its speed is measured by benchmarks, not asserted here
    assert "Zz9-secret-Zz9" not in out
