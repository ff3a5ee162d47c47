"""NeuralMemory on CUDA: forward/backward against the same weights on the CPU, streaming, bf16 autocast."""

from __future__ import annotations

import copy

import pytest
import torch

from titans_ts.memory import MemoryConfig, NeuralMemory, make_block

pytestmark = pytest.mark.gpu

TOL = dict(rtol=1e-4, atol=1e-5)


def _memory(backend="chunked", seed=0, **options):
    torch.manual_seed(seed)
    options = {"heads": 2, "depth": 2, "chunk_size": 16, **options}
    return NeuralMemory(config=MemoryConfig(dim=32, backend=backend, **options))


@pytest.mark.parametrize("backend", ["chunked", "auto"])
def test_forward_backward_on_cuda_match_the_cpu(backend):
    cpu = _memory(backend="chunked", persistent_tokens=2)
    gpu = copy.deepcopy(cpu).cuda()
    gpu.config = MemoryConfig(**{**cpu.config.__dict__, "backend": backend})  # auto: what users get
    x = torch.randn(2, 50, 32)
    y_cpu, state_cpu = cpu(x)
    y_gpu, state_gpu = gpu(x.cuda())
    assert y_gpu.device.type == "cuda" and all(w.is_cuda for w in state_gpu.weights + state_gpu.momentum)
    torch.testing.assert_close(y_gpu.cpu(), y_cpu, **TOL)
    y_cpu.square().mean().backward()
    y_gpu.square().mean().backward()
    for (name, p_cpu), p_gpu in zip(cpu.named_parameters(), gpu.parameters(), strict=True):
        assert p_gpu.grad is not None and torch.isfinite(p_gpu.grad).all(), name
        torch.testing.assert_close(p_gpu.grad.cpu(), p_cpu.grad, rtol=1e-3, atol=1e-5, msg=name)


def test_two_calls_with_state_equal_one_call_on_cuda():
    memory = _memory().cuda()
    x = torch.randn(2, 80, 32, device="cuda")
    whole, state = memory(x)
    first, middle = memory(x[:, :48])  # 3 whole chunks of 16
    second, last = memory(x[:, 48:], middle)
    torch.testing.assert_close(torch.cat([first, second], dim=1), whole, **TOL)
    for a, b in zip(last.weights + last.momentum, state.weights + state.momentum, strict=True):
        torch.testing.assert_close(a, b, **TOL)


@pytest.mark.parametrize("kind", ["lmm", "mac", "mag", "mal"])
def test_blocks_run_forward_and_backward_on_cuda(kind):
    torch.manual_seed(0)
    extra = {"segment_len": 16} if kind == "mac" else {} if kind == "lmm" else {"window": 16}
    block = make_block(kind, 32, heads=2, chunk_size=16, **extra).cuda()
    y, _ = block(torch.randn(2, 40, 32, device="cuda"))
    y.square().mean().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in block.parameters() if p.requires_grad)


def test_bf16_autocast_on_cuda_keeps_the_memory_state_fp32():
    memory = _memory().cuda()
    x = torch.randn(2, 40, 32, device="cuda")
    reference, _ = memory(x)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        y, state = memory(x)
    assert all(w.dtype == torch.float32 for w in state.weights + state.momentum)
    y.float().square().mean().backward()
    assert torch.isfinite(y.float()).all()
    assert (y.float() - reference).abs().max() < 0.1 * reference.abs().max()
