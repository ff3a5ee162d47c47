"""Quantile forecasts: the pinball loss, levels that never cross, conformal calibration, the metrics, and the
levels through predict, update, save/load and the CLI; quantiles=None leaves the point path as it was."""

import copy
import json

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from tests.data.helpers import write_series
from titans_ts import TitansForecaster
from titans_ts.errors import ConfigError, DataValidationError, IgnoredSettingWarning, TitansWarning
from titans_ts.forecasting.conformal import calibrated, conformal_offsets, non_crossing
from titans_ts.forecasting.quantiles import QuantileHead, QuantileScores, ordered, pinball, quantile_loss

TINY = dict(horizon=8, lookback=16, dim=16, layers=1, heads=2, chunk_size=4, epochs=1, batch_size=32, progress=False)
# the model's own levels here (a floor's: test_floor_levels_are_conformal); the validation shifts alone
# (calibrate="adaptive", the default: test_adaptive_calibration.py)
TINY |= dict(fallback="off", calibrate="conformal")
LEVELS = [0.1, 0.5, 0.9]


@pytest.fixture(scope="module")
def series(tmp_path_factory):
    frame = write_series(tmp_path_factory.mktemp("quantiles") / "s.csv", rows=400, columns=3)
    return frame.set_index(pd.DatetimeIndex(frame.pop("date"), name="date"))


@pytest.fixture(scope="module")
def fitted(series):
    return TitansForecaster(**TINY, quantiles=[0.9, 0.1, 0.5]).fit(series.iloc[:340])  # any order: sorted


# --- the loss, the head, the calibration and the metrics, by hand -------------------------------------------


def test_pinball_loss_against_a_hand_computation():
    y = torch.tensor([1.0, -2.0])
    levels = torch.tensor([[0.0, 1.0, 3.0], [-1.0, -2.0, -2.5]])  # (2 points, 3 levels)
    # point 1: diffs 1, 0, -2 -> 0.1*1, 0, (0.9-1)*(-2)=0.2 ; point 2: diffs -1, 0, 0.5 -> 0.9, 0, 0.45
    expected = torch.tensor([[0.1, 0.0, 0.2], [0.9, 0.0, 0.45]])
    torch.testing.assert_close(pinball(levels, y, LEVELS), expected)
    torch.testing.assert_close(quantile_loss(levels[:, 1], levels, y, LEVELS), expected.mean())
    # without 0.5 the point is its own head, trained with MSE beside the levels' pinball loss
    point = torch.tensor([0.0, 0.0])
    two = quantile_loss(point, levels[:, [0, 2]], y, [0.1, 0.9])
    torch.testing.assert_close(two, expected[:, [0, 2]].mean() + (1.0 + 4.0) / 2)


@pytest.mark.parametrize("levels", [LEVELS, [0.05, 0.25, 0.75, 0.95], [0.5], [0.2, 0.5, 0.6, 0.99]])
def test_levels_never_cross_whatever_the_weights(levels):
    torch.manual_seed(0)
    head = QuantileHead(lookback=12, horizon=5, levels=levels, hidden=8)
    for _ in range(5):
        for parameter in head.parameters():
            parameter.data.normal_(0, 5)  # wild weights
        window, point = torch.randn(4, 12, 3) * 10, torch.randn(4, 5, 3) * 10
        out = head(window, point)
        assert out.shape == (4, 5, 3, len(levels))
        assert (out.diff(dim=-1) >= 0).all()
        if 0.5 in levels:
            torch.testing.assert_close(out[..., levels.index(0.5)], point)  # the median is the point
    raw = torch.randn(4, 5, 3, 3) * 10
    assert (ordered(torch.randn(4, 5, 3), raw, torch.rand(4, 1, 3) + 0.1, None).diff(dim=-1) >= 0).all()
    shifted = non_crossing(torch.randn(6, 5, 3, 5) * 3, median=2)  # calibration offsets can cross: not after
    assert (shifted.diff(dim=-1) >= 0).all()
    assert (non_crossing(torch.randn(6, 5), median=None).diff(dim=-1) >= 0).all()


