"""The report linter: what a person signing a postmortem would reject, checked on the written files.

`lint_reports(DIR)` reads the human documents of a report directory (postmortem.md and .html,
timeline.md, workflow.md, communications.md) and the incident's facts (facts.json), and returns
every problem with its file and line:

- placeholder: an unfilled template field (`{change_commit}`, `{{ x }}`) or a hole (None, nan);
- empty-value: an empty list or mapping rendered as a value (`[]`, `{}`);
- raw-float: a number no person formats that way (a decimal with more than four significant
  figures, or a ten-digit integer without separators);
- timeline-order: a timeline table whose times go backwards;
- summary-fact: a number in the summary that is not the value of a fact the line cites
  (policy thresholds in a "(≥ …)" note and the "worst N minutes" window are the rule's, not facts);
- recovery-claim: a claim of recovery while the facts hold no verified recovery;
- change-claim: a change or commit named that is not in the data, "no change precedes the onset"
  while changes do, or a rollback proposed when the data holds no change.

Fenced code blocks (raw context dumps in workflow.md) and log samples in <code> are data, not
statements, and are not linted.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from warroom.errors import InputError
from warroom.figures import Figure, format_clock
from warroom.values import parse_time

DOCUMENTS = ("postmortem.md", "postmortem.html", "timeline.md", "workflow.md", "communications.md")

PLACEHOLDER = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|(?<![\w$])\{[a-z_][a-z0-9_]*\}|\b(?:None|nan|NaN|undefined)\b")
EMPTY_VALUE = re.compile(r"(?<![\w\"'])(?:\[\s*\]|\{\s*\}|\(\s*\))(?![\w\"'])")
DECIMAL = re.compile(r"(?<![\w.:/#-])-?(\d[\d,]*)\.(\d+)(?![\w.])")
LONG_INTEGER = re.compile(r"(?<![\w.,:/#-])\d{10,}(?![\w.,])")
NUMBER = re.compile(r"(?<![\w.:/#\-–])(\d[\d,]*(?:\.\d+)?)(?![\w.:\-])")
CLOCK = re.compile(r"(?<![\w:])(\d{2}:\d{2}(?::\d{2})?)(?![\w:])")
DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")
POLICY_NOTE = re.compile(r"\(≥[^)]*\)|worst \d+ minutes|\d+ (?:interruption|branches)\b")
CITATION = re.compile(r"\[evidence:[^\]]*\]|\(source:[^)]*\)|<!--.*?-->|\(no evidence cited\)")
RECOVERY_CLAIM = re.compile(
    r"\b(?:recovered by|recovery (?:was )?(?:validated|verified|confirmed)|(?:system|service) (?:has )?recovered|"
    r"recovered the (?:system|service)|back to normal|operating normally|has been mitigated|resolved (?:in|after))\b",
    re.IGNORECASE,
)
NEGATED = re.compile(r"\b(?:not|no|never|without|unless|until)\b[^.;]{0,40}$", re.IGNORECASE)
CHANGE_NAMED = re.compile(r"\b(?:change|changes) ([A-Za-z][\w.-]*\d[\w.-]*)")
COMMIT_NAMED = re.compile(r"\bcommit ([0-9a-f]{7,40})\b")
NO_CHANGE = re.compile(r"\bno change\b[^.;]*\bprecedes?\b", re.IGNORECASE)
MAX_SIGNIFICANT = 4  # what fmt_value shows; more is a number nobody formatted
MAX_DECIMALS = 6
INLINE_CODE = re.compile(r"`[^`]*`")  # quoted data (log lines), not a statement
TIME_CELL = re.compile(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}")


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.rule}: {self.message}"


@dataclass
class TextLine:
    number: int
    text: str
    facts: list[str]  # cited facts (summary lines)
    summary: bool = False


class _HtmlText(HTMLParser):
    """Visible text of an HTML report by source line; <code>, <svg>, <style>, <title> are skipped.
    Summary items (li with data-facts inside ul.summary) are collected whole."""

    SKIP = frozenset({"code", "svg", "style", "script", "title"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: dict[int, list[str]] = {}
        self.skip = 0
        self.summary_depth = 0
        self.item: TextLine | None = None
        self.items: list[TextLine] = []
        self.tables: list[list[list[str]]] = []
        self.cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag in self.SKIP:
            self.skip += 1
        if tag == "ul" and "summary" in (found.get("class") or ""):
            self.summary_depth = 1
        if tag == "li" and self.summary_depth:
            self.item = TextLine(self.getpos()[0], "", (found.get("data-facts") or "").split(), summary=True)
        if tag == "table":
            self.tables.append([])
        if tag == "tr" and self.tables:
            self.tables[-1].append([])
        if tag in ("td", "th"):
            self.cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP:
            self.skip = max(0, self.skip - 1)
        if tag == "li" and self.item is not None:
            self.items.append(self.item)
            self.item = None
        if tag == "ul":
            self.summary_depth = 0
        if tag in ("td", "th") and self.cell is not None and self.tables and self.tables[-1]:
            self.tables[-1][-1].append("".join(self.cell).strip())
            self.cell = None

    def handle_data(self, data: str) -> None:
        if self.skip:
            return
        self.lines.setdefault(self.getpos()[0], []).append(data)
        if self.item is not None:
            self.item.text += data
        if self.cell is not None:
            self.cell.append(data)


def _markdown_lines(text: str) -> tuple[list[TextLine], list[list[list[str]]]]:
    """Lines outside fenced code, summary lines with their cited facts, and the tables."""
    out: list[TextLine] = []
    tables: list[list[list[str]]] = []
    fenced = False
    in_summary = False
    current: list[list[str]] | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        if line.startswith("```"):
            fenced = not fenced
            continue
        if fenced:
            continue
        if line.startswith("## "):
            in_summary = line.strip() == "## Summary"
        facts = re.findall(r"<!-- facts: (.*?) -->", line)
        out.append(
            TextLine(number, line, facts[0].split() if facts else [], summary=in_summary and line.startswith("- "))
        )
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if current is None:
                current = []
                tables.append(current)
            if not all(set(c) <= set("-: ") for c in cells):
                current.append(cells)
        else:
            current = None
    return out, tables


def _text_problems(name: str, lines: list[TextLine]) -> list[Problem]:
    problems: list[Problem] = []
    for line in lines:
        text = INLINE_CODE.sub(" code ", re.sub(r"<!--.*?-->", "", line.text))
        for match in PLACEHOLDER.finditer(text):
            problems.append(Problem(name, line.number, "placeholder", f"unfilled or missing value {match.group(0)!r}"))
        for match in EMPTY_VALUE.finditer(text):
            problems.append(Problem(name, line.number, "empty-value", f"empty value {match.group(0)!r} shown"))
        for match in DECIMAL.finditer(text):
            whole, fraction = match.group(1).replace(",", ""), match.group(2)
            significant = (whole + fraction).lstrip("0")
            if len(significant) > MAX_SIGNIFICANT or len(fraction) > MAX_DECIMALS:
                problems.append(Problem(name, line.number, "raw-float", f"unformatted number {match.group(0)}"))
        for match in LONG_INTEGER.finditer(text):
            problems.append(Problem(name, line.number, "raw-float", f"unformatted number {match.group(0)}"))
    return problems


def _table_problems(name: str, tables: list[list[list[str]]]) -> list[Problem]:
    """Every table with a 'Time (UTC)' column must run forward in time."""
    problems: list[Problem] = []
    for table in tables:
        if not table:
            continue
        header = table[0]
        column = next((i for i, cell in enumerate(header) if cell.startswith("Time (UTC)")), None)
        if column is None:
            continue
        previous: datetime | None = None
        for index, row in enumerate(table[1:], start=1):
            if column >= len(row):
                continue
            found = TIME_CELL.search(row[column])
            at = parse_time(found.group(0).replace(" ", "T")) if found else None
            if found is None or at is None:
                continue
            if previous is not None and at < previous:
                problems.append(
                    Problem(name, index, "timeline-order", f"row {index} at {found.group(0)} precedes the row before")
                )
            previous = at
    return problems


def _fact_tokens(facts: dict[str, Any], keys: list[str]) -> set[str]:
    """The numbers and clock times the cited facts show, as the reports format them."""
    tokens: set[str] = set()
    figures = facts.get("figures") or {}
    times = facts.get("times") or {}
    for key in keys:
        if key in figures:
            figure = Figure.model_validate(figures[key])
            tokens.update(NUMBER.findall(figure.text()))
            if figure.window is not None:
                tokens.update(CLOCK.findall(f"{format_clock(figure.window.start)} {format_clock(figure.window.end)}"))
        if key in times:
            at = parse_time(times[key])
            tokens.update(CLOCK.findall(format_clock(at)))
    return tokens


def _summary_problems(name: str, lines: list[TextLine], facts: dict[str, Any]) -> list[Problem]:
    problems: list[Problem] = []
    for line in lines:
        if not line.summary:
            continue
        text = POLICY_NOTE.sub("", CITATION.sub("", re.sub(r"`[^`]*`", "", line.text)))
        allowed = _fact_tokens(facts, line.facts)
        clocks = CLOCK.findall(text)
        for clock in clocks:
            if clock not in allowed:
                problems.append(Problem(name, line.number, "summary-fact", f"time {clock} is not a cited fact"))
        rest = DATE.sub("", CLOCK.sub("", text))
        for number in NUMBER.findall(rest):
            if number not in allowed:
                problems.append(Problem(name, line.number, "summary-fact", f"{number} is not a cited fact's value"))
    return problems


def _claim_problems(name: str, lines: list[TextLine], facts: dict[str, Any]) -> list[Problem]:
    problems: list[Problem] = []
    verified = bool((facts.get("recovery") or {}).get("verified"))
    changes = facts.get("changes") or {}
    suspect = changes.get("suspect") or {}
    known_ids = {str(i) for i in [*(changes.get("ids") or []), suspect.get("id")] if i}
    commits = [str(c) for c in [*(changes.get("commits") or []), suspect.get("commit")] if c]
    for line in lines:
        text = INLINE_CODE.sub(" code ", CITATION.sub("", line.text))
        if not verified:
            for match in RECOVERY_CLAIM.finditer(text):
                if not NEGATED.search(text[: match.start()]):
                    problems.append(
                        Problem(name, line.number, "recovery-claim", f"'{match.group(0)}' without a verified recovery")
                    )
        for match in CHANGE_NAMED.finditer(text):
            named = match.group(1).rstrip(".")
            if changes.get("history") is not None and named not in known_ids:
                problems.append(Problem(name, line.number, "change-claim", f"change {named} is not in the data"))
        for match in COMMIT_NAMED.finditer(text):
            sha = match.group(1)
            if changes.get("history") is not None and not any(c.startswith(sha) or sha.startswith(c) for c in commits):
                problems.append(Problem(name, line.number, "change-claim", f"commit {sha} is not in the data"))
        if NO_CHANGE.search(text) and (not changes.get("checked") or changes.get("preceding") or suspect):
            problems.append(
                Problem(
                    name,
                    line.number,
                    "change-claim",
                    "says no change precedes the onset, but the check did not run or found one",
                )
            )
    return problems


def _fact_problems(facts: dict[str, Any]) -> list[Problem]:
    """Claims the facts themselves make: a rollback needs a change to roll back."""
    changes = facts.get("changes") or {}
    if changes.get("history") is None or changes.get("ids") or changes.get("suspect"):
        return []  # not looked at, or a change is there to roll back
    return [
        Problem(
            "facts.json",
            0,
            "change-claim",
            f"action {a.get('id')} proposes a {a.get('kind')} but the data holds no change",
        )
        for a in facts.get("actions") or []
        if a.get("kind") in ("rollback", "revert_config")
    ]


def lint_reports(directory: Path) -> list[Problem]:
    """Every problem in the report directory's documents, in file order."""
    if not directory.is_dir():
        raise InputError("not a report directory", file=directory)
    facts_path = directory / "facts.json"
    if not facts_path.is_file():
        raise InputError("no facts.json: not a report directory written by warroom", file=directory)
    try:
        facts = json.loads(facts_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"invalid JSON ({exc.msg})", file=facts_path, line=exc.lineno) from None
    problems = _fact_problems(facts)
    for name in DOCUMENTS:
        path = directory / name
        if not path.is_file():
            continue
        text = path.read_text(encoding="utf-8")
        if name.endswith(".html"):
            parser = _HtmlText()
            parser.feed(text)
            lines = [TextLine(n, " ".join(parts), []) for n, parts in sorted(parser.lines.items())]
            problems += _text_problems(name, lines) + _claim_problems(name, lines, facts)
            problems += _table_problems(name, parser.tables) + _summary_problems(name, parser.items, facts)
        else:
            lines, tables = _markdown_lines(text)
            problems += _text_problems(name, lines) + _claim_problems(name, lines, facts)
            problems += _table_problems(name, tables) + _summary_problems(name, lines, facts)
    return problems
