"""The chunk-parallel backend against the token-by-token oracle, and the oracle against the maths."""

import pytest
import torch
import torch.nn.functional as F

from tests.memory.helpers import memory_inputs, rel_err
from titans_ts.memory.ops import neural_memory


def _run_with_grads(backend, inputs, chunk_size, max_grad_norm=None, seed=1, recompute=False):
    q, k, v, theta, alpha, eta, weights, mom = inputs
    options = dict(chunk_size=chunk_size, backend=backend, max_grad_norm=max_grad_norm, recompute=recompute)
    y, w_T, m_T = neural_memory(q, k, v, theta, alpha, eta, weights, mom, **options)
    g = torch.Generator().manual_seed(seed)
    outputs = (y, *w_T, *m_T)
    loss = sum((out * torch.randn(out.shape, generator=g, dtype=out.dtype)).sum() for out in outputs)
    leaves = [q, k, v, theta, alpha, eta, *weights, *(mom or ())]
    grads = torch.autograd.grad(loss, leaves)
    return outputs, grads


@pytest.mark.parametrize("recompute", [False, True], ids=["autograd", "recompute"])
@pytest.mark.parametrize("depth", [1, 2, 3])
@pytest.mark.parametrize("T", [1, 7, 63, 100])
@pytest.mark.parametrize("chunk_size", [1, 8, 16, 64])
def test_chunked_equals_reference_in_float64(depth, T, chunk_size, recompute):
    inputs = memory_inputs(
        B=2,
        H=3,
        T=T,
        D=5,
        hidden=7,
        D_out=6,
        depth=depth,
        requires_grad=True,
        seed=depth * 1000 + T * 10 + chunk_size,
    )
    ref_out, ref_grads = _run_with_grads("reference", inputs, chunk_size)
    out, grads = _run_with_grads("chunked", inputs, chunk_size, recompute=recompute)
    names = ["y"] + [f"weights_T[{i}]" for i in range(depth)] + [f"momentum_T[{i}]" for i in range(depth)]
    for name, a, b in zip(names, out, ref_out, strict=True):
        assert rel_err(a, b) <= 1e-9, name
    grad_names = (
        ["q", "k", "v", "theta", "alpha", "eta"]
        + [f"W0[{i}]" for i in range(depth)]
        + [f"S0[{i}]" for i in range(depth)]
    )
    for name, a, b in zip(grad_names, grads, ref_grads, strict=True):
        assert torch.isfinite(b).all() and b.abs().max() > 0, name
        assert rel_err(a, b) <= 1e-9, f"d/d{name}"


@pytest.mark.parametrize("bound", [None, 0.3])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_recompute_runs_the_same_passes_bit_for_bit(dtype, bound):
    """recompute=True keeps chunk-start states and runs each chunk's passes again; on a CPU the blocks are
    single chunks either way, so outputs and gradients are the very same numbers."""
    inputs = memory_inputs(T=37, depth=2, dtype=dtype, requires_grad=True)
    kept = _run_with_grads("chunked", inputs, 8, max_grad_norm=bound)
    recomputed = _run_with_grads("chunked", inputs, 8, max_grad_norm=bound, recompute=True)
    for a, b in zip((*kept[0], *kept[1]), (*recomputed[0], *recomputed[1]), strict=True):
        assert torch.equal(a, b)


@pytest.mark.parametrize("backend, recompute", [("reference", False), ("chunked", False), ("chunked", True)])
def test_surprise_clipping_agrees_and_bounds_the_update(backend, recompute):
    inputs = memory_inputs(T=40, depth=2, max_lr=1.0, requires_grad=True)
    ref_out, ref_grads = _run_with_grads("reference", inputs, 8, max_grad_norm=0.3)
    out, grads = _run_with_grads(backend, inputs, 8, max_grad_norm=0.3, recompute=recompute)
    for a, b in zip((*out, *grads), (*ref_out, *ref_grads), strict=True):
        assert rel_err(a, b) <= 1e-9
    # chunk 1, no momentum, no forgetting: each step moves the weights by at most theta * max_grad_norm.
    q, k, v, theta, _, _, weights, _ = memory_inputs(T=20, depth=2, max_lr=1.0)
    zeros = torch.zeros_like(theta)
    _, w1, _ = neural_memory(
        q[:, :, :1],
        k[:, :, :1],
        v[:, :, :1],
        theta[:, :, :1],
        zeros[:, :, :1],
        zeros[:, :, :1],
        weights,
        chunk_size=1,
        backend=backend,
        max_grad_norm=0.3,
    )
    step = torch.sqrt(sum(((a - b) ** 2).sum((-1, -2)) for a, b in zip(w1, weights, strict=True)))
    assert (step <= theta[:, :, 0] * 0.3 + 1e-12).all()
    assert (step > 0).all()