def test_conformal_intervals_cover_gaussian_noise_as_promised():
    rng = np.random.default_rng(0)
    point = rng.normal(size=(2000, 4, 2))
    y = point + rng.normal(size=point.shape)  # known noise: N(0, 1)
    offsets, notes = conformal_offsets(y, LEVELS, point=point)
    assert notes == [] and offsets.shape == (3, 4, 2)
    np.testing.assert_allclose(offsets[0], -1.2816, atol=0.12)  # the noise's 0.1 and 0.9 quantiles
    np.testing.assert_allclose(offsets[2], 1.2816, atol=0.12)
    assert (offsets[1] == 0).all()  # 0.5 stays the point
    test_point = rng.normal(size=(20000, 4, 2))
    test_y = test_point + rng.normal(size=test_point.shape)
    raw = torch.as_tensor(np.repeat(test_point[..., None], 3, -1))
    levels = calibrated(raw, torch.as_tensor(offsets), LEVELS).numpy()
    inside = (levels[..., 0] <= test_y) & (test_y <= levels[..., 2])
    assert abs(inside.mean() - 0.8) < 0.02
    # CQR: intervals twice too narrow are widened to cover; the finite-sample rank ceil((n + 1) 0.8)
    narrow = np.stack([point - 0.6, point, point + 0.6], -1)
    cqr, _ = conformal_offsets(y, LEVELS, levels=narrow)
    scores = np.maximum(narrow[..., 0] - y, y - narrow[..., 2])
    np.testing.assert_allclose(cqr[2], np.sort(scores, axis=0)[int(np.ceil(2001 * 0.8)) - 1])
    np.testing.assert_allclose(cqr[0], -cqr[2])
    _, few = conformal_offsets(y[:5], LEVELS, point=point[:5])
    assert "5 validation windows are too few" in few[0]


def test_quantile_metrics_against_hand_computations():
    y = torch.tensor([[1.0, -2.0]])  # one window, one step... (1, 2) elements
    levels = torch.tensor([[[0.0, 1.0, 3.0], [-1.0, -2.0, -2.5]]])
    point = levels[..., 1] + torch.tensor([[0.5, 0.0]])
    scores = QuantileScores(LEVELS)
    scores.add(point[:, :1], levels[:, :1], y[:, :1])  # two batches sum as one
    scores.add(point[:, 1:], levels[:, 1:], y[:, 1:])
    result = scores.result()
    per_level = [(0.1 + 0.9) / 2, 0.0, (0.2 + 0.45) / 2]
    assert result["pinball"] == pytest.approx({"q0.1": per_level[0], "q0.5": 0.0, "q0.9": per_level[2]})
    assert result["mse"] == pytest.approx(0.25 / 2) and result["mae"] == pytest.approx(0.5 / 2)
    wql = [2 * 2 * p / 3.0 for p in per_level]  # 2 * summed pinball / sum |y| (= 3)
    assert result["mean_wql"] == pytest.approx(sum(wql) / 3)
    assert result["crps"] == pytest.approx(sum(2 * p for p in per_level) / 3)
    assert result["coverage"] == {"0.1-0.9": pytest.approx(0.5)}  # 1 in [0, 3]; -2 not in [-1, -2.5]
    assert result["width"] == {"0.1-0.9": pytest.approx((3.0 + -1.5) / 2)}


def test_bad_levels_and_settings_are_refused_clearly(series):
    for bad, message in (
        ({"quantiles": [0.1, 1.0]}, "[1.0] not in (0, 1)"),
        ({"quantiles": [0.1, 0.1, 0.9]}, "['q0.1'] given twice"),
        ({"quantiles": []}, "quantiles=[] (give at least one level"),
        ({"quantiles": 0.9}, "a list of levels in (0, 1)"),
        ({"quantiles": LEVELS, "calibrate": "isotonic"}, "calibrate='isotonic'"),
        ({"quantiles": LEVELS, "mode": "history", "lookback": 64}, "not supported in mode='history' yet"),
        ({"quantiles": LEVELS, "variant": "naive", "calibrate": "none"}, "use calibrate='adaptive', the default, or"),
        ({"quantiles": ["0.1", "0.9"]}, "['0.1', '0.9'] are not numbers"),  # was: "not in (0, 1)"
    ):
        with pytest.raises(ConfigError, match=__import__("re").escape(message)):
            TitansForecaster(**{**TINY, **bad}).fit(series)


