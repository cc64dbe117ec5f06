"""What the lab's change path derives from its deploy log: the version a rollback goes back to.

Rollback and revert run inside the supervisor (its control API's POST /rollback and /revert), so
`warroom lab rollback`, warroom's http actions and anything else that can send a request take the
same path, and each becomes one record of the deploy log like any other change."""

from __future__ import annotations

from warroom.lab import deploy
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
