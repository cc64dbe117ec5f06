"""The incident bundle loads from CSV, JSON Lines and Parquet alike, and bad input is named precisely."""

from __future__ import annotations

import subprocess
from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest

from support_bundle import FIRED, write_bundle
from warroom.analysis.metrics import score_series
from warroom.errors import BundleError
from warroom.sources.bundle import load_bundle, validate_bundle
from warroom.sources.raw.folder import PROBE_ROWS


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_every_format_loads_the_same_data(tmp_path: Path, fmt: str) -> None:
    reference = load_bundle(write_bundle(tmp_path / "parquet", "parquet"))
    other = load_bundle(write_bundle(tmp_path / fmt, fmt))
    for name in ("metrics", "logs", "changes"):
        left, right = getattr(reference, name), getattr(other, name)
        assert left.columns == right.columns
        assert left.height == right.height
        assert left.get_column(left.columns[0]).to_list() == right.get_column(right.columns[0]).to_list()
    assert reference.metrics is not None and reference.metrics.schema["timestamp"] == pl.Datetime("us", "UTC")


def test_an_absent_modality_is_reported_not_fatal(tmp_path: Path) -> None:
    bundle = load_bundle(write_bundle(tmp_path / "b", with_logs=False))
    assert bundle.logs is None and "logs" in bundle.missing_modalities()


def test_epoch_timestamps_are_understood(tmp_path: Path) -> None:
    root = write_bundle(tmp_path / "b", "csv")
    frame = pl.read_csv(root / "changes.csv")
    fired = int(FIRED.timestamp())
    seconds = pl.Series([fired - 3600, fired - 3540])
    frame.with_columns(seconds.alias("time")).write_csv(root / "changes.csv")
    changes = load_bundle(root).changes
    assert changes is not None and changes.get_column("time").to_list() == [
        FIRED - timedelta(hours=1),
        FIRED - timedelta(minutes=59),
    ]


def test_a_git_bundle_file_is_cloned_into_a_checkout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    source = tmp_path / "src"
    source.mkdir()
    git = ["git", "-C", str(source), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run(["git", "init", "-q", str(source)], check=True)
    (source / "main.go").write_text("package main\n")
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "first"], check=True)
    root = write_bundle(tmp_path / "b")
    subprocess.run([*git, "bundle", "create", str(root / "repo.bundle"), "--all"], check=True, capture_output=True)
    repo = load_bundle(root).repo
    assert repo is not None and (repo / "main.go").read_text() == "package main\n"
    (root / "repo.bundle").write_bytes(b"not a bundle")
    # git's own complaint about the file, not the tail of its advice about access rights
    assert _error(root).endswith(
        "repo.bundle: not a readable git bundle ('repo.bundle' does not look like a v2 or v3 bundle file)"
    )


def _error(root: Path) -> str:
    with pytest.raises(BundleError) as caught:
        load_bundle(root)
    message = caught.value.one_line()
    assert "\n" not in message
    return message


def test_missing_manifest_and_no_alert(tmp_path: Path) -> None:
    root = write_bundle(tmp_path / "b")
    (root / "incident.yaml").unlink()
    message = _error(root)
    assert message.startswith(f"{root}: no incident.yaml and no alert:")
    assert "--alert FILE" in message


def test_manifest_field_errors_name_the_line(tmp_path: Path) -> None:
    root = write_bundle(tmp_path / "b")
    text = (root / "incident.yaml").read_text().replace("latency_p99_ms: 500", "latency_p99_ms: fast")
    (root / "incident.yaml").write_text(text)
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "fast" in t)
    message = _error(root)
    assert message.startswith(f"{root / 'incident.yaml'}:{line}: field 'slo.latency_p99_ms'")


def test_wrong_columns(tmp_path: Path) -> None:
    root = write_bundle(tmp_path / "b", "csv")
    pl.read_csv(root / "metrics.csv").rename({"value": "val"}).write_csv(root / "metrics.csv")
    message = _error(root)
    assert message.startswith(f"{root / 'metrics.csv'}:1: field 'value': missing column(s) value")


def test_unparseable_timestamp_names_file_line_and_field(tmp_path: Path) -> None:
    root = write_bundle(tmp_path / "b", "csv")
    lines = (root / "logs.csv").read_text().splitlines()
    cells = lines[5].split(",")
    cells[0] = "yesterday at noon"
    lines[5] = ",".join(cells)
    (root / "logs.csv").write_text("\n".join(lines) + "\n")
    assert _error(root).startswith(
        f"{root / 'logs.csv'}:6: field 'timestamp': value 'yesterday at noon' is not a valid timestamp"
    )