# --- the estimator ------------------------------------------------------------------------------------------


def test_predict_gives_the_point_and_a_column_per_series_and_level(fitted, series):
    forecast = fitted.predict()
    names = list(series.columns)
    assert list(forecast.columns) == names + [f"{c}_q{q}" for c in names for q in LEVELS]
    for c in names:
        pd.testing.assert_series_equal(forecast[f"{c}_q0.5"], forecast[c], check_names=False)  # median = point
        assert (forecast[f"{c}_q0.1"] <= forecast[c]).all() and (forecast[c] <= forecast[f"{c}_q0.9"]).all()
    assert list(fitted.predict(quantiles=[0.9]).columns) == names + [f"{c}_q0.9" for c in names]
    assert list(fitted.predict(quantiles=[]).columns) == names
    pd.testing.assert_frame_equal(fitted.predict(quantiles=0.9), fitted.predict(quantiles=[0.9]))  # one level
    low_to_high = [f"{c}_q{q}" for c in names for q in (0.1, 0.9)]  # in the fitted order, however asked
    assert list(fitted.predict(quantiles=[0.9, 0.1, 0.9]).columns) == names + low_to_high
    for not_levels in ("0.9", [0.9, "high"]):
        with pytest.raises(ConfigError, match=r"are not levels; give fitted levels as numbers"):
            fitted.predict(quantiles=not_levels)
    with pytest.raises(ConfigError, match=r"levels \[0.05\] were not fitted"):
        fitted.predict(quantiles=[0.05])
    assert fitted.calibration_["method"] == "conformal" and fitted.quantile_offsets_.shape == (3, 8, 3)


def test_evaluate_adds_the_level_scores_and_window_forecasts_the_levels(fitted, series):
    metrics = fitted.evaluate(series)
    assert {"pinball", "mean_wql", "crps", "coverage", "width"} <= set(metrics)
    assert set(metrics["coverage"]) == {"0.1-0.9"} and 0 <= metrics["coverage"]["0.1-0.9"] <= 1
    table = fitted.window_forecasts(series)
    inside = (table["q0.1_scaled"] <= table["target_scaled"]) & (table["target_scaled"] <= table["q0.9_scaled"])
    assert inside.mean() == pytest.approx(metrics["coverage"]["0.1-0.9"])
    error = table["prediction_scaled"] - table["target_scaled"]
    assert (error**2).mean() == pytest.approx(metrics["mse"])
    assert metrics["mse"] == fitted.evaluate(series)["mse"]


def test_online_evaluation_scores_the_stream_forecasts_levels(fitted, series):
    """evaluate(online=True) gave MSE and MAE alone, and window_forecasts(online=True) no levels: the stream's
    levels are those of its carried-memory forecasts, calibrated as the frozen ones, and scored alike."""
    online = fitted.evaluate(series, online=True)
    assert {"pinball", "mean_wql", "crps", "coverage", "width"} <= set(online)
    table = fitted.window_forecasts(series, online=True)
    inside = (table["q0.1_scaled"] <= table["target_scaled"]) & (table["target_scaled"] <= table["q0.9_scaled"])
    assert inside.mean() == pytest.approx(online["coverage"]["0.1-0.9"])
    error = table["prediction_scaled"] - table["target_scaled"]
    assert (error**2).mean() == pytest.approx(online["mse"])
    points = fitted.online_forecasts(series)
    targets = fitted._stream_split(series, "test")[3]
    assert online["mse"] == pytest.approx(np.mean((points - targets) ** 2), rel=1e-12)  # the points as before
    # the first window starts from the trained memory: its forecast and levels are the frozen ones
    frozen = fitted.window_forecasts(series)
    first = table["origin"] == table["origin"].min()
    level_columns = ["prediction_scaled", "q0.1_scaled", "q0.5_scaled", "q0.9_scaled"]
    np.testing.assert_allclose(
        table.loc[first, level_columns].to_numpy(), frozen.loc[first, level_columns].to_numpy(), atol=1e-5
    )
    assert not np.allclose(table[level_columns].to_numpy(), frozen[level_columns].to_numpy(), atol=1e-5)


