"""Prometheus samples in every shape are recognised by their content and read to the same series."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from warroom.sources.raw.defaults import opening_alert
from warroom.sources.raw.formats import recognise
from warroom.sources.raw.reader import RawRead, ReadOptions

FIXTURES = Path(__file__).parent / "fixtures" / "raw" / "metrics"
LONG_FORMS = ("query_range.json", "samples-labels.jsonl", "samples-columns.csv", "samples.parquet")


def read(path: Path, options: ReadOptions | None = None) -> tuple[str, RawRead]:
    reader = recognise(path)
    assert reader is not None, path
    return reader.name, reader.read(path, options or ReadOptions())


def frame_of(raw: RawRead) -> pl.DataFrame:
    return pl.concat([t.frame for t in raw.tables], how="diagonal_relaxed").with_columns(
        pl.col(pl.Categorical).cast(pl.String)
    )


def values(frame: pl.DataFrame, metric: str, service: str = "checkout") -> pl.Series:
    return frame.filter((pl.col("metric") == metric) & (pl.col("service") == service)).sort("timestamp")["value"]


@pytest.mark.parametrize(
    ("name", "reader"),
    [
        ("query_range.json", "Prometheus HTTP API answer"),
        ("query.json", "Prometheus HTTP API answer"),
        ("samples-labels.jsonl", "Prometheus samples (long form)"),
        ("samples-columns.csv", "Prometheus samples (long form)"),
        ("samples.parquet", "Prometheus samples (long form)"),
        ("checkout-2024-05-27T15-00-00Z.prom", "Prometheus text exposition"),
        ("cart.openmetrics", "Prometheus text exposition"),
    ],
)
def test_each_shape_is_recognised_by_its_content(name: str, reader: str, tmp_path: Path) -> None:
    renamed = tmp_path / f"export{Path(name).suffix}"  # the name says nothing; the content does
    shutil.copy(FIXTURES / name, renamed)
    found = recognise(renamed)
    assert found is not None and found.name == reader


def test_the_long_forms_and_the_api_answer_give_the_same_canonical_series() -> None:
    frames = {name: frame_of(read(FIXTURES / name)[1]).sort("metric", "instance", "timestamp") for name in LONG_FORMS}
    reference = frames["query_range.json"]
    assert {"request_rate", "error_rate", "latency_p50_ms", "latency_p99_ms"} <= set(reference["metric"])
    for name, frame in frames.items():
        assert frame.equals(reference), name


def test_the_api_answer_derives_rates_ratios_and_quantiles_with_their_promql() -> None:
    _, raw = read(FIXTURES / "query_range.json")
    frame = frame_of(raw)
    assert 10 < float(values(frame, "request_rate").median()) < 60  # type: ignore[arg-type]
    assert 0 < float(values(frame, "error_rate").median()) < 0.4  # type: ignore[arg-type]
    queries = {t.query.derives: t.query for t in raw.tables}
    # the services are named by the scrape job here: grouped by it, then named `service`
    text = queries["request_rate"].text
    assert "sum by (job, instance) (rate(http_requests_total{service=" in text and 'job!=""}[4s]' in text
    assert '"service", "$1", "job", "(.*)"' in text and text.endswith('"__name__", "request_rate", "", "")')
    assert queries["request_rate"].source == "bundle"
    assert queries["error_rate"].location.endswith("query_range.json")
    assert raw.notes[0].startswith("Prometheus matrix answer: 11 series (2 counter, 9 histogram bucket)")


def test_a_scrape_without_timestamps_takes_its_time_and_job_from_the_file_name() -> None:
    _, raw = read(FIXTURES / "checkout-2024-05-27T15-00-00Z.prom")
    frame = frame_of(raw)
    assert set(frame["timestamp"]) == {datetime(2024, 5, 27, 15, 0, tzinfo=UTC)}
    assert set(frame["service"]) == {"checkout"}
    assert "a scrape without timestamps: stamped with the time in its name" in raw.notes
    # one scrape: the pool's gauges are derived, the counters cannot be, and that is said
    assert float(values(frame, "db_pool_utilization")[0]) == pytest.approx(0.3)
    assert any("series with one sample: no rate derived" in line for line in raw.limitations)


def test_one_scrape_of_only_counters_and_histograms_says_why_nothing_was_derived() -> None:
    _, raw = read(FIXTURES / "payment-1716822000.prom")  # the OpenTelemetry exporter's names
    assert not raw.tables  # target_info is metadata, every other series is cumulative
    assert raw.notes[0].startswith("Prometheus text exposition: 23 series (4 counter, 18 histogram bucket, 1 metadata)")
    assert raw.limitations == [
        "payment-1716822000.prom: 22 counter or histogram series with one sample: no rate derived "
        "from them (a rate needs two samples of a series in the same file)"
    ]


def test_openmetrics_scrapes_one_after_another_are_one_series() -> None:
    _, raw = read(FIXTURES / "cart.openmetrics")
    frame = frame_of(raw)
    assert values(frame, "request_rate", "cart").to_list() == pytest.approx([11.0, 11.0])  # 165 per 15 s
    assert values(frame, "error_rate", "cart").to_list() == pytest.approx([15 / 165] * 2)
    # per 15 s: 10 observations at or under 0.1 s, 2 in (0.1, 0.5]
    assert values(frame, "latency_p50_ms", "cart").to_list() == pytest.approx([60.0, 60.0])
    assert values(frame, "latency_p99_ms", "cart").to_list() == pytest.approx([476.0, 476.0])


def test_gzip_compressed_exports_are_read_as_what_they_hold(tmp_path: Path) -> None:
    import gzip

    packed = tmp_path / "capture.jsonl.gz"
    packed.write_bytes(gzip.compress((FIXTURES / "samples-labels.jsonl").read_bytes()))
    name, raw = read(packed)
    assert name == "Prometheus samples (long form)"
    reference = frame_of(read(FIXTURES / "samples-labels.jsonl")[1]).sort("metric", "instance", "timestamp")
    assert frame_of(raw).sort("metric", "instance", "timestamp").equals(reference)


def test_a_v1_metrics_table_stays_v1_unless_its_names_are_raw(tmp_path: Path) -> None:
    table = tmp_path / "metrics.csv"
    table.write_text(
        "timestamp,service,metric,value\n2024-05-27T15:00:00Z,checkout,error_rate,0.01\n"
        "2024-05-27T15:00:15Z,checkout,error_rate,0.02\n"
    )
    assert read(table)[0] == "canonical table (format v1)"
    table.write_text(
        "timestamp,service,metric,value\n2024-05-27T15:00:00Z,checkout,http_requests_total,100\n"
        "2024-05-27T15:00:15Z,checkout,http_requests_total,250\n"
    )
    name, raw = read(table)
    assert name == "Prometheus samples (long form)"
    assert values(frame_of(raw), "request_rate").to_list() == [10.0]


def test_an_alerts_series_gives_the_alert_that_fired(tmp_path: Path) -> None:
    capture = tmp_path / "alerts.jsonl"
    labels = {"alertname": "CheckoutErrors", "service": "checkout", "severity": "critical"}
    lines = [
        json.dumps(
            {
                "timestamp": 1716822000 + 15 * i,
                "metric": "ALERTS",
                "labels": {**labels, "alertstate": state},
                "value": 1,
            }
        )
        for i, state in enumerate(["pending", "pending", "firing", "firing"])
    ]
    capture.write_text("\n".join(lines) + "\n")
    _, raw = read(capture)
    [alert] = raw.alerts
    assert alert.name == "CheckoutErrors" and alert.service == "checkout"
    assert alert.fired_at == datetime.fromtimestamp(1716822030, UTC)
    assert alert.labels["severity"] == "critical" and alert.labels["source"] == "prometheus"
    assert not raw.tables  # ALERTS is not a measurement


def test_an_alert_firing_before_the_data_began_then_and_one_that_stops_resolved(tmp_path: Path) -> None:
    # A capture that begins during an earlier incident: its alert fires from the first sample on,
    # but ALERTS_FOR_STATE holds when it became active; its series stops while the data
    # goes on (it resolved). A later alert fires to the end.
    start = 1716822000
    old = {"alertname": "HighErrorRatio", "service": "gateway"}
    new = {"alertname": "LoginFailureRatio", "service": "auth"}
    rows = []
    for i in range(40):
        t = start + 15 * i
        rows.append({"timestamp": t, "metric": "up", "labels": {"job": "gateway"}, "value": 1})
        if i < 20:
            rows.append({"timestamp": t, "metric": "ALERTS", "labels": {**old, "alertstate": "firing"}, "value": 1})
            rows.append({"timestamp": t, "metric": "ALERTS_FOR_STATE", "labels": old, "value": start - 1800})
        if i >= 30:
            rows.append({"timestamp": t, "metric": "ALERTS", "labels": {**new, "alertstate": "firing"}, "value": 1})
            rows.append({"timestamp": t, "metric": "ALERTS_FOR_STATE", "labels": new, "value": start + 15 * 29})
    capture = tmp_path / "prometheus.jsonl"
    capture.write_text("".join(json.dumps(r) + "\n" for r in rows))
    _, raw = read(capture)
    earlier, later = raw.alerts
    assert earlier.name == "HighErrorRatio" and earlier.fired_at == datetime.fromtimestamp(start - 1800, UTC)
    assert earlier.resolved_at == datetime.fromtimestamp(start + 15 * 19, UTC)
    assert later.name == "LoginFailureRatio" and later.resolved_at is None
    # one that began inside the data began at its first firing sample (activeAt is when it went pending)
    assert later.fired_at == datetime.fromtimestamp(start + 15 * 30, UTC)
    data_from = datetime.fromtimestamp(start, UTC)
    assert opening_alert([earlier, later], tmp_path, data_from) is later
    # with both firing, the one that began inside the data still opens it
    assert opening_alert([earlier.model_copy(update={"resolved_at": None}), later], tmp_path, data_from) is later
