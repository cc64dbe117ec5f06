"""A snapshot: the bundle folder a live read writes, holding what every source answered, raw.

    snapshot.json                 where and when it was read, the live queries, what was left out
    incident.yaml                 the manifest the live read derived (alert, window), when it had an alert
    alert.json                    the alert file as it was given (`--alert FILE`)
    prometheus/NNN-*.json         every Prometheus API answer as received (series discovery, query_range)
    loki/query_range.jsonl        every Loki page as received (`sources/raw/loki_responses.py`)
    otlp/{traces,logs}.jsonl      the OTLP spool's export requests of the period, as the receiver wrote them
    git/<service>.changes.txt     git's output (merge commits, tags) under a small header
    changes/deploy-log.*          the deploy log as fetched
    repo.bundle                   the first configured repository (`git bundle create … --all`)
    mapping-rules/NN-<name>       the user's own mapping rule files the live read used, copied
    after/<action-kind>/          the same, re-read after an action

Every file but snapshot.json and incident.yaml is a raw shape a reader of `sources/raw/` knows, so
a snapshot is an ordinary bundle (`warroom respond SNAPSHOT`) and the live read itself is read
back from it (`sources/live.py`): the live investigation and its replay read the same tables by
construction. What only the live read knew (a source that did not answer, a budget or a step that
left something out, the PromQL and LogQL it ran) is in snapshot.json, and a snapshot's reads carry
it. No header, token or credential is written: only URLs without their user info and query string.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from pydantic import AwareDatetime, BaseModel, Field

from warroom.errors import BundleError
from warroom.sources.bundle import BundleSource
from warroom.sources.contract import SourceQuery, TelemetryRead
from warroom.sources.raw.reader import ReadOptions

SNAPSHOT_FILE = "snapshot.json"
RULES_FOLDER = "mapping-rules"
FORMAT = 1


def public_url(url: str) -> str:
    """A URL as a snapshot may hold it: no user info, no query string (either may carry a token)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


class SourceRead(BaseModel):
    """One live source in one read: where it is and whether it answered."""

    kind: str  # prometheus, loki, otlp, git, deploy-log
    location: str
    answered: bool
    detail: str = ""  # why it did not answer, or what it returned


class PeriodRead(BaseModel):
    """One read of a period (the incident's, or one after an action)."""

    start: AwareDatetime
    end: AwareDatetime
    read_at: AwareDatetime  # engine time: when warroom asked
    sources: list[SourceRead] = Field(default_factory=list)
    queries: list[SourceQuery] = Field(default_factory=list)
    limitations: list[str] = Field(default_factory=list)
    alerts: list[str] = Field(default_factory=list)  # the alerts Prometheus showed firing


class SnapshotInfo(BaseModel):
    """snapshot.json."""

    format: int = FORMAT
    config: str | None = None  # the warroom.toml it was read with
    alert_file: str | None = None  # the alert file as given, copied to alert.json
    incident: PeriodRead
    after: dict[str, PeriodRead] = Field(default_factory=dict)
    # the read options the live read used, so the replay reads the files the same way
    service_label: str | None = None
    database_service: str | None = None
    # the user's mapping rule files, copied into the snapshot (names relative to its folder): a
    # replay elsewhere, and the live read's own read-back, derive the series with the same rules
    mapping_rules: list[str] = Field(default_factory=list)

    def read_options(self, folder: Path) -> ReadOptions:
        return ReadOptions(
            mapping_rules=tuple(folder / name for name in self.mapping_rules),
            service_label=self.service_label,
            database_service=self.database_service,
        )


def copy_rules(folder: Path, rules: tuple[Path, ...]) -> list[str]:
    """The rule files copied under mapping-rules/ (numbered: their order is their precedence)."""
    names = []
    for index, rule_file in enumerate(rules):
        name = f"{RULES_FOLDER}/{index:02d}-{rule_file.name}"
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            target.write_bytes(rule_file.read_bytes())
        except OSError as exc:
            problem = f"cannot copy the mapping rules into the snapshot ({exc.strerror})"
            raise BundleError(problem, file=rule_file) from None
        names.append(name)
    return names


def is_snapshot(folder: Path) -> bool:
    return (folder / SNAPSHOT_FILE).is_file()


def load_info(folder: Path) -> SnapshotInfo:
    path = folder / SNAPSHOT_FILE
    try:
        return SnapshotInfo.model_validate_json(path.read_bytes())
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else str(exc).splitlines()[0]
        raise BundleError(f"not a readable snapshot description ({reason})", file=path) from None


def save_info(folder: Path, info: SnapshotInfo) -> None:
    path = folder / SNAPSHOT_FILE
    staging = path.with_suffix(".json.tmp")
    staging.write_text(info.model_dump_json(indent=2), encoding="utf-8")
    staging.replace(path)  # a reader sees the old description or the new one, never half of one


def _with_live(read: TelemetryRead, period: PeriodRead) -> TelemetryRead:
    """A period's tables with what only the live read knew: its queries first (what a person can
    re-run against the live system), then the files', and its limitations (each once)."""
    queries = [*period.queries, *(q for q in read.queries if q not in period.queries)]
    limitations = [*period.limitations, *(item for item in read.limitations if item not in period.limitations)]
    return TelemetryRead(read.telemetry, queries, limitations)


class SnapshotSource(BundleSource):
    """A snapshot folder as a recorded incident: a bundle whose reads carry the live read's queries
    and limitations (snapshot.json)."""

    def __init__(self, path: str | Path, *, alert: str | Path | None = None) -> None:
        self.info = load_info(Path(path))
        super().__init__(path, alert=alert, options=self.info.read_options(Path(path)))

    def describe(self) -> str:
        return f"snapshot {self.root} (read {self.info.incident.read_at:%Y-%m-%d %H:%M:%S} UTC)"

    def incident(self) -> TelemetryRead:
        return _with_live(super().incident(), self.info.incident)

    def after(self, action_kind: str, since: datetime) -> TelemetryRead | None:
        read = super().after(action_kind, since)
        period = self.info.after.get(action_kind)
        return _with_live(read, period) if read is not None and period is not None else read
