"""Probabilistic forecasts (issue 29): how well calibrated the quantile levels are on test; resumable.

    python experiments/forecasting/quantiles.py experiments/configs/quantiles.json [--only-report]
    # one worker per core:  ... --worker &  ... --worker &

For every dataset of the config, each model of the config is fitted as `titans-ts fit --dataset NAME` would fit
it (the dataset's defaults, `settings.resolve_fit`) with the config's quantiles and calibration at its horizon
and seed: the Titans model with its quantile head (pinball loss, conformalized on validation), and seasonal
naive with conformal residual intervals (nothing trained). fallback="off": each model is reported itself.
The test split gives the 80 % interval's coverage (the share of truths inside [q0.1, q0.9]) and the mean
weighted quantile loss, on the scaled data over every test window (quantiles.QuantileScores). One JSON per run
in the config's "runs" folder; the report is a table and one plot (coverage and mean wQL per dataset).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from harness import ROOT, config_main, git_commit  # noqa: E402


def runs_dir(config: dict) -> Path:
    return ROOT / config["runs"]


def models_dir(config: dict) -> Path:
    """The fitted estimators (safetensors + JSON, gitignored): evaluated again without training when only the
    calibration changes."""
    return runs_dir(config) / "models"


def _run_name(dataset: str, horizon: int, model: str, seed: int, calibration: str = "conformal") -> str:
    """One run's file; conformal (the first round's) has no suffix."""
    label = Path(dataset).name.split(".")[0]
    suffix = "" if calibration == "conformal" else f"_{calibration}"
    return f"{label}_h{horizon}_{model.replace(' ', '-')}_s{seed}{suffix}.json"


def run_quantiles(config: dict) -> None:
    import torch

    from titans_ts.data import load_dataset
    from titans_ts.training import tune_cpu_allocator

    claims = config["_claims"]
    torch.set_num_threads(claims.threads)
    tune_cpu_allocator()
    folder = runs_dir(config)
    folder.mkdir(parents=True, exist_ok=True)
    commit = git_commit()
    for dataset in config["datasets"]:
        frame = None
        for calibration in config["calibrations"]:
            for model, params in config["models"].items():
                path = folder / _run_name(dataset, config["horizon"], model, config["seed"], calibration)
                with claims.claim(path) as mine:
                    if mine:
                        frame = load_dataset(dataset) if frame is None else frame
                        _quantile_run(frame, dataset, model, params, calibration, path, commit, config)


def _quantile_run(frame, dataset, model, params, calibration, path, commit, config) -> None:
    from titans_ts import TitansForecaster
    from titans_ts.forecasting.benchmark import seasonal_naive_lookback
    from titans_ts.forecasting.settings import resolve_fit
    from titans_ts.io import atomic_write_text
    from titans_ts.training import require_finished

    started = time.time()
    params = {**config.get("params", {}), **params}
    if params.get("variant") == "seasonal_naive":  # the same rule as `titans-ts benchmark`
        params["lookback"] = seasonal_naive_lookback(params.get("lookback", 96), frame.index)
    first = config["calibrations"][0]
    trained = models_dir(config) / Path(_run_name(dataset, config["horizon"], model, config["seed"], first)).stem
    if calibration != first and (trained / "config.json").exists():  # the same network, calibrated again
        estimator = TitansForecaster.load(trained).recalibrate(frame, calibrate=calibration)
        source = f"{trained.relative_to(ROOT)} (fitted with calibrate={first!r}), recalibrated"
    else:
        given = dict(horizon=config["horizon"], seed=config["seed"], quantiles=config["quantiles"])
        given |= dict(calibrate=calibration, progress=False, fallback="off")
        settings = resolve_fit(dataset, **given, **params)  # the dataset's defaults for what is not given
        estimator = TitansForecaster(**(settings.params | {"protocol": settings.protocol(frame.index)}))
        estimator.fit(frame)
        require_finished(estimator.history_, path.stem)
        estimator.save(models_dir(config) / path.stem)  # kept (not committed): a later calibration needs no refit
        source = "fitted"
    record = {
        "dataset": Path(dataset).name.split(".")[0],
        "horizon": config["horizon"],
        "seed": config["seed"],
        "model": model,
        "protocol": estimator.protocol,
        "params": estimator.get_params(),
        "quantiles": list(estimator.quantile_levels_),
        "calibration": estimator.calibration_,
        "source": source,
        "val": estimator.evaluate(frame, split="val"),  # calibrated on these windows: in-sample coverage
        "test": estimator.evaluate(frame, split="test"),
        "history": estimator.history_,
        "git_commit": commit,
        "config": config.get("_path", ""),
        "wall_seconds": time.time() - started,
        "metric_space": "scaled data (train-rows StandardScaler), every window counted",
    }
    atomic_write_text(path, json.dumps(record, indent=1))
    coverage = ", ".join(f"{k} {v:.3f}" for k, v in record["test"]["coverage"].items())
    print(f"{path.name}: test coverage {coverage}, mean wQL {record['test']['mean_wql']:.4f}", flush=True)


def _records(config: dict) -> dict:
    """(dataset label, model, calibration) -> record, for the config's datasets, models, calibrations."""
    found = {}
    for dataset in config["datasets"]:
        for calibration in config["calibrations"]:
            for model in config["models"]:
                name = _run_name(dataset, config["horizon"], model, config["seed"], calibration)
                path = runs_dir(config) / name
                if path.exists():
                    found[(Path(dataset).name.split(".")[0], model, calibration)] = json.loads(path.read_text())
    return found


