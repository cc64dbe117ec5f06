"""Each shipped mapping rule set derives the canonical series from its exporter's names; a user's
rules win for what they record; unmapped series are analysed by name."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest

from test_raw_metrics_readers import FIXTURES, frame_of, read
from warroom.errors import BundleError
from warroom.sources.mapping.rules import SHIPPED, load_rule_set, load_rules
from warroom.sources.raw.reader import ReadOptions


def derived(name: str, options: ReadOptions | None = None) -> pl.DataFrame:
    return frame_of(read(FIXTURES / name, options)[1])


def steady(frame: pl.DataFrame, service: str, metric: str) -> float:
    """The value at the fourth scrape, once the first rate window (four scrapes) is full: every
    fixture's rates are constant from there until a reset or restart it stages later."""
    rows = frame.filter((pl.col("service") == service) & (pl.col("metric") == metric)).sort("timestamp")
    assert rows.height, (service, metric)
    first = frame["timestamp"].min()
    return float(rows.filter(pl.col("timestamp") == first + timedelta(seconds=45))["value"][0])


def test_prometheus_client_http_and_process_metrics() -> None:
    frame = derived("prometheus-client.prom")
    assert steady(frame, "checkout", "request_rate") == pytest.approx(10.0)
    assert steady(frame, "checkout", "error_rate") == pytest.approx(0.1)
    # per second 5 requests ≤ 50 ms, 4 in (50, 100] ms, 1 in (0.5, 1] s: Prometheus' interpolation
    assert steady(frame, "checkout", "latency_p50_ms") == pytest.approx(50.0)
    assert steady(frame, "checkout", "latency_p95_ms") == pytest.approx(750.0)
    assert steady(frame, "checkout", "latency_p99_ms") == pytest.approx(950.0)
    assert steady(frame, "checkout", "cpu_utilization") == pytest.approx(0.25)
    restarts = frame.filter(pl.col("metric") == "restarts").sort("timestamp")["value"].to_list()
    assert max(restarts) == 1.0 and restarts[:4] == [0.0] * 4  # the start time changed once
    # the counter reset at the sixth scrape: the rate dips to what the counter rose, never below zero
    rates = frame.filter(pl.col("metric") == "request_rate")["value"]
    assert float(rates.min()) == pytest.approx(8.75) and float(rates.max()) == pytest.approx(10.0)  # type: ignore[arg-type]


def test_opentelemetry_http_current_older_and_client_names() -> None:
    frame = derived("opentelemetry-http.prom")
    assert steady(frame, "payment", "request_rate") == pytest.approx(25.0)
    assert steady(frame, "payment", "error_rate") == pytest.approx(0.2)
    assert steady(frame, "payment", "latency_p50_ms") == pytest.approx(137.5)
    assert steady(frame, "payment", "latency_p99_ms") == pytest.approx(250.0)  # rank in +Inf: the last bound
    assert steady(frame, "cart", "request_rate") == pytest.approx(6.0)
    assert steady(frame, "cart", "latency_p50_ms") == pytest.approx(10.0)  # older names: already in ms
    # the external provider reports nothing itself: its callers' client histograms stand for it
    provider = frame.filter(pl.col("service") == "api.stripe.example")
    assert set(provider["instance"].to_list()) == {None}
    assert steady(frame, "api.stripe.example", "request_rate") == pytest.approx(4.0)
    assert steady(frame, "api.stripe.example", "latency_p99_ms") == pytest.approx(2440.0)


def test_database_pools_of_opentelemetry_hikaricp_and_go() -> None:
    frame = derived("db-pools.prom")
    utilisation = frame.filter((pl.col("service") == "checkout") & (pl.col("metric") == "db_pool_utilization"))
    assert utilisation.sort("timestamp")["value"].to_list() == pytest.approx([0.2, 0.2, 0.3, 0.6, 0.9, 1, 1, 1])
    assert steady(frame, "checkout", "db_pool_size") == 10
    assert steady(frame, "checkout", "db_pool_wait_ms") == pytest.approx(5.0)
    assert steady(frame, "checkout", "db_pool_timeouts") == pytest.approx(0.2)
    assert steady(frame, "orders", "db_pool_utilization") == pytest.approx(0.75)  # HikariCP via Micrometer
    assert steady(frame, "orders", "db_pool_wait_ms") == pytest.approx(50.0)
    assert steady(frame, "inventory", "db_pool_utilization") == pytest.approx(0.25)  # Go database/sql
    assert steady(frame, "inventory", "db_pool_size") == 12


def test_postgres_exporter() -> None:
    frame = derived("postgres-exporter.prom")
    assert steady(frame, "postgres", "db_connections") == 45
    assert steady(frame, "postgres", "db_query_time_ms") == pytest.approx(20.0)
    rows = frame.filter(pl.col("metric") == "db_table_rows").sort("timestamp")
    orders = rows.filter(pl.col("instance") == "orders")["value"].to_list()
    assert orders[:6] == [120000.0] * 6 and orders[6:] == [0.0, 0.0]  # the instance column names the table
    # no rule reads the lock counts: analysed by name, one series per mode
    assert {
        'pg_locks_count{datname="shop",mode="accessexclusivelock",server="10.0.2.1:5432"}',
        'pg_locks_count{datname="shop",mode="rowexclusivelock",server="10.0.2.1:5432"}',
    } <= set(frame["metric"])


