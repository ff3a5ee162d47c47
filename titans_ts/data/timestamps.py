"""Timestamp columns parsed into a DatetimeIndex, shared by the wide (`loading`) and long (`long_format`)
readers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from titans_ts.errors import DataValidationError

_MAX_LISTED = 5


def parse_dates(column: pd.Series, path: Path, name: str, also: str = "") -> pd.DatetimeIndex:
    """Timestamps, or an error naming the rows that are not (`also`: other accepted forms, for the message)."""
    parsed = pd.to_datetime(column, errors="coerce", format="mixed")
    bad = np.flatnonzero(parsed.isna().to_numpy())
    if len(bad):
        rows = ", ".join(f"row {i + 1} ({column.iloc[i]!r})" for i in bad[:_MAX_LISTED])
        raise DataValidationError(
            f"{path}: date column {name!r} has {len(bad)} value(s) that are not timestamps{also}: {rows}. "
            "Fix or remove those rows (timestamps like 2016-07-01 00:00:00)."
        )
    return pd.DatetimeIndex(parsed, name="date")
