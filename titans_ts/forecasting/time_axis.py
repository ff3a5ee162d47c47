"""The time axis of a series: its last timestamp and step, the timestamps of a forecast, its season."""

from __future__ import annotations

import numpy as np
import pandas as pd

from titans_ts.data.timestamps import business_days, in_words, month_number, months_on_a_day, regular_grid
from titans_ts.errors import DataValidationError, TimeGapWarning, UndatedRowsWarning


def time_axis(index: pd.Index):
    """(last index value, step) for a DatetimeIndex: a Timestamp and its calendar frequency (a pandas DateOffset:
    months, quarters, years, business days) where it has one, else its most common spacing (a Timedelta);
    ints for any other index: the last number and the step of whole numbers that count up (df.set_index("year"):
    1990, 1995, ... steps 5; with gaps, their most common step, as a DatetimeIndex's), else the last row's
    position and 1."""
    if isinstance(index, pd.DatetimeIndex) and len(index) >= 2:
        recent = index[-min(len(index), 500) :]
        calendar = calendar_frequency(recent)
        if calendar is not None:
            return index[-1], calendar
        on_a_day = months_on_a_day(recent)  # monthly on the 15th: no pandas frequency, 28 to 31 days apart
        if on_a_day is not None:
            return index[-1], on_a_day
        spacing = pd.Series(recent).diff().dropna().mode().iloc[0]
        if business_days(recent, spacing):
            return index[-1], pd.offsets.BusinessDay()
        return index[-1], spacing
    steps = integer_step(index)
    if steps is not None:  # numbered from where the data's numbering starts, at its step (gaps: warn_if_gaps)
        return int(index[-1]), steps
    return len(index) - 1, 1


def integer_step(index: pd.Index) -> int | None:
    """The step of an index of whole numbers that counts up: the most common one where it has gaps (1 for a
    single row); None for any other index."""
    if not pd.api.types.is_integer_dtype(index) or not len(index):
        return None
    gaps = np.diff(np.asarray(index, dtype=np.int64))
    if len(gaps) == 0:
        return 1
    if (gaps <= 0).any():
        return None
    values, counts = np.unique(gaps, return_counts=True)
    return int(values[counts.argmax()])


# The frequencies whose steps differ in length and that a forecast must follow on the calendar (business hours,
# weeks and days stay a Timedelta step: their seasons are the floors' CALENDAR table's).
CALENDAR_OFFSETS = (
    pd.offsets.MonthBegin, pd.offsets.MonthEnd, pd.offsets.BusinessMonthBegin, pd.offsets.BusinessMonthEnd,
    pd.offsets.QuarterBegin, pd.offsets.QuarterEnd, pd.offsets.BQuarterBegin, pd.offsets.BQuarterEnd,
    pd.offsets.YearBegin, pd.offsets.YearEnd, pd.offsets.BYearBegin, pd.offsets.BYearEnd, pd.offsets.BusinessDay,
)  # fmt: skip


def axis_at_step(index: pd.Index, fitted_step):
    """`time_axis` of rows to forecast from, refused when they are dated at another step than the model was
    fitted at (a daily file for an hourly model: its forecast would be dated a day apart and read a window of
    days as hours). Steps within a tenth of each other match: a month is 28 to 31 days, and a short stretch
    of monthly rows may read as 31 days."""
    last, step = time_axis(index)
    if not isinstance(last, pd.Timestamp) and not isinstance(fitted_step, int):
        import warnings

        warnings.warn(
            f"the rows have no timestamps, but the model was fitted on rows {_step_name(fitted_step)} apart: the "
            "forecast is numbered by step. To date it, give the rows' timestamps (a DataFrame with a DatetimeIndex, "
            "or a file with its time column; name it with --date-column if it is not found).",
            UndatedRowsWarning,
            stacklevel=3,
        )
    if isinstance(last, pd.Timestamp) and not isinstance(fitted_step, int):
        lengths = sorted((_nominal_length(step), _nominal_length(fitted_step)))
        if lengths[1] > 1.1 * lengths[0]:
            raise DataValidationError(
                f"the rows are {_step_name(step)} apart; the model was fitted on rows {_step_name(fitted_step)} "
                "apart: give rows at the model's step (resample them first), or fit a model at this step."
            )
        if isinstance(fitted_step, pd.DateOffset) and not isinstance(step, pd.DateOffset):
            return last, fitted_step  # rows with a gap (31 days apart): the forecast dated on the model's calendar
    return last, step


