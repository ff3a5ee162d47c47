"""Pass (b) of the chunked recurrence: the only sequential part, one short state step per chunk.

Per chunk c, from the chunk-start memory (W_l, S_l) (notation of `chunk_math.py`):
    keys through W:  a_0 = k, z_l = a_{l-1} W_l, a_l = gelu(z_l); g_L = 2 (z_L - v), g_l = r_l * gelu'(z_l),
                     r_l = g_{l+1} W_{l+1}^T
    surprise bound:  s = min(1, c / ||u||), theta' = theta * s
    state step:      W'_l = A_n W_l + e_n S_l - a_{l-1}^T (cl * g_l),  S'_l = E_n S_l - a_{l-1}^T (pl * g_l),
                     cl = G[n, :] * theta', pl = P[n, :] * theta'   (row n: the chunk's last token)
The backward walks the chunks in reverse carrying dW, dS: the state step's chain rule, the bound, and the
keys' own backward (whose weight gradients feed the previous chunk's dW, so they belong here too).

Layouts are chunk-major: k, v, theta (C, B, H, n, ...); states (C, B, H, d_in, d_out). Nothing is copied
for a block of one chunk (the CPU case): the saved tensors are the step's own results.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from titans_ts.memory.ops._mlp import mlp_grads, surprise_norm, surprise_scale
from titans_ts.memory.ops.chunk_gates import ChunkGates
from titans_ts.memory.ops.chunk_math import gelu_second


@dataclass
class StatePass:
    weights: list  # chunk-start W_l per layer (C, B, H, d_in, d_out)
    momentum: list  # chunk-start S_l
    key_inputs: list  # a_0 .. a_{L-1}, each (C, B, H, n, d_in)
    key_pre: list  # z_1 .. z_L
    key_grads: list  # g_1 .. g_L
    key_back: list  # r_1 .. r_{L-1}
    theta: torch.Tensor  # theta' (C, B, H, n)
    norm: torch.Tensor | None  # ||u|| (C, B, H, n) when bounded
    scale: torch.Tensor | None  # s
    weights_out: tuple
    momentum_out: tuple


def stack_chunks(tensors: list) -> torch.Tensor:
    """Stack per-chunk tensors on a new leading dim; a single one becomes a view, not a copy."""
    return tensors[0].unsqueeze(0) if len(tensors) == 1 else torch.stack(tensors)


def last_rows(lasts: list[int], matrix: torch.Tensor) -> torch.Tensor:
    """Row `lasts[c]` of chunk c's (n, n) matrix: (C, B, H, n, n) -> (C, B, H, n)."""
    if len(set(lasts)) == 1:
        return matrix[..., lasts[0], :]
    index = torch.tensor(lasts, device=matrix.device).view(-1, 1, 1, 1, 1)
    return matrix.gather(-2, index.expand(-1, *matrix.shape[1:3], 1, matrix.shape[-1]))[..., 0, :]


def last_values(lasts: list[int], vector: torch.Tensor) -> torch.Tensor:
    """Entry `lasts[c]` of chunk c's (n,) vector, as (C, B, H, 1, 1) to scale states."""
    if len(set(lasts)) == 1:
        return vector[..., lasts[0], None, None]
    index = torch.tensor(lasts, device=vector.device).view(-1, 1, 1, 1)
    return vector.gather(-1, index.expand(-1, *vector.shape[1:3], 1))[..., None]


class _LastOfChunk:
    """The gate quantities that the state step reads at each chunk's last token."""

    def __init__(self, gates: ChunkGates, lasts):
        self.coeff = last_rows(lasts, gates.mixed)  # G[last, :]
        self.carry = last_rows(lasts, gates.carry)  # P[last, :]
        self.keep = last_values(lasts, gates.keep_prod)  # A[last]
        self.mcoeff = last_values(lasts, gates.momentum_coeff)  # e[last]
        self.eta = last_values(lasts, gates.eta_prod)  # E[last]


def _t(x):
    return x.transpose(-1, -2)


