"""Fused Triton kernels for the memory recurrence: one program per (batch, head).

The program keeps the memory state (weights W_l and momentum S_l, fp32) on chip and walks the chunks:
load a chunk of q/k/v/theta/alpha/eta, form the keys' gradients at the chunk-start weights, the
coefficient matrix, the per-token outputs (dual form) and the state after the chunk. The backward
program walks the chunks in reverse from the chunk-start states saved by the forward, recomputes each
chunk and applies the chain rule by hand. The maths, with the same names, is `chunk_math.py`.

Depth 1 (a matrix memory D_IN -> D_OUT) and depth 2 (D_IN -> HID -> D_OUT). Dimensions are padded to
powers of two with zeros, which the recurrence leaves at zero; padded tokens of the last chunk get
theta = 0, alpha = 0, eta = 1 and the end state is read at the last real token.
"""

from __future__ import annotations

import triton
import triton.language as tl

_INV_SQRT_2 = tl.constexpr(0.7071067811865476)  # a global a @jit function reads must be constexpr
_INV_SQRT_2PI = tl.constexpr(0.3989422804014327)


@triton.jit
def _dot(a, b):
    return tl.dot(a, b, input_precision="ieee")


@triton.jit
def _gelu(z):
    return 0.5 * z * (1.0 + tl.erf(z * _INV_SQRT_2))


@triton.jit
def _gelu_grad(z):
    return 0.5 * (1.0 + tl.erf(z * _INV_SQRT_2)) + z * tl.exp(-0.5 * z * z) * _INV_SQRT_2PI


@triton.jit
def _gelu_second(z):
    return tl.exp(-0.5 * z * z) * _INV_SQRT_2PI * (2.0 - z * z)


@triton.jit
def _load_matrix(ptr, n_rows, n_cols, BR: tl.constexpr, BC: tl.constexpr):
    r = tl.arange(0, BR)
    c = tl.arange(0, BC)
    mask = (r[:, None] < n_rows) & (c[None, :] < n_cols)
    return tl.load(ptr + r[:, None] * n_cols + c[None, :], mask=mask, other=0.0).to(tl.float32)


@triton.jit
def _store_matrix(ptr, value, n_rows, n_cols, BR: tl.constexpr, BC: tl.constexpr):
    r = tl.arange(0, BR)
    c = tl.arange(0, BC)
    mask = (r[:, None] < n_rows) & (c[None, :] < n_cols)
    tl.store(ptr + r[:, None] * n_cols + c[None, :], value.to(ptr.dtype.element_ty), mask=mask)


@triton.jit
def _pick(vector, rows, last):
    """vector[last] for a (BT,) vector."""
    return tl.sum(tl.where(rows == last, vector, 0.0), axis=0)


@triton.jit
def _pick_row(matrix, rows, last):
    """matrix[last, :] for a (BT, BT) matrix."""
    return tl.sum(tl.where(rows[:, None] == last, matrix, 0.0), axis=0)


@triton.jit
def _decay(rate, rows):
    """D[t, i] = prod_{j=i+1..t} rate_j for t >= i, else 0 (a masked cumprod: no division)."""
    factors = tl.where(rows[None, :] > rows[:, None], rate[None, :], 1.0)  # [i, t]
    products = tl.cumprod(factors, axis=1)
    return tl.where(rows[:, None] >= rows[None, :], tl.trans(products), 0.0)


