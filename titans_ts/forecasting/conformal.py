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
"""

from __future__ import annotations

import math

import numpy as np
import torch

from titans_ts.forecasting.quantiles import MEDIAN, central_pairs, level_label, median_index


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
