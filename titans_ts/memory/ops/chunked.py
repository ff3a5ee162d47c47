"""Chunk-parallel memory recurrence in PyTorch: the CPU path.

Inside a chunk every token's memory is the chunk-start memory plus a combination of the chunk's
gradients with scalar coefficients (the "dual form"):

    M_t = A_t M_(c) + e_t S_prev - sum_{i<=t} C[t, i] u_i,   u_i = a_i^T g_i (per layer)

with, for positions t, s, i of the chunk,
    P[s, i] = prod_{j=i+1..s} eta_j    (momentum carried from token i to s)
    Q[t, s] = prod_{j=s+1..t} (1 - alpha_j)   (forgetting from s to t)
    A_t = prod_{j<=t} (1 - alpha_j),   E_s = prod_{j<=s} eta_j,
    C = (Q @ P) * theta_i,   e = Q @ E.
So `x_t W_t = A_t x_t W_(c) + e_t x_t S_prev - sum_i C[t, i] (x_t . a_i) g_i`: three matmuls per layer.
Across chunks the state is carried in a loop. Gradients come from autograd through these matmuls.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from titans_ts.memory.ops._mlp import Weights, mlp_grads, surprise_scale


def neural_memory_chunked(
    q,
    k,
    v,
    theta,
    alpha,
    eta,
    weights: Weights,
    momentum: Weights | None = None,
    *,
    chunk_size: int = 16,
    max_grad_norm: float | None = None,
):
    weights = list(weights)
    momentum = [torch.zeros_like(w) for w in weights] if momentum is None else list(momentum)
    outputs = []
    # split (not slicing in a loop): its backward is one concatenation, not a zero-filled copy per chunk.
    pieces = [t.split(chunk_size, dim=2) for t in (q, k, v, theta, alpha, eta)]
    for chunk in zip(*pieces, strict=True):
        y, weights, momentum = _chunk(*chunk, weights, momentum, max_grad_norm)
        outputs.append(y)
    y = torch.cat(outputs, dim=2) if outputs else q.new_zeros(*q.shape[:3], weights[-1].shape[-1])
    return y, tuple(weights), tuple(momentum)


def _chunk(q, k, v, theta, alpha, eta, weights, momentum, max_grad_norm):
    inputs, grads = mlp_grads(k, v, weights)  # surprise at the chunk-start weights
    scale = surprise_scale(inputs, grads, max_grad_norm)
    if scale is not None:
        theta = theta * scale

    carry = _decay_matrix(eta)  # P
    forget = _decay_matrix(1.0 - alpha)  # Q
    eta_prod = torch.cumprod(eta, dim=-1)  # E
    keep_prod = torch.cumprod(1.0 - alpha, dim=-1)  # A
    coeff = (forget @ carry) * theta[..., None, :]  # C[t, i]
    momentum_coeff = (forget @ eta_prod[..., None])[..., 0]  # e_t

    # Per-token retrieval through the per-token memories, layer by layer. x @ [W | S] is one matmul.
    x = q
    for layer, (w, s, a, g) in enumerate(zip(weights, momentum, inputs, grads, strict=True)):
        from_weights, from_momentum = (x @ torch.cat([w, s], dim=-1)).split(w.shape[-1], dim=-1)
        z = (
            keep_prod[..., None] * from_weights
            + momentum_coeff[..., None] * from_momentum
            - (coeff * (x @ a.transpose(-1, -2))) @ g
        )
        x = F.gelu(z) if layer < len(weights) - 1 else z

    # State after the chunk's last token: a^T @ [C[n-1, i] g_i | theta_i P[n-1, i] g_i] is one matmul.
    last_coeff = torch.stack([coeff[..., -1, :], carry[..., -1, :] * theta], dim=-2)[..., None]
    new_weights, new_momentum = [], []
    for w, s, a, g in zip(weights, momentum, inputs, grads, strict=True):
        scaled = (last_coeff * g[..., None, :, :]).transpose(-3, -2).flatten(-2)  # (.., n, 2 * d_out)
        to_weights, to_momentum = (a.transpose(-1, -2) @ scaled).split(g.shape[-1], dim=-1)
        new_weights.append(
            keep_prod[..., -1, None, None] * w + momentum_coeff[..., -1, None, None] * s - to_weights
        )
        new_momentum.append(eta_prod[..., -1, None, None] * s - to_momentum)
    return x, new_weights, new_momentum


def _decay_matrix(rate: torch.Tensor) -> torch.Tensor:
    """D[t, i] = prod_{j=i+1..t} rate_j for t >= i, else 0; from (..., n) to (..., n, n).

    Built with a cumprod (no division, no log) so that zero rates and their gradients are exact.
    """
    n = rate.shape[-1]
    later = torch.ones(n, n, dtype=torch.bool, device=rate.device).triu(1)  # [i, t]: t > i
    factors = torch.where(later, rate[..., None, :], torch.ones((), dtype=rate.dtype, device=rate.device))
    products = torch.cumprod(factors, dim=-1)  # [i, t] = prod_{j=i+1..t} rate_j for t >= i
    return products.transpose(-1, -2).tril()
