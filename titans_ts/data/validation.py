"""Validation of a series' table: numeric columns, no missing or infinite value unless a fill is asked for (and
then said), timestamps in time order. Used by every reader (loading.py) and for a DataFrame given to an estimator."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from titans_ts.errors import DataValidationError, TitansWarning

FILL_METHODS = ("ffill", "interpolate", "zero")
MAX_LISTED = 5  # rows or columns named in a message


class TimeOrderWarning(TitansWarning):
    """Rows out of time order: a file's ran newest first (put in time order, oldest first), or a frame's
    integer index numbers them out of order (read in the order given)."""


class FilledValuesWarning(TitansWarning):
    """A file's missing timestamps or values were inserted and filled, as fill= (CLI: --fill) asked."""


def validate_frame(
    frame: pd.DataFrame,
    source: str = "the DataFrame",
    fill: str | None = None,
    in_memory: bool = False,
    ids: str | None = None,
    inserted: pd.Index | None = None,
) -> pd.DataFrame:
    """Every column numeric (float64) and finite, or a DataValidationError naming rows and columns (and saying
    how to fix a file, or with `in_memory` a DataFrame). `ids`: the id column of the long table the frame was
    made from (its columns are series, named so). `inserted`: the missing timestamps `fill` put in as empty rows,
    said with the values it filled (a FilledValuesWarning)."""
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise DataValidationError(f"{source}: has {frame.shape[0]} rows and {frame.shape[1]} columns; need both.")
    repeated = list(dict.fromkeys(frame.columns[frame.columns.duplicated()]))
    if repeated:  # df[name] would be a frame, and which column is which unknown
        raise DataValidationError(
            f"{source}: column name(s) {repeated} appear more than once: give each column its own name "
            "(df.columns = [...])."
        )
    if isinstance(frame.index, pd.DatetimeIndex):  # a repeated stamp is the caller's choice (weather has one)
        frame = in_time_order(frame, source, repeats=True)
    frame = _to_numeric(frame, source, in_memory)
    return _handle_non_finite(frame, source, fill, in_memory, ids, inserted)


def _say_filled(
    frame: pd.DataFrame, bad: np.ndarray, path, fill: str, inserted: pd.Index | None, also: str = ""
) -> None:
    """A FilledValuesWarning: how many timestamps `fill` inserted and how many other values it filled, with the
    first of each, so that a user sees how much of the series is made up (and `also`, a note said after)."""
    new_rows = frame.index.isin(inserted) if inserted is not None else np.zeros(len(frame), dtype=bool)
    parts = []
    if new_rows.any():
        first = ", ".join(str(stamp) for stamp in frame.index[new_rows][:MAX_LISTED])
        more = ", ..." if new_rows.sum() > MAX_LISTED else ""
        parts.append(f"inserted {int(new_rows.sum())} missing timestamp(s) ({first}{more})")
    rows, cols = np.nonzero(bad & ~new_rows[:, None])
    if len(rows):
        dated = isinstance(frame.index, pd.DatetimeIndex)
        where = ", ".join(
            f"{'at ' + str(frame.index[r]) if dated else f'row {r + 1}'} {frame.columns[c]!r}"
            for r, c in zip(rows[:MAX_LISTED], cols[:MAX_LISTED], strict=True)
        )
        more = ", ..." if len(rows) > MAX_LISTED else ""
        parts.append(f"filled {len(rows)} missing or infinite value(s) ({where}{more})")
    share = bad.any(axis=1).mean()
    warnings.warn(
        f"{path}: the {fill} fill {' and '.join(parts)}: {int(bad.any(axis=1).sum())} of the {len(frame)} rows "
        f"({share:.1%}) hold filled-in values.{' ' + also if also else ''}",
        FilledValuesWarning,
        stacklevel=2,
    )


def in_time_order(frame: pd.DataFrame, source, repeats: bool = False) -> pd.DataFrame:
    """The frame oldest first: rows written newest first are reversed, with a warning saying so; timestamps
    that go back in time otherwise (or repeat, unless `repeats`) are refused with the fix."""
    index = frame.index
    newest_first = len(index) >= 2 and index.is_monotonic_decreasing and index[0] > index[-1]
    ordered = frame.iloc[::-1] if newest_first else frame
    if ordered.index.is_monotonic_increasing and (repeats or ordered.index.is_unique):
        if newest_first:
            warnings.warn(
                f"{source}: the rows run newest first ({index[0]} down to {index[-1]}); they were put in time "
                "order, oldest first.",
                TimeOrderWarning,
                stacklevel=5,
            )
        return ordered
    steps = index.to_series().diff().iloc[1:]  # in the order given, so the rows named are the caller's
    if newest_first:
        steps = -steps
    out_of_order = steps < pd.Timedelta(0) if repeats else steps <= pd.Timedelta(0)
    backwards = np.flatnonzero(out_of_order.to_numpy())
    rows = ", ".join(f"row {i + 2} ({index[i + 1]})" for i in backwards[:MAX_LISTED])
    raise DataValidationError(
        f"{source}: {len(backwards)} timestamp(s) repeat or go back in time: {rows}. "
        "Sort the rows and aggregate duplicated timestamps first."
    )


