"""Pass (c) of the chunked recurrence: every token's retrieval, for a block of chunks at once.

Token t of a chunk reads the memory after its own update; in the dual form, layer by layer (x_0 = q):
    z_l = (A x) W_l + (e x) S_l - (C o (x a_{l-1}^T)) g_l,   x_l = gelu(z_l), y = z_L
with W_l, S_l the chunk-start state and a, g the chunk's key factors from the state pass: three matmuls
accumulated into one result, and row scalings of the (narrow) layer input. Shapes are chunk-major:
(C, B, H, n, ...).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from titans_ts.memory.ops.chunk_gates import ChunkGates
from titans_ts.memory.ops.chunk_state import StatePass


@dataclass
class OutputPass:
    y: torch.Tensor  # (C, B, H, n, d_L)
    coeff: torch.Tensor  # C = G * theta' (C, B, H, n, n)
    query_inputs: list  # x_0 .. x_{L-1}
    query_pre: list  # z_1 .. z_{L-1} (the last layer's is y)
    similarity: list  # x_{l-1} a_{l-1}^T per layer (C, B, H, n, n)


def _t(x):
    return x.transpose(-1, -2)


def _flat(x):
    return x.reshape(-1, *x.shape[-2:])


def _retrieve(scaled_w, w, scaled_s, s, masked, g):
    """scaled_w @ w + scaled_s @ s - masked @ g, as chained fused multiply-adds."""
    shape = (*scaled_w.shape[:-1], w.shape[-1])
    z = torch.bmm(_flat(scaled_w), _flat(w))
    z = torch.baddbmm(z, _flat(scaled_s), _flat(s))
    z = torch.baddbmm(z, _flat(masked), _flat(g), alpha=-1)
    return z.view(shape)


def output_forward(q, sp: StatePass, gates: ChunkGates) -> OutputPass:
    coeff = gates.mixed * sp.theta[..., None, :]
    keep, mcoeff = gates.keep_prod[..., None], gates.momentum_coeff[..., None]
    depth = len(sp.weights)
    query_inputs, query_pre, similarities = [], [], []
    x = q
    for layer in range(depth):
        query_inputs.append(x)
        similarity = x @ _t(sp.key_inputs[layer])
        similarities.append(similarity)
        z = _retrieve(
            keep * x, sp.weights[layer], mcoeff * x, sp.momentum[layer], coeff * similarity, sp.key_grads[layer]
        )
        if layer < depth - 1:
            query_pre.append(z)
            x = F.gelu(z)
        else:
            x = z
    return OutputPass(x, coeff, query_inputs, query_pre, similarities)


@dataclass
class OutputGrads:
    d_q: torch.Tensor
    d_direct: list  # per layer (d W_l, d S_l) of the chunk-start states (C, B, H, d_in, d_out)
    d_keys: list  # per layer (d a_{l-1}, d g_l)
    d_coeff: torch.Tensor  # (C, B, H, n, n), not yet masked to the lower triangle
    d_keep_prod: torch.Tensor  # d A (C, B, H, n)
    d_momentum_coeff: torch.Tensor  # d e


def output_backward(out: OutputPass, sp: StatePass, gates: ChunkGates, d_y) -> OutputGrads:
    depth = len(sp.weights)
    keep, mcoeff = gates.keep_prod[..., None], gates.momentum_coeff[..., None]
    d_direct, d_keys = [None] * depth, [None] * depth
    d_coeff = d_keep = d_mcoeff = None
    dz = d_y
    for layer in range(depth - 1, -1, -1):
        x, a, g = out.query_inputs[layer], sp.key_inputs[layer], sp.key_grads[layer]
        w, s, similarity = sp.weights[layer], sp.momentum[layer], out.similarity[layer]
        d_direct[layer] = (_t(keep * x) @ dz, _t(mcoeff * x) @ dz)
        d_g = -(_t(out.coeff * similarity) @ dz)
        d_xw, d_xs = dz @ _t(w), dz @ _t(s)
        d_masked = dz @ _t(g)  # minus d (C o x a^T)
        layer_d_keep, layer_d_mcoeff = (d_xw * x).sum(-1), (d_xs * x).sum(-1)
        layer_d_coeff = -(d_masked * similarity)
        d_keep = layer_d_keep if d_keep is None else d_keep + layer_d_keep
        d_mcoeff = layer_d_mcoeff if d_mcoeff is None else d_mcoeff + layer_d_mcoeff
        d_coeff = layer_d_coeff if d_coeff is None else d_coeff + layer_d_coeff
        d_similarity = -(d_masked * out.coeff)
        dx = keep * d_xw + mcoeff * d_xs + d_similarity @ a
        d_keys[layer] = (_t(d_similarity) @ x, d_g)
        dz = torch.ops.aten.gelu_backward(dx, out.query_pre[layer - 1]) if layer > 0 else dx
    return OutputGrads(dz, d_direct, d_keys, d_coeff, d_keep, d_mcoeff)
