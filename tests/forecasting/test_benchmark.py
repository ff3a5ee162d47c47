"""`titans-ts benchmark`: models x horizons x seeds in one harness, resumable, with its summary table."""

import json
import re

import numpy as np
import pandas as pd
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
        (["--models", ","], "names no model"),
        (["--models", "LMM"], "did you mean 'lmm'?"),  # an empty benchmark succeeded with an empty table
        (["--horizons", "-12"], "horizons are numbers of steps (1 or more)"),
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
    assert "seasonal_naive saw a lookback of 144 steps (one season), the others 48" in " ".join(result.output.split())
    short = tmp_path / "short.csv"
    write_series(short, rows=200, columns=2, freq="10min")  # too short for 144 + 12 + splits: named as such
    refused = runner.invoke(app, ["benchmark", "--dataset", str(short), "--horizons", "12", "--lookback", "24",
                                  "--models", "naive,seasonal_naive", "--out", str(tmp_path / "s")])  # fmt: skip
    assert refused.exit_code == 2 and "seasonal_naive at horizon 12, lookback 144 (one season): " in refused.stderr


def test_a_failing_run_is_said_and_the_others_go_on(tmp_path):
    """A seasonal naive with no season stopped the benchmark: the models after it never ran."""
    values = np.random.default_rng(0).normal(size=(300, 2)).cumsum(0)  # undated, no cycle: no season found
    import pandas as pd

    pd.DataFrame(values, columns=["a", "b"]).to_csv(tmp_path / "walk.csv", index=False)
    out = tmp_path / "bench"
    args = ["benchmark", "--dataset", str(tmp_path / "walk.csv"), "--horizons", "6", "--lookback", "12"]
    result = runner.invoke(app, [*args, "--models", "seasonal_naive,naive", "--out", str(out)])
    assert result.exit_code == 2
    assert "walk_seasonal_naive_h6_s0.json: failed: seasonal_naive found no season" in " ".join(result.stderr.split())
    assert "give a longer --lookback, or leave seasonal_naive out of --models" in " ".join(result.stderr.split())
    assert "1 of 2 runs failed" in result.stderr and (out / "walk_naive_h6_s0.json").exists()
    assert not (out / "walk_seasonal_naive_h6_s0.json").exists()  # not recorded: the next start tries it again
    alone = runner.invoke(app, [*args, "--models", "seasonal_naive", "--out", str(tmp_path / "alone")])
    assert alone.exit_code == 2 and "1 of 1 runs failed" in alone.stderr and "none was kept" in alone.stderr
    assert "test MSE / MAE" not in alone.stdout and "One JSON per run" not in alone.stdout  # no table of dashes


def test_shared_settings_given_apply_to_lmm_general_too():
    """--epochs 1 ran lmm for one epoch and lmm-general for the general default's 10, side by side."""
    from titans_ts.forecasting.benchmark import model_options
    from titans_ts.forecasting.defaults import GENERAL

    general = model_options("lmm-general", {"epochs": 1, "variant": "dlinear", "lr": None})
    assert general["epochs"] == 1 and general["variant"] == GENERAL["variant"] and general["lr"] == GENERAL["lr"]
    assert model_options("attention-patch", {"tokens": "variate"})["tokens"] == "patch"  # what names the model


