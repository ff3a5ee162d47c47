"""`titans-ts`: forecasting with the Titans neural memory."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from cli._common import console, err_console, exit_if_interrupted, make_app, write_table_text
from cli.options import (
    DATA,
    DATA_FILE,
    DATA_SOURCE,
    DEVICE,
    MODEL,
    REPLACE_FILES,
    RUN,
    RUN_FOLDER,
    SCALE_OUT,
    SPLIT,
    TRAINING,
    Reading,
    chosen_levels,
    grouped,
    integers,
    names,
)
from cli.ts_options import HISTORY, QUANTILES
from cli.ts_tables import (
    HISTORY_NOTE,
    benchmark_cell,
    blend_note,
    errors_table,
    forecaster_note,
    metrics_table,
    online_note,
    print_quantile_scores,
    reset_mix_note,
)
from titans_ts.forecasting.benchmark import HORIZONS, MODELS
from titans_ts.forecasting.defaults import ESTIMATOR

app = make_app(
    "titans-ts",
    "Long-term time-series forecasting with the Titans neural long-term memory.\n\n"
    "Start with `titans-ts datasets` to see the benchmark data, and `titans-ts splits ETTh1` to see how "
    "the evaluation protocol cuts it. Your own data: `titans-ts fit --dataset my.csv --horizon 24` (a CSV, TSV or "
    "parquet file with a time column, or none), then `titans-ts predict --model runs/my-lmm-h24-s0 --input my.csv`.",
)

DATASET = typer.Option(
    ...,
    "--dataset",
    "-d",
    help="A registered name (ETTh1, weather, ...) or a table's path (CSV, parquet, ...).",
    rich_help_panel=DATA,
)
LOOKBACK = typer.Option(ESTIMATOR["lookback"], help="Steps of history the model sees.", rich_help_panel=DATA)
FIT_LOOKBACK = typer.Option(
    None,
    "--lookback",
    help=f"Steps of history the model sees \\[default: {ESTIMATOR['lookback']}; with --mode history on a benchmark "
    "dataset, its searched lookback (`titans-ts defaults`)].",
    show_default=False,
    rich_help_panel=DATA,
)
HORIZON = typer.Option(
    ESTIMATOR["horizon"], help="Steps to forecast (the benchmark uses 96, 192, 336, 720).", rich_help_panel=DATA
)
COLUMNS = typer.Option(
    None,
    "--columns",
    help="The columns to read as inputs, comma-separated \\[default: all columns but the time column; a text "
    "column is refused, so leave it out here].",
    rich_help_panel=DATA,
)
CHOSEN = " Default: the dataset's setting (`titans-ts defaults`)."


def _model(help: str):
    return typer.Option(None, help=help + CHOSEN, rich_help_panel=MODEL)


def _setting(name: str, help: str, *flags: str):
    """A model option whose default is the estimator's (defaults.ESTIMATOR), not a family's choice."""
    return typer.Option(ESTIMATOR[name], *flags, help=help, rich_help_panel=MODEL)


def _training(help: str, chosen: bool = True, default=None):
    return typer.Option(default, help=help + (CHOSEN if chosen else ""), rich_help_panel=TRAINING)


EPOCHS = _training("Maximum epochs (early stopping on validation MSE, pinball loss with --quantiles, may stop sooner).")


@app.command()
def datasets() -> None:
    """List the registered datasets, their shape and split protocol, and where each is found."""
    from titans_ts.forecasting.api import list_datasets

    table = Table(title="Registered time-series datasets")
    table.add_column("name", no_wrap=True)  # the name fit takes: never cut, whatever the width
    for column in ("rows x cols", "freq", "split", "file", "found at"):
        table.add_column(column, overflow="fold")
    for row in list_datasets():
        where = row["found_at"] or "[yellow]not here[/] (supply the file; see README)"
        table.add_row(row["name"], f"{row['rows']} x {row['columns']}", row["freq"], row["split"], row["file"], where)
    console.print(table)
    console.print(
        "Your own data: pass the path of a CSV, TSV, parquet, Feather, JSON or Excel file of numeric columns (with "
        "a time column, or without one: its rows are steps 0, 1, 2, ...)."
    )


@app.command()
@grouped
def splits(
    dataset: str = typer.Argument(
        ..., metavar="DATASET", help="A registered name (ETTh1, weather, ...) or a table's path (CSV, parquet, ...)."
    ),
    lookback: int = LOOKBACK,
    horizon: int = HORIZON,
    source: dict = DATA_SOURCE,
    reading: Reading = DATA_FILE,
    columns: str = COLUMNS,
    split: dict = SPLIT,
) -> None:
    """Show how the benchmark protocol splits a dataset: rows, dates and windows of train / val / test.

    A file is read as fit reads it (--columns, --target, --sep, ...)."""
    from titans_ts.data import describe_splits

    summary = describe_splits(
        dataset, lookback, horizon, **source, **reading.read, columns=names(columns), target=reading.targets, **split
    )
    table = Table(
        title=f"{summary['name']}: {summary['rows']} rows x {summary['columns']} columns, "
        f"protocol {summary['protocol']}, lookback {lookback}, horizon {horizon}"
    )
    for column in ("split", "rows [start, end)", "first timestamp", "last timestamp", "windows"):
        table.add_column(column)
    for part in summary["splits"]:
        table.add_row(
            part["split"], f"[{part['start']}, {part['end']})", part["first"], part["last"], str(part["windows"])
        )
    console.print(table)
    console.print(
        "The scaler is fitted on the train rows only; val/test start `lookback` rows before their "
        "split so that every row of the split is forecast; every window is evaluated."
    )


@app.command()
@grouped
def fit(
    dataset: str = DATASET,
    horizon: int = HORIZON,
    lookback: int = FIT_LOOKBACK,
    source: dict = DATA_SOURCE,
    reading: Reading = DATA_FILE,
    columns: str = COLUMNS,
    split: dict = SPLIT,
    variant: str = _model(
        "Sequence mixer: lmm, mac, mag, mal (Titans blocks), or the baselines attention, dlinear, and the untrained "
        "naive (repeat the last value) and seasonal_naive (repeat the last season, see --season)."
    ),
    tokens: str = _model("variate (one token per column) or patch (time patches)."),
    dim: int = _model("Model width."),
    layers: int = _model("Number of SiMBA blocks."),
    memory_depth: int = _model("Layers of the neural memory's MLP."),
    dropout: float = _model("Dropout."),
    season: int = typer.Option(
        None,
        help="Steps per season for --variant seasonal_naive (default: one day at the data's frequency, a week for "
        "daily data; weekly or undated data: the training split's autocorrelation peak).",
        rich_help_panel=MODEL,
    ),
    mode: str = _setting(
        "mode",
        "window: each forecast reads its --lookback window (the default). history: the memory reads each "
        "column's whole history in time order, patch by patch (--patch-len rows), and keeps learning through "
        "validation and test; a forecast adds the local window. On a benchmark dataset the long-memory search's "
        "settings are the defaults (`titans-ts defaults`); on your data pair it with --lookback 336 or 720. "
        "--variant is then lmm (the memory) or mlp (its ablation, no memory). On the benchmark grid (issue 28) it "
        "is behind the baselines.",
    ),
    patch_len: int = _setting("patch_len", "Rows per patch (--tokens patch, and --mode history)."),
    history_mode: dict = HISTORY,
    quantile_levels: dict = QUANTILES,
    epochs: int = EPOCHS,
    patience: int = _training("Epochs without validation improvement before stopping."),
    batch_size: int = _training("Windows per training batch."),
    lr: float = _training("Peak learning rate (AdamW, warm-up then cosine)."),
    seed: int = _training("Random seed.", chosen=False, default=ESTIMATOR["seed"]),
    max_minutes: float = _training("Stop training after this many minutes.", chosen=False),
    fallback: str = typer.Option(
        ESTIMATOR["fallback"],
        help="auto: when the trained model's validation MSE is behind the best naive floor's (repeat last, "
        "seasonal naive), forecast with that floor; off: always the model.",
        rich_help_panel=TRAINING,
    ),
    out: Path = typer.Option(
        None, help="Output folder (default: runs/<dataset>-<variant>[-history]-h<H>-s<seed>).", rich_help_panel=RUN
    ),
    run_folder: dict = RUN_FOLDER,
    device: str = DEVICE,
    scale_out: dict = SCALE_OUT,
) -> None:
    """Train a forecaster under the benchmark protocol; print val/test MSE and MAE; save model and plot.

    Writes OUT/model.safetensors, config.json, metrics.json and forecast.png. Metrics are MSE/MAE on the
    scaled data (train-rows StandardScaler) over every window of the split.
    """
    from titans_ts.distributed import is_main_process
    from titans_ts.forecasting.api import fit_dataset
    from titans_ts.training import epoch_number, stop_note

    main = is_main_process()  # under DDP every rank runs this command; rank 0 prints and writes

    def announce(settings) -> None:
        params = settings.params
        if main:
            history = " (history mode)" if params["mode"] == "history" else ""
            console.print(
                f"Fitting [bold]{params['variant']}[/]{history} on [bold]{dataset}[/], lookback {params['lookback']}, "
                f"horizon {params['horizon']}..."
            )
            chosen = ", ".join(f"{k}={v}" for k, v in settings.chosen.items())
            console.print(f"Settings ({settings.source} unless given): {chosen}", highlight=False)

    given = dict(variant=variant, tokens=tokens, dim=dim, layers=layers, memory_depth=memory_depth, dropout=dropout)
    given |= dict(season=season, epochs=epochs, patience=patience, batch_size=batch_size, lr=lr, seed=seed)
    given |= dict(fallback=fallback, mode=mode, patch_len=patch_len, **history_mode, **quantile_levels)
    record = fit_dataset(
        dataset, horizon=horizon, lookback=lookback, out=out, **source, **reading.read, columns=names(columns),
        target=reading.targets, **split, **given, max_minutes=max_minutes, **run_folder, device=device, **scale_out,
        on_start=announce,
    )  # fmt: skip
    if not main:
        return
    history = record["history"]
    split_said = record["protocol"]
    if record.get("split_dates"):  # rows_A_B, found from the dates given: say the dates
        split_said = "validation from {}, test from {}".format(*record["split_dates"])
    title = f"{record['dataset']} ({split_said}), {record['variant']}, horizon {record['horizon']}"
    console.print(metrics_table(title, record))
    print_quantile_scores(record, notes=False)  # fit warned of each note as it calibrated
    model_score = "model (online)" if record["mode"] == "history" else "model"
    scores = {model_score: record["model_val"]["mse"], **record["floors"]}
    console.print(f"Validation MSE, the same windows: {', '.join(f'{k} {v:.4f}' for k, v in scores.items())}.")
    console.print(forecaster_note(record), highlight=False)
    for note in (reset_mix_note(history), blend_note(record["params"].get("online_blend", 1.0))):
        if note:
            console.print(note, highlight=False)
    epochs_note = (
        f"Best epoch {epoch_number(history['best_epoch'])} of {history['epochs_run']} run ({history['stop_reason']})"
        if history.get("trained", True)
        else "Nothing to train (a naive forecast)"
    )
    stopped = stop_note(history, max_minutes)
    if stopped:
        console.print(f"[bold yellow]{stopped}[/]", highlight=False)
    if record["replaced"]:
        console.print(f"Replaced the model saved earlier in {record['out']}/ (--overwrite).")
    console.print(
        f"{epochs_note}; {record['wall_seconds']:.0f} s on {record['device']}. "
        f"Saved to {record['out']}/ (model.safetensors, config.json, metrics.json, forecast.png)."
    )
    exit_if_interrupted(history)


@app.command()
def defaults() -> None:
    """Show the settings `titans-ts fit` uses, in window mode and with --mode history.

    Two tables: the general default and each benchmark family's choice, then the settings `titans-ts fit
    --mode history` uses on your data and on each benchmark dataset.

    All were chosen on validation MSE only (experiments/results/forecasting_search.md; for --mode history,
    experiments/results/long_memory_search.md). Your own CSV gets the general default; a benchmark dataset of
    one of the families below gets its family's (other registered ones, such as ECL, the general default), and
    with --mode history the long-memory search's choice for it where its search
    is complete. Any option you give wins.
    """
    from titans_ts.forecasting.defaults import GENERAL, HISTORY_BASE, HISTORY_BY_DATASET, defaults_for, families

    table = Table(title="Default settings of `titans-ts fit`")
    table.add_column("setting")
    table.add_column("general (your data)")
    chosen = families()
    for family, (datasets, _) in chosen.items():
        table.add_column(f"{family} ({', '.join(datasets)})")
    for key, value in GENERAL.items():
        table.add_row(key, str(value), *(str(settings[key]) for _, settings in chosen.values()))
    console.print(table)
    history = Table(
        title="With --mode history: your data (and a dataset the long-memory search did not cover) gets the first "
        "column, each benchmark dataset the search's choice for it"
    )
    history.add_column("setting")
    history.add_column("your data")
    for dataset in HISTORY_BY_DATASET:
        history.add_column(dataset)
    columns = [None, *HISTORY_BY_DATASET]
    settings = {dataset: ESTIMATOR | defaults_for(dataset, "history") for dataset in columns}
    keys = ["lookback", "local_model", "error_tokens", "local_pretrain", *HISTORY_BASE]
    keys += [key for choice in HISTORY_BY_DATASET.values() for key in choice]
    for key in dict.fromkeys(keys):
        history.add_row(key, *(str(settings[dataset][key]) for dataset in columns))
    console.print(history)


MODEL_DIR = typer.Option(..., "--model", "-m", help="A folder written by `titans-ts fit`.")


@app.command()
@grouped
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
    from titans_ts.forecasting.api import forecast_csv, predict_csv

    chosen = chosen_levels(quantiles)
    options = dict(device=device, quantiles=chosen, overwrite=overwrite, **source, **reading.for_saved_model())
    forecast, written = predict_csv(model, input, out, plot, **options)
    used = {"forecaster_used": forecast.attrs["forecaster"], "fallback_reason": forecast.attrs["fallback_reason"]}
    (console if written else err_console).print(forecaster_note(used), highlight=False)  # stdout may be the CSV
    if written is None:
        write_table_text(forecast_csv(forecast))
    else:
        console.print(
            f"Wrote the forecast of {len(forecast)} steps ({forecast.index[0]} .. {forecast.index[-1]}) to {written}."
        )
    if plot:
        console.print(f"Plot: {plot}")


@app.command()
@grouped
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
    from titans_ts.forecasting.api import update_saved
    from titans_ts.forecasting.floors import MODEL as THE_MODEL

    options = dict(device=device, overwrite=overwrite, **reading.for_saved_model())
    estimator, rows, saved = update_saved(model, input, out, **options)
    if saved is None:
        console.print(f"No rows in {input}: the model is unchanged.")
        return
    last = estimator.last_index_
    where = f"step {last}" if isinstance(last, int) else str(last)  # a file without a time column counts steps
    console.print(
        f"The model read {len(rows)} new rows; it has now read up to {where}, and is saved in {saved}. "
        f"`titans-ts predict --model {saved}` forecasts the {estimator.horizon} steps after it."
    )
    if estimator.mode == "window" and estimator.forecaster_used_ == THE_MODEL:
        console.print(
            "Note: a window model was trained from the fresh memory every window; carrying it made its benchmark "
            "forecasts worse (docs/forecasting.md). Its frozen forecast: `titans-ts predict --input` the recent rows."
        )


@app.command()
@grouped
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
        "--online the stream's point forecasts, without quantile levels; else each window's own, a --mode history "
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
    from titans_ts.forecasting.api import evaluate_saved

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
    if metrics["mode"] == "history":
        console.print(HISTORY_NOTE, highlight=False)
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
            points = ", point forecasts without the quantile levels" if metrics.get("quantiles") else ""
            which = f": the online forecasts{points} (the memory carried through the rows before each window)"
        elif metrics["mode"] == "history":
            which = ": the frozen forecasts (the memory reset for every window; --online for the carried memory's)"
        console.print(f"Wrote {metrics['rows']} rows (window x step x column) to {out}{which}.")
    if plot is not None:
        console.print(f"Plot: {plot}")


@app.command()
@grouped
def benchmark(
    dataset: str = DATASET,
    horizons: str = typer.Option(",".join(map(str, HORIZONS)), help="Comma-separated horizons.", rich_help_panel=DATA),
    lookback: int = typer.Option(
        ESTIMATOR["lookback"], help="Steps of history every model sees.", rich_help_panel=DATA
    ),
    source: dict = DATA_SOURCE,
    reading: Reading = DATA_FILE,
    columns: str = COLUMNS,
    split: dict = SPLIT,
    seeds: str = typer.Option("0", help="Comma-separated seeds (mean and std over them).", rich_help_panel=TRAINING),
    models: str = typer.Option(
        ",".join(m for m in MODELS if m != "lmm-general"),
        help="Comma-separated: lmm (ours, the dataset's defaults), lmm-general (ours, the general default), "
        "attention (variate tokens, iTransformer-like), attention-patch "
        "(patch tokens, PatchTST-like), dlinear, naive (repeat-last), seasonal_naive.",
        rich_help_panel=MODEL,
    ),
    epochs: int = EPOCHS,
    max_minutes: float = _training("Stop each run's training after this many minutes (said per run).", chosen=False),
    out: Path = typer.Option(
        None,
        help="Folder for one JSON per run, and OUT/models/<run>/ for each run's model, checkpoints and plot "
        "(default: runs/benchmark/<dataset>).",
        rich_help_panel=RUN,
    ),
    device: str = DEVICE,
) -> None:
    """Run models x horizons x seeds on one dataset in one harness; print test MSE / MAE per horizon.

    Resumable: a run whose JSON exists in OUT is read, not repeated (only when it was asked for, and made with,
    the same settings); a run stopped part-way continues from its checkpoint. A run that fails is reported and
    the others go on. Seed 0 of every model runs first.
    Metrics: MSE/MAE on the scaled data over every test window; each model stops early on validation.
    The trained models use the dataset's defaults (`titans-ts defaults`), as `titans-ts fit` does. Your own
    file is read and split with fit's data options (--sep, --date-column, --fill, --target, --split, ...).
    """
    from titans_ts.errors import ConfigError
    from titans_ts.forecasting.benchmark import default_runs_dir, run_benchmark, summarize
    from titans_ts.forecasting.settings import dataset_label
    from titans_ts.training import epochs_in_words

    horizon_list, seed_list = integers(horizons, "--horizons"), integers(seeds, "--seeds", example="0,1,2")
    if any(h < 1 for h in horizon_list) or any(s < 0 for s in seed_list):
        raise ConfigError(
            f"--horizons {horizons} --seeds {seeds}: horizons are numbers of steps (1 or more), seeds whole numbers "
            "from 0 (e.g. --horizons 96,192 --seeds 0,1,2)."
        )
    model_list = [m.strip() for m in models.split(",") if m.strip()]
    if not model_list:
        raise ConfigError(f"--models {models!r} names no model; choose from {', '.join(MODELS)}.")
    runs_dir = out or default_runs_dir(dataset)
    total = len(horizon_list) * len(seed_list) * len(model_list)
    done, failed = [], []

    def report(name, record, reused):
        done.append(name)
        state = "(from an earlier run)" if reused else f"{record['wall_seconds']:.0f} s"
        history = record.get("history") or {}
        if history.get("resumed") and not reused:
            state += ", continued from its checkpoint"
        if history.get("stop_reason") == "time_budget":  # a capped run is never silent
            steps = f" ({history['steps']} steps)" if history.get("steps") is not None else ""
            state += f", stopped by its time cap after {epochs_in_words(history.get('epochs_run', '?'))}{steps}"
        console.print(f"[{len(done)}/{total}] {name}: test MSE {record['test']['mse']:.4f} {state}")

    def report_failure(name, error):
        done.append(name)
        failed.append(name)
        said = str(error).replace(  # fit's advice names an option benchmark does not have
            "pass season=<steps per season> (CLI --season), or a longer lookback",
            "give a longer --lookback, or leave seasonal_naive out of --models (titans-ts fit takes --season)",
        )
        err_console.print(f"[{len(done)}/{total}] {name}: failed: {said}", highlight=False, markup=False)

    records = run_benchmark(
        dataset, runs_dir, horizons=horizon_list, seeds=seed_list, models=model_list, lookback=lookback,
        on_run=report, on_error=report_failure, device=device,
        data={**source, **reading.read, "columns": names(columns), **split},
        target=reading.targets, epochs=epochs, max_minutes=max_minutes,
    )  # fmt: skip
    table = Table(title=f"{dataset_label(dataset)}: test MSE / MAE, lookback {lookback}, seeds {seed_list}")
    for column in ["model", *(f"{h}" for h in horizon_list), "average"]:
        table.add_column(column)
    for model, row in summarize(records, horizon_list).items():
        cells = [benchmark_cell(row["horizons"].get(h), len(seed_list)) for h in horizon_list]  # "-": failed
        average = row["average"]
        table.add_row(model, *cells, "-" if average is None else f"{average[0]:.3f} / {average[1]:.3f}")
    console.print(table)
    other_lookbacks = sorted({(r["model"], r["lookback"]) for r in records if r.get("lookback", lookback) != lookback})
    for model, seen in other_lookbacks:  # seasonal naive sees at least one season
        console.print(f"{model} saw a lookback of {seen} steps (one season), the others {lookback}.")
    console.print(f"One JSON per run in {runs_dir}/.")
    if failed:
        raise ConfigError(
            f"{len(failed)} of {total} runs failed (said above: {', '.join(failed)}); the others are kept in "
            f"{runs_dir}: the same command runs only what is missing."
        )


def main() -> None:
    app()


if __name__ == "__main__":
    main()
