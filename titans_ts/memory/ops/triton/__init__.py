"""`backend="triton"`: fused chunk kernels, forward and backward, behind a torch.autograd.Function.

Runs on CUDA tensors with a GPU, or on CPU tensors under the Triton interpreter (`TRITON_INTERPRET=1`
set before triton is imported; slow, for tests). State and accumulation are fp32 whatever the input
dtype; the forward keeps only chunk-start states (fp32) for the backward, which recomputes each chunk.
"""

from __future__ import annotations

import os

import torch

SUPPORTED_DEPTHS = (1, 2)
MAX_DIM = 128


def _interpreted() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def is_available() -> bool:
    """True when triton imports and there is a GPU, or the interpreter is on."""
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return torch.cuda.is_available() or _interpreted()


def neural_memory_triton(
    q, k, v, theta, alpha, eta, weights, momentum=None, *, chunk_size=16, max_grad_norm=None, recompute=True
):
    del recompute  # the kernels always recompute from chunk-start states
    _check_supported(q, weights, chunk_size)
    weights = tuple(weights)
    momentum = tuple(torch.zeros_like(w) for w in weights) if momentum is None else tuple(momentum)
    depth = len(weights)
    outputs = _TritonMemory.apply(chunk_size, max_grad_norm, depth, q, k, v, theta, alpha, eta, *weights, *momentum)
    return outputs[0], tuple(outputs[1 : 1 + depth]), tuple(outputs[1 + depth :])


def _check_supported(q, weights, chunk_size) -> None:
    if not is_available():
        raise RuntimeError(
            "backend='triton' needs the triton package and a CUDA GPU, or the Triton interpreter "
            "(set TRITON_INTERPRET=1 before importing triton; CPU, slow). Use backend='chunked' on CPU."
        )
    if q.is_cuda == _interpreted():
        where = "CUDA" if q.is_cuda else "CPU"
        raise RuntimeError(
            f"backend='triton' got {where} tensors but the interpreter is "
            f"{'on' if _interpreted() else 'off'}: CUDA tensors need a GPU run, CPU tensors "
            "need TRITON_INTERPRET=1."
        )
    if len(weights) not in SUPPORTED_DEPTHS:
        raise ValueError(
            f"backend='triton' supports memory depth {SUPPORTED_DEPTHS}; got depth {len(weights)}. "
            "Use backend='chunked' for deeper memories."
        )
    if chunk_size < 16 or chunk_size & (chunk_size - 1):
        raise ValueError(f"backend='triton' needs chunk_size a power of two >= 16; got {chunk_size}.")
    dims = [weights[0].shape[-2], *(w.shape[-1] for w in weights)]
    if max(dims[0], dims[-1]) > MAX_DIM or (len(dims) == 3 and dims[1] > 4 * MAX_DIM):
        raise ValueError(
            f"backend='triton' supports head dims up to {MAX_DIM} and hidden width up to {4 * MAX_DIM}; got {dims}."
        )


def _block(n: int) -> int:
    return max(16, 1 << (int(n) - 1).bit_length())


class _TritonMemory(torch.autograd.Function):
    @staticmethod
    def forward(ctx, chunk_size, max_grad_norm, depth, q, k, v, theta, alpha, eta, *state):
        from titans_ts.memory.ops.triton.kernels import memory_forward_kernel

        batch, heads, length, d_in = q.shape
        d_out = v.shape[-1]
        hidden = state[0].shape[-1] if depth == 2 else d_out
        inputs = [t.contiguous() for t in (q, k, v, theta, alpha, eta)]
        weights = [w.detach().float().contiguous() for w in state[:depth]]
        momentum = [s.detach().float().contiguous() for s in state[depth:]]
        n_chunks = -(-length // chunk_size)
        y = torch.empty(batch, heads, length, d_out, dtype=q.dtype, device=q.device)
        weights_out = [torch.empty_like(w) for w in weights]
        momentum_out = [torch.empty_like(s) for s in momentum]
        starts_w = [w.new_empty(batch, heads, n_chunks, *w.shape[-2:]) for w in weights]
        starts_s = [s.new_empty(batch, heads, n_chunks, *s.shape[-2:]) for s in momentum]
        layer2 = (lambda ts: ts[1]) if depth == 2 else (lambda ts: ts[0])  # noqa: E731 - unused at depth 1
        if length:
            memory_forward_kernel[(batch * heads,)](
                *inputs,
                weights[0],
                layer2(weights),
                momentum[0],
                layer2(momentum),
                y,
                weights_out[0],
                layer2(weights_out),
                momentum_out[0],
                layer2(momentum_out),
                starts_w[0],
                layer2(starts_w),
                starts_s[0],
                layer2(starts_s),
                length,
                n_chunks,
                float(max_grad_norm or 0.0),
                DEPTH=depth,
                CLIP=max_grad_norm is not None,
                SAVE_STARTS=True,
                D_IN=d_in,
                HID=hidden,
                D_OUT=d_out,
                BT=chunk_size,
                BD_IN=_block(d_in),
                BHID=_block(hidden),
                BD_OUT=_block(d_out),
            )
        else:
            weights_out, momentum_out = [w.clone() for w in weights], [s.clone() for s in momentum]
        ctx.save_for_backward(*inputs, *starts_w, *starts_s)
        ctx.config = (chunk_size, max_grad_norm, depth, d_in, hidden, d_out, n_chunks)
        ctx.dtypes = [t.dtype for t in (q, k, v, theta, alpha, eta, *state)]
        out_w = [w.to(s.dtype) for w, s in zip(weights_out, state[:depth], strict=True)]
        out_s = [m.to(s.dtype) for m, s in zip(momentum_out, state[depth:], strict=True)]
        return (y, *out_w, *out_s)

    @staticmethod
    def backward(ctx, d_y, *d_state):
        from titans_ts.memory.ops.triton.kernels import memory_backward_kernel

        chunk_size, max_grad_norm, depth, d_in, hidden, d_out, n_chunks = ctx.config
        saved = ctx.saved_tensors
        inputs, starts_w, starts_s = saved[:6], saved[6 : 6 + depth], saved[6 + depth :]
        batch, heads, length = inputs[0].shape[:3]
        d_weights = [g.float().contiguous().clone() for g in d_state[:depth]]
        d_momentum = [g.float().contiguous().clone() for g in d_state[depth:]]
        grads = [torch.zeros(t.shape, dtype=torch.float32, device=t.device) for t in inputs]
        layer2 = (lambda ts: ts[1]) if depth == 2 else (lambda ts: ts[0])  # noqa: E731
        if length:
            memory_backward_kernel[(batch * heads,)](
                *inputs,
                starts_w[0],
                layer2(starts_w),
                starts_s[0],
                layer2(starts_s),
                d_y.contiguous(),
                d_weights[0],
                layer2(d_weights),
                d_momentum[0],
                layer2(d_momentum),
                *grads,
                length,
                n_chunks,
                float(max_grad_norm or 0.0),
                DEPTH=depth,
                CLIP=max_grad_norm is not None,
                D_IN=d_in,
                HID=hidden,
                D_OUT=d_out,
                BT=chunk_size,
                BD_IN=_block(d_in),
                BHID=_block(hidden),
                BD_OUT=_block(d_out),
            )
        all_grads = [g.to(dtype) for g, dtype in zip([*grads, *d_weights, *d_momentum], ctx.dtypes, strict=True)]
        return (None, None, None, *all_grads)
