"""The Triton kernels compiled ahead of time for NVIDIA GPUs, on the CPU: what the interpreter cannot see.

In `make test`: every kernel compiles for sm_90 at the largest supported shapes (D 128 with hidden 4 x 128,
D 64 with hidden 128, chunk 64, depth 1 and 2) within the chip's limits, with bf16 operands, and for sm_90 and
sm_80 with fp32 operands at D 64, hidden 128: a kernel that breaks a compile
rule (such as a non-constexpr global), spills, or overflows shared memory fails here, not first on a GPU.
In `make test-kernels` (marker `aot`): the whole matrix of shapes, sm_90 and sm_80.
"""

import pytest

triton = pytest.importorskip("triton")

from titans_ts.memory.ops.triton.aot import kernels_for, matrix, measure  # noqa: E402

SHARED_BUDGET = 200 * 1024  # bytes: below the H100/H200's 227 KB per block, with room for the launch
COMPILE_BUDGET = 30.0  # seconds per kernel on this 2-core machine


def check_fits(dim, hidden, chunk, depth, arch, dot=1):
    found = measure(dim, hidden, chunk, depth, arch, dot=dot)
    assert [r["kernel"] for r in found] == list(kernels_for(depth))
    for r in found:
        where = f"{r['kernel']} sm_{arch} D{dim} hidden {hidden} chunk {chunk} depth {depth} dot {dot}"
        assert r["registers"] > 0 and r["num_warps"] >= 1, where
        assert r["shared"] <= SHARED_BUDGET, f"{where}: {r['shared']} B of shared memory"
        assert r["stack"] == 0 and r["local"] == 0, f"{where}: spills ({r['stack']} B stack, {r['local']} B local)"
        assert r["compile_seconds"] <= COMPILE_BUDGET, f"{where}: compiled in {r['compile_seconds']:.0f} s"


@pytest.mark.parametrize("dim, hidden, depth", [(128, 128, 1), (128, 512, 2), (64, 128, 2)])
def test_the_largest_shapes_fit_an_h100(dim, hidden, depth):
    check_fits(dim, hidden, 64, depth, 90)


@pytest.mark.parametrize("arch", [90, 80])
def test_fp32_operands_fit_at_the_bench_shape(arch):
    """fp32 inputs (no autocast) put fp32 operands into tl.dot ("ieee", FMA products): the bf16 checks above do not
    see their register use. At make bench-gpu's op shape (D 64, hidden 128, chunk 64) no kernel spills; at D 128
    two still spill 16-24 bytes (docs/kernels.md)."""
    check_fits(64, 128, 64, 2, arch, dot=0)


MATRIX = matrix()


@pytest.mark.aot
@pytest.mark.parametrize("dim, hidden, chunk, depth, arch", MATRIX)
def test_kernels_fit_the_chip(dim, hidden, chunk, depth, arch):
    check_fits(dim, hidden, chunk, depth, arch)
