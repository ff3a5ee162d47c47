"""`backend="reference"`: the token-by-token oracle every faster backend is tested against."""

from titans_ts.memory.ops.reference.token_loop import neural_memory_reference

__all__ = ["neural_memory_reference"]