def _future_rows(frame: pd.DataFrame, bad: np.ndarray) -> str:
    """A note for rows at the end that hold some columns and miss the others, as a table of known future inputs
    (a price, a holiday flag beside an empty target) looks: they are not read as future values (a forecast reads
    the history alone and starts after its last row), so they are to be dropped, not filled. "" otherwise."""
    missing = bad.any(axis=1)
    tail = len(missing) - (np.flatnonzero(~missing)[-1] + 1 if (~missing).any() else 0)
    if tail == 0 or tail == len(missing):
        return ""
    block = bad[-tail:]
    empty = block.all(axis=0)  # the columns missing in every one of those rows
    if not empty.any() or block[:, ~empty].any():
        return ""
    given = [str(c) for c in frame.columns[~empty]]
    absent = [str(c) for c in frame.columns[empty]]
    return (
        f"The last {tail} row(s) hold {given[:MAX_LISTED]} but not {absent[:MAX_LISTED]}: if {absent[:MAX_LISTED]} "
        f"is what you forecast and those rows hold known future inputs (a price, a holiday), they are not read as "
        "such (a forecast reads the history and starts after its last row): drop those rows rather than fill them."
    )


def _to_numeric(frame: pd.DataFrame, path: Path, in_memory: bool) -> pd.DataFrame:
    problems, non_numeric = [], []
    columns = {}
    for name in frame.columns:
        column = frame[name]
        if pd.api.types.is_bool_dtype(column) or not pd.api.types.is_numeric_dtype(column):
            converted = pd.to_numeric(column, errors="coerce")
            bad = np.flatnonzero((converted.isna() & column.notna()).to_numpy())
            if len(bad) or pd.api.types.is_bool_dtype(column):
                first = bad[0] if len(bad) else 0
                problems.append(f"{name!r} (row {first + 1}: {column.iloc[first]!r})")
                non_numeric.append(name)
                continue
            column = converted
        columns[name] = column.astype("float64")
    if problems:
        fix = (
            "pass only the numeric ones (df[[...]]), or drop or encode those first (df.drop(columns=[...]))"
            if in_memory
            else "drop or encode those columns first, or read only the numeric ones (CLI: --columns "
            f"{','.join(map(str, list(columns)[:MAX_LISTED])) or 'a,b'}; load_dataset(path, columns=[...]))"
        )
        error = DataValidationError(
            f"{path}: non-numeric column(s) {', '.join(problems[:MAX_LISTED])}. Every column but the date "
            f"must hold numbers: {fix}."
        )
        error.non_numeric = non_numeric  # a caller that knows which are targets says so (columns.read_as_fit)
        raise error
    return pd.DataFrame(columns, index=frame.index)


def _handle_non_finite(
    frame: pd.DataFrame,
    path: Path,
    fill: str | None,
    in_memory: bool,
    ids: str | None = None,
    inserted: pd.Index | None = None,
) -> pd.DataFrame:
    values = frame.to_numpy()
    bad = ~np.isfinite(values)
    if not bad.any():
        return frame
    if fill is None:
        rows, cols = np.nonzero(bad)
        dated = isinstance(frame.index, pd.DatetimeIndex)  # named by time: a long table's rows are not the file's
        word = "column" if ids is None else "series"  # a long table's columns are its series
        where = ", ".join(
            f"{'at ' + str(frame.index[r]) if dated else f'row {r + 1}'} {word} {frame.columns[c]!r}"
            for r, c in zip(rows[:MAX_LISTED], cols[:MAX_LISTED], strict=True)
        )
        bad_columns = [str(frame.columns[c]) for c in np.flatnonzero(bad.any(axis=0))]
        fix = (
            "Fill them first (df.interpolate(), df.ffill() or df.fillna(0)), or drop those rows"
            if in_memory
            else f"Clean the file, or pass fill= one of {FILL_METHODS} (CLI: --fill)"
        )
        of = f"column(s) {bad_columns}" if ids is None else f"series {bad_columns} (of id column {ids!r})"
        future = _future_rows(frame, bad)  # known future inputs: dropped, not filled
        fix = f"{future} If they are readings that are missing: {fix[0].lower()}{fix[1:]}." if future else f"{fix}."
        raise DataValidationError(f"{path}: {int(bad.sum())} missing or infinite value(s) in {of}: {where}. {fix}")
    _say_filled(frame, bad, path, fill, inserted, also=_future_rows(frame, bad))
    frame = frame.replace([np.inf, -np.inf], np.nan)
    if fill == "zero":
        return frame.fillna(0.0)
    if fill == "interpolate":
        frame = frame.interpolate(method="linear", limit_direction="both")
    return frame.ffill().bfill()
