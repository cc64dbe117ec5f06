"""A live system for the live-source tests, of real components: a real Prometheus holding the last
25 minutes of two services' history (written into its storage by `promtool tsdb create-blocks-from
openmetrics`, in prometheus_client's names: checkout starts failing 10 minutes ago) and scraping the
same services live on loopback (prometheus_client and the OpenTelemetry SDK), a real git repository
whose merge precedes the failure, a deploy log file, an Alertmanager payload, and the warroom.toml
whose [sources] reads them (a secret header given by environment variable)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from support_prometheus import load, opentelemetry_service, prometheus, prometheus_client_service, stop

SECRET_ENV = "WARROOM_TEST_PROMETHEUS_TENANT"
SECRET = "tenant-7f3a9c-secret-value"
HISTORY = timedelta(minutes=25)
# Long enough that the failing part holds most of the incident window: without a detected onset
# (the alert comes 2 minutes after the fault) the window opens halfway from the data's start to the
# alert, and the engine compares the window's levels with the reference's.
FAULT_AGO = timedelta(minutes=10)
SCRAPE = 15  # seconds between the history's samples
LIVE_SECONDS = 3
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)


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


@contextmanager
def live_world(folder: Path, load_for: float = float("inf")) -> Iterator[World]:
    """The real components described in the module docstring, running until the block ends; the
    live load goes on for `load_for` seconds (by default until then): the failure goes on while the
    tests read, as a real incident does until someone acts. On a loaded machine the reads come
    minutes later, and an idle service after the history would be a recovery nobody made."""
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
        with prometheus(shops, folder) as server, load(shops, 0.0, load_for), load(shops[:1], 0.6, load_for):
            time.sleep(LIVE_SECONDS)
            yield World(folder, _config(folder / "warroom.toml", server.url, repo, deploys), alert, server.url, repo)
    finally:
        os.environ.pop(SECRET_ENV, None)
        stop(shops)
