import copy
import re
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from tests.data.helpers import write_series
from titans_ts import TitansForecaster
from titans_ts.errors import (
    ConfigError,
    DataValidationError,
    IgnoredSettingWarning,
    TimeGapWarning,
    UndatedRowsWarning,
)

TINY = dict(
    horizon=12,
    lookback=24,
    dim=16,
    layers=1,
    heads=2,
    chunk_size=8,
    epochs=2,
    batch_size=32,
    progress=False,
)
TINY |= dict(fallback="off")  # the model itself is tested here (floors and fallback: test_floors.py)


@pytest.fixture(scope="module")
def series(tmp_path_factory):
    path = tmp_path_factory.mktemp("series") / "mine.csv"
    frame = write_series(path, rows=500, columns=3)
    return frame.set_index(pd.DatetimeIndex(frame.pop("date"), name="date"))


@pytest.fixture(scope="module")
def fitted(series):
    return TitansForecaster(**TINY).fit(series)


def test_predict_before_fit_raises_not_fitted():
    with pytest.raises(NotFittedError, match="call fit"):
        TitansForecaster().predict()


def test_a_setting_that_shapes_the_model_changed_after_fit_is_refused_until_refit(series, tmp_path):
    """set_params(horizon=...) after fit failed deep inside predict ('Shape of passed values'), lookback inside
    evaluate, and target or variant were ignored: now a ConfigError names them. How it runs or was trained may
    change (device, progress, epochs), and setting it back or fitting again works."""
    model = TitansForecaster(**{**TINY, "epochs": 1}).fit(series)
    model.set_params(progress=True, epochs=5, lr=0.01).predict()  # how it runs or trains: fine
    for change in ({"horizon": 6}, {"lookback": 48}, {"variant": "mac"}, {"target": "c0"}):
        model.set_params(**change)
        for call in (model.predict, model.evaluate, lambda: model.save(tmp_path / "m")):
            with pytest.raises(ConfigError, match=f"settings changed since fit \\({next(iter(change))}: .*Fit again"):
                call()
        model.set_params(**{k: model.fitted_params_[k] for k in change})
    flipped = "off" if model.fallback == "auto" else "auto"  # was accepted, saved and ignored
    with pytest.raises(ConfigError, match=r"fallback: .* now\).*who forecasts, chosen and calibrated at fit"):
        model.set_params(fallback=flipped).predict()
    with pytest.raises(ConfigError, match=r"calibrate: or recalibrate\(X, calibrate=...\), without retraining"):
        model.set_params(fallback=model.fitted_params_["fallback"], calibrate="conformal").predict()
    model.set_params(calibrate=model.fitted_params_["calibrate"])
    assert len(model.predict()) == 12
    assert len(model.set_params(horizon=6).fit(series).predict()) == 6
    loaded = model.save(tmp_path / "m") and TitansForecaster.load(tmp_path / "m")
    with pytest.raises(ConfigError, match="horizon: 6 at fit, 3 now"):
        loaded.set_params(horizon=3).predict()


def test_clone_of_a_fitted_forecaster_is_unfitted(fitted):
    copy = clone(fitted)
    assert copy.get_params() == fitted.get_params()
    with pytest.raises(NotFittedError):
        copy.predict()


def test_predict_continues_the_time_axis_in_original_units(fitted, series):
    forecast = fitted.predict()
    assert list(forecast.columns) == list(series.columns)
    expected = pd.date_range(series.index[-1] + pd.Timedelta(hours=1), periods=12, freq="h")
    assert (forecast.index == expected).all() and forecast.index.freq == "h"  # asfreq and resample read it
    assert np.isfinite(forecast.to_numpy()).all()
    # original units: the forecast sits near the end of the series, not near 0 as scaled values would
    assert abs(forecast.iloc[0] - series.iloc[-1]).max() < 5 * series.diff().abs().max().max()


@pytest.mark.parametrize(
    "freq, on_calendar, season",
    [
        ("MS", lambda t: t.day == 1, 12),  # month starts: not 31 days apart
        ("ME", lambda t: t.is_month_end, 12),
        ("QS", lambda t: t.day == 1 and t.month in (1, 4, 7, 10), 4),
        ("B", lambda t: t.weekday() < 5, 5),  # business days: no weekend
        (pd.DateOffset(months=1), lambda t: t.day == 15, 12),  # the 15th of each month: no pandas frequency
    ],
)
def test_forecasts_of_calendar_data_are_dated_on_its_calendar(freq, on_calendar, season, tmp_path):
    """Monthly, quarterly or business-day data: the forecast's dates follow the calendar (the next month
    starts, the next business days), also after save and load, and the floors know its season."""
    dates = pd.date_range("1990-01-15" if isinstance(freq, pd.DateOffset) else "1990-01-01", periods=500, freq=freq)
    frame = pd.DataFrame(
        {"y": np.sin(np.arange(500) * 2 * np.pi / season) + np.arange(500) * 0.01},
        index=pd.DatetimeIndex(list(dates), name="date"),
    )  # no freq attribute on the index, as when read from a file
    model = TitansForecaster(**{**TINY, "epochs": 1, "fallback": "auto"}).fit(frame)
    dated = model.predict().index
    assert dated.equals(pd.DatetimeIndex(list(pd.date_range(dates[-1], periods=13, freq=freq)[1:]), name="date"))
    assert all(on_calendar(t) for t in dated) and dated[0] > dates[-1]
    model.save(tmp_path / "m")
    assert TitansForecaster.load(tmp_path / "m").predict().index.equals(dated)
    assert any(f"season {season}" in note for note in model.floor_notes_), model.floor_notes_
    with_a_gap = frame.drop(frame.index[-20])  # the latest rows read as 2 steps apart: dated on the calendar
    assert model.predict(with_a_gap).index.equals(dated)


