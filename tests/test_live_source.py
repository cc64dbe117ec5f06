"""The live source end to end, against real components: a real Prometheus holding the last 25
minutes of two services' history (written into its storage by `promtool tsdb create-blocks-from
openmetrics`, in prometheus_client's names: checkout starts failing 10 minutes ago) and scraping the
same services live on loopback (prometheus_client and the OpenTelemetry SDK), a real git repository
whose merge precedes the failure, a deploy log file and an Alertmanager payload.

`respond --live` investigates and writes its snapshot, and `respond SNAPSHOT` replays it to the
same diagnosis; `capture` writes one without investigating, which reads as the live one. A secret
header given by environment variable is sent but never written; a source that does not answer is
a limitation, and no source answering is one line and exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from typer.testing import CliRunner

from support_prometheus import free_port, load, opentelemetry_service, prometheus, prometheus_client_service, stop
from warroom.cli import app
from warroom.config import load_config
from warroom.sources.config import GitRepoConfig, PrometheusConfig, SourcesConfig
from warroom.sources.contract import LiveSpec
from warroom.sources.live import LiveReader, LiveSource
from warroom.sources.snapshot import SnapshotSource, load_info

SECRET_ENV = "WARROOM_TEST_PROMETHEUS_TENANT"
SECRET = "tenant-7f3a9c-secret-value"
HISTORY = timedelta(minutes=25)
# Long enough that the failing part holds most of the incident window: without a detected onset
# (the alert comes 2 minutes after the fault) the window opens halfway from the data's start to the
# alert, and the engine compares the window's levels with the reference's.
FAULT_AGO = timedelta(minutes=10)
SCRAPE = 15  # seconds between the history's samples
LIVE_SECONDS = 3  # of live scrapes before the first test reads
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)

runner = CliRunner()


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def _history(path: Path, now: datetime, fault: datetime) -> Path:
    """OpenMetrics text of both services' counters, histograms and pool gauges every SCRAPE
    seconds: 20 requests a second answered in 4 ms; from `fault` on, 40% of checkout's are 503s
    answered in 300 ms."""
    families: dict[str, tuple[str, list[str]]] = {
        "http_requests": ("counter", []),
        "http_request_duration_seconds": ("histogram", []),
        "db_client_connection_count": ("gauge", []),
        "db_client_connection_max": ("gauge", []),
    }
    for job in ("checkout", "payment"):
        ok = failed = 0
        buckets = dict.fromkeys(BUCKETS, 0)
        total = 0.0
        at = now - HISTORY
        while at < now - timedelta(seconds=30):
            failing = job == "checkout" and at >= fault
            good, bad = (180, 120) if failing else (300, 0)
            ok, failed = ok + good, failed + bad
            for le in BUCKETS:
                buckets[le] += good + (bad if le >= 0.5 else 0)
            total += good * 0.004 + bad * 0.3
            t = f"{at.timestamp():.3f}"
            base = f'job="{job}",instance="history"'
            families["http_requests"][1].extend(
                [
                    f'http_requests_total{{{base},handler="/ok",method="GET",status="200"}} {ok} {t}',
                    f'http_requests_total{{{base},handler="/fail",method="GET",status="503"}} {failed} {t}',
                ]
            )
            route = f'{base},handler="/",method="GET"'
            histogram = families["http_request_duration_seconds"][1]
            histogram.extend(
                f'http_request_duration_seconds_bucket{{{route},le="{le}"}} {n} {t}' for le, n in buckets.items()
            )
            histogram.append(f'http_request_duration_seconds_bucket{{{route},le="+Inf"}} {ok + failed} {t}')
            histogram.append(f"http_request_duration_seconds_sum{{{route}}} {total:.3f} {t}")
            histogram.append(f"http_request_duration_seconds_count{{{route}}} {ok + failed} {t}")
            used = 9 if failing else 3
            families["db_client_connection_count"][1].append(
                f'db_client_connection_count{{{base},db_client_connection_state="used"}} {used} {t}'
            )
            families["db_client_connection_max"][1].append(f"db_client_connection_max{{{base}}} 10 {t}")
            at += timedelta(seconds=SCRAPE)
    lines = []
    for name, (kind, samples) in families.items():
        lines.append(f"# TYPE {name} {kind}")
        lines.extend(samples)
    path.write_text("\n".join([*lines, "# EOF"]) + "\n")
    return path


def _repository(folder: Path, merged: datetime) -> Path:
    """checkout's code: a first commit, then a feature branch merged (the change in the period)."""
    repo = folder / "checkout"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    for key, value in (("user.name", "Dev"), ("user.email", "dev@example.com")):
        _git(repo, "config", key, value)
    (repo / "app.py").write_text("def handler():\n    return 'ok'\n")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "first")
    _git(repo, "checkout", "-q", "-b", "retry")
    (repo / "app.py").write_text("def handler():\n    return call_payment(retries=0)\n")
    _git(repo, "commit", "-qam", "no retries")
    _git(repo, "checkout", "-q", "main")
    stamp = {"GIT_AUTHOR_DATE": merged.isoformat(), "GIT_COMMITTER_DATE": merged.isoformat()}
    subprocess.run(["git", "-C", str(repo), "merge", "-q", "--no-ff", "-m", "Merge branch 'retry'", "retry"],
                   check=True, capture_output=True, env={**os.environ, **stamp})  # fmt: skip
    return repo