def _online_gd_by_autograd(q, k, v, theta, alpha, eta, weights):
    """chunk_size=1 written out with torch.autograd for the surprise: online GD + momentum + decay."""
    weights = [w.clone() for w in weights]
    momentum = [torch.zeros_like(w) for w in weights]
    B, H, T, _ = q.shape
    ys = torch.zeros(B, H, T, weights[-1].shape[-1], dtype=q.dtype)
    for b in range(B):
        for h in range(H):
            W = [w[b, h] for w in weights]
            S = [m[b, h] for m in momentum]
            for t in range(T):
                params = [w.detach().requires_grad_(True) for w in W]
                out = k[b, h, t]
                for i, p in enumerate(params):
                    out = out @ p
                    if i < len(params) - 1:
                        out = F.gelu(out)
                loss = ((out - v[b, h, t]) ** 2).sum()
                surprise = torch.autograd.grad(loss, params)
                S = [eta[b, h, t] * s - theta[b, h, t] * u for s, u in zip(S, surprise, strict=True)]
                W = [(1 - alpha[b, h, t]) * w + s for w, s in zip(W, S, strict=True)]
                y = q[b, h, t]
                for i, w in enumerate(W):
                    y = y @ w
                    if i < len(W) - 1:
                        y = F.gelu(y)
                ys[b, h, t] = y
    return ys


@pytest.mark.parametrize("depth", [1, 2])
def test_chunk_size_one_is_online_gradient_descent(depth):
    q, k, v, theta, alpha, eta, weights, _ = memory_inputs(B=1, H=2, T=9, depth=depth, momentum=False)
    expected = _online_gd_by_autograd(q, k, v, theta, alpha, eta, weights)
    for backend in ("reference", "chunked"):
        y, _, _ = neural_memory(q, k, v, theta, alpha, eta, weights, chunk_size=1, backend=backend)
        assert rel_err(y, expected) <= 1e-10, backend


@pytest.mark.parametrize("backend", ["reference", "chunked"])
def test_linear_memory_without_momentum_or_forgetting_is_the_delta_rule(backend):
    q, k, v, theta, _, _, weights, _ = memory_inputs(B=2, H=2, T=12, depth=1, momentum=False)
    zeros = torch.zeros_like(theta)
    y, w_T, _ = neural_memory(q, k, v, theta, zeros, zeros, weights, chunk_size=1, backend=backend)
    W = weights[0].clone()
    expected = []
    for t in range(q.shape[2]):
        k_t, v_t = k[:, :, t, :, None], v[:, :, t, None, :]  # column key, row value
        # W <- W + 2 theta k (v - k^T W): the delta rule (the factor 2: the loss has no 1/2).
        W = W + 2 * theta[:, :, t, None, None] * k_t @ (v_t - k_t.transpose(-1, -2) @ W)
        expected.append(q[:, :, t, None, :] @ W)
    assert rel_err(y, torch.cat(expected, dim=2)) <= 1e-12
    assert rel_err(w_T[0], W) <= 1e-12


@pytest.mark.parametrize("backend", ["reference", "chunked"])
@pytest.mark.parametrize("depth", [1, 3])
def test_two_calls_with_carried_state_equal_one_call(backend, depth):
    q, k, v, theta, alpha, eta, weights, mom = memory_inputs(T=45, depth=depth)
    whole = neural_memory(q, k, v, theta, alpha, eta, weights, mom, chunk_size=8, backend=backend)
    cut = 24  # a chunk boundary
    first = [t[:, :, :cut] for t in (q, k, v, theta, alpha, eta)]
    second = [t[:, :, cut:] for t in (q, k, v, theta, alpha, eta)]
    y1, w1, m1 = neural_memory(*first, weights, mom, chunk_size=8, backend=backend)
    y2, w2, m2 = neural_memory(*second, w1, m1, chunk_size=8, backend=backend)
    assert rel_err(torch.cat([y1, y2], dim=2), whole[0]) <= 1e-12
    for a, b in zip((*w2, *m2), (*whole[1], *whole[2]), strict=True):
        assert rel_err(a, b) <= 1e-12


