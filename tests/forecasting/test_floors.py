"""Never silently worse than the floor: every fit scores repeat last and seasonal naive on the model's
validation windows, and with fallback="auto" a model behind the best of them forecasts with it instead."""

import copy
import json
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from cli.ts import app
from tests.data.helpers import write_series
from titans_ts import TitansForecaster
from titans_ts.errors import ConfigError, FallbackWarning
from titans_ts.forecasting.floors import autocorrelation_peak, candidate_seasons, choose

TINY = dict(dim=8, layers=1, heads=2, chunk_size=8, epochs=1, progress=False)
DAILY = dict(horizon=7, lookback=28, **TINY)
runner = CliRunner()


def _random_walk(rows=700, freq="D", seed=0):
    rng = np.random.default_rng(seed)
    index = pd.date_range("2020-01-01", periods=rows, freq=freq, name="date")
    return pd.DataFrame(rng.normal(size=(rows, 2)).cumsum(axis=0), index=index, columns=["a", "b"])


def _sine(rows, period, freq, harmonic=0.0, noise=0.0, seed=0):
    rng = np.random.default_rng(seed)
    phase = 2 * np.pi * np.arange(rows) / period
    values = np.sin(phase) + harmonic * np.sin(2 * phase + 1) + noise * rng.normal(size=rows)
    return pd.DataFrame({"y": values}, index=pd.date_range("2020-01-01", periods=rows, freq=freq, name="date"))


@pytest.fixture(scope="module")
def walk():
    return _random_walk()


@pytest.fixture(scope="module")
def fallen(walk):
    with pytest.warns(FallbackWarning, match="so repeat last forecasts instead.*fallback='off' keeps the model"):
        return TitansForecaster(**DAILY).fit(walk)  # fallback="auto", the default: said as it falls back


@pytest.fixture(scope="module")
def naive(walk):
    return TitansForecaster(variant="naive", **DAILY).fit(walk)


def test_on_a_random_walk_repeat_last_wins_and_forecasts_in_the_models_place(fallen, naive, walk):
    assert fallen.fallback == "auto"
    assert list(fallen.floors_) == ["repeat last", "seasonal naive (season 7)"]  # daily data: a week
    assert any("one year (365 steps) is not scored" in note for note in fallen.floor_notes_)  # lookback 28
    # the floors are scored on the model's validation windows: the naive variants' own validation scores
    assert fallen.floors_["repeat last"] == pytest.approx(naive.val_metrics_["mse"], rel=1e-12)
    seasonal = TitansForecaster(variant="seasonal_naive", season=7, **DAILY).fit(walk)
    assert fallen.floors_["seasonal naive (season 7)"] == pytest.approx(seasonal.val_metrics_["mse"], rel=1e-12)
    assert fallen.val_metrics_["mse"] > fallen.floors_["repeat last"]  # the model, behind
    assert fallen.forecaster_used_ == "repeat last"
    assert "behind the best floor, so repeat last forecasts instead" in fallen.fallback_reason_
    forecast = fallen.predict()
    np.testing.assert_array_equal(forecast.to_numpy(), naive.predict().to_numpy())  # exactly the floor's
    np.testing.assert_allclose(forecast.to_numpy(), np.repeat(walk.to_numpy()[-1:], 7, axis=0), rtol=1e-6)
    assert forecast.attrs["forecaster"] == "repeat last" and "behind" in forecast.attrs["fallback_reason"]
    history = walk.iloc[:500]
    np.testing.assert_array_equal(fallen.predict(history).to_numpy(), naive.predict(history).to_numpy())
    for split in ("val", "test"):
        assert fallen.evaluate(split=split) == naive.evaluate(split=split)
    table = fallen.window_forecasts(split="test")
    np.testing.assert_array_equal(table["prediction"], naive.window_forecasts(split="test")["prediction"])
    assert table.attrs["forecaster"] == "repeat last"


def test_streaming_forecasts_with_the_floor_too(fallen, walk):
    whole = _random_walk(rows=720)  # the same walk, 20 days on
    stream = copy.deepcopy(fallen).update(whole.iloc[700:])
    np.testing.assert_array_equal(stream.predict().to_numpy(), fallen.predict(whole).to_numpy())
    assert stream.memory_state_ is None  # a floor carries nothing
    online, frozen = fallen.evaluate(split="test", online=True), fallen.evaluate(split="test")
    assert online["mse"] == pytest.approx(frozen["mse"], rel=1e-9) and online["windows"] == frozen["windows"]


