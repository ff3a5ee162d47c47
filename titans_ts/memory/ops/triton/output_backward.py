"""Triton kernels of pass (c), the output pass, backward: three launches per layer for every chunk at once.

The maths and names are `chunked/output.py`'s `output_backward`. For each chunk and head, layer l read
    z = A * (x W) + e * (x S) - (C o (x a^T)) g
with x the layer's input, a, g the chunk's key factors, (W, S) the chunk-start state, C the coefficients
and (A, e) the read weights. From dz (the gradient of z):
    d_masked = -dz g^T                          (n x n; d of C o (x a^T))
    dW = (A x)^T dz,  dS = (e x)^T dz           (the chunk-start state's gradient)
    d_read = (sum_k (dz W^T) o x, sum_k (dz S^T) o x)
    dx = A (dz W^T) + e (dz S^T) + (d_masked o C) a,   then gelu'(z_prev) * dx below the first layer
    d_a = (d_masked o C)^T x,   d_coeff += d_masked o (x a^T),   d_g = -(C o x a^T)^T dz
    similarity_grads_kernel  grid (chunks x B x H,): d_masked, walking D_out in BD-wide tiles; writes
                        d_sim = d_masked o C for the next kernel and adds d_masked o (x a^T) to d_coeff.
                        (Summed inside the next kernel, d_masked beside dz W^T and dz S^T spilled 200 bytes
                        at fp32 operands, chunk 64.)
    input_side_kernel   grid (tiles of D_in, chunks x B x H): the program's BK columns of dx and d_a; D_out is
                        walked in BD-wide tiles, summing dz W^T and dz S^T in registers. Its share of d_read (a
                        sum over D_in) goes to its own slot of a (tiles, n, 2) buffer that the glue sums: no
                        atomics, the same numbers every run.
    output_side_kernel  grid (tiles of D_out, chunks x B x H): d_g's BD columns and the same columns of dW, dS,
                        walking D_in. (In the first kernel dW and dS pushed sm_80 past 255 registers.)
Operands enter `tl.dot` as in `state_forward.py` (DOT 0: fp32 "ieee"; 1 / 2: bf16 / fp16 with fp32 sums).
"""

from __future__ import annotations

import triton
import triton.language as tl

from titans_ts.memory.ops.triton.state_forward import gelu_grad, load_tile, mm, operand, store_tile


@triton.jit
def similarity_grads_kernel(
    dz_ptr,  # (P, CHUNK, D_OUT): d z, P = chunks x B x H
    g_ptr,  # (P, CHUNK, D_OUT): the keys' gradient at the layer's output
    coeff_ptr,  # (P, CHUNK, CHUNK): C
    sim_ptr,  # (P, CHUNK, CHUNK): x a^T, as the forward saved it
    d_sim_ptr,  # (P, CHUNK, CHUNK) out: d (x a^T) = d_masked o C
    d_coeff_ptr,  # (P, CHUNK, CHUNK) out: d_masked o (x a^T) (added to with ACCUMULATE)
    D_OUT: tl.constexpr,
    CHUNK: tl.constexpr,
    BN: tl.constexpr,
    BD: tl.constexpr,
    ACCUMULATE: tl.constexpr,
    DOT: tl.constexpr,
):
    p = tl.program_id(0).to(tl.int64)
    dz_base, g_base = dz_ptr + p * CHUNK * D_OUT, g_ptr + p * CHUNK * D_OUT
    d_masked = tl.zeros((BN, BN), dtype=tl.float32)
    for d in range(0, D_OUT, BD):
        dz = operand(load_tile(dz_base, 0, d, CHUNK, D_OUT, BN, BD), DOT)
        d_masked -= mm(dz, operand(tl.trans(load_tile(g_base, 0, d, CHUNK, D_OUT, BN, BD)), DOT), DOT)
    square = p * CHUNK * CHUNK
    d_sim = d_masked * load_tile(coeff_ptr + square, 0, 0, CHUNK, CHUNK, BN, BN)
    store_tile(d_sim_ptr + square, d_sim, 0, 0, CHUNK, CHUNK, BN, BN)
    d_coeff = d_masked * load_tile(sim_ptr + square, 0, 0, CHUNK, CHUNK, BN, BN)
    if ACCUMULATE:
        d_coeff += load_tile(d_coeff_ptr + square, 0, 0, CHUNK, CHUNK, BN, BN)
    store_tile(d_coeff_ptr + square, d_coeff, 0, 0, CHUNK, CHUNK, BN, BN)


