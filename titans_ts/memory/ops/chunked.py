"""Chunk-parallel memory recurrence in PyTorch: the CPU path, and the reference of the Triton kernels.

Inside a chunk every token's memory is the chunk-start memory plus a combination of the chunk's
gradients with scalar coefficients (the "dual form", see `chunk_math.py` and docs/memory.md):

    M_t = A_t M_(c) + e_t S_prev - sum_{i<=t} C[t, i] u_i,   u_i = a_i^T g_i (per layer)

Since every surprise u_i is taken at the chunk-start weights, only a short state step is sequential.
The work is split as in flash-linear-attention's chunk ops, each pass its own module:
    (a) `chunk_gates`:  decay and coefficient matrices from the gates, all chunks at once;
    (b) `chunk_state`:  the sequential loop: keys through the chunk-start weights, their gradients,
                        the surprise bound, the rank-n state update;
    (c) `chunk_output`: every token's retrieval, all chunks at once, from the saved chunk-start states.
The backward (hand-written, exact) mirrors it: output gradients for all chunks, a reverse loop carrying
dW and dS, then the gates' gradients for all chunks.

`recompute=True` instead keeps only chunk-start states and recomputes one chunk at a time in the backward
(`chunk_math.chunk_backward`): memory grows with T / chunk_size states instead of every intermediate,
for more time.

Inputs may be bf16/fp16: the recurrence runs in the state's precision (at least fp32), autocast off;
y comes back in q's dtype, the state in its own.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from titans_ts.memory.ops.chunk_gates import gates_backward, gates_forward
from titans_ts.memory.ops.chunk_math import chunk_backward, chunk_forward
from titans_ts.memory.ops.chunk_output import output_backward, output_forward
from titans_ts.memory.ops.chunk_state import state_backward, state_forward
from titans_ts.memory.ops.compiled import maybe_compiled


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
    compile: bool = False,
    state_pass=None,
):
    """state_pass: pass (b), (forward, backward) = `chunk_state`'s `state_forward, state_backward` or kernels
    with their interfaces (the Triton backend's); given, the chunk size is kept, since the kernels' tiles
    need it."""
    weights = tuple(weights)
    if state_pass is None:
        # A sequence shorter than a chunk is one chunk of its own length: the same tokens share the same
        # chunk-start weights, without computing the padding (variate tokens: 7 tokens in chunks of 16).
        chunk_size = max(1, min(chunk_size, q.shape[2]))
        state_pass = STATE_PASS
    state_dtype = torch.promote_types(weights[0].dtype, torch.float32)
    weights = tuple(w.to(state_dtype) for w in weights)
    momentum = (
        tuple(torch.zeros_like(w) for w in weights) if momentum is None else tuple(m.to(state_dtype) for m in momentum)
    )
    out_dtype = q.dtype
    q, k, v, theta, alpha, eta = (t.to(state_dtype) for t in (q, k, v, theta, alpha, eta))
    inputs = (q, k, v, theta, alpha, eta, *weights, *momentum)
    depth = len(weights)
    with torch.autocast(q.device.type, enabled=False):
        if q.shape[2] == 0:
            y = q.new_zeros(*q.shape[:3], weights[-1].shape[-1])
            return y.to(out_dtype), weights, momentum
        needs_grad = torch.is_grad_enabled() and any(t.requires_grad for t in inputs)
        if needs_grad and recompute:
            outputs = _ChunkedMemory.apply(chunk_size, max_grad_norm, depth, *inputs)
        elif needs_grad:
            outputs = _ChunkParallelMemory.apply(chunk_size, max_grad_norm, depth, compile, state_pass, *inputs)
        if needs_grad:
            y, weights_out, momentum_out = outputs[0], outputs[1 : 1 + depth], outputs[1 + depth :]
        else:
            y, weights_out, momentum_out, _ = _parallel_forward(
                *inputs[:6], weights, momentum, chunk_size, max_grad_norm, False, compile, state_pass
            )
    return y.to(out_dtype), tuple(weights_out), tuple(momentum_out)


STATE_PASS = (state_forward, state_backward)


def to_chunks(tensor: torch.Tensor, chunk_size: int) -> torch.Tensor:
    """(B, H, T, ...) -> chunk-major (C, B, H, n, ...), zero-padding a partial last chunk."""
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


def chunks_per_block(device: torch.device, chunks: int) -> int:
    """How many chunks the parallel passes take at once.

    On a GPU all of them (one launch per op). On a CPU one: a chunk's temporaries (about 1 MB at B*H = 32,
    n = 64, hidden 128) stay in the core's cache, while the same ops over all chunks stream every operand
    through main memory and measured 4x slower per element.
    """
    return chunks if device.type == "cuda" else 1


def _blocks(chunks: int, size: int) -> list[slice]:
    return [slice(start, min(start + size, chunks)) for start in range(0, chunks, size)]


def block_forward(q, k, v, theta, alpha, eta, states, lasts, max_grad_norm, state_pass=state_forward):
    """The three forward passes over one block of chunks (chunk-major inputs); returns what the backward needs.
    state_pass: pass (b)'s forward."""
    gates = gates_forward(alpha, eta)
    state = state_pass(k, v, theta, gates, lasts, states, max_grad_norm)
    out = output_forward(q, state, gates)
    return gates, state, out


