"""`titans-ts predict`, `update` and `evaluate`: what is done with a model `titans-ts fit` saved. Registered on
the app by cli/ts.py, in the order its --help lists them."""

from __future__ import annotations

from pathlib import Path

import typer

from cli._common import console, err_console, write_table_text
from cli.options import DATA, DATA_FILE, DATA_SOURCE, DEVICE, REPLACE_FILES, Reading, chosen_levels, names
from cli.ts_tables import (
    blend_note,
    errors_table,
    forecaster_note,
    history_note,
    metrics_table,
    online_note,
    print_quantile_scores,
)

MODEL_DIR = typer.Option(..., "--model", "-m", help="A folder written by `titans-ts fit`.")


def predict(
    model: Path = MODEL_DIR,
    input: Path = typer.Option(
        None,
        "--input",
        "-i",
        help="A CSV, TSV or parquet file with the model's columns (and a time column, else its rows are steps), "
        "or a registered dataset's name (ETTh1): the forecast after its end \\[default: the forecast after the "
        "last row the model has read, fit's data and every `titans-ts update`].",
        show_default=False,
    ),
    out: Path = typer.Option(
        None,
        help="Where to write the forecast, in the format its name says: .csv (.csv.gz compressed), .tsv or "
        ".parquet; other names CSV, other formats' names (.xlsx, .json) refused (default: print it as CSV).",
    ),
    plot: Path = typer.Option(None, help="Also draw the forecast of the last column to this PNG."),
    quantiles: str = typer.Option(
        None,
        "--quantiles",
        help="Of a model fitted with --quantiles, the levels to write, e.g. 0.1,0.9, or none for the point "
        "forecast alone \\[default: all it has]; one column per (column, level): OT_q0.1 ...",
    ),
    source: dict = DATA_SOURCE,
    reading: Reading = DATA_FILE,
    device: str = DEVICE,
    overwrite: bool = REPLACE_FILES,
) -> None:
    """Forecast the horizon after the end of a CSV with a saved model (original units, future timestamps).

    Without --input: the forecast after the last row the model has read (its fit's data, then every
    `titans-ts update`), from the memory it carries. A model fitted with --quantiles also writes its levels: a
    column per (column, level), e.g. OT_q0.1."""
    from titans_ts.forecasting.forecast_tables import forecast_csv
    from titans_ts.forecasting.saved import predict_csv

    chosen = chosen_levels(quantiles)
    options = dict(device=device, quantiles=chosen, overwrite=overwrite, **source, **reading.for_saved_model())
    forecast, written = predict_csv(model, input, out, plot, **options)
    used = {"forecaster_used": forecast.attrs["forecaster"], "fallback_reason": forecast.attrs["fallback_reason"]}
    said = console if written else err_console  # stdout may be the CSV
    said.print(forecaster_note(used), highlight=False)
    if forecast.attrs.get("history_read_rows") and used["forecaster_used"] == "model":
        said.print(
            f"History mode: the memory read the {forecast.attrs['history_read_rows']} rows of --input from the trained "
            "memory, not the memory the model carries (leave out --input for the forecast after the rows it has "
            "read: fit's data and every update).",
            highlight=False,
        )
    if written is None:
        write_table_text(forecast_csv(forecast))
    else:
        console.print(
            f"Wrote the forecast of {len(forecast)} steps ({forecast.index[0]} .. {forecast.index[-1]}) to {written}."
        )
    if plot:
        console.print(f"Plot: {plot}")


def update(
    model: Path = MODEL_DIR,
    input: Path = typer.Option(
        ...,
        "--input",
        "-i",
        help="A CSV, TSV or parquet file of new rows with the model's columns: the rows after the last one the "
        "model has read, in time order, at its step (a time column, else its rows count on as steps).",
    ),
    out: Path = typer.Option(
        None,
        help="The folder to save the updated model in: a new one, or one an earlier update saved in (with "
        "--overwrite) \\[default: the model's own folder, replaced].",
        show_default=False,
    ),
    reading: Reading = DATA_FILE,
    device: str = DEVICE,
    overwrite: bool = typer.Option(
        False, "--overwrite/--no-overwrite", help="Replace a model already in --out (else refused)."
    ),
) -> None:
    """Let a saved model read new rows, and save it: its memory keeps learning from them (streaming).

    Then `titans-ts predict --model MODEL` (without --input) forecasts after the last new row from the memory it
    carries. Rows at or before the last one it has read (dated rows; a file without a time column counts on
    as new steps), or rows off its time grid, are refused and nothing is written; a file with no rows changes
    nothing. A history model (--mode history) reads on along time, as it was trained to. A window model (the
    default mode) reads each new row's window from the carried memory; it was trained from the fresh memory
    every window, and carrying it made its benchmark forecasts worse (docs/forecasting.md): for its frozen
    forecast, pass the recent rows to `titans-ts predict --input` instead. Example, once a day:
    `titans-ts update -m runs/my-model -i today.csv && titans-ts predict -m runs/my-model --out next.csv`."""
    from titans_ts.forecasting.floors import MODEL as THE_MODEL
    from titans_ts.forecasting.saved import update_saved

    options = dict(device=device, overwrite=overwrite, **reading.for_saved_model())
    estimator, rows, saved = update_saved(model, input, out, **options)
    if saved is None:
        console.print(f"No rows in {input}: the model is unchanged.")
        return
    last, name = estimator.last_index_, estimator.index_name_
    where = str(last)
    if isinstance(last, int):  # steps counted (a file without a time column), or numbered by a column of its own
        where = f"{name if getattr(estimator, 'numbered_', False) and name is not None else 'step'} {last}"
    console.print(
        f"The model read {len(rows)} new rows; it has now read up to {where}, and is saved in {saved}. "
        f"`titans-ts predict --model {saved}` forecasts the {estimator.horizon} steps after it."
    )
    fit_records = [name for name in ("metrics.json", "forecast.png") if (saved / name).is_file()]
    if fit_records:  # a run folder updated in place: its records stay the fit's
        console.print(f"{' and '.join(fit_records)} in it are the fit's (its scores, its last test window), as before.")
    if estimator.forecaster_used_ != THE_MODEL:
        console.print(f"{estimator.forecaster_used_} forecasts in the model's place: it carries no memory.")
    if estimator.mode == "window" and estimator.forecaster_used_ == THE_MODEL:
        console.print(
            "Note: a window model was trained from the fresh memory every window; carrying it made its benchmark "
            "forecasts worse (docs/forecasting.md). Its frozen forecast: `titans-ts predict --input` the recent rows."
        )


