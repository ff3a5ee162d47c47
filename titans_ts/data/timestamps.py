"""Timestamp columns parsed into a DatetimeIndex, shared by the wide (`loading`) and long (`long_format`)
readers, and the grid of evenly spaced timestamps (or calendar) a series is checked on, by the loader and by
the forecaster's fit (`regular_grid`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from titans_ts.errors import DataValidationError, TitansWarning

_MAX_LISTED = 5


class TimeZoneWarning(TitansWarning):
    """Timestamps with changing UTC offsets were read as UTC."""


def parse_dates(column: pd.Series, path: Path, name: str, also: str = "") -> pd.DatetimeIndex:
    """Timestamps, or an error naming the rows that are not (`also`: other accepted forms, for the message)."""
    parsed = _one_reading(column)
    bad = np.flatnonzero(parsed.isna().to_numpy())
    if len(bad):
        rows = ", ".join(f"row {i + 1} ({column.iloc[i]!r})" for i in bad[:_MAX_LISTED])
        raise DataValidationError(
            f"{path}: date column {name!r} has {len(bad)} value(s) that are not timestamps{also}: {rows}. "
            "Fix or remove those rows (timestamps like 2016-07-01 00:00:00)."
        )
    return pd.DatetimeIndex(parsed, name=str(name))


UNIX_TIME = (("s", 1e8, 1e10), ("ms", 1e11, 1e13), ("us", 1e14, 1e16), ("ns", 1e17, 1e19))  # 1973-2286


def numeric_times(column: pd.Series, path: Path, name: str) -> pd.Index:
    """A time column of numbers: dates written as numbers (202301, 20230115, 2023011520, 202301152030) where every
    value is one, Unix time (whole seconds, milli-, micro- or nanoseconds from 1973 on) as timestamps, other whole
    numbers that count up by a constant step as steps (a RangeIndex from the first, at that step); anything else
    is refused (pd.to_datetime would read any number as nanoseconds after 1970)."""
    values = column.to_numpy(dtype=float)
    fractional = np.flatnonzero(~np.isfinite(values) | (values != np.round(values)))
    if len(fractional):
        i = fractional[0]
        raise DataValidationError(
            f"{path}: the time column {name!r} holds numbers that are neither timestamps nor whole-number steps "
            f"(row {i + 1}: {column.iloc[i]}): name the timestamp column with date_column= (CLI: --date-column)."
        )
    whole = column.to_numpy(dtype=np.int64) if pd.api.types.is_integer_dtype(column) else values.astype(np.int64)
    digits = {len(str(abs(v))) for v in (whole.min(), whole.max())}
    written = {6: "%Y%m", 8: "%Y%m%d", 10: "%Y%m%d%H", 12: "%Y%m%d%H%M"}  # 202301, 20230115, 2023011520, ...
    if len(digits) == 1 and digits <= set(written):
        dates = pd.to_datetime(pd.Series(whole).astype(str), format=written[digits.pop()], errors="coerce")
        if dates.notna().all():
            return pd.DatetimeIndex(dates, name=str(name))
    for unit, low, high in UNIX_TIME:
        if low <= whole.min() and whole.max() < high:
            return pd.DatetimeIndex(pd.to_datetime(whole, unit=unit), name=str(name))
    step = int(whole[1] - whole[0]) if len(whole) > 1 else 1
    jumps = np.flatnonzero(np.diff(whole) != step)
    if step <= 0 or len(jumps):
        i = 0 if step <= 0 else jumps[0]
        raise DataValidationError(
            f"{path}: the time column {name!r} holds whole numbers, read as steps, but they do not count up by "
            f"a constant step (rows {i + 1}-{i + 2}: {whole[i]} -> {whole[i + 1]}): give steps in time order "
            "without gaps (1, 2, 3 or 1990, 1995, 2000), or timestamps."
        )
    return pd.RangeIndex(whole[0], whole[-1] + step, step, name=str(name))


def regular_grid(index: pd.DatetimeIndex):
    """(grid, its step in words, odd) of a dated index: the evenly spaced timestamps it belongs on (its most
    common step, or the calendar it is on: `calendar_grid`), and the positions i where index[i] -> index[i + 1]
    is not one step of that grid (a gap, or a stamp off it). None when no grid can be told: most stamps repeat,
    or they are about a month apart off every calendar (some on the 15th, some on the 20th)."""
    steps = index.to_series().diff().iloc[1:]
    step = steps.mode().iloc[0]
    if step <= pd.Timedelta(0):
        return None
    grid, step_name = calendar_grid(index, step)
    if grid is None:
        grid, step_name = pd.date_range(index[0], index[-1], freq=step, name=index.name), in_words(step)
        if step >= pd.Timedelta(days=28) and not index.isin(grid).all():
            return None  # 28 to 31 days apart, off every calendar: months on the 15th
        if not index.isin(grid).all():  # off the grid: the steps that are not one step long
            return grid, step_name, np.flatnonzero((steps != step).to_numpy())
    positions = grid.get_indexer(index)
    return grid, step_name, np.flatnonzero((positions[1:] < 0) | (np.diff(positions) != 1))


def in_words(step: pd.Timedelta) -> str:
    """A Timedelta step in words: "1 hour", "15 minutes", "2 days"."""
    for unit in ("day", "hour", "minute", "second"):
        count = step / pd.Timedelta(**{f"{unit}s": 1})
        if count >= 1 and count == int(count):
            return f"{int(count)} {unit}{'s' if count != 1 else ''}"
    return str(step)


def calendar_grid(index: pd.DatetimeIndex, step: pd.Timedelta):
    """(every timestamp of the calendar the index is on, its step in words), or (None, None): business days
    (weekdays only, one day apart most often, weekends skipped), or month, quarter or year starts or ends
    (anchored at the first timestamp's month), when every timestamp is on it."""
    first, last, name = index[0], index[-1], index.name
    if business_days(index, step):
        return pd.bdate_range(first, last, name=name, normalize=False), "1 business day"
    month = first.strftime("%b").upper()
    candidates = {
        (28, 31): ("1 month", ["MS", "ME", "BMS", "BME"]),
        (89, 92): ("1 quarter", [f"QS-{month}", f"QE-{month}", f"BQS-{month}", f"BQE-{month}"]),
        (365, 366): ("1 year", [f"YS-{month}", f"YE-{month}", f"BYS-{month}", f"BYE-{month}"]),
    }
    for (low, high), (words, frequencies) in candidates.items():
        if pd.Timedelta(days=low) <= step <= pd.Timedelta(days=high):
            for freq in frequencies:
                grid = pd.date_range(first, last, freq=freq, name=name)
                if len(grid) and grid[0] == first and index.isin(grid).all():
                    return grid, words
            step_in_months = months_on_a_day(index)
            if step_in_months is not None:
                count = (month_number(last) - month_number(first)) // step_in_months.months + 1
                return pd.DatetimeIndex([first + step_in_months * i for i in range(count)], name=name), words
    return None, None


def months_on_a_day(index: pd.DatetimeIndex) -> pd.DateOffset | None:
    """DateOffset(months=k), k = 1, 3 or 12, when every timestamp is on one day of the month up to the 28th (so
    that every month has it: the 15th) at one time of day, most often k months apart; else None. Month, quarter
    and year starts and ends have pandas frequencies of their own (`calendar_grid`)."""
    if len(index) < 3 or index[0].day > 28 or len(set(index.day)) > 1 or len(set(index.time)) > 1:
        return None
    months = np.diff(np.asarray(month_number(index)))
    usual = int(pd.Series(months).mode().iloc[0])
    if usual not in (1, 3, 12) or (months <= 0).any() or (months % usual).any():
        return None
    return pd.DateOffset(months=usual)


def month_number(stamps):
    """Months since year 0 of a Timestamp or of each timestamp of an index (differences count months)."""
    return stamps.year * 12 + stamps.month


def business_days(index: pd.DatetimeIndex, step: pd.Timedelta) -> bool:
    """Whether timestamps most often a day apart are business days: ten or more, none on a weekend (holidays
    make pandas infer no frequency for them)."""
    return step == pd.Timedelta(days=1) and len(index) >= 10 and bool((index.dayofweek < 5).all())


def _one_reading(column: pd.Series) -> pd.Series:
    """The timestamps, day-first where only that reads the file in time order, or evenly spaced.

    format="mixed" parses each value alone, preferring month first: day-first dates (31/01/2020 01:00) were read
    day-first only where the day exceeds 12, and the file seemed to jump back and forth in time; monthly
    01/02/2018 read month first is in order too, but a day apart and then a year. Dates written with dots
    (01.02.2018) are day first wherever that reading is in order: no one writes months first so."""
    dotted = column.astype(str).str.match(r"\s*\d{1,2}\.\d{1,2}\.\d{2,4}").all()
    if dotted:
        day_first = _parsed(column, day_first=True)
        if day_first.notna().all() and _in_order(day_first):
            return day_first
    month_first = _one_format(column, day_first=False)
    if month_first is None:  # a first field over 12 somewhere: read month first, the file jumps in time
        day_first = _one_format(column, day_first=True)
        if day_first is not None and _in_order(day_first):
            return day_first  # what the readings below choose, without reading every value alone (35x slower)
    parsed = _parsed(column, day_first=False) if month_first is None else month_first
    if parsed.isna().any() or (_in_order(parsed) and _regular(parsed)):
        return parsed
    day_first = _parsed(column, day_first=True)
    if day_first.notna().all() and _in_order(day_first) and (not _in_order(parsed) or _regular(day_first)):
        return day_first
    return parsed


def _in_order(parsed: pd.Series) -> bool:
    return parsed.is_monotonic_increasing or parsed.is_monotonic_decreasing


def _regular(parsed: pd.Series) -> bool:
    """One step apart, or a calendar frequency pandas names (months, business days)."""
    if len(parsed) < 3:
        return True
    index = pd.DatetimeIndex(parsed.sort_values())
    return index.to_series().diff().iloc[1:].nunique() == 1 or pd.infer_freq(index) is not None


def _days_apart(parsed: pd.Series) -> bool:
    """Most often a day or more apart (daily, business-day, weekly, monthly data)."""
    steps = parsed.sort_values().diff().dropna()
    return len(steps) > 0 and steps.mode().iloc[0] >= pd.Timedelta(days=1)


def _parsed(column: pd.Series, day_first: bool) -> pd.Series:
    """pd.to_datetime of the column, each value on its own; timestamps whose UTC offsets differ (daylight saving)
    in UTC, with a warning (pandas refuses mixed offsets)."""
    import warnings

    try:
        return _in_one_format(column, day_first)
    except ValueError as exc:
        if "timezone" not in str(exc).lower() and "tz" not in str(exc).lower():
            raise DataValidationError(f"the date column cannot be read as timestamps ({exc}).") from None
    in_utc = pd.to_datetime(column, errors="coerce", format="mixed", dayfirst=day_first, utc=True)
    wall_clock = pd.to_datetime(
        column.astype(str).str.replace(_OFFSET, r"\1", regex=True), errors="coerce", format="mixed", dayfirst=day_first
    )
    if not _regular(in_utc) and wall_clock.notna().all() and _days_apart(wall_clock):
        # a day apart on the wall clock (midnight each day) is 23 or 25 hours in UTC across the change; gaps, if
        # any, are then found on the wall clock's grid
        warnings.warn(
            "the timestamps' UTC offsets differ (daylight saving time): they are read on the wall clock, where the "
            "steps stay even, and the forecasts are dated in local time without an offset.",
            TimeZoneWarning,
            stacklevel=5,
        )
        return wall_clock
    warnings.warn(
        "the timestamps' UTC offsets differ (daylight saving time, or some without one): they are read as UTC, "
        "where the steps stay even, and the forecasts are dated in UTC.",
        TimeZoneWarning,
        stacklevel=5,
    )
    return in_utc


def _in_one_format(column: pd.Series, day_first: bool) -> pd.Series:
    """pd.to_datetime in the one format pandas infers from the first value (about 35x faster than reading each
    value alone), or format="mixed" where some value does not follow it."""
    parsed = _one_format(column, day_first)
    return pd.to_datetime(column, errors="coerce", format="mixed", dayfirst=day_first) if parsed is None else parsed


def _one_format(column: pd.Series, day_first: bool) -> pd.Series | None:
    """The column read in the one format pandas infers from its first value, or None when some value does not
    follow it (or their UTC offsets differ: `_parsed` reads those)."""
    import warnings

    with warnings.catch_warnings():  # "could not infer format": pandas then reads each value alone itself
        warnings.simplefilter("ignore", UserWarning)
        try:
            parsed = pd.to_datetime(column, errors="coerce", dayfirst=day_first)
        except ValueError:
            return None
    return None if (parsed.isna() & column.notna()).any() else parsed


_OFFSET = r"(\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)\s*(?:Z|UTC|[+-]\d{2}:?\d{2})\s*$"  # 00:00:00+02:00 -> 00:00:00


def reads_as_timestamps(column: pd.Series, sample: int = 200) -> bool:
    """Whether a text column looks like timestamps: each of its first `sample` distinct values is shaped like a
    date (a 4-digit year, or two numbers joined by - / . or :) and reads as one (a guess for a message, not a
    reading: `parse_dates` reads a column)."""
    import warnings

    if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
        return False
    values = pd.Series(column.dropna().astype(str).unique()[:sample])
    # a year, or day and month (or hour and minute) side by side: not an id such as M1, which dateutil reads
    if not len(values) or not values.str.contains(r"\d{4}|\d{1,2}[-/.:]\d{1,2}").all():
        return False
    with warnings.catch_warnings():  # "could not infer format"
        warnings.simplefilter("ignore", UserWarning)
        try:
            parsed = pd.to_datetime(values, errors="coerce", format="mixed")
        except (ValueError, TypeError):  # mixed UTC offsets
            parsed = pd.to_datetime(values, errors="coerce", format="mixed", utc=True)
    return bool(parsed.notna().all())