def _nominal_length(step) -> pd.Timedelta:
    """A step's usual length: a Timedelta as it is, a business day one day, a month or a quarter its mean."""
    if isinstance(step, pd.offsets.BusinessDay):
        return pd.Timedelta(days=1)
    if isinstance(step, pd.DateOffset):
        start = pd.Timestamp("2001-01-01")
        return (start + 12 * step - start) / 12
    return pd.Timedelta(step)


def _step_name(step) -> str:
    """A step in words: "1 hour", "15 minutes", "1 business day", "1 month"."""
    if isinstance(step, pd.offsets.BusinessDay):
        return "1 business day"
    if isinstance(step, pd.DateOffset):
        days = _nominal_length(step).days
        return "1 month" if days < 60 else "1 quarter" if days < 180 else "1 year"
    return in_words(pd.Timedelta(step))


def refuse_repeated_stamps(window: pd.Index) -> None:
    """The window predict reads may not repeat a timestamp: a row a feed sent twice would be read as one more
    step (update() and files refuse it too; fit only warns, as a long table's stamps repeat by design)."""
    if isinstance(window, pd.DatetimeIndex) and not window.is_unique:
        repeated = window[window.duplicated()]
        raise DataValidationError(
            f"{len(repeated)} row(s) of the window predict reads repeat a timestamp (e.g. {repeated[0]}): each "
            "would be read as one more step. Drop or aggregate the repeats first "
            "(df[~df.index.duplicated(keep='last')])."
        )


def warn_if_gaps(index: pd.Index, by: str = "fit", stacklevel: int = 4) -> None:
    """fit (or `by`: predict) reads a frame's rows as consecutive steps: say so where its timestamps skip steps
    or leave the grid (`regular_grid`; a file is checked as it is read: load_dataset refuses gaps unless fill=).
    `stacklevel`: the user's call, counted from the warning (4: three calls down, as fit's)."""
    import warnings

    step = integer_step(index)
    if step is not None:
        gaps = np.flatnonzero(np.diff(np.asarray(index, dtype=np.int64)) != step)
        if len(gaps):
            i = gaps[0]
            warnings.warn(
                f"the rows are numbered {step} apart but skip steps (e.g. {index[i]} -> {index[i + 1]}): {by} reads "
                "them as consecutive steps. Give the missing rows (filled), or number the rows without gaps.",
                TimeGapWarning,
                stacklevel=stacklevel,
            )
        return
    if not isinstance(index, pd.DatetimeIndex) or len(index) < 3:
        return
    wall = index.tz_localize(None) if index.tz is not None else index
    if (wall[1:] - wall[:-1]).to_series().mode().iloc[0] >= pd.Timedelta(days=1):
        index = wall  # days and longer on the wall clock (23 and 25 hours across daylight saving); hours in UTC
    if not index.is_unique:
        warnings.warn(
            f"{int(index.duplicated().sum())} row(s) share a timestamp with an earlier one (e.g. "
            f"{index[index.duplicated()][0]}): {by} reads every row as the next step. A long table (a row per series "
            "and time) is read with load_dataset(path, long=(id, time, value)); else aggregate them first.",
            TimeGapWarning,
            stacklevel=stacklevel,
        )
        return
    found = regular_grid(index)
    if found is None:
        return
    _, step_name, odd = found
    if len(odd):
        i = odd[0] + 1
        warnings.warn(
            f"the timestamps have {len(odd)} step(s) other than the usual {step_name} (e.g. {index[i - 1]} "
            f"-> {index[i]}): {by} reads the rows as consecutive steps, so a window across a gap reads it as if "
            "it were not there. Fill the gaps first (df.asfreq(step) then df.interpolate() or df.ffill(), or "
            "load_dataset(path, fill='interpolate')).",
            TimeGapWarning,
            stacklevel=stacklevel,
        )


