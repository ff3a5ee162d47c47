"""Split-conformal calibration of quantile forecasts on the validation windows (TitansForecaster's calibrate).

Per horizon step and target column, over the n validation windows (every one, the windows MSE is scored on):
- a model trained with quantiles (conformalized quantile regression, Romano, Patterson & Candes 2019): each
  central interval [q_tau, q_(1-tau)] moves out (or in) by Q, the ceil((n + 1)(1 - 2 tau))-th smallest of the
  scores max(q_tau - y, y - q_(1-tau)); a level without its partner moves by the one-sided residual quantile of
  y - q_tau (below);
- a point forecaster (naive, seasonal naive, a floor that replaced the model): level tau is the point plus the
  tau-quantile of the residuals y - point: the ceil((n + 1) tau)-th smallest above 0.5, the
  floor((n + 1) tau)-th smallest below it.
The (n + 1) ranks are the finite-sample correction: for exchangeable windows a central interval covers at least
its nominal share (overlapping windows of one series are not quite exchangeable; the coverage on test says
how close it comes). Level 0.5 is never moved: it stays the point forecast. After the shift the levels are kept
from crossing (`non_crossing`). The result is one offset per (level, step, column), added to the raw levels.

calibrate="adaptive" (the default) starts from those offsets and moves them as the truths arrive
(`LevelTracker`): online quantile tracking (the "P" part of Angelopoulos, Candes & Tibshirani's conformal PID
control, 2023), with the delayed feedback of a multi-step forecast (step h of a forecast is seen h rows after it
was made). Each level's offset per (step, column) takes a step rate * scale * (tau - 1[y < level]) for every
truth it sees, so that over a long stream the share of truths below a level tends to its tau (coverage moves back
to nominal when the noise level changes after validation), as long as the level is not held by the
non-crossing clamp. `scale` is the validation residuals' std per (step, column); `ADAPTIVE_RATE` was chosen on
validation halves (experiments/results/conformal_check.md).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from titans_ts.forecasting.quantiles import MEDIAN, central_pairs, level_label, median_index

ADAPTIVE_RATE = 0.01  # calibrate="adaptive"'s step per truth, in units of the residual std (conformal_check.md)


def rank_above(n: int, level: float) -> int:
    """ceil((n + 1) level): the order statistic an upper level takes (a rounding hair below an integer is it)."""
    return math.ceil((n + 1) * level - 1e-9)


def rank_below(n: int, level: float) -> int:
    return math.floor((n + 1) * level + 1e-9)


def order_statistic(scores: np.ndarray, rank: int) -> np.ndarray:
    """The rank-th smallest (1-based, clipped to 1..n) of scores (n, ...) along its first axis."""
    rank = min(max(rank, 1), len(scores))
    return np.partition(scores, rank - 1, axis=0)[rank - 1]


def conformal_offsets(y: np.ndarray, taus, point: np.ndarray | None = None, levels: np.ndarray | None = None):
    """(offsets (K, horizon, C), notes): what to add to each raw level. y (n, horizon, C) the validation truths;
    `levels` (n, horizon, C, K) a quantile model's raw levels, or `point` (n, horizon, C) a point forecaster's."""
    n = len(y)
    offsets = np.zeros((len(taus), *y.shape[1:]), dtype=np.float64)
    notes, done = [], set()
    short = []  # levels whose rank falls outside 1..n: too few windows for the finite-sample guarantee
    if levels is not None:
        for low, high in central_pairs(taus):
            rank = rank_above(n, taus[high] - taus[low])
            short += [f"{taus[low]:g}-{taus[high]:g}"] if rank > n else []
            scores = np.maximum(levels[..., low] - y, y - levels[..., high])
            width = order_statistic(scores, rank)
            offsets[low], offsets[high] = -width, width
            done |= {low, high}
    for k, tau in enumerate(taus):
        if k in done or k == median_index(taus):
            continue
        residuals = y - (point if levels is None else levels[..., k])
        rank = rank_above(n, tau) if tau > MEDIAN else rank_below(n, tau)
        short += [level_label(tau)] if not 1 <= rank <= n else []
        offsets[k] = order_statistic(residuals, rank)
    if short:
        notes.append(
            f"{n} validation windows are too few for the finite-sample guarantee of {', '.join(short)} (the most "
            "extreme residual is used): a longer validation split, or less extreme levels, give it"
        )
    return offsets, notes


def non_crossing(levels: torch.Tensor, median: int | None) -> torch.Tensor:
    """Levels (..., K) in order: from the median outward each level is at least as far out as the one before
    (the median stays); without a median, sorted."""
    if median is None:
        return torch.sort(levels, -1).values
    above = torch.cummax(levels[..., median:], -1).values
    below = torch.flip(torch.cummin(torch.flip(levels[..., : median + 1], [-1]), -1).values, [-1])
    return torch.cat([below[..., :median], above], -1)


def calibrated(levels: torch.Tensor, offsets: torch.Tensor | None, taus) -> torch.Tensor:
    """Raw levels (..., horizon, C, K) plus the offsets (K, horizon, C) (None: as they are), kept from crossing."""
    if offsets is None:
        return levels
    shifted = levels + offsets.to(levels.device, levels.dtype).permute(1, 2, 0)
    return non_crossing(shifted, median_index(taus))


def residual_scale(y: np.ndarray, point: np.ndarray) -> np.ndarray:
    """(horizon, C): the std of y - point over the validation windows, the tracker's unit of step."""
    return np.maximum((y - point).std(axis=0), 1e-6)


