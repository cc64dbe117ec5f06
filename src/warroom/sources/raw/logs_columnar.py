"""JSON log lines read as columns: one Polars pass over a file whose lines share field names.

The per-line reader (logs_json.py) decides for every line which field holds its time, level,
message, …; on a file of a million lines that decision costs more than everything else. One
service writes one shape, so here it is made once per file, from the columns Polars finds (every
field of every line, `pl.read_ndjson`), and the lines are mapped with expressions. The rules are
the per-line reader's (logs_fields.py names the fields); a line goes to the per-line reader
instead wherever the columns could read it differently, so the result is the same either way:

- the preferred spelling of a role is empty on the line while another one is present (`msg`
  missing but `message` there), or a consumed field is the empty string;
- its time or level is in a form the expressions do not read (times are checked against
  times.py on a sample first), a trace or span id is not plain hex, an error field is not text,
  or its `attributes` field holds JSON text;
- a value's JSON type differs from its column's (Polars would have turned 503 into "503" in a
  text column, or `true` into 1);
- it is not a JSON object on one line (the per-line reader counts it).

The whole file goes to the per-line reader when it is not UTF-8 without a byte-order mark, when
Polars cannot parse its object lines, or when a role's first spelling is nested
(`{"log": {"level": …}}`). Numbers of one field written both as integers and as decimals come
out as decimals (`52` as `52.0`): the same number.
"""

from __future__ import annotations

import io
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import polars as pl
from polars.datatypes import DataTypeClass

from warroom.sources.canonical import TS
from warroom.sources.raw.logs import LINE, LogReadStats
from warroom.sources.raw.logs_fields import (
    ERROR_KEYS,
    INSTANCE_KEYS,
    LEVEL_KEYS,
    MESSAGE_KEYS,
    SERVICE_KEYS,
    SPAN_KEYS,
    TIME_KEYS,
    TRACE_KEYS,
    exception_fields,
    headline,
)
from warroom.sources.raw.reader import ReadOptions
from warroom.sources.raw.semconv import ALIASES, NUMERIC_ONLY, level_of
from warroom.sources.raw.text import encoding_of
from warroom.sources.raw.times import epoch_us, epoch_us_of_numbers

MICROS = "\x00micros"  # the time read, beside the field it was read from
CHUNK = 200_000  # object lines parsed at once: bounds the memory of the parsed fields
MIN_CHUNK = 2_000  # below this, lines Polars cannot parse together are read one by one
SAMPLE = 1_000  # lines whose times are read both ways before the expressions are trusted
EXCEPTION_FIELDS = ("exception.type", "exception.message", "exception.stacktrace")
# Time formats Polars does not infer by itself (Python logging's asctime).
TIME_FORMATS = ("%Y-%m-%d %H:%M:%S,%3f",)
# A field written as null, with one separating comma, in the compact JSON Polars writes (where a
# quote inside a string is always escaped, so a match cannot start inside a value).
_NULL_FIELD = r',"(?:[^"\\]|\\.)*":null|"(?:[^"\\]|\\.)*":null,?'
DType = pl.DataType | DataTypeClass
_PLAIN_KEY = re.compile(r"[\w.@$/-]+")


@dataclass
class ColumnRead:
    frame: pl.DataFrame | None  # the canonical logs columns and LINE of the lines read as columns
    rest: list[tuple[int, str]] = field(default_factory=list)  # (line, text) for the per-line reader


@dataclass(frozen=True)
class _Spelling:
    key: str  # the top-level field a line consumes when this spelling holds the value
    expr: pl.Expr
    dtype: DType
    nested: bool = False
    nullable: bool = True  # whether its value may be null on a line (a written null, or absent)

    def present(self) -> pl.Expr:
        if self.dtype == pl.String:
            return self.expr.is_not_null() & (self.expr != "")
        return self.expr.is_not_null()


