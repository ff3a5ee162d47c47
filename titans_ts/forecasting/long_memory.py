"""A forecaster whose memory reads each channel's whole history along time (issue 28).

Channel-independent: each channel of the (train-scaled) series is its own sequence, cut into
non-overlapping patches of `patch_len` steps on a grid (`grid_start + k * patch_len`). A linear patch
embedding feeds `layers` residual LMM blocks over the patch tokens, whose memory state is carried from one
call to the next, so the memory reads the history patch by patch at a cost linear in its length.

A forecast at origin t (predicting rows t .. t + horizon - 1 from rows < t) combines
  (a) the readout of the last patch ending at or before t (the long past), with an embedding of the lag
      t - (that patch's end), 0 .. patch_len - 1, so that every row can be an origin, not only the grid's;
  (b) the local window, rows t - lookback .. t - 1, normalised on its own (mean and std, as RevIN):
      a linear map to the horizon (as DLinear / PatchTST's head) de-normalised, plus a linear embedding.
The memory path is an MLP head on [readout + lag, local embedding] whose output is added in the scaled units
of the series: the memory reads the series unnormalised, so a level it saw long ago keeps its meaning. The
head's last layer starts at zero: an untrained model is the local linear forecast.

`memory="mlp"` is the ablation: the same model with each memory block replaced by a position-wise MLP of
the same width (no state), so a readout knows its own patch only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from titans_ts.data.protocol import HORIZON, LOOKBACK
from titans_ts.errors import ConfigError, positive_problems, refuse
from titans_ts.forecasting.defaults import ESTIMATOR
from titans_ts.memory import MemoryState, make_block

MEMORIES = ("lmm", "mlp")
LOCALS = ("rlinear", "dlinear", "variate")
# TitansForecaster's local_model: LOCALS, and "attention", the window model over variate tokens mixed by attention
# (local="variate", local_variant="attention": the attention baseline's network, the memory adding the long past)
LOCAL_MODELS = (*LOCALS, "attention")
WINDOW_MODELS = {"variate": "lmm", "attention": "attention"}  # local_model -> the window model's variant


@dataclass(frozen=True)
class LongMemoryConfig:
    lookback: int = LOOKBACK
    horizon: int = HORIZON
    patch_len: int = 16
    dim: int = 64
    layers: int = 1
    heads: int = 4
    memory: str = "lmm"  # "lmm": the neural memory; "mlp": the ablation, a position-wise MLP (no state)
    memory_depth: int = 2
    chunk_size: int = ESTIMATOR["chunk_size"]  # patch tokens per chunk of the memory's parallel inner loop
    segment_patches: int = 32  # patches per call (a training segment); a multiple of chunk_size
    max_lr: float = 0.05  # the memory's inner learning rate bound (theta)
    forget_bias: float | None = None  # initial logit of the forget gate alpha (None: NeuralMemory's, -6)
    dropout: float = 0.1
    # Keeping a long-carried state where training saw it, applied between segments (`carry`):
    reset_mix: float = 0.0  # mix a fraction of the initial memory M_0 back into the state
    max_state_norm: float | None = None  # bound on ||W - M_0|| of each memory matrix, per sequence and head
    compile: bool | str = "auto"
    # A patch token also holds the local forecast's error on that patch (made at the patch's start, known
    # once the patch is read): the memory then learns, as it reads, where the local forecast goes wrong.
    error_tokens: bool = False
    # The local window's forecast: "rlinear" (RevIN + linear, per channel), "dlinear" (per channel), or
    # "variate": today's window model (forecasting/model.py, variate tokens, `local_variant` mixing them,
    # `local_layers` blocks; it needs `channels`), so that the memory adds the long past to it.
    local: str = "rlinear"
    local_variant: str = "lmm"
    local_layers: int = 2
    channels: int = 0
    # local="variate" only: the window model is trained first, alone, as window mode trains it (random batches
    # of the training windows), then frozen; the memory path then learns what it gets wrong (history_mode.py).
    local_pretrain: bool = False

    def __post_init__(self):
        sizes = ("lookback", "horizon", "patch_len", "dim", "layers", "heads", "memory_depth", "chunk_size")
        refuse(positive_problems({name: getattr(self, name) for name in (*sizes, "segment_patches")}))
        if self.memory not in MEMORIES:
            raise ConfigError(f"memory={self.memory!r} is not one of {MEMORIES}.")
        if self.dim % self.heads:
            raise ConfigError(f"dim={self.dim} must be divisible by heads={self.heads}.")
        if self.segment_patches % self.chunk_size:
            raise ConfigError(
                f"segment_patches={self.segment_patches} must be a multiple of chunk_size={self.chunk_size}: "
                "a state carried between segments then equals one pass over them."
            )
        if self.local not in LOCALS:
            raise ConfigError(f"local={self.local!r} is not one of {LOCALS}.")
        if self.local == "variate" and self.channels < 1:
            raise ConfigError("local='variate' mixes the channels: give channels=<number of columns>.")
        if self.local_pretrain and self.local != "variate":
            raise ConfigError(
                f"local_pretrain trains the window model first: it needs local='variate', not {self.local!r}."
            )
        if self.error_tokens and self.horizon < self.patch_len:
            raise ConfigError(
                f"error_tokens compare a patch with the local forecast of it: horizon={self.horizon} must be "
                f">= patch_len={self.patch_len}."
            )
        if not 0.0 <= self.reset_mix < 1.0:
            raise ConfigError(f"reset_mix must be in [0, 1); got {self.reset_mix}.")
        if self.max_state_norm is not None and self.max_state_norm <= 0:
            raise ConfigError(f"max_state_norm must be positive or None; got {self.max_state_norm}.")

    @property
    def segment_rows(self) -> int:
        return self.segment_patches * self.patch_len

    def to_dict(self) -> dict:
        return asdict(self)


def rows_at(series: torch.Tensor, origins: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
    """series[(origins + steps)] for (T, C) series: (*origins.shape, len(steps), C). Rows outside the series
    repeat its first or last row (callers mask the forecasts that would read them)."""
    index = (origins[..., None] + steps).clamp(0, series.shape[0] - 1)
    return series[index]


class PatchMLP(nn.Module):
    """The ablation's mixer: position-wise, the width of the memory block, no state."""

    def __init__(self, dim: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, dim), nn.GELU(), nn.Linear(dim, dim))

    def forward(self, x, state=None):
        return self.net(x), None


