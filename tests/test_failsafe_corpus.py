"""A generated corpus of bad input (issue 13): Hypothesis mutates valid bundles — a hand-made minimal
one in each table format and a small generated scenario — and every mutant must end one of two ways:
a one-line error naming the file (exit 2, nothing recorded), or data that validates clean, whose
warnings name what was dropped or repaired and reach the run's limitations. Never a traceback.

Many examples run at the load level in-process; only a few run `respond` end to end."""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from support_bundle import write_bundle
from warroom.cli import app
from warroom.errors import InputError
from warroom.incident import Incident, Severity
from warroom.scenarios import generate
from warroom.sources.bundle import load_bundle, validate_bundle
from warroom.sources.canonical import TABLES
from warroom.sources.incident_telemetry import IncidentTelemetry
from warroom.sources.tables import FORMATS
from warroom.sources.validate import Limits, Origin, validate_frame
from warroom.store.repository import Store

TEXT = (".csv", ".jsonl", ".ndjson")
CORPUS = settings(
    max_examples=50,
    deadline=None,
    derandomize=True,  # the same corpus on every run: a failure is reproducible, CI is not flaky
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture(scope="module")
def bases(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bases")
    found = {fmt: write_bundle(root / fmt, fmt) for fmt in ("csv", "jsonl", "parquet")}
    found["scenario"] = generate("pool-exhaustion", 1, root / "scenario", scale="small", repo="bundle")
    return found


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.getbasetemp() / "cache"))  # repo.bundle clones


# --- mutations --------------------------------------------------------------------------------

EXTREME_TIMES = [
    "0001-01-01T00:00:00Z",
    "9999-12-31T23:59:59Z",
    "1970-01-01T00:00:00Z",
    "2024-13-45T99:99:99Z",
    "1e30",
    "-5",
    "",
    "now",
]
AWKWARD_TEXT = st.one_of(
    st.text(max_size=40),
    st.sampled_from(["checkout\u202egnp", "\x1b[31mERROR\x1b[0m", "line\x00nul", "\ufeffbom", "a\u2028b", "错误", ""]),
)
VALUES = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**30), max_value=10**30),
    AWKWARD_TEXT,
    st.sampled_from(EXTREME_TIMES),
    st.none(),
)


@dataclass
class Mutation:
    """One change to one file of a bundle; `describe` is shown when a property fails."""

    describe: str
    apply: Callable[[Path], None]


def _table_files(root: Path) -> list[Path]:
    folders = [root, root / "baseline", *sorted((root / "after").glob("*"))]
    return [f / f"{n}{ext}" for f in folders for n in TABLES for ext in FORMATS if (f / f"{n}{ext}").is_file()]


def _read(path: Path) -> pl.DataFrame:
    if path.suffix == ".parquet":
        return pl.read_parquet(path)
    if path.suffix == ".csv":
        return pl.read_csv(path, infer_schema=False)
    return pl.read_ndjson(path, infer_schema_length=None)


def _write(frame: pl.DataFrame, path: Path) -> None:
    if path.suffix == ".parquet":
        frame.write_parquet(path)
    elif path.suffix == ".csv":
        frame.write_csv(path)
    else:
        frame.write_ndjson(path)


def _set_cell(frame: pl.DataFrame, column: str, row: int, value: Any) -> pl.DataFrame:
    keep_float = isinstance(value, float) and frame.schema[column].is_float()
    series = frame.get_column(column) if keep_float else frame.get_column(column).cast(pl.String)
    values = series.to_list()
    values[row] = value if keep_float or value is None else str(value)
    return frame.with_columns(pl.Series(column, values, dtype=series.dtype))


ROW_KINDS = ("cell", "cells", "cells", "shuffle", "duplicate")  # data a run could still use
SHAPE_KINDS = ("drop_column", "extra_column", "huge", "empty")


