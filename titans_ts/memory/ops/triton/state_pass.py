"""Pass (b) forward on the Triton kernels of `state_forward.py`, with `chunked.state.state_forward`'s interface.

The kernels walk the chunks (two launches each) and write every chunk-start state; the keys' factors that
the output pass and the backward read (a_l, z_l, g_l, r_l) are then recomputed from those states for all
chunks at once, in batched PyTorch: that part is parallel over chunks, so it needs no kernel of its own.
"""

from __future__ import annotations

import torch

from titans_ts.memory.ops.chunked.gates import ChunkGates
from titans_ts.memory.ops.chunked.state import StateGrads, StatePass, last_of_chunk
from titans_ts.memory.ops.common import mlp_grads

DOT_OF_DTYPE = {torch.float32: 0, torch.bfloat16: 1, torch.float16: 2}
# tl.dot's smallest tile: the floor of every tile, and the rows of a chunk that one keys program takes.
TILE = 16


def block(n: int) -> int:
    """The power-of-two tile of a dimension (at least TILE)."""
    return max(TILE, 1 << (int(n) - 1).bit_length())


def tiles(d_in: int, hidden: int, d_out: int, chunk: int, depth: int) -> dict:
    """Compile-time tile sizes, shared by the launcher and the ahead-of-time compile check.

    BR rows of a chunk per keys program; BH columns of the hidden width (of D_out at depth 1) per state-step
    program: 32, so that a program's four fp32 state tiles stay small at D 128 (4 x 16 KB)."""
    width = hidden if depth == 2 else d_out
    return {
        "D_IN": d_in,
        "HID": width,
        "D_OUT": d_out,
        "CHUNK": chunk,
        "BD_IN": block(d_in),
        "BH": min(32, block(width)),
        "BD_OUT": block(d_out),
    }


# Warps per program: the state step holds k, g_L and four state tiles at once (8 warps keep them in
# registers at D 128: no spills, docs/kernels.md); the keys pass is lighter.
WARPS = {"keys_kernel": 4, "state_step_kernel": 8}
WARPS |= {"keys_backward_kernel_1": 8, "keys_backward_kernel_2": 8, "state_backward_kernel": 8}
WARPS["output_layer_kernel"] = 8  # pass (c) forward (`output_pass.py`); at 4, fp32 operands spilled 160-264 bytes
# pass (c) backward: the input side holds two n x 32 sums besides the loaded tiles; the output side at 4 warps
# left an 8-byte stack on sm_90 at chunk 16
WARPS |= {"similarity_grads_kernel": 8, "input_side_kernel": 8, "output_side_kernel": 8}
# Software-pipelining stages: the default (3) keeps three copies of every tile a loop loads in shared memory,
# which the keys' backward (eight tiles per hidden step) cannot afford at D 128. 1 and 2 are what compiled
# without spills on sm_90 and sm_80 (the register allocation moves with them: docs/kernels.md).
STAGES = {"keys_backward_kernel_1": 1, "keys_backward_kernel_2": 2}


def launch_options(kernel: str) -> dict:
    """num_warps / num_stages of a kernel, for its launches and the ahead-of-time compile check."""
    options = {"num_warps": WARPS[kernel]}
    return options | ({"num_stages": STAGES[kernel]} if kernel in STAGES else {})


def keys_constants(d_in, hidden, d_out, chunk, depth, clip, dot) -> dict:
    return {"DEPTH": depth, "CLIP": clip, **tiles(d_in, hidden, d_out, chunk, depth), "BR": TILE, "DOT": dot}


def step_constants(d_in, hidden, d_out, chunk, depth, dot) -> dict:
    sizes = tiles(d_in, hidden, d_out, chunk, depth)
    if chunk <= TILE or dot == 0:  # sm_80 spills at 32-wide tiles with one row block, and fp32 operands at D 128
        sizes["BH"] = min(TILE, sizes["BH"])
    return {"DEPTH": depth, **sizes, "RB": min(chunk, 32), "DOT": dot}


