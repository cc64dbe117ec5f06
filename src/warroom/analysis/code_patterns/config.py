"""Configuration diffs: which key a change sets, its old and new value and line, for YAML, JSON,
TOML, INI, .env and .properties files and for constants in code (UPPER_CASE module constants, Go
`const`, Java `static final`); with the unit when the key or value says it (timeout_ms vs
timeout_s, "30s") and, for numbers, the ratio new/old (timeout 30000 → 30: ×0.001)."""

from __future__ import annotations

import configparser
import json
import re
import tomllib
from dataclasses import dataclass

import yaml

from warroom.analysis.code_patterns.hits import PatternHit, line_hit
from warroom.analysis.code_patterns.syntax import SourceFile, line_of, text, walk

CONFIG_SUFFIXES = (".yaml", ".yml", ".json", ".toml", ".ini", ".conf", ".cfg", ".properties", ".env")
SUBKINDS = (
    ("timeout", re.compile(r"(?i)timeout|deadline|ttl|expir|grace|interval|delay|wait")),
    ("pool_size", re.compile(r"(?i)pool|max_?conn|max_?open|max_?idle|connections")),
    ("retries", re.compile(r"(?i)retr|attempt|backoff")),
    ("feature_flag", re.compile(r"(?i)flag|feature|enable|disable|toggle|rollout|experiment")),
    ("resources", re.compile(r"(?i)(^|[._])(cpu|memory|mem|heap|xmx|gomaxprocs)")),
    ("limit", re.compile(r"(?i)limit|max|min|size|capacity|quota|rate|replicas|workers|threads|concurrency|batch")),
)
KEY_UNITS = (
    (re.compile(r"(?i)(_|\b|(?<=[a-z]))(ms|millis|milliseconds)$"), "ms"),
    (re.compile(r"(?i)(_|\b|(?<=[a-z]))(us|micros|microseconds)$"), "us"),
    (re.compile(r"(?i)(_|\b|(?<=[a-z]))(ns|nanos)$"), "ns"),
    (re.compile(r"(?i)(_|\b|(?<=[a-z]))(s|sec|secs|seconds)$"), "s"),
    (re.compile(r"(?i)(_|\b|(?<=[a-z]))(m|min|mins|minutes)$"), "min"),
    (re.compile(r"(?i)(_|\b|(?<=[a-z]))(h|hours)$"), "h"),
    (re.compile(r"(?i)(_|\b|(?<=[a-z]))(mb|mib)$"), "MiB"),
    (re.compile(r"(?i)(_|\b|(?<=[a-z]))(kb|kib)$"), "KiB"),
    (re.compile(r"(?i)(_|\b|(?<=[a-z]))(pct|percent)$"), "%"),
)
VALUE_UNITS = {"ms": 0.001, "us": 1e-6, "µs": 1e-6, "ns": 1e-9, "s": 1.0, "m": 60.0, "h": 3600.0}
SIZE_UNITS = {"ki": 2**10, "mi": 2**20, "gi": 2**30, "k": 1e3, "m": 1e6, "g": 1e9, "kb": 1e3, "mb": 1e6, "gb": 1e9}
GO_DURATIONS = {
    "Nanosecond": 1e-9,
    "Microsecond": 1e-6,
    "Millisecond": 1e-3,
    "Second": 1.0,
    "Minute": 60.0,
    "Hour": 3600.0,
}
JAVA_DURATIONS = {"Nanos": 1e-9, "Millis": 1e-3, "Seconds": 1.0, "Minutes": 60.0, "Hours": 3600.0}


@dataclass
class Setting:
    value: object
    line: int


def is_config(path: str) -> bool:
    name = path.lower().rsplit("/", 1)[-1]
    return name.endswith(CONFIG_SUFFIXES) or name == ".env" or name.startswith(".env.")


# ---- reading settings ------------------------------------------------------------------------


def _scalar(node: yaml.ScalarNode) -> object:
    try:
        return yaml.SafeLoader("").construct_object(node)
    except yaml.YAMLError:
        return node.value


