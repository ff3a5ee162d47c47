"""`load_dataset`: read a time series (a registered dataset, found by sources.py, or the user's own file) and
validate it: timestamps, numbers, missing values, time order and spacing."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

import pandas as pd

from titans_ts.data.long_format import pivot_long
from titans_ts.data.raw_table import FOREIGN_SUFFIXES, names_a_file, read_format, read_table
from titans_ts.data.registry import get_dataset_info, lookup_name
from titans_ts.data.sources import locate, verify_checksum
from titans_ts.data.timestamps import numeric_times, parse_dates, reads_as_timestamps, regular_grid
from titans_ts.data.validation import FILL_METHODS, MAX_LISTED, in_time_order, validate_frame
from titans_ts.errors import (
    DatasetNotFoundError,
    DataValidationError,
    EmptyTableError,
    MissingColumnsError,
)

_MAX_COLUMNS_LISTED = 30  # a wide file's columns, named in an error
DATE_NAMES = ("date", "datetime", "timestamp", "time")  # a column so named holds the timestamps
TIME_NAMES = (*DATE_NAMES, "ts", "ds", "t", "step", "period", "time_idx", "timestep")  # a long table's time column
ID_NAMES = ("id", "series", "unique_id", "item", "sensor", "station", "store", "key")  # ... and its id column
LONG_FLAGS = ("--id-col", "--time-col", "--target")


def load_dataset(
    name_or_path: str | os.PathLike,
    data_dir: str | os.PathLike | None = None,
    verify: bool | None = None,
    *,
    download: bool = True,
    date_column: str | None = None,
    fill: str | None = None,
    header: bool = True,
    sep: str | None = None,
    long: tuple[str, str, str] | None = None,
    columns: list[str] | None = None,
) -> pd.DataFrame:
    """Load a time series as a float DataFrame indexed by timestamp (the date column becomes the index).

    `name_or_path` is a registered name (`ETTh1`, `weather`, `ECL`, ...) or the path of a table (CSV, TSV or
    text, also compressed; parquet, Feather/Arrow, JSON, Excel: raw_table.py) with a date column and numeric
    columns; a bare name that no dataset is registered under may name a file in the current folder. A
    registered dataset is looked for in this order: `data_dir`,
    `$TITANS_DATA_DIR`, the files bundled with titans-ts, the user cache (`~/.cache/titans-ts`), and
    last a download from its canonical URL into the cache.

    verify: check the file's sha256 against the registry. Default: on for registered datasets, off for
      explicit paths (pass True to check a path whose file name is registered, e.g. `.../traffic.csv`).
    download: allow the download step (off: raise `DatasetNotFoundError` instead).
    date_column: the column holding timestamps (default: one named date, datetime, timestamp or time, else a
      first column that is not numeric; a `Time` column of times of day beside a date-only one joins it). Whole
      numbers there are dates (20230115), Unix time (s, ms, us or ns) or steps counting up by one. The unnamed
      column of row numbers that pandas' to_csv writes is dropped.
    fill: what to do with NaN / inf values: None raises, or one of "ffill", "interpolate", "zero".
    header: False for a file without a header row: the columns are named x0, x1, ... (a first row that
      looks like data in a file read with header=True is an error, never a silently lost row).
    sep: the delimiter; None sniffs it from the file (",", ";", tab or "|").
    long: (id column, time column, value column) of a long-format table (one row per series and time),
      made into one column per series (see `titans_ts.data.long_format` for unequal lengths and gaps).
    columns: read only these value columns (the others, e.g. a text column, are neither read nor checked); a name
      the file lacks is a DataValidationError naming the file's columns.

    A file without a timestamp column (every column numeric) is a series indexed by step 0, 1, 2, ...;
    forecasts continue the steps. A user's file must have evenly spaced, strictly increasing timestamps:
    gaps are an error naming the rows, unless `fill` is given, which inserts the missing timestamps and
    fills them like missing values; a file written newest first is put in time order (a `TimeOrderWarning`
    says so); duplicated or shuffled timestamps are always an error. Registered benchmarks load as published
    (their protocol counts rows).
    """
    if fill is not None and fill not in FILL_METHODS:
        raise DataValidationError(
            f"fill={fill!r} is not supported; use one of {FILL_METHODS}, or fill=None (gaps refused)."
        )
    path = Path(name_or_path).expanduser()
    registered = None
    if not _looks_like_path(name_or_path):
        try:
            registered = get_dataset_info(str(name_or_path))
        except DatasetNotFoundError:
            if not path.is_file():
                raise
    if registered is not None:
        path = locate(registered, data_dir=data_dir, download=download)
        if verify is None or verify:
            verify_checksum(path, registered)
        return read_series_csv(path, date_column=date_column, fill=fill, columns=columns)
    # a file: by its path, or by a bare name in the current folder that names no registered dataset (mydata.dat)
    if not path.is_file():
        raise DatasetNotFoundError(f"No file at {path}. Check the path, or pass a registered name.")
    if read_format(path) in FOREIGN_SUFFIXES:
        raise DataValidationError(
            f"{path} is not a table titans-ts reads: save it as CSV, TSV or text (also compressed: .gz, .bz2, .xz, "
            ".zip, .zst), parquet, Feather/Arrow, JSON or JSON lines, or Excel (.xlsx, .xls; its first sheet)."
        )
    info = lookup_name(_strip_suffixes(path.name))
    if verify and info is not None:
        verify_checksum(path, info)
    return read_series_csv(
        path, date_column=date_column, fill=fill, header=header, sep=sep, regular=True, long=long, columns=columns
    )


def read_series_csv(
    path: Path,
    date_column: str | None = None,
    fill: str | None = None,
    header: bool = True,
    sep: str | None = None,
    regular: bool = False,
    long: tuple[str, str, str] | None = None,
    columns: list[str] | None = None,
) -> pd.DataFrame:
    """Read and validate a CSV of timestamps + numeric columns; see `load_dataset`.

    regular: require evenly spaced timestamps (gaps filled only when `fill` is given).
    long: (id, time, value) columns of a long-format table, pivoted to one column per series.
    columns: the value columns to keep (the series of a long table); None: all."""
    raw = read_table(path, header=header, sep=sep)
    if raw.empty:
        raise EmptyTableError(f"{path}: has no data rows (columns {list(raw.columns)[:10]}).")
    if long is not None:
        frame = pivot_long(raw, path, *long, series=columns)
        other_series = frame.attrs.pop("other_series")  # the ids beside `columns`: a saved model's reader names them
        frame.index.name = str(long[1])  # the time column's name, dated or not
        inserted = None
        if isinstance(frame.index, pd.DatetimeIndex):
            frame, inserted = _evenly_spaced(frame, path, fill)
        kept = _kept(frame, columns, path, ids=long[0])
        read = validate_frame(kept, source=str(path), fill=fill, ids=long[0], inserted=inserted)
        read.attrs["other_series"] = other_series
        return read
    try:
        return _read_wide(raw, path, date_column, fill, header, regular, columns)
    except DataValidationError as exc:
        hint = _long_format_hint(raw)
        if hint is None:
            raise
        raise type(exc)(f"{exc} {hint}") from None


def _read_wide(raw: pd.DataFrame, path: Path, date_column, fill, header, regular, columns) -> pd.DataFrame:
    """The wide table `raw` (a column per series, a row per time) indexed by its timestamps; see `load_dataset`."""
    date_col = _pick_date_column(raw, path, date_column)
    if date_col is None:  # no timestamps: the rows are steps 0, 1, 2, ...
        frame = raw.set_axis(pd.RangeIndex(len(raw), name="step"), axis=0)
        return validate_frame(_kept(frame, columns, path), source=str(path), fill=fill)
    raw = _with_time_of_day(raw, date_col)
    if raw.shape[1] < 2:
        raise DataValidationError(f"{path}: has a date column {date_col!r} but no value columns.")
    frame = _kept(raw.drop(columns=[date_col]), columns, path, time_column=date_col)
    try:
        if pd.api.types.is_numeric_dtype(raw[date_col]):  # a column named time or date, or the one named
            frame.index = numeric_times(raw[date_col], path, date_col)  # Unix time, or step numbers
        else:
            frame.index = parse_dates(raw[date_col], path, date_col)
    except DataValidationError as exc:
        if date_column is not None or str(date_col).strip().lower() in DATE_NAMES:
            raise
        raise DataValidationError(
            f"{exc} It was taken for the date column because it is the first column and not numeric: name the "
            "timestamp column with date_column= (CLI: --date-column), or remove this column from the file."
        ) from None
    if isinstance(frame.index, pd.RangeIndex):  # steps
        return validate_frame(frame, source=str(path), fill=fill)
    named = header and not str(date_col).startswith("Unnamed: ")  # pandas' name for an empty header cell
    frame.index.name = date_col if named else "date"  # forecasts' time column: the file's name for it
    inserted = None
    if regular:
        frame, inserted = _evenly_spaced(frame, path, fill)
    return validate_frame(frame, source=str(path), fill=fill, inserted=inserted)


def _with_time_of_day(raw: pd.DataFrame, date_col) -> pd.DataFrame:
    """A text date column with a time-of-day column beside it (Date;Time;..., as data loggers write), made one
    timestamp column: read alone, the dates repeat."""
    if pd.api.types.is_numeric_dtype(raw[date_col]) or raw[date_col].astype(str).str.contains(":").any():
        return raw  # numbers, or timestamps with their time of day
    for column in raw.columns:
        if column == date_col or str(column).strip().lower() not in ("time", "hour", "time of day"):
            continue
        clock = raw[column].astype(str).str.strip()
        if clock.str.fullmatch(r"\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?").all():
            return raw.assign(**{date_col: raw[date_col].astype(str).str.strip() + " " + clock}).drop(columns=[column])
    return raw


def _kept(frame: pd.DataFrame, columns, path, time_column=None, ids=None) -> pd.DataFrame:
    """The `columns` of `frame` (all when None), in the frame's order; one missing is an error naming the
    columns the file has (a check after this read would see only the ones kept). `time_column`: the file's
    time column (the index, always read), said to be so when named; `ids`: the id column of a long table, whose
    values are the frame's columns (its series)."""
    if columns is None:
        return frame
    present = [str(column) for column in frame.columns]
    missing = [str(name) for name in columns if str(name) not in present]
    if missing:
        raise MissingColumnsError(_missing_message(path, [str(c) for c in columns], missing, present, time_column, ids))
    wanted = {str(name) for name in columns}
    return frame[[column for column in frame.columns if str(column) in wanted]]


