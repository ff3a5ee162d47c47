"""The recurrence backends on CUDA against the float64 reference on the CPU: outputs, final states, gradients.

fp32 inputs: relative RMSE <= 1e-4. bf16 q/k/v and gates with fp32 memory state: <= 3e-2 against the
reference run on the same bf16-rounded values, upcast to float64 (so only the arithmetic differs).
"""

from __future__ import annotations

import os

import pytest
import torch

from tests.memory.helpers import memory_inputs
from titans_ts.memory.ops import neural_memory

pytestmark = pytest.mark.gpu

TOLERANCE = {torch.float32: 1e-4, torch.bfloat16: 3e-2}
CHUNK = 16  # the Triton kernels need a power of two >= 16
FUSED_OUTPUT = "triton+output-kernels"  # neural_memory_triton(fused_output=True): pass (c) on its kernels too


def rel_rmse(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.detach().double().cpu(), b.detach().double().cpu()
    return ((a - b).pow(2).mean().sqrt() / b.pow(2).mean().sqrt().clamp_min(1e-30)).item()


def _leaves(base, dtype, device, state_dtype):
    """q, k, v and the gates in `dtype`, the memory state (weights, momentum) in `state_dtype`, on `device`."""
    q, k, v, theta, alpha, eta, weights, mom = base
    inputs = [t.detach().to(dtype).to(device).requires_grad_(True) for t in (q, k, v, theta, alpha, eta)]
    state = [tuple(w.detach().to(state_dtype).to(device).requires_grad_(True) for w in ws) for ws in (weights, mom)]
    return (*inputs, *state)


def _rounded_reference_leaves(leaves):
    """The reference's inputs: exactly the values the device run saw, in float64 on the CPU."""
    q, k, v, theta, alpha, eta, weights, mom = leaves
    inputs = [t.detach().cpu().double().requires_grad_(True) for t in (q, k, v, theta, alpha, eta)]
    state = [tuple(w.detach().cpu().double().requires_grad_(True) for w in ws) for ws in (weights, mom)]
    return (*inputs, *state)


def _outputs_and_grads(leaves, backend, max_grad_norm):
    q, k, v, theta, alpha, eta, weights, mom = leaves
    if backend == FUSED_OUTPUT:
        from titans_ts.memory.ops.triton import neural_memory_triton

        options = {"chunk_size": CHUNK, "max_grad_norm": max_grad_norm, "fused_output": True}
        y, w_T, m_T = neural_memory_triton(q, k, v, theta, alpha, eta, weights, mom, **options)
    else:
        y, w_T, m_T = neural_memory(
            q, k, v, theta, alpha, eta, weights, mom, chunk_size=CHUNK, backend=backend, max_grad_norm=max_grad_norm
        )
    outputs = (y, *w_T, *m_T)
    g = torch.Generator().manual_seed(1)  # the same cotangents for every backend
    cotangents = [torch.randn(o.shape, generator=g, dtype=torch.float64).to(o.device, o.dtype) for o in outputs]
    loss = sum((o * c).sum() for o, c in zip(outputs, cotangents, strict=True))
    grads = torch.autograd.grad(loss, [q, k, v, theta, alpha, eta, *weights, *mom])
    return outputs, grads


def _compare(backend, depth, T, D, dtype, max_grad_norm):
    base = memory_inputs(B=2, H=2, T=T, D=D, hidden=2 * D, D_out=D, depth=depth, seed=depth * 1000 + T + D)
    leaves = _leaves(base, dtype, "cuda", torch.float32)
    out, grads = _outputs_and_grads(leaves, backend, max_grad_norm)
    ref_out, ref_grads = _outputs_and_grads(_rounded_reference_leaves(leaves), "reference", max_grad_norm)
    for tensor in (*out, *grads):
        assert tensor.device.type == "cuda"
    names = ["y"] + [f"weights_T[{i}]" for i in range(depth)] + [f"momentum_T[{i}]" for i in range(depth)]
    names += ["dq", "dk", "dv", "dtheta", "dalpha", "deta"]
    names += [f"dW0[{i}]" for i in range(depth)] + [f"dS0[{i}]" for i in range(depth)]
    errors = {n: rel_rmse(a, b) for n, a, b in zip(names, (*out, *grads), (*ref_out, *ref_grads), strict=True)}
    bad = {n: e for n, e in errors.items() if not e <= TOLERANCE[dtype]}
    assert not bad, f"{backend} {dtype} vs float64 reference, rel-RMSE over {TOLERANCE[dtype]}: {bad}"


CASES = pytest.mark.parametrize(
    "depth, T, D, max_grad_norm",
    [(1, 1, 16, None), (1, 63, 60, None), (2, 100, 32, 0.5), (2, 64, 16, None)],
    ids=["d1-T1", "d1-T63-D60", "d2-T100-clip", "d2-T64"],
)
DTYPES = pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=["fp32", "bf16-inputs"])


@CASES
@DTYPES
def test_chunked_on_cuda_matches_the_float64_reference(depth, T, D, max_grad_norm, dtype):
    _compare("chunked", depth, T, D, dtype, max_grad_norm)


def _triton_usable() -> tuple[bool, str]:
    if not torch.cuda.is_available():
        return False, "needs a CUDA GPU: torch.cuda.is_available() is False here"
    if os.environ.get("TRITON_INTERPRET", "0") not in ("", "0"):
        return False, "the Triton interpreter is on (TRITON_INTERPRET); `make test-gpu` runs the compiled kernels"
    try:
        from titans_ts.memory.ops.triton import is_available
    except ImportError:
        return False, "titans_ts.memory.ops.triton cannot be imported"
    return (True, "") if is_available() else (False, "triton is not installed (pip install 'titans-ts[gpu]')")


_USABLE, _WHY_NOT = _triton_usable()


@pytest.mark.skipif(not _USABLE, reason=_WHY_NOT or "triton usable")
@CASES
@DTYPES
def test_triton_on_cuda_matches_the_float64_reference(depth, T, D, max_grad_norm, dtype):
    _compare("triton", depth, T, D, dtype, max_grad_norm)


@pytest.mark.skipif(not _USABLE, reason=_WHY_NOT or "triton usable")
@CASES
@DTYPES
def test_triton_with_the_output_pass_kernels_on_cuda_matches_the_float64_reference(depth, T, D, max_grad_norm, dtype):
    _compare(FUSED_OUTPUT, depth, T, D, dtype, max_grad_norm)
