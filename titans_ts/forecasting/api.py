"""What the `titans-ts` commands do, as library functions (the CLI only parses and prints)."""

from __future__ import annotations

import json
import re
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from titans_ts.data import load_dataset, protocol_for
from titans_ts.data.columns import read_as_fit
from titans_ts.data.registry import benchmark_named, lookup_name
from titans_ts.distributed import is_main_process, rank_and_world
from titans_ts.errors import (
    ConfigError,
    DatasetNotFoundError,
    DataValidationError,
    EmptyTableError,
    FallbackWarning,
    LongColumnsError,
    MissingColumnsError,
    SplitTooShortError,
    TimeGapWarning,
    UnreadInputsWarning,
)
from titans_ts.forecasting.estimator import TitansForecaster
from titans_ts.forecasting.floors import floors_record
from titans_ts.forecasting.plots import check_plot_path, level_columns, plot_forecast
from titans_ts.forecasting.quantiles import level_label
from titans_ts.forecasting.settings import FitSettings, dataset_label, resolve_fit
from titans_ts.io import (
    CONFIG_FILE,
    MODEL_FILE,
    atomic_path,
    atomic_path_or_none,
    atomic_write_text,
    check_out_file,
    check_table_path,
    json_value,
    write_table,
)
from titans_ts.training import check_device
from titans_ts.version import __version__

__all__ = ["dataset_label", "evaluate_saved", "fit_dataset", "list_datasets", "predict_csv", "update_saved"]


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
    from titans_ts.checkpointing import finish_run_folder, forget_unstarted_run, prepare_run_folder  # training only
    from titans_ts.training import tune_cpu_allocator

    settings = resolve_fit(
        dataset, out=out, split=split, split_dates=split_dates, horizon=horizon, lookback=lookback,
        checkpoint_minutes=checkpoint_every, **params,
    )  # fmt: skip
    out = settings.out
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
        raise type(exc)(exc.errno, f"{exc.strerror or exc} while writing the results; {kept}", exc.filename) from exc
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


def predict_csv(
    model_dir,
    input_csv=None,
    out_csv=None,
    plot=None,
    fill: str | None = None,
    date_column: str | None = None,
    device: str | None = None,
    header: bool = True,
    sep: str | None = None,
    long: tuple[str, str, str] | None = None,
    quantiles: list[float] | None = None,
    overwrite: bool = False,
    data_dir=None,
    verify: bool | None = None,
) -> tuple[pd.DataFrame, Path | None]:
    """Forecast the horizon after the end of a file with a saved model; write the forecast (`io.write_table`: in
    the format out_csv's name says) and plot, both or neither.
    The forecast's values are rounded to what the float32 network computes (`_computed_decimals`).

    device: "auto" | "cpu" | "cuda" to run on (None: the device the model was saved with).
    quantiles: of a model fitted with quantiles, the levels to write (None: all it has), a column each: "OT_q0.1".
    long: the (id, time, value) columns of a long table; a model fitted on one reads the file with its columns
    unless told otherwise, and writes the forecast long as well (`forecast_table`); a wide file (a column per
    series, without the long table's columns) is read and written wide.
    overwrite: replace an existing out_csv or plot (else refused before any work).
    input_csv may be a registered dataset's name (the forecast after its end), found and checked as
    `load_dataset` finds one (data_dir, verify); None: the forecast after the last row the model has read (fit's
    data and every `update_saved`), from the memory it carries."""
    check_device(device)
    check_out_file(out_csv, [input_csv], overwrite)
    if out_csv is not None:
        check_table_path(out_csv)
    if plot is not None and input_csv is None:
        raise ConfigError(
            "--plot draws the forecast after the history it reads: give that history with --input, or leave --plot "
            "out (the forecast after the rows the model has read needs no input)."
        )
    read = dict(fill=fill, date_column=date_column, header=header, sep=sep, long=long, data_dir=data_dir, verify=verify)
    if input_csv is None:
        _refuse_reading_without_input(read)
    check_out_file(plot, [input_csv], overwrite)
    check_plot_path(plot)
    estimator = TitansForecaster.load(model_dir, device=device)
    estimator._chosen_levels(quantiles)  # levels it was not fitted with fail before the data is read
    if input_csv is None:
        frame, long = None, estimator.long_format_
    else:
        source = Path(input_csv)
        if not source.exists() and lookup_name(str(input_csv)) is not None:  # --input ETTh1: the registered dataset
            source = str(input_csv)
        frame, long = _read_for(estimator, source, **read)
    forecast = estimator.predict(frame, quantiles=quantiles)
    forecast = forecast.round(_computed_decimals(estimator, forecast))
    forecast.attrs["long_format"] = list(long) if long else None  # written as the input was: long or wide
    if estimator._in_history_mode() and frame is not None:  # its memory read these rows alone, not its own
        forecast.attrs["history_read_rows"] = len(frame)
    out_csv = Path(out_csv) if out_csv else None
    with atomic_path_or_none(plot) as drawn:  # both written or neither (a failed plot left the table behind)
        if drawn is not None:
            plot_forecast(frame.iloc[-estimator.lookback :], forecast, drawn)
        if out_csv is not None:
            write_table(forecast_table(forecast), out_csv)
    return forecast, out_csv


