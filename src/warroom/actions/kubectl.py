"""kubectl actions built as argv: scale, rollout restart, rollout undo, set env.

Context and namespace are always explicit (never whatever the operator's kubeconfig points at), and
`--dry-run=client|server` is passed through: a preview runs the real command with it.
"""

from __future__ import annotations

import os
import re
import shlex

from pydantic import Field, field_validator

from warroom.actions.contract import ActionAdapter, Check, KubectlDryRun, Params, RunOptions, StepResult
from warroom.actions.shell import child_env, run_argv
from warroom.incident import RiskLevel
from warroom.redact import redact

_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")
_KIND = re.compile(r"^[a-z]+(\.[a-z0-9.]+)?$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]*$")


class KubectlParams(Params):
    context: str = Field(min_length=1)
    namespace: str = Field(min_length=1)
    kind: str = "deployment"
    name: str
    kubectl: str = "kubectl"  # the program; found on PATH
    kubeconfig_env: list[str] = Field(default_factory=lambda: ["KUBECONFIG"])  # passed to the child
    dry_run: KubectlDryRun = "none"  # force a dry run even when executing (e.g. to validate a runbook)
    timeout_s: float = Field(default=120.0, gt=0)

    @field_validator("name", "namespace")
    @classmethod
    def _dns_name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(f"{value!r} is not a Kubernetes object name")
        return value

    @field_validator("kind")
    @classmethod
    def _kind(cls, value: str) -> str:
        if not _KIND.match(value):
            raise ValueError(f"{value!r} is not a resource kind")
        return value

    @property
    def resource(self) -> str:
        return f"{self.kind}/{self.name}"


class ScaleParams(KubectlParams):
    replicas: int = Field(ge=0)
    previous_replicas: int | None = Field(default=None, ge=0)  # for undo; read from the cluster if absent


class SetEnvParams(KubectlParams):
    env: dict[str, str] = Field(min_length=1)
    container: str | None = None

    @field_validator("env")
    @classmethod
    def _env_names(cls, value: dict[str, str]) -> dict[str, str]:
        bad = [name for name in value if not _ENV_NAME.match(name)]
        if bad:
            raise ValueError(f"not an environment variable name: {bad[0]!r}")
        return value


def base_argv(params: KubectlParams) -> list[str]:
    return [params.kubectl, "--context", params.context, "--namespace", params.namespace]


def with_dry_run(argv: list[str], mode: KubectlDryRun) -> list[str]:
    return [*argv, f"--dry-run={mode}"] if mode != "none" else argv


class _Kubectl(ActionAdapter[KubectlParams]):
    """Shared plumbing: build argv, run it, preview it with --dry-run."""

    def argv(self, params: KubectlParams) -> list[str]:
        raise NotImplementedError

    def describe(self, params: KubectlParams) -> str:
        return redact(shlex.join(with_dry_run(self.argv(params), params.dry_run)))

    def _run(self, argv: list[str], params: KubectlParams, options: RunOptions) -> StepResult:
        env = child_env(options.env or os.environ, params.kubeconfig_env, {})
        return run_argv(argv, timeout_s=params.timeout_s, env=env)

    def preview(self, params: KubectlParams, options: RunOptions) -> StepResult:
        mode = params.dry_run if params.dry_run != "none" else options.kubectl_dry_run
        if mode == "none":
            return StepResult(ok=True, detail=f"would run: {self.describe(params)}")
        result = self._run(with_dry_run(self.argv(params), mode), params, options)
        return result.model_copy(update={"changed": False, "detail": f"dry run ({mode}): {result.detail}"})

    def execute(self, params: KubectlParams, options: RunOptions) -> StepResult:
        result = self._run(with_dry_run(self.argv(params), params.dry_run), params, options)
        if params.dry_run != "none":
            result = result.model_copy(update={"changed": False})
        return result


class KubectlScale(_Kubectl):
    name = "kubectl.scale"
    params_model = ScaleParams
    risk = RiskLevel.MEDIUM
    undoable = True
    summary = "kubectl scale to N replicas (undo: back to the previous count)"

    def argv(self, params: KubectlParams) -> list[str]:
        assert isinstance(params, ScaleParams)
        return [*base_argv(params), "scale", params.resource, f"--replicas={params.replicas}"]

    def execute(self, params: KubectlParams, options: RunOptions) -> StepResult:
        assert isinstance(params, ScaleParams)
        previous = params.previous_replicas
        if previous is None and params.dry_run == "none":
            # Read the current count first so that the scale can be undone.
            probe = self._run(
                [*base_argv(params), "get", params.resource, "-o", "jsonpath={.spec.replicas}"], params, options
            )
            text = str(probe.data.get("stdout", "")).strip()
            previous = int(text) if probe.ok and text.isdigit() else None
        result = super().execute(params, options)
        return result.model_copy(update={"data": {**result.data, "previous_replicas": previous}})

    def undo(self, params: KubectlParams, result: StepResult, options: RunOptions) -> StepResult | None:
        assert isinstance(params, ScaleParams)
        previous = result.data.get("previous_replicas")
        if previous is None or params.dry_run != "none":
            return None
        back = params.model_copy(update={"replicas": int(previous), "previous_replicas": params.replicas})
        return self._run(self.argv(back), params, options)


class KubectlRolloutRestart(_Kubectl):
    name = "kubectl.rollout_restart"
    params_model = KubectlParams
    risk = RiskLevel.MEDIUM
    summary = "kubectl rollout restart (new pods; nothing to undo)"

    def argv(self, params: KubectlParams) -> list[str]:
        return [*base_argv(params), "rollout", "restart", params.resource]

    def verify(self, params: KubectlParams, result: StepResult, options: RunOptions) -> Check:
        if not result.ok or params.dry_run != "none":
            return Check(ok=result.ok, detail=result.detail)
        status = self._run(
            [*base_argv(params), "rollout", "status", params.resource, f"--timeout={int(params.timeout_s)}s"],
            params,
            options,
        )
        return Check(ok=status.ok, detail=f"rollout status: {status.detail}", data=status.data)


class KubectlRolloutUndo(_Kubectl):
    name = "kubectl.rollout_undo"
    params_model = KubectlParams
    risk = RiskLevel.HIGH
    undoable = True
    summary = "kubectl rollout undo to the previous revision (undo: undo again)"

    def argv(self, params: KubectlParams) -> list[str]:
        return [*base_argv(params), "rollout", "undo", params.resource]

    def undo(self, params: KubectlParams, result: StepResult, options: RunOptions) -> StepResult | None:
        if params.dry_run != "none":
            return None
        # `rollout undo` goes back one revision, so a second one restores what was running before.
        return self._run(self.argv(params), params, options)


class KubectlSetEnv(_Kubectl):
    name = "kubectl.set_env"
    params_model = SetEnvParams
    risk = RiskLevel.MEDIUM
    undoable = True
    summary = "kubectl set env NAME=VALUE (undo: rollout undo to the previous revision)"

    def argv(self, params: KubectlParams) -> list[str]:
        assert isinstance(params, SetEnvParams)
        argv = [*base_argv(params), "set", "env", params.resource]
        if params.container:
            argv.append(f"--containers={params.container}")
        return argv + [f"{key}={value}" for key, value in params.env.items()]

    def undo(self, params: KubectlParams, result: StepResult, options: RunOptions) -> StepResult | None:
        if params.dry_run != "none":
            return None
        return self._run([*base_argv(params), "rollout", "undo", params.resource], params, options)