def _missing_message(path, asked: list[str], missing: list[str], present: list[str], time_column, ids) -> str:
    listed = f"{present[:_MAX_COLUMNS_LISTED]}{' ...' if len(present) > _MAX_COLUMNS_LISTED else ''}"
    if ids is not None:  # a long table: the names are series ids
        of = "" if len(missing) == len(asked) else f" (of the series to read, {asked})"
        return f"{path}: has no series {missing}{of} in its id column {ids!r}; its series are {listed}."
    time = None if time_column is None else str(time_column)
    others = [name for name in missing if name != time]
    said = (
        f"{time!r} is its time column (the index), which is always read: leave it out of the columns to read "
        "(columns=, CLI: --columns)"
    )
    if not others:
        return f"{path}: {said}; its other columns are {listed}."
    of = "" if len(others) == len(asked) else f" (of the columns to read, {asked})"
    message = f"{path}: has no column(s) {others}{of}; its columns are {listed}."
    return f"{message} {said[0].upper()}{said[1:]}." if len(others) < len(missing) else message


def _long_format_hint(raw: pd.DataFrame) -> str | None:
    """For a table that looks long (one row per series and time), read as a wide one: how to read it as long,
    naming the columns that look like its id, time and value columns; None when it does not look long."""
    found = long_format_columns(raw)
    if found is None:
        return None
    names = [repr(str(c)) if c is not None else "<its value column>" for c in found]
    flags = [shlex.quote(str(c)) if c is not None else "VALUE" for c in found]
    cli = " ".join(f"{flag} {name}" for flag, name in zip(LONG_FLAGS, flags, strict=True))
    return (
        f"It looks like a long-format table (one row per series and time): such a table is read with "
        f"long=({', '.join(names)}) (CLI: {cli})."
    )


