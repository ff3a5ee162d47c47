"""Issue 28: the carried memory restarted on a schedule, so that no forecast reads from a state older than
two periods. No test row.

    python experiments/forecasting/restart_check.py experiments/configs/restart_check.json [--only-report]

nested_check.md found that on the months after its validation split the memory does better the later it
starts reading (from the first row, from its validation split, from the months after themselves: better in
that order in 5 of 6 runs): the state drifts as it is carried for months. Starting at a split is not a rule a
stream can keep. A restart schedule is: memories start fresh every `period` patches, each lives two periods,
and patch p is read out from the one that started at max(0, (p // period - 1) * period), so every readout comes
from a memory that has read between one and two periods of the series (fewer in the series' first period).
Each patch is read twice: the cost stays linear in the history.

It takes nested_check's saved models (trained on months 0-8, early-stopped on 8-12; the frame ends at month 16,
the end of the protocol's validation split: no test row is read). Candidates and rule, fixed in the config
before the runs: restart periods of `period_days`, each scored alone and half-and-half with the frozen forecast
(as online_blend=0.5 mixes the carried memory); each run takes the candidate with the lowest MSE on its own
validation months; the check is whether that choice beats frozen and the carried memory's blend on the months
after. One JSON per nested_check run (run nested_check first).
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


def restarted_readouts(model, series, grid_start: int, n_patches: int, period: int):
    """Readouts (1, C, n_patches, dim) of the grid's patches, patch p's from a fresh memory that started
    reading at patch max(0, (p // period - 1) * period)."""
    import torch

    parts = []
    patch_len = model.config.patch_len
    for first in range(0, n_patches, period):
        start = max(0, first - period)
        end = min(first + period, n_patches)
        readouts, _ = model.read_stream(series, grid_start + start * patch_len, end - start)
        parts.append(readouts[:, :, first - start :])
    return torch.cat(parts, dim=2)


def restarted_forecasts(model, series, origins, period: int, grid_start: int = 0):
    """(M, horizon, C) forecasts at increasing `origins`, as `online_forecasts` makes them but from the
    restarted readouts (each readout's memory reads only patches that end at or before it)."""
    from titans_ts.forecasting.long_memory_eval import online_forecasts

    def read(past, start, n_patches):
        return restarted_readouts(model, past, start, n_patches, period)

    return online_forecasts(model, series, origins, grid_start, read=read)


def _check(config: dict, nested: dict, source: dict, path: Path) -> None:
    from titans_ts.forecasting.time_axis import season_from_index
    from titans_ts.io import atomic_write_text

    started = time.time()
    run = SavedRun(nested, source, path.stem)
    online, frozen = run.online(), run.frozen()
    forecasts = {"online": online, "frozen": frozen, "online blend": (online + frozen) / 2}
    day = season_from_index(run.frame.index)
    periods = {}
    for days in config["period_days"]:
        period = max(1, round(days * day / run.model.config.patch_len))
        periods[str(days)] = period
        restarted = restarted_forecasts(run.model, run.series, run.origins, period).double().numpy()
        forecasts[f"restart {days}"] = restarted
        forecasts[f"restart {days} blend"] = (restarted + frozen) / 2
    record = {key: {name: run.mse(f, key) for name, f in forecasts.items()} for key in run.parts}
    record |= {
        "dataset": source["dataset"], "horizon": source["horizon"], "model": source["model"],
        "lookback": source["lookback"], "period_patches": periods, "windows": run.windows(),
        "git_commit": git_commit(), "config": config.get("_path", ""), "wall_seconds": time.time() - started,
    }  # fmt: skip
    atomic_write_text(path, json.dumps(record, indent=1) + "\n")
    print(f"{path.name}: done in {record['wall_seconds']:.0f} s", flush=True)


def candidates(config: dict) -> list[str]:
    return [f"restart {days}{blend}" for days in config["period_days"] for blend in ("", " blend")]


def chosen(record: dict, config: dict) -> str:
    """The rule: the candidate with the lowest MSE on the run's own validation months."""
    return min(candidates(config), key=record["own_val"].get)


def report(config: dict) -> str:
    records = [json.loads(p.read_text()) for p in sorted((ROOT / config["runs"]).glob("*.json"))]
    fixed = ["online", "frozen", "online blend"]
    names = fixed + candidates(config)
    lines = [
        "# The carried memory restarted on a schedule (issue 28, no test row)",
        "",
        f"Generated by `experiments/forecasting/restart_check.py {config.get('_path', '')}`; do not edit by hand.",
        "",
        "nested_check's saved models (trained on months 0-8, early-stopped on 8-12, seed 0), scored on their own "
        "validation months (8-12) and on the months after (12-16, the protocol's validation months; nothing "
        "later is read). online: the memory carried from the first row; frozen: reset for every window; online "
        "blend: their mean (online_blend=0.5); restart D: memories started fresh every D days, each patch read "
        "out from the one that has read between D and 2 D days; 'blend': its mean with frozen. Rule (fixed "
        "before the runs): each run takes the restart candidate with the lowest MSE on its own validation "
        "months (marked *). MSE on the scaled data.",
        "",
        "| dataset | horizon | months | " + " | ".join(names) + " |",
        "|---|---|---|" + "---|" * len(names),
    ]
    for r in records:
        pick = chosen(r, config)
        for label, key in (("own val", "own_val"), ("after", "months_after")):
            cells = [f"{r[key][n]:.4f}" + ("*" if n == pick else "") for n in names]
            lines.append(f"| {r['dataset']} | {r['horizon']} | {label} | " + " | ".join(cells) + " |")
    lines.append("")
    beats = {"frozen": 0, "online blend": 0}
    for r in records:
        pick, after = chosen(r, config), r["months_after"]
        for other in beats:
            beats[other] += after[pick] < after[other]
        lines.append(
            f"- {r['dataset']} h{r['horizon']}: chosen {pick} ({r['period_patches'][pick.split()[1]]} patches); "
            f"months after {after[pick]:.4f} against frozen {after['frozen']:.4f} "
            f"({after[pick] - after['frozen']:+.4f}) and the online blend {after['online blend']:.4f} "
            f"({after[pick] - after['online blend']:+.4f})."
        )
    if records:
        n = len(records)
        lines.append(
            f"- On the months after, the rule's choice is below frozen in {beats['frozen']} of {n} and below the "
            f"online blend in {beats['online blend']} of {n}."
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(config_main(__doc__, run_check, report))