def _interval(config: dict) -> str:
    levels = sorted(config["quantiles"])
    return f"{levels[0]:g}-{levels[-1]:g}"


def report(config: dict) -> str:
    records = _records(config)
    interval = _interval(config)
    low, high = map(float, interval.split("-"))
    nominal = round(100 * (high - low))
    chosen = config["chosen"]
    lines = [
        "# Probabilistic forecasts: calibrated quantiles (issue 29)",
        "",
        f"Generated by `experiments/forecasting/quantiles.py {config.get('_path', '')}`; do not edit by hand.",
        "",
        f"Horizon {config['horizon']}, seed {config['seed']}, quantiles {config['quantiles']}. Each model with its "
        "dataset's defaults (`titans-ts defaults`), fallback off, under each calibration: `conformal` (split "
        "conformal on the validation windows, per horizon step and column, with the (n + 1) correction) and "
        "`adaptive` (those offsets, then moved by every truth as it arrives, `conformal.LevelTracker`; a split's "
        "windows are tracked in time order from the validation offsets). The adaptive runs recalibrate the "
        "conformal run's saved network when there is one (`recalibrate`, no retraining), else fit again with the "
        f"same settings and seed. **{chosen}** is the calibration chosen on validation halves only "
        "([conformal_check.md](conformal_check.md)). Test metrics on the scaled data (train-rows StandardScaler) "
        f"over every test window: coverage of the {interval} interval (nominal {nominal} %), its mean width, the "
        "mean weighted quantile loss (mean over levels of 2 * sum pinball / sum |y|) and the CRPS approximated by "
        "the levels. Validation coverage is in-sample for conformal (the calibration used those windows).",
        "",
        f"| dataset | model | calibration | test coverage {interval} | val coverage | width | mean wQL | CRPS | MSE "
        "| wall s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (dataset, model, calibration), record in records.items():
        test, val = record["test"], record["val"]
        lines.append(
            f"| {dataset} | {model} | {calibration} | {test['coverage'][interval]:.3f} | "
            f"{val['coverage'][interval]:.3f} | {test['width'][interval]:.3f} | {test['mean_wql']:.4f} | "
            f"{test['crps']:.4f} | {test['mse']:.4f} | {record['wall_seconds']:.0f} |"
        )
    total = len(config["datasets"]) * len(config["models"]) * len(config["calibrations"])
    lines += ["", f"{len(records)} of {total} runs done.", ""]
    lines += _acceptance(records, config, interval, chosen)
    if any(key[2] == chosen for key in records):
        plot = ROOT / config["plot"]
        _plot({k[:2]: r for k, r in records.items() if k[2] == chosen}, config, interval, nominal, plot)
        lines += ["", f"![coverage and mean wQL per dataset, {chosen}]({Path(config['plot']).name})"]
    return "\n".join(lines) + "\n"


def _acceptance(records: dict, config: dict, interval: str, chosen: str) -> list[str]:
    """Issue 29's criteria, counted from the records of the chosen calibration."""
    model, floor = list(config["models"])
    low, high = config["coverage_band"]
    lines = [f"With {chosen} calibration (issue 29's criteria):"]
    datasets = [Path(d).name.split(".")[0] for d in config["datasets"]]
    first = config["calibrations"][0]
    within, ahead, ahead_of_first, done = 0, 0, 0, 0
    for dataset in datasets:
        ours, theirs = records.get((dataset, model, chosen)), records.get((dataset, floor, chosen))
        if ours is None or theirs is None:
            continue
        done += 1
        coverage = ours["test"]["coverage"][interval]
        within += low <= coverage <= high
        ahead += ours["test"]["mean_wql"] < theirs["test"]["mean_wql"]
        split = records.get((dataset, floor, first))
        ahead_of_first += split is not None and ours["test"]["mean_wql"] < split["test"]["mean_wql"]
    lines += [
        f"- test coverage of the {interval} interval within {low:.0%}-{high:.0%}: {within} of {done} datasets run "
        f"(of {len(datasets)});",
        f"- mean wQL below {floor}'s with the same calibration: {ahead} of {done} datasets run;",
        f"- mean wQL below {floor}'s with {first} calibration: {ahead_of_first} of {done} datasets run.",
    ]
    return lines


def _plot(records: dict, config: dict, interval: str, nominal: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from titans_ts.io import atomic_path

    datasets = list(dict.fromkeys(d for d, _ in records))  # records: (dataset, model) -> record
    models = list(config["models"])
    figure, (coverage, wql) = plt.subplots(1, 2, figsize=(11, 3.8))
    width = 0.8 / len(models)
    for number, model in enumerate(models):
        x = np.arange(len(datasets)) + (number - (len(models) - 1) / 2) * width
        cells = [records.get((d, model)) for d in datasets]
        coverage.bar(x, [r["test"]["coverage"][interval] if r else np.nan for r in cells], width, label=model)
        wql.bar(x, [r["test"]["mean_wql"] if r else np.nan for r in cells], width, label=model)
    coverage.axhline(nominal / 100, color="0.3", linestyle="--", linewidth=1, label=f"nominal {nominal} %")
    coverage.set_title(f"test coverage of the {interval} interval ({config['chosen']})")
    wql.set_title("test mean weighted quantile loss (lower is better)")
    for axis in (coverage, wql):
        axis.set_xticks(np.arange(len(datasets)), datasets)
    coverage.set_ylim(0, 1)
    coverage.legend(loc="lower right", fontsize=8)
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=100)
    plt.close(figure)


if __name__ == "__main__":
    sys.exit(config_main(__doc__, run_quantiles, report))
