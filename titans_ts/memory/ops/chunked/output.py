"""Pass (c) of the chunked recurrence: every token's retrieval, for a block of chunks at once.

Token t of a chunk reads the memory after its own update; in the dual form, layer by layer (x_0 = q):
    z_l = [A x | e x] @ [W_l; S_l] - (C o (x a_{l-1}^T)) g_l,   x_l = gelu(z_l), y = z_L
with (W_l, S_l) the chunk-start state (stacked, as the state pass keeps it) and a, g the chunk's key
factors: one matmul and one fused multiply-add per layer. Shapes are chunk-major: (C, B, H, n, ...).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from titans_ts.memory.ops.chunked.gates import ChunkGates
from titans_ts.memory.ops.chunked.state import StatePass, combine_pair, dot_pair, scaled_keys
from titans_ts.memory.ops.common import negated_bmm


@dataclass
class OutputPass:
    y: torch.Tensor  # (C, B, H, n, d_L)
    coeff: torch.Tensor  # C = G * theta' (C, B, H, n, n)
    query_inputs: list  # x_0 .. x_{L-1}
    query_pre: list  # z_1 .. z_{L-1} (the last layer's is y)
    similarity: list  # x_{l-1} a_{l-1}^T per layer (C, B, H, n, n)


def _batches(x):
    return x.reshape(-1, *x.shape[-2:])


def _state_rows(state):
    """(C, B, H, 2, d, h) -> (C*B*H, 2d, h): [W; S] as the right factor of one matmul."""
    return state.reshape(-1, state.shape[-3] * state.shape[-2], state.shape[-1])


def coefficients(gates: ChunkGates, sp: StatePass) -> torch.Tensor:
    """C = G * theta'[i] (C, B, H, n, n): how token i's surprise reaches token t's memory."""
    return gates.mixed * sp.theta[..., None, :]


def output_forward(q, sp: StatePass, gates: ChunkGates) -> OutputPass:
    coeff = coefficients(gates, sp)
    depth = len(sp.states)
    query_inputs, query_pre, similarities = [], [], []
    x = q
    for layer in range(depth):
        query_inputs.append(x)
        similarity = x @ sp.key_inputs[layer].mT
        similarities.append(similarity)
        read = _batches(scaled_keys(x, gates.read))
        z = torch.baddbmm(
            torch.bmm(read, _state_rows(sp.states[layer])),
            _batches(coeff * similarity),
            _batches(sp.key_grads[layer]),
            alpha=-1,
        ).view(*x.shape[:-1], -1)
        if layer < depth - 1:
            query_pre.append(z)
            x = F.gelu(z)
        else:
            x = z
    return OutputPass(x, coeff, query_inputs, query_pre, similarities)


@dataclass
class OutputGrads:
    d_q: torch.Tensor
    d_direct: list  # per layer, d of the chunk-start (W_l, S_l) (C, B, H, 2, d_in, d_out)
    d_keys: list  # per layer (d a_{l-1}, d g_l)
    d_coeff: torch.Tensor  # (C, B, H, n, n), not yet masked to the lower triangle
    d_read: torch.Tensor  # d (A, e) (C, B, H, n, 2)


def output_backward(out: OutputPass, sp: StatePass, gates: ChunkGates, d_y) -> OutputGrads:
    depth = len(sp.states)
    d_direct, d_keys = [None] * depth, [None] * depth
    d_coeff = d_read = None
    dz = d_y
    for layer in range(depth - 1, -1, -1):
        x, a, g = out.query_inputs[layer], sp.key_inputs[layer], sp.key_grads[layer]
        state, similarity = sp.states[layer], out.similarity[layer]
        rows = _state_rows(state)
        dz_b = _batches(dz)
        read = _batches(scaled_keys(x, gates.read))
        d_direct[layer] = torch.bmm(read.mT, dz_b).view(state.shape)
        d_g = negated_bmm(_batches(out.coeff * similarity).mT, dz_b).view(g.shape)
        d_read_x = torch.bmm(dz_b, rows.mT).view(*x.shape[:-1], 2, x.shape[-1])
        d_masked = negated_bmm(dz_b, _batches(g).mT).view(similarity.shape)  # d (C o x a^T)
        layer_d_read = dot_pair(d_read_x, x)
        layer_d_coeff = d_masked * similarity
        d_read = layer_d_read if d_read is None else d_read + layer_d_read
        d_coeff = layer_d_coeff if d_coeff is None else d_coeff + layer_d_coeff
        d_similarity = d_masked * out.coeff
        dx = combine_pair(d_read_x, gates.read) + d_similarity @ a
        d_keys[layer] = (d_similarity.mT @ x, d_g)
        dz = torch.ops.aten.gelu_backward(dx, out.query_pre[layer - 1]) if layer > 0 else dx
    return OutputGrads(dz, d_direct, d_keys, d_coeff, d_read)
