"""Where the long-memory forecaster's memory stands on a series it reads in time order (issue 28): the stream
that history mode's fit leaves, predict forecasts from, and update reads on (history_mode.py).

- `MemoryStream`: the carried state after the last whole segment, the rows read since, and the readout of the
  last whole patch;
- `advance`: read more rows. A segment is read in one call once it is whole (`read_stream`, the state
  guarded by `carry` after it), the rows of an unfinished one from the state before it at every call: reading
  in other pieces would move the memory's chunk boundaries, so advance(a); advance(b) equals advance(a + b);
- `stream_forecast`: the forecast at the end of the stream, blended with the frozen one when asked;
- `saved_stream` / `restore_stream`: the stream in a saved model (safetensors + JSON).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from titans_ts.errors import DataValidationError
from titans_ts.forecasting.long_memory import LongMemoryForecaster
from titans_ts.forecasting.long_memory_eval import frozen_forecasts
from titans_ts.memory import MemoryState, states_from_tensors, states_to_tensors

STREAM_PREFIX = "stream."  # the saved tensors of the MemoryStream


@dataclass(frozen=True)
class MemoryStream:
    """Where the memory stands after reading a series from its first row (patch k covers rows k * patch_len ...).

    state: after the last whole segment, `carry`-guarded (None: nothing read yet, or the MLP ablation);
    pending: (rows, C) scaled rows read since, fewer than a segment's;
    before: (rows, C) the `lookback` scaled rows before `pending` (fewer at the start of the series): what a
      segment's read may look back at (read_stream takes them from the series it is given);
    readout: (1, C, 1, dim), the readout of the last whole patch (None before the first)."""

    state: list[MemoryState] | None
    pending: torch.Tensor
    before: torch.Tensor
    readout: torch.Tensor | None

    @classmethod
    def empty(cls, channels: int, device=None) -> MemoryStream:
        nothing = torch.zeros(0, channels, device=device)
        return cls(None, nothing, nothing, None)

    def lag(self, patch_len: int) -> int:
        """Rows read since the end of the last whole patch (segments are whole patches)."""
        return len(self.pending) % patch_len

    def to(self, device) -> MemoryStream:
        state = None if self.state is None else [layer_state.to(device) for layer_state in self.state]
        readout = None if self.readout is None else self.readout.to(device)
        return MemoryStream(state, self.pending.to(device), self.before.to(device), readout)


# --- the memory reading a stream ----------------------------------------------------------------------------


@torch.no_grad()
def advance(model: LongMemoryForecaster, stream: MemoryStream, rows: torch.Tensor) -> MemoryStream:
    """The stream after reading `rows` ((n, C) scaled, in time order, on the model's device): each segment
    completed is read in one call from the state before it and the state carried on (`read_stream`); the
    whole patches of the unfinished segment are read from that state for the last readout."""
    model.eval()
    config = model.config
    series = torch.cat([stream.before, stream.pending, rows.to(stream.pending.dtype)])
    start, state, readout = len(stream.before), stream.state, stream.readout  # start: the first row not in a segment
    while len(series) - start >= config.segment_rows:
        readouts, state = model.read_stream(series, start, config.segment_patches, state)
        readout, start = readouts[:, :, -1:], start + config.segment_rows
    whole = (len(series) - start) // config.patch_len
    if whole:  # the unfinished segment, from the state before it (the state after it is not kept)
        readouts, _ = model.read_stream(series, start, whole, state)
        readout = readouts[:, :, -1:]
    before = series[max(0, start - config.lookback) : start].clone()
    return MemoryStream(state, series[start:].clone(), before, None if readout is None else readout.clone())


@torch.no_grad()
def stream_forecast(model: LongMemoryForecaster, stream: MemoryStream, context: torch.Tensor, blend: float = 1.0):
    """(horizon, C) scaled forecast at the end of the stream: the last whole patch's readout with the lag since
    it, and the local window of `lookback` rows, as `forecast_at` makes it at that row. context: the last rows
    (up to 2 x lookback: a blend's frozen forecast reads the lookback rows before its first patch too).
    blend < 1: mixed with the frozen forecast at that row, its patches on the stream's grid (online_blend)."""
    config = model.config
    if stream.readout is None:
        raise DataValidationError(
            f"the memory has read no whole patch yet: forecasting needs at least patch_len={config.patch_len} rows."
        )
    device = context.device
    origin = torch.tensor([[len(context)]], device=device)  # the row after `context`
    lag = stream.lag(config.patch_len)
    grid = origin[0] - config.patch_len - lag  # the last patch is patch 0 of this grid
    forecast = model.forecast_at(context, stream.readout, grid, origin)[0, 0]
    if blend == 1.0:
        return forecast
    read_more = stream.state is not None or len(stream.before) + len(stream.pending) > len(context)
    if config.error_tokens and len(context) < 2 * config.lookback and read_more:
        raise DataValidationError(
            f"online_blend={blend} with error tokens needs the last 2 x lookback = {2 * config.lookback} rows, and "
            f"this model keeps {len(context)} (saved before online_blend existed): update it with at least "
            f"{2 * config.lookback - len(context)} more rows, pass the history to predict(X), or fit it again."
        )
    frozen = frozen_forecasts(model, context, origin[0], grid_start=len(context) - lag)[0]
    return blend * forecast + (1.0 - blend) * frozen


# --- save / load: safetensors + JSON ----------------------------------------------------------------------


def saved_stream(estimator) -> tuple[dict, dict]:
    """(tensors, config.json entries) of a history-mode model beyond the window model's: the stream (the
    carried state, layer by layer, the rows read since it and the last readout) and the frozen val score."""
    stream = estimator.stream_
    tensors = {f"{STREAM_PREFIX}pending": stream.pending, f"{STREAM_PREFIX}before": stream.before}
    if stream.readout is not None:
        tensors[f"{STREAM_PREFIX}readout"] = stream.readout
    layers = None
    if stream.state is not None:
        state_tensors, layers = states_to_tensors(stream.state, STREAM_PREFIX)
        tensors |= state_tensors
    tensors = {name: tensor.clone() for name, tensor in tensors.items()}  # safetensors refuses shared storage
    config = {"mode": "history", "stream": {"state_layers": layers}}
    return tensors, config | {"val_metrics_frozen": estimator.val_metrics_frozen_}


def restore_stream(estimator, tensors: dict, config: dict) -> None:
    """The stream and the frozen val score of a saved history-mode model (`saved_stream`)."""
    layers = config["stream"]["state_layers"]
    state = None if layers is None else states_from_tensors(tensors, STREAM_PREFIX, layers)
    readout = tensors.get(f"{STREAM_PREFIX}readout")
    pending, before = (tensors[f"{STREAM_PREFIX}{name}"] for name in ("pending", "before"))
    estimator.stream_ = MemoryStream(state, pending, before, readout)
    estimator.val_metrics_frozen_ = config["val_metrics_frozen"]