def test_a_period_index_is_dated_by_its_periods_starts():
    """df.to_period("M") or pd.period_range: the periods were read as step numbers, the season from the
    autocorrelation, and a dated model's predict said the rows had no timestamps."""
    months = pd.period_range("1990-01", periods=300, freq="M", name="month")
    frame = pd.DataFrame({"y": np.sin(np.arange(300) * 2 * np.pi / 12)}, index=months)
    model = TitansForecaster(variant="seasonal_naive", horizon=6, lookback=24, progress=False).fit(frame)
    assert model.predict().index.equals(pd.date_range("2015-01-01", periods=6, freq="MS", name="month"))
    assert model.model_config_.season == 12  # a year of months (by the calendar, not the autocorrelation)
    assert model.predict(frame.iloc[:-12]).index[0] == pd.Timestamp("2014-01-01")


def test_predict_refuses_rows_at_another_step_than_the_model_was_fitted_at(fitted, series):
    """An hourly model given daily rows would date its forecast a day apart and read days as hours."""
    daily = series.iloc[-48:].set_index(pd.date_range("2030-01-01", periods=48, freq="D", name="date"))
    with pytest.raises(DataValidationError, match="the rows are 1 day apart; the model was fitted on rows 1 hour"):
        fitted.predict(daily)
    hours_with_a_gap = series.iloc[-48:].drop(series.index[-10])  # a missing reading in the window: still hourly
    with pytest.warns(TimeGapWarning, match="predict reads the rows as consecutive steps"):  # as fit says
        assert fitted.predict(hours_with_a_gap).index[0] == series.index[-1] + pd.Timedelta(hours=1)
    sent_twice = pd.concat([series, series.iloc[[-1]]])  # a feed's last row twice: read as one more step
    with pytest.raises(DataValidationError, match=r"1 row\(s\) of the window predict reads repeat a timestamp"):
        fitted.predict(sent_twice)
    pd.testing.assert_frame_equal(
        fitted.predict(sent_twice[~sent_twice.index.duplicated(keep="last")]), fitted.predict(series)
    )


def test_the_forecast_index_is_named_as_the_data_time_index(series, tmp_path):
    model = TitansForecaster(**{**TINY, "epochs": 1}).fit(series.rename_axis("time_utc"))
    assert model.predict().index.name == "time_utc" and model.predict(series).index.name == "date"
    model.save(tmp_path / "m")
    assert TitansForecaster.load(tmp_path / "m").predict().index.name == "time_utc"
    with pytest.warns(UndatedRowsWarning, match="no timestamps, but the model was fitted on rows 1 hour apart"):
        assert model.predict(series.reset_index(drop=True)).index.name == "step"  # undated rows: numbered steps
    numbered = series.set_axis(pd.RangeIndex(7, 7 + len(series), name="time"))  # a file's step numbers
    years = series.set_axis(pd.Index(np.arange(7, 7 + len(series)), name="time"))  # df.set_index("year")
    with pytest.warns(UndatedRowsWarning):
        assert model.predict(numbered).index.equals(pd.RangeIndex(7 + len(series), 19 + len(series), name="time"))
        assert model.predict(years).index.equals(model.predict(numbered).index)


def test_rows_numbered_at_a_constant_step_are_forecast_at_that_step(series, tmp_path):
    """An integer index counting up by 10 (a counter, years every 5) was renumbered by row: the forecast after
    row 2990 was numbered 300, 301, ..."""
    tens = series.set_axis(pd.Index(np.arange(len(series)) * 10, name="t"))
    model = TitansForecaster(**{**TINY, "epochs": 1, "variant": "dlinear"}).fit(tens)
    last = 10 * (len(series) - 1)
    assert model.predict().index.equals(pd.RangeIndex(last + 10, last + 130, 10, name="t"))
    model.save(tmp_path / "m")
    assert TitansForecaster.load(tmp_path / "m").predict().index.equals(model.predict().index)
    assert model.predict(tens.iloc[:100]).index[0] == 1000  # rows given at the model's step
    streamed = TitansForecaster(**{**TINY, "epochs": 1}).fit(tens.iloc[:-2])
    streamed.update(tens.iloc[-2:])  # two more rows: 20 further on
    assert streamed.predict().index[0] == last + 10
    numbers = np.r_[np.arange(250), np.arange(260, 260 + len(series) - 250)]  # steps 250-259 missing
    with pytest.warns(TimeGapWarning, match=r"numbered 1 apart but skip steps \(e.g. 249 -> 260\)"):
        gapped = TitansForecaster(**{**TINY, "epochs": 1, "variant": "dlinear"}).fit(series.set_axis(numbers))
    assert gapped.predict().index[0] == numbers[-1] + 1  # after the last row's number, not the row count


def test_update_checks_numbered_rows_as_it_checks_dated_ones(series):
    """Rows numbered like the fitted ones must come after them (they were read again, or before, silently, and
    numbered by their count: the forecast after 1359 was numbered 1370); a model fitted on rows without numbers
    of their own counts any rows on but dated ones."""
    numbered = series.reset_index(drop=True).set_axis(pd.RangeIndex(1000, 1000 + len(series)))
    model = TitansForecaster(**{**TINY, "epochs": 1}).fit(numbered.iloc[:350])
    for rows in (numbered.iloc[340:360], numbered.iloc[5:15]):  # read already, or before
        with pytest.raises(DataValidationError, match=r"give only the rows after the last one already read \(1349\)"):
            model.update(rows)
    with pytest.raises(DataValidationError, match=r"numbered up to 1349; the new rows are dated"):
        model.update(series.iloc[350:360])
    with pytest.warns(TimeGapWarning, match=r"skip steps of 1 \(e.g. 1349 -> 1355\)"):
        gapped = TitansForecaster(**{**TINY, "epochs": 1}).fit(numbered.iloc[:350])
        gapped.update(numbered.iloc[355:360])
    assert gapped.predict().index[0] == 1360  # after the last row's number
    model.update(numbered.iloc[350:360])
    assert model.predict().index[0] == model.predict(numbered.iloc[:360]).index[0] == 1360
    model.update(numbered.iloc[360:365].to_numpy())  # rows without numbers: counted on
    assert model.predict().index[0] == 1365
    unnumbered = TitansForecaster(**{**TINY, "epochs": 1}).fit(numbered.iloc[:350].reset_index(drop=True))
    live = numbered.iloc[350:353].reset_index(drop=True)  # a new frame, read row by row
    for i in range(3):
        unnumbered.update(live.iloc[i : i + 1])
    assert unnumbered.predict().index[0] == 353
    with pytest.raises(DataValidationError, match=r"without timestamps \(counted up to 352\); the new rows are dated"):
        unnumbered.update(series.iloc[353:355])  # it counts steps, and would number them so
    # a file without timestamps is read numbered by its steps from 0 (index 'step'): those numbers are its own, so
    # a slice of it read again is refused (it was read twice, and the forecast numbered 10 steps late)
    stepped = series.reset_index(drop=True).rename_axis("step")
    from_file = TitansForecaster(**{**TINY, "epochs": 1}).fit(stepped.iloc[:350])
    with pytest.raises(DataValidationError, match=r"give only the rows after the last one already read \(349\)"):
        from_file.update(stepped.iloc[340:350])
    assert from_file.update(stepped.iloc[350:352]).predict().index[0] == 352
    new_file = stepped.iloc[352:354].reset_index(drop=True).rename_axis("step")  # a new file's own count, from 0
    assert from_file.update(new_file).predict().index[0] == 354  # counted on, as before


