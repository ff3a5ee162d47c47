"""What `titans-ts fit` and `titans-ts datasets` do, as library functions (the CLI only parses and prints); a saved
model's commands are in `saved`."""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from titans_ts.data.columns import read_as_fit
from titans_ts.distributed import is_main_process, rank_and_world
from titans_ts.errors import FallbackWarning, TimeGapWarning
from titans_ts.forecasting.estimator import TitansForecaster
from titans_ts.forecasting.floors import floors_record
from titans_ts.forecasting.plots import plot_forecast
from titans_ts.forecasting.settings import FitSettings, dataset_label, resolve_fit
from titans_ts.io import CONFIG_FILE, MODEL_FILE, atomic_path, atomic_write_text, json_value
from titans_ts.version import __version__

__all__ = ["dataset_label", "fit_dataset", "history_scores", "list_datasets", "quantile_record"]


def fit_dataset(
    dataset: str,
    horizon: int | None = None,
    lookback: int | None = None,
    out: str | Path | None = None,
    data_dir=None,
    verify: bool | None = None,
    fill: str | None = None,
    date_column: str | None = None,
    header: bool = True,
    sep: str | None = None,
    long: tuple[str, str, str] | None = None,
    split: tuple[float, float, float] | None = None,
    split_dates: tuple[str, str] | None = None,
    columns: list[str] | None = None,
    overwrite: bool = False,
    resume: bool = False,
    checkpoint_every: float | None = None,
    on_start: Callable[[FitSettings], None] | None = None,
    **params,
) -> dict:
    """Fit on a dataset under its protocol, evaluate val and test, write the model, metrics and a plot.

    long: the (id, time, value) columns of a long table, made one column per id; the saved model records them,
    so that predict and evaluate read such files alike and write long forecasts.
    split / split_dates: a user's file split by train,val,test fractions, or by the dates where validation
    and test begin (registered benchmarks keep their protocol). columns: the columns to read as inputs
    (default: all; the `target` columns are always inputs); `target` (among params) the ones forecast.
    overwrite: replace a model already saved at `out` (else that is refused before any work); the record
    says whether one was ("replaced"). Nothing is replaced until the new model, metrics and plot are ready.
    Checkpoints go to `out/checkpoints` (every validated epoch, and every `checkpoint_every` minutes);
    resume=True continues a killed or interrupted run from there. They are removed once the run finished.
    params: TitansForecaster's parameters, device="auto" | "cpu" | "cuda" among them; horizon, lookback and
    any left out (or None) take the dataset's defaults (`settings.resolve_fit`). on_start(settings) is
    called once they are resolved and checked and the folder is ready, before any data is read.
    """
    from titans_ts.checkpointing import (  # training only
        finish_run_folder,
        forget_unstarted_run,
        prepare_run_folder,
        run_folder_lock,
    )
    from titans_ts.training import tune_cpu_allocator

    settings = resolve_fit(
        dataset, out=out, split=split, split_dates=split_dates, horizon=horizon, lookback=lookback,
        checkpoint_minutes=checkpoint_every, **params,
    )  # fmt: skip
    out = settings.out
    with run_folder_lock(out):  # no other run writes into this folder meanwhile
        replaced = not resume and any((out / name).is_file() for name in (CONFIG_FILE, MODEL_FILE))
        checkpoints = prepare_run_folder(out, overwrite, resume)  # a saved model is replaced only with overwrite
        if on_start is not None:
            on_start(settings)
        tune_cpu_allocator()
        started = time.time()
        read = dict(data_dir=data_dir, verify=verify, fill=fill, date_column=date_column, header=header, sep=sep)
        target = settings.params["target"]
        frame = read_as_fit(dataset, columns, target, **read, long=long)
        params = settings.params | {"protocol": settings.protocol(frame.index), "checkpoint_dir": str(checkpoints)}
        estimator = TitansForecaster(**params)
        with warnings.catch_warnings():  # the file's gaps were checked as it was read; a benchmark loads as published
            warnings.simplefilter("ignore", TimeGapWarning)
            warnings.simplefilter("ignore", FallbackWarning)  # the record says it, and the CLI prints its note
            warnings.filterwarnings("ignore", "online_reset_mix='auto' chose nothing")  # as does reset_mix_note
            try:
                estimator.fit(frame, resume=resume)
            except BaseException:  # Ctrl-C before the first checkpoint, an error: no empty model folder is left
                forget_unstarted_run(out)
                raise
        estimator.long_format_ = list(long) if long else None  # predict and evaluate read such files the same way
        if not is_main_process():  # under DDP: rank 0 evaluates and writes, once
            return {"out": str(out), "rank": rank_and_world()[0]}
        metrics = {"val": estimator.evaluate(split="val"), "test": estimator.evaluate(split="test")}
        record = {
            "mode": estimator.mode,
            "dataset": settings.label,
            "protocol": estimator.protocol,
            "lookback": estimator.lookback,
            "horizon": estimator.horizon,
            "split_dates": list(split_dates) if split_dates else None,
            "columns": [str(c) for c in estimator.columns_],
            "targets": [str(c) for c in estimator.targets_],
            "variant": estimator.variant,
            "seed": estimator.seed,
            "params": estimator.get_params(),
            "val": metrics["val"],  # of the forecaster used: the model, or the floor that replaced it (fallback)
            "test": metrics["test"],
            **history_scores(estimator),
            "model_val": estimator.val_metrics_,  # the model's own, beside the floors' (the same windows)
            **floors_record(estimator),
            "history": estimator.history_,
            "device": estimator.history_["device"],
            "wall_seconds": time.time() - started,
            "titans_ts_version": __version__,
            "metric_space": "MSE/MAE on data scaled by the train-rows StandardScaler, every window counted",
        }
        if estimator.mode == "history":
            record["model_val_frozen"] = estimator.val_metrics_frozen_
            record["metric_space"] += f"; {history_scores_said(estimator.online_from)}"
        record |= quantile_record(estimator)
        try:
            with atomic_path(out / "forecast.png") as plot:  # drawn before anything in `out` is replaced
                _plot_last_test_window(estimator, frame, plot, settings.label)
                estimator.save(out)
                atomic_write_text(out / "metrics.json", json.dumps(record, indent=1, default=json_value))
        except OSError as exc:  # a full disk after hours of training: the checkpoints stay, and say how to go on
            from titans_ts.io import holds_checkpoints

            if holds_checkpoints(checkpoints):
                kept = f"the run's checkpoints are kept in {checkpoints}: once the path is fixed, {RESUME_TO_WRITE}"
            else:  # an untrained model (a naive floor) keeps none
                kept = "nothing was kept: once the path is fixed, run the same command again"
            said = f"{exc.strerror or exc} while writing the results; {kept}"
            raise type(exc)(exc.errno, said, exc.filename) from exc
        finish_run_folder(checkpoints, interrupted=estimator.history_.get("stop_reason") == "interrupted")
        return record | {"out": str(out), "replaced": replaced}