def _alert(path: Path, fired: datetime) -> Path:
    alert = {
        "status": "firing",
        "labels": {"alertname": "CheckoutErrors", "service": "checkout", "severity": "critical"},
        "annotations": {"summary": "checkout 5xx above 5%"},
        "startsAt": fired.isoformat(),
        "endsAt": "0001-01-01T00:00:00Z",
        "fingerprint": "c0ffee",
    }
    payload = {
        "version": "4",
        "groupKey": '{}:{alertname="CheckoutErrors"}',
        "status": "firing",
        "receiver": "warroom",
        "groupLabels": {},
        "commonLabels": {},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": [alert],
    }
    path.write_text(json.dumps(payload))
    return path


def _rules(folder: Path) -> Path:
    """A user's own rule file (a series none of the services exports: the read is unchanged)."""
    path = folder / "team-rules.yaml"
    path.write_text(
        "name: team\nexporter: the team's own\n"
        "rules:\n  - record: queue_depth\n    expr: {sum: {value: checkout_queue_length}}\n"
    )
    return path


def _config(path: Path, prometheus_url: str, repo: Path, deploys: Path) -> Path:
    path.write_text(
        f"""[sources]
lookback = "30m"
mapping_rules = ["{_rules(path.parent)}"]

[sources.prometheus]
url = "{prometheus_url}"
step = "15s"
rate_window = "1m"
selectors = ['{{job=~"checkout|payment"}}']
headers_env = {{ "X-Scope-OrgID" = "{SECRET_ENV}" }}

[[sources.git]]
path = "{repo}"
service = "checkout"

[sources.deploy_log]
path = "{deploys}"
"""
    )
    return path


