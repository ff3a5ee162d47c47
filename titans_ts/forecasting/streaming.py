"""Streaming: the memory keeps learning across forecasts (TitansForecaster.update / online_forecasts)."""

from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
import pandas as pd
import torch

from titans_ts.errors import ConfigError, RepeatedRowsWarning
from titans_ts.forecasting.conformal import tracked_windows
from titans_ts.forecasting.floors import MODEL
from titans_ts.forecasting.quantiles import QuantileForecaster, QuantileScores
from titans_ts.forecasting.time_axis import advanced, check_follows, numbered
from titans_ts.memory import states_from_tensors, states_to_tensors

WINDOW_STREAM = "window_stream."  # the saved tensors of the stream update() carries


class Streaming:
    """TitansForecaster's streaming methods (a mixin: it uses the fitted model, scaler and context)."""

    def update(self, new_rows):
        """Append observations in time order and let the memory keep what it learns from them.

        For each new row, the window of the last `lookback` rows is run through the network starting from
        the carried memory state (memory weights and momentum of every block; see docs/forecasting.md),
        its forecast is kept, and the state after the window becomes the carried state. `predict()` then
        returns the forecast made at the last row. update(a); update(b) equals update(a + b). When a floor
        forecasts instead of the model (`forecaster_used_`), each forecast is the floor's, and nothing is carried.
        In mode="history" the memory reads every new whole patch with its carried state (history_mode.update).
        """
        self._check_fitted()
        nothing_new = hasattr(new_rows, "__len__") and len(new_rows) == 0  # a poll that found no rows
        if self._in_history_mode():
            from titans_ts.forecasting import history_mode

            return self if nothing_new else history_mode.update(self, new_rows)
        self._check_streamable()
        if nothing_new:
            return self
        frame = self._fitted_frame(new_rows)
        check_follows(self.last_index_, frame.index, self.step_, getattr(self, "numbered_", False))
        scaled = torch.as_tensor(self.scaler_.transform(frame.to_numpy()), dtype=torch.float32)
        self._warn_if_read_before(scaled, frame.index)
        device = self._device()
        self.model_.to(device).eval()
        state = getattr(self, "memory_state_", None)  # a loaded model's is on the CPU
        context, state = (
            self.context_.to(device),
            None if state is None else [None if s is None else s.to(device) for s in state],
        )
        tracker, targets = getattr(self, "level_tracker_", None), self._target_positions()
        with torch.no_grad():
            for row in scaled.to(device):
                context = torch.cat([context[1:], row[None]])
                forecast, state, levels = self._stream_step(context[None], state)
                if tracker is not None:  # calibrate="adaptive": the row is a truth of the forecasts before it
                    truth = (row if targets is None else row[targets]).double().cpu().numpy()
                    raw = forecast[..., None].expand(*forecast.shape, tracker.taus.size) if levels is None else levels
                    tracker.advance(truth, raw[0].double().cpu().numpy())
        self.context_ = context.cpu()
        self.memory_state_, self.stream_forecast_ = state, forecast[0].double().cpu().numpy()
        # a quantile model's raw levels from the same window and carried state as the point (predict calibrates)
        self.stream_levels_ = None if levels is None else levels[0].double().cpu().numpy()
        self.last_index_ = advanced(self.last_index_, frame.index, self.step_, getattr(self, "numbered_", False))
        return self

    def online_forecasts(self, X=None, split: str = "test") -> np.ndarray:
        """Forecasts (scaled) of every window of a split, made as a stream: in time order, each from the
        memory state carried from the windows before it (and never from its own targets). In mode="history"
        the memory reads the series from its first row in time order (`evaluate(online=True)`'s forecasts)."""
        self._check_fitted()
        if self._in_history_mode():
            from titans_ts.forecasting import history_mode

            return history_mode.split_predictions(self, X, split, online=True)[2]
        return self._stream_split(X, split)[2]

    def _warn_if_read_before(self, scaled: torch.Tensor, rows: pd.Index) -> None:
        """A RepeatedRowsWarning when rows that check_follows cannot check (neither dated nor numbered: an array,
        a file without timestamps) equal, value for value, the last rows read: the same file given to update
        twice. Rows that do not vary (a constant sensor) may repeat honestly, and are not said."""
        if not isinstance(self.last_index_, (int, np.integer)) or numbered(rows):
            return
        n, k = len(scaled), min(len(scaled), len(self.context_))  # the context holds the last rows read
        if k < 2 or bool((scaled == scaled[0]).all()):
            return
        if torch.equal(scaled[-k:], self.context_[-k:].to(scaled.dtype)):  # their last k, for more rows than it
            warnings.warn(
                f"the {n} new rows equal the last {n} rows the model has read: given twice? They are read as new "
                "rows (rows without timestamps cannot be checked to come after the others), so if they were read "
                "already, the model has now read them twice. Rows with timestamps are checked.",
                RepeatedRowsWarning,
                stacklevel=3,
            )

    def _stream_split(self, X, split: str, with_levels: bool = False):
        """(frame, first row of the split, forecasts, targets) of the split's windows forecast as a stream;
        with_levels: (frame, start, forecasts, levels, targets), a quantile model's calibrated levels of each
        stream forecast beside it (`_calibrated_stream`)."""
        self._check_streamable()
        frame, start, loader = self._split_windows(X, split, batch_size=1)
        device = self._device()
        self.model_.to(device).eval()
        forecasts, raw_levels, targets, state = [], [], [], None
        with torch.no_grad():
            for x, y in loader:
                forecast, state, raw = self._stream_step(x.to(device), state)
                forecasts.append(forecast[0].double().cpu().numpy())
                targets.append(y[0].double().numpy())
                if with_levels:  # a floor's (None): its point at every level, as point_and_levels gives it
                    raw = forecast[..., None].expand(*forecast.shape, len(self._levels())) if raw is None else raw
                    raw_levels.append(raw[0].double().cpu().numpy())
        forecasts, targets = np.stack(forecasts), np.stack(targets)
        if not with_levels:
            return frame, start, forecasts, targets
        return frame, start, forecasts, self._calibrated_stream(np.stack(raw_levels), targets), targets

    def _calibrated_stream(self, raw_levels: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """Levels of a split's stream forecasts calibrated as evaluate() calibrates its windows': shifted by the
        validation offsets, or (adaptive) tracked through the split from them, never reading a truth forecast."""
        tracker = self._new_tracker()
        if tracker is not None:
            return tracked_windows(tracker, raw_levels, targets)
        return self._calibrated(torch.as_tensor(raw_levels)).numpy()

    def _online_metrics(self, X, split: str, batch_size: int) -> dict:
        """`evaluate(online=True)`: MSE and MAE of `online_forecasts` over every window of the split, and a
        quantile model's level scores (quantiles.QuantileScores) of the same forecasts."""
        if self._levels():
            _, _, forecasts, levels, targets = self._stream_split(X, split, with_levels=True)
            scores = QuantileScores(self._levels())
            scores.add(*(torch.as_tensor(values) for values in (forecasts, levels, targets)))
            return {**scores.result(), "windows": len(targets)}
        _, _, forecasts, targets = self._split_predictions(X, split, batch_size, online=True)
        error = forecasts - targets
        return {"mse": float(np.mean(error**2)), "mae": float(np.mean(np.abs(error))), "windows": len(error)}

    def _stream_step(self, window: torch.Tensor, state):
        """(forecast, carried state, a quantile model's raw levels or None) of one window."""
        if self.forecaster_used_ != MODEL:  # a floor replaced the model (fallback): it reads the window alone
            return self._forecaster()(window), None, None
        if isinstance(self.model_, QuantileForecaster):
            forecast, levels, states = self.model_.forecast(window, state, return_states=True)
            return forecast, [carried(s) for s in states], levels
        forecast, states = self.model_(window, state, return_states=True)
        return forecast, [carried(s) for s in states], None

    def _saved_stream(self) -> tuple[dict, dict]:
        """(tensors, config.json entries) of the stream update() carries (window mode): the memory state of
        every block, the forecast made at the last row and its raw levels; ({}, {}) before any update."""
        forecast = getattr(self, "stream_forecast_", None)
        if forecast is None:
            return {}, {}
        tensors = {f"{WINDOW_STREAM}forecast": torch.as_tensor(forecast)}
        levels = getattr(self, "stream_levels_", None)
        if levels is not None:
            tensors[f"{WINDOW_STREAM}levels"] = torch.as_tensor(levels)
        layers = None
        if self.memory_state_ is not None:  # None where a floor forecast in the model's place
            state_tensors, layers = states_to_tensors(self.memory_state_, WINDOW_STREAM)
            tensors |= state_tensors
        return tensors, {"window_stream": {"state_layers": layers}}

    def _restore_stream(self, tensors: dict, config: dict) -> None:
        """The stream of a saved window model (`_saved_stream`); a model saved without one starts from the
        trained memory."""
        self.memory_state_, self.stream_forecast_, self.stream_levels_ = None, None, None
        saved = config.get("window_stream")
        if saved is None:
            return
        layers = saved["state_layers"]
        self.memory_state_ = None if layers is None else states_from_tensors(tensors, WINDOW_STREAM, layers)
        self.stream_forecast_ = tensors[f"{WINDOW_STREAM}forecast"].numpy()
        levels = tensors.get(f"{WINDOW_STREAM}levels")
        self.stream_levels_ = None if levels is None else levels.numpy()

    def _check_streamable(self) -> None:
        if self.variant != "lmm":
            raise ConfigError(
                f"update() and online evaluation carry the memory's state from one forecast to the next: they need "
                f"the memory variant 'lmm'; this model is {self.variant!r} (no memory, or attention beside it whose "
                "window is not carried). Evaluate it without online (CLI: without --online); for new rows, "
                "predict(X) with them (CLI: titans-ts predict --input with the recent rows)."
            )


def carried(state):
    """What a stream carries to the next window: the memory's weights and momentum, not its conv cache
    (a new window is a new token sequence)."""
    if state is None:
        return None
    return replace(state, conv_cache=None, tokens_seen=0)
