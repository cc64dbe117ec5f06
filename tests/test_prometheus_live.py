"""The live Prometheus source against a real Prometheus scraping real loopback services (one
instrumented with prometheus_client, one with the OpenTelemetry SDK's Prometheus exporter) on a
compressed timeline: one scrape a second, a rate window of four seconds."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import polars as pl
import pytest

from support_prometheus import Load, load, opentelemetry_service, prometheus, prometheus_client_service, stop
from warroom.errors import InputError
from warroom.sources.config import PrometheusConfig
from warroom.sources.mapping.quantile import histogram_quantile
from warroom.sources.prometheus import MetricsRead, PrometheusMetrics
from warroom.sources.raw.folder import read_period
from warroom.sources.raw.reader import ReadOptions

FAILING = 0.2
LOADED_SECONDS = 10


class Live:
    def __init__(self, url: str, start: datetime, end: datetime, sent: Load) -> None:
        self.url, self.start, self.end = url, start, end
        self.rates = {shop: sent.rate(shop) for shop in ("checkout", "payment")}
        self.failing = {shop: sent.failing(shop) for shop in ("checkout", "payment")}
        self.config = PrometheusConfig(url=url, step="1s", selectors=['{job=~"checkout|payment"}'])
        self.read: MetricsRead = PrometheusMetrics(self.config).read_metrics(start, end)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    shops = [prometheus_client_service("checkout"), opentelemetry_service("payment")]
    folder = tmp_path_factory.mktemp("prometheus")
    try:
        with prometheus(shops, folder) as server, load(shops, FAILING, stop_after=60) as sent:
            start = datetime.now(UTC)
            time.sleep(LOADED_SECONDS)
            yield Live(server.url, start, datetime.now(UTC), sent)
    finally:
        stop(shops)


def _series(frame: pl.DataFrame, service: str, metric: str) -> pl.Series:
    return frame.filter((pl.col("service") == service) & (pl.col("metric") == metric)).get_column("value")


@pytest.mark.long  # reads a real Prometheus with samples pushed in: make test-long
def test_the_rules_run_on_the_server_and_only_derived_series_come_back(live: Live) -> None:
    frame = live.read.frame
    assert frame is not None
    for service in ("checkout", "payment"):  # prometheus_client names, OpenTelemetry's current names
        # what the load sent, as the server derived it from the counters it scraped
        rate = _series(frame, service, "request_rate")
        assert rate.len() >= 5
        assert float(rate.mean()) == pytest.approx(live.rates[service], rel=0.3)  # type: ignore[arg-type]
        errors = _series(frame, service, "error_rate")
        assert float(errors.mean()) == pytest.approx(live.failing[service], abs=0.1)  # type: ignore[arg-type]
        p99 = _series(frame, service, "latency_p99_ms")
        assert 5 < float(p99.median()) < 60  # type: ignore[arg-type]  # the /fail path waits 20 ms
        # known to the width of the bucket it falls in (bounds from the series discovery), in ms
        widths = frame.filter((pl.col("service") == service) & (pl.col("metric") == "latency_p99_ms"))["resolution"]
        assert widths.null_count() == 0 and 0 < float(widths.min()) <= float(widths.max()) <= 100  # type: ignore[arg-type]
    assert float(_series(frame, "checkout", "db_pool_size").max()) == 10  # type: ignore[arg-type]
    utilisation = _series(frame, "checkout", "db_pool_utilization")
    # 3 of 10 connections in use (4 while answering a failure); 0 before the first request set the gauge
    assert 0.3 <= float(utilisation.median()) <= float(utilisation.max()) <= 0.4  # type: ignore[arg-type]
    derived = {q.derives: q for q in live.read.queries if q.derives}
    assert {"request_rate", "error_rate", "latency_p99_ms", "db_pool_utilization"} <= set(derived)
    p99 = derived["latency_p99_ms"]
    # the scrape jobs name the services here: the query groups by `job` and names it `service`
    assert "sum by (job, instance, le) (rate(http_request_duration_seconds_bucket" in p99.text
    assert p99.source == "prometheus" and p99.location == f"{live.url}/api/v1/query_range"
    # no raw bucket series came back: every answer's series is named by what it derives or analysed by name
    answered = [json.loads(r.body) for r in live.read.raw_responses if r.endpoint.endswith("query_range")]
    names = {item["metric"].get("__name__") for a in answered for item in a["data"]["result"]}
    assert not any(str(n).endswith("_bucket") for n in names)


@pytest.mark.long  # reads a real Prometheus with samples pushed in: make test-long
def test_a_snapshot_of_the_answers_replays_to_the_same_canonical_series(live: Live, tmp_path: Path) -> None:
    for response in live.read.raw_responses:
        (tmp_path / response.name).write_bytes(response.body)
    replayed = read_period(tmp_path, ReadOptions()).validated(datetime.now(UTC)).telemetry.metrics
    assert replayed is not None and live.read.frame is not None
    order = ["service", "metric", "instance", "timestamp"]

    def plain(frame: pl.DataFrame) -> pl.DataFrame:
        return frame.with_columns(pl.col(pl.Categorical).cast(pl.String)).sort(order)

    assert plain(replayed).equals(plain(live.read.frame))


def _points(frame: pl.DataFrame, metric: str) -> pl.DataFrame:
    rows = frame.filter((pl.col("service") == "checkout") & (pl.col("metric") == metric))
    return rows.group_by("timestamp").agg(pl.col("value").mean())


@pytest.mark.long  # reads a real Prometheus with samples pushed in: make test-long
def test_the_offline_rules_mean_what_their_promql_means(live: Live) -> None:
    """Raw series pulled as they are and derived offline agree with the server's derivation."""
    params = {
        "query": '{__name__=~"http_requests_total|http_request_duration_seconds_bucket", job="checkout"}',
        "start": f"{live.start.timestamp():.3f}",
        "end": f"{live.end.timestamp():.3f}",
        "step": "1",
    }
    raw = httpx.post(f"{live.url}/api/v1/query_range", data=params).json()
    from warroom.sources.raw.prometheus_api import answer_read

    offline = answer_read(raw, Path("raw.json"), ReadOptions())
    frame = pl.concat([t.frame for t in offline.tables], how="diagonal_relaxed")
    assert live.read.frame is not None
    server = live.read.frame.with_columns(pl.col(pl.Categorical).cast(pl.String))
    for metric, tolerance in (("request_rate", 0.15), ("error_rate", 0.35), ("latency_p50_ms", 0.35)):
        # over the same times: the server's rate extrapolates to the window's edges, ours does not,
        # so single points differ by a scrape's worth; their means agree
        # after the first window: there the server extrapolates from the series' start, we do not
        both = _points(frame, metric).join(_points(server, metric), on="timestamp", suffix="_server")
        both = both.filter(pl.col("timestamp") > both.get_column("timestamp").min() + timedelta(seconds=4))
        assert both.height >= 3, metric
        ours, theirs = float(both.get_column("value").mean()), float(both.get_column("value_server").mean())  # type: ignore[arg-type]
        assert abs(ours - theirs) <= tolerance * theirs, (metric, ours, theirs)