def _yaml_settings(source: str) -> dict[str, Setting]:
    out: dict[str, Setting] = {}

    def visit(node: yaml.Node, prefix: str) -> None:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                visit(value, f"{prefix}.{key.value}" if prefix else str(key.value))
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                visit(item, f"{prefix}[{index}]")
        elif isinstance(node, yaml.ScalarNode):
            out[prefix] = Setting(_scalar(node), node.start_mark.line + 1)

    for document in yaml.compose_all(source, Loader=yaml.SafeLoader):
        if document is not None:
            visit(document, "")
    return out


def _flatten(data: object, prefix: str = "") -> dict[str, object]:
    if isinstance(data, dict):
        out: dict[str, object] = {}
        for key, value in data.items():
            out.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    if isinstance(data, list):
        out = {}
        for index, value in enumerate(data):
            out.update(_flatten(value, f"{prefix}[{index}]"))
        return out
    return {prefix: data}


def _locate(source: str, key: str, separators: str = "=:") -> int:
    """Line of a key in a sectioned file: its leaf, after the line of its section header."""
    lines = source.splitlines()
    parts = re.split(r"\.|\[\d+\]", key)
    leaf = parts[-1]
    start = 0
    for part in parts[:-1]:
        for number in range(start, len(lines)):
            if re.match(rf"^\s*\[+[^\]]*\b{re.escape(part)}\b[^\]]*\]+\s*$", lines[number]):
                start = number + 1
                break
    pattern = re.compile(rf"^\s*[\"']?{re.escape(leaf)}[\"']?\s*[{separators}]")
    for number in range(start, len(lines)):
        if pattern.match(lines[number]):
            return number + 1
    return 0


