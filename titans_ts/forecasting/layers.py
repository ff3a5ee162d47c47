"""Building blocks of the forecasting backbone: RevIN, SiMBA's EinFFT channel mixer, tokenizers."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class RevIN(nn.Module):
    """Reversible instance normalisation (Kim et al. 2022): per series and channel, over time.

    min_scale: the smallest standard deviation a window is divided by (0: sqrt(eps)). A flat window (zero
    demand, a stuck sensor) is otherwise divided by about 0.003, and every forecast from it is its level."""

    def __init__(self, channels: int, eps: float = 1e-5, affine: bool = True, min_scale: float = 0.0):
        super().__init__()
        self.eps, self.min_scale = eps, min_scale
        self.weight = nn.Parameter(torch.ones(channels)) if affine else None
        self.bias = nn.Parameter(torch.zeros(channels)) if affine else None

    def normalize(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """x: (B, L, C) -> normalised x and the statistics to undo it."""
        mean = x.mean(dim=1, keepdim=True).detach()
        std = torch.sqrt(x.var(dim=1, keepdim=True, unbiased=False) + self.eps).clamp_min(self.min_scale).detach()
        x = (x - mean) / std
        if self.weight is not None:
            x = x * self.weight + self.bias
        return x, (mean, std)

    def denormalize(self, y: torch.Tensor, stats: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        mean, std = stats
        if self.weight is not None:
            y = (y - self.bias) / (self.weight + self.eps * self.eps)
        return y * std + mean


class EinFFT(nn.Module):
    """SiMBA's channel mixer: FFT along features, block-diagonal complex MLP, soft-shrink, inverse FFT.

    The features are split into `blocks` groups; each group's spectrum goes through its own two-layer
    complex linear map (expansion `hidden_factor`), with soft-shrinkage as a sparsity prior.
    """

    def __init__(self, dim: int, blocks: int = 4, hidden_factor: int = 1, shrink: float = 0.01):
        super().__init__()
        if dim % blocks:
            raise ValueError(f"EinFFT: dim={dim} must be divisible by blocks={blocks}.")
        self.blocks, self.block_dim, self.shrink = blocks, dim // blocks, shrink
        hidden = self.block_dim * hidden_factor
        scale = 0.02
        self.w1 = nn.Parameter(scale * torch.randn(2, blocks, self.block_dim, hidden))
        self.b1 = nn.Parameter(scale * torch.randn(2, blocks, hidden))
        self.w2 = nn.Parameter(scale * torch.randn(2, blocks, hidden, self.block_dim))
        self.b2 = nn.Parameter(scale * torch.randn(2, blocks, self.block_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shape = x.shape
        spectrum = torch.fft.fft(x.float(), dim=-1, norm="ortho").reshape(*shape[:-1], self.blocks, self.block_dim)
        real, imag = _complex_linear(spectrum.real, spectrum.imag, self.w1, self.b1)
        real, imag = _complex_linear(F.relu(real), F.relu(imag), self.w2, self.b2)
        out = torch.complex(F.softshrink(real, self.shrink), F.softshrink(imag, self.shrink))
        return torch.fft.ifft(out.reshape(shape), dim=-1, norm="ortho").real.to(x.dtype)


def _complex_linear(real, imag, weight, bias):
    """Per-block complex matmul of (..., blocks, d_in) parts; weight (2, blocks, d_in, d_out): real, imag."""

    def mm(z, w):
        return torch.einsum("...bi,bio->...bo", z, w)

    return (
        mm(real, weight[0]) - mm(imag, weight[1]) + bias[0],
        mm(real, weight[1]) + mm(imag, weight[0]) + bias[1],
    )


class PatchTokenizer(nn.Module):
    """Channel-independent time patches: (B, L, C) -> (B*C, n_patches, dim), as in PatchTST."""

    def __init__(self, lookback: int, dim: int, patch_len: int = 16, stride: int = 8):
        super().__init__()
        if patch_len > lookback:
            raise ValueError(f"patch_len={patch_len} is longer than lookback={lookback}.")
        self.patch_len, self.stride = patch_len, stride
        self.n_patches = (lookback - patch_len) // stride + 2  # + 1 for the end-padded last patch
        self.embed = nn.Linear(patch_len, dim)
        self.position = nn.Parameter(0.02 * torch.randn(self.n_patches, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        series = x.transpose(1, 2)  # (B, C, L)
        series = F.pad(series, (0, self.stride), mode="replicate")
        patches = series.unfold(-1, self.patch_len, self.stride)  # (B, C, N, P)
        batch, channels = patches.shape[:2]
        tokens = self.embed(patches) + self.position
        return tokens.reshape(batch * channels, self.n_patches, -1)


class VariateTokenizer(nn.Module):
    """One token per channel (iTransformer): (B, L, C) -> (B, C, dim)."""

    def __init__(self, lookback: int, dim: int):
        super().__init__()
        self.embed = nn.Linear(lookback, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.embed(x.transpose(1, 2))
