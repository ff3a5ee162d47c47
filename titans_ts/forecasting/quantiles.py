"""Quantile forecasts: the levels, the pinball loss, a head whose levels cannot cross, and their scores.

`TitansForecaster(quantiles=[0.1, 0.5, 0.9])` trains `QuantileForecaster`: the window backbone (SimbaForecaster,
DLinear, ...) forecasts the point, and `QuantileHead` maps each target channel's lookback window and point
forecast to the levels around it. The levels are built so that they cannot cross: with 0.5 among them the
median is the backbone's point forecast and every other level is the median plus (or minus) a cumulative sum
of non-negative increments (softplus); without 0.5, the lowest level is the point plus a free offset and the
others add non-negative increments to it (the point is then trained with MSE beside the pinball loss).
Increments are in units of the window's standard deviation, so a head trained on one scale carries over.

Metrics (`QuantileScores`), on the same windows and scaled data as MSE and MAE:
  pinball      per level tau: mean over every (window, step, column) of max(tau (y - q), (tau - 1) (y - q))
  mean_wql     mean over levels of 2 * sum(pinball) / sum(|y|) (GluonTS / neuralforecast's weighted
               quantile loss, averaged over the levels)
  crps         mean over levels of 2 * mean(pinball): the CRPS approximated by the given quantiles (the
               finer and more even the levels, the closer)
  coverage     for each central interval (levels tau and 1 - tau, both given): the share of truths inside it
  width        the interval's mean width
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

CALIBRATIONS = ("conformal", "adaptive", "none")  # TitansForecaster's calibrate (conformal.py)
MEDIAN = 0.5


def level_problems(quantiles) -> list[str]:
    """What is wrong with a `quantiles` setting (None: off); [] when it is a usable list of levels."""
    if quantiles is None:
        return []
    example = "e.g. quantiles=[0.1, 0.5, 0.9] (CLI --quantiles 0.1,0.5,0.9)"
    if isinstance(quantiles, str | bytes) or not hasattr(quantiles, "__iter__"):
        return [f"quantiles={quantiles!r} (a list of levels in (0, 1), {example}; None for point forecasts only)"]
    levels = list(quantiles)
    if not levels:
        return [f"quantiles=[] (give at least one level in (0, 1), {example}; or None)"]
    not_numbers = [q for q in levels if isinstance(q, bool) or not isinstance(q, numbers.Real)]
    if not_numbers:
        return [f"quantiles={levels!r}: {not_numbers} are not numbers (give the levels as numbers, {example})"]
    wrong = [q for q in levels if not 0 < q < 1]
    if wrong:
        return [f"quantiles={levels!r}: {wrong} not in (0, 1) (each level is a probability strictly between 0 and 1)"]
    labels = [level_label(q) for q in levels]
    twice = sorted({label for label in labels if labels.count(label) > 1})
    if twice:
        return [f"quantiles={levels!r}: {twice} given twice (give each level once)"]
    return []


def levels_of(quantiles) -> tuple[float, ...]:
    """The levels of a checked `quantiles` setting, sorted (any order is accepted); () when None."""
    return () if quantiles is None else tuple(sorted(as_level(q) for q in quantiles))


def as_level(level) -> float:
    """A level as a Python float; a NumPy float (float32) as it prints: 0.1, not 0.10000000149, so that 0.1 and 0.9
    still make a central interval and 0.5 is still the median."""
    return float(str(level)) if isinstance(level, np.floating) else float(level)


def level_label(level: float) -> str:
    """ "q0.1": how a level names its column (`OT_q0.1`) and its metrics."""
    return f"q{float(level):g}"


def median_index(levels) -> int | None:
    """The position of 0.5 among the levels (None: not among them)."""
    return next((i for i, q in enumerate(levels) if abs(q - MEDIAN) < 1e-12), None)


def central_pairs(levels) -> list[tuple[int, int]]:
    """(lower, upper) positions of every central interval among the levels: tau and 1 - tau both given."""
    return [
        (i, j)
        for i, low in enumerate(levels)
        for j, high in enumerate(levels)
        if low < MEDIAN < high and abs(low + high - 1) < 1e-9
    ]


def interval_label(low: float, high: float) -> str:
    return f"{float(low):g}-{float(high):g}"


# --- the loss and the head ------------------------------------------------------------------------------------


def pinball(levels: torch.Tensor, y: torch.Tensor, taus) -> torch.Tensor:
    """Elementwise pinball loss: levels (..., K) forecasts of y (...) at the K levels `taus`."""
    tau = torch.as_tensor(taus, dtype=levels.dtype, device=levels.device)
    diff = y[..., None] - levels
    return torch.maximum(tau * diff, (tau - 1) * diff)


def quantile_loss(point: torch.Tensor, levels: torch.Tensor, y: torch.Tensor, taus) -> torch.Tensor:
    """The training loss: the mean pinball loss over every level; plus the point's MSE when 0.5 is not a level
    (the point is then a head of its own, trained for the mean)."""
    loss = pinball(levels, y, taus).mean()
    return loss if median_index(taus) is not None else loss + F.mse_loss(point, y)


def ordered(point: torch.Tensor, raw: torch.Tensor, scale: torch.Tensor, median: int | None) -> torch.Tensor:
    """Levels that cannot cross, from the point (B, H, C), raw head outputs (B, H, C, K or K - 1) and a scale
    (B, 1, C) > 0: the median is the point, the others softplus increments away from it; without a median,
    the lowest level is point + raw offset and each higher one adds an increment."""
    scale = scale[..., None]
    if median is None:
        lowest = point[..., None] + raw[..., :1] * scale
        return torch.cat([lowest, lowest + torch.cumsum(F.softplus(raw[..., 1:]) * scale, -1)], -1)
    steps = F.softplus(raw) * scale
    below = torch.flip(torch.cumsum(torch.flip(steps[..., :median], [-1]), -1), [-1])
    above = torch.cumsum(steps[..., median:], -1)
    return torch.cat([point[..., None] - below, point[..., None], point[..., None] + above], -1)


class QuantileHead(nn.Module):
    """Per target channel (weights shared by channels): its lookback window and point forecast, normalised by
    the window's mean and standard deviation -> an MLP -> the levels around the point (`ordered`)."""

    def __init__(self, lookback: int, horizon: int, levels, hidden: int = 32, min_scale: float = 0.0):
        super().__init__()
        self.levels, self.median, self.min_scale = tuple(levels), median_index(levels), min_scale
        self.outputs = len(self.levels) - (self.median is not None)
        self.net = None  # the median alone: the point is the only level
        if self.outputs:
            self.net = nn.Sequential(
                nn.Linear(lookback + horizon, hidden), nn.GELU(), nn.Linear(hidden, horizon * self.outputs)
            )

    def forward(self, window: torch.Tensor, point: torch.Tensor) -> torch.Tensor:
        """window (B, lookback, C), point (B, horizon, C) -> levels (B, horizon, C, K)."""
        if self.net is None:
            return point[..., None]
        batch, horizon, channels = point.shape
        mean = window.mean(1, keepdim=True)
        scale = (window.var(1, unbiased=False, keepdim=True) + 1e-5).sqrt().clamp_min(self.min_scale)
        features = torch.cat([(window - mean) / scale, (point - mean) / scale], 1).transpose(1, 2)  # (B, C, L+H)
        raw = self.net(features).view(batch, channels, horizon, self.outputs).transpose(1, 2)
        return ordered(point, raw, scale, self.median)