def test_update_keeps_the_levels_on_the_stream_forecast(fitted, series):
    whole, parts = copy.deepcopy(fitted), copy.deepcopy(fitted)
    whole.update(series.iloc[340:370])
    parts.update(series.iloc[340:355]).update(series.iloc[355:370])
    pd.testing.assert_frame_equal(whole.predict(), parts.predict(), rtol=1e-5)
    # the levels come from the window and carried state of the point forecast: redo the last step by hand
    before = copy.deepcopy(fitted).update(series.iloc[340:369])
    window = torch.as_tensor(fitted.scaler_.transform(series.iloc[370 - 16 : 370].to_numpy()), dtype=torch.float32)
    with torch.no_grad():
        point, raw, _ = before.model_.forecast(window[None], before.memory_state_, return_states=True)
    expected = fitted._calibrated(raw.double())[0].numpy()
    forecast = whole.predict()
    scaler = fitted._target_scaler()
    np.testing.assert_allclose(
        forecast[list(series.columns)].to_numpy(),
        scaler.inverse_transform(point[0].double().numpy()),
        rtol=1e-5,
        atol=1e-6,
    )
    for k, q in enumerate(LEVELS):
        level = forecast[[f"{c}_q{q}" for c in series.columns]].to_numpy()
        np.testing.assert_allclose(level, scaler.inverse_transform(expected[..., k]), rtol=1e-5, atol=1e-5)
    assert forecast.index[0] == series.index[370]


def test_save_and_load_keep_the_levels_and_the_calibration(fitted, series, tmp_path):
    fitted.save(tmp_path / "model")
    loaded = TitansForecaster.load(tmp_path / "model")
    assert loaded.quantile_levels_ == (0.1, 0.5, 0.9) and loaded.calibration_ == fitted.calibration_
    torch.testing.assert_close(loaded.quantile_offsets_, fitted.quantile_offsets_)
    pd.testing.assert_frame_equal(loaded.predict(), fitted.predict())
    pd.testing.assert_frame_equal(loaded.predict(series.iloc[:200]), fitted.predict(series.iloc[:200]))
    assert loaded.evaluate(series) == fitted.evaluate(series)
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    assert config["params"]["quantiles"] == [0.9, 0.1, 0.5] and config["quantiles"]["levels"] == LEVELS


def test_numpy_levels_are_levels_and_save_as_a_json_list(series, tmp_path):
    """Levels from NumPy (float32 prints 0.1 but is 0.10000000149): accepted, still a central interval and a
    median, and saved as a list that a loaded model refits with (not the array's str)."""
    from sklearn.base import clone

    given = np.array([0.9, 0.1, 0.5], dtype=np.float32)
    naive = TitansForecaster(**{**TINY, "variant": "naive"}, quantiles=given).fit(series)
    assert naive.quantile_levels_ == (0.1, 0.5, 0.9)
    assert set(naive.evaluate()["coverage"]) == {"0.1-0.9"}
    loaded = TitansForecaster.load(naive.save(tmp_path / "model"))
    assert loaded.get_params()["quantiles"] == [0.9, 0.1, 0.5]
    assert clone(loaded).fit(series).quantile_levels_ == (0.1, 0.5, 0.9)


def test_naive_levels_come_from_conformal_calibration(series):
    naive = TitansForecaster(**{**TINY, "variant": "naive"}, quantiles=[0.1, 0.9]).fit(series)
    assert "residual quantiles around the point forecast of naive" in naive.calibration_["source"]
    forecast = naive.predict()
    assert (forecast["OT_q0.1"] < forecast["OT"]).all() and (forecast["OT"] < forecast["OT_q0.9"]).all()
    assert "coverage" in naive.evaluate()
    with pytest.warns(TitansWarning, match=r"calibration: \d+ validation windows are too few .* of q0.005, q0.995"):
        extreme = TitansForecaster(**{**TINY, "variant": "naive"}, quantiles=[0.005, 0.995]).fit(series)
    assert "too few" in extreme.calibration_["notes"][0]  # said, and kept


