"""Issue 28: a memory that holds each column's cycle over the whole history and keeps learning it at test
time. Validation only, no test row.

    python experiments/forecasting/cycle_memory_check.py \
        experiments/configs/cycle_memory_check.json [--only-report]

The checks before this one gave the memory tokens to remember (patches, the forecaster's errors) whose
associations learned on one stretch of these series did not carry to the next. This one gives it the one
thing a long history holds that a 336-step window holds poorly and that changes slowly: the shape of each
column's day or week. CycleNet (Lin et al. 2024) learns that shape once, as a fixed table per phase,
removes it from the window before a linear forecaster and adds it back to the forecast; here the table is a
Titans memory that keeps learning it from every row it reads, in time order, through validation.

The forecaster: the closed-form linear map of `residual_memory_check.py` (each column less its window's
mean, one map shared by the columns, ridge-fitted on the training windows), fitted on the series less the
*fixed* table: each phase's mean over the training rows, per column. Three readings of the cycle:
- none: the linear map on the series itself;
- fixed: the training table, never updated (the ablation: the same table, no memory);
- online: a linear memory M (columns x phases) keyed by the row's phase (one-hot), starting from the
  training table and updated after every row by the paper's rule on the loss 1/2 |M k - x|^2:
  S = eta S - theta (M k - x) k^T, M = (1 - alpha) M + S. The forecast at origin t reads the table after rows
  < t only: the window less the table at its phases, the linear map, plus the table at the horizon's phases.
  It starts reading at the first training row ("train") or at the first validation origin ("val").

Each reading runs for each candidate period (a day and a week of the data's step); every setting runs on the
whole validation split, whose origins are cut in two halves by time. The rule, fixed in the config before the
runs: per dataset and horizon, the setting with the lowest MSE on the first half is taken (among online ones,
among fixed ones, and over all three readings); the second half checks. The memory earns a place if the online
choice beats the fixed choice and the overall choice beats the linear map without a cycle, each in at least
`needed_fraction` of the cells.
"""

from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import cell_path, config_main, run_cells  # noqa: E402
from residual_memory_check import fit_linear, half_sums, scaled_series  # noqa: E402


def phase_table(series, end: int, period: int):
    """(C, period): each phase's mean over rows [0, end), per column (row r has phase r % period)."""
    import torch

    phases = torch.arange(end) % period
    sums = torch.zeros(period, series.shape[1]).index_add_(0, phases, series[:end])
    return (sums / torch.bincount(phases, minlength=period).clamp(min=1)[:, None]).T.contiguous()


def without_cycle(series, table):
    """The series less the table at each row's phase."""
    import torch

    return series - table.T[torch.arange(len(series)) % table.shape[1]]


class CycleMemory:
    """G linear memories side by side (one per setting: theta, eta, alpha), each (C, period), keyed by the
    row's phase: one step of the Titans rule per row read."""

    def __init__(self, table, settings):
        import torch

        self.theta, self.eta, self.alpha = (
            torch.tensor([s[i] for s in settings], dtype=torch.float32).view(-1, 1, 1) for i in range(3)
        )
        self.table = table.expand(len(settings), -1, -1).clone()  # (G, C, P)
        self.momentum = torch.zeros_like(self.table)

    def learn(self, row: int, values) -> None:
        phase = row % self.table.shape[-1]
        surprise = self.table[..., phase] - values  # the gradient of 1/2 |M k - x|^2 at the key's column
        self.momentum.mul_(self.eta)
        self.momentum[..., phase] -= self.theta[..., 0] * surprise
        self.table.mul_(1 - self.alpha).add_(self.momentum)


def forecasts(series, weights, table, settings, start: int, first_eval: int, origins_end: int, lookback: int,
              horizon: int):  # fmt: skip
    """Yields (origin, forecast (G, C, H), truth (C, H)) for each origin in [first_eval, origins_end), in order.
    The memory reads rows from `start` on; the forecast at origin t reads the table after rows < t."""
    import torch

    memory = CycleMemory(table, settings)
    period = table.shape[1]
    past, ahead = torch.arange(-lookback, 0), torch.arange(horizon)
    for row in range(start, origins_end):
        if row >= first_eval:
            window = series[row - lookback : row].T  # (C, L)
            cycle = memory.table
            rest = window - cycle[..., (row + past) % period]
            mean = rest.mean(-1, keepdim=True)
            centred = torch.cat([rest - mean, torch.ones_like(mean)], -1)
            yield row, centred @ weights + mean + cycle[..., (row + ahead) % period], series[row : row + horizon].T
        memory.learn(row, series[row])


def squared_errors(series, weights, table, settings, start, first_eval, origins_end, halfway, lookback, horizon):
    """Squared-error sums (G, 2) over the two validation halves."""
    pairs = forecasts(series, weights, table, settings, start, first_eval, origins_end, lookback, horizon)
    return half_sums(pairs, halfway, len(settings))


