"""Helpers shared by the analyses for the shape of the bundle's frames."""

from __future__ import annotations

from typing import TypeVar

import polars as pl

Frame = TypeVar("Frame", pl.DataFrame, pl.LazyFrame)


def decoded(frame: Frame) -> Frame:
    """The frame with its dictionary-coded (categorical) columns as plain text.

    The bundle keeps repeated keys such as service and metric as categories to save memory on large
    telemetry; an analysis decodes them once it has cut the rows down, so that its results join and
    compare with text built elsewhere."""
    schema = frame.collect_schema() if isinstance(frame, pl.LazyFrame) else frame.schema
    coded = [name for name, dtype in schema.items() if isinstance(dtype, pl.Categorical)]
    return frame.with_columns(pl.col(coded).cast(pl.String)) if coded else frame
