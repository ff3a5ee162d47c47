"""Chunk-parallel memory recurrence in PyTorch: the CPU path.

Inside a chunk every token's memory is the chunk-start memory plus a combination of the chunk's
gradients with scalar coefficients (the "dual form", see `chunk_math.py` and docs/memory.md):

    M_t = A_t M_(c) + e_t S_prev - sum_{i<=t} C[t, i] u_i,   u_i = a_i^T g_i (per layer)

so per-token retrieval is three matmuls per layer. Across chunks the state is carried in a loop.

Two exact backwards: autograd through the chunk loop (the default: fastest on CPU), or, with
`recompute=True`, a hand-written one (`chunk_math.chunk_backward`) for which the forward keeps only each
chunk's start state and the backward recomputes one chunk at a time: memory grows with T / chunk_size
states instead of every intermediate (about 3.5x less at B=8, T=16k), for about 20% more time.
"""

from __future__ import annotations

import torch

from titans_ts.memory.ops.chunk_math import chunk_backward, chunk_forward


def neural_memory_chunked(
    q,
    k,
    v,
    theta,
    alpha,
    eta,
    weights,
    momentum=None,
    *,
    chunk_size: int = 16,
    max_grad_norm: float | None = None,
    recompute: bool = False,
):
    weights = tuple(weights)
    momentum = tuple(torch.zeros_like(w) for w in weights) if momentum is None else tuple(momentum)
    inputs = (q, k, v, theta, alpha, eta, *weights, *momentum)
    if recompute and torch.is_grad_enabled() and any(t.requires_grad for t in inputs):
        outputs = _ChunkedMemory.apply(chunk_size, max_grad_norm, len(weights), *inputs)
        depth = len(weights)
        return outputs[0], tuple(outputs[1 : 1 + depth]), tuple(outputs[1 + depth :])
    y, weights, momentum, _ = _forward(q, k, v, theta, alpha, eta, weights, momentum, chunk_size, max_grad_norm)
    return y, weights, momentum


def _forward(q, k, v, theta, alpha, eta, weights, momentum, chunk_size, max_grad_norm):
    """Chunk by chunk; returns y, the final state and the list of chunk-start states."""
    outputs, starts = [], []
    pieces = [split_chunks(t, chunk_size) for t in (q, k, v, theta, alpha, eta)]
    for chunk in zip(*pieces, strict=True):
        starts.append((weights, momentum))
        result = chunk_forward(*chunk, weights, momentum, max_grad_norm)
        outputs.append(result.y)
        weights, momentum = tuple(result.weights_out), tuple(result.momentum_out)
    y = torch.cat(outputs, dim=2) if outputs else q.new_zeros(*q.shape[:3], weights[-1].shape[-1])
    return y, weights, momentum, starts


def split_chunks(tensor: torch.Tensor, chunk_size: int) -> list[torch.Tensor]:
    """Split (B, H, T, ...) along T into contiguous chunks (the last may be partial).

    One chunk-major copy up front: every chunk is then a dense block, so the many small ops per chunk
    stay fast at any T (strided views of a long sequence made them about 2x slower at T = 8k).
    Under autograd the backward is one copy back, not a zero-filled tensor per chunk.
    """
    batch, heads, length = tensor.shape[:3]
    rest = tensor.shape[3:]
    full = length // chunk_size
    chunks = []
    if full:
        body = tensor[:, :, : full * chunk_size].reshape(batch, heads, full, chunk_size, *rest)
        chunks = list(body.movedim(2, 0).contiguous().unbind(0))
    if length % chunk_size:
        chunks.append(tensor[:, :, full * chunk_size :].contiguous())
    return chunks


class _ChunkedMemory(torch.autograd.Function):
    @staticmethod
    def forward(ctx, chunk_size, max_grad_norm, depth, q, k, v, theta, alpha, eta, *state):
        weights, momentum = state[:depth], state[depth:]
        y, weights_out, momentum_out, starts = _forward(
            q, k, v, theta, alpha, eta, weights, momentum, chunk_size, max_grad_norm
        )
        flat_starts = [t for w, s in starts for t in (*w, *s)]
        ctx.save_for_backward(q, k, v, theta, alpha, eta, *flat_starts)
        ctx.chunk_size, ctx.max_grad_norm, ctx.depth = chunk_size, max_grad_norm, depth
        return (y, *weights_out, *momentum_out)

    @staticmethod
    def backward(ctx, d_y, *d_state):
        q, k, v, theta, alpha, eta, *flat_starts = ctx.saved_tensors
        depth, chunk_size = ctx.depth, ctx.chunk_size
        d_weights, d_momentum = list(d_state[:depth]), list(d_state[depth:])
        pieces = [split_chunks(t, chunk_size) for t in (q, k, v, theta, alpha, eta, d_y)]
        chunks = list(zip(*pieces, strict=True))
        grads = [[] for _ in range(6)]
        for index in range(len(chunks) - 1, -1, -1):
            q_c, k_c, v_c, theta_c, alpha_c, eta_c, d_y_c = chunks[index]
            start = flat_starts[index * 2 * depth : (index + 1) * 2 * depth]
            weights, momentum = start[:depth], start[depth:]
            fwd = chunk_forward(
                q_c, k_c, v_c, theta_c, alpha_c, eta_c, weights, momentum, ctx.max_grad_norm, with_state=False
            )
            *chunk_grads, d_weights, d_momentum = chunk_backward(
                fwd, theta_c, weights, momentum, ctx.max_grad_norm, d_y_c, d_weights, d_momentum
            )
            for collected, grad in zip(grads, chunk_grads, strict=True):
                collected.append(grad)
        input_grads = [torch.cat(g[::-1], dim=2) if g else None for g in grads]
        if not chunks:  # T == 0: the state passes through unchanged
            input_grads = [torch.zeros_like(t) for t in (q, k, v, theta, alpha, eta)]
        return (None, None, None, *input_grads, *d_weights, *d_momentum)
