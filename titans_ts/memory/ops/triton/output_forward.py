"""Triton kernel of pass (c), the output pass, forward: one launch per layer for every chunk at once.

The maths and names are `chunked/output.py`'s. For each chunk and head, layer l reads
    z_l = A * (x W_l) + e * (x S_l) - (C o (x a_{l-1}^T)) g_l,   x_{l+1} = gelu(z_l)
from the chunk-start state (W_l, S_l), the chunk's key factors a_{l-1}, g_l, the coefficients C (n, n) and the
read weights (A, e) (n, 2). PyTorch builds [A x | e x], C o (x a^T) and both products as separate tensors in
memory; here a program holds them in registers and writes only what the backward reads: z, the similarity
x a^T, and gelu(z) (the next layer's input).
    output_layer_kernel  grid (tiles of D_out, chunks x B x H): the program's BD columns of z; the reduction
                         over D_in is walked in BK-wide tiles (D_in reaches the hidden width, 512), summing
                         x a^T, x W and x S in registers. Every program recomputes x a^T (n x n x D_in, small
                         beside its products); the first column tile writes it.
Operands enter `tl.dot` as in `state_forward.py` (DOT 0: fp32 "ieee"; 1 / 2: bf16 / fp16 with fp32 sums).
"""

from __future__ import annotations

import triton
import triton.language as tl

from titans_ts.memory.ops.triton.state_forward import gelu, load_tile, mm, operand, store_tile


@triton.jit
def output_layer_kernel(
    x_ptr,  # (P, CHUNK, D_IN): the layer's input, P = chunks x B x H
    a_ptr,  # (P, CHUNK, D_IN): the keys' input to the layer, a_{l-1}
    g_ptr,  # (P, CHUNK, D_OUT): the keys' gradient at the layer's output, g_l
    state_ptr,  # (P, 2, D_IN, D_OUT): W_l then S_l at the chunk's start
    coeff_ptr,  # (P, CHUNK, CHUNK): C
    read_ptr,  # (P, CHUNK, 2): (A, e)
    z_ptr,  # (P, CHUNK, D_OUT) out
    sim_ptr,  # (P, CHUNK, CHUNK) out
    act_ptr,  # (P, CHUNK, D_OUT) out: gelu(z), unless LAST
    D_IN: tl.constexpr,
    D_OUT: tl.constexpr,
    CHUNK: tl.constexpr,
    BN: tl.constexpr,
    BK: tl.constexpr,
    BD: tl.constexpr,
    LAST: tl.constexpr,
    DOT: tl.constexpr,
):
    column = tl.program_id(0) * BD
    p = tl.program_id(1).to(tl.int64)
    x_base, a_base = x_ptr + p * CHUNK * D_IN, a_ptr + p * CHUNK * D_IN
    w_base = state_ptr + p * 2 * D_IN * D_OUT
    s_base = w_base + D_IN * D_OUT
    similarity = tl.zeros((BN, BN), dtype=tl.float32)
    x_w = tl.zeros((BN, BD), dtype=tl.float32)
    x_s = tl.zeros((BN, BD), dtype=tl.float32)
    for k in range(0, D_IN, BK):
        x = operand(load_tile(x_base, 0, k, CHUNK, D_IN, BN, BK), DOT)
        a = operand(load_tile(a_base, 0, k, CHUNK, D_IN, BN, BK), DOT)
        similarity += mm(x, tl.trans(a), DOT)
        x_w += mm(x, operand(load_tile(w_base, k, column, D_IN, D_OUT, BK, BD), DOT), DOT)
        x_s += mm(x, operand(load_tile(s_base, k, column, D_IN, D_OUT, BK, BD), DOT), DOT)
    rows = tl.arange(0, BN)
    inside = rows < CHUNK
    keep = tl.load(read_ptr + p * CHUNK * 2 + rows * 2, mask=inside, other=0.0).to(tl.float32)
    carried = tl.load(read_ptr + p * CHUNK * 2 + rows * 2 + 1, mask=inside, other=0.0).to(tl.float32)
    masked = load_tile(coeff_ptr + p * CHUNK * CHUNK, 0, 0, CHUNK, CHUNK, BN, BN) * similarity
    g = load_tile(g_ptr + p * CHUNK * D_OUT, 0, column, CHUNK, D_OUT, BN, BD)
    z = keep[:, None] * x_w + carried[:, None] * x_s - mm(operand(masked, DOT), operand(g, DOT), DOT)
    store_tile(z_ptr + p * CHUNK * D_OUT, z, 0, column, CHUNK, D_OUT, BN, BD)
    if not LAST:
        store_tile(act_ptr + p * CHUNK * D_OUT, gelu(z), 0, column, CHUNK, D_OUT, BN, BD)
    if tl.program_id(0) == 0:
        store_tile(sim_ptr + p * CHUNK * CHUNK, similarity, 0, 0, CHUNK, CHUNK, BN, BN)
