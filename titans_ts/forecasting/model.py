"""The forecasting backbone: RevIN -> tokens -> L x SiMBA block -> head -> RevIN^-1, and DLinear.

SiMBA block: x + SeqMix(norm x); x + EinFFT(norm x). SeqMix is a Titans block (LMM, MAC, MAG, MAL) or,
as the attention baseline, causal softmax attention in the same code path.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

from titans_ts.errors import ConfigError, positive_problems, refuse
from titans_ts.forecasting.defaults import ESTIMATOR
from titans_ts.forecasting.layers import EinFFT, PatchTokenizer, RevIN, VariateTokenizer
from titans_ts.memory import PersistentAttention, make_block

VARIANTS = ("lmm", "mac", "mag", "mal", "attention", "dlinear", "naive", "seasonal_naive")
UNTRAINED = ("naive", "seasonal_naive")  # the forecasts everyone runs first: nothing to fit
MEMORY_VARIANTS = ("lmm", "mac", "mag", "mal")  # the Titans blocks: a neural memory of memory_depth layers
TOKENIZED = (*MEMORY_VARIANTS, "attention")  # the SiMBA backbone, which reads tokens (variates or patches)
TOKENS = ("patch", "variate")


def reads_patches(variant: str, tokens: str) -> bool:
    """Whether a window model cuts its lookback into patches: patch tokens of the SiMBA backbone."""
    return tokens == "patch" and variant in TOKENIZED


def width_problems(dim, heads, blocks: int = 1) -> list[str]:
    """dim split evenly into the attention heads and, for a window model, its EinFFT blocks (nothing to say
    when dim or heads is not a positive integer: that is said where sizes are checked)."""
    if positive_problems({"dim": dim, "heads": heads}) or (dim % heads == 0 and dim % blocks == 0):
        return []
    step = math.lcm(heads, blocks)
    also = f" and by the {blocks} EinFFT blocks" if blocks > 1 else ""
    return [f"dim={dim} with heads={heads} (dim must be divisible by heads{also}: e.g. dim={-(-dim // step) * step})"]


def used_sizes(variant: str, tokens: str) -> tuple[str, ...]:
    """The sizes a window model uses beyond its backbone's: memory_depth for a Titans block, patch_len and
    stride for patch tokens (the others are not checked, so that a model that ignores them takes any value)."""
    memory = ("memory_depth",) if variant in MEMORY_VARIANTS else ()
    return memory + (("patch_len", "stride") if reads_patches(variant, tokens) else ())


@dataclass(frozen=True)
class ForecastConfig:
    """The network's shape; the fields TitansForecaster also has take its defaults (defaults.ESTIMATOR)."""

    lookback: int = ESTIMATOR["lookback"]
    horizon: int = ESTIMATOR["horizon"]
    channels: int = 7
    variant: str = ESTIMATOR["variant"]  # a Titans block, or a baseline: "attention", "dlinear", "naive", ...
    tokens: str = ESTIMATOR["tokens"]  # one token per variate, or channel-independent time patches
    dim: int = ESTIMATOR["dim"]
    layers: int = ESTIMATOR["layers"]
    heads: int = ESTIMATOR["heads"]
    patch_len: int = ESTIMATOR["patch_len"]
    stride: int = ESTIMATOR["stride"]
    dropout: float = ESTIMATOR["dropout"]
    memory_depth: int = ESTIMATOR["memory_depth"]
    chunk_size: int = ESTIMATOR["chunk_size"]
    einfft_blocks: int = 4
    season: int = 0  # steps per season, for variant="seasonal_naive" (0: not used)
    targets: tuple[int, ...] = ()  # positions of the forecast channels among the inputs (empty: all)
    # Variate tokens are mixed causally, each seeing the tokens before it: with targets_last the covariates' tokens
    # come first (in their order), then the targets', so that every covariate informs every target whatever the
    # columns' order. A model saved before it existed loads with False (as it was trained: a target read only the
    # columns before it).
    targets_last: bool = False
    # The smallest window standard deviation RevIN and the quantile head divide by (0: about 0.003), for inputs
    # already on a common scale (TitansPTF's, normalised by pytorch-forecasting) where flat windows are common.
    min_scale: float = 0.0

    def __post_init__(self):
        object.__setattr__(self, "targets", tuple(int(t) for t in self.targets))  # a JSON list loads back
        if self.targets and (
            len(set(self.targets)) != len(self.targets) or not all(0 <= t < self.channels for t in self.targets)
        ):
            raise ConfigError(f"targets={self.targets} must be distinct positions among channels={self.channels}.")
        if self.variant not in VARIANTS:
            raise ConfigError(f"variant={self.variant!r} is not one of {VARIANTS}.")
        if self.tokens not in TOKENS:
            raise ConfigError(f"tokens={self.tokens!r} is not one of {TOKENS}.")
        sizes = ("lookback", "horizon", "channels", "dim", "layers", "heads", "chunk_size")
        sizes += used_sizes(self.variant, self.tokens)
        refuse(positive_problems({name: getattr(self, name) for name in sizes}))
        if reads_patches(self.variant, self.tokens) and self.patch_len > self.lookback:
            raise ConfigError(f"patch_len={self.patch_len} is longer than lookback={self.lookback} (tokens='patch').")
        refuse(width_problems(self.dim, self.heads, self.einfft_blocks))
        if not 0 <= self.dropout < 1:
            raise ConfigError(f"dropout={self.dropout} must be in [0, 1).")
        if not 0 <= self.min_scale < float("inf"):
            raise ConfigError(f"min_scale={self.min_scale} must be a finite number >= 0.")

        if self.variant == "seasonal_naive" and not 1 <= self.season <= self.lookback:
            raise ConfigError(
                f"seasonal_naive repeats the last season of the lookback window, so it needs "
                f"1 <= season <= lookback; got season={self.season}, lookback={self.lookback}. "
                "Pass season=... (CLI --season), or a lookback of at least one season."
            )

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def of(cls, estimator, channels: int, season: int = 0, targets=None) -> ForecastConfig:
        """The config of a TitansForecaster's network: its parameters of the same name, and the data's shape."""
        shared = {f.name: getattr(estimator, f.name) for f in fields(cls) if f.name in ESTIMATOR and f.name != "season"}
        return cls(channels=channels, season=season, targets=tuple(targets or ()), targets_last=True, **shared)

    def token_order(self) -> list[int] | None:
        """The channels in the order their variate tokens are mixed (None: as given): covariates, then targets."""
        if not (self.targets_last and self.targets) or self.tokens != "variate" or self.variant not in TOKENIZED:
            return None
        return [c for c in range(self.channels) if c not in self.targets] + list(self.targets)