@pytest.mark.long  # reads a real Prometheus with samples pushed in: make test-long
def test_histogram_quantile_is_prometheus_own_interpolation(live: Live) -> None:
    at = (live.end - timedelta(seconds=2)).timestamp()
    rates = 'sum by (le) (rate(http_request_duration_seconds_bucket{job="checkout"}[4s]))'
    buckets = httpx.post(f"{live.url}/api/v1/query", data={"query": rates, "time": at}).json()["data"]["result"]
    frame = pl.LazyFrame(
        {
            "g": [0] * len(buckets),
            "le": [float(b["metric"]["le"]) for b in buckets],
            "value": [float(b["value"][1]) for b in buckets],
        }
    )
    for q in (0.5, 0.9, 0.99):
        expected = httpx.post(
            f"{live.url}/api/v1/query", data={"query": f"histogram_quantile({q}, {rates})", "time": at}
        ).json()["data"]["result"][0]["value"][1]
        ours = histogram_quantile(q, frame, ["g"]).collect().get_column("value")[0]
        assert ours == pytest.approx(float(expected), rel=1e-9), q


@pytest.mark.long  # reads a real Prometheus with samples pushed in: make test-long
def test_a_budget_names_what_it_left_out(live: Live) -> None:
    small = PrometheusConfig(url=live.url, step="1s", max_series=3, selectors=['{job=~"checkout|payment"}'])
    read = PrometheusMetrics(small).read_metrics(live.start, live.end)
    assert read.frame is not None
    assert read.frame.get_column("metric").cast(pl.String).unique().len() <= 3
    [budget] = [line for line in read.limitations if "budget" in line]
    assert "max_series 3" in budget and "left out" in budget and "latency_p99_ms" in budget


def test_an_unreachable_prometheus_is_one_line_and_a_failed_prerequisite() -> None:
    gone = PrometheusMetrics(PrometheusConfig(url="http://127.0.0.1:9", timeout_s=1))
    [check] = gone.prerequisites()
    assert not check.ok and "127.0.0.1:9" in check.detail
    with pytest.raises(InputError, match=r"^http://127\.0\.0\.1:9: cannot reach Prometheus"):
        gone.read_metrics(datetime.now(UTC) - timedelta(minutes=5), datetime.now(UTC))


def test_headers_come_from_the_environment() -> None:
    config = PrometheusConfig(url="http://x", headers_env={"X-Scope-OrgID": "TENANT"}, bearer_token_env="PROM_TOKEN")
    assert config.headers({"TENANT": "shop", "PROM_TOKEN": "s3cret"}) == {
        "X-Scope-OrgID": "shop",
        "Authorization": "Bearer s3cret",
    }
    with pytest.raises(InputError, match="environment variable PROM_TOKEN is not set"):
        config.headers({"TENANT": "shop"})
