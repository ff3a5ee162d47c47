"""`titans-ts benchmark`: models x horizons x seeds in one harness, resumable, with its summary table."""

import json
import re

import numpy as np
from typer.testing import CliRunner

from cli.ts import app
from tests.data.helpers import write_series
from titans_ts.forecasting.benchmark import summarize

runner = CliRunner()


def test_benchmark_runs_every_model_horizon_and_seed_then_resumes(tmp_path):
    write_series(tmp_path / "mine.csv", rows=400, columns=3)
    out = tmp_path / "bench"
    args = ["benchmark", "--dataset", str(tmp_path / "mine.csv"), "--horizons", "12,24", "--seeds", "0,1"]
    args += ["--models", "dlinear,naive,seasonal_naive", "--lookback", "48", "--epochs", "1", "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    runs = sorted(p.name for p in out.glob("*.json"))
    assert len(runs) == 2 * 2 * 3 and "mine_seasonal_naive_h24_s1.json" in runs
    assert "[12/12]" in result.output and "seasonal_naive" in result.output
    first = json.loads((out / "mine_dlinear_h12_s0.json").read_text())
    assert first["model"] == "dlinear" and first["seed"] == 0 and first["test"]["windows"] == 69
    capped = runner.invoke(app, [*args[:-2], "--models", "dlinear", "--horizons", "12", "--seeds", "0", "--epochs",
                                 "50", "--max-minutes", "0.0001", "--out", str(tmp_path / "capped")])  # fmt: skip
    assert capped.exit_code == 0 and re.search(
        r"stopped by its time cap after 1 epoch\b(?!s)", " ".join(capped.output.split())
    )
    again = runner.invoke(app, args)  # everything exists: read, not re-run
    assert again.exit_code == 0 and again.output.count("from an earlier run") == 12
    # runs asked for otherwise (another lookback, or another file of the same name) were reused under the new
    # settings' title; they are refused, naming what changed
    other = runner.invoke(app, [*args[:-5], "24", "--epochs", "1", "--out", str(out)])
    assert other.exit_code == 2 and "lookback: 48 then, 24 now" in " ".join(other.stderr.split())
    (tmp_path / "elsewhere").mkdir()
    write_series(tmp_path / "elsewhere" / "mine.csv", rows=400, columns=2)
    moved = runner.invoke(app, [*args[:2], str(tmp_path / "elsewhere" / "mine.csv"), *args[3:]])
    assert moved.exit_code == 2 and "was run with other settings or data (data: " in " ".join(moved.stderr.split())


def test_summary_averages_over_seeds_then_horizons_and_only_when_complete():
    def record(model, horizon, mse):
        return {"model": model, "horizon": horizon, "test": {"mse": mse, "mae": mse / 2}}

    records = [record("a", 1, 1.0), record("a", 1, 3.0), record("a", 2, 4.0), record("b", 1, 1.0)]
    table = summarize(records, horizons=(1, 2))
    assert table["a"]["average"] == (3.0, 1.5)  # (mean(1, 3) + 4) / 2
    assert table["b"]["average"] is None  # horizon 2 missing


def test_benchmark_bad_options_exit_2_with_one_line(tmp_path):
    write_series(tmp_path / "mine.csv", rows=400, columns=3)
    base = ["benchmark", "--dataset", str(tmp_path / "mine.csv"), "--out", str(tmp_path / "b")]
    cases = [(["--horizons", "12,x"], "comma-separated integers"), (["--models", "lstm"], "unknown")]
    cases += [  # a value twice: a run twice, or a spread of one run's copies
        (["--seeds", "a"], "e.g. 0,1,2"),
        (["--seeds", "0,0"], "seeds=[0, 0] gives [0] more than once"),
        (["--models", "naive,naive"], "models=['naive', 'naive'] gives ['naive'] more than once"),
        (  # before naive is written
            ["--models", "naive,dlinear", "--epochs", "0", "--horizons", "12", "--lookback", "24"],
            "--epochs 0 (at least 1",
        ),
        # a horizon the data is too short for: refused before the runs of the others (12 ran, then 400 failed)
        (["--models", "naive", "--horizons", "12,400", "--lookback", "24"], "too short"),
    ]
    for extra, message in cases:
        result = runner.invoke(app, [*base, *extra])
        assert result.exit_code == 2, result.output
        assert message in result.output and len(result.output.strip().splitlines()) == 1
        assert not (tmp_path / "b").exists()


def test_seasonal_naive_gets_a_lookback_of_at_least_one_season(tmp_path):
    write_series(tmp_path / "ten_minutes.csv", rows=1500, columns=2, freq="10min")  # a day is 144 steps
    out = tmp_path / "bench"
    args = ["benchmark", "--dataset", str(tmp_path / "ten_minutes.csv"), "--horizons", "12", "--out", str(out)]
    result = runner.invoke(app, [*args, "--models", "naive,seasonal_naive", "--lookback", "48"])
    assert result.exit_code == 0, result.output
    seasonal = json.loads((out / "ten_minutes_seasonal_naive_h12_s0.json").read_text())
    naive = json.loads((out / "ten_minutes_naive_h12_s0.json").read_text())
    assert seasonal["lookback"] == 144 and naive["lookback"] == 48
    assert seasonal["test"]["windows"] == naive["test"]["windows"]  # the same test windows either way


def test_an_interrupted_run_is_not_recorded_and_the_next_start_runs_it(tmp_path, monkeypatch):
    import pytest

    import titans_ts.forecasting.api as api
    from titans_ts.forecasting.benchmark import run_benchmark

    write_series(tmp_path / "mine.csv", rows=400, columns=3)
    fit_dataset = api.fit_dataset

    def stopped_by_sigterm(*args, **kwargs):  # what Ctrl-C or SIGTERM leaves: the best weights, marked
        record = fit_dataset(*args, **kwargs)
        record["history"]["stop_reason"] = "interrupted"
        return record

    options = {"horizons": (12,), "models": ("dlinear",), "lookback": 48, "epochs": 1}
    killed_before_its_first_checkpoint = tmp_path / "bench" / "models" / "mine_dlinear_h12_s0" / "checkpoints"
    killed_before_its_first_checkpoint.mkdir(parents=True)
    (killed_before_its_first_checkpoint / "settings.json").write_text("{}")
    monkeypatch.setattr(api, "fit_dataset", stopped_by_sigterm)
    with pytest.raises(KeyboardInterrupt, match=r"not recorded.*none had finished: run the same command again"):
        run_benchmark(str(tmp_path / "mine.csv"), tmp_path / "bench", **options)
    assert not list((tmp_path / "bench").glob("*.json"))
    monkeypatch.setattr(api, "fit_dataset", fit_dataset)
    (record,) = run_benchmark(str(tmp_path / "mine.csv"), tmp_path / "bench", **options)
    assert record["history"]["stop_reason"] != "interrupted"
    assert (tmp_path / "bench" / "mine_dlinear_h12_s0.json").exists()


def test_a_users_file_is_read_and_split_as_fit_reads_it(tmp_path):
    """benchmark had none of fit's data options: a file fit reads (its separator, a NaN to fill, a date column of
    another name, a split, target columns) could not be benchmarked."""
    frame = write_series(tmp_path / "mine.csv", rows=400, columns=3, sep=";")
    frame.iloc[7, 2] = np.nan
    frame.rename(columns={"date": "when"}).to_csv(tmp_path / "mine.csv", sep=";", index=False)
    out = tmp_path / "bench"
    args = ["benchmark", "--dataset", str(tmp_path / "mine.csv"), "--horizons", "12", "--lookback", "48"]
    args += ["--models", "naive,seasonal_naive,dlinear", "--epochs", "1", "--out", str(out)]
    refused = runner.invoke(app, args)
    assert refused.exit_code == 2 and "--fill" in refused.output
    data = ["--fill", "ffill", "--date-column", "when", "--target", "OT", "--split", "0.6,0.2,0.2"]
    result = runner.invoke(app, [*args, *data])
    assert result.exit_code == 0, result.output
    run = json.loads((out / "mine_dlinear_h12_s0.json").read_text())
    assert run["request"]["data"]["split"] == [0.6, 0.2, 0.2] and run["request"]["target"] == ["OT"]
    assert run["test"]["windows"] == 80 - 12 + 1 and run["columns"] == ["c0", "c1", "OT"]  # 20 % of 400 rows
    seasonal = json.loads((out / "mine_seasonal_naive_h12_s0.json").read_text())
    assert seasonal["lookback"] == 48  # hourly rows dated by "when": a day's season fits in the lookback
    other = runner.invoke(app, [*args, *data[:-1], "0.7,0.1,0.2"])  # another split: not the runs kept
    assert other.exit_code == 2 and "split" in other.stderr


def test_an_unknown_data_option_is_refused_and_a_setting_not_given_is_one_given_as_none(tmp_path):
    import pytest

    from titans_ts.errors import ConfigError
    from titans_ts.forecasting.benchmark import check_same_request, run_benchmark

    with pytest.raises(ConfigError, match="unknown data option"):
        run_benchmark("ETTh1", data={"seperator": ";"})
    before = {"data": "mine.csv sha256:0", "horizon": 12, "variant": "naive"}  # a run kept before target was asked
    check_same_request(tmp_path / "run.json", before, {**before, "target": None})  # reused, not refused
    with pytest.raises(ConfigError, match=r"target: None then, \['OT'\] now"):
        check_same_request(tmp_path / "run.json", before, {**before, "target": ["OT"]})
