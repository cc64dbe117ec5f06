"""Talking to a running lab's supervisor over its loopback control API."""

from __future__ import annotations

from typing import Any

import httpx

from warroom.lab import postgres
from warroom.lab.topology import LabError, LabPaths, LabState, read_state


class LabClient:
    def __init__(self, paths: LabPaths) -> None:
        state = read_state(paths)
        if state is None:
            raise LabError(f"no lab is running in {paths.root} (start one with `warroom lab up --dir {paths.root}`)")
        if not state.ready:
            raise LabError(state.error or f"the lab in {paths.root} is still starting", file=paths.state)
        self.state: LabState = state
        self.base = f"http://127.0.0.1:{state.control_port}"
        self.headers = {"authorization": f"Bearer {state.token}"}

    def status(self) -> dict[str, Any]:
        return dict(httpx.get(f"{self.base}/status", timeout=10).json())

    def _change(self, operation: str, body: dict[str, Any]) -> dict[str, Any]:
        answer = httpx.post(f"{self.base}/{operation}", json=body, headers=self.headers, timeout=180)
        if answer.status_code != 200:
            raise LabError(f"{operation} of {body.get('service')} failed: {answer.json().get('error', answer.text)}")
        return dict(answer.json())

    def deploy(self, service: str, commit: str, deployed_by: str, description: str | None = None) -> dict[str, Any]:
        """Run `commit` on `service` (a deploy, a config change, or a rollback to an older commit)."""
        body = {"service": service, "commit": commit, "deployed_by": deployed_by, "description": description}
        return self._change("deploy", body)

    def restart(self, service: str, deployed_by: str, description: str | None = None) -> dict[str, Any]:
        return self._change("restart", {"service": service, "deployed_by": deployed_by, "description": description})

    def scale(self, service: str, replicas: int, deployed_by: str, description: str | None = None) -> dict[str, Any]:
        body = {"service": service, "replicas": replicas, "deployed_by": deployed_by, "description": description}
        return self._change("scale", body)

    def rollback(self, service: str, deployed_by: str, to: str | None = None) -> dict[str, Any]:
        """Run the version `service` ran before (or `to`); the supervisor reads the deploy log."""
        return self._change("rollback", {"service": service, "to": to, "deployed_by": deployed_by})

    def revert(self, commit: str, service: str | None, deployed_by: str, author: str | None = None) -> dict[str, Any]:
        """A new commit that undoes `commit` (a config revert, a code revert), deployed to `service`."""
        body = {"commit": commit, "service": service, "deployed_by": deployed_by, "author": author}
        return self._change("revert", body)

    def stop(self) -> None:
        httpx.post(f"{self.base}/stop", headers=self.headers, timeout=10).raise_for_status()

    def url(self, role: str) -> str:
        return f"http://127.0.0.1:{self.state.ports[role]}"

    def database_url(self) -> str:
        """The shop database as the services reach it (for SQL actions: end a query, create an index)."""
        return postgres.url(self.state.ports["postgres"])
