"""Is a path there to read? Something that is there but cannot be read is an error, never "absent"."""

from __future__ import annotations

import errno
import os
from pathlib import Path

from warroom.errors import BundleError


def present(path: Path, kind: str = "file") -> bool:
    """Whether `path` is there to read; False only when nothing is there at all. Something that is
    there but cannot be read as a `kind` ("file" or "folder") — a symbolic link loop, a dangling
    link, a file where a folder belongs, no permission — is an error, never "absent"."""
    try:
        path.stat()
    except FileNotFoundError:
        if path.is_symlink():
            raise BundleError("is a dangling symbolic link", file=path) from None
        return False
    except OSError as exc:
        what = "a symbolic link loop" if exc.errno == errno.ELOOP else exc.strerror or exc.__class__.__name__
        raise BundleError(f"cannot be read ({what})", file=path) from None
    is_dir = os.path.isdir(path)
    if kind == "folder" and not is_dir:
        raise BundleError("expected a folder, found a file", file=path)
    if kind == "file" and (is_dir or not os.path.isfile(path)):
        raise BundleError("expected a file, found a folder" if is_dir else "not a regular file", file=path)
    if not os.access(path, os.R_OK | (os.X_OK if is_dir else 0)):
        raise BundleError("cannot be read (permission denied)", file=path)
    return True