def warn_if_covariates_unread(config: ForecastConfig, columns: list) -> None:
    """An UnreadInputsWarning when the columns beside the targets cannot inform their forecast: a trained model
    that reads each column on its own (patch tokens, DLinear). A naive floor reads none, as its name says."""
    if not config.targets or config.variant in UNTRAINED or config.token_order() is not None:
        return
    import warnings

    from titans_ts.errors import UnreadInputsWarning

    covariates = [str(c) for i, c in enumerate(columns) if i not in config.targets]
    how = "DLinear" if config.variant == "dlinear" else "tokens='patch'"
    warnings.warn(
        f"{how} reads each column on its own: the covariates {covariates} do not inform the targets' forecast. "
        "Variate tokens (tokens='variate', the default, with a Titans block or attention) read them.",
        UnreadInputsWarning,
        stacklevel=4,
    )


def forecast_targets(forecast: torch.Tensor, config: ForecastConfig) -> torch.Tensor:
    """The target channels of a (B, horizon, channels) forecast: covariates are inputs, never outputs."""
    return forecast[..., list(config.targets)] if config.targets else forecast


def build_model(config: ForecastConfig) -> nn.Module:
    if config.variant in UNTRAINED:
        return RepeatLast(config)
    return DLinear(config) if config.variant == "dlinear" else SimbaForecaster(config)


class _CausalAttentionMixer(nn.Module):
    """The attention baseline: causal softmax attention with the blocks' (y, state) interface."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.attention = PersistentAttention(dim, heads)

    def forward(self, x, state=None):
        return self.attention(x), None


class SimbaBlock(nn.Module):
    def __init__(self, config: ForecastConfig, n_tokens: int):
        super().__init__()
        dim = config.dim
        self.mix_norm = nn.LayerNorm(dim)
        self.channel_norm = nn.LayerNorm(dim)
        if config.variant == "attention":
            self.mixer = _CausalAttentionMixer(dim, config.heads)
        else:
            options = {"heads": config.heads, "depth": config.memory_depth, "chunk_size": config.chunk_size}
            if config.variant == "mac":
                options |= {"segment_len": n_tokens, "persistent_tokens": 4}
            elif config.variant in ("mag", "mal"):
                options |= {"window": n_tokens, "persistent_tokens": 4}
            self.mixer = make_block(config.variant, dim, **options)
        self.channel_mixer = EinFFT(dim, blocks=config.einfft_blocks)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x, state=None):
        """(B, tokens, dim) -> the same, and the mixer's memory state after the last token (None: none)."""
        mixed, state = self.mixer(self.mix_norm(x), state)
        x = x + self.dropout(mixed)
        return x + self.dropout(self.channel_mixer(self.channel_norm(x))), state


