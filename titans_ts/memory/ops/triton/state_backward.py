"""Triton kernels of pass (b) backward: the reverse walk over chunks carrying dU = (dW_l, dS_l).

The maths and names are those of `chunked/state.py`'s `state_backward`. For chunk c (last first), with
dU' the gradient of the state after it, the output pass's gradients d_direct, (d a, d g) and d theta' already known:
    keys_backward_kernel_{1,2}  grid (row blocks, B*H): per token, the state step's chain rule into the
                  keys' factors (d g_l -= c a dW' + p a dS', d a_l += c d_x + p d_x_s with d_x = -g dW'^T),
                  the gradient of theta' and of the surprise bound, then the keys' own backward (through
                  g_L = 2 (z_L - v), g_1 = (g_2 W_2^T) gelu'(z_1), a_1 = gelu(z_1)): d k, d v, d theta, and
                  the pre-activation gradients the weights need (d_pre per layer, and d_back at depth 2).
                  Sums over the hidden width are walked in tiles inside the program (three passes at
                  depth 2: the bound's factor needs every tile's d_x first).
    state_backward_kernel  grid (tiles, B*H), one launch per layer as in the forward:
                  dU = d_direct + Mix^T dU' + (the keys' weight gradients: k^T d_pre_1; d_back^T g_2 +
                  a_1^T d_pre_2), and this tile's share of d Mix.
The saved forward factors (a_l, z_l, g_l, r_l, |a|^2, |g|^2) are read from memory, not recomputed.
"""

from __future__ import annotations

import triton
import triton.language as tl

from titans_ts.memory.ops.triton.state_forward import (
    INV_SQRT_2PI,
    gelu_grad,
    load_tile,
    mm,
    operand,
    store_tile,
)


@triton.jit
def gelu_second(z):
    return tl.exp(-0.5 * z * z) * INV_SQRT_2PI * (2.0 - z * z)


@triton.jit
def load_rows(ptr, rows, n_real):
    return tl.load(ptr + rows, mask=rows < n_real, other=0.0).to(tl.float32)


@triton.jit
def bound_backward(d_th, theta_ptr, norm_ptr, scale_ptr, rows, n_real, max_norm, CLIP: tl.constexpr):
    """(d theta, factor) for theta' = theta min(1, c / ||u||): factor = d||u|| / ||u||, which the keys'
    factors receive as factor |g|^2 a and factor |a|^2 g."""
    if CLIP:
        theta = load_rows(theta_ptr, rows, n_real)
        norm = tl.load(norm_ptr + rows)
        scale = tl.load(scale_ptr + rows)
        clipped = (max_norm / norm) <= 1.0
        d_norm = tl.where(clipped, -d_th * theta * max_norm / (norm * norm), 0.0)
        return d_th * scale, d_norm / norm
    else:
        return d_th, d_th * 0.0


