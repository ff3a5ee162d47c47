"""Pass (b) of the chunked recurrence: the only sequential part, one short state step per chunk.

Per chunk c, from the chunk-start memory (W_l, S_l) (notation of `chunk.py`):
    keys through W:  a_0 = k, z_l = a_{l-1} W_l, a_l = gelu(z_l); g_L = 2 (z_L - v), g_l = r_l * gelu'(z_l),
                     r_l = g_{l+1} W_{l+1}^T
    surprise bound:  s = min(1, c / ||u||), theta' = theta * s
    state step:      W'_l = A_n W_l + e_n S_l - a_{l-1}^T (cl * g_l),  S'_l = E_n S_l - a_{l-1}^T (pl * g_l),
                     cl = G[n, :] * theta', pl = P[n, :] * theta'   (row n: the chunk's last token)
The backward walks the chunks in reverse carrying dW, dS: the state step's chain rule, the bound, and the
keys' own backward (whose weight gradients feed the previous chunk's dW, so they belong here too).

Each layer's state is kept as one tensor U = (W, S) stacked, (..., 2, d_in, d_out), so that the step is
two fused products: U' = Mix U - X^T g with Mix = [[A_n, e_n], [0, E_n]] and X = [cl a | pl a] (n, 2 d_in),
and the output pass reads [A x | e x] @ [W; S] in one matmul too.

Layouts are chunk-major: k, v, theta (C, B, H, n, ...); states (C, B, H, 2, d_in, d_out). Nothing is copied
for a block of one chunk (the CPU case): the saved tensors are the step's own results.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from titans_ts.memory.ops.chunked.gates import ChunkGates
from titans_ts.memory.ops.common import gelu_second, last_runs, mlp_grads, negated_bmm, surprise_scale


@dataclass
class StatePass:
    states: list  # chunk-start (W_l, S_l) per layer (C, B, H, 2, d_in, d_out)
    key_inputs: list  # a_0 .. a_{L-1}, each (C, B, H, n, d_in)
    key_pre: list  # z_1 .. z_L
    key_grads: list  # g_1 .. g_L
    key_back: list  # r_1 .. r_{L-1}
    key_squares: list  # per layer (|a_{l-1}|^2, |g_l|^2), each (C, B, H, n)
    theta: torch.Tensor  # theta' (C, B, H, n)
    norm: torch.Tensor | None  # ||u|| (C, B, H, n) when bounded
    scale: torch.Tensor | None  # s
    states_out: list  # per layer (B, H, 2, d_in, d_out) after the block
    last: LastOfChunk  # the gate quantities at each chunk's last token (the backward reads them too)


def stack_chunks(tensors: list) -> torch.Tensor:
    """Stack per-chunk tensors on a new leading dim; a single one becomes a view, not a copy."""
    return tensors[0].unsqueeze(0) if len(tensors) == 1 else torch.stack(tensors)


def last_rows(lasts: list[int], matrix: torch.Tensor) -> torch.Tensor:
    """Row `lasts[c]` of chunk c's (n, n) matrix: (C, B, H, n, n) -> (C, B, H, n)."""
    return _by_runs(lasts, lambda chunks, last: matrix[chunks, ..., last, :])


def last_values(lasts: list[int], vector: torch.Tensor) -> torch.Tensor:
    """Entry `lasts[c]` of chunk c's (n,) vector: (C, B, H, n) -> (C, B, H)."""
    return _by_runs(lasts, lambda chunks, last: vector[chunks, ..., last])


def _by_runs(lasts, pick) -> torch.Tensor:
    parts = [pick(chunks, last) for chunks, last in last_runs(lasts)]
    return parts[0] if len(parts) == 1 else torch.cat(parts)


@dataclass
class LastOfChunk:
    """The gate quantities that the state step reads at each chunk's last token (`last_of_chunk`)."""

    lasts: list  # each chunk's last real token
    rows: torch.Tensor  # (G[last, :], P[last, :]) stacked: (C, B, H, n, 2); times theta' they scale key gradients
    mix: torch.Tensor  # Mix = [[A, e], [0, E]] at the last token: (C, B, H, 2, 2), acting on the stacked (W, S)


