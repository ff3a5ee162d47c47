"""TitansForecaster's quantile levels: the model with its quantile head, the conformal calibration on
validation, the levels of predict / evaluate / window_forecasts, and what a saved model keeps of them.

With `quantiles=None` (the default) none of this runs: the model, its training, its forecasts and its saved
files are those of a point forecaster. `quantile_levels_` (sorted) is () then.
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np
import pandas as pd
import torch
from torch import nn

from titans_ts.data import split_borders
from titans_ts.errors import ConfigError, DataValidationError, TitansWarning
from titans_ts.forecasting.conformal import (
    ADAPTIVE_RATE,
    LevelTracker,
    calibrated,
    conformal_offsets,
    residual_scale,
    tracked_windows,
)
from titans_ts.forecasting.quantiles import (
    QuantileForecaster,
    QuantileScores,
    level_label,
    levels_of,
    point_and_levels,
)

OFFSETS = "quantile_offsets"  # the saved tensor of the calibration: (levels, horizon, target columns)
SCALE, TRACKED, PENDING = "quantile_scale", "quantile_tracker_offsets", "quantile_tracker_pending"  # adaptive


def level_column(column, level: float) -> str:
    """The forecast frame's column of one (series, level): "OT_q0.1"."""
    return f"{column}_{level_label(level)}"


