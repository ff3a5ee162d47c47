"""Issue 28: a gate that learns, from the errors already revealed, how far to trust the carried memory. No test row.

    python experiments/forecasting/gate_check.py experiments/configs/gate_check.json [--only-report]

guard_check.md found that no single pull towards the trained memory, chosen on a model's own validation months,
made the carried state beat frozen on the months after at horizon 96 (2 of 3 cells behind). Which of the two
readings of one network is better (the memory carried through every earlier row, or reset for every window)
changes from one stretch of the series to the next. This check forecasts, at every window origin t, with

    (1 - w_t) * frozen_t + w_t * online_t,

where w_t in [0, 1] is the least-squares weight of the two forecasts over every forecast value whose truth is
known before t (rows < t, from every earlier window, each value weighted by 2 ** (-age / half_life) by the age
of its row): a forecast at t reads no row at or after t. The gate starts empty at the first window of the
model's own validation months (w = 0.5 until a truth is known) and runs on through the months after.

It takes nested_check's saved models (trained on months 0-8, early-stopped on 8-12; the frame ends at month 16,
the end of the protocol's validation split: no test row is read anywhere). Candidates and rule, fixed in the
config before the runs: each run takes the half-life (days) with the lowest gated MSE on its own validation
months; the check is whether that choice beats frozen on the months after. Beside it, for what the gate adds
over plain averaging: the fixed half-and-half average of the two readings.
One JSON per nested_check run (run nested_check first).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import ROOT, config_main, git_commit  # noqa: E402
from nested_check import SavedRun, run_on_saved_models  # noqa: E402


def run_check(config: dict) -> None:
    run_on_saved_models(config, _check)


def gate_weights(online, frozen, targets, origins, half_life_rows: float | None):
    """w_t (float64, one per origin) for forecasts (M, H, C) at increasing `origins` with truths `targets`.

    w_t = clip(sum e . d / sum d . d, 0, 1) over the forecast values of rows r < t, each weighted by
    2 ** (-(t - 1 - r) / half_life_rows) (None: no decay), with e = frozen - truth and d = frozen - online
    (the weight minimising the squared error of frozen - w d over those values); 0.5 before any is known."""
    import numpy as np

    horizon = online.shape[1]
    d = (frozen - online).astype(np.float64)
    e = (frozen - targets).astype(np.float64)
    first, last = int(origins[0]), int(origins[-1]) + horizon
    rows = (origins[:, None] - first + np.arange(horizon)[None, :]).ravel()
    cross = np.bincount(rows, weights=(e * d).sum(-1).ravel(), minlength=last - first)
    square = np.bincount(rows, weights=(d * d).sum(-1).ravel(), minlength=last - first)
    decay = 1.0 if half_life_rows is None else 2.0 ** (-1.0 / half_life_rows)
    known_cross, known_square = np.zeros(last - first + 1), np.zeros(last - first + 1)
    for r in range(last - first):  # known_*[i]: the decayed sums over rows first .. first + i - 1
        known_cross[r + 1] = decay * known_cross[r] + cross[r]
        known_square[r + 1] = decay * known_square[r] + square[r]
    at = origins - first
    numerator, denominator = known_cross[at], known_square[at]
    weights = np.full(len(origins), 0.5)
    known = denominator > 0
    weights[known] = np.clip(numerator[known] / denominator[known], 0.0, 1.0)
    return weights


def _check(config: dict, nested: dict, source: dict, path: Path) -> None:
    from titans_ts.forecasting.time_axis import season_from_index
    from titans_ts.io import atomic_write_text

    started = time.time()
    run = SavedRun(nested, source, path.stem)
    online, frozen = run.online(), run.frozen()
    origins = run.origins.numpy()
    record = {key: {"online": run.mse(online, key), "frozen": run.mse(frozen, key),
                    "average": run.mse((online + frozen) / 2, key)} for key in run.parts}  # fmt: skip
    for half_life in config["half_life_days"]:
        rows = None if half_life is None else half_life * season_from_index(run.frame.index)  # a day in rows
        weights = gate_weights(online, frozen, run.targets, origins, rows)
        gated = frozen - weights[:, None, None] * (frozen - online)
        for key, part in run.parts.items():
            record[key][f"gate {half_life}"] = run.mse(gated, key)
            record[key][f"mean w {half_life}"] = float(weights[part].mean())
    record |= {
        "dataset": source["dataset"], "horizon": source["horizon"], "model": source["model"],
        "lookback": source["lookback"], "windows": run.windows(),
        "git_commit": git_commit(), "config": config.get("_path", ""), "wall_seconds": time.time() - started,
    }  # fmt: skip
    atomic_write_text(path, json.dumps(record, indent=1) + "\n")
    print(f"{path.name}: done in {record['wall_seconds']:.0f} s", flush=True)


def chosen_gate(record: dict, config: dict) -> str:
    """The rule: the half-life with the lowest gated MSE on the run's own validation months."""
    own = record["own_val"]
    return min((f"gate {h}" for h in config["half_life_days"]), key=own.get)