def last_of_chunk(gates: ChunkGates, lasts) -> LastOfChunk:
    rows = torch.stack([last_rows(lasts, gates.mixed), last_rows(lasts, gates.carry)], dim=-1)
    keep = last_values(lasts, gates.keep_prod)  # A[last]
    mcoeff = last_values(lasts, gates.momentum_coeff)  # e[last]
    eta = last_values(lasts, gates.eta_prod)  # E[last]
    mix = torch.stack([keep, mcoeff, torch.zeros_like(eta), eta], dim=-1).unflatten(-1, (2, 2))
    return LastOfChunk(list(lasts), rows, mix)


def scaled_keys(a, scales):
    """X = [s_0 a | s_1 a]: (B, H, n, d), (B, H, n, 2) -> (B, H, n, 2 d)."""
    return (a[..., None, :] * scales[..., :, None]).flatten(-2)


def combine_pair(pair, scales):
    """pair[..., 0, :] * scales[..., 0] + pair[..., 1, :] * scales[..., 1]: (..., 2, d), (..., 2) -> (..., d).

    (Written out: a broadcast multiply and a sum over the middle axis measured 2.5x slower.)
    """
    return torch.addcmul(pair[..., 0, :] * scales[..., 0, None], pair[..., 1, :], scales[..., 1, None])


def dot_pair(pair, x):
    """(pair[..., 0, :] . x, pair[..., 1, :] . x): (..., 2, d), (..., d) -> (..., 2)."""
    return torch.stack([(pair[..., 0, :] * x).sum(-1), (pair[..., 1, :] * x).sum(-1)], dim=-1)


def mix_states(state, mix):
    """Mix @ U for Mix = [[A, e], [0, E]]: (A W + e S, E S). state (B, H, 2, d, h), mix (B, H, 2, 2).

    Elementwise, not a bmm with K = 2: that runs at a fraction of memory speed, and compiled it cannot fuse.
    """
    diagonal = torch.diagonal(mix, dim1=-2, dim2=-1)[..., :, None, None]  # (A, E)
    mixed = state * diagonal
    mixed[:, :, 0].addcmul_(state[:, :, 1], mix[..., 0, 1, None, None])
    return mixed


def mix_states_backward(state, mix, d_mixed, d_state):
    """Adds Mix^T d_mixed to d_state (in place) and returns d Mix (B, H, 2, 2) (its zero corner stays 0)."""
    d_state.addcmul_(d_mixed, torch.diagonal(mix, dim1=-2, dim2=-1)[..., :, None, None])
    d_state[:, :, 1].addcmul_(d_mixed[:, :, 0], mix[..., 0, 1, None, None])
    d_diagonal = (state * d_mixed).sum((-1, -2))  # (<W, dW'>, <S, dS'>)
    d_corner = (state[:, :, 1] * d_mixed[:, :, 0]).sum((-1, -2))  # <S, dW'>
    return torch.stack([d_diagonal[..., 0], d_corner, torch.zeros_like(d_corner), d_diagonal[..., 1]], -1).unflatten(
        -1, (2, 2)
    )


def state_step(state, mix, keys_scaled, g):
    """U' = Mix U - X^T g for one layer: state (B, H, 2, d, h), mix (B, H, 2, 2), X (B, H, n, 2d), g (B, H, n, h)."""
    shape = state.shape
    batch_heads, d_in, d_out = shape[0] * shape[1], shape[-2], shape[-1]
    updated = torch.baddbmm(
        mix_states(state, mix).view(batch_heads, 2 * d_in, d_out),
        keys_scaled.reshape(batch_heads, -1, 2 * d_in).mT,
        g.reshape(batch_heads, -1, d_out),
        alpha=-1,
    )
    return updated.view(shape)


