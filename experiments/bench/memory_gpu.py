"""GPU half of `memory_throughput.py --device cuda`: ours vs titans-pytorch and fla, side by side in one run.

Module level (training step = forward + backward of a mean-square loss, tokens/s = B*T / median step):
NeuralMemory dim 128, 4 heads, depth 2, expansion 4, chunk 64 at B=8, T in {1024, 8192}, and dim 512, 8 heads,
expansion 2 at T=4096; ours with every backend verified on CUDA (and `triton` when `--try-triton`), beside
titans-pytorch 0.5.5 when it is installed.
Op level (B=4, H=8, T=8192, D=64, chunk 64): our op at depth 1 (a matrix memory) and depth 2 (hidden 128)
with fp32 and bf16 inputs, forward alone and forward + backward (with `triton`, also `triton+output-kernel`:
the output pass on its kernels, forward and backward), beside fla's `chunk_gated_delta_rule` (a
linear memory without momentum: the depth-1 anchor) in bf16 when fla is installed. Every row is timed on
its own: one that raises is recorded with its error and the report is still written.
Writes experiments/results/bench_memory_gpu.md and .json with the device name.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

RESULTS = Path(__file__).resolve().parents[2] / "experiments" / "results"
MODULE_CONFIGS = [
    {"batch": 8, "length": 1024, "dim": 128, "heads": 4, "expansion": 4.0},
    {"batch": 8, "length": 8192, "dim": 128, "heads": 4, "expansion": 4.0},
    {"batch": 8, "length": 4096, "dim": 512, "heads": 8, "expansion": 2.0},
]


def _time_cuda(step, repeats: int = 10) -> float:
    """Median seconds of `step` after two warm-up calls (which also capture/compile what they need)."""
    step()
    step()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _module(impl: str, config: dict):
    if impl == "titans-pytorch":
        from titans_pytorch import NeuralMemory as TitansPytorchMemory

        return TitansPytorchMemory(
            dim=config["dim"],
            heads=config["heads"],
            dim_head=config["dim"] // config["heads"],
            chunk_size=64,
            batch_size=64,
            momentum=True,
            default_model_kwargs={"depth": 2, "expansion_factor": config["expansion"]},
        )
    from titans_ts.memory import NeuralMemory

    return NeuralMemory(
        config["dim"], heads=config["heads"], depth=2, expansion=config["expansion"], chunk_size=64, backend=impl
    )


def error_text(error: Exception) -> str:
    return f"{type(error).__name__}: {str(error)[:300]}"


def measured(row: dict, step, tokens: int, time_step=None) -> dict:
    """`row` with tokens/s of `step`, or with the error it raised: one failing implementation is a row of
    the report, never the end of the run."""
    time_step = time_step or _time_cuda
    try:
        row["tokens_per_s"] = tokens / time_step(step)
    except Exception as error:  # a backend that fails on this GPU is a result too
        row["error"] = error_text(error)
    print(row, flush=True)
    return row


def module_rows(impls: list[str]) -> list[dict]:
    rows = []
    for config in MODULE_CONFIGS:
        for impl in impls:
            row = {**config, "impl": impl}
            try:
                torch.manual_seed(0)
                model = _module(impl, config).cuda()
                x = torch.randn(config["batch"], config["length"], config["dim"], device="cuda")
            except Exception as error:
                rows.append({**row, "error": error_text(error)})
                continue

            def step(model=model, x=x):
                model(x)[0].square().mean().backward()
                model.zero_grad(set_to_none=True)

            torch.cuda.reset_peak_memory_stats()
            rows.append(measured(row, step, config["batch"] * config["length"]))
            if "error" not in row:
                row["peak_gb"] = torch.cuda.max_memory_allocated() / 2**30
            del model, x
            torch.cuda.empty_cache()
    return rows


def _op_inputs(batch, heads, length, dim, depth, dtype):
    g = torch.Generator(device="cuda").manual_seed(0)

    def randn(*shape):
        return torch.randn(*shape, generator=g, device="cuda")

    q = F.normalize(randn(batch, heads, length, dim), dim=-1).to(dtype)
    k = F.normalize(randn(batch, heads, length, dim), dim=-1).to(dtype)
    v = randn(batch, heads, length, dim).to(dtype)
    gates = [torch.rand(batch, heads, length, generator=g, device="cuda") * s for s in (0.05, 0.01, 0.9)]
    dims = [dim] + [2 * dim] * (depth - 1) + [dim]
    weights = [randn(batch, heads, dims[i], dims[i + 1]) / dims[i] ** 0.5 for i in range(depth)]
    leaves = [q, k, v, *(t.to(dtype) for t in gates), *weights]
    return [t.requires_grad_() for t in leaves]


DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16}
# The op with pass (c) on its Triton kernels too, forward and backward (`neural_memory_triton(fused_output=True)`):
# timed beside `triton` so that a GPU session can tell whether it should become the backend's default.
FUSED_OUTPUT = "triton+output-kernel"


def op_rows(backends: list[str], batch=4, heads=8, length=8192, dim=64) -> list[dict]:
    """Our op in fp32 and bf16 inputs (fp32 state), forward alone and forward + backward; then fla."""
    from titans_ts.memory.ops import neural_memory

    rows = []
    tokens = batch * length
    for depth in (1, 2):
        for dtype_name, dtype in DTYPES.items():
            for backend in backends:
                try:
                    args = _op_inputs(batch, heads, length, dim, depth, dtype)
                except Exception as error:
                    rows.append({"impl": f"titans-ts {backend}", "depth": depth, "dtype": dtype_name,
                                 "pass": "fwd+bwd", "error": error_text(error)})  # fmt: skip
                    continue

                def forward(args=args, backend=backend):
                    weights = tuple(args[6:])
                    if backend == FUSED_OUTPUT:
                        from titans_ts.memory.ops.triton import neural_memory_triton

                        options = {"chunk_size": 64, "max_grad_norm": 0.5, "fused_output": True}
                        return neural_memory_triton(*args[:6], weights, **options)[0]
                    return neural_memory(*args[:6], weights, chunk_size=64, backend=backend, max_grad_norm=0.5)[0]

                def forward_only(forward=forward):
                    with torch.no_grad():
                        forward()

                def train_step(forward=forward):
                    forward().float().square().mean().backward()

                for name, step in (("fwd", forward_only), ("fwd+bwd", train_step)):
                    row = {"impl": f"titans-ts {backend}", "depth": depth, "dtype": dtype_name, "pass": name}
                    rows.append(measured(row, step, tokens))
                del args
    return rows + fla_rows(batch, heads, length, dim)


def fla_rows(batch, heads, length, dim) -> list[dict]:
    """fla's `chunk_gated_delta_rule` in bf16: forward alone always; forward + backward as a row of its own,
    whose error is fla's guard's reason where fla refuses its backward on this GPU and Triton."""
    base = {"impl": "fla chunk_gated_delta_rule", "depth": 1, "dtype": "bf16"}
    try:  # not installed, broken against this Triton, or out of memory: a row, not the end of the section
        from fla.ops.gated_delta_rule import chunk_gated_delta_rule

        q, k, v, log_decay, beta = _fla_inputs(batch, heads, length, dim)
    except Exception as error:
        return [{**base, "pass": "fwd", "error": error_text(error)}]

    def forward_only():
        with torch.no_grad():
            chunk_gated_delta_rule(q, k, v, log_decay, beta)

    def train_step():
        out, _ = chunk_gated_delta_rule(q, k, v, log_decay, beta)
        out.float().square().mean().backward()

    return [measured({**base, "pass": name}, step, batch * length) for name, step in
            (("fwd", forward_only), ("fwd+bwd", train_step))]  # fmt: skip


def _fla_inputs(batch, heads, length, dim):
    g = torch.Generator(device="cuda").manual_seed(0)
    shape = (batch, length, heads, dim)  # fla's layout: (B, T, H, D)
    q = F.normalize(torch.randn(*shape, generator=g, device="cuda"), dim=-1).bfloat16().requires_grad_()
    k = F.normalize(torch.randn(*shape, generator=g, device="cuda"), dim=-1).bfloat16().requires_grad_()
    v = torch.randn(*shape, generator=g, device="cuda").bfloat16().requires_grad_()
    log_decay = F.logsigmoid(torch.randn(batch, length, heads, generator=g, device="cuda")).requires_grad_()
    beta = torch.rand(batch, length, heads, generator=g, device="cuda").bfloat16().requires_grad_()
    return q, k, v, log_decay, beta


def gpu_main(info: dict, try_triton: bool, results: Path = RESULTS) -> dict:
    from titans_ts.memory.ops import VERIFIED_BACKENDS

    backends = list(VERIFIED_BACKENDS["cuda"]) + (["triton"] if try_triton else [])
    backends = list(dict.fromkeys(backends))
    info = {**info, "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "no CUDA device"}
    started = time.time()
    impls = list(backends)
    if info.get("titans_pytorch"):
        impls.append("titans-pytorch")
    summary = {"machine": info}
    op_backends = backends + ([FUSED_OUTPUT] if "triton" in backends else [])
    for section, rows in (("modules", lambda: module_rows(impls)), ("ops", lambda: op_rows(op_backends))):
        try:
            summary[section] = rows()
        except Exception as error:  # a whole section that breaks still leaves the other one and a report
            summary[section] = [{"impl": "(section)", "depth": 0, "batch": 0, "length": 0, "dim": 0, "heads": 0,
                                 "expansion": 0, "error": error_text(error)}]  # fmt: skip
    summary["wall_seconds"] = time.time() - started
    write_report(summary, results)
    return summary


def write_report(summary: dict, results: Path = RESULTS) -> None:
    results.mkdir(parents=True, exist_ok=True)
    (results / "bench_memory_gpu.json").write_text(json.dumps(summary, indent=1))
    (results / "bench_memory_gpu.md").write_text(render_gpu(summary))
    print((results / "bench_memory_gpu.md").read_text())


def _rate(row: dict) -> str:
    return f"{row['tokens_per_s']:,.0f}" if "tokens_per_s" in row else f"failed: {row['error']}"


def render_gpu(s: dict) -> str:
    m = s["machine"]
    lines = [
        "# Memory training-step throughput (GPU)",
        "",
        "Generated by `experiments/bench/memory_throughput.py --device cuda`; do not edit by hand.",
        "",
        f"Device: {m['device']}; torch {m['torch']}, titans-pytorch {m['titans_pytorch']}; commit {m['commit']}; "
        f"{m['date'][:19]}Z; benchmark wall time {s['wall_seconds']:.0f} s.",
        "",
        "## NeuralMemory (module), depth-2 MLP memory, chunk 64, fp32",
        "",
        "| B | T | dim | heads | expansion | implementation | tokens/s | peak GB |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in s["modules"]:
        peak = f"{r['peak_gb']:.1f}" if "peak_gb" in r else "-"
        lines.append(
            f"| {r['batch']} | {r['length']} | {r['dim']} | {r['heads']} | {r['expansion']:g} | {r['impl']} "
            f"| {_rate(r)} | {peak} |"
        )
    lines += [
        "",
        "## The op, B=4 H=8 T=8192 D=64, chunk 64, fp32 state",
        "",
        "| implementation | memory | inputs | pass | tokens/s |",
        "|---|---|---|---|---|",
    ]
    for r in s["ops"]:
        memory = {0: "-", 1: "matrix (depth 1)"}.get(r["depth"], "MLP depth 2, hidden 128")
        lines.append(f"| {r['impl']} | {memory} | {r.get('dtype', '-')} | {r.get('pass', '-')} | {_rate(r)} |")
    lines += [
        "",
        "fla's `chunk_gated_delta_rule` is a linear memory without momentum (our depth 1 with eta = 0), in bf16: "
        "an anchor for what a fused chunk kernel reaches, not the same computation. Its forward + backward row "
        "carries fla's own refusal where its guard rejects the backward on this GPU and Triton version (fla 0.6 on "
        "Hopper with Triton < 3.7.1); the forward row is then the anchor. A row that says `failed` is an "
        "implementation that raised on this machine; the run went on.",
        "",
    ]
    return "\n".join(lines)
