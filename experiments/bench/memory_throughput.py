"""Training-step throughput of the memory, side by side in one run (CPU by default, `--device cuda`).

CPU configuration: B=8, T=1024, model dim 128, 4 heads, depth-2 MLP memory with expansion 4, chunk 64,
momentum on. Compared: our `chunked` backend (eager, the default, and with `compile=True`), our
`reference` backend (at T=128, per-token cost), and titans-pytorch==0.5.5's NeuralMemory configured as
close as its API allows. Then ours at T = 1k, 4k, 16k.
A step is forward + backward of a mean-square loss + zero_grad; tokens/s = B*T / median step time.
Each measurement runs in its own subprocess (clean peak-memory reading); ours and titans-pytorch
alternate over several rounds so that machine noise hits both alike.

    python experiments/bench/memory_throughput.py [--rounds 3] [--quick]
writes experiments/results/bench_memory.md and bench_memory.json;
    python experiments/bench/memory_throughput.py --device cuda [--try-triton]
writes experiments/results/bench_memory_gpu.md and .json (see memory_gpu.py).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "experiments" / "results"
DIM, HEADS, DEPTH, EXPANSION, CHUNK = 128, 4, 2, 4.0, 64


def build(impl: str):
    if impl in ("chunked", "reference", "chunked-recompute", "chunked-compile"):
        from titans_ts.memory import NeuralMemory

        backend = impl.split("-")[0]
        return NeuralMemory(
            DIM,
            heads=HEADS,
            depth=DEPTH,
            expansion=EXPANSION,
            chunk_size=CHUNK,
            backend=backend,
            recompute=impl.endswith("-recompute"),
            compile=impl.endswith("-compile"),
        )
    if impl == "titans-pytorch":
        from titans_pytorch import NeuralMemory as TitansPytorchMemory

        return TitansPytorchMemory(
            dim=DIM,
            heads=HEADS,
            dim_head=DIM // HEADS,
            chunk_size=CHUNK,
            batch_size=CHUNK,
            momentum=True,
            default_model_kwargs={"depth": DEPTH, "expansion_factor": EXPANSION},
        )
    raise ValueError(impl)


def worker(spec: dict) -> dict:
    """One measurement in this process: median step time and the peak memory the steps added."""
    import torch

    from titans_ts.training import tune_cpu_allocator

    torch.set_num_threads(spec.get("threads", 2))
    torch.manual_seed(0)
    tuned = tune_cpu_allocator()  # for every implementation alike, as our CLIs do
    model = build(spec["impl"])
    x = torch.randn(spec["batch"], spec["length"], DIM)

    def step():
        out = model(x)[0]
        out.square().mean().backward()
        model.zero_grad(set_to_none=True)

    baseline_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    step()  # warm-up (and, with compile=True, the compile)
    first_step = time.perf_counter() - start
    step()  # the allocator reaches its steady state in the second step (page faults of fresh heap)
    times = []
    for _ in range(spec["steps"]):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    seconds = statistics.median(times)
    return {
        **spec,
        "seconds": seconds,
        "tokens_per_s": spec["batch"] * spec["length"] / seconds,
        "peak_extra_mb": (peak_kb - baseline_kb) / 1024,
        "all_seconds": times,
        "first_step_seconds": first_step,
        "allocator_tuned": tuned,
    }


def measure(spec: dict) -> dict:
    command = [sys.executable, __file__, "--worker", json.dumps(spec)]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"benchmark worker failed for {spec}:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    print(
        f"  {spec['impl']:15s} B={spec['batch']} T={spec['length']:6d}: "
        f"{result['tokens_per_s']:9.0f} tokens/s, "
        f"step {result['seconds'] * 1000:8.1f} ms, +{result['peak_extra_mb']:.0f} MB",
        flush=True,
    )
    return result


def machine() -> dict:
    import torch

    cpu = platform.processor()
    try:
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        pass
    try:
        from importlib.metadata import version

        titans_pytorch = version("titans-pytorch")
    except Exception:
        titans_pytorch = None
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT)
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "threads": 2,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "titans_pytorch": titans_pytorch,
        "commit": commit.stdout.strip() or "unknown",
        "date": datetime.now(timezone.utc).isoformat(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of ours vs titans-pytorch")
    parser.add_argument("--quick", action="store_true", help="1 round, no 16k run (a smoke test)")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="where to measure")
    parser.add_argument("--try-triton", action="store_true", help="on CUDA, also time backend='triton'")
    parser.add_argument("--render-only", action="store_true", help="rewrite the .md from the saved .json")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(json.loads(args.worker))))
        return
    if args.render_only:
        (RESULTS / "bench_memory.md").write_text(render(json.loads((RESULTS / "bench_memory.json").read_text())))
        return
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            sys.exit("--device cuda: no CUDA GPU is visible here (torch.cuda.is_available() is False).")
        from memory_gpu import gpu_main

        gpu_main(machine(), args.try_triton)
        return

    started = time.time()
    info = machine()
    have_theirs = info["titans_pytorch"] is not None
    if not have_theirs:
        print("titans-pytorch is not installed: `pip install titans-pytorch==0.5.5` (make bench does it).")
    rounds = 1 if args.quick else args.rounds
    main_spec = {"batch": 8, "length": 1024, "steps": 3}
    runs = {"chunked": [], "chunked-compile": [], "titans-pytorch": []}
    print("Main configuration (B=8, T=1024), alternating:")
    for _ in range(rounds):
        runs["chunked"].append(measure({"impl": "chunked", **main_spec}))
        runs["chunked-compile"].append(measure({"impl": "chunked-compile", **main_spec}))
        if have_theirs:
            runs["titans-pytorch"].append(measure({"impl": "titans-pytorch", **main_spec}))
    print("Reference (token-by-token oracle) at T=128:")
    reference = measure({"impl": "reference", "batch": 8, "length": 128, "steps": 2})
    print("Ours at growing T:")
    lengths = [1024, 4096] if args.quick else [1024, 4096, 16384]
    scaling = [
        measure({"impl": impl, "batch": 8, "length": n, "steps": 3})
        for n in lengths
        for impl in ("chunked", "chunked-recompute")
    ]

    def median_rate(results):
        return statistics.median(r["tokens_per_s"] for r in results) if results else None

    ours, theirs = median_rate(runs["chunked"]), median_rate(runs["titans-pytorch"])
    compiled = median_rate(runs["chunked-compile"])
    summary = {
        "machine": info,
        "config": {
            "dim": DIM,
            "heads": HEADS,
            "depth": DEPTH,
            "expansion": EXPANSION,
            "chunk": CHUNK,
            "momentum": True,
        },
        "ours_tokens_per_s": ours,
        "titans_pytorch_tokens_per_s": theirs,
        "ratio_ours_vs_titans_pytorch": ours / theirs if theirs else None,
        "compiled_tokens_per_s": compiled,
        "ratio_compiled_vs_titans_pytorch": compiled / theirs if theirs else None,
        "compile_first_step_seconds": statistics.median(r["first_step_seconds"] for r in runs["chunked-compile"]),
        "reference_tokens_per_s": reference["tokens_per_s"],
        "ratio_ours_vs_reference": ours / reference["tokens_per_s"],
        "scaling": scaling,
        "scaling_16k_vs_1k": (scaling[-2]["tokens_per_s"] / scaling[0]["tokens_per_s"]),
        "runs": runs,
        "reference": reference,
        "wall_seconds": time.time() - started,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "bench_memory.json").write_text(json.dumps(summary, indent=1))
    (RESULTS / "bench_memory.md").write_text(render(summary))
    print((RESULTS / "bench_memory.md").read_text())


def render(s: dict) -> str:
    m = s["machine"]
    theirs = s["titans_pytorch_tokens_per_s"]
    ratio_text = f"{s['ratio_ours_vs_titans_pytorch']:.2f}x" if theirs else "n/a"
    compiled_ratio_text = f"{s['ratio_compiled_vs_titans_pytorch']:.2f}x" if theirs else "n/a"
    lines = [
        "# Memory training-step throughput (CPU)",
        "",
        "Generated by `experiments/bench/memory_throughput.py` (`make bench`); do not edit by hand.",
        "",
        f"Machine: {m['cpu']}, {m['threads']} threads of {m['cores']} cores; Python {m['python']}, "
        f"torch {m['torch']}, "
        f"titans-pytorch {m['titans_pytorch']}; commit {m['commit']}; {m['date'][:19]}Z; "
        f"benchmark wall time {s['wall_seconds']:.0f} s.",
        "",
        "Configuration: B=8, T=1024, dim 128, 4 heads (head dim 32), depth-2 MLP memory with expansion 4, "
        "chunk 64, momentum on. A step = forward + backward + zero_grad; tokens/s = B*T / median step time; "
        "ours and titans-pytorch alternate over rounds, each run in its own process with the same "
        "glibc allocator setting (`titans_ts.training.tune_cpu_allocator`).",
        "",
        "| implementation | tokens/s | ratio to titans-pytorch |",
        "|---|---|---|",
        f'| titans-ts `chunked`, eager (the default `compile="auto"` until a shape has run 2M tokens of steps) '
        f"| {s['ours_tokens_per_s']:.0f} | {ratio_text} |",
        f'| titans-ts `chunked`, compiled (`compile=True`, and `"auto"` after those; first step '
        f"{s['compile_first_step_seconds']:.0f} s: the compile, or its reuse from the on-disk inductor cache) | "
        f"{s['compiled_tokens_per_s']:.0f} | "
        f"{compiled_ratio_text} |",
    ]
    if theirs:
        lines.append(f"| titans-pytorch {m['titans_pytorch']} (chunk_size 64, batch_size 64) | {theirs:.0f} | 1.00x |")
    lines += [
        f"| titans-ts `reference` (T=128, token by token) | {s['reference_tokens_per_s']:.0f} | "
        f"{'%.2fx' % (s['reference_tokens_per_s'] / theirs) if theirs else 'n/a'} |",
        "",
        f"`chunked` is {s['ratio_ours_vs_reference']:.1f}x the token-by-token reference.",
        "",
        "Ours at growing sequence length (B=8). Default: the three-pass chunked op with its hand-written "
        "backward (keeps each chunk's intermediates); `recompute=True` keeps only chunk-start states and "
        "recomputes each chunk in the backward:",
        "",
        "| T | backward | tokens/s | relative to T=1024 | step (s) | peak extra memory (MB) |",
        "|---|---|---|---|---|---|",
    ]
    base = {r["impl"]: r["tokens_per_s"] for r in s["scaling"] if r["length"] == s["scaling"][0]["length"]}
    for r in s["scaling"]:
        kind = "recompute" if r["impl"].endswith("recompute") else "default"
        lines.append(
            f"| {r['length']} | {kind} | {r['tokens_per_s']:.0f} | "
            f"{r['tokens_per_s'] / base[r['impl']]:.2f} | "
            f"{r['seconds']:.2f} | {r['peak_extra_mb']:.0f} |"
        )
    lines += [
        "",
        "Semantics differ: titans-pytorch retrieves with per-chunk weights; ours retrieves per token "
        "from the memory after each token's update (the paper's), which costs extra matmuls per chunk.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