@st.composite
def frame_mutation(draw: st.DrawFn, base: Path, files: list[Path], kinds: tuple[str, ...]) -> Mutation:
    path = draw(st.sampled_from(files))
    frame = _read(path)
    rel = path.relative_to(base)
    kind = draw(st.sampled_from(kinds))
    row = draw(st.integers(0, max(frame.height - 1, 0)))
    column = draw(st.sampled_from(frame.columns))
    seed = draw(st.integers(0, 2**16))
    if kind == "cell" and frame.height:
        value = draw(VALUES)
        changed = _set_cell(frame, column, row, value)
        what = f"{column}[{row}] = {value!r}"
    elif kind == "cells" and frame.height:
        value = draw(st.sampled_from(_plausible_damage(column)))
        changed = frame
        for index in range(0, frame.height, max(1, frame.height // 7)):
            changed = _set_cell(changed, column, index, value)
        what = f"every ~7th {column} = {value!r}"
    elif kind == "shuffle":
        changed, what = frame.sample(fraction=1.0, shuffle=True, seed=seed), "rows shuffled"
    elif kind == "duplicate":
        changed, what = pl.concat([frame, frame.sample(n=min(frame.height, 5), seed=seed)]), "rows repeated"
    elif kind == "drop_column":
        changed, what = frame.drop(column), f"column {column} dropped"
    elif kind == "extra_column":
        changed, what = frame.with_columns(pl.lit("extra").alias("unexpected")), "extra column"
    elif kind == "huge" and frame.height:
        changed, what = _set_cell(frame, column, row, "x" * (1 << 20 | 17)), f"{column}[{row}] holds 1 MiB"
    else:
        changed, what = frame.head(0), "all rows removed"
    return Mutation(f"{rel}: {what}", lambda root: _write(changed, root / rel))


def _plausible_damage(column: str) -> list[Any]:
    """Values of the column's own type that are still wrong: what a broken exporter writes."""
    if column == "value":
        return [float("nan"), float("inf"), float("-inf"), 1e308, -0.0]
    if column in ("timestamp", "time", "start_time", "end_time"):
        return ["9999-01-01T00:00:00Z", "1970-01-01T00:00:00Z", "2000-02-29T00:00:00+14:00"]
    if column == "level":
        return ["error", "Warning", "fatal", "NOTICE", "verbose"]
    return ["x\u202ey", "\x1b[31mred\x1b[0m", "tab\there", "plain", "nan"]


@st.composite
def byte_mutation(draw: st.DrawFn, base: Path, files: list[Path]) -> Mutation:
    path = draw(st.sampled_from([*files, base / "incident.yaml"]))
    data = path.read_bytes()
    rel = path.relative_to(base)
    kind = draw(st.sampled_from(["truncate", "garbage", "latin1", "utf16", "empty"]))
    if kind == "truncate":
        cut = draw(st.integers(0, max(len(data) - 1, 0)))
        new, what = data[:cut], f"truncated at byte {cut}"
    elif kind == "garbage":
        at = draw(st.integers(0, len(data)))
        junk = draw(st.binary(min_size=1, max_size=64))
        new, what = data[:at] + junk + data[at + len(junk) :], f"{len(junk)} garbage bytes at {at}"
    elif kind in ("latin1", "utf16") and path.suffix in (*TEXT, ".yaml"):
        text = data.decode("utf-8") + "\nzürich,é"
        new, what = text.encode("latin-1" if kind == "latin1" else "utf-16", errors="replace"), f"encoded {kind}"
    else:
        new, what = b"", "emptied"
    return Mutation(f"{rel}: {what}", lambda root: (root / rel).write_bytes(new))


@st.composite
def manifest_mutation(draw: st.DrawFn, path: Path) -> Mutation:
    manifest = yaml.safe_load(path.read_text())
    kind = draw(st.sampled_from(["drop_key", "unknown_key", "fired_at", "window", "wrong_type"]))
    if kind == "drop_key":
        key = draw(st.sampled_from(["alert", "title"]))
        manifest.pop(key, None)
    elif kind == "unknown_key":
        key = draw(st.text(min_size=1, max_size=12))
        manifest[key] = "surprise"
    elif kind == "fired_at":
        key = draw(st.sampled_from(["2024-05-27T15:21:30", "yesterday", "9999-12-31T00:00:00Z", "1"]))
        manifest["alert"]["fired_at"] = key
    elif kind == "window":
        key = "end before start"
        manifest["window"] = {"start": "2024-05-27T15:00:00Z", "end": "2024-05-27T14:00:00Z"}
    else:
        key = draw(st.sampled_from(["slo", "business", "symptoms"]))
        manifest[key] = draw(st.sampled_from([42, "text", [1, 2], None]))
    text = yaml.safe_dump(manifest)
    return Mutation(f"incident.yaml: {kind} {key!r}", lambda root: (root / "incident.yaml").write_text(text))


@st.composite
def mutated(draw: st.DrawFn, bases: dict[str, Path], rows_only: bool = False) -> tuple[Path, list[Mutation]]:
    base = bases[draw(st.sampled_from(sorted(bases)))]
    files = _table_files(base)
    rows = frame_mutation(base, files, ROW_KINDS)
    if rows_only:
        strategy = rows
    else:  # weighted towards row-level damage, which a run may survive and must then name
        shapes = frame_mutation(base, files, SHAPE_KINDS)
        strategy = st.one_of(
            rows, rows, rows, shapes, byte_mutation(base, files), manifest_mutation(base / "incident.yaml")
        )
    return base, draw(st.lists(strategy, min_size=1, max_size=2))


def _copy(base: Path, mutations: list[Mutation], into: Path) -> Path:
    shutil.rmtree(into, ignore_errors=True)
    shutil.copytree(base, into, ignore=shutil.ignore_patterns("repo"))
    for mutation in mutations:
        mutation.apply(into)  # paths inside the copy mirror the base's
    return into


# --- properties -------------------------------------------------------------------------------


def _assert_one_line(exc: InputError, root: Path) -> None:
    line = exc.one_line()
    assert "\n" not in line and "Traceback" not in line
    assert str(root) in line or exc.field, line  # it says where


def codes(telemetry: IncidentTelemetry) -> set[str]:
    """The problem codes named in the limitations of what was read (`… [non_finite]`)."""
    return {m.group(1) for item in telemetry.limitations if (m := re.search(r"\[(\w+)\]$", item))}


def _assert_validates_clean(bundle: IncidentTelemetry) -> None:
    """Whatever passed validation is what validation promises: it passes again without a warning."""
    fired = bundle.manifest.alert.fired_at
    after = [bundle.after(kind) for kind in bundle.recorded_actions() or []]
    periods = [bundle.current, *([bundle.baseline] if bundle.baseline else []), *(a for a in after if a)]
    for telemetry in periods:
        for name in TABLES:
            frame = getattr(telemetry, name)
            if frame is None:
                continue
            again = validate_frame(name, frame, Origin(), fired, Limits.from_env())
            assert again.warnings == [], (name, [w.message for w in again.warnings])
            if name == "metrics":
                assert frame.get_column("value").is_finite().all()


@given(data=st.data())
@CORPUS
def test_every_mutated_bundle_loads_clean_or_fails_in_one_line(
    data: st.DataObject, bases: dict[str, Path], tmp_path: Path
) -> None:
    base, mutations = data.draw(mutated(bases))
    root = _copy(base, mutations, tmp_path / "mutant")
    note = "; ".join(m.describe for m in mutations)
    try:
        validate_bundle(root)
        bundle = load_bundle(root)
    except InputError as exc:
        _assert_one_line(exc, root)
        event(f"rejected: {type(exc).__name__}")
        return
    _assert_validates_clean(bundle)
    event("accepted: " + (", ".join(sorted(codes(bundle))) or "clean"))
    files = {path.name for path in root.rglob("*")}
    for item in bundle.limitations:
        subject = item.split(": ")[0]
        assert subject in TABLES or Path(subject).name in files, note  # each names the data it concerns first


RESPOND_WORKFLOW = {"name": "corpus", "phases": [{"id": "investigate", "agent": "application-incident-specialist"}]}


@given(data=st.data())
@settings(CORPUS, max_examples=6)
def test_respond_on_a_mutated_bundle_exits_2_or_names_the_problem_and_loses_nothing(
    data: st.DataObject, bases: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    minimal = {k: v for k, v in bases.items() if k != "scenario"}
    base, mutations = data.draw(mutated(minimal, rows_only=True))
    root = _copy(base, mutations, tmp_path / "mutant")
    workflow = tmp_path / "wf.yaml"
    workflow.write_text(yaml.safe_dump(RESPOND_WORKFLOW))
    url = f"sqlite:///{tmp_path / 'store.db'}"
    if not (tmp_path / "store.db").exists():
        seeded = Store(url)
        seeded.create_incident(Incident(id="", title="recorded before", severity=Severity.P3))
        seeded.close()
    before = [i.id for i in Store(url, create=False).list_incidents()]
    done = CliRunner().invoke(app, ["respond", str(root), "-w", str(workflow), "--json", "--db", url])
    assert not isinstance(done.exception, Exception) or isinstance(done.exception, SystemExit), done.exception
    payload = json.loads(done.stdout)
    event(f"respond: {payload['status']}")
    if done.exit_code == 2:
        assert payload["status"] == "bad_input" and "\n" not in payload["error"]
        assert [i.id for i in Store(url, create=False).list_incidents()] == before
        return
    assert done.exit_code in (0, 3), done.output
    after = [i.id for i in Store(url, create=False).list_incidents()]
    assert after[: len(before)] == before and len(after) == len(before) + 1  # nothing recorded is lost
    assert payload["status"] != "failed_steps", payload  # the data passed validation: no agent may choke on it
    expected = set(load_bundle(root).limitations)
    assert expected <= set(payload["limitations"]), (expected, payload["limitations"])


def test_a_generated_scenario_with_nan_and_far_future_rows_is_not_diagnosed_as_if_clean(
    bases: dict[str, Path], tmp_path: Path
) -> None:
    root = _copy(bases["scenario"], [], tmp_path / "nan")
    metrics = pl.read_parquet(root / "metrics.parquet")
    index = pl.int_range(pl.len())
    far = datetime(9999, 1, 1, tzinfo=UTC)
    metrics.with_columns(
        pl.when(index % 9 == 0)
        .then(float("nan"))
        .when(index % 13 == 0)
        .then(float("inf"))
        .otherwise("value")
        .alias("value"),
        pl.when(index % 17 == 0).then(pl.lit(far)).otherwise("timestamp").alias("timestamp"),
    ).write_parquet(root / "metrics.parquet")
    bundle = load_bundle(root)
    assert codes(bundle) >= {"non_finite", "implausible_time"}
    window = bundle.manifest.effective_window()
    assert bundle.metrics is not None and bundle.metrics.get_column("value").is_finite().all()
    assert bundle.metrics.get_column("timestamp").max() < window.end + timedelta(days=31)  # type: ignore[operator]