def test_a_noisy_constant_is_covered_at_the_nominal_rate():
    """Known Gaussian noise: a constant plus N(0, 1); repeat-last errors are N(0, 2). On the test split the
    conformal 80 % interval (calibrated on validation) covers close to 80 %."""
    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"OT": 5 + rng.normal(size=3000)}, index=pd.date_range("2020", periods=3000, freq="h"))
    naive = TitansForecaster(**{**TINY, "variant": "naive"}, quantiles=LEVELS).fit(frame)
    offsets = naive.quantile_offsets_.numpy()
    np.testing.assert_allclose(offsets[2], 1.2816 * np.sqrt(2) / frame["OT"].iloc[:2100].std(ddof=0), rtol=0.15)
    assert abs(naive.evaluate()["coverage"]["0.1-0.9"] - 0.8) < 0.04


def test_quantiles_off_is_the_point_path_unchanged(series, tmp_path):
    from titans_ts.forecasting.model import build_model
    from titans_ts.forecasting.training import ForecastModule

    with pytest.warns(IgnoredSettingWarning, match="calibrate='conformal' would be ignored"):  # TINY's, no levels
        point = TitansForecaster(**TINY).fit(series)
    assert type(point.model_) is type(build_model(point.model_config_))
    assert point.model_.state_dict().keys() == build_model(point.model_config_).state_dict().keys()
    assert point.quantile_levels_ == () and point.quantile_offsets_ is None and point.calibration_ is None
    assert "best_val_mse" in point.history_ and "best_val_loss" not in point.history_
    module = ForecastModule(point.model_)
    assert module.train_metric == "train_mse" and module.n_sums == 3
    metrics = point.evaluate()
    assert set(metrics) == {"mse", "mae", "windows"}
    assert list(point.predict().columns) == list(series.columns)
    pd.testing.assert_frame_equal(point.predict(quantiles=[]), point.predict())  # [] is the point alone, here too
    with pytest.warns(IgnoredSettingWarning):  # calibrate means nothing without levels
        again = TitansForecaster(**{**TINY, "calibrate": "none"}).fit(series)
    pd.testing.assert_frame_equal(again.predict(), point.predict())
    point.save(tmp_path / "model")
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    assert "quantiles" not in config
    from safetensors.torch import load_file

    assert "quantile_offsets" not in load_file(str(tmp_path / "model" / "model.safetensors"))


def test_without_the_median_the_point_is_trained_with_mse_beside_the_levels(series):
    model = TitansForecaster(**{**TINY, "variant": "dlinear"}, quantiles=[0.2, 0.8]).fit(series)
    forecast = model.predict()
    assert list(forecast.columns)[3:] == [f"{c}_q{q}" for c in series.columns for q in (0.2, 0.8)]
    assert (forecast["OT_q0.2"] <= forecast["OT_q0.8"]).all()
    assert "best_val_loss" in model.history_


# --- the CLI --------------------------------------------------------------------------------------------------


def test_a_failed_recalibration_changes_nothing(fitted, series, tmp_path):
    """recalibrate(calibrate=...) on data it could not split set the new calibration as the model's setting and
    kept the old one's levels: predict gave the old calibration, and save wrote both."""
    fitted.save(tmp_path / "model")
    for model, X in ((TitansForecaster.load(tmp_path / "model"), None), (fitted, series.iloc[:30])):
        calibration = model.calibration_["method"]
        other = "conformal" if calibration != "conformal" else "adaptive"
        with pytest.raises((ConfigError, DataValidationError)):
            model.recalibrate(X, calibrate=other)
        assert model.calibrate == model.fitted_params_["calibrate"] == calibration
        assert model.calibration_["method"] == calibration


