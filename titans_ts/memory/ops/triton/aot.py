"""Compile the kernels ahead of time for a GPU that is not here, and read what they need from the chip.

The interpreter (TRITON_INTERPRET=1) checks the arithmetic but hides every compile rule and resource
limit. `compile_resources` runs Triton's real compiler for an NVIDIA target (sm_90, sm_80) on the CPU, with
no GPU, and reads the cubin with the `cuobjdump --dump-resource-usage` shipped in the triton wheel:
registers per thread, stack and local (spill) bytes, static and dynamic shared memory. `KERNELS` names the
kernels and how their compile-time constants follow from a shape.

    python -m titans_ts.memory.ops.triton.aot --dim 64 --hidden 128 --chunk 64 --depth 2 --arch 90
"""

from __future__ import annotations

import inspect
import json
import os
import re
import subprocess
import tempfile
import time
from dataclasses import asdict, dataclass

SHARED_LIMIT = {90: 232_448, 80: 166_912}  # bytes of shared memory per block (opt-in maximum)


@dataclass(frozen=True)
class Resources:
    kernel: str
    arch: int
    registers: int  # per thread
    stack: int  # bytes per thread (spills and local arrays)
    local: int
    shared_static: int
    shared_dynamic: int  # what the launch asks for; the usual overflow
    num_warps: int
    compile_seconds: float

    @property
    def shared(self) -> int:
        return self.shared_static + self.shared_dynamic

    def to_dict(self) -> dict:
        return asdict(self) | {"shared": self.shared}


def kernel_constants(dim: int, hidden: int, chunk: int, depth: int, clip: bool = True, dot: int = 1) -> dict:
    """The compile-time constants of each kernel for a head of `dim` (in = out), as the launcher sets them
    (`dot` 1: bf16 operands into tl.dot, the training case)."""
    from titans_ts.memory.ops.triton import state_pass as sp
    from titans_ts.memory.ops.triton.output_pass import (
        input_side_constants,
        output_constants,
        output_side_constants,
        similarity_grads_constants,
    )

    hidden = hidden if depth == 2 else dim
    shape = (dim, hidden, dim, chunk, depth)
    return {
        "output_layer_kernel": output_constants(dim, hidden, chunk, depth == 1, dot),
        "output_layer_kernel[layer 2]": output_constants(hidden, dim, chunk, True, dot),
        "similarity_grads_kernel": similarity_grads_constants(hidden, chunk, depth == 2, dot),
        "similarity_grads_kernel[layer 2]": similarity_grads_constants(dim, chunk, False, dot),
        "input_side_kernel": input_side_constants(dim, hidden, chunk, True, dot),
        "input_side_kernel[layer 2]": input_side_constants(hidden, dim, chunk, False, dot),
        "output_side_kernel": output_side_constants(dim, hidden, chunk, dot),
        "output_side_kernel[layer 2]": output_side_constants(hidden, dim, chunk, dot),
        "keys_kernel": sp.keys_constants(*shape, clip, dot),
        "state_step_kernel": sp.step_constants(*shape, dot) | {"LAYER": 0},
        "state_step_kernel[layer 2]": sp.step_constants(*shape, dot) | {"LAYER": 1},
        f"keys_backward_kernel_{depth}": sp.keys_backward_constants(*shape, clip, dot),
        "state_backward_kernel": sp.state_backward_constants(*shape, 0, dot),
        "state_backward_kernel[layer 2]": sp.state_backward_constants(*shape, 1, dot),
    }


