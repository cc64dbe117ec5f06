"""The incident bundle: one incident's evidence in a directory, validated on load.

Layout (see docs/bundle-format.md):

    incident.yaml                 manifest (alert, symptoms, window, SLOs, business context)
    metrics.{csv,jsonl,parquet}   timestamp, service, metric, value [, instance]
    logs.{csv,jsonl,parquet}      timestamp, service, level, message [, trace_id, instance, attributes]
    traces.{csv,jsonl,parquet}    trace_id, span_id, parent_span_id, service, operation,
                                  start_time, end_time [, status, instance, attributes]
                                  (attributes: a JSON object as text, e.g. {"http.status_code": 500})
    changes.{csv,jsonl,parquet}   id, time, service, kind, version, commit, author, description
    topology.yaml                 optional: {services: {name: {depends_on: [..]}}}
    baseline/                     optional: fault-free telemetry with the same files
    after/<action-kind>/          optional: telemetry observed after a mitigation was applied
    repo/ or repo.bundle          optional: the services' code, as a git checkout or a git bundle file
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any

from warroom.errors import BundleError
from warroom.sources.contract import BundleSpec, Prerequisite, TelemetryRead
from warroom.sources.incident_telemetry import IncidentTelemetry, read_incident
from warroom.sources.manifest import Alert, Manifest
from warroom.sources.paths import present
from warroom.sources.raw.defaults import derive_manifest, opening_alert, read_alert_file
from warroom.sources.raw.folder import FileReport, PeriodFiles, probe_period, read_period
from warroom.sources.raw.reader import ReadOptions
from warroom.sources.validate import Limits
from warroom.yamlfile import line_of, load_model, read_yaml


def _read_topology(path: Path) -> dict[str, list[str]]:
    data, node = read_yaml(path, BundleError)
    services = data.get("services") if isinstance(data, dict) else None
    if not isinstance(services, dict):
        raise BundleError("expected 'services:' mapping of service → {depends_on: [...]}", file=path, line=1)
    graph: dict[str, list[str]] = {}
    for name, spec in services.items():
        deps = (spec or {}).get("depends_on", []) if isinstance(spec, dict) else None
        if not isinstance(deps, list) or not all(isinstance(d, str) for d in deps):
            raise BundleError(
                "expected a list of service names",
                file=path,
                line=line_of(node, ["services", name]),
                field=f"services.{name}.depends_on",
            )
        graph[str(name)] = deps
    return graph


def _git_reason(stderr: str, packed: Path) -> str:
    """git's own first complaint ("fatal: invalid gitfile format: …"), not its last line (the tail of
    advice about access rights, which says nothing of a file that is not a bundle)."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    said = next((line for line in lines if line.startswith(("fatal:", "error:"))), lines[0] if lines else "")
    reason = said.removeprefix("fatal:").removeprefix("error:").strip().replace(str(packed.resolve()), packed.name)
    return reason[:160] or "git clone failed"