class QuantileOutputs:
    """TitansForecaster's quantile methods (a mixin: it uses the fitted model, scaler, floors and forecaster)."""

    def _levels(self) -> tuple[float, ...]:
        return tuple(getattr(self, "quantile_levels_", ()))

    def _with_quantile_head(self, model: nn.Module, trained: bool) -> nn.Module:
        """The network to train: a trained variant with quantiles gets its head; otherwise the model as is."""
        levels = levels_of(self.quantiles)
        if not levels or not trained:
            return model
        return QuantileForecaster(model, levels, hidden=model.config.dim)

    # --- calibration ---------------------------------------------------------------------------------------

    def _calibrate(self, loader) -> None:
        """Conformal offsets from the validation windows of `loader`, for the forecaster used (the model with its
        head, or the floor that replaced it): `quantile_offsets_` (levels, horizon, columns) and `calibration_`."""
        levels = self._levels()
        self.quantile_offsets_, self.calibration_, self.quantile_scale_, self.level_tracker_ = None, None, None, None
        if not levels:
            return
        forecaster = self._forecaster()
        has_head = isinstance(forecaster, QuantileForecaster)
        record = {"method": self.calibrate, "on": "validation", "windows": len(loader.dataset), "notes": []}
        if has_head and self.calibrate == "none":
            self.calibration_ = record | {"source": "the quantile head, uncalibrated"}
            return
        if not has_head:
            record["source"] = f"conformal residual quantiles around the point forecast of {self._forecaster_name()}"
            if self.calibrate == "none":
                record["method"] = "conformal"
                record["notes"].append("calibrate='none', but a point forecaster has no levels of its own")
        else:
            record["source"] = "the quantile head, conformalized (CQR)"
        points, raw, truths = [], [], []
        for point, levels_, y in self._raw_level_batches(forecaster, loader):
            truths.append(y.float().cpu().numpy())
            points.append(point.float().cpu().numpy())
            if has_head:
                raw.append(levels_.float().cpu().numpy())
        y, point = np.concatenate(truths), np.concatenate(points)
        given = {"levels": np.concatenate(raw)} if has_head else {"point": point}
        offsets, notes = conformal_offsets(y, levels, **given)
        for note in notes:  # said where it is seen (fit prints it too), not only kept in calibration_
            warnings.warn(f"calibration: {note}.", TitansWarning, stacklevel=4)
        self.quantile_offsets_ = torch.as_tensor(offsets, dtype=torch.float32)
        if self.calibrate == "adaptive":  # then moved by every truth after validation (conformal.LevelTracker)
            self.quantile_scale_ = torch.as_tensor(residual_scale(y, point), dtype=torch.float32)
            record["rate"] = ADAPTIVE_RATE
        self.calibration_ = record | {"notes": record["notes"] + notes}

    def _new_tracker(self) -> LevelTracker | None:
        """calibrate="adaptive": a tracker at the validation offsets (None for the other calibrations)."""
        if getattr(self, "quantile_scale_", None) is None:
            return None
        offsets, scale = self.quantile_offsets_.double().numpy(), self.quantile_scale_.double().numpy()
        return LevelTracker(offsets, scale, self._levels(), rate=self.calibration_.get("rate", ADAPTIVE_RATE))

    def _tracker_over(self, frame: pd.DataFrame, first_origin: int) -> LevelTracker | None:
        """An adaptive tracker after reading `frame` in time order: a forecast at every row from `first_origin`
        (0-based, at least lookback - 1) to the last, each after the tracker has read that row's truths. Its
        last forecast is the one predict() gives at the end of `frame`."""
        tracker = self._new_tracker()
        if tracker is None:
            return None
        scaled = torch.as_tensor(self.scaler_.transform(frame.to_numpy()), dtype=torch.float32)
        windows = scaled.unfold(0, self.lookback, 1).transpose(1, 2)[first_origin - self.lookback + 1 :]
        targets = self._target_positions()
        rows = iter((scaled if targets is None else scaled[:, targets]).double().numpy()[first_origin + 1 :])
        for levels in self._raw_levels_of(windows):  # batch by batch: a long history never sits in memory whole
            for raw in levels.double().cpu().numpy():
                tracker.advance(next(rows) if tracker.made else None, raw)
        return tracker

    def _raw_levels_of(self, windows: torch.Tensor, batch_size: int = 256):
        """The raw levels of `windows` (n, lookback, C), batch by batch (`_raw_level_batches` without truths)."""
        batches = ((batch.contiguous(), torch.empty(0)) for batch in windows.split(batch_size))
        for _, levels, _ in self._raw_level_batches(self._forecaster(), batches):
            yield levels

    def _prediction_tracker(self, frame: pd.DataFrame | None) -> LevelTracker | None:
        """The adaptive tracker predict() reads its levels from: the fitted one (carried by every update()), or
        for a new X one that has read X as fit reads its data (the rows after X's validation split under the
        model's protocol; from its first whole window when X is too short to split). None for the other
        calibrations."""
        if frame is None:
            return getattr(self, "level_tracker_", None)
        try:
            first_origin = split_borders(len(frame), self.lookback, self.horizon, self._protocol_of(frame)).val[1] - 1
        except (DataValidationError, ConfigError):
            first_origin = self.lookback - 1
        return self._tracker_over(frame, first_origin)

    def recalibrate(self, X=None, calibrate: str | None = None):
        """Calibrate the levels again, without retraining: on the validation windows of X (default: the fitted
        data; a loaded model needs X), with `calibrate` ("conformal", "adaptive" or "none"; default: the model's
        own). What fit would have given with that setting, from the same trained network; like fit, it puts the
        model at the end of X (predict continues from there, a stream restarts from the trained memory)."""
        from titans_ts.forecasting.settings import check

        self._check_fitted(changing=("calibrate",) if calibrate is not None else ())
        if not self._levels():
            raise ConfigError(
                "this model was fitted without quantiles, so it has no levels to calibrate: "
                f"{self._refit_with_levels()}."
            )
        before = self.calibrate, getattr(self, "fitted_params_", {}).get("calibrate")
        if calibrate is not None:
            check({**self.get_params(), "calibrate": calibrate})  # refused before anything changes
            self.set_params(calibrate=calibrate)
            if hasattr(self, "fitted_params_"):  # recalibrating makes it the fitted model's setting
                self.fitted_params_["calibrate"] = calibrate
        try:
            frame, borders = self._split_rows(X, "val")
            windows = self._split_windows(X, "val", self.batch_size)[2]
        except Exception:  # data that cannot be split (none, too short): the model stays as it was
            self.set_params(calibrate=before[0])
            if hasattr(self, "fitted_params_"):
                self.fitted_params_["calibrate"] = before[1]
            raise
        self._calibrate(windows)
        streamed_to = self.last_index_ if getattr(self, "stream_forecast_", None) is not None else None
        self.borders_, self._fit_frame = borders, frame
        if hasattr(self, "fitted_params_"):  # the split recalibrated on is the model's own now, as fit's was
            self.fitted_params_["protocol"] = self.protocol
        self._keep_split_starts(frame)
        self._set_context(frame)
        self._start_tracker(frame, borders)
        if streamed_to is not None and streamed_to != self.last_index_:
            import warnings

            warnings.warn(
                f"update() had read rows up to {streamed_to}; recalibrate, as fit, restarts at the end of X "
                f"({self.last_index_}) from the trained memory: give those rows to update() again, or pass X "
                "with them.",
                TitansWarning,
                stacklevel=2,
            )
        return self

    def _start_tracker(self, frame: pd.DataFrame, borders) -> None:
        """After calibration: the adaptive tracker has read the data after the validation split (the test rows)."""
        self.level_tracker_ = self._tracker_over(frame, borders.val[1] - 1)

    def _raw_level_batches(self, forecaster: nn.Module, loader):
        """(point, raw levels, truth) of every (window, truth) batch of `loader`, run where the estimator runs."""
        device = self._device()
        forecaster = forecaster.to(device).eval()
        with torch.no_grad():
            for x, y in loader:
                point, levels = point_and_levels(forecaster, x.to(device), len(self._levels()))
                yield point, levels, y.to(device)

    def _refit_with_levels(self) -> str:
        """How to get a model with levels: a refit with quantiles, in window mode (history mode has none yet)."""
        advice = "refit it with quantiles=[0.1, 0.5, 0.9] (CLI: titans-ts fit --quantiles 0.1,0.5,0.9)"
        if self._in_history_mode():
            advice += ", in mode='window' (quantiles are not supported in mode='history' yet)"
        return advice

    def _calibrated(self, levels: torch.Tensor, tracker: LevelTracker | None = None) -> torch.Tensor:
        """Raw levels shifted by the validation offsets, or by where an adaptive `tracker` has moved them."""
        offsets = getattr(self, "quantile_offsets_", None) if tracker is None else torch.as_tensor(tracker.offsets)
        return calibrated(levels, offsets, self._levels())

    # --- what predict, evaluate and window_forecasts give ----------------------------------------------------

    def _level_metrics(self, loader) -> dict:
        """MSE, MAE and the quantile metrics (quantiles.QuantileScores) over every window of `loader`."""
        scores = QuantileScores(self._levels())
        for point, levels, y in self._calibrated_batches(loader):
            scores.add(point, levels, y)
        return {**scores.result(), "windows": len(loader.dataset)}

    def _calibrated_batches(self, loader):
        """(point, calibrated levels, truth) of every batch of `loader`, its windows one row apart in time order:
        adaptive levels are tracked through them from the validation offsets, the others shifted by those."""
        tracker, before = self._new_tracker(), None
        for point, raw, y in self._raw_level_batches(self._forecaster(), loader):
            if tracker is None:
                yield point, self._calibrated(raw), y
                continue
            truths = y.double().cpu().numpy()
            levels = tracked_windows(tracker, raw.double().cpu().numpy(), truths, before)
            before = truths[-1, 0]
            yield point, torch.as_tensor(levels, device=point.device), y

    def _level_predictions(self, loader) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(points, calibrated levels, targets) of every window of `loader`, scaled, as float64 arrays."""
        points, levels, targets = [], [], []
        for point, calibrated_levels, y in self._calibrated_batches(loader):
            points.append(point.double().cpu().numpy())
            levels.append(calibrated_levels.double().cpu().numpy())
            targets.append(y.double().cpu().numpy())
        return np.concatenate(points), np.concatenate(levels), np.concatenate(targets)

    def _one_forecast_levels(self, context: torch.Tensor, tracker=None) -> tuple[np.ndarray, np.ndarray]:
        """(point (horizon, C), calibrated levels (horizon, C, K)) of one scaled window (lookback, C)."""
        device = self._device()
        forecaster = self._forecaster().to(device).eval()
        with torch.no_grad():
            window = context.contiguous()[None].to(device)  # as a loaded model's: the same sums, bit for bit
            point, levels = point_and_levels(forecaster, window, len(self._levels()))
            levels = self._calibrated(levels, tracker)
        return point[0].double().cpu().numpy(), levels[0].double().cpu().numpy()

    def _chosen_levels(self, levels) -> list[int]:
        """Positions of the asked-for `levels` among the fitted ones (None: all of them), in the fitted order
        (ascending: the columns of quantiles=[0.9, 0.1] read low to high, as the fitted levels do)."""
        fitted = self._levels()
        if levels is None:
            return list(range(len(fitted)))
        if not fitted and hasattr(levels, "__len__") and not isinstance(levels, str | bytes) and not len(levels):
            return []  # quantiles=[]: the point alone, which a model fitted without quantiles gives too
        if not fitted:
            raise ConfigError(
                f"this model was fitted without quantiles: {self._refit_with_levels()} to forecast levels."
            )
        if isinstance(levels, numbers.Real) and not isinstance(levels, bool):
            levels = [levels]  # predict(quantiles=0.9): the one level
        wrong = [levels] if isinstance(levels, str | bytes) or not hasattr(levels, "__iter__") else None
        wrong = wrong or [q for q in levels if isinstance(q, bool) or not isinstance(q, numbers.Real)]
        if wrong:
            raise ConfigError(
                f"quantiles={levels!r}: {wrong} are not levels; give fitted levels as numbers, e.g. "
                f"quantiles={list(fitted)} or quantiles={fitted[0]}."
            )
        labels = [level_label(q) for q in fitted]
        missing = [q for q in levels if level_label(q) not in labels]
        if missing:
            raise ConfigError(
                f"levels {missing} were not fitted; this model forecasts {list(fitted)} (refit with quantiles= "
                "listing every level you need)."
            )
        return sorted({labels.index(level_label(q)) for q in levels})  # in the fitted (ascending) order, once each

    def _level_frame(self, scaled_levels: np.ndarray, index: pd.Index, chosen: list[int]) -> pd.DataFrame:
        """Levels (horizon, C, K), scaled -> original units, one column per (target, level): "OT_q0.1"."""
        scaler, fitted = self._target_scaler(), self._levels()
        columns = {}
        for c, column in enumerate(self.targets_):
            for k in chosen:
                columns[level_column(column, fitted[k])] = scaler.inverse_transform(scaled_levels[..., k])[:, c]
        return pd.DataFrame(columns, index=index)

    def _level_table_columns(self, table: pd.DataFrame, levels: np.ndarray) -> pd.DataFrame:
        """window_forecasts' table with a column per level, in original units and scaled (levels (N, H, C, K))."""
        scaler = self._target_scaler()
        flat = (-1, levels.shape[2])
        for k, level in enumerate(self._levels()):
            label = level_label(level)
            table[label] = scaler.inverse_transform(levels[..., k].reshape(flat)).reshape(-1)
            table[f"{label}_scaled"] = levels[..., k].reshape(-1)
        return table

    # --- persistence -------------------------------------------------------------------------------------------

    def _saved_levels(self) -> tuple[dict, dict]:
        """(tensors, config) a saved model adds for its levels; ({}, {}) without levels (files as before)."""
        levels = self._levels()
        if not levels:
            return {}, {}
        head = isinstance(self.model_, QuantileForecaster)
        config = {
            "quantiles": {
                "levels": list(levels),
                "head": {"hidden": self.model_.head.net[0].out_features} if head and self.model_.head.net else None,
                "has_head": head,
                "calibration": self.calibration_,
            }
        }
        offsets = getattr(self, "quantile_offsets_", None)
        tensors = {} if offsets is None else {OFFSETS: offsets.contiguous()}
        tracker = getattr(self, "level_tracker_", None)
        if tracker is not None:  # adaptive: where the tracker is, so a loaded model goes on from there
            tensors |= {SCALE: self.quantile_scale_.contiguous()}
            tensors |= {TRACKED: torch.as_tensor(tracker.offsets), PENDING: torch.as_tensor(tracker.pending)}
            config["quantiles"]["tracker_forecasts"] = tracker.made
        return tensors, config

    def _restore_levels(self, model: nn.Module, tensors: dict, config: dict) -> nn.Module:
        """The saved levels and calibration; returns the network to load the weights into (with its head when
        it was saved with one). A model saved without levels (or before they existed) has none."""
        saved = config.get("quantiles")
        self.quantile_levels_ = tuple(saved["levels"]) if saved else ()
        self.quantile_offsets_ = tensors.get(OFFSETS) if saved else None
        self.calibration_ = saved["calibration"] if saved else None
        self.quantile_scale_ = tensors.get(SCALE) if saved else None
        self.level_tracker_ = None
        if self.quantile_scale_ is not None:
            made = saved["tracker_forecasts"]
            self.level_tracker_ = self._new_tracker().restore(tensors[TRACKED].numpy(), tensors[PENDING].numpy(), made)
        if saved and saved["has_head"]:
            hidden = saved["head"]["hidden"] if saved["head"] else model.config.dim
            return QuantileForecaster(model, self.quantile_levels_, hidden=hidden)
        return model