def _refuse_reading_without_input(read: dict) -> None:
    """predict_csv without an input: options that say how to read one would be ignored, so they are refused
    (named as name=value, which the CLI turns into its options)."""
    given = {name: value for name, value in read.items() if value is not None and name != "header"}
    given |= {} if read["header"] else {"header": False}
    if given:
        said = ", ".join(f"{name}={str(v) if isinstance(v, Path) else v!r}" for name, v in given.items())
        raise ConfigError(
            f"the reading options ({said}) say how to read an input, and there is none; give the history as "
            "input_csv (CLI --input), or leave them out."
        )


def update_saved(
    model_dir,
    input_csv,
    out=None,
    fill: str | None = None,
    date_column: str | None = None,
    device: str | None = None,
    header: bool = True,
    sep: str | None = None,
    long: tuple[str, str, str] | None = None,
    overwrite: bool = False,
) -> tuple[TitansForecaster, pd.DataFrame, Path | None]:
    """Let a saved model read new rows (`TitansForecaster.update`: the memory keeps what it learns from them) and
    save it, in its own folder (out None) or in `out`. Returns (the model, the rows read, where it was saved:
    None when the file has no rows, and nothing changed).

    The rows must follow the last row the model has read (fit's data and every earlier update), at its step;
    rows it refuses write nothing. `out` is a new or empty folder, or one holding only a saved model (replaced
    with overwrite): a run folder's metrics and plot would describe another model. `device` as in predict_csv;
    the model keeps the device it was saved with."""
    check_device(device)
    model_dir = Path(model_dir).expanduser().absolute()  # "." (the model's own folder) has a name to save under
    out = model_dir if out is None else Path(out).expanduser().absolute()
    _check_model_out(out, model_dir, overwrite)
    source = Path(input_csv)
    if not source.is_file():
        raise DatasetNotFoundError(f"No file at {source}: give the file of new rows (CSV, TSV, parquet, ...).")
    estimator = TitansForecaster.load(model_dir)
    if not estimator._in_history_mode():
        estimator._check_streamable()  # before the rows are read
    saved_device = estimator.device
    if device is not None:
        estimator.set_params(device=device)
    try:
        frame, _ = _read_for(estimator, source, fill=fill, date_column=date_column, header=header, sep=sep, long=long)
    except EmptyTableError:  # a poll that found no rows: as update() with none, nothing changes
        return estimator, pd.DataFrame(columns=estimator.columns_), None
    estimator.update(frame)
    estimator.set_params(device=saved_device)
    return estimator, frame, estimator.save(out)


def _numbered_by_its_column(estimator: TitansForecaster) -> bool:
    """Whether the model's rows were numbered by a column of whole numbers that a file is not searched for (fit
    with date_column='t', CLI --date-column t): a later file is read by that column too, as the model was. A
    file read without it had its rows counted on from the last one read, with no check that they follow."""
    from titans_ts.data.loading import DATE_NAMES

    name = getattr(estimator, "index_name_", None)
    searched = name is None or name == "step" or str(name).strip().lower() in DATE_NAMES
    return bool(getattr(estimator, "numbered_", False)) and not searched


def _say_other_series(others: list[str], source, fitted: list[str]) -> None:
    """An UnreadInputsWarning for the series of a long table that the model was not fitted on: a new shop or
    sensor gets no forecast, and the user is told so rather than finding it missing from the output."""
    if others:
        listed = f"{others[:5]}{' ...' if len(others) > 5 else ''}"
        warnings.warn(
            f"{source}: {len(others)} series the model was not fitted on are not read, {listed}: it forecasts its "
            f"own, {fitted[:5]}{' ...' if len(fitted) > 5 else ''}. To forecast the others, fit a model on them.",
            UnreadInputsWarning,
            stacklevel=3,
        )


def _check_model_out(out: Path, model_dir: Path, overwrite: bool) -> None:
    """Where update_saved saves: the model's own folder, a new or empty folder, or (with overwrite) a folder
    holding only another saved model."""
    import os

    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} is a file: a model is saved as a folder; give a folder path with --out.")
    if not out.exists() or (model_dir.exists() and os.path.samefile(out, model_dir)):
        return
    held = sorted(path.name for path in out.iterdir())
    others = [name for name in held if name not in (CONFIG_FILE, MODEL_FILE)]
    if others:
        raise ConfigError(
            f"{out} holds other files ({', '.join(others[:5])}): save the updated model in a new folder, or in its "
            "own (leave out --out)."
        )
    if held and not overwrite:
        raise ConfigError(
            f"{out} already holds a model: pass overwrite=True to replace it, or choose another folder to save in."
        )


