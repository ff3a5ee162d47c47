"""`titans-ts`: forecasting with the Titans neural memory."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from cli._common import console, make_app

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
) -> None:
    """Show how the benchmark protocol splits a dataset: rows, dates and windows of train / val / test."""
    from titans_ts.data import describe_splits

    summary = describe_splits(
        dataset,
        lookback,
        horizon,
        data_dir=data_dir,
        verify=not no_verify,
        fill=fill,
        date_column=date_column,
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


@app.command()
def fit(
    dataset: str = typer.Option(..., "--dataset", "-d", help="A registered name (ETTh1, weather, ...) or a CSV path."),
    horizon: int = typer.Option(96, help="Steps to forecast (the benchmark uses 96, 192, 336, 720)."),
    lookback: int = typer.Option(96, help="Steps of history the model sees."),
    variant: str = typer.Option("lmm", help=VARIANT_HELP),
    tokens: str = typer.Option("variate", help="variate (one token per column) or patch (time patches)."),
    dim: int = typer.Option(32, help="Model width."),
    layers: int = typer.Option(2, help="Number of SiMBA blocks."),
    epochs: int = typer.Option(10, help="Maximum epochs (early stopping on validation MSE may stop sooner)."),
    patience: int = typer.Option(3, help="Epochs without validation improvement before stopping."),
    batch_size: int = typer.Option(32, help="Windows per training batch."),
    lr: float = typer.Option(1e-3, help="Peak learning rate (AdamW, warm-up then cosine)."),
    seed: int = typer.Option(0, help="Random seed."),
    max_minutes: float = typer.Option(None, help="Stop training after this many minutes."),
    season: int = typer.Option(
        None, help="Steps per season for --variant seasonal_naive (default: one day at the data's frequency)."
    ),
    out: Path = typer.Option(None, help="Output folder (default: runs/<dataset>-<variant>-h<H>-s<seed>)."),
    data_dir: Path = DATA_DIR,
    no_verify: bool = NO_VERIFY,
    fill: str = FILL,
    date_column: str = DATE_COLUMN,
    device: str = DEVICE,
) -> None:
    """Train a forecaster under the benchmark protocol; print val/test MSE and MAE; save model and plot.

    Writes OUT/model.safetensors, config.json, metrics.json and forecast.png. Metrics are MSE/MAE on the
    scaled data (train-rows StandardScaler) over every window of the split.
    """
    from titans_ts.forecasting.api import fit_dataset

    console.print(f"Fitting [bold]{variant}[/] on [bold]{dataset}[/], lookback {lookback}, horizon {horizon}...")
    record = fit_dataset(
        dataset,
        horizon=horizon,
        lookback=lookback,
        out=out,
        data_dir=data_dir,
        verify=not no_verify,
        fill=fill,
        date_column=date_column,
        variant=variant,
        tokens=tokens,
        dim=dim,
        layers=layers,
        epochs=epochs,
        patience=patience,
        batch_size=batch_size,
        lr=lr,
        seed=seed,
        max_minutes=max_minutes,
        device=device,
        season=season,
    )
    console.print(_metrics_table(f"{record['dataset']} ({record['protocol']}), {variant}, horizon {horizon}", record))
    trained = record["history"].get("trained", True)
    epochs_note = f"Best epoch {record['history']['best_epoch']}" if trained else "Nothing to train (a naive forecast)"
    console.print(
        f"{epochs_note}; {record['wall_seconds']:.0f} s on {record['device']}. "
        f"Saved to {record['out']}/ (model.safetensors, config.json, metrics.json, forecast.png)."
    )


@app.command()
def predict(
    model: Path = typer.Option(..., "--model", "-m", help="A folder written by `titans-ts fit`."),
    input: Path = typer.Option(..., "--input", "-i", help="CSV with a date column and the training columns."),
    out: Path = typer.Option(None, help="Where to write the forecast CSV (default: print it)."),
    plot: Path = typer.Option(None, help="Also draw the forecast of the last column to this PNG."),
    fill: str = FILL,
    date_column: str = DATE_COLUMN,
    device: str = DEVICE,
) -> None:
    """Forecast the horizon after the end of a CSV with a saved model (original units, future timestamps)."""
    from titans_ts.forecasting.api import predict_csv

    forecast, written = predict_csv(model, input, out, plot, fill=fill, date_column=date_column, device=device)
    if written is None:
        console.print(forecast.to_csv(index_label="date"), end="")
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
    device: str = DEVICE,
) -> None:
    """Evaluate a saved model on a dataset under its protocol: val and test MSE / MAE (scaled data)."""
    from titans_ts.forecasting.api import evaluate_saved

    metrics = evaluate_saved(model, dataset, data_dir=data_dir, verify=not no_verify, device=device)
    console.print(_metrics_table(f"{dataset}: {model}", metrics))


@app.command()
def benchmark(
    dataset: str = typer.Option(..., "--dataset", "-d", help="A registered name (ETTh1, weather, ...) or a CSV path."),
    horizons: str = typer.Option("96,192,336,720", help="Comma-separated horizons."),
    seeds: str = typer.Option("0", help="Comma-separated seeds (mean and std over them)."),
    models: str = typer.Option(
        "lmm,attention,attention-patch,dlinear,naive,seasonal_naive",
        help="Comma-separated: lmm (ours), attention (variate tokens, iTransformer-like), attention-patch "
        "(patch tokens, PatchTST-like), dlinear, naive (repeat-last), seasonal_naive.",
    ),
    lookback: int = typer.Option(96, help="Steps of history every model sees."),
    epochs: int = typer.Option(10, help="Maximum epochs per run (early stopping on validation MSE)."),
    out: Path = typer.Option(None, help="Folder for one JSON per run (default: runs/benchmark/<dataset>)."),
    device: str = DEVICE,
) -> None:
    """Run models x horizons x seeds on one dataset in one harness; print test MSE / MAE per horizon.

    Resumable: a run whose JSON exists in OUT is read, not repeated. Seed 0 of every model runs first.
    Metrics: MSE/MAE on the scaled data over every test window; each model stops early on validation.
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
        epochs=epochs,
        device=device,
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
