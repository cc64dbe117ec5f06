"""Secrets planted in a bundle's logs appear in no output file of `warroom respond` (issue 5)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "checkout-pool-exhaustion"

SECRETS = {
    "dsn": "postgresql://checkout:Pl4nted-Db-Passw0rd@db.internal:5432/shop",
    "aws": "AKIAZ7PLANTEDKEY4EXA",
    "aws_secret": "pLaNtEdSeCrEt/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "jwt": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJwbGFudGVkLXVzZXIifQ.c2lnbmF0dXJlLXBsYW50ZWQtaGVyZQ",
    "slack": "xoxb-998877665544-1122334455667-PlantedSlackTokenValue",
    "github": "ghp_PlantedGitHubToken0123456789abcdefgh",
    "password": "Planted-Hunter2-Password",
}
NEEDLES = [
    "Pl4nted-Db-Passw0rd",
    "AKIAZ7PLANTEDKEY4EXA",
    "pLaNtEdSeCrEt",
    "c2lnbmF0dXJlLXBsYW50ZWQ",
    "PlantedSlackTokenValue",
    "PlantedGitHubToken",
    "Planted-Hunter2-Password",
]


def plant(bundle: Path) -> int:
    logs = pl.read_parquet(bundle / "logs.parquet")
    errors = logs.filter((pl.col("service") == "checkout") & (pl.col("level") == "ERROR"))
    template = errors if errors.height else logs.filter(pl.col("service") == "checkout")
    base = template.head(60)
    lines = [
        f"db connect failed dsn={SECRETS['dsn']} after 5000ms",
        f"retrying with aws_access_key_id={SECRETS['aws']} aws_secret_access_key={SECRETS['aws_secret']}",
        f"upstream rejected Authorization: Bearer {SECRETS['jwt']}",
        f"alert hook failed token={SECRETS['slack']} github={SECRETS['github']}",
        f"login for admin with password={SECRETS['password']} refused",
    ]
    planted = base.with_columns(
        pl.Series("message", [lines[i % len(lines)] for i in range(base.height)]),
        (pl.col("timestamp") + timedelta(milliseconds=1)).alias("timestamp"),
    )
    pl.concat([logs, planted]).sort("timestamp").write_parquet(bundle / "logs.parquet")
    return planted.height


@pytest.mark.skipif(not EXAMPLE.is_dir(), reason="example bundle not present")
def test_planted_secrets_appear_in_no_output(tmp_path):
    bundle = tmp_path / "bundle"
    shutil.copytree(EXAMPLE, bundle)
    assert plant(bundle) > 0
    out = tmp_path / "out"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "warroom",
            "respond",
            str(bundle),
            "--out",
            str(out),
            "--json",
            "--db",
            f"sqlite:///{tmp_path / 'store.db'}",
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    files = [p for p in out.rglob("*") if p.is_file()]
    assert {"postmortem.md", "timeline.md", "context.json", "findings.json"} <= {p.name for p in files}
    texts = {str(p): p.read_text(errors="replace") for p in files}
    texts["stdout"] = proc.stdout
    texts["stderr"] = proc.stderr
    timeline = subprocess.run(
        [
            sys.executable,
            "-m",
            "warroom",
            "timeline",
            "--json",
            "--db",
            f"sqlite:///{tmp_path / 'store.db'}",
            _incident_id(proc.stdout, out),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    texts["timeline --json"] = timeline.stdout
    leaks = [(where, needle) for where, text in texts.items() for needle in NEEDLES if needle in text]
    assert not leaks, leaks
    # The planted lines did flow into the analysis (as redacted log templates), so the check has teeth.
    assert any("db connect failed" in text and "[REDACTED]" in text for text in texts.values())


def _incident_id(stdout: str, out: Path) -> str:
    found = re.search(r"INC-\d{4}-\d{3,}", stdout) or re.search(r"INC-\d{4}-\d{3,}", (out / "context.json").read_text())
    assert found, "no incident id in the output"
    return found.group(0)