def test_a_kept_run_is_reused_only_when_made_with_the_settings_a_run_now_has(tmp_path):
    """A run's JSON without a request (the grid's) was reused whatever was asked: a run made at lookback 96
    was shown under a title saying 48. And a damaged JSON was a traceback."""
    import pytest

    from titans_ts.errors import ConfigError
    from titans_ts.forecasting.benchmark import run_benchmark

    write_series(tmp_path / "mine.csv", rows=400, columns=3)
    options = {"horizons": (12,), "models": ("naive",), "lookback": 48}
    (made,) = run_benchmark(str(tmp_path / "mine.csv"), tmp_path / "bench", **options)
    path = tmp_path / "bench" / "mine_naive_h12_s0.json"
    record = json.loads(path.read_text())
    del record["request"]  # as the grid's runs were kept
    path.write_text(json.dumps(record))
    (again,) = run_benchmark(str(tmp_path / "mine.csv"), tmp_path / "bench", **options)  # the same settings
    assert again["test"] == made["test"]
    record["params"]["lookback"] = 96
    path.write_text(json.dumps(record))
    with pytest.raises(ConfigError, match=r"made with other settings than a run now would have \(lookback: 96 then"):
        run_benchmark(str(tmp_path / "mine.csv"), tmp_path / "bench", **options)
    path.write_text('{"test": ')  # cut short
    with pytest.raises(ConfigError, match=r"mine_naive_h12_s0.json is not a benchmark run's record"):
        run_benchmark(str(tmp_path / "mine.csv"), tmp_path / "bench", **options)


def test_a_kept_floor_run_answers_a_benchmark_asked_with_other_training_or_network_settings(tmp_path):
    """Repeat-last and seasonal naive train nothing: --epochs 2 refused their kept runs, to be run again."""
    import pytest

    from titans_ts.errors import ConfigError
    from titans_ts.forecasting.benchmark import run_benchmark

    write_series(tmp_path / "mine.csv", rows=400, columns=3)
    options = {"horizons": (12,), "models": ("naive", "seasonal_naive"), "lookback": 48}
    made = run_benchmark(str(tmp_path / "mine.csv"), tmp_path / "bench", epochs=1, **options)
    again = run_benchmark(str(tmp_path / "mine.csv"), tmp_path / "bench", epochs=2, dim=8, lr=0.01, **options)
    assert [run["wall_seconds"] for run in again] == [run["wall_seconds"] for run in made]  # kept, not run again
    with pytest.raises(ConfigError, match=r"was run with other settings or data \(lookback: 48 then, 96 now"):
        run_benchmark(str(tmp_path / "mine.csv"), tmp_path / "bench", **{**options, "lookback": 96})
    run_benchmark(str(tmp_path / "mine.csv"), tmp_path / "bench", epochs=1, **{**options, "models": ("dlinear",)})
    with pytest.raises(ConfigError, match=r"was run with other settings or data \(epochs: 1 then, 2 now"):
        run_benchmark(str(tmp_path / "mine.csv"), tmp_path / "bench", epochs=2, **{**options, "models": ("dlinear",)})


def test_a_registered_dataset_read_without_its_checksum_is_named_by_its_files_hash(tmp_path):
    """--data-dir with --no-verify read another file as ETTh1, and its runs answered for the real ETTh1's."""
    from titans_ts.data import load_dataset
    from titans_ts.forecasting.benchmark import data_identity

    frame = load_dataset("ETTh1").iloc[:500]
    frame.to_csv(tmp_path / "ETTh1.csv")
    assert data_identity("ETTh1", {"data_dir": str(tmp_path)}) == "ETTh1"  # verified: the registered file
    assert data_identity("ETTh1", {"verify": False}) == "ETTh1"  # unverified, but the registered file all the same
    other = data_identity("ETTh1", {"data_dir": str(tmp_path), "verify": False})
    assert other.startswith("ETTh1 sha256:")  # its runs are not the registered file's


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
    args += ["--models", "naive,seasonal_naive,dlinear", "--epochs", "1", "--seeds", "0,1", "--out", str(out)]
    refused = runner.invoke(app, args)
    assert refused.exit_code == 2 and "--fill" in refused.output
    data = ["--fill", "ffill", "--date-column", "when", "--target", "OT", "--split", "0.6,0.2,0.2"]
    result = runner.invoke(app, [*args, *data])
    assert result.exit_code == 0, result.output
    assert result.stderr.count("the ffill fill filled 1 missing") == 1  # said once, not once more per run
    assert result.stderr.count("DLinear reads each column on its own") == 1  # once, not per seed and horizon
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


