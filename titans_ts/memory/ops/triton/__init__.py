"""`backend="triton"`: the chunk-parallel recurrence with its sequential state pass on Triton kernels.

Runs on CUDA tensors with a GPU, or on CPU tensors under the Triton interpreter (`TRITON_INTERPRET=1`
set before triton is imported; slow, for tests). State and accumulation are fp32 whatever the input
dtype (`common.Precision`: bf16 / fp16 / fp32 inputs and state compute in fp32, and the state comes back
in fp32); float64 anywhere is refused, since the kernels cannot compute in it. Kernels: `state_forward.py`,
`state_backward.py` (pass (b)); opt-in: `output_forward.py`, `output_backward.py` (pass (c)); glue:
`state_pass.py`, `output_pass.py`; docs/kernels.md.
"""

from __future__ import annotations

import os

import torch

from titans_ts.memory.ops.common import CHUNK_SIZE, named_inputs, precision_of
from titans_ts.memory.ops.triton.state_pass import TILE

SUPPORTED_DEPTHS = (1, 2)
FLOAT32_OR_LESS = (torch.float32, torch.bfloat16, torch.float16)
MAX_DIM = 128


def _interpreted() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def is_available() -> bool:
    """True when triton imports and there is a GPU, or the interpreter is on."""
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return torch.cuda.is_available() or _interpreted()


def runs_on(q: torch.Tensor) -> bool:
    """True when the kernels can run on q's device now: CUDA tensors on a GPU, CPU ones under the interpreter."""
    return is_available() and q.is_cuda != _interpreted()


def neural_memory_triton(
    q,
    k,
    v,
    theta,
    alpha,
    eta,
    weights,
    momentum=None,
    *,
    chunk_size=CHUNK_SIZE,
    max_grad_norm=None,
    recompute=False,
    fused_output=False,
):
    """The chunk-parallel recurrence with pass (b), the sequential state pass, on Triton kernels forward
    and backward; the passes parallel over chunks (gates, outputs) run as batched PyTorch (`ops/chunked`).
    fused_output: pass (c) on its kernels too (`output_forward.py`, `output_backward.py`); off until a GPU has
    timed it."""
    from functools import partial

    from titans_ts.memory.ops.chunked import neural_memory_chunked
    from titans_ts.memory.ops.chunked.chunk import Passes
    from titans_ts.memory.ops.triton.state_pass import DOT_OF_DTYPE, state_backward_triton, state_forward_triton

    del recompute  # the state pass saves chunk-start states; the rest is recomputed in batched form
    _check_supported(q, weights, chunk_size)
    _check_precision(q, k, v, theta, alpha, eta, weights, momentum)
    # tl.dot's operands in q, k and v's dtype when they share one (bf16 / fp16 on tensor cores), else fp32
    dot = DOT_OF_DTYPE.get(q.dtype, 0) if q.dtype == k.dtype == v.dtype else 0
    passes = Passes(
        state_forward=partial(state_forward_triton, dot=dot), state_backward=partial(state_backward_triton, dot=dot)
    )
    if fused_output:
        from titans_ts.memory.ops.triton.output_pass import output_backward_triton, output_forward_triton

        passes = passes._replace(
            output_forward=partial(output_forward_triton, dot=dot),
            output_backward=partial(output_backward_triton, dot=dot),
        )
    return neural_memory_chunked(
        q, k, v, theta, alpha, eta, weights, momentum, chunk_size=chunk_size, max_grad_norm=max_grad_norm,
        passes=passes,
    )  # fmt: skip


def unsupported_shape(q, weights, chunk_size) -> str | None:
    """Why the kernels cannot take this call's shapes, or None when they can."""
    if len(weights) not in SUPPORTED_DEPTHS:
        return (
            f"backend='triton' supports memory depth {SUPPORTED_DEPTHS}; got depth {len(weights)}. "
            "Use backend='chunked' for deeper memories."
        )
    if chunk_size < TILE or chunk_size > 128 or chunk_size & (chunk_size - 1):
        return f"backend='triton' needs chunk_size a power of two in 16..128; got {chunk_size}."
    dims = [weights[0].shape[-2], *(w.shape[-1] for w in weights)]
    if max(dims[0], dims[-1]) > MAX_DIM or (len(dims) == 3 and dims[1] > 4 * MAX_DIM):
        return f"backend='triton' supports head dims up to {MAX_DIM} and hidden width up to {4 * MAX_DIM}; got {dims}."
    return None


def _check_precision(q, k, v, theta, alpha, eta, weights, momentum) -> None:
    """The kernels compute in fp32: an input that asks for more (float64, which `common.Precision` would run
    the whole recurrence in) is refused, never silently computed in fp32."""
    if precision_of(q, k, v, theta, alpha, eta, weights, momentum).compute == torch.float32:
        return
    named = named_inputs(q, k, v, theta, alpha, eta, weights, momentum)
    wide = ", ".join(f"{name} is {t.dtype}" for name, t in named.items() if t.dtype not in FLOAT32_OR_LESS)
    raise TypeError(
        f"backend='triton' computes in float32 and has no float64 kernels, but {wide}. Use backend='chunked' "
        "(or 'reference') to compute in float64, or convert the inputs and state to float32 for the kernels."
    )


def _check_supported(q, weights, chunk_size) -> None:
    if not is_available():
        raise RuntimeError(
            "backend='triton' needs the triton package and a CUDA GPU, or the Triton interpreter "
            "(set TRITON_INTERPRET=1 before importing triton; CPU, slow). Use backend='chunked' on CPU."
        )
    if q.is_cuda == _interpreted():
        where = "CUDA" if q.is_cuda else "CPU"
        raise RuntimeError(
            f"backend='triton' got {where} tensors but the interpreter is "
            f"{'on' if _interpreted() else 'off'}: CUDA tensors need a GPU run, CPU tensors "
            "need TRITON_INTERPRET=1."
        )
    reason = unsupported_shape(q, weights, chunk_size)
    if reason is not None:
        raise ValueError(reason)