def long_format_columns(raw: pd.DataFrame) -> tuple | None:
    """(id, time, value) columns of a table that looks long (one row per series and time), the value None when
    no numeric column is left; None when it does not look long.

    It looks long when a column other than the id column holds timestamps (or is named like a time column) whose
    values repeat, and a text column, or one named like an id, repeats a few values (at least two rows each, on
    average)."""
    rows = len(raw)
    if rows < 4 or not raw.columns.is_unique:  # a repeated name is refused as such (df[name] would be a frame)
        return None
    columns = list(raw.columns)
    named = {column: str(column).strip().lower() for column in columns}

    def repeats(column, at_most) -> bool:
        return raw[column].nunique(dropna=True) <= at_most

    def timelike(column) -> bool:
        name = named[column]
        if pd.api.types.is_numeric_dtype(raw[column]):  # steps or Unix time, under a time column's name
            return pd.api.types.is_integer_dtype(raw[column]) and (name in TIME_NAMES or name.endswith("_time"))
        return reads_as_timestamps(raw[column])

    def idlike(column) -> bool:
        name = named[column]
        text = not pd.api.types.is_numeric_dtype(raw[column])
        return (text or name in ID_NAMES or name.endswith(("_id", " id"))) and not reads_as_timestamps(raw[column])

    times = [column for column in columns if timelike(column) and repeats(column, rows // 2)]  # each time twice
    ids = [column for column in columns if column not in times and idlike(column) and repeats(column, rows // 2)]
    if not times or not ids:
        return None
    id_col, time_col = ids[0], times[0]
    numbers = [c for c in columns if c not in (id_col, time_col) and pd.api.types.is_numeric_dtype(raw[c])]
    return id_col, time_col, numbers[0] if numbers else None


def _evenly_spaced(frame: pd.DataFrame, path: Path, fill: str | None) -> tuple[pd.DataFrame, pd.Index | None]:
    """Strictly increasing timestamps at one step, and the timestamps inserted (None when none were); gaps are
    inserted (then filled) only when fill is given.
    The step may be a calendar one (business days, months, quarters, years: `calendar_grid`), whose gaps are
    the calendar's missing days or months. A file written newest first is put in time order, with a warning
    saying so."""
    frame = in_time_order(frame, path)
    index = frame.index
    if len(index) < 3 or pd.infer_freq(index) is not None:
        return frame, None
    found = regular_grid(index)
    if found is None:
        raise DataValidationError(
            f"{path}: timestamps are not evenly spaced, and no one step or calendar (business days, months, "
            "quarters, years) fits them: resample the data to one step first."
        )
    grid, step_name, odd = found
    if not len(odd):  # on a calendar pandas names no frequency for (the 15th of each month)
        return frame, None
    on_grid = index.isin(grid).all()
    if fill is not None and on_grid:
        return frame.reindex(grid), grid.difference(index)  # NaN rows, filled by validate_frame
    rows = ", ".join(f"rows {i + 1}-{i + 2} ({index[i]} -> {index[i + 1]})" for i in odd[:MAX_LISTED])
    advice = (
        f"Pass fill= one of {FILL_METHODS} (CLI: --fill) to insert the missing timestamps and fill them."
        if on_grid
        else "Some timestamps are off that grid: resample the data to one step first."
    )
    raise DataValidationError(
        f"{path}: timestamps are not evenly spaced: the usual step is {step_name}, but {len(odd)} step(s) differ, "
        f"e.g. {rows}. {advice}"
    )


def _pick_date_column(raw: pd.DataFrame, path: Path, date_column: str | None) -> str | None:
    """The timestamp column: the one named, else date/datetime/timestamp/time, else a non-numeric first
    column; None when every column is numeric (an undated series, indexed by step)."""
    if date_column is not None:
        if date_column not in raw.columns:
            raise DataValidationError(f"{path}: no column named {date_column!r}; columns are {list(raw.columns)[:10]}.")
        return date_column
    for column in raw.columns:
        if str(column).strip().lower() in DATE_NAMES:
            return column
    first = raw.columns[0]
    if not pd.api.types.is_numeric_dtype(raw[first]):
        return first
    return None


def _looks_like_path(name_or_path) -> bool:
    """A file's path, not a registered name: a path object, a folder in it, or a table's suffix (compressed
    too: my.csv.bz2)."""
    return isinstance(name_or_path, os.PathLike) or os.sep in str(name_or_path) or names_a_file(str(name_or_path))


def _strip_suffixes(name: str) -> str:
    return name[: -len(".gz")] if name.endswith(".gz") else name