@triton.jit
def _load_chunk(
    q_ptr,
    k_ptr,
    v_ptr,
    theta_ptr,
    alpha_ptr,
    eta_ptr,
    start,
    T,
    D_IN: tl.constexpr,
    D_OUT: tl.constexpr,
    BT: tl.constexpr,
    BD_IN: tl.constexpr,
    BD_OUT: tl.constexpr,
):
    rows = tl.arange(0, BT)
    valid = start + rows < T
    n_valid = tl.minimum(T - start, BT)
    q = _load_matrix(q_ptr + start * D_IN, n_valid, D_IN, BT, BD_IN)
    k = _load_matrix(k_ptr + start * D_IN, n_valid, D_IN, BT, BD_IN)
    v = _load_matrix(v_ptr + start * D_OUT, n_valid, D_OUT, BT, BD_OUT)
    theta = tl.load(theta_ptr + start + rows, mask=valid, other=0.0).to(tl.float32)
    alpha = tl.load(alpha_ptr + start + rows, mask=valid, other=0.0).to(tl.float32)
    eta = tl.load(eta_ptr + start + rows, mask=valid, other=1.0).to(tl.float32)
    return q, k, v, theta, alpha, eta, n_valid - 1


@triton.jit
def _coefficients(theta, alpha, eta, rows):
    carry = _decay(eta, rows)  # P
    keep = 1.0 - alpha
    forget = _decay(keep, rows)  # Q
    eta_prod = tl.cumprod(eta, axis=0)  # E
    keep_prod = tl.cumprod(keep, axis=0)  # A
    mixed = _dot(forget, carry)  # G
    coeff = mixed * theta[None, :]  # C
    momentum_coeff = tl.sum(forget * eta_prod[None, :], axis=1)  # e
    return carry, forget, eta_prod, keep_prod, mixed, coeff, momentum_coeff


@triton.jit
def _retrieve_layer(x, a, g, w, s, keep_prod, momentum_coeff, coeff):
    xw = _dot(x, w)
    xs = _dot(x, s)
    similarity = _dot(x, tl.trans(a))
    z = keep_prod[:, None] * xw + momentum_coeff[:, None] * xs - _dot(coeff * similarity, g)
    return z, xw, xs, similarity


@triton.jit
def _next_state(w, s, a, g, last_coeff, last_carry, keep_last, mcoeff_last, eta_last):
    a_t = tl.trans(a)
    w_next = keep_last * w + mcoeff_last * s - _dot(a_t, last_coeff[:, None] * g)
    s_next = eta_last * s - _dot(a_t, last_carry[:, None] * g)
    return w_next, s_next


@triton.jit
def _surprise_norm(k, g1, a1, g2, DEPTH: tl.constexpr):
    square = tl.sum(k * k, axis=1) * tl.sum(g1 * g1, axis=1)
    if DEPTH == 2:
        square += tl.sum(a1 * a1, axis=1) * tl.sum(g2 * g2, axis=1)
    return tl.sqrt(square + 1e-37)


@triton.jit
def _keys(k, v, w1, w2, DEPTH: tl.constexpr):
    """Keys through the chunk-start memory: (z1, a1, g1, r1, z2, g2); layer 2 is a dummy at depth 1."""
    z1 = _dot(k, w1)
    if DEPTH == 1:
        g1 = 2.0 * (z1 - v)
        return z1, z1, g1, g1, z1, g1
    else:
        a1 = _gelu(z1)
        z2 = _dot(a1, w2)
        g2 = 2.0 * (z2 - v)
        r1 = _dot(g2, tl.trans(w2))
        g1 = r1 * _gelu_grad(z1)
        return z1, a1, g1, r1, z2, g2


@triton.jit
def _load_state(
    w1_ptr,
    w2_ptr,
    s1_ptr,
    s2_ptr,
    index,
    DEPTH: tl.constexpr,
    D_IN: tl.constexpr,
    HID: tl.constexpr,
    D_OUT: tl.constexpr,
    BD_IN: tl.constexpr,
    BHID: tl.constexpr,
    BD_OUT: tl.constexpr,
):
    """The index-th (W1, W2, S1, S2) of a buffer of states; layer 2 repeats layer 1 at depth 1."""
    if DEPTH == 1:
        w1 = _load_matrix(w1_ptr + index * D_IN * D_OUT, D_IN, D_OUT, BD_IN, BD_OUT)
        s1 = _load_matrix(s1_ptr + index * D_IN * D_OUT, D_IN, D_OUT, BD_IN, BD_OUT)
        return w1, w1, s1, s1
    else:
        w1 = _load_matrix(w1_ptr + index * D_IN * HID, D_IN, HID, BD_IN, BHID)
        s1 = _load_matrix(s1_ptr + index * D_IN * HID, D_IN, HID, BD_IN, BHID)
        w2 = _load_matrix(w2_ptr + index * HID * D_OUT, HID, D_OUT, BHID, BD_OUT)
        s2 = _load_matrix(s2_ptr + index * HID * D_OUT, HID, D_OUT, BHID, BD_OUT)
        return w1, w2, s1, s2


