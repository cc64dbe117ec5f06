"""Validation at the source boundary (issue 13): each problem is an error naming file, line and field
(exit 2), or a named warning whose rows are dropped or repaired and which the run's limitations carry."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from support_bundle import FIRED, write_bundle
from warroom.agents.investigation import investigate
from warroom.cli import app
from warroom.errors import BundleError, InputError, TelemetryError
from warroom.incident import Incident, Severity
from warroom.sources.bundle import load_bundle
from warroom.sources.validate import Limits, Origin, Problem, validate_frame
from warroom.store.repository import Store

T = [FIRED - timedelta(minutes=m) for m in range(5)]
CSV = Origin("metrics.csv", first_line=2)


def metrics(values: list[float], times: list[datetime] | None = None, service: str = "checkout") -> pl.DataFrame:
    return pl.DataFrame(
        {
            "timestamp": (times or T)[: len(values)],
            "service": [service] * len(values),
            "metric": ["error_rate"] * len(values),
            "value": values,
        }
    )


def codes(warnings: list[Problem]) -> list[str]:
    return [p.code for p in warnings]


def test_non_finite_values_are_dropped_with_a_warning_naming_the_line() -> None:
    checked = validate_frame("metrics", metrics([0.1, float("nan"), float("inf"), 0.2]), CSV, FIRED)
    assert checked.frame.get_column("value").to_list() == [0.1, 0.2]
    (problem,) = checked.warnings
    assert problem.code == "non_finite" and problem.rows == 2 and problem.line == 3 and problem.field == "value"
    assert problem.limitation().startswith("metrics: 2 rows with a non-finite value")
    assert "metrics.csv:3" in problem.limitation()


def test_implausible_times_are_dropped_and_the_range_is_configurable(monkeypatch: pytest.MonkeyPatch) -> None:
    far = [T[0], datetime(9999, 1, 1, tzinfo=UTC), FIRED - timedelta(days=60)]
    checked = validate_frame("metrics", metrics([0.1, 0.2, 0.3], far), CSV, FIRED)
    assert codes(checked.warnings) == ["implausible_time"] and checked.frame.height == 2
    monkeypatch.setenv("WARROOM_DAYS_BEFORE_ALERT", "30")
    checked = validate_frame("metrics", metrics([0.1, 0.2, 0.3], far), CSV, FIRED)
    assert checked.frame.height == 1 and checked.warnings[0].rows == 2
    monkeypatch.setenv("WARROOM_DAYS_BEFORE_ALERT", "soon")
    with pytest.raises(InputError, match=r"\$WARROOM_DAYS_BEFORE_ALERT"):
        Limits.from_env()


def test_nothing_usable_left_is_an_error() -> None:
    with pytest.raises(TelemetryError, match=r"metrics\.csv: no usable rows left.*non-finite"):
        validate_frame("metrics", metrics([float("nan"), float("-inf")]), CSV, FIRED)


def test_duplicates_and_conflicting_samples() -> None:
    frame = metrics([0.1, 0.1, 0.5, 0.2], [T[0], T[0], T[0], T[1]])
    checked = validate_frame("metrics", frame, CSV, FIRED)
    assert codes(checked.warnings) == ["duplicate_rows", "duplicate_key"]
    assert checked.frame.get_column("value").to_list() == [0.1, 0.2]  # the first reading kept


def test_negative_span_durations_are_dropped() -> None:
    spans = pl.DataFrame(
        {
            "trace_id": ["t1", "t1"],
            "span_id": ["a", "b"],
            "parent_span_id": [None, "a"],
            "service": ["gateway", "checkout"],
            "operation": ["GET /", "SELECT"],
            "start_time": [T[1], T[1]],
            "end_time": [T[0], T[2]],
        }
    )
    checked = validate_frame("traces", spans, Origin("traces.parquet"), FIRED)
    assert codes(checked.warnings) == ["negative_duration"] and checked.frame.height == 1
    assert "row 2" in checked.warnings[0].message  # Parquet has no lines: rows are counted


def logs(levels: list[str], messages: list[str] | None = None, service: str = "checkout") -> pl.DataFrame:
    return pl.DataFrame(
        {
            "timestamp": T[: len(levels)],
            "service": [service] * len(levels),
            "level": levels,
            "message": messages or [f"line {i}" for i in range(len(levels))],
        }
    )


def test_log_levels_are_normalised_with_a_warning_and_unknown_ones_named() -> None:
    checked = validate_frame(
        "logs", logs(["error", "Warning", "INFO", "fatal", "verbose"]), Origin("l.jsonl", 1), FIRED
    )
    assert checked.frame.get_column("level").to_list() == ["ERROR", "WARN", "INFO", "ERROR", "verbose"]
    assert codes(checked.warnings) == ["level_spelling", "unknown_level"]
    assert checked.warnings[0].rows == 3 and checked.warnings[1].line == 5


def test_control_and_bidi_characters() -> None:
    spoofed = "checkout\u202egnp.exe"
    with pytest.raises(TelemetryError) as caught:
        validate_frame("logs", logs(["INFO", "INFO"], service=spoofed), Origin("logs.csv", 2), FIRED)
    line = caught.value.one_line()
    assert line.startswith("logs.csv:2: field 'service': value 'checkout\\u202egnp.exe' holds a control")
    assert "\u202e" not in line  # the error itself is safe to print
    messages = ["ok", "\x1b[31mred\x1b[0m alert", "evil \u202e txt", "stack\n\tat main()"]
    checked = validate_frame("logs", logs(["INFO"] * 4, messages), Origin("logs.csv", 2), FIRED)
    out = checked.frame.get_column("message").to_list()
    assert out[0] == "ok" and out[3] == "stack\n\tat main()"  # tabs and line breaks are text
    assert "\x1b" not in out[1] and "\u202e" not in out[2] and "\ufffd" in out[2]
    assert codes(checked.warnings) == ["unprintable_text"] and checked.warnings[0].rows == 2


def test_validated_frames_validate_clean() -> None:
    """Idempotence: what validation hands on passes it again without a warning."""
    messy = logs(["warn", "warn", "INFO"], ["a\x07", "a\x07", "b"])
    once = validate_frame("logs", messy, Origin(), FIRED)
    assert once.warnings
    assert validate_frame("logs", once.frame, Origin(), FIRED).warnings == []


def test_a_symlink_loop_or_an_unreadable_path_is_an_error_not_absent(tmp_path: Path) -> None:
    root = write_bundle(tmp_path / "b")
    (root / "metrics.parquet").unlink()
    (root / "metrics.parquet").symlink_to("metrics.parquet")
    with pytest.raises(BundleError, match=r"metrics\.parquet: cannot be read \(a symbolic link loop\)"):
        load_bundle(root)
    (root / "metrics.parquet").unlink()
    (root / "metrics.parquet").symlink_to("gone.parquet")
    with pytest.raises(BundleError, match="dangling symbolic link"):
        load_bundle(root)
    (root / "metrics.parquet").unlink()
    (root / "topology.yaml").mkdir()
    with pytest.raises(BundleError, match=r"topology\.yaml: expected a file, found a folder"):
        load_bundle(root)


def test_an_empty_after_folder_is_an_error(tmp_path: Path) -> None:
    root = write_bundle(tmp_path / "b")
    (root / "after" / "rollback").mkdir(parents=True)
    (root / "after" / "README.md").write_text("notes")  # a stray file is not telemetry
    with pytest.raises(BundleError, match=r"after/rollback: no telemetry"):
        load_bundle(root)


def test_respond_rejects_garbage_in_after_before_anything_is_recorded(tmp_path: Path) -> None:
    root = write_bundle(tmp_path / "b")
    (root / "after" / "rollback").mkdir(parents=True)
    (root / "after" / "rollback" / "metrics.parquet").write_bytes(os.urandom(300))
    url = f"sqlite:///{tmp_path / 'w.db'}"
    store = Store(url)
    store.create_incident(Incident(id="", title="earlier", severity=Severity.P3))
    store.close()
    done = CliRunner().invoke(app, ["respond", str(root), "--db", url])
    assert done.exit_code == 2
    assert done.output.strip().startswith(f"error: {root / 'after' / 'rollback' / 'metrics.parquet'}: cannot parse")
    assert [i.title for i in Store(url, create=False).list_incidents()] == ["earlier"]


def test_the_diagnosis_limitations_name_rows_dropped_at_the_boundary(tmp_path: Path) -> None:
    root = write_bundle(tmp_path / "b", "csv")
    text = (root / "metrics.csv").read_text().splitlines()
    text[5] = ",".join([*text[5].split(",")[:-1], "NaN"])
    (root / "metrics.csv").write_text("\n".join(text) + "\n")
    bundle = load_bundle(root)
    limitations = investigate(bundle).limitations
    assert any(t.startswith("metrics: 1 rows with a non-finite value") and "metrics.csv:6" in t for t in limitations)


def test_categorical_names_are_judged_by_the_rows_of_this_frame() -> None:
    """Categories are shared process-wide: a bad name another frame brought in is no error here."""
    pl.Series(["x" * 2000, "evil\u202e"]).cast(pl.Categorical)  # e.g. an earlier, rejected bundle
    clean = metrics([0.1, 0.2]).with_columns(pl.col("service").cast(pl.Categorical))
    assert validate_frame("metrics", clean, CSV, FIRED).warnings == []
    spoofed = metrics([0.1, 0.2, 0.3]).with_columns(
        pl.Series("service", ["checkout", "evil\u202e", "checkout"]).cast(pl.Categorical)
    )
    with pytest.raises(TelemetryError, match=r"metrics\.csv:3: field 'service'"):
        validate_frame("metrics", spoofed, CSV, FIRED)
