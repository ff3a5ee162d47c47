"""Issue 28: a memory that learns at test time from the forecasts' own errors. Validation only, no test row.

    python experiments/forecasting/residual_memory_check.py \
        experiments/configs/residual_memory_check.json [--only-report]

The history-mode model's memory learns, as it reads, an association the outer training chose; on the test
months it drifts (nested_check.md, restart_check.md) and its ablation does as well. Online forecasting methods
that gain a few percent (TAFAS, ADAPT-Z) learn something else at test time: the forecaster's error, from each
forecast's truth once it is known. This check asks whether the Titans memory rule does that well, on a fixed
forecaster, before anything is built around it.

The forecaster: a closed-form linear map of the window (each column less its own window's mean, as NLinear
and RLinear centre it; one map shared by the columns, ridge-fitted on the training windows). At every origin t in
time order, the memory first learns from the pair of origin s = t - horizon, the first whose whole horizon is
now known: key = the last `key_len` centred rows of its window (unit norm), value = the forecaster's
error over its horizon; then it forecasts a correction for origin t from t's key. The update is the
paper's, one token per step (chunk size 1) with the columns as its batch: S = eta S - theta grad,
M = (1 - alpha) M + S, for a memory of depth 0 (a learned bias per horizon step: online mean correction, the
comparator), 1 (linear) or 2 (MLP). Depths 1-2 are the memory MLP of `titans_ts.memory` with its per-token
gradient; the step is written here because one memory is shared by the columns, which the core op (one memory
per batch row and head) does not express. It learns from the first training origin ("train") or from the first
validation origin ("val").

Every setting runs on the whole validation split; the validation origins are cut in two halves by time. The
rule, fixed in the config before the runs: per dataset and horizon, the setting with the lowest MSE on the
first half is taken (per depth, and over all depths); the check is the second half. The memory earns a place
here if the overall choice beats the frozen forecaster and the best depth-1/2 choice beats the depth-0 one on
the second half, each in at least `needed` of the cells.
"""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from harness import cell_path, config_main, run_cells  # noqa: E402

BLOCK = 1024  # origins whose windows are built at once


def scaled_series(dataset: str, lookback: int, horizon: int):
    """The train-scaled series (T, C) float32 and the split borders of the dataset's protocol (the estimator's
    own split and scaler, `make_splits`)."""
    import torch

    from titans_ts.data import load_dataset, protocol_for
    from titans_ts.data.windows import make_splits

    frame = load_dataset(dataset)
    splits = make_splits(frame, lookback, horizon, protocol_for(dataset))
    return torch.tensor(splits.scaler.transform(frame.to_numpy()), dtype=torch.float32), splits.borders


def windows(series, origins, lookback: int, horizon: int):
    """Windows (N, C, L) less their own mean, and the truths (N, C, H) less the same mean.

    Only centred, not divided by the window's std: ETTh2 has windows where a column stays constant, and
    dividing by their std made a few training windows dominate the fit. The series is already train-scaled.
    """
    import torch

    rows = torch.arange(-lookback, horizon)
    block = series[origins[:, None] + rows].transpose(1, 2)  # (N, C, L + H)
    past = block[..., :lookback]
    mean = past.mean(-1, keepdim=True)
    return past - mean, block[..., lookback:] - mean


def fit_linear(series, origins, lookback: int, horizon: int, ridge: float):
    """Ridge map [window, 1] -> centred horizon, shared by the columns, from the training origins."""
    import torch

    gram = torch.zeros(lookback + 1, lookback + 1, dtype=torch.float64)
    cross = torch.zeros(lookback + 1, horizon, dtype=torch.float64)
    for start in range(0, len(origins), BLOCK):
        x, y = windows(series, origins[start : start + BLOCK], lookback, horizon)
        x = torch.cat([x, torch.ones_like(x[..., :1])], -1).reshape(-1, lookback + 1).double()
        gram += x.T @ x
        cross += x.T @ y.reshape(-1, horizon).double()
    gram += ridge * gram.diagonal().mean() * torch.eye(lookback + 1, dtype=torch.float64)
    return torch.linalg.solve(gram, cross).float()


