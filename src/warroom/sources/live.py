"""Live telemetry: the configured Prometheus, Loki, OTLP spool, git repositories and deploy log,
read for one incident, written as a snapshot, and read back from it.

A live investigation reads the period [start, end] (the lookback before now, reaching back before
the alert) from every configured source within its budget, and saves every answer as received in a
snapshot folder (`sources/snapshot.py`). The incident's tables are then read from that folder by
the bundle readers, exactly as `warroom respond SNAPSHOT` reads them later: the window and the
baseline are chosen as for any folder of raw exports (the onset detected in the golden signals,
what precedes it the baseline), and the live investigation and its replay agree by construction.

A source that does not answer is a limitation naming it; when none answers the read is an error.
After an action, `after(kind, since)` asks every source again for [since, now], saves the answers
under the snapshot's `after/<kind>/` and reads them back: a recovery check of a live incident is a
real re-query, and the same folder replays it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path

import polars as pl

from warroom.errors import InputError
from warroom.sources.captured import EventRead
from warroom.sources.config import SourcesConfig
from warroom.sources.contract import LiveSpec, Prerequisite, SourceQuery, TelemetryRead
from warroom.sources.deploy_feed import deploy_log
from warroom.sources.git_source import git_changes
from warroom.sources.loki import LokiSource
from warroom.sources.manifest import Manifest
from warroom.sources.otlp_spool import OtlpSpoolSource, SpoolExport
from warroom.sources.prometheus import PrometheusMetrics
from warroom.sources.raw.defaults import LEAD_BEFORE_ALERT, read_alert_file
from warroom.sources.snapshot import (
    PeriodRead,
    SnapshotInfo,
    SnapshotSource,
    SourceRead,
    copy_rules,
    public_url,
    save_info,
)

ALERT_COPY = "alert.json"


class LiveError(InputError):
    """No live source is configured, or none answered (`unanswered`: each source and why)."""

    def __init__(self, message: str, *, field: str | None = None, unanswered: list[SourceRead] | None = None) -> None:
        super().__init__(message, field=field)
        self.unanswered = unanswered or []


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass
class _Answers:
    """What one source answered for a period: files for the snapshot, queries, limitations, and
    the services it saw (Loki's selector names them when none is configured)."""

    files: list[tuple[str, bytes]] = field(default_factory=list)
    queries: list[SourceQuery] = field(default_factory=list)
    limitations: list[str] = field(default_factory=list)
    services: set[str] = field(default_factory=set)
    alerts: list[str] = field(default_factory=list)


def _events(read: EventRead, column: str = "service") -> _Answers:
    services = {str(s) for t in read.tables if column in t.frame.columns for s in t.frame.get_column(column).unique()}
    # An answer with nothing in the period (no merge in a quiet hour, no log line) is not saved: a
    # period's table with no row is not telemetry, and the snapshot must read back as the live read.
    rows = sum(t.frame.height for t in read.tables)
    return _Answers(
        files=[(r.name, r.body) for r in read.responses] if rows else [],
        queries=list(read.queries),
        limitations=list(read.limitations),
        services=services,
    )


def _spooled(export: SpoolExport) -> _Answers:
    # The spool keeps only requests with an item in the period: a response saved holds one.
    return _Answers(
        files=[(r.name, r.body) for r in export.responses],
        queries=list(export.queries),
        limitations=list(export.limitations),
        services=set(export.services),
    )


def _reachable(config: SourcesConfig) -> list[str]:
    """The URLs of the configured HTTP sources (a secret in one is not repeated in a limitation)."""
    urls = [c.url for c in (config.prometheus, config.loki) if c is not None]
    if config.deploy_log is not None and config.deploy_log.url is not None:
        urls.append(config.deploy_log.url)
    return urls


class LiveReader:
    """The configured live sources and one read of a period from all of them."""

    def __init__(self, config: SourcesConfig) -> None:
        self.config = config
        # Headers are read from the environment now: a variable that is not set is bad
        # configuration (exit 2), not a source that happens to be down.
        for section, endpoint in (
            ("sources.prometheus", config.prometheus),
            ("sources.loki", config.loki),
            ("sources.deploy_log", config.deploy_log),
        ):
            if endpoint is not None:
                endpoint.headers(section=section)
        if not any((config.prometheus, config.loki, config.otlp, config.git, config.deploy_log)):
            raise LiveError(
                "no live source configured (expected [sources.prometheus], [sources.loki], [sources.otlp], "
                "[[sources.git]] or [sources.deploy_log] in warroom.toml)",
                field="sources",
            )
        self.prometheus = PrometheusMetrics(config.prometheus, config.read_options()) if config.prometheus else None
        self.loki = LokiSource(config.loki) if config.loki else None
        self.spool = OtlpSpoolSource(config.otlp) if config.otlp else None

    def names(self) -> list[tuple[str, str]]:
        """(kind, location) of every configured source, as a snapshot may name it."""
        found: list[tuple[str, str]] = []
        if self.config.prometheus:
            found.append(("prometheus", public_url(self.config.prometheus.url)))
        if self.config.otlp:
            found.append(("otlp", self.config.otlp.spool))
        found.extend(("git", repo.path) for repo in self.config.git)
        if self.config.deploy_log:
            log = self.config.deploy_log
            found.append(("deploy-log", log.path or public_url(log.url or "")))
        if self.config.loki:
            found.append(("loki", public_url(self.config.loki.url)))
        return found

    def _readers(self, start: datetime, end: datetime, seen: set[str]) -> list[Callable[[], _Answers]]:
        """One call per configured source, in names() order: Prometheus and the spool first, so that
        git's merges and Loki's selector know the services the others named; Loki last."""
        calls: list[Callable[[], _Answers]] = []
        if self.prometheus is not None:
            calls.append(lambda: self._prometheus(start, end))
        if self.spool is not None:
            spool = self.spool
            calls.append(lambda: _spooled(spool.export(start, end)))
        for repo in self.config.git:
            calls.append(lambda repo=repo: _events(git_changes(repo, start, end, seen)))  # type: ignore[misc]
        if self.config.deploy_log is not None:
            feed = self.config.deploy_log
            calls.append(lambda: _events(deploy_log(feed)))
        if self.loki is not None:
            loki = self.loki
            calls.append(lambda: _events(loki.read(sorted(seen), start, end)))
        return calls

    def _prometheus(self, start: datetime, end: datetime) -> _Answers:
        assert self.prometheus is not None
        read = self.prometheus.read_metrics(start, end)
        services = set()
        if read.frame is not None and "service" in read.frame.columns:
            services = {str(s) for s in read.frame.get_column("service").cast(pl.String).unique() if s}
        return _Answers(
            files=[(f"prometheus/{r.name}", r.body) for r in read.raw_responses],
            queries=list(read.queries),
            limitations=list(read.limitations),
            services=services,
            alerts=sorted({a.name for a in read.alerts}),
        )

    def read(self, start: datetime, end: datetime, services: set[str]) -> tuple[list[tuple[str, bytes]], PeriodRead]:
        """Every source's answers for [start, end]; a LiveError when none answered."""
        period = PeriodRead(start=start, end=end, read_at=_now())
        files: list[tuple[str, bytes]] = []
        seen = set(services)
        secrets = _reachable(self.config)
        for (kind, location), call in zip(self.names(), self._readers(start, end, seen), strict=True):
            try:
                answers = call()
            except InputError as exc:
                detail = exc.one_line()
                for url in secrets:
                    detail = detail.replace(url.rstrip("/"), public_url(url).rstrip("/"))
                period.sources.append(SourceRead(kind=kind, location=location, answered=False, detail=detail))
                period.limitations.append(f"{kind} {location} was not read: {detail}")
                continue
            seen |= answers.services
            files.extend(answers.files)
            period.queries.extend(answers.queries)
            period.limitations.extend(answers.limitations)
            period.alerts.extend(answers.alerts)
            period.sources.append(
                SourceRead(
                    kind=kind,
                    location=location,
                    answered=True,
                    detail=f"{len(answers.files)} answer(s) saved" if answers.files else "nothing in the period",
                )
            )
        if not any(s.answered for s in period.sources):
            raise LiveError(
                "no live source answered: " + "; ".join(f"{s.kind}: {s.detail}" for s in period.sources),
                unanswered=period.sources,
            )
        return files, period


def _write(folder: Path, files: list[tuple[str, bytes]]) -> None:
    for name, body in files:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)