@dataclass(frozen=True)
class _Role:
    """Where each line's value of one role (its time, level, …) is: in the first of its spellings
    present on the line, as logs_fields.first_field looks."""

    flat: tuple[_Spelling, ...]  # the top-level spellings, of one type, before any other
    later: tuple[_Spelling, ...] = ()  # from the first nested, Datadog or differently typed one on

    @property
    def dtype(self) -> DType | None:
        return self.flat[0].dtype if self.flat else None

    def chosen(self, index: int) -> pl.Expr:
        return self.flat[index].present() & ~_any([s.present() for s in self.flat[:index]])

    def present(self) -> pl.Expr:
        return _any([s.present() for s in self.flat])

    def fits(self) -> pl.Expr:
        """The columns read the line's value: it is in a flat spelling, or in none."""
        return self.present() | ~_any([s.present() for s in self.later])

    def value(self) -> pl.Expr:
        if not self.flat:
            return pl.lit(None)
        return pl.coalesce([pl.when(s.present()).then(s.expr) for s in self.flat])

    def consumed(self, also: pl.Expr | None = None) -> Iterator[tuple[str, pl.Expr]]:
        """(field, where the line's value was taken from it): a taken field leaves the attributes."""
        for index, spelling in enumerate(self.flat):
            yield spelling.key, self.chosen(index) if also is None else self.chosen(index) & also


def _any(exprs: list[pl.Expr]) -> pl.Expr:
    return pl.any_horizontal(exprs) if exprs else pl.lit(False)


def _spellings(schema: pl.Schema, key: str) -> Iterator[_Spelling]:
    """Where `key` may be on a line, as `logs_fields.lookup` looks: flat, or nested at a dot."""
    if key in schema:
        yield _Spelling(key, pl.col(key), schema[key])
    head, _, rest = key.partition(".")
    if rest and isinstance(schema.get(head), pl.Struct):
        yield from _nested(head, pl.col(head), schema[head], rest)


def _nested(top: str, expr: pl.Expr, dtype: DType, key: str) -> Iterator[_Spelling]:
    assert isinstance(dtype, pl.Struct)
    fields = {f.name: f.dtype for f in dtype.fields}
    if key in fields:
        yield _Spelling(top, expr.struct.field(key), fields[key], nested=True)
    head, _, rest = key.partition(".")
    if rest and isinstance(fields.get(head), pl.Struct):
        yield from _nested(top, expr.struct.field(head), fields[head], rest)


def _role(schema: pl.Schema, keys: tuple[str, ...]) -> _Role:
    found = [s for key in keys for s in _spellings(schema, key)]
    flat = 0
    while flat < len(found) and _plain(found[flat]) and found[flat].dtype == found[0].dtype:
        flat += 1
    return _Role(tuple(found[:flat]), tuple(found[flat:]))


def _plain(spelling: _Spelling) -> bool:
    """A top-level field read as it is (Datadog's ids are decimal: the per-line reader reads them)."""
    return not spelling.nested and spelling.key != "dd" and not spelling.key.startswith("dd.")


def read_columns(path: Path, file_service: str | None, stats: LogReadStats, options: ReadOptions) -> ColumnRead | None:
    """The lines of the file the columns read, and the others; None when the file is not for columns."""
    with path.open("rb") as handle:
        if encoding_of(handle.read(4)) != "utf-8":
            return None
    try:
        lines = pl.read_lines(path, name="text").with_row_index(LINE, offset=1)
    except pl.exceptions.PolarsError:
        return None  # not UTF-8: the per-line reader names the line of the first bad byte
    text = pl.col("text")
    is_object = text.str.starts_with("{") & text.str.ends_with("}")
    objects = lines.filter(is_object)
    read = ColumnRead(None, [(n, t) for n, t in lines.filter(~is_object).iter_rows() if t.strip()])
    del lines
    frames = []
    for start in range(0, objects.height, CHUNK):
        frames.extend(_read_chunk(objects.slice(start, CHUNK), read.rest, _File(file_service, stats, options)))
    if frames:
        read.frame = pl.concat(frames, how="vertical_relaxed") if len(frames) > 1 else frames[0]
    read.rest.sort()
    return read


@dataclass
class _File:
    """What a chunk's mapping needs of its file."""

    service: str | None  # the service named by the file's name
    stats: LogReadStats
    options: ReadOptions


