"""Targets and covariates: covariate columns are read as inputs; only the targets are forecast and scored."""

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from cli.ts import app
from tests.data.helpers import write_series
from titans_ts import TitansForecaster
from titans_ts.errors import ConfigError, DataValidationError, UndatedRowsWarning

TINY = dict(horizon=12, lookback=24, dim=16, layers=1, heads=2, chunk_size=8, epochs=1, progress=False)
TINY |= dict(fallback="off")  # the model itself is tested here, never a floor in its place
runner = CliRunner()


@pytest.fixture(scope="module")
def series(tmp_path_factory):
    frame = write_series(tmp_path_factory.mktemp("cov") / "mine.csv", rows=400, columns=4)
    return frame.set_index(pd.DatetimeIndex(frame.pop("date"), name="date"))


@pytest.fixture(scope="module")
def fitted(series):
    return TitansForecaster(**TINY, target="OT").fit(series)


def test_only_the_target_is_forecast_and_scored(fitted, series):
    assert fitted.columns_ == ["c0", "c1", "c2", "OT"] and fitted.targets_ == ["OT"]
    forecast = fitted.predict()
    assert list(forecast.columns) == ["OT"] and forecast.shape == (12, 1)
    windows = fitted.window_forecasts()
    assert set(windows["column"]) == {"OT"}
    scaled_error = windows["prediction_scaled"] - windows["target_scaled"]
    assert np.isclose(np.mean(scaled_error**2), fitted.evaluate()["mse"], rtol=1e-5)
    # the truth in original units is the OT column of the data
    first = windows[windows["step"] == 1].iloc[0]
    assert first["target"] == pytest.approx(series.loc[pd.Timestamp(first["time"]), "OT"])


def test_covariates_are_inputs(fitted, series):
    history = series.iloc[-100:]
    # a new shape, not a new level or scale (RevIN normalises each channel's window)
    moved = history.assign(c0=history["c0"].to_numpy()[::-1])
    change = np.abs(fitted.predict(history).to_numpy() - fitted.predict(moved).to_numpy()).max()
    assert change > 1e-3


@pytest.mark.parametrize("variant", ["lmm", "attention"])
def test_covariates_inform_a_target_that_comes_first_among_the_columns(series, variant):
    """Variate tokens are mixed causally: a target in the first column read no covariate (its forecast did not
    move when every covariate was replaced); the covariates' tokens now come first, whatever the columns' order."""
    first = series[["OT", "c0", "c1", "c2"]]
    model = TitansForecaster(**TINY, target="OT", variant=variant).fit(first)
    assert model.columns_[0] == "OT" and model.model_config_.token_order() == [1, 2, 3, 0]
    history = first.iloc[-100:]
    moved = history.assign(**{c: history[c].to_numpy()[::-1] for c in ("c0", "c1", "c2")})
    assert np.abs(model.predict(history).to_numpy() - model.predict(moved).to_numpy()).max() > 1e-3


def test_a_model_saved_before_the_targets_came_last_keeps_its_order():
    """Its config has no targets_last: it loads as it was trained, each target reading the columns before it."""
    import torch

    from titans_ts.forecasting.model import ForecastConfig, SimbaForecaster

    saved = dict(lookback=24, horizon=12, channels=3, dim=16, heads=2, layers=1, chunk_size=8, targets=[0])
    assert ForecastConfig(**saved).token_order() is None
    torch.manual_seed(0)
    old = SimbaForecaster(ForecastConfig(**saved)).eval()
    new = SimbaForecaster(ForecastConfig(**saved, targets_last=True)).eval()
    new.load_state_dict(old.state_dict())
    x = torch.randn(2, 24, 3)
    covariates_moved = torch.cat([x[..., :1], torch.randn(2, 24, 2)], -1)
    assert torch.equal(old(x), old(covariates_moved))  # the first column read nothing after it
    assert not torch.allclose(new(x), new(covariates_moved))
    assert new(x).shape == old(x).shape == (2, 12, 1)


@pytest.mark.parametrize("settings", [{"variant": "dlinear"}, {"tokens": "patch", "patch_len": 8}])
def test_a_model_that_reads_each_column_on_its_own_says_its_covariates_are_unread(series, settings):
    from titans_ts.errors import UnreadInputsWarning

    with pytest.warns(UnreadInputsWarning, match=r"reads each column on its own: the covariates \['c0', 'c1', 'c2'\]"):
        TitansForecaster(**TINY, target="OT", **settings).fit(series)


def test_rows_of_known_future_inputs_beside_an_empty_target_are_told_to_be_dropped_not_filled(fitted, series, tmp_path):
    """Next day's prices beside empty sales at the end of a file: the error advised --fill, which made up the
    sales and forecast a day later than asked, said only as values filled (found by a covariates probe)."""
    future = series.iloc[-12:].set_index(series.index[-12:] + pd.Timedelta(hours=12)).assign(OT=np.nan)
    with_future = pd.concat([series, future])
    with pytest.raises(DataValidationError, match=r"The last 12 row\(s\) hold \['c0', 'c1', 'c2'\] but not \['OT'\]"):
        fitted.predict(with_future)
    with_future.rename_axis("date").to_csv(tmp_path / "future.csv")
    fitted.save(tmp_path / "m")
    predict = ["predict", "--model", str(tmp_path / "m"), "--input", str(tmp_path / "future.csv")]
    refused = runner.invoke(app, predict)
    said = " ".join(refused.stderr.split())
    assert refused.exit_code == 2 and "drop those rows rather than fill them" in said, said
    assert "If they are readings that are missing: clean the file, or pass fill=" in said
    filled = runner.invoke(app, [*predict, "--fill", "ffill"])  # the filled rows' warning says it too
    assert filled.exit_code == 0 and "drop those rows rather than fill them" in " ".join(filled.output.split())


