"""What the forecaster accepts as data: a frame of its columns, and the target columns among them."""

from __future__ import annotations

import numpy as np
import pandas as pd

from titans_ts.data import validate_frame
from titans_ts.data.loading import DATE_NAMES, ID_NAMES, long_format_columns
from titans_ts.data.timestamps import parse_dates, reads_as_timestamps
from titans_ts.data.validation import TimeOrderWarning
from titans_ts.errors import DataValidationError
from titans_ts.io import plain


def as_frame(X, names: list | None = None) -> pd.DataFrame:
    """A validated DataFrame from a DataFrame (indexed by its timestamps, periods or dates as text, or by a date
    column it holds: `_dated_by_its_column`), a Series (one column, named by its name; or one row of a fitted
    model's columns, df.iloc[i]) or a 1-D / 2-D array (time x features: columns x0, x1, ...).

    names: a fitted model's columns; an array takes them by position (as scikit-learn reads an array given to a
    model fitted on a DataFrame), so an array of another width is refused."""
    if isinstance(X, (pd.DataFrame, pd.Series)) and isinstance(X.index, pd.MultiIndex):
        raise DataValidationError(_levels_message(X))
    if isinstance(X, pd.DataFrame):
        frame = _only_fitted(_dated_by_its_column(X), names)
    elif isinstance(X, pd.Series) and _is_a_row(X, names):  # df.iloc[i]: one row, named by its time
        row = pd.DataFrame([X.to_numpy()], columns=X.index, index=pd.Index([X.name]))
        frame = _only_fitted(row, names).infer_objects()  # a row of numbers and a note: its numbers as numbers
    elif isinstance(X, pd.Series):  # one column, its index (dates) kept; named as a fitted one-column model's
        name = names[0] if names is not None and len(names) == 1 else "x0" if X.name is None else X.name
        frame = X.to_frame(name=str(name))
    else:
        if isinstance(X, (str, bytes)) or hasattr(X, "__fspath__"):
            raise DataValidationError(
                f"expected a DataFrame or a 2-D array; got {X!r}. For a benchmark name or a file, read it first: "
                "titans_ts.data.load_dataset(...)."
            )
        array = np.asarray(X)
        if array.ndim == 1:
            array = array[:, None]
        if array.ndim != 2:
            raise DataValidationError(
                f"expected a DataFrame or a 2-D array (time x features); got shape {array.shape}."
            )
        width = array.shape[1]
        if names is not None and len(names) != width:  # by position, another width is other columns
            raise DataValidationError(
                f"the model was fitted on {len(names)} column(s) {[str(c) for c in names][:10]}; this array has "
                f"{width}: give those columns, in that order (or a DataFrame with them by name)."
            )
        frame = pd.DataFrame(array, columns=[str(c) for c in names] if names else [f"x{i}" for i in range(width)])
    if isinstance(frame.index, pd.PeriodIndex):  # months as periods (1990-01): dated by their starts
        frame = frame.set_axis(frame.index.to_timestamp(), axis=0)
    elif _is_text(frame.index) and reads_as_timestamps(pd.Series(frame.index)):  # read_csv(index_col=0)
        name = "date" if frame.index.name is None else frame.index.name
        frame = frame.set_axis(parse_dates(pd.Series(frame.index), "the input data", str(name)), axis=0)
    _warn_if_shuffled(frame.index)
    try:
        return validate_frame(frame, source="the input data", in_memory=True)
    except DataValidationError as exc:
        table = X.reset_index() if isinstance(X, pd.DataFrame) and X.index.name is not None else X  # its times too
        found = long_format_columns(table) if isinstance(X, pd.DataFrame) and names is None else None
        if found is None or found[2] is None:
            raise
        series, time, value = (repr(str(c)) for c in found)
        raise DataValidationError(
            f"{exc} It looks like a long-format table (one row per series and time): give one column per series, "
            f"e.g. df.pivot(index={time}, columns={series}, values={value})."
        ) from None


def _levels_message(X) -> str:
    """What to do with data indexed by (series, time) levels: one column per series."""
    levels = [str(name) for name in X.index.names]
    value = X.name if isinstance(X, pd.Series) else next(iter(X.columns), "value")
    pick = "" if isinstance(X, pd.Series) else f"[{str(value)!r}]"
    series = next((name for name in levels if name.lower() in ID_NAMES), levels[0])
    return (
        f"the input data is indexed by the levels {levels} (a long table, one row per series and time): give one "
        f"column per series, indexed by time, e.g. df{pick}.unstack({series!r})."
    )