def _read_chunk(chunk: pl.DataFrame, rest: list[tuple[int, str]], file: _File) -> list[pl.DataFrame]:
    """The canonical frames of a chunk of object lines; the lines they do not fit go to `rest`.
    A chunk Polars cannot parse as one table (a line that only looks like an object, objects of
    one field that cannot share a type) is read in halves, down to MIN_CHUNK lines."""
    try:
        frame = _parse(chunk.get_column("text"))
    except pl.exceptions.PolarsError:
        if chunk.height <= MIN_CHUNK:
            rest.extend(chunk.iter_rows())
            return []
        half = chunk.height // 2
        return [
            *_read_chunk(chunk.slice(0, half), rest, file),
            *_read_chunk(chunk.slice(half), rest, file),
        ]
    mapped = None
    if frame.height == chunk.height and LINE not in frame.columns and MICROS not in frame.columns:
        mapped = _map(frame.with_columns(chunk.get_column(LINE)), chunk, file)
    if mapped is None:
        rest.extend(chunk.iter_rows())
        return []
    canonical, fits = mapped
    rest.extend(chunk.filter(~fits).iter_rows())
    return [canonical]


def _parse(lines: pl.Series) -> pl.DataFrame:
    """The chunk's objects as columns. Polars gives a field written with two JSON types the type
    that holds both (text for 503 and "503"); a field most of the first lines write as a number
    or a boolean keeps that type instead, its other values null, so that only the lines that
    wrote another type go to the per-line reader (`_retyped` finds them), not all of them."""
    payload = lines.str.join("\n").item().encode()
    frame = pl.read_ndjson(io.BytesIO(payload), infer_schema_length=None)
    mixed = [name for name, dtype in frame.schema.items() if dtype == pl.String]
    overrides = _usual_types(lines.head(SAMPLE).to_list(), mixed)
    if not overrides:
        return frame
    return pl.read_ndjson(io.BytesIO(payload), infer_schema_length=None, schema_overrides=overrides, ignore_errors=True)


def _usual_types(sample: list[str], names: list[str]) -> dict[str, DType]:
    """The fields of `names` that most sample lines write as numbers or booleans, with that type."""
    kinds: dict[str, Counter[type]] = {name: Counter() for name in names}
    for text in sample:
        try:
            record = orjson.loads(text)
        except orjson.JSONDecodeError:
            continue
        for name, counter in kinds.items():
            if record.get(name) is not None:
                counter[type(record[name])] += 1
    found: dict[str, DType] = {}
    for name, counter in kinds.items():
        usual = counter.most_common(1)
        if usual and usual[0][0] in (int, float, bool):
            found[name] = {int: pl.Int64, float: pl.Float64, bool: pl.Boolean}[usual[0][0]]
    return found