RESUME_TO_WRITE = "run the same command with --resume (resume=True) to write them from there"  # benchmark's differs


def history_scores_said(online_from: str) -> str:
    """What a history-mode model's scores are, as metrics.json says it: where its online memory starts reading."""
    split = "the split's first row (lookback rows before its first origin)"
    start = split if online_from == "split" else "the series' first row"
    return (
        "mode='history': val and test are frozen (the memory reset for every window), val_online and test_online "
        f"online (the memory reads from {start} in time order, never a row at or after an origin)"
    )


QUANTILE_SCORES = (
    "quantiles: pinball per level, mean_wql (mean over levels of 2 * sum pinball / sum |y|), crps (2 * the mean "
    "pinball over the levels), coverage and width of each central interval, on the same windows and scaled data; "
    "the levels are calibrated on the validation windows, so val coverage is in-sample and test coverage is not"
)


def quantile_record(estimator) -> dict:
    """A model with quantiles: its levels and calibration, and what its metrics mean; {} without."""
    levels = getattr(estimator, "quantile_levels_", ())
    if not levels:
        return {}
    return {"quantiles": list(levels), "calibration": estimator.calibration_, "quantile_scores": QUANTILE_SCORES}


def history_scores(estimator, frame=None) -> dict:
    """A history-mode model's online val and test scores (its `evaluate()` ones are frozen); {} in window mode."""
    if estimator.mode != "history":
        return {}
    return {f"{split}_online": estimator.evaluate(frame, split=split, online=True) for split in ("val", "test")}


def list_datasets() -> list[dict]:
    """The registered datasets: name, rows, columns, freq, split, file, and where the file is found here
    ("bundled", a path; None when it is not here)."""
    from titans_ts.data import registered_datasets
    from titans_ts.data.sources import locate
    from titans_ts.errors import DatasetNotFoundError

    rows = []
    for info in registered_datasets():
        try:
            where = str(locate(info, download=False))
            where = "bundled" if info.bundled and where == str(info.bundled_path) else where
        except DatasetNotFoundError:
            where = None
        rows.append({"name": info.name, "rows": info.rows, "columns": info.columns, "freq": info.freq})
        rows[-1] |= {"split": info.split, "file": info.file, "found_at": where}
    return rows


def _plot_last_test_window(estimator: TitansForecaster, frame: pd.DataFrame, path: Path, label: str) -> None:
    end = estimator.borders_.test[1]
    origin = end - estimator.horizon
    history = frame.iloc[origin - estimator.lookback : origin]
    truth = frame.iloc[origin:end]
    # history mode: the memory reads every row before the origin (the online forecast), window mode the window
    forecast = estimator.predict(frame.iloc[:origin] if estimator.mode == "history" else history)
    column = estimator.targets_[-1]  # the column plot_forecast draws
    title = f"{label}, {column}: last test window, {estimator._forecaster_name()}"
    plot_forecast(history, forecast, path, truth=truth, column=column, title=title)
