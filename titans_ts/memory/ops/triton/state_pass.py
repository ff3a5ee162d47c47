"""Pass (b) forward on the Triton kernels of `state_forward.py`, with `chunk_state.state_forward`'s interface.

The kernels walk the chunks (two launches each) and write every chunk-start state; the keys' factors that
the output pass and the backward read (a_l, z_l, g_l, r_l) are then recomputed from those states for all
chunks at once, in batched PyTorch: that part is parallel over chunks, so it needs no kernel of its own.
"""

from __future__ import annotations

import torch

from titans_ts.memory.ops._mlp import mlp_grads
from titans_ts.memory.ops.chunk_gates import ChunkGates
from titans_ts.memory.ops.chunk_state import StatePass, _LastOfChunk

DOT_OF_DTYPE = {torch.float32: 0, torch.bfloat16: 1, torch.float16: 2}


def block(n: int) -> int:
    """The power-of-two tile of a dimension (at least 16: tl.dot's minimum)."""
    return max(16, 1 << (int(n) - 1).bit_length())


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


def keys_constants(d_in, hidden, d_out, chunk, depth, clip, dot) -> dict:
    return {"DEPTH": depth, "CLIP": clip, **tiles(d_in, hidden, d_out, chunk, depth), "BR": 16, "DOT": dot}


def step_constants(d_in, hidden, d_out, chunk, depth, dot) -> dict:
    return {"DEPTH": depth, **tiles(d_in, hidden, d_out, chunk, depth), "RB": min(chunk, 32), "DOT": dot}


def state_forward_triton(k, v, theta, gates: ChunkGates, lasts, states, max_grad_norm, dot: int = 0) -> StatePass:
    """Chunk-major k (C, B, H, n, d_in), v, theta (C, B, H, n); states per layer (B, H, 2, d_in, d_out), fp32."""
    from titans_ts.memory.ops.triton.state_forward import keys_kernel, state_step_kernel

    chunks, batch, heads, n, d_in = k.shape
    d_out, depth, clip = v.shape[-1], len(states), max_grad_norm is not None
    hidden = states[0].shape[-1]
    last = _LastOfChunk(gates, lasts)
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
            n_real, float(max_grad_norm or 0.0), **keys_args, num_warps=WARPS["keys_kernel"],
        )  # fmt: skip
        for layer in range(depth):  # one launch per layer: each program holds one layer's tiles
            state_step_kernel[step_grid](
                k[c], g_last[c], theta_out[c], rows[c], mix[c], first[c], second[c], first[c + 1], second[c + 1],
                n_real, **step_args, LAYER=layer, num_warps=WARPS["state_step_kernel"],
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