class LevelTracker:
    """calibrate="adaptive": the offsets of a stream of forecasts, made one row apart, moved by the truths.

    `forecast(raw)` calibrates one window's raw levels (horizon, C, K) with the offsets as they are and keeps the
    result; `observe(row)` reads the next row of the series (C,): for the forecast made `a` rows before, it is
    the truth of step a, and each level's offset at (a, column) moves by step * (tau - 1[row < level]) (the
    median never moves: it stays the point). Alternate observe(next row) and forecast(window ending there)."""

    def __init__(self, offsets: np.ndarray, scale: np.ndarray, taus, rate: float = ADAPTIVE_RATE):
        self.offsets = np.array(offsets, dtype=np.float64)  # (K, horizon, C)
        self.taus = np.asarray(taus, dtype=np.float64)
        self.median = median_index(taus)
        moving = np.array([k != self.median for k in range(len(taus))], dtype=np.float64)
        self.step = rate * moving[:, None, None] * np.asarray(scale, dtype=np.float64)[None]
        horizon, columns = self.offsets.shape[1:]
        # ring of the last `horizon` forecasts, whose truths still come (float32: horizon^2 * C * K values)
        self.pending = np.zeros((horizon, horizon, columns, len(taus)), dtype=np.float32)
        self.made = 0

    @property
    def horizon(self) -> int:
        return self.offsets.shape[1]

    def forecast(self, raw: np.ndarray) -> np.ndarray:
        shifted = torch.as_tensor(np.asarray(raw, dtype=np.float64) + self.offsets.transpose(1, 2, 0))
        levels = non_crossing(shifted, self.median).numpy()
        self.pending[self.made % self.horizon] = levels
        self.made += 1
        return levels

    def advance(self, row: np.ndarray | None, raw: np.ndarray) -> np.ndarray:
        """observe(row) (None: nothing new to read), then forecast(raw): one step of a stream."""
        if row is not None:
            self.observe(row)
        return self.forecast(raw)

    def observe(self, row: np.ndarray) -> None:
        ages = np.arange(1, min(self.made, self.horizon) + 1)
        if not len(ages):
            return
        steps = ages - 1
        levels = self.pending[(self.made - ages) % self.horizon, steps]  # (ages, C, K): step a of the forecast a ago
        below = (np.asarray(row, dtype=np.float64)[None, :, None] < levels).transpose(2, 0, 1)  # (K, ages, C)
        self.offsets[:, steps] += self.step[:, steps] * (self.taus[:, None, None] - below)

    def last(self) -> np.ndarray:
        """The calibrated levels (horizon, C, K) of the latest forecast."""
        return self.pending[(self.made - 1) % self.horizon]

    def state(self) -> dict:
        return {"offsets": self.offsets, "pending": self.pending, "made": self.made}

    def restore(self, offsets: np.ndarray, pending: np.ndarray, made: int) -> LevelTracker:
        self.offsets, self.pending, self.made = np.array(offsets, np.float64), np.array(pending, np.float32), made
        return self


def tracked_windows(tracker: LevelTracker, raw: np.ndarray, y: np.ndarray, before: np.ndarray | None = None):
    """Calibrated levels (n, horizon, C, K) of n windows one row apart, in time order: before each window the
    tracker reads the row it adds (the previous window's first truth; `before`, that of the window before raw[0],
    when the stream goes on from one), never a truth the window forecasts."""
    out = np.empty(raw.shape, dtype=np.float64)
    for i in range(len(raw)):
        out[i] = tracker.advance(y[i - 1, 0] if i else before, raw[i])
    return out