def _read_for(estimator: TitansForecaster, source, long=None, **read) -> tuple[pd.DataFrame, list | None]:
    """The columns a saved model was fitted on, read from a dataset or file (its other columns unread), and the
    long table's columns it was read by (None: wide). A model fitted on a long table reads the file as one with
    the same columns, unless `long` names others or the file is wide (with the fitted columns instead)."""
    fitted = [str(c) for c in estimator.columns_]
    as_fitted = long or estimator.long_format_
    numbered_by = None
    if read.get("date_column") is None and _numbered_by_its_column(estimator):  # else its rows were counted on
        numbered_by = estimator.index_name_
        read = read | {"date_column": numbered_by}
    try:
        frame = load_dataset(source, **read, long=as_fitted, columns=fitted)
        _say_other_series(frame.attrs.pop("other_series", []), source, fitted)
        return frame, as_fitted
    except LongColumnsError as exc:
        if long:
            raise
        long_error = exc
    except MissingColumnsError as exc:
        kind = "series" if as_fitted else "columns"  # a long table's are the ids of its series
        raise MissingColumnsError(f"{exc} The model was fitted on the {kind} {fitted}: give data with them.") from None
    except DataValidationError as exc:  # after its subclasses above
        if numbered_by is None or f"no column named {numbered_by!r}" not in str(exc):
            raise
        raise DataValidationError(
            f"{exc} The model numbered its rows by the column {numbered_by!r} (fit's date_column): give the rows "
            "with it, or name their time column with date_column= (CLI: --date-column)."
        ) from None
    try:
        return load_dataset(source, **read, columns=fitted), None
    except MissingColumnsError:
        raise MissingColumnsError(
            f"{long_error} Nor is it a wide table with the columns the model was fitted on, {fitted}: give the "
            "long table's columns, or name others with --id-col, --time-col, --target (long=)."
        ) from None


def forecast_csv(forecast: pd.DataFrame) -> str:
    """A forecast as CSV text (`forecast_table`)."""
    return forecast_table(forecast).to_csv(index=False)


def forecast_table(forecast: pd.DataFrame) -> pd.DataFrame:
    """A forecast as a file holds it: its dates first, then a column per series (and level: OT_q0.1); read
    from a long table (`attrs["long_format"]`: id, time, value), long as well: a row per (id, time), the value
    and its levels (y, y_q0.1, ...) beside them."""
    name = forecast.index.name or "date"
    while name in forecast.columns:  # a data column named as the index ("step" in a file without a time column)
        name = f"forecast_{name}"
    wide = forecast.rename_axis(name).reset_index()
    if not forecast.attrs.get("long_format"):
        return wide
    id_col, time_col, value = forecast.attrs["long_format"]
    levels = {column: level_columns(forecast, column) for column in forecast.columns}
    level_names = {series.name for found in levels.values() for series in found.values()}
    parts = []
    for column in (c for c in forecast.columns if c not in level_names):  # the series, each an id of the table
        part = {id_col: str(column), time_col: forecast.index, value: forecast[column].to_numpy()}
        part |= {f"{value}_{level_label(q)}": series.to_numpy() for q, series in levels[column].items()}
        parts.append(pd.DataFrame(part))
    return pd.concat(parts, ignore_index=True)


def _computed_decimals(estimator: TitansForecaster, forecast: pd.DataFrame) -> dict:
    """Decimals per forecast column (a target, and its levels: OT_q0.1) that the float32 network computes: it
    forecasts scaled values to about 1e-7, so a column of scale s is known to about s * 1e-7, whatever its mean
    (more digits would print float32 rounding as if it were information)."""
    decimals = {}
    for target, places in _decimals_per_target(estimator).items():
        names = [target, *(levels.name for levels in level_columns(forecast, target).values())]
        decimals |= {name: places for name in names if name in forecast.columns}
    return decimals


def _decimals_per_target(estimator: TitansForecaster) -> dict:
    import math

    scales = estimator._target_scaler().scale_
    return {target: max(0, math.ceil(7 - math.log10(s))) for target, s in zip(estimator.targets_, scales, strict=True)}


