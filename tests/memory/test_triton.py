"""The fused Triton kernels against the reference, under the Triton interpreter on CPU."""

import os

import pytest
import torch

from tests.memory.helpers import memory_inputs
from titans_ts.memory import NeuralMemory
from titans_ts.memory.ops import neural_memory

triton = pytest.importorskip("triton")
pytestmark = pytest.mark.skipif(
    os.environ.get("TRITON_INTERPRET", "0") in ("", "0") and not torch.cuda.is_available(),
    reason="needs a GPU or TRITON_INTERPRET=1 (make test sets it)",
)


def rel_rmse(a, b):
    return ((a.double() - b).pow(2).mean().sqrt() / b.pow(2).mean().sqrt().clamp_min(1e-30)).item()


def _outputs_and_grads(inputs, backend, max_grad_norm, chunk_size=16):
    q, k, v, theta, alpha, eta, weights, mom = inputs
    y, w_T, m_T = neural_memory(
        q, k, v, theta, alpha, eta, weights, mom, chunk_size=chunk_size, backend=backend, max_grad_norm=max_grad_norm
    )
    g = torch.Generator().manual_seed(1)
    outputs = (y, *w_T, *m_T)
    loss = sum((o * torch.randn(o.shape, generator=g, dtype=torch.float64).to(o.dtype)).sum() for o in outputs)
    return outputs, torch.autograd.grad(loss, [q, k, v, theta, alpha, eta, *weights, *mom])


def _cast(inputs, dtype):
    """Gates and q/k/v in `dtype`; the memory state stays fp32 (as the module keeps it)."""
    q, k, v, theta, alpha, eta, weights, mom = inputs
    cast = [t.detach().to(dtype).requires_grad_(True) for t in (q, k, v, theta, alpha, eta)]
    state = [tuple(w.detach().float().requires_grad_(True) for w in ws) for ws in (weights, mom)]
    return (*cast, *state)


def _upcast(inputs):
    """The reference runs in float64 on exactly the (rounded) values the kernel saw."""
    q, k, v, theta, alpha, eta, weights, mom = inputs
    up = [t.detach().double().requires_grad_(True) for t in (q, k, v, theta, alpha, eta)]
    state = [tuple(w.detach().double().requires_grad_(True) for w in ws) for ws in (weights, mom)]
    return (*up, *state)


@pytest.mark.parametrize("depth", [1, 2])
@pytest.mark.parametrize("T", [1, 17, 64, 100])
@pytest.mark.parametrize("D", [16, 32])
@pytest.mark.parametrize("dtype, tolerance", [(torch.float32, 1e-4), (torch.float16, 5e-3)], ids=["fp32", "fp16"])
def test_triton_matches_reference(depth, T, D, dtype, tolerance):
    base = memory_inputs(B=2, H=2, T=T, D=D, hidden=2 * D, D_out=D, depth=depth, seed=T + D + depth)
    kernel_inputs = _cast(base, dtype)
    clip = 0.5 if T == 100 else None  # the surprise bound, in and out of the kernels
    out, grads = _outputs_and_grads(kernel_inputs, "triton", clip)
    ref_out, ref_grads = _outputs_and_grads(_upcast(kernel_inputs), "reference", clip)
    names = ["y"] + [f"W_T[{i}]" for i in range(depth)] + [f"S_T[{i}]" for i in range(depth)]
    names += ["dq", "dk", "dv", "dtheta", "dalpha", "deta"] + [f"dW0[{i}]" for i in range(depth)]
    names += [f"dS0[{i}]" for i in range(depth)]
    for name, a, b in zip(names, (*out, *grads), (*ref_out, *ref_grads), strict=True):
        assert a.dtype == (dtype if name in ("y", "dq", "dk", "dv", "dtheta", "dalpha", "deta") else torch.float32)
        assert rel_rmse(a, b) <= tolerance, name


@pytest.mark.parametrize("depth, hidden", [(1, 64), (2, 128)])
@pytest.mark.parametrize("clip", [None, 0.5])
def test_triton_at_the_large_shapes_with_several_tiles(depth, hidden, clip):
    """D 64 with hidden 128 and chunk 64 (several state-step tiles, several key row blocks), a partial chunk,
    and D_in != D_out; fp32 against the float64 reference."""
    base = memory_inputs(B=1, H=2, T=70, D=64, hidden=hidden, D_out=48, depth=depth, seed=depth)
    kernel_inputs = _cast(base, torch.float32)
    out, grads = _outputs_and_grads(kernel_inputs, "triton", clip, chunk_size=64)
    ref_out, ref_grads = _outputs_and_grads(_upcast(kernel_inputs), "reference", clip, chunk_size=64)
    for index, (a, b) in enumerate(zip((*out, *grads), (*ref_out, *ref_grads), strict=True)):
        assert rel_rmse(a, b) <= 1e-4, index