def run_cell(dataset: str, horizon: int, config: dict) -> dict:
    import torch

    torch.set_num_threads(1)
    lookback = config["lookback"]
    series, borders = scaled_series(dataset, lookback, horizon)
    train_end, val_end = borders.train[1], borders.val[1]
    train_origins = torch.arange(lookback, train_end - horizon + 1)
    origins_end = val_end - horizon + 1
    val_origins = torch.arange(train_end, origins_end)
    halfway = int(val_origins[len(val_origins) // 2])
    counts = [int((val_origins < halfway).sum()), int((val_origins >= halfway).sum())]
    settings = list(itertools.product(config["thetas"], config["etas"], config["alphas"]))
    starts = {"train": 0, "val": train_end}
    zero = [(0.0, 0.0, 0.0)]  # theta 0: the table never moves

    def scored(table, weights, start, chosen):
        sums = squared_errors(series, weights, table, chosen, start, train_end, origins_end, halfway, lookback, horizon)
        return [(first / counts[0], second / counts[1]) for first, second in sums.tolist()]

    plain = scored(torch.zeros(series.shape[1], 1), fit_linear(series, train_origins, lookback, horizon,
                                                               config["ridge"]), train_end, zero)[0]  # fmt: skip
    rows = []
    for period in config["periods"][dataset]:
        table = phase_table(series, train_end, period)
        weights = fit_linear(without_cycle(series, table), train_origins, lookback, horizon, config["ridge"])
        first, second = scored(table, weights, train_end, zero)[0]
        rows.append({"reading": "fixed", "period": period, "first": first, "second": second})
        for start_name, start in starts.items():
            for (theta, eta, alpha), (first, second) in zip(
                settings, scored(table, weights, start, settings), strict=True
            ):
                rows.append(
                    {"reading": "online", "period": period, "start": start_name, "theta": theta, "eta": eta,
                     "alpha": alpha, "first": first, "second": second}
                )  # fmt: skip
    return {
        "dataset": dataset,
        "horizon": horizon,
        "none": {"first": plain[0], "second": plain[1]},
        "settings": rows,
        "origins": {"first": counts[0], "second": counts[1], "halfway": halfway},
    }


def run_check(config: dict) -> None:
    run_cells(config, run_cell)


def describe(row: dict) -> str:
    if row["reading"] == "none":
        return "none"
    if row["reading"] == "fixed":
        return f"fixed P={row['period']}"
    return f"online P={row['period']} {row['start']} theta {row['theta']:g} eta {row['eta']:g} alpha {row['alpha']:g}"


def report(config: dict) -> str:
    lines = [
        "# A memory of each column's cycle that keeps learning at test time (issue 28; validation only)",
        "",
        "Generated by `experiments/forecasting/cycle_memory_check.py experiments/configs/"
        "cycle_memory_check.json`; do not edit by hand. No test row is read.",
        "",
        config["about"],
        "",
        "MSE on the scaled data over the validation origins of each half (the first half chooses, the second "
        "checks). None: the linear map alone; fixed: the training table removed and added back (its period "
        "chosen on the first half); online: the table as a memory that keeps learning (its setting chosen on "
        "the first half); overall: the lowest first-half MSE of the three.",
        "",
        "| dataset | horizon | none (1st / 2nd) | fixed | online | overall choice "
        "| 2nd: online < fixed | 2nd: overall < none |",
        "|---|---|---|---|---|---|---|---|",
    ]
    online_wins = overall_wins = fixed_wins = cells = 0
    for dataset, horizon in itertools.product(config["datasets"], config["horizons"]):
        path = cell_path(config, dataset, horizon)
        if not path.exists():
            continue
        record = json.loads(path.read_text())
        rows = record["settings"]
        plain = {"reading": "none", **record["none"]}
        fixed = min((r for r in rows if r["reading"] == "fixed"), key=lambda r: r["first"])
        online = min((r for r in rows if r["reading"] == "online"), key=lambda r: r["first"])
        overall = min([plain, fixed, online], key=lambda r: r["first"])
        cells += 1
        online_ahead = online["second"] < fixed["second"]
        overall_ahead = overall["second"] < plain["second"]
        online_wins += online_ahead
        overall_wins += overall_ahead
        fixed_wins += fixed["second"] < plain["second"]
        lines.append(
            f"| {dataset} | {horizon} | {plain['first']:.4f} / {plain['second']:.4f} | "
            f"{fixed['first']:.4f} / {fixed['second']:.4f} ({describe(fixed)}) | "
            f"{online['first']:.4f} / {online['second']:.4f} ({describe(online)}) | "
            f"{describe(overall)}: {overall['second']:.4f} | {'yes' if online_ahead else 'no'} | "
            f"{'yes' if overall_ahead else 'no'} |"
        )
    needed = config["needed_fraction"]
    lines += [
        "",
        f"Second half: the online choice below the fixed choice in {online_wins} of {cells} cells; the overall "
        f"choice below the linear map without a cycle in {overall_wins} of {cells} (the fixed table alone: "
        f"{fixed_wins} of {cells}). The rule (config, fixed before the runs) asks for at least {needed:.0%} of "
        "the cells in each of the first two.",
    ]
    if cells == len(config["datasets"]) * len(config["horizons"]):
        passed = online_wins >= needed * cells and overall_wins >= needed * cells
        lines.append(f"Verdict: {'the memory earns a place here' if passed else 'not met'}.")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(config_main(__doc__, run_check, report))