class MemoryLayer(nn.Module):
    """x + mixer(norm x) over patch tokens; the mixer is an LMM block or, in the ablation, a PatchMLP."""

    def __init__(self, config: LongMemoryConfig):
        super().__init__()
        self.norm = nn.LayerNorm(config.dim)
        if config.memory == "mlp":
            self.mixer = PatchMLP(config.dim)
        else:
            options = {"heads": config.heads, "depth": config.memory_depth, "chunk_size": config.chunk_size}
            self.mixer = make_block("lmm", config.dim, max_lr=config.max_lr, compile=config.compile, **options)
            if config.forget_bias is not None:
                with torch.no_grad():
                    self.mixer.memory.to_gates.bias[config.heads : 2 * config.heads].fill_(config.forget_bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x, state=None):
        mixed, state = self.mixer(self.norm(x), state)
        return x + self.dropout(mixed), state

    def initial_weights(self):
        return None if isinstance(self.mixer, PatchMLP) else self.mixer.memory.initial_weights


class LongMemoryForecaster(nn.Module):
    """Memory over each channel's patch history + local window -> forecasts at any origin (module doc)."""

    def __init__(self, config: LongMemoryConfig):
        super().__init__()
        self.config = config
        dim, lookback, horizon = config.dim, config.lookback, config.horizon
        self.patch_embed = nn.Linear(config.patch_len * (2 if config.error_tokens else 1), dim)
        self.layers = nn.ModuleList(MemoryLayer(config) for _ in range(config.layers))
        self.readout_norm = nn.LayerNorm(dim)
        self.lag_embed = nn.Embedding(config.patch_len, dim)
        nn.init.normal_(self.lag_embed.weight, std=0.02)
        self.local_linear = nn.Linear(lookback, horizon)
        self.local_trend = nn.Linear(lookback, horizon) if config.local == "dlinear" else None
        self.window_model = window_model(config) if config.local == "variate" else None
        if config.local_pretrain:  # trained alone before the rest (history_mode.pretrain_local), then fixed
            self.window_model.requires_grad_(False)
        self.local_embed = nn.Linear(lookback, dim)
        self.head = nn.Sequential(
            nn.Linear(2 * dim, dim), nn.GELU(), nn.Dropout(config.dropout), nn.Linear(dim, horizon)
        )
        nn.init.zeros_(self.head[-1].weight)
        nn.init.zeros_(self.head[-1].bias)

    def train(self, mode: bool = True):
        """As nn.Module's, except that a pretrained window model (local_pretrain) stays in eval mode: fixed,
        without dropout, while the memory path trains around it."""
        super().train(mode)
        if self.config.local_pretrain:
            self.window_model.eval()
        return self

    # -- the memory: patches -> readouts, state carried --------------------------------------------------
    def read(self, rows: torch.Tensor, state=None, before: torch.Tensor | None = None, errors=None):
        """rows: (B, n * patch_len, C), whole patches in time order -> readouts (B, C, n, dim) and the state
        after the last patch (a list, one entry per layer; None for the ablation). Continuing with the state
        equals one call on the concatenation when n is a multiple of chunk_size.

        before: (B, lookback, C), the rows just before `rows` (error_tokens only: the local forecast at the
        first patch reads them; None: the first row repeated, as at the start of a series).
        errors: (B * C, n, patch_len), the patches' error tokens when already computed (`grid_patch_errors`)."""
        batch, length, channels = rows.shape
        patch_len = self.config.patch_len
        if length % patch_len:
            raise ValueError(f"read() takes whole patches: {length} rows is not a multiple of {patch_len}.")
        patches = rows.transpose(1, 2).reshape(batch * channels, length // patch_len, patch_len)
        if self.config.error_tokens:
            errors = self._patch_errors(rows, before) if errors is None else errors
            patches = torch.cat([patches, errors], dim=-1)
        tokens = self.patch_embed(patches)
        states = state or [None] * len(self.layers)
        new_states = []
        for layer, layer_state in zip(self.layers, states, strict=True):
            tokens, layer_state = layer(tokens, layer_state)
            new_states.append(layer_state)
        readouts = self.readout_norm(tokens).view(batch, channels, length // patch_len, -1)
        return readouts, (None if self.config.memory == "mlp" else new_states)

    @torch.no_grad()
    def _patch_errors(self, rows, before):
        """(B * C, n, patch_len): each patch minus the local forecast of it made at its first row."""
        batch, length, channels = rows.shape
        lookback, patch_len = self.config.lookback, self.config.patch_len
        if before is None:
            before = rows[:, :1].expand(batch, lookback, channels)
        history = torch.cat([before, rows], dim=1)  # row lookback + i of history is row i of rows
        origins = torch.arange(lookback, lookback + length, patch_len, device=rows.device)
        steps = torch.arange(-lookback, 0, device=rows.device)
        windows = history[:, origins[:, None] + steps]  # (B, n, lookback, C)
        local = self.local_forecast(windows)[:, :, :patch_len]  # (B, n, patch_len, C)
        actual = rows.view(batch, -1, patch_len, channels)
        return (actual - local).permute(0, 3, 1, 2).reshape(batch * channels, -1, patch_len)

    @torch.no_grad()
    def grid_patch_errors(self, series: torch.Tensor, first_row: int, n_patches: int, batch: int = 512):
        """(C, n_patches, patch_len): the error tokens of the patches of the (T, C) series from row `first_row`,
        each from the rows before it, as every read of that patch makes them: computed once for the reads
        that share them (frozen forecasts read each patch in many windows)."""
        patch_len = self.config.patch_len
        parts = [series.new_zeros(series.shape[1], 0, patch_len)]
        for first in range(0, n_patches, batch):
            begin = first_row + first * patch_len
            rows = series[begin : begin + min(batch, n_patches - first) * patch_len]
            before = self.lookback_rows(series, torch.full((1,), begin, device=series.device))
            parts.append(self._patch_errors(rows[None], before))
        return torch.cat(parts, dim=1)

    def carry(self, state):
        """The state to start the next segment from: the guard of the config applied (reset_mix, max_state_norm)."""
        if state is None or (self.config.reset_mix == 0.0 and self.config.max_state_norm is None):
            return state
        return [
            _guarded(layer_state, layer.initial_weights(), self.config)
            for layer, layer_state in zip(self.layers, state, strict=True)
        ]

    def read_stream(self, series: torch.Tensor, start: int, n_patches: int, state=None):
        """Read n_patches of a (T, C) series from row `start`, a segment per call with the state carried
        (`carry` between segments): readouts (1, C, n_patches, dim) and the state after them."""
        readouts = []
        for first in range(0, n_patches, self.config.segment_patches):
            count = min(self.config.segment_patches, n_patches - first)
            begin = start + first * self.config.patch_len
            before = self.lookback_rows(series, torch.full((1,), begin, device=series.device))
            segment, state = self.read(series[begin : begin + count * self.config.patch_len][None], state, before)
            readouts.append(segment)
            state = self.carry(state)
        if not readouts:
            channels = series.shape[1]
            return series.new_zeros(1, channels, 0, self.config.dim), state
        return torch.cat(readouts, dim=2), state

    def lookback_rows(self, series, rows: torch.Tensor) -> torch.Tensor:
        """The `lookback` rows of the (T, C) series before each of `rows`: (*rows.shape, lookback, C)."""
        return rows_at(series, rows, torch.arange(-self.config.lookback, 0, device=rows.device))

    # -- forecasts --------------------------------------------------------------------------------------
    def forecast_at(self, series, readouts, grid_start, origins, check: bool = True):
        """Forecasts (B, M, horizon, C) at `origins` (B, M) (rows of the (T, C) series), each from the readout
        of the last patch ending at or before it, readouts (B, C, n, dim) of patches k = 0..n-1 covering rows
        grid_start + k * patch_len ... (grid_start: (B,)), and the local window of `lookback` rows before it.
        check=False skips the check that every origin has its readout, for origins that have one by
        construction (`forward`): reading the check back would make a training step wait for the GPU."""
        config = self.config
        since_grid = origins - grid_start[:, None]
        patch = since_grid // config.patch_len - 1
        if check and patch.numel() and (patch.min() < 0 or patch.max() >= readouts.shape[2]):
            raise ValueError("an origin has no readout: every origin needs a read patch ending at or before it.")
        batch, channels, _, dim = readouts.shape
        index = patch[:, None, :, None].expand(batch, channels, -1, dim)
        readout = readouts.gather(2, index).permute(0, 2, 1, 3)  # (B, M, C, dim)
        windows = self.lookback_rows(series, origins)  # (B, M, lookback, C)
        scaled, _, _ = normalised(windows.transpose(-1, -2).flatten(0, 2))  # (B * M * C, lookback)
        lag = (since_grid % config.patch_len)[..., None].expand(-1, -1, channels)
        context = torch.cat([readout.flatten(0, 2) + self.lag_embed(lag.flatten()), self.local_embed(scaled)], -1)
        memory_part = self.head(context).view(*origins.shape, channels, config.horizon).transpose(-1, -2)
        return self.local_forecast(windows) + memory_part

    def local_forecast(self, windows):
        """(..., lookback, C) -> (..., horizon, C): the local window's forecast (`LongMemoryConfig.local`):
        "rlinear" (per channel, on the window normalised by its own mean and std), "dlinear" (per channel,
        moving-average trend and remainder, unnormalised) or "variate" (the window model, channels mixed)."""
        if self.window_model is not None:
            lookback, channels = windows.shape[-2:]
            return self.window_model(windows.reshape(-1, lookback, channels)).view(*windows.shape[:-2], -1, channels)
        window = windows.transpose(-1, -2)
        if self.config.local == "rlinear":
            scaled, mean, std = normalised(window)
            forecast = self.local_linear(scaled) * std + mean
        else:
            trend = moving_average(window, 25)
            forecast = self.local_linear(window - trend) + self.local_trend(trend)
        return forecast.transpose(-1, -2)

    def forward(self, series, segment_start, n_patches: int, state=None):
        """One segment per sequence: read n_patches from rows segment_start (B,) of the (T, C) series and
        forecast at every origin they serve, segment_start + patch_len .. segment_start + (n+1) * patch_len - 1
        (dense: patch_len origins per patch). Returns forecasts (B, n * patch_len, horizon, C), the
        origins (B, n * patch_len) and the state after the segment (not yet `carry`-guarded)."""
        span = n_patches * self.config.patch_len
        steps = torch.arange(span, device=segment_start.device)
        before = self.lookback_rows(series, segment_start)
        readouts, state = self.read(rows_at(series, segment_start, steps), state, before)
        origins = segment_start[:, None] + self.config.patch_len + steps
        return self.forecast_at(series, readouts, segment_start, origins, check=False), origins, state


def window_model(config: LongMemoryConfig) -> nn.Module:
    """The local part of local="variate": today's window forecaster over variate tokens."""
    from titans_ts.forecasting.model import ForecastConfig, build_model

    shape = {name: getattr(config, name) for name in ("lookback", "horizon", "channels", "dim", "heads", "dropout")}
    memory = {"memory_depth": config.memory_depth, "chunk_size": config.chunk_size}
    window = ForecastConfig(
        variant=config.local_variant, tokens="variate", layers=config.local_layers, **shape, **memory
    )
    return build_model(window)


def normalised(window):
    """(window - mean) / std over the last axis, with the (detached) mean and std."""
    mean = window.mean(dim=-1, keepdim=True).detach()
    std = torch.sqrt(window.var(dim=-1, keepdim=True, unbiased=False) + 1e-5).detach()
    return (window - mean) / std, mean, std


def moving_average(window, kernel: int):
    """DLinear's trend: a centred moving average over the last axis, the ends padded with the end values."""
    half = (kernel - 1) // 2
    shape = window.shape
    flat = window.reshape(-1, 1, shape[-1])
    padded = torch.cat([flat[..., :1].expand(-1, -1, half), flat, flat[..., -1:].expand(-1, -1, kernel - 1 - half)], -1)
    return nn.functional.avg_pool1d(padded, kernel, stride=1).reshape(shape)


def _guarded(state: MemoryState, initial: nn.ParameterList, config: LongMemoryConfig) -> MemoryState:
    """Pull a carried memory state back towards the trained initial memory M_0: mix a fraction reset_mix of
    M_0 back in (and decay the momentum alike), then bound each matrix's distance from M_0 per sequence and
    head to max_state_norm."""
    weights, momentum = [], []
    for w, m, w0 in zip(state.weights, state.momentum, initial, strict=True):
        deviation = (1.0 - config.reset_mix) * (w - w0.to(w.dtype))
        if config.max_state_norm is not None:
            norm = deviation.flatten(-2).norm(dim=-1)[..., None, None]
            deviation = deviation * (config.max_state_norm / norm.clamp_min(config.max_state_norm))
        weights.append(w0.to(w.dtype) + deviation)
        momentum.append((1.0 - config.reset_mix) * m)
    return MemoryState(tuple(weights), tuple(momentum), state.conv_cache, state.tokens_seen)


def readout_patches(config: LongMemoryConfig, grid_start: int, origin: int) -> int:
    """How many whole patches of the grid end at or before `origin`."""
    return max(0, (origin - grid_start) // config.patch_len)


def memory_modules(model: LongMemoryForecaster) -> list[nn.Module]:
    """The stateful mixers of a model (empty for the ablation)."""
    return [layer.mixer for layer in model.layers if not isinstance(layer.mixer, PatchMLP)]
