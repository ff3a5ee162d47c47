"""Pass (c) forward on the Triton kernel of `output_forward.py`, with `chunked.output.output_forward`'s interface
(its backward stays `chunked.output.output_backward`, which reads the same saved tensors)."""

from __future__ import annotations

import torch

from titans_ts.memory.ops.chunked.gates import ChunkGates
from titans_ts.memory.ops.chunked.output import OutputPass, coefficients
from titans_ts.memory.ops.chunked.state import StatePass
from titans_ts.memory.ops.triton.state_pass import block, launch_options

# A program's tile of D_out and step over D_in: 32 x 32, so that its accumulators (x a^T: n x n, x W and x S:
# n x 32) and the loaded tiles stay in registers at n = 64 (the AOT test reads the spills).
TILE_OUT, TILE_IN = 32, 32


def output_constants(d_in: int, d_out: int, chunk: int, last: bool, dot: int) -> dict:
    return {
        "D_IN": d_in,
        "D_OUT": d_out,
        "CHUNK": chunk,
        "BN": block(chunk),
        "BK": min(TILE_IN, block(d_in)),
        "BD": min(TILE_OUT, block(d_out)),
        "LAST": last,
        "DOT": dot,
    }


def output_forward_triton(q, sp: StatePass, gates: ChunkGates, dot: int = 0) -> OutputPass:
    """Chunk-major q (C, B, H, n, d_in), fp32; the state pass's saved factors and states; the block's gates."""
    from titans_ts.memory.ops.triton.output_forward import output_layer_kernel

    coeff = coefficients(gates, sp)
    coeff_c, read = coeff.contiguous(), gates.read.contiguous()
    depth, n = len(sp.states), q.shape[-2]
    programs = q.shape[0] * q.shape[1] * q.shape[2]
    query_inputs, query_pre, similarities = [], [], []
    x = q.contiguous()
    for layer in range(depth):
        state = sp.states[layer].contiguous()
        d_in, d_out = state.shape[-2:]
        last = layer == depth - 1
        z = x.new_empty(*x.shape[:-1], d_out)
        similarity = x.new_empty(*x.shape[:-1], n)
        activation = z if last else torch.empty_like(z)
        constants = output_constants(d_in, d_out, n, last, dot)
        grid = (-(-d_out // constants["BD"]), programs)
        output_layer_kernel[grid](
            x,
            sp.key_inputs[layer].contiguous(),
            sp.key_grads[layer].contiguous(),
            state,
            coeff_c,
            read,
            z,
            similarity,
            activation,
            **constants,
            **launch_options("output_layer_kernel"),
        )
        query_inputs.append(x)
        similarities.append(similarity)
        if not last:
            query_pre.append(z)
            x = activation
    return OutputPass(z, coeff, query_inputs, query_pre, similarities)
