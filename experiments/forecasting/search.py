"""Model selection for the forecasting grid on VALIDATION only; resumable. No test number is computed.

    python experiments/forecasting/search.py experiments/configs/forecasting_search.json [--only-report]
    # one worker per core:  ... --worker &  ... --worker &

For every dataset x horizon of the config, each candidate (the config's "base" settings with one
change) is trained on the train split and scored by its MSE over every validation window (early
stopping on the same validation split, as in `fit`). The untrained references, repeat-last and
seasonal naive, are scored on the same windows. One JSON per run in
experiments/results/runs/forecasting_search/; the report ranks candidates per dataset family
(mean validation MSE) and over all datasets (mean validation MSE relative to repeat-last, so that
datasets of different difficulty weigh alike: the general default for a user's own data).
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from harness import ROOT, config_main, git_commit  # noqa: E402

RUNS = ROOT / "experiments" / "results" / "runs" / "forecasting_search"
REFERENCES = {"repeat-last": {"variant": "naive"}, "seasonal naive": {"variant": "seasonal_naive"}}


def candidates(config: dict) -> dict:
    """name -> TitansForecaster parameters: the references, the base, and the base with each change."""
    base = dict(config["base"])
    found = {name: dict(base, **change) for name, change in REFERENCES.items()}
    found["base"] = base
    for name, change in config["changes"].items():
        found[name] = dict(base, **change)
    return found


def _run_name(dataset: str, horizon: int, candidate: str) -> str:
    return f"{dataset}_h{horizon}_{candidate.replace(' ', '-')}.json"


def run_search(config: dict) -> None:
    import torch

    from titans_ts.data import load_dataset
    from titans_ts.training import tune_cpu_allocator

    claims = config["_claims"]
    torch.set_num_threads(claims.threads)
    tune_cpu_allocator()
    RUNS.mkdir(parents=True, exist_ok=True)
    commit = git_commit()
    frames = {}
    for horizon in config["horizons"]:  # run order: every dataset at the first horizon first
        for dataset in config["datasets"]:
            if dataset not in frames:
                frames[dataset] = load_dataset(dataset)
            frame = frames[dataset]
            for name, params in candidates(config).items():
                path = RUNS / _run_name(dataset, horizon, name)
                with claims.claim(path) as mine:
                    if mine:
                        _search_run(frame, dataset, horizon, name, params, path, commit, config)


def _search_run(frame, dataset, horizon, name, params, path, commit, config) -> None:
    from titans_ts import TitansForecaster
    from titans_ts.forecasting.benchmark import seasonal_naive_lookback
    from titans_ts.forecasting.settings import resolve_fit
    from titans_ts.io import atomic_write_text
    from titans_ts.training import require_finished

    started = time.time()
    params = {"lookback": config["lookback"], **params}
    if params["variant"] == "seasonal_naive":  # the same rule as `titans-ts benchmark`
        params["lookback"] = seasonal_naive_lookback(params["lookback"], frame.index)
    # the config's base names every setting a family may choose (defaults.CHOSEN): no family default enters
    settings = resolve_fit(dataset, horizon=horizon, progress=False, fallback="off", **params)  # the model itself
    estimator = TitansForecaster(**settings.params)
    estimator.fit(frame)  # early stopping and the reported number: validation only
    require_finished(estimator.history_, path.stem)
    record = {
        "dataset": dataset,
        "horizon": horizon,
        "candidate": name,
        "params": estimator.get_params(),
        "val": estimator.val_metrics_,
        "history": estimator.history_,
        "git_commit": commit,
        "config": config.get("_path", ""),
        "wall_seconds": time.time() - started,
    }
    atomic_write_text(path, json.dumps(record, indent=1))
    print(f"{path.name}: val MSE {record['val']['mse']:.4f} ({record['wall_seconds']:.0f} s)", flush=True)


def report(config: dict) -> str:
    names = list(candidates(config))
    scores = {}  # (dataset, horizon) -> candidate -> val mse
    for path in RUNS.glob("*.json"):
        record = json.loads(path.read_text())
        key = (record["dataset"], record["horizon"])
        if record["dataset"] in config["datasets"] and record["horizon"] in config["horizons"]:
            scores.setdefault(key, {})[record["candidate"]] = record["val"]["mse"]
    cells = [(d, h) for d in config["datasets"] for h in config["horizons"]]
    families = config.get("families", {dataset: [dataset] for dataset in config["datasets"]})
    lines = [
        "# Forecasting model selection (validation only)",
        "",
        f"Generated by `experiments/forecasting/search.py {config.get('_path', '')}`; do not edit by hand.",
        "",
        "Every number here is a validation MSE (scaled data, every validation window); no test number was "
        f"computed. Seed 0, lookback {config['lookback']}. Base settings: `{json.dumps(config['base'])}`; each "
        "other candidate changes one of them. Repeat-last and seasonal naive are untrained references.",
        "",
        "| candidate | "
        + " | ".join(f"{d} h{h}" for d, h in cells)
        + " | "
        + " | ".join(f"{family} mean" for family in families)
        + " | all, mean rel. to repeat-last |",
        "|---|" + "---|" * (len(cells) + len(families)) + "---|",
    ]
    summary = {}  # candidate -> per family mean, overall relative (None where incomplete)
    for name in names:
        row = [_cell(scores.get(cell, {}).get(name)) for cell in cells]
        per_family = {
            family: _mean([scores.get((d, h), {}).get(name) for d in members for h in config["horizons"]])
            for family, members in families.items()
        }
        relative = _mean(
            [
                scores[cell][name] / scores[cell]["repeat-last"]
                if name in scores.get(cell, {}) and scores[cell].get("repeat-last")
                else None
                for cell in cells
            ]
        )
        summary[name] = (per_family, relative)
        row += [_cell(per_family[family]) for family in families] + [_cell(relative, 5)]
        lines.append(f"| {name} | " + " | ".join(row) + " |")
    trained = [name for name in names if name not in REFERENCES]
    lines += ["", "Choice (lowest validation number among the trained candidates, once a column is complete):", ""]
    for family in families:
        ranked = [(summary[n][0][family], n) for n in trained if summary[n][0][family] is not None]
        pending = len(ranked) < len(trained)
        lines.append(f"- {family}: " + ("pending" if pending else f"**{min(ranked)[1]}**"))
    ranked = [(summary[n][1], n) for n in trained if summary[n][1] is not None]
    general = "pending" if len(ranked) < len(trained) else f"**{min(ranked)[1]}**"
    lines.append(f"- general default (all five datasets, relative to repeat-last): {general}")
    done = sum(len(v) for v in scores.values())
    lines += ["", f"{done} of {len(cells) * len(names)} runs done."]
    return "\n".join(lines) + "\n"


def _mean(values):
    """Mean of a complete list; None when any value is missing."""
    return None if not values or any(v is None for v in values) else statistics.mean(values)


def _cell(value, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


if __name__ == "__main__":
    sys.exit(config_main(__doc__, run_search, report))
