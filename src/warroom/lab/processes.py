"""Child processes of the lab: started so they die with it, and recorded so `lab down` can sweep them.

Every child gets PR_SET_PDEATHSIG(SIGKILL) before it executes, so a SIGKILL of the supervisor
still ends it; every child's pid and kernel start time go to run/pids, so `lab down` can end
whatever is left without ever signalling a recycled pid.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

from warroom import parent_death


def die_with_parent() -> None:
    parent_death.arm()
    # The parent may already have gone between fork and prctl.
    if os.getppid() == 1:
        os._exit(1)


def start_time(pid: int) -> str | None:
    """The process' start time in clock ticks since boot (field 22 of /proc/PID/stat)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[19]


def record(pids_file: Path, pid: int, name: str) -> None:
    with pids_file.open("a", encoding="utf-8") as handle:
        handle.write(f"{pid} {start_time(pid)} {name}\n")


def sweep(pids_file: Path, grace: float = 5.0) -> list[str]:
    """End every recorded process that is still the one recorded; returns what was ended."""
    if not pids_file.exists():
        return []
    alive: list[tuple[int, str]] = []
    for line in pids_file.read_text().splitlines():
        pid_text, started, name = ([*line.split(" ", 2), "", ""])[:3]
        if pid_text.isdigit() and start_time(int(pid_text)) == started:
            alive.append((int(pid_text), name))
    for pid, _ in alive:
        _signal(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(start_time(pid) for pid, _ in alive):
        time.sleep(0.1)
    for pid, _ in alive:
        if start_time(pid):
            _signal(pid, signal.SIGKILL)
    pids_file.unlink(missing_ok=True)
    return [name for _, name in alive]


def _signal(pid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signum)


async def spawn(
    argv: list[str],
    *,
    name: str,
    pids_file: Path,
    log: Path,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    user: str | None = None,
    pass_fds: tuple[int, ...] = (),
    before_exec: Callable[[], None] | None = None,
) -> asyncio.subprocess.Process:
    def prepare() -> None:
        die_with_parent()
        if before_exec:
            before_exec()

    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as output:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=output,
            stderr=output,
            env=env,
            cwd=cwd,
            user=user,
            pass_fds=pass_fds,
            preexec_fn=prepare,
        )
    record(pids_file, process.pid, name)
    return process


async def stop(process: asyncio.subprocess.Process, signum: int = signal.SIGTERM, grace: float = 10.0) -> None:
    if process.returncode is not None:
        return
    try:
        process.send_signal(signum)
        await asyncio.wait_for(process.wait(), grace)
    except ProcessLookupError:
        return
    except TimeoutError:
        process.kill()
        await process.wait()