def keys_backward_constants(d_in, hidden, d_out, chunk, depth, clip, dot) -> dict:
    sizes = tiles(d_in, hidden, d_out, chunk, depth)
    constants = {"CLIP": clip, "D_IN": d_in, "D_OUT": d_out, "CHUNK": chunk, "BR": TILE, "BD_IN": sizes["BD_IN"]}
    constants |= {"BH": min(TILE, sizes["BH"]) if dot == 0 else sizes["BH"], "DOT": dot}  # fp32 spilled at 32
    return constants | ({"HID": hidden, "BD_OUT": sizes["BD_OUT"]} if depth == 2 else {})


def state_backward_constants(d_in, hidden, d_out, chunk, depth, layer, dot) -> dict:
    """Layer 0 tiles W_1's columns (all D_in rows per program); layer 1 W_2's rows (all D_out columns)."""
    sizes = tiles(d_in, hidden, d_out, chunk, depth)
    shape = (
        {"N_ROWS": d_in, "N_COLS": sizes["HID"], "BR": sizes["BD_IN"], "BC": sizes["BH"]}
        if layer == 0
        else {"N_ROWS": hidden, "N_COLS": d_out, "BR": sizes["BH"], "BC": sizes["BD_OUT"]}
    )
    return {"LAYER": layer, **shape, "CHUNK": chunk, "RB": min(chunk, 32), "DOT": dot}


