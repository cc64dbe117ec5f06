"""Shell command action: an argv list (never a shell string), an environment allow-list, a timeout."""

from __future__ import annotations

import os
import shlex
import subprocess
import time
from collections.abc import Mapping, Sequence

from pydantic import Field, field_validator

from warroom.actions.contract import ActionAdapter, Check, Params, RunOptions, StepResult
from warroom.incident import RiskLevel
from warroom.redact import redact

MAX_OUTPUT_CHARS = 8000  # keep the tail: the end of a command's output is where it says what went wrong

# Variables every child needs to find its programs and decode text; nothing else leaks through.
BASE_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TZ")


def run_argv(
    argv: Sequence[str],
    *,
    timeout_s: float,
    env: Mapping[str, str],
    cwd: str | None = None,
) -> StepResult:
    """Run argv without a shell; capture, trim and redact its output; report a timeout as such."""
    started = time.monotonic()
    try:
        proc = subprocess.run(
            list(argv),
            shell=False,
            env=dict(env),
            cwd=cwd,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout_s,
            stdin=subprocess.DEVNULL,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        out = _text(exc.stdout)
        err = _text(exc.stderr)
        return StepResult(
            ok=False,
            timed_out=True,
            detail=f"timed out after {timeout_s:g} s: {shlex.join(argv)}",
            data={"argv": list(argv), "stdout": _tail(out), "stderr": _tail(err), "seconds": timeout_s},
        ).redacted()
    except OSError as exc:
        return StepResult(
            ok=False, detail=f"cannot start {argv[0]}: {exc.strerror or exc}", data={"argv": list(argv)}
        ).redacted()
    seconds = round(time.monotonic() - started, 3)
    ok = proc.returncode == 0
    last = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-1:] or [""]
    detail = f"exit {proc.returncode}: {shlex.join(argv)}" + ("" if ok else f" — {last[0][:200]}")
    return StepResult(
        ok=ok,
        changed=ok,
        detail=detail,
        data={
            "argv": list(argv),
            "returncode": proc.returncode,
            "stdout": _tail(proc.stdout),
            "stderr": _tail(proc.stderr),
            "seconds": seconds,
        },
    ).redacted()


def _text(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _tail(text: str) -> str:
    return redact(text[-MAX_OUTPUT_CHARS:])


def child_env(source: Mapping[str, str], allow: Sequence[str], extra: Mapping[str, str]) -> dict[str, str]:
    """The environment of a child: the base variables and the allow-listed ones from `source`, then
    the explicit ones."""
    env = {name: source[name] for name in (*BASE_ENV, *allow) if name in source}
    env.update(extra)
    return env


class ShellParams(Params):
    argv: list[str] = Field(min_length=1)
    env_allow: list[str] = Field(default_factory=list)  # names passed through from warroom's environment
    env: dict[str, str] = Field(default_factory=dict)  # explicit values (shown redacted in the audit)
    cwd: str | None = None
    timeout_s: float = Field(default=60.0, gt=0)
    expect_returncode: int = 0
    verify_argv: list[str] | None = None  # a probe that exits 0 when the change took effect
    undo_argv: list[str] | None = None

    @field_validator("argv", "verify_argv", "undo_argv")
    @classmethod
    def _no_empty(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and (not value or not value[0]):
            raise ValueError("an argv needs a program as its first element")
        return value


class ShellCommand(ActionAdapter[ShellParams]):
    name = "shell"
    params_model = ShellParams
    risk = RiskLevel.MEDIUM
    undoable = True  # when the step names an undo_argv
    summary = "run a program (argv list, no shell) with an environment allow-list and a timeout"

    def describe(self, params: ShellParams) -> str:
        return redact(shlex.join(params.argv))

    def _env(self, params: ShellParams, options: RunOptions) -> dict[str, str]:
        return child_env(options.env or os.environ, params.env_allow, params.env)

    def execute(self, params: ShellParams, options: RunOptions) -> StepResult:
        result = run_argv(params.argv, timeout_s=params.timeout_s, env=self._env(params, options), cwd=params.cwd)
        if not result.timed_out and result.data.get("returncode") is not None:
            ok = result.data["returncode"] == params.expect_returncode
            result = result.model_copy(update={"ok": ok, "changed": ok})
        return result

    def verify(self, params: ShellParams, result: StepResult, options: RunOptions) -> Check:
        if not result.ok:
            return Check(ok=False, detail=result.detail)
        if params.verify_argv is None:
            return Check(ok=True, detail=f"exit {params.expect_returncode} as expected")
        probe = run_argv(params.verify_argv, timeout_s=params.timeout_s, env=self._env(params, options), cwd=params.cwd)
        return Check(ok=probe.ok, detail=f"probe {probe.detail}", data=probe.data)

    def undo(self, params: ShellParams, result: StepResult, options: RunOptions) -> StepResult | None:
        if params.undo_argv is None:
            return None
        return run_argv(params.undo_argv, timeout_s=params.timeout_s, env=self._env(params, options), cwd=params.cwd)
