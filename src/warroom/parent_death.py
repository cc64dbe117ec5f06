"""Children that end with their parent: the one place warroom asks Linux for it.

`PR_SET_PDEATHSIG(SIGKILL)` makes the kernel kill this process when the thread that started it
dies, even by SIGKILL, when no cleanup code runs. Callers check afterwards whether the parent
was already gone before the signal was armed. Elsewhere than on Linux nothing is armed, and the
callers' own checks remain."""

from __future__ import annotations

import ctypes
import signal
import sys

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>

# Loaded once, at import: `arm` also runs between fork and exec (a `preexec_fn`), where nothing
# heavier than one system call should happen.
_LIBC = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def arm() -> None:
    """Ask the kernel to SIGKILL this process when its parent dies (Linux; elsewhere a no-op)."""
    if _LIBC is not None:
        _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
