"""A forecast as the files hold it: dates first, a column per series and level (or long rows, as a long table was
read), each value to the decimals the float32 network computes."""

from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from titans_ts.forecasting.plots import level_columns
from titans_ts.forecasting.quantiles import level_label

if TYPE_CHECKING:
    from titans_ts.forecasting.estimator import TitansForecaster

__all__ = ["computed_decimals", "forecast_csv", "forecast_table", "rounded_windows"]


def forecast_csv(forecast: pd.DataFrame) -> str:
    """A forecast as CSV text (`forecast_table`)."""
    return forecast_table(forecast).to_csv(index=False)


def forecast_table(forecast: pd.DataFrame) -> pd.DataFrame:
    """A forecast as a file holds it: its dates first, then a column per series (and level: OT_q0.1); read
    from a long table (`attrs["long_format"]`: id, time, value), long as well: a row per (id, time), the value
    and its levels (y, y_q0.1, ...) beside them."""
    name = forecast.index.name or "date"
    while name in forecast.columns:  # a data column named as the index ("step" in a file without a time column)
        name = f"forecast_{name}"
    wide = forecast.rename_axis(name).reset_index()
    if not forecast.attrs.get("long_format"):
        return wide
    id_col, time_col, value = forecast.attrs["long_format"]
    levels = {column: level_columns(forecast, column) for column in forecast.columns}
    level_names = {series.name for found in levels.values() for series in found.values()}
    parts = []
    for column in (c for c in forecast.columns if c not in level_names):  # the series, each an id of the table
        part = {id_col: str(column), time_col: forecast.index, value: forecast[column].to_numpy()}
        part |= {f"{value}_{level_label(q)}": series.to_numpy() for q, series in levels[column].items()}
        parts.append(pd.DataFrame(part))
    return pd.concat(parts, ignore_index=True)


def computed_decimals(estimator: TitansForecaster, forecast: pd.DataFrame) -> dict:
    """Decimals per forecast column (a target, and its levels: OT_q0.1) that the float32 network computes: it
    forecasts scaled values to about 1e-7, so a column of scale s is known to about s * 1e-7, whatever its mean
    (more digits would print float32 rounding as if it were information)."""
    decimals = {}
    for target, places in decimals_per_target(estimator).items():
        names = [target, *(levels.name for levels in level_columns(forecast, target).values())]
        decimals |= {name: places for name in names if name in forecast.columns}
    return decimals


def decimals_per_target(estimator: TitansForecaster) -> dict:
    scales = estimator._target_scaler().scale_
    return {target: max(0, math.ceil(7 - math.log10(s))) for target, s in zip(estimator.targets_, scales, strict=True)}


def rounded_windows(estimator: TitansForecaster, table: pd.DataFrame) -> pd.DataFrame:
    """`window_forecasts`' table with its forecasts (the point and any levels) to the decimals the float32
    network computes (`computed_decimals`), the scaled ones (float32) to 7: 0.7739, not 0.77389997243881226."""
    table = table.copy()
    places = table["column"].map(decimals_per_target(estimator)).to_numpy(dtype=float)
    table["target_scaled"] = table["target_scaled"].round(7)
    forecasts = [name for name in table.columns if name == "prediction" or re.fullmatch(r"q[0-9.e-]+", name)]
    for name in forecasts:
        table[name] = np.round(table[name].to_numpy() * 10.0**places) / 10.0**places
        if f"{name}_scaled" in table.columns:
            table[f"{name}_scaled"] = table[f"{name}_scaled"].round(7)
    return table