def state_forward(k, v, theta, gates: ChunkGates, lasts, states, max_grad_norm) -> StatePass:
    last = last_of_chunk(gates, lasts)
    saved = {name: [] for name in ("u", "a", "z", "g", "r", "sq", "theta", "norm", "scale")}
    now = list(states)
    for c in range(theta.shape[0]):
        keys = mlp_grads(k[c], v[c], [u[:, :, 0] for u in now])
        squares = [((a * a).sum(-1), (g * g).sum(-1)) for a, g in zip(keys.inputs, keys.grads, strict=True)]
        theta_c = theta[c]
        if max_grad_norm is not None:
            total = sum(sa * sg for sa, sg in squares)
            norm = torch.sqrt(total + torch.finfo(total.dtype).tiny)  # ||u_i||, since ||a^T g|| = |a| |g|
            scale = surprise_scale(norm, max_grad_norm)
            theta_c = theta_c * scale
            saved["norm"].append(norm)
            saved["scale"].append(scale)
        scales = last.rows[c] * theta_c[..., None]  # (cl, pl) per token
        following = [
            state_step(u, last.mix[c], scaled_keys(a, scales), g)
            for u, a, g in zip(now, keys.inputs, keys.grads, strict=True)
        ]
        for name, value in (("u", now), ("a", keys.inputs), ("z", keys.pre), ("g", keys.grads), ("r", keys.back)):
            saved[name].append(value)
        saved["sq"].append(squares)
        saved["theta"].append(theta_c)
        now = following

    def layers(name):
        return [stack_chunks(list(layer)) for layer in zip(*saved[name], strict=True)]

    bounded = max_grad_norm is not None
    return StatePass(
        layers("u"),
        layers("a"),
        layers("z"),
        layers("g"),
        layers("r"),
        [tuple(stack_chunks([sq[layer][i] for sq in saved["sq"]]) for i in (0, 1)) for layer in range(len(states))],
        stack_chunks(saved["theta"]),
        stack_chunks(saved["norm"]) if bounded else None,
        stack_chunks(saved["scale"]) if bounded else None,
        now,
        last,
    )


@dataclass
class StateGrads:
    d_k: torch.Tensor  # (C, B, H, n, d_0)
    d_v: torch.Tensor  # (C, B, H, n, d_L)
    d_theta: torch.Tensor  # (C, B, H, n): gradient of the raw theta (before the bound)
    d_coeff_last: torch.Tensor  # (C, B, H, n): d of C[last, :] = G[last, :] * theta' through the state step
    d_carry_last: torch.Tensor  # (C, B, H, n): d P[last, :]
    d_keep_last: torch.Tensor  # (C, B, H): d A[last]
    d_mcoeff_last: torch.Tensor  # d e[last]
    d_eta_last: torch.Tensor  # d E[last]
    d_states: list  # gradients of the states before the block, per layer (B, H, 2, d_in, d_out)

    @classmethod
    def of(cls, d_k, d_v, d_theta, d_scales, theta, d_mix, d_states) -> StateGrads:
        """From d (cl, pl) (C, B, H, n, 2), theta' and d (A, e, E)[last], a triple of (C, B, H)."""
        return cls(d_k, d_v, d_theta, d_scales[..., 0], d_scales[..., 1] * theta, *d_mix, d_states)