def calendar_frequency(index: pd.DatetimeIndex):
    """The index's frequency when it is a calendar one, whose steps differ in length (a month is 28 to 31
    days, a business day 1 or 3), else None: such steps are not one Timedelta apart."""
    from pandas.tseries.frequencies import to_offset

    freq = index.freq or (pd.infer_freq(index) if len(index) >= 3 else None)
    if freq is None:
        return None
    offset = to_offset(freq)
    return offset if isinstance(offset, CALENDAR_OFFSETS) else None


def calendar_seasons(step) -> list[tuple[int, str]]:
    """(steps, name) of the natural seasons of a calendar frequency: a week of business days, a year of months
    or quarters; none for a Timedelta step (the floors' CALENDAR table serves those)."""
    if isinstance(step, pd.offsets.BusinessDay):
        return [(5, "a week")]
    if isinstance(step, pd.DateOffset):
        per_year = len(pd.date_range("2001-01-01", "2001-12-31", freq=step))
        return [(per_year, "a year")] if per_year > 1 else []
    return []


def future_index(last, step, horizon: int, name=None) -> pd.Index:
    """The `horizon` index values after `last`: timestamps one step apart (on the calendar for a DateOffset: the
    next month starts, business days, ...), or the next integers; named `name` (the data's time column), else
    "date" or "step"; with its frequency where pandas can name it (df.asfreq, resample and plots read it)."""
    if isinstance(last, pd.Timestamp) and last.tz is not None and _days_apart(step):
        # days on the wall clock, as fit reads them: a daily series' midnights stay midnights across a change
        # of daylight saving time (24 hours on would be 23:00 or 01:00 after it)
        wall = pd.DatetimeIndex([last.tz_localize(None) + step * (i + 1) for i in range(horizon)])
        # a wall time that happens twice (the hour the clocks go back): its first, as pandas' date_range has it
        stamps = wall.tz_localize(last.tz, ambiguous=np.ones(len(wall), bool), nonexistent="shift_forward")
        return pd.DatetimeIndex(stamps, name=name or "date", freq="infer")
    if isinstance(last, pd.Timestamp):
        return pd.DatetimeIndex([last + step * (i + 1) for i in range(horizon)], name=name or "date", freq="infer")
    return pd.RangeIndex(last + step, last + step * (horizon + 1), step, name=name or "step")


def advanced(last, rows: pd.Index, step=1, numbered_model: bool = False):
    """The last index value once `rows` (appended in time order, `check_follows`) are seen: the last row's
    timestamp (in the zone the model reads, or none as it reads none), or its number after numbered rows;
    other rows count on `step` apart from `last`."""
    if not len(rows):
        return last
    if isinstance(last, pd.Timestamp):
        return _in_zone_of(last, rows[-1])
    return int(rows[-1]) if numbered_model and numbered(rows) else last + step * len(rows)


def _in_zone_of(last: pd.Timestamp, stamp: pd.Timestamp) -> pd.Timestamp:
    """`stamp` in `last`'s time zone (rows in another zone, or a daily series' rows without one)."""
    if last.tz is None:
        return stamp if stamp.tz is None else stamp.tz_localize(None)  # a daily series, read on the wall clock
    if stamp.tz is None:
        return stamp.tz_localize(last.tz, ambiguous=True, nonexistent="shift_forward")
    return stamp.tz_convert(last.tz)


def numbered(rows: pd.Index) -> bool:
    """Whether rows carry numbers of their own: an index of whole numbers other than a frame's default one
    (0, 1, 2, ...: an array's, a DataFrame built without an index, or a new file's own count of its rows), which
    numbers nothing."""
    return pd.api.types.is_integer_dtype(rows) and not _counted_from_zero(rows)


def _counted_from_zero(rows: pd.Index) -> bool:
    return isinstance(rows, pd.RangeIndex) and rows.start == 0 and rows.step == 1