@triton.jit
def keys_backward_kernel_1(
    k_ptr,  # a_0 (B*H, CHUNK, D_IN)
    g_ptr,  # g_1 (B*H, CHUNK, D_OUT)
    u_ptr,  # chunk-start (W, S) (B*H, 2, D_IN, D_OUT)
    du_next_ptr,  # dU' (B*H, 2, D_IN, D_OUT)
    dk_in_ptr,  # from the output pass: d a_0 (B*H, CHUNK, D_IN)
    dg_in_ptr,  # d g_1 (B*H, CHUNK, D_OUT)
    dtheta_in_ptr,  # d theta' (B*H, CHUNK)
    gate_rows_ptr,  # (G[last, :], P[last, :]) (B*H, CHUNK, 2)
    theta_ptr,  # raw theta (B*H, CHUNK)
    theta_p_ptr,  # theta'
    norm_ptr,
    scale_ptr,
    dk_ptr,  # out: d k
    dv_ptr,  # out: d v
    dtheta_ptr,  # out: d theta (raw)
    dscales_ptr,  # out: d (c, p) per token (B*H, CHUNK, 2)
    dpre_ptr,  # out: d z_1 (B*H, CHUNK, D_OUT), for the weights' gradient
    n_real,
    max_norm,
    CLIP: tl.constexpr,
    D_IN: tl.constexpr,
    D_OUT: tl.constexpr,
    CHUNK: tl.constexpr,
    BR: tl.constexpr,
    BD_IN: tl.constexpr,
    BH: tl.constexpr,
    DOT: tl.constexpr,
):
    block, bh = tl.program_id(0), tl.program_id(1).to(tl.int64)
    first = block * BR
    rows = first + tl.arange(0, BR)
    seq, inputs, outputs = bh * CHUNK, bh * CHUNK * D_IN, bh * CHUNK * D_OUT
    u, du = u_ptr + bh * 2 * D_IN * D_OUT, du_next_ptr + bh * 2 * D_IN * D_OUT
    size = D_IN * D_OUT
    k = load_tile(k_ptr + inputs, first, 0, n_real, D_IN, BR, BD_IN)
    theta_p = load_rows(theta_p_ptr + seq, rows, n_real)
    g_row = tl.load(gate_rows_ptr + (seq + rows) * 2)
    p_row = tl.load(gate_rows_ptr + (seq + rows) * 2 + 1)
    coeff, carry = g_row * theta_p, p_row * theta_p

    # d_x = -g dU'^T for the W and S halves, summed over the D_out tiles.
    d_xw = tl.zeros([BR, BD_IN], dtype=tl.float32)
    d_xs = tl.zeros([BR, BD_IN], dtype=tl.float32)
    square_g = tl.zeros([BR], dtype=tl.float32)
    for j in range(0, D_OUT, BH):
        g = load_tile(g_ptr + outputs, first, j, n_real, D_OUT, BR, BH)
        square_g += tl.sum(g * g, axis=1)
        d_xw -= mm(g, tl.trans(load_tile(du, 0, j, D_IN, D_OUT, BD_IN, BH)), DOT)
        d_xs -= mm(g, tl.trans(load_tile(du + size, 0, j, D_IN, D_OUT, BD_IN, BH)), DOT)
    d_c = tl.sum(d_xw * k, axis=1)
    d_p = tl.sum(d_xs * k, axis=1)
    tl.store(dscales_ptr + (seq + rows) * 2, d_c)
    tl.store(dscales_ptr + (seq + rows) * 2 + 1, d_p)
    d_th = tl.load(dtheta_in_ptr + seq + rows) + d_c * g_row + d_p * p_row
    d_theta, factor = bound_backward(
        d_th, theta_ptr + seq, norm_ptr + seq, scale_ptr + seq, rows, n_real, max_norm, CLIP
    )
    tl.store(dtheta_ptr + seq + rows, d_theta)

    # The keys: g = 2 (k W - v): d z = 2 d g, d v = -2 d g, d k += d z W^T.
    square_k = tl.sum(k * k, axis=1)
    d_k = load_tile(dk_in_ptr + inputs, first, 0, n_real, D_IN, BR, BD_IN)
    d_k += coeff[:, None] * d_xw + carry[:, None] * d_xs + (factor * square_g)[:, None] * k
    ck, pk = operand(coeff[:, None] * k, DOT), operand(carry[:, None] * k, DOT)
    for j in range(0, D_OUT, BH):
        g = load_tile(g_ptr + outputs, first, j, n_real, D_OUT, BR, BH)
        d_g = load_tile(dg_in_ptr + outputs, first, j, n_real, D_OUT, BR, BH) + (factor * square_k)[:, None] * g
        d_g -= mm(ck, load_tile(du, 0, j, D_IN, D_OUT, BD_IN, BH), DOT)
        d_g -= mm(pk, load_tile(du + size, 0, j, D_IN, D_OUT, BD_IN, BH), DOT)
        store_tile(dpre_ptr + outputs, 2.0 * d_g, first, j, CHUNK, D_OUT, BR, BH)
        store_tile(dv_ptr + outputs, -2.0 * d_g, first, j, n_real, D_OUT, BR, BH)
        d_k += mm(2.0 * d_g, tl.trans(load_tile(u, 0, j, D_IN, D_OUT, BD_IN, BH)), DOT)
    store_tile(dk_ptr + inputs, d_k, first, 0, n_real, D_IN, BR, BD_IN)


