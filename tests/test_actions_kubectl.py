"""kubectl actions: argv built with explicit context/namespace and --dry-run, run against a fake
`kubectl` executable on PATH (a real subprocess that records its argv)."""

from __future__ import annotations

import pytest

from actions_helpers import fake_kubectl, kubectl_calls
from warroom.actions.contract import RunOptions
from warroom.actions.kubectl import KubectlRolloutRestart, KubectlRolloutUndo, KubectlScale, KubectlSetEnv
from warroom.errors import InputError

BASE = {"context": "prod-eu", "namespace": "shop", "name": "checkout"}
PREFIX = ["--context", "prod-eu", "--namespace", "shop"]


def test_scale_reads_previous_count_and_undo_restores_it(tmp_path):
    env, log = fake_kubectl(tmp_path)
    adapter = KubectlScale()
    params = adapter.parse({**BASE, "replicas": 6})
    result = adapter.execute(params, RunOptions(env=env))
    assert result.ok, result.detail
    assert result.data["previous_replicas"] == 3
    undone = adapter.undo(params, result, RunOptions(env=env))
    assert undone is not None and undone.ok
    assert kubectl_calls(log) == [
        [*PREFIX, "get", "deployment/checkout", "-o", "jsonpath={.spec.replicas}"],
        [*PREFIX, "scale", "deployment/checkout", "--replicas=6"],
        [*PREFIX, "scale", "deployment/checkout", "--replicas=3"],
    ]


@pytest.mark.parametrize("mode", ["client", "server"])
def test_preview_passes_dry_run_mode(tmp_path, mode):
    env, log = fake_kubectl(tmp_path)
    adapter = KubectlRolloutRestart()
    params = adapter.parse(BASE)
    result = adapter.preview(params, RunOptions(env=env, kubectl_dry_run=mode))
    assert result.ok and not result.changed
    assert kubectl_calls(log) == [[*PREFIX, "rollout", "restart", "deployment/checkout", f"--dry-run={mode}"]]


def test_preview_without_dry_run_mode_runs_nothing(tmp_path):
    env, log = fake_kubectl(tmp_path)
    adapter = KubectlRolloutUndo()
    result = adapter.preview(adapter.parse(BASE), RunOptions(env=env))
    assert result.ok
    assert "rollout undo deployment/checkout" in result.detail
    assert kubectl_calls(log) == []


def test_set_env_and_rollout_status_verification(tmp_path):
    env, log = fake_kubectl(tmp_path)
    adapter = KubectlSetEnv()
    params = adapter.parse({**BASE, "env": {"DB_POOL_SIZE": "40"}, "container": "app"})
    result = adapter.execute(params, RunOptions(env=env))
    assert result.ok
    restart = KubectlRolloutRestart()
    rparams = restart.parse(BASE)
    rresult = restart.execute(rparams, RunOptions(env=env))
    assert restart.verify(rparams, rresult, RunOptions(env=env)).ok is True
    calls = kubectl_calls(log)
    assert calls[0] == [*PREFIX, "set", "env", "deployment/checkout", "--containers=app", "DB_POOL_SIZE=40"]
    assert calls[1] == [*PREFIX, "rollout", "restart", "deployment/checkout"]
    assert calls[2][:7] == [*PREFIX, "rollout", "status", "deployment/checkout"]


def test_forced_dry_run_param_is_honoured_on_execute(tmp_path):
    env, log = fake_kubectl(tmp_path)
    adapter = KubectlRolloutUndo()
    params = adapter.parse({**BASE, "dry_run": "server"})
    result = adapter.execute(params, RunOptions(env=env))
    assert result.ok and not result.changed
    assert kubectl_calls(log) == [[*PREFIX, "rollout", "undo", "deployment/checkout", "--dry-run=server"]]
    assert adapter.undo(params, result, RunOptions(env=env)) is None


def test_kubectl_error_is_a_failed_step(tmp_path):
    env, _ = fake_kubectl(tmp_path)
    (tmp_path / "kubectl.fail").write_text("")
    adapter = KubectlRolloutRestart()
    result = adapter.execute(adapter.parse(BASE), RunOptions(env=env))
    assert not result.ok
    assert "not found" in result.detail


def test_names_are_validated_so_no_option_can_be_smuggled_in():
    with pytest.raises(InputError):
        KubectlScale().parse({**BASE, "name": "--all", "replicas": 1})
    with pytest.raises(InputError):
        KubectlScale().parse({"namespace": "shop", "name": "checkout", "replicas": 1})  # no context
