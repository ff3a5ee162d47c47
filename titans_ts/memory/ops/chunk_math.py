"""One chunk of the memory recurrence, forward and hand-derived backward, in plain tensor ops.

The forward is the dual form of `chunked.py`; the backward recomputes the forward of the chunk from
its start state and runs the chain rule by hand, layer by layer, so that only chunk-start states need
to be kept between forward and backward. This is also the blueprint of the Triton kernels.

Shapes (batch dims `...` = (B, H)): rows are the chunk's n tokens. q, k: (..., n, d_0); v: (..., n, d_L);
theta, alpha, eta: (..., n); weights and momentum: tuples of L tensors (..., d_{l-1}, d_l).
Derivation notes (per layer l, rows i, t of the chunk):
    keys:      a_0 = k, z_l = a_{l-1} W_l, a_l = gelu(z_l)
               g_L = 2 (z_L - v), g_l = (g_{l+1} W_{l+1}^T) * gelu'(z_l)
    bound:     s_i = min(1, c / ||u_i||), ||u_i||^2 = sum_l |a_{l-1,i}|^2 |g_{l,i}|^2, theta'_i = theta_i s_i
    decays:    P = D(eta), Q = D(1 - alpha), E = cumprod(eta), A = cumprod(1 - alpha)
               G = Q @ P, C = G * theta'[i], e = Q @ E
    retrieval: x_0 = q, zq_l = A * (x W_l) + e * (x S_l) - (C * (x a_{l-1}^T)) g_l, x_l = gelu(zq_l), y = zq_L
    state:     W'_l = A_n W_l + e_n S_l - a^T (c * g_l),  S'_l = E_n S_l - a^T (p * g_l),
               c = C[n-1, :], p = theta' * P[n-1, :]
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from titans_ts.memory.ops._mlp import KeyGradients, mlp_grads, surprise_norm, surprise_scale

_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_INV_SQRT_2 = 1.0 / math.sqrt(2.0)


def gelu_grad(z):
    """gelu'(z) = Phi(z) + z phi(z) for the exact GELU."""
    return 0.5 * (1.0 + torch.erf(z * _INV_SQRT_2)) + z * torch.exp(-0.5 * z * z) * _INV_SQRT_2PI


def gelu_second(z):
    """gelu''(z) = phi(z) (2 - z^2)."""
    return torch.exp(-0.5 * z * z) * _INV_SQRT_2PI * (2.0 - z * z)


def decay_matrix(rate):
    """D[t, i] = prod_{j=i+1..t} rate_j for t >= i, else 0: (..., n) -> (..., n, n). No division."""
    n = rate.shape[-1]
    later = torch.ones(n, n, dtype=torch.bool, device=rate.device).triu(1)  # [i, t]: t > i
    factors = torch.where(later, rate[..., None, :], torch.ones((), dtype=rate.dtype, device=rate.device))
    return torch.cumprod(factors, dim=-1).transpose(-1, -2).tril()


def decay_matrix_backward(decay, grad):
    """d rate from d D for D = decay_matrix(rate): d rate_j = sum_{i<j<=t} dD[t,i] D[j-1,i] D[t,j]."""
    shifted = F.pad(decay[..., :-1, :], (0, 0, 1, 0))  # [j, i] = D[j-1, i] (0 for i >= j)
    return (shifted * (decay.transpose(-1, -2) @ grad.tril())).sum(-1)


def cumprod_backward(decay, rate_cumprod, grad):
    """d rate from d E for E = cumprod(rate), given D = decay_matrix(rate): E_{j-1} (D^T dE)_j."""
    previous = F.pad(rate_cumprod[..., :-1], (1, 0), value=1.0)
    return previous * (decay.transpose(-1, -2) @ grad[..., None])[..., 0]


@dataclass
class ChunkForward:
    """Everything the backward of one chunk needs, recomputed from the chunk-start state."""

    keys: KeyGradients  # a_l, z_l, g_l and g_{l+1} W_{l+1}^T of the keys at the chunk-start weights
    norm: torch.Tensor | None  # ||u_i|| (with the bound on)
    scale: torch.Tensor | None  # s_i
    theta: torch.Tensor  # theta' = theta * s
    carry: torch.Tensor  # P
    forget: torch.Tensor  # Q
    eta_prod: torch.Tensor  # E
    keep_prod: torch.Tensor  # A
    mixed: torch.Tensor  # G = Q @ P
    coeff: torch.Tensor  # C
    momentum_coeff: torch.Tensor  # e
    query_inputs: list  # x_0 .. x_{L-1}
    query_pre: list  # zq_1 .. zq_L
    from_weights: list  # x_{l-1} W_l
    from_momentum: list  # x_{l-1} S_l
    y: torch.Tensor
    weights_out: list
    momentum_out: list


