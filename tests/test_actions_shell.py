"""Shell action: a real subprocess, argv only, environment allow-list, timeout, redacted output."""

from __future__ import annotations

import sys

import pytest

from warroom.actions.contract import RunOptions
from warroom.actions.shell import ShellCommand
from warroom.errors import InputError

PY = sys.executable


def run(params: dict, env: dict[str, str] | None = None):
    adapter = ShellCommand()
    parsed = adapter.parse(params)
    return adapter, parsed, adapter.execute(parsed, RunOptions(env=env or {"PATH": "/usr/bin:/bin"}))


def test_argv_is_not_interpreted_by_a_shell(tmp_path):
    marker = tmp_path / "pwned"
    _, _, result = run({"argv": ["echo", f"hello; touch {marker}"]})
    assert result.ok
    assert result.data["stdout"].strip() == f"hello; touch {marker}"
    assert not marker.exists()


def test_only_allow_listed_environment_reaches_the_child():
    env = {"PATH": "/usr/bin:/bin", "SECRET_THING": "x", "ALLOWED_ONE": "visible"}
    code = "import os; print(sorted(k for k in os.environ if k in ('SECRET_THING','ALLOWED_ONE','EXTRA')))"
    _, _, result = run({"argv": [PY, "-c", code], "env_allow": ["ALLOWED_ONE"], "env": {"EXTRA": "1"}}, env)
    assert result.ok
    assert result.data["stdout"].strip() == "['ALLOWED_ONE', 'EXTRA']"


def test_output_is_redacted():
    code = "print('connecting to postgres://app:Sup3rS3cret@db:5432/shop'); print('api_key=AbCdEf123456789')"
    _, _, result = run({"argv": [PY, "-c", code]})
    assert result.ok
    assert "Sup3rS3cret" not in result.data["stdout"]
    assert "AbCdEf123456789" not in result.data["stdout"]
    assert "[REDACTED]" in result.data["stdout"]


def test_failure_reports_exit_code_and_stderr():
    _, _, result = run({"argv": [PY, "-c", "import sys; sys.stderr.write('boom: disk full\\n'); sys.exit(3)"]})
    assert not result.ok
    assert result.data["returncode"] == 3
    assert "boom: disk full" in result.detail


def test_timeout_kills_the_child():
    _, _, result = run({"argv": [PY, "-c", "import time; time.sleep(30)"], "timeout_s": 0.5})
    assert result.timed_out and not result.ok
    assert result.data["seconds"] == 0.5


def test_missing_program_is_a_failure_not_an_exception():
    _, _, result = run({"argv": ["/nonexistent/program"]})
    assert not result.ok
    assert "cannot start" in result.detail


def test_verify_probe_and_undo(tmp_path):
    flag = tmp_path / "flag"
    adapter, params, result = run(
        {
            "argv": [PY, "-c", f"open({str(flag)!r}, 'w').write('on')"],
            "verify_argv": [PY, "-c", f"import os, sys; sys.exit(0 if os.path.exists({str(flag)!r}) else 1)"],
            "undo_argv": ["rm", "-f", str(flag)],
        }
    )
    options = RunOptions(env={"PATH": "/usr/bin:/bin"})
    assert adapter.verify(params, result, options).ok is True
    undone = adapter.undo(params, result, options)
    assert undone is not None and undone.ok
    assert not flag.exists()
    assert adapter.verify(params, result, options).ok is False


def test_schema_rejects_shell_strings_and_unknown_keys():
    adapter = ShellCommand()
    with pytest.raises(InputError):
        adapter.parse({"argv": "rm -rf /"})
    with pytest.raises(InputError):
        adapter.parse({"argv": ["true"], "shell": True})