def _map(frame: pl.DataFrame, objects: pl.DataFrame, file: _File) -> tuple[pl.DataFrame, pl.Series] | None:
    """The canonical columns of the lines that fit (and which those are), or None when the file's
    fields are not for columns."""
    schema = frame.schema
    time, level, message = _role(schema, TIME_KEYS), _role(schema, LEVEL_KEYS), _role(schema, MESSAGE_KEYS)
    trace, span, instance = _role(schema, TRACE_KEYS), _role(schema, SPAN_KEYS), _role(schema, INSTANCE_KEYS)
    service = _role(schema, SERVICE_KEYS)
    configured = _role(schema, (file.options.service_label,)) if file.options.service_label else _Role(())
    if time.dtype is None or not (time.dtype == pl.String or time.dtype.is_numeric()) or message.dtype != pl.String:
        return None
    if any(isinstance(r.dtype, pl.Struct | pl.List) for r in (service, instance, configured)):
        return None  # an object where a name is expected: the per-line reader writes it out
    fits = time.present() & message.present()
    for role in (level, trace, span, instance, configured):
        fits = fits & role.fits()

    # service: the configured field, else a service field, else the file's name
    by_field = ~configured.present() & service.present()
    fits = fits & (configured.present() | (service.fits() & (service.present() | pl.lit(file.service is not None))))
    service_value = (
        pl.when(configured.present())
        .then(configured.value().cast(pl.String))
        .when(by_field)
        .then(service.value().cast(pl.String))
        .otherwise(pl.lit(file.service))
    )
    origin = (
        pl.when(configured.present())
        .then(pl.lit(f"the configured field '{file.options.service_label}'"))
        .when(by_field)
        .then(pl.lit("a field of the line"))
        .otherwise(pl.lit("the file name"))
    )
    taken: dict[str, list[pl.Expr]] = {}
    whole: list[str] = []  # the only spelling of its role: taken wherever it holds a value
    for role, also in ((time, None), (level, None), (message, None), (trace, None), (instance, None),
                       (configured, None), (service, ~configured.present() if configured.flat else None)):  # fmt: skip
        for key, where in role.consumed(also):
            taken.setdefault(key, []).append(where)
            if len(role.flat) == 1 and also is None:
                whole.append(key)

    timestamps = _timestamps(frame.select(time.value().alias(MICROS)).to_series())
    if timestamps is None:
        return None
    fits = fits & timestamps.is_not_null()
    level_value, level_fits = _levels(frame, level)
    trace_value, trace_fits = _hex(trace, 32)
    fits = fits & level_fits & trace_fits

    attributes, attributes_fit = _attributes(frame, taken, {k for k in whole if whole.count(k) == len(taken[k])})
    exception, exception_fits = _exceptions(frame, schema, attributes)
    fits = fits & attributes_fit & exception_fits
    if exception is not None:
        for name in EXCEPTION_FIELDS:
            attributes[name] = _Spelling(name, exception.struct.field(name), pl.String())
    if span.flat:
        span_value, span_fits = _hex(span, 16, zero_fits=False)
        fits = fits & span_fits
        own = attributes.get("span_id")
        value = span_value if own is None or own.dtype != pl.String else pl.coalesce(own.expr, span_value)
        fits = fits & (pl.lit(own is None or own.dtype == pl.String) | ~span.present())
        attributes["span_id"] = _Spelling("span_id", value, pl.String())
    fits = fits & _canonical_names(attributes) & ~_retyped(objects, schema)

    described = (
        exception
        if exception is not None
        else pl.struct([pl.lit(None, dtype=pl.String).alias(name) for name in [*EXCEPTION_FIELDS, "headline"]])
    )
    failed = _any([described.struct.field(name).is_not_null() for name in EXCEPTION_FIELDS])
    title = described.struct.field("headline")
    said = message.value()
    text = (
        pl.when(title.is_not_null() & ~said.str.contains(title, literal=True).fill_null(False))
        .then(pl.concat_str(said, pl.lit(": "), title))
        .otherwise(said)
    )
    encoded = pl.struct([s.expr.alias(name) for name, s in attributes.items()]).struct.json_encode()
    if any(s.nullable for s in attributes.values()):
        encoded = encoded.str.replace_all(_NULL_FIELD, "")
    mapped = frame.with_columns(timestamps.alias(MICROS)).select(
        pl.col(MICROS).cast(TS).alias("timestamp"),
        service_value.alias("service"),
        level_value.fill_null(pl.when(failed).then(pl.lit("ERROR")).otherwise(pl.lit("INFO"))).alias("level"),
        text.alias("message"),
        trace_value.alias("trace_id"),
        instance.value().cast(pl.String).alias("instance"),
        pl.when(encoded != "{}").then(encoded).alias("attributes"),
        pl.col(LINE),
        fits.fill_null(False).alias("fits"),
        origin.alias("origin"),
        ~level.present().alias("no_level"),
    )
    fitting = mapped.get_column("fits")
    kept = mapped.filter(fitting)
    for origin_name, count in kept.get_column("origin").value_counts().iter_rows():
        file.stats.service_from[origin_name] = file.stats.service_from.get(origin_name, 0) + count
    file.stats.no_level += int(kept.get_column("no_level").sum())
    return kept.drop("fits", "origin", "no_level"), fitting


def _attributes(
    frame: pl.DataFrame, taken: dict[str, list[pl.Expr]], whole: set[str]
) -> tuple[dict[str, _Spelling], pl.Expr]:
    """The fields a line keeps as attributes, with the fields of its own `attributes` object
    beside them. A field the line's value was taken from is null there, which leaves it out; one
    taken wherever it holds a value is left out as a whole (its lines holding "" are not read as
    columns: they keep it)."""
    fields = {}
    fits = pl.lit(True)
    for name, dtype in frame.schema.items():
        if name == LINE:
            continue
        expr = pl.col(name)
        if name in whole:
            if dtype == pl.String:
                fits = fits & (expr != "").fill_null(True)
            continue
        if name in taken:
            expr = pl.when(_any(taken[name])).then(None).otherwise(expr)
        fields[name] = _Spelling(name, expr, dtype, nullable=name in taken or frame.get_column(name).null_count() > 0)
    nested = fields.get("attributes")
    if nested is not None and nested.dtype == pl.String:
        return fields, fits & ~nested.expr.str.starts_with("{").fill_null(False)  # JSON text: parsed per line
    if nested is None or not isinstance(nested.dtype, pl.Struct):
        return fields, fits
    # an OpenTelemetry-shaped line: the fields of its own `attributes` object, under its others
    del fields["attributes"]
    inner = {}
    for f in nested.dtype.fields:
        value = nested.expr.struct.field(f.name)
        top = fields.pop(f.name, None)
        if top is not None and top.dtype != f.dtype:
            fits = fits & ~(top.expr.is_null() & value.is_not_null())
            inner[f.name] = top
            continue
        inner[f.name] = _Spelling(f.name, value if top is None else pl.coalesce(top.expr, value), f.dtype)
    return {**inner, **fields}, fits