@triton.jit
def input_side_kernel(
    dz_ptr,  # (P, CHUNK, D_OUT): d z, P = chunks x B x H
    x_ptr,  # (P, CHUNK, D_IN): the layer's input
    a_ptr,  # (P, CHUNK, D_IN): the keys' input to the layer
    state_ptr,  # (P, 2, D_IN, D_OUT): W then S at the chunk's start
    d_sim_ptr,  # (P, CHUNK, CHUNK): d (x a^T), from similarity_grads_kernel
    read_ptr,  # (P, CHUNK, 2): (A, e)
    pre_ptr,  # (P, CHUNK, D_IN): the previous layer's z (the gelu's input), unless FIRST
    dx_ptr,  # (P, CHUNK, D_IN) out: d x, or d z_prev below the first layer
    d_a_ptr,  # (P, CHUNK, D_IN) out
    d_read_ptr,  # (P, TILES, CHUNK, 2) out: this program's share of d (A, e)
    D_IN: tl.constexpr,
    D_OUT: tl.constexpr,
    CHUNK: tl.constexpr,
    TILES: tl.constexpr,
    BN: tl.constexpr,
    BK: tl.constexpr,
    BD: tl.constexpr,
    FIRST: tl.constexpr,
    DOT: tl.constexpr,
):
    tile = tl.program_id(0)
    k = tile * BK
    p = tl.program_id(1).to(tl.int64)
    rows = tl.arange(0, BN)
    inside = rows < CHUNK
    keep = tl.load(read_ptr + p * CHUNK * 2 + rows * 2, mask=inside, other=0.0).to(tl.float32)
    carried = tl.load(read_ptr + p * CHUNK * 2 + rows * 2 + 1, mask=inside, other=0.0).to(tl.float32)
    x = load_tile(x_ptr + p * CHUNK * D_IN, 0, k, CHUNK, D_IN, BN, BK)
    dz_base = dz_ptr + p * CHUNK * D_OUT
    w_base = state_ptr + p * 2 * D_IN * D_OUT
    s_base = w_base + D_IN * D_OUT
    dz_w = tl.zeros((BN, BK), dtype=tl.float32)
    dz_s = tl.zeros((BN, BK), dtype=tl.float32)
    for d in range(0, D_OUT, BD):
        dz = operand(load_tile(dz_base, 0, d, CHUNK, D_OUT, BN, BD), DOT)
        dz_w += mm(dz, operand(tl.trans(load_tile(w_base, k, d, D_IN, D_OUT, BK, BD)), DOT), DOT)
        dz_s += mm(dz, operand(tl.trans(load_tile(s_base, k, d, D_IN, D_OUT, BK, BD)), DOT), DOT)
    read_base = d_read_ptr + (p * TILES + tile) * CHUNK * 2
    tl.store(read_base + rows * 2, tl.sum(dz_w * x, axis=1), mask=inside)
    tl.store(read_base + rows * 2 + 1, tl.sum(dz_s * x, axis=1), mask=inside)
    d_sim = load_tile(d_sim_ptr + p * CHUNK * CHUNK, 0, 0, CHUNK, CHUNK, BN, BN)
    a = operand(load_tile(a_ptr + p * CHUNK * D_IN, 0, k, CHUNK, D_IN, BN, BK), DOT)
    dx = keep[:, None] * dz_w + carried[:, None] * dz_s + mm(operand(d_sim, DOT), a, DOT)
    if not FIRST:
        dx = dx * gelu_grad(load_tile(pre_ptr + p * CHUNK * D_IN, 0, k, CHUNK, D_IN, BN, BK))
    store_tile(dx_ptr + p * CHUNK * D_IN, dx, 0, k, CHUNK, D_IN, BN, BK)
    d_a = mm(operand(tl.trans(d_sim), DOT), operand(x, DOT), DOT)
    store_tile(d_a_ptr + p * CHUNK * D_IN, d_a, 0, k, CHUNK, D_IN, BN, BK)


@triton.jit
def output_side_kernel(
    dz_ptr,  # (P, CHUNK, D_OUT)
    x_ptr,  # (P, CHUNK, D_IN)
    coeff_ptr,  # (P, CHUNK, CHUNK): C
    sim_ptr,  # (P, CHUNK, CHUNK): x a^T
    read_ptr,  # (P, CHUNK, 2): (A, e)
    d_g_ptr,  # (P, CHUNK, D_OUT) out
    d_state_ptr,  # (P, 2, D_IN, D_OUT) out
    D_IN: tl.constexpr,
    D_OUT: tl.constexpr,
    CHUNK: tl.constexpr,
    BN: tl.constexpr,
    BK: tl.constexpr,
    BD: tl.constexpr,
    DOT: tl.constexpr,
):
    column = tl.program_id(0) * BD
    p = tl.program_id(1).to(tl.int64)
    rows = tl.arange(0, BN)
    inside = rows < CHUNK
    dz = operand(load_tile(dz_ptr + p * CHUNK * D_OUT, 0, column, CHUNK, D_OUT, BN, BD), DOT)
    masked = load_tile(coeff_ptr + p * CHUNK * CHUNK, 0, 0, CHUNK, CHUNK, BN, BN)
    masked *= load_tile(sim_ptr + p * CHUNK * CHUNK, 0, 0, CHUNK, CHUNK, BN, BN)
    d_g = -mm(operand(tl.trans(masked), DOT), dz, DOT)
    store_tile(d_g_ptr + p * CHUNK * D_OUT, d_g, 0, column, CHUNK, D_OUT, BN, BD)
    keep = tl.load(read_ptr + p * CHUNK * 2 + rows * 2, mask=inside, other=0.0).to(tl.float32)
    carried = tl.load(read_ptr + p * CHUNK * 2 + rows * 2 + 1, mask=inside, other=0.0).to(tl.float32)
    dw_base = d_state_ptr + p * 2 * D_IN * D_OUT
    ds_base = dw_base + D_IN * D_OUT
    for k in range(0, D_IN, BK):
        x = load_tile(x_ptr + p * CHUNK * D_IN, 0, k, CHUNK, D_IN, BN, BK)
        store_tile(dw_base, mm(operand(tl.trans(keep[:, None] * x), DOT), dz, DOT), k, column, D_IN, D_OUT, BK, BD)
        store_tile(ds_base, mm(operand(tl.trans(carried[:, None] * x), DOT), dz, DOT), k, column, D_IN, D_OUT, BK, BD)