def _kernels() -> dict:
    from titans_ts.memory.ops.triton import output_backward, output_forward, state_backward, state_forward

    return {
        "output_layer_kernel": output_forward.output_layer_kernel,
        "output_layer_kernel[layer 2]": output_forward.output_layer_kernel,
        "similarity_grads_kernel": output_backward.similarity_grads_kernel,
        "similarity_grads_kernel[layer 2]": output_backward.similarity_grads_kernel,
        "input_side_kernel": output_backward.input_side_kernel,
        "input_side_kernel[layer 2]": output_backward.input_side_kernel,
        "output_side_kernel": output_backward.output_side_kernel,
        "output_side_kernel[layer 2]": output_backward.output_side_kernel,
        "keys_kernel": state_forward.keys_kernel,
        "state_step_kernel": state_forward.state_step_kernel,
        "state_step_kernel[layer 2]": state_forward.state_step_kernel,
        "keys_backward_kernel_1": state_backward.keys_backward_kernel_1,
        "keys_backward_kernel_2": state_backward.keys_backward_kernel_2,
        "state_backward_kernel": state_backward.state_backward_kernel,
        "state_backward_kernel[layer 2]": state_backward.state_backward_kernel,
    }


def kernels_for(depth: int) -> tuple[str, ...]:
    """The kernels (and their per-layer specialisations) a memory of this depth launches."""
    if depth == 1:
        return (
            "keys_kernel",
            "state_step_kernel",
            "keys_backward_kernel_1",
            "state_backward_kernel",
            "output_layer_kernel",
            "similarity_grads_kernel",
            "input_side_kernel",
            "output_side_kernel",
        )
    return (
        "keys_kernel",
        "state_step_kernel",
        "state_step_kernel[layer 2]",
        "keys_backward_kernel_2",
        "state_backward_kernel",
        "state_backward_kernel[layer 2]",
        "output_layer_kernel",
        "output_layer_kernel[layer 2]",
        "similarity_grads_kernel",
        "similarity_grads_kernel[layer 2]",
        "input_side_kernel",
        "input_side_kernel[layer 2]",
        "output_side_kernel",
        "output_side_kernel[layer 2]",
    )


KERNELS = kernels_for(2)


def _signature(fn, constants: dict, pointer: str) -> dict:
    """Triton types by parameter name: *_ptr -> pointers, n_real -> i32, other scalars -> fp32."""
    signature = {}
    for name in inspect.signature(fn.fn).parameters:
        if name in constants:
            signature[name] = "constexpr"
        elif name.endswith("_ptr"):
            signature[name] = f"*{pointer}"
        elif name == "n_real":
            signature[name] = "i32"
        else:
            signature[name] = "fp32"
    return signature


def cuobjdump() -> str:
    import triton

    return os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin", "cuobjdump")


