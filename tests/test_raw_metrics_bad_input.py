"""Bad raw Prometheus input: a one-line error naming the file, line and field, or a named
limitation with the offending samples left out — never used silently."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from test_raw_folder import alert_payload
from test_raw_metrics_readers import frame_of, read
from warroom.cli import app
from warroom.errors import BundleError

T0 = 1716822000  # 2024-05-27T15:00:00Z


def sample(t: float, metric: str, value: object, **labels: str) -> str:
    return json.dumps({"timestamp": t, "metric": metric, "labels": {"job": "checkout", **labels}, "value": value})


def counter_lines(values: list[object], metric: str = "http_requests_total", **labels: str) -> list[str]:
    return [sample(T0 + 15 * i, metric, v, status="200", **labels) for i, v in enumerate(values)]


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def test_nan_and_infinite_samples_are_dropped_and_named(tmp_path: Path) -> None:
    values: list[object] = [0, 150, "NaN", 450, "+Inf", 750, 900, "-Inf"]
    _, raw = read(write(tmp_path / "m.jsonl", counter_lines(values)))
    [limitation] = raw.limitations
    assert limitation.startswith("m.jsonl: 3 sample(s) not a finite number (not a measurement) dropped (first: ")
    assert 'http_requests_total{job="checkout",status="200"} at 2024-05-27T15:00:30+00:00' in limitation
    rates = frame_of(raw).filter(pl.col("metric") == "request_rate")["value"]
    assert rates.is_finite().all() and rates.to_list() == pytest.approx([10.0] * rates.len())


def test_samples_stamped_in_the_future_are_dropped_and_named(tmp_path: Path) -> None:
    now = datetime.now(UTC).timestamp()
    lines = [*counter_lines([0, 150, 300, 450]), sample(now + 86400 * 365, "http_requests_total", 600, status="200")]
    _, raw = read(write(tmp_path / "m.jsonl", lines))
    assert any(line.startswith("m.jsonl: 1 sample(s) stamped in the future (after ") for line in raw.limitations)
    assert frame_of(raw)["timestamp"].max() < datetime.now(UTC)  # type: ignore[operator]


def test_a_file_of_only_implausible_times_is_an_error_naming_why(tmp_path: Path) -> None:
    lines = [sample(i, "http_requests_total", 10 * i, status="200") for i in range(1, 6)]  # seconds after 1970
    with pytest.raises(BundleError, match=r"m\.jsonl: no usable Prometheus samples \(m\.jsonl: 5 sample\(s\) stamped "):
        read(write(tmp_path / "m.jsonl", lines))


def test_duplicate_samples_keep_the_first_and_say_which_kind(tmp_path: Path) -> None:
    lines = counter_lines([0, 150, 300, 450, 600])
    _, raw = read(write(tmp_path / "copies.jsonl", [*lines, lines[2]]))
    assert [line.split(" (first")[0] for line in raw.limitations] == [
        "copies.jsonl: 1 exact duplicate sample(s) dropped"
    ]
    conflicting = sample(T0 + 30, "http_requests_total", 999, status="200")
    _, raw = read(write(tmp_path / "conflict.jsonl", [*lines, conflicting]))
    assert raw.limitations[0].startswith(
        "conflict.jsonl: 1 second sample(s) of a series at the same time, 1 with another value: the first kept"
    )
    assert frame_of(raw).filter(pl.col("metric") == "request_rate")["value"].to_list() == pytest.approx([10.0] * 4)


def test_a_counter_that_only_decreases_is_not_used_as_a_counter(tmp_path: Path) -> None:
    lines = [*counter_lines([900, 700, 500, 300, 100]), *counter_lines([0, 15, 30, 45, 60], status_class="2xx")]
    _, raw = read(write(tmp_path / "m.jsonl", lines))
    [limitation] = raw.limitations
    assert limitation == (
        "m.jsonl: 1 counter series only ever decreasing, not used (not a counter): "
        'http_requests_total{job="checkout",status="200"}'
    )
    # only the well-behaved counter is in the rate: 1 request per second, not the "resets" of the other
    assert frame_of(raw).filter(pl.col("metric") == "request_rate")["value"].to_list() == pytest.approx([1.0] * 4)


def test_a_histogram_without_an_inf_bucket_gives_no_quantile_and_says_so(tmp_path: Path) -> None:
    buckets = [
        sample(T0 + 15 * i, "http_request_duration_seconds_bucket", (i * 15) * share, le=le)
        for i in range(5)
        for le, share in (("0.1", 5), ("0.5", 9))
    ]
    _, raw = read(write(tmp_path / "m.jsonl", [*counter_lines([0, 150, 300, 450, 600]), *buckets]))
    assert raw.limitations == [
        "m.jsonl: histogram http_request_duration_seconds_bucket has no +Inf bucket for 1 service/instance(s) "
        "(checkout): no quantile of it derived there",
    ]
    assert not any(m.startswith("latency") for m in frame_of(raw)["metric"].unique())


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("m.jsonl", [sample(T0, "x_total", 1), "{not json", sample(T0 + 15, "x_total", 2)], "m.jsonl:2: cannot parse"),
        (
            "m.jsonl",
            [sample(T0, "x_total", 1), sample(T0 + 15, "x_total", "lots")],
            "m.jsonl:2: field 'value': value 'lots' is not a number",
        ),
        (
            "m.jsonl",
            [sample(T0, "x_total", 1), sample("yesterday", "x_total", 2)],  # type: ignore[arg-type]
            "m.jsonl:2: field 'timestamp': value 'yesterday' is not a timestamp",
        ),
        (
            "m.csv",
            ["timestamp,__name__,job,value", f"{T0},x_total,checkout,1", f"{T0 + 15},,checkout,2"],
            "m.csv:3: field '__name__': no value (expected a metric name)",
        ),
        (
            "scrape.prom",
            ["# TYPE x counter", 'x_total{job="a"} 1 1716822000000', 'x_total{job="a" 2 1716822015000'],
            "scrape.prom:3: not a valid exposition",
        ),
        (
            "answer.json",
            ['{"status": "error", "errorType": "bad_data", "error": "parse error at char 5"}'],
            "answer.json: field 'status': a Prometheus error answer, not data (bad_data: parse error at char 5)",
        ),
    ],
)
def test_a_malformed_export_is_one_line_naming_file_line_and_field(
    tmp_path: Path, name: str, content: list[str], expected: str
) -> None:
    path = write(tmp_path / name, content)
    with pytest.raises(BundleError) as error:
        read(path)
    message = error.value.one_line()
    assert message.startswith(f"{tmp_path}/{expected}") and "\n" not in message, message


@pytest.mark.parametrize(
    ("name", "head"),
    [
        ("answer.json", b'{"status": "success", "data": {"resultType": "matrix", "result": [{"metric": {"job": "'),
        ("scrape.prom", b'# TYPE x counter\nx_total{job="'),
    ],
)
def test_a_byte_that_is_not_utf8_in_a_prometheus_file_is_one_line(tmp_path: Path, name: str, head: bytes) -> None:
    path = tmp_path / name
    path.write_bytes(head + b'a\xdfb"} 1 1716822000000\n')
    with pytest.raises(BundleError) as error:
        read(path)
    line = 2 if name.endswith(".prom") else 1
    assert error.value.one_line() == (
        f"{path}:{line}: not UTF-8 text (byte 0xdf); expected UTF-8, or UTF-16 with a byte-order mark"
    )


def test_bundle_validate_exits_2_on_one_line_and_shows_warnings_per_file(tmp_path: Path) -> None:
    folder = tmp_path / "incident"
    folder.mkdir()
    (folder / "alert.json").write_text(json.dumps(alert_payload(fired=datetime.fromtimestamp(T0 + 600, UTC))))
    lines = [sample(T0 + 15 * i, "http_requests_total", 150 * i, status="200") for i in range(40)]
    write(folder / "prometheus.jsonl", [*lines, sample(T0 + 30, "http_requests_total", "NaN", status="503")])
    result = CliRunner().invoke(app, ["bundle", "validate", str(folder)])
    assert result.exit_code == 0, result.output
    shown = " ".join(result.output.split())  # as printed, wrapped to the terminal
    assert "prometheus.jsonl: Prometheus samples (long form)" in shown
    assert "1 sample(s) not a finite number" in shown
    write(folder / "prometheus.jsonl", [*lines, "{broken"])
    result = CliRunner().invoke(app, ["bundle", "validate", str(folder)])
    assert result.exit_code == 2
    [line] = result.output.strip().splitlines()
    assert line.startswith(f"error: {folder / 'prometheus.jsonl'}:41: cannot parse")


def test_a_v1_shaped_file_of_raw_counters_is_screened_too(tmp_path: Path) -> None:
    table = tmp_path / "metrics.csv"
    rows = [
        f"{datetime.fromtimestamp(T0 + 15 * i, UTC).isoformat()},checkout,up_total,{v}" for i, v in enumerate([5, 4, 3])
    ]
    good = [
        f"{datetime.fromtimestamp(T0 + 15 * i, UTC).isoformat()},cart,http_requests_total,{15 * i}" for i in range(3)
    ]
    table.write_text("timestamp,service,metric,value\n" + "\n".join([*rows, *good]) + "\n")
    _, raw = read(table)
    assert raw.limitations[0].startswith("metrics.csv: 1 counter series only ever decreasing")
    assert set(frame_of(raw)["service"]) == {"cart"}