@dataclass
class World:
    folder: Path
    config: Path
    alert: Path
    prometheus_url: str
    repo: Path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    folder = tmp_path_factory.mktemp("live")
    now = datetime.now(UTC)
    fault = now - FAULT_AGO
    repo = _repository(folder, fault - timedelta(minutes=2))
    history = _history(folder / "history.om", now, fault)
    subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics", str(history), str(folder / "data")],
                   check=True, capture_output=True)  # fmt: skip
    deploys = folder / "deploys.jsonl"
    entry = {"time": (fault - timedelta(minutes=1)).isoformat(), "service": "checkout", "version": "v2",
             "kind": "deploy", "previous_version": "v1", "author": "dev"}  # fmt: skip
    deploys.write_text(json.dumps(entry) + "\n")
    alert = _alert(folder / "alert.json", fault + timedelta(minutes=2))
    shops = [prometheus_client_service("checkout"), opentelemetry_service("payment")]
    os.environ[SECRET_ENV] = SECRET
    try:
        # The failure goes on while the tests read (as a real incident does, until someone acts):
        # on a loaded machine the reads come minutes later, and an idle service after the history
        # would be a recovery nobody made.
        ongoing = float("inf")
        with prometheus(shops, folder) as server, load(shops, 0.0, ongoing), load(shops[:1], 0.6, ongoing):
            time.sleep(LIVE_SECONDS)
            yield World(folder, _config(folder / "warroom.toml", server.url, repo, deploys), alert, server.url, repo)
    finally:
        os.environ.pop(SECRET_ENV, None)
        stop(shops)


def _invoke(*args: str) -> tuple[int, str]:
    done = runner.invoke(app, list(args))
    return done.exit_code, done.stdout


def _top(stdout: str) -> dict[str, Any]:
    payload = json.loads(stdout)
    top = min(payload["diagnosis"], key=lambda c: c["rank"])
    return {k: top[k] for k in ("service", "fault_type", "indicator")}


def _holds(folder: Path, needle: bytes) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file() and needle in p.read_bytes()]


@pytest.fixture(scope="module")
def live_run(world: World) -> tuple[Path, dict[str, Any]]:
    out = world.folder / "live-out"
    db = f"sqlite:///{world.folder / 'live.db'}"
    code, stdout = _invoke(
        "respond",
        "--live",
        "--alert",
        str(world.alert),
        "--config",
        str(world.config),
        "--out",
        str(out),
        "--json",
        "--db",
        db,
    )
    assert code == 0, stdout
    return out / "snapshot", _top(stdout)


def test_live_diagnosis_names_the_failing_service_and_replays_from_its_snapshot(
    world: World, live_run: tuple[Path, dict[str, Any]]
) -> None:
    snapshot, top = live_run
    assert top["service"] == "checkout"
    info = load_info(snapshot)
    assert {s.kind for s in info.incident.sources if s.answered} == {"prometheus", "git", "deploy-log"}
    assert any(q.source == "prometheus" and "rate(" in q.text for q in info.incident.queries)
    assert (snapshot / "incident.yaml").is_file() and (snapshot / "alert.json").is_file()
    assert list((snapshot / "prometheus").glob("*.json")) and (snapshot / "git" / "checkout.changes.txt").is_file()
    # the user's mapping rules travel with the snapshot, so a replay elsewhere derives as the live read did
    assert info.mapping_rules == ["mapping-rules/00-team-rules.yaml"]
    assert (snapshot / info.mapping_rules[0]).read_bytes() == (world.folder / "team-rules.yaml").read_bytes()
    code, stdout = _invoke("respond", str(snapshot), "--json", "--db", f"sqlite:///{world.folder / 'replay.db'}")
    assert code == 0, stdout
    assert _top(stdout) == top


def test_capture_writes_a_snapshot_that_reads_as_the_live_one(
    world: World, live_run: tuple[Path, dict[str, Any]]
) -> None:
    out = world.folder / "captured"
    code, stdout = _invoke(
        "capture", "--since", "30m", "--alert", str(world.alert), "--config", str(world.config), "--out", str(out)
    )
    assert code == 0, stdout
    said = " ".join(stdout.split())
    assert "prometheus" in said and "git" in said and f"warroom respond {out}" in said
    # read a moment later than the live investigation: the same alert, window opening and series
    captured, live = SnapshotSource(out), SnapshotSource(live_run[0])
    assert captured.manifest().alert == live.manifest().alert
    assert captured.manifest().effective_window().start == live.manifest().effective_window().start
    assert captured.describe().startswith(f"snapshot {out}")

    def series(source: SnapshotSource) -> set[tuple[str, str]]:
        metrics = source.incident().telemetry.metrics
        assert metrics is not None
        return set(metrics.select(pl.col("service").cast(pl.String), pl.col("metric").cast(pl.String)).iter_rows())

    assert series(captured) == series(live) and ("checkout", "db_pool_utilization") in series(live)


