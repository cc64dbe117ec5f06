"""Secrets never leave: redact tokens, passwords, keys and credentials from text and JSON-able data.

Two layers. The pattern-based detectors of detect-secrets (AWS, Slack, GitHub, GitLab, Stripe, JWT,
SendGrid, Twilio, …) give well-kept coverage of vendor token formats; our own regexes cover what a
line-oriented scanner does not: whole PEM private-key blocks, `Authorization:` headers,
`key=value` assignments whose key names a secret, and passwords inside connection strings.

`redact_tree` redacts a whole record (a run's steps, a report's facts) in one pass over its distinct
strings: calling `redact` once per string costs a fixed price per call (it runs every detector),
which for a run with ten thousand timeline events dominates. Every distinct string is redacted once,
in chunks joined by a whitespace-only separator that no detector's secret class can consume; a chunk
whose separators did not survive is redone string by string, so the result is the same as redacting
each string alone, or masks more, never less.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import Any

MASK = "[REDACTED]"

# Key names that mark the value after them as a secret (matched case-insensitively, as a suffix of
# the key, so DB_PASSWORD, x-api-key and client_secret all count). Identifiers that incident analysis
# needs to read (session ids, function signatures) are deliberately not on the list.
_SECRET_WORD = (
    r"passw(?:or)?d|passwd|pwd|secret|token|api[_\-]?key|apikey|access[_\-]?key"
    r"|private[_\-]?key|auth[_\-]?key|credentials?"
)
_SECRET_KEY = r"[A-Za-z0-9_.\-]*?(?:" + _SECRET_WORD + r")"

_OWN_PATTERNS: tuple[tuple[re.Pattern[str], Callable[[re.Match[str]], str]], ...] = (
    # A whole PEM private key, including multi-line bodies; also an unterminated one in a truncated log.
    (
        re.compile(
            r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----.*?"
            r"(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----|\Z)",
            re.DOTALL,
        ),
        lambda m: MASK,
    ),
    # Authorization headers: whatever follows the scheme is the credential.
    (
        re.compile(r"(?i)\b((?:proxy-)?authorization[\"']?\s*[:=]\s*[\"']?(?:[A-Za-z]+\s+)?)([^\s\"',;]+)"),
        lambda m: f"{m.group(1)}{MASK}",
    ),
    # Bare "Bearer …"/"Basic …" credentials; the value must look like a token (a digit or +/=) so
    # that prose such as "basic authentication" stays readable.
    (
        re.compile(r"(?i)\b(bearer|basic|digest)(\s+)((?=[A-Za-z\-._~]*[0-9+/=])[A-Za-z0-9\-._~+/]{8,}=*)"),
        lambda m: f"{m.group(1)}{m.group(2)}{MASK}",
    ),
    # scheme://user:password@host — keep the user and host so the line still says where it pointed.
    (
        re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*://[^\s:/@'\"]*:)([^\s@/'\"]+)(@)"),
        lambda m: f"{m.group(1)}{MASK}{m.group(3)}",
    ),
    # Connection-string keywords: "password=…;" (ADO/ODBC/libpq key-value forms).
    (
        re.compile(r"(?i)\b((?:password|pwd)\s*=\s*)(?!\[REDACTED\])('[^']*'|\"[^\"]*\"|[^\s;,&]+)"),
        lambda m: f"{m.group(1)}{MASK}",
    ),
    # key = value, key: value, "key": "value" with a secret-looking key (DB_PASSWORD, x-api-key, …).
    # The pattern starts at the secret word, not at the start of the key, because a lazy key prefix
    # would be tried at every position of the text.
    (
        re.compile(
            r"(?i)(?:" + _SECRET_WORD + r")[\"']?\s*[:=]\s*"
            r"(?P<val>(?!\[REDACTED\])(?:\"[^\"\n]*\"|'[^'\n]*'|[^\s,;&\"'}\])]+))"
        ),
        lambda m: _keep_quotes(m, "val"),
    ),
    # Command-line flags: --password VALUE, --api-key=VALUE.
    (
        re.compile(
            r"(?i)--[A-Za-z0-9_\-]{0,20}(?:" + _SECRET_WORD + r")[A-Za-z0-9_\-]{0,20}(?:\s*=\s*|\s+)"
            r"(?P<val>(?!\[REDACTED\])(?:\"[^\"\n]*\"|'[^'\n]*'|[^\s\"']+))"
        ),
        lambda m: _keep_quotes(m, "val"),
    ),
    # AWS secret access key next to its name in any spelling.
    (
        re.compile(r"(?i)(aws.{0,20}?secret.{0,20}?[\s:=\"']+)([A-Za-z0-9/+=]{40})(?![A-Za-z0-9/+=])"),
        lambda m: f"{m.group(1)}{MASK}",
    ),
    # JWTs anywhere (three base64url parts, the first a JSON header).
    (
        re.compile(r"\beyJ[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]{5,}\.[A-Za-z0-9_\-]*"),
        lambda m: MASK,
    ),
    # Google API keys and generic "sk-…" style secret keys that detect-secrets does not name.
    (re.compile(r"\bAIza[0-9A-Za-z_\-]{35}\b"), lambda m: MASK),
    (re.compile(r"\bsk-(?:proj-|live-|test-)?[A-Za-z0-9_\-]{20,}\b"), lambda m: MASK),
)


def _keep_quotes(match: re.Match[str], group: str) -> str:
    value = match.group(group)
    if value == MASK or value.strip("\"'") == MASK:
        return match.group(0)
    quote = value[0] if value[:1] in ("'", '"') and value[-1:] == value[:1] and len(value) > 1 else ""
    prefix = match.group(0)[: match.start(group) - match.start(0)]
    return f"{prefix}{quote}{MASK}{quote}"


# detect-secrets detectors we do not take: public IP addresses are not secrets, and private keys are
# masked as whole blocks above (the detector only matches the BEGIN line).
# The IBM, Cloudant and SoftLayer detectors are keyword=value patterns that the key=value rule above
# already covers, and their look-behind-heavy regexes cost more than all the others together.
_SKIPPED_DETECTORS = {
    "IPPublicDetector",
    "PrivateKeyDetector",
    "CloudantDetector",
    "IbmCloudIamDetector",
    "IbmCosHmacDetector",
    "SoftlayerDetector",
}


@lru_cache(maxsize=1)
def _detector_patterns() -> tuple[re.Pattern[str], ...]:
    """The regexes of detect-secrets' pattern-based detectors (read from the installed package)."""
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
    from detect_secrets.plugins.base import RegexBasedDetector

    patterns: list[re.Pattern[str]] = []
    plugin: Any
    for plugin in get_mapping_from_secret_type_to_class().values():
        if not issubclass(plugin, RegexBasedDetector) or plugin.__name__ in _SKIPPED_DETECTORS:
            continue
        # `denylist` is declared as a property but every detector sets it as a class attribute.
        patterns.extend(plugin.denylist)
    return tuple(patterns)


