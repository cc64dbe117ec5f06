"""What an operator (or warroom's actions) does to the running lab through its own change path:
deploy a commit, roll a service back, revert a commit, restart, scale. Each becomes one record of
the deploy log, like any other change, so an incident's timeline shows the response as it was."""

from __future__ import annotations

from typing import Any

from warroom.lab import deploy
from warroom.lab import repo as shop_repo
from warroom.lab.client import LabClient
from warroom.lab.topology import LabError, LabPaths


def previous_version(paths: LabPaths, service: str) -> str:
    """The commit the service ran before its current one (as `kubectl rollout undo` picks it)."""
    runs = [r.commit for r in deploy.read_log(paths) if r.service == service and r.status == "succeeded"]
    if not runs:
        raise LabError(f"{service} has no deploy in the deploy log", file=paths.deploy_log)
    current = runs[-1]
    earlier = [commit for commit in runs if commit != current]
    if not earlier:
        raise LabError(f"{service} has run only {current[:12]}: nothing to roll back to", file=paths.deploy_log)
    return earlier[-1]


def rollback(paths: LabPaths, service: str, to: str | None = None, deployed_by: str = "oncall") -> dict[str, Any]:
    target = to or previous_version(paths, service)
    return LabClient(paths).deploy(service, target, deployed_by, f"rollback of {service} to {target[:12]}")


def revert(
    paths: LabPaths, commit: str, service: str, deployed_by: str = "oncall", author: str | None = None
) -> dict[str, Any]:
    """A new commit that undoes `commit` (a config revert, a code revert), deployed to `service`."""
    client = LabClient(paths)
    reverted = shop_repo.revert(paths.repo, commit, author)
    return client.deploy(service, reverted, deployed_by)