def state_forward(k, v, theta, gates: ChunkGates, lasts, weights, momentum, max_grad_norm) -> StatePass:
    last = _LastOfChunk(gates, lasts)
    per_chunk = {name: [] for name in ("w", "s", "a", "z", "g", "r", "theta", "norm", "scale")}
    w_now, s_now = list(weights), list(momentum)
    for c in range(theta.shape[0]):
        keys = mlp_grads(k[c], v[c], w_now)
        theta_c = theta[c]
        if max_grad_norm is not None:
            norm = surprise_norm(keys)
            scale = surprise_scale(norm, max_grad_norm)
            theta_c = theta_c * scale
            per_chunk["norm"].append(norm)
            per_chunk["scale"].append(scale)
        cl = (last.coeff[c] * theta_c)[..., None]
        pl = (last.carry[c] * theta_c)[..., None]
        w_next, s_next = [], []
        for w, s, a, g in zip(w_now, s_now, keys.inputs, keys.grads, strict=True):
            # W' = A W + e S - (cl a)^T g,  S' = E S - (pl a)^T g
            w_next.append(_bmm_sub(last.keep[c] * w + last.mcoeff[c] * s, _t(cl * a), g))
            s_next.append(_bmm_sub(last.eta[c] * s, _t(pl * a), g))
        for name, value in (("w", w_now), ("s", s_now), ("a", keys.inputs), ("z", keys.pre), ("g", keys.grads)):
            per_chunk[name].append(value)
        per_chunk["r"].append(keys.back)
        per_chunk["theta"].append(theta_c)
        w_now, s_now = w_next, s_next

    def layers(name):
        return [stack_chunks(list(layer)) for layer in zip(*per_chunk[name], strict=True)]

    bounded = max_grad_norm is not None
    return StatePass(
        layers("w"),
        layers("s"),
        layers("a"),
        layers("z"),
        layers("g"),
        layers("r"),
        stack_chunks(per_chunk["theta"]),
        stack_chunks(per_chunk["norm"]) if bounded else None,
        stack_chunks(per_chunk["scale"]) if bounded else None,
        tuple(w_now),
        tuple(s_now),
    )


def _bmm_sub(base, left, right):
    """base - left @ right over any leading batch dims, in one fused call."""
    shape = base.shape
    out = torch.baddbmm(
        base.reshape(-1, *shape[-2:]),
        left.reshape(-1, *left.shape[-2:]),
        right.reshape(-1, *right.shape[-2:]),
        alpha=-1,
    )
    return out.view(shape)


@dataclass
class StateGrads:
    d_k: torch.Tensor  # (C, B, H, n, d_0)
    d_v: torch.Tensor  # (C, B, H, n, d_L)
    d_theta: torch.Tensor  # (C, B, H, n): gradient of the raw theta (before the bound)
    d_coeff_last: torch.Tensor  # (C, B, H, n): d of G[last, :] * theta' through the state step
    d_carry_last: torch.Tensor  # (C, B, H, n): d P[last, :]
    d_keep_last: torch.Tensor  # (C, B, H): d A[last]
    d_mcoeff_last: torch.Tensor  # d e[last]
    d_eta_last: torch.Tensor  # d E[last]
    d_weights: tuple  # gradients of the state before the block
    d_momentum: tuple


