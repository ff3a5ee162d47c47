"""The Triton kernels compiled ahead of time for NVIDIA GPUs, on the CPU: what the interpreter cannot see.

In `make test`: every kernel compiles for sm_90 at the largest supported shapes (D 128 with hidden 4 x 128,
D 64 with hidden 128, chunk 64, depth 1 and 2) within the chip's limits: a kernel that breaks a compile
rule (such as a non-constexpr global), spills, or overflows shared memory fails here, not first on a GPU.
In `make test-kernels` (marker `aot`): the whole matrix of shapes, sm_90 and sm_80.
"""

import pytest

triton = pytest.importorskip("triton")

from titans_ts.memory.ops.triton.aot import kernels_for, matrix, measure  # noqa: E402

SHARED_BUDGET = 200 * 1024  # bytes: below the H100/H200's 227 KB per block, with room for the launch
COMPILE_BUDGET = 30.0  # seconds per kernel on this 2-core machine


def check_fits(dim, hidden, chunk, depth, arch):
    found = measure(dim, hidden, chunk, depth, arch)
    assert [r["kernel"] for r in found] == list(kernels_for(depth))
    for r in found:
        where = f"{r['kernel']} sm_{arch} D{dim} hidden {hidden} chunk {chunk} depth {depth}"
        assert r["registers"] > 0 and r["num_warps"] >= 1, where
        assert r["shared"] <= SHARED_BUDGET, f"{where}: {r['shared']} B of shared memory"
        assert r["stack"] == 0 and r["local"] == 0, f"{where}: spills ({r['stack']} B stack, {r['local']} B local)"
        assert r["compile_seconds"] <= COMPILE_BUDGET, f"{where}: compiled in {r['compile_seconds']:.0f} s"


@pytest.mark.parametrize("dim, hidden, depth", [(128, 128, 1), (128, 512, 2), (64, 128, 2)])
def test_the_largest_shapes_fit_an_h100(dim, hidden, depth):
    check_fits(dim, hidden, 64, depth, 90)


MATRIX = matrix()


@pytest.mark.aot
@pytest.mark.parametrize("dim, hidden, chunk, depth, arch", MATRIX)
def test_kernels_fit_the_chip(dim, hidden, chunk, depth, arch):
    check_fits(dim, hidden, chunk, depth, arch)
