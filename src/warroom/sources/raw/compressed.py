"""Files written gzip-compressed (`metrics.jsonl.gz`, rotated logs): recognised and read by what they hold.

Exporters and capture scripts often compress what they write; a reader sniffs the decompressed
head and reads the decompressed content, and names the format by the suffix before `.gz`.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

from warroom.errors import BundleError

GZIP_MAGIC = b"\x1f\x8b"


def suffix(path: Path) -> str:
    """The format's suffix: `.jsonl` for both `x.jsonl` and `x.jsonl.gz`."""
    return Path(path.stem).suffix if path.suffix == ".gz" else path.suffix


def head_text(path: Path, head: bytes) -> bytes:
    """The first bytes of what the file holds (decompressed as far as the head allows)."""
    if not head.startswith(GZIP_MAGIC):
        return head
    try:
        return zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(head)
    except zlib.error:
        return b""


def content(path: Path) -> bytes:
    """The whole content, decompressed; a BundleError naming the file when it cannot be read."""
    try:
        data = path.read_bytes()
        return gzip.decompress(data) if data.startswith(GZIP_MAGIC) else data
    except (OSError, EOFError, gzip.BadGzipFile, zlib.error) as exc:
        raise BundleError(f"cannot read ({exc.__class__.__name__}: {str(exc)[:120]})", file=path) from None
