"""calibrate="adaptive": the validation offsets, then moved by every truth as it arrives (conformal.LevelTracker).
By hand, causal (a window's levels never read its own truths), back to nominal coverage when the noise drops,
and through evaluate, window_forecasts, predict, update and save/load."""

import copy

import numpy as np
import pandas as pd
import pytest

from tests.data.helpers import write_series
from titans_ts import TitansForecaster
from titans_ts.errors import ConfigError
from titans_ts.forecasting.conformal import LevelTracker, conformal_offsets, tracked_windows

LEVELS = [0.1, 0.5, 0.9]
TINY = dict(horizon=8, lookback=16, dim=16, layers=1, heads=2, chunk_size=4, epochs=1, batch_size=32, progress=False)
TINY |= dict(fallback="off", quantiles=LEVELS)


def test_the_tracker_moves_each_level_by_the_truths_it_sees_with_their_delay():
    tracker = LevelTracker(np.zeros((3, 2, 1)), np.ones((2, 1)), LEVELS, rate=0.5)
    raw = np.array([[[-1.0, 0.0, 1.0]], [[-2.0, 0.0, 2.0]]])  # (horizon 2, 1 column, 3 levels)
    np.testing.assert_allclose(tracker.forecast(raw), raw)
    tracker.observe(np.array([1.5]))  # step 1 of the first forecast: above every level
    np.testing.assert_allclose(tracker.offsets[:, 0, 0], [0.05, 0.0, 0.45])  # 0.5 * (tau - 0); the median stays
    np.testing.assert_allclose(tracker.offsets[:, 1, 0], 0.0)  # step 2 has seen no truth yet
    second = tracker.forecast(raw)
    np.testing.assert_allclose(second[0, 0], [-0.95, 0.0, 1.45])
    tracker.observe(np.array([-3.0]))  # step 1 of the second forecast and step 2 of the first: below all
    np.testing.assert_allclose(tracker.offsets[:, 0, 0], [0.05 - 0.45, 0.0, 0.45 - 0.05])
    np.testing.assert_allclose(tracker.offsets[:, 1, 0], [-0.45, 0.0, -0.05])
    np.testing.assert_allclose(tracker.forecast(raw)[1, 0], [-2.45, 0.0, 1.95])


