"""Deploy logs as CD systems and scripts write them: JSON lines, CSV with a header, or YAML (a list
of entries, or one under `deploys:`/`deployments:`/`changes:`/`releases:`).

Fields, looked up in this order:

- time: `time`, `timestamp`, `deployed_at`, `finished_at`, `completed_at`, `date`, `created_at`, `at`;
- service: `service`, `app`, `application`, `component`, `project`;
- version: `version`, `tag`, `release`, the tag of `image` (`shop/checkout:1.4.2` → `1.4.2`);
- commit: `commit`, `sha`, `revision`, `git_sha`, `commit_sha`, `git_commit`; else the last of
  `commits` (the range deployed, newest last);
- kind: `kind`, `type`, `action`, `event` (`deploy`, `rollback`, `config`, …), default `deploy`;
- author: `author`, `deployer`, `user`, `triggered_by`, `by`;
- description: `description`, `message`, `summary`, `title`, `notes`, followed by
  `from <previous_version>` and the `commits` of the range when given (the canonical table has no
  column for them);
- id: `id`, `deploy_id`, `change_id`, `deployment_id`; else `kind-service-version`.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from warroom.errors import BundleError
from warroom.sources.canonical import TABLES
from warroom.sources.raw.changes import Change, change_read
from warroom.sources.raw.reader import RawRead, ReadOptions
from warroom.sources.raw.text import Skipped, decoded_head, first_record, json_lines, read_text

TIME_KEYS = ("time", "timestamp", "deployed_at", "finished_at", "completed_at", "date", "created_at", "at")
SERVICE_KEYS = ("service", "app", "application", "component", "project")
VERSION_KEYS = ("version", "tag", "release")
COMMIT_KEYS = ("commit", "sha", "revision", "git_sha", "commit_sha", "git_commit")
KIND_KEYS = ("kind", "type", "action", "event")
AUTHOR_KEYS = ("author", "deployer", "user", "triggered_by", "by")
DESCRIPTION_KEYS = ("description", "message", "summary", "title", "notes")
ID_KEYS = ("id", "deploy_id", "change_id", "deployment_id")
YAML_LISTS = ("deploys", "deployments", "changes", "releases")
# What tells a deploy entry from a log line: it names what was deployed.
DEPLOY_KEYS = {*VERSION_KEYS, *COMMIT_KEYS, "previous_version", "commits", "deployed_at", "image"}
LOG_KEYS = {"level", "severity", "levelname", "lvl", "msg"}


def _first(entry: Mapping[str, Any], keys: tuple[str, ...]) -> str | None:
    value = next((entry[k] for k in keys if entry.get(k) not in (None, "")), None)
    return None if value is None else str(value)


def is_deploy_entry(entry: Mapping[str, Any]) -> bool:
    keys = set(entry)
    return bool(_first(entry, TIME_KEYS) and _first(entry, SERVICE_KEYS) and keys & DEPLOY_KEYS and not keys & LOG_KEYS)


def _commits(value: Any) -> list[str]:
    if isinstance(value, str):
        return [part for part in re.split(r"[\s,;]+", value) if part]
    if isinstance(value, list):
        return [str(item.get("sha") or item.get("commit") or item.get("id")) if isinstance(item, dict) else str(item)
                for item in value]  # fmt: skip
    return []


def deploy_change(entry: Mapping[str, Any], line: int) -> Change:
    commits = _commits(entry.get("commits"))
    version = _first(entry, VERSION_KEYS)
    image = entry.get("image")
    if version is None and isinstance(image, str) and ":" in image.rsplit("/", 1)[-1]:
        version = image.rsplit(":", 1)[1]
    details = [_first(entry, DESCRIPTION_KEYS) or ""]
    if entry.get("previous_version"):
        details.append(f"from {entry['previous_version']}")
    if commits:
        details.append(f"commits {', '.join(commits)}")
    return Change(
        line=line,
        id=_first(entry, ID_KEYS),
        time=next((entry[k] for k in TIME_KEYS if entry.get(k) not in (None, "")), None),
        service=_first(entry, SERVICE_KEYS),
        kind=(_first(entry, KIND_KEYS) or "deploy").lower(),
        version=version,
        commit=_first(entry, COMMIT_KEYS) or (commits[-1] if commits else None),
        author=_first(entry, AUTHOR_KEYS),
        description="; ".join(part for part in details if part) or None,
    )


def _yaml_entries(text: str, path: Path) -> list[tuple[dict[str, Any], int]]:
    try:
        node = yaml.compose(text, Loader=yaml.CSafeLoader)
        data = yaml.load(text, Loader=yaml.CSafeLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise BundleError("invalid YAML", file=path, line=mark.line + 1 if mark else None) from None
    items_node = node
    if isinstance(data, dict):
        key = next((k for k in YAML_LISTS if isinstance(data.get(k), list)), None)
        if key is None:
            raise BundleError(f"expected a list of deploys, or one under {', '.join(YAML_LISTS)}", file=path, line=1)
        data = data[key]
        items_node = next(v for k, v in node.value if k.value == key) if isinstance(node, yaml.MappingNode) else None
    lines = [item.start_mark.line + 1 for item in items_node.value] if isinstance(items_node, yaml.SequenceNode) else []
    return [(entry, lines[i] if i < len(lines) else 1) for i, entry in enumerate(data or []) if isinstance(entry, dict)]


def _csv_entries(text: str) -> list[tuple[dict[str, Any], int]]:
    reader = csv.DictReader(io.StringIO(text))
    return [(dict(row), reader.line_num) for row in reader]


def _shape(path: Path, head: bytes) -> str | None:
    record = first_record(head)
    if record is not None:
        return "jsonl" if is_deploy_entry(record) and not _is_canonical(path, record) else None
    text = decoded_head(head)
    if path.suffix.lower() in (".yaml", ".yml"):
        try:
            data = yaml.load(text, Loader=yaml.CSafeLoader)
        except yaml.YAMLError:
            return None
        if isinstance(data, dict):
            data = next((data[k] for k in YAML_LISTS if isinstance(data.get(k), list)), None)
        first = data[0] if isinstance(data, list) and data else None
        return "yaml" if isinstance(first, dict) and is_deploy_entry(first) else None
    if path.suffix.lower() == ".csv":
        rows = list(csv.DictReader(io.StringIO(text)))[:1]
        return "csv" if rows and is_deploy_entry(rows[0]) and not _is_canonical(path, rows[0]) else None
    return None


def _is_canonical(path: Path, record: Mapping[str, Any]) -> bool:
    spec = TABLES["changes"]
    return path.stem == "changes" and set(record) <= {*spec.required, *spec.optional}


class DeployLog:
    name = "deploy log (JSON lines, CSV or YAML)"

    def sniff(self, path: Path, head: bytes) -> bool:
        return _shape(path, head) is not None

    def read(self, path: Path, options: ReadOptions) -> RawRead:
        text = read_text(path)
        skipped = Skipped()
        with path.open("rb") as handle:
            shape = _shape(path, handle.read(65536))
        if shape == "jsonl":
            records = json_lines(text, path, "deploy entries (JSON objects)")
            entries = list(zip(records.records, records.line_numbers, strict=True))
            skipped = records.skipped
        elif shape == "yaml":
            entries = _yaml_entries(text, path)
        else:
            entries = _csv_entries(text)
        changes = []
        for entry, line in entries:
            if is_deploy_entry(entry):
                changes.append(deploy_change(entry, line))
            else:
                skipped.add("not a deploy entry (time, service and version or commit)", line)
        return change_read(changes, path, skipped, f"deploy log ({shape})")
