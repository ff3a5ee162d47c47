"""The windows of a split, for evaluation: in order, scaled by the fitted scaler, every one of them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from titans_ts.data import WindowDataset, split_borders
from titans_ts.errors import ConfigError
from titans_ts.forecasting.inputs import as_frame


class SplitWindows:
    """TitansForecaster's per-window methods (a mixin: it uses the fitted model, scaler and borders)."""

    def window_forecasts(self, X=None, split: str = "test", batch_size: int = 256) -> pd.DataFrame:
        """Every window of a split, one row per (window, step, column): origin and forecast time, the
        prediction and the truth in original units and scaled (the scaled ones give `evaluate`'s MSE)."""
        from titans_ts.forecasting.diagnostics import window_table

        frame, start, loader = self._split_windows(X, split, batch_size)
        device = self._device()
        forecaster = self._forecaster().to(device).eval()  # the model, or the floor that replaced it (fallback)
        predictions, targets = [], []
        with torch.no_grad():
            for x, y in loader:
                predictions.append(forecaster(x.to(device)).double().cpu().numpy())
                targets.append(y.double().numpy())
        table = window_table(
            np.concatenate(predictions),
            np.concatenate(targets),
            self._target_scaler(),
            frame.index,
            start + self.lookback,
            self.targets_,
        )
        return self._said(table)

    def _split_windows(self, X, split: str, batch_size: int):
        """(frame, first row of the split, loader over its scaled windows in order).

        X None: the fitted data, with the split borders of `fit` (`borders_`); else X's own borders under
        the model's protocol."""
        self._check_fitted()
        if split not in ("train", "val", "test"):
            raise ConfigError(f"split must be 'train', 'val' or 'test'; got {split!r}.")
        frame = self._fit_frame if X is None else self._check_columns(as_frame(X))
        if frame is None:
            raise ConfigError("This model was loaded from disk: pass the data to evaluate, e.g. evaluate(df).")
        borders = self.borders_ if X is None else split_borders(len(frame), self.lookback, self.horizon, self.protocol)
        start, end = getattr(borders, split)
        scaled = self.scaler_.transform(frame.to_numpy()[start:end])  # the fitted (train-rows) scaler
        dataset = WindowDataset(scaled, self.lookback, self.horizon, self._target_positions())
        loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False, drop_last=False)
        return frame, start, loader
