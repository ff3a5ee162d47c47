"""`titans-ts`: forecasting with the Titans neural memory."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from cli._common import console, make_app, not_yet

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
DATE_COLUMN = typer.Option(
    None, "--date-column", help="Name of the timestamp column of your CSV (default: 'date')."
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


@app.command()
def fit() -> None:
    """Train a forecaster on a dataset (coming with the forecasting model)."""
    not_yet("titans-ts fit", "the forecasting model lands in a later release")


@app.command()
def predict() -> None:
    """Forecast the next horizon of a CSV with a saved model (coming with the forecasting model)."""
    not_yet("titans-ts predict", "the forecasting model lands in a later release")


@app.command()
def evaluate() -> None:
    """Evaluate a saved model under the benchmark protocol (coming with the forecasting model)."""
    not_yet("titans-ts evaluate", "the forecasting model lands in a later release")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