def test_cli_fits_predicts_and_evaluates_with_levels(tmp_path):
    from cli.ts import app

    runner = CliRunner()
    write_series(tmp_path / "mine.csv", rows=300, columns=2)
    small = ["--lookback", "24", "--horizon", "12", "--dim", "16", "--layers", "1", "--epochs", "1"]
    model = str(tmp_path / "model")
    fit = runner.invoke(
        app,
        ["fit", "--dataset", str(tmp_path / "mine.csv"), *small, "--quantiles", "0.1,0.5,0.9", "--out", model],
        env={"COLUMNS": "200"},
    )
    assert fit.exit_code == 0, fit.output
    refused = runner.invoke(app, ["fit", "--dataset", str(tmp_path / "mine.csv"), *small, "--quantiles", "0.1,nan"])
    assert refused.exit_code == 2 and "[nan] not in (0, 1)" in refused.stderr  # rich read [nan] as a style tag
    assert "Quantiles [0.1, 0.5, 0.9] (adaptive calibration)" in fit.output and "80 %" in fit.output  # the default
    metrics = json.loads((tmp_path / "model" / "metrics.json").read_text())
    assert metrics["calibration"]["method"] == "adaptive" and metrics["calibration"]["rate"] == 0.01
    assert metrics["quantiles"] == LEVELS and "0.1-0.9" in metrics["test"]["coverage"]
    assert {"pinball", "mean_wql", "crps"} <= set(metrics["test"])
    out = tmp_path / "forecast.csv"
    predict = ["predict", "--model", model, "--input", str(tmp_path / "mine.csv"), "--out", str(out)]
    assert runner.invoke(app, predict).exit_code == 0
    columns = list(pd.read_csv(out).columns)
    assert columns == ["date", "c0", "OT", "c0_q0.1", "c0_q0.5", "c0_q0.9", "OT_q0.1", "OT_q0.5", "OT_q0.9"]
    refused = runner.invoke(app, [*predict, "--quantiles", "0.9"])
    assert refused.exit_code == 2 and "already exists: pass --overwrite" in refused.stderr  # an earlier forecast
    some = runner.invoke(app, [*predict, "--quantiles", "0.9", "--overwrite"])
    assert some.exit_code == 0 and list(pd.read_csv(out).columns) == ["date", "c0", "OT", "c0_q0.9", "OT_q0.9"]
    twice = runner.invoke(app, [*predict, "--quantiles", "0.9,0.9", "--overwrite"])  # as predict(quantiles=...)
    assert twice.exit_code == 0 and list(pd.read_csv(out).columns) == ["date", "c0", "OT", "c0_q0.9", "OT_q0.9"]
    point = runner.invoke(app, [*predict, "--quantiles", "none", "--overwrite"])
    assert point.exit_code == 0 and list(pd.read_csv(out).columns) == ["date", "c0", "OT"]
    refused = runner.invoke(app, [*predict, "--quantiles", "0.05", "--overwrite"])
    assert refused.exit_code == 2 and "[0.05] were not fitted" in refused.stderr
    refused = runner.invoke(app, [*predict, "--quantiles", "high", "--overwrite"])
    assert refused.exit_code == 2 and "or none for the point forecast alone; got 'high'" in refused.stderr
    bad = runner.invoke(app, ["fit", "--dataset", str(tmp_path / "mine.csv"), "--quantiles", "0.1,1.5"])
    assert bad.exit_code == 2 and "not in (0, 1)" in bad.stderr
    windows = tmp_path / "windows.csv"
    evaluate = runner.invoke(
        app,
        ["evaluate", "--model", model, "--dataset", str(tmp_path / "mine.csv"), "--out", str(windows)],
        env={"COLUMNS": "200"},
    )
    assert evaluate.exit_code == 0, evaluate.output
    table = pd.read_csv(windows)
    assert {"q0.1", "q0.5", "q0.9", "q0.1_scaled"} <= set(table.columns)
    assert "Quantiles" in evaluate.output
    online = ["evaluate", "--model", model, "--dataset", str(tmp_path / "mine.csv"), "--online", "--out", str(windows)]
    streamed = runner.invoke(app, [*online, "--overwrite"], env={"COLUMNS": "200"})
    assert streamed.exit_code == 0, streamed.output
    assert {"q0.1", "q0.9_scaled"} <= set(pd.read_csv(windows).columns)  # the stream's forecasts and levels
    assert f"to {windows}: the online forecasts (" in streamed.output
    assert "test, online" in streamed.output  # its level scores beside the frozen ones


def test_the_forecast_plot_takes_every_level_label_for_a_level(tmp_path):
    """A level below 1e-4 is labelled "q1e-05" (level_label's :g): still a level of OT, not a point column."""
    from titans_ts.forecasting.plots import level_columns, plot_forecast

    index = pd.date_range("2021", periods=4, freq="h")
    forecast = pd.DataFrame({"OT": 1.0, "OT_q1e-05": 0.0, "OT_q0.5": 1.0, "OT_q0.99999": 2.0}, index=index)
    history = pd.DataFrame({"OT": [1.0, 2.0]}, index=pd.date_range("2020-12-31 22:00", periods=2, freq="h"))
    assert list(level_columns(forecast, "OT")) == [1e-05, 0.5, 0.99999]
    assert plot_forecast(history, forecast, tmp_path / "forecast.png").is_file()  # the point column: OT