def test_the_secret_header_is_sent_but_never_written(world: World, live_run: tuple[Path, dict[str, Any]]) -> None:
    snapshot, _ = live_run
    assert load_info(snapshot).incident.sources  # the snapshot was written from answered reads
    assert _holds(snapshot, SECRET.encode()) == []
    assert _holds(snapshot.parent, SECRET.encode()) == []  # nor in the reports beside it


def test_after_an_action_the_live_sources_are_asked_again(world: World, live_run: tuple[Path, dict[str, Any]]) -> None:
    snapshot, _ = live_run
    info = load_info(snapshot)
    spec = LiveSpec(path=str(snapshot), config=str(world.config), start=info.incident.start, end=info.incident.end)
    source = LiveSource(spec, load_config(world.config).sources)
    assert load_info(snapshot).incident.read_at == info.incident.read_at  # reopened, not read again
    since = datetime.now(UTC) - timedelta(seconds=5)
    read = source.after("restart", since)
    assert read is not None and read.telemetry.metrics is not None
    # the period starts on the step grid (15 s) at or before `since`
    assert read.telemetry.metrics.get_column("timestamp").min() >= since - timedelta(seconds=15)  # type: ignore[operator]
    assert (snapshot / "after" / "restart" / "prometheus").is_dir()
    assert "restart" in load_info(snapshot).after
    assert source.recorded_actions() is None


def test_an_unreachable_prometheus_is_a_limitation_when_git_answers(world: World) -> None:
    down = f"http://127.0.0.1:{free_port()}"
    config = SourcesConfig(
        prometheus=PrometheusConfig(url=down, timeout_s=1), git=[GitRepoConfig(path=str(world.repo))]
    )
    end = datetime.now(UTC)
    files, period = LiveReader(config).read(end - timedelta(minutes=30), end, set())
    assert [s.kind for s in period.sources if not s.answered] == ["prometheus"]
    [limitation] = [item for item in period.limitations if item.startswith("prometheus")]
    assert down in limitation and "not read" in limitation and "cannot reach Prometheus" in limitation
    assert [name for name, _ in files] == ["git/checkout.changes.txt"]


def test_nothing_answering_is_one_line_and_exit_2(world: World, tmp_path: Path) -> None:
    config = tmp_path / "warroom.toml"
    config.write_text(f'[sources.prometheus]\nurl = "http://127.0.0.1:{free_port()}"\ntimeout_s = 1\n')
    done = runner.invoke(app, ["capture", "--since", "5m", "--config", str(config), "--out", str(tmp_path / "s")])
    assert done.exit_code == 2
    [line] = done.stderr.strip().splitlines()
    assert line.startswith("error: no live source answered: prometheus:") and "cannot reach Prometheus" in line


def test_bad_live_configuration_is_one_line_and_exit_2(tmp_path: Path) -> None:
    config = tmp_path / "warroom.toml"
    config.write_text("[sources]\n")
    done = runner.invoke(app, ["respond", "--live", "--config", str(config)])
    assert done.exit_code == 2
    assert (
        done.stderr.strip() == "error: field 'sources': no live source configured (expected [sources.prometheus], "
        "[sources.loki], [sources.otlp], [[sources.git]] or [sources.deploy_log] in warroom.toml)"
    )
    config.write_text('[sources.prometheus]\nurl = "http://127.0.0.1:9"\nbearer_token_env = "WARROOM_UNSET_TOKEN"\n')
    done = runner.invoke(app, ["capture", "--config", str(config), "--out", str(tmp_path / "s")])
    assert done.exit_code == 2
    assert "environment variable WARROOM_UNSET_TOKEN is not set" in done.stderr
