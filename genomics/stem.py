"""The local stem: what the memory reads instead of single nucleotides.

ids (B, L) -> per-base features (B, L, dim) -> tokens (B, ceil(L / stride), dim) with a token mask.

- embedding of each nucleotide, zero at padding (so a padded batch sees the same inputs as one sequence);
- a causal convolution over the last `kernel` bases and GELU: a learned k-mer detector at every base
  (causal, so the same features serve next-base pretraining: base i's features see bases <= i only);
- mean over non-overlapping windows of `stride` bases, counting only real bases: token t summarises bases
  [t * stride, (t + 1) * stride), and it is masked out when that window is all padding.

kernel=0 skips the convolution (the embedding alone); stride=1 keeps one token per base.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from genomics.tokenizer import PAD_ID, VOCAB_SIZE


class ConvStem(nn.Module):
    def __init__(self, dim: int, kernel: int = 9, stride: int = 4):
        super().__init__()
        if kernel < 0 or stride < 1:
            raise ValueError(f"stem kernel must be >= 0 and stride >= 1; got kernel={kernel}, stride={stride}.")
        self.kernel, self.stride = kernel, stride
        self.embed = nn.Embedding(VOCAB_SIZE, dim)
        nn.init.normal_(self.embed.weight, std=0.02)
        self.conv = nn.Conv1d(dim, dim, kernel) if kernel else None

    def features(self, ids: torch.Tensor) -> torch.Tensor:
        """(B, L) ids -> (B, L, dim); zero at padding; base i depends on bases <= i only."""
        real = (ids != PAD_ID).unsqueeze(-1)
        x = self.embed(ids) * real
        if self.conv is not None:
            x = F.pad(x.transpose(1, 2), (self.kernel - 1, 0))  # left padding only: causal
            x = F.gelu(self.conv(x)).transpose(1, 2) * real
        return x

    def pool(self, features: torch.Tensor, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean of the real bases of each window of `stride` -> (tokens (B, T, dim), token mask (B, T))."""
        real = (ids != PAD_ID).to(features.dtype)
        if self.stride == 1:
            return features, real > 0
        tail = -ids.shape[1] % self.stride
        batch, dim = features.shape[0], features.shape[-1]
        sums = F.pad(features, (0, 0, 0, tail)).view(batch, -1, self.stride, dim).sum(2)
        counts = F.pad(real, (0, tail)).view(batch, -1, self.stride).sum(2)
        return sums / counts.clamp_min(1).unsqueeze(-1), counts > 0

    def forward(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.pool(self.features(ids), ids)