def chunk_forward(q, k, v, theta, alpha, eta, weights, momentum, max_grad_norm, with_state=True) -> ChunkForward:
    """The chunk's outputs and intermediates; with_state=False skips the end state (the backward has it)."""
    depth = len(weights)
    keys = mlp_grads(k, v, weights)  # the surprise factors, at the chunk-start weights
    key_inputs, key_grads = keys.inputs, keys.grads
    norm = scale = None
    if max_grad_norm is not None:
        norm = surprise_norm(keys)
        scale = surprise_scale(norm, max_grad_norm)
        theta = theta * scale

    carry, forget = decay_matrix(eta), decay_matrix(1.0 - alpha)
    eta_prod, keep_prod = torch.cumprod(eta, dim=-1), torch.cumprod(1.0 - alpha, dim=-1)
    mixed = forget @ carry
    coeff = mixed * theta[..., None, :]
    momentum_coeff = (forget @ eta_prod[..., None])[..., 0]

    query_inputs, query_pre, from_weights, from_momentum = [], [], [], []
    x = q
    for layer, (w, s, a, g) in enumerate(zip(weights, momentum, key_inputs, key_grads, strict=True)):
        query_inputs.append(x)
        xw, xs = (x @ torch.cat([w, s], dim=-1)).split(w.shape[-1], dim=-1)
        from_weights.append(xw)
        from_momentum.append(xs)
        z = keep_prod[..., None] * xw + momentum_coeff[..., None] * xs - (coeff * (x @ a.transpose(-1, -2))) @ g
        query_pre.append(z)
        x = F.gelu(z) if layer < depth - 1 else z

    last_coeff = coeff[..., -1, :]
    last_carry = carry[..., -1, :] * theta
    weights_out, momentum_out = [], []
    for w, s, a, g in zip(weights, momentum, key_inputs, key_grads, strict=True) if with_state else ():
        scaled = torch.cat([last_coeff[..., None] * g, last_carry[..., None] * g], dim=-1)
        to_weights, to_momentum = (a.transpose(-1, -2) @ scaled).split(g.shape[-1], dim=-1)
        weights_out.append(keep_prod[..., -1, None, None] * w + momentum_coeff[..., -1, None, None] * s - to_weights)
        momentum_out.append(eta_prod[..., -1, None, None] * s - to_momentum)

    return ChunkForward(
        keys,
        norm,
        scale,
        theta,
        carry,
        forget,
        eta_prod,
        keep_prod,
        mixed,
        coeff,
        momentum_coeff,
        query_inputs,
        query_pre,
        from_weights,
        from_momentum,
        x,
        weights_out,
        momentum_out,
    )