@pytest.mark.parametrize("horizon, columns", [(1, 1), (5, 3), (7, 2)])
def test_a_tracked_level_never_reads_a_truth_it_forecasts(horizon, columns):
    rng = np.random.default_rng(horizon)
    n = 40
    series = rng.normal(size=(n + horizon + 1, columns))
    y = np.stack([series[i + 1 : i + 1 + horizon] for i in range(n)])  # window i forecasts rows i+1 .. i+horizon
    raw = np.sort(rng.normal(size=(n, horizon, columns, 3)), -1)
    start = rng.normal(size=(3, horizon, columns))

    def levels(y):
        return tracked_windows(LevelTracker(start, np.ones((horizon, columns)), LEVELS, rate=0.3), raw, y)

    def windows(series):
        return np.stack([series[j + 1 : j + 1 + horizon] for j in range(n)])

    base = levels(y)
    for i in (0, 1, horizon, n // 2):
        changed = series.copy()
        changed[i + 1 :] += 10.0  # every truth window i forecasts, and all after
        np.testing.assert_array_equal(levels(windows(changed))[: i + 1], base[: i + 1])
        # and window i + 1 has read row i + 1: below every level, or above every level, moves its step-1 levels
        low, high = series.copy(), series.copy()
        low[i + 1], high[i + 1] = -100.0, 100.0
        assert not np.allclose(levels(windows(low))[i + 1, 0], levels(windows(high))[i + 1, 0])


@pytest.mark.parametrize("taus", [LEVELS, [0.2, 0.8]])  # with and without the median (sorted, not clamped)
def test_coverage_returns_to_nominal_when_the_noise_drops_after_calibration(taus):
    rng = np.random.default_rng(0)
    horizon, n = 4, 6000
    calibration = rng.normal(size=(2000, horizon, 1))
    y = 0.3 * rng.normal(size=(n, horizon, 1))  # calmer than validation: static intervals over-cover
    offsets, _ = conformal_offsets(calibration, taus, point=np.zeros_like(calibration))
    raw = np.zeros((n, horizon, 1, len(taus)))
    static = raw + offsets.transpose(1, 2, 0)
    tracked = tracked_windows(LevelTracker(offsets, np.ones((horizon, 1)), taus, rate=0.05), raw, y)
    nominal = taus[-1] - taus[0]

    def coverage(levels):
        return ((levels[..., 0] <= y) & (y <= levels[..., -1]))[n // 2 :].mean()

    assert coverage(static) > nominal + 0.15
    assert abs(coverage(tracked) - nominal) < 0.03


@pytest.fixture(scope="module")
def series(tmp_path_factory):
    frame = write_series(tmp_path_factory.mktemp("adaptive") / "s.csv", rows=400, columns=3)
    return frame.set_index(pd.DatetimeIndex(frame.pop("date"), name="date"))


@pytest.fixture(scope="module")
def fitted(series):
    return TitansForecaster(**TINY, calibrate="adaptive").fit(series.iloc[:340])


def test_adaptive_levels_start_at_the_conformal_ones_and_score_what_window_forecasts_shows(fitted, series):
    static = TitansForecaster(**TINY, calibrate="conformal").fit(series.iloc[:340])
    assert fitted.calibration_["method"] == "adaptive" and fitted.calibration_["rate"] > 0
    np.testing.assert_array_equal(fitted.quantile_offsets_.numpy(), static.quantile_offsets_.numpy())
    tracked, conformal = fitted.window_forecasts(), static.window_forecasts()
    first = tracked["window"] == tracked["window"].min()
    pd.testing.assert_frame_equal(tracked[first], conformal[first], rtol=1e-5)  # no truth read yet
    assert not np.allclose(tracked["q0.9_scaled"], conformal["q0.9_scaled"])
    metrics = fitted.evaluate()
    inside = (tracked["q0.1_scaled"] <= tracked["target_scaled"]) & (tracked["target_scaled"] <= tracked["q0.9_scaled"])
    assert inside.mean() == pytest.approx(metrics["coverage"]["0.1-0.9"])
    assert metrics["mse"] == static.evaluate()["mse"]  # the point path is the same
    small = fitted.evaluate(batch_size=7)  # the tracker goes on across batch boundaries
    assert small["coverage"] == metrics["coverage"] and small["mean_wql"] == pytest.approx(metrics["mean_wql"])


def test_the_online_streams_levels_are_tracked_as_the_frozen_windows_are(fitted, series):
    """evaluate(online=True): each stream forecast's levels tracked from the validation offsets by the truths
    before it (the frozen windows' rule), so the first window's match the frozen one's and the rest move."""
    import copy

    online, frozen = fitted.window_forecasts(online=True), fitted.window_forecasts()
    first = online["window"] == online["window"].min()
    pd.testing.assert_frame_equal(online[first], frozen[first], rtol=1e-5)  # no truth read, no state carried
    shifted = copy.deepcopy(fitted)
    shifted.quantile_scale_ = None  # no tracker: the same stream's levels shifted by the validation offsets
    static = shifted.window_forecasts(online=True)
    pd.testing.assert_frame_equal(static[first], online[first], rtol=1e-5)
    np.testing.assert_array_equal(static["prediction_scaled"], online["prediction_scaled"])
    assert not np.allclose(static["q0.9_scaled"], online["q0.9_scaled"])  # tracked on the way
    scores = fitted.evaluate(online=True)
    inside = (online["q0.1_scaled"] <= online["target_scaled"]) & (online["target_scaled"] <= online["q0.9_scaled"])
    assert inside.mean() == pytest.approx(scores["coverage"]["0.1-0.9"])


def test_adaptive_levels_carry_through_update_and_save_load(fitted, series, tmp_path):
    whole, parts = copy.deepcopy(fitted), copy.deepcopy(fitted)
    whole.update(series.iloc[340:370])
    parts.update(series.iloc[340:355]).update(series.iloc[355:370])
    pd.testing.assert_frame_equal(whole.predict(), parts.predict(), rtol=1e-5)
    assert whole.level_tracker_.made == fitted.level_tracker_.made + 30
    assert not np.allclose(whole.level_tracker_.offsets, fitted.level_tracker_.offsets)  # the rows moved them

    loaded = TitansForecaster.load(parts.save(tmp_path / "model"))
    for name, value in parts.level_tracker_.state().items():
        np.testing.assert_array_equal(getattr(loaded.level_tracker_, name), value)
    # the carried memory is saved too: the loaded model forecasts, and streams on, as the one saved
    pd.testing.assert_frame_equal(loaded.predict(), parts.predict())
    loaded.update(series.iloc[370:380])
    parts.update(series.iloc[370:380])
    pd.testing.assert_frame_equal(loaded.predict(), parts.predict(), rtol=1e-5)
    assert loaded.evaluate(series) == parts.evaluate(series)  # a split's levels start from the validation offsets


def test_the_fitted_tracker_made_the_test_windows_levels_on_its_way(fitted, series, monkeypatch):
    """After fit the tracker has read the rows after validation: the forecasts it made at the test windows'
    origins are window_forecasts' levels, window by window; predict(df) on the fitted data equals predict()."""
    made = []
    original = LevelTracker.forecast
    monkeypatch.setattr(LevelTracker, "forecast", lambda self, raw: made.append(original(self, raw)) or made[-1])
    tracker = fitted._tracker_over(series.iloc[:340], fitted.borders_.val[1] - 1)
    monkeypatch.undo()
    np.testing.assert_array_equal(tracker.offsets, fitted.level_tracker_.offsets)
    table = fitted.window_forecasts()
    windows = table["window"].nunique()
    levels = table[["q0.1_scaled", "q0.5_scaled", "q0.9_scaled"]]  # rows by window, step, column (fitted order)
    expected = np.stack(made[:windows])  # (windows, horizon, columns, levels)
    np.testing.assert_allclose(levels.to_numpy(), expected.reshape(-1, 3), rtol=1e-5, atol=1e-6)
    pd.testing.assert_frame_equal(fitted.predict(series.iloc[:340]), fitted.predict())
    short = fitted.predict(series.iloc[:40])  # too short to split: read from its first whole window
    assert fitted._prediction_tracker(series.iloc[:40]).made == 40 - fitted.lookback + 1
    assert list(short.columns) == list(fitted.predict().columns)


def test_recalibrate_gives_what_fit_would_have_given_without_retraining(fitted, series, tmp_path):
    static = TitansForecaster(**TINY, calibrate="conformal").fit(series.iloc[:340])
    loaded = TitansForecaster.load(static.save(tmp_path / "static"))
    with pytest.raises(ConfigError, match="calibrate="):
        loaded.recalibrate(series.iloc[:340], calibrate="sometimes")
    assert loaded.calibrate == "conformal"  # a refused setting changes nothing
    loaded.recalibrate(series.iloc[:340], calibrate="adaptive")
    assert loaded.calibration_ == fitted.calibration_
    np.testing.assert_array_equal(loaded.quantile_scale_.numpy(), fitted.quantile_scale_.numpy())
    np.testing.assert_allclose(loaded.level_tracker_.offsets, fitted.level_tracker_.offsets, rtol=1e-6)
    pd.testing.assert_frame_equal(loaded.predict(), fitted.predict(), rtol=1e-6)
    mine, theirs = loaded.evaluate(series.iloc[:340]), fitted.evaluate()
    assert mine["mse"] == theirs["mse"] and mine["coverage"] == pytest.approx(theirs["coverage"])
    assert mine["mean_wql"] == pytest.approx(theirs["mean_wql"], rel=1e-6)
    assert loaded.evaluate()["mse"] == theirs["mse"]  # recalibrate put it at the end of that data, as fit does
    back = static.recalibrate(calibrate="conformal")  # the fitted data by default; conformal again: unchanged
    np.testing.assert_array_equal(back.quantile_offsets_.numpy(), fitted.quantile_offsets_.numpy())
    assert back.level_tracker_ is None
    back.update(series.iloc[340:345])  # a stream: recalibrating restarts it at the end of X, said
    with pytest.warns(UserWarning, match=r"update\(\) had read rows up to .*restarts at the end of X"):
        assert back.recalibrate(series.iloc[:340]).predict().index[0] == series.index[340]
    with pytest.raises(ConfigError, match="without quantiles"):
        TitansForecaster(**{**TINY, "quantiles": None, "variant": "naive"}).fit(series).recalibrate()