def test_float32_chunked_is_close_to_float64_reference():
    inputs64 = memory_inputs(T=100, depth=2)
    inputs32 = [t.float() if torch.is_tensor(t) else tuple(x.float() for x in t) for t in inputs64]
    y64, _, _ = neural_memory(*inputs64, chunk_size=16, backend="reference")
    y32, _, _ = neural_memory(*inputs32, chunk_size=16, backend="chunked")
    assert rel_err(y32.double(), y64) <= 1e-4


def test_bad_arguments_are_named():
    q, k, v, theta, alpha, eta, weights, mom = memory_inputs(T=5)
    with pytest.raises(ValueError, match="theta must be"):
        neural_memory(q, k, v, theta[:, :, :3], alpha, eta, weights)
    with pytest.raises(ValueError, match="D_in=5 -> D_out=6"):
        neural_memory(q, k, v[..., :4], theta, alpha, eta, weights)
    with pytest.raises(ValueError, match="chunk_size must be a positive integer"):
        neural_memory(q, k, v, theta, alpha, eta, weights, chunk_size=0)
    with pytest.raises(ValueError, match="backend must be one of"):
        neural_memory(q, k, v, theta, alpha, eta, weights, backend="cuda")
    with pytest.raises(ValueError, match="momentum must have exactly the shapes"):
        neural_memory(q, k, v, theta, alpha, eta, weights, mom[:1])
    with pytest.raises(TypeError, match="k must be floating point; got torch.int64"):
        neural_memory(q, k.long(), v, theta, alpha, eta, weights)
    with pytest.raises(TypeError, match=r"weights\[0\] must be a torch.Tensor; got ndarray"):
        neural_memory(q, k, v, theta, alpha, eta, (weights[0].numpy(), *weights[1:]))
    with pytest.raises(ValueError, match="max_grad_norm must be positive or None; got -1.0"):
        neural_memory(q, k, v, theta, alpha, eta, weights, max_grad_norm=-1.0)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("depth", [1, 2])
def test_half_precision_inputs_with_fp32_state_match_the_reference(dtype, depth):
    """bf16/fp16 q, k, v and gates with an fp32 memory: the recurrence runs in fp32 (state and step)."""
    inputs = memory_inputs(B=2, H=2, T=37, D=8, hidden=12, D_out=8, depth=depth, seed=7)
    q, k, v, theta, alpha, eta, weights, mom = inputs
    low = [t.to(dtype).requires_grad_() for t in (q, k, v, theta, alpha, eta)]
    state = [t.float().requires_grad_() for t in (*weights, *mom)]
    y, w_T, m_T = neural_memory(*low, tuple(state[:depth]), tuple(state[depth:]), chunk_size=8, backend="chunked")
    assert y.dtype == dtype and all(t.dtype == torch.float32 for t in (*w_T, *m_T))
    # The oracle sees exactly the rounded inputs, in float64.
    exact = [t.detach().double().requires_grad_() for t in (*low, *state)]
    y_ref, w_ref, m_ref = neural_memory(
        *exact[:6], tuple(exact[6 : 6 + depth]), tuple(exact[6 + depth :]), chunk_size=8, backend="reference"
    )
    assert rel_err(y.double(), y_ref) <= 1e-2  # y is rounded to the input dtype on the way out
    for a, b in zip((*w_T, *m_T), (*w_ref, *m_ref), strict=True):
        assert rel_err(a.double(), b) <= 1e-5
    g = torch.Generator().manual_seed(3)
    direction = [torch.randn(t.shape, generator=g, dtype=torch.float64) for t in (y_ref, *w_ref, *m_ref)]
    loss = sum((t.double() * d).sum() for t, d in zip((y, *w_T, *m_T), direction, strict=True))
    loss_ref = sum((t * d).sum() for t, d in zip((y_ref, *w_ref, *m_ref), direction, strict=True))
    grads = torch.autograd.grad(loss, [*low, *state])
    grads_ref = torch.autograd.grad(loss_ref, exact)
    for leaf, a, b in zip([*low, *state], grads, grads_ref, strict=True):
        assert a.dtype == leaf.dtype
        assert rel_err(a.double(), b) <= 2e-2


