"""Chunk-parallel memory recurrence in PyTorch: the CPU path, and the reference of the Triton kernels.

Inside a chunk every token's memory is the chunk-start memory plus a combination of the chunk's
gradients with scalar coefficients (the "dual form", docs/memory.md):

    M_t = A_t M_(c) + e_t S_prev - sum_{i<=t} C[t, i] u_i,   u_i = a_i^T g_i (per layer)

Notation, per layer l and rows i, t of a chunk of n tokens:
    keys:      a_0 = k, z_l = a_{l-1} W_l, a_l = gelu(z_l)
               g_L = 2 (z_L - v), g_l = (g_{l+1} W_{l+1}^T) * gelu'(z_l)
    bound:     s_i = min(1, c / ||u_i||), ||u_i||^2 = sum_l |a_{l-1,i}|^2 |g_{l,i}|^2, theta'_i = theta_i s_i
    decays:    P = D(eta), Q = D(1 - alpha), E = cumprod(eta), A = cumprod(1 - alpha)
               G = Q @ P, C = G * theta'[i], e = Q @ E
    retrieval: x_0 = q, zq_l = A * (x W_l) + e * (x S_l) - (C * (x a_{l-1}^T)) g_l, x_l = gelu(zq_l), y = zq_L
    state:     W'_l = A_n W_l + e_n S_l - a^T (c * g_l),  S'_l = E_n S_l - a^T (p * g_l),
               c = C[n-1, :], p = theta' * P[n-1, :]

Since every surprise u_i is taken at the chunk-start weights, only a short state step is sequential.
The work is split as in flash-linear-attention's chunk ops, each pass its own module:
    (a) `gates`:  decay and coefficient matrices from the gates, all chunks of a block at once;
    (b) `state`:  the sequential loop: keys through the chunk-start weights, their gradients,
                  the surprise bound, the rank-n state update;
    (c) `output`: every token's retrieval, all chunks of a block at once, from the saved chunk-start states.
The backward (hand-written, exact) mirrors it: output gradients, a reverse loop carrying dW and dS, then
the gates' gradients.

`recompute=True` runs the same passes one chunk at a time and keeps only each chunk's start state; the
backward runs a chunk's passes again before its gradients: memory grows with T / chunk_size states instead
of every intermediate, for more time. On a CPU the blocks are single chunks anyway, so the results are
identical to recompute=False, gradients included.

Inputs may be bf16/fp16, and of mixed dtypes: the recurrence runs in `common.Precision`'s compute dtype
(torch's promotion of every input's dtype, at least fp32), autocast off; y comes back in q's dtype, the state
in the compute dtype.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import torch

from titans_ts.memory.ops.chunked.gates import gates_backward, gates_forward
from titans_ts.memory.ops.chunked.output import output_backward, output_forward
from titans_ts.memory.ops.chunked.state import state_backward, state_forward
from titans_ts.memory.ops.common import (
    CHUNK_SIZE,
    from_chunks,
    in_precision,
    last_positions,
    last_runs,
    maybe_compiled,
    precision_of,
    to_chunks,
)


class Passes(NamedTuple):
    """The functions of the three passes, forward and backward: PyTorch's (`gates`, `state`, `output`) or
    kernels with the same interfaces."""

    gates_forward: Callable = gates_forward
    gates_backward: Callable = gates_backward
    state_forward: Callable = state_forward
    state_backward: Callable = state_backward
    output_forward: Callable = output_forward
    output_backward: Callable = output_backward


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
    chunk_size: int = CHUNK_SIZE,
    max_grad_norm: float | None = None,
    recompute: bool = False,
    compile: bool = False,
    passes: Passes | None = None,
):
    """passes: the three passes' functions, PyTorch's by default, or kernels with their interfaces (the Triton
    backend's); given, the chunk size is kept, since the kernels' tiles need it."""
    weights = tuple(weights)
    if passes is None:
        # A sequence shorter than a chunk is one chunk of its own length: the same tokens share the same
        # chunk-start weights, without computing the padding (variate tokens: 7 tokens in chunks of 16).
        chunk_size = max(1, min(chunk_size, q.shape[2]))
        passes = Passes()
    precision = precision_of(q, k, v, theta, alpha, eta, weights, momentum)
    out_dtype = precision.output
    q, k, v, theta, alpha, eta, weights, momentum = in_precision(
        precision, q, k, v, theta, alpha, eta, weights, momentum
    )
    inputs = (q, k, v, theta, alpha, eta, *weights, *momentum)
    depth = len(weights)
    with torch.autocast(q.device.type, enabled=False):
        if q.shape[2] == 0:
            y = q.new_zeros(*q.shape[:3], weights[-1].shape[-1])
            return y.to(out_dtype), weights, momentum
        if torch.is_grad_enabled() and any(t.requires_grad for t in inputs):
            outputs = _ChunkedMemory.apply(chunk_size, max_grad_norm, depth, recompute, compile, passes, *inputs)
            y, weights_out, momentum_out = outputs[0], outputs[1 : 1 + depth], outputs[1 + depth :]
        else:
            y, weights_out, momentum_out, _ = _forward(
                *inputs[:6], weights, momentum, chunk_size, max_grad_norm, None, compile, passes
            )
    return y.to(out_dtype), tuple(weights_out), tuple(momentum_out)


def chunks_per_block(device: torch.device, chunks: int) -> int:
    """How many chunks the parallel passes take at once.

    On a GPU all of them (one launch per op). On a CPU one: a chunk's temporaries (about 1 MB at B*H = 32,
    n = 64, hidden 128) stay in the core's cache, while the same ops over all chunks stream every operand
    through main memory and measured 4x slower per element.
    """
    return chunks if device.type == "cuda" else 1


def _blocks(chunks: int, size: int) -> list[slice]:
    return [slice(start, min(start + size, chunks)) for start in range(0, chunks, size)]


def block_forward(q, k, v, theta, alpha, eta, states, lasts, max_grad_norm, passes: Passes):
    """The three forward passes over one block of chunks (chunk-major inputs); returns what the backward needs."""
    gates = passes.gates_forward(alpha, eta)
    state = passes.state_forward(k, v, theta, gates, lasts, states, max_grad_norm)
    out = passes.output_forward(q, state, gates)
    return gates, state, out


def block_backward(gates, state, out, theta, lasts, max_grad_norm, d_y, d_states, passes: Passes):
    """The passes in reverse over one block: output gradients, the reverse state loop, the gates."""
    out_grads = passes.output_backward(out, state, gates, d_y)
    d_theta_out = (out_grads.d_coeff * gates.mixed).sum(-2)
    sg = passes.state_backward(state, theta, max_grad_norm, out_grads.d_direct, out_grads.d_keys, d_theta_out, d_states)
    d_coeff = _add_at(lasts, out_grads.d_coeff, sg.d_coeff_last, dim=-2).tril()
    d_alpha, d_eta = passes.gates_backward(
        gates,
        d_coeff * state.theta[..., None, :],
        _add_at(lasts, torch.zeros_like(gates.carry), sg.d_carry_last, dim=-2),
        _add_at(lasts, out_grads.d_read[..., 1], sg.d_mcoeff_last, dim=-1),
        _add_at(lasts, torch.zeros_like(gates.eta_prod), sg.d_eta_last, dim=-1),
        _add_at(lasts, out_grads.d_read[..., 0], sg.d_keep_last, dim=-1),
    )
    d_inputs = (out_grads.d_q, sg.d_k, sg.d_v, sg.d_theta, d_alpha, d_eta)
    return d_inputs, sg.d_states


@dataclass
class _Saved:
    """What the forward leaves for the backward, per block of chunks."""

    chunk_size: int
    lasts: list[int]
    blocks: list[slice]
    kept: list  # per block: its passes (gates, state, out), or (recompute) only its start states
    theta: torch.Tensor | None  # chunk-major theta (None under recompute: the inputs are saved instead)
    passes: Passes


def _forward(
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
    save,
    compiled,
    passes,
):
    """Returns y, the final state and what the backward needs: nothing (save=None), every block's passes
    ("passes"), or (recompute, "starts") each chunk's start state."""
    states = [torch.stack([w, s], dim=2) for w, s in zip(weights, momentum, strict=True)]
    length = q.shape[2]
    lasts = last_positions(length, chunk_size)
    inputs = [to_chunks(t, chunk_size) for t in (q, k, v, theta, alpha, eta)]
    y_c = inputs[0].new_empty(*inputs[0].shape[:-1], weights[-1].shape[-1])
    blocks = _blocks(len(lasts), 1 if save == "starts" else chunks_per_block(q.device, len(lasts)))
    forward = maybe_compiled(block_forward, compiled)
    kept = []
    for block in blocks:
        block_inputs = (x[block] for x in inputs)
        gates, state, out = forward(*block_inputs, states, lasts[block], max_grad_norm, passes)
        y_c[block] = out.y
        if save is not None:
            kept.append((gates, state, out) if save == "passes" else states)
        states = state.states_out
    saved = _Saved(chunk_size, lasts, blocks, kept, inputs[3] if save == "passes" else None, passes)
    weights, momentum = tuple(u[:, :, 0] for u in states), tuple(u[:, :, 1] for u in states)
    return from_chunks(y_c, length), weights, momentum, saved


