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
    """levels > 1: between the base-level convolution and the final pooling, (levels - 1) times: pool by 2,
    then a causal convolution over 5 positions and GELU (a CNN's pyramid); stride must be a multiple of
    2^(levels - 1)."""

    def __init__(self, dim: int, kernel: int = 9, stride: int = 4, kmer: int = 0, pool: str = "mean", levels: int = 1):
        super().__init__()
        if kernel < 0 or stride < 1 or not 0 <= kmer <= 8 or pool not in ("mean", "max") or levels < 1:
            raise ValueError(
                f"stem kernel must be >= 0, stride >= 1, kmer in 0..8, pool mean or max and levels >= 1; "
                f"got {kernel}, {stride}, {kmer}, {pool!r}, {levels}."
            )
        if stride % 2 ** (levels - 1):
            raise ValueError(f"stride={stride} must be a multiple of 2^(levels - 1) = {2 ** (levels - 1)}.")
        self.kernel, self.stride, self.kmer, self.pool_mode = kernel, stride, kmer, pool
        self.embed = nn.Embedding(VOCAB_SIZE, dim)
        nn.init.normal_(self.embed.weight, std=0.02)
        self.conv = nn.Conv1d(dim, dim, kernel) if kernel else None
        self.kmers = nn.Embedding(4**kmer + 1, dim) if kmer else None
        if self.kmers is not None:
            nn.init.normal_(self.kmers.weight, std=0.02)
        self.levels = nn.ModuleList(nn.Conv1d(dim, dim, 5) for _ in range(levels - 1))

    def features(self, ids: torch.Tensor) -> torch.Tensor:
        """(B, L) ids -> (B, L, dim); zero at padding; base i depends on bases <= i only."""
        real = (ids != PAD_ID).unsqueeze(-1)
        x = self.embed(ids) * real
        if self.conv is not None:
            x = F.gelu(_causal_conv(self.conv, x)) * real
        if self.kmers is not None:
            x = x + self.kmers(kmer_ids(ids, self.kmer)) * real
        return x

    def pool(self, features: torch.Tensor, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Base features -> (tokens (B, ceil(L / stride), dim), token mask (B, T)): the levels, then the
        mean (or max) over the real bases of each token's window."""
        x, counts = features, (ids != PAD_ID).to(features.dtype)  # counts: real bases under each position
        for conv in self.levels:
            x, counts = self._pool(x, counts, 2)
            x = F.gelu(_causal_conv(conv, x)) * (counts > 0).unsqueeze(-1)
        x, counts = self._pool(x, counts, self.stride // 2 ** len(self.levels))
        return x, counts > 0

    def _pool(self, x, counts, factor: int):
        if factor == 1:
            return x, counts
        tail = -x.shape[1] % factor
        batch, dim = x.shape[0], x.shape[-1]
        weights = F.pad(counts, (0, tail)).view(batch, -1, factor)
        pooled_counts = weights.sum(2)
        if self.pool_mode == "max":
            empty = (counts == 0).unsqueeze(-1)
            windows = F.pad(x.masked_fill(empty, float("-inf")), (0, 0, 0, tail), value=float("-inf"))
            pooled = windows.view(batch, -1, factor, dim).amax(2)
            return pooled.masked_fill((pooled_counts == 0).unsqueeze(-1), 0.0), pooled_counts
        sums = (F.pad(x, (0, 0, 0, tail)).view(batch, -1, factor, dim) * weights.unsqueeze(-1)).sum(2)
        return sums / pooled_counts.clamp_min(1).unsqueeze(-1), pooled_counts

    def forward(self, ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.pool(self.features(ids), ids)


def _causal_conv(conv: nn.Conv1d, x: torch.Tensor) -> torch.Tensor:
    """(B, L, dim) -> (B, L, dim); position i sees positions <= i only (left padding)."""
    return conv(F.pad(x.transpose(1, 2), (conv.kernel_size[0] - 1, 0))).transpose(1, 2)