def evaluate(
    model: Path = MODEL_DIR,
    dataset: str = typer.Option(
        ..., "--dataset", "-d", help="A registered name or a table's path (CSV, parquet, ...).", rich_help_panel=DATA
    ),
    source: dict = DATA_SOURCE,
    out: Path = typer.Option(
        None,
        help="Write every test window's forecast next to the truth here, in the format its name says (.csv, .csv.gz, "
        ".tsv or .parquet; other names CSV, other formats' names such as .xlsx refused): one row per "
        "(window, step, column) with origin, time, prediction and target in original units and scaled (with "
        "--online the stream's forecasts, with their quantile levels; else each window's own, a --mode history "
        "model's frozen ones).",
    ),
    plot: Path = typer.Option(
        None, help="Draw the test error by horizon step and a few test windows to this PNG (with --plot-columns)."
    ),
    plot_columns: str = typer.Option(
        None, "--plot-columns", help="Comma-separated columns for --plot \\[default: the last target]."
    ),
    online: bool = typer.Option(
        False,
        "--online",
        help="Also evaluate the test split as a stream: each window forecast in time order from the memory "
        "state carried from the windows before it (memory variant lmm). A --mode history model always shows "
        "both: frozen (the memory reset for every window) and online (the memory reading the series in time order), "
        "unless a floor forecasts in its place (then one val/test pair, the floor's). With --out / --plot, the "
        "windows written and drawn are the online forecasts.",
    ),
    reading: Reading = DATA_FILE,
    device: str = DEVICE,
    overwrite: bool = REPLACE_FILES,
) -> None:
    """Evaluate a saved model on a dataset under its protocol: val and test MSE / MAE (scaled data), and with
    quantiles their coverage, width and pinball loss.

    With --out, also the test errors by column and by horizon step, scaled and in original units."""
    from titans_ts.forecasting.saved import evaluate_saved

    read = reading.for_saved_model()
    metrics = evaluate_saved(
        model, dataset, **source, device=device, windows_out=out, plot=plot, plot_columns=names(plot_columns),
        online=online, overwrite=overwrite, **read,
    )  # fmt: skip
    console.print(metrics_table(f"{dataset}: {model}", metrics))
    if metrics.get("split_starts"):
        console.print("Split by the model's dates: validation from {}, test from {}.".format(*metrics["split_starts"]))
    print_quantile_scores(metrics)
    console.print(forecaster_note(metrics), highlight=False)
    if metrics["mode"] == "history" and metrics["forecaster_used"] == "model":  # a floor's pair is one kind
        console.print(history_note(metrics["online_from"]), highlight=False)
        blended = blend_note(metrics["online_blend"])
        if blended:
            console.print(blended, highlight=False)
    elif online:
        console.print(online_note(metrics))
    if "by_step" in metrics:
        kind = ", online" if metrics["windows_online"] else (", frozen" if metrics["mode"] == "history" else "")
        console.print(errors_table(f"Test errors by column{kind}", metrics["by_column"]))
        by_step = metrics["by_step"]
        shown = sorted({1, *(len(by_step) * q // 4 for q in (1, 2, 3)), len(by_step)} - {0})
        console.print(errors_table(f"Test errors by horizon step{kind} (some steps)", by_step.loc[shown]))
    if out is not None:
        which = ""
        if metrics["windows_online"]:
            which = ": the online forecasts (the memory carried through the rows before each window)"
        elif metrics["mode"] == "history":
            which = ": the frozen forecasts (the memory reset for every window; --online for the carried memory's)"
        console.print(f"Wrote {metrics['rows']} rows (window x step x column) to {out}{which}.")
    if plot is not None:
        console.print(f"Plot: {plot}")