def test_node_exporter_hosts() -> None:
    frame = derived("node-exporter.prom")
    assert steady(frame, "db-host-1:9100", "host_cpu_utilization") == pytest.approx(0.4)
    first = frame.filter(pl.col("metric") == "host_cpu_utilization").sort("timestamp")["timestamp"][0]
    assert first > frame["timestamp"].min()  # no rate at the first scrape, so no (zero) utilisation there


def test_cadvisor_and_kube_state_metrics() -> None:
    frame = derived("kubernetes.prom")
    assert steady(frame, "checkout", "cpu_utilization") == pytest.approx(0.9)  # 0.45 cores of a 0.5 quota
    assert "POD" not in set(frame["service"])
    memory = frame.filter(pl.col("metric") == "memory_utilization").sort("timestamp")["value"].to_list()
    assert memory[0] == pytest.approx(0.5) and memory[-1] == pytest.approx(0.71875)
    # per step: the one restart counts once (over a rolling window it counted at every step it stayed in)
    assert frame.filter(pl.col("metric") == "restarts").sort("timestamp")["value"].to_list() == [0, 0, 0, 0, 0, 1, 0]
    assert set(frame.filter(pl.col("metric") == "cpu_utilization")["instance"]) == {"checkout-7d9f-abcde"}


def test_every_shipped_rule_set_loads_and_names_its_exporter() -> None:
    rule_sets = load_rules()
    assert [rs.name for rs in rule_sets] == list(SHIPPED)
    assert all(rs.exporter and rs.rules for rs in rule_sets)


def test_a_users_rules_win_for_what_they_record(tmp_path: Path) -> None:
    mine = tmp_path / "rules.yaml"
    mine.write_text(
        "name: mine\nexporter: our gateway\nrules:\n"
        "  - record: request_rate\n"
        "    expr: {sum: {rate: 'http_requests_total{status=~\"2..\"}'}}\n"
        "  - record: checkout_rejections\n"
        "    expr: {sum: {increase: 'http_requests_total{status=\"503\"}'}}\n"
    )
    frame = derived("prometheus-client.prom", ReadOptions(mapping_rules=(mine,)))
    assert steady(frame, "checkout", "request_rate") == pytest.approx(9.0)  # theirs, not the shipped one
    assert steady(frame, "checkout", "checkout_rejections") == pytest.approx(15.0)  # 1/s: 15 in each 15 s step
    assert steady(frame, "checkout", "error_rate") == pytest.approx(0.1)  # the shipped rules still do the rest


def test_the_configured_service_label_names_the_services(tmp_path: Path) -> None:
    frame = derived("prometheus-client.prom", ReadOptions(service_label="instance"))
    assert set(frame["service"]) == {"10.0.0.7:8000"}


@pytest.mark.parametrize(
    ("body", "line", "message"),
    [
        ("  - record: x\n    expr: {sum: {rates: y}}\n", 5, "expected exactly one of rate, increase, changes, value"),
        ("  - record: x\n    expr: {histogram_quantile: 1.5, of: y_bucket}\n", 5, "a quantile is between 0 and 1"),
        ("  - record: x_total\n    expr: {sum: {rate: y}}\n", 4, "not named like a raw counter"),
        ("  - record: x\n    expr: {sum: {rate: 'y{a=~\"(\"}'}}\n", 5, "bad regular expression"),
    ],
)
def test_a_bad_rule_file_is_one_line_naming_its_line(tmp_path: Path, body: str, line: int, message: str) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("name: mine\nexporter: ours\nrules:\n" + body)
    with pytest.raises(BundleError) as error:
        load_rule_set(path)
    assert error.value.one_line().startswith(f"{path}:{line}: field 'rules.0.")
    assert message in error.value.one_line() and "\n" not in error.value.one_line()


def test_the_live_per_step_queries_count_each_event_once_in_prometheus(tmp_path: Path) -> None:
    """The PromQL a live read sends for `increase` and `changes`, evaluated by Prometheus' own engine
    (promtool's rule tests): one event per step, a counter reset read as its new value, as the
    offline evaluation counts them (over a rolling window one restart counted four times)."""
    import shutil
    import subprocess

    import yaml

    from warroom.sources.mapping.promql import Keys, Ranges, alternative
    from warroom.sources.mapping.rules import Rule

    if shutil.which("promtool") is None:
        pytest.skip("promtool (Debian package prometheus) is not installed: make test installs it")
    keys, ranges = Keys("service", (), None), Ranges("1m", "15s")
    increase = alternative(Rule(record="r", expr={"sum": {"increase": "restarts_total"}}), keys, ranges)
    changes = alternative(Rule(record="r", expr={"sum": {"changes": "start_time"}}), keys, ranges)
    cases = [
        (increase, 30, 1),
        (increase, 45, 0),
        (increase, 60, 0),
        (increase, 75, 2),
        (changes, 30, 1),
        (changes, 45, 0),
    ]
    (tmp_path / "rules.yml").write_text("groups: []\n")
    test = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "15s",
        "tests": [
            {
                "interval": "15s",
                "input_series": [
                    {"series": 'restarts_total{service="a"}', "values": "0 0 1 1 0 2 2"},  # a reset at 60 s
                    {"series": 'start_time{service="a"}', "values": "100 100 200 200 200 300 300"},
                ],
                "promql_expr_test": [
                    {"expr": expr, "eval_time": f"{t}s", "exp_samples": [{"labels": '{service="a"}', "value": v}]}
                    for expr, t, v in cases
                ],
            }
        ],
    }
    (tmp_path / "test.yml").write_text(yaml.safe_dump(test))
    done = subprocess.run(["promtool", "test", "rules", "test.yml"], cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