@triton.jit
def _store_state(
    w1_ptr,
    w2_ptr,
    s1_ptr,
    s2_ptr,
    index,
    w1,
    w2,
    s1,
    s2,
    DEPTH: tl.constexpr,
    D_IN: tl.constexpr,
    HID: tl.constexpr,
    D_OUT: tl.constexpr,
    BD_IN: tl.constexpr,
    BHID: tl.constexpr,
    BD_OUT: tl.constexpr,
):
    if DEPTH == 1:
        _store_matrix(w1_ptr + index * D_IN * D_OUT, w1, D_IN, D_OUT, BD_IN, BD_OUT)
        _store_matrix(s1_ptr + index * D_IN * D_OUT, s1, D_IN, D_OUT, BD_IN, BD_OUT)
    else:
        _store_matrix(w1_ptr + index * D_IN * HID, w1, D_IN, HID, BD_IN, BHID)
        _store_matrix(s1_ptr + index * D_IN * HID, s1, D_IN, HID, BD_IN, BHID)
        _store_matrix(w2_ptr + index * HID * D_OUT, w2, HID, D_OUT, BHID, BD_OUT)
        _store_matrix(s2_ptr + index * HID * D_OUT, s2, HID, D_OUT, BHID, BD_OUT)


@triton.jit
def memory_forward_kernel(
    q_ptr,
    k_ptr,
    v_ptr,
    theta_ptr,
    alpha_ptr,
    eta_ptr,
    w1_ptr,
    w2_ptr,
    s1_ptr,
    s2_ptr,  # initial state (fp32); w2/s2 unused at depth 1
    y_ptr,
    w1_out_ptr,
    w2_out_ptr,
    s1_out_ptr,
    s2_out_ptr,
    starts_w1_ptr,
    starts_w2_ptr,
    starts_s1_ptr,
    starts_s2_ptr,  # chunk-start states for the backward
    T,
    n_chunks,
    max_grad_norm,
    DEPTH: tl.constexpr,
    CLIP: tl.constexpr,
    SAVE_STARTS: tl.constexpr,
    D_IN: tl.constexpr,
    HID: tl.constexpr,
    D_OUT: tl.constexpr,
    BT: tl.constexpr,
    BD_IN: tl.constexpr,
    BHID: tl.constexpr,
    BD_OUT: tl.constexpr,
):
    pid = tl.program_id(0)
    rows = tl.arange(0, BT)
    q_ptr += pid * T * D_IN
    k_ptr += pid * T * D_IN
    v_ptr += pid * T * D_OUT
    y_ptr += pid * T * D_OUT
    theta_ptr += pid * T
    alpha_ptr += pid * T
    eta_ptr += pid * T
    w1, w2, s1, s2 = _load_state(w1_ptr, w2_ptr, s1_ptr, s2_ptr, pid, DEPTH, D_IN, HID, D_OUT, BD_IN, BHID, BD_OUT)

    for c in range(0, n_chunks):
        start = c * BT
        if SAVE_STARTS:
            _store_state(
                starts_w1_ptr,
                starts_w2_ptr,
                starts_s1_ptr,
                starts_s2_ptr,
                pid * n_chunks + c,
                w1,
                w2,
                s1,
                s2,
                DEPTH,
                D_IN,
                HID,
                D_OUT,
                BD_IN,
                BHID,
                BD_OUT,
            )
        q, k, v, theta, alpha, eta, last = _load_chunk(
            q_ptr, k_ptr, v_ptr, theta_ptr, alpha_ptr, eta_ptr, start, T, D_IN, D_OUT, BT, BD_IN, BD_OUT
        )
        z1, a1, g1, r1, z2, g2 = _keys(k, v, w1, w2, DEPTH)
        if CLIP:
            norm = _surprise_norm(k, g1, a1, g2, DEPTH)
            theta = theta * tl.minimum(max_grad_norm / norm, 1.0)
        carry, forget, eta_prod, keep_prod, mixed, coeff, mcoeff = _coefficients(theta, alpha, eta, rows)

        zq1, xw1, xs1, sim1 = _retrieve_layer(q, k, g1, w1, s1, keep_prod, mcoeff, coeff)
        if DEPTH == 1:
            y = zq1
        else:
            y, xw2, xs2, sim2 = _retrieve_layer(_gelu(zq1), a1, g2, w2, s2, keep_prod, mcoeff, coeff)
        _store_matrix(y_ptr + start * D_OUT, y, last + 1, D_OUT, BT, BD_OUT)

        last_coeff = _pick_row(coeff, rows, last)
        last_carry = _pick_row(carry, rows, last) * theta
        keep_last = _pick(keep_prod, rows, last)
        mcoeff_last = _pick(mcoeff, rows, last)
        eta_last = _pick(eta_prod, rows, last)
        w1_next, s1_next = _next_state(w1, s1, k, g1, last_coeff, last_carry, keep_last, mcoeff_last, eta_last)
        if DEPTH == 2:
            w2, s2 = _next_state(w2, s2, a1, g2, last_coeff, last_carry, keep_last, mcoeff_last, eta_last)
        w1 = w1_next
        s1 = s1_next

    _store_state(
        w1_out_ptr,
        w2_out_ptr,
        s1_out_ptr,
        s2_out_ptr,
        pid,
        w1,
        w2,
        s1,
        s2,
        DEPTH,
        D_IN,
        HID,
        D_OUT,
        BD_IN,
        BHID,
        BD_OUT,
    )