@pytest.mark.parametrize("backend", ["reference", "chunked"])
def test_under_autocast_the_op_keeps_its_state_and_step_in_fp32(backend):
    """The oracle too: it ran its matmuls in bf16 under autocast, where the chunked backend turns autocast off."""
    inputs = memory_inputs(B=2, H=2, T=40, D=8, hidden=12, D_out=8, depth=2, seed=9)
    inputs32 = [t.float() if torch.is_tensor(t) else tuple(x.float() for x in t) for t in inputs]
    plain = neural_memory(*inputs32, chunk_size=16, backend=backend)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        cast = neural_memory(*inputs32, chunk_size=16, backend=backend)
    assert cast[0].dtype == torch.float32 and all(t.dtype == torch.float32 for t in (*cast[1], *cast[2]))
    for a, b in zip((cast[0], *cast[1], *cast[2]), (plain[0], *plain[1], *plain[2]), strict=True):
        assert rel_err(a, b) <= 1e-6  # bf16 matmuls inside would be off by ~1e-2


@pytest.mark.slow
def test_compiled_chunked_passes_equal_the_reference_in_float64():
    """compile=True runs the same passes through torch.compile: still exact (partial last chunk, clipping)."""
    pytest.importorskip("torch._inductor")
    inputs = memory_inputs(B=2, H=2, T=21, D=5, hidden=7, D_out=6, depth=2, requires_grad=True, seed=11)
    ref_out, ref_grads = _run_with_grads("reference", inputs, 8, max_grad_norm=0.3)
    q, k, v, theta, alpha, eta, weights, mom = inputs
    y, w_T, m_T = neural_memory(
        q, k, v, theta, alpha, eta, weights, mom, chunk_size=8, backend="chunked", max_grad_norm=0.3, compile=True
    )
    g = torch.Generator().manual_seed(1)
    outputs = (y, *w_T, *m_T)
    loss = sum((out * torch.randn(out.shape, generator=g, dtype=out.dtype)).sum() for out in outputs)
    grads = torch.autograd.grad(loss, [q, k, v, theta, alpha, eta, *weights, *mom])
    for a, b in zip((*outputs, *grads), (*ref_out, *ref_grads), strict=True):
        assert rel_err(a, b) <= 1e-9


@pytest.mark.parametrize("block", ["all", 3], ids=["all-chunks", "blocks-of-3"])
@pytest.mark.parametrize("depth", [1, 2])
@pytest.mark.parametrize("T", [5, 40, 63])
def test_chunked_passes_over_blocks_of_chunks_equal_the_reference(monkeypatch, block, depth, T):
    """The GPU layout (all chunks in one block, gathered last rows of uneven chunks) checked here on CPU."""
    from titans_ts.memory.ops.chunked import chunk

    monkeypatch.setattr(chunk, "chunks_per_block", lambda device, chunks: chunks if block == "all" else block)
    inputs = memory_inputs(B=2, H=2, T=T, D=5, hidden=7, D_out=6, depth=depth, requires_grad=True, seed=T + depth)
    ref_out, ref_grads = _run_with_grads("reference", inputs, 8, max_grad_norm=0.4)
    out, grads = _run_with_grads("chunked", inputs, 8, max_grad_norm=0.4)
    for a, b in zip((*out, *grads), (*ref_out, *ref_grads), strict=True):
        assert rel_err(a, b) <= 1e-9


