"""The time axis of a series: its last timestamp and step, the timestamps of a forecast, its season."""

from __future__ import annotations

import pandas as pd

from titans_ts.errors import ConfigError, DataValidationError


def time_axis(index: pd.Index):
    """(last index value, step) for a DatetimeIndex: a Timestamp and its calendar frequency (a pandas DateOffset:
    months, quarters, years, business days) where it has one, else its most common spacing (a Timedelta);
    ints for any other index."""
    if isinstance(index, pd.DatetimeIndex) and len(index) >= 2:
        recent = index[-min(len(index), 500) :]
        calendar = calendar_frequency(recent)
        if calendar is not None:
            return index[-1], calendar
        spacing = pd.Series(recent).diff().dropna()
        return index[-1], spacing.mode().iloc[0]
    return len(index) - 1, 1


def calendar_frequency(index: pd.DatetimeIndex):
    """The index's frequency when it is a calendar one, whose steps differ in length (a month is 28 to 31
    days, a business day 1 or 3), else None: such steps are not one Timedelta apart."""
    from pandas.tseries.frequencies import to_offset

    freq = index.freq or (pd.infer_freq(index) if len(index) >= 3 else None)
    if freq is None:
        return None
    offset = to_offset(freq)
    return None if isinstance(offset, (pd.offsets.Tick, pd.offsets.Day, pd.offsets.Week)) else offset


def calendar_seasons(step) -> list[tuple[int, str]]:
    """(steps, name) of the natural seasons of a calendar frequency: a week of business days, a year of months
    or quarters; none for a Timedelta step (the floors' CALENDAR table serves those)."""
    if isinstance(step, pd.offsets.BusinessDay):
        return [(5, "a week")]
    if isinstance(step, pd.DateOffset):
        per_year = len(pd.date_range("2001-01-01", "2001-12-31", freq=step))
        return [(per_year, "a year")] if per_year > 1 else []
    return []


def future_index(last, step, horizon: int) -> pd.Index:
    """The `horizon` index values after `last`: timestamps one step apart (on the calendar for a DateOffset: the
    next month starts, business days, ...), or the next integers."""
    if isinstance(last, pd.Timestamp):
        return pd.DatetimeIndex([last + step * (i + 1) for i in range(horizon)], name="date")
    return pd.RangeIndex(last + 1, last + 1 + horizon, name="step")


def advanced(last, rows: pd.Index):
    """The last index value once `rows` (appended in time order) are seen."""
    if not len(rows):
        return last
    return rows[-1] if isinstance(last, pd.Timestamp) else last + len(rows)


def check_follows(last, rows: pd.Index, step=None) -> None:
    """Refuse dated rows that do not come after `last` (already read, or out of order): a carried state would
    read them twice and the forecasts' timestamps would run backwards; with the series' `step`, also rows that
    leave a gap after `last` or do not follow its grid (a memory reads rows as consecutive steps). Checked
    before anything is read. Rows without timestamps (an array) cannot be checked, nor dated: refused after
    dated ones."""
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
    if isinstance(last, pd.Timestamp) and isinstance(rows, pd.DatetimeIndex) and len(rows) and step is not None:
        expected = future_index(last, step, len(rows))
        if not rows.equals(expected):
            at = next(i for i, (got, want) in enumerate(zip(rows, expected, strict=True)) if got != want)
            raise DataValidationError(
                f"new row {at + 1} is at {rows[at]}, where the series' next step is {expected[at]} (a step of "
                f"{getattr(step, 'freqstr', step)} after {last}): give the rows that follow it without gaps, at "
                "the series' step (fill or resample them first)."
            )


def season_from_index(index: pd.Index) -> int | None:
    """One day in steps of a regular sub-daily DatetimeIndex (7 for daily data); None when there is none."""
    _, step = time_axis(index)
    if calendar_seasons(step):
        return calendar_seasons(step)[0][0]
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
    if isinstance(step, pd.DateOffset):  # a calendar frequency, by its pandas alias (MS, QS-JAN, B, ...)
        return {"last_index": str(last), "step": step.freqstr, "index_kind": kind, "step_kind": "calendar"}
    return {"last_index": str(last), "step": str(step), "index_kind": kind}


def axis_from_json(config: dict):
    """(last index value, step) back from `axis_to_json`'s fields."""
    if config["index_kind"] == "datetime" and config.get("step_kind") == "calendar":
        from pandas.tseries.frequencies import to_offset

        return pd.Timestamp(config["last_index"]), to_offset(config["step"])
    if config["index_kind"] == "datetime":
        return pd.Timestamp(config["last_index"]), pd.Timedelta(config["step"])
    return int(config["last_index"]), int(config["step"])