def test_timestamps_in_a_column_are_the_time_axis_and_arrays_of_another_width_are_refused(fitted, series):
    """df.reset_index() (a datetime column) or a text column named date: the dates, not a series of numbers
    forecast beside the others; an array is read by position, so another width is other columns."""
    expected = fitted.predict(series)
    pd.testing.assert_frame_equal(fitted.predict(series.reset_index()), expected)
    as_text = series.reset_index().assign(date=lambda f: f["date"].astype(str))
    pd.testing.assert_frame_equal(fitted.predict(as_text), expected)
    with pytest.raises(DataValidationError, match=r"fitted on 3 column\(s\) .*; this array has 4"):
        fitted.predict(np.zeros((48, 4)))
    text_index = series.set_axis(series.index.astype(str), axis=0)  # pd.read_csv(path, index_col=0)
    pd.testing.assert_frame_equal(fitted.predict(text_index), expected)  # was numbered by step, undated
    steps_as_text = series.set_axis([str(1000 + i) for i in range(len(series))], axis=0)  # steps, not years
    assert list(fitted.predict(steps_as_text).index) == list(range(len(series), len(series) + 12))
    from titans_ts.data.validation import TimeOrderWarning

    numbered = series.reset_index(drop=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error", TimeOrderWarning)
        fitted.predict(numbered)  # in order: nothing to say
        fitted.predict(numbered.set_axis(numbered.index[::-1], axis=0))  # counting down (steps before now)
    with pytest.warns(TimeOrderWarning, match=r"out of order \(shuffled rows\?\).*df.sort_index\(\)"):
        fitted.predict(numbered.sample(frac=1, random_state=0))  # trained on in the order given, unsaid
    holed = series.copy()
    holed.iloc[5, 1] = np.nan  # a DataFrame's fix is pandas', not a file's --fill
    with pytest.raises(DataValidationError, match=r"at .* column 'c1'. Fill them first \(df.interpolate\(\)"):
        fitted.predict(holed)


def test_fit_says_when_a_frame_has_gaps_it_reads_as_consecutive_steps(series):
    """A file's gaps are refused as it is read (load_dataset, unless fill=); a DataFrame's were read silently."""
    from titans_ts.errors import TimeGapWarning

    naive = dict(TINY, variant="naive")
    with pytest.warns(TimeGapWarning, match=r"1 step\(s\) other than the usual 1 hour .*Fill the gaps first"):
        TitansForecaster(**naive).fit(series.drop(series.index[100:150]))
    days = pd.date_range("2020-01-01", periods=400, freq="D", tz="Europe/Berlin")  # 23 and 25 hours: still days
    hours = pd.date_range("2020-03-01", periods=400, freq="h", tz="Europe/Berlin")  # 02:00 skipped: still hourly
    twice = pd.DatetimeIndex(sorted(list(series.index[:200]) * 2))  # a long table's stamps, one per series
    with pytest.warns(TimeGapWarning, match=r"200 row\(s\) share a timestamp .* long=\(id, time, value\)"):
        TitansForecaster(**naive).fit(pd.DataFrame({"y": np.arange(400.0)}, index=twice))
    with warnings.catch_warnings():
        warnings.simplefilter("error", TimeGapWarning)
        for index in (days, hours):
            TitansForecaster(**naive).fit(pd.DataFrame({"y": np.arange(400.0)}, index=index))
        TitansForecaster(**naive).fit(series)


def test_forecasts_in_a_time_zone_keep_its_wall_clock_and_its_name_after_save_and_load(tmp_path):
    naive = dict(TINY, variant="naive")
    # daily, ending before the change to winter time: midnights stay midnights (24 hours on would be 23:00)
    days = pd.date_range(end="2020-10-20", periods=400, freq="D", tz="Europe/Berlin")
    daily = TitansForecaster(**naive).fit(pd.DataFrame({"y": np.arange(400.0)}, index=days))
    stamps = daily.predict().index
    assert (stamps.hour == 0).all() and str(stamps.tz) == "Europe/Berlin"
    assert list(stamps[4:7].strftime("%d %H:%M%z")) == ["25 00:00+0200", "26 00:00+0100", "27 00:00+0100"]
    # hourly across the change: absolute hours (the 02:00 of the change happens twice), in the zone by name
    hours = pd.date_range(end="2020-10-24 20:00", periods=400, freq="h", tz="Europe/Berlin")
    hourly = TitansForecaster(**naive).fit(pd.DataFrame({"y": np.arange(400.0)}, index=hours))
    for model in (daily, hourly):
        model.save(tmp_path / "model")
        loaded = TitansForecaster.load(tmp_path / "model")
        pd.testing.assert_index_equal(loaded.predict().index, model.predict().index)
        assert str(loaded.predict().index.tz) == "Europe/Berlin"
    # a zone only its offset names (dateutil's UTC): saved and loaded by that offset, as before
    import dateutil.tz

    in_utc = pd.DataFrame({"y": np.arange(400.0)}, index=days.tz_convert(dateutil.tz.tzutc()))
    utc = TitansForecaster(**naive).fit(in_utc)
    utc.save(tmp_path / "utc")
    assert (TitansForecaster.load(tmp_path / "utc").predict().index == utc.predict().index).all()
    # a daily time that happens twice (01:30 on the day New York's clocks go back): its first, not NaT
    from titans_ts.forecasting.time_axis import advanced, future_index

    assert str(advanced(hours[-2], hours[-1:].tz_convert("UTC")).tz) == "Europe/Berlin"  # rows read in UTC
    stamps = future_index(pd.Timestamp("2020-10-30 01:30", tz="America/New_York"), pd.Timedelta(days=1), 4)
    assert not stamps.isna().any() and (stamps.strftime("%H:%M") == "01:30").all()


def test_a_protocol_set_after_fit_is_the_one_evaluate_splits_by_and_a_bad_one_is_refused(fitted, series, tmp_path):
    import copy

    from titans_ts.errors import ConfigError

    model = copy.deepcopy(fitted).set_params(protocol="ratio_60_20_20")
    assert model.evaluate(split="val") == model.evaluate(series, split="val")  # the fitted rows, split anew
    assert model.evaluate(split="val")["windows"] != fitted.evaluate(split="val")["windows"]
    model.set_params(protocol="bogus")
    for call in (model.predict, lambda: model.save(tmp_path / "bad"), lambda: model.evaluate(series)):
        with pytest.raises(ConfigError, match=r"protocol='bogus' \(a split protocol: one of ett_hourly"):
            call()
    assert not (tmp_path / "bad").exists()
    by_rows = TitansForecaster(**{**TINY, "variant": "naive", "protocol": "rows_300_400"}).fit(series)
    by_rows.set_params(protocol="ratio_50_20_30")  # split by these ratios, not at fit's dates, once saved too
    by_rows.save(tmp_path / "by_rows")
    loaded = TitansForecaster.load(tmp_path / "by_rows")
    assert loaded.evaluate(series, split="test") == by_rows.evaluate(series, split="test")
    assert by_rows.evaluate(series, split="test")["windows"] == 150 - 12 + 1  # the last 30 % of 500 rows


def test_evaluate_counts_every_window(fitted):
    test = fitted.evaluate(split="test")
    # 500 rows, 70/10/20: test rows 400..500 plus 24 rows of lookback -> 124 - 36 + 1 windows
    assert test["windows"] == 89
    assert test["mse"] > 0 and test["mae"] > 0
    assert fitted.score() == pytest.approx(-test["mse"])


def test_window_forecasts_lay_every_forecast_beside_its_truth(fitted, series):
    table = fitted.window_forecasts(split="test")
    assert len(table) == 89 * 12 * 3 and table["step"].between(1, 12).all()
    # the scaled errors are exactly what evaluate reports
    scaled = table["prediction_scaled"] - table["target_scaled"]
    test = fitted.evaluate(split="test")
    assert (scaled**2).mean() == pytest.approx(test["mse"], rel=1e-6)
    assert scaled.abs().mean() == pytest.approx(test["mae"], rel=1e-6)
    # the truth in original units is the data itself, at the forecast time, in the right column
    for _, row in table.sample(20, random_state=0).iterrows():
        assert row["target"] == pytest.approx(series.loc[row["time"], row["column"]], rel=1e-5, abs=1e-5)
    first = table[table["window"] == 0]
    assert (first["origin"] == series.index[400 - 1]).all()  # the last row before the test rows
    assert first["time"].min() == series.index[400]


def test_save_load_predict_is_exact(fitted, series, tmp_path):
    fitted.save(tmp_path / "model")
    assert sorted(p.name for p in (tmp_path / "model").iterdir()) == ["config.json", "model.safetensors"]
    loaded = TitansForecaster.load(tmp_path / "model")
    pd.testing.assert_frame_equal(loaded.predict(), fitted.predict(), rtol=0, atol=0)
    pd.testing.assert_frame_equal(loaded.predict(series.iloc[:300]), fitted.predict(series.iloc[:300]), rtol=0, atol=0)
    pd.testing.assert_frame_equal(fitted.predict(), fitted.predict(series), rtol=0, atol=0)
    assert loaded.evaluate(series) == fitted.evaluate()


def test_a_forecast_is_the_same_to_the_bit_before_and_after_save_and_load(tmp_path):
    """A DataFrame's values are a column-major view: the context predict() kept from fit was one, a loaded model's
    is row-major, and their forecasts were 1e-6 apart (predict(X) took the view too)."""
    frame = write_series(tmp_path / "seven.csv", rows=600, columns=7).set_index("date")
    assert not frame.to_numpy().flags.c_contiguous  # what a read_csv gives
    model = TitansForecaster(horizon=4, lookback=24, dim=8, layers=1, epochs=1, progress=False, fallback="off")
    model.fit(frame)
    loaded = TitansForecaster.load(model.save(tmp_path / "model"))
    for forecast in (model.predict(), model.predict(frame), loaded.predict(frame)):
        pd.testing.assert_frame_equal(forecast, loaded.predict(), rtol=0, atol=0)


def test_fitting_is_reproducible_with_a_seed(series):
    a = TitansForecaster(**{**TINY, "epochs": 1}).fit(series).predict()
    b = TitansForecaster(**{**TINY, "epochs": 1}).fit(series).predict()
    pd.testing.assert_frame_equal(a, b)


def test_arrays_are_accepted(series):
    model = TitansForecaster(**{**TINY, "epochs": 1, "variant": "dlinear"}).fit(series.to_numpy())
    forecast = model.predict()
    assert isinstance(forecast.index, pd.RangeIndex) and forecast.index[0] == 500
    from titans_ts.forecasting.forecast_tables import forecast_csv

    assert forecast_csv(forecast).startswith("step,")  # step numbers, not headed 'date'
    assert model.n_features_in_ == 3 and not hasattr(model, "feature_names_in_")  # as scikit-learn: unnamed
    with pytest.raises(DataValidationError, match=r"fitted on an array, whose columns have no names: .*to_numpy"):
        model.predict(series)  # the frame's names are not the array's x0, x1, x2: said how to give it


def test_the_fitted_column_names_are_kept_as_scikit_learn_keeps_them(fitted, series, tmp_path):
    assert list(fitted.feature_names_in_) == list(series.columns) and fitted.feature_names_in_.dtype == object
    assert not hasattr(TitansForecaster(), "feature_names_in_")
    refitted = TitansForecaster(**{**TINY, "epochs": 1, "variant": "dlinear"}).fit(series)
    assert hasattr(refitted.fit(series.to_numpy()), "feature_names_in_") is False  # an earlier fit's dropped
    fitted.save(tmp_path / "model")
    assert list(TitansForecaster.load(tmp_path / "model").feature_names_in_) == list(series.columns)


def test_columns_the_model_does_not_read_are_not_validated_either(fitted, series):
    """A text note or an empty column beside the fitted ones was refused by predict and update (as missing
    values, non-numeric), though they are not read, as the CLI's predict and the docs say."""
    noted = series.assign(note="checked", empty=np.nan)
    pd.testing.assert_frame_equal(fitted.predict(noted), fitted.predict(series))
    after = pd.date_range(series.index[-1], periods=6, freq=pd.infer_freq(series.index[:10]))[1:]
    new_rows = pd.DataFrame(series.iloc[-5:].to_numpy(), index=after, columns=series.columns)
    plain, noted_rows = copy.deepcopy(fitted), copy.deepcopy(fitted)
    plain.update(new_rows)
    noted_rows.update(new_rows.assign(note="x"))
    pd.testing.assert_frame_equal(noted_rows.predict(), plain.predict())
    one_by_one = copy.deepcopy(fitted)
    for i in range(len(new_rows)):  # a row at a time, df.iloc[i], the note beside it
        one_by_one.update(new_rows.assign(note="x").iloc[i])
    pd.testing.assert_frame_equal(one_by_one.predict(), plain.predict())
    with pytest.raises(DataValidationError, match=r"lacks \['c0'\]"):  # the fitted column it lacks, not the note
        fitted.predict(noted.drop(columns=["c0"]))


def test_bad_inputs(fitted, series, tmp_path):
    with pytest.raises(DataValidationError, match=r"lacks \['c0'\] \(it has \['other', 'c1', 'OT'\]\)"):
        fitted.predict(series.rename(columns={"c0": "other"}))  # the misspelt name listed (it was left out)
    with pytest.raises(DataValidationError, match="at least lookback=24 rows"):
        fitted.predict(series.iloc[:10])
    with pytest.raises(DataValidationError, match="too short"):
        TitansForecaster(**TINY).fit(series.iloc[:60])
    with pytest.raises(DataValidationError, match="non-numeric"):
        TitansForecaster(**TINY).fit(series.assign(site="north"))
    with pytest.raises(ConfigError, match="not a saved forecaster"):
        TitansForecaster.load(tmp_path)
    with pytest.raises(ConfigError, match="nowhere does not exist: give the folder a saved forecaster"):
        TitansForecaster.load(tmp_path / "nowhere")
    with pytest.raises(ConfigError, match="split must be"):
        fitted.evaluate(split="holdout")
    with pytest.raises(ConfigError, match=r"batch_size=0 \(a positive integer\)"):
        fitted.evaluate(batch_size=0)
    with pytest.raises(DataValidationError, match=r"got 'ETTh1'.*load_dataset"):
        TitansForecaster(**TINY).fit("ETTh1")
    with pytest.raises(ConfigError, match=r"lr='fast' \(positive\); dropout=None"):
        TitansForecaster(**{**TINY, "lr": "fast", "dropout": None}).fit(series)
    (tmp_path / "a_file").write_text("kept")
    with pytest.raises(ConfigError, match="a_file is a file: a model is saved as a folder"):
        fitted.save(tmp_path / "a_file")
    with pytest.raises(ConfigError, match="a_file is a file, so"):
        fitted.save(tmp_path / "a_file" / "model")
    with pytest.raises(ConfigError, match="checkpoint_dir .*a_file is a file"):
        TitansForecaster(**{**TINY, "checkpoint_dir": tmp_path / "a_file"}).fit(series)
    assert (tmp_path / "a_file").read_text() == "kept"


def test_a_failed_save_leaves_nothing_behind(fitted, tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("safetensors.torch.save_file", broken)
    with pytest.raises(OSError, match="disk full"):
        fitted.save(tmp_path / "model")
    assert list(tmp_path.iterdir()) == []
    assert torch.isfinite(fitted.context_).all()


def test_a_save_stopped_between_its_two_files_is_refused_at_load_not_read_as_a_model(fitted, tmp_path, monkeypatch):
    import pathlib

    from titans_ts.errors import ConfigError

    fitted.save(tmp_path / "model")
    replace, renamed = pathlib.Path.replace, []

    def killed_after_the_weights(self, target):
        if renamed:
            raise KeyboardInterrupt
        renamed.append(target)
        return replace(self, target)

    monkeypatch.setattr(pathlib.Path, "replace", killed_after_the_weights)
    with pytest.raises(KeyboardInterrupt):
        fitted.save(tmp_path / "model")  # the new weights in place, the config still the first save's
    monkeypatch.undo()
    with pytest.raises(ConfigError, match=r"come from different saves .* a save stopped part-way"):
        TitansForecaster.load(tmp_path / "model")


def test_a_load_that_meets_a_save_under_way_waits_for_it(fitted, tmp_path, monkeypatch):
    """titans-ts update (or save) into a folder that a server loads from: a load between the save's two
    renames (new weights, old config) was refused as a damaged folder. It waits for the save to finish."""
    import shutil

    import titans_ts.io

    for name in ("old", "new", "mid"):
        fitted.save(tmp_path / name)
    shutil.copy(tmp_path / "new" / "model.safetensors", tmp_path / "mid")  # the first rename done, the second not
    waited = []

    def second_rename_meanwhile(seconds):
        waited.append(seconds)
        if len(waited) == 3:
            shutil.copy(tmp_path / "new" / "config.json", tmp_path / "mid")

    monkeypatch.setattr(titans_ts.io.time, "sleep", second_rename_meanwhile)
    loaded = TitansForecaster.load(tmp_path / "mid")
    assert len(waited) == 3 and loaded.history_ == fitted.history_
    pd.testing.assert_frame_equal(loaded.predict(), fitted.predict())


def test_a_weights_file_changed_after_its_save_is_refused_at_load(fitted, tmp_path):
    """One flipped bit in model.safetensors loaded and forecast quietly otherwise (5.0150037 for 5.0151484 in a
    probe); random bytes over its last 200 gave a forecast clearly wrong. The save keeps the file's sha256."""
    import json

    from titans_ts.errors import ConfigError

    fitted.save(tmp_path / "model")
    weights = tmp_path / "model" / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-3] ^= 0x40  # inside the last tensor's values: the file still reads as safetensors
    weights.write_bytes(bytes(data))
    with pytest.raises(ConfigError, match=r"model.safetensors is not the file its save wrote .* damaged"):
        TitansForecaster.load(tmp_path / "model")
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    del config["weights_sha256"]  # a folder saved before the hash was kept: read unchecked, as before
    (tmp_path / "model" / "config.json").write_text(json.dumps(config))
    TitansForecaster.load(tmp_path / "model")


@pytest.mark.parametrize(
    ("edit", "said"),
    [
        (lambda c: c["params"].update(horizon=c["params"]["horizon"] // 2), r"horizon=\d+ \(the network's \d+\)"),
        (lambda c: c["scaler"].update(scale=[0.0] * len(c["scaler"]["scale"])), "not finite, positive numbers"),
        (lambda c: c["scaler"].update(mean=c["scaler"]["mean"][:1]), r"a scaler of 1 means"),
        (lambda c: c["params"].update(variant="zzz"), r"variant='zzz' \(one of"),
        (lambda c: c.update(targets=["nowhere"]), r"targets \['nowhere'\] not among the columns"),
    ],
)
def test_a_config_edited_out_of_step_with_its_model_is_refused_at_load(fitted, tmp_path, edit, said):
    """A hand-edited config.json loaded, then failed in predict with a raw shape error (horizon 24 -> 12), or
    forecast the scaler's means (a zero scale) without a word (found by a production probe)."""
    import json

    from titans_ts.errors import ConfigError

    fitted.save(tmp_path / "model")
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    edit(config)
    (tmp_path / "model" / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match=f"do not describe the same forecaster .*{said}"):
        TitansForecaster.load(tmp_path / "model")


def test_a_model_saved_by_a_newer_titans_ts_loads_with_a_warning(fitted, tmp_path):
    """It loaded without a word (a probe set titans_ts_version to 9.0.0): what a newer version added is not read."""
    import json
    import warnings

    from titans_ts.errors import NewerSaveWarning
    from titans_ts.version import __version__

    fitted.save(tmp_path / "model")
    config_path = tmp_path / "model" / "config.json"
    config = json.loads(config_path.read_text())
    for version, newer in (("9.0.0", True), ("0.1.0", False), ("0.0.9", False), ("0.2.0.dev1", True), (None, False)):
        config_path.write_text(json.dumps(config | {"titans_ts_version": version}))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            TitansForecaster.load(tmp_path / "model")
        said = [str(w.message) for w in caught if w.category is NewerSaveWarning]
        assert bool(said) == newer, (version, said)
        assert not newer or f"saved by titans-ts {version}, newer than this one ({__version__})" in said[0]


def test_a_save_into_a_folder_that_cannot_be_written_names_that_folder(fitted, tmp_path, monkeypatch):
    """It named the hidden staging folder beside it (.ro.txumek_o/model.safetensors), which the user never made."""
    import pathlib

    fitted.save(tmp_path / "ro")
    kept = (tmp_path / "ro" / "model.safetensors").read_bytes()

    def read_only(self, target):
        raise PermissionError(13, "Permission denied", str(self), None, str(target))

    monkeypatch.setattr(pathlib.Path, "replace", read_only)
    with pytest.raises(PermissionError) as refused:
        fitted.save(tmp_path / "ro")
    assert refused.value.filename == str(tmp_path / "ro") and refused.value.strerror == "Permission denied"
    assert (tmp_path / "ro" / "model.safetensors").read_bytes() == kept
    assert sorted(path.name for path in tmp_path.iterdir()) == ["ro"]  # no staging folder left


def test_save_and_load_read_a_home_folder_as_the_shell_does(fitted, series, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from cli.ts import app

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    assert fitted.save("~/models/m") == tmp_path / "models" / "m"
    assert (tmp_path / "models" / "m" / "config.json").is_file()
    TitansForecaster(**{**TINY, "epochs": 1, "checkpoint_dir": "~/ck"}).fit(series)
    assert (tmp_path / "ck" / "settings.json").is_file()
    series.to_csv(tmp_path / "mine.csv")
    small = ["--lookback", "24", "--horizon", "12", "--variant", "naive"]
    fit = CliRunner().invoke(app, ["fit", "--dataset", str(tmp_path / "mine.csv"), *small, "--out=~/r"])
    assert fit.exit_code == 0, fit.output  # bash leaves "~" after "=" as it is
    assert (tmp_path / "r" / "metrics.json").is_file() and not (tmp_path / "~").exists()
    from titans_ts.forecasting.benchmark import run_benchmark
    from titans_ts.io import write_table

    run_benchmark(str(tmp_path / "mine.csv"), "~/b", horizons=(12,), models=("naive",), lookback=24)
    write_table(series.reset_index(), "~/table.csv")
    assert (tmp_path / "b" / "mine_naive_h12_s0.json").is_file() and (tmp_path / "table.csv").is_file()
    assert not (tmp_path / "~").exists()
    assert TitansForecaster.load("~/models/m").predict().equals(fitted.predict())
    from genomics import DNAClassifier
    from titans_ts.errors import ConfigError

    for estimator in (TitansForecaster, DNAClassifier):  # a device that is none: refused at load, not at predict
        with pytest.raises(ConfigError, match=r"device='gpu' is not one of \('auto', 'cpu', 'cuda'\)"):
            estimator.load("~/models/m", device="gpu")


def test_evaluating_the_fitted_data_reads_the_borders_of_fit_and_splits_nothing_again(fitted, series, monkeypatch):
    from titans_ts.data import split_borders

    assert fitted.borders_ == split_borders(len(series), 24, 12, fitted.protocol)

    def refit(*args, **kwargs):
        raise AssertionError("make_splits ran again (scaler refit, frame rescaled)")

    monkeypatch.setattr("titans_ts.data.windows.make_splits", refit)
    monkeypatch.setattr("titans_ts.forecasting.estimator.make_splits", refit)
    assert fitted.evaluate(split="val") == fitted.val_metrics_
    assert fitted.evaluate(series, split="test") == fitted.evaluate(split="test")  # another frame: its own borders
    assert len(fitted.window_forecasts(split="val")) == fitted.val_metrics_["windows"] * 12 * 3


def test_the_defaults_are_written_once_and_the_config_reads_them():
    from titans_ts.forecasting.defaults import ESTIMATOR
    from titans_ts.forecasting.model import ForecastConfig

    assert TitansForecaster().get_params() == ESTIMATOR
    config = ForecastConfig()
    shared = {name: getattr(config, name) for name in vars(config) if name in ESTIMATOR and name != "season"}
    assert shared == {name: ESTIMATOR[name] for name in shared} and len(shared) == 12


def test_impossible_settings_are_refused_by_one_check(series):
    from titans_ts.forecasting.model import ForecastConfig

    patch = {"tokens": "patch"}
    for bad in ({"horizon": 0}, {"chunk_size": 0}, {"heads": 0}, {"memory_depth": 0}, {"patch_len": 0, **patch}):
        with pytest.raises(ConfigError, match=f"{next(iter(bad))}=0 \\(a positive integer\\)"):
            TitansForecaster(**{**TINY, **bad}).fit(series)
        with pytest.raises(ConfigError, match=f"{next(iter(bad))}=0 \\(a positive integer\\)"):
            ForecastConfig(**bad)
    with pytest.raises(ConfigError, match=r"stride=0 \(a positive integer\)"):
        ForecastConfig(stride=0, **patch)
    for unused in ({"variant": "attention", "memory_depth": 0}, {"patch_len": 0, "stride": 0}):  # variate tokens
        ForecastConfig(**unused)  # settings a model does not use are not checked, as before
        TitansForecaster(**{**TINY, **unused}).check_params()
    ForecastConfig(variant="dlinear", tokens="patch", lookback=8)  # DLinear reads no patches
    too_long = {"tokens": "patch", "lookback": TINY["lookback"], "patch_len": TINY["lookback"] + 1}
    message = "patch_len=25 with lookback=24 and tokens='patch' (a patch is at most the lookback)"
    with pytest.raises(ConfigError, match=re.escape(message)):
        TitansForecaster(**{**TINY, **too_long}).fit(series)
    with pytest.raises(ConfigError, match="is longer than lookback"):
        ForecastConfig(**too_long)
    message = "dim=30 with heads=2 (dim must be divisible by heads and by the 4 EinFFT blocks: e.g. dim=32)"
    with pytest.raises(ConfigError, match=re.escape(message)):
        TitansForecaster(**{**TINY, "dim": 30, "heads": 2}).fit(series)  # refused before any work, not by the model


def test_what_scikit_learn_users_pass_works_as_python_values_do(series, tmp_path):
    """NumPy integers (a GridSearchCV grid of np.arange) were refused as "not a positive integer"; an integer
    column name as target failed ('int' object is not iterable); integer column names came back as strings
    after load; score(X, y) was a TypeError (now refused as fit(X, y) is, in words: y is not taken)."""
    import json

    numbered = series.set_axis([0, 1, 2], axis=1)
    numpy_ints = dict(horizon=np.int64(12), lookback=np.int64(24), epochs=np.int64(1), seed=np.int64(3))
    model = TitansForecaster(**{**TINY, **numpy_ints}, target=0).fit(numbered)
    assert list(model.predict().columns) == [0]
    loaded = TitansForecaster.load(model.save(tmp_path / "m"))
    pd.testing.assert_frame_equal(loaded.predict(), model.predict())  # the column is 0, not "0"
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["params"]["horizon"] == 12 and config["targets"] == [0]  # numbers, not "12" and "0"
    assert model.score(numbered) == -model.evaluate()["mse"]
    with pytest.raises(ConfigError, match=r"score\(X, y\): .* y is not taken \(as in fit\)"):
        model.score(numbered, numbered[0])  # it was ignored, where fit(X, y) is refused
    from titans_ts.data.columns import target_names

    assert target_names(0) == [0] and target_names({"a": 1, "b": 2}.keys()) == ["a", "b"]
    for seed in (None, -1, 2**32):
        with pytest.raises(ConfigError, match=rf"seed={seed!r} \(a whole number from 0 to 2\*\*32 - 1"):
            TitansForecaster(**TINY, seed=seed).fit(series)  # it failed inside the data loader
    with pytest.raises(DataValidationError, match=r"column name\(s\) \['c0'\] appear more than once"):
        TitansForecaster(**TINY).fit(series.set_axis(["c0", "c0", "OT"], axis=1))  # pandas' TypeError


def test_the_same_quantile_levels_in_another_order_are_the_same_setting(series):
    model = TitansForecaster(**{**TINY, "epochs": 1}, quantiles=[0.9, 0.1, 0.5]).fit(series)
    assert len(model.set_params(quantiles=np.array([0.1, 0.5, 0.9])).predict()) == 12  # was "changed since fit"
    with pytest.raises(ConfigError, match="quantiles: "):
        model.set_params(quantiles=[0.1, 0.9]).predict()


def test_what_may_change_after_fit_is_checked_as_fit_checks_it(series):
    """target="c0" and target=["c0"] name one setting (the second was "changed since fit"); a setting that may
    change after fit is refused as fit refuses it (online_blend=5 forecast silently extrapolated, batch_size=0
    failed inside torch); recalibrate(calibrate=...), as the refusal of set_params(calibrate=...) advises, works;
    fit(X, y) is refused (y was ignored, X's columns forecast)."""
    model = TitansForecaster(**{**TINY, "epochs": 1}, target="c0", quantiles=[0.1, 0.5, 0.9]).fit(series)
    assert len(model.set_params(target=["c0"]).predict()) == 12
    for bad in ({"batch_size": 0}, {"epochs": -1}):
        with pytest.raises(ConfigError, match=next(iter(bad))):
            model.set_params(**bad).predict()
        model.set_params(**{k: model.fitted_params_[k] for k in bad})
    model.set_params(calibrate="conformal")
    with pytest.raises(ConfigError, match=r"recalibrate\(X, calibrate=...\)"):
        model.predict()
    assert model.recalibrate(calibrate="conformal").fitted_params_["calibrate"] == "conformal"
    assert len(model.predict()) == 12
    with pytest.raises(ConfigError, match=r"fit\(X, y\).*target=\[...\]"):
        TitansForecaster(**TINY).fit(series[["c1", "OT"]], series["c0"])


def test_update_takes_one_row_as_df_iloc_gives_it(fitted, series):
    """update(df.iloc[i]) read the row as a column named by its time ("the data lacks ['c0', ...]")."""
    import copy

    by_frame, by_row = copy.deepcopy(fitted), copy.deepcopy(fitted)
    later = series.iloc[-1:].set_axis(series.index[-1:] + pd.Timedelta(hours=1), axis=0)
    by_frame.update(later)
    by_row.update(later.iloc[0])
    pd.testing.assert_frame_equal(by_row.predict(), by_frame.predict())


def test_a_setting_the_chosen_model_would_not_read_is_said_at_fit(series):
    """The CLI refuses an option its model would ignore; the estimator takes it (a grid of settings may hold it
    for other models) but says so, as scikit-learn warns of an l1_ratio without penalty='elasticnet'. It was
    silent: TitansForecaster(mode="history", batch_size=7) trained as if batch_size were not given."""
    with pytest.warns(
        IgnoredSettingWarning, match=r"patch_len=8 would be ignored \(only patch tokens .*add tokens=patch"
    ):
        TitansForecaster(**TINY, patch_len=8).fit(series)
    with warnings.catch_warnings():  # the same setting where the model reads it, or a default: nothing said
        warnings.simplefilter("error", IgnoredSettingWarning)
        TitansForecaster(**TINY, patch_len=8, tokens="patch").fit(series)


def test_no_dataset_default_is_a_setting_its_model_would_ignore():
    """fit_dataset fills every setting left out with the dataset's defaults, and the estimator then says which of
    them its model would ignore, compared with the estimator's own defaults: a family default that differed there
    (a batch size in history mode, a season) would be said to every user who gave nothing."""
    from titans_ts.forecasting.defaults import ESTIMATOR, defaults_for
    from titans_ts.forecasting.settings import ignored_problems

    for dataset in ("ETTh1", "ETTh2", "ETTm1", "ETTm2", "weather", "mine.csv"):
        for mode in ("window", "history"):
            params = {**ESTIMATOR, **defaults_for(dataset, mode), "mode": mode}
            assert ignored_problems(params, given=params) == [], (dataset, mode)


def test_a_model_whose_training_was_interrupted_says_so_when_loaded(fitted, tmp_path):
    """A fit stopped by Ctrl-C saves its best epoch's weights (exit 130); a later predict from that folder (a
    benchmark's models/<run>/ too) forecast without a word that the training had not finished."""
    import json

    from titans_ts.errors import InterruptedTrainingWarning

    fitted.save(tmp_path / "model")
    config_path = tmp_path / "model" / "config.json"
    config = json.loads(config_path.read_text())
    with warnings.catch_warnings():
        warnings.simplefilter("error", InterruptedTrainingWarning)
        TitansForecaster.load(tmp_path / "model")  # a finished training: nothing said
    config["history"] |= {"stop_reason": "interrupted", "epochs_run": 1, "best_epoch": 0}
    config_path.write_text(json.dumps(config))
    with pytest.warns(
        InterruptedTrainingWarning, match=r"model: Training was interrupted.*epoch 1\) are kept.*--resume"
    ):
        loaded = TitansForecaster.load(tmp_path / "model")
    pd.testing.assert_frame_equal(loaded.predict(), fitted.predict())  # it still forecasts, on those weights


def test_a_long_table_in_memory_is_answered_with_how_to_make_it_wide():
    """A (id, time) MultiIndex raised pandas' own NotImplementedError; a long table with an id column was refused
    for its text column alone, without the long-format advice a file of it gets."""
    times = pd.date_range("2021", periods=60, freq="h")
    long = pd.DataFrame({"id": np.repeat(["a", "b"], 60), "time": np.tile(times, 2), "v": np.arange(120.0)})
    model = TitansForecaster(**TINY)
    with pytest.raises(DataValidationError, match=r"levels \['id', 'time'\] .*e\.g\. df\['v'\]\.unstack\('id'\)"):
        model.fit(long.set_index(["id", "time"]))
    with pytest.raises(DataValidationError, match=r"levels \['time', 'id'\] .*e\.g\. df\.unstack\('id'\)"):
        model.fit(long.set_index(["time", "id"])["v"])
    with pytest.raises(DataValidationError, match=r"df\.pivot\(index='time', columns='id', values='v'\)"):
        model.fit(long)
    wide = long.pivot(index="time", columns="id", values="v")  # the advice, taken
    assert list(model.set_params(horizon=4, lookback=8, epochs=1).fit(wide).predict().columns) == ["a", "b"]