def _mixed_leaves(inputs, input_dtype, state_dtype):
    """q, k, v and the gates in `input_dtype`, the state in `state_dtype`, all fresh leaves."""
    q, k, v, theta, alpha, eta, weights, mom = inputs
    low = [t.detach().to(input_dtype).requires_grad_() for t in (q, k, v, theta, alpha, eta)]
    state = [tuple(t.detach().to(state_dtype).requires_grad_() for t in ts) for ts in (weights, mom)]
    return (*low, *state)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize(
    "depth, T, chunk_size, H, bound",
    [(1, 37, 8, 3, None), (2, 21, 16, 2, 0.3), (3, 9, 4, 4, None)],  # odd T, partial last chunks
)
def test_reference_takes_mixed_dtypes_as_the_chunked_backend_does(dtype, depth, T, chunk_size, H, bound):
    """Half-precision inputs with an fp32 state: the oracle failed ("expected scalar type BFloat16 but found
    Float") where the chunked backend ran. Both compute in fp32 (`common.Precision`) and give y in q's dtype,
    the state in fp32 and each gradient in its input's dtype, so they differ by fp32 rounding only (and one
    rounding to `dtype` of what comes back in it)."""
    base = memory_inputs(B=2, H=H, T=T, D=5, hidden=7, D_out=6, depth=depth, seed=depth * 100 + T)
    names = ["y"] + [f"W_T[{i}]" for i in range(depth)] + [f"S_T[{i}]" for i in range(depth)]
    names += ["dq", "dk", "dv", "dtheta", "dalpha", "deta"]
    names += [f"dW0[{i}]" for i in range(depth)] + [f"dS0[{i}]" for i in range(depth)]
    runs = {}
    for backend in ("reference", "chunked"):
        leaves = _mixed_leaves(base, dtype, torch.float32)
        out, grads = _run_with_grads(backend, leaves, chunk_size, max_grad_norm=bound)
        flat_leaves = [*leaves[:6], *leaves[6], *leaves[7]]
        assert out[0].dtype == dtype and all(t.dtype == torch.float32 for t in out[1:]), backend
        assert [g.dtype for g in grads] == [t.dtype for t in flat_leaves], backend
        runs[backend] = (*out, *grads)
    for name, a, b in zip(names, runs["chunked"], runs["reference"], strict=True):
        tolerance = 1e-5 if a.dtype == torch.float32 else torch.finfo(dtype).eps
        assert rel_err(a.double(), b.double()) <= tolerance, name


@pytest.mark.parametrize("backend", ["reference", "chunked"])
@pytest.mark.parametrize("wide", ["inputs", "momentum"])
def test_a_float64_input_runs_the_whole_recurrence_in_float64(backend, wide):
    """float64 q, k, v and gates with an fp32 state (or an fp32 memory with a float64 momentum) computed in
    fp32 without a word. Now the recurrence runs in torch's promotion of the inputs' dtypes, as `a + b` would:
    float64, with the state coming back in float64 and equal to the all-float64 oracle on the same values."""
    inputs = memory_inputs(B=2, H=3, T=29, depth=2, requires_grad=True, seed=5)
    q, k, v, theta, alpha, eta, weights, mom = inputs
    if wide == "inputs":
        weights, mom = (tuple(t.float() for t in ts) for ts in (weights, mom))
    else:
        q, k, v, theta, alpha, eta = (t.float() for t in (q, k, v, theta, alpha, eta))
        weights = tuple(w.float() for w in weights)
    mixed = (q, k, v, theta, alpha, eta, weights, mom)
    exact = [t.detach().double().requires_grad_() for t in (q, k, v, theta, alpha, eta)]
    exact += [tuple(t.detach().double().requires_grad_() for t in ts) for ts in (weights, mom)]
    ref_out, _ = _run_with_grads("reference", exact, 8)
    out, grads = _run_with_grads(backend, mixed, 8)
    assert out[0].dtype == q.dtype and all(t.dtype == torch.float64 for t in out[1:])
    assert rel_err(out[0].double(), ref_out[0]) <= (1e-9 if q.dtype == torch.float64 else 1e-6)  # y in q's dtype
    for a, b in zip(out[1:], ref_out[1:], strict=True):
        assert rel_err(a, b) <= 1e-9  # fp32 arithmetic would be ~1e-6 off
    leaves = [q, k, v, theta, alpha, eta, *weights, *mom]
    assert [g.dtype for g in grads] == [t.dtype for t in leaves]
