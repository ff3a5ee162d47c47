"""What every backend shares: the memory MLP and its per-token gradient, the argument checks, the precision
rule, the chunker, and the torch.compile cache.

`M(x) = W_L(... gelu(x W_1) ...)`, exact GELU between layers, none after the last.
Loss `||M(k) - v||^2` summed over features; its gradient w.r.t. `W_l` is the outer product
`a_{l-1}^T g_l` of the layer input and the gradient at the layer's pre-activation.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F

CHUNK_SIZE = 16  # the default tokens per chunk of every backend (DESIGN.md §2)

Weights = tuple[torch.Tensor, ...]
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


def mlp_forward(x: torch.Tensor, weights: Weights) -> tuple[torch.Tensor, list, list]:
    """Output of the memory MLP on rows of `x` (..., n, d), with each layer's input and pre-activation."""
    inputs, pre = [], []
    h = x
    for layer, w in enumerate(weights):
        inputs.append(h)
        z = h @ w
        pre.append(z)
        h = F.gelu(z) if layer < len(weights) - 1 else z
    return h, inputs, pre


@dataclass
class KeyGradients:
    """The memory's loss gradient on rows of keys, as per-layer factors.

    The gradient of row i's loss w.r.t. `W_l` is the outer product `inputs[l][i]^T grads[l][i]`.
    """

    inputs: list  # a_0 = k, a_l = gelu(pre[l-1])
    pre: list  # z_l = a_{l-1} W_l
    grads: list  # g_L = 2 (z_L - v), g_l = back[l] * gelu'(z_l)
    back: list  # back[l] = g_{l+1} W_{l+1}^T, for l < L - 1


def mlp_grads(k: torch.Tensor, v: torch.Tensor, weights: Weights) -> KeyGradients:
    out, inputs, pre = mlp_forward(k, weights)
    depth = len(weights)
    grads, back = [None] * depth, [None] * (depth - 1)
    g = 2.0 * (out - v)
    for layer in range(depth - 1, -1, -1):
        grads[layer] = g
        if layer > 0:
            back[layer - 1] = g @ weights[layer].mT
            # aten's fused gelu_backward: back * gelu'(z) in one op, and it is differentiable itself.
            g = torch.ops.aten.gelu_backward(back[layer - 1], pre[layer - 1])
    return KeyGradients(inputs, pre, grads, back)


def gelu_second(z: torch.Tensor) -> torch.Tensor:
    """gelu''(z) = phi(z) (2 - z^2) for the exact GELU (the keys' backward differentiates gelu')."""
    return torch.exp(-0.5 * z * z) * _INV_SQRT_2PI * (2.0 - z * z)


