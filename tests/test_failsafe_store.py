"""The store's own failures give one line and exit 2; read-only commands never create a store; and
no secret from a bundle reaches the database file (issue 13)."""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import polars as pl
import pytest
import yaml
from typer.testing import CliRunner

from support_bundle import write_bundle
from warroom.cli import app
from warroom.incident import Incident, Severity
from warroom.store import repository
from warroom.store.repository import Store

cli = CliRunner()


def one_error(args: list[str]) -> str:
    done = cli.invoke(app, args)
    assert done.exit_code == 2, done.output
    lines = [line for line in done.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in done.output, done.output
    return lines[0]


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("mysql://u:p@localhost/db", "unsupported store URL scheme 'mysql'"),
        ("not a url", "is not a database URL"),
        ("postgresql+nosuchdriver://u@localhost/db", "cannot use store URL"),
    ],
)
def test_bad_store_urls(url: str, says: str) -> None:
    assert says in one_error(["incidents", "list", "--db", url])


def test_corrupt_and_foreign_files(tmp_path: Path, bundle_dir: Path) -> None:
    corrupt = tmp_path / "corrupt.db"
    corrupt.write_bytes(os.urandom(4096))
    for args in (["incidents", "list"], ["respond", str(bundle_dir)]):
        line = one_error([*args, "--db", f"sqlite:///{corrupt}"])
        assert line == f"error: {corrupt}: not a readable SQLite database (corrupt, or another kind of file)"
    empty = tmp_path / "empty.db"
    empty.touch()
    assert "not a warroom store" in one_error(["timeline", "INC-2026-001", "--db", f"sqlite:///{empty}"])
    assert empty.stat().st_size == 0


def test_read_only_commands_never_create_a_store(tmp_path: Path) -> None:
    missing = tmp_path / "no" / "such" / "dir" / "w.db"
    for args in (["incidents", "list"], ["incidents", "show", "INC-1"], ["timeline", "INC-1"], ["resume", "INC-1"]):
        assert "no store here" in one_error([*args, "--db", f"sqlite:///{missing}"])
    assert not (tmp_path / "no").exists()


def test_a_store_that_cannot_be_created_is_one_line(tmp_path: Path, bundle_dir: Path) -> None:
    (tmp_path / "file").write_text("x")
    line = one_error(["respond", str(bundle_dir), "--db", f"sqlite:///{tmp_path / 'file' / 'sub' / 'w.db'}"])
    assert "cannot create the store's directory" in line


def test_a_locked_store_is_one_line_and_loses_nothing(
    tmp_path: Path, bundle_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "w.db"
    store = Store(f"sqlite:///{path}")
    first = store.create_incident(Incident(id="", title="earlier", severity=Severity.P3))
    store.close()
    monkeypatch.setattr(repository, "BUSY_TIMEOUT_MS", 200)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")  # another process holds the write lock
    try:
        line = one_error(["respond", str(bundle_dir), "--db", f"sqlite:///{path}"])
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert "locked by another process" in line
    assert [i.id for i in Store(f"sqlite:///{path}", create=False).list_incidents()] == [first.id]


# The six kinds of secret the issue found in the store, as they appear in real logs and change notes.
SECRETS = {
    "aws_access_key": "AKIAZ3MQ4XKQ7V2LFN3B",
    "aws_secret": "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",
    "github_token": "ghp_4Fz9QmT2vXw8Lk3Jd7Rn5Bc1Yh6Gp0Sa2Ue4",
    "slack_token": "xoxb-2948571036-8837461029384-QWs8Df7Gh6Jk5Lz4Xc3Vb2Nm",
    "pg_password": "Pg-S3cr3t-Passw0rd-77",
    "pem_body": "MIIEpAIBAAKCAQEAw8Zz1q2a3b4c5d6e7f8g9h0iJkLmNoPqRsTuVwXyZ",
    "jwt": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJ1LTQyMDMiLCJyb2xlIjoiYWRtaW4ifQ."
    "c2lnbmF0dXJlX29mX3RoZV9qd3Q",
}


def plant(bundle: Path) -> None:
    s = SECRETS
    pem = f"-----BEGIN RSA PRIVATE KEY-----\n{s['pem_body']}\n-----END RSA PRIVATE KEY-----"
    logs = pl.read_parquet(bundle / "logs.parquet")
    lines = [
        f"boto: using AWS_ACCESS_KEY_ID={s['aws_access_key']} aws_secret_access_key={s['aws_secret']}",
        f"git clone https://x-access-token:{s['github_token']}@github.com/shop/checkout failed",
        f"slack notify failed token={s['slack_token']}",
        f"acquire db conn: dial postgresql://checkout:{s['pg_password']}@db:5432/orders timeout",
        f"loaded signing key {pem}",
        f"rejected request Authorization: Bearer {s['jwt']}",
    ]
    planted = pl.DataFrame(
        {
            "timestamp": logs["timestamp"].head(len(lines)),
            "service": ["checkout"] * len(lines),
            "level": ["ERROR"] * len(lines),
            "message": lines,
            "trace_id": [f"s{i}" for i in range(len(lines))],
            "instance": ["checkout-0"] * len(lines),
        },
        schema=logs.schema,
    )
    pl.concat([logs, planted]).write_parquet(bundle / "logs.parquet")
    changes = pl.read_parquet(bundle / "changes.parquet")
    changes.with_columns(
        pl.lit(
            f"rotate creds; DATABASE_URL=postgresql://checkout:{s['pg_password']}@db/orders {s['github_token']}"
        ).alias("description")
    ).write_parquet(bundle / "changes.parquet")
    manifest = yaml.safe_load((bundle / "incident.yaml").read_text())
    manifest["alert"]["summary"] += f" (slack token {s['slack_token']}, jwt {s['jwt']})"
    manifest["title"] += f" password={s['pg_password']}"
    manifest["alert"]["labels"] = {"deploy_key": s["aws_access_key"], "aws_secret_access_key": s["aws_secret"]}
    manifest["symptoms"].append(f"signing key leaked: {pem}")
    (bundle / "incident.yaml").write_text(yaml.safe_dump(manifest))


WORKFLOW = {
    "name": "secrets",
    "phases": [
        {"id": "assess", "agent": "incident-commander"},
        {"id": "deep", "parallel": ["log-analysis-specialist", "code-explorer", "security-incident-analyst"]},
        {"id": "plan", "agent": "incident-resolution-coordinator"},
    ],
}


def test_no_planted_secret_reaches_the_database_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bundle = write_bundle(tmp_path / "b")
    plant(bundle)
    workflow = tmp_path / "wf.yaml"
    workflow.write_text(yaml.safe_dump(WORKFLOW))
    db = tmp_path / "store.db"
    done = cli.invoke(app, ["respond", str(bundle), "-w", str(workflow), "--json", "--db", f"sqlite:///{db}"])
    assert done.exit_code in (0, 3), done.output[-2000:]
    assert json.loads(done.stdout)["status"] in ("diagnosed", "cause_not_established")
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("store.db*"))  # the file, its WAL and shared memory
    for name, secret in SECRETS.items():
        assert secret.encode() not in raw, name
    assert b"[REDACTED]" in raw  # the secret-bearing strings did reach the store, masked
    assert b"postgresql://checkout:[REDACTED]@db" in raw  # redaction keeps the rest of the line readable