class QuantileForecaster(nn.Module):
    """A window backbone and a `QuantileHead`: `forward` is the backbone's (the point forecast, and the memory
    states with return_states), `forecast` adds the levels (B, horizon, C, K)."""

    def __init__(self, backbone: nn.Module, levels, hidden: int = 32):
        super().__init__()
        config = backbone.config
        self.backbone, self.levels, self.targets = backbone, tuple(levels), list(config.targets)
        self.head = QuantileHead(config.lookback, config.horizon, self.levels, hidden, config.min_scale)

    def forward(self, x, states=None, return_states: bool = False):
        if return_states:
            return self.backbone(x, states, return_states=True)
        return self.backbone(x)

    def forecast(self, x, states=None, return_states: bool = False):
        """(point, levels), and with return_states the states after the window (streaming)."""
        point, new_states = self.forward(x, states, True) if return_states else (self.forward(x), None)
        levels = self.head(x[..., self.targets] if self.targets else x, point)
        return (point, levels, new_states) if return_states else (point, levels)


def point_and_levels(forecaster: nn.Module, x: torch.Tensor, n_levels: int):
    """(point, raw levels) of any forecaster: a QuantileForecaster's own; a point forecaster's (a naive one, a
    floor) point repeated at every level (its levels come from conformal calibration alone)."""
    if isinstance(forecaster, QuantileForecaster):
        return forecaster.forecast(x)
    point = forecaster(x)
    return point, point[..., None].expand(*point.shape, n_levels)


# --- scores ---------------------------------------------------------------------------------------------------


class QuantileScores:
    """Float64 sums over batches of (point, levels, truth), on their device: MSE, MAE and the level metrics
    (module docstring), each over every element, as `evaluation.evaluate_windows` sums MSE and MAE."""

    def __init__(self, levels):
        self.levels, self.pairs = tuple(levels), central_pairs(levels)
        self.sums = None  # squared, absolute, |y|, count, pinball per level, covered and width per pair

    def add(self, point: torch.Tensor, levels: torch.Tensor, y: torch.Tensor) -> None:
        error = (point - y).double()  # as evaluate_windows: the same MSE and MAE to the last bit
        levels, y = levels.double(), y.double()
        parts = [error.square().sum(), error.abs().sum(), y.abs().sum(), y.new_tensor(y.numel())]
        parts += list(pinball(levels, y, self.levels).flatten(0, -2).sum(0))
        for low, high in self.pairs:
            inside = (levels[..., low] <= y) & (y <= levels[..., high])
            parts += [inside.sum().double(), (levels[..., high] - levels[..., low]).sum()]
        sums = torch.stack(parts)
        self.sums = sums if self.sums is None else self.sums + sums

    def result(self) -> dict:
        values = self.sums.tolist()
        squared, absolute, size, count = values[:4]
        losses = values[4 : 4 + len(self.levels)]
        pairs = values[4 + len(self.levels) :]
        count = max(count, 1)
        names = [level_label(q) for q in self.levels]
        intervals = [interval_label(self.levels[i], self.levels[j]) for i, j in self.pairs]
        return {
            "mse": squared / count,
            "mae": absolute / count,
            "pinball": {name: loss / count for name, loss in zip(names, losses, strict=True)},
            "mean_wql": sum(2 * loss / size for loss in losses) / len(losses) if size > 0 else math.nan,
            "crps": sum(2 * loss / count for loss in losses) / len(losses),
            "coverage": {name: pairs[2 * n] / count for n, name in enumerate(intervals)},
            "width": {name: pairs[2 * n + 1] / count for n, name in enumerate(intervals)},
        }
