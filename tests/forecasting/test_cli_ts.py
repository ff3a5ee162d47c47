"""`titans-ts fit / predict / evaluate` end to end on a small CSV a user wrote."""

import io
import json
import re

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from cli.ts import app
from tests.data.helpers import write_series

runner = CliRunner()
SMALL = ["--lookback", "24", "--horizon", "12", "--dim", "16", "--layers", "1", "--epochs", "1"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    write_series(folder / "mine.csv", rows=500, columns=3)
    result = runner.invoke(app, ["fit", "--dataset", str(folder / "mine.csv"), *SMALL, "--out", str(folder / "model")])
    assert result.exit_code == 0, result.output
    return folder, result


def test_fit_prints_val_and_test_metrics_and_writes_its_files(trained):
    folder, result = trained
    assert "val" in result.output and "test" in result.output and "MSE" in result.output
    written = sorted(p.name for p in (folder / "model").iterdir())
    assert written == ["config.json", "forecast.png", "metrics.json", "model.safetensors"]
    metrics = json.loads((folder / "model" / "metrics.json").read_text())
    assert metrics["protocol"] == "ratio_70_10_20" and metrics["test"]["windows"] == 89
    assert (folder / "model" / "forecast.png").read_bytes()[:4] == b"\x89PNG"


def test_predict_writes_future_timestamps_and_a_plot(trained):
    folder, _ = trained
    out, plot = folder / "forecast.csv", folder / "forecast_plot.png"
    result = runner.invoke(
        app,
        [
            "predict",
            "--model",
            str(folder / "model"),
            "--input",
            str(folder / "mine.csv"),
            "--out",
            str(out),
            "--plot",
            str(plot),
        ],
    )
    assert result.exit_code == 0, result.output
    forecast = pd.read_csv(out, parse_dates=["date"])
    history = pd.read_csv(folder / "mine.csv", parse_dates=["date"])
    expected = pd.date_range(history["date"].iloc[-1] + pd.Timedelta(hours=1), periods=12, freq="h")
    assert (pd.DatetimeIndex(forecast["date"]) == expected).all()
    assert list(forecast.columns[1:]) == list(history.columns[1:])
    assert plot.read_bytes()[:4] == b"\x89PNG"
    (folder / "stamped.csv").write_text((folder / "mine.csv").read_text().replace("date,", "timestamp,", 1))
    stamped = runner.invoke(app, ["predict", "--model", str(folder / "model"), "--input", str(folder / "stamped.csv")])
    assert stamped.exit_code == 0 and stamped.stdout.startswith("timestamp,"), stamped.output  # the input's name
    from titans_ts.forecasting import TitansForecaster

    model = TitansForecaster.load(folder / "model")
    expected = model.predict(pd.read_csv(folder / "mine.csv", index_col="date", parse_dates=True))
    scales = model.scaler_.scale_
    np.testing.assert_allclose(forecast.iloc[:, 1:].to_numpy(), expected.to_numpy(), rtol=0, atol=scales.max() * 1e-6)
    first = out.read_text().splitlines()[1].split(",")[1:]
    decimals = [len(cell.split(".")[1]) if "." in cell else 0 for cell in first]
    assert max(decimals) <= 7 - np.floor(np.log10(scales.min()))  # float32's precision, not float64 digits
    parquet = folder / "forecast.parquet"  # the format follows the name, as evaluate --out's does
    args = ["predict", "--model", str(folder / "model"), "--input", str(folder / "mine.csv"), "--out"]
    assert runner.invoke(app, [*args, str(parquet)]).exit_code == 0
    pd.testing.assert_frame_equal(pd.read_parquet(parquet), forecast, check_dtype=False)
    refused = runner.invoke(app, [*args, str(folder / "forecast.xlsx")])
    assert refused.exit_code == 2 and "not as .xlsx: choose such a name" in refused.stderr
    assert not (folder / "forecast.xlsx").exists()
    # .csv.gz was written as plain text (unreadable as gzip), .tsv comma-separated, .PARQUET as CSV text
    for name, read in (
        ("forecast.csv.gz", pd.read_csv),
        ("forecast.tsv", lambda path: pd.read_csv(path, sep="\t")),
        ("forecast.tsv.gz", lambda path: pd.read_csv(path, sep="\t")),
        ("forecast.PARQUET", pd.read_parquet),
    ):
        assert runner.invoke(app, [*args, str(folder / name)]).exit_code == 0
        pd.testing.assert_frame_equal(read(folder / name).astype({"date": forecast["date"].dtype}), forecast)
    from titans_ts.data import load_dataset  # what predict writes, the reader reads as such (F.PARQUET was CSV)

    assert load_dataset(str(folder / "forecast.PARQUET")).shape == (12, forecast.shape[1] - 1)


def test_a_file_system_refusal_is_one_line_and_a_failed_plot_leaves_no_forecast(trained, tmp_path, monkeypatch):
    """A name the file system refuses printed a traceback (exit 1); a plot that failed after the forecast was
    written left the forecast behind, as if the command had succeeded."""
    folder, _ = trained
    args = ["predict", "--model", str(folder / "model"), "--input", str(folder / "mine.csv")]
    too_long = runner.invoke(app, [*args, "--out", str(tmp_path / ("x" * 300 + ".csv"))])
    assert too_long.exit_code == 2 and "error:" in too_long.stderr and "Traceback" not in too_long.output
    assert "File name too long" in too_long.stderr and "Check the path" in too_long.stderr

    import titans_ts.forecasting.saved as saved

    def failing_plot(*_, **__):
        raise OSError(28, "No space left on device", "plot.png")

    def failing_table(*_, **__):
        raise OSError(28, "No space left on device", "f.csv")

    for name, failing in (("plot_forecast", failing_plot), ("write_table", failing_table)):  # either order
        with monkeypatch.context() as patched:
            patched.setattr(saved, name, failing)
            failed = runner.invoke(app, [*args, "--out", str(tmp_path / "f.csv"), "--plot", str(tmp_path / "f.png")])
        assert failed.exit_code == 2 and "No space left on device" in failed.stderr
        assert not any(tmp_path.iterdir())  # neither file, nor a temporary one
    longest = tmp_path / ("x" * 251 + ".csv")  # a legal name: its temporary name went over the limit
    assert (
        runner.invoke(app, [*args, "--out", str(longest), "--plot", str(tmp_path / ("y" * 251 + ".png"))]).exit_code
        == 0
    )
    for name in ("f.csv.bz2", "f.zip", "f.parquet.gz"):  # written as plain text before: no reader could open them
        refused = runner.invoke(app, [*args, "--out", str(tmp_path / name)])
        assert refused.exit_code == 2 and "choose such a name" in refused.stderr, name


def test_a_data_column_named_as_the_forecasts_index_keeps_its_name():
    """A file without a time column whose data has a column `step`: its forecast table named both "step" (a
    traceback: cannot insert step, already exists)."""
    from titans_ts.forecasting.forecast_tables import forecast_table

    forecast = pd.DataFrame({"step": [1.0, 2.0], "OT": [3.0, 4.0]}, index=pd.RangeIndex(10, 12, name="step"))
    table = forecast_table(forecast)
    assert list(table.columns) == ["forecast_step", "step", "OT"] and table["forecast_step"].tolist() == [10, 11]


def test_forecast_decimals_follow_each_columns_scale_not_its_size():
    from types import SimpleNamespace

    from titans_ts.forecasting.forecast_tables import computed_decimals

    scaler = SimpleNamespace(scale_=np.array([1.0, 1000.0, 0.01]))
    model = SimpleNamespace(targets_=["a", "big", "a_b"], _target_scaler=lambda: scaler)
    forecast = pd.DataFrame(columns=["a", "big", "a_b", "a_q0.1", "a_b_q0.9"], dtype=float)
    assert computed_decimals(model, forecast) == {"a": 7, "big": 4, "a_b": 9, "a_q0.1": 7, "a_b_q0.9": 9}
    around_a_million = pd.DataFrame({"a": [1000123.4561234567]})
    around_a_million = around_a_million.round(computed_decimals(model, around_a_million))
    assert around_a_million.to_csv(index=False).splitlines()[1] == "1000123.4561235"  # a mean keeps its decimals


def test_predict_to_stdout_is_csv_a_pipe_can_read_however_narrow_the_terminal(trained):
    import io

    folder, _ = trained
    result = runner.invoke(
        app, ["predict", "--model", str(folder / "model"), "--input", str(folder / "mine.csv")], env={"COLUMNS": "40"}
    )
    assert result.exit_code == 0, result.output
    forecast = pd.read_csv(io.StringIO(result.stdout), parse_dates=["date"])  # rows of ~70 characters
    history = pd.read_csv(folder / "mine.csv")
    assert forecast.shape == (12, history.shape[1]) and list(forecast.columns) == list(history.columns)


def test_update_lets_a_saved_model_read_new_rows_and_predict_forecasts_after_them(tmp_path, monkeypatch):
    """`titans-ts update` = load, update(rows), save; `predict` without --input forecasts from the carried memory.
    Rows it refuses (already read) write nothing; --out leaves the model's own folder as it was."""
    later = write_series(tmp_path / "all.csv", rows=540, columns=3)
    later.iloc[:500].to_csv(tmp_path / "mine.csv", index=False)
    later.iloc[500:520].to_csv(tmp_path / "new1.csv", index=False)
    later.iloc[520:].to_csv(tmp_path / "new2.csv", index=False)
    more = later.iloc[-5:].assign(date=later["date"].iloc[-1] + pd.to_timedelta(range(1, 6), unit="h"))
    more.to_csv(tmp_path / "new3.csv", index=False)
    model, moved = tmp_path / "model", tmp_path / "moved"
    fitted = runner.invoke(
        app, ["fit", "-d", str(tmp_path / "mine.csv"), *SMALL, "--fallback", "off", "--out", str(model)]
    )
    assert fitted.exit_code == 0, fitted.output
    saved = {name: (model / name).read_bytes() for name in ("config.json", "model.safetensors")}
    first = runner.invoke(app, ["update", "-m", str(model), "-i", str(tmp_path / "new1.csv"), "--out", str(moved)])
    assert first.exit_code == 0, first.output
    assert f"read 20 new rows; it has now read up to {later['date'].iloc[519]}" in " ".join(first.output.split())
    assert all((model / name).read_bytes() == data for name, data in saved.items())  # --out: the model as it was
    assert "carrying it made its benchmark forecasts worse" in " ".join(first.output.split())  # a window model
    assert "are the fit's" not in first.output  # a folder of the model alone
    second = runner.invoke(app, ["update", "-m", str(moved), "-i", str(tmp_path / "new2.csv")])  # in place
    assert second.exit_code == 0, second.output
    in_run = runner.invoke(app, ["update", "-m", str(model), "-i", str(tmp_path / "new1.csv"), "--out",
                                 str(tmp_path / "run-copy")])  # fmt: skip
    assert in_run.exit_code == 0 and "are the fit's" not in in_run.output
    import shutil

    shutil.copytree(model, tmp_path / "run")  # a run folder (metrics.json, forecast.png) updated in place
    in_place = runner.invoke(app, ["update", "-m", str(tmp_path / "run"), "-i", str(tmp_path / "new1.csv")])
    assert "metrics.json and forecast.png in it are the fit's" in " ".join(in_place.output.split()), in_place.output
    forecast = runner.invoke(app, ["predict", "-m", str(moved)])
    assert forecast.exit_code == 0, forecast.output
    from titans_ts.forecasting import TitansForecaster

    original = TitansForecaster.load(model)
    expected = original.update(later.iloc[500:].set_index("date")).predict()
    got = pd.read_csv(io.StringIO(forecast.stdout), index_col="date", parse_dates=True)
    assert (got.index == expected.index).all() and got.index[0] == later["date"].iloc[-1] + pd.Timedelta(hours=1)
    atol = original.scaler_.scale_.max() * 1e-6  # the CLI writes the digits float32 computes
    np.testing.assert_allclose(got.to_numpy(), expected.to_numpy(), rtol=0, atol=atol)

    before = {name: (moved / name).read_bytes() for name in ("config.json", "model.safetensors")}
    again = runner.invoke(app, ["update", "-m", str(moved), "-i", str(tmp_path / "new2.csv")])  # rows already read
    assert again.exit_code == 2 and "not after the last row already read" in again.stderr
    taken = runner.invoke(app, ["update", "-m", str(model), "-i", str(tmp_path / "new1.csv"), "--out", str(moved)])
    assert taken.exit_code == 2 and "already holds a model: pass --overwrite" in taken.stderr
    assert all((moved / name).read_bytes() == data for name, data in before.items())  # refused: nothing written
    plot = runner.invoke(app, ["predict", "-m", str(moved), "--plot", str(tmp_path / "p.png")])
    assert plot.exit_code == 2 and "--plot draws the forecast after the history it reads" in plot.stderr
    unread = runner.invoke(app, ["predict", "-m", str(moved), "--fill", "ffill", "--no-header"])
    assert unread.exit_code == 2 and "options (--fill ffill, --no-header) say how to read an input" in unread.stderr
    run_folder = runner.invoke(app, ["update", "-m", str(moved), "-i", str(tmp_path / "new1.csv"), "--out", str(model),
                                     "--overwrite"])  # fmt: skip
    assert run_folder.exit_code == 2 and "holds other files (forecast.png, metrics.json)" in run_folder.stderr
    named = runner.invoke(app, ["update", "-m", str(moved), "-i", "ETTh1"])
    assert named.exit_code == 2 and "No file at ETTh1: give the file of new rows" in named.stderr
    assert all((moved / name).read_bytes() == data for name, data in before.items())  # still nothing written
    later.iloc[:0].to_csv(tmp_path / "none.csv", index=False)  # a poll that found no rows
    polled = runner.invoke(app, ["update", "-m", str(moved), "-i", str(tmp_path / "none.csv")])
    assert polled.exit_code == 0 and "none.csv: the model is unchanged" in " ".join(polled.output.split())
    assert all((moved / name).read_bytes() == data for name, data in before.items())
    monkeypatch.chdir(moved)  # the model's own folder as "."
    here = runner.invoke(app, ["update", "-m", ".", "-i", str(tmp_path / "new3.csv")])
    assert here.exit_code == 0, here.output
    assert TitansForecaster.load(moved).last_index_ == later["date"].iloc[-1] + pd.Timedelta(hours=5)


def test_an_undated_file_given_to_update_twice_is_said(tmp_path):
    """A file without timestamps has steps counted from 0, which cannot be checked to follow the rows read: the
    same new-rows file given twice was read twice without a word."""
    values = write_series(tmp_path / "all.csv", rows=320, columns=3).drop(columns="date")
    values.iloc[:300].to_csv(tmp_path / "mine.csv", index=False)
    values.iloc[300:].to_csv(tmp_path / "new.csv", index=False)
    model = str(tmp_path / "model")
    fitted = runner.invoke(app, ["fit", "-d", str(tmp_path / "mine.csv"), *SMALL, "--fallback", "off", "--out", model])
    assert fitted.exit_code == 0, fitted.output
    first = runner.invoke(app, ["update", "-m", model, "-i", str(tmp_path / "new.csv")])
    assert first.exit_code == 0 and "RepeatedRows" not in first.output and "given twice" not in first.output
    again = runner.invoke(app, ["update", "-m", model, "-i", str(tmp_path / "new.csv")])
    said = " ".join(again.output.split())
    assert again.exit_code == 0 and "the 20 new rows equal the last 20 rows the model has read: given twice?" in said


def test_a_model_numbered_by_its_own_column_reads_later_files_by_it(tmp_path):
    """fit --date-column t (whole numbers): update and predict without --date-column counted the new file's rows
    on from the last one read, unchecked (read twice: "up to step 15985" for a file ending at 14985)."""
    values = write_series(tmp_path / "all.csv", rows=330, columns=2).drop(columns="date")
    values.insert(0, "t", range(10_000, 10_000 + 5 * 330, 5))
    values.iloc[:300].to_csv(tmp_path / "mine.csv", index=False)
    values.iloc[300:].to_csv(tmp_path / "new.csv", index=False)
    model = str(tmp_path / "model")
    fit = ["fit", "-d", str(tmp_path / "mine.csv"), "--date-column", "t", *SMALL, "--fallback", "off", "--out", model]
    assert runner.invoke(app, fit).exit_code == 0
    first = runner.invoke(app, ["update", "-m", model, "-i", str(tmp_path / "new.csv")])
    assert first.exit_code == 0 and "up to t 11645" in " ".join(first.output.split()), first.output
    again = runner.invoke(app, ["update", "-m", model, "-i", str(tmp_path / "new.csv")])  # the same rows: refused
    assert again.exit_code == 2 and "give only the rows after the last one already read (11645)" in again.stderr
    forecast = runner.invoke(app, ["predict", "-m", model, "-i", str(tmp_path / "mine.csv")])
    assert forecast.exit_code == 0 and forecast.stdout.splitlines()[1].startswith("11500,"), forecast.stdout[:200]
    values.drop(columns="t").to_csv(tmp_path / "undated.csv", index=False)
    undated = runner.invoke(app, ["predict", "-m", model, "-i", str(tmp_path / "undated.csv")])
    said = " ".join(undated.stderr.split())
    assert undated.exit_code == 2 and "The model numbered its rows by the column 't'" in said, said


def test_evaluate_a_saved_model(trained):
    folder, _ = trained
    result = runner.invoke(app, ["evaluate", "--model", str(folder / "model"), "--dataset", str(folder / "mine.csv")])
    assert result.exit_code == 0, result.output
    assert "test" in result.output
    online = runner.invoke(
        app, ["evaluate", "--model", str(folder / "model"), "--dataset", str(folder / "mine.csv"), "--online"]
    )
    used = json.loads((folder / "model" / "metrics.json").read_text())["forecaster_used"]
    how = "memory carried forward" if used == "model" else f"{used}, in the model's place: nothing carried"
    assert online.exit_code == 0 and f"Test, online ({how}): MSE" in " ".join(online.output.split())


def test_evaluate_writes_every_window_and_its_mse_can_be_recomputed(trained):
    folder, _ = trained
    out = folder / "windows.csv"
    args = ["evaluate", "--model", str(folder / "model"), "--dataset", str(folder / "mine.csv"), "--out", str(out)]
    result = runner.invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "by column" in result.output and "by horizon step" in result.output
    table = pd.read_csv(out)
    assert list(table.columns) == [
        "window", "origin", "time", "step", "column", "prediction", "target", "prediction_scaled", "target_scaled"
    ]  # fmt: skip
    assert len(table) == 89 * 12 * 3  # one row per (window, step, column)
    written = pd.read_csv(out, dtype=str)  # float32 forecasts to the digits computed, not 17
    assert written["prediction_scaled"].str.split(".").str[1].str.len().max() <= 7
    reported = json.loads((folder / "model" / "metrics.json").read_text())["test"]["mse"]
    recomputed = ((table["prediction_scaled"] - table["target_scaled"]) ** 2).mean()
    assert recomputed == pytest.approx(reported, rel=1e-5)
    as_parquet = runner.invoke(app, [*args[:-1], str(folder / "windows.parquet")])
    assert as_parquet.exit_code == 0, as_parquet.output
    assert pd.read_parquet(folder / "windows.parquet")["prediction"].to_numpy() == pytest.approx(
        table["prediction"].to_numpy(), rel=1e-6
    )
    again = runner.invoke(app, args)
    assert again.exit_code == 2 and "windows.csv already exists: pass --overwrite" in " ".join(again.stderr.split())
    assert runner.invoke(app, [*args, "--overwrite"]).exit_code == 0 and pd.read_csv(out).equals(table)
    bad = runner.invoke(app, [*args[:-1], str(folder / "windows.json")])
    assert bad.exit_code == 2 and "not as .json: choose such a name" in " ".join(bad.stderr.split())
    plotted = runner.invoke(app, [*args[:5], "--plot", str(folder / "eval.png"), "--plot-columns", "c0,OT"])
    assert plotted.exit_code == 0, plotted.output
    assert (folder / "eval.png").read_bytes()[:4] == b"\x89PNG"
    unknown = runner.invoke(app, [*args[:5], "--plot", str(folder / "x.png"), "--plot-columns", "nope"])
    assert unknown.exit_code == 2 and "no column(s) ['nope']" in unknown.stderr and not (folder / "x.png").exists()
    with_out = [*args[:-1], str(folder / "w2.csv"), "--plot", str(folder / "x.png"), "--plot-columns", "nope"]
    assert runner.invoke(app, with_out).exit_code == 2 and not (folder / "w2.csv").exists()  # checked first


def test_bad_inputs_exit_2_with_one_line(trained, tmp_path):
    folder, _ = trained
    cases = [
        (["fit", "--dataset", "ETTh9", *SMALL], "Unknown dataset 'ETTh9'"),
        (["fit", "--dataset", str(folder / "mine.csv"), *SMALL, "--variant", "mamba"], "--variant mamba"),
        (
            ["predict", "--model", str(tmp_path), "--input", str(folder / "mine.csv")],
            "not a saved forecaster",
        ),
        (["evaluate", "--model", str(folder / "model"), "--dataset", "ETTh1"], "has no column(s) ['c0', 'c1']"),
    ]
    write_series(tmp_path / "other.csv", rows=100, columns=2)
    write_series(tmp_path / "short.csv", rows=60, columns=3)
    short = ["evaluate", "--model", str(folder / "model"), "--dataset", str(tmp_path / "short.csv")]
    # the split's own advice (shorten --lookback, another --split) is not evaluate's to take
    cases.append((short, "A saved model is scored under the split, lookback and horizon it was fitted with"))
    cases.append(
        (
            ["predict", "--model", str(folder / "model"), "--input", str(tmp_path / "other.csv")],
            "has no column(s) ['c1'] (of the columns to read, ['c0', 'c1', 'OT']); its columns are ['c0', 'OT']. "
            "The model was fitted on the columns ['c0', 'c1', 'OT']: give data with them.",
        )
    )
    (tmp_path / "folder").mkdir()
    (tmp_path / "a_file").write_text("kept")
    mine = folder / "mine.csv"
    original = mine.read_text()
    model = ["--model", str(folder / "model")]
    cases += [  # outputs that would replace the input, write into a folder's place, or make a folder of a file
        (["predict", *model, "--input", str(mine), "--out", str(mine)], "the input file itself"),
        (["predict", *model, "--input", str(mine), "--out", str(tmp_path / "folder")], "is a folder"),
        (["evaluate", *model, "--dataset", str(mine), "--out", str(mine)], "the input file itself"),
        (["predict", *model, "--input", str(mine), "--plot", str(tmp_path / "plot.txt")], "name the file .png"),
        (["fit", "--dataset", str(mine), *SMALL, "--out", str(tmp_path / "a_file"), "--overwrite"], "is a file"),
    ]
    unknown = ["fit", "--dataset", str(mine), *SMALL, "--variant", "lstm", "--tokens", "words"]
    cases.append((unknown, "--variant lstm (one of lmm, mac, mag, mal, attention, dlinear"))
    # the settings check is shared with the Python API; the CLI names the options the user typed
    both = ["fit", "--dataset", str(mine), *SMALL, "--resume", "--overwrite", "--out", str(tmp_path / "model")]
    cases.append((both, "--resume continues the run in --out and --overwrite starts it again: give one of them"))
    blend = ["fit", "--dataset", str(mine), *SMALL, "--online-blend", "0.5"]
    cases.append((blend, "--online-blend 0.5 is a --mode history setting (window mode would ignore it: add --mode"))
    ignored = [  # options the chosen model would ignore: accepted with exit 0 and no effect before
        (["--season", "12"], "--season 12 would be ignored (only seasonal naive repeats a season; the floors find"),
        (["--patch-len", "4"], "--patch-len 4 would be ignored (only patch tokens are cut into patches): add --tokens"),
        (["--calibrate", "conformal"], "--calibrate conformal would be ignored (it calibrates quantile levels): add"),
        (["--mode", "history", "--patch-len", "8", "--batch-size", "7"], "--batch-size 7 would be ignored (--mode"),
        # in history mode no variant repeats a season and no levels are made: nothing to add (it said add
        # --variant seasonal_naive, or --quantiles, which history mode refuses)
        (["--mode", "history", "--patch-len", "8", "--season", "24"], "the floors find their own): leave it out"),
        (["--mode", "history", "--patch-len", "8", "--calibrate", "none"], "quantile levels): leave it out"),
        (
            ["--mode", "history", "--patch-len", "8", "--variant", "mlp", "--online-blend", "0.5"],
            "--online-blend 0.5 would be ignored (the mlp ablation carries no memory",
        ),
    ]
    cases += [(["fit", "--dataset", str(mine), *SMALL, *option], message) for option, message in ignored]
    for args, message in cases:
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.stderr and "Traceback" not in result.output, (args, result.stderr)
    assert "Fitting" not in result.stdout  # refused before the run is announced
    assert not (tmp_path / "model").exists()
    assert mine.read_text() == original and (tmp_path / "a_file").read_text() == "kept"
    assert not any((tmp_path / "folder").iterdir())


def test_the_general_default_is_the_estimators_and_every_unset_cli_option_takes_the_datasets():
    import inspect

    from cli.ts import fit
    from titans_ts import TitansForecaster
    from titans_ts.forecasting.defaults import GENERAL, HISTORY_BY_DATASET, defaults_for

    estimator = TitansForecaster().get_params()
    assert {key: estimator[key] for key in GENERAL} == GENERAL
    searched = {  # what --mode history on some benchmark dataset sets otherwise than the estimator's default
        key
        for dataset in HISTORY_BY_DATASET
        for key, value in defaults_for(dataset, "history").items()
        if value != estimator[key]
    }
    for name, parameter in inspect.signature(fit).parameters.items():
        if name in GENERAL or name in searched:
            assert parameter.default.default is None, f"--{name} would hide the dataset's default"
        elif name in estimator:
            assert parameter.default.default == estimator[name], name


def test_defaults_are_looked_up_per_dataset(monkeypatch):
    """Not the numbers (those come from the search): the lookup, by family, with the caller winning."""
    from titans_ts.forecasting import defaults

    marks = {"ETTh": {"dim": 11}, "ETTm": {"dim": 12, "lr": 0.5}, "weather": {"dim": 13}}
    monkeypatch.setattr(defaults, "BY_FAMILY", marks)
    assert defaults.defaults_for("ETTh2")["dim"] == 11
    assert defaults.defaults_for("ettm1")["dim"] == 12 and defaults.defaults_for("ETTm2")["lr"] == 0.5
    assert defaults.defaults_for("weather")["dim"] == 13
    assert defaults.defaults_for("/somewhere/mine.csv") == defaults.GENERAL
    assert defaults.defaults_for(None) == defaults.GENERAL
    assert set(defaults.FAMILY_OF.values()) == set(marks)


def test_history_mode_on_a_searched_dataset_takes_the_searchs_choice_unless_given(monkeypatch):
    """Not the numbers (test_experiment_claims checks them against the search): the lookup and its order."""
    from titans_ts.forecasting import defaults, settings

    monkeypatch.setattr(defaults, "HISTORY_BASE", {"dim": 40, "epochs": 7})
    monkeypatch.setattr(defaults, "HISTORY_BY_DATASET", {"ETTm2": {"lookback": 48, "error_tokens": True}})
    window = defaults.defaults_for("ETTm2")
    assert defaults.defaults_for("ettm2", "history") == window | {
        "dim": 40,
        "epochs": 7,
        "lookback": 48,
        "error_tokens": True,
    }
    assert defaults.defaults_for("ETTm1", "history") == defaults.defaults_for("ETTm1")  # no choice: the family's
    assert defaults.defaults_for("/somewhere/mine.csv", "history") == defaults.GENERAL
    resolved = settings.resolve_fit("ETTm2", mode="history", epochs=3)
    assert resolved.params["lookback"] == 48 and resolved.params["error_tokens"] and resolved.params["dim"] == 40
    assert resolved.params["epochs"] == 3  # given wins
    assert resolved.source == "the long-memory search's choice for ETTm2"
    assert resolved.chosen["lookback"] == 48 and resolved.chosen["epochs"] == 3
    assert "batch_size" not in resolved.chosen and "tokens" not in resolved.chosen  # neither read in history mode
    pretrained = settings.resolve_fit("ETTm2", mode="history", local_model="variate", local_pretrain=True)
    assert "batch_size" in pretrained.chosen
    windowed = settings.resolve_fit("ETTm2")
    assert windowed.params["lookback"] == 96 and not windowed.params["error_tokens"] and windowed.params["dim"] != 40
    assert settings.resolve_fit("ETTm2", mode="history", lookback=720, error_tokens=False).params["lookback"] == 720
    _stop_at_the_estimator(monkeypatch)
    result = runner.invoke(app, ["fit", "--dataset", "ETTm2", "--mode", "history"], env={"COLUMNS": "200"})
    assert isinstance(result.exception, _Stop), result.output
    seen = result.exception.args[0]
    assert seen["lookback"] == 48 and seen["error_tokens"] and seen["mode"] == "history"
    assert "long-memory search's choice for ETTm2" in result.output and "lookback 48" in result.output
    assert "local_model=rlinear, error_tokens=True" in result.output and " tokens=" not in result.output
    shown = runner.invoke(app, ["defaults"], env={"COLUMNS": "200"})
    assert shown.exit_code == 0 and "With --mode history" in shown.output and "48" in shown.output
    local = next(line for line in shown.output.splitlines() if "local_model" in line)
    assert local.split()[3] == "rlinear"  # your data's history-mode local model, beside each dataset's choice


class _Stop(Exception):
    pass


def _stop_at_the_estimator(monkeypatch):
    """api.TitansForecaster replaced by one that records its parameters and stops before any data is used."""
    from titans_ts.forecasting import api

    def fake_estimator(**params):
        raise _Stop(params)

    monkeypatch.setattr(api, "TitansForecaster", fake_estimator)


def test_fit_uses_the_datasets_defaults_unless_given(monkeypatch, tmp_path):
    from titans_ts.forecasting import defaults

    monkeypatch.setattr(defaults, "BY_FAMILY", {"ETTh": {}, "ETTm": {"dim": 12, "layers": 3}, "weather": {}})
    _stop_at_the_estimator(monkeypatch)
    result = runner.invoke(app, ["fit", "--dataset", "ETTm1", "--layers", "1"], env={"COLUMNS": "200"})
    assert isinstance(result.exception, _Stop), result.output
    seen = result.exception.args[0]
    assert seen["dim"] == 12 and seen["layers"] == 1 and seen["lr"] == defaults.GENERAL["lr"]
    assert "ETTm defaults" in result.output and "dim=12, layers=1" in result.output


def test_fit_dataset_fills_in_the_datasets_defaults(monkeypatch, tmp_path):
    from titans_ts.forecasting import api, defaults

    monkeypatch.setattr(defaults, "BY_FAMILY", {"ETTh": {"dim": 44}, "ETTm": {}, "weather": {}})
    _stop_at_the_estimator(monkeypatch)
    with pytest.raises(_Stop) as stopped:
        api.fit_dataset("ETTh1", horizon=96, dropout=0.3)
    params = stopped.value.args[0]
    assert params["dim"] == 44 and params["dropout"] == 0.3 and params["protocol"] == "ett_hourly"
    assert set(params) == set(defaults.ESTIMATOR)  # every setting resolved, none left to the estimator


def test_settings_are_resolved_once_and_checked_before_any_data_is_read(monkeypatch, tmp_path):
    from titans_ts.errors import ConfigError
    from titans_ts.forecasting import settings
    from titans_ts.forecasting.defaults import ESTIMATOR, GENERAL

    resolved = settings.resolve_fit(str(tmp_path / "nowhere.csv"), dim=None, seed=3)  # None: not given
    assert resolved.params == {**ESTIMATOR, "seed": 3} and resolved.chosen == GENERAL
    assert resolved.source == "the general defaults" and str(resolved.out) == "runs/nowhere-lmm-h96-s3"
    etth1 = settings.resolve_fit("ETTh1", horizon=192)
    assert etth1.family == "ETTh" and etth1.params["protocol"] == "ett_hourly" and etth1.params["layers"] == 1
    for bad, message in (
        ({"horizon": 0}, "horizon=0 (a positive integer)"),
        ({"chunk_size": -1, "lr": 0}, "chunk_size=-1"),
        ({"device": "tpu"}, "device='tpu'"),
        ({"dimm": 4}, "unknown setting(s) ['dimm']"),
        ({"protocol": "ett_hourly"}, "unknown setting(s) ['protocol']"),
        ({"split": (0.6, 0.2, 0.2)}, "registered benchmark"),
    ):
        with pytest.raises(ConfigError, match=re.escape(message)):
            settings.resolve_fit("ETTh1", **bad)
    calls = []
    monkeypatch.setattr("titans_ts.training.resolve_device", lambda device: calls.append(device) or "cpu")
    settings.resolve_fit("ETTh1")
    assert calls == ["auto"]


def test_fit_replaces_a_saved_model_only_with_overwrite_and_says_so(tmp_path, monkeypatch):
    write_series(tmp_path / "mine.csv", rows=300, columns=2)
    args = ["fit", "--dataset", str(tmp_path / "mine.csv"), *SMALL, "--out", str(tmp_path / "model")]
    first = runner.invoke(app, args, env={"COLUMNS": "200"})
    assert first.exit_code == 0 and "Replaced" not in first.output, first.output
    saved = (tmp_path / "model" / "model.safetensors").read_bytes()
    for refused in (args, [*args, "--no-overwrite"]):
        result = runner.invoke(app, refused)
        assert result.exit_code == 2 and "pass --overwrite" in result.stderr, result.output
    assert (tmp_path / "model" / "model.safetensors").read_bytes() == saved

    def files():
        return {p.name: p.read_bytes() for p in (tmp_path / "model").iterdir() if p.is_file()}

    before = files()
    with monkeypatch.context() as patched:  # a run that fails at its last step replaces nothing
        patched.setattr("titans_ts.forecasting.api.plot_forecast", lambda *a, **k: 1 / 0)
        failed = runner.invoke(app, [*args, "--overwrite", "--seed", "1"])
    assert isinstance(failed.exception, ZeroDivisionError)
    assert files() == before  # (its checkpoints stay, for --resume)
    again = runner.invoke(app, [*args, "--overwrite", "--seed", "1"], env={"COLUMNS": "200"})
    assert again.exit_code == 0, again.output
    assert f"Replaced the model saved earlier in {tmp_path / 'model'}/" in again.output
    assert (tmp_path / "model" / "model.safetensors").read_bytes() != saved
    assert sorted(files()) == ["config.json", "forecast.png", "metrics.json", "model.safetensors"]
    assert not (tmp_path / "model" / "checkpoints").exists()


def test_help_shows_the_option_groups_as_panels():
    result = runner.invoke(app, ["fit", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for panel in ("Data", "Model", "Training", "Run folder", "Devices"):
        assert f"─ {panel} ─" in result.output, panel
    assert "--overwrite" in result.output and "--no-overwrite" in result.output
    assert "[default: all]" in result.output  # not swallowed as rich markup
    for command in ("splits", "predict", "evaluate"):
        shown = runner.invoke(app, [command, "--help"], env={"COLUMNS": "200"}).output
        assert "─ Data ─" in shown and "--no-header" in shown and "--sep" in shown, command


def test_predict_on_stdout_is_the_same_frame_as_its_out_file(tmp_path):
    """Nine columns: a wide table that a terminal would wrap; piped, it reads back as the --out file does."""
    write_series(tmp_path / "wide.csv", rows=300, columns=9)
    model = str(tmp_path / "model")
    fitted = runner.invoke(app, ["fit", "--dataset", str(tmp_path / "wide.csv"), *SMALL, "--out", model])
    assert fitted.exit_code == 0, fitted.output
    predict = ["predict", "--model", model, "--input", str(tmp_path / "wide.csv")]
    piped = runner.invoke(app, predict, env={"COLUMNS": "40"})
    written = runner.invoke(app, [*predict, "--out", str(tmp_path / "forecast.csv")])
    assert piped.exit_code == 0 and written.exit_code == 0, (piped.output, written.output)
    from_pipe = pd.read_csv(io.StringIO(piped.stdout))
    from_file = pd.read_csv(tmp_path / "forecast.csv")
    assert from_pipe.shape == (12, 10)
    pd.testing.assert_frame_equal(from_pipe, from_file)


def test_a_budget_stop_is_one_printed_line_and_in_metrics(tmp_path):
    import json

    write_series(tmp_path / "mine.csv", rows=300, columns=3)
    out = tmp_path / "model"
    args = ["fit", "--dataset", str(tmp_path / "mine.csv"), *SMALL[:-1], "30", "--max-minutes", "0.0001"]
    result = runner.invoke(app, [*args, "--out", str(out)], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "stopped at its time budget" in result.output
    history = json.loads((out / "metrics.json").read_text())["history"]
    assert history["stop_reason"] == "time_budget" and history["epochs_run"] < 30


def test_a_model_fitted_on_a_long_table_reads_and_writes_long_tables(tmp_path):
    """predict and evaluate read the file as the fit did, without the long options again; the forecast is a
    row per (id, time) with the value column, as the input was."""
    series = write_series(tmp_path / "wide.csv", rows=300, columns=2).melt("date", var_name="sensor", value_name="y")
    series.rename(columns={"date": "ts"}).to_csv(tmp_path / "long.csv", index=False)
    long = ["--id-col", "sensor", "--time-col", "ts", "--target", "y"]
    model = str(tmp_path / "model")
    fitted = runner.invoke(app, ["fit", "--dataset", str(tmp_path / "long.csv"), *long, *SMALL, "--out", model])
    assert fitted.exit_code == 0, fitted.output
    predicted = runner.invoke(app, ["predict", "--model", model, "--input", str(tmp_path / "long.csv")])
    assert predicted.exit_code == 0, predicted.output
    forecast = pd.read_csv(io.StringIO(predicted.stdout), parse_dates=["ts"])
    assert list(forecast.columns) == ["sensor", "ts", "y"] and len(forecast) == 12 * 2
    wide = runner.invoke(app, ["predict", "--model", model, "--input", str(tmp_path / "long.csv"), *long])
    assert wide.stdout == predicted.stdout  # the options given again: the same
    ids = sorted(series["sensor"].unique())
    assert sorted(forecast["sensor"].unique()) == ids and forecast["ts"].min() > series["date"].max()
    evaluated = runner.invoke(app, ["evaluate", "--model", model, "--dataset", str(tmp_path / "long.csv")])
    assert evaluated.exit_code == 0 and "test" in evaluated.stdout, evaluated.output
    pivoted = series.pivot(index="date", columns="sensor", values="y").rename_axis(columns=None)
    pivoted.to_csv(tmp_path / "pivoted.csv")  # the same series, a column each: read wide, written wide
    from_wide = runner.invoke(app, ["predict", "--model", model, "--input", str(tmp_path / "pivoted.csv")])
    assert from_wide.exit_code == 0, from_wide.output
    wide_forecast = pd.read_csv(io.StringIO(from_wide.stdout), parse_dates=["date"])
    assert list(wide_forecast.columns) == ["date", *ids] and len(wide_forecast) == 12
    np.testing.assert_allclose(wide_forecast[ids[0]], forecast.loc[forecast["sensor"] == ids[0], "y"], atol=1e-4)
    pivoted.rename(columns={ids[0]: "other"}).to_csv(tmp_path / "neither.csv")
    neither = runner.invoke(app, ["predict", "--model", model, "--input", str(tmp_path / "neither.csv")])
    assert neither.exit_code != 0 and "for the long format" in neither.output
    assert "Nor is it a wide table with the columns the model was fitted on" in neither.output
    series[series["sensor"] != ids[0]].rename(columns={"date": "ts"}).to_csv(tmp_path / "fewer.csv", index=False)
    fewer = runner.invoke(app, ["predict", "--model", model, "--input", str(tmp_path / "fewer.csv")])
    said = " ".join(fewer.output.split())  # a long table lacking a series: said of series, not of columns
    assert fewer.exit_code == 2 and f"has no series ['{ids[0]}']" in said and "fitted on the series" in said, said
    more = pd.concat([series, series[series["sensor"] == ids[0]].assign(sensor="new shop")])
    more.rename(columns={"date": "ts"}).to_csv(tmp_path / "more.csv", index=False)
    with_new = runner.invoke(app, ["predict", "--model", model, "--input", str(tmp_path / "more.csv")])
    said = " ".join(with_new.output.split())  # a series the model was not fitted on: said, not dropped unsaid
    assert with_new.exit_code == 0 and "1 series the model was not fitted on are not read, ['new shop']" in said, said
    assert with_new.stdout == predicted.stdout  # the model's own series, forecast as before


def test_a_long_forecast_keeps_each_level_beside_its_value():
    from titans_ts.forecasting.forecast_tables import forecast_table

    index = pd.date_range("2020-01-01", periods=2, freq="h", name="ts")
    forecast = pd.DataFrame(
        {"a": [1.0, 2.0], "a_q": [0.0, 0.0], "a_q0.1": [0.5, 1.5], "a_q0.9": [1.5, 2.5], "b": [3.0, 4.0]}, index
    )  # "a_q" is a series of its own (its name only starts like a level's)
    forecast.attrs["long_format"] = ["id", "ts", "y"]
    table = forecast_table(forecast)
    assert list(table.columns) == ["id", "ts", "y", "y_q0.1", "y_q0.9"]
    assert table["id"].tolist() == ["a", "a", "a_q", "a_q", "b", "b"]
    assert table.loc[table["id"] == "a", "y_q0.9"].tolist() == [1.5, 2.5]
    assert table.loc[table["id"] == "b", "y_q0.1"].isna().all()


def test_a_reset_mix_that_every_candidate_ties_on_is_not_called_chosen():
    from cli.ts_tables import reset_mix_note

    tied = {"online_reset_mix": {"chosen": 0.0, "val_mse": {"0.0": 0.6226, "0.2": 0.6226}}}
    assert "every candidate scored the same" in reset_mix_note(tied) and "chosen on" not in reset_mix_note(tied)
    ranked = {"online_reset_mix": {"chosen": 0.2, "val_mse": {"0.0": 0.7, "0.2": 0.6}}}
    assert reset_mix_note(ranked) == "Online reset mix 0.2, chosen on online validation MSE (0.0 0.7000, 0.2 0.6000)."


def test_a_fit_that_cannot_write_its_results_keeps_its_checkpoints_and_says_how_to_go_on(tmp_path, monkeypatch):
    """A full disk after training said only the path's error; the checkpoints stay (the run finished), and
    --resume writes the results from them."""
    from titans_ts.forecasting.estimator import TitansForecaster

    write_series(tmp_path / "mine.csv", rows=300, columns=2)
    fit = ["fit", "--dataset", str(tmp_path / "mine.csv"), *SMALL, "--out", str(tmp_path / "model")]
    save = TitansForecaster.save

    def full_disk(self, path):
        raise OSError(28, "No space left on device", str(path))

    with monkeypatch.context() as patched:
        patched.setattr(TitansForecaster, "save", full_disk)
        failed = runner.invoke(app, fit)
        naive = runner.invoke(app, [*fit[:-1], str(tmp_path / "naive"), "--variant", "naive"])
    said = " ".join(failed.stderr.split())
    # a floor keeps no checkpoints: no --resume to offer (it named a checkpoint folder that was not there)
    assert naive.exit_code == 2 and "nothing was kept: once the path is fixed, run the same command again" in " ".join(
        naive.stderr.split()
    )
    assert failed.exit_code == 2 and "No space left on device while writing the results" in said, failed.output
    assert "checkpoints are kept in" in said and "--resume" in said
    assert (tmp_path / "model" / "checkpoints" / "last.ckpt").exists()
    assert not (tmp_path / "model" / "metrics.json").exists()
    assert TitansForecaster.save is save
    resumed = runner.invoke(app, [*fit, "--resume"])
    assert resumed.exit_code == 0, resumed.output
    assert (tmp_path / "model" / "metrics.json").exists() and not (tmp_path / "model" / "checkpoints").exists()
