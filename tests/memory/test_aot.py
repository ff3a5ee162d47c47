"""The Triton kernels compiled ahead of time for NVIDIA GPUs, on the CPU: what the interpreter cannot see.

In `make test`: every kernel compiles for sm_90 at a small shape (a kernel that breaks a compile rule, such
as a non-constexpr global, fails here, not first on a GPU), and the resource reader works.
In `make test-kernels` (marker `aot`): the whole matrix of shapes against the chip's limits.
"""

import itertools

import pytest

triton = pytest.importorskip("triton")

from titans_ts.memory.ops.triton.aot import KERNELS, measure  # noqa: E402

SHARED_BUDGET = 200 * 1024  # bytes: below the H100/H200's 227 KB per block, with room for the launch
COMPILE_BUDGET = 30.0  # seconds per kernel on this 2-core machine


@pytest.mark.parametrize("depth", [1, 2])
def test_every_kernel_compiles_for_sm90_and_its_resources_are_read(depth):
    found = measure(dim=16, hidden=32, chunk=16, depth=depth, arch=90)
    assert [r["kernel"] for r in found] == list(KERNELS)
    for r in found:
        assert r["registers"] > 0 and r["shared"] > 0 and r["num_warps"] >= 1


MATRIX = [
    (dim, hidden, chunk, depth, arch)
    for dim, factor, chunk, arch in itertools.product((32, 64, 128), (1, 2, 4), (16, 64), (90, 80))
    for depth, hidden in ((1, dim), (2, factor * dim))
    if depth == 2 or factor == 1
]


@pytest.mark.aot
@pytest.mark.parametrize("dim, hidden, chunk, depth, arch", MATRIX)
def test_kernels_fit_the_chip(dim, hidden, chunk, depth, arch):
    for r in measure(dim, hidden, chunk, depth, arch):
        where = f"{r['kernel']} sm_{arch} D{dim} hidden {hidden} chunk {chunk} depth {depth}"
        assert r["shared"] <= SHARED_BUDGET, f"{where}: {r['shared']} B of shared memory"
        assert r["stack"] == 0 and r["local"] == 0, f"{where}: spills ({r['stack']} B stack, {r['local']} B local)"
        assert r["compile_seconds"] <= COMPILE_BUDGET, f"{where}: compiled in {r['compile_seconds']:.0f} s"