def _rounded_windows(estimator: TitansForecaster, table: pd.DataFrame) -> pd.DataFrame:
    """`window_forecasts`' table with its forecasts (the point and any levels) to the decimals the float32
    network computes (`_computed_decimals`), the scaled ones (float32) to 7: 0.7739, not 0.77389997243881226."""
    import numpy as np

    table = table.copy()
    places = table["column"].map(_decimals_per_target(estimator)).to_numpy(dtype=float)
    table["target_scaled"] = table["target_scaled"].round(7)
    forecasts = [name for name in table.columns if name == "prediction" or re.fullmatch(r"q[0-9.e-]+", name)]
    for name in forecasts:
        table[name] = np.round(table[name].to_numpy() * 10.0**places) / 10.0**places
        if f"{name}_scaled" in table.columns:
            table[f"{name}_scaled"] = table[f"{name}_scaled"].round(7)
    return table


def evaluate_saved(
    model_dir,
    dataset: str,
    data_dir=None,
    verify: bool | None = None,
    device: str | None = None,
    windows_out=None,
    plot=None,
    plot_columns=None,
    online: bool = False,
    overwrite: bool = False,
    **read,
) -> dict:
    """Test (and val) metrics of a saved model on a dataset, under that dataset's protocol.

    device: "auto" | "cpu" | "cuda" to run on (None: the device the model was saved with).
    windows_out: also write every test window's forecasts next to the truth there (`io.write_table`), and
    return the errors by horizon step and by column ("by_step", "by_column": DataFrames).
    The metrics are those of the forecaster the model was saved with ("forecaster_used": the model, or the floor
    that replaced it; "fallback_reason": why).
    online: also evaluate the test split as a stream ("test_online"; `TitansForecaster.online_forecasts`). A
    history-mode model always gives "val_online" and "test_online" beside its frozen "val" and "test". With
    online, windows_out and plot hold the online forecasts (points; "windows_online" says which were written).
    plot: also draw the test error by horizon step and a few test windows of `plot_columns` (default: the
    last column) to this PNG.
    read: how to read a user's file (fill, date_column, header, sep, long), as `load_dataset` takes them; a
    model fitted on a long table reads the file as one with the same columns unless `long` says otherwise.
    overwrite: replace an existing windows_out or plot (else refused before any work)."""
    check_device(device)
    if windows_out is not None:
        check_table_path(windows_out)
    for out in (windows_out, plot):
        check_out_file(out, [dataset], overwrite)
    check_plot_path(plot)
    estimator = TitansForecaster.load(model_dir, device=device)
    unknown = sorted(set(map(str, plot_columns or [])) - set(map(str, estimator.targets_)))
    if unknown:  # before anything is computed or written
        raise ConfigError(
            f"no column(s) {unknown} to plot; the model forecasts {[str(t) for t in estimator.targets_]}."
        )
    if online and estimator.mode != "history":
        estimator._check_streamable()  # before any work
    frame, _ = _read_for(estimator, dataset, data_dir=data_dir, verify=verify, **read)
    if benchmark_named(dataset) is not None:  # a benchmark: its protocol; a user's file keeps the fitted split
        estimator.protocol = protocol_for(dataset)
    try:
        metrics = {"val": estimator.evaluate(frame, split="val"), "test": estimator.evaluate(frame, split="test")}
    except SplitTooShortError as exc:  # its advice (another split, a shorter lookback) is not evaluate's to take
        raise SplitTooShortError(
            f"{dataset}: {exc.facts}",
            "A saved model is scored under the split, lookback and horizon it was fitted with: give it data long "
            "enough for them, or forecast from this data with `titans-ts predict` (predict(df) in Python), which "
            "needs no split.",
        ) from None
    metrics |= {"forecaster_used": estimator.forecaster_used_, "fallback_reason": estimator.fallback_reason_}
    if estimator._splits_at_dates(frame):  # a user's dated file split where the model's data was
        metrics["split_starts"] = estimator.split_starts_
    metrics |= {"mode": estimator.mode, **history_scores(estimator, frame), **quantile_record(estimator)}
    if estimator.mode == "history":
        metrics["online_blend"], metrics["online_from"] = estimator.online_blend, estimator.online_from
    if online and estimator.mode != "history":
        metrics["test_online"] = estimator.evaluate(frame, split="test", online=True)
    if windows_out is not None or plot is not None:
        from titans_ts.forecasting.diagnostics import errors_by

        table = estimator.window_forecasts(frame, split="test", online=online)  # the forecasts asked for
        metrics["windows_online"] = online
        by_step = errors_by(table, "step")
        with atomic_path_or_none(plot) as drawn:  # both written or neither
            if drawn is not None:
                from titans_ts.forecasting.plots import plot_evaluation

                used = estimator._forecaster_name()
                plot_evaluation(table, by_step, drawn, columns=plot_columns, forecaster=used)
            if windows_out is not None:
                write_table(_rounded_windows(estimator, table), windows_out)
        metrics |= {"by_step": by_step, "by_column": errors_by(table, "column"), "rows": len(table)}
    return metrics
