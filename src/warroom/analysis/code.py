"""Code evidence for a change: what changed between the last good and the bad version of a service,
which of the changed code carries a known pattern (resource leak, CPU-heavy code, unindexed query,
lock held across a slow call, unbounded growth or retry, destructive migration, changed setting),
which commit of the deploy range carries each finding, and the other places in the repository with
the same pattern.

Uses the git CLI (argv lists, never a shell) and tree-sitter; only the files the range touches are
parsed (plus, for the pattern search, files `git grep` pre-selects), so a repository with thousands
of commits costs a handful of git calls. The detectors themselves are in analysis/code_patterns/.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import polars as pl
from pydantic import BaseModel, Field

from warroom.analysis.code_patterns import (
    ACQUIRE,
    KINDS,
    PatternHit,
    Schema,
    SourceFile,
    analyse_file,
    config_changes,
    constant_changes,
    destructive_statements,
    dropped_indexes,
    handler_callers,
    is_config,
    is_migration,
    language_of,
    parse,
    parse_schema,
    unindexed_columns,
)
from warroom.analysis.code_patterns.config import changed_lines_fallback
from warroom.analysis.code_patterns.hits import line_hit
from warroom.incident import Evidence

GIT_TIMEOUT_S = 60
MAX_PATTERN_FILES = 200  # cap on files parsed for the "same pattern elsewhere" search
MAX_CALLER_FILES = 40  # cap on files parsed to learn whether another file's handler calls a function
MAX_RANGE_COMMITS = 200
KIND_ORDER = {kind: rank for rank, kind in enumerate(KINDS)}
DOC_PATH = re.compile(
    r"(?i)(^|/)(docs?|documentation)/|\.(md|rst|txt|adoc|markdown)$|(^|/)(readme|changelog|license|authors|notice)[^/]*$"
)
# Tokens `git grep` pre-selects files with, per pattern kind (subkind for CPU-heavy code).
SEARCH_TOKENS: dict[str, tuple[str, ...]] = {
    "unindexed_query": ("WHERE", "where", "JOIN", "join", "filter", "findBy"),
    "unbounded_retry": ("Sleep", "sleep", "backoff", "Backoff", "setTimeout"),
    "unbounded_growth": ("= {}", "= []", "map[", "dict(", "new Map(", "new HashMap", "lru_cache", ".on("),
    "lock_held": (
        "FOR UPDATE",
        "for update",
        "BEGIN",
        "Begin",
        "transaction",
        "Transactional",
        "Lock()",
        "synchronized",
    ),
    "cpu_heavy:regex_in_loop": ("compile", "RegExp", "MatchString", "matches("),
    "cpu_heavy:parse_in_loop": ("json", "JSON", "yaml", "xml", "Unmarshal", "readValue"),
    "cpu_heavy:sort_in_loop": ("sort", "Sort"),
    "cpu_heavy:blocking_in_async": ("async",),
}
CODE_GLOBS = ("*.go", "*.py", "*.java", "*.js", "*.mjs", "*.cjs", "*.jsx", "*.ts", "*.tsx")


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
    files: list[str] = Field(default_factory=list)  # what this commit's own diff touches
    docs_only: bool = False  # every file it touches is documentation
    finding_kinds: list[str] = Field(default_factory=list)  # kinds of the findings its diff carries


class FileChange(BaseModel):
    path: str
    status: str  # A, M, D, R…
    added: int
    removed: int
    language: str | None = None
    old_path: str | None = None  # before a rename


class CodeFinding(BaseModel):
    """One pattern occurrence, located to file and lines, with the commit whose diff carries it.

    `strength` (0..1) says how certain it is that the code has the pattern, not how likely the
    pattern caused the incident (the diagnosis engine weighs code against telemetry)."""

    kind: str  # one of warroom.analysis.code_patterns.KINDS
    subkind: str = ""
    file: str
    line: int
    end_line: int | None = None
    function: str | None = None
    on_request_path: bool | None = None  # None: could not tell
    language: str
    detail: str
    snippet: str = ""
    strength: float
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
                "subkind": self.subkind,
                "function": self.function,
                "on_request_path": self.on_request_path,
                "strength": self.strength,
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


# ---- git plumbing ----------------------------------------------------------------------------

_LOG_FORMAT = "@@@%H%x1f%an%x1f%aI%x1f%s"


def _commit_from(header: str) -> CommitInfo:
    sha, author, date, subject = header.split("\x1f", 3)
    return CommitInfo(commit=sha, author=author, date=date, subject=subject)


def commits_between(repo: Path, good: str | None, bad: str, limit: int = MAX_RANGE_COMMITS) -> list[CommitInfo]:
    """The commits of good..bad (newest first), each with the files its own diff touches."""
    spec = f"{good}..{bad}" if good else f"{bad}^!"
    out = git(repo, "log", f"--max-count={limit}", f"--format={_LOG_FORMAT}", "--name-only", "-M", spec, "--")
    infos: list[CommitInfo] = []
    for line in out.decode("utf-8", "replace").splitlines():
        if line.startswith("@@@"):
            infos.append(_commit_from(line[3:]))
        elif line.strip() and infos:
            infos[-1].files.append(line.strip())
    for info in infos:
        info.docs_only = bool(info.files) and all(DOC_PATH.search(f) for f in info.files)
    return infos


def _base(repo: Path, good: str | None, bad: str) -> str | None:
    return good if good else resolve(repo, f"{bad}^")


def changed_files(repo: Path, base: str | None, bad: str) -> list[FileChange]:
    if base is None:  # the root commit: everything is new
        names = git(repo, "ls-tree", "-r", "--name-only", bad).decode("utf-8", "replace").splitlines()
        return [FileChange(path=n, status="A", added=0, removed=0, language=language_of(n)) for n in names]
    numstat = git(repo, "diff", "--numstat", "-z", "-M", base, bad).decode("utf-8", "replace")
    status = git(repo, "diff", "--name-status", "-M", base, bad).decode("utf-8", "replace")
    kinds: dict[str, tuple[str, str | None]] = {}
    for line in status.splitlines():
        parts = line.split("\t")
        if len(parts) >= 2:
            kinds[parts[-1]] = (parts[0][:1], parts[1] if len(parts) == 3 else None)
    files = []
    fields = numstat.split("\0")
    pos = 0
    while pos < len(fields) and fields[pos]:
        counts = fields[pos].split("\t")
        if len(counts) == 3 and counts[2] == "":  # a rename: the old and new names follow
            path, pos = fields[pos + 2], pos + 3
        else:
            path, pos = counts[2], pos + 1
        status_code, old = kinds.get(path, ("M", None))
        files.append(
            FileChange(
                path=path,
                status=status_code,
                added=int(counts[0]) if counts[0].isdigit() else 0,
                removed=int(counts[1]) if counts[1].isdigit() else 0,
                language=language_of(path),
                old_path=old,
            )
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
    blobs = read_blobs(repo, commit, [n for n in names if is_migration(n)])
    return parse_schema([(p, b.decode("utf-8", "replace")) for p, b in blobs.items()])


def blame_range(repo: Path, base: str | None, bad: str, path: str) -> dict[int, str]:
    """Line (at `bad`) → the commit of base..bad that last changed it; lines older than base are absent."""
    spec = [f"{base}..{bad}"] if base else [bad]
    try:
        out = git(repo, "blame", "--porcelain", *spec, "--", path).decode("utf-8", "replace")
    except GitError:
        return {}
    lines: dict[int, str] = {}
    boundary: set[str] = set()
    current: str | None = None
    header = re.compile(r"^([0-9a-f]{40}) \d+ (\d+)")
    for line in out.splitlines():
        match = header.match(line)
        if match:
            current = match.group(1)
            lines[int(match.group(2))] = current
        elif line == "boundary" and current:
            boundary.add(current)
    return {n: sha for n, sha in lines.items() if sha not in boundary}


def introducing_commit(repo: Path, base: str | None, bad: str, path: str, start: int, end: int) -> str | None:
    """The newest commit in base..bad whose diff touched lines start..end of `path` (git log -L):
    also finds a commit that only deleted lines there (a removed `defer conn.Close()`)."""
    spec = f"{base}..{bad}" if base else bad
    try:
        out = git(repo, "log", "--format=@@@%H", "-L", f"{start},{end}:{path}", spec, "--").decode("utf-8", "replace")
    except GitError:
        return None
    return next((line[3:] for line in out.splitlines() if line.startswith("@@@")), None)


# ---- analysis --------------------------------------------------------------------------------


@dataclass
class _Range:
    """What one analysis knows of the deploy range."""

    repo: Path
    base: str | None
    bad: str
    commits: dict[str, CommitInfo]
    ranges: dict[str, list[tuple[int, int]]]
    blame: dict[str, dict[int, str]]

    def blamed(self, path: str) -> dict[int, str]:
        if path not in self.blame:
            self.blame[path] = blame_range(self.repo, self.base, self.bad, path)
        return self.blame[path]

    def in_diff(self, path: str, start: int, end: int) -> bool:
        if self.base is None:
            return True
        return any(a <= end and start <= b for a, b in self.ranges.get(path, []))


def _overlaps(hit: PatternHit, ranges: list[tuple[int, int]]) -> tuple[bool, bool]:
    """(the hit's own lines changed, its function changed)."""
    own = any(a <= hit.end_line and hit.line <= b for a, b in ranges)
    func = any(a <= hit.function_end and hit.function_start <= b for a, b in ranges)
    return own, func


def _finding(path: str, language: str, hit: PatternHit, in_diff: bool) -> CodeFinding:
    return CodeFinding(
        kind=hit.kind,
        subkind=hit.subkind,
        file=path,
        line=hit.line,
        end_line=hit.end_line,
        function=hit.function,
        on_request_path=hit.on_request_path,
        language=language,
        detail=hit.detail,
        snippet=hit.snippet,
        strength=round(min(max(hit.strength, 0.0), 1.0), 3),
        in_diff=in_diff,
        data=dict(hit.data),
    )


def _attribute(finding: CodeFinding, hit: PatternHit | None, span: _Range) -> None:
    """The commit of the range whose diff carries the finding: the newest one that changed its own lines
    (or the lines it names: the exit, the slow call), else its function, else one that deleted lines there."""
    blamed = span.blamed(finding.file)
    own = set(range(finding.line, (finding.end_line or finding.line) + 1))
    own |= {int(v) for k, v in finding.data.items() if k.endswith("_line") and isinstance(v, int)}
    candidates = [blamed[n] for n in sorted(own) if n in blamed]
    if not candidates and hit is not None:
        candidates = [blamed[n] for n in range(hit.function_start, hit.function_end + 1) if n in blamed]
    sha: str | None = _newest(candidates, span)
    if sha is None and finding.data.get("side") == "old":
        touching = [c for c in span.commits.values() if finding.file in c.files]
        sha = touching[0].commit if touching else None
    if sha is None and hit is not None:
        sha = introducing_commit(span.repo, span.base, span.bad, finding.file, hit.function_start, hit.function_end)
    info = span.commits.get(sha or "")
    if info is not None:
        finding.commit, finding.author, finding.commit_subject = info.commit, info.author, info.subject
        if finding.kind not in info.finding_kinds:
            info.finding_kinds.append(finding.kind)
    elif sha is not None:
        finding.commit = sha


def _newest(candidates: list[str], span: _Range) -> str | None:
    order = list(span.commits)  # newest first
    known = [c for c in candidates if c in span.commits]
    return min(known, key=order.index) if known else (candidates[0] if candidates else None)


def _rank_key(f: CodeFinding, prefer: str | None, focus: str | None) -> tuple[int, int, int, float, str, int]:
    kind_rank = 0 if prefer and f.kind == prefer else 1 + KIND_ORDER.get(f.kind, 9)
    in_focus = 0 if focus and focus.lower() in f.file.lower() else 1
    on_path = {True: 0, None: 1, False: 2}[f.on_request_path]
    return (in_focus, kind_rank, on_path, -f.strength, f.file, f.line)


def system_services(changes: pl.DataFrame | None, topology: Mapping[str, object] | None) -> set[str]:
    """The system's services as the change log and the call graph name them."""
    named = set(changes.get_column("service").drop_nulls().to_list()) if changes is not None else set()
    return named | set(topology or {})


def of_another_service(path: str, service: str, services: Iterable[str]) -> bool:
    """Whether a file of a change's diff is another service's: its path names another of the
    system's services and not this one (`config/checkout.yaml` in payment's deploy). A deploy from
    a shared repository brings every commit since the service's last one, its neighbours' among
    them; a file that names no service (`deploy/services.yaml`) may be anyone's."""
    lowered = path.lower()

    def named(name: str) -> bool:  # as a whole path token: `ts-travel-service` is not `ts-travel-service2`
        return re.search(rf"(?<![a-z0-9]){re.escape(name.lower())}(?![a-z0-9])", lowered) is not None

    return not named(service) and any(named(s) for s in services if s.lower() != service.lower())


def analyse_change(
    repo: Path,
    bad_ref: str,
    good_ref: str | None = None,
    *,
    focus: str | None = None,
    prefer_kind: str | None = None,
    search_elsewhere: bool = True,
) -> CodeAnalysis:
    """Diff good..bad, find the patterns in the changed code, attribute each to the commit of the range
    whose diff carries it, and list the other places in the repository (at `bad`) with the same patterns.
    `focus` (a service name) and `prefer_kind` (the pattern the telemetry points to) only order results."""
    bad = resolve(repo, bad_ref)
    if bad is None:
        raise GitError(f"commit {bad_ref} is not in the repository {repo}")
    good = resolve(repo, good_ref) if good_ref else None
    limitations: list[str] = []
    if good_ref and good is None:
        limitations.append(f"last good commit {good_ref} not in the repository; diffed against the parent")
    base = _base(repo, good, bad)
    commits = commits_between(repo, good, bad)
    if len(commits) >= MAX_RANGE_COMMITS:
        limitations.append(f"the range has more than {MAX_RANGE_COMMITS} commits: only the newest are attributed")
    result = CodeAnalysis(repo=str(repo), bad=bad, good=base, commits=commits)
    result.files = changed_files(repo, base, bad)
    files = [f for f in result.files if f.status != "D"]
    code_files = [f for f in files if f.language]
    text_files = [f for f in files if not f.language and (is_config(f.path) or is_migration(f.path))]
    migrations = [f for f in files if is_migration(f.path)]
    skipped = sorted({f.path.rsplit(".", 1)[-1] for f in files if f.language is None and "." in f.path} - {"md"})
    if skipped:
        limitations.append(f"not parsed (no grammar): *.{', *.'.join(skipped[:8])}")
    paths = [f.path for f in code_files + text_files]
    span = _Range(
        repo, base, bad, {c.commit: c for c in commits}, changed_lines(repo, base, bad, paths) if base else {}, {}
    )
    blobs = read_blobs(repo, bad, paths)
    old_blobs = _old_blobs(repo, base, code_files + text_files)
    schema = load_schema(repo, bad)
    if not schema.columns:
        limitations.append("no migrations with CREATE TABLE found: index coverage not checked")
    findings = _code_findings(span, code_files, blobs, old_blobs, schema, limitations)
    findings += _text_findings(span, text_files, blobs, old_blobs, limitations)
    if migrations and base is not None:
        findings += _dropped_index_findings(span, migrations, blobs, schema, limitations)
    findings.sort(key=lambda f: _rank_key(f, prefer_kind, focus))
    result.findings = findings
    if search_elsewhere and findings:
        result.same_pattern = _same_pattern(repo, bad, findings, schema, focus)
    result.limitations = limitations
    return result


def _old_blobs(repo: Path, base: str | None, files: list[FileChange]) -> dict[str, bytes]:
    """Contents before the range, keyed by the new path (renames followed)."""
    if base is None:
        return {}
    olds = {f.old_path or f.path: f.path for f in files if f.status != "A"}
    return {olds[p]: blob for p, blob in read_blobs(repo, base, list(olds)).items()}


def _code_findings(
    span: _Range,
    files: list[FileChange],
    blobs: dict[str, bytes],
    old_blobs: dict[str, bytes],
    schema: Schema,
    limitations: list[str],
) -> list[CodeFinding]:
    parsed = {f.path: parse(f.path, blobs[f.path], str(f.language)) for f in files if f.path in blobs}
    hits = {path: analyse_file(source, schema) for path, source in parsed.items()}
    _resolve_request_paths(span, parsed, hits, schema)
    findings: list[CodeFinding] = []
    for path, source in parsed.items():
        file_ranges = span.ranges.get(path, [])
        for hit in hits[path]:
            own, func = _overlaps(hit, file_ranges) if span.base else (True, True)
            if not (own or func):
                continue  # pre-existing code in a touched file: reported with the other places
            if not own:
                hit.strength = round(hit.strength * 0.85, 3)  # the change touched the function, not these lines
            finding = _finding(path, source.language, hit, True)
            _attribute(finding, hit, span)
            findings.append(finding)
        old = old_blobs.get(path)
        old_source = parse(path, old, source.language) if old is not None else None
        for hit in constant_changes(old_source, source):
            finding = _finding(path, source.language, hit, True)
            _attribute(finding, None, span)
            findings.append(finding)
    unknown = sum(1 for f in findings if f.on_request_path is None and f.kind == "cpu_heavy")
    if unknown:
        limitations.append(f"{unknown} CPU-heavy finding(s): could not tell whether a request handler reaches them")
    return findings


def _resolve_request_paths(
    span: _Range, parsed: dict[str, SourceFile], hits: dict[str, list[PatternHit]], schema: Schema
) -> None:
    """For functions whose file does not tell whether a request reaches them: one hop across files —
    a request handler of another file (of the same language family) that calls them by name."""
    unknown = {(p, h.function) for p, file_hits in hits.items() for h in file_hits if h.on_request_path is None}
    names = {name for _, name in unknown if name and re.fullmatch(r"\w{3,}", name)}
    if not names:
        return
    pattern = r"\b(" + "|".join(sorted(re.escape(n) for n in names)) + r")\b"
    try:
        out = git(span.repo, "grep", "-l", "-E", pattern, span.bad, "--", *CODE_GLOBS).decode("utf-8", "replace")
    except GitError:  # git grep exits 1 when nothing matches
        return
    others = [line.split(":", 1)[1] for line in out.splitlines() if ":" in line]
    others = [p for p in others if p not in parsed][:MAX_CALLER_FILES]
    called: dict[str, set[str]] = {}  # family → names a handler elsewhere calls
    for path, blob in read_blobs(span.repo, span.bad, others).items():
        language = language_of(path)
        if language is not None:
            source = parse(path, blob, language)
            called.setdefault(source.family, set()).update(handler_callers(source, names))
    for path, source in parsed.items():
        elsewhere = frozenset(called.get(source.family, set()))
        if elsewhere and any(h.function in elsewhere for h in hits[path]):
            hits[path] = analyse_file(source, schema, callers_elsewhere=elsewhere)


def _text_findings(
    span: _Range,
    files: list[FileChange],
    blobs: dict[str, bytes],
    old_blobs: dict[str, bytes],
    limitations: list[str],
) -> list[CodeFinding]:
    """Destructive statements of changed SQL migrations and the changed settings of config files."""
    findings: list[CodeFinding] = []
    for change in files:
        if change.path not in blobs:
            continue
        new_text = blobs[change.path].decode("utf-8", "replace")
        old = old_blobs.get(change.path)
        old_text = old.decode("utf-8", "replace") if old is not None else None
        hits = text_file_hits(change.path, old_text, new_text, span.ranges.get(change.path) if span.base else None)
        if isinstance(hits, str):
            limitations.append(hits)
            hits = changed_lines_fallback(change.path, new_text, span.ranges.get(change.path, []), "not parsed")
        for hit in hits:
            language = "sql" if change.path.lower().endswith(".sql") else "config"
            finding = _finding(change.path, language, hit, True)
            _attribute(finding, None, span)
            findings.append(finding)
    return findings


def text_file_hits(
    path: str, old_text: str | None, new_text: str, ranges: list[tuple[int, int]] | None
) -> list[PatternHit] | str:
    """Hits of a changed non-code file (`ranges`: the diff's changed lines; None: all lines are new),
    or why the file could not be read."""
    if path.lower().endswith(".sql"):
        return [
            line_hit(
                "destructive_migration",
                subkind,
                line,
                f"the migration {what}: `{statement[:160]}`; data not kept elsewhere is lost",
                statement[:240],
                0.9,
                {"statement": statement},
            )
            for line, subkind, what, statement in destructive_statements(new_text)
            if ranges is None or any(a <= line <= b for a, b in ranges)
        ]
    if not is_config(path):
        return []
    try:
        return config_changes(path, old_text, new_text)
    except ValueError as exc:
        return f"{exc}: its changed lines are reported as written"


def _dropped_index_findings(
    span: _Range, migrations: list[FileChange], blobs: dict[str, bytes], schema: Schema, limitations: list[str]
) -> list[CodeFinding]:
    """A migration of the range drops an index that a query of the repository needs: the query was
    covered before the range and scans after it."""
    assert span.base is not None
    before = load_schema(span.repo, span.base)
    findings: list[CodeFinding] = []
    for table, index, cols in dropped_indexes(before, schema):
        where = _drop_statement(migrations, blobs, index)
        if where is None or not cols or cols[0] in schema.leading(table):
            continue
        affected = _queries_on(span, table, cols[0], schema, before)
        if not affected:
            continue  # dropping an index no query needs is fine
        path, line = where
        hit = line_hit(
            "unindexed_query",
            "index_dropped",
            line,
            f"the migration drops index {index} on {table}({', '.join(cols)}); {len(affected)} quer"
            f"{'y' if len(affected) == 1 else 'ies'} filtering {table} on {cols[0]} now scan the table "
            f"({', '.join(affected[:3])})",
            blobs[path].decode("utf-8", "replace").splitlines()[line - 1].strip()[:240],
            0.85,
            {"index": index, "table": table, "columns": list(cols), "affected": affected},
        )
        finding = _finding(path, "sql" if path.endswith(".sql") else "python", hit, True)
        _attribute(finding, None, span)
        findings.append(finding)
    return findings


def _drop_statement(migrations: list[FileChange], blobs: dict[str, bytes], index: str) -> tuple[str, int] | None:
    pattern = re.compile(
        rf"(?i)drop\s+index\s+(concurrently\s+)?(if\s+exists\s+)?[\w.\"]*\b{re.escape(index)}\b|"
        rf"drop_index\(\s*(op\.f\()?['\"]{re.escape(index)}['\"]"
    )
    for change in migrations:
        for number, line in enumerate(blobs.get(change.path, b"").decode("utf-8", "replace").splitlines(), 1):
            if pattern.search(line):
                return change.path, number
    return None


def _queries_on(span: _Range, table: str, column: str, after: Schema, before: Schema) -> list[str]:
    """file:line of the repository's queries that filter `table` on `column`: indexed before, scanning now."""
    try:
        out = git(span.repo, "grep", "-l", "-i", "-w", table, span.bad, "--", *CODE_GLOBS).decode("utf-8", "replace")
    except GitError:
        return []
    paths = [line.split(":", 1)[1] for line in out.splitlines() if ":" in line][:MAX_PATTERN_FILES]
    found = []
    for path, blob in read_blobs(span.repo, span.bad, paths).items():
        language = language_of(path)
        if language is None:
            continue
        for hit in analyse_file(parse(path, blob, language), after, {"unindexed_query"}):
            tables = hit.data.get("tables")
            if not isinstance(tables, list) or not any(
                isinstance(t, dict) and t.get("table") == table and column in (t.get("columns") or []) for t in tables
            ):
                continue
            if not any(p["table"] == table for p in unindexed_columns(str(hit.data.get("query", "")), before)):
                found.append(f"{path}:{hit.line}")
    return found


def _same_pattern(
    repo: Path, commit: str, findings: list[CodeFinding], schema: Schema, focus: str | None
) -> list[CodeFinding]:
    """Other occurrences of the diff's pattern kinds anywhere in the repository at `commit`."""
    wanted = {f.kind if f.kind != "cpu_heavy" else f"cpu_heavy:{f.subkind}" for f in findings}
    wanted &= set(SEARCH_TOKENS) | {"resource_leak"}
    seen = {(f.file, f.line) for f in findings}
    tokens: set[str] = set()
    for key in wanted:
        tokens |= set(SEARCH_TOKENS.get(key, ()))
    if "resource_leak" in wanted:
        acquired = {str(f.data.get("acquire")) for f in findings if f.kind == "resource_leak"}
        tokens |= {a for a in acquired if a and a != "None"} or {m for table in ACQUIRE.values() for m in table}
    if not tokens:
        return []
    pattern = "|".join(re.escape(t) for t in sorted(tokens))
    try:
        out = git(repo, "grep", "-l", "-E", pattern, commit, "--", *CODE_GLOBS).decode("utf-8", "replace")
    except GitError:  # git grep exits 1 when nothing matches
        return []
    paths = [line.split(":", 1)[1] for line in out.splitlines() if ":" in line]
    # Parse the focus service's files first so a cap never hides the neighbours that matter most.
    paths.sort(key=lambda p: (0 if focus and focus.lower() in p.lower() else 1, p))
    kinds = {key.split(":")[0] for key in wanted}
    others: list[CodeFinding] = []
    for path, blob in read_blobs(repo, commit, paths[:MAX_PATTERN_FILES]).items():
        language = language_of(path)
        if language is None:
            continue
        for hit in analyse_file(parse(path, blob, language), schema, kinds):
            key = hit.kind if hit.kind != "cpu_heavy" else f"cpu_heavy:{hit.subkind}"
            if key in wanted and (path, hit.line) not in seen:
                others.append(_finding(path, language, hit, False))
    others.sort(key=lambda f: (f.file, f.line))
    return others