def test_naive_forecast_of_the_target_repeats_its_last_value(series):
    naive = TitansForecaster(**{**TINY, "variant": "naive"}, target=["OT", "c1"]).fit(series)
    forecast = naive.predict()
    assert list(forecast.columns) == ["OT", "c1"]
    np.testing.assert_allclose(forecast.to_numpy(), np.tile(series[["OT", "c1"]].iloc[-1].to_numpy(), (12, 1)))


def test_targets_survive_save_and_load(fitted, series, tmp_path):
    loaded = TitansForecaster.load(fitted.save(tmp_path / "m"))
    assert loaded.targets_ == ["OT"]
    pd.testing.assert_frame_equal(loaded.predict(series), fitted.predict(series))
    assert loaded.evaluate(series) == fitted.evaluate()


def test_columns_beyond_the_fitted_ones_are_ignored_missing_ones_refused(fitted, series):
    pd.testing.assert_frame_equal(fitted.predict(series.assign(extra=1.0)), fitted.predict(series))
    with pytest.raises(DataValidationError, match=r"lacks \['c1'\]"):
        fitted.predict(series.drop(columns="c1"))


def test_an_array_of_the_fitted_width_is_read_by_position(fitted, series):
    with pytest.warns(UndatedRowsWarning, match="numbered by step"):  # the array has no dates to give it
        from_array = fitted.predict(series.to_numpy())  # a model fitted on a DataFrame, as scikit-learn reads arrays
    np.testing.assert_array_equal(from_array.to_numpy(), fitted.predict(series).to_numpy())
    assert fitted.evaluate(series.to_numpy()) == fitted.evaluate(series)
    with pytest.raises(DataValidationError, match=r"fitted on 4 column\(s\) \['c0', 'c1', 'c2', 'OT'\]; this array"):
        fitted.predict(series.to_numpy()[:, :3])  # another width: no position to read it by
    before = fitted.predict()
    with pytest.raises(DataValidationError, match="give the new rows with their timestamps"):
        fitted.update(series.to_numpy()[-5:])  # undated rows after dated ones: nothing to check or date
    pd.testing.assert_frame_equal(fitted.predict(), before)  # refused before anything was read


def test_a_series_keeps_its_dates_and_name(series):
    model = TitansForecaster(**TINY).fit(series["OT"])
    assert model.columns_ == ["OT"] and isinstance(model.predict().index, pd.DatetimeIndex)
    pd.testing.assert_frame_equal(model.predict(series["OT"].rename("other")), model.predict(series[["OT"]]))
    before = model.predict()
    with pytest.raises(DataValidationError, match="not after the last row already read"):
        model.update(series["OT"].iloc[-3:])  # dated: checked like a frame's rows
    pd.testing.assert_frame_equal(model.predict(), before)


def test_bad_targets_name_the_columns(series):
    with pytest.raises(DataValidationError, match=r"\['nope'\] are not in the data; its columns are"):
        TitansForecaster(**TINY, target="nope").fit(series)
    with pytest.raises(ConfigError, match="twice"):
        TitansForecaster(**TINY, target=["OT", "OT"]).fit(series)


def test_cli_fit_with_target_and_columns(tmp_path):
    frame = write_series(tmp_path / "wide.csv", rows=400, columns=4)
    frame.insert(2, "site", "north")  # a text column: --columns reads around it, at fit and with the saved model
    frame.to_csv(tmp_path / "wide.csv", index=False)
    small = ["--lookback", "24", "--horizon", "12", "--dim", "16", "--layers", "1", "--epochs", "1"]
    out = tmp_path / "model"
    args = ["fit", "--dataset", str(tmp_path / "wide.csv"), *small, "--target", "OT", "--columns", "c0,c2"]
    result = runner.invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    record = json.loads((out / "metrics.json").read_text())
    assert record["columns"] == ["c0", "c2", "OT"] and record["targets"] == ["OT"]
    printed = runner.invoke(app, ["predict", "--model", str(out), "--input", str(tmp_path / "wide.csv")])
    assert printed.exit_code == 0, printed.output
    assert printed.stdout.splitlines()[0] == "date,OT"
    evaluated = runner.invoke(app, ["evaluate", "--model", str(out), "--dataset", str(tmp_path / "wide.csv")])
    assert evaluated.exit_code == 0, evaluated.output
    everything = runner.invoke(app, [*args[:-2], "--out", str(tmp_path / "all")])  # no --columns: the text too
    assert everything.exit_code == 2 and "non-numeric column(s) 'site'" in everything.stderr
    assert "--columns" in " ".join(everything.stderr.split())
    text_target = runner.invoke(app, [*args[:-4], "--target", "site", "--columns", "c0", "--out", str(tmp_path / "t")])
    said = " ".join(text_target.stderr.split())
    assert text_target.exit_code == 2 and "the target column(s) ['site'] hold text, not numbers" in said, said
    assert "--columns" not in said and not (tmp_path / "t").exists()  # reading fewer columns would not help

    unknown = runner.invoke(app, [*args[:-1], "c0,zz", "--out", str(tmp_path / "bad")])
    assert unknown.exit_code == 2 and "has no column(s) ['zz']" in unknown.stderr
    assert "its columns are ['c0', 'site', 'c1', 'c2', 'OT']" in " ".join(unknown.stderr.split())  # the file's
    assert not (tmp_path / "bad").exists()
    target_on_predict = runner.invoke(
        app, ["predict", "--model", str(out), "--input", str(tmp_path / "wide.csv"), "--target", "OT"]
    )
    assert target_on_predict.exit_code == 2 and "fitted with" in target_on_predict.stderr
