"""The windows of a split, for evaluation: in order, scaled by the fitted scaler, every one of them; and their
exact MSE and MAE (`evaluate_windows`, which needs no Lightning: evaluating a saved model does not import it)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader

from titans_ts.data import WindowDataset, date_protocol, split_borders
from titans_ts.errors import ConfigError, DataValidationError


class SplitWindows:
    """TitansForecaster's per-window methods (a mixin: it uses the fitted model, scaler and borders)."""

    def window_forecasts(
        self, X=None, split: str = "test", batch_size: int = 256, online: bool = False
    ) -> pd.DataFrame:
        """Every window of a split, one row per (window, step, column): origin and forecast time, the
        prediction and the truth in original units and scaled (the scaled ones give `evaluate`'s MSE), and
        for a model with quantiles each level ("q0.1" in original units, "q0.1_scaled").
        online: the forecasts `evaluate(online=True)` scores, made as a stream with the memory carried (with
        their levels); else each window's own (in mode="history" the frozen ones, `evaluate()`'s default)."""
        from titans_ts.forecasting.diagnostics import window_table

        with_levels = bool(self._levels())
        if with_levels and online:  # the stream's forecasts, each with its levels
            frame, start, predictions, levels, targets = self._stream_split(X, split, with_levels=True)
        elif with_levels:  # a model with quantiles: a column per level too ("q0.1", and "q0.1_scaled")
            frame, start, loader = self._split_windows(X, split, batch_size)
            predictions, levels, targets = self._level_predictions(loader)
        else:
            frame, start, predictions, targets = self._split_predictions(X, split, batch_size, online)
        origin = start + self.lookback  # of the split's first window
        table = window_table(predictions, targets, self._target_scaler(), frame.index, origin, self.targets_)
        return self._said(self._level_table_columns(table, levels) if with_levels else table)

    def _split_predictions(self, X, split: str, batch_size: int, online: bool = False):
        """(frame, first row of the split, forecasts, targets): every window's, scaled, windows x horizon x columns;
        online: as `online_forecasts` makes them."""
        if self._in_history_mode():
            from titans_ts.forecasting import history_mode

            return history_mode.split_predictions(self, X, split, online=online, batch_size=batch_size)
        if online:
            return self._stream_split(X, split)
        frame, start, loader = self._split_windows(X, split, batch_size)
        device = self._device()
        forecaster = self._forecaster().to(device).eval()  # the model, or the floor that replaced it (fallback)
        predictions, targets = [], []
        with torch.no_grad():
            for x, y in loader:
                predictions.append(forecaster(x.to(device)).double().cpu().numpy())
                targets.append(y.double().numpy())
        return frame, start, np.concatenate(predictions), np.concatenate(targets)

    def _split_rows(self, X, split: str):
        """(frame, borders): the data a split is cut from and the row borders of its splits.

        X None: the fitted data, with the split borders of `fit` (`borders_`) unless `protocol` was set to another
        since; else X's own borders under the model's protocol (`_protocol_of`: a split by rows of dated data at
        the fitted timestamps)."""
        self._check_fitted()
        if split not in ("train", "val", "test"):
            raise ConfigError(f"split must be 'train', 'val' or 'test'; got {split!r}.")
        frame = self._fit_frame if X is None else self._fitted_frame(X)
        if frame is None:
            raise ConfigError(
                "This model was loaded from disk, without the data it was fitted on: pass the data, e.g. "
                "evaluate(df), window_forecasts(df) or recalibrate(df)."
            )
        if X is None and self._protocol_as_fitted():
            return frame, self.borders_
        return frame, split_borders(len(frame), self.lookback, self.horizon, self._protocol_of(frame))

    def _keep_split_starts(self, frame: pd.DataFrame) -> None:
        """At fit: when the split is by rows ("rows_A_B", as `--split-dates` gives) of dated rows, the timestamps
        where validation and test begin (`split_starts_`), so that other data is split at the same moments."""
        starts = None
        if self.protocol.startswith("rows_") and isinstance(frame.index, pd.DatetimeIndex):
            starts = [str(frame.index[start]) for start in (self.borders_.train[1], self.borders_.val[1])]
        self.split_starts_ = starts

    def _protocol_of(self, frame: pd.DataFrame) -> str:
        """The model's protocol for `frame`: the fitted split by rows of dated data (`split_starts_`) starts
        validation and test at the fitted timestamps in any dated file (one with earlier rows too); any other
        protocol, or one set after fit, as it reads."""
        if not self._splits_at_dates(frame):
            return self.protocol
        starts = self.split_starts_
        index = frame.index
        if index.tz is None and pd.Timestamp(starts[0]).tz is not None:  # fitted in UTC, given without an offset
            index = index.tz_localize(pd.Timestamp(starts[0]).tz)
        try:
            return date_protocol(index, *starts)
        except DataValidationError:
            raise DataValidationError(
                f"this model's validation starts at {starts[0]} and its test at {starts[1]} (its split by dates), "
                f"but the data runs from {frame.index[0]} to {frame.index[-1]}: give data that holds both."
            ) from None

    def _splits_at_dates(self, frame: pd.DataFrame) -> bool:
        """Whether `frame` is split at the fitted timestamps (`_protocol_of`)."""
        starts = getattr(self, "split_starts_", None)
        return bool(starts) and self._protocol_as_fitted() and isinstance(frame.index, pd.DatetimeIndex)

    def _protocol_as_fitted(self) -> bool:
        """Whether `protocol` is the one fit split by (not one set since)."""
        return self.protocol == (getattr(self, "fitted_params_", None) or {}).get("protocol", self.protocol)

    def _split_windows(self, X, split: str, batch_size: int):
        """(frame, first row of the split, loader over its scaled windows in order); `_split_rows`' frame."""
        frame, borders = self._split_rows(X, split)
        start, end = getattr(borders, split)
        scaled = self.scaler_.transform(frame.to_numpy()[start:end])  # the fitted (train-rows) scaler
        dataset = WindowDataset(scaled, self.lookback, self.horizon, self._target_positions())
        loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False, drop_last=False)
        return frame, start, loader


@torch.no_grad()
def evaluate_windows(model: nn.Module, loader: DataLoader, device=None) -> dict:
    """MSE and MAE over every window of a loader (sums over all elements, not a mean of batch means).

    device: where to run (the model is moved there); None keeps the model where it is. The batches follow
    the model; the sums stay on its device and come back to the CPU once, as Python floats.
    """
    if device is not None:
        model.to(device)
    else:  # where the model is (a parameter-free model, e.g. the naive forecasts, runs on the CPU)
        device = next((p.device for p in model.parameters()), torch.device("cpu"))
    model.eval()
    sums = torch.zeros(2, dtype=torch.float64, device=device)
    count = 0
    for x, y in loader:
        error = (model(x.to(device)) - y.to(device)).double()
        sums += torch.stack([error.square().sum(), error.abs().sum()])
        count += error.numel()
    squared, absolute = sums.tolist()
    return {"mse": squared / count, "mae": absolute / count, "windows": len(loader.dataset)}
