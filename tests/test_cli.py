import json

import pandas as pd
from typer.testing import CliRunner

from cli.dna import app as dna_app
from cli.ts import app as ts_app
from tests.data.helpers import write_series

runner = CliRunner()


def test_help_teaches_the_commands():
    result = runner.invoke(ts_app, ["--help"])
    assert result.exit_code == 0
    for command in ("datasets", "splits", "fit", "predict", "evaluate"):
        assert command in result.output
    assert runner.invoke(dna_app, ["--help"]).exit_code == 0


def test_datasets_lists_bundled_and_supplied():
    result = runner.invoke(ts_app, ["datasets"])
    assert result.exit_code == 0, result.output
    assert "ETTh1" in result.output and "bundled" in result.output and "not here" in result.output


def test_splits_prints_the_protocol_windows():
    result = runner.invoke(ts_app, ["splits", "ETTh1"])
    assert result.exit_code == 0, result.output
    assert "8449" in result.output and "2785" in result.output


def test_splits_on_a_users_csv(tmp_path, monkeypatch):
    """Also a file named like a benchmark's (weather.csv): given by path it is the user's, not a corrupt copy; and
    by its bare name in the current folder (ETTh1.csv), where it was read as the file but split as ETTh1."""
    for name in ("mine.csv", "weather.csv"):
        write_series(tmp_path / name, rows=500)
        result = runner.invoke(ts_app, ["splits", str(tmp_path / name), "--lookback", "24", "--horizon", "12"])
        assert result.exit_code == 0, result.output
        assert "ratio_70_10_20" in result.output
    monkeypatch.chdir(tmp_path)
    write_series(tmp_path / "ETTh1.csv", rows=500)
    bare = runner.invoke(
        ts_app, ["splits", "ETTh1.csv", "--lookback", "24", "--horizon", "12", "--split", "0.6,0.2,0.2"]
    )
    assert bare.exit_code == 0 and "ratio_60_20_20" in bare.output, bare.output
    from titans_ts.forecasting.settings import resolve_fit

    assert resolve_fit("ETTh1.csv").params == resolve_fit("mine.csv").params  # the general defaults, not ETTh's
    checked = runner.invoke(ts_app, ["splits", str(tmp_path / "weather.csv"), "--verify"])
    assert checked.exit_code == 2 and "does not match the registered weather file" in checked.stderr


