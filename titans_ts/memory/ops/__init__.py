"""The memory recurrence as a pure function with interchangeable backends (DESIGN.md §2).

y, weights_T, momentum_T = neural_memory(q, k, v, theta, alpha, eta, weights, momentum=None,
                                         chunk_size=16, backend="auto")
"""

from __future__ import annotations

import torch

from titans_ts.memory.ops.chunked import neural_memory_chunked
from titans_ts.memory.ops.common import CHUNK_SIZE, check_arguments
from titans_ts.memory.ops.reference import neural_memory_reference

BACKENDS = ("reference", "chunked", "triton", "auto")


def check_backend(backend) -> None:
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}; got {backend!r}.")


def neural_memory(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    theta: torch.Tensor,
    alpha: torch.Tensor,
    eta: torch.Tensor,
    weights: tuple[torch.Tensor, ...],
    momentum: tuple[torch.Tensor, ...] | None = None,
    *,
    chunk_size: int = CHUNK_SIZE,
    backend: str = "auto",
    max_grad_norm: float | None = None,
    recompute: bool = False,
    compile: bool = False,
):
    """Run the Titans memory over a sequence; returns `(y, weights_T, momentum_T)`.

    q, k: (B, H, T, D_in); v: (B, H, T, D_out); theta (learning rate), alpha (forget gate) and eta
    (momentum decay): (B, H, T). weights: the initial memory M_0, a tuple of L tensors
    (B, H, d_in, d_out); momentum: the same structure or None for zeros. The surprise of each token is
    the loss gradient at its chunk's start weights; each token reads the memory after its own update.
    max_grad_norm bounds each token's surprise norm (over all layers) before it enters the momentum.
    recompute keeps only chunk-start states for the backward and recomputes each chunk (less memory,
    more time; the Triton backend always does). compile runs the chunked backend's per-chunk passes
    through torch.compile (faster steps after a compile of tens of seconds per new shape; off by default).
    Feed weights_T / momentum_T back in to continue a sequence (exact on chunk boundaries).
    """
    weights, momentum = tuple(weights), None if momentum is None else tuple(momentum)
    check_arguments(q, k, v, theta, alpha, eta, weights, momentum, chunk_size, max_grad_norm)
    check_backend(backend)
    if backend == "auto":
        others = (k, v, theta, alpha, eta, *(momentum or ()))
        backend = auto_backend(q.device, q=q, weights=weights, chunk_size=chunk_size, others=others)
    if q.shape[0] == 0:  # an empty batch: nothing to compute, and the chunked passes' shapes need a batch
        backend = "reference"
    options = {}
    if backend == "reference":
        function = neural_memory_reference
    elif backend == "chunked":
        function = neural_memory_chunked
        options["compile"] = compile
    else:
        from titans_ts.memory.ops.triton import neural_memory_triton as function
    return function(
        q,
        k,
        v,
        theta,
        alpha,
        eta,
        weights,
        momentum,
        chunk_size=chunk_size,
        max_grad_norm=max_grad_norm,
        recompute=recompute,
        **options,
    )


# Backends verified on each device type by running their tests there (`make test` on CPU, `make test-gpu`
# on CUDA), fastest first. Triton joined the CUDA list when `make test-gpu` passed on an H200 (torch 2.11,
# Triton 3.6: every case of depth 1 and 2, T 64 and 100, bound on and off, fp32 and bf16 inputs matched
# the float64 reference; issue 26). It is taken only for the shapes and input dtypes that were checked.
VERIFIED_BACKENDS = {"cpu": ("chunked",), "cuda": ("triton", "chunked")}
VERIFIED_TRITON_DTYPES = (torch.float32, torch.bfloat16)


def auto_backend(
    device: torch.device | str, q=None, weights=None, chunk_size: int | None = None, others: tuple = ()
) -> str:
    """The fastest backend verified on this device type that takes these shapes and dtypes ("chunked" takes
    all). others: the call's other tensors (k, v, the gates, the momentum), whose dtypes count too."""
    for backend in VERIFIED_BACKENDS.get(torch.device(device).type, ("chunked",)):
        if backend != "triton":
            return backend
        if q is None or any(t.dtype not in VERIFIED_TRITON_DTYPES for t in (q, *weights, *others)):
            continue
        from titans_ts.memory.ops.triton import runs_on, unsupported_shape

        if runs_on(q) and unsupported_shape(q, weights, chunk_size) is None:
            return backend
    return "chunked"


__all__ = ["BACKENDS", "VERIFIED_BACKENDS", "auto_backend", "neural_memory"]
