"""Per-window forecasts of a split and their errors: what a user checks beyond one overall MSE.

`window_table` lays every forecast of every window next to its truth, one row per (window, step, column),
in original units and on the scaled data that the reported MSE / MAE use. `errors_by(table, key)` sums
them up by horizon step or by column.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

WINDOW_COLUMNS = (
    "window",  # 0-based window number within the split
    "origin",  # the time of the last observed row (the forecast is made after it)
    "time",  # the time being forecast
    "step",  # 1 .. horizon
    "column",
    "prediction",
    "target",  # original units
    "prediction_scaled",
    "target_scaled",  # the train-rows scaling, as in the reported metrics
)


def window_table(
    predictions: np.ndarray, targets: np.ndarray, scaler, index: pd.Index, first_target: int, columns
) -> pd.DataFrame:
    """predictions, targets: (windows, horizon, channels), scaled. index: the whole frame's time axis;
    window i's first forecast is row first_target + i of it."""
    windows, horizon, channels = predictions.shape
    flat = (windows * horizon, channels)
    original_predictions = scaler.inverse_transform(predictions.reshape(flat)).reshape(predictions.shape)
    original_targets = scaler.inverse_transform(targets.reshape(flat)).reshape(targets.shape)
    window = np.repeat(np.arange(windows), horizon * channels)
    step = np.tile(np.repeat(np.arange(1, horizon + 1), channels), windows)
    target_row = first_target + window + step - 1
    return pd.DataFrame(
        {
            "window": window,
            "origin": np.asarray(index)[first_target + window - 1],
            "time": np.asarray(index)[target_row],
            "step": step,
            "column": np.tile(np.asarray([str(c) for c in columns], dtype=object), windows * horizon),
            "prediction": original_predictions.reshape(-1),
            "target": original_targets.reshape(-1),
            "prediction_scaled": predictions.reshape(-1),
            "target_scaled": targets.reshape(-1),
        }
    )


def errors_by(table: pd.DataFrame, key: str) -> pd.DataFrame:
    """MSE and MAE per value of `key` ("step" or "column"), scaled and in original units."""
    error = table["prediction"] - table["target"]
    scaled = table["prediction_scaled"] - table["target_scaled"]
    parts = pd.DataFrame(
        {
            key: table[key],
            "mse_scaled": scaled**2,
            "mae_scaled": scaled.abs(),
            "mse": error**2,
            "mae": error.abs(),
        }
    )
    return parts.groupby(key, sort=key == "step").mean()