class OnlineMemory:
    """G memories side by side (one per setting), updated by the paper's rule with per-setting theta, eta,
    alpha; keys (C, K) and values (C, H) are shared by all G."""

    def __init__(self, depth: int, settings, key_len: int, horizon: int, hidden: int, seed: int = 0):
        import torch

        count = len(settings)
        self.depth = depth
        self.theta, self.eta, self.alpha = (
            torch.tensor([s[i] for s in settings], dtype=torch.float32).view(-1, 1, 1) for i in range(3)
        )
        if depth == 0:
            shapes = [(count, 1, horizon)]
        elif depth == 1:
            shapes = [(count, key_len, horizon)]
        else:
            shapes = [(count, key_len, hidden), (count, hidden, horizon)]
        self.weights = [torch.zeros(shape) for shape in shapes]
        if depth == 2:  # the first layer starts random (the same for every setting), the last at zero
            generator = torch.Generator().manual_seed(seed)
            first = torch.randn(key_len, hidden, generator=generator)  # keys have unit norm: z ~ N(0, 1)
            self.weights[0] += first
        self.momentum = [torch.zeros(shape) for shape in shapes]

    def read(self, key):
        """(G, C, H) for key (C, K): the memory MLP of `titans_ts.memory` (depth 0: the bias)."""
        from titans_ts.memory.ops.common import mlp_forward

        if self.depth == 0:
            return self.weights[0].expand(-1, key.shape[0], -1).clone()  # not a view of what learns
        return mlp_forward(key, self.weights)[0]

    def learn(self, key, value) -> None:
        """One step on the loss 1/2 mean_columns |M(key) - value|^2, with the core's per-token gradient (of
        |M(k) - v|^2, hence the 1 / (2 C))."""
        from titans_ts.memory.ops.common import mlp_grads

        scale = 1.0 / (2 * key.shape[0])
        if self.depth == 0:
            grads = [2 * (self.read(key) - value).sum(1, keepdim=True)]
        else:
            factors = mlp_grads(key, value, self.weights)
            grads = [a.mT @ g for a, g in zip(factors.inputs, factors.grads, strict=True)]
        for weight, momentum, grad in zip(self.weights, self.momentum, grads, strict=True):
            momentum.mul_(self.eta).sub_(self.theta * scale * grad)
            weight.mul_(1 - self.alpha).add_(momentum)


def corrections(series, base, origins, first_eval: int, config: dict, depth: int, settings):
    """Yields (origin, correction (G, C, H), truth less the forecast (C, H)) at each origin >= first_eval, in
    order. The memory learns from origins[0] on; a correction at origin t comes from the pairs of the origins
    s <= t - horizon only, whose truths end before t."""
    import torch

    lookback, horizon, key_len = config["lookback"], config["horizon"], config["key_len"]
    memory = OnlineMemory(depth, settings, key_len, horizon, config["hidden"])
    keys, errors = {}, {}
    for start in range(0, len(origins), BLOCK):
        block = origins[start : start + BLOCK]
        x, y = windows(series, block, lookback, horizon)
        forecast = torch.cat([x, torch.ones_like(x[..., :1])], -1) @ base
        block_keys = torch.nn.functional.normalize(x[..., -key_len:], dim=-1)
        for i, origin in enumerate(block.tolist()):
            keys[origin], errors[origin] = block_keys[i], y[i] - forecast[i]
            learned = origin - horizon
            if learned in keys:
                memory.learn(keys.pop(learned), errors.pop(learned))
            if origin >= first_eval:
                yield origin, memory.read(block_keys[i]), errors[origin]


def memory_pass(series, base, origins, first_eval: int, halfway: int, config: dict, depth: int, settings):
    """Squared-error sums (G, 2) over the two validation halves, for G settings at one depth."""
    pairs = corrections(series, base, origins, first_eval, config, depth, settings)
    return half_sums(pairs, halfway, len(settings))


def half_sums(pairs, halfway: int, count: int):
    """Squared-error sums (G, 2) of (origin, estimate (G, C, H), target (C, H)) over the origins before and from
    `halfway` (a NaN, a diverged setting, counts as inf)."""
    import torch

    sums = torch.zeros(count, 2, dtype=torch.float64)
    for origin, estimate, target in pairs:
        squared = (estimate - target).square().mean((-1, -2))
        sums[:, int(origin >= halfway)] += torch.nan_to_num(squared.double(), nan=float("inf"))
    return sums


