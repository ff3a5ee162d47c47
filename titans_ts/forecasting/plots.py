"""Forecast plots (matplotlib, no display needed), written atomically."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from titans_ts.io import atomic_path  # noqa: E402


def check_plot_path(path) -> None:
    """Fail before any work when a plot's file name does not end in .png (the format written)."""
    from titans_ts.errors import ConfigError

    if path is not None and Path(path).suffix.lower() != ".png":
        raise ConfigError(f"{path}: plots are written as PNG; name the file .png (e.g. {Path(path).stem}.png).")


def plot_forecast(
    history: pd.DataFrame,
    forecast: pd.DataFrame,
    path,
    truth: pd.DataFrame | None = None,
    column=None,
    title: str = "",
) -> Path:
    """History, forecast (and the truth, if known) of one column (default: the last target, e.g. OT); with a
    forecast's level columns ("OT_q0.1", ...: a model fitted with quantiles) each central interval as a band."""
    if column is None:
        points = [c for c in forecast.columns if not _is_level(forecast, c)]
        column = points[-1]
    figure, axis = plt.subplots(figsize=(10, 3.5))
    axis.plot(history.index, history[column], color="0.4", label="history")
    draw_bands(axis, forecast.index, level_columns(forecast, column))
    if truth is not None:
        axis.plot(truth.index, truth[column], color="tab:green", label="actual")
    axis.plot(forecast.index, forecast[column], color="tab:blue", label="forecast")
    axis.axvline(history.index[-1], color="0.7", linestyle="--", linewidth=1)
    by = forecast.attrs.get("forecaster")  # a floor that replaced the model (fallback) is named
    in_place = f", by {by} in the model's place" if by not in (None, "model") else ""
    axis.set_title(title or f"{column}: {len(forecast)}-step forecast{in_place}")
    axis.legend(loc="upper left")
    figure.autofmt_xdate()
    return _save(figure, path)


def level_columns(frame: pd.DataFrame, column) -> dict[float, pd.Series]:
    """{level: values} of a column's level columns in a forecast frame ("OT_q0.1" -> 0.1); {} when none."""
    prefix = f"{column}_q"
    found = {}
    for name in map(str, frame.columns):
        level = _level_of(name[len(prefix) :]) if name.startswith(prefix) else None
        if level is not None:
            found[level] = frame[name]
    return dict(sorted(found.items()))


def _level_of(text: str) -> float | None:
    """The level a column name ends with, as `quantiles.level_label` writes it ("0.1", "1e-05"); None if none."""
    try:
        level = float(text)
    except ValueError:
        return None
    return level if 0 < level < 1 else None


def _is_level(frame: pd.DataFrame, name) -> bool:
    """A level column of some other column of the frame ("OT_q0.1" beside "OT")."""
    head, _, level = str(name).rpartition("_q")
    return bool(head) and head in map(str, frame.columns) and _level_of(level) is not None


def draw_bands(axis, index, levels: dict[float, pd.Series], label: bool = True) -> None:
    """Each central interval (levels tau and 1 - tau) as a shaded band, the widest the lightest."""
    from titans_ts.forecasting.quantiles import central_pairs

    taus = sorted(levels)
    pairs = [(taus[low], taus[high]) for low, high in central_pairs(taus)]
    for number, (low, high) in enumerate(sorted(pairs)):  # the widest first
        shade = 0.15 + 0.2 * number / max(1, len(pairs))
        name = f"{round(100 * (high - low))} % interval" if label else None
        axis.fill_between(index, levels[low], levels[high], color="tab:blue", alpha=shade, linewidth=0, label=name)


def plot_evaluation(
    windows: pd.DataFrame, by_step: pd.DataFrame, path, columns=None, n_windows: int = 3, forecaster: str = ""
) -> Path:
    """Test error by horizon step (scaled MSE and MAE), and a few test windows of chosen columns
    (default: the last column; evaluate_saved checks given ones before any work), forecast against truth in
    original units. `windows`: `window_table`; `forecaster`: who forecast them, for the title."""
    columns = list(columns) if columns else [windows["column"].iloc[-1]]
    chosen = sorted(set(windows["window"]))
    chosen = [chosen[round(i * (len(chosen) - 1) / max(1, n_windows - 1))] for i in range(min(n_windows, len(chosen)))]
    figure, axes = plt.subplots(1 + len(columns), 1, figsize=(10, 3 * (1 + len(columns))), squeeze=False)
    axis = axes[0, 0]
    axis.plot(by_step.index, by_step["mse_scaled"], label="MSE (scaled)")
    axis.plot(by_step.index, by_step["mae_scaled"], label="MAE (scaled)")
    axis.set_xlabel("horizon step")
    axis.set_title(f"test error by horizon step{f', {forecaster}' if forecaster else ''}")
    axis.legend(loc="upper left")
    for row, column in enumerate(map(str, columns), start=1):
        axis = axes[row, 0]
        for number, window in enumerate(chosen):
            part = windows[(windows["window"] == window) & (windows["column"] == column)]
            levels = {float(c[1:]): part[c] for c in part.columns if c[:1] == "q" and not c.endswith("_scaled")}
            draw_bands(axis, part["time"], levels, label=number == 0)
            axis.plot(part["time"], part["target"], color="0.4", label="actual" if number == 0 else None)
            axis.plot(part["time"], part["prediction"], color="tab:blue", label="forecast" if number == 0 else None)
        axis.set_title(f"{column}: test windows {', '.join(map(str, chosen))}")
        axis.legend(loc="upper left")
    return _save(figure, path)


def _save(figure, path) -> Path:
    """Write the figure as PNG, all or nothing, and free it."""
    figure.tight_layout()
    path = Path(path)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=100)
    plt.close(figure)
    return path
