"""Bad input on the command line: one line naming what and where, exit code 2, no traceback,
and nothing already recorded is lost."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from support_bundle import write_bundle
from warroom.cli import app
from warroom.errors import BundleError
from warroom.sources.live import LiveError
from warroom.sources.snapshot import SourceRead
from warroom.store.repository import Store

runner = CliRunner()


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.output


def one_error_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    assert lines[0].startswith("error: ")
    assert "Traceback" not in output
    return lines[0]


@pytest.fixture
def db(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    store = Store(url)
    from warroom.incident import Incident, Severity

    store.create_incident(Incident(id="", title="earlier incident", severity=Severity.P3))
    store.close()
    return url


def assert_store_untouched(db: str) -> None:
    store = Store(db)
    assert [i.title for i in store.list_incidents()] == ["earlier incident"]
    store.close()


def test_unknown_workflow(tmp_path: Path, db: str) -> None:
    bundle = write_bundle(tmp_path / "b")
    code, output = invoke("respond", str(bundle), "--workflow", "no-such-flow", "--db", db)
    assert code == 2
    assert "unknown workflow 'no-such-flow'" in one_error_line(output)
    assert_store_untouched(db)


def test_missing_bundle_directory(tmp_path: Path, db: str) -> None:
    code, output = invoke("respond", str(tmp_path / "nowhere"), "--db", db)
    assert code == 2
    assert "not a directory" in one_error_line(output)
    assert_store_untouched(db)


def test_malformed_bundle_records_nothing(tmp_path: Path, db: str) -> None:
    bundle = write_bundle(tmp_path / "b", "csv")
    pl.read_csv(bundle / "metrics.csv").drop("service").write_csv(bundle / "metrics.csv")
    code, output = invoke("respond", str(bundle), "--db", db)
    assert code == 2
    assert (
        one_error_line(output) == f"error: {bundle / 'metrics.csv'}:1: field 'service': missing column(s) service; "
        "expected timestamp, service, metric, value"
    )
    assert_store_untouched(db)


def test_bundle_validate_reports_bad_timestamp(tmp_path: Path) -> None:
    bundle = write_bundle(tmp_path / "b", "csv")
    text = (bundle / "changes.csv").read_text().splitlines()
    text[2] = text[2].replace(text[2].split(",")[1], "31/31/2026")
    (bundle / "changes.csv").write_text("\n".join(text) + "\n")
    code, output = invoke("bundle", "validate", str(bundle))
    assert code == 2
    assert "changes.csv:3: field 'time': value '31/31/2026'" in one_error_line(output)


def test_workflow_validate_names_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "wf.yaml"
    path.write_text(
        "name: broken\nphases:\n  - id: a\n    agent: incident-commander\n  - id: b\n"
        '    decide:\n      - path: x\n        when: "signals.x >= 1"\n        agent: incident-commander\n'
    )
    code, output = invoke("workflow", "validate", str(path))
    assert code == 2
    line = one_error_line(output)
    assert f"{path}:6: field 'phases.1.decide': 'decide' needs exactly one path with 'default: true'" in line


@pytest.mark.parametrize(
    ("body", "where", "says"),
    [
        ("name: w\nphases:\n  - id: a\n    agent: no-such-agent\n", ":4: field 'phases.0.agent'", "unknown agent"),
        (
            "name: w\nphases:\n  - id: a\n    agent: incident-commander\n  - id: a\n    agent: incident-commander\n",
            ":5: field 'phases.1.id'",
            "duplicate phase id 'a'",
        ),
        (
            "name: w\nphases:\n  - id: a\n    decide:\n      - path: p\n        when: \"__import__('os')\"\n"
            "        agent: incident-commander\n      - path: d\n        default: true\n"
            "        agent: incident-commander\n",
            ":6: field 'phases.0.decide.0.when'",
            "condition may not use Call",
        ),
        ("name: w\nphases: [\n", ":3", "invalid YAML"),
        (
            "name: w\nphases:\n  - id: a\n    parallel: [incident-commander, incident-commander]\n",
            ":4: field 'phases.0.parallel.1'",
            "duplicate step id 'incident-commander'",
        ),
    ],
)
def test_workflow_spec_errors(tmp_path: Path, body: str, where: str, says: str) -> None:
    path = tmp_path / "wf.yaml"
    path.write_text(body)
    code, output = invoke("workflow", "validate", str(path))
    assert code == 2
    line = one_error_line(output)
    assert f"{path}{where}" in line and says in line, line


def test_unknown_incident(db: str) -> None:
    code, output = invoke("timeline", "INC-2099-999", "--db", db)
    assert code == 2
    assert "no incident 'INC-2099-999'" in one_error_line(output)


def test_a_real_process_prints_no_traceback(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "warroom", "bundle", "validate", str(tmp_path / "missing")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == f"error: {tmp_path / 'missing'}: not a directory (expected an incident bundle)"


def test_an_input_error_pickled_back_from_a_worker_keeps_its_class_and_fields() -> None:
    # a worker's failed read reaches the run's driver through pickling: the run_failed event
    # names each source that did not answer (LiveError.unanswered), and the message its file
    down = SourceRead(kind="prometheus", location="http://127.0.0.1:9", answered=False, detail="refused")
    live = pickle.loads(pickle.dumps(LiveError("no live source answered", unanswered=[down])))
    assert type(live) is LiveError and live.unanswered == [down] and str(live) == "no live source answered"
    bundle = pickle.loads(pickle.dumps(BundleError("bad row", file="/b/metrics.csv", line=3, field="value")))
    assert type(bundle) is BundleError and (bundle.file, bundle.line, bundle.field) == ("/b/metrics.csv", 3, "value")
    assert bundle.one_line() == "/b/metrics.csv:3: field 'value': bad row" == str(bundle)