@triton.jit
def _retrieve_layer_backward(dz, x, a, g, w, s, keep_prod, mcoeff, coeff, xw, xs, similarity):
    d_keep = tl.sum(dz * xw, axis=1)
    d_mcoeff = tl.sum(dz * xs, axis=1)
    dz_keep = keep_prod[:, None] * dz
    dz_mom = mcoeff[:, None] * dz
    dx = _dot(dz_keep, tl.trans(w)) + _dot(dz_mom, tl.trans(s))
    x_t = tl.trans(x)
    dw = _dot(x_t, dz_keep)
    ds = _dot(x_t, dz_mom)
    dg = -_dot(tl.trans(coeff * similarity), dz)
    outer = _dot(dz, tl.trans(g))
    d_coeff = -outer * similarity
    d_similarity = -outer * coeff
    dx += _dot(d_similarity, a)
    da = _dot(tl.trans(d_similarity), x)
    return dx, da, dg, dw, ds, d_keep, d_mcoeff, d_coeff


@triton.jit
def _next_state_backward(w, s, a, g, dw_out, ds_out, last_coeff, last_carry, keep_last, mcoeff_last, eta_last):
    dw = keep_last * dw_out
    ds = mcoeff_last * dw_out + eta_last * ds_out
    d_keep_last = tl.sum(tl.sum(w * dw_out, axis=1), axis=0)
    d_mcoeff_last = tl.sum(tl.sum(s * dw_out, axis=1), axis=0)
    d_eta_last = tl.sum(tl.sum(s * ds_out, axis=1), axis=0)
    to_w = _dot(a, dw_out)
    to_s = _dot(a, ds_out)
    dg = -(last_coeff[:, None] * to_w + last_carry[:, None] * to_s)
    d_last_coeff = -tl.sum(g * to_w, axis=1)
    d_last_carry = -tl.sum(g * to_s, axis=1)
    da = -(_dot(last_coeff[:, None] * g, tl.trans(dw_out)) + _dot(last_carry[:, None] * g, tl.trans(ds_out)))
    return dw, ds, d_keep_last, d_mcoeff_last, d_eta_last, dg, d_last_coeff, d_last_carry, da


