"""Issue 28: does the carried memory go wrong the longer it reads? VALIDATION only; resumable.

    python experiments/forecasting/carry_check.py experiments/configs/carry_check.json [--only-report]

On ETTh1's test split the online forecasts (the memory carried from the first row) were behind the frozen ones
although validation had favoured online; by the test split the memory has read 16-20 months, by validation
12-16, in training at most a stream (half the training split). This check never reads a test row: for each
dataset and horizon of the config, "ours" as the grid chose it (candidate and lookback from the search records,
long_memory_grid.choices) is fitted as the search fits it, and its validation windows are forecast online with
the memory starting to read at different rows: the first row (the protocol's online: every train row first),
or the last N months before the validation split, or the split's first row; and frozen (reset per window).
Val MSE over every window and over the earlier and later half of the windows. If the memory drifts with the
length it has read, a shorter carry scores better, and more so in the later half.
One JSON per (dataset, horizon) in the config's "runs"; the fitted models are kept (gitignored) in its "models".
The protocol's online score is checked against the estimator's own (the same forecasts by two paths).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import ROOT, config_main, git_commit  # noqa: E402
from long_memory_grid import OURS, choices, search_of, search_records, spec_of  # noqa: E402
from long_memory_search import fit_long_memory  # noqa: E402


def run_check(config: dict) -> None:
    import torch

    from titans_ts.training import tune_cpu_allocator

    claims = config["_claims"]
    torch.set_num_threads(claims.threads)
    tune_cpu_allocator()
    search = search_of(config)
    records = search_records(search)
    folder = ROOT / config["runs"]
    folder.mkdir(parents=True, exist_ok=True)
    for dataset in config["datasets"]:
        chosen = choices(search, records, dataset)
        if chosen is None:
            print(f"{dataset}: the search has not chosen ours yet; skipped", flush=True)
            continue
        model, lookback, _ = chosen[OURS]
        for horizon in config["horizons"]:
            path = folder / f"{dataset}_h{horizon}_s{config['seed']}.json"
            with claims.claim(path) as mine:
                if mine:
                    _check(config, search, path, dataset, horizon, model, lookback)


def _check(config, search, path, dataset, horizon, model, lookback) -> None:
    import torch

    from titans_ts.forecasting.history_mode import split_series
    from titans_ts.forecasting.long_memory_eval import error_sums, frozen_forecasts, online_forecasts, split_origins
    from titans_ts.io import atomic_write_text

    started = time.time()
    estimator, frame = fit_long_memory(dataset, horizon, config["seed"], lookback, spec_of(search, model))
    estimator.save(ROOT / config["models"] / path.stem)
    network = estimator.model_.eval()
    _, series, bounds = split_series(estimator, frame, "val")
    origins = split_origins(bounds, network.config.lookback, network.config.horizon, series.device)
    halves = {"all": origins, "earlier": origins[: len(origins) // 2], "later": origins[len(origins) // 2 :]}
    month = config["rows_per_month"][dataset]
    starts = {"from the first row": 0}
    starts |= {f"last {m} months": max(0, bounds[0] - m * month) for m in config["carry_months"]}
    starts["from the split's first row"] = bounds[0]
    scores = {}
    with torch.no_grad():
        forecasts = {name: online_forecasts(network, series, origins, start) for name, start in starts.items()}
        forecasts["frozen"] = frozen_forecasts(network, series, origins)
    for name, values in forecasts.items():
        scores[name] = {}
        for half, chosen in halves.items():
            rows = torch.isin(origins, chosen)
            squared, _, count = error_sums(values[rows], series, chosen).tolist()
            scores[name][half] = squared / count
    protocol = scores["from the first row"]["all"]  # the estimator's own online val score, by this path too
    assert abs(protocol - estimator.val_metrics_["mse"]) <= 1e-5 * protocol, (protocol, estimator.val_metrics_)
    record = {
        "dataset": dataset,
        "horizon": horizon,
        "seed": config["seed"],
        "model": model,
        "lookback": lookback,
        "grid_starts": starts,
        "val_mse": scores,
        "windows": len(origins),
        "history": estimator.history_,
        "test": None,
        "git_commit": git_commit(),
        "config": config.get("_path", ""),
        "wall_seconds": time.time() - started,
    }
    atomic_write_text(path, json.dumps(record, indent=1) + "\n")
    print(f"{path.name}: {json.dumps(scores)}", flush=True)


def report(config: dict) -> str:
    folder = ROOT / config["runs"]
    records = [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]
    lines = [
        "# Does the carried memory drift with the length it has read? (issue 28, validation only)",
        "",
        f"Generated by `experiments/forecasting/carry_check.py {config.get('_path', '')}`; do not edit by hand.",
        "",
        "Ours as the grid chose it (candidate and lookback from the validation search), fitted as the search fits "
        f"it (seed {config['seed']}). Its validation windows forecast online with the memory starting to read at "
        "different rows (the first row is the protocol's online: the memory has read every training row before "
        "the first validation window), and frozen (reset per window). Val MSE over every window, and over the "
        "earlier and the later half of them. No test row is read.",
        "",
    ]
    for record in records:
        lines += [
            f"## {record['dataset']}, horizon {record['horizon']}: {record['model']}, lookback {record['lookback']}",
            "",
            "| memory | starts reading at row | val MSE | earlier half | later half |",
            "|---|---|---|---|---|",
        ]
        for name, scores in record["val_mse"].items():
            start = record["grid_starts"].get(name, "-")
            mse = " | ".join(f"{scores[half]:.4f}" for half in ("all", "earlier", "later"))
            lines.append(f"| {name} | {start} | {mse} |")
        lines += ["", _reading(record["val_mse"]), ""]
    return "\n".join(lines) + "\n"


def _reading(scores: dict) -> str:
    """What the table says, counted from it: the best start, and how the protocol's carry compares."""
    online = {name: value for name, value in scores.items() if name != "frozen"}
    best = min(online, key=lambda name: online[name]["all"])
    protocol, frozen = scores["from the first row"], scores["frozen"]
    later = {name: value["later"] for name, value in online.items()}
    return (
        f"Reading: the lowest val MSE starts {best} ({online[best]['all']:.4f}); the protocol's carry (from the "
        f"first row) is {protocol['all'] - online[best]['all']:+.4f} from it, and in the later half "
        f"{protocol['later'] - min(later.values()):+.4f} from the best start there; online from the first row "
        f"minus frozen: {protocol['all'] - frozen['all']:+.4f} ({protocol['later'] - frozen['later']:+.4f} in the "
        "later half)."
    )


if __name__ == "__main__":
    sys.exit(config_main(__doc__, run_check, report))
