"""Fused Triton chunk kernels for the memory recurrence (not built yet: see the kernels issue)."""

from __future__ import annotations


def is_available() -> bool:
    return False


def neural_memory_triton(*args, **kwargs):
    raise NotImplementedError(
        "backend='triton' is not implemented in this version; use backend='chunked' (the default on CPU)."
    )