def _only_fitted(frame: pd.DataFrame, names: list | None) -> pd.DataFrame:
    """A fitted model's columns of `frame`: the others (a note in text, an empty column) are not read, so not
    validated either; a fitted one it lacks is refused here, naming every column the frame has."""
    if names is None:
        return frame
    _refuse_missing(names, [str(c) for c in frame.columns])  # said with every column it has, the misspelt one too
    wanted = {str(n) for n in names}
    kept = [c for c in frame.columns if str(c) in wanted]
    return frame[kept] if kept and len(kept) < frame.shape[1] else frame


def _warn_if_shuffled(index: pd.Index) -> None:
    """Rows numbered out of order (df.sample(frac=1)) are read in the order given, as they must be, but a
    shuffled DatetimeIndex is refused where a shuffled integer one trained without a word: say so."""
    import warnings

    numbered = pd.api.types.is_integer_dtype(index) and not isinstance(index, pd.RangeIndex)
    if numbered and not (index.is_monotonic_increasing or index.is_monotonic_decreasing):
        warnings.warn(
            "the data's index is an integer numbering out of order (shuffled rows?): the rows are read in the "
            "order given. If the index numbers the time steps, sort them first (df.sort_index()).",
            TimeOrderWarning,
            stacklevel=3,
        )


def _is_text(index: pd.Index) -> bool:
    """Text labels, not only digits (steps written as text, "1000", are not years, as in a file)."""
    textual = pd.api.types.is_object_dtype(index) or pd.api.types.is_string_dtype(index)
    return textual and not pd.Series(index).astype(str).str.fullmatch(r"\s*\d+\s*").all()


def _is_a_row(series: pd.Series, names: list | None) -> bool:
    """A Series that is one row of a fitted model's frame (df.iloc[i]): indexed by the model's column names, not
    by times."""
    if names is None or isinstance(series.index, pd.DatetimeIndex) or series.name is None:
        return False
    if pd.api.types.is_numeric_dtype(series.index) and len(series) != len(names):  # a column of a frame named 0, 1
        return False
    return {str(n) for n in names} <= {str(i) for i in series.index}


def _dated_by_its_column(frame: pd.DataFrame) -> pd.DataFrame:
    """A frame whose timestamps are a column (df.reset_index(), or read without index_col), not its index,
    indexed by that column: a datetime column, or a text one named date, datetime, timestamp or time. (Read as a
    value, a date was forecast as a number, and the forecast numbered by step.)"""
    if isinstance(frame.index, pd.DatetimeIndex):
        return frame
    dated = [c for c in frame.columns if pd.api.types.is_datetime64_any_dtype(frame[c])]
    text = [c for c in frame.columns if c not in dated and not pd.api.types.is_numeric_dtype(frame[c])]
    named = [c for c in text if str(c).strip().lower() in DATE_NAMES]
    if len(dated) + len(named) != 1:
        return frame  # none, or several: validate_frame names a non-numeric column
    column = (dated or named)[0]
    times = frame[column] if dated else parse_dates(frame[column], "the input data", str(column))
    return frame.drop(columns=[column]).set_axis(pd.DatetimeIndex(times, name=str(column)), axis=0)


def saved_label(label):
    """A column label as config.json keeps it: a string or a number as it is (a frame's column 0 stays 0 after
    load), anything else (a tuple of a MultiIndex, a Timestamp) as its text."""
    label = plain(label)
    return label if isinstance(label, (str, int, float)) and not isinstance(label, bool) else str(label)


def fitted_columns(frame: pd.DataFrame, fitted: list) -> pd.DataFrame:
    """The `fitted` columns of `frame`, in the fitted order (other columns are ignored)."""
    columns = [str(c) for c in frame.columns]
    if columns == [str(c) for c in fitted]:
        return frame
    _refuse_missing(fitted, columns)
    frame = frame.set_axis(columns, axis=1)
    return frame[[str(c) for c in fitted]]


def _refuse_missing(fitted: list, columns: list[str]) -> None:
    """An error naming the fitted columns the data lacks, and the columns it has."""
    missing = [c for c in fitted if str(c) not in columns]
    if not missing:
        return
    unnamed = [str(c) for c in fitted] == [f"x{i}" for i in range(len(fitted))]  # fitted on an array
    hint = (
        f" The model was fitted on an array, whose columns have no names: give an array of {len(fitted)} columns "
        "in the fitted order (df.to_numpy()), or fit it on the DataFrame."
        if unnamed
        else ""
    )
    raise DataValidationError(
        f"the model was trained on columns {fitted}; the data lacks {missing} (it has {columns}).{hint}"
    )
