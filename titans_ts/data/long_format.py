"""Long-format tables (one row per series and time: `id, time, value`) made into one wide panel.

The rule for series of unequal length and misaligned stamps, in order:
1. every (id, time) pair must be unique (a duplicate is an error naming its rows);
2. the panel has one column per id, on the union of the stamps, sorted;
3. it keeps the span where every series has started and none has ended (the rows before or after are
   dropped, and a warning says how many and which series set the span);
4. inside that span a series without a value at a stamp is a missing value: an error naming it, unless
   `fill` fills it; evenly spaced stamps are required as for any user file.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from titans_ts.data.timestamps import numeric_times, parse_dates
from titans_ts.errors import DataValidationError, LongColumnsError, TitansWarning, UnreadInputsWarning

_MAX_LISTED = 5


class PanelSpanWarning(TitansWarning):
    """Rows outside the span shared by every series were dropped from a long-format table."""


def pivot_long(
    raw: pd.DataFrame, path: Path, id_col: str, time_col: str, target: str, series: list | None = None
) -> pd.DataFrame:
    """The wide panel (columns = ids as strings, index = the time column) of a long table; rules 1-3.
    series: the ids to keep (None: all), before anything else, so that another series' span cuts none of theirs;
    the others are listed in the panel's attrs["other_series"] (a saved model's reader says it leaves them)."""
    missing = [c for c in (id_col, time_col, target) if c not in raw.columns]
    if missing:
        raise LongColumnsError(
            f"{path}: no column(s) {missing} for the long format; columns are {list(raw.columns)[:10]}. "
            "Name them with id_col=, time_col=, target= (CLI: --id-col, --time-col, --target)."
        )
    _say_other_columns(raw, path, id_col, time_col, target)
    table = raw[[id_col, time_col, target]].copy()
    ids = table[id_col].astype(str)
    others = []
    if series is not None and {str(s) for s in series} <= set(ids):  # one it lacks: named by the caller (_kept)
        wanted = ids.isin({str(s) for s in series})
        others = list(dict.fromkeys(ids[~wanted]))
        table = table[wanted]
    table[target] = _values(table, path, id_col, time_col, target)
    table[time_col] = _times(table[time_col], path, time_col)
    duplicated = np.flatnonzero(table.duplicated([id_col, time_col], keep=False).to_numpy())
    if len(duplicated):
        rows = ", ".join(
            f"row {i + 1} ({table[id_col].iloc[i]!r} at {table[time_col].iloc[i]})" for i in duplicated[:_MAX_LISTED]
        )
        raise DataValidationError(
            f"{path}: {len(duplicated)} rows repeat an ({id_col}, {time_col}) pair: {rows}. "
            "Aggregate or remove the duplicates first."
        )
    wide = table.pivot(index=time_col, columns=id_col, values=target).sort_index()
    wide.columns = [str(c) for c in wide.columns]
    wide.columns.name = None
    wide = _common_span(wide, path)
    wide.attrs["other_series"] = others
    return wide


def _say_other_columns(raw: pd.DataFrame, path: Path, id_col: str, time_col: str, target: str) -> None:
    """An UnreadInputsWarning naming a long table's columns beside its id, time and value: each series is read
    from the value column alone, so a covariate there (a price, a temperature) would go unread without a word."""
    others = [str(c) for c in raw.columns if c not in (id_col, time_col, target)]
    if others:
        listed = f"{others[:_MAX_LISTED]}{' ...' if len(others) > _MAX_LISTED else ''}"
        warnings.warn(
            f"{path}: {len(others)} column(s) of the long table are not read, {listed}: each series is its "
            f"{target!r} values. To read one as an input, give a wide table instead (a column per series and per "
            "input, such as y_A, price_A, y_B, price_B) and name the forecast columns with target= (CLI: --target).",
            UnreadInputsWarning,
            stacklevel=2,
        )


def _values(table: pd.DataFrame, path: Path, id_col: str, time_col: str, target: str) -> pd.Series:
    """The value column as numbers (empty cells are missing values), or an error naming the rows that are not."""
    column = table[target]
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        return column
    numbers = pd.to_numeric(column, errors="coerce") if not pd.api.types.is_bool_dtype(column) else column * np.nan
    bad = np.flatnonzero((numbers.isna() & column.notna()).to_numpy())
    if not len(bad):
        return numbers
    rows = ", ".join(
        f"row {i + 1} ({table[id_col].iloc[i]!r} at {table[time_col].iloc[i]}: {column.iloc[i]!r})"
        for i in bad[:_MAX_LISTED]
    )
    raise DataValidationError(
        f"{path}: the value column {target!r} has {len(bad)} value(s) that are not numbers: {rows}. A long table's "
        "value column (target=, CLI: --target) must hold numbers: name the numeric one, or fix those rows."
    )


def _times(column: pd.Series, path: Path, name: str) -> pd.Series:
    """Timestamps, or integer steps; whole numbers that are dates (20230115) or Unix time are timestamps, read
    as a wide file's are (`numeric_times`, on the times every id shares)."""
    if pd.api.types.is_integer_dtype(column):
        shared = pd.Series(np.unique(column.to_numpy()))
        try:
            times = numeric_times(shared, path, name)
        except DataValidationError:
            return column  # steps that skip (each id's own numbering)
        if not isinstance(times, pd.DatetimeIndex):
            return column
        return column.map(dict(zip(shared.tolist(), times, strict=True)))
    return pd.Series(parse_dates(column, path, name, also=" nor integer steps"), index=column.index)


def _common_span(wide: pd.DataFrame, path: Path) -> pd.DataFrame:
    present = wide.notna()
    firsts = {c: wide.index[present[c].to_numpy()].min() for c in wide.columns}
    lasts = {c: wide.index[present[c].to_numpy()].max() for c in wide.columns}
    start_series, end_series = max(firsts, key=firsts.get), min(lasts, key=lasts.get)
    start, end = firsts[start_series], lasts[end_series]
    if start > end:
        raise DataValidationError(
            f"{path}: the series never all have values at once: {start_series!r} starts at {start}, after "
            f"{end_series!r} ends at {end}. Forecast them separately."
        )
    kept = wide.loc[start:end]
    dropped = len(wide) - len(kept)
    if dropped:
        setting = (_at(firsts, start, "starts last", "start last"), _at(lasts, end, "ends first", "end first"))
        said = ", ".join(filter(None, setting))
        warnings.warn(
            f"{path}: kept {start} .. {end}, where every series has values{f' ({said})' if said else ''}; "
            f"dropped {dropped} time stamp(s) outside it.",
            PanelSpanWarning,
            stacklevel=3,
        )
    return kept


def _at(stamps: dict, bound, one: str, several: str) -> str | None:
    """The series whose stamp is `bound`, said with `one` or `several` ("'b' starts last", "'b', 'c' start last"),
    or None when every series has it: a tie sets no end of the span."""
    at = [series for series, stamp in stamps.items() if stamp == bound]
    if len(at) == len(stamps):
        return None
    names = ", ".join(repr(series) for series in at[:_MAX_LISTED]) + (" ..." if len(at) > _MAX_LISTED else "")
    return f"{names} {one if len(at) == 1 else several}"
