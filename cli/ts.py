"""`titans-ts`: forecasting with the Titans neural memory."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from cli._common import DEVICES, NUM_NODES, STRATEGY, console, make_app, scale_out, write_table_text

app = make_app(
    "titans-ts",
    "Long-term time-series forecasting with the Titans neural long-term memory.\n\n"
    "Start with `titans-ts datasets` to see the benchmark data, and `titans-ts splits ETTh1` to see how "
    "the evaluation protocol cuts it.",
)

DATA_DIR = typer.Option(
    None, "--data-dir", help="Folder holding dataset files (else $TITANS_DATA_DIR, bundled, cache)."
)
NO_VERIFY = typer.Option(False, "--no-verify", help="Skip the sha256 check of a registered dataset.")
FILL = typer.Option(None, "--fill", help="Fill NaN/inf values: ffill, interpolate or zero (default: refuse).")
DATE_COLUMN = typer.Option(None, "--date-column", help="Name of the timestamp column of your CSV (default: 'date').")
NO_HEADER = typer.Option(
    False, "--no-header", help="Your CSV has no header row: every row is data, columns are named x0, x1, ..."
)
SEP = typer.Option(None, "--sep", help="The delimiter of your CSV (default: sniffed among , ; tab |).")
ID_COL = typer.Option(None, "--id-col", help="Long format (id, time, value rows): the series id column.")
TIME_COL = typer.Option(None, "--time-col", help="Long format: the time column (timestamps or integer steps).")
TARGET = typer.Option(
    None,
    "--target",
    help="Wide table: the column(s) to forecast and score, comma-separated [default: all]; the other columns "
    "are covariates (read as inputs, not forecast). Long format: the value column (one panel column per id).",
)
COLUMNS = typer.Option(
    None, "--columns", help="The columns to read as inputs, comma-separated [default: all numeric columns]."
)
SPLIT = typer.Option(
    None, "--split", help="Your file's train,val,test fractions of the rows, e.g. 0.6,0.2,0.2 [default: 0.7,0.1,0.2]."
)
SPLIT_DATES = typer.Option(
    None,
    "--split-dates",
    help="Your dated file split by date: where validation and test begin, e.g. 2017-06-01,2017-10-01.",
)


def _split(text):
    """--split "0.6,0.2,0.2" -> (0.6, 0.2, 0.2)."""
    from titans_ts.errors import ConfigError

    if text is None:
        return None
    try:
        parts = tuple(float(p) for p in text.split(","))
    except ValueError:
        parts = ()
    if len(parts) != 3:
        raise ConfigError(f"--split takes three comma-separated fractions, e.g. 0.7,0.1,0.2; got {text!r}.")
    return parts


def _split_dates(text):
    """--split-dates "2017-06-01,2017-10-01" -> ("2017-06-01", "2017-10-01")."""
    from titans_ts.errors import ConfigError

    if text is None:
        return None
    parts = tuple(p.strip() for p in text.split(","))
    if len(parts) != 2 or not all(parts):
        raise ConfigError(
            f"--split-dates takes two comma-separated dates, where validation and test begin, e.g. "
            f"2017-06-01,2017-10-01; got {text!r}."
        )
    return parts


def _names(text):
    """--columns "a, b" -> ["a", "b"]."""
    return [part.strip() for part in text.split(",") if part.strip()] if text else None


def _reading(fill, date_column, no_header, sep, id_col, time_col, target, wide_target: bool = False) -> dict:
    """How to read a user's file, from the options every data-reading command shares. `--target` names
    the value column of a long table; on a wide table only `fit` takes it (`wide_target`): a saved model
    forecasts the targets it was fitted with."""
    from titans_ts.errors import ConfigError

    long = _long(id_col, time_col, target)
    if long is None and target is not None and not wide_target:
        raise ConfigError(
            "--target here only names the value column of a long-format table (with --id-col and --time-col): "
            "a saved model forecasts the target columns it was fitted with."
        )
    return {"fill": fill, "date_column": date_column, "header": not no_header, "sep": sep, "long": long}


def _long(id_col, time_col, target):
    """The long-format columns: all three, or None for a wide table (where --target picks targets)."""
    from titans_ts.errors import ConfigError

    given = {"--id-col": id_col, "--time-col": time_col, "--target": target}
    if id_col is None and time_col is None:
        return None
    missing = [flag for flag, value in given.items() if value is None]
    if missing:
        needed = "a long-format table needs --id-col, --time-col and --target"
        raise ConfigError(f"{needed}; add {', '.join(missing)}.")
    return (id_col, time_col, target)


DEVICE = typer.Option(
    "auto", "--device", help="Where the model runs: auto (CUDA when available, else CPU), cpu or cuda."
)


@app.command()
def datasets() -> None:
    """List the registered datasets, their shape and split protocol, and where each is found."""
    from titans_ts.data import registered_datasets
    from titans_ts.data.loading import locate
    from titans_ts.errors import DatasetNotFoundError

    table = Table(title="Registered time-series datasets")
    for column in ("name", "rows x cols", "freq", "split", "file", "found at"):
        table.add_column(column)
    for info in registered_datasets():
        try:
            where = str(locate(info, download=False))
            where = "bundled" if info.bundled and where == str(info.bundled_path) else where
        except DatasetNotFoundError:
            where = "[yellow]not here[/] (supply the file; see README)"
        table.add_row(info.name, f"{info.rows} x {info.columns}", info.freq, info.split, info.file, where)
    console.print(table)
    console.print("Your own data: pass the path of a CSV with a date column and numeric columns.")


@app.command()
def splits(
    dataset: str = typer.Argument(..., help="A registered name (ETTh1, weather, ...) or the path of a CSV."),
    lookback: int = typer.Option(96, help="Input window length (rows)."),
    horizon: int = typer.Option(96, help="Forecast length (rows)."),
    data_dir: Path = DATA_DIR,
    no_verify: bool = NO_VERIFY,
    fill: str = FILL,
    date_column: str = DATE_COLUMN,
    no_header: bool = NO_HEADER,
    sep: str = SEP,
    id_col: str = ID_COL,
    time_col: str = TIME_COL,
    target: str = TARGET,
    split: str = SPLIT,
    split_dates: str = SPLIT_DATES,
) -> None:
    """Show how the benchmark protocol splits a dataset: rows, dates and windows of train / val / test."""
    from titans_ts.data import describe_splits

    summary = describe_splits(
        dataset,
        lookback,
        horizon,
        data_dir=data_dir,
        verify=not no_verify,
        **_reading(fill, date_column, no_header, sep, id_col, time_col, target, wide_target=True),
        split=_split(split),
        split_dates=_split_dates(split_dates),
    )
    table = Table(
        title=f"{summary['name']}: {summary['rows']} rows x {summary['columns']} columns, "
        f"protocol {summary['protocol']}, lookback {lookback}, horizon {horizon}"
    )
    for column in ("split", "rows [start, end)", "first timestamp", "last timestamp", "windows"):
        table.add_column(column)
    for split in summary["splits"]:
        table.add_row(
            split["split"],
            f"[{split['start']}, {split['end']})",
            split["first"],
            split["last"],
            str(split["windows"]),
        )
    console.print(table)
    console.print(
        "The scaler is fitted on the train rows only; val/test start `lookback` rows before their "
        "split so that every row of the split is forecast; every window is evaluated."
    )


VARIANT_HELP = (
    "Sequence mixer: lmm, mac, mag, mal (Titans blocks), or the baselines attention, dlinear, and the untrained "
    "naive (repeat the last value) and seasonal_naive (repeat the last season, see --season)."
)


DEFAULTS_NOTE = " Default: the dataset's setting (`titans-ts defaults`)."


@app.command()
def fit(
    dataset: str = typer.Option(..., "--dataset", "-d", help="A registered name (ETTh1, weather, ...) or a CSV path."),
    horizon: int = typer.Option(96, help="Steps to forecast (the benchmark uses 96, 192, 336, 720)."),
    lookback: int = typer.Option(96, help="Steps of history the model sees."),
    variant: str = typer.Option(None, help=VARIANT_HELP + DEFAULTS_NOTE),
    tokens: str = typer.Option(None, help="variate (one token per column) or patch (time patches)." + DEFAULTS_NOTE),
    dim: int = typer.Option(None, help="Model width." + DEFAULTS_NOTE),
    layers: int = typer.Option(None, help="Number of SiMBA blocks." + DEFAULTS_NOTE),
    memory_depth: int = typer.Option(None, help="Layers of the neural memory's MLP." + DEFAULTS_NOTE),
    dropout: float = typer.Option(None, help="Dropout." + DEFAULTS_NOTE),
    epochs: int = typer.Option(
        None, help="Maximum epochs (early stopping on validation MSE may stop sooner)." + DEFAULTS_NOTE
    ),
    patience: int = typer.Option(None, help="Epochs without validation improvement before stopping." + DEFAULTS_NOTE),
    batch_size: int = typer.Option(None, help="Windows per training batch." + DEFAULTS_NOTE),
    lr: float = typer.Option(None, help="Peak learning rate (AdamW, warm-up then cosine)." + DEFAULTS_NOTE),
    seed: int = typer.Option(0, help="Random seed."),
    max_minutes: float = typer.Option(None, help="Stop training after this many minutes."),
    season: int = typer.Option(
        None, help="Steps per season for --variant seasonal_naive (default: one day at the data's frequency)."
    ),
    out: Path = typer.Option(None, help="Output folder (default: runs/<dataset>-<variant>-h<H>-s<seed>)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a model already saved in --out."),
    resume: bool = typer.Option(
        False, "--resume", help="Continue a killed or interrupted run from its last checkpoint in --out."
    ),
    checkpoint_every: float = typer.Option(
        None, "--checkpoint-every", help="Also checkpoint every this many minutes (default: every epoch only)."
    ),
    data_dir: Path = DATA_DIR,
    no_verify: bool = NO_VERIFY,
    fill: str = FILL,
    date_column: str = DATE_COLUMN,
    no_header: bool = NO_HEADER,
    sep: str = SEP,
    id_col: str = ID_COL,
    time_col: str = TIME_COL,
    target: str = TARGET,
    columns: str = COLUMNS,
    split: str = SPLIT,
    split_dates: str = SPLIT_DATES,
    device: str = DEVICE,
    devices: int = DEVICES,
    num_nodes: int = NUM_NODES,
    strategy: str = STRATEGY,
) -> None:
    """Train a forecaster under the benchmark protocol; print val/test MSE and MAE; save model and plot.

    Writes OUT/model.safetensors, config.json, metrics.json and forecast.png. Metrics are MSE/MAE on the
    scaled data (train-rows StandardScaler) over every window of the split.
    """
    from titans_ts.distributed import is_main_process
    from titans_ts.forecasting.api import fit_dataset
    from titans_ts.forecasting.defaults import defaults_for, family_of
    from titans_ts.training import resolve_device, stop_note

    resolve_device(device)  # a bad --device is the one line printed, before any "Fitting..."
    given = dict(variant=variant, tokens=tokens, dim=dim, layers=layers, memory_depth=memory_depth, dropout=dropout)
    given.update(epochs=epochs, patience=patience, batch_size=batch_size, lr=lr)
    settings = {**defaults_for(dataset), **{k: v for k, v in given.items() if v is not None}}
    variant = settings["variant"]
    family = family_of(dataset)
    source = f"the {family} defaults" if family else "the general defaults"
    main = is_main_process()  # under DDP every rank runs this command; rank 0 prints and writes
    if main:
        console.print(f"Fitting [bold]{variant}[/] on [bold]{dataset}[/], lookback {lookback}, horizon {horizon}...")
        console.print(
            "Settings (" + source + " unless given): " + ", ".join(f"{k}={v}" for k, v in settings.items()),
            highlight=False,
        )
    record = fit_dataset(
        dataset,
        horizon=horizon,
        lookback=lookback,
        out=out,
        overwrite=overwrite,
        resume=resume,
        checkpoint_every=checkpoint_every,
        data_dir=data_dir,
        verify=not no_verify,
        **_reading(fill, date_column, no_header, sep, id_col, time_col, target, wide_target=True),
        split=_split(split),
        split_dates=_split_dates(split_dates),
        columns=_names(columns),
        target=None if _long(id_col, time_col, target) else _names(target),
        seed=seed,
        max_minutes=max_minutes,
        device=device,
        season=season,
        **scale_out(devices, num_nodes, strategy),
        **settings,
    )
    if not main:
        return
    console.print(_metrics_table(f"{record['dataset']} ({record['protocol']}), {variant}, horizon {horizon}", record))
    trained = record["history"].get("trained", True)
    history = record["history"]
    epochs_note = (
        f"Best epoch {history['best_epoch']} of {history['epochs_run']} run ({history['stop_reason']})"
        if trained
        else "Nothing to train (a naive forecast)"
    )
    stopped = stop_note(history, max_minutes)
    if stopped:
        console.print(f"[bold yellow]{stopped}[/]", highlight=False)
    console.print(
        f"{epochs_note}; {record['wall_seconds']:.0f} s on {record['device']}. "
        f"Saved to {record['out']}/ (model.safetensors, config.json, metrics.json, forecast.png)."
    )
    if history.get("stop_reason") == "interrupted":
        raise typer.Exit(130)  # the shell's code for Ctrl-C, after the best model so far is saved


@app.command()
def defaults() -> None:
    """Show the settings `titans-ts fit` uses: the general default and each benchmark family's choice.

    Both were chosen on validation MSE only (experiments/results/forecasting_search.md). Your own CSV gets
    the general default; a registered benchmark dataset gets its family's. Any option you give wins.
    """
    from titans_ts.forecasting.defaults import BY_FAMILY, FAMILY_OF, GENERAL, defaults_for

    table = Table(title="Default settings of `titans-ts fit`")
    table.add_column("setting")
    table.add_column("general (your data)")
    members = {family: [d for d, f in FAMILY_OF.items() if f == family] for family in BY_FAMILY}
    for family in BY_FAMILY:
        table.add_column(f"{family} ({', '.join(members[family])})")
    for key, value in GENERAL.items():
        table.add_row(key, str(value), *(str(defaults_for(members[f][0])[key]) for f in BY_FAMILY))
    console.print(table)


@app.command()
def predict(
    model: Path = typer.Option(..., "--model", "-m", help="A folder written by `titans-ts fit`."),
    input: Path = typer.Option(..., "--input", "-i", help="CSV with a date column and the training columns."),
    out: Path = typer.Option(None, help="Where to write the forecast CSV (default: print it)."),
    plot: Path = typer.Option(None, help="Also draw the forecast of the last column to this PNG."),
    fill: str = FILL,
    date_column: str = DATE_COLUMN,
    no_header: bool = NO_HEADER,
    sep: str = SEP,
    id_col: str = ID_COL,
    time_col: str = TIME_COL,
    target: str = TARGET,
    device: str = DEVICE,
) -> None:
    """Forecast the horizon after the end of a CSV with a saved model (original units, future timestamps)."""
    from titans_ts.forecasting.api import predict_csv

    forecast, written = predict_csv(
        model,
        input,
        out,
        plot,
        device=device,
        **_reading(fill, date_column, no_header, sep, id_col, time_col, target),
    )
    if written is None:
        write_table_text(forecast.to_csv(index_label=forecast.index.name or "date"))
    else:
        console.print(
            f"Wrote {len(forecast)} forecast rows ({forecast.index[0]} .. {forecast.index[-1]}) to {written}."
        )
    if plot:
        console.print(f"Plot: {plot}")


@app.command()
def evaluate(
    model: Path = typer.Option(..., "--model", "-m", help="A folder written by `titans-ts fit`."),
    dataset: str = typer.Option(..., "--dataset", "-d", help="A registered name or a CSV path."),
    data_dir: Path = DATA_DIR,
    no_verify: bool = NO_VERIFY,
    out: Path = typer.Option(
        None,
        help="Write every test window's forecast next to the truth here (.csv or .parquet): one row per "
        "(window, step, column) with origin, time, prediction and target in original units and scaled.",
    ),
    plot: Path = typer.Option(
        None, help="Draw the test error by horizon step and a few test windows to this PNG (with --plot-columns)."
    ),
    plot_columns: str = typer.Option(
        None, "--plot-columns", help="Comma-separated columns for --plot [default: the last target]."
    ),
    online: bool = typer.Option(
        False,
        "--online",
        help="Also evaluate the test split as a stream: each window forecast in time order from the memory "
        "state carried from the windows before it (memory variant lmm).",
    ),
    fill: str = FILL,
    date_column: str = DATE_COLUMN,
    no_header: bool = NO_HEADER,
    sep: str = SEP,
    id_col: str = ID_COL,
    time_col: str = TIME_COL,
    target: str = TARGET,
    device: str = DEVICE,
) -> None:
    """Evaluate a saved model on a dataset under its protocol: val and test MSE / MAE (scaled data).

    With --out, also the test errors by column and by horizon step, scaled and in original units."""
    from titans_ts.forecasting.api import evaluate_saved

    read = _reading(fill, date_column, no_header, sep, id_col, time_col, target)
    plot_columns = _names(plot_columns)
    metrics = evaluate_saved(
        model,
        dataset,
        data_dir=data_dir,
        verify=not no_verify,
        device=device,
        windows_out=out,
        plot=plot,
        plot_columns=plot_columns,
        online=online,
        **read,
    )
    console.print(_metrics_table(f"{dataset}: {model}", metrics))
    if online:
        m = metrics["test_online"]
        console.print(
            f"Test, online (memory carried forward): MSE {m['mse']:.4f}, MAE {m['mae']:.4f}, {m['windows']} windows."
        )
    if "by_step" in metrics:
        console.print(_errors_table("Test errors by column", metrics["by_column"]))
        by_step = metrics["by_step"]
        shown = sorted({1, *(len(by_step) * q // 4 for q in (1, 2, 3)), len(by_step)} - {0})
        console.print(_errors_table("Test errors by horizon step (some steps)", by_step.loc[shown]))
    if out is not None:
        console.print(f"Wrote {metrics['rows']} rows (window x step x column) to {out}.")
    if plot is not None:
        console.print(f"Plot: {plot}")


@app.command()
def benchmark(
    dataset: str = typer.Option(..., "--dataset", "-d", help="A registered name (ETTh1, weather, ...) or a CSV path."),
    horizons: str = typer.Option("96,192,336,720", help="Comma-separated horizons."),
    seeds: str = typer.Option("0", help="Comma-separated seeds (mean and std over them)."),
    models: str = typer.Option(
        "lmm,attention,attention-patch,dlinear,naive,seasonal_naive",
        help="Comma-separated: lmm (ours, the dataset's defaults), lmm-general (ours, the general default), "
        "attention (variate tokens, iTransformer-like), attention-patch "
        "(patch tokens, PatchTST-like), dlinear, naive (repeat-last), seasonal_naive.",
    ),
    lookback: int = typer.Option(96, help="Steps of history every model sees."),
    epochs: int = typer.Option(None, help="Maximum epochs per run (early stopping on validation MSE)." + DEFAULTS_NOTE),
    out: Path = typer.Option(None, help="Folder for one JSON per run (default: runs/benchmark/<dataset>)."),
    device: str = DEVICE,
) -> None:
    """Run models x horizons x seeds on one dataset in one harness; print test MSE / MAE per horizon.

    Resumable: a run whose JSON exists in OUT is read, not repeated. Seed 0 of every model runs first.
    Metrics: MSE/MAE on the scaled data over every test window; each model stops early on validation.
    The trained models use the dataset's defaults (`titans-ts defaults`), as `titans-ts fit` does.
    """
    from titans_ts.forecasting.api import dataset_label
    from titans_ts.forecasting.benchmark import mean_std, run_benchmark, summarize

    horizon_list, seed_list = _int_list(horizons, "--horizons"), _int_list(seeds, "--seeds")
    model_list = [m.strip() for m in models.split(",") if m.strip()]
    runs_dir = out or Path("runs") / "benchmark" / dataset_label(dataset)
    total = len(horizon_list) * len(seed_list) * len(model_list)
    done = []

    def report(name, record, reused):
        done.append(name)
        state = "(from an earlier run)" if reused else f"{record['wall_seconds']:.0f} s"
        console.print(f"[{len(done)}/{total}] {name}: test MSE {record['test']['mse']:.4f} {state}")

    records = run_benchmark(
        dataset,
        runs_dir,
        horizons=horizon_list,
        seeds=seed_list,
        models=model_list,
        lookback=lookback,
        on_run=report,
        device=device,
        **({} if epochs is None else {"epochs": epochs}),
    )
    table = Table(title=f"{dataset_label(dataset)}: test MSE / MAE, lookback {lookback}, seeds {seed_list}")
    for column in ["model", *(f"{h}" for h in horizon_list), "average"]:
        table.add_column(column)
    for model, row in summarize(records, horizon_list).items():
        cells = [f"{mean_std(c['mse'])} / {mean_std(c['mae'])}" for c in (row["horizons"][h] for h in horizon_list)]
        average = row["average"]
        table.add_row(model, *cells, "-" if average is None else f"{average[0]:.3f} / {average[1]:.3f}")
    console.print(table)
    console.print(f"One JSON per run in {runs_dir}/.")


def _int_list(text: str, option: str) -> list[int]:
    from titans_ts.errors import ConfigError

    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ConfigError(f"{option} takes comma-separated integers, e.g. 96,192; got {text!r}.") from None
    if not values:
        raise ConfigError(f"{option} is empty; give at least one value, e.g. 96.")
    return values


def _errors_table(title: str, errors) -> Table:
    table = Table(title=title)
    table.add_column(errors.index.name)
    for column in ("MSE (scaled)", "MAE (scaled)", "MSE", "MAE"):
        table.add_column(column)
    for key, row in errors.iterrows():
        table.add_row(str(key), *(f"{row[c]:.4g}" for c in ("mse_scaled", "mae_scaled", "mse", "mae")))
    return table


def _metrics_table(title: str, metrics: dict) -> Table:
    table = Table(title=title)
    for column in ("split", "MSE", "MAE", "windows"):
        table.add_column(column)
    for split in ("val", "test"):
        m = metrics[split]
        table.add_row(split, f"{m['mse']:.4f}", f"{m['mae']:.4f}", str(m["windows"]))
    return table


def main() -> None:
    app()


if __name__ == "__main__":
    main()