def chunk_backward(fwd: ChunkForward, theta, weights, momentum, max_grad_norm, d_y, d_weights_out, d_momentum_out):
    """Gradients of one chunk: (dq, dk, dv, dtheta, dalpha, deta, dweights, dmomentum)."""
    depth = len(weights)
    rowdot = lambda a, b: (a * b).sum(-1)  # noqa: E731
    d_inputs = [torch.zeros_like(a) for a in fwd.keys.inputs]  # d a_0 .. a_{L-1}
    d_grads = [torch.zeros_like(g) for g in fwd.keys.grads]  # d g_1 .. g_L
    d_weights = [torch.zeros_like(w) for w in weights]
    d_momentum = [torch.zeros_like(s) for s in momentum]
    d_keep = torch.zeros_like(fwd.keep_prod)  # d A
    d_mcoeff = torch.zeros_like(fwd.momentum_coeff)  # d e
    d_eta_prod = torch.zeros_like(fwd.eta_prod)  # d E
    d_coeff = torch.zeros_like(fwd.coeff)  # d C
    d_carry = torch.zeros_like(fwd.carry)  # d P
    d_theta = torch.zeros_like(fwd.theta)  # d theta'

    # State after the chunk.
    last = fwd.keep_prod.shape[-1] - 1
    last_coeff = fwd.coeff[..., last, :]
    last_carry = fwd.carry[..., last, :] * fwd.theta
    d_last_coeff = torch.zeros_like(last_coeff)
    d_last_carry = torch.zeros_like(last_carry)
    for layer in range(depth):
        w, s, a, g = weights[layer], momentum[layer], fwd.keys.inputs[layer], fwd.keys.grads[layer]
        dw_out, ds_out = d_weights_out[layer], d_momentum_out[layer]
        d_weights[layer] += fwd.keep_prod[..., last, None, None] * dw_out
        d_momentum[layer] += fwd.momentum_coeff[..., last, None, None] * dw_out
        d_momentum[layer] += fwd.eta_prod[..., last, None, None] * ds_out
        d_keep[..., last] += (w * dw_out).sum((-1, -2))
        d_mcoeff[..., last] += (s * dw_out).sum((-1, -2))
        d_eta_prod[..., last] += (s * ds_out).sum((-1, -2))
        to_w, to_s = (a @ torch.cat([dw_out, ds_out], dim=-1)).split(g.shape[-1], dim=-1)
        d_grads[layer] -= last_coeff[..., None] * to_w + last_carry[..., None] * to_s
        d_last_coeff -= rowdot(g, to_w)
        d_last_carry -= rowdot(g, to_s)
        d_inputs[layer] -= torch.cat([last_coeff[..., None] * g, last_carry[..., None] * g], dim=-1) @ torch.cat(
            [dw_out, ds_out], dim=-1
        ).transpose(-1, -2)
    d_coeff[..., last, :] += d_last_coeff
    d_theta += d_last_carry * fwd.carry[..., last, :]
    d_carry[..., last, :] += d_last_carry * fwd.theta

    # Per-token retrieval, last layer first.
    dz = d_y
    for layer in range(depth - 1, -1, -1):
        x, a, g = fwd.query_inputs[layer], fwd.keys.inputs[layer], fwd.keys.grads[layer]
        w, s = weights[layer], momentum[layer]
        d_keep += rowdot(dz, fwd.from_weights[layer])
        d_mcoeff += rowdot(dz, fwd.from_momentum[layer])
        dz_keep = fwd.keep_prod[..., None] * dz
        dz_mom = fwd.momentum_coeff[..., None] * dz
        dx = torch.cat([dz_keep, dz_mom], dim=-1) @ torch.cat([w, s], dim=-1).transpose(-1, -2)
        x_t = x.transpose(-1, -2)
        d_weights[layer] += x_t @ dz_keep
        d_momentum[layer] += x_t @ dz_mom
        similarity = x @ a.transpose(-1, -2)  # B = x a^T
        weighted = fwd.coeff * similarity
        d_grads[layer] -= weighted.transpose(-1, -2) @ dz
        outer = dz @ g.transpose(-1, -2)  # H = dz g^T
        d_coeff -= outer * similarity
        d_similarity = -outer * fwd.coeff
        dx = dx + d_similarity @ a
        d_inputs[layer] += d_similarity.transpose(-1, -2) @ x
        dz = dx * gelu_grad(fwd.query_pre[layer - 1]) if layer > 0 else dx
    d_q = dz

    # Coefficients -> theta', P, Q, E, A -> eta, alpha.
    d_coeff = d_coeff.tril()
    d_theta += (d_coeff * fwd.mixed).sum(-2)
    d_mixed = d_coeff * fwd.theta[..., None, :]
    d_forget = d_mixed @ fwd.carry.transpose(-1, -2) + d_mcoeff[..., :, None] * fwd.eta_prod[..., None, :]
    d_carry = d_carry + fwd.forget.transpose(-1, -2) @ d_mixed
    d_eta_prod = d_eta_prod + (fwd.forget.transpose(-1, -2) @ d_mcoeff[..., None])[..., 0]
    d_eta = decay_matrix_backward(fwd.carry, d_carry) + cumprod_backward(fwd.carry, fwd.eta_prod, d_eta_prod)
    d_alpha = -(decay_matrix_backward(fwd.forget, d_forget) + cumprod_backward(fwd.forget, fwd.keep_prod, d_keep))

    # The surprise bound: theta' = theta * s, s = min(1, c / ||u||).
    if max_grad_norm is None:
        d_theta_in = d_theta
    else:
        d_theta_in = d_theta * fwd.scale
        clipped = (max_grad_norm / fwd.norm) <= 1.0
        d_norm = torch.where(clipped, -d_theta * theta * max_grad_norm / fwd.norm.square(), 0.0)
        factor = d_norm / fwd.norm
        for layer in range(depth):
            a, g = fwd.keys.inputs[layer], fwd.keys.grads[layer]
            d_inputs[layer] += (factor * (g * g).sum(-1))[..., None] * a
            d_grads[layer] += (factor * (a * a).sum(-1))[..., None] * g

    # The keys' gradients g_l, then the keys' forward pass.
    d_key_pre = [torch.zeros_like(z) for z in fwd.keys.pre]
    for layer in range(depth - 1):  # g_l = r_l * gelu'(z_l), r_l = g_{l+1} W_{l+1}^T
        z = fwd.keys.pre[layer]
        d_back = d_grads[layer] * gelu_grad(z)
        d_key_pre[layer] += d_grads[layer] * fwd.keys.back[layer] * gelu_second(z)
        d_grads[layer + 1] += d_back @ weights[layer + 1]
        d_weights[layer + 1] += d_back.transpose(-1, -2) @ fwd.keys.grads[layer + 1]
    d_key_pre[-1] += 2.0 * d_grads[-1]
    d_v = -2.0 * d_grads[-1]
    for layer in range(depth - 1, -1, -1):
        if layer < depth - 1:
            d_key_pre[layer] += d_inputs[layer + 1] * gelu_grad(fwd.keys.pre[layer])
        d_inputs[layer] += d_key_pre[layer] @ weights[layer].transpose(-1, -2)
        d_weights[layer] += fwd.keys.inputs[layer].transpose(-1, -2) @ d_key_pre[layer]
    d_k = d_inputs[0]
    return d_q, d_k, d_v, d_theta_in, d_alpha, d_eta, d_weights, d_momentum
