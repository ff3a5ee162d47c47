"""What the `titans-ts` commands do with a saved model, as library functions: forecast after a file
(`predict_csv`), read new rows into its memory (`update_saved`), score it on a dataset (`evaluate_saved`)."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import pandas as pd

from titans_ts.data import load_dataset, protocol_for
from titans_ts.data.registry import benchmark_named, lookup_name
from titans_ts.errors import (
    ConfigError,
    DatasetNotFoundError,
    DataValidationError,
    EmptyTableError,
    LongColumnsError,
    MissingColumnsError,
    SplitTooShortError,
    UnreadInputsWarning,
)
from titans_ts.forecasting.api import history_scores, quantile_record
from titans_ts.forecasting.estimator import TitansForecaster
from titans_ts.forecasting.forecast_tables import computed_decimals, forecast_table, rounded_windows
from titans_ts.forecasting.plots import check_plot_path, plot_forecast
from titans_ts.io import (
    CONFIG_FILE,
    LOCK_FILE,
    MODEL_FILE,
    atomic_path_or_none,
    check_out_file,
    check_table_path,
    write_table,
)
from titans_ts.training import check_device

__all__ = ["evaluate_saved", "predict_csv", "update_saved"]


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
    The forecast's values are rounded to what the float32 network computes (`computed_decimals`).

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
    forecast = forecast.round(computed_decimals(estimator, forecast))
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
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} is a file: a model is saved as a folder; give a folder path with --out.")
    if not out.exists() or (model_dir.exists() and os.path.samefile(out, model_dir)):
        return
    held = sorted(path.name for path in out.iterdir() if path.name != LOCK_FILE)  # a killed run's lock: no file
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
                write_table(rounded_windows(estimator, table), windows_out)
        metrics |= {"by_step": by_step, "by_column": errors_by(table, "column"), "rows": len(table)}
    return metrics