def _backward(saved: _Saved, inputs, max_grad_norm, d_y, d_weights, d_momentum, compiled=False):
    """inputs: chunk-major (q, k, v, theta, alpha, eta) to run the passes again from (recompute), else None."""
    d_y = to_chunks(d_y, saved.chunk_size)
    forward, backward = maybe_compiled(block_forward, compiled), maybe_compiled(block_backward, compiled)
    theta = saved.theta if inputs is None else inputs[3]
    d_states = [torch.stack([dw, ds], dim=2) for dw, ds in zip(d_weights, d_momentum, strict=True)]
    d_inputs = None
    for block, kept in zip(reversed(saved.blocks), reversed(saved.kept), strict=True):
        lasts = saved.lasts[block]
        if inputs is not None:  # kept is the block's start state
            kept = forward(*(x[block] for x in inputs), kept, lasts, max_grad_norm, saved.passes)
        block_grads, d_states = backward(*kept, theta[block], lasts, max_grad_norm, d_y[block], d_states, saved.passes)
        if d_inputs is None:
            d_inputs = [t.new_empty(len(saved.lasts), *t.shape[1:]) for t in block_grads]
        for full, grad in zip(d_inputs, block_grads, strict=True):
            full[block] = grad
    return d_inputs, tuple(d[:, :, 0] for d in d_states), tuple(d[:, :, 1] for d in d_states)


