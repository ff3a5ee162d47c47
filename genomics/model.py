"""The Titans DNA language model and the sequence classifier that reuses its backbone.

backbone: stem (embedding, causal k-mer convolution, pooling to one token per `stride` bases)
          -> L x [x + TitansBlock(norm x); x + MLP(norm x)] -> norm
classifier: the backbone, mean pooling over real (non-pad) tokens, a linear head. layers=0 is the ablation
            without memory: stem, pooling and head only.
language model: base j is predicted from the stem's features of base j - 1 (its k-mer context) plus the
                backbone's last token that ends before base j's window (the long-range context); causal.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from genomics.stem import ConvStem
from genomics.tokenizer import NUCLEOTIDES, PAD_ID, VOCAB_SIZE
from titans_ts.errors import ConfigError, is_integer
from titans_ts.memory import make_block

BLOCKS = ("lmm", "mac", "mag", "mal")
POOLINGS = ("mean", "mean_max")
# What a saved config without these keys means: their value in the model before they existed (no stem)
NO_STEM = {"stem_kernel": 0, "stride": 1, "stem_kmer": 0, "stem_pool": "mean", "stem_levels": 1}


@dataclass(frozen=True)
class DNAModelConfig:
    dim: int = 64
    layers: int = 2
    heads: int = 4
    block: str = "lmm"  # or "mac", "mag", "mal"
    stem_kernel: int = 15  # bases the stem's convolution sees (0: no convolution)
    stride: int = 8  # bases per memory token
    stem_kmer: int = 6  # k of the stem's k-mer embedding table (0: none)
    stem_pool: str = "max"  # how a token summarises its `stride` bases: "mean" or "max"
    stem_levels: int = 1  # > 1: a CNN pyramid inside the stem (pool by 2, convolve), see genomics/stem.py
    memory_depth: int = 2
    memory_expansion: float = 2.0
    chunk_size: int = 64
    segment_len: int = 128  # MAC only
    window: int = 64  # MAG and MAL: sliding-window attention span, in tokens
    mlp_ratio: int = 4
    dropout: float = 0.1
    pooling: str = "mean"  # classifier: mean over real tokens, or mean and max side by side ("mean_max")

    def __post_init__(self):
        if self.block not in BLOCKS:
            raise ConfigError(f"block={self.block!r} is not one of {BLOCKS}.")
        least = {"layers": 0, "stem_kernel": 0, "stride": 1}
        values = {name: getattr(self, name) for name in least}
        wrong = [f"{name}={values[name]} ({low} or more)" for name, low in least.items() if values[name] < low]
        if wrong:
            raise ConfigError(f"impossible setting(s): {'; '.join(wrong)}.")
        if not 0 <= self.stem_kmer <= 8:
            raise ConfigError(f"stem_kmer={self.stem_kmer}: use 0 (none) to 8 (a table of 4^k rows).")
        if self.stem_levels < 1 or self.stride % 2 ** (self.stem_levels - 1):
            raise ConfigError(
                f"stem_levels={self.stem_levels}: needs >= 1 and a stride that is a multiple of "
                f"2^(stem_levels - 1); stride is {self.stride}."
            )
        if self.stem_pool not in ("mean", "max"):
            raise ConfigError(f"stem_pool={self.stem_pool!r}: use 'mean' or 'max'.")
        if self.pooling not in POOLINGS:
            raise ConfigError(f"pooling={self.pooling!r} is not one of {POOLINGS}.")
        if not (is_integer(self.heads) and self.heads >= 1):
            raise ConfigError(f"heads={self.heads!r}: at least 1 attention head.")
        if self.dim % self.heads:
            smaller = self.dim - self.dim % self.heads or self.heads
            raise ConfigError(
                f"dim={self.dim} must be a multiple of heads={self.heads} (the memory's heads; titans-dna uses "
                f"{DNAModelConfig.heads}): use e.g. dim={smaller} or dim={smaller + self.heads}."
            )

    def to_dict(self) -> dict:
        return asdict(self)


class _Layer(nn.Module):
    def __init__(self, config: DNAModelConfig):
        super().__init__()
        options = {
            "heads": config.heads,
            "depth": config.memory_depth,
            "expansion": config.memory_expansion,
            "chunk_size": config.chunk_size,
        }
        if config.block == "mac":
            options["segment_len"] = config.segment_len
        elif config.block in ("mag", "mal"):
            options["window"] = config.window
        self.mix_norm = nn.LayerNorm(config.dim)
        self.mixer = make_block(config.block, config.dim, **options)
        self.mlp_norm = nn.LayerNorm(config.dim)
        self.mlp = nn.Sequential(
            nn.Linear(config.dim, config.mlp_ratio * config.dim),
            nn.GELU(),
            nn.Linear(config.mlp_ratio * config.dim, config.dim),
        )
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x):
        x = x + self.dropout(self.mixer(self.mix_norm(x))[0])
        return x + self.dropout(self.mlp(self.mlp_norm(x)))


class DNABackbone(nn.Module):
    """ids (B, L) -> (hidden tokens (B, ceil(L / stride), dim), token mask (B, T)).

    Causal: token t depends on bases < (t + 1) * stride only, so right padding changes nothing before it."""

    def __init__(self, config: DNAModelConfig):
        super().__init__()
        self.config = config
        self.stem = ConvStem(
            config.dim, config.stem_kernel, config.stride, config.stem_kmer, config.stem_pool, config.stem_levels
        )
        self.layers = nn.ModuleList(_Layer(config) for _ in range(config.layers))
        self.norm = nn.LayerNorm(config.dim)

    def encode(self, features: torch.Tensor, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x, mask = self.stem.pool(features, ids)
        for layer in self.layers:
            x = layer(x)
        return self.norm(x), mask

    def forward(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.encode(self.stem.features(ids), ids)


class DNALanguageModel(nn.Module):
    """Next-nucleotide prediction (see the module docstring): logits for bases 1..L-1 of each window."""

    def __init__(self, config: DNAModelConfig):
        super().__init__()
        self.config = config
        self.backbone = DNABackbone(config)
        self.start = nn.Parameter(torch.zeros(config.dim))  # the long-range context of the first window
        self.head = nn.Sequential(  # a small MLP: the next base is a non-linear function of the k-mer context
            nn.LayerNorm(config.dim),
            nn.Linear(config.dim, 2 * config.dim),
            nn.GELU(),
            nn.Linear(2 * config.dim, VOCAB_SIZE),
        )

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """(B, L) -> (B, L - 1, vocab): row j - 1 predicts base j."""
        stride = self.config.stride
        features = self.backbone.stem.features(ids)
        hidden, _ = self.backbone.encode(features, ids)
        # token t covers bases [t * stride, (t + 1) * stride); base j reads the token before its own window
        context = torch.cat([self.start.expand(len(ids), 1, -1).to(hidden.dtype), hidden[:, :-1]], dim=1)
        context = context.repeat_interleave(stride, dim=1)[:, 1 : ids.shape[1]]
        return self.head(features[:, :-1] + context)

    def loss(self, ids: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy (nats per base) of predicting the bases of ids[:, 1:] (`summed_loss`)."""
        total, bases = self.summed_loss(ids)
        return total / bases.clamp_min(1)

    def summed_loss(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(summed cross-entropy in nats, how many targets it sums) of predicting ids[:, 1:]: A, C, G and T only.
        Pads are no target, and neither is N: a genome's gaps are runs of N that a model learns to continue at
        almost no cost, which would pass for skill at predicting bases."""
        logits = self(ids)
        targets = ids[:, 1:].masked_fill(ids[:, 1:] == NUCLEOTIDES["N"], PAD_ID).reshape(-1)
        total = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets, ignore_index=PAD_ID, reduction="sum")
        return total, (targets != PAD_ID).sum()


class DNASequenceClassifier(nn.Module):
    def __init__(self, config: DNAModelConfig, n_classes: int):
        super().__init__()
        self.config = config
        self.backbone = DNABackbone(config)
        self.head = nn.Linear(config.dim * len(config.pooling.split("_")), n_classes)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        hidden, mask = self.backbone(ids)
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        pooled = [(hidden * weights).sum(1) / weights.sum(1).clamp_min(1.0)]
        if self.config.pooling == "mean_max":  # max over real tokens: "is this motif anywhere"
            pooled.append(hidden.masked_fill(~mask.unsqueeze(-1), float("-inf")).amax(1))
        return self.head(torch.cat(pooled, dim=-1))
