"""GPU half of `memory_throughput.py --device cuda`: ours vs titans-pytorch and fla, side by side in one run.

Module level (training step = forward + backward of a mean-square loss, tokens/s = B*T / median step):
NeuralMemory dim 128, 4 heads, depth 2, expansion 4, chunk 64 at B=8, T in {1024, 8192}, and dim 512, 8 heads,
expansion 2 at T=4096; ours with every backend verified on CUDA (and `triton` when `--try-triton`), beside
titans-pytorch 0.5.5 when it is installed.
Op level (B=4, H=8, T=8192, D=64, chunk 64): our op at depth 1 (a matrix memory) and depth 2 (hidden 128)
in fp32, beside fla's `chunk_gated_delta_rule` (a linear memory without momentum: the depth-1 anchor) in
bf16 when fla is installed. Writes experiments/results/bench_memory_gpu.md and .json with the device name.
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


def module_rows(impls: list[str]) -> list[dict]:
    rows = []
    for config in MODULE_CONFIGS:
        for impl in impls:
            torch.manual_seed(0)
            model = _module(impl, config).cuda()
            x = torch.randn(config["batch"], config["length"], config["dim"], device="cuda")

            def step(model=model, x=x):
                model(x)[0].square().mean().backward()
                model.zero_grad(set_to_none=True)

            try:
                torch.cuda.reset_peak_memory_stats()
                seconds = _time_cuda(step)
                row = {**config, "impl": impl, "tokens_per_s": config["batch"] * config["length"] / seconds}
                row["peak_gb"] = torch.cuda.max_memory_allocated() / 2**30
            except Exception as error:  # a backend that fails on this GPU is a result too
                row = {**config, "impl": impl, "error": f"{type(error).__name__}: {str(error)[:200]}"}
            print(row, flush=True)
            rows.append(row)
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


def op_rows(backends: list[str], batch=4, heads=8, length=8192, dim=64) -> list[dict]:
    from titans_ts.memory.ops import neural_memory

    rows = []
    for depth in (1, 2):
        for backend in backends:
            args = _op_inputs(batch, heads, length, dim, depth, torch.float32)

            def step(args=args, backend=backend, depth=depth):
                y, _, _ = neural_memory(*args[:6], tuple(args[6:]), chunk_size=64, backend=backend, max_grad_norm=0.5)
                y.float().square().mean().backward()

            row = {"impl": f"titans-ts {backend}", "depth": depth, "dtype": "fp32"}
            try:
                row["tokens_per_s"] = batch * length / _time_cuda(step)
            except Exception as error:
                row["error"] = f"{type(error).__name__}: {str(error)[:200]}"
            print(row, flush=True)
            rows.append(row)
    try:
        from fla.ops.gated_delta_rule import chunk_gated_delta_rule
    except ImportError:
        rows.append({"impl": "fla chunk_gated_delta_rule", "depth": 1, "error": "fla is not installed"})
        return rows
    g = torch.Generator(device="cuda").manual_seed(0)
    shape = (batch, length, heads, dim)  # fla's layout: (B, T, H, D)
    q = F.normalize(torch.randn(*shape, generator=g, device="cuda"), dim=-1).bfloat16().requires_grad_()
    k = F.normalize(torch.randn(*shape, generator=g, device="cuda"), dim=-1).bfloat16().requires_grad_()
    v = torch.randn(*shape, generator=g, device="cuda").bfloat16().requires_grad_()
    log_decay = F.logsigmoid(torch.randn(batch, length, heads, generator=g, device="cuda")).requires_grad_()
    beta = torch.rand(batch, length, heads, generator=g, device="cuda").bfloat16().requires_grad_()

    def fla_step():
        out, _ = chunk_gated_delta_rule(q, k, v, log_decay, beta)
        out.float().square().mean().backward()

    rows.append(
        {
            "impl": "fla chunk_gated_delta_rule",
            "depth": 1,
            "dtype": "bf16",
            "tokens_per_s": batch * length / _time_cuda(fla_step),
        }
    )
    print(rows[-1], flush=True)
    return rows


def gpu_main(info: dict, try_triton: bool) -> dict:
    from titans_ts.memory.ops import VERIFIED_BACKENDS

    backends = list(VERIFIED_BACKENDS["cuda"]) + (["triton"] if try_triton else [])
    backends = list(dict.fromkeys(backends))
    info = {**info, "device": torch.cuda.get_device_name()}
    started = time.time()
    impls = list(backends)
    if info.get("titans_pytorch"):
        impls.append("titans-pytorch")
    summary = {"machine": info, "modules": module_rows(impls), "ops": op_rows(backends)}
    summary["wall_seconds"] = time.time() - started
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "bench_memory_gpu.json").write_text(json.dumps(summary, indent=1))
    (RESULTS / "bench_memory_gpu.md").write_text(render_gpu(summary))
    print((RESULTS / "bench_memory_gpu.md").read_text())
    return summary


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
        "## The op, B=4 H=8 T=8192 D=64, chunk 64 (forward + backward)",
        "",
        "| implementation | memory | inputs | tokens/s |",
        "|---|---|---|---|",
    ]
    for r in s["ops"]:
        memory = "matrix (depth 1)" if r["depth"] == 1 else "MLP depth 2, hidden 128"
        lines.append(f"| {r['impl']} | {memory} | {r.get('dtype', '-')} | {_rate(r)} |")
    lines += [
        "",
        "fla's `chunk_gated_delta_rule` is a linear memory without momentum (our depth 1 with eta = 0), in bf16: "
        "an anchor for what a fused chunk kernel reaches, not the same computation.",
        "",
    ]
    return "\n".join(lines)