def _timestamps(raw: pl.Series) -> pl.Series | None:
    """Epoch microseconds of every line's time (null where the expressions cannot read it), or
    None when they read the sample differently from times.py."""
    if raw.dtype.is_numeric():
        micros = epoch_us_of_numbers(raw)
    else:
        digits = raw.str.contains(r"^\d+$").fill_null(False)
        numbers = _timestamps(raw.cast(pl.Int64, strict=False))
        if numbers is None:
            return None
        words = pl.select(pl.when(~digits).then(raw)).to_series()
        micros = pl.select(pl.when(digits).then(numbers).otherwise(_parsed(words))).to_series()
    sample = pl.DataFrame({"raw": raw, "micros": micros}).filter(pl.col("micros").is_not_null()).head(SAMPLE)
    if any(epoch_us(value) != expected for value, expected in sample.iter_rows()):
        return None
    return micros


def _parsed(raw: pl.Series) -> pl.Series:
    """Times as text, in the format Polars infers (else one of TIME_FORMATS), as epoch µs."""
    for format_ in (None, *TIME_FORMATS):
        try:
            parsed = raw.str.to_datetime(format_, time_unit="us", time_zone="UTC", strict=False)
        except pl.exceptions.PolarsError:  # no format fits the first time: try the next
            continue
        if parsed.is_not_null().any():
            return parsed.dt.epoch("us")
    return pl.Series(raw.name, [None] * raw.len(), dtype=pl.Int64)


def _levels(frame: pl.DataFrame, level: _Role) -> tuple[pl.Expr, pl.Expr]:
    """The canonical level (null where the line has none) and where it is known."""
    if level.dtype is None or not (level.dtype == pl.String or level.dtype.is_integer()):
        return pl.lit(None, dtype=pl.String), ~level.present()
    words = frame.select(level.value()).to_series().drop_nulls().unique().to_list()
    mapping = {word: found for word in words if (found := level_of(word)) is not None}
    value = level.value().replace_strict(mapping, default=None, return_dtype=pl.String)
    return value, value.is_not_null() | ~level.present()


def _hex(role: _Role, length: int, *, zero_fits: bool = True) -> tuple[pl.Expr, pl.Expr]:
    """A trace or span id as lower-case hex (null for none or all zeros), and where the columns
    read it as semconv.hex_id does (plain hex of the right length)."""
    if role.dtype != pl.String:
        return pl.lit(None, dtype=pl.String), ~role.present()
    normal = role.value().str.to_lowercase().str.strip_prefix("0x").str.replace_all("-", "", literal=True)
    valid = normal.str.contains(f"^[0-9a-f]{{{length}}}$")
    zero = normal.str.contains("^0+$")
    value = pl.when(valid & ~zero).then(normal)
    fits = ~role.present() | (valid & (pl.lit(zero_fits) | ~zero))
    return value, fits


def _exceptions(
    frame: pl.DataFrame, schema: pl.Schema, attributes: dict[str, _Spelling]
) -> tuple[pl.Expr | None, pl.Expr]:
    """exception.type/message/stacktrace and the headline of the line's error field (a struct
    column, null where there is none; None when the file has no error field), and where the
    columns read it: one error field, as text, on a line that does not already name its exception."""
    found = [s for key in ERROR_KEYS for s in _spellings(schema, key)]
    names = [*EXCEPTION_FIELDS, "headline"]
    none = pl.struct([pl.lit(None, dtype=pl.String).alias(n) for n in names])
    if not found:
        return None, pl.lit(True)
    present = [s.present() for s in found]
    count = pl.sum_horizontal([p.cast(pl.Int32) for p in present])
    texts = [s for s in found if s.dtype == pl.String]
    fits = (count <= 1) & ~_any([p for s, p in zip(found, present, strict=True) if s.dtype != pl.String])
    if any(name in attributes for name in EXCEPTION_FIELDS):
        fits = fits & (count == 0)
    if not texts:
        return none, fits & (count == 0)
    value = pl.coalesce([pl.when(s.present()).then(s.expr) for s in texts])
    distinct = frame.select(value.alias("error")).get_column("error").drop_nulls().unique().to_list()
    described = [{**dict.fromkeys(names), **exception_fields(text)} for text in distinct]
    for row in described:
        row["headline"] = headline(row) or None
    table = pl.DataFrame(
        {"error": distinct, **{n: [row[n] for row in described] for n in names}},
        schema_overrides={n: pl.String for n in ["error", *names]},
    )
    lookup = pl.struct([value.replace_strict(table["error"], table[n], default=None).alias(n) for n in names])
    return lookup, fits