def block_backward(gates, state, out, theta, lasts, max_grad_norm, d_y, d_states, state_pass_backward=state_backward):
    """The passes in reverse over one block: output gradients, the reverse state loop, the gates."""
    out_grads = output_backward(out, state, gates, d_y)
    d_theta_out = (out_grads.d_coeff * gates.mixed).sum(-2)
    sg = state_pass_backward(state, theta, max_grad_norm, out_grads.d_direct, out_grads.d_keys, d_theta_out, d_states)
    d_coeff = _add_at(lasts, out_grads.d_coeff, sg.d_coeff_last, dim=-2).tril()
    d_alpha, d_eta = gates_backward(
        gates,
        d_coeff * state.theta[..., None, :],
        _add_at(lasts, torch.zeros_like(gates.carry), sg.d_carry_last, dim=-2),
        _add_at(lasts, out_grads.d_read[..., 1], sg.d_mcoeff_last, dim=-1),
        _add_at(lasts, torch.zeros_like(gates.eta_prod), sg.d_eta_last, dim=-1),
        _add_at(lasts, out_grads.d_read[..., 0], sg.d_keep_last, dim=-1),
    )
    d_inputs = (out_grads.d_q, sg.d_k, sg.d_v, sg.d_theta, d_alpha, d_eta)
    return d_inputs, sg.d_states


def _parallel_forward(
    q,
    k,
    v,
    theta,
    alpha,
    eta,
    weights,
    momentum,
    chunk_size,
    max_grad_norm,
    keep=True,
    compiled=False,
    state_pass=STATE_PASS,
):
    """Returns y, the final state, and (keep=True) what the backward needs, per block of chunks."""
    states = [torch.stack([w, s], dim=2) for w, s in zip(weights, momentum, strict=True)]
    length = q.shape[2]
    lasts = last_positions(length, chunk_size)
    q_c, k_c, v_c, theta_c, alpha_c, eta_c = (to_chunks(t, chunk_size) for t in (q, k, v, theta, alpha, eta))
    y_c = q_c.new_empty(*q_c.shape[:-1], weights[-1].shape[-1])
    blocks = _blocks(len(lasts), chunks_per_block(q.device, len(lasts)))
    forward = maybe_compiled(block_forward, compiled)
    passes = []
    for block in blocks:
        inputs = (x[block] for x in (q_c, k_c, v_c, theta_c, alpha_c, eta_c))
        gates, state, out = forward(*inputs, states, lasts[block], max_grad_norm, state_pass[0])
        y_c[block] = out.y
        states = state.states_out
        if keep:
            passes.append((gates, state, out))
    saved = (theta_c, lasts, blocks, passes, state_pass[1])
    weights, momentum = tuple(u[:, :, 0] for u in states), tuple(u[:, :, 1] for u in states)
    return from_chunks(y_c, length), weights, momentum, saved


def _parallel_backward(saved, max_grad_norm, d_y, d_weights, d_momentum, compiled=False):
    theta_c, lasts, blocks, passes, state_pass_backward = saved
    d_y = to_chunks(d_y, theta_c.shape[-1])
    backward = maybe_compiled(block_backward, compiled)
    d_states = [torch.stack([dw, ds], dim=2) for dw, ds in zip(d_weights, d_momentum, strict=True)]
    d_inputs = None
    for block, (gates, state, out) in zip(reversed(blocks), reversed(passes), strict=True):
        block_grads, d_states = backward(
            gates, state, out, theta_c[block], lasts[block], max_grad_norm, d_y[block], d_states, state_pass_backward
        )
        if d_inputs is None:
            d_inputs = [t.new_empty(len(lasts), *t.shape[1:]) for t in block_grads]
        for full, grad in zip(d_inputs, block_grads, strict=True):
            full[block] = grad
    return d_inputs, tuple(d[:, :, 0] for d in d_states), tuple(d[:, :, 1] for d in d_states)


def _add_at(lasts, target: torch.Tensor, values: torch.Tensor, dim: int) -> torch.Tensor:
    """target[c, ..., lasts[c], ...] += values[c] along `dim` (-1 for vectors, -2 for matrix rows)."""
    index = torch.tensor(lasts, device=target.device).view(-1, *([1] * (target.dim() - 1)))
    shape = list(target.shape)
    shape[dim] = 1
    index = index.expand(shape)
    return target.scatter_add(dim, index, values.unsqueeze(dim))


class _ChunkParallelMemory(torch.autograd.Function):
    @staticmethod
    def forward(ctx, chunk_size, max_grad_norm, depth, compiled, state_pass, q, k, v, theta, alpha, eta, *state):
        weights, momentum = state[:depth], state[depth:]
        y, weights_out, momentum_out, saved = _parallel_forward(
            q, k, v, theta, alpha, eta, weights, momentum, chunk_size, max_grad_norm, True, compiled, state_pass
        )
        ctx.saved = saved  # intermediates, not inputs: nothing to version-check
        ctx.max_grad_norm, ctx.length, ctx.depth, ctx.compiled = max_grad_norm, q.shape[2], depth, compiled
        return (y, *weights_out, *momentum_out)

    @staticmethod
    def backward(ctx, d_y, *d_state):
        saved, depth = ctx.saved, ctx.depth
        del ctx.saved
        with torch.autocast(d_y.device.type, enabled=False):
            d_inputs, d_weights, d_momentum = _parallel_backward(
                saved, ctx.max_grad_norm, d_y, d_state[:depth], d_state[depth:], compiled=ctx.compiled
            )
        grads = [from_chunks(t, ctx.length) for t in d_inputs]
        return (None, None, None, None, None, *grads, *d_weights, *d_momentum)


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