def state_backward(
    sp: StatePass, gates: ChunkGates, lasts, theta, max_grad_norm, d_direct, d_key_out, d_theta_out, d_w_T, d_s_T
) -> StateGrads:
    """Reverse pass over the block's chunks, carrying dW, dS.

    d_direct: what the output pass sent to the chunk-start states, per layer (dW, dS), each (C, B, H, ...);
    d_key_out: what it sent to the keys' factors, per layer (d a_{l-1}, d g_l); d_theta_out: to theta'.
    These are used as accumulators (modified in place).
    """
    chunks = sp.theta.shape[0]
    depth = len(sp.weights)
    rowdot = lambda x, y: (x * y).sum(-1)  # noqa: E731
    last = _LastOfChunk(gates, lasts)

    d_k = torch.empty_like(sp.key_inputs[0])
    d_v = torch.empty_like(sp.key_grads[-1])
    d_theta = torch.empty_like(sp.theta)
    d_coeff_last, d_carry_last = torch.empty_like(sp.theta), torch.empty_like(sp.theta)
    d_keep_last, d_mcoeff_last, d_eta_last = (sp.theta.new_empty(sp.theta.shape[:-1]) for _ in range(3))

    d_w_next, d_s_next = list(d_w_T), list(d_s_T)
    for c in range(chunks - 1, -1, -1):
        weights = [x[c] for x in sp.weights]
        momentum = [x[c] for x in sp.momentum]
        a = [x[c] for x in sp.key_inputs]
        z = [x[c] for x in sp.key_pre]
        g = [x[c] for x in sp.key_grads]
        back = [x[c] for x in sp.key_back]
        th = sp.theta[c]
        d_w = [d[0][c] for d in d_direct]
        d_s = [d[1][c] for d in d_direct]
        d_a = [d[0][c] for d in d_key_out]
        d_g = [d[1][c] for d in d_key_out]

        # The state step W' = A W + e S - (cl a)^T g, S' = E S - (pl a)^T g.
        cl, pl = (last.coeff[c] * th)[..., None], (last.carry[c] * th)[..., None]
        d_cl = d_pl = 0.0
        d_keep = d_mcoeff = d_eta = 0.0
        for layer in range(depth):
            w, s, dwn, dsn = weights[layer], momentum[layer], d_w_next[layer], d_s_next[layer]
            d_keep = d_keep + (w * dwn).sum((-1, -2))
            d_mcoeff = d_mcoeff + (s * dwn).sum((-1, -2))
            d_eta = d_eta + (s * dsn).sum((-1, -2))
            d_w[layer].add_(last.keep[c] * dwn)
            d_s[layer].add_(last.mcoeff[c] * dwn + last.eta[c] * dsn)
            d_scaled_w = g[layer] @ _t(dwn)  # minus d (cl a)
            d_scaled_s = g[layer] @ _t(dsn)
            d_g[layer].sub_((cl * a[layer]) @ dwn + (pl * a[layer]) @ dsn)
            d_a[layer].sub_(cl * d_scaled_w + pl * d_scaled_s)
            d_cl = d_cl - rowdot(d_scaled_w, a[layer])
            d_pl = d_pl - rowdot(d_scaled_s, a[layer])
        d_keep_last[c], d_mcoeff_last[c], d_eta_last[c] = d_keep, d_mcoeff, d_eta
        d_coeff_last[c] = d_cl
        d_carry_last[c] = d_pl * th
        d_th = d_theta_out[c] + d_cl * last.coeff[c] + d_pl * last.carry[c]

        # The surprise bound theta' = theta * s, s = min(1, c / ||u||).
        if max_grad_norm is None:
            d_theta[c] = d_th
        else:
            norm, scale = sp.norm[c], sp.scale[c]
            d_theta[c] = d_th * scale
            clipped = (max_grad_norm / norm) <= 1.0
            d_norm = torch.where(clipped, -d_th * theta[c] * max_grad_norm / norm.square(), 0.0)
            factor = d_norm / norm
            for layer in range(depth):
                d_a[layer].add_((factor * rowdot(g[layer], g[layer]))[..., None] * a[layer])
                d_g[layer].add_((factor * rowdot(a[layer], a[layer]))[..., None] * g[layer])

        # The keys' gradients g_l, then the keys' forward pass, all at the chunk-start weights.
        d_pre = [None] * depth
        for layer in range(depth - 1):  # g_l = r_l * gelu'(z_l), r_l = g_{l+1} W_{l+1}^T
            d_back = torch.ops.aten.gelu_backward(d_g[layer], z[layer])
            d_pre[layer] = d_g[layer] * back[layer] * gelu_second(z[layer])
            d_g[layer + 1].add_(d_back @ weights[layer + 1])
            d_w[layer + 1].add_(_t(d_back) @ g[layer + 1])
        d_pre[-1] = 2.0 * d_g[-1]
        d_v[c] = -2.0 * d_g[-1]
        for layer in range(depth - 1, -1, -1):
            if layer < depth - 1:
                d_pre[layer] += torch.ops.aten.gelu_backward(d_a[layer + 1], z[layer])
            d_a[layer].add_(d_pre[layer] @ _t(weights[layer]))
            d_w[layer].add_(_t(a[layer]) @ d_pre[layer])
        d_k[c] = d_a[0]
        d_w_next, d_s_next = d_w, d_s

    return StateGrads(
        d_k,
        d_v,
        d_theta,
        d_coeff_last,
        d_carry_last,
        d_keep_last,
        d_mcoeff_last,
        d_eta_last,
        tuple(d_w_next),
        tuple(d_s_next),
    )