def state_forward_triton(k, v, theta, gates: ChunkGates, lasts, states, max_grad_norm, dot: int = 0) -> StatePass:
    """Chunk-major k (C, B, H, n, d_in), v, theta (C, B, H, n); states per layer (B, H, 2, d_in, d_out), fp32."""
    from titans_ts.memory.ops.triton.state_forward import keys_kernel, state_step_kernel

    chunks, batch, heads, n, d_in = k.shape
    d_out, depth, clip = v.shape[-1], len(states), max_grad_norm is not None
    hidden = states[0].shape[-1]
    last = last_of_chunk(gates, lasts)
    rows, mix = last.rows.contiguous(), last.mix.contiguous()
    k, v, theta = k.contiguous(), v.contiguous(), theta.contiguous()
    buffers = []
    for u in states:  # every chunk-start state, and the end state last
        buffer = u.new_empty(chunks + 1, *u.shape)
        buffer[0] = u
        buffers.append(buffer)
    g_last = v.new_empty(v.shape)
    theta_out = torch.empty_like(theta)
    norm, scale = (torch.empty_like(theta), torch.empty_like(theta)) if clip else (theta_out, theta_out)
    keys_args = keys_constants(d_in, hidden, d_out, n, depth, clip, dot)
    step_args = step_constants(d_in, hidden, d_out, n, depth, dot)
    keys_grid = (n // keys_args["BR"], batch * heads)
    step_grid = (-(-step_args["HID"] // step_args["BH"]), batch * heads)
    first, second = buffers[0], buffers[-1]
    for c in range(chunks):
        n_real = lasts[c] + 1
        keys_kernel[keys_grid](
            k[c], v[c], theta[c], first[c], second[c], g_last[c], theta_out[c], norm[c], scale[c],
            n_real, float(max_grad_norm or 0.0), **keys_args, **launch_options("keys_kernel"),
        )  # fmt: skip
        for layer in range(depth):  # one launch per layer: each program holds one layer's tiles
            state_step_kernel[step_grid](
                k[c], g_last[c], theta_out[c], rows[c], mix[c], first[c], second[c], first[c + 1], second[c + 1],
                n_real, **step_args, LAYER=layer, **launch_options("state_step_kernel"),
            )  # fmt: skip

    starts = [buffer[:-1] for buffer in buffers]
    keys = mlp_grads(k, v, [u[..., 0, :, :] for u in starts])
    squares = [((a * a).sum(-1), (g * g).sum(-1)) for a, g in zip(keys.inputs, keys.grads, strict=True)]
    return StatePass(
        starts,
        keys.inputs,
        keys.pre,
        keys.grads,
        keys.back,
        squares,
        theta_out,
        norm if clip else None,
        scale if clip else None,
        [buffer[-1] for buffer in buffers],
        last,
    )


def state_backward_triton(
    sp: StatePass, theta, max_grad_norm, d_direct, d_key_out, d_theta_out, d_states_T, dot: int = 0
) -> StateGrads:
    """`chunked.state.state_backward` on the kernels of `state_backward.py`: per chunk, last first, one
    keys-backward launch and one state-backward launch per layer."""
    from titans_ts.memory.ops.triton.state_backward import (
        keys_backward_kernel_1,
        keys_backward_kernel_2,
        state_backward_kernel,
    )

    chunks, batch, heads, n, d_in = sp.key_inputs[0].shape
    depth, d_out, clip = len(sp.states), sp.key_grads[-1].shape[-1], max_grad_norm is not None
    hidden = sp.states[0].shape[-1]
    sizes = tiles(d_in, hidden, d_out, n, depth)
    rows, mix = sp.last.rows.contiguous(), sp.last.mix.contiguous()
    theta, d_theta_out = theta.contiguous(), d_theta_out.contiguous()
    states = [u.contiguous() for u in sp.states]
    a, z, g, r = ([t.contiguous() for t in ts] for ts in (sp.key_inputs, sp.key_pre, sp.key_grads, sp.key_back))
    d_in_keys = [[t.contiguous() for t in pair] for pair in d_key_out]  # per layer (d a_{l-1}, d g_l)
    d_direct = [t.contiguous() for t in d_direct]
    norm, scale = (sp.norm, sp.scale) if clip else (sp.theta, sp.theta)

    d_k, d_v = torch.empty_like(a[0]), torch.empty_like(g[-1])
    d_theta, d_scales = torch.empty_like(theta), torch.empty_like(rows)
    d_pre = [torch.empty_like(x[0]) for x in g]  # per layer d z_l of one chunk (reused)
    d_back = torch.empty_like(g[0][0])
    tile_counts = [-(-sizes["HID"] // sizes["BH"])] * depth
    d_mix = [theta.new_empty(chunks, count, batch * heads, 3) for count in tile_counts]
    keys_args = keys_backward_constants(d_in, hidden, d_out, n, depth, clip, dot)
    keys_grid = (n // keys_args["BR"], batch * heads)
    step_args = [state_backward_constants(d_in, hidden, d_out, n, depth, layer, dot) for layer in range(depth)]
    d_next = [d.float().contiguous() for d in d_states_T]
    for c in range(chunks - 1, -1, -1):
        n_real = sp.last.lasts[c] + 1
        gates = (d_theta_out[c], rows[c], theta[c], sp.theta[c], norm[c], scale[c])
        outputs = (d_k[c], d_v[c], d_theta[c], d_scales[c])
        if depth == 1:
            keys_backward_kernel_1[keys_grid](
                a[0][c], g[0][c], states[0][c], d_next[0], *(x[c] for x in d_in_keys[0]), *gates, *outputs,
                d_pre[0], n_real, float(max_grad_norm or 0.0), **keys_args, **launch_options("keys_backward_kernel_1"),
            )  # fmt: skip
        else:
            squares = (sp.key_squares[1][0][c], sp.key_squares[0][1][c])  # |a_1|^2, |g_1|^2
            keys_backward_kernel_2[keys_grid](
                a[0][c], a[1][c], z[0][c], g[0][c], r[0][c], g[1][c], *squares, states[0][c], states[1][c],
                d_next[0], d_next[1], d_in_keys[0][0][c], d_in_keys[0][1][c], d_in_keys[1][0][c],
                d_in_keys[1][1][c], *gates, *outputs, d_pre[0], d_back, d_pre[1],
                n_real, float(max_grad_norm or 0.0), **keys_args, **launch_options("keys_backward_kernel_2"),
            )  # fmt: skip
        d_now = [torch.empty_like(d) for d in d_next]
        state_backward_kernel[(tile_counts[0], batch * heads)](
            a[0][c], d_pre[0], a[0][c], d_pre[0], states[0][c], d_next[0], d_direct[0][c], mix[c], d_now[0],
            d_mix[0][c], **step_args[0], **launch_options("state_backward_kernel"),
        )  # fmt: skip
        if depth == 2:
            state_backward_kernel[(tile_counts[1], batch * heads)](
                d_back, g[1][c], a[1][c], d_pre[1], states[1][c], d_next[1], d_direct[1][c], mix[c], d_now[1],
                d_mix[1][c], **step_args[1], **launch_options("state_backward_kernel"),
            )  # fmt: skip
        d_next = d_now

    mixes = sum(partial.sum(1) for partial in d_mix).view(chunks, batch, heads, 3)
    return StateGrads.of(d_k, d_v, d_theta, d_scales, sp.theta, mixes.unbind(-1), d_next)
