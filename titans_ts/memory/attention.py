"""Causal attention with a persistent-token prefix: sliding-window (MAG, MAL) or per segment (MAC).

Keys are [persistent | memory tokens | x]; queries come from x. Persistent tokens are seen by every
query; memory token j and input token j are seen by query i when j <= i (and, with a window, when
i - j < window). Uses `scaled_dot_product_attention` with a boolean mask.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from titans_ts.memory.ops.common import is_whole


def causal_mask(length: int, window: int | None, device=None) -> torch.Tensor:
    """(length, length) boolean: query i may see key j when j <= i and i - j < window."""
    index = torch.arange(length, device=device)
    distance = index[:, None] - index[None, :]
    allowed = distance >= 0
    if window is not None:
        allowed &= distance < window
    return allowed


class PersistentAttention(nn.Module):
    def __init__(self, dim: int, heads: int = 4, persistent_tokens: int = 0, window: int | None = None):
        super().__init__()
        sizes = {"dim": dim, "heads": heads} | ({} if window is None else {"window": window})
        for name, value in sizes.items():  # window=2.5 was kept, heads=2.0 failed inside torch
            if not (is_whole(value) and value >= 1):
                also = " or None" if name == "window" else ""
                raise ValueError(f"{name} must be an integer >= 1{also}; got {value!r}.")
        if not (is_whole(persistent_tokens) and persistent_tokens >= 0):
            raise ValueError(f"persistent_tokens must be an integer >= 0; got {persistent_tokens!r}.")
        if dim % heads:  # the attention splits dim itself: a memory's head_dim does not change that
            raise ValueError(
                f"dim={dim} must be divisible by heads={heads}: the blocks' attention splits dim across the heads "
                "(a memory's head_dim= does not change that)."
            )
        self.heads, self.window = heads, window
        self.to_q = nn.Linear(dim, dim, bias=False)
        self.to_kv = nn.Linear(dim, 2 * dim, bias=False)
        self.to_out = nn.Linear(dim, dim, bias=False)
        self.persistent = nn.Parameter(0.02 * torch.randn(persistent_tokens, dim)) if persistent_tokens else None

    def forward(self, x: torch.Tensor, memory_tokens: torch.Tensor | None = None) -> torch.Tensor:
        """x: (B, T, dim); memory_tokens: (B, T, dim) aligned with x (MAC's retrieved memory), or None."""
        batch, length, _ = x.shape
        sources = [x] if memory_tokens is None else [memory_tokens, x]
        block = causal_mask(length, self.window, x.device)
        mask = torch.cat([block] * len(sources), dim=1)
        if self.persistent is not None:
            sources.insert(0, self.persistent.expand(batch, -1, -1).to(x.dtype))
            mask = torch.cat([mask.new_ones(length, self.persistent.shape[0]), mask], dim=1)
        keys_in = torch.cat(sources, dim=1)
        q = self._split(self.to_q(x))
        k, v = (self._split(t) for t in self.to_kv(keys_in).chunk(2, dim=-1))
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        return self.to_out(out.transpose(1, 2).flatten(2))  # (B, T, dim), an empty batch or sequence too

    def _split(self, t: torch.Tensor) -> torch.Tensor:
        batch, length, dim = t.shape
        return t.view(batch, length, self.heads, dim // self.heads).transpose(1, 2)