def negated_bmm(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """-(a @ b) for 3-d a, b in one call, without a pass to negate: the same numbers, since negation is exact."""
    return torch.baddbmm(a.new_empty(a.shape[0], a.shape[1], b.shape[2]), a, b, beta=0, alpha=-1)


def surprise_norm(key_grads: KeyGradients) -> torch.Tensor:
    """||u_i|| over all layers; ||a^T g||_F = ||a|| ||g||, so no outer product is formed."""
    square = sum((a * a).sum(-1) * (g * g).sum(-1) for a, g in zip(key_grads.inputs, key_grads.grads, strict=True))
    return torch.sqrt(square + torch.finfo(square.dtype).tiny)


def surprise_scale(norm: torch.Tensor, max_grad_norm: float) -> torch.Tensor:
    """min(1, max_grad_norm / ||u_i||): the factor that bounds each token's surprise."""
    return torch.clamp(max_grad_norm / norm, max=1.0)


def is_number(value) -> bool:
    """A real number (numpy's too), not a bool. (The memory imports nothing else of the project: the shared
    layer's errors.is_real and is_integer are written again here.)"""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def is_whole(value) -> bool:
    """A whole number (numpy's too), not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def named_inputs(q, k, v, theta, alpha, eta, weights, momentum) -> dict:
    """The op's tensors by the names its messages use: q, ..., weights[0], ..., momentum[0], ..."""
    named = {"q": q, "k": k, "v": v, "theta": theta, "alpha": alpha, "eta": eta}
    named |= {f"weights[{i}]": w for i, w in enumerate(weights)}
    return named | {f"momentum[{i}]": m for i, m in enumerate(momentum or ())}


def check_arguments(q, k, v, theta, alpha, eta, weights, momentum, chunk_size, max_grad_norm=None) -> None:
    named = named_inputs(q, k, v, theta, alpha, eta, weights, momentum)
    for name, tensor in named.items():
        if not isinstance(tensor, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor; got {type(tensor).__name__}.")
        if not tensor.is_floating_point():
            raise TypeError(f"{name} must be floating point; got {tensor.dtype} (convert it, e.g. .float()).")
    if max_grad_norm is not None and not (is_number(max_grad_norm) and max_grad_norm > 0):  # NaN is not
        raise ValueError(f"max_grad_norm must be positive or None; got {max_grad_norm!r}.")
    if q.dim() != 4 or k.shape != q.shape:
        raise ValueError(f"q and k must both be (B, H, T, D_in); got {tuple(q.shape)} and {tuple(k.shape)}.")
    batch, heads, length, _ = q.shape
    if v.dim() != 4 or v.shape[:3] != q.shape[:3]:
        raise ValueError(f"v must be (B, H, T, D_out) with q's B, H, T; got {tuple(v.shape)}.")
    for name, gate in (("theta", theta), ("alpha", alpha), ("eta", eta)):
        if gate.shape != (batch, heads, length):
            raise ValueError(f"{name} must be (B, H, T) = {(batch, heads, length)}; got {tuple(gate.shape)}.")
    if not weights:
        raise ValueError("weights must hold at least one layer (depth >= 1).")
    if weights[0].shape[-2] != q.shape[-1] or weights[-1].shape[-1] != v.shape[-1]:
        raise ValueError(
            f"the memory maps D_in={weights[0].shape[-2]} -> D_out={weights[-1].shape[-1]}, but q has "
            f"D_in={q.shape[-1]} and v has D_out={v.shape[-1]}."
        )
    for i, (w_in, w_out) in enumerate(zip(weights[:-1], weights[1:], strict=False)):
        if w_in.shape[-1] != w_out.shape[-2]:
            raise ValueError(f"layer {i} outputs {w_in.shape[-1]} features but layer {i + 1} takes {w_out.shape[-2]}.")
    for i, w in enumerate(weights):
        if w.shape[:2] != (batch, heads):
            raise ValueError(
                f"weights[{i}] must be (B, H, d_in, d_out) with B={batch}, H={heads}; got {tuple(w.shape)}."
            )
    if momentum is not None and [m.shape for m in momentum] != [w.shape for w in weights]:
        raise ValueError("momentum must have exactly the shapes of weights (or be None for zeros).")
    if not is_whole(chunk_size) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive integer; got {chunk_size!r}.")


class Precision(NamedTuple):
    """The one precision rule of every backend (docs/memory.md, "Precision").

    compute: the dtype of the state and of every step, with autocast off: torch's type promotion over all
        the op's inputs (q, k, v, the gates, the weights, the momentum), and at least float32. bf16 / fp16
        inputs with an fp32 state run in fp32; a float64 input anywhere runs the whole recurrence in float64,
        as `a + b` of a float64 and an fp32 tensor would (backends that cannot, Triton, refuse it).
    output: y's dtype, q's. The final state comes back in `compute`, each gradient in its input's dtype.
    """

    compute: torch.dtype
    output: torch.dtype


def precision_of(q, k, v, theta, alpha, eta, weights: Weights, momentum: Weights | None = None) -> Precision:
    compute = torch.float32
    for tensor in (q, k, v, theta, alpha, eta, *weights, *(momentum or ())):
        compute = torch.promote_types(compute, tensor.dtype)
    return Precision(compute, q.dtype)


def in_precision(precision: Precision, q, k, v, theta, alpha, eta, weights: Weights, momentum: Weights | None):
    """The op's inputs in `precision.compute` (those already in it are not copied); momentum None: zeros."""
    q, k, v, theta, alpha, eta = (t.to(precision.compute) for t in (q, k, v, theta, alpha, eta))
    weights = tuple(w.to(precision.compute) for w in weights)
    if momentum is None:
        momentum = tuple(torch.zeros_like(w) for w in weights)
    else:
        momentum = tuple(m.to(precision.compute) for m in momentum)
    return q, k, v, theta, alpha, eta, weights, momentum


def to_chunks(tensor: torch.Tensor, chunk_size: int) -> torch.Tensor:
    """(B, H, T, ...) -> chunk-major (C, B, H, n, ...), zero-padding a partial last chunk.

    One contiguous copy: every chunk is then a dense block, so the many small ops per chunk stay fast.
    """
    length = tensor.shape[2]
    pad = -length % chunk_size
    if pad:
        widths = [0, 0] * (tensor.dim() - 3) + [0, pad]
        tensor = F.pad(tensor, widths)
    batch, heads = tensor.shape[:2]
    chunked = tensor.reshape(batch, heads, -1, chunk_size, *tensor.shape[3:])
    return chunked.movedim(2, 0).contiguous()


def from_chunks(tensor: torch.Tensor, length: int) -> torch.Tensor:
    """Chunk-major (C, B, H, n, ...) -> (B, H, T, ...), dropping the padding."""
    chunks, batch, heads, n = tensor.shape[:4]
    whole = tensor.movedim(0, 2).reshape(batch, heads, chunks * n, *tensor.shape[4:])
    return whole[:, :, :length]


def last_positions(length: int, chunk_size: int) -> list[int]:
    """Index of each chunk's last real token (the last chunk may be partial)."""
    chunks = -(-length // chunk_size)
    return [chunk_size - 1] * (chunks - 1) + [(length - 1) % chunk_size]


def last_runs(lasts: list[int]) -> list[tuple[slice, int]]:
    """`lasts` as runs of chunks that share their last position: [(chunks, position), ...].

    Code that picks each chunk's last token slices by these runs (at most two: the full chunks and a partial
    last one) instead of indexing with a tensor made from `lasts`: that tensor would be a host-to-device copy,
    which on CUDA waits for the GPU, in every step.
    """
    runs, start = [], 0
    for end in range(1, len(lasts) + 1):
        if end == len(lasts) or lasts[end] != lasts[start]:
            runs.append((slice(start, end), lasts[start]))
            start = end
    return runs


_COMPILED: dict = {}


def maybe_compiled(function, compiled: bool):
    """`function` itself, or (compiled=True) its torch.compile'd version (fixed shapes), made once per process
    and shared by every caller."""
    if not compiled:
        return function
    if function not in _COMPILED:
        _COMPILED[function] = torch.compile(function, dynamic=False)
    return _COMPILED[function]
