"""The Titans blocks (paper §4): sequence mixers (B, T, dim) -> (B, T, dim), all causal.

- LMM: the memory alone.
- MAC (memory as context, Eq. 21-25): per segment, retrieve h = M*(q) from the memory before the segment,
  attend over [persistent | h | segment], update the memory with the attention output y and gate:
  o = y * M*(y) (the memory read after its update).
- MAG (memory as gate, Eq. 26-28): sliding-window attention and the memory in parallel on the same input,
  combined by a normalised non-linear gate: o = norm(y) * sigmoid(norm(M(x))).
- MAL (memory as layer, Eq. 29-31): the memory, then sliding-window attention on its output.

Every block is `forward(x, state=None) -> (y, state)`; the state is the memory's. Continuing with the
state is exact for LMM and for MAC on segment boundaries; MAG and MAL carry the memory but their
attention sees only the current call.
"""

from __future__ import annotations

import torch
from torch import nn

from titans_ts.memory.attention import PersistentAttention
from titans_ts.memory.module import MemoryConfig, MemoryState, NeuralMemory
from titans_ts.memory.ops.common import is_whole

BLOCKS = ("lmm", "mac", "mag", "mal")


class LMMBlock(nn.Module):
    def __init__(self, dim: int, heads: int = 4, persistent_tokens: int = 0, **memory_options):
        super().__init__()
        self.memory = NeuralMemory(dim, heads=heads, persistent_tokens=persistent_tokens, **memory_options)

    def forward(self, x, state: MemoryState | None = None):
        return self.memory(x, state)


class MACBlock(nn.Module):
    def __init__(self, dim: int, heads: int = 4, persistent_tokens: int = 4, segment_len: int = 64, **memory_options):
        super().__init__()
        if not (is_whole(segment_len) and segment_len >= 1):
            raise ValueError(f"segment_len must be an integer >= 1; got {segment_len!r}.")
        self.segment_len = segment_len
        self.memory = NeuralMemory(dim, heads=heads, **memory_options)
        config: MemoryConfig = self.memory.config
        self.to_query = nn.Linear(dim, config.heads * config.inner_dim, bias=False)
        self.from_memory = nn.Linear(config.heads * config.inner_dim, dim, bias=False)
        self.attention = PersistentAttention(dim, heads, persistent_tokens, window=None)
        self.to_out = nn.Linear(dim, dim, bias=False)

    def forward(self, x, state: MemoryState | None = None):
        self.memory._check_input(x, state)  # before the attention: its errors would not say what is wrong
        if x.shape[1] == 0:
            return self.to_out(x), state
        outputs = []
        for start in range(0, x.shape[1], self.segment_len):
            segment = x[:, start : start + self.segment_len]
            history = self._retrieve(segment, state)  # the memory before this segment: past only
            y = self.attention(segment, memory_tokens=history)
            read, state = self.memory(y, state)  # learn from the segment, read after each update
            outputs.append(y * read)
        return self.to_out(torch.cat(outputs, dim=1)), state

    def _retrieve(self, segment, state):
        batch, length, _ = segment.shape
        config = self.memory.config
        queries = self.to_query(segment).view(batch, length, config.heads, config.inner_dim).transpose(1, 2)
        read = self.memory.retrieve(nn.functional.normalize(queries, dim=-1), state)
        return self.from_memory(read.transpose(1, 2).flatten(2))


class MAGBlock(nn.Module):
    def __init__(self, dim: int, heads: int = 4, persistent_tokens: int = 4, window: int = 64, **memory_options):
        super().__init__()
        self.attention = PersistentAttention(dim, heads, persistent_tokens, window=window)
        self.memory = NeuralMemory(dim, heads=heads, persistent_tokens=persistent_tokens, **memory_options)
        self.attention_norm = nn.RMSNorm(dim)
        self.memory_norm = nn.RMSNorm(dim)
        self.to_out = nn.Linear(dim, dim, bias=False)

    def forward(self, x, state: MemoryState | None = None):
        # the memory first: it checks x and the state (once), before the attention, whose errors on a bad x
        # would not say what is wrong; the two branches are independent, so the order changes nothing else
        read, state = self.memory(x, state)
        y = self.attention(x)
        return self.to_out(self.attention_norm(y) * torch.sigmoid(self.memory_norm(read))), state


class MALBlock(nn.Module):
    def __init__(self, dim: int, heads: int = 4, persistent_tokens: int = 4, window: int = 64, **memory_options):
        super().__init__()
        self.memory = NeuralMemory(dim, heads=heads, persistent_tokens=persistent_tokens, **memory_options)
        self.attention = PersistentAttention(dim, heads, persistent_tokens, window=window)

    def forward(self, x, state: MemoryState | None = None):
        read, state = self.memory(x, state)
        return self.attention(read), state


def make_block(kind: str, dim: int, **options) -> nn.Module:
    """A block by name: "lmm", "mac", "mag" or "mal"."""
    classes = {"lmm": LMMBlock, "mac": MACBlock, "mag": MAGBlock, "mal": MALBlock}
    if kind not in classes:
        raise ValueError(f"unknown block {kind!r}; choose one of {BLOCKS}.")
    return classes[kind](dim, **options)
