"""The oracle: the memory recurrence token by token, exactly as written in DESIGN.md §2.

Slow and plain on purpose; every faster backend is tested against it. It takes what they take and computes
in the same precision (`common.Precision`): the state and every step in torch's promotion of the inputs'
dtypes (at least fp32), autocast off; y in q's dtype, the state in the compute dtype.
"""

from __future__ import annotations

import torch

from titans_ts.memory.ops.common import (
    CHUNK_SIZE,
    Weights,
    in_precision,
    mlp_forward,
    mlp_grads,
    precision_of,
    surprise_norm,
    surprise_scale,
)


def neural_memory_reference(
    q,
    k,
    v,
    theta,
    alpha,
    eta,
    weights: Weights,
    momentum: Weights | None = None,
    *,
    chunk_size: int = CHUNK_SIZE,
    max_grad_norm: float | None = None,
    recompute: bool = False,  # a memory option of the fast backends; the oracle has nothing to save
):
    precision = precision_of(q, k, v, theta, alpha, eta, weights, momentum)
    q, k, v, theta, alpha, eta, weights, momentum = in_precision(
        precision, q, k, v, theta, alpha, eta, weights, momentum
    )
    with torch.autocast(q.device.type, enabled=False):
        y, weights, momentum = _token_loop(
            q, k, v, theta, alpha, eta, list(weights), list(momentum), chunk_size, max_grad_norm
        )
    return y.to(precision.output), tuple(weights), tuple(momentum)


def _token_loop(q, k, v, theta, alpha, eta, weights: list, momentum: list, chunk_size, max_grad_norm):
    chunk_start = weights
    outputs = []
    for t in range(q.shape[2]):
        if t % chunk_size == 0:
            chunk_start = list(weights)  # the surprise of this chunk is measured at these weights
        k_t, v_t = k[:, :, t : t + 1], v[:, :, t : t + 1]
        key_grads = mlp_grads(k_t, v_t, chunk_start)
        theta_t = theta[:, :, t]
        if max_grad_norm is not None:
            theta_t = theta_t * surprise_scale(surprise_norm(key_grads), max_grad_norm)[..., 0]
        for layer, (a, g) in enumerate(zip(key_grads.inputs, key_grads.grads, strict=True)):
            surprise = a.transpose(-1, -2) @ g  # (B, H, d_in, d_out)
            momentum[layer] = _bcast(eta[:, :, t]) * momentum[layer] - _bcast(theta_t) * surprise
            weights[layer] = _bcast(1.0 - alpha[:, :, t]) * weights[layer] + momentum[layer]
        outputs.append(mlp_forward(q[:, :, t : t + 1], weights)[0])
    y = torch.cat(outputs, dim=2) if outputs else q.new_zeros(*q.shape[:3], weights[-1].shape[-1])
    return y, weights, momentum


def _bcast(gate: torch.Tensor) -> torch.Tensor:
    return gate[..., None, None]