def fitted_numbered(rows: pd.Index) -> bool:
    """Whether a model fitted on `rows` reads later rows' numbers as its own (`numbered`), or as a file read
    without timestamps is numbered: by its steps from 0 (load_dataset's index 'step', named). A slice of that
    frame read again (df.iloc[590:600]) is then refused, while a new file's rows, numbered from 0 by their own
    file, are counted on."""
    return numbered(rows) or (_counted_from_zero(rows) and rows.name is not None)


def _check_numbers_follow(last: int, rows: pd.Index, step) -> None:
    """Numbered rows after a model that read numbered rows: after `last`, counting up at multiples of `step`
    (a gap of whole steps passes, said as fit says it); dated rows refused."""
    if isinstance(rows, pd.DatetimeIndex):
        raise DataValidationError(
            f"the model has read rows numbered up to {last}; the new rows are dated: give them numbered as the "
            "model read its rows (or fit it on dated rows)."
        )
    if not len(rows) or not numbered(rows):
        return
    numbers = np.asarray(rows, dtype=np.int64)
    if numbers[0] <= last or (np.diff(numbers) <= 0).any():
        raise DataValidationError(
            f"the new rows are numbered {numbers[0]} .. {numbers[-1]}: give only the rows after the last one "
            f"already read ({last}), counting up (rows without numbers of their own: pass them as an array, or "
            "numbered after it)."
        )
    gaps = np.diff(np.concatenate([[last], numbers]))
    if step and (gaps % step).any():
        raise DataValidationError(
            f"the new rows are numbered {numbers[0]} .. {numbers[-1]}, off the series' steps of {step} from {last}: "
            "give rows at the series' step."
        )
    if step and (gaps != step).any():
        i = int(np.flatnonzero(gaps != step)[0])
        _warn_skipped(str(step), last if i == 0 else numbers[i - 1], numbers[i], "filled", stacklevel=5)


def check_follows(last, rows: pd.Index, step=None, numbered_model: bool = False) -> None:
    """Refuse dated rows that do not come after `last` (already read, or out of order): a carried state would
    read them twice and the forecasts' timestamps would run backwards; with the series' `step`, also rows off
    its grid or at another step (`_check_on_grid`; gaps of whole steps pass). Checked before anything is read.
    Rows without timestamps (an array) cannot be checked, nor dated: refused after dated ones. A model that
    read numbered rows (`numbered_model`: an integer index of its own) checks numbered ones alike
    (`_check_numbers_follow`); one that read rows without numbers counts any rows on (a new frame's rows, read
    one by one, are numbered 0, 1, 2 by their frame), but refuses dated ones."""
    if isinstance(last, (int, np.integer)):
        if numbered_model:
            return _check_numbers_follow(int(last), rows, step)
        if isinstance(rows, pd.DatetimeIndex):  # dated: the model counts steps, and would number them so
            raise DataValidationError(
                f"the model read rows without timestamps (counted up to {last}); the new rows are dated: give them "
                "without (an array, or df.reset_index(drop=True); a file without its time column), or fit the model on "
                "dated rows."
            )
        return None
    if isinstance(last, pd.Timestamp) and not isinstance(rows, pd.DatetimeIndex):
        raise DataValidationError(
            f"the model has read rows up to {last}; give the new rows with their timestamps (a DataFrame indexed "
            "by time; a file with its time column), so that they can be checked to come after it and the forecasts "
            "dated."
        )
    if isinstance(last, pd.Timestamp) and isinstance(rows, pd.DatetimeIndex) and (last.tz is None) != (rows.tz is None):
        if step is not None and _on_days(step):  # daily data is read on the wall clock, zone or none: compare so
            last, rows = last.tz_localize(None), rows.tz_localize(None)
            return check_follows(last, rows, step)
        raise DataValidationError(
            f"the model has read rows up to {last} ({'no time zone' if last.tz is None else last.tz}); the new rows "
            f"are {'without a time zone' if rows.tz is None else f'in {rows.tz}'}: give them as the model read its "
            "rows (df.tz_localize(...) or df.tz_localize(None))."
        )
    if isinstance(last, pd.Timestamp) and isinstance(rows, pd.DatetimeIndex) and len(rows) and rows[0] <= last:
        raise DataValidationError(
            f"the new rows start at {rows[0]}, not after the last row already read ({last}): give only the rows "
            "that came after it, in time order."
        )
    if isinstance(last, pd.Timestamp) and isinstance(rows, pd.DatetimeIndex) and rows.has_duplicates:
        raise DataValidationError(
            f"the new rows repeat the timestamp {rows[rows.duplicated()][0]}: give one row per time (several series "
            "are columns of one row)."
        )
    if isinstance(last, pd.Timestamp) and isinstance(rows, pd.DatetimeIndex) and len(rows) and step is not None:
        _check_on_grid(last, rows, step)


