"""Plain text logs: a time stamp opens each line, a level keyword follows (`2024-05-27T15:21:30Z
ERROR payment failed`, Python's `2024-05-27 15:21:30,123 - checkout - ERROR - …`, Spring Boot's
`… ERROR 1 --- [main] c.e.Checkout : …`, `[27/May/2024:15:21:30 +0000] [error] …`).

Lines that do not open with a time stamp continue the previous line (stack traces). The level is
the first level word among the first few words after the time (brackets and colons stripped);
a line without one is INFO. The service is the file's name (`checkout.log`), as plain lines rarely
name it; a file with a generic name (`app.log`) needs the service in its name.
"""

from __future__ import annotations

import re
from pathlib import Path

from warroom.sources.raw.logs import LogLine, LogReadStats, log_read
from warroom.sources.raw.logs_fields import service_from_file_name
from warroom.sources.raw.reader import RawRead, ReadOptions
from warroom.sources.raw.semconv import level_of
from warroom.sources.raw.text import Skipped, first_head_line, lines, read_text
from warroom.sources.raw.times import leading_time

LEVEL_SEARCH_WORDS = 6  # the level sits within the first words after the time in every layout above
_WORD = re.compile(r"[\[\]():|<>-]+")


def text_level(rest: str) -> tuple[str | None, str]:
    """(canonical level, the rest with the level word removed) of the text after the time."""
    words = rest.split()
    for index, word in enumerate(words[:LEVEL_SEARCH_WORDS]):
        bare = _WORD.sub("", word).rsplit(".", 1)[-1]  # `[error]`, `ERROR:`, `production.ERROR:` (Laravel)
        if len(bare) >= 3 and (bare.isupper() or bare.lower() in LOWER_CASE_LEVELS):
            level = level_of(bare)
            if level is not None:
                return level, " ".join(words[index + 1 :]).lstrip(":- ")
    return None, rest.strip()


# Level words the layouts above also write in lower case (`[error]`, Apache's `[warn]`).
LOWER_CASE_LEVELS = {"trace", "debug", "info", "notice", "warn", "warning", "error", "crit", "critical", "fatal"}


class PlainLogs:
    name = "plain text log lines (time stamp, level, message)"

    def sniff(self, path: Path, head: bytes) -> bool:
        first = first_head_line(head)
        return first is not None and not first[1].lstrip().startswith("{") and leading_time(first[1]) is not None

    def read(self, path: Path, options: ReadOptions) -> RawRead:
        skipped = Skipped()
        service = service_from_file_name(path) if options.service_label is None else None
        stats = LogReadStats()
        found: list[LogLine] = []
        for number, line in lines(read_text(path)):
            opened = leading_time(line)
            if opened is None:
                if found:
                    found[-1].message += "\n" + line
                else:
                    skipped.add("no time stamp before the first line that has one", number)
                continue
            micros, end = opened
            level, message = text_level(line[end:])
            stats.no_level += int(level is None)
            found.append(LogLine(number, micros, service, level, message or line[end:].strip() or "(empty)"))
        if service is not None:
            stats.service_from["the file name"] = len(found)
        return log_read(found, path, skipped, "plain text log lines", stats)
