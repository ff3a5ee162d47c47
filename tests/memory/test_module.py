"""NeuralMemory and the blocks: streaming state, causality, ablation switches, stability."""

from dataclasses import replace

import pytest
import torch
from torch import nn

from titans_ts.memory import BLOCKS, MemoryConfig, NeuralMemory, make_block


def _seeded(seed, factory):
    torch.manual_seed(seed)
    return factory()


def _block(kind, dim=16, **options):
    extra = {"segment_len": 8} if kind == "mac" else {} if kind == "lmm" else {"window": 6}
    return make_block(kind, dim, heads=2, chunk_size=4, **extra, **options)


@pytest.mark.parametrize("depth", [1, 2, 3])
def test_module_two_calls_with_state_equal_one_call(depth):
    memory = _seeded(0, lambda: NeuralMemory(16, heads=2, depth=depth, chunk_size=4, persistent_tokens=3))
    x = torch.randn(2, 23, 16)
    whole, state = memory(x)
    first, mid = memory(x[:, :9])  # 3 persistent + 9 tokens = 3 chunks
    second, last = memory(x[:, 9:], mid)
    torch.testing.assert_close(torch.cat([first, second], dim=1), whole, rtol=1e-5, atol=1e-6)
    for a, b in zip(last.weights + last.momentum, state.weights + state.momentum, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert last.tokens_seen == state.tokens_seen == 26


def test_mac_streams_exactly_on_segment_boundaries():
    block = _seeded(1, lambda: _block("mac"))
    x = torch.randn(2, 20, 16)
    whole, _ = block(x)
    first, state = block(x[:, :8])
    second, _ = block(x[:, 8:], state)
    torch.testing.assert_close(torch.cat([first, second], dim=1), whole, rtol=1e-5, atol=1e-6)


def test_module_backends_agree_in_float64():
    memory = _seeded(2, lambda: NeuralMemory(12, heads=3, depth=2, chunk_size=4)).double()
    x = torch.randn(2, 11, 12, dtype=torch.float64)
    outputs = {}
    for backend in ("reference", "chunked"):
        memory.config = MemoryConfig(**{**memory.config.__dict__, "backend": backend})
        y, _ = memory(x)
        (grad,) = torch.autograd.grad(y.square().sum(), memory.initial_weights[0])
        outputs[backend] = (y, grad)
    for a, b in zip(outputs["chunked"], outputs["reference"], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind", BLOCKS)
@pytest.mark.parametrize("t", [0, 7, 13])
def test_blocks_are_causal(kind, t):
    block = _seeded(3, lambda: _block(kind, persistent_tokens=2))
    x = torch.randn(2, 21, 16)
    changed = x.clone()
    changed[:, t + 1 :] = torch.randn_like(changed[:, t + 1 :])
    before, _ = block(x)
    after, _ = block(changed)
    torch.testing.assert_close(before[:, : t + 1], after[:, : t + 1], rtol=0, atol=1e-6)
    assert (before[:, t + 1 :] - after[:, t + 1 :]).abs().max() > 1e-4


@pytest.mark.parametrize("kind", BLOCKS)
def test_every_parameter_of_a_block_gets_a_gradient(kind):
    block = _seeded(4, lambda: _block(kind, persistent_tokens=2))
    y, _ = block(torch.randn(2, 13, 16))
    y.square().mean().backward()
    missing = [name for name, p in block.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing


ABLATIONS = {
    "momentum": {"momentum": False},
    "forgetting": {"forgetting": False},
    "conv": {"conv": False},
    "persistent": {"persistent_tokens": 4},
    "depth": {"depth": 1},
}


def _sequence_task(seed=0, batch=8, length=48):
    """Next-step prediction of random sums of sines (a task a mixer must look back for)."""
    g = torch.Generator().manual_seed(seed)
    time = torch.arange(length + 1, dtype=torch.float32)
    freq = 0.1 + 0.4 * torch.rand(batch, 1, 3, generator=g)
    phase = 6.28 * torch.rand(batch, 1, 3, generator=g)
    series = torch.sin(freq * time[None, :, None] + phase).sum(-1, keepdim=True)
    return series[:, :-1], series[:, 1:]


class _TinyModel(nn.Module):
    def __init__(self, **memory_options):
        super().__init__()
        self.embed = nn.Linear(1, 16)
        self.memory = NeuralMemory(16, heads=2, chunk_size=8, **memory_options)
        self.head = nn.Linear(16, 1)

    def forward(self, x):
        h = self.embed(x)
        return self.head(h + self.memory(h)[0])


@pytest.mark.parametrize("name", list(ABLATIONS))
def test_each_ablation_switch_changes_the_output_and_still_trains(name):
    x, target = _sequence_task()
    base = _seeded(5, lambda: NeuralMemory(16, heads=2, chunk_size=8))
    switched = _seeded(5, lambda: NeuralMemory(16, heads=2, chunk_size=8, **ABLATIONS[name]))
    h = torch.randn(2, 20, 16)
    assert (base(h)[0] - switched(h)[0]).abs().max() > 1e-4

    model = _seeded(6, lambda: _TinyModel(**ABLATIONS[name]))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(40):
        loss = nn.functional.mse_loss(model(x), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert sum(losses[-5:]) / 5 < 0.5 * sum(losses[:5]) / 5, losses


@pytest.mark.slow
@pytest.mark.parametrize("depth", [2, 3])
def test_deep_memory_is_stable_on_16k_tokens(depth):
    memory = _seeded(7, lambda: NeuralMemory(32, heads=2, depth=depth))  # default settings otherwise
    x = (10.0 * torch.randn(1, 16384, 32)).requires_grad_(True)
    y, state = memory(x)
    assert torch.isfinite(y).all()
    assert all(torch.isfinite(w).all() for w in state.weights)
    y.square().mean().backward()
    assert all(torch.isfinite(p.grad).all() for p in memory.parameters())
    per_token = x.grad[0].norm(dim=-1)
    assert torch.isfinite(per_token).all()
    # Gradients reaching the first tokens have not exploded through 256 chunks of the inner loop.
    assert per_token[:1024].max() <= 1e3 * per_token[-1024:].max()


@pytest.mark.slow
def test_without_the_surprise_bound_the_same_memory_diverges():
    """The failure the bound prevents: unbounded surprise at 16k tokens gives NaN."""
    memory = _seeded(7, lambda: NeuralMemory(32, heads=2, depth=2, max_grad_norm=None))
    with torch.no_grad():
        y, _ = memory(10.0 * torch.randn(1, 16384, 32))
    assert not torch.isfinite(y).all()


def test_bad_configuration_is_refused():
    with pytest.raises(ValueError, match="depth must be an integer >= 1"):
        NeuralMemory(16, depth=0)
    with pytest.raises(ValueError, match=r"expected x of shape \(batch, time, 16\)"):
        NeuralMemory(16)(torch.randn(2, 5, 8))
    with pytest.raises(ValueError, match="unknown block 'mamba'"):
        make_block("mamba", 16)
    with pytest.raises(ValueError, match="heads must be an integer >= 1; got 0"):
        NeuralMemory(16, heads=0)
    memory = NeuralMemory(16, heads=2, depth=2)
    with pytest.raises(TypeError, match="as a torch.Tensor .* got ndarray"):
        memory(torch.randn(2, 5, 16).numpy())
    with pytest.raises(TypeError, match="floating-point x; got torch.int64"):
        memory(torch.ones(2, 5, 16, dtype=torch.long))
    with pytest.raises(TypeError, match=r"x is torch.float64 but this memory's parameters are torch.float32"):
        memory(torch.randn(2, 5, 16, dtype=torch.float64))
    with torch.autocast("cpu", dtype=torch.bfloat16):  # mixed precision stays allowed
        assert memory(torch.randn(2, 5, 16, dtype=torch.bfloat16))[0].shape == (2, 5, 16)
    _, state = memory(torch.randn(2, 5, 16))
    shallow = NeuralMemory(16, heads=2, depth=1)
    for other, x in ((shallow, torch.randn(2, 5, 16)), (memory, torch.randn(3, 5, 16))):  # depth, batch
        with pytest.raises(ValueError, match="the state does not fit this memory and batch"):
            other(x, state)
    with pytest.raises(TypeError, match="state must be the MemoryState"):
        memory(torch.randn(2, 5, 16), tuple(state.weights))
    for options, message in (  # accepted, then failing at the first forward, or never (a memory of width 1)
        ({"backend": "bogus"}, "backend must be one of"),
        ({"chunk_size": 2.5}, "chunk_size and conv_kernel must be integers"),
        ({"max_grad_norm": float("nan")}, "max_grad_norm must be a positive finite number"),
        ({"max_lr": 0}, "max_lr must be a positive finite number"),
        ({"max_lr": float("inf")}, "max_lr must be a positive finite number"),  # every output NaN
        ({"expansion": -1}, "expansion must be a positive finite number"),
        ({"heads": 3}, "dim=16 is not a multiple of heads=3"),  # a 15-wide memory, unsaid
        ({"depth": True}, "depth must be an integer >= 1; got True"),  # a matrix memory, unsaid
        ({"depth": 2.0}, "depth must be an integer >= 1; got 2.0"),  # failed inside the MLP's build
        ({"head_dim": 0}, "head_dim must be an integer >= 1; got 0"),  # read as "not given"
        ({"heads": 2.0}, "heads must be an integer >= 1; got 2.0"),
    ):
        with pytest.raises(ValueError, match=message):
            NeuralMemory(16, **{"heads": 2, **options})
    with pytest.raises(ValueError, match="dim must be an integer >= 1; got 16.0"):
        NeuralMemory(16.0)
    for options, message in (  # kept (a window of 2.5), or torch's own errors as the block was built
        ({"kind": "mag", "window": 2.5}, "window must be an integer >= 1 or None; got 2.5"),
        ({"kind": "mac", "segment_len": 2.5}, "segment_len must be an integer >= 1; got 2.5"),
        ({"kind": "mag", "persistent_tokens": -1}, "persistent_tokens must be an integer >= 0; got -1"),
        ({"kind": "mal", "head_dim": 6}, "dim=18 must be divisible by heads=4: the blocks' attention splits dim"),
    ):
        dim = 18 if "head_dim" in options else 16
        with pytest.raises(ValueError, match=message):
            make_block(options.pop("kind"), dim, heads=4, **options)
    shorter_kernel = NeuralMemory(16, heads=2, conv_kernel=2)  # was blamed on theta's length
    with pytest.raises(ValueError, match=r"the state's conv cache is \(2, 3, 48\); this memory's \(conv_kernel=2\)"):
        shorter_kernel(torch.randn(2, 5, 16), state)
    in_float64 = memory(torch.randn(2, 3, 16), state.to(torch.float64))[0]  # its conv cache failed in to_out
    assert in_float64.dtype == torch.float32 and torch.isfinite(in_float64).all()
    for kind in BLOCKS:  # the attention ran first in MAC and MAG: torch's own errors
        block = _block(kind)
        for x, error, message in (
            (torch.randn(2, 5, 8), ValueError, r"expected x of shape \(batch, time, 16\)"),
            (torch.randn(5, 16), ValueError, r"expected x of shape \(batch, time, 16\)"),
            (torch.randn(2, 5, 16, dtype=torch.float64), TypeError, "x is torch.float64 but this memory's"),
        ):
            with pytest.raises(error, match=message):
                block(x)


@pytest.mark.parametrize("kind", BLOCKS)
def test_empty_batches_and_sequences_give_empty_outputs(kind):
    """B = 0 crashed the chunked path and every attention block, T = 0 MAC, MAG and MAL (reshapes with -1)."""
    for backend in ("reference", "chunked"):
        block = _block(kind, backend=backend, compile=False)
        for shape in ((0, 5, 16), (2, 0, 16)):
            assert block(torch.randn(*shape))[0].shape == shape


@pytest.mark.parametrize("backend", ["reference", "chunked"])
def test_a_graph_through_the_memory_can_be_walked_twice_and_checked(backend):
    """The chunked backward freed what it kept on the first pass: retain_graph (truncated back-propagation
    with a loss per call), gradcheck and a second torch.autograd.grad failed with an AttributeError."""
    memory = _seeded(0, lambda: NeuralMemory(8, heads=2, depth=2, chunk_size=4, backend=backend, compile=False))
    memory = memory.double()
    x = torch.randn(1, 8, 8, dtype=torch.float64, requires_grad=True)
    first, state = memory(x[:, :4])
    second, _ = memory(x[:, 4:], state)
    first.pow(2).sum().backward(retain_graph=True)
    second.pow(2).sum().backward()
    reference = _seeded(0, lambda: NeuralMemory(8, heads=2, depth=2, chunk_size=4, backend="reference"))
    reference = reference.double()
    x_ref = x.detach().clone().requires_grad_()
    first_ref, state_ref = reference(x_ref[:, :4])
    (first_ref.pow(2).sum() + reference(x_ref[:, 4:], state_ref)[0].pow(2).sum()).backward()
    torch.testing.assert_close(x.grad, x_ref.grad, rtol=1e-10, atol=1e-12)
    small = torch.randn(1, 7, 8, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: memory(t)[0], (small,), eps=1e-6, atol=1e-6)
    loss = memory(small)[0].sum()
    loss.backward()
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        loss.backward()  # freed, and said so (not an AttributeError)


def test_the_chunked_op_refuses_what_it_cannot_differentiate_right():
    """An input changed in place after the forward silently changed the chunked gradients; gradients of
    gradients were an AttributeError."""
    from titans_ts.memory.ops import neural_memory

    torch.manual_seed(0)
    q, k, v = (torch.randn(1, 1, 4, 4, requires_grad=True) for _ in range(3))
    theta, alpha, eta = (torch.rand(1, 1, 4) for _ in range(3))
    weights = (torch.randn(1, 1, 4, 4), torch.randn(1, 1, 4, 4))
    y, *_ = neural_memory(q, k, v, theta, alpha, eta, weights, chunk_size=4, backend="chunked")
    with torch.no_grad():
        k.mul_(2)
    with pytest.raises(RuntimeError, match="inplace"):
        y.sum().backward()
    q.grad = None
    y, *_ = neural_memory(q, k, v, theta, alpha, eta, weights, chunk_size=4, backend="chunked")
    y.sum().backward()
    untouched, q.grad = q.grad, None
    y, weights_out, momentum_out = neural_memory(q, k, v, theta, alpha, eta, weights, chunk_size=4, backend="chunked")
    with torch.no_grad():  # the returned state is the caller's: changing it leaves the backward alone
        weights_out[0].mul_(0.5)
        momentum_out[0].zero_()
    y.sum().backward(retain_graph=True)
    torch.testing.assert_close(q.grad, untouched)
    with pytest.raises(RuntimeError, match="cannot be differentiated again"):
        torch.autograd.grad(y.sum(), q, create_graph=True)  # a gradient penalty would have been constant


def test_a_mac_block_in_bf16_reads_its_memory_across_segments():
    """The chunked path keeps the state in fp32: retrieving it with bf16 queries (MAC's second segment) failed."""
    block = _seeded(0, lambda: _block("mac", compile=False)).to(torch.bfloat16)
    y, _ = block(torch.randn(1, 20, 16, dtype=torch.bfloat16))
    assert y.dtype == torch.bfloat16 and torch.isfinite(y.float()).all()


def test_under_cpu_bf16_autocast_the_memory_state_stays_fp32_and_close():
    memory = _seeded(8, lambda: NeuralMemory(16, heads=2, depth=2, chunk_size=4))
    x = torch.randn(2, 151, 16)  # 37 chunks and a partial one: bf16 updates would drift by ~0.1 here
    with torch.no_grad():
        exact, exact_state = memory(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            mixed, state = memory(x)
    assert all(w.dtype == torch.float32 for w in state.weights + state.momentum)
    for a, b in zip(state.weights, exact_state.weights, strict=True):  # only the projections saw bf16
        torch.testing.assert_close(a, b, rtol=0, atol=5e-3)
    torch.testing.assert_close(mixed.float(), exact, rtol=0, atol=0.05)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        memory(x[:, :19])[0].float().sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in memory.parameters() if p.requires_grad)


@pytest.mark.slow
def test_compiled_module_equals_the_eager_module_in_float64():
    torch.manual_seed(0)
    eager = NeuralMemory(16, heads=2, depth=2, chunk_size=8, persistent_tokens=2, compile=False).double()
    compiled = NeuralMemory(config=replace(eager.config, compile=True)).double()
    compiled.load_state_dict(eager.state_dict())
    x = torch.randn(2, 21, 16, dtype=torch.float64)
    results = []
    for memory in (eager, compiled):
        y, state = memory(x)
        y.square().sum().backward()
        results.append((y, *state.weights, *(p.grad for p in memory.parameters())))
    for a, b in zip(*results, strict=True):
        assert (a - b).abs().max() <= 1e-9 * b.abs().max()


def test_compile_auto_compiles_a_call_shape_once_its_eager_work_would_pay_for_a_compile(monkeypatch):
    """The work is counted in tokens (a forward without gradients a third), never read off the clock: the switch
    comes at the same call on every run, however slow each call was."""
    import time

    from titans_ts.memory import autocompile

    monkeypatch.setitem(autocompile.AUTO_COMPILE, "after_tokens", 150)
    monkeypatch.setitem(autocompile.AUTO_COMPILE, "min_tokens", 40)
    clock = iter(range(0, 10**9, 1000))
    monkeypatch.setattr(time, "perf_counter", lambda: float(next(clock)))  # every call "takes" 1000 s
    memory = NeuralMemory(16, heads=2, chunk_size=4)
    assert memory.config.compile == "auto"
    small, large = torch.randn(2, 10, 16), torch.randn(2, 30, 16)
    choice = memory._compile
    assert not choice.now(large)
    for _ in range(8):
        memory(small)[0].sum().backward()  # 20 tokens a call: below min_tokens, never compiled however long
    with torch.no_grad():
        for _ in range(2):
            memory(large)  # 60 tokens without gradients: 20 each, towards the no-grad variant's own count
        assert choice.eager_tokens[choice._key(large, stateful=False)] == pytest.approx(40.0)
    for _ in range(2):
        memory(large)[0].sum().backward()  # 60 tokens a training step: 120 of 150
    assert not choice.now(small) and not choice.now(large)
    memory(large)[0].sum().backward()  # 180 >= 150: the next call at this shape runs compiled
    assert choice.now(large) and not choice.now(small)
    assert not choice.now(torch.randn(2, 31, 16))  # each shape on its own (fixed-shape compiles)
    with torch.no_grad():  # a variant with its own graph earns its own compile
        assert not choice.now(large)
    assert not choice.now(large, stateful=True) and not choice.now(large.double())


def test_compile_auto_leaves_cuda_to_its_own_fast_path_and_the_setting_is_checked(monkeypatch):
    from titans_ts.memory import autocompile

    monkeypatch.setitem(autocompile.AUTO_COMPILE, "after_tokens", 0)
    choice = autocompile.CompileChoice("auto")
    cuda_like = torch.empty(64, 128, 16, device="meta")  # any device that is not the CPU
    choice.record(cuda_like)
    assert not choice.now(cuda_like)
    assert autocompile.CompileChoice(True).now(cuda_like) and not autocompile.CompileChoice(False).now(cuda_like)
    for bad in ("yes", 1, 1.0, 0.0, None):
        with pytest.raises(ValueError, match='compile must be True, False or "auto"'):
            NeuralMemory(16, compile=bad)


def test_compile_auto_thresholds_follow_the_committed_measurement():
    import json
    from pathlib import Path

    from titans_ts.memory.autocompile import AUTO_COMPILE

    report = Path(__file__).resolve().parents[2] / "experiments" / "results" / "compile_cost.json"
    table = json.loads(report.read_text())["table"]
    for row in table:  # the eager tokens a compile's time buys at that call: the threshold within 2x of each
        buys = row["tokens_per_call"] / (row["eager_ms"] / 1e3) * row["compile_seconds"]
        assert 0.5 <= AUTO_COMPILE["after_tokens"] / buys <= 2.0, row["shape"]
    worth_it = [row["tokens_per_call"] for row in table if row["speedup"] >= 1.2]
    assert worth_it and AUTO_COMPILE["min_tokens"] <= min(worth_it)


def test_a_state_with_gradients_can_be_deep_copied_and_still_carries_them():
    """copy.deepcopy(state) failed unless the state was detached first (torch deep-copies only graph leaves).
    The copy has storage of its own and keeps the graph: continuing from it gives the same outputs and the same
    gradients to M_0 as continuing from the original. A detached state copies as plain tensors."""
    import copy

    memory = _seeded(4, lambda: NeuralMemory(8, heads=2, depth=2, chunk_size=4, compile=False))
    x = torch.randn(2, 12, 8)
    _, state = memory(x[:, :8])
    assert not state.weights[0].is_leaf
    copied = copy.deepcopy(state)
    assert copied.tokens_seen == state.tokens_seen and copied.conv_cache is not None
    tensors = [(*s.weights, *s.momentum, s.conv_cache) for s in (copied, state)]
    for a, b in zip(*tensors, strict=True):
        assert torch.equal(a, b) and a.data_ptr() != b.data_ptr()
    results = []
    for carried in (state, copied):
        y, _ = memory(x[:, 8:], carried)
        grads = torch.autograd.grad(y.square().sum(), list(memory.initial_weights), retain_graph=True)  # shared
        results.append((y, *grads))
    for a, b in zip(*results, strict=True):
        assert a.abs().max() > 0
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    with torch.no_grad():  # the copy is the caller's: changing it leaves the original alone
        copied.weights[0].zero_()
    assert state.weights[0].abs().max() > 0
    snapshot = copy.deepcopy(state.detach())
    assert all(t.is_leaf and not t.requires_grad for t in (*snapshot.weights, *snapshot.momentum))
    with torch.no_grad():  # under no_grad the copy still keeps the graph: deepcopy is no operation to record
        assert copy.deepcopy(state).weights[0].requires_grad


def test_a_mag_block_checks_its_input_once_and_says_what_is_wrong(monkeypatch):
    """The block checked x and the state, then its memory checked them again."""
    block = _seeded(5, lambda: _block("mag", compile=False))
    calls = []
    check = NeuralMemory._check_input
    monkeypatch.setattr(NeuralMemory, "_check_input", lambda self, x, state: calls.append(1) or check(self, x, state))
    _, state = block(torch.randn(2, 7, 16))
    block(torch.randn(2, 5, 16), state)
    assert len(calls) == 2  # one check per call
    with pytest.raises(ValueError, match=r"expected x of shape \(batch, time, 16\); got \(2, 5, 8\)"):
        block(torch.randn(2, 5, 8))
    with pytest.raises(ValueError, match="the state does not fit this memory and batch"):
        block(torch.randn(3, 5, 16), state)
