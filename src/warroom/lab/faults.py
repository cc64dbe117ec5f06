"""The lab's faults (data/faults.yaml) and how `lab break` applies them.

A code or config fault is a commit to the shop repository, by one of its authors, deployed to
its service through the supervisor's deploy path like any other change; a traffic fault changes
what the load generator sends. The truth — service, fault type, commit, file, changed lines,
the defect's line, the mitigation, the onset — is written to the lab's truth/ folder.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import Any

import yaml
from pydantic import BaseModel

from warroom.lab import repo as shop_repo
from warroom.lab import truth as lab_truth
from warroom.lab.client import LabClient
from warroom.lab.loadgen import Profile, read_traffic, write_traffic
from warroom.lab.topology import LabError, LabPaths


class Fault(BaseModel):
    name: str
    fault_type: str
    service: str
    author: str | None = None
    message: str | None = None
    # path -> [[old, new], ...] or {"create": text}
    edits: dict[str, Any] = {}
    defect: str | None = None
    defect_file: str | None = None
    traffic: dict[str, Any] | None = None
    mitigation: lab_truth.Mitigation

    @property
    def change_kind(self) -> str:
        if self.traffic is not None:
            return "traffic"
        if all(path.startswith(("config/", "deploy/")) for path in self.edits):
            return "config"
        return "code"


@cache
def registry() -> dict[str, Fault]:
    document = yaml.safe_load(resources.files("warroom.lab").joinpath("data/faults.yaml").read_text())
    return {name: Fault.model_validate({"name": name, **spec}) for name, spec in document.items()}


def get(name: str) -> Fault:
    faults = registry()
    if name not in faults:
        raise LabError(f"unknown fault {name!r}; the lab knows {', '.join(faults)}", field="FAULT")
    return faults[name]


def edited_files(fault: Fault, read: Any) -> dict[str, str]:
    """The files as the fault's commit leaves them; `read(path)` gives a file's current text."""
    result: dict[str, str] = {}
    for path, edit in fault.edits.items():
        if isinstance(edit, dict):
            result[path] = str(edit["create"])
            continue
        text = str(read(path))
        for old, new in edit:
            if text.count(old) != 1:
                raise LabError(
                    f"fault {fault.name}: the text to change occurs {text.count(old)} times, expected once", file=path
                )
            text = text.replace(old, new)
        result[path] = text
    return result


def defect_line(text: str, defect: str) -> int:
    for number, line in enumerate(text.splitlines(), start=1):
        if defect.strip() in line:
            return number
    raise LabError(f"defect text {defect!r} not in the changed file")


_HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+(\d+)(?:,(\d+))? @@", re.MULTILINE)


def changed_lines(paths: LabPaths, commit: str, path: str) -> tuple[int, int]:
    """First and last line of the file that the commit added or changed."""
    diff = shop_repo.git(paths.repo, "diff", "-U0", f"{commit}~1", commit, "--", path)
    spans = [(int(start), int(start) + int(count or 1) - 1) for start, count in _HUNK.findall(diff) if count != "0"]
    if not spans:
        raise LabError(f"commit {commit[:12]} changes no line of {path}")
    return spans[0][0], spans[-1][1]


def _break_traffic(paths: LabPaths, fault: Fault) -> lab_truth.Truth:
    assert fault.traffic is not None
    traffic = read_traffic(paths.traffic)
    base = traffic.profiles[0]
    profile = Profile.model_validate({"users": base.users, "products": base.products, **fault.traffic})
    traffic.profiles = [p for p in traffic.profiles if p.name != profile.name] + [profile]
    write_traffic(paths.traffic, traffic)
    return lab_truth.Truth(
        fault=fault.name,
        fault_type=fault.fault_type,
        service=fault.service,
        change_kind="traffic",
        description=f"traffic profile {profile.name}: {profile.rate_per_second}/s from {profile.addresses.count} "
        f"addresses in {profile.addresses.network}",
        mitigation=fault.mitigation,
        onset=datetime.now(UTC),
    )


def _break_commit(paths: LabPaths, fault: Fault, client: LabClient) -> lab_truth.Truth:
    assert fault.author and fault.message
    previous = shop_repo.head(paths.repo)
    files = edited_files(fault, lambda path: (paths.repo / path).read_text(encoding="utf-8"))
    commit = shop_repo.commit_files(paths.repo, files, fault.author, fault.message)
    record = client.deploy(fault.service, commit, deployed_by="ci")
    defect_file = fault.defect_file or next(iter(files))
    return lab_truth.Truth(
        fault=fault.name,
        fault_type=fault.fault_type,
        service=fault.service,
        change_kind="config" if fault.change_kind == "config" else "code",
        commit=commit,
        previous_commit=previous,
        file=defect_file,
        lines=changed_lines(paths, commit, defect_file),
        defect_line=defect_line(files[defect_file], fault.defect) if fault.defect else None,
        description=fault.message.splitlines()[0],
        mitigation=fault.mitigation,
        onset=datetime.fromisoformat(record["time"]),
    )


def inject(paths: LabPaths, name: str) -> lab_truth.Truth:
    """Apply the fault to the running lab and record its truth."""
    fault = get(name)
    if lab_truth.open_fault(paths, name) is not None:
        raise LabError(f"{name} is already in force; `warroom lab end {name}` first", field="FAULT")
    client = LabClient(paths)
    truth = _break_traffic(paths, fault) if fault.traffic is not None else _break_commit(paths, fault, client)
    lab_truth.write(paths, truth)
    return truth


def end(paths: LabPaths, name: str) -> lab_truth.Truth:
    """Take the fault out, as the team does once the incident is over: the fault's commit reverted
    on the main branch and deployed, or the attack's traffic gone. The truth records when."""
    fault = get(name)
    truth = lab_truth.open_fault(paths, name)
    if truth is None:
        raise LabError(f"{name} is not in force", field="FAULT")
    if fault.traffic is not None:
        traffic = read_traffic(paths.traffic)
        traffic.profiles = [p for p in traffic.profiles if p.name != fault.traffic["name"]]
        write_traffic(paths.traffic, traffic)
        how = f"traffic profile {fault.traffic['name']} stopped"
    else:
        assert truth.commit is not None
        record = LabClient(paths).revert(truth.commit, fault.service, deployed_by="lab")
        how = f"revert {record['version']} deployed to {fault.service}"
    truth = truth.model_copy(update={"ended": datetime.now(UTC), "ended_by": how})
    lab_truth.write(paths, truth)
    return truth
