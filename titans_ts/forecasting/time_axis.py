"""The time axis of a series: its last timestamp and step, the timestamps of a forecast, its season."""

from __future__ import annotations

import pandas as pd

from titans_ts.errors import ConfigError, DataValidationError


def time_axis(index: pd.Index):
    """(last index value, step): a Timestamp and the most common spacing for a DatetimeIndex, else ints."""
    if isinstance(index, pd.DatetimeIndex) and len(index) >= 2:
        spacing = pd.Series(index[-min(len(index), 500) :]).diff().dropna()
        return index[-1], spacing.mode().iloc[0]
    return len(index) - 1, 1


def future_index(last, step, horizon: int) -> pd.Index:
    """The `horizon` index values after `last`: timestamps `step` apart, or the next integers."""
    if isinstance(last, pd.Timestamp):
        return pd.DatetimeIndex([last + step * (i + 1) for i in range(horizon)], name="date")
    return pd.RangeIndex(last + 1, last + 1 + horizon)


def advanced(last, rows: pd.Index):
    """The last index value once `rows` (appended in time order) are seen."""
    if not len(rows):
        return last
    return rows[-1] if isinstance(last, pd.Timestamp) else last + len(rows)


def check_follows(last, rows: pd.Index) -> None:
    """Refuse dated rows that do not come after `last` (already read, or out of order): a carried state would
    read them twice and the forecasts' timestamps would run backwards. Checked before anything is read.
    Rows without timestamps (an array) cannot be checked, nor dated: refused after dated ones."""
    if isinstance(last, pd.Timestamp) and not isinstance(rows, pd.DatetimeIndex):
        raise DataValidationError(
            f"the model has read rows up to {last}; give the new rows with their timestamps (a DataFrame indexed "
            "by time), so that they can be checked to come after it and the forecasts dated."
        )
    if isinstance(last, pd.Timestamp) and isinstance(rows, pd.DatetimeIndex) and len(rows) and rows[0] <= last:
        raise DataValidationError(
            f"the new rows start at {rows[0]}, not after the last row already read ({last}): give only the rows "
            "that came after it, in time order."
        )


def season_from_index(index: pd.Index) -> int | None:
    """One day in steps of a regular sub-daily DatetimeIndex (7 for daily data); None when there is none."""
    _, step = time_axis(index)
    if isinstance(step, pd.Timedelta) and step > pd.Timedelta(0):
        day = pd.Timedelta(days=1)
        if step == day:
            return 7
        if day % step == pd.Timedelta(0):
            return int(day / step)
    return None


def season_steps(variant: str, season: int | None, index: pd.Index) -> int:
    """Steps per season for variant="seasonal_naive": `season` when given, else one day at the data's
    frequency (hourly 24, 15-minute 96, 10-minute 144; weekly for daily data). 0 for other variants."""
    if variant != "seasonal_naive":
        return 0
    if season is not None:
        if not isinstance(season, int) or season < 1:
            raise ConfigError(f"season must be a positive number of steps; got {season!r}.")
        return season
    found = season_from_index(index)
    if found is not None:
        return found
    raise ConfigError(
        "seasonal_naive could not tell the season from the data's time index (no regular sub-daily dates): "
        "pass season=<steps per season> (CLI --season)."
    )


def axis_to_json(last, step) -> dict:
    """The time axis as a saved model's config.json holds it."""
    kind = "datetime" if isinstance(last, pd.Timestamp) else "range"
    return {"last_index": str(last), "step": str(step), "index_kind": kind}


def axis_from_json(config: dict):
    """(last index value, step) back from `axis_to_json`'s fields."""
    if config["index_kind"] == "datetime":
        return pd.Timestamp(config["last_index"]), pd.Timedelta(config["step"])
    return int(config["last_index"]), int(config["step"])