@lru_cache(maxsize=1)
def _keyword_detector() -> Any:
    from detect_secrets.plugins.keyword import KeywordDetector

    return KeywordDetector()


# Cheap pre-filter: the keyword detector is comparatively slow, so it only sees lines that could
# contain an assignment to a secret-named key.
_KEYWORD_HINT = re.compile(r"(?i)pass|pwd|secret|token|key|cred|auth")


def _mask_spans(text: str, spans: Iterable[tuple[int, int]]) -> str:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    out: list[str] = []
    last = 0
    for start, end in merged:
        out.append(text[last:start])
        out.append(MASK)
        last = end
    out.append(text[last:])
    return "".join(out)


def _detector_spans(text: str) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    for pattern in _detector_patterns():
        for match in pattern.finditer(text):
            # detect-secrets reports capture groups as the secret, but some detectors capture only a
            # prefix (ghp_, glpat-): a short group means the whole match is the secret.
            groups = [i for i in range(1, (pattern.groups or 0) + 1) if len(match.group(i) or "") >= 8]
            if groups:
                spans.extend(match.span(i) for i in groups)
            else:
                spans.append(match.span(0))
    return [(s, e) for s, e in spans if e > s and text[s:e] != MASK]


def _keyword_secrets(text: str) -> set[str]:
    found: set[str] = set()
    detector = _keyword_detector()
    for line in text.splitlines():
        if _KEYWORD_HINT.search(line):
            for value in detector.analyze_string(line):
                if value and value != MASK and len(value) >= 4:
                    found.add(value)
    return found


def redact(text: str) -> str:
    """Replace every secret found in `text` with [REDACTED]; text without secrets is returned as is."""
    if not text:
        return text
    for pattern, replace in _OWN_PATTERNS:
        text = pattern.sub(replace, text)
    spans = _detector_spans(text)
    if spans:
        text = _mask_spans(text, spans)
    for secret in _keyword_secrets(text):
        text = text.replace(secret, MASK)
    return text


