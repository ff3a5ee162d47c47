"""The long-term forecasting protocol of Time-Series-Library (DESIGN.md §4).

ETT: 12/4/4 months of 30 days for train/val/test (hourly: 8640/2880/2880 rows; 15-minute: x4).
Other datasets: 70/10/20 % of the rows ("ratio_70_10_20"); a user's own split is any "ratio_A_B_C" of
whole percentages summing to 100 (`ratio_protocol(0.6, 0.2, 0.2)`), or "rows_A_B": validation from
row A, test from row B to the end (`date_protocol(index, "2017-06-01", "2017-10-01")` finds A and B; a
forecaster fitted so on dated rows splits other dated data at the timestamps of those rows).
Val and test start `lookback` rows before their split so that their first window predicts the split's
first row. The scaler sees the training rows only.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from titans_ts.errors import (
    ConfigError,
    ConstantColumnWarning,
    DataValidationError,
    SplitTooShortError,
    positive_problems,
    refuse,
)

SPLIT_PROTOCOLS = ("ett_hourly", "ett_15min", "ratio_70_10_20")
# The Time-Series-Library protocol's lookback and first horizon: every default of the toolkit starts here.
LOOKBACK = 96
HORIZON = 96
_ETT_ROWS_PER_MONTH = {"ett_hourly": 30 * 24, "ett_15min": 30 * 24 * 4}


@dataclass(frozen=True)
class SplitBorders:
    """Row ranges [start, end) of each split, with val/test starting `lookback` rows early."""

    train: tuple[int, int]
    val: tuple[int, int]
    test: tuple[int, int]

    def windows(self, lookback: int, horizon: int) -> dict[str, int]:
        return {
            name: max(0, end - start - lookback - horizon + 1)
            for name, (start, end) in (("train", self.train), ("val", self.val), ("test", self.test))
        }


def split_borders(n_rows: int, lookback: int, horizon: int, protocol: str = "ratio_70_10_20") -> SplitBorders:
    """Split borders for `n_rows` rows; raises if any split is too short for one window."""
    refuse(positive_problems({"lookback": lookback, "horizon": horizon}))
    if protocol in _ETT_ROWS_PER_MONTH:
        month = _ETT_ROWS_PER_MONTH[protocol]
        train_end, val_end, test_end = 12 * month, 16 * month, 20 * month
        if n_rows < test_end:
            raise SplitTooShortError(
                f"The {protocol} protocol needs {test_end} rows (12/4/4 months of 30 days); the series has {n_rows}.",
                "Use protocol='ratio_70_10_20' for a shorter series (CLI: give the file by its path, split by "
                "--split).",
            )
    elif protocol.startswith("ratio_"):
        train, _, test = _ratios(protocol)
        train_end = int(n_rows * train / 100)
        n_test = int(n_rows * test / 100)
        val_end, test_end = n_rows - n_test, n_rows
    elif protocol.startswith("rows_"):
        train_end, val_end = _row_borders(protocol)
        test_end = n_rows
        if val_end >= n_rows:
            raise DataValidationError(
                f"split {protocol!r} starts the test split at row {val_end}, but the series has {n_rows} rows."
            )
    else:
        raise ConfigError(protocol_problems(protocol)[0] + ".")
    borders = SplitBorders(
        train=(0, train_end),
        val=(train_end - lookback, val_end),
        test=(val_end - lookback, test_end),
    )
    counts = borders.windows(lookback, horizon)
    if borders.val[0] < 0 or min(counts.values()) < 1:
        need = minimum_rows(lookback, horizon) if protocol == "ratio_70_10_20" else None
        hint = f" At least {need} rows are needed" if need else " Shorten lookback or horizon"
        empty = [name for name, count in counts.items() if count < 1]
        if not need and protocol.startswith(("rows_", "ratio_")) and empty:  # a split the user chose
            hint += f", or split the rows so that the {' and '.join(empty)} split has more of them"
        if borders.val[0] < 0:
            found = f"the lookback is longer than the training split ({train_end} rows)"
        else:
            found = f"windows per split: {counts}"
        raise SplitTooShortError(
            f"The series ({n_rows} rows) is too short for lookback={lookback} + horizon={horizon} under "
            f"the {protocol} protocol ({found}).",
            f"{hint.strip()}.",
        )
    return borders


def ratio_protocol(train: float, val: float, test: float) -> str:
    """The protocol name of a train/val/test split by fractions (or percentages) of the rows."""
    parts = [train, val, test]
    scale = 100 if sum(parts) <= 1.0 + 1e-9 else 1
    percents = [round(p * scale, 6) for p in parts]
    if any(p <= 0 or p != int(p) for p in percents) or sum(percents) != 100:
        raise ConfigError(
            f"a split needs three positive parts that sum to 1 (or 100) in whole percent, e.g. 0.7,0.1,0.2; "
            f"got {train},{val},{test}."
        )
    return "ratio_" + "_".join(str(int(p)) for p in percents)


def date_protocol(index, val_start, test_start) -> str:
    """The protocol that starts validation at `val_start` and test at `test_start` (dates or timestamps;
    each split begins at the first row on or after its date): "rows_A_B" with A, B those rows."""
    import pandas as pd

    if not isinstance(index, pd.DatetimeIndex):
        raise ConfigError(
            "split dates need a dated series (a date column); this one is indexed by step. Split by "
            "fractions of the rows instead (--split 0.7,0.1,0.2)."
        )
    try:
        starts = _read_alike([val_start, test_start])
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"split dates must be dates such as 2017-06-01; got {val_start!r}, {test_start!r}.") from exc
    if index.tz is not None:
        starts = [s.tz_localize(index.tz) if s.tz is None else s for s in starts]
    if not starts[0] < starts[1]:
        raise ConfigError(f"the validation start ({starts[0]}) must come before the test start ({starts[1]}).")
    rows = [int(index.searchsorted(s)) for s in starts]
    for name, start, row in zip(("validation", "test"), starts, rows, strict=True):
        if not 0 < row < len(index):
            raise DataValidationError(
                f"the {name} start {start} is outside the data ({index[0]} to {index[-1]}): pick dates inside it."
            )
    return f"rows_{rows[0]}_{rows[1]}"


def _read_alike(dates: list) -> list:
    """Timestamps, the dd/mm ones all read day first when one can only be (13/01/2023) or is written with dots
    (01.02.2023, as the loader reads such files): pandas reads each on its own, so 10/01/2023,13/01/2023 was
    October 1 and January 13. ISO dates (2023-02-10) read as written."""
    import re

    import pandas as pd

    numeric = [re.match(r"\s*(\d{1,2})([./-])(\d{1,2})[./-]\d{2,4}", str(d)) for d in dates]  # not ISO
    day_first = any(found and (int(found.group(1)) > 12 or found.group(2) == ".") for found in numeric)
    return [pd.to_datetime(d, dayfirst=day_first and bool(found)) for d, found in zip(dates, numeric, strict=True)]


def protocol_problems(protocol) -> list[str]:
    """What is wrong with a split protocol's name (nothing: []), before any row is read."""
    try:
        if isinstance(protocol, str) and protocol in _ETT_ROWS_PER_MONTH:
            return []
        if isinstance(protocol, str) and protocol.startswith("ratio_"):
            _ratios(protocol)
        elif isinstance(protocol, str) and protocol.startswith("rows_"):
            _row_borders(protocol)
        else:
            known = ", ".join(SPLIT_PROTOCOLS)
            return [f"protocol={protocol!r} (a split protocol: one of {known}, ratio_A_B_C or rows_A_B)"]
    except ConfigError as exc:
        return [str(exc)]
    return []


