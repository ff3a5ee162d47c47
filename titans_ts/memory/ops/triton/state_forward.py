"""Triton kernels of pass (b), the sequential state pass, forward: two small launches per chunk.

The maths and names are `chunked/state.py`'s. For chunk c, from the chunk-start state U_l = (W_l, S_l):
    keys_kernel        grid (row blocks of the chunk, B*H): the keys through the memory, the last layer's
                       gradient g_L, the surprise norm ||u_i|| and theta'_i. Tokens are independent here,
                       so rows split across programs; the hidden width is walked in tiles, summing its
                       partial products in registers (no other program needs them).
    state_step_kernel  grid (tiles of the hidden width, or of D_out at depth 1, B*H): the rank-n update
                       U'_l = Mix U_l - X^T g_l on its tile, recomputing the tile's own key factors
                       (z_1, a_1, g_1 at depth 2) from g_L. Each program holds one column tile of W_1, S_1
                       and the matching row tile of W_2, S_2: the hidden state is sharded across programs
                       as ThunderKittens shards TTT-MLP's, and the only cross-tile quantities (z_L, and
                       the norm's |a_1|^2, |g_1|^2) were summed by keys_kernel.
The synchronisation is the launch boundary: keys_kernel of chunk c, then state_step_kernel of chunk c,
then chunk c + 1 (a grid barrier would need every program resident at once, which nothing guarantees).

Operands enter `tl.dot` as fp32 with "ieee" precision (DOT = 0, exact, for fp32 inputs) or as bf16 / fp16
(DOT = 1 / 2, tensor cores) with fp32 accumulation; the state is always fp32.
Every pointer is one chunk of a chunk-major tensor ((C, B, H, n, ...) sliced at c: (B*H, CHUNK, ...)).
Only shapes and flags are constexpr; the chunk's number of real tokens (the last may be partial) is not.
"""

from __future__ import annotations

import triton
import triton.language as tl

INV_SQRT_2 = tl.constexpr(0.7071067811865476)  # globals a @jit function reads must be constexpr
INV_SQRT_2PI = tl.constexpr(0.3989422804014327)
TINY = tl.constexpr(1.1754943508222875e-38)  # torch.finfo(float32).tiny: sqrt stays finite at 0


@triton.jit
def mm(a, b, DOT: tl.constexpr):
    """a @ b with fp32 accumulation: fp32 "ieee" operands (DOT 0), or bf16 (1) / fp16 (2) ones."""
    if DOT == 1:
        return tl.dot(a.to(tl.bfloat16), b.to(tl.bfloat16))
    elif DOT == 2:
        return tl.dot(a.to(tl.float16), b.to(tl.float16))
    else:
        return tl.dot(a, b, input_precision="ieee")


@triton.jit
def operand(x, DOT: tl.constexpr):
    """x in tl.dot's operand type: a tensor only ever used as a dot operand is kept in registers at that width."""
    if DOT == 1:
        return x.to(tl.bfloat16)
    elif DOT == 2:
        return x.to(tl.float16)
    else:
        return x


@triton.jit
def gelu(z):
    return 0.5 * z * (1.0 + tl.erf(z * INV_SQRT_2))


@triton.jit
def gelu_grad(z):
    return 0.5 * (1.0 + tl.erf(z * INV_SQRT_2)) + z * tl.exp(-0.5 * z * z) * INV_SQRT_2PI


@triton.jit
def load_tile(ptr, row, col, n_rows, n_cols, BR: tl.constexpr, BC: tl.constexpr):
    """The BR x BC tile at (row, col) of a row-major n_rows x n_cols matrix, zero outside it, as fp32."""
    rows, cols = row + tl.arange(0, BR), col + tl.arange(0, BC)
    mask = (rows[:, None] < n_rows) & (cols[None, :] < n_cols)
    return tl.load(ptr + rows[:, None] * n_cols + cols[None, :], mask=mask, other=0.0).to(tl.float32)


@triton.jit
def store_tile(ptr, value, row, col, n_rows, n_cols, BR: tl.constexpr, BC: tl.constexpr):
    rows, cols = row + tl.arange(0, BR), col + tl.arange(0, BC)
    mask = (rows[:, None] < n_rows) & (cols[None, :] < n_cols)
    tl.store(ptr + rows[:, None] * n_cols + cols[None, :], value.to(ptr.dtype.element_ty), mask=mask)