class SimbaForecaster(nn.Module):
    """(B, lookback, C) scaled series -> (B, horizon, C)."""

    def __init__(self, config: ForecastConfig):
        super().__init__()
        self.config = config
        self.revin = RevIN(config.channels, min_scale=config.min_scale)
        if config.tokens == "patch":
            self.tokenizer = PatchTokenizer(config.lookback, config.dim, config.patch_len, config.stride)
            n_tokens = self.tokenizer.n_patches
            self.head = nn.Linear(n_tokens * config.dim, config.horizon)
        else:
            self.tokenizer = VariateTokenizer(config.lookback, config.dim)
            n_tokens = config.channels
            self.head = nn.Linear(config.dim, config.horizon)
        self.blocks = nn.ModuleList(SimbaBlock(config, n_tokens) for _ in range(config.layers))
        self.token_order = config.token_order()  # the variate tokens' order, and where each column's token is
        order = self.token_order or []
        self.column_order = [order.index(channel) for channel in range(len(order))] or None
        self.norm = nn.LayerNorm(config.dim)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, states=None, return_states: bool = False):
        """states: one memory state per block to start from (None: the trained initial memory); with
        return_states, also the states after this window's tokens (what streaming carries forward)."""
        batch, _, channels = x.shape
        x, stats = self.revin.normalize(x)
        tokens = self.dropout(self.tokenizer(x))
        if self.token_order is not None:  # covariates' tokens before the targets' (the mixing is causal)
            tokens = tokens[:, self.token_order]
        states = states or [None] * len(self.blocks)
        new_states = []
        for block, state in zip(self.blocks, states, strict=True):
            tokens, state = block(tokens, state)
            new_states.append(state)
        tokens = self.norm(tokens)
        if self.config.tokens == "patch":
            out = self.head(tokens.flatten(1)).view(batch, channels, -1)  # (B*C, N*dim) -> (B, C, H)
        else:
            out = self.head(tokens)  # (B, C, H)
            if self.token_order is not None:  # back to the columns' order
                out = out[:, self.column_order]
        forecast = forecast_targets(self.revin.denormalize(out.transpose(1, 2), stats), self.config)
        return (forecast, new_states) if return_states else forecast


class DLinear(nn.Module):
    """DLinear (Zeng et al. 2023): moving-average trend + remainder, a linear map each, shared by channels."""

    def __init__(self, config: ForecastConfig, kernel: int = 25):
        super().__init__()
        self.config = config
        self.kernel = kernel
        self.seasonal = nn.Linear(config.lookback, config.horizon)
        self.trend = nn.Linear(config.lookback, config.horizon)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        series = x.transpose(1, 2)  # (B, C, L)
        half = (self.kernel - 1) // 2
        padded = torch.cat(
            [
                series[..., :1].expand(-1, -1, half),
                series,
                series[..., -1:].expand(-1, -1, self.kernel - 1 - half),
            ],
            dim=-1,
        )
        trend = F.avg_pool1d(padded, self.kernel, stride=1)
        out = self.seasonal(series - trend) + self.trend(trend)
        return forecast_targets(out.transpose(1, 2), self.config)


class RepeatLast(nn.Module):
    """Naive forecasts: repeat the last value (variant "naive") or the last season ("seasonal_naive").

    No parameters: forecast t of the horizon is x[L - p + (t mod p)], with p = 1 or the season.
    """

    def __init__(self, config: ForecastConfig):
        super().__init__()
        self.config = config
        self.period = config.season if config.variant == "seasonal_naive" else 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lookback, period = x.shape[1], self.period
        steps = torch.arange(self.config.horizon, device=x.device)
        return forecast_targets(x[:, lookback - period + steps % period], self.config)
