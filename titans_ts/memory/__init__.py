"""THE neural long-term memory of titans-ts, shared by forecasting and genomics."""

from titans_ts.memory.attention import PersistentAttention
from titans_ts.memory.blocks import BLOCKS, LMMBlock, MACBlock, MAGBlock, MALBlock, make_block
from titans_ts.memory.module import MemoryConfig, MemoryState, NeuralMemory, states_from_tensors, states_to_tensors
from titans_ts.memory.ops import neural_memory

__all__ = [
    "BLOCKS",
    "LMMBlock",
    "MACBlock",
    "MAGBlock",
    "MALBlock",
    "MemoryConfig",
    "MemoryState",
    "NeuralMemory",
    "PersistentAttention",
    "make_block",
    "neural_memory",
    "states_from_tensors",
    "states_to_tensors",
]
