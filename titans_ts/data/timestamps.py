"""Timestamp columns parsed into a DatetimeIndex, shared by the wide (`loading`) and long (`long_format`)
readers."""

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
    return pd.DatetimeIndex(parsed, name="date")


def _one_reading(column: pd.Series) -> pd.Series:
    """The timestamps, day-first where only that reads the file in time order.

    format="mixed" parses each value alone, preferring month first: day-first dates (31/01/2020 01:00) were read
    day-first only where the day exceeds 12, and the file seemed to jump back and forth in time."""
    try:
        parsed = pd.to_datetime(column, errors="coerce", format="mixed")
    except ValueError:  # UTC offsets that change (daylight saving): one axis only in UTC, where steps are even
        import warnings

        parsed = pd.to_datetime(column, errors="coerce", format="mixed", utc=True)
        warnings.warn(
            "the timestamps' UTC offsets change (daylight saving time): they are read as UTC, where the steps "
            "stay even, and the forecasts are dated in UTC.",
            TimeZoneWarning,
            stacklevel=4,
        )
    if parsed.isna().any() or parsed.is_monotonic_increasing or parsed.is_monotonic_decreasing:
        return parsed
    day_first = pd.to_datetime(column, errors="coerce", format="mixed", dayfirst=True)
    in_order = day_first.is_monotonic_increasing or day_first.is_monotonic_decreasing
    return day_first if in_order and day_first.notna().all() else parsed
