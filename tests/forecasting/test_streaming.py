"""Streaming test-time memorisation: update() carries the memory across forecasts, in time order only."""

import numpy as np
import pandas as pd
import pytest
import torch

from tests.data.helpers import write_series
from titans_ts import TitansForecaster
from titans_ts.errors import ConfigError, TimeGapWarning

TINY = dict(horizon=8, lookback=16, dim=16, layers=2, heads=2, chunk_size=4, epochs=1, batch_size=32, progress=False)
TINY |= dict(fallback="off")  # the memory itself streams here, never a floor in its place


@pytest.fixture(scope="module")
def series(tmp_path_factory):
    frame = write_series(tmp_path_factory.mktemp("stream") / "s.csv", rows=300, columns=3)
    return frame.set_index(pd.DatetimeIndex(frame.pop("date"), name="date"))


@pytest.fixture(scope="module")
def fitted(series):
    return TitansForecaster(**TINY).fit(series.iloc[:240])


def _states(model):
    return [torch.cat([w.flatten() for w in (*s.weights, *s.momentum)]) for s in model.memory_state_]


def test_update_in_two_parts_equals_one_update(fitted, series):
    import copy

    whole, parts = copy.deepcopy(fitted), copy.deepcopy(fitted)
    whole.update(series.iloc[240:270])
    parts.update(series.iloc[240:251]).update(series.iloc[251:270])
    for a, b in zip(_states(whole), _states(parts), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    pd.testing.assert_frame_equal(whole.predict(), parts.predict(), rtol=1e-5)
    assert whole.predict().index[0] == series.index[270]  # the forecast starts after the last row seen


def test_a_saved_stream_loads_and_streams_on_as_the_model_saved(fitted, series, tmp_path):
    """save() keeps what update() carried (every block's memory and momentum, the last forecast): the loaded
    model forecasts as the saved one, and update(a); save; load; update(b) equals update(a + b)."""
    import copy

    whole, saved = copy.deepcopy(fitted), copy.deepcopy(fitted)
    whole.update(series.iloc[240:270])
    saved.update(series.iloc[240:255])
    loaded = TitansForecaster.load(saved.save(tmp_path / "streamed"))
    for a, b in zip(_states(loaded), _states(saved), strict=True):
        torch.testing.assert_close(a, b.cpu(), rtol=0, atol=0)
    pd.testing.assert_frame_equal(loaded.predict(), saved.predict())
    assert not np.allclose(loaded.predict().to_numpy(), fitted.predict(series.iloc[:255]).to_numpy())  # not frozen
    loaded.update(series.iloc[255:270])
    pd.testing.assert_frame_equal(loaded.predict(), whole.predict(), rtol=1e-5)
    never_updated = TitansForecaster.load(fitted.save(tmp_path / "fitted"))  # nothing carried: the trained memory
    assert never_updated.memory_state_ is None and never_updated.stream_forecast_ is None
    pd.testing.assert_frame_equal(never_updated.predict(), fitted.predict())


def test_rows_already_read_are_refused_and_nothing_changes(fitted, series):
    import copy

    from titans_ts.errors import DataValidationError

    model = copy.deepcopy(fitted)
    before = model.predict()
    for rows in (series.iloc[230:250], series.iloc[239:240]):  # overlapping the fitted rows, or its last one
        with pytest.raises(DataValidationError, match="not after the last row already read"):
            model.update(rows)
    half_hour = series.iloc[240:250].set_axis(series.index[240:250] + pd.Timedelta(minutes=30))
    daily = series.iloc[240:250].set_axis(pd.date_range(series.index[240], periods=10, freq="D", name="date"))
    for rows, message in (
        (half_hour, "new row 1 is at .* off the series' grid"),
        (daily, "1 day apart, the series 1 hour"),
    ):
        with pytest.raises(DataValidationError, match=message):  # off the grid, or at another step
            model.update(rows)
    with pytest.raises(DataValidationError, match=r"rows are in UTC: give them as the model read its rows"):
        model.update(series.iloc[240:250].tz_localize("UTC"))  # compared with naive stamps: a TypeError
    twice = series.iloc[240:244].set_axis(series.index[[240, 241, 241, 242]])
    with pytest.raises(DataValidationError, match=r"repeat the timestamp .* 03:00:00: give one row per time"):
        model.update(twice)  # it was said to skip a step (03:00 -> 03:00)
    with pytest.raises(DataValidationError, match=r"1 timestamp\(s\) repeat or go back in time: row 5"):
        model.update(series.iloc[240:245].set_axis(series.index[[240, 241, 242, 244, 243]]))
    pd.testing.assert_frame_equal(model.predict(), before)
    with pytest.warns(TimeGapWarning, match=r"skip steps of 1 hour \(e\.g\. .* 01:00:00 -> .* 07:00:00\)"):
        copy.deepcopy(fitted).update(series.iloc[245:250])  # a gap of whole steps (a missing reading) passes, said


@pytest.mark.filterwarnings("error")  # none of them said to skip a step either
def test_the_grid_check_passes_holidays_other_zones_and_daylight_saving():
    """Rows that follow the series: business days with holidays (Mondays after Fridays), the same instants in
    another zone, a daily series' midnights across a daylight-saving change; not a row between two steps."""
    from titans_ts.errors import DataValidationError
    from titans_ts.forecasting.time_axis import check_follows, future_index, time_axis

    holidays = pd.bdate_range("2020-01-01", periods=400).delete([50, 120, 250])
    last, step = time_axis(holidays[:380])
    assert isinstance(step, pd.offsets.BusinessDay)  # no weekend row in the data: business days, not 1 day
    check_follows(last, holidays[380:], step)
    assert all(t.dayofweek < 5 for t in future_index(last, step, 10))
    hours = pd.date_range("2021-03-20", periods=300, freq="h", tz="UTC")
    check_follows(hours[289], hours[290:].tz_convert("+02:00"), time_axis(hours[:290])[1])
    days = pd.date_range("2021-03-20", periods=30, freq="D", tz="Europe/Berlin")
    check_follows(days[4], days[5:], time_axis(days[:5])[1])
    saved = pd.Timestamp(str(days[4]))  # as a loaded model has it: a fixed offset, +01:00, not Berlin's zone
    check_follows(saved, days[5:], time_axis(days[:5])[1])
    # a daily file inside one UTC offset loads with it, one across a change on the wall clock: either follows
    check_follows(saved, days[5:].tz_localize(None), time_axis(days[:5])[1])
    check_follows(days[4].tz_localize(None), days[5:], time_axis(days[:5])[1])
    with pytest.raises(DataValidationError, match="off the series' grid"):
        check_follows(saved, days[5:].tz_localize(None) + pd.Timedelta(hours=6), time_axis(days[:5])[1])
    thirtieths = pd.DatetimeIndex(["2016-09-30", "2016-10-30", "2016-11-30"])  # a model saved with 31 days
    check_follows(pd.Timestamp("2016-08-30"), thirtieths, pd.Timedelta(days=31))
    local_hours = pd.date_range("2021-03-27", periods=72, freq="h", tz="Europe/Berlin")  # 02:00 on the 28th skipped
    check_follows(local_hours[9], local_hours[10:], time_axis(local_hours[:10])[1])
    with pytest.raises(DataValidationError, match="off the series' grid"):
        check_follows(days[4], days[5:] + pd.Timedelta(hours=6), time_axis(days[:5])[1])


def test_the_carried_memory_changes_forecasts_but_starts_from_the_trained_one(fitted, series):
    import copy

    streamed = copy.deepcopy(fitted).update(series.iloc[240:241])
    frozen = fitted.predict(series.iloc[:241])
    pd.testing.assert_frame_equal(streamed.predict(), frozen, rtol=1e-5)  # one window: no carried state yet
    streamed.update(series.iloc[241:260])
    assert not np.allclose(streamed.predict().to_numpy(), fitted.predict(series.iloc[:260]).to_numpy())


def test_online_forecasts_never_read_future_rows(fitted, series):
    online = fitted.online_forecasts(series, split="test")
    changed = series.copy()
    cut = 280  # rows from here on are perturbed
    changed.iloc[cut:] += 5.0
    perturbed = fitted.online_forecasts(changed, split="test")
    test_start = 300 - int(300 * 0.2) - TINY["lookback"]  # the first row of the test split's windows
    last_window_before = cut - TINY["lookback"] - test_start  # windows 0..this-1 end before row `cut`
    np.testing.assert_allclose(perturbed[: last_window_before + 1], online[: last_window_before + 1], rtol=1e-6)
    assert not np.allclose(perturbed[last_window_before + 1 :], online[last_window_before + 1 :])
    frozen = fitted.evaluate(series, split="test")
    streamed = fitted.evaluate(series, split="test", online=True)
    assert streamed["windows"] == frozen["windows"] and streamed["mse"] != frozen["mse"]
    table = fitted.window_forecasts(series, split="test", online=True)  # what evaluate(online=True) scored
    assert (table["prediction_scaled"].to_numpy() == online.reshape(-1)).all()
    assert ((table["prediction_scaled"] - table["target_scaled"]) ** 2).mean() == pytest.approx(streamed["mse"])


def test_only_the_memory_variant_streams(series, tmp_path):
    model = TitansForecaster(**{**TINY, "variant": "attention"}).fit(series.iloc[:240])
    with pytest.raises(ConfigError, match="'lmm'"):
        model.update(series.iloc[240:250])
    with pytest.raises(ConfigError, match=r"'lmm'.*Evaluate it without online"):
        model.evaluate(series, online=True)
    from titans_ts.forecasting.saved import update_saved

    series.iloc[240:250].to_csv(tmp_path / "new.csv")
    saved = model.save(tmp_path / "model")
    before = (saved / "model.safetensors").read_bytes()
    with pytest.raises(ConfigError, match=r"'lmm'.*CLI: titans-ts predict --input with the recent rows"):
        update_saved(saved, tmp_path / "new.csv")  # titans-ts update: said before the rows are read
    assert (saved / "model.safetensors").read_bytes() == before


def test_an_update_with_no_rows_changes_nothing(fitted, series):
    """A poll that found no new rows: the model as it was (it was refused as a table with 0 rows)."""
    import copy

    model = copy.deepcopy(fitted)
    pd.testing.assert_frame_equal(model.update(series.iloc[240:240]).predict(), fitted.predict())
    assert model.update(np.empty((0, series.shape[1]))).last_index_ == fitted.last_index_


def test_undated_rows_given_twice_are_said(series):
    """Rows without timestamps cannot be checked to come after the others: the same file given to update
    twice was read twice without a word. Rows equal to the last ones read are said (a RepeatedRowsWarning);
    new rows, and rows that do not vary, are not."""
    import warnings

    from titans_ts.errors import RepeatedRowsWarning

    values = series.to_numpy()
    model = TitansForecaster(**{**TINY, "layers": 1}).fit(values[:240])
    start = model.last_index_
    with warnings.catch_warnings():
        warnings.simplefilter("error", RepeatedRowsWarning)
        model.update(values[240:250])  # new rows
        stuck = np.repeat(values[250:251], 3, axis=0)
        model.update(stuck).update(stuck)  # a stuck sensor, its rows equal again: nothing to say
    with pytest.warns(RepeatedRowsWarning, match="the 10 new rows equal the last 10 rows the model has read"):
        model.update(values[240:250]).update(values[240:250])
    assert model.last_index_ == start + 10 + 3 + 3 + 10 + 10  # read as new rows all the same