@triton.jit
def _decay_backward(decay, grad, rows):
    """d rate_j = sum_{i<j<=t} dD[t,i] D[j-1,i] D[t,j]; the row shift is a matmul with a shift matrix."""
    shift = tl.where(rows[:, None] == rows[None, :] + 1, 1.0, 0.0)  # [j, m] = 1 if m == j - 1
    shifted = _dot(shift, decay)
    grad = tl.where(rows[:, None] >= rows[None, :], grad, 0.0)
    return tl.sum(shifted * _dot(tl.trans(decay), grad), axis=1)


@triton.jit
def _cumprod_backward(decay, products, grad, rows):
    """d rate_j = prod_{m<j} rate_m * (D^T dE)_j."""
    previous = tl.sum(tl.where(rows[:, None] == rows[None, :] + 1, products[None, :], 0.0), axis=1)
    previous = tl.where(rows == 0, 1.0, previous)
    return previous * tl.sum(decay * grad[:, None], axis=0)


@triton.jit
def memory_backward_kernel(
    q_ptr,
    k_ptr,
    v_ptr,
    theta_ptr,
    alpha_ptr,
    eta_ptr,
    starts_w1_ptr,
    starts_w2_ptr,
    starts_s1_ptr,
    starts_s2_ptr,
    dy_ptr,
    dw1_ptr,
    dw2_ptr,
    ds1_ptr,
    ds2_ptr,  # in: grads of the final state; out: of the initial state
    dq_ptr,
    dk_ptr,
    dv_ptr,
    dtheta_ptr,
    dalpha_ptr,
    deta_ptr,
    T,
    n_chunks,
    max_grad_norm,
    DEPTH: tl.constexpr,
    CLIP: tl.constexpr,
    D_IN: tl.constexpr,
    HID: tl.constexpr,
    D_OUT: tl.constexpr,
    BT: tl.constexpr,
    BD_IN: tl.constexpr,
    BHID: tl.constexpr,
    BD_OUT: tl.constexpr,
):
    pid = tl.program_id(0)
    rows = tl.arange(0, BT)
    q_ptr += pid * T * D_IN
    k_ptr += pid * T * D_IN
    v_ptr += pid * T * D_OUT
    dq_ptr += pid * T * D_IN
    dk_ptr += pid * T * D_IN
    dv_ptr += pid * T * D_OUT
    dy_ptr += pid * T * D_OUT
    theta_ptr += pid * T
    alpha_ptr += pid * T
    eta_ptr += pid * T
    dtheta_ptr += pid * T
    dalpha_ptr += pid * T
    deta_ptr += pid * T
    dw1_out, dw2_out, ds1_out, ds2_out = _load_state(
        dw1_ptr, dw2_ptr, ds1_ptr, ds2_ptr, pid, DEPTH, D_IN, HID, D_OUT, BD_IN, BHID, BD_OUT
    )

    for step in range(0, n_chunks):
        c = n_chunks - 1 - step
        start = c * BT
        # Recompute the chunk from its start state.
        w1, w2, s1, s2 = _load_state(
            starts_w1_ptr,
            starts_w2_ptr,
            starts_s1_ptr,
            starts_s2_ptr,
            pid * n_chunks + c,
            DEPTH,
            D_IN,
            HID,
            D_OUT,
            BD_IN,
            BHID,
            BD_OUT,
        )
        q, k, v, theta_in, alpha, eta, last = _load_chunk(
            q_ptr, k_ptr, v_ptr, theta_ptr, alpha_ptr, eta_ptr, start, T, D_IN, D_OUT, BT, BD_IN, BD_OUT
        )
        z1, a1, g1, r1, z2, g2 = _keys(k, v, w1, w2, DEPTH)
        theta = theta_in
        norm = theta_in
        if CLIP:
            norm = _surprise_norm(k, g1, a1, g2, DEPTH)
            theta = theta_in * tl.minimum(max_grad_norm / norm, 1.0)
        carry, forget, eta_prod, keep_prod, mixed, coeff, mcoeff = _coefficients(theta, alpha, eta, rows)
        zq1, xw1, xs1, sim1 = _retrieve_layer(q, k, g1, w1, s1, keep_prod, mcoeff, coeff)
        x1 = _gelu(zq1)
        if DEPTH == 2:
            zq2, xw2, xs2, sim2 = _retrieve_layer(x1, a1, g2, w2, s2, keep_prod, mcoeff, coeff)
        last_coeff = _pick_row(coeff, rows, last)
        last_carry_raw = _pick_row(carry, rows, last)
        last_carry = last_carry_raw * theta
        keep_last = _pick(keep_prod, rows, last)
        mcoeff_last = _pick(mcoeff, rows, last)
        eta_last = _pick(eta_prod, rows, last)
        is_last = rows == last

        # The state after the chunk.
        dw1, ds1, dkl, dml, del_, dg1, dlc, dlp, dk_acc = _next_state_backward(
            w1, s1, k, g1, dw1_out, ds1_out, last_coeff, last_carry, keep_last, mcoeff_last, eta_last
        )
        d_keep = tl.where(is_last, dkl, 0.0)
        d_mcoeff = tl.where(is_last, dml, 0.0)
        d_eta_prod = tl.where(is_last, del_, 0.0)
        d_last_coeff = dlc
        d_last_carry = dlp
        if DEPTH == 2:
            dw2, ds2, dkl2, dml2, del2, dg2, dlc2, dlp2, da1 = _next_state_backward(
                w2, s2, a1, g2, dw2_out, ds2_out, last_coeff, last_carry, keep_last, mcoeff_last, eta_last
            )
            d_keep += tl.where(is_last, dkl2, 0.0)
            d_mcoeff += tl.where(is_last, dml2, 0.0)
            d_eta_prod += tl.where(is_last, del2, 0.0)
            d_last_coeff += dlc2
            d_last_carry += dlp2

        # Per-token retrieval, last layer first.
        dy = _load_matrix(dy_ptr + start * D_OUT, last + 1, D_OUT, BT, BD_OUT)
        if DEPTH == 1:
            dq, dk_r, dg1_r, dw1_r, ds1_r, dkr, dmr, d_coeff = _retrieve_layer_backward(
                dy, q, k, g1, w1, s1, keep_prod, mcoeff, coeff, xw1, xs1, sim1
            )
            dk_acc += dk_r
            dg1 += dg1_r
            dw1 += dw1_r
            ds1 += ds1_r
            d_keep += dkr
            d_mcoeff += dmr
        else:
            dx1, da1_r, dg2_r, dw2_r, ds2_r, dkr, dmr, d_coeff = _retrieve_layer_backward(
                dy, x1, a1, g2, w2, s2, keep_prod, mcoeff, coeff, xw2, xs2, sim2
            )
            da1 += da1_r
            dg2 += dg2_r
            dw2 += dw2_r
            ds2 += ds2_r
            d_keep += dkr
            d_mcoeff += dmr
            dz1 = dx1 * _gelu_grad(zq1)
            dq, dk_r, dg1_r, dw1_r, ds1_r, dkr, dmr, d_coeff1 = _retrieve_layer_backward(
                dz1, q, k, g1, w1, s1, keep_prod, mcoeff, coeff, xw1, xs1, sim1
            )
            dk_acc += dk_r
            dg1 += dg1_r
            dw1 += dw1_r
            ds1 += ds1_r
            d_keep += dkr
            d_mcoeff += dmr
            d_coeff += d_coeff1

        # Coefficients -> theta', P, Q, E, A -> eta, alpha.
        d_coeff += tl.where(rows[:, None] == last, d_last_coeff[None, :], 0.0)
        d_coeff = tl.where(rows[:, None] >= rows[None, :], d_coeff, 0.0)
        d_theta = d_last_carry * last_carry_raw + tl.sum(d_coeff * mixed, axis=0)
        d_mixed = d_coeff * theta[None, :]
        d_carry = _dot(tl.trans(forget), d_mixed)
        d_carry += tl.where(rows[:, None] == last, (d_last_carry * theta)[None, :], 0.0)
        d_forget = _dot(d_mixed, tl.trans(carry)) + d_mcoeff[:, None] * eta_prod[None, :]
        d_eta_prod += tl.sum(forget * d_mcoeff[:, None], axis=0)
        d_eta = _decay_backward(carry, d_carry, rows) + _cumprod_backward(carry, eta_prod, d_eta_prod, rows)
        d_alpha = -(_decay_backward(forget, d_forget, rows) + _cumprod_backward(forget, keep_prod, d_keep, rows))

        # The surprise bound.
        d_theta_in = d_theta
        if CLIP:
            ratio = max_grad_norm / norm
            d_theta_in = d_theta * tl.minimum(ratio, 1.0)
            d_norm = tl.where(ratio <= 1.0, -d_theta * theta_in * max_grad_norm / (norm * norm), 0.0)
            factor = d_norm / norm
            dk_acc += (factor * tl.sum(g1 * g1, axis=1))[:, None] * k
            dg1 += (factor * tl.sum(k * k, axis=1))[:, None] * g1
            if DEPTH == 2:
                da1 += (factor * tl.sum(g2 * g2, axis=1))[:, None] * a1
                dg2 += (factor * tl.sum(a1 * a1, axis=1))[:, None] * g2

        # The keys' gradients, then the keys' forward pass.
        if DEPTH == 1:
            dz1_k = 2.0 * dg1
            dv = -2.0 * dg1
        else:
            d_back = dg1 * _gelu_grad(z1)
            dz1_k = dg1 * r1 * _gelu_second(z1)
            dg2 += _dot(d_back, w2)
            dw2 += _dot(tl.trans(d_back), g2)
            dz2_k = 2.0 * dg2
            dv = -2.0 * dg2
            da1 += _dot(dz2_k, tl.trans(w2))
            dw2 += _dot(tl.trans(a1), dz2_k)
            dz1_k += da1 * _gelu_grad(z1)
        dk_acc += _dot(dz1_k, tl.trans(w1))
        dw1 += _dot(tl.trans(k), dz1_k)

        valid = start + rows < T
        _store_matrix(dq_ptr + start * D_IN, dq, last + 1, D_IN, BT, BD_IN)
        _store_matrix(dk_ptr + start * D_IN, dk_acc, last + 1, D_IN, BT, BD_IN)
        _store_matrix(dv_ptr + start * D_OUT, dv, last + 1, D_OUT, BT, BD_OUT)
        tl.store(dtheta_ptr + start + rows, d_theta_in, mask=valid)
        tl.store(dalpha_ptr + start + rows, d_alpha, mask=valid)
        tl.store(deta_ptr + start + rows, d_eta, mask=valid)
        dw1_out = dw1
        ds1_out = ds1
        if DEPTH == 2:
            dw2_out = dw2
            ds2_out = ds2

    _store_state(
        dw1_ptr,
        dw2_ptr,
        ds1_ptr,
        ds2_ptr,
        pid,
        dw1_out,
        dw2_out,
        ds1_out,
        ds2_out,
        DEPTH,
        D_IN,
        HID,
        D_OUT,
        BD_IN,
        BHID,
        BD_OUT,
    )