def test_triton_state_carries_across_calls():
    q, k, v, theta, alpha, eta, weights, mom = _cast(
        memory_inputs(B=1, H=2, T=48, D=16, hidden=32, D_out=16), torch.float32
    )
    whole = neural_memory(q, k, v, theta, alpha, eta, weights, mom, chunk_size=16, backend="triton")
    first = neural_memory(
        *(t[:, :, :32] for t in (q, k, v, theta, alpha, eta)), weights, mom, chunk_size=16, backend="triton"
    )
    second = neural_memory(
        *(t[:, :, 32:] for t in (q, k, v, theta, alpha, eta)),
        first[1],
        first[2],
        chunk_size=16,
        backend="triton",
    )
    torch.testing.assert_close(torch.cat([first[0], second[0]], dim=2), whole[0])
    for a, b in zip(second[1] + second[2], whole[1] + whole[2], strict=True):
        torch.testing.assert_close(a, b)


def test_neural_memory_module_with_triton_backend():
    torch.manual_seed(0)
    chunked = NeuralMemory(32, heads=2, depth=2, expansion=2, chunk_size=16, backend="chunked")
    fused = NeuralMemory(32, heads=2, depth=2, expansion=2, chunk_size=16, backend="triton")
    fused.load_state_dict(chunked.state_dict())
    x = torch.randn(2, 40, 32)
    y_ref, state_ref = chunked(x)
    y, state = fused(x)
    torch.testing.assert_close(y, y_ref, rtol=1e-4, atol=1e-5)
    (g_ref,) = torch.autograd.grad(y_ref.square().sum(), chunked.initial_weights[0])
    (g,) = torch.autograd.grad(y.square().sum(), fused.initial_weights[0])
    torch.testing.assert_close(g, g_ref, rtol=1e-4, atol=1e-5)
    # streaming and causality hold through the kernels too
    first, mid = fused(x[:, :16])
    second, _ = fused(x[:, 16:], mid)
    torch.testing.assert_close(torch.cat([first, second], dim=1), y, rtol=1e-5, atol=1e-6)
    changed = x.clone()
    changed[:, 20:] += 1.0
    torch.testing.assert_close(fused(changed)[0][:, :20], y[:, :20], rtol=0, atol=1e-6)


def test_unsupported_configurations_are_refused_clearly():
    inputs = memory_inputs(B=1, H=1, T=8, D=16, hidden=32, D_out=16, depth=3, dtype=torch.float32)
    with pytest.raises(ValueError, match="supports memory depth"):
        neural_memory(*inputs, chunk_size=16, backend="triton")
    inputs = memory_inputs(B=1, H=1, T=8, D=16, hidden=32, D_out=16, depth=2, dtype=torch.float32)
    with pytest.raises(ValueError, match="power of two in 16..128"):
        neural_memory(*inputs, chunk_size=8, backend="triton")


def test_float64_is_refused_naming_the_dtypes_not_computed_in_fp32():
    """The kernels compute in fp32; a float64 input (which the other backends now compute in, by torch's
    promotion) ran in fp32 without a word. It is refused, naming the float64 inputs and what to do."""
    inputs = memory_inputs(B=1, H=1, T=16, D=16, hidden=16, D_out=16, depth=2)  # float64
    q, k, v, theta, alpha, eta, weights, mom = inputs
    fp32_state = tuple(tuple(t.float() for t in ts) for ts in (weights, mom))
    with pytest.raises(TypeError, match=r"computes in float32 .* q is torch.float64, k is torch.float64.*'chunked'"):
        neural_memory(q, k, v, theta, alpha, eta, *fp32_state, chunk_size=16, backend="triton")
    fp32_inputs = [t.float() for t in (q, k, v, theta, alpha, eta)]
    with pytest.raises(TypeError, match=r"but momentum\[0\] is torch.float64, momentum\[1\] is torch.float64\."):
        neural_memory(*fp32_inputs, fp32_state[0], mom, chunk_size=16, backend="triton")


def test_triton_follows_the_precision_rule_of_the_other_backends():
    """fp16 inputs and an fp16 state: every backend computes in fp32 and returns y in q's dtype and the state in
    fp32 (Triton gave the state back in fp16, rounding it at every call, where chunked kept it in fp32)."""
    q, k, v, theta, alpha, eta, weights, mom = memory_inputs(B=1, H=2, T=20, D=16, hidden=16, D_out=16, depth=1)
    half = [t.half() for t in (q, k, v, theta, alpha, eta)]
    state = [tuple(t.half() for t in ts) for ts in (weights, mom)]
    chunked = neural_memory(*half, *state, chunk_size=16, backend="chunked")
    fused = neural_memory(*half, *state, chunk_size=16, backend="triton")
    for a, b in zip((fused[0], *fused[1], *fused[2]), (chunked[0], *chunked[1], *chunked[2]), strict=True):
        assert a.dtype == b.dtype
        assert rel_rmse(a, b.double()) <= 5e-3