def report(config: dict) -> str:
    records = [json.loads(p.read_text()) for p in sorted((ROOT / config["runs"]).glob("*.json"))]
    gates = [f"gate {h}" for h in config["half_life_days"]]
    names = {g: f"gate, half-life {g.split()[1]} d" if g.split()[1] != "None" else "gate, no decay" for g in gates}
    lines = [
        "# A gate between the carried and the reset memory, learnt from revealed errors (issue 28, no test row)",
        "",
        f"Generated by `experiments/forecasting/gate_check.py {config.get('_path', '')}`; do not edit by hand.",
        "",
        "nested_check's saved models (trained on months 0-8, early-stopped on 8-12, seed 0). Each window is "
        "forecast by (1 - w) frozen + w online, w the least-squares weight of the two over the forecast values "
        "whose truth is known before the window's origin (decayed by the half-life; the gate starts at the "
        "first window of the own validation months). Online: the memory carried from the first row (the "
        "protocol). Own val: months 8-12; after: months 12-16 (the protocol's validation months; nothing later "
        "is read). MSE on the scaled data. Rule (fixed before the runs): each run takes the half-life with the "
        "lowest gated MSE on its own validation months (marked *). 'average': the fixed half-and-half mix, to "
        "show what the gate adds over averaging the two readings.",
        "",
        "| dataset | horizon | months | online | frozen | average | "
        + " | ".join(names[g] for g in gates)
        + " | mean w (chosen) |",
        "|---|---|---|---|---|---|" + "---|" * (len(gates) + 1),
    ]
    for r in records:
        pick = chosen_gate(r, config)
        for label, key in (("own val", "own_val"), ("after", "months_after")):
            cells = [f"{r[key][g]:.4f}" + ("*" if g == pick else "") for g in gates]
            fixed = " | ".join(f"{r[key][m]:.4f}" for m in ("online", "frozen", "average"))
            weight = r[key][pick.replace("gate", "mean w")]
            row = f"| {r['dataset']} | {r['horizon']} | {label} | {fixed} | " + " | ".join(cells)
            lines.append(row + f" | {weight:.2f} |")
    lines.append("")
    wins = {"gate": 0, "online": 0, "average": 0}
    for r in records:
        pick = chosen_gate(r, config)
        after = r["months_after"]
        wins["gate"] += after[pick] < after["frozen"]
        wins["online"] += after["online"] < after["frozen"]
        wins["average"] += after["average"] < after["frozen"]
        lines.append(
            f"- {r['dataset']} h{r['horizon']}: chosen {names[pick]}; months after gated {after[pick]:.4f} against "
            f"frozen {after['frozen']:.4f} ({after[pick] - after['frozen']:+.4f}), online {after['online']:.4f}, "
            f"average {after['average']:.4f}."
        )
    if records:
        n = len(records)
        lines.append(
            f"- On the months after, below frozen: the rule's gate in {wins['gate']} of {n}, ungated online in "
            f"{wins['online']} of {n}, the fixed average in {wins['average']} of {n}."
        )
        beaten = sum(r["months_after"]["average"] < r["months_after"][chosen_gate(r, config)] for r in records)
        lines.append(
            f"- The fixed average beat the rule's gate on the months after in {beaten} of {n}. What went into the "
            "estimator is the simpler of the two: `online_blend=0.5`, every online forecast the mean of the two "
            "readings (chosen on these validation months; no test row read). Much of its gain is what averaging two "
            "different forecasts gives; the carried memory is what makes them different."
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(config_main(__doc__, run_check, report))