def _canonical_names(attributes: dict[str, _Spelling]) -> pl.Expr:
    """Add the names the analyses read (semconv.canonical_attributes) where only another spelling
    is present; the lines where the spellings' types differ are left to the per-line reader."""
    fits = pl.lit(True)
    for name, aliases in ALIASES.items():
        sources = []
        for alias in aliases:
            spelling = attributes.get(alias)
            if spelling is None:
                continue
            if alias in NUMERIC_ONLY:
                if spelling.dtype.is_integer():
                    sources.append(_Spelling(alias, spelling.expr.cast(pl.Int64), pl.Int64, nullable=spelling.nullable))
                elif spelling.dtype == pl.String:
                    digits = spelling.expr.str.contains(r"^\d+$")
                    number = pl.when(digits).then(spelling.expr.cast(pl.Int64, strict=False))
                    sources.append(_Spelling(alias, number, pl.Int64))
                continue
            sources.append(spelling)
        if not sources:
            continue
        own = attributes.get(name)
        candidates = [own, *sources] if own is not None else sources
        if len({s.dtype for s in candidates}) > 1 and all(s.dtype.is_numeric() for s in candidates):
            # integers and decimals: the same numbers as decimals (503 as 503.0)
            candidates = [
                _Spelling(s.key, s.expr.cast(pl.Float64), pl.Float64(), nullable=s.nullable) for s in candidates
            ]
        if len({s.dtype for s in candidates}) > 1:
            own_missing = own.expr.is_null() if own is not None else pl.lit(True)
            fits = fits & ~(own_missing & _any([s.expr.is_not_null() for s in sources]))
            continue
        value = pl.coalesce([s.expr for s in candidates])
        nullable = all(s.nullable for s in candidates)
        attributes[name] = _Spelling(name, value, candidates[0].dtype, nullable=nullable)
    return fits


def _leaves(schema: pl.Schema | dict[str, DType]) -> Iterator[tuple[str, DType]]:
    for name, dtype in schema.items():
        inner = dtype.inner if isinstance(dtype, pl.List) else dtype
        if isinstance(inner, pl.Struct):
            yield from _leaves({f.name: f.dtype for f in inner.fields})
        else:
            yield name, inner


def _retyped(objects: pl.DataFrame, schema: pl.Schema) -> pl.Expr:
    """Lines where a field was written with another JSON type than its column's (a number in a
    text column, a boolean in a number column): Polars gave each column one type."""
    text_keys, integer_keys, number_keys, bool_keys = set(), set(), set(), set()
    for name, dtype in _leaves({k: v for k, v in schema.items() if k != LINE}):
        if not _PLAIN_KEY.fullmatch(name):
            return pl.lit(True)  # a key written with escapes: no pattern finds it reliably
        if dtype == pl.String:
            text_keys.add(name)
        elif dtype.is_integer():
            integer_keys.add(name)
        elif dtype.is_numeric():
            number_keys.add(name)
        elif dtype == pl.Boolean:
            bool_keys.add(name)
    patterns = [
        rf'"(?:{"|".join(pl.escape_regex(k) for k in sorted(group))})"\s*:\s*{other}'
        for group, other in (
            (text_keys, r'[^"\sn]'),
            (integer_keys, r'(?:[tf"{\[]|-?\d+[.eE])'),
            (number_keys, r'[tf"{\[]'),
            (bool_keys, r'[-\d"{\[]'),
        )
        if group
    ]
    if not patterns:
        return pl.lit(False)
    return pl.lit(objects.get_column("text").str.contains("|".join(patterns)))