def test_the_plots_name_a_floor_that_forecast_in_the_models_place(tmp_path, monkeypatch):
    """predict --plot and evaluate --plot did not say that a floor (fallback) made the forecasts they show."""
    from titans_ts.forecasting import plots

    titles = []
    monkeypatch.setattr(plots, "_save", lambda figure, path: titles.extend(a.get_title() for a in figure.axes))
    index = pd.date_range("2021", periods=2, freq="h")
    forecast = pd.DataFrame({"OT": [1.0, 2.0]}, index=index)
    history = pd.DataFrame({"OT": [1.0, 2.0]}, index=index - pd.Timedelta(hours=2))
    forecast.attrs["forecaster"] = "repeat last"
    plots.plot_forecast(history, forecast, tmp_path / "f.png")
    forecast.attrs["forecaster"] = "model"
    plots.plot_forecast(history, forecast, tmp_path / "f.png")
    assert titles == ["OT: 2-step forecast, by repeat last in the model's place", "OT: 2-step forecast"]
    windows = pd.DataFrame({"window": 0, "column": "OT", "time": index, "target": [1.0, 2.0], "prediction": [1.0, 1.0]})
    by_step = pd.DataFrame({"mse_scaled": [0.0, 1.0], "mae_scaled": [0.0, 1.0]}, index=[1, 2])
    plots.plot_evaluation(windows, by_step, tmp_path / "e.png", forecaster="repeat last")
    assert titles[2] == "test error by horizon step, repeat last"


def test_fits_plot_names_the_column_it_draws(fitted, series, tmp_path, monkeypatch):
    """forecast.png's title (fit's last test window) named the data and the forecaster, not the column drawn."""
    from titans_ts.forecasting import plots
    from titans_ts.forecasting.api import _plot_last_test_window

    titles = []
    monkeypatch.setattr(plots, "_save", lambda figure, path: titles.extend(a.get_title() for a in figure.axes))
    _plot_last_test_window(fitted, series.iloc[:340], tmp_path / "forecast.png", "mine")
    assert titles == [f"mine, OT: last test window, {fitted._forecaster_name()}"]


def test_a_recalibration_under_another_protocol_makes_it_the_models_own(fitted, series):
    """After recalibrate() on a protocol set since fit, setting fit's protocol back split the fitted rows by the
    recalibration's borders, not by it."""
    import copy

    model = copy.deepcopy(fitted).set_params(protocol="ratio_50_20_30")
    model.recalibrate()
    assert model.evaluate(split="test") == model.evaluate(series.iloc[:340], split="test")  # the fitted rows
    model.set_params(protocol=fitted.protocol)
    assert model.evaluate(split="test")["windows"] == fitted.evaluate(split="test")["windows"]


def test_the_calibration_notes_are_printed_beside_the_level_scores(capsys):
    """A note such as too few validation windows for a level's guarantee, and where the levels come from (a floor
    that forecast in the model's place gives intervals around its point forecast), were only in metrics.json."""
    from cli.ts_tables import print_quantile_scores

    scores = {"mean_wql": 0.1, "crps": 0.1, "coverage": {"0.1-0.9": 0.45}, "width": {"0.1-0.9": 1.0}}
    calibration = {"method": "conformal", "notes": ["2 validation windows are too few for the finite-sample"]}
    calibration["source"] = "conformal residual quantiles around the point forecast of seasonal naive"
    print_quantile_scores({"quantiles": LEVELS, "calibration": calibration, "val": scores, "test": scores})
    printed = " ".join(capsys.readouterr().out.split())
    assert "Calibration: 2 validation windows are too few for the finite-sample." in printed
    assert "Levels: conformal residual quantiles around the point forecast of seasonal naive." in printed
    print_quantile_scores({"quantiles": LEVELS, "calibration": calibration, "val": scores, "test": scores}, notes=False)
    assert "Calibration:" not in capsys.readouterr().out  # fit: its warning said the notes already