def _days_apart(step) -> bool:
    """Whether a step is a whole number of days (a Timedelta or a Day), not a calendar step (months, ...)."""
    if isinstance(step, pd.DateOffset) and not isinstance(step, pd.offsets.Tick):
        return False
    length = pd.Timedelta(step)
    return length >= pd.Timedelta(days=1) and length % pd.Timedelta(days=1) == pd.Timedelta(0)


def _on_days(step) -> bool:
    """Whether a series' step is a day or longer (a calendar step, or a Timedelta of a day or more)."""
    return isinstance(step, pd.DateOffset) or pd.Timedelta(step) >= pd.Timedelta(days=1)


def _on_wall_clock(last: pd.Timestamp, rows: pd.DatetimeIndex) -> tuple[pd.Timestamp, pd.DatetimeIndex]:
    """`last` and `rows` as the clock in the rows' time zone reads them (naive: a daily series keeps its
    midnights across daylight saving; `last` may be in another zone, or at a fixed UTC offset: a model saved
    before the zone was kept by name)."""
    if rows.tz is None:
        return last, rows
    return last.tz_convert(rows.tz).tz_localize(None), rows.tz_localize(None)


def _check_on_grid(last: pd.Timestamp, rows: pd.DatetimeIndex, step) -> None:
    """Refuse rows off the series' grid (a whole number of steps from `last`, on the wall clock: a daily series
    keeps its midnights across daylight saving) or at another step. Gaps of whole steps pass, as in fit's own
    rows (a holiday, a missing reading), said by a TimeGapWarning as fit says them. A Timedelta step of 28 days
    or more (a calendar step that a model saved before calendar steps kept as a most common gap) is not checked."""
    if isinstance(step, pd.Timedelta) and step >= pd.Timedelta(days=28):
        return
    origin, wall = _on_wall_clock(last, rows)
    name = _step_name(step)
    if type(step) is pd.DateOffset:  # months on a day: that day and time, a whole number of steps from last
        months = month_number(wall) - month_number(origin)
        same = (wall.day == origin.day) & (wall.time == origin.time()) & (months % step.months == 0)
        off = list(np.flatnonzero(~np.asarray(same)))
    elif isinstance(step, pd.DateOffset):
        off = [i for i, t in enumerate(wall) if not step.is_on_offset(t)]
    else:
        off = [i for i, t in enumerate(wall) if (t - origin) % step != pd.Timedelta(0)]
        spacing = pd.Series(wall).diff().dropna()
        if not off and len(spacing) and spacing.mode().iloc[0] != step:
            raise DataValidationError(
                f"the new rows are {_step_name(spacing.mode().iloc[0])} apart, the series {name}: give rows at the "
                "series' step (resample them first)."
            )
    if off:
        raise DataValidationError(
            f"new row {off[0] + 1} is at {rows[off[0]]}, off the series' grid (steps of {name} from {last}): give "
            "rows at the series' step (resample them first)."
        )
    _warn_if_skipped(last, rows, step, origin, wall)


