"""The local stem: what the memory reads instead of single nucleotides.

ids (B, L) -> per-base features (B, L, dim) -> tokens (B, ceil(L / stride), dim) with a token mask.

- embedding of each nucleotide, zero at padding (so a padded batch sees the same inputs as one sequence);
- a causal convolution over the last `kernel` bases and GELU: a learned k-mer detector at every base
  (causal, so the same features serve next-base pretraining: base i's features see bases <= i only);
- with kmer=k, plus an embedding of the k-mer ending at each base (a lookup table over the 4^k k-mers of
  A/C/G/T, one shared row for any k-mer with N or reaching before the start): the exact k-mer identity
  that k-mer count models see, computed here from the single-nucleotide ids;
- mean (or max, pool="max") over non-overlapping windows of `stride` bases, counting only real bases:
  token t summarises bases [t * stride, (t + 1) * stride), and it is masked out when that window is all
  padding.

kernel=0 skips the convolution (the embedding alone); kmer=0 the k-mer table; stride=1 keeps one token per base.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from genomics.tokenizer import NUCLEOTIDES, PAD_ID, VOCAB_SIZE

_BASE_CODE = torch.full((VOCAB_SIZE,), 4, dtype=torch.long)  # A, C, G, T -> 0..3; anything else -> 4
for _code, _base in enumerate("ACGT"):
    _BASE_CODE[NUCLEOTIDES[_base]] = _code


def kmer_ids(ids: torch.Tensor, k: int) -> torch.Tensor:
    """(B, L) nucleotide ids -> (B, L) index of the k-mer ending at each base, in [0, 4^k]; 4^k when the
    k-mer holds a non-ACGT base or starts before the sequence."""
    codes = _BASE_CODE.to(ids.device)[ids]
    index = torch.zeros_like(codes)
    valid = torch.ones_like(codes, dtype=torch.bool)
    for back in range(k):  # base t - back contributes digit `back`
        shifted = F.pad(codes, (back, 0), value=4)[:, : codes.shape[1]]
        valid &= shifted < 4
        index += shifted.clamp_max(3) * 4**back
    return torch.where(valid, index, torch.full_like(index, 4**k))


class ConvStem(nn.Module):
    def __init__(self, dim: int, kernel: int = 9, stride: int = 4, kmer: int = 0, pool: str = "mean"):
        super().__init__()
        if kernel < 0 or stride < 1 or not 0 <= kmer <= 8 or pool not in ("mean", "max"):
            raise ValueError(
                f"stem kernel must be >= 0, stride >= 1, kmer in 0..8 and pool mean or max; "
                f"got {kernel}, {stride}, {kmer}, {pool!r}."
            )
        self.kernel, self.stride, self.kmer, self.pool_mode = kernel, stride, kmer, pool
        self.embed = nn.Embedding(VOCAB_SIZE, dim)
        nn.init.normal_(self.embed.weight, std=0.02)
        self.conv = nn.Conv1d(dim, dim, kernel) if kernel else None
        self.kmers = nn.Embedding(4**kmer + 1, dim) if kmer else None
        if self.kmers is not None:
            nn.init.normal_(self.kmers.weight, std=0.02)

    def features(self, ids: torch.Tensor) -> torch.Tensor:
        """(B, L) ids -> (B, L, dim); zero at padding; base i depends on bases <= i only."""
        real = (ids != PAD_ID).unsqueeze(-1)
        x = self.embed(ids) * real
        if self.conv is not None:
            x = F.pad(x.transpose(1, 2), (self.kernel - 1, 0))  # left padding only: causal
            x = F.gelu(self.conv(x)).transpose(1, 2) * real
        if self.kmers is not None:
            x = x + self.kmers(kmer_ids(ids, self.kmer)) * real
        return x

    def pool(self, features: torch.Tensor, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean (or max) of the real bases of each window of `stride` -> (tokens (B, T, dim), mask (B, T))."""
        real = (ids != PAD_ID).to(features.dtype)
        if self.stride == 1:
            return features, real > 0
        tail = -ids.shape[1] % self.stride
        batch, dim = features.shape[0], features.shape[-1]
        counts = F.pad(real, (0, tail)).view(batch, -1, self.stride).sum(2)
        mask = counts > 0
        if self.pool_mode == "max":
            padded = features.masked_fill(real.unsqueeze(-1) == 0, float("-inf"))
            windows = F.pad(padded, (0, 0, 0, tail), value=float("-inf")).view(batch, -1, self.stride, dim)
            return windows.amax(2).masked_fill(~mask.unsqueeze(-1), 0.0), mask
        sums = F.pad(features, (0, 0, 0, tail)).view(batch, -1, self.stride, dim).sum(2)
        return sums / counts.clamp_min(1).unsqueeze(-1), mask

    def forward(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.pool(self.features(ids), ids)