def _checkout(root: Path) -> Path | None:
    """The bundle's code repository: `repo/` as is, or `repo.bundle` (a git bundle file, which
    can be committed where a nested .git cannot) cloned once into a cache keyed by its content."""
    if present(root / "repo", "folder"):
        return root / "repo"
    packed = root / "repo.bundle"
    if not present(packed):
        return None
    digest = hashlib.sha256(packed.read_bytes()).hexdigest()[:16]
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "warroom" / "repos" / digest
    if (cache / ".git").is_dir():
        return cache
    staging = cache.with_name(f"{digest}.{os.getpid()}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.parent.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["git", "clone", "--quiet", str(packed.resolve()), str(staging)], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        shutil.rmtree(staging, ignore_errors=True)
        raise BundleError(f"not a readable git bundle ({_git_reason(done.stderr, packed)})", file=packed)
    try:
        staging.rename(cache)  # atomic: a concurrent loader either sees the whole clone or none
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
    return cache


class BundleSource:
    """A bundle folder as a telemetry source: everything it holds was recorded, so a read after an
    action is the folder `after/<kind>/` recorded for it. The folder holds canonical tables (format
    v1), the raw exports of a real system (format v2, recognised file by file), or both."""

    def __init__(
        self, path: str | Path, *, alert: str | Path | None = None, options: ReadOptions | None = None
    ) -> None:
        self.root = Path(path)
        if not self.root.is_dir():
            raise BundleError("not a directory (expected an incident bundle)", file=self.root)
        self.alert_file = Path(alert) if alert is not None else None
        self.options = options or ReadOptions()
        self.limits = Limits.from_env()
        # The manifest may have to be derived from the alert and the data, so the incident period
        # is read up front (every run reads it first anyway).
        period = read_period(self.root, self.options, top=True)
        self.files: list[FileReport] = list(period.files)  # every file read, for `bundle validate`
        if not period.tables:
            raise BundleError(
                "no telemetry: expected at least one of metrics, logs, traces, changes (a canonical table or a "
                "raw export that a reader recognises; see docs/bundle-format.md)",
                file=self.root,
            )
        manifest = self._written_manifest()
        opening = manifest.alert if manifest else self._opening_alert(period)
        self._incident = period.validated(opening.fired_at, self.limits)
        self._manifest = manifest or derive_manifest(opening, self._incident.telemetry)
        # Post-action folders are read when a recovery check asks; what is in them is probed now,
        # so that garbage there is reported before anything is recorded.
        for kind in self.recorded_actions():
            probe_period(self.root / "after" / kind)

    def _written_manifest(self) -> Manifest | None:
        path = self.root / "incident.yaml"
        return load_model(path, Manifest, BundleError) if present(path) else None

    def _opening_alert(self, period: PeriodFiles) -> Alert:
        # The alert given beside the folder is the one being answered; alerts found in the folder
        # (a payload, an ALERTS series that shows every alert that fired) only stand in for it.
        if self.alert_file is not None:
            return opening_alert(read_alert_file(self.alert_file, self.options), self.root, period.data_from())
        return opening_alert(list(period.alerts), self.root, period.data_from())

    def spec(self) -> BundleSpec:
        return BundleSpec(
            path=str(self.root.resolve()), alert=str(self.alert_file.resolve()) if self.alert_file else None
        )

    def describe(self) -> str:
        return f"bundle {self.root}"

    def prerequisites(self) -> list[Prerequisite]:
        return [Prerequisite(name="bundle folder", ok=self.root.is_dir(), detail=str(self.root))]

    def manifest(self) -> Manifest:
        return self._manifest

    def incident(self) -> TelemetryRead:
        return self._incident

    def _read(self, folder: Path) -> TelemetryRead:
        period = read_period(folder, self.options)
        self.files.extend(period.files)
        return period.validated(self._manifest.alert.fired_at, self.limits)

    def baseline(self) -> TelemetryRead | None:
        folder = self.root / "baseline"
        return self._read(folder) if present(folder, "folder") else None

    def after(self, action_kind: str, since: datetime) -> TelemetryRead | None:
        if action_kind not in self.recorded_actions():
            return None
        return self._read(self.root / "after" / action_kind)

    def recorded_actions(self) -> list[str]:
        folder = self.root / "after"
        if not present(folder, "folder"):
            return []
        # a stray file beside the folders (a README) is not telemetry; anything else must be a folder
        return sorted(p.name for p in folder.iterdir() if not p.is_file() and present(p, "folder"))

    def topology(self) -> dict[str, list[str]]:
        path = self.root / "topology.yaml"
        return _read_topology(path) if present(path) else {}

    def repository(self) -> Path | None:
        return _checkout(self.root)


def load_bundle(path: str | Path, *, alert: str | Path | None = None) -> IncidentTelemetry:
    """Read and validate a bundle folder; raise BundleError naming the file, line and field.
    Post-action folders are read when a recovery check asks for them."""
    return read_incident(BundleSource(path, alert=alert))


def validate_bundle(path: str | Path, *, alert: str | Path | None = None) -> dict[str, Any]:
    """Read every period of a bundle (post-action folders included) and describe what it holds and
    what each file was read as (what `bundle validate` prints)."""
    source = BundleSource(path, alert=alert)
    telemetry = read_incident(source)
    for kind in source.recorded_actions():
        source.after(kind, source.manifest().effective_window().end)
    return {
        **describe(telemetry),
        "manifest": "incident.yaml" if (source.root / "incident.yaml").is_file() else "derived from the alert",
        "warnings": telemetry.limitations,
        "files": [
            {
                "file": str(f.path.relative_to(source.root)),
                "read_as": f.reader,
                "notes": f.notes,
                "warnings": f.limitations,
            }
            for f in source.files
        ],
    }


def describe(telemetry: IncidentTelemetry) -> dict[str, Any]:
    """A short, JSON-friendly inventory of an incident's telemetry."""
    counts = {name: (frame.height if frame is not None else None) for name, frame in vars(telemetry.current).items()}
    return {
        "source": telemetry.origin(),
        "title": telemetry.manifest.title,
        "alert": telemetry.manifest.alert.name,
        "fired_at": telemetry.manifest.alert.fired_at.isoformat(),
        "rows": counts,
        "baseline": telemetry.baseline.present() if telemetry.baseline else [],
        "after": telemetry.recorded_actions() or [],
        "topology_services": len(telemetry.topology),
        "repo": str(telemetry.repo) if telemetry.repo else None,
    }