def test_fallback_off_never_substitutes(fallen, walk):
    with warnings.catch_warnings():
        warnings.simplefilter("error", FallbackWarning)  # nothing replaced, nothing said
        kept = TitansForecaster(**DAILY, fallback="off").fit(walk)
    assert kept.floors_ == fallen.floors_ and kept.val_metrics_ == fallen.val_metrics_  # the same model, scored
    assert kept.forecaster_used_ == "model" and "fallback='off' keeps it" in kept.fallback_reason_
    with torch.no_grad():
        own = kept.model_(kept.context_[None])[0].double().numpy()
    np.testing.assert_allclose(kept.predict().to_numpy(), kept.scaler_.inverse_transform(own))
    assert not np.allclose(kept.predict().to_numpy(), fallen.predict().to_numpy())
    assert kept.evaluate(split="val")["mse"] == pytest.approx(kept.val_metrics_["mse"], rel=1e-9)


def test_a_weekly_cycle_finds_the_weekly_floor_not_the_daily_one():
    """Half-hourly data whose only cycle is a week: a day (48 steps) and a week (336) are scored, the week wins."""
    week = _sine(rows=336 * 12, period=336, freq="30min", harmonic=0.5, noise=0.01)
    fitted = TitansForecaster(variant="dlinear", horizon=48, lookback=336, epochs=1, progress=False).fit(week)
    floors = fitted.floors_
    assert list(floors) == ["repeat last", "seasonal naive (season 48)", "seasonal naive (season 336)"]
    assert min(floors, key=floors.get) == "seasonal naive (season 336)"
    assert floors["seasonal naive (season 336)"] < floors["repeat last"] < floors["seasonal naive (season 48)"]
    assert "seasonal naive (season 48): one day" in fitted.floor_notes_
    assert fitted.forecaster_used_ == "seasonal naive (season 336)"  # DLinear after one epoch is behind it


def test_a_seasonal_series_the_model_learns_keeps_the_model():
    """A clean sine of period 40 h: longer than the lookback (24), so no floor repeats it, and a day (24 steps)
    is half a period off; the model learns to continue it in one epoch."""
    sine = _sine(rows=500, period=40, freq="h")
    fitted = TitansForecaster(horizon=12, lookback=24, lr=1e-2, batch_size=8, **TINY).fit(sine)
    assert fitted.forecaster_used_ == "model" and "not behind" in fitted.fallback_reason_
    assert fitted.val_metrics_["mse"] < 0.7 * min(fitted.floors_.values())
    assert fitted.evaluate(split="val") == pytest.approx(fitted.val_metrics_)


def test_seasons_come_from_the_step_and_the_autocorrelation_and_fit_in_the_lookback():
    rng = np.random.default_rng(0)
    walk = rng.normal(size=(2000, 2)).cumsum(axis=0)
    noisy_day = _sine(rows=2000, period=24, freq="h", noise=0.3).to_numpy()
    seasons, notes = candidate_seasons(pd.date_range("2020", periods=10, freq="30min"), 96, walk)
    assert list(seasons) == [1, 48] and len(notes) == 1 and "one week (336 steps)" in notes[0]
    seasons, _ = candidate_seasons(pd.date_range("2020", periods=10, freq="D"), 400, walk)
    assert seasons == {1: "the last value", 7: "one week", 365: "one year"}
    seasons, notes = candidate_seasons(pd.RangeIndex(2000), 96, noisy_day)  # undated: the autocorrelation's
    assert list(seasons) == [1, 24] and "autocorrelation peak" in seasons[24] and not notes
    seasons, _ = candidate_seasons(pd.date_range("2020", periods=10, freq="h"), 96, noisy_day)
    assert seasons[24].startswith("one day; the training split's autocorrelation peak")
    assert autocorrelation_peak(walk, 96) is None and autocorrelation_peak(rng.normal(size=(2000, 1)), 96) is None
    assert autocorrelation_peak(noisy_day, 96)[0] == 24  # not one of its multiples
    assert autocorrelation_peak(noisy_day, 20) is None  # the peak must lie within the lookback


def test_the_choice_and_its_reasons():
    floors = {"repeat last": 0.5, "seasonal naive (season 7)": 0.2}
    assert choose(0.1, floors, True, "auto")[0] == "model"
    used, why = choose(0.3, floors, True, "auto")
    assert used == "seasonal naive (season 7)" and "0.3" in why and "0.2" in why
    why = choose(0.688, {"repeat last": 0.8266}, True, "auto")[1]
    assert "validation MSE 0.6880 against 0.8266 for the best floor" in why  # both to 4 significant digits
    few, many = (choose(0.688, {"repeat last": 0.8266}, True, "auto", n)[1] for n in (3, 500))
    assert "on only 3 validation windows: few to decide on" in few and "few to decide on" not in many
    assert choose(0.3, floors, True, "off")[0] == "model"
    assert choose(0.3, floors, False, "auto")[0] == "model"  # a naive variant is a floor itself
    assert choose(float("nan"), floors, True, "auto")[0] == "seasonal naive (season 7)"  # a diverged model
    with pytest.raises(ConfigError, match="fallback='sometimes'"):
        TitansForecaster(fallback="sometimes").fit(_random_walk(rows=300))


