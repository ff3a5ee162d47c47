"""Pass (c) on the Triton kernels of `output_forward.py` and `output_backward.py`, with the interfaces of
`chunked.output.output_forward` and `output_backward` (the same saved tensors and gradients)."""

from __future__ import annotations

import torch

from titans_ts.memory.ops.chunked.gates import ChunkGates
from titans_ts.memory.ops.chunked.output import OutputGrads, OutputPass, coefficients
from titans_ts.memory.ops.chunked.state import StatePass
from titans_ts.memory.ops.triton.state_pass import TILE, block, launch_options

# A program's tile of D_out and step over D_in: 32 x 32, so that its accumulators (x a^T: n x n, x W and x S:
# n x 32) and the loaded tiles stay in registers at n = 64 (the AOT test reads the spills).
TILE_OUT, TILE_IN = 32, 32


def input_tile(chunk: int, dot: int, kernel: str) -> int:
    """The step over D_in: 32, or 16 with fp32 operands (the FMA products of 32-wide tiles spilled 112-264
    bytes at chunk 64), and 16 in the input side at chunk 16 (8 bytes on sm_90 at D 128, hidden 256; the forward
    spilled 8 bytes there at 16). The register allocation moves with each of these (docs/kernels.md)."""
    if dot == 0 or (kernel == "input_side_kernel" and chunk <= TILE):
        return TILE
    return TILE_IN


def _layer_tiles(d_in: int, d_out: int, chunk: int, tile_in: int) -> dict:
    """A layer's sizes and tiles: its chunk's rows (BN), the step over D_in (BK) and the tile of D_out (BD)."""
    return {
        "D_IN": d_in,
        "D_OUT": d_out,
        "CHUNK": chunk,
        "BN": block(chunk),
        "BK": min(tile_in, block(d_in)),
        "BD": min(TILE_OUT, block(d_out)),
    }


def output_constants(d_in: int, d_out: int, chunk: int, last: bool, dot: int) -> dict:
    tile_in = input_tile(chunk, dot, "output_layer_kernel")
    return _layer_tiles(d_in, d_out, chunk, tile_in) | {"LAST": last, "DOT": dot}


def similarity_grads_constants(d_out: int, chunk: int, accumulate: bool, dot: int) -> dict:
    tiles = {"D_OUT": d_out, "CHUNK": chunk, "BN": block(chunk), "BD": min(TILE_OUT, block(d_out))}
    return tiles | {"ACCUMULATE": accumulate, "DOT": dot}


def input_side_constants(d_in: int, d_out: int, chunk: int, first: bool, dot: int) -> dict:
    sizes = _layer_tiles(d_in, d_out, chunk, input_tile(chunk, dot, "input_side_kernel"))
    return sizes | {"TILES": -(-d_in // sizes["BK"]), "FIRST": first, "DOT": dot}


def output_side_constants(d_in: int, d_out: int, chunk: int, dot: int) -> dict:
    return _layer_tiles(d_in, d_out, chunk, TILE_IN) | {"DOT": dot}


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


def output_backward_triton(out: OutputPass, sp: StatePass, gates: ChunkGates, d_y, dot: int = 0) -> OutputGrads:
    """`chunked.output.output_backward` on the kernels: the layers in reverse, three launches each."""
    from titans_ts.memory.ops.triton.output_backward import (
        input_side_kernel,
        output_side_kernel,
        similarity_grads_kernel,
    )

    depth, n = len(sp.states), d_y.shape[-2]
    programs = d_y.shape[0] * d_y.shape[1] * d_y.shape[2]
    coeff, read = out.coeff.contiguous(), gates.read.contiguous()
    d_coeff, d_similarity = torch.empty_like(coeff), torch.empty_like(coeff)
    d_direct, d_keys, d_read = [None] * depth, [None] * depth, None
    dz = d_y.contiguous()
    for layer in range(depth - 1, -1, -1):
        x, a = out.query_inputs[layer].contiguous(), sp.key_inputs[layer].contiguous()
        state, similarity = sp.states[layer].contiguous(), out.similarity[layer].contiguous()
        d_in, d_out = state.shape[-2:]
        first = layer == 0
        pre = x if first else out.query_pre[layer - 1].contiguous()  # unread when first
        constants = similarity_grads_constants(d_out, n, layer < depth - 1, dot)
        similarity_grads_kernel[(programs,)](
            dz, sp.key_grads[layer].contiguous(), coeff, similarity, d_similarity, d_coeff,
            **constants, **launch_options("similarity_grads_kernel"),
        )  # fmt: skip
        constants = input_side_constants(d_in, d_out, n, first, dot)
        dx, d_a = torch.empty_like(x), torch.empty_like(a)
        read_shares = x.new_empty(*x.shape[:-2], constants["TILES"], n, 2)
        input_side_kernel[(constants["TILES"], programs)](
            dz, x, a, state, d_similarity, read, pre, dx, d_a, read_shares,
            **constants, **launch_options("input_side_kernel"),
        )  # fmt: skip
        d_g, d_state = torch.empty_like(dz), torch.empty_like(state)
        constants = output_side_constants(d_in, d_out, n, dot)
        output_side_kernel[(-(-d_out // constants["BD"]), programs)](
            dz, x, coeff, similarity, read, d_g, d_state, **constants, **launch_options("output_side_kernel")
        )
        d_direct[layer], d_keys[layer] = d_state, (d_a, d_g)
        layer_d_read = read_shares.sum(-3)
        d_read = layer_d_read if d_read is None else d_read + layer_d_read
        dz = dx
    return OutputGrads(dz, d_direct, d_keys, d_coeff, d_read)