def _key_value_settings(source: str) -> dict[str, Setting]:
    """.env and .properties: `KEY=value`, `key: value`, `export KEY=value`; `#`/`!` comments."""
    out: dict[str, Setting] = {}
    for number, line in enumerate(source.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", "!", ";")):
            continue
        match = re.match(r"^(?:export\s+)?([\w.\-]+)\s*[=:]\s*(.*)$", stripped)
        if match:
            out[match.group(1)] = Setting(match.group(2).strip().strip("\"'"), number)
    return out


def read_settings(path: str, source: str) -> dict[str, Setting]:
    """Every leaf setting of a configuration file with its line. Raises ValueError when it does not parse."""
    lower = path.lower()
    try:
        if lower.endswith((".yaml", ".yml")):
            return _yaml_settings(source)
        if lower.endswith(".json"):
            try:
                return _yaml_settings(source)  # JSON is YAML, and YAML's nodes carry lines
            except yaml.YAMLError:
                return {k: Setting(v, _locate(source, k)) for k, v in _flatten(json.loads(source)).items()}
        if lower.endswith(".toml"):
            return {k: Setting(v, _locate(source, k, "=")) for k, v in _flatten(tomllib.loads(source)).items()}
        if lower.endswith((".ini", ".cfg", ".conf")):
            parser = configparser.ConfigParser(interpolation=None)
            parser.read_string(source)
            flat = {f"{s}.{k}": v for s in parser.sections() for k, v in parser.items(s, raw=True)}
            return {k: Setting(v, _locate(source, k)) for k, v in flat.items()}
        return _key_value_settings(source)
    except (yaml.YAMLError, json.JSONDecodeError, tomllib.TOMLDecodeError, configparser.Error) as exc:
        raise ValueError(f"{path}: not valid {lower.rsplit('.', 1)[-1]}: {str(exc).splitlines()[0]}") from exc


# ---- describing a change ---------------------------------------------------------------------


def subkind_of(key: str, old: object, new: object) -> str:
    if isinstance(new, bool) or isinstance(old, bool) or str(new).lower() in ("true", "false", "on", "off"):
        return "feature_flag"
    leaf = re.split(r"[.\[]", key)[-1] if "." in key else key
    for subkind, pattern in SUBKINDS:
        if pattern.search(leaf) or pattern.search(key):
            return subkind
    return "setting"


def unit_of(key: str) -> str | None:
    leaf = re.split(r"[.\[]", key)[-1] or key
    for pattern, unit in KEY_UNITS:
        if pattern.search(leaf):
            return unit
    return None


def quantity(value: object) -> tuple[float, str | None] | None:
    """(number, unit or None) of a setting's value: 30, "30s", "500ms", "1m30s", "512Mi", "30 * time.Second"."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return float(value), None
    raw = str(value).strip().replace("_", "")
    if re.fullmatch(r"-?\d+(\.\d+)?([eE]-?\d+)?[lLfFdD]?", raw):
        return float(raw.rstrip("lLfFdD")), None
    if re.fullmatch(r"(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+", raw):
        seconds = sum(float(n) * VALUE_UNITS[u] for n, _, u in re.findall(r"(\d+(\.\d+)?)(ns|us|µs|ms|s|m|h)", raw))
        return seconds, "s"
    size = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([kKmMgG]i?[bB]?)", raw)
    if size:
        return float(size.group(1)) * SIZE_UNITS[size.group(2).lower().rstrip("b") or "k"], "B"
    go = re.fullmatch(r"(\d+(?:\.\d+)?)\s*\*\s*time\.(\w+)|time\.(\w+)\s*\*\s*(\d+(?:\.\d+)?)", raw)
    if go:
        number, unit = (go.group(1), go.group(2)) if go.group(1) else (go.group(4), go.group(3))
        return (float(number) * GO_DURATIONS[unit], "s") if unit in GO_DURATIONS else None
    java = re.fullmatch(r"Duration\.of(\w+)\((\d+)L?\)", raw)
    if java and java.group(1) in JAVA_DURATIONS:
        return float(java.group(2)) * JAVA_DURATIONS[java.group(1)], "s"
    product = re.fullmatch(r"\d+(\.\d+)?(\s*\*\s*\d+(\.\d+)?)+", raw)
    if product:
        result = 1.0
        for factor in raw.split("*"):
            result *= float(factor)
        return result, None
    return None


def _shown(value: object) -> str:
    if value is None:
        return "(unset)"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def describe(key: str, old: object, new: object, line: int, old_line: int | None) -> tuple[str, str, dict[str, object]]:
    """(subkind, detail, data) of one changed setting."""
    subkind = subkind_of(key, old, new)
    unit = unit_of(key)
    data: dict[str, object] = {
        "key": key,
        "old": old if isinstance(old, str | int | float | bool) or old is None else str(old),
        "new": new if isinstance(new, str | int | float | bool) or new is None else str(new),
        "old_line": old_line,
        "unit": unit,
    }
    text_ = f"`{key}` changed from {_shown(old)} to {_shown(new)}"
    if old is None:
        text_ = f"`{key}` added with value {_shown(new)}"
    elif new is None:
        text_ = f"`{key}` removed (was {_shown(old)})"
    before, after = quantity(old), quantity(new)
    if (
        before is not None
        and after is not None
        and before[0] != 0
        and (before[1] == after[1] or None in (before[1], after[1]))
    ):
        ratio = after[0] / before[0]
        data["ratio"] = round(ratio, 6)
        shown_unit = unit or before[1] or after[1]
        data["unit"] = shown_unit
        text_ += f" ({shown_unit + '; ' if shown_unit else ''}×{ratio:.3g})"
    elif unit:
        text_ += f" ({unit})"
    return subkind, text_, data


def config_changes(path: str, old_source: str | None, new_source: str) -> list[PatternHit]:
    """One finding per changed, added or removed setting. Raises ValueError when a side does not parse."""
    new = read_settings(path, new_source)
    old = read_settings(path, old_source) if old_source is not None else {}
    hits = []
    for key in sorted(set(old) | set(new), key=lambda k: (new.get(k) or old[k]).line):
        before, after = old.get(key), new.get(key)
        if before is not None and after is not None and before.value == after.value:
            continue
        if (
            after is None
            and before is not None
            and before.value is None
            and any(k.startswith((key + ".", key + "[")) for k in new)
        ):
            continue  # an empty section (`flags:`) that now holds keys: the keys are the change
        if old_source is None and after is not None:
            before = None
        line = after.line if after is not None else (before.line if before is not None else 0)
        subkind, detail, data = describe(
            key, before.value if before else None, after.value if after else None, line, before.line if before else None
        )
        data["side"] = "new" if after is not None else "old"
        hits.append(
            line_hit(
                "config_change",
                subkind,
                line,
                detail,
                _line(new_source if after else old_source, line),
                0.9,
                data,
            )
        )
    return hits


def _line(source: str | None, line: int) -> str:
    lines = (source or "").splitlines()
    return lines[line - 1].strip()[:240] if 0 < line <= len(lines) else ""


def changed_lines_fallback(path: str, source: str, ranges: list[tuple[int, int]], reason: str) -> list[PatternHit]:
    """A file that is not a format we read (or does not parse): its first changed setting, as written."""
    for number, line in enumerate(source.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", "//", ";")) or not any(a <= number <= b for a, b in ranges):
            continue
        detail = f"the change sets `{stripped[:160]}` ({reason})"
        data: dict[str, object] = {"setting": stripped[:300], "side": "new"}
        return [
            line_hit(
                "config_change",
                "setting",
                number,
                detail,
                stripped[:240],
                0.6,
                data,
            )
        ]
    return []


# ---- constants in code -----------------------------------------------------------------------

CONSTANT = re.compile(r"^[A-Z][A-Z0-9_]*$")


def constants(source: SourceFile) -> dict[str, Setting]:
    """Module-level constants: Python/JS UPPER_CASE bindings, Go `const`, Java `static final` fields."""
    out: dict[str, Setting] = {}
    family = source.family
    for node in walk(source.root):
        name = value = None
        if (
            family == "python"
            and node.type == "assignment"
            and node.parent is not None
            and node.parent.parent is not None
        ):
            if node.parent.parent.type == "module":
                name, value = node.child_by_field_name("left"), node.child_by_field_name("right")
        elif family == "go" and node.type == "const_spec":
            name = node.child_by_field_name("name")
            values = node.child_by_field_name("value")
            value = values.named_children[0] if values is not None and values.named_children else None
        elif family == "java" and node.type == "variable_declarator" and node.parent is not None:
            modifiers = next((c for c in node.parent.children if c.type == "modifiers"), None)
            if (
                node.parent.type == "field_declaration"
                and modifiers is not None
                and {"static", "final"} <= set(text(modifiers).split())
            ):
                name, value = node.child_by_field_name("name"), node.child_by_field_name("value")
        elif family == "javascript" and node.type == "variable_declarator" and node.parent is not None:
            top = node.parent.parent
            if (
                node.parent.type == "lexical_declaration"
                and top is not None
                and top.type in ("program", "export_statement")
            ):
                name, value = node.child_by_field_name("name"), node.child_by_field_name("value")
        if name is None or value is None or name.type != "identifier":
            continue
        if family != "go" and not CONSTANT.match(text(name)):
            continue
        if (
            value.type in ("dictionary", "list", "object", "array", "lambda", "arrow_function", "call")
            and quantity(text(value)) is None
        ):
            continue
        out[text(name)] = Setting(text(value).strip("\"'`"), line_of(name))
    return out


def constant_changes(old: SourceFile | None, new: SourceFile) -> list[PatternHit]:
    before = constants(old) if old is not None else {}
    after = constants(new)
    hits = []
    for name, setting in after.items():
        previous = before.get(name)
        if previous is None or previous.value == setting.value:
            continue  # a new constant is new code, not a changed setting
        old_value: object = previous.value
        new_value: object = setting.value
        if str(old_value) in ("True", "False", "true", "false"):
            old_value, new_value = str(old_value).lower() == "true", str(new_value).lower() == "true"
        subkind, detail, data = describe(name, old_value, new_value, setting.line, previous.line)
        data.update(side="new", source="code_constant")
        hits.append(
            line_hit(
                "config_change",
                subkind,
                setting.line,
                detail,
                new.snippet(setting.line),
                0.85,
                data,
            )
        )
    return hits
