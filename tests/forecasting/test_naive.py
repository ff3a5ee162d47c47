"""The forecasts everyone runs first, as variants of the estimator and the CLI: naive and seasonal naive."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from cli.ts import app
from titans_ts import TitansForecaster
from titans_ts.errors import ConfigError
from titans_ts.forecasting.model import ForecastConfig, build_model

FAST = dict(horizon=12, lookback=48, progress=False)


def _periodic(rows=600, period=24, freq="h", noise=0.0, seed=0):
    """Two columns that repeat every `period` steps exactly (plus optional noise), with dates."""
    rng = np.random.default_rng(seed)
    phase = 2 * np.pi * np.arange(rows) / period
    values = np.stack([np.sin(phase), np.cos(2 * phase) + 0.5], axis=1) + noise * rng.normal(size=(rows, 2))
    index = pd.date_range("2020-01-01", periods=rows, freq=freq, name="date")
    return pd.DataFrame(values, index=index, columns=["a", "OT"])


def test_repeat_last_forecasts_the_last_value_and_the_last_season():
    x = torch.arange(2 * 10 * 3, dtype=torch.float32).view(2, 10, 3)
    naive = build_model(ForecastConfig(lookback=10, horizon=7, channels=3, variant="naive"))
    assert torch.equal(naive(x), x[:, -1:].expand(-1, 7, -1))
    seasonal = build_model(ForecastConfig(lookback=10, horizon=7, channels=3, variant="seasonal_naive", season=4))
    expected = x[:, [6, 7, 8, 9, 6, 7, 8]]  # the last 4 steps, repeated
    assert torch.equal(seasonal(x), expected)
    assert not list(naive.parameters()) and not list(seasonal.parameters())


def test_seasonal_naive_is_exact_on_a_periodic_series_and_naive_is_not():
    frame = _periodic()
    seasonal = TitansForecaster(variant="seasonal_naive", **FAST).fit(frame)
    naive = TitansForecaster(variant="naive", **FAST).fit(frame)
    assert seasonal.model_config_.season == 24  # one day of hourly data
    assert seasonal.history_["trained"] is False and seasonal.history_["epochs_run"] == 0
    assert seasonal.evaluate()["mse"] < 1e-10
    assert naive.evaluate()["mse"] > 0.1
    forecast = seasonal.predict()
    truth = _periodic(rows=600 + 12).iloc[-12:]
    np.testing.assert_allclose(forecast.to_numpy(), truth.to_numpy(), atol=1e-6)  # float32 inside


@pytest.mark.parametrize("freq, season", [("h", 24), ("15min", 96), ("10min", 144), ("D", 7)])
def test_the_season_is_one_day_at_the_data_frequency(freq, season):
    frame = _periodic(rows=1200, period=season, freq=freq)
    fitted = TitansForecaster(variant="seasonal_naive", horizon=12, lookback=season, progress=False).fit(frame)
    assert fitted.model_config_.season == season


@pytest.mark.parametrize("dated", [False, True])
def test_without_a_calendar_season_the_season_is_the_autocorrelation_peak(dated):
    """Undated rows, or weekly dates (no day or year in whole steps): the training split's autocorrelation
    finds the period (it used to be refused, asking for season=)."""
    frame = _periodic(period=13, freq="W", noise=0.05)
    frame = frame if dated else frame.reset_index(drop=True)
    fitted = TitansForecaster(variant="seasonal_naive", **FAST).fit(frame)
    assert fitted.model_config_.season == 13


def test_season_errors_say_how_to_fix_them():
    walk = pd.DataFrame({"y": np.cumsum(np.random.default_rng(0).normal(size=600))})  # undated, no season
    with pytest.raises(ConfigError, match=r"no peak within the lookback \(48 steps\): pass season=<steps per"):
        TitansForecaster(variant="seasonal_naive", **FAST).fit(walk)
    frame = _periodic().reset_index(drop=True)
    assert TitansForecaster(variant="seasonal_naive", season=24, **FAST).fit(frame).evaluate()["mse"] < 1e-10
    with pytest.raises(ConfigError, match="1 <= season <= lookback"):
        TitansForecaster(variant="seasonal_naive", season=96, **FAST).fit(_periodic())  # lookback 48
    with pytest.raises(ConfigError, match="season must be a positive"):
        TitansForecaster(variant="seasonal_naive", season=0, **FAST).fit(_periodic())


def test_cli_fits_a_seasonal_naive_forecast_saves_it_and_predicts(tmp_path):
    runner = CliRunner()
    _periodic(noise=0.01).reset_index().to_csv(tmp_path / "mine.csv", index=False)
    model = tmp_path / "model"
    args = ["fit", "--dataset", str(tmp_path / "mine.csv"), "--lookback", "48", "--horizon", "12"]
    result = runner.invoke(app, [*args, "--variant", "seasonal_naive", "--out", str(model)])
    assert result.exit_code == 0, result.output
    assert "Nothing to train" in result.output
    metrics = json.loads((model / "metrics.json").read_text())
    assert metrics["variant"] == "seasonal_naive" and metrics["history"]["epochs_run"] == 0
    assert metrics["test"]["mse"] < 0.01
    out = tmp_path / "forecast.csv"
    result = runner.invoke(
        app, ["predict", "--model", str(model), "--input", str(tmp_path / "mine.csv"), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert len(pd.read_csv(out)) == 12


def test_a_split_by_dates_follows_its_dates_until_the_protocol_is_set_again():
    """A model split by dates (date_protocol) splits another dated frame at the fitted timestamps, one with earlier
    rows too; a protocol set after fit is the one used, as given."""
    from titans_ts.data import date_protocol

    frame = _periodic(rows=900, noise=0.1)
    late = frame.iloc[100:]
    protocol = date_protocol(late.index, "2020-01-20", "2020-01-30")
    model = TitansForecaster(variant="naive", protocol=protocol, **FAST).fit(late)
    assert model.split_starts_ == ["2020-01-20 00:00:00", "2020-01-30 00:00:00"]
    assert model.evaluate(frame) == model.evaluate(late) == model.evaluate()  # the same windows, at the same dates
    assert model.evaluate(frame, split="val") == model.evaluate(late, split="val")
    model.set_params(protocol="rows_500_700")  # changeable after fit: read as given, on any frame
    assert model.evaluate(frame)["windows"] == 900 - 700 - 12 + 1
    assert model.evaluate(late)["windows"] == 800 - 700 - 12 + 1
