"""The Titans DNA language model and the sequence classifier that reuses its backbone.

embedding -> L x [x + TitansBlock(norm x); x + MLP(norm x)] -> norm -> LM head (next nucleotide)
The classifier: the same backbone, mean pooling over real (non-pad) positions, a linear head.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from genomics.tokenizer import PAD_ID, VOCAB_SIZE
from titans_ts.errors import ConfigError
from titans_ts.memory import make_block

BLOCKS = ("lmm", "mac")


@dataclass(frozen=True)
class DNAModelConfig:
    dim: int = 128
    layers: int = 2
    heads: int = 4
    block: str = "lmm"  # or "mac"
    memory_depth: int = 2
    memory_expansion: float = 2.0
    chunk_size: int = 64
    segment_len: int = 128  # MAC only
    mlp_ratio: int = 4
    dropout: float = 0.1

    def __post_init__(self):
        if self.block not in BLOCKS:
            raise ConfigError(f"block={self.block!r} is not one of {BLOCKS}.")
        if self.dim % self.heads:
            raise ConfigError(f"dim={self.dim} must be divisible by heads={self.heads}.")

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
    """ids (B, L) -> hidden states (B, L, dim); causal: right padding changes nothing before it."""

    def __init__(self, config: DNAModelConfig):
        super().__init__()
        self.config = config
        self.embed = nn.Embedding(VOCAB_SIZE, config.dim)
        nn.init.normal_(self.embed.weight, std=0.02)  # small: the LM head is tied to this matrix
        self.layers = nn.ModuleList(_Layer(config) for _ in range(config.layers))
        self.norm = nn.LayerNorm(config.dim)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self.embed(ids)
        for layer in self.layers:
            x = layer(x)
        return self.norm(x)


class DNALanguageModel(nn.Module):
    """Next-nucleotide prediction; the output layer shares the embedding matrix."""

    def __init__(self, config: DNAModelConfig):
        super().__init__()
        self.config = config
        self.backbone = DNABackbone(config)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.backbone(ids) @ self.backbone.embed.weight.T  # (B, L, vocab)

    def loss(self, ids: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy (nats) of predicting ids[:, 1:] from ids[:, :-1], pads ignored."""
        logits = self(ids[:, :-1])
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), ids[:, 1:].reshape(-1), ignore_index=PAD_ID)


class DNASequenceClassifier(nn.Module):
    def __init__(self, config: DNAModelConfig, n_classes: int):
        super().__init__()
        self.config = config
        self.backbone = DNABackbone(config)
        self.head = nn.Linear(config.dim, n_classes)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        hidden = self.backbone(ids)
        mask = (ids != PAD_ID).unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp_min(1.0)
        return self.head(pooled)