def test_a_null_in_a_required_column_says_so_not_none(tmp_path: Path) -> None:
    root = write_bundle(tmp_path / "b")
    metrics = pl.read_parquet(root / "metrics.parquet")
    metrics = metrics.with_columns(
        pl.when(pl.int_range(pl.len()) == 3).then(None).otherwise(pl.col("service")).alias("service")
    )
    metrics.write_parquet(root / "metrics.parquet")
    assert _error(root) == f"{root / 'metrics.parquet'}:4: field 'service': no value; expected text"


def test_empty_data(tmp_path: Path) -> None:
    root = write_bundle(tmp_path / "b", "csv")
    header = (root / "changes.csv").read_text().splitlines()[0]
    (root / "changes.csv").write_text(header + "\n")
    assert "changes.csv: no rows" in _error(root)


def test_a_ten_megabyte_log_line_is_refused(tmp_path: Path) -> None:
    root = write_bundle(tmp_path / "b", "jsonl")
    with (root / "logs.jsonl").open("a") as handle:
        handle.write('{"timestamp": "2026-01-15T14:30:00Z", "service": "checkout", "level": "ERROR", "message": "')
        handle.write("x" * 10_000_000)
        handle.write('"}\n')
    rows = sum(1 for _ in (root / "logs.jsonl").open())
    message = _error(root)
    assert message.startswith(f"{root / 'logs.jsonl'}:{rows}: field 'message': 10000000 bytes")


def test_broken_jsonl_line(tmp_path: Path) -> None:
    root = write_bundle(tmp_path / "b", "jsonl")
    with (root / "metrics.jsonl").open("a") as handle:
        handle.write("{not json\n")
    rows = sum(1 for _ in (root / "metrics.jsonl").open())
    assert _error(root).startswith(f"{root / 'metrics.jsonl'}:{rows}: cannot parse jsonl")


def test_after_folders_are_probed_on_load_read_on_first_use_and_validated_eagerly(tmp_path: Path) -> None:
    root = write_bundle(tmp_path / "b", "csv")
    (root / "after" / "rollback").mkdir(parents=True)
    (root / "after" / "restart").mkdir(parents=True)
    pl.read_csv(root / "metrics.csv").write_csv(root / "after" / "rollback" / "metrics.csv")
    (root / "after" / "restart" / "metrics.csv").write_text("timestamp,service\n")
    with pytest.raises(BundleError, match=r"restart/metrics\.csv: no rows"):
        load_bundle(root)  # garbage in an after/ folder is found before anything is recorded
    # a problem past the rows probed on load shows when the folder is read
    good = pl.read_csv(root / "metrics.csv")
    many = pl.concat([good] * (PROBE_ROWS // good.height + 2))
    bad_row = PROBE_ROWS + 5
    many = many.with_columns(
        pl.when(pl.int_range(pl.len()) == bad_row)
        .then(pl.lit("n/a"))
        .otherwise(pl.col("value").cast(pl.String))
        .alias("value")
    )
    many.write_csv(root / "after" / "restart" / "metrics.csv")
    bundle = load_bundle(root)
    assert bundle.recorded_actions() == ["restart", "rollback"]
    after = bundle.after("rollback").metrics
    assert after is not None and after.height > 0
    with pytest.raises(BundleError, match=f"restart/metrics\\.csv:{bad_row + 2}: field 'value'"):
        validate_bundle(root)


def test_only_the_last_two_after_folders_read_stay_in_memory(tmp_path: Path) -> None:
    root = write_bundle(tmp_path / "b", "csv")
    for kind in ("restart", "rollback", "scale_out"):
        (root / "after" / kind).mkdir(parents=True)
        pl.read_csv(root / "metrics.csv").write_csv(root / "after" / kind / "metrics.csv")
    after = load_bundle(root).after
    first = after("restart")
    assert after("restart") is first  # kept while recent
    after("rollback"), after("scale_out")
    third = after("scale_out")
    assert after("scale_out") is third
    assert after("restart") is not first  # dropped, read again


def test_repeated_keys_load_as_categories_and_analyses_give_text(tmp_path: Path) -> None:
    bundle = load_bundle(write_bundle(tmp_path / "b", "csv"))
    assert bundle.metrics is not None and bundle.logs is not None
    assert isinstance(bundle.metrics.schema["service"], pl.Categorical)
    assert isinstance(bundle.logs.schema["level"], pl.Categorical)
    window = bundle.manifest.effective_window()
    scored = score_series(bundle.metrics, None, window.start, window.end)
    assert scored.height and scored.schema["service"] == pl.String and scored.schema["metric"] == pl.String