def _warn_if_skipped(last, rows: pd.DatetimeIndex, step, origin, wall) -> None:
    """Rows on the grid that skip steps (after `last`, or between each other) are read as the next steps, as
    fit reads its own: say so (a TimeGapWarning, as fit's). Hours are counted in absolute time (daylight
    saving skips no step), days and calendar steps on the wall clock (`origin`, `wall`)."""

    if not _on_days(step):
        given, expected = rows, future_index(last, step, len(rows))
    else:
        given, expected = wall, future_index(origin, step, len(rows))
    skips = np.flatnonzero(given != expected)
    if len(skips):
        i = skips[0]
        before = last if i == 0 else rows[i - 1]
        _warn_skipped(_step_name(step), before, rows[i], "filled: df.asfreq(step) then df.interpolate()", stacklevel=6)


def _warn_skipped(step_name: str, before, after, filled: str, stacklevel: int) -> None:
    """The TimeGapWarning of new rows (dated or numbered) that skip steps of the series, as fit says its own."""
    import warnings

    warnings.warn(
        f"the new rows skip steps of {step_name} (e.g. {before} -> {after}): they are read as the next steps, so "
        f"the model reads across the gap as if it were not there. Give the missing rows ({filled}) to keep the "
        "series' time.",
        TimeGapWarning,
        stacklevel=stacklevel,
    )


def season_from_index(index: pd.Index) -> int | None:
    """One day in steps of a regular sub-daily DatetimeIndex (7 for daily data; a week of business days, a year of
    months or quarters: `calendar_seasons`); None when there is none."""
    _, step = time_axis(index)
    calendar = calendar_seasons(step)
    if calendar:
        return calendar[0][0]
    if isinstance(step, pd.Timedelta) and step > pd.Timedelta(0):
        day = pd.Timedelta(days=1)
        if step == day:
            return 7
        if day % step == pd.Timedelta(0):
            return int(day / step)
    return None


def axis_to_json(last, step, name=None, numbered_model: bool = False) -> dict:
    """The time axis as a saved model's config.json holds it (`name`: the time column's, None when unnamed;
    `numbered_model`: its rows had numbers of their own, `check_follows`)."""
    kind = "datetime" if isinstance(last, pd.Timestamp) else "range"
    named = {"index_name": None if name is None else str(name)}
    if isinstance(last, pd.Timestamp) and _zone_name(last):  # the zone by name: its offset alone drifts at DST
        named["time_zone"] = _zone_name(last)
    if numbered_model:
        named["numbered"] = True
    if type(step) is pd.DateOffset:  # months on a day of the month (`months_on_a_day`), by their count
        return {"last_index": str(last), "step": str(step.months), "index_kind": kind, "step_kind": "months"} | named
    if isinstance(step, pd.DateOffset):  # a calendar frequency, by its pandas alias (MS, QS-JAN, B, ...)
        return {"last_index": str(last), "step": step.freqstr, "index_kind": kind, "step_kind": "calendar"} | named
    return {"last_index": str(last), "step": str(step), "index_kind": kind} | named


def axis_from_json(config: dict):
    """(last index value, step) back from `axis_to_json`'s fields."""
    last, step = _axis_from_json(config)
    if config.get("time_zone"):  # by name (a model saved before it was kept has its last row's UTC offset only)
        last = last.tz_convert(config["time_zone"])
    return last, step


def _zone_name(last: pd.Timestamp) -> str | None:
    """The name `last`'s time zone is read back by (None: no zone, or one only its UTC offset can say, as
    dateutil's tzutc())."""
    if last.tz is None:
        return None
    try:
        return str(last.tz) if pd.Timestamp(str(last)).tz_convert(str(last.tz)) == last else None
    except Exception:  # pandas' and dateutil's errors for a name no zone database knows
        return None


def _axis_from_json(config: dict):
    if config["index_kind"] == "datetime" and config.get("step_kind") == "months":
        return pd.Timestamp(config["last_index"]), pd.DateOffset(months=int(config["step"]))
    if config["index_kind"] == "datetime" and config.get("step_kind") == "calendar":
        from pandas.tseries.frequencies import to_offset

        return pd.Timestamp(config["last_index"]), to_offset(config["step"])
    if config["index_kind"] == "datetime":
        return pd.Timestamp(config["last_index"]), pd.Timedelta(config["step"])
    return int(config["last_index"]), int(config["step"])