def test_without_gpu_or_interpreter_the_error_says_what_to_do():
    import subprocess
    import sys

    script = (
        "import torch\n"
        "from tests.memory.helpers import memory_inputs\n"
        "from titans_ts.memory.ops import neural_memory\n"
        "inputs = memory_inputs(B=1, H=1, T=4, D=16, hidden=16, D_out=16, dtype=torch.float32)\n"
        "try:\n"
        "    neural_memory(*inputs, chunk_size=16, backend='triton')\n"
        "except RuntimeError as exc:\n"
        "    print(exc)\n"
    )
    env = {key: value for key, value in os.environ.items() if key != "TRITON_INTERPRET"}
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    done = subprocess.run([sys.executable, "-c", script], env=env, cwd=root, capture_output=True, text=True)
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    assert "TRITON_INTERPRET=1" in done.stdout and "backend='chunked'" in done.stdout, done.stderr


def test_auto_picks_triton_on_cuda_for_the_shapes_and_dtypes_it_was_verified_on(monkeypatch):
    import titans_ts.memory.ops as ops
    import titans_ts.memory.ops.triton as triton_ops

    monkeypatch.setattr(triton_ops, "is_available", lambda: True)  # as on a machine with a GPU
    q = torch.zeros(1, 2, 40, 64)
    shallow = (torch.zeros(1, 2, 64, 64),)
    deep = (torch.zeros(1, 2, 64, 128), torch.zeros(1, 2, 128, 64), torch.zeros(1, 2, 64, 64))
    assert ops.auto_backend("cuda", q=q, weights=shallow, chunk_size=64) == "triton"
    assert ops.auto_backend("cuda", q=q.bfloat16(), weights=shallow, chunk_size=64) == "triton"
    assert ops.auto_backend("cuda", q=q.double(), weights=shallow, chunk_size=64) == "chunked"  # not GPU-checked
    fp64_state = tuple(w.double() for w in shallow)  # triton would keep it in fp32; chunked keeps fp64
    assert ops.auto_backend("cuda", q=q, weights=fp64_state, chunk_size=64) == "chunked"
    fp64_gate = (torch.zeros(1, 2, 40, dtype=torch.float64),)  # the whole call would compute in float64
    assert ops.auto_backend("cuda", q=q, weights=shallow, chunk_size=64, others=fp64_gate) == "chunked"
    assert ops.auto_backend("cuda", q=q, weights=deep, chunk_size=64) == "chunked"  # depth 3
    assert ops.auto_backend("cuda", q=q, weights=shallow, chunk_size=8) == "chunked"  # below tl.dot's 16
    wide = (torch.zeros(1, 2, 256, 256),)
    assert ops.auto_backend("cuda", q=torch.zeros(1, 2, 40, 256), weights=wide, chunk_size=64) == "chunked"
    assert ops.auto_backend("cuda") == "chunked"  # no shapes to check: the backend that takes all
    assert ops.auto_backend("cpu", q=q, weights=shallow, chunk_size=64) == "chunked"
    monkeypatch.setattr(triton_ops, "is_available", lambda: False)  # CUDA torch without triton installed
    assert ops.auto_backend("cuda", q=q, weights=shallow, chunk_size=64) == "chunked"


@pytest.mark.parametrize(
    "depth, T, D, hidden, D_out, chunk, dtype, tolerance",
    [
        (1, 17, 16, 16, 16, 16, torch.float32, 1e-4),
        (2, 70, 64, 128, 48, 64, torch.float32, 1e-4),  # several D_out tiles and D_in steps, a partial chunk
        (2, 40, 20, 40, 12, 16, torch.float32, 1e-4),  # dims that are not powers of two
        (2, 64, 32, 64, 32, 32, torch.float16, 5e-3),
    ],
)
def test_the_output_pass_kernel_matches_the_reference_gradients_included(
    depth, T, D, hidden, D_out, chunk, dtype, tolerance
):
    """Pass (c) on its kernels, forward and backward (`fused_output=True`): outputs, final states and every
    gradient against the float64 reference (the backward's sums over tiles of D_in and D_out included)."""
    from titans_ts.memory.ops.triton import neural_memory_triton

    base = memory_inputs(B=2, H=2, T=T, D=D, hidden=hidden, D_out=D_out, depth=depth, seed=T + depth)
    kernel_inputs = _cast(base, dtype)
    q, k, v, theta, alpha, eta, weights, mom = kernel_inputs
    out = neural_memory_triton(
        q, k, v, theta, alpha, eta, weights, mom, chunk_size=chunk, max_grad_norm=0.5, fused_output=True
    )
    g = torch.Generator().manual_seed(1)
    outputs = (out[0], *out[1], *out[2])
    loss = sum((o * torch.randn(o.shape, generator=g, dtype=torch.float64).to(o.dtype)).sum() for o in outputs)
    grads = torch.autograd.grad(loss, [q, k, v, theta, alpha, eta, *weights, *mom])
    ref_out, ref_grads = _outputs_and_grads(_upcast(kernel_inputs), "reference", 0.5, chunk_size=chunk)
    for index, (a, b) in enumerate(zip((*outputs, *grads), (*ref_out, *ref_grads), strict=True)):
        assert rel_rmse(a, b) <= tolerance, index
