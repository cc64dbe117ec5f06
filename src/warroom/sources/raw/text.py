"""Text files as event readers receive them: decoded with a known encoding, split into numbered
lines or JSON records, with what could not be parsed counted instead of aborting the whole file.

A file whose bytes are not in an encoding we can name is an error (one line, naming the file and
the line of the first bad byte). A file whose records are mostly usable keeps them: the lines that
are not records are skipped and counted in one named limitation (how many, why, the first line),
so a truncated last line or a stray banner never throws away an export.
"""

from __future__ import annotations

import codecs
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import orjson

from warroom.errors import BundleError

# Byte-order marks that name their encoding. Windows tools (PowerShell's `>`) write UTF-16 with one.
_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


def encoding_of(head: bytes) -> str:
    """The encoding a file's first bytes announce (UTF-8 when they announce none)."""
    return next((name for bom, name in _BOMS if head.startswith(bom)), "utf-8")


# Every reader sniffing a file decodes the same head: decoded once per file (a bytes object keeps
# its hash, so the lookup does not rescan the 64 KiB).
@lru_cache(maxsize=4)
def decoded_head(head: bytes) -> str:
    """The first bytes as text for sniffing: decoded leniently (a multi-byte character may be cut)."""
    return head.decode(encoding_of(head), errors="ignore").lstrip("\ufeff")


# The sniffers of the line-based shapes all look at the head's first line: split out once per file
# (splitting the whole head per sniffer cost more than reading the file).
@lru_cache(maxsize=4)
def first_head_line(head: bytes) -> tuple[int, str] | None:
    """(line number from 1, line) of the head's first non-blank line; None for a blank head."""
    return next(lines(decoded_head(head)), None)


def read_text(path: Path) -> str:
    """The whole file as text; a byte that is not in the file's encoding is a one-line error."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise BundleError(f"cannot be read ({exc.strerror or exc.__class__.__name__})", file=path) from None
    return decoded(data, path)


def decoded(data: bytes, path: Path) -> str:
    """`data` (a file's content, decompressed) as text; a byte that is not in its encoding is a
    one-line error naming the line."""
    encoding = encoding_of(data[:4])
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise BundleError(
            f"not {encoding.removesuffix('-sig').upper()} text (byte 0x{data[exc.start]:02x}); "
            "expected UTF-8, or UTF-16 with a byte-order mark",
            file=path,
            line=line,
        ) from None


def lines(text: str) -> Iterator[tuple[int, str]]:
    """(line number from 1, line) for every non-blank line."""
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            yield number, line


@dataclass
class Skipped:
    """Lines a reader could not use, counted per reason, with the first line of each."""

    counts: dict[str, int] = field(default_factory=dict)
    first: dict[str, int] = field(default_factory=dict)

    def add(self, reason: str, line: int) -> None:
        self.counts[reason] = self.counts.get(reason, 0) + 1
        self.first.setdefault(reason, line)

    def total(self) -> int:
        return sum(self.counts.values())

    def limitations(self, path: Path, what: str) -> list[str]:
        """One sentence per reason: `file: 3 lines skipped (not JSON objects; first at line 7)`."""
        return [
            f"{path.name}: {n} {what}{'s' if n != 1 else ''} skipped ({reason}; first at line {self.first[reason]})"
            for reason, n in self.counts.items()
        ]

    def fail_if_nothing_left(self, kept: int, path: Path, expected: str) -> None:
        """Nothing usable at all is an error naming the first bad line, not an empty table."""
        if kept == 0 and self.counts:
            reason, line = min(self.first.items(), key=lambda item: item[1])
            raise BundleError(f"{reason}; expected {expected}", file=path, line=line)


@dataclass
class JsonRecords:
    """The JSON objects of a file with the line each starts on."""

    records: list[dict[str, Any]]
    line_numbers: list[int]
    skipped: Skipped


def json_lines(text: str, path: Path, expected: str) -> JsonRecords:
    """One JSON object per line; other lines are skipped and counted."""
    records = json_records(lines(text))
    records.skipped.fail_if_nothing_left(len(records.records), path, expected)
    return records


def json_records(numbered: Iterable[tuple[int, str]]) -> JsonRecords:
    """The JSON object of each (line number, line); other lines are skipped and counted."""
    records: list[dict[str, Any]] = []
    numbers: list[int] = []
    skipped = Skipped()
    for number, line in numbered:
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError:
            skipped.add("not JSON", number)
            continue
        if not isinstance(value, dict):
            skipped.add("not a JSON object", number)
            continue
        records.append(value)
        numbers.append(number)
    return JsonRecords(records, numbers, skipped)


def json_documents(text: str, path: Path, expected: str) -> JsonRecords:
    """JSON objects one after another, each on one line or pretty-printed over many (as the
    OpenTelemetry SDK's console exporters write them), or one JSON array of objects."""
    if is_json_lines(text):
        return json_lines(text, path, expected)
    stripped = text.lstrip()
    # orjson has no incremental decoding; pretty-printed documents are small by nature (console
    # exporters), so the standard library's decoder is fast enough for them.
    decoder = json.JSONDecoder()
    records: list[dict[str, Any]] = []
    numbers: list[int] = []
    skipped = Skipped()
    position = len(text) - len(stripped)
    while position < len(text):
        line = text.count("\n", 0, position) + 1
        try:
            value, end = decoder.raw_decode(text, position)
        except ValueError:
            # Skip to the next line that opens an object and try again from there.
            skipped.add("not JSON", line)
            following = text.find("\n{", position)
            if following < 0:
                break
            position = following + 1
            continue
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, dict):
                records.append(item)
                numbers.append(line)
            else:
                skipped.add("not a JSON object", line)
        position = end
        while position < len(text) and text[position] in " \t\r\n,":
            position += 1
    skipped.fail_if_nothing_left(len(records), path, expected)
    return JsonRecords(records, numbers, skipped)


def is_json_lines(text: str) -> bool:
    """Whether a file of JSON documents holds one per line (or only one line)."""
    return "\n" not in text.strip() or _one_object_per_line(text)


def _one_object_per_line(text: str) -> bool:
    """Whether the first lines each hold a whole object (JSON Lines), as opposed to pretty-printed."""
    for _, line in zip(range(3), lines(text), strict=False):
        candidate = line[1].strip()
        if not (candidate.startswith("{") and candidate.endswith("}")):
            return False
    return True


def first_record(head: bytes) -> dict[str, Any] | None:
    """The first JSON object of a file's head (a JSON line or a pretty-printed document), for
    sniffing by the keys a record has; None when the head does not open with one."""
    text = decoded_head(head).lstrip()
    if not text.startswith("{"):
        return None
    first_line = text.split("\n", 1)[0]
    try:
        value = orjson.loads(first_line)
    except orjson.JSONDecodeError:
        try:
            value, _ = json.JSONDecoder().raw_decode(text)
        except ValueError:
            return None
    return value if isinstance(value, dict) else None