@triton.jit
def keys_kernel(
    k_ptr,  # (B*H, CHUNK, D_IN)
    v_ptr,  # (B*H, CHUNK, D_OUT)
    theta_ptr,  # (B*H, CHUNK)
    u1_ptr,  # layer 1's chunk-start (W, S): (B*H, 2, D_IN, HID)
    u2_ptr,  # layer 2's (B*H, 2, HID, D_OUT); unused at depth 1
    g_ptr,  # out: g_L (B*H, CHUNK, D_OUT)
    theta_out_ptr,  # out: theta' (B*H, CHUNK)
    norm_ptr,  # out: ||u|| (B*H, CHUNK), with CLIP
    scale_ptr,  # out: min(1, max_norm / ||u||), with CLIP
    n_real,
    max_norm,
    DEPTH: tl.constexpr,
    CLIP: tl.constexpr,
    D_IN: tl.constexpr,
    HID: tl.constexpr,
    D_OUT: tl.constexpr,
    CHUNK: tl.constexpr,
    BR: tl.constexpr,
    BD_IN: tl.constexpr,
    BH: tl.constexpr,
    BD_OUT: tl.constexpr,
    DOT: tl.constexpr,
):
    block, bh = tl.program_id(0), tl.program_id(1).to(tl.int64)
    first = block * BR
    rows = first + tl.arange(0, BR)
    end = n_real
    k = load_tile(k_ptr + bh * CHUNK * D_IN, first, 0, end, D_IN, BR, BD_IN)
    v = load_tile(v_ptr + bh * CHUNK * D_OUT, first, 0, end, D_OUT, BR, BD_OUT)
    w1 = u1_ptr + bh * 2 * D_IN * HID
    square_g = tl.zeros([BR], dtype=tl.float32)  # |g_1|^2 (|g_L|^2 at depth 1)
    if DEPTH == 1:
        for j in range(0, BD_OUT, BH):
            z = mm(k, load_tile(w1, 0, j, D_IN, D_OUT, BD_IN, BH), DOT)
            g = 2.0 * (z - load_tile(v_ptr + bh * CHUNK * D_OUT, first, j, end, D_OUT, BR, BH))
            store_tile(g_ptr + bh * CHUNK * D_OUT, g, first, j, end, D_OUT, BR, BH)
            square_g += tl.sum(g * g, axis=1)
        square = tl.sum(k * k, axis=1) * square_g
    else:
        w2 = u2_ptr + bh * 2 * HID * D_OUT
        z2 = tl.zeros([BR, BD_OUT], dtype=tl.float32)
        square_a1 = tl.zeros([BR], dtype=tl.float32)
        for j in range(0, HID, BH):
            a1 = gelu(mm(k, load_tile(w1, 0, j, D_IN, HID, BD_IN, BH), DOT))
            square_a1 += tl.sum(a1 * a1, axis=1)
            z2 += mm(a1, load_tile(w2, j, 0, HID, D_OUT, BH, BD_OUT), DOT)
        g2 = 2.0 * (z2 - v)
        store_tile(g_ptr + bh * CHUNK * D_OUT, g2, first, 0, end, D_OUT, BR, BD_OUT)
        if CLIP:
            for j in range(0, HID, BH):
                z1 = mm(k, load_tile(w1, 0, j, D_IN, HID, BD_IN, BH), DOT)
                w2_rows = load_tile(w2, j, 0, HID, D_OUT, BH, BD_OUT)
                g1 = mm(g2, tl.trans(w2_rows), DOT) * gelu_grad(z1)
                square_g += tl.sum(g1 * g1, axis=1)
        square = tl.sum(k * k, axis=1) * square_g + square_a1 * tl.sum(g2 * g2, axis=1)
    # Padding rows (past the last real token) are written too: theta' = 0 there, and a finite norm
    # (sqrt(TINY) from zero keys) that the backward's bound reads as "not clipped".
    theta = tl.load(theta_ptr + bh * CHUNK + rows, mask=rows < end, other=0.0).to(tl.float32)
    if CLIP:
        norm = tl.sqrt(square + TINY)
        scale = tl.minimum(max_norm / norm, 1.0)
        theta = theta * scale
        tl.store(norm_ptr + bh * CHUNK + rows, norm)
        tl.store(scale_ptr + bh * CHUNK + rows, scale)
    tl.store(theta_out_ptr + bh * CHUNK + rows, theta)