def redact_obj(obj: Any) -> Any:
    """Redact every string in nested JSON-able data; values under secret-named keys are masked whole."""
    if isinstance(obj, str):
        return redact(obj)
    if isinstance(obj, dict):
        out: dict[Any, Any] = {}
        for key, value in obj.items():
            if isinstance(key, str) and _is_secret_key(key) and isinstance(value, str | int | float):
                out[key] = MASK if value not in ("", None) else value
            else:
                out[redact(key) if isinstance(key, str) else key] = redact_obj(value)
        return out
    if isinstance(obj, list):
        return [redact_obj(item) for item in obj]
    if isinstance(obj, tuple):
        return tuple(redact_obj(item) for item in obj)
    return obj


_SECRET_KEY_NAME = re.compile(r"(?i)^" + _SECRET_KEY + r"$")
# Key names that end like a secret but hold none (counts, flags, names of variables to read from).
_NOT_SECRET_KEY = re.compile(r"(?i)(_env|_count|_file|_path|_name|_ttl|_expires?(_at)?|_type|_id_env)$")


def _is_secret_key(key: str) -> bool:
    return bool(_SECRET_KEY_NAME.match(key)) and not _NOT_SECRET_KEY.search(key)


# Newline + ASCII record separator + newline: all three are whitespace to `re`, so secret values
# (which detectors match as runs of non-space characters) end at it, and line-based detectors see
# each string on its own lines.
SEPARATOR = "\n\x1e\n"
CHUNK_CHARS = 1 << 16


# Strings this process has already found to hold no secret. A run writes the same text many times
# (each step's inputs and report, every event's summary, the whole record again for the reports), and
# a string in which no detector found anything is unchanged by redacting it again. Bounded: cleared
# when full, which costs only the time saved.
_CLEAN: set[str] = set()
CLEAN_MAX_CHARS = 1 << 25
_clean_chars = 0


def _remember_clean(pairs: Iterable[tuple[str, str]]) -> None:
    global _clean_chars
    for text, redacted in pairs:
        if text == redacted and text not in _CLEAN:
            if _clean_chars + len(text) > CLEAN_MAX_CHARS:
                _CLEAN.clear()
                _clean_chars = 0
            _CLEAN.add(text)
            _clean_chars += len(text)


def redact_many(strings: Iterable[str]) -> dict[str, str]:
    """Each distinct string → its redacted form."""
    out: dict[str, str] = {}
    chunk: list[str] = []
    size = 0

    def flush() -> None:
        nonlocal size
        if not chunk:
            return
        parts = redact(SEPARATOR.join(chunk)).split(SEPARATOR)
        # a mask that swallowed a separator: one call per string for this chunk
        done = dict(zip(chunk, parts, strict=True)) if len(parts) == len(chunk) else {s: redact(s) for s in chunk}
        out.update(done)
        _remember_clean(done.items())
        chunk.clear()
        size = 0

    for text in dict.fromkeys(strings):
        if text in _CLEAN:
            out[text] = text
            continue
        if "\x1e" in text:
            out[text] = redact(text)
            continue
        chunk.append(text)
        size += len(text) + len(SEPARATOR)
        if size >= CHUNK_CHARS:
            flush()
    flush()
    return out


def _collect(obj: Any, strings: set[str], keys: set[str]) -> None:
    if isinstance(obj, str):
        strings.add(obj)
    elif isinstance(obj, dict):
        for key, value in obj.items():
            if isinstance(key, str):
                keys.add(key)
            _collect(value, strings, keys)
    elif isinstance(obj, list | tuple):
        for item in obj:
            _collect(item, strings, keys)


def redact_tree(obj: Any) -> Any:
    """Like `redact_obj(obj)` (same masking of values under secret-named keys), but batched."""
    strings: set[str] = set()
    keys: set[str] = set()
    _collect(obj, strings, keys)
    mapping = redact_many(sorted(strings | keys))
    secret_keys = {k for k in keys if _is_secret_key(k)}

    def rebuild(node: Any) -> Any:
        if isinstance(node, str):
            return mapping[node]
        if isinstance(node, dict):
            out: dict[Any, Any] = {}
            for key, value in node.items():
                if key in secret_keys and isinstance(value, str | int | float):
                    out[key] = MASK if value != "" else value
                else:
                    out[mapping[key] if isinstance(key, str) else key] = rebuild(value)
            return out
        if isinstance(node, list):
            return [rebuild(item) for item in node]
        if isinstance(node, tuple):
            return tuple(rebuild(item) for item in node)
        return node

    return rebuild(obj)