def test_an_unfinished_run_started_with_other_settings_says_which_folder_to_remove(tmp_path, monkeypatch):
    """The message named only the checkpoint folder, and benchmark has no --overwrite to start it again."""
    import pytest

    import titans_ts.checkpointing as checkpointing
    import titans_ts.forecasting.api as api
    from titans_ts.errors import ConfigError
    from titans_ts.forecasting.benchmark import run_benchmark

    def started_otherwise(*args, resume, **kwargs):
        assert resume  # a checkpoint is there: the run is continued, and its settings checked as it starts
        checkpointing.start_or_resume(tmp_path / "ck", {"epochs": 2}, resume=True)  # the real refusal

    (tmp_path / "ck").mkdir()
    (tmp_path / "ck" / "settings.json").write_text('{"epochs": 10}')

    write_series(tmp_path / "mine.csv", rows=400, columns=3)
    monkeypatch.setattr(checkpointing, "latest_checkpoint", lambda folder: folder / "last.ckpt")
    monkeypatch.setattr(api, "fit_dataset", started_otherwise)
    folder = tmp_path / "bench" / "models" / "mine_dlinear_h12_s0"
    with pytest.raises(ConfigError, match=rf"holds an unfinished run of it, started with other settings \(epochs: 10 "
                       rf"in the checkpoint, 2 now\): remove {re.escape(str(folder))} to start it again"):  # fmt: skip
        run_benchmark(str(tmp_path / "mine.csv"), tmp_path / "bench", horizons=(12,), models=("dlinear",), epochs=2)


def test_a_benchmark_split_by_dates_reuses_its_runs_and_a_finished_run_needs_no_device(tmp_path):
    """Its protocol is found from the dates, so a rerun compared the recorded one with the default and refused
    every kept run; and a rerun asking for a GPU the machine lacks failed before reading the finished runs."""
    from titans_ts.forecasting.benchmark import run_benchmark

    frame = write_series(tmp_path / "mine.csv", rows=400, columns=2)
    dates = pd.to_datetime(frame["date"])
    options = {"horizons": (12,), "models": ("naive",), "lookback": 48}
    data = {"split_dates": (str(dates[250]), str(dates[320]))}
    (first,) = run_benchmark(str(tmp_path / "mine.csv"), tmp_path / "bench", data=data, **options)
    assert first["params"]["protocol"] != "ratio_70_10_20"
    (again,) = run_benchmark(str(tmp_path / "mine.csv"), tmp_path / "bench", data=data, **options, device="cuda")
    assert again == first


def test_a_model_with_some_runs_failed_is_tabled_with_what_ran(tmp_path, monkeypatch):
    """A horizon whose every run failed, beside one that finished, was a KeyError traceback in the summary table;
    a cell with a seed missing showed one value as if it were the seeds' mean."""
    import titans_ts.forecasting.api as api
    from titans_ts.errors import ConfigError

    write_series(tmp_path / "mine.csv", rows=400, columns=3)
    fit_dataset = api.fit_dataset

    def some_fail(dataset, horizon, **kwargs):
        if horizon == 24 or kwargs["seed"] == 1:
            raise ConfigError(f"made to fail at horizon {horizon}")
        return fit_dataset(dataset, horizon=horizon, **kwargs)

    monkeypatch.setattr(api, "fit_dataset", some_fail)
    args = ["benchmark", "-d", str(tmp_path / "mine.csv"), "--models", "dlinear", "--horizons", "12,24"]
    result = runner.invoke(
        app, [*args, "--seeds", "0,1", "--lookback", "24", "--epochs", "1", "--out", str(tmp_path / "b")]
    )
    assert result.exit_code == 2 and "3 of 4 runs failed" in result.stderr, result.output
    row = next(line for line in result.stdout.splitlines() if "dlinear" in line and "│" in line)
    cells = [cell.strip() for cell in row.split("│")[1:-1]]
    assert cells[0] == "dlinear" and cells[1].endswith("(1 of 2 seeds)") and cells[2:] == ["-", "-"]


