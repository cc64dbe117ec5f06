"""Code explorer: what changed between the last good and the bad version of a service, and which of the
changed code acquires a resource without releasing it on some path, queries columns no index covers,
or retries without a bound; then the other places in the repository with the same pattern.

Uses the git CLI (argv lists, never a shell) and tree-sitter; only the files the diff touches are
parsed, plus files `git grep` pre-selects for the pattern search, so a repository with thousands of
commits costs a handful of git calls.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, Field

from warroom.analysis.code_patterns import ACQUIRE, PatternHit, Schema, analyse_source, language_of, parse_schema
from warroom.incident import Evidence

GIT_TIMEOUT_S = 60
MAX_PATTERN_FILES = 400  # cap on files parsed for the "same pattern elsewhere" search
KIND_ORDER = {
    "resource_leak": 0,
    "unindexed_query": 1,
    "unbounded_cache": 2,
    "destructive_migration": 3,
    "config_change": 4,
    "unbounded_retry": 5,
}
CONFIG_SUFFIXES = (".yaml", ".yml", ".json", ".toml", ".ini", ".conf", ".cfg", ".properties", ".env")
# Statements of a migration that destroy data: dropping a table or column, truncating, deleting or
# updating every row (no WHERE), or narrowing a column's type.
DESTRUCTIVE_SQL = (
    (re.compile(r"(?i)\bdrop\s+table\b"), "drops a table and every row in it"),
    (
        re.compile(r"(?i)\bdrop\s+column\b|\balter\s+table\s+\S+\s+drop\s+(?!constraint|index)\w+"),
        "drops a column and its data",
    ),
    (re.compile(r"(?i)\btruncate\b"), "truncates a table"),
    (re.compile(r"(?i)^\s*delete\s+from\s+[\w.\"]+\s*;"), "deletes every row of a table (no WHERE)"),
    (re.compile(r"(?i)^\s*update\s+[\w.\"]+\s+set\s+[^;]*;"), "rewrites every row of a table (no WHERE)"),
    (
        re.compile(r"(?i)\balter\s+column\s+\S+\s+(set\s+data\s+)?type\b"),
        "changes a column's type (may truncate values)",
    ),
)


class GitError(RuntimeError):
    """A git command failed (not a repository, unknown commit …)."""


def git(repo: Path, *args: str, stdin: bytes | None = None) -> bytes:
    proc = subprocess.run(
        ["git", "-C", str(repo), "-c", "core.quotepath=off", *args],
        input=stdin,
        capture_output=True,
        timeout=GIT_TIMEOUT_S,
        check=False,
    )
    if proc.returncode != 0:
        message = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        raise GitError(f"git {args[0]}: {message[0] if message else 'failed'}")
    return proc.stdout


def resolve(repo: Path, ref: str) -> str | None:
    """Full commit id for a ref or (abbreviated) hash, or None when the repository does not have it."""
    try:
        return git(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}").decode().strip() or None
    except GitError:
        return None


class CommitInfo(BaseModel):
    commit: str
    author: str
    date: str
    subject: str


class FileChange(BaseModel):
    path: str
    status: str  # A, M, D, R…
    added: int
    removed: int
    language: str | None = None


class CodeFinding(BaseModel):
    """One pattern occurrence, located to file and line, with the change that introduced it."""

    kind: str  # resource_leak | unindexed_query | unbounded_retry
    file: str
    line: int
    function: str | None = None
    language: str
    detail: str
    snippet: str = ""
    confidence: float
    in_diff: bool
    commit: str | None = None
    author: str | None = None
    commit_subject: str | None = None
    data: dict[str, object] = Field(default_factory=dict)

    def statement(self) -> str:
        """Blameless one-liner: what the code does and which change brought it in."""
        where = f"{self.file}:{self.line}" + (f" ({self.function})" if self.function else "")
        origin = f"; introduced by the change in commit {self.commit[:12]}" if self.commit else ""
        if self.commit_subject:
            origin += f" (“{self.commit_subject}”)"
        return f"{where}: {self.detail}{origin}"

    def evidence(self) -> Evidence:
        return Evidence(
            source="code",
            query=f"{self.file}:{self.line}",
            values={
                "kind": self.kind,
                "function": self.function,
                "commit": self.commit,
                "author": self.author,
                "in_diff": self.in_diff,
                **{k: v for k, v in self.data.items() if isinstance(v, str | int | float) or v is None},
            },
            samples=[self.snippet] if self.snippet else [],
        )


class CodeAnalysis(BaseModel):
    repo: str
    bad: str
    good: str | None
    commits: list[CommitInfo] = Field(default_factory=list)  # good..bad, newest first
    files: list[FileChange] = Field(default_factory=list)
    findings: list[CodeFinding] = Field(default_factory=list)  # in the changed code, best first
    same_pattern: list[CodeFinding] = Field(default_factory=list)  # elsewhere in the repository
    limitations: list[str] = Field(default_factory=list)

    @property
    def primary(self) -> CodeFinding | None:
        return self.findings[0] if self.findings else None


def commit_info(repo: Path, commit: str) -> CommitInfo:
    out = git(repo, "show", "-s", "--format=%H%x1f%an%x1f%aI%x1f%s", commit).decode("utf-8", "replace")
    sha, author, date, subject = out.strip().split("\x1f", 3)
    return CommitInfo(commit=sha, author=author, date=date, subject=subject)


def commits_between(repo: Path, good: str | None, bad: str, limit: int = 200) -> list[CommitInfo]:
    spec = f"{good}..{bad}" if good else f"{bad}^!"
    out = git(repo, "log", f"--max-count={limit}", "--format=%H%x1f%an%x1f%aI%x1f%s", spec).decode("utf-8", "replace")
    infos = []
    for line in out.splitlines():
        if line.strip():
            sha, author, date, subject = line.split("\x1f", 3)
            infos.append(CommitInfo(commit=sha, author=author, date=date, subject=subject))
    return infos


def _base(repo: Path, good: str | None, bad: str) -> str | None:
    if good:
        return good
    parent = resolve(repo, f"{bad}^")
    return parent


def changed_files(repo: Path, base: str | None, bad: str) -> list[FileChange]:
    if base is None:  # the root commit: everything is new
        names = git(repo, "ls-tree", "-r", "--name-only", bad).decode("utf-8", "replace").splitlines()
        return [FileChange(path=n, status="A", added=0, removed=0, language=language_of(n)) for n in names]
    numstat = git(repo, "diff", "--numstat", "-M", base, bad).decode("utf-8", "replace")
    status = git(repo, "diff", "--name-status", "-M", base, bad).decode("utf-8", "replace")
    kinds: dict[str, str] = {}
    for line in status.splitlines():
        parts = line.split("\t")
        if len(parts) >= 2:
            kinds[parts[-1]] = parts[0][:1]
    files = []
    for line in numstat.splitlines():
        parts = line.split("\t")
        if len(parts) < 3:
            continue
        path = parts[2]
        if " => " in path:  # rename: keep the new name
            path = re.sub(r"\{([^}]*) => ([^}]*)\}", r"\2", path)
            path = path.split(" => ")[-1].replace("//", "/")
        added = int(parts[0]) if parts[0].isdigit() else 0
        removed = int(parts[1]) if parts[1].isdigit() else 0
        files.append(
            FileChange(path=path, status=kinds.get(path, "M"), added=added, removed=removed, language=language_of(path))
        )
    return files


_HUNK = re.compile(r"^@@ -\d+(?:,\d+)? \+(\d+)(?:,(\d+))? @@")


def changed_lines(repo: Path, base: str, bad: str, paths: list[str]) -> dict[str, list[tuple[int, int]]]:
    """New-side line ranges each hunk touches; a pure deletion is the point where lines were removed."""
    if not paths:
        return {}
    out = git(repo, "diff", "-U0", "--no-color", "-M", base, bad, "--", *paths).decode("utf-8", "replace")
    ranges: dict[str, list[tuple[int, int]]] = {}
    current: str | None = None
    for line in out.splitlines():
        if line.startswith("+++ "):
            name = line[4:]
            current = name[2:] if name.startswith("b/") else None
        elif current and line.startswith("@@"):
            match = _HUNK.match(line)
            if match:
                start = int(match.group(1))
                count = int(match.group(2)) if match.group(2) is not None else 1
                ranges.setdefault(current, []).append((start, start + max(count, 1) - 1))
    return ranges


def read_blobs(repo: Path, commit: str, paths: list[str]) -> dict[str, bytes]:
    """File contents at a commit, all through one `git cat-file --batch`."""
    if not paths:
        return {}
    request = "".join(f"{commit}:{p}\n" for p in paths).encode()
    out = git(repo, "cat-file", "--batch", stdin=request)
    blobs: dict[str, bytes] = {}
    pos = 0
    for path in paths:
        end = out.index(b"\n", pos)
        header = out[pos:end].split()
        pos = end + 1
        if len(header) == 3 and header[1] == b"blob":
            size = int(header[2])
            blobs[path] = out[pos : pos + size]
            pos += size + 1
    return blobs


def load_schema(repo: Path, commit: str) -> Schema:
    names = git(repo, "ls-tree", "-r", "--name-only", commit).decode("utf-8", "replace").splitlines()
    sql = [n for n in names if n.lower().endswith(".sql")]
    blobs = read_blobs(repo, commit, sql)
    return parse_schema([(p, b.decode("utf-8", "replace")) for p, b in blobs.items()])


def introducing_commit(repo: Path, base: str | None, bad: str, path: str, start: int, end: int) -> CommitInfo | None:
    """The newest commit in base..bad that touched lines start..end of `path` (git log -L)."""
    spec = f"{base}..{bad}" if base else bad
    try:
        out = git(repo, "log", "--format=@@@%H%x1f%an%x1f%aI%x1f%s", "-L", f"{start},{end}:{path}", spec, "--").decode(
            "utf-8", "replace"
        )
    except GitError:
        return None
    for line in out.splitlines():
        if line.startswith("@@@"):
            sha, author, date, subject = line[3:].split("\x1f", 3)
            return CommitInfo(commit=sha, author=author, date=date, subject=subject)
    return None


def blame_line(repo: Path, commit: str, path: str, line: int) -> CommitInfo | None:
    try:
        out = git(repo, "blame", "--porcelain", "-L", f"{line},{line}", commit, "--", path).decode("utf-8", "replace")
    except GitError:
        return None
    lines = out.splitlines()
    if not lines:
        return None
    sha = lines[0].split()[0]
    fields = dict(
        (ln.split(" ", 1)[0], ln.split(" ", 1)[1] if " " in ln else "") for ln in lines[1:] if not ln.startswith("\t")
    )
    return CommitInfo(
        commit=sha,
        author=fields.get("author", ""),
        date=fields.get("author-time", ""),
        subject=fields.get("summary", ""),
    )


def _overlaps(hit: PatternHit, ranges: list[tuple[int, int]]) -> tuple[bool, bool]:
    """(the hit's own lines changed, its function changed)."""
    own = any(a <= hit.end_line and hit.line <= b for a, b in ranges)
    func = any(a <= hit.function_end and hit.function_start <= b for a, b in ranges)
    return own, func


@dataclass
class _Parsed:
    path: str
    language: str
    hits: list[PatternHit]


def _finding(path: str, language: str, hit: PatternHit, in_diff: bool, confidence: float) -> CodeFinding:
    return CodeFinding(
        kind=hit.kind,
        file=path,
        line=hit.line,
        function=hit.function,
        language=language,
        detail=hit.detail,
        snippet=hit.snippet,
        confidence=round(min(confidence, 0.97), 3),
        in_diff=in_diff,
        data=dict(hit.data),
    )


def _rank_key(f: CodeFinding, prefer: str | None, focus: str | None) -> tuple[int, int, float]:
    kind_rank = 0 if prefer and f.kind == prefer else 1 + KIND_ORDER.get(f.kind, 9)
    in_focus = 0 if focus and focus.lower() in f.file.lower() else 1
    return (in_focus, kind_rank, -f.confidence)


def analyse_change(
    repo: Path,
    bad_ref: str,
    good_ref: str | None = None,
    *,
    focus: str | None = None,
    prefer_kind: str | None = None,
    search_elsewhere: bool = True,
) -> CodeAnalysis:
    """Diff good..bad, find the patterns in the changed functions, attribute each to the commit that
    last touched it, and list the other places in the repository (at `bad`) with the same patterns.
    `focus` (a service name) and `prefer_kind` (the fault the telemetry points to) only order results."""
    bad = resolve(repo, bad_ref)
    if bad is None:
        raise GitError(f"commit {bad_ref} is not in the repository {repo}")
    good = resolve(repo, good_ref) if good_ref else None
    limitations: list[str] = []
    if good_ref and good is None:
        limitations.append(f"last good commit {good_ref} not in the repository; diffed against the parent")
    base = _base(repo, good, bad)
    result = CodeAnalysis(repo=str(repo), bad=bad, good=base, commits=commits_between(repo, good, bad))
    files = changed_files(repo, base, bad)
    result.files = files
    code_files = [f.path for f in files if f.language and f.status != "D"]
    skipped = sorted({f.path.rsplit(".", 1)[-1] for f in files if f.language is None and "." in f.path})
    if skipped:
        limitations.append(f"not parsed (no grammar): *.{', *.'.join(skipped[:8])}")
    text_files = [f.path for f in files if f.status != "D" and (_is_config(f.path) or f.path.lower().endswith(".sql"))]
    text_files = [p for p in text_files if p not in code_files]
    ranges = changed_lines(repo, base, bad, code_files + text_files) if base else {}
    blobs = read_blobs(repo, bad, code_files + text_files)
    schema = load_schema(repo, bad)
    if not schema.columns:
        limitations.append("no SQL migrations with CREATE TABLE found: index coverage not checked")
    parsed: list[_Parsed] = []
    for path in code_files:
        language = language_of(path)
        if language is None or path not in blobs:
            continue
        parsed.append(_Parsed(path, language, analyse_source(blobs[path], language, schema)))
    findings: list[CodeFinding] = []
    for item in parsed:
        file_ranges = ranges.get(item.path, [])
        for hit in item.hits:
            own, func = _overlaps(hit, file_ranges) if base else (True, True)
            if not (own or func):
                continue  # pre-existing code in a touched file: reported with the others below
            confidence = hit.confidence + (0.1 if own else 0.0)
            finding = _finding(item.path, item.language, hit, True, confidence)
            start, end = (hit.line, hit.end_line) if own else (hit.function_start, hit.function_end)
            origin = introducing_commit(repo, base, bad, item.path, start, end) or blame_line(
                repo, bad, item.path, hit.line
            )
            if origin is not None:
                finding.commit, finding.author, finding.commit_subject = origin.commit, origin.author, origin.subject
            findings.append(finding)
    for path in text_files:
        if path not in blobs:
            continue
        text = blobs[path].decode("utf-8", "replace")
        for finding in _text_findings(path, text, ranges.get(path, []) if base else None):
            origin = introducing_commit(repo, base, bad, path, finding.line, finding.line) or blame_line(
                repo, bad, path, finding.line
            )
            if origin is not None:
                finding.commit, finding.author, finding.commit_subject = origin.commit, origin.author, origin.subject
            findings.append(finding)
    findings.sort(key=lambda f: _rank_key(f, prefer_kind, focus))
    result.findings = findings
    if search_elsewhere and findings:
        result.same_pattern = _same_pattern(repo, bad, findings, schema, focus)
    result.limitations = limitations
    return result


def _is_config(path: str) -> bool:
    name = path.lower().rsplit("/", 1)[-1]
    return name.endswith(CONFIG_SUFFIXES) or name in ("dockerfile", ".env")


def _in_ranges(line: int, ranges: list[tuple[int, int]] | None) -> bool:
    return ranges is None or any(a <= line <= b for a, b in ranges)


def _text_findings(path: str, text: str, ranges: list[tuple[int, int]] | None) -> list[CodeFinding]:
    """Findings in changed non-code files: destructive statements in SQL migrations, and the changed
    settings of configuration files (`ranges`: the diff's changed lines; None: all lines are new)."""
    lines = text.splitlines()
    out: list[CodeFinding] = []
    if path.lower().endswith(".sql"):
        for number, line in enumerate(lines, 1):
            code = line.split("--", 1)[0]
            if not code.strip() or not _in_ranges(number, ranges):
                continue
            for pattern, what in DESTRUCTIVE_SQL:
                if pattern.search(code) and not (what.endswith("(no WHERE)") and re.search(r"(?i)\bwhere\b", code)):
                    out.append(
                        CodeFinding(
                            kind="destructive_migration",
                            file=path,
                            line=number,
                            language="sql",
                            detail=f"the migration {what}: `{code.strip()[:160]}`; data not kept elsewhere is lost",
                            snippet=code.strip()[:240],
                            confidence=0.85,
                            in_diff=True,
                            data={"statement": code.strip()[:300]},
                        )
                    )
                    break
        return out
    if ranges is None:
        return out
    for number, line in enumerate(lines, 1):
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", "//", ";")) or not _in_ranges(number, ranges):
            continue
        out.append(
            CodeFinding(
                kind="config_change",
                file=path,
                line=number,
                language="config",
                detail=f"the change sets `{stripped[:160]}`",
                snippet=stripped[:240],
                confidence=0.7,
                in_diff=True,
                data={"setting": stripped[:300]},
            )
        )
        break  # the first changed setting of the file; the diff evidence lists the rest
    return out


def _same_pattern(
    repo: Path, commit: str, findings: list[CodeFinding], schema: Schema, focus: str | None
) -> list[CodeFinding]:
    """Other occurrences of the diff's pattern kinds anywhere in the repository at `commit`."""
    kinds = {f.kind for f in findings}
    seen = {(f.file, f.line) for f in findings}
    tokens: set[str] = set()
    if "resource_leak" in kinds:
        acquired = {str(f.data.get("acquire")) for f in findings if f.kind == "resource_leak"}
        tokens |= {a for a in acquired if a and a != "None"} or {m for table in ACQUIRE.values() for m in table}
    if "unindexed_query" in kinds:
        tokens |= {"WHERE", "where", "JOIN", "join"}
    if "unbounded_retry" in kinds:
        tokens |= {"Sleep", "sleep", "backoff", "Backoff", "setTimeout"}
    if "unbounded_cache" in kinds:
        tokens |= {"= {}", "= []", "map[", "dict(", "new Map("}
    if not tokens:
        return []
    pattern = "|".join(re.escape(t) for t in sorted(tokens))
    try:
        out = git(
            repo, "grep", "-l", "-E", pattern, commit, "--", "*.go", "*.py", "*.java", "*.js", "*.mjs", "*.cjs"
        ).decode("utf-8", "replace")
    except GitError:  # git grep exits 1 when nothing matches
        return []
    paths = [line.split(":", 1)[1] for line in out.splitlines() if ":" in line]
    # Parse the focus service's files first so a cap never hides the neighbours that matter most.
    paths.sort(key=lambda p: (0 if focus and focus.lower() in p.lower() else 1, p))
    paths = paths[:MAX_PATTERN_FILES]
    blobs = read_blobs(repo, commit, paths)
    others: list[CodeFinding] = []
    for path, blob in blobs.items():
        language = language_of(path)
        if language is None:
            continue
        for hit in analyse_source(blob, language, schema, kinds):
            if (path, hit.line) in seen:
                continue
            others.append(_finding(path, language, hit, False, hit.confidence))
    others.sort(key=lambda f: (f.file, f.line))
    return others