def state_backward(sp: StatePass, theta, max_grad_norm, d_direct, d_key_out, d_theta_out, d_states_T) -> StateGrads:
    """Reverse pass over the block's chunks, carrying d(W, S).

    d_direct: what the output pass sent to the chunk-start states, per layer (C, B, H, 2, d_in, d_out);
    d_key_out: what it sent to the keys' factors, per layer (d a_{l-1}, d g_l); d_theta_out: to theta'.
    d_key_out is used as an accumulator (modified in place).
    """
    chunks = sp.theta.shape[0]
    depth = len(sp.states)
    last = sp.last

    d_k = torch.empty_like(sp.key_inputs[0])
    d_v = torch.empty_like(sp.key_grads[-1])
    d_theta = torch.empty_like(sp.theta)
    d_scales_all = torch.empty_like(last.rows)  # d (cl, pl): cl is C[last, :], pl is P[last, :] * theta'
    d_mix = torch.empty_like(last.mix)

    d_next = list(d_states_T)
    for c in range(chunks - 1, -1, -1):
        states = [x[c] for x in sp.states]
        weights = [u[:, :, 0] for u in states]
        a = [x[c] for x in sp.key_inputs]
        z = [x[c] for x in sp.key_pre]
        g = [x[c] for x in sp.key_grads]
        back = [x[c] for x in sp.key_back]
        th = sp.theta[c]
        d_a = [d[0][c] for d in d_key_out]
        d_g = [d[1][c] for d in d_key_out]

        # The state step U' = Mix U - X^T g, X = [cl a | pl a], (cl, pl) = rows * theta'.
        scales = last.rows[c] * th[..., None]
        d_scales = torch.zeros_like(scales)
        d_mix_c = torch.zeros_like(last.mix[c])
        d_states = []
        for layer in range(depth):
            u, dun = states[layer], d_next[layer]
            batch_heads, d_in, d_out = u.shape[0] * u.shape[1], u.shape[-2], u.shape[-1]
            d_u = d_direct[layer][c]
            d_mix_c = d_mix_c + mix_states_backward(u, last.mix[c], dun, d_u)
            d_states.append(d_u)
            x = scaled_keys(a[layer], scales).view(batch_heads, -1, 2 * d_in)
            dun_rows = dun.reshape(batch_heads, 2 * d_in, d_out)
            g_flat = g[layer].reshape(batch_heads, -1, d_out)
            d_x = negated_bmm(g_flat, dun_rows.mT).view(*a[layer].shape[:-1], 2, d_in)
            d_g[layer].view(batch_heads, -1, d_out).baddbmm_(x, dun_rows, alpha=-1)
            d_a[layer].add_(combine_pair(d_x, scales))
            d_scales += dot_pair(d_x, a[layer])
        d_mix[c] = d_mix_c
        d_scales_all[c] = d_scales
        d_th = d_theta_out[c] + (d_scales * last.rows[c]).sum(-1)

        # The surprise bound theta' = theta * s, s = min(1, c / ||u||).
        if max_grad_norm is None:
            d_theta[c] = d_th
        else:
            norm, scale = sp.norm[c], sp.scale[c]
            d_theta[c] = d_th * scale
            clipped = (max_grad_norm / norm) <= 1.0
            d_norm = torch.where(clipped, -d_th * theta[c] * max_grad_norm / norm.square(), 0.0)
            factor = d_norm / norm
            for layer, (squares_a, squares_g) in enumerate(sp.key_squares):
                square_a, square_g = squares_a[c], squares_g[c]
                d_a[layer].add_((factor * square_g)[..., None] * a[layer])
                d_g[layer].add_((factor * square_a)[..., None] * g[layer])

        # The keys' gradients g_l, then the keys' forward pass, all at the chunk-start weights.
        d_weights = [d_u[:, :, 0] for d_u in d_states]
        d_pre = [None] * depth
        for layer in range(depth - 1):  # g_l = r_l * gelu'(z_l), r_l = g_{l+1} W_{l+1}^T
            d_back = torch.ops.aten.gelu_backward(d_g[layer], z[layer])
            d_pre[layer] = d_g[layer] * back[layer] * gelu_second(z[layer])
            d_g[layer + 1].add_(d_back @ weights[layer + 1])
            d_weights[layer + 1].add_(d_back.mT @ g[layer + 1])
        d_pre[-1] = 2.0 * d_g[-1]
        d_v[c] = -2.0 * d_g[-1]
        for layer in range(depth - 1, -1, -1):
            if layer < depth - 1:
                d_pre[layer] += torch.ops.aten.gelu_backward(d_a[layer + 1], z[layer])
            d_a[layer].add_(d_pre[layer] @ weights[layer].mT)
            d_weights[layer].add_(a[layer].mT @ d_pre[layer])
        d_k[c] = d_a[0]
        d_next = d_states

    mix_entries = (d_mix[..., 0, 0], d_mix[..., 0, 1], d_mix[..., 1, 1])
    return StateGrads.of(d_k, d_v, d_theta, d_scales_all, sp.theta, mix_entries, d_next)
