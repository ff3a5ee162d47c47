"""`titans-ts`: forecasting with the Titans neural memory."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from cli._common import console, err_console, exit_if_interrupted, make_app
from cli.options import (
    DATA,
    DATA_FILE,
    DATA_SOURCE,
    DEVICE,
    MODEL,
    RUN,
    RUN_FOLDER,
    SCALE_OUT,
    SPLIT,
    TRAINING,
    Reading,
    grouped,
    integers,
    names,
)
from cli.ts_options import HISTORY, QUANTILES
from cli.ts_saved import evaluate, predict, update
from cli.ts_tables import (
    blend_note,
    forecaster_note,
    metrics_table,
    print_benchmark_table,
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
    console.print(  # above the table, not its title: a title wraps at the table's width
        f"{summary['name']}: {summary['rows']} rows x {summary['columns']} columns, protocol {summary['protocol']}, "
        f"lookback {lookback}, horizon {horizon}",
        highlight=False,
        soft_wrap=True,
    )
    table = Table()
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
        "daily data, 5 for business days, 12 for monthly and 4 for quarterly data; weekly or undated data: the "
        "training split's autocorrelation peak).",
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
        None,
        help="Output folder (default: a folder in runs/ named by dataset, variant, mode, horizon and seed, such as "
        "runs/ETTh1-lmm-h96-s0, with -history after the variant in --mode history).",
        rich_help_panel=RUN,
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
    local = history.get("local_pretrain")
    if local:  # history mode's first phase, the window model trained alone (its own epochs and budget)
        best = local.get("best_epoch")
        run = f"{local['epochs_run']} run ({local['stop_reason']})"
        said = "no epoch validated" if best is None else f"best epoch {epoch_number(best)} of {run}"
        said += "" if best is None else f", val MSE {local['best_val_mse']:.4f}"
        local_stop = stop_note(local, max_minutes)
        console.print(
            f"Window model pretrained first (local_pretrain): {said}." + (f" {local_stop}" if local_stop else ""),
            highlight=False,
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


for command in (predict, update, evaluate):  # cli/ts_saved.py: what is done with a saved model
    app.command()(grouped(command))


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
        show_default=", ".join(m for m in MODELS if m != "lmm-general"),  # with spaces: a narrow terminal wraps it
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
    from titans_ts.forecasting.benchmark import default_runs_dir, run_benchmark
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
    if records:  # every run failed: no table of dashes
        print_benchmark_table(records, dataset, lookback, horizon_list, seed_list)
        console.print(f"One JSON per run in {runs_dir}/.")
    if failed:
        kept = f"the others are kept in {runs_dir}" if records else "none was kept"
        raise ConfigError(
            f"{len(failed)} of {total} runs failed (said above: {', '.join(failed)}); {kept}: the same command runs "
            "only what is missing."
        )


def main() -> None:
    app()


if __name__ == "__main__":
    main()