def compile_resources(name: str, constants: dict, arch: int = 90, pointer: str = "fp32") -> Resources:
    """Compile kernel `name` for sm_<arch> with these constants; its resources (no GPU needed)."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    fn = _kernels()[name]
    params = list(inspect.signature(fn.fn).parameters)
    source = ASTSource(
        fn=fn,
        signature=_signature(fn, constants, pointer),
        constexprs={(params.index(k),): v for k, v in constants.items()},
    )
    started = time.perf_counter()
    from titans_ts.memory.ops.triton.state_pass import launch_options

    compiled = triton.compile(source, target=GPUTarget("cuda", arch, 32), options=launch_options(name.split("[")[0]))
    seconds = time.perf_counter() - started
    usage = _resource_usage(compiled.asm["cubin"], name)
    return Resources(
        kernel=name,
        arch=arch,
        registers=usage["REG"],
        stack=usage["STACK"],
        local=usage["LOCAL"],
        shared_static=usage["SHARED"],
        shared_dynamic=int(compiled.metadata.shared),
        num_warps=int(compiled.metadata.num_warps),
        compile_seconds=seconds,
    )


def _resource_usage(cubin: bytes, name: str) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "kernel.cubin")
        with open(path, "wb") as handle:
            handle.write(cubin)
        text = subprocess.run([cuobjdump(), "--dump-resource-usage", path], capture_output=True, text=True, check=True)
    line = next(
        (row for row in text.stdout.splitlines() if "REG:" in row),
        None,
    )
    if line is None:
        raise RuntimeError(f"cuobjdump printed no resource line for {name}:\n{text.stdout}")
    return {key: int(value) for key, value in re.findall(r"(REG|STACK|SHARED|LOCAL):(\d+)", line)}


def measure(
    dim: int, hidden: int, chunk: int, depth: int, arch: int = 90, timeout: float = 900, dot: int = 1
) -> list[dict]:
    """`compile_resources` of every kernel for one shape, in a fresh process without the interpreter
    (a process that imported triton with TRITON_INTERPRET=1, as the test suite does, cannot compile).
    dot: the operands' type in tl.dot, 1 for bf16 inputs (training under autocast), 0 for fp32 ("ieee")."""
    import sys

    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env.setdefault("TRITON_DEFAULT_FP_FUSION", "1")
    command = [sys.executable, "-m", "titans_ts.memory.ops.triton.aot", "--json"]
    command += ["--dim", str(dim), "--hidden", str(hidden), "--chunk", str(chunk), "--depth", str(depth)]
    command += ["--arch", str(arch), "--dot", str(dot)]
    with tempfile.TemporaryDirectory() as cache:  # a cold cache: every compile is timed, none read back
        env["TRITON_CACHE_DIR"] = cache
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)
    if done.returncode:
        raise RuntimeError(f"compiling for sm_{arch} failed:\n{done.stderr[-3000:]}")
    return [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


def matrix() -> list[tuple[int, int, int, int, int]]:
    """(dim, hidden, chunk, depth, arch) of `make test-kernels`: D in {32, 64, 128}, hidden in {D, 2D, 4D}
    at depth 2, chunk in {16, 64}, sm_90 and sm_80."""
    import itertools

    shapes = []
    for dim, factor, chunk, arch in itertools.product((32, 64, 128), (1, 2, 4), (16, 64), (90, 80)):
        shapes += [(dim, dim, chunk, 1, arch)] if factor == 1 else []
        shapes.append((dim, factor * dim, chunk, 2, arch))
    return shapes


def resource_table(dot: int = 1) -> str:
    """The markdown table of docs/kernels.md: every kernel over `matrix()` (python -m ... --table [--dot 0])."""
    lines = [
        "| kernel | arch | D | hidden | chunk | depth | registers | stack B | shared B | warps | compile s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for dim, hidden, chunk, depth, arch in matrix():
        for r in measure(dim, hidden, chunk, depth, arch, dot=dot):
            lines.append(
                f"| {r['kernel']} | sm_{arch} | {dim} | {hidden if depth == 2 else '-'} | {chunk} | {depth} | "
                f"{r['registers']} | {r['stack']} | {r['shared']:,} | {r['num_warps']} | {r['compile_seconds']:.1f} |"
            )
    return "\n".join(lines)


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--hidden", type=int, default=128)
    parser.add_argument("--chunk", type=int, default=64)
    parser.add_argument("--depth", type=int, default=2, choices=(1, 2))
    parser.add_argument("--arch", type=int, default=90, choices=sorted(SHARED_LIMIT))
    parser.add_argument("--dot", type=int, default=1, choices=(0, 1), help="tl.dot operands: 1 bf16, 0 fp32 (ieee)")
    parser.add_argument("--json", action="store_true", help="print one JSON object per kernel")
    parser.add_argument("--table", action="store_true", help="the markdown table of the whole shape matrix")
    args = parser.parse_args()
    if args.table:
        print(resource_table(args.dot))
        return
    if os.environ.get("TRITON_INTERPRET", "0") not in ("", "0"):
        raise SystemExit("Unset TRITON_INTERPRET: the interpreter's kernels cannot be compiled for a GPU.")
    constants = kernel_constants(args.dim, args.hidden, args.chunk, args.depth, dot=args.dot)
    for name in kernels_for(args.depth):
        r = compile_resources(name, constants[name], args.arch)
        if args.json:
            print(json.dumps(r.to_dict()), flush=True)
            continue
        print(
            f"{name} sm_{r.arch}: {r.registers} registers, stack {r.stack} B, local {r.local} B, shared "
            f"{r.shared} B (limit {SHARED_LIMIT[r.arch]}), {r.num_warps} warps, compiled in {r.compile_seconds:.1f} s"
        )


if __name__ == "__main__":
    main()
