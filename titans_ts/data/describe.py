"""A plain summary of how the protocol splits a dataset (what `titans-ts splits` prints)."""

from __future__ import annotations

from pathlib import Path

from titans_ts.data.columns import read_as_fit
from titans_ts.data.protocol import HORIZON, LOOKBACK, protocol_for, split_borders
from titans_ts.data.raw_table import names_a_file


def describe_splits(
    dataset: str,
    lookback: int = LOOKBACK,
    horizon: int = HORIZON,
    split=None,
    split_dates=None,
    columns: list[str] | None = None,
    target: str | list[str] | None = None,
    **load_options,
) -> dict:
    """Rows, first/last timestamps and window counts of train/val/test for `dataset` (`split`: a user's
    train/val/test fractions, or `split_dates`: where validation and test begin, for a file), read as fit reads
    it: `columns` the columns to read (default: all; e.g. leave out a text column), the `target` column(s) of a
    wide table always among them. `load_options`: load_dataset's (fill, date_column, long, ...)."""
    protocol_for(dataset, split, split_dates)  # a bad split fails before the file is read
    frame = read_as_fit(dataset, columns, target, **load_options)
    protocol = protocol_for(dataset, split, split_dates, frame.index)
    borders = split_borders(len(frame), lookback, horizon, protocol)
    windows = borders.windows(lookback, horizon)
    rows = []
    for name, (start, end) in (("train", borders.train), ("val", borders.val), ("test", borders.test)):
        rows.append(
            {
                "split": name,
                "start": start,
                "end": end,
                "windows": windows[name],
                "first": str(frame.index[start]),
                "last": str(frame.index[end - 1]),
            }
        )
    name = Path(dataset).name if names_a_file(dataset) else dataset
    return {"name": name, "rows": len(frame), "columns": frame.shape[1], "protocol": protocol, "splits": rows}