@triton.jit
def state_step_kernel(
    k_ptr,  # (B*H, CHUNK, D_IN)
    g_ptr,  # g_L from keys_kernel (B*H, CHUNK, D_OUT)
    theta_ptr,  # theta' from keys_kernel (B*H, CHUNK)
    rows_ptr,  # (G[last, :], P[last, :]) of this chunk: (B*H, CHUNK, 2)
    mix_ptr,  # [[A, e], [0, E]] at the chunk's last token: (B*H, 2, 2)
    u1_ptr,  # layer 1's chunk-start (W, S): (B*H, 2, D_IN, HID)
    u2_ptr,  # layer 2's (B*H, 2, HID, D_OUT); unused at depth 1
    next1_ptr,  # out: layer 1's state after the chunk
    next2_ptr,  # out: layer 2's
    n_real,
    DEPTH: tl.constexpr,
    LAYER: tl.constexpr,
    D_IN: tl.constexpr,
    HID: tl.constexpr,
    D_OUT: tl.constexpr,
    CHUNK: tl.constexpr,
    RB: tl.constexpr,
    BD_IN: tl.constexpr,
    BH: tl.constexpr,
    BD_OUT: tl.constexpr,
    DOT: tl.constexpr,
):
    """One tile of U' = Mix U - X^T g. Program (j, bh): columns j..j+BH of W_1, S_1 (LAYER 0), or at depth 2
    rows j..j+BH of W_2, S_2 (LAYER 1, its own launch): each program holds one pair of state tiles, and
    the rank-n product is summed over row blocks of RB tokens, so none holds a whole chunk of keys."""
    j, bh = tl.program_id(0) * BH, tl.program_id(1).to(tl.int64)
    second_layer: tl.constexpr = LAYER == 1
    width = D_OUT if DEPTH == 1 else HID  # the columns of W_1
    w1 = u1_ptr + bh * 2 * D_IN * width
    w2 = u2_ptr + bh * 2 * HID * D_OUT
    k_base, g_base = k_ptr + bh * CHUNK * D_IN, g_ptr + bh * CHUNK * D_OUT
    if DEPTH == 2:
        weights1 = load_tile(w1, 0, j, D_IN, HID, BD_IN, BH)  # for z_1 = k W_1 on this tile
        weights2_t = tl.trans(load_tile(w2, j, 0, HID, D_OUT, BH, BD_OUT))  # for r_1 = g_2 W_2^T
    if second_layer:
        to_weights = tl.zeros([BH, BD_OUT], dtype=tl.float32)
        to_momentum = tl.zeros([BH, BD_OUT], dtype=tl.float32)
    else:
        to_weights = tl.zeros([BD_IN, BH], dtype=tl.float32)
        to_momentum = tl.zeros([BD_IN, BH], dtype=tl.float32)
    for r in range(0, CHUNK, RB):
        rows = r + tl.arange(0, RB)
        theta = tl.load(theta_ptr + bh * CHUNK + rows, mask=rows < n_real, other=0.0)
        coeff = tl.load(rows_ptr + bh * CHUNK * 2 + rows * 2) * theta  # c = G[last, :] theta'
        carry = tl.load(rows_ptr + bh * CHUNK * 2 + rows * 2 + 1) * theta  # p = P[last, :] theta'
        k = operand(load_tile(k_base, r, 0, n_real, D_IN, RB, BD_IN), DOT)
        if DEPTH == 1:
            x_t, g = tl.trans(k), load_tile(g_base, r, j, n_real, D_OUT, RB, BH)
        else:
            g2 = load_tile(g_base, r, 0, n_real, D_OUT, RB, BD_OUT)
            z1 = mm(k, weights1, DOT)
            if second_layer:
                x_t, g = operand(tl.trans(gelu(z1)), DOT), g2
            else:
                x_t, g = tl.trans(k), mm(g2, weights2_t, DOT) * gelu_grad(z1)
        to_weights += mm(x_t, coeff[:, None] * g, DOT)
        to_momentum += mm(x_t, carry[:, None] * g, DOT)
    keep, mcoeff, eta = tl.load(mix_ptr + bh * 4), tl.load(mix_ptr + bh * 4 + 1), tl.load(mix_ptr + bh * 4 + 3)
    if second_layer:
        step_tile(w2, u2_next(next2_ptr, bh, HID, D_OUT), to_weights, to_momentum, keep, mcoeff, eta,
                  j, 0, HID, D_OUT, BH, BD_OUT)  # fmt: skip
    else:
        step_tile(w1, next1_ptr + bh * 2 * D_IN * width, to_weights, to_momentum, keep, mcoeff, eta,
                  0, j, D_IN, width, BD_IN, BH)  # fmt: skip


@triton.jit
def u2_next(next2_ptr, bh, HID: tl.constexpr, D_OUT: tl.constexpr):
    return next2_ptr + bh * 2 * HID * D_OUT


@triton.jit
def step_tile(u_ptr, next_ptr, to_weights, to_momentum, keep, mcoeff, eta, row, col, n_rows, n_cols,
              BR: tl.constexpr, BC: tl.constexpr):  # fmt: skip
    """W' = A W + e S - to_weights, S' = E S - to_momentum on one tile; (W, S) stacked, n_rows x n_cols each."""
    size = n_rows * n_cols
    momentum = load_tile(u_ptr + size, row, col, n_rows, n_cols, BR, BC)
    weights = load_tile(u_ptr, row, col, n_rows, n_cols, BR, BC)
    store_tile(next_ptr, keep * weights + mcoeff * momentum - to_weights, row, col, n_rows, n_cols, BR, BC)
    store_tile(next_ptr + size, eta * momentum - to_momentum, row, col, n_rows, n_cols, BR, BC)
