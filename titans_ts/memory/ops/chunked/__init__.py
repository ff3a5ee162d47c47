"""`backend="chunked"`: the chunk-parallel recurrence in PyTorch, as three passes (`gates`, `state`, `output`)
and their hand-written backward (`chunk`)."""

from titans_ts.memory.ops.chunked.chunk import neural_memory_chunked

__all__ = ["neural_memory_chunked"]
