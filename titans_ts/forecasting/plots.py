"""Forecast plots (matplotlib, no display needed), written atomically."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from titans_ts.io import atomic_path  # noqa: E402


def plot_forecast(
    history: pd.DataFrame,
    forecast: pd.DataFrame,
    path,
    truth: pd.DataFrame | None = None,
    column=None,
    title: str = "",
) -> Path:
    """History, forecast (and the truth, if known) of one column (default: the last, e.g. OT)."""
    column = column if column is not None else forecast.columns[-1]
    figure, axis = plt.subplots(figsize=(10, 3.5))
    axis.plot(history.index, history[column], color="0.4", label="history")
    if truth is not None:
        axis.plot(truth.index, truth[column], color="tab:green", label="actual")
    axis.plot(forecast.index, forecast[column], color="tab:blue", label="forecast")
    axis.axvline(history.index[-1], color="0.7", linestyle="--", linewidth=1)
    axis.set_title(title or f"{column}: {len(forecast)}-step forecast")
    axis.legend(loc="upper left")
    figure.autofmt_xdate()
    figure.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=100)
    plt.close(figure)
    return path
