"""Releases and the deploy log.

A release is the tree of one commit exported to releases/<sha>/ (workers run from it, so a
checkout of another commit never changes a running worker's files). Every deploy appends one
JSON line to the deploy log with the fields deploy tools commonly write.
"""

from __future__ import annotations

import io
import tarfile
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, model_validator

from warroom.lab import repo as shop_repo
from warroom.lab.topology import LabError, LabPaths

DeployKind = Literal["deploy", "config", "rollback", "scale", "restart"]
_log_lock = threading.Lock()
_release_lock = threading.Lock()


class CommitInfo(BaseModel):
    sha: str
    author: str
    email: str
    time: datetime
    message: str


class DeployRecord(BaseModel):
    # The change's id, as a diagnosis names it (`kind-service-version`; records written before ids
    # were recorded get the same one when read).
    id: str = ""
    time: datetime
    service: str
    version: str
    commit: str
    previous_version: str | None
    previous_commit: str | None
    commits: list[CommitInfo]
    author: str | None
    kind: DeployKind
    description: str
    deployed_by: str
    status: Literal["succeeded", "failed"]
    replicas: int | None = None

    @model_validator(mode="after")
    def _default_id(self) -> DeployRecord:
        if not self.id:
            self.id = f"{self.kind}-{self.service}-{self.version}"
        return self


def change_commit(paths: LabPaths, change: str) -> tuple[str, str | None]:
    """The commit a change names and the service it went to: a deploy-log id (the commit its deploy
    brought, and its service) or a commit itself (no service)."""
    for record in reversed(read_log(paths)):
        if record.id == change:
            brought = [c.sha for c in record.commits]
            if len(brought) > 1:
                raise LabError(
                    f"change {change} brought {len(brought)} commits of {record.service}; name the one to revert",
                    field="commit",
                )
            return (brought[0] if brought else record.commit), record.service
    try:
        return shop_repo.git(paths.repo, "rev-parse", "--verify", "--quiet", f"{change}^{{commit}}").strip(), None
    except LabError:
        raise LabError(f"no change or commit {change!r} in the deploy log or the repository", field="commit") from None


class ServiceSpec(BaseModel):
    """One service's entry of deploy/services.yaml in a release."""

    replicas: int = 1
    memory_limit_mb: int = 256
    cpu_limit: float | None = None  # cores (a CFS quota), as a container's CPU limit
    upstreams: list[str] = []


def release(paths: LabPaths, commit: str) -> Path:
    """The exported tree of `commit` (created on first use)."""
    target = paths.releases / commit
    with _release_lock:  # services deployed together share one export
        if not (target / ".complete").exists():
            archive = shop_repo.git_bytes(paths.repo, "archive", "--format=tar", commit)
            target.mkdir(parents=True, exist_ok=True)
            with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
                tar.extractall(target, filter="data")
            (target / ".complete").write_text(commit + "\n")
    return target


def service_spec(release_dir: Path, service: str) -> ServiceSpec:
    manifest = release_dir / "deploy" / "services.yaml"
    document = yaml.safe_load(manifest.read_text()) or {}
    entry = (document.get("services") or {}).get(service)
    if entry is None:
        raise LabError(f"no entry for service {service!r}", file=manifest, field="services")
    return ServiceSpec.model_validate(entry)


def service_paths(service: str) -> list[str]:
    """The repository paths a service's deploy carries (its code, shared code, its config, the platform)."""
    return [f"shop/{service}/", "shop/common/", f"config/{service}.yaml", "deploy/", "db/"]


def commits_between(paths: LabPaths, previous: str | None, commit: str, service: str) -> list[CommitInfo]:
    if previous is None or previous == commit:
        return []
    ancestor = shop_repo.is_ancestor(paths.repo, previous, commit)
    span = f"{previous}..{commit}" if ancestor else f"{commit}..{previous}"
    out = shop_repo.git(
        paths.repo, "log", "--format=%H%x1f%an%x1f%ae%x1f%aI%x1f%B%x1e", span, "--", *service_paths(service)
    )
    commits = []
    for chunk in out.split("\x1e"):
        if chunk.strip():
            sha, author, email, when, message = chunk.strip("\n").split("\x1f", 4)
            commits.append(
                CommitInfo(sha=sha, author=author, email=email, time=datetime.fromisoformat(when), message=message)
            )
    return commits


def classify(paths: LabPaths, previous: str | None, commit: str, replicas_changed: bool) -> DeployKind:
    if previous is None or previous == commit:
        return "deploy"
    if not shop_repo.is_ancestor(paths.repo, previous, commit):
        return "rollback"
    if replicas_changed:
        return "scale"
    changed = shop_repo.changed_files(paths.repo, previous, commit)
    if changed and all(name.startswith(("config/", "deploy/")) for name in changed):
        return "config"
    return "deploy"


def append(paths: LabPaths, record: DeployRecord) -> None:
    with _log_lock, paths.deploy_log.open("a", encoding="utf-8") as handle:
        handle.write(record.model_dump_json() + "\n")


def read_log(paths: LabPaths) -> list[DeployRecord]:
    if not paths.deploy_log.exists():
        return []
    records = []
    for number, line in enumerate(paths.deploy_log.read_text().splitlines(), start=1):
        if line.strip():
            try:
                records.append(DeployRecord.model_validate_json(line))
            except ValueError as exc:
                raise LabError(
                    f"not a deploy record: {str(exc).splitlines()[0]}", file=paths.deploy_log, line=number
                ) from None
    return records


def current_versions(paths: LabPaths) -> dict[str, str]:
    """The commit each service last deployed successfully (from the deploy log)."""
    versions: dict[str, str] = {}
    for record in read_log(paths):
        if record.status == "succeeded":
            versions[record.service] = record.commit
    return versions


def now() -> datetime:
    return datetime.now(UTC)
