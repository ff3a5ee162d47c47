"""Where one training step's time goes on a GPU (issue 26, items 3 and 4).

The step of `titans-ts fit --dataset ETTh1 --horizon 96` with its defaults: a batch of 32 windows, lookback 96,
7 channels, the default network (`ForecastConfig()`), MSE, fused AdamW, zero_grad. Side by side in one run:
    eager    the step as Lightning runs it today;
    graphed  the model's forward and backward replayed by `titans_ts.training.graphs.GraphedForward`.
Then the op at make bench-gpu's shape (B4 H8 T8192 D64, chunk 64, bf16 inputs, depth 1 and 2), forward +
backward, with `triton` and with the output pass on its kernels too (`triton+output-kernel`): how much of the
device's time the state pass's kernels, the output pass and the rest take, to say which kernel to write next.
For each: the median wall time of a step (host and device, synchronised once per step) over 50 steps, then
one profiled step: the kernels launched, and the device's busy time and busiest ops (torch.profiler).
Writes experiments/results/step_profile_gpu.md and .json with the device name.

    PYTHONPATH=. python experiments/bench/step_profile.py [--steps 50]      # needs a CUDA GPU
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from torch import nn

RESULTS = Path(__file__).resolve().parents[2] / "experiments" / "results"


def _setup(graphed: bool):
    from titans_ts.forecasting.model import ForecastConfig, build_model
    from titans_ts.training.graphs import GraphedForward

    torch.manual_seed(0)
    model = build_model(ForecastConfig(lookback=96, horizon=96, channels=7)).cuda().train()
    forward = GraphedForward(model) if graphed else None
    if forward is not None:
        forward.install()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=True)
    x, y = torch.randn(32, 96, 7, device="cuda"), torch.randn(32, 96, 7, device="cuda")

    def step():
        loss = nn.functional.mse_loss(model(x), y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return step, forward


def _op_setup(depth: int, fused_output: bool):
    from memory_gpu import _op_inputs

    from titans_ts.memory.ops.triton import neural_memory_triton

    args = _op_inputs(4, 8, 8192, 64, depth, torch.bfloat16)
    options = {"chunk_size": 64, "max_grad_norm": 0.5, "fused_output": fused_output}

    def step():
        neural_memory_triton(*args[:6], tuple(args[6:]), **options)[0].float().square().mean().backward()

    return step, None


# Our kernels by the pass they belong to (the rest: PyTorch's ops, the parallel passes among them).
STATE_KERNELS = ("keys_kernel", "state_step_kernel", "keys_backward_kernel", "state_backward_kernel")
OUTPUT_KERNELS = ("output_layer_kernel", "similarity_grads_kernel", "input_side_kernel", "output_side_kernel")


def _measure(setup, steps: int) -> dict:
    from memory_gpu import _time_cuda  # beside this script: the median of synchronised steps after warm-ups

    step, forward = setup()
    seconds = _time_cuda(step, repeats=steps)  # its warm-ups capture the graph (graphed) and compile Triton
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        step()
        torch.cuda.synchronize()
    events = prof.key_averages()
    kernels = sum(e.count for e in events if getattr(e, "device_type", None) == torch.autograd.DeviceType.CUDA)
    device_us = sum(getattr(e, "self_device_time_total", 0) for e in events)
    top = sorted(events, key=lambda e: getattr(e, "self_device_time_total", 0), reverse=True)[:8]

    def busy_ms(names) -> float:
        return sum(getattr(e, "self_device_time_total", 0) for e in events if e.key.startswith(names)) / 1000

    return {
        "state_kernels_ms": busy_ms(STATE_KERNELS),
        "output_kernels_ms": busy_ms(OUTPUT_KERNELS),
        "capture_failed": None if forward is None else forward.failure,
        "replays": None if forward is None else forward.replays,
        "step_ms": 1000 * seconds,
        "kernels": kernels,
        "device_busy_ms": device_us / 1000,
        "top_kernels": [(e.key[:60], e.count, round(getattr(e, "self_device_time_total", 0) / 1000, 3)) for e in top],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        raise SystemExit("step_profile.py profiles a CUDA step: torch.cuda.is_available() is False here.")
    name = torch.cuda.get_device_name()
    setups = {"eager": lambda: _setup(False), "graphed": lambda: _setup(True)}
    for depth in (1, 2):
        for fused in (False, True):
            label = f"op depth {depth}, triton" + ("+output-kernel" if fused else "")
            setups[label] = lambda depth=depth, fused=fused: _op_setup(depth, fused)
    rows = {}
    for mode, setup in setups.items():
        try:
            rows[mode] = _measure(setup, args.steps if mode in ("eager", "graphed") else 10)
        except Exception as error:  # noqa: BLE001 - a failing row is recorded, the report is still written
            rows[mode] = {"error": f"{type(error).__name__}: {error}"}
        torch.cuda.empty_cache()
    record = {"device": name, "torch": torch.__version__, "steps": args.steps, "rows": rows}
    lines = [
        "# One training step on a GPU: the forecaster's (eager and as CUDA graphs) and the op's",
        "",
        "Generated by `experiments/bench/step_profile.py`; do not edit by hand.",
        "",
        f"Device: {name}; torch {torch.__version__}. The step of `titans-ts fit --dataset ETTh1 --horizon 96`:",
        "32 windows, lookback 96, 7 channels, the default network, MSE, fused AdamW; median of "
        f"{args.steps} steps, each synchronised.",
        "",
        "The op rows: forward + backward at B4 H8 T8192 D64, chunk 64, bf16 inputs, median of 10 steps; of the",
        "device's busy time, what the state pass's kernels and the output pass's kernels took (the rest is PyTorch).",
        "",
        "| step | ms per step | kernels launched | device busy (ms) | state-pass kernels (ms) | output kernels (ms) "
        "| graph replays |",
        "|---|---|---|---|---|---|---|",
    ]
    for mode, row in rows.items():
        if "error" in row:
            lines.append(f"| {mode} | failed: {row['error']} | | | | | |")
            continue
        replays = "-" if row["replays"] is None else row["replays"]
        if row["capture_failed"]:
            replays = f"0 (capture failed: {row['capture_failed'][:120]})"
        lines.append(
            f"| {mode} | {row['step_ms']:.2f} | {row['kernels']} | {row['device_busy_ms']:.2f} | "
            f"{row['state_kernels_ms']:.2f} | {row['output_kernels_ms']:.2f} | {replays} |"
        )
    for mode, row in rows.items():
        if "top_kernels" in row:
            lines += ["", f"{mode}, the device's busiest ops (name, calls, ms):", ""]
            lines += [f"- `{key}` x{count}: {ms}" for key, count, ms in row["top_kernels"]]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "step_profile_gpu.json").write_text(json.dumps(record, indent=1))
    (RESULTS / "step_profile_gpu.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