def test_cli_prints_the_floors_and_the_choice_and_the_saved_model_keeps_them(tmp_path):
    write_series(tmp_path / "daily.csv", rows=500, columns=3, freq="D")
    model = tmp_path / "model"
    args = ["fit", "--dataset", str(tmp_path / "daily.csv"), "--lookback", "24", "--horizon", "7", "--dim", "8"]
    result = runner.invoke(app, [*args, "--layers", "1", "--epochs", "1", "--out", str(model)])
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())  # as rich wrapped it or not
    assert "FallbackWarning" not in output and output.count("the model is behind the best floor") == 1  # said once
    assert "Validation MSE, the same windows: model" in output and "seasonal naive (season 7)" in output
    assert "Forecaster used: repeat last. Why: the model is behind the best floor" in output
    assert "the scores of repeat last, which forecasts in the model's place" in output  # the table's title
    metrics = json.loads((model / "metrics.json").read_text())
    assert metrics["forecaster_used"] == "repeat last" and "behind" in metrics["fallback_reason"]
    assert set(metrics["floors"]) == {"repeat last", "seasonal naive (season 7)"}
    assert metrics["model_val"]["mse"] > metrics["floors"]["repeat last"] == pytest.approx(metrics["val"]["mse"])
    assert metrics["params"]["fallback"] == "auto"
    later = write_series(tmp_path / "all.csv", rows=510, columns=3, freq="D").iloc[500:]
    later.to_csv(tmp_path / "later.csv", index=False)
    updated = runner.invoke(app, ["update", "-m", str(model), "-i", str(tmp_path / "later.csv"), "--out",
                                  str(tmp_path / "on")])  # fmt: skip
    assert updated.exit_code == 0 and "repeat last forecasts in the model's place: it carries no memory" in " ".join(
        updated.output.split()
    )  # "The model read 10 new rows" alone suggested a memory learning from them

    loaded = TitansForecaster.load(model)
    assert loaded.forecaster_used_ == "repeat last" and loaded.floors_ == metrics["floors"]
    frame = pd.read_csv(tmp_path / "daily.csv", index_col="date", parse_dates=True)
    last = np.repeat(frame.to_numpy()[-1:], 7, axis=0)
    np.testing.assert_allclose(loaded.predict(frame).to_numpy(), last, rtol=1e-5)
    shown = runner.invoke(app, ["predict", "--model", str(model), "--input", str(tmp_path / "daily.csv")])
    assert shown.exit_code == 0 and "Forecaster used: repeat last" in shown.stderr
    shown = runner.invoke(app, ["evaluate", "--model", str(model), "--dataset", str(tmp_path / "daily.csv")])
    assert shown.exit_code == 0 and "Forecaster used: repeat last" in shown.output
    assert "the scores of repeat last" in " ".join(shown.output.split())
    evaluate = ["evaluate", "--model", str(model), "--dataset", str(tmp_path / "daily.csv")]
    online = runner.invoke(app, [*evaluate, "--online"])
    assert "Test, online (repeat last, in the model's place: nothing carried)" in " ".join(online.output.split())

    # a model saved before floors existed: its network forecasts, as it did then
    config = json.loads((model / "config.json").read_text())
    for key in ("forecaster_used", "fallback_reason", "floors", "floor_notes"):
        del config[key]
    del config["params"]["fallback"]
    (model / "config.json").write_text(json.dumps(config))
    old = TitansForecaster.load(model)
    assert old.forecaster_used_ == "model" and old.fallback == "off" and old.floors_ == {}
    assert not np.allclose(old.predict(frame).to_numpy(), last, rtol=1e-5)

    refused = runner.invoke(app, [*args, "--fallback", "sometimes", "--out", str(tmp_path / "other")])
    assert refused.exit_code == 2 and "--fallback sometimes" in refused.stderr


def test_the_benchmark_and_the_experiments_report_the_model_itself(monkeypatch, tmp_path):
    from pathlib import Path

    from titans_ts.forecasting import api
    from titans_ts.forecasting.benchmark import run_benchmark

    given = {}

    def fit_dataset(dataset, **params):
        given.update(params)
        raise KeyboardInterrupt  # stop before any training

    monkeypatch.setattr(api, "fit_dataset", fit_dataset)
    write_series(tmp_path / "mine.csv", rows=600)  # long enough for every run's windows (checked first)
    with pytest.raises(KeyboardInterrupt):
        run_benchmark(str(tmp_path / "mine.csv"), tmp_path / "runs", horizons=[12], models=["lmm"], fallback="auto")
    assert given["fallback"] == "off"
    root = Path(__file__).resolve().parents[2] / "experiments" / "forecasting"
    for script in ("search.py", "online.py"):  # grid.py runs run_benchmark
        assert 'fallback="off"' in (root / script).read_text() or '"fallback": "off"' in (root / script).read_text()
