"""Scoring the long-memory forecaster on the protocol's windows (issue 28), online and frozen.

The windows are the benchmark protocol's: every window of a split (drop_last=False), window i of a split
starting at row s forecasting rows s + lookback + i ... from the `lookback` rows before (its origin). The
model forecasts at any row, not only at patch boundaries: an origin t reads the readout of the last whole
patch of the grid (rows grid_start + k * patch_len ...) that ends at or before t, with the lag since that
patch's end, and the local window of rows t - lookback .. t - 1.

- online: the memory reads the series patch by patch from `grid_start` (row 0: train, val, the earlier
  test rows), a segment per call with the state carried and guarded as in training; a forecast at t uses
  only rows before t (the memory is causal, and nothing after the last origin is read at all).
- frozen: the state reset for every window: the memory reads, from its trained initial state, only the
  whole grid patches inside the window's lookback; the local part is the same.
- online with a blend w < 1 (online_blend): w x the online forecast + (1 - w) x the frozen one, the frozen
  window's patches on the online patch grid.
For the ablation (memory="mlp") all are the same forecasts.
"""

from __future__ import annotations

import torch

from titans_ts.errors import ConfigError
from titans_ts.forecasting.long_memory import LongMemoryForecaster, readout_patches, rows_at

MODES = ("online", "frozen")


def split_origins(bounds: tuple[int, int], lookback: int, horizon: int, device=None) -> torch.Tensor:
    """The origins of every window of a split with rows [start, end) (SplitBorders' train / val / test)."""
    start, end = bounds
    return torch.arange(start + lookback, end - horizon + 1, device=device)


@torch.no_grad()
def online_forecasts(model: LongMemoryForecaster, series, origins, grid_start: int = 0, batch: int = 1024, read=None):
    """(M, horizon, C) forecasts at `origins` (increasing rows of the (T, C) scaled series), each from the
    memory state carried through every patch from grid_start up to the origin. read(past, grid_start,
    n_patches) -> readouts (1, C, n_patches, dim): another way of reading the grid's patches (None: one
    carried stream, `read_stream`); each readout must read only patches that end at or before it."""
    model.eval()
    last = int(origins.max())
    past = series[:last]  # nothing at or after the last origin is read
    n_patches = readout_patches(model.config, grid_start, last)
    readouts = model.read_stream(past, grid_start, n_patches)[0] if read is None else read(past, grid_start, n_patches)
    grid = torch.full((1,), grid_start, device=origins.device)
    return torch.cat([model.forecast_at(past, readouts, grid, chunk[None])[0] for chunk in origins.split(batch)])