def _add_at(lasts, target: torch.Tensor, values: torch.Tensor, dim: int) -> torch.Tensor:
    """target[c, ..., lasts[c], ...] += values[c] along `dim` (-1 for vectors, -2 for matrix rows), out of place."""
    out = target.clone()
    for chunks, last in last_runs(lasts):
        out[chunks].select(dim, last).add_(values[chunks])
    return out


def _tensors_out(record, tensors: list):
    """`record` (what the passes keep: their dataclasses, lists and tuples of tensors) with each tensor replaced
    by its place in `tensors`, where it is appended, so that autograd keeps them (`save_for_backward`)."""
    if isinstance(record, torch.Tensor):
        tensors.append(record)
        return _Place(len(tensors) - 1)
    return _rebuilt(record, lambda part: _tensors_out(part, tensors))


def _tensors_in(record, tensors):
    """`_tensors_out` undone: each place replaced by its tensor."""
    if isinstance(record, _Place):
        return tensors[record.index]
    return _rebuilt(record, lambda part: _tensors_in(part, tensors))


class _Place(NamedTuple):
    index: int


def _rebuilt(record, each):
    """A copy of `record` with `each` applied to its parts: the items of a list or tuple, the fields of one of
    the passes' records (dataclasses); anything else as it is."""
    if isinstance(record, list):
        return [each(part) for part in record]
    if isinstance(record, tuple):
        parts = [each(part) for part in record]
        return type(record)(*parts) if hasattr(record, "_fields") else tuple(parts)
    if dataclasses.is_dataclass(record) and not isinstance(record, type):
        fields = {field.name: each(getattr(record, field.name)) for field in dataclasses.fields(record)}
        return dataclasses.replace(record, **fields)
    return record


class _ChunkedMemory(torch.autograd.Function):
    @staticmethod
    def forward(ctx, chunk_size, max_grad_norm, depth, recompute, compiled, passes, q, k, v, theta, alpha, eta, *state):
        weights, momentum = state[:depth], state[depth:]
        save = "starts" if recompute else "passes"
        y, weights_out, momentum_out, saved = _forward(
            q, k, v, theta, alpha, eta, weights, momentum, chunk_size, max_grad_norm, save, compiled, passes
        )
        # through save_for_backward, not on ctx: a second backward (retain_graph, gradcheck) finds them, one
        # without retain_graph is told so, and an input changed in place since is an error, not a wrong gradient
        tensors = [q, k, v, theta, alpha, eta] if recompute else []
        ctx.inputs, ctx.saved = len(tensors), _tensors_out(saved, tensors)
        ctx.save_for_backward(*tensors)
        ctx.max_grad_norm, ctx.length, ctx.depth, ctx.compiled = max_grad_norm, q.shape[2], depth, compiled
        # copies: the returned state is the caller's to change in place; what the backward keeps is checked
        return (y, *(w.clone() for w in weights_out), *(m.clone() for m in momentum_out))

    @staticmethod
    def backward(ctx, d_y, *d_state):
        if torch.is_grad_enabled():  # create_graph=True: these gradients would be constants, silently
            raise RuntimeError(
                "the chunked memory's backward is written by hand and cannot be differentiated again "
                "(create_graph=True): use backend='reference' for gradients of gradients."
            )
        tensors, depth = ctx.saved_tensors, ctx.depth
        saved = _tensors_in(ctx.saved, tensors)
        inputs = [to_chunks(t, saved.chunk_size) for t in tensors[: ctx.inputs]] or None
        with torch.autocast(d_y.device.type, enabled=False):
            d_inputs, d_weights, d_momentum = _backward(
                saved, inputs, ctx.max_grad_norm, d_y, d_state[:depth], d_state[depth:], compiled=ctx.compiled
            )
        grads = [from_chunks(t, ctx.length) for t in d_inputs]
        return (None,) * 6 + (*grads, *d_weights, *d_momentum)