def run_cell(dataset: str, horizon: int, config: dict) -> dict:
    import torch

    torch.set_num_threads(1)
    lookback = config["lookback"]
    cell = {**config, "horizon": horizon}
    series, borders = scaled_series(dataset, lookback, horizon)
    train_end, val_end = borders.train[1], borders.val[1]
    train_origins = torch.arange(lookback, train_end - horizon + 1)
    val_origins = torch.arange(train_end, val_end - horizon + 1)
    halfway = int(val_origins[len(val_origins) // 2])
    base = fit_linear(series, train_origins, lookback, horizon, config["ridge"])
    all_origins = torch.arange(lookback, val_end - horizon + 1)
    starts = {"train": all_origins, "val": val_origins}
    settings = list(itertools.product(config["thetas"], config["etas"], config["alphas"]))
    counts = [int((val_origins < halfway).sum()), int((val_origins >= halfway).sum())]
    rows = []
    for depth, (start_name, origins) in itertools.product(config["depths"], starts.items()):
        sums = memory_pass(series, base, origins, train_end, halfway, cell, depth, settings)
        for (theta, eta, alpha), (first, second) in zip(settings, sums.tolist(), strict=True):
            rows.append(
                {"depth": depth, "start": start_name, "theta": theta, "eta": eta, "alpha": alpha,
                 "first": first / counts[0], "second": second / counts[1]}
            )  # fmt: skip
    # theta 0: a memory that never moves from zero, i.e. the forecaster alone
    frozen_sums = memory_pass(series, base, val_origins, train_end, halfway, cell, 0, [(0.0, 0.0, 0.0)])[0]
    return {
        "dataset": dataset,
        "horizon": horizon,
        "frozen": {"first": frozen_sums[0].item() / counts[0], "second": frozen_sums[1].item() / counts[1]},
        "settings": rows,
        "origins": {"first": counts[0], "second": counts[1], "halfway": halfway},
    }


def run_check(config: dict) -> None:
    run_cells(config, run_cell)


def choose(rows: list[dict], depths) -> dict:
    """The row with the lowest first-half MSE among those of `depths`."""
    return min((r for r in rows if r["depth"] in depths), key=lambda r: r["first"])


def describe(row: dict) -> str:
    return f"d{row['depth']} {row['start']} theta {row['theta']:g} eta {row['eta']:g} alpha {row['alpha']:g}"


def report(config: dict) -> str:
    lines = [
        "# A memory that learns from the forecasts' errors at test time (issue 28; validation only)",
        "",
        "Generated by `experiments/forecasting/residual_memory_check.py experiments/configs/"
        "residual_memory_check.json`; do not edit by hand. No test row is read.",
        "",
        config["about"],
        "",
        "MSE on the scaled data over the validation origins of each half (the first half chooses, the second "
        "checks). Frozen: the linear forecaster alone. Each depth's row: its setting with the lowest first-half "
        "MSE (depth 0: an online bias per horizon step; 1: linear; 2: MLP), then the overall choice.",
        "",
        "| dataset | horizon | frozen (1st / 2nd) | depth 0 | depth 1 | depth 2 | overall choice "
        "| 2nd: choice < frozen | 2nd: memory < bias |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    beats_frozen = beats_bias = cells = 0
    ahead_at = {horizon: [] for horizon in config["horizons"]}
    for dataset, horizon in itertools.product(config["datasets"], config["horizons"]):
        path = cell_path(config, dataset, horizon)
        if not path.exists():
            continue
        record = json.loads(path.read_text())
        rows, frozen = record["settings"], record["frozen"]
        per_depth = {depth: choose(rows, [depth]) for depth in config["memory"]["depths"]}
        overall = choose(rows, config["memory"]["depths"])
        memory = choose(rows, [d for d in config["memory"]["depths"] if d > 0])
        cells += 1
        ahead = overall["second"] < frozen["second"]
        learned = memory["second"] < per_depth[0]["second"]
        beats_frozen += ahead
        ahead_at[horizon].append(ahead)
        beats_bias += learned
        depth_cells = [f"{row['first']:.4f} / {row['second']:.4f} ({describe(row)})" for row in per_depth.values()]
        lines.append(
            f"| {dataset} | {horizon} | {frozen['first']:.4f} / {frozen['second']:.4f} | "
            + " | ".join(depth_cells)
            + f" | {describe(overall)}: {overall['second']:.4f} | {'yes' if ahead else 'no'} | "
            f"{'yes' if learned else 'no'} |"
        )
    needed = config["needed_fraction"]
    lines += [
        "",
        f"Second half: the overall choice below frozen in {beats_frozen} of {cells} cells; the best depth-1/2 "
        f"choice below the depth-0 (online bias) choice in {beats_bias} of {cells}. The rule (config, fixed "
        f"before the runs) asks for at least {needed:.0%} of the cells in each.",
        "By horizon, the overall choice below frozen on the second half: "
        + ", ".join(f"h{h} {sum(a)} of {len(a)}" for h, a in ahead_at.items())
        + ".",
    ]
    if cells == len(config["datasets"]) * len(config["horizons"]):
        passed = beats_frozen >= needed * cells and beats_bias >= needed * cells
        lines.append(f"Verdict: {'the memory earns a place here' if passed else 'not met'}.")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(config_main(__doc__, run_check, report))