def _row_borders(protocol: str) -> tuple[int, int]:
    try:
        parts = tuple(int(p) for p in protocol.split("_")[1:])
    except ValueError:
        parts = ()
    if len(parts) != 2 or not 0 < parts[0] < parts[1]:
        raise ConfigError(f"split protocol {protocol!r}: rows_A_B needs two row numbers with 0 < A < B.")
    return parts


def _ratios(protocol: str) -> tuple[int, int, int]:
    try:
        parts = tuple(int(p) for p in protocol.split("_")[1:])
    except ValueError:
        parts = ()
    if len(parts) != 3 or min(parts) <= 0 or sum(parts) != 100:
        raise ConfigError(f"split protocol {protocol!r}: ratio_A_B_C needs three positive percentages summing to 100.")
    return parts


def minimum_rows(lookback: int, horizon: int) -> int:
    """The fewest rows for which every 70/10/20 split holds at least one window."""
    n = lookback + horizon
    while True:
        n_train, n_test = int(n * 0.7), int(n * 0.2)
        n_val = n - n_train - n_test
        if n_train >= lookback + horizon and min(n_val, n_test) >= horizon:
            return n
        n += 1


class StandardScaler:
    """Per-column standardisation fitted on training rows only; constant columns keep scale 1."""

    def fit(self, values: np.ndarray, columns=None, targets=()) -> StandardScaler:
        """`targets`: the columns forecast (a constant one is said as such: it cannot be dropped)."""
        values = np.asarray(values, dtype=np.float64)
        self.mean_ = values.mean(axis=0)
        std = values.std(axis=0)
        constant = std < 1e-12 * np.maximum(1.0, np.abs(self.mean_))
        labels = list(columns) if columns is not None else list(range(values.shape[1]))
        names = [labels[i] for i in np.flatnonzero(constant)]  # labels as given (a MultiIndex's are tuples)
        inputs = [name for name in names if name not in list(targets)]
        if inputs:
            warnings.warn(
                f"Column(s) {inputs} are constant over the training rows: centred but not "
                "rescaled. They carry no information for the model; consider dropping them.",
                ConstantColumnWarning,
                stacklevel=2,
            )
        if len(inputs) < len(names):
            warnings.warn(
                f"The target(s) {[name for name in names if name not in inputs]} are constant over the training rows: "
                "the model learns no scale for them (centred, scale 1), so their 'scaled' scores are in data units "
                "and not comparable with other series', and a forecast of a series that never varied in training "
                "is a guess. Start the training split where it varies, or forecast another column.",
                ConstantColumnWarning,
                stacklevel=2,
            )
        self.scale_ = np.where(constant, 1.0, std)
        return self

    def transform(self, values: np.ndarray) -> np.ndarray:
        return (np.asarray(values, dtype=np.float64) - self.mean_) / self.scale_

    def inverse_transform(self, values: np.ndarray) -> np.ndarray:
        return np.asarray(values, dtype=np.float64) * self.scale_ + self.mean_

    def subset(self, columns) -> StandardScaler:
        """The scaler of some columns only (positions), e.g. the forecast targets among the inputs."""
        scaler = StandardScaler()
        scaler.mean_, scaler.scale_ = self.mean_[list(columns)], self.scale_[list(columns)]
        return scaler

    def to_dict(self) -> dict:
        return {"mean": self.mean_.tolist(), "scale": self.scale_.tolist()}

    @classmethod
    def from_dict(cls, state: dict) -> StandardScaler:
        scaler = cls()
        scaler.mean_ = np.asarray(state["mean"], dtype=np.float64)
        scaler.scale_ = np.asarray(state["scale"], dtype=np.float64)
        return scaler


def protocol_for(
    name: str | None, split: tuple[float, float, float] | None = None, split_dates=None, index=None
) -> str:
    """The split protocol of a registered dataset, else the user's `split` fractions or `split_dates`
    (validation start, test start; needs the data's `index`), else 70/10/20."""
    from titans_ts.data.registry import benchmark_named

    if split is not None and split_dates is not None:
        raise ConfigError("give the split either as fractions or as dates, not both.")
    info = benchmark_named(name)
    if info is not None:
        if split is not None or split_dates is not None:
            raise ConfigError(
                f"{info.name} is a registered benchmark: it keeps its protocol split ({info.split}) so that "
                "results compare with the literature. Drop the split, or load the file by its path."
            )
        return info.split
    if split_dates is not None:
        if index is None:  # checked before the data is read; resolved once it is
            return "ratio_70_10_20"
        return date_protocol(index, *split_dates)
    return ratio_protocol(*split) if split is not None else "ratio_70_10_20"
