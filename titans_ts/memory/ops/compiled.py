"""One torch.compile'd version per function and process, shared by every caller (the `compile=True` option)."""

from __future__ import annotations

import torch

_COMPILED: dict = {}


def maybe_compiled(function, compiled: bool):
    """`function` itself, or (compiled=True) its torch.compile'd version (fixed shapes), made once."""
    if not compiled:
        return function
    if function not in _COMPILED:
        _COMPILED[function] = torch.compile(function, dynamic=False)
    return _COMPILED[function]