def test_a_users_split_and_the_benchmarks_keep_theirs(tmp_path):
    write_series(tmp_path / "mine.csv", rows=1000)
    args = ["splits", str(tmp_path / "mine.csv"), "--lookback", "24", "--horizon", "12", "--split", "0.6,0.2,0.2"]
    result = runner.invoke(ts_app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0 and "ratio_60_20_20" in result.output, result.output
    refused = runner.invoke(ts_app, ["splits", "ETTh1", "--split", "0.6,0.1,0.3"])
    assert refused.exit_code == 2 and "registered benchmark" in refused.stderr
    bad = runner.invoke(ts_app, [*args[:-1], "0.6,0.4"])
    assert bad.exit_code == 2 and "three comma-separated fractions" in bad.stderr

    # a model fitted on a user's split is evaluated on that split, not the default one
    out = str(tmp_path / "model")
    small = ["--lookback", "24", "--horizon", "12", "--dim", "16", "--layers", "1", "--epochs", "1", "--out", out]
    fitted = runner.invoke(ts_app, ["fit", "--dataset", str(tmp_path / "mine.csv"), *small, "--split", "0.6,0.1,0.3"])
    assert fitted.exit_code == 0, fitted.output
    evaluated = runner.invoke(
        ts_app, ["evaluate", "--model", out, "--dataset", str(tmp_path / "mine.csv")], env={"COLUMNS": "200"}
    )
    assert evaluated.exit_code == 0 and " 289 " in evaluated.output  # 300 test rows + 24 - 36 + 1 (not 189)


def test_a_split_by_dates_from_the_cli(tmp_path):
    write_series(tmp_path / "mine.csv", rows=1000)  # hourly from 2016-07-01 02:00
    args = ["splits", str(tmp_path / "mine.csv"), "--lookback", "24", "--horizon", "12"]
    result = runner.invoke(ts_app, [*args, "--split-dates", "2016-07-25,2016-08-05"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "rows_574_838" in result.output  # 23 days 22 hours, then 11 days more
    assert "2016-07-24 00:00:00" in result.output  # validation's first window starts lookback rows early
    for bad, message in (
        (["--split-dates", "2016-07-25"], "two comma-separated dates"),
        (["--split-dates", "2016-07-25,2016-08-05", "--split", "0.6,0.2,0.2"], "not both"),
        (["--split-dates", "2015-01-01,2016-08-05"], "outside the data"),
    ):
        refused = runner.invoke(ts_app, [*args, *bad])
        assert refused.exit_code == 2 and message in refused.stderr, refused.output
    refused = runner.invoke(ts_app, ["splits", "ETTh1", "--split-dates", "2017-01-01,2017-06-01"])
    assert refused.exit_code == 2 and "registered benchmark" in refused.stderr

    out = str(tmp_path / "model")
    small = ["--lookback", "24", "--horizon", "12", "--dim", "16", "--layers", "1", "--epochs", "1", "--out", out]
    fitted = runner.invoke(
        ts_app,
        ["fit", "--dataset", str(tmp_path / "mine.csv"), *small, "--split-dates", "2016-07-25,2016-08-05"],
        env={"COLUMNS": "200"},
    )
    assert fitted.exit_code == 0, fitted.output
    record = json.loads((tmp_path / "model" / "metrics.json").read_text())
    assert record["protocol"] == "rows_574_838" and record["split_dates"] == ["2016-07-25", "2016-08-05"]
    assert record["test"]["windows"] == 1000 - 838 - 12 + 1
    assert "validation from 2016-07-25, test from 2016-08-05" in " ".join(fitted.output.split())  # not rows_574_838

    # the same model on a file that starts 100 rows earlier: its splits start at the same dates, not rows
    write_series(tmp_path / "longer.csv", rows=1100)
    frame = pd.read_csv(tmp_path / "longer.csv")
    frame["date"] = pd.date_range(end="2016-08-11 17:00:00", periods=1100, freq="h")  # mine.csv's last row
    frame.iloc[100:, 1:] = pd.read_csv(tmp_path / "mine.csv").iloc[:, 1:].to_numpy()  # then mine.csv's rows
    frame.to_csv(tmp_path / "longer.csv", index=False)
    scores = {}
    for name in ("mine.csv", "longer.csv"):
        evaluated = runner.invoke(
            ts_app, ["evaluate", "--model", out, "--dataset", str(tmp_path / name)], env={"COLUMNS": "200"}
        )
        assert evaluated.exit_code == 0, evaluated.output
        assert "validation from 2016-07-25 00:00:00, test from 2016-08-05 00:00:00" in evaluated.output
        scores[name] = [line for line in evaluated.output.splitlines() if "test" in line and "│" in line]
    assert scores["mine.csv"] == scores["longer.csv"] and " 151 " in scores["mine.csv"][0]
    frame.iloc[700:].to_csv(tmp_path / "late.csv", index=False)  # from 2016-07-26: after validation's start
    refused = runner.invoke(ts_app, ["evaluate", "--model", out, "--dataset", str(tmp_path / "late.csv")])
    assert refused.exit_code == 2 and "validation starts at 2016-07-25 00:00:00" in refused.stderr, refused.output


def test_splits_of_a_headerless_semicolon_csv(tmp_path):
    write_series(tmp_path / "raw.csv", rows=500, header=False, sep=";")
    args = ["splits", str(tmp_path / "raw.csv"), "--lookback", "24", "--horizon", "12"]
    refused = runner.invoke(ts_app, args)
    assert refused.exit_code == 2 and "--no-header" in refused.stderr
    for extra in (["--no-header"], ["--no-header", "--sep", ";"]):
        result = runner.invoke(ts_app, [*args, *extra], env={"COLUMNS": "200"})
        assert result.exit_code == 0, result.output
        assert "500 rows x 3 columns" in result.output  # no row lost to a header, no column lost to ';'


def test_bad_inputs_give_one_line_and_exit_code_2(tmp_path):
    unknown = runner.invoke(ts_app, ["splits", "ETTh3"])
    assert unknown.exit_code == 2
    assert "Unknown dataset 'ETTh3'" in unknown.stderr
    assert "Traceback" not in unknown.output

    write_series(tmp_path / "short.csv", rows=50)
    short = runner.invoke(ts_app, ["splits", str(tmp_path / "short.csv")])
    assert short.exit_code == 2 and "too short" in short.stderr

    missing = runner.invoke(ts_app, ["splits", "ECL", "--data-dir", str(tmp_path)])
    assert missing.exit_code == 2 and "electricity.csv" in missing.stderr


def _unused():
    result = runner.invoke(dna_app, ["finetune"])
    assert result.exit_code == 2 and "not available" in result.stderr


def test_the_readmes_own_data_example_runs_as_written(tmp_path):  # run in tmp_path (tests/conftest.py)
    """The commands of README.md's "Your own data" block as written (fit capped at one epoch, for time), on a
    headerless ';' file with a gap of ten rows."""
    import json
    import shlex
    from pathlib import Path

    import pandas as pd

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = readme.split("### Your own data", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    commands = [shlex.split(line, comments=True) for line in block.strip().splitlines()]
    frame = write_series(tmp_path / "full.csv", rows=800, columns=3)
    frame.drop(index=range(300, 310)).to_csv(tmp_path / "sensors.csv", header=False, sep=";", index=False)
    frame.drop(columns="date").to_csv(tmp_path / "readings.csv", header=False, index=False)  # values only
    long = frame.melt(id_vars="date", var_name="id", value_name="y").rename(columns={"date": "ts"})
    long[~((long["id"] == "c0") & (long.index % 800 < 30))].to_csv(tmp_path / "long.csv", index=False)
    frame.to_csv(tmp_path / "plant.csv", index=False)  # dated, with a header: columns c0, c1, OT
    for command in commands:
        assert command[0] == "titans-ts"
        result = runner.invoke(ts_app, [*command[1:], "--epochs", "1"] if command[1] == "fit" else command[1:])
        assert result.exit_code == 0, (command, result.output)
    windows = pd.read_csv(tmp_path / "windows.csv")
    assert set(windows["column"]) == {"x1", "x2", "x3"} and windows["step"].max() == 24
    metrics = json.loads((tmp_path / "runs" / "readings-lmm-h12-s0" / "metrics.json").read_text())
    assert metrics["test"]["windows"] > 0
    long_run = json.loads((tmp_path / "runs" / "long-lmm-h12-s0" / "metrics.json").read_text())
    assert long_run["test"]["windows"] > 0
    plant = json.loads((tmp_path / "runs" / "plant-lmm-h24-s0" / "metrics.json").read_text())
    assert plant["columns"] == ["c0", "OT"] and plant["targets"] == ["OT"]
    assert plant["protocol"].startswith("rows_") and plant["test"]["windows"] > 0


def test_the_librarys_warnings_are_one_line_without_a_source_location(tmp_path):
    frame = write_series(tmp_path / "oldest_first.csv", rows=1000)
    frame.iloc[::-1].to_csv(tmp_path / "newest_first.csv", index=False)
    result = runner.invoke(ts_app, ["splits", str(tmp_path / "newest_first.csv")])
    assert result.exit_code == 0, result.output
    assert "warning: " in result.stderr and "newest first" in result.stderr
    assert "TimeOrderWarning" not in result.stderr and ".py:" not in result.stderr


def test_settings_errors_are_spelled_as_the_cli_options_where_the_command_has_them():
    """name=value becomes --name value for an option of the command; a flag becomes --flag / --no-flag; a Python
    list, a name the command lacks and pretrained=False (CLI: --scratch) are spelled as they must be."""
    import typer

    from cli._common import as_options

    command = typer.main.get_command(ts_app).commands["fit"]
    message = (
        "online_blend=2.0 is a mode='history' setting; error_tokens=True and error_tokens=False; heads=4; "
        "quantiles=[0.1, 0.9]; pass pretrained=False; (use mode='window', or quantiles=None)"
    )
    assert as_options(message, command) == (
        "--online-blend 2.0 is a --mode history setting; --error-tokens and --no-error-tokens; heads=4; "
        "quantiles=[0.1, 0.9]; pass --scratch; (use --mode window, or without --quantiles)"
    )
    assert as_options(message, None) == message
    for kept in ("runs/lr=0.01/model is a file", "continue with fit(..., resume=True) (CLI: --resume)"):
        assert as_options(kept, command) == kept  # a path, or text that already speaks CLI


def test_a_file_system_error_is_one_line_and_a_closed_pipe_is_not_one():
    """An OSError with a path is the user's to fix (one line, exit 2); one without a path says so without
    advice about paths; a reader that closed the pipe (`| head`) is click's quiet exit, not an error."""
    from cli._common import make_app

    app = make_app("probe", "A test app.")
    raised = {}

    @app.command()
    def run() -> None:
        raise raised["error"]

    @app.command()
    def other() -> None:  # two commands: `run` is a subcommand, as in the real CLIs
        pass

    for error, said in (
        (PermissionError(13, "Permission denied", "/data/out.csv"), "/data/out.csv: Permission denied. Check the path"),
        (OSError(12, "Cannot allocate memory"), "Cannot allocate memory (run again with --debug"),
    ):
        raised["error"] = error
        result = CliRunner().invoke(app, ["run"])
        assert result.exit_code == 2 and said in " ".join(result.stderr.split()), result.output
    raised["error"] = BrokenPipeError(32, "Broken pipe")
    assert "error:" not in CliRunner().invoke(app, ["run"]).output


def test_no_help_page_is_cut_on_an_80_column_terminal():
    """Rich cuts a word longer than its column with an ellipsis: --out's default folder (runs/<dataset>-...) and
    benchmark's default models were cut on a standard terminal, where the README sends users to read them."""
    import typer

    for app in (ts_app, dna_app):
        group = typer.main.get_command(app)
        for name in group.list_commands(None):
            result = runner.invoke(app, [name, "--help"], env={"COLUMNS": "80"})
            assert result.exit_code == 0, (name, result.output)
            cut = [line for line in result.output.splitlines() if "…" in line]
            assert not cut, (name, cut)