def _empty_folder(folder: Path) -> None:
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise InputError("exists and is not an empty folder (a snapshot is written to a new one)", file=folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the snapshot folder ({exc.strerror})", file=folder) from None


def _bundle_repository(repo: Path, target: Path) -> str | None:
    """The repository as a git bundle file (what a snapshot can hold where a checkout cannot);
    a limitation when git cannot write one."""
    done = subprocess.run(
        ["git", "-C", str(repo), "bundle", "create", str(target.resolve()), "HEAD", "--all"],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or ["git bundle failed"])[-1]
        return f"git {repo}: the code was not saved in the snapshot ({reason[:160]})"
    return None


def read_period(start: datetime, end: datetime, alert: Path | None) -> tuple[datetime, datetime]:
    """The period a live read covers: [start, end], reaching back before the alert's time when the
    alert fired before `start`, so that the level before the onset is there to compare with."""
    if alert is None:
        return start, end
    fired = min(a.fired_at for a in read_alert_file(alert, SourcesConfig().read_options()))
    return min(start, fired - LEAD_BEFORE_ALERT), end


def capture(
    config: SourcesConfig, folder: Path, start: datetime, end: datetime, *, alert: Path | None, config_path: str | None
) -> SnapshotInfo:
    """Read every configured source for [start, end] and write the snapshot (no investigation);
    the manifest is derived and pinned in incident.yaml when an alert is given or Prometheus shows
    one firing."""
    reader = LiveReader(config)
    _empty_folder(folder)
    files, period = reader.read(start, end, set())
    if alert is not None:
        files.append((ALERT_COPY, alert.read_bytes()))
    _write(folder, files)
    if config.git:
        problem = _bundle_repository(Path(config.git[0].path), folder / "repo.bundle")
        if problem:
            period.limitations.append(problem)
    options = config.read_options()
    info = SnapshotInfo(
        config=config_path,
        alert_file=str(alert) if alert else None,
        incident=period,
        service_label=options.service_label,
        database_service=options.database_service,
        mapping_rules=copy_rules(folder, options.mapping_rules),
    )
    save_info(folder, info)
    return info


def pin_manifest(folder: Path) -> Manifest:
    """Derive the snapshot's manifest as any folder of raw exports gets one (the alert given or
    found, the onset detected) and write it as incident.yaml, so every later reading — a worker,
    a resumed run, `respond SNAPSHOT` — answers the same alert over the same window."""
    return _pinned(folder).manifest()


def _pinned(folder: Path) -> SnapshotSource:
    """The snapshot read back, its manifest pinned: derived from this read (the alert copy
    answered) and written as incident.yaml when the folder has none yet. Readers that start
    together derive it from the same files the same way, and each replaces the file whole."""
    import yaml

    manifest_file = folder / "incident.yaml"
    if manifest_file.is_file():
        return SnapshotSource(folder)
    source = SnapshotSource(folder, alert=folder / ALERT_COPY if (folder / ALERT_COPY).is_file() else None)
    body = source.manifest().model_dump(mode="json", exclude_none=True)
    staging = manifest_file.with_name(f".incident.yaml.{os.getpid()}.{threading.get_ident()}")
    staging.write_text(yaml.safe_dump(body, sort_keys=False, allow_unicode=True), encoding="utf-8")
    staging.replace(manifest_file)
    return source


class LiveSource:
    """The live sources of warroom.toml for one incident: captured into the snapshot folder when
    opened (or reopened from it, in a worker or a resumed run), re-queried after an action."""

    def __init__(self, spec: LiveSpec, config: SourcesConfig) -> None:
        self._spec = spec
        self.folder = Path(spec.path)
        self.reader = LiveReader(config)
        if not (self.folder / "incident.yaml").is_file() and not (self.folder / "snapshot.json").is_file():
            alert = Path(spec.alert) if spec.alert else None
            capture(config, self.folder, spec.start, spec.end, alert=alert, config_path=spec.config)
        self._lock = threading.Lock()  # post-action reads of several actions may run on threads

    @cached_property
    def snapshot(self) -> SnapshotSource:
        """The snapshot read back, when first asked, its manifest pinned by the first reading. The
        process that captures it (serve's dispatcher) never reads it: the workers that run the steps
        read it, once each (a few seconds to tens of seconds a read for a 30-minute period at the
        lab's load, spent before the diagnosis: reading it to pin the manifest, then again to
        investigate, paid that twice)."""
        return _pinned(self.folder)

    def spec(self) -> LiveSpec:
        return self._spec

    def describe(self) -> str:
        names = ", ".join(f"{kind} {where}" for kind, where in self.reader.names())
        return f"live ({names}); snapshot {self.folder}"

    def prerequisites(self) -> list[Prerequisite]:
        checks = self.reader.prometheus.prerequisites() if self.reader.prometheus else []
        for kind, location in self.reader.names():
            if kind in ("otlp", "git") or (kind == "deploy-log" and not location.startswith("http")):
                checks.append(Prerequisite(name=kind, ok=Path(location).exists(), detail=location))
        return checks

    def manifest(self) -> Manifest:
        return self.snapshot.manifest()

    def incident(self) -> TelemetryRead:
        return self.snapshot.incident()

    def baseline(self) -> TelemetryRead | None:
        return self.snapshot.baseline()

    def _services(self) -> set[str]:
        metrics = self.snapshot.incident().telemetry.metrics
        if metrics is None:
            return set()
        return {str(s) for s in metrics.get_column("service").cast(pl.String).unique() if s}

    def after(self, action_kind: str, since: datetime) -> TelemetryRead | None:
        """Every source asked again for [since, now], each time it is asked (a recovery check that
        waits for the system re-queries until it recovers); the latest answers are saved under
        after/<kind>/ and read back. None when no source answered (the limitation says which did not)."""
        with self._lock:
            end = max(_now(), since + timedelta(seconds=1))
            try:
                files, period = self.reader.read(since, end, self._services())
            except LiveError as exc:
                self.snapshot.info.incident.limitations.append(f"after {action_kind}: {exc.one_line()}")
                return None
            folder = self.folder / "after" / action_kind
            shutil.rmtree(folder, ignore_errors=True)  # the previous re-query's answers: this one supersedes them
            _write(folder, files)
            self.snapshot.info.after[action_kind] = period
            save_info(self.folder, self.snapshot.info)
            return self.snapshot.after(action_kind, since)

    def recorded_actions(self) -> list[str] | None:
        return None  # any action can be observed after it is taken

    def topology(self) -> dict[str, list[str]]:
        return self.snapshot.topology()

    def repository(self) -> Path | None:
        return self.snapshot.repository()