@torch.no_grad()
def frozen_forecasts(model: LongMemoryForecaster, series, origins, grid_start: int = 0, batch: int = 256):
    """(M, horizon, C) forecasts at `origins`, each from a fresh memory that reads only the whole grid
    patches inside its lookback window (batched by the lag since the last patch)."""
    model.eval()
    config = model.config
    patch_len = config.patch_len
    lags = (origins - grid_start) % patch_len
    forecasts = series.new_empty(len(origins), config.horizon, series.shape[1])
    if not len(origins):
        return forecasts
    # each patch's error tokens once, for every window that reads it; an origin before `lookback` or after the
    # series reads rows outside it (clamped, as `rows_at` does): then each window makes its own
    shared = config.error_tokens and config.lookback <= int(origins.min()) and int(origins.max()) <= len(series)
    if shared:
        lowest = int(origins.min()) - config.lookback  # no window's first patch starts before it
        first_row = lowest + (grid_start - lowest) % patch_len
        errors = model.grid_patch_errors(series, first_row, (int(origins.max()) - first_row) // patch_len)
    for lag in lags.unique().tolist():
        n_patches = (config.lookback - lag) // config.patch_len
        if n_patches < 1:
            raise ConfigError(
                f"frozen forecasts need a whole patch inside the lookback at every lag: lookback="
                f"{config.lookback} must be >= 2 * patch_len - 1 = {2 * config.patch_len - 1}."
            )
        positions = (lags == lag).nonzero().flatten()
        span = torch.arange(n_patches * patch_len, device=origins.device)
        for chosen in positions.split(batch):
            first_rows = origins[chosen] - lag - n_patches * patch_len
            before, window_errors = None, None
            if shared:  # (C, windows, n_patches, patch_len) -> (windows * C, n_patches, patch_len)
                index = (first_rows - first_row) // patch_len
                window_errors = errors[:, index[:, None] + torch.arange(n_patches, device=origins.device)]
                window_errors = window_errors.transpose(0, 1).reshape(-1, n_patches, patch_len)
            elif config.error_tokens:
                before = model.lookback_rows(series, first_rows)
            readouts, _ = model.read(rows_at(series, first_rows, span), before=before, errors=window_errors)
            forecasts[chosen] = model.forecast_at(series, readouts, first_rows, origins[chosen, None])[:, 0]
    return forecasts


def blended_forecasts(model: LongMemoryForecaster, series, origins, grid_start: int = 0, blend=1.0, frozen=None):
    """(M, horizon, C): `blend` x the online forecasts + (1 - blend) x the frozen ones on the same patch grid
    (`frozen`: those, when already made)."""
    online = online_forecasts(model, series, origins, grid_start)
    if blend == 1.0:
        return online
    frozen = frozen_forecasts(model, series, origins, grid_start) if frozen is None else frozen
    return blend * online + (1.0 - blend) * frozen


def error_sums(forecasts: torch.Tensor, series: torch.Tensor, origins: torch.Tensor) -> torch.Tensor:
    """float64 [sum of squared errors, sum of absolute errors, element count] of forecasts at origins."""
    horizon = forecasts.shape[1]
    targets = rows_at(series, origins, torch.arange(horizon, device=origins.device))
    error = (forecasts - targets).double()
    return torch.stack([error.square().sum(), error.abs().sum(), error.new_tensor(error.numel())])


def split_frozen_forecasts(model: LongMemoryForecaster, series, bounds: tuple[int, int], grid_start=0):
    """The frozen forecasts of every window of the split with rows `bounds` (what `evaluate_split` scores in
    mode "frozen", and mixes in with a blend): made once for the scores that share them."""
    series = _on_model(model, series)
    return frozen_forecasts(
        model, series, split_origins(bounds, model.config.lookback, model.config.horizon, series.device), grid_start
    )


def _on_model(model: LongMemoryForecaster, series) -> torch.Tensor:
    """The (T, C) series as a tensor of the model's dtype, on its device."""
    parameter = next(model.parameters())
    return torch.as_tensor(series, dtype=parameter.dtype).to(parameter.device)


def evaluate_split(
    model: LongMemoryForecaster, series, bounds: tuple[int, int], mode="online", grid_start=0, blend=1.0, frozen=None
):
    """MSE and MAE over every window of the split with rows `bounds` of the scaled (T, C) series.

    mode "online": the state carried from grid_start through every earlier row (mixed with the frozen forecast
    when blend < 1); "frozen": reset per window. frozen: the split's frozen forecasts on grid_start's patch grid
    when already made (`split_frozen_forecasts`), not made again."""
    if mode not in MODES:
        raise ConfigError(f"mode={mode!r} is not one of {MODES}.")
    series = _on_model(model, series)
    origins = split_origins(bounds, model.config.lookback, model.config.horizon, series.device)
    if mode == "online":
        forecasts = blended_forecasts(model, series, origins, grid_start, blend, frozen)
    else:
        forecasts = frozen_forecasts(model, series, origins, grid_start) if frozen is None else frozen
    squared, absolute, count = error_sums(forecasts, series, origins).tolist()
    return {"mse": squared / count, "mae": absolute / count, "windows": len(origins), "mode": mode}