@triton.jit
def keys_backward_kernel_2(
    k_ptr,  # a_0 (B*H, CHUNK, D_IN)
    a1_ptr,  # a_1 = gelu(z_1) (B*H, CHUNK, HID)
    z1_ptr,  # z_1
    g1_ptr,  # g_1
    r1_ptr,  # r_1 = g_2 W_2^T
    g2_ptr,  # g_2 (B*H, CHUNK, D_OUT)
    sq_a1_ptr,  # |a_1|^2 per token (B*H, CHUNK)
    sq_g1_ptr,  # |g_1|^2
    u1_ptr,  # chunk-start (W_1, S_1) (B*H, 2, D_IN, HID)
    u2_ptr,  # (W_2, S_2) (B*H, 2, HID, D_OUT)
    du1_ptr,  # dU_1' (B*H, 2, D_IN, HID)
    du2_ptr,  # dU_2' (B*H, 2, HID, D_OUT)
    dk_in_ptr,  # from the output pass: d a_0, d g_1, d a_1, d g_2
    dg1_in_ptr,
    da1_in_ptr,
    dg2_in_ptr,
    dtheta_in_ptr,  # d theta'
    gate_rows_ptr,  # (G[last, :], P[last, :]) (B*H, CHUNK, 2)
    theta_ptr,
    theta_p_ptr,
    norm_ptr,
    scale_ptr,
    dk_ptr,  # out: d k
    dv_ptr,  # out: d v
    dtheta_ptr,  # out: d theta (raw)
    dscales_ptr,  # out: d (c, p) (B*H, CHUNK, 2)
    dpre1_ptr,  # out: d z_1 (B*H, CHUNK, HID)
    dback_ptr,  # out: d r_1 gelu'(z_1) (B*H, CHUNK, HID), for W_2's gradient through g_1
    dpre2_ptr,  # out: d z_2 (B*H, CHUNK, D_OUT)
    n_real,
    max_norm,
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
    seq, ins, hids, outs = bh * CHUNK, bh * CHUNK * D_IN, bh * CHUNK * HID, bh * CHUNK * D_OUT
    u1, u2 = u1_ptr + bh * 2 * D_IN * HID, u2_ptr + bh * 2 * HID * D_OUT
    du1, du2 = du1_ptr + bh * 2 * D_IN * HID, du2_ptr + bh * 2 * HID * D_OUT
    size1, size2 = D_IN * HID, HID * D_OUT
    k = load_tile(k_ptr + ins, first, 0, n_real, D_IN, BR, BD_IN)
    g2 = load_tile(g2_ptr + outs, first, 0, n_real, D_OUT, BR, BD_OUT)
    theta_p = load_rows(theta_p_ptr + seq, rows, n_real)
    g_row = tl.load(gate_rows_ptr + (seq + rows) * 2)
    p_row = tl.load(gate_rows_ptr + (seq + rows) * 2 + 1)
    coeff, carry = g_row * theta_p, p_row * theta_p

    # Pass 1 over the hidden tiles: the state step's d_x (layer 1: summed into D_IN columns; layer 2:
    # per tile), d (c, p), and layer 2's d g_2 from the step.
    d_xw1 = tl.zeros([BR, BD_IN], dtype=tl.float32)
    d_xs1 = tl.zeros([BR, BD_IN], dtype=tl.float32)
    d_g2 = tl.zeros([BR, BD_OUT], dtype=tl.float32)
    d_c = tl.zeros([BR], dtype=tl.float32)
    d_p = tl.zeros([BR], dtype=tl.float32)
    for j in range(0, HID, BH):  # layer 1's step (two loops: fewer tiles live at once)
        g1 = load_tile(g1_ptr + hids, first, j, n_real, HID, BR, BH)
        d_xw1 -= mm(g1, tl.trans(load_tile(du1, 0, j, D_IN, HID, BD_IN, BH)), DOT)
        d_xs1 -= mm(g1, tl.trans(load_tile(du1 + size1, 0, j, D_IN, HID, BD_IN, BH)), DOT)
    for j in range(0, HID, BH):  # layer 2's; its d a_1 share goes to the d z_1 scratch, read in pass 2
        a1 = load_tile(a1_ptr + hids, first, j, n_real, HID, BR, BH)
        dw2_next = load_tile(du2, j, 0, HID, D_OUT, BH, BD_OUT)
        ds2_next = load_tile(du2 + size2, j, 0, HID, D_OUT, BH, BD_OUT)
        d_g2 -= mm(coeff[:, None] * a1, dw2_next, DOT) + mm(carry[:, None] * a1, ds2_next, DOT)
        d_xw2 = -mm(g2, tl.trans(dw2_next), DOT)
        d_xs2 = -mm(g2, tl.trans(ds2_next), DOT)
        d_c += tl.sum(d_xw2 * a1, axis=1)
        d_p += tl.sum(d_xs2 * a1, axis=1)
        store_tile(dpre1_ptr + hids, coeff[:, None] * d_xw2 + carry[:, None] * d_xs2, first, j, CHUNK, HID, BR, BH)
    d_c += tl.sum(d_xw1 * k, axis=1)
    d_p += tl.sum(d_xs1 * k, axis=1)
    tl.store(dscales_ptr + (seq + rows) * 2, d_c)
    tl.store(dscales_ptr + (seq + rows) * 2 + 1, d_p)
    d_th = tl.load(dtheta_in_ptr + seq + rows) + d_c * g_row + d_p * p_row
    d_theta, factor = bound_backward(
        d_th, theta_ptr + seq, norm_ptr + seq, scale_ptr + seq, rows, n_real, max_norm, CLIP
    )
    tl.store(dtheta_ptr + seq + rows, d_theta)
    square_k, square_g2 = tl.sum(k * k, axis=1), tl.sum(g2 * g2, axis=1)
    square_a1 = load_rows(sq_a1_ptr + seq, rows, n_real)
    square_g1 = load_rows(sq_g1_ptr + seq, rows, n_real)
    d_k = load_tile(dk_in_ptr + ins, first, 0, n_real, D_IN, BR, BD_IN)
    d_k += coeff[:, None] * d_xw1 + carry[:, None] * d_xs1 + (factor * square_g1)[:, None] * k

    # Pass 2: d g_1 per tile, and through g_1 = r_1 gelu'(z_1), r_1 = g_2 W_2^T, into d g_2; d z_1 but for
    # the term through d_pre_2 (not known yet) back to the scratch. The barriers make one thread's stores
    # visible to the others of the program, which read them back.
    tl.debug_barrier()
    ck, pk = operand(coeff[:, None] * k, DOT), operand(carry[:, None] * k, DOT)
    for j in range(0, HID, BH):
        g1 = load_tile(g1_ptr + hids, first, j, n_real, HID, BR, BH)
        z1 = load_tile(z1_ptr + hids, first, j, n_real, HID, BR, BH)
        d_g1 = load_tile(dg1_in_ptr + hids, first, j, n_real, HID, BR, BH) + (factor * square_k)[:, None] * g1
        d_g1 -= mm(ck, load_tile(du1, 0, j, D_IN, HID, BD_IN, BH), DOT)
        d_g1 -= mm(pk, load_tile(du1 + size1, 0, j, D_IN, HID, BD_IN, BH), DOT)
        d_back = d_g1 * gelu_grad(z1)
        store_tile(dback_ptr + hids, d_back, first, j, CHUNK, HID, BR, BH)
        d_g2 += mm(d_back, load_tile(u2, j, 0, HID, D_OUT, BH, BD_OUT), DOT)
        a1 = load_tile(a1_ptr + hids, first, j, n_real, HID, BR, BH)
        d_a1 = load_tile(da1_in_ptr + hids, first, j, n_real, HID, BR, BH) + (factor * square_g2)[:, None] * a1
        d_a1 += load_tile(dpre1_ptr + hids, first, j, CHUNK, HID, BR, BH)  # pass 1's step share
        r1 = load_tile(r1_ptr + hids, first, j, n_real, HID, BR, BH)
        d_pre1 = d_g1 * r1 * gelu_second(z1) + d_a1 * gelu_grad(z1)
        store_tile(dpre1_ptr + hids, d_pre1, first, j, CHUNK, HID, BR, BH)
    d_g2 += load_tile(dg2_in_ptr + outs, first, 0, n_real, D_OUT, BR, BD_OUT) + (factor * square_a1)[:, None] * g2
    d_pre2 = 2.0 * d_g2
    store_tile(dpre2_ptr + outs, d_pre2, first, 0, CHUNK, D_OUT, BR, BD_OUT)
    store_tile(dv_ptr + outs, -d_pre2, first, 0, n_real, D_OUT, BR, BD_OUT)

    # Pass 3: d a_1's last term, d_pre_2 W_2^T, into d z_1, and d k through z_1 = k W_1.
    tl.debug_barrier()
    for j in range(0, HID, BH):
        z1 = load_tile(z1_ptr + hids, first, j, n_real, HID, BR, BH)
        through_pre2 = mm(d_pre2, tl.trans(load_tile(u2, j, 0, HID, D_OUT, BH, BD_OUT)), DOT)
        d_pre1 = load_tile(dpre1_ptr + hids, first, j, CHUNK, HID, BR, BH) + through_pre2 * gelu_grad(z1)
        store_tile(dpre1_ptr + hids, d_pre1, first, j, CHUNK, HID, BR, BH)
        d_k += mm(d_pre1, tl.trans(load_tile(u1, 0, j, D_IN, HID, BD_IN, BH)), DOT)
    store_tile(dk_ptr + ins, d_k, first, 0, n_real, D_IN, BR, BD_IN)


@triton.jit
def state_backward_kernel(
    x1_ptr,  # left factors of the weights' gradient: k (LAYER 0), d_back (LAYER 1) (B*H, CHUNK, n_rows)
    y1_ptr,  # right factors: d_pre_1 (LAYER 0), g_2 (LAYER 1) (B*H, CHUNK, n_cols)
    x2_ptr,  # LAYER 1 only: a_1
    y2_ptr,  # LAYER 1 only: d_pre_2
    u_ptr,  # this layer's chunk-start (W, S) (B*H, 2, n_rows, n_cols)
    du_next_ptr,  # dU' (B*H, 2, n_rows, n_cols)
    d_direct_ptr,  # from the output pass (B*H, 2, n_rows, n_cols)
    mix_ptr,  # [[A, e], [0, E]] (B*H, 2, 2)
    du_ptr,  # out: dU of the chunk start
    dmix_ptr,  # out: this tile's (<W, dW'>, <S, dW'>, <S, dS'>) (tiles, B*H, 3)
    LAYER: tl.constexpr,
    N_ROWS: tl.constexpr,
    N_COLS: tl.constexpr,
    CHUNK: tl.constexpr,
    RB: tl.constexpr,
    BR: tl.constexpr,
    BC: tl.constexpr,
    DOT: tl.constexpr,
):
    """One tile of dU: LAYER 0 tiles W_1's columns (BR = all rows, BC = tile), LAYER 1 W_2's rows
    (BR = tile, BC = all columns)."""
    tile, bh = tl.program_id(0), tl.program_id(1).to(tl.int64)
    if LAYER == 0:
        row, col = 0, tile * BC
    else:
        row, col = tile * BR, 0
    size = N_ROWS * N_COLS
    state = bh * 2 * size
    to_weights = tl.zeros([BR, BC], dtype=tl.float32)
    for r in range(0, CHUNK, RB):
        x1 = operand(load_tile(x1_ptr + bh * CHUNK * N_ROWS, r, row, CHUNK, N_ROWS, RB, BR), DOT)
        to_weights += mm(tl.trans(x1), load_tile(y1_ptr + bh * CHUNK * N_COLS, r, col, CHUNK, N_COLS, RB, BC), DOT)
        if LAYER == 1:
            x2 = operand(load_tile(x2_ptr + bh * CHUNK * N_ROWS, r, row, CHUNK, N_ROWS, RB, BR), DOT)
            y2 = load_tile(y2_ptr + bh * CHUNK * N_COLS, r, col, CHUNK, N_COLS, RB, BC)
            to_weights += mm(tl.trans(x2), y2, DOT)
    keep, mcoeff, eta = tl.load(mix_ptr + bh * 4), tl.load(mix_ptr + bh * 4 + 1), tl.load(mix_ptr + bh * 4 + 3)
    dw_next = load_tile(du_next_ptr + state, row, col, N_ROWS, N_COLS, BR, BC)
    ds_next = load_tile(du_next_ptr + state + size, row, col, N_ROWS, N_COLS, BR, BC)
    dw = load_tile(d_direct_ptr + state, row, col, N_ROWS, N_COLS, BR, BC) + keep * dw_next + to_weights
    ds = load_tile(d_direct_ptr + state + size, row, col, N_ROWS, N_COLS, BR, BC) + mcoeff * dw_next
    store_tile(du_ptr + state, dw, row, col, N_ROWS, N_COLS, BR, BC)
    store_tile(du_ptr + state + size, ds + eta * ds_next, row, col, N_ROWS, N_COLS, BR, BC)
    weights = load_tile(u_ptr + state, row, col, N_ROWS, N_COLS, BR, BC)
    momentum = load_tile(u_ptr + state + size, row, col, N_ROWS, N_COLS, BR, BC)
    partial = dmix_ptr + (tile * tl.num_programs(1) + bh) * 3
    tl.store(partial, tl.sum(tl.sum(weights * dw_next, axis=1), axis=0))
    tl.store(partial + 1, tl.sum(tl.sum(momentum * dw_next, axis=1), axis=0))
    tl.store(partial + 2, tl.sum(tl.sum(momentum * ds_next, axis=1), axis=0))