def test_a_kept_run_answers_a_request_that_spells_out_what_it_ran_with(tmp_path):
    """--epochs 10 given, where the kept run was asked with the default (10): refused as "epochs: None then, 10
    now", though the run was made with 10; a value it did not run with is still refused."""
    import pytest

    from titans_ts.errors import ConfigError
    from titans_ts.forecasting.benchmark import check_same_request

    before, made = {"data": "mine", "horizon": 12, "epochs": None}, {"epochs": 10, "lr": 0.001}
    check_same_request(tmp_path / "r.json", before, {**before, "epochs": 10}, settings=(made, made))
    check_same_request(tmp_path / "r.json", {**before, "epochs": 10}, before, settings=(made, made))  # and back
    with pytest.raises(ConfigError, match=r"epochs: None then, 20 now") as refused:
        check_same_request(tmp_path / "r.json", before, {**before, "epochs": 20}, settings=(made, {"epochs": 20}))
    assert "data option" not in str(refused.value)
    with pytest.raises(ConfigError, match=r"A data option given on one side only counts as a change"):
        check_same_request(tmp_path / "r.json", before, {**before, "data": {"source": "mine", "sep": ","}})
    # --split 0.7,0.1,0.2 asks for the split a file gets unasked (refused as a change, with runs_dir= in its advice)
    for split in ([0.7, 0.1, 0.2], [70, 10, 20]):
        check_same_request(tmp_path / "r.json", before, {**before, "data": {"source": "mine", "split": split}})
        check_same_request(tmp_path / "r.json", {**before, "data": {"source": "mine", "split": split}}, before)
    with pytest.raises(ConfigError, match=r"data: 'mine' then.*give another runs folder \(runs_dir=, CLI --out\)"):
        check_same_request(
            tmp_path / "r.json", before, {**before, "data": {"source": "mine", "split": [0.6, 0.2, 0.2]}}
        )


def test_a_file_as_out_or_unreadable_data_is_said_once_before_any_run(tmp_path, monkeypatch):
    """--out naming a file failed every run one by one, then said the runs were kept there; a missing file or a
    bad device was said as the first model's ("naive at horizon 12: No file at ..."); a Ctrl-C outside the
    training said "interrupted:  (the ...", its reason empty."""
    import pytest

    import titans_ts.forecasting.api as api
    from titans_ts.errors import ConfigError, DatasetNotFoundError
    from titans_ts.forecasting.benchmark import run_benchmark

    write_series(tmp_path / "mine.csv", rows=400, columns=3)
    (tmp_path / "afile").write_text("")
    options = {"horizons": (12,), "models": ("naive",), "lookback": 24}
    with pytest.raises(ConfigError, match=r"afile is a file: the runs are kept in a folder"):
        run_benchmark(str(tmp_path / "mine.csv"), tmp_path / "afile", **options)
    with pytest.raises(DatasetNotFoundError, match=r"^No file at"):
        run_benchmark(str(tmp_path / "nope.csv"), tmp_path / "b", **options)
    trained = []
    monkeypatch.setattr(api, "fit_dataset", lambda *a, **k: trained.append(1))
    with pytest.raises(OSError):  # a folder the results cannot go to: found before the runs, not after training
        run_benchmark(str(tmp_path / "mine.csv"), tmp_path / "afile" / "runs", **options)
    assert not trained

    def stopped(*args, **kwargs):
        raise KeyboardInterrupt()

    monkeypatch.setattr(api, "fit_dataset", stopped)
    with pytest.raises(KeyboardInterrupt, match=r"^mine_naive_h12_s0.json was stopped \(none had finished"):
        run_benchmark(str(tmp_path / "mine.csv"), tmp_path / "b", **options)
