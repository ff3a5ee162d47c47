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


def _run_name(dataset: str, horizon: int, model: str, seed: int) -> str:
    label = Path(dataset).name.split(".")[0]
    return f"{label}_h{horizon}_{model.replace(' ', '-')}_s{seed}.json"


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
        for model, params in config["models"].items():
            path = folder / _run_name(dataset, config["horizon"], model, config["seed"])
            with claims.claim(path) as mine:
                if mine:
                    frame = load_dataset(dataset) if frame is None else frame
                    _quantile_run(frame, dataset, model, params, path, commit, config)


def _quantile_run(frame, dataset, model, params, path, commit, config) -> None:
    from titans_ts import TitansForecaster
    from titans_ts.forecasting.benchmark import seasonal_naive_lookback
    from titans_ts.forecasting.settings import resolve_fit
    from titans_ts.io import atomic_write_text
    from titans_ts.training import require_finished

    started = time.time()
    params = {**config.get("params", {}), **params}
    if params.get("variant") == "seasonal_naive":  # the same rule as `titans-ts benchmark`
        params["lookback"] = seasonal_naive_lookback(params.get("lookback", 96), frame.index)
    given = dict(horizon=config["horizon"], seed=config["seed"], quantiles=config["quantiles"])
    given |= dict(calibrate=config["calibrate"], progress=False, fallback="off")
    settings = resolve_fit(dataset, **given, **params)  # the dataset's defaults for what is not given
    estimator = TitansForecaster(**(settings.params | {"protocol": settings.protocol(frame.index)}))
    estimator.fit(frame)
    require_finished(estimator.history_, path.stem)
    estimator.save(models_dir(config) / path.stem)  # kept (not committed): a later calibration needs no refit
    record = {
        "dataset": settings.label,
        "horizon": config["horizon"],
        "seed": config["seed"],
        "model": model,
        "protocol": estimator.protocol,
        "params": estimator.get_params(),
        "quantiles": list(estimator.quantile_levels_),
        "calibration": estimator.calibration_,
        "val": estimator.evaluate(split="val"),  # calibrated on these windows: in-sample coverage
        "test": estimator.evaluate(split="test"),
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
    """(dataset label, model) -> record, for the config's datasets, models, horizon and seed."""
    found = {}
    for dataset in config["datasets"]:
        for model in config["models"]:
            path = runs_dir(config) / _run_name(dataset, config["horizon"], model, config["seed"])
            if path.exists():
                found[(Path(dataset).name.split(".")[0], model)] = json.loads(path.read_text())
    return found


def _interval(config: dict) -> str:
    levels = sorted(config["quantiles"])
    return f"{levels[0]:g}-{levels[-1]:g}"


def report(config: dict) -> str:
    records = _records(config)
    interval = _interval(config)
    low, high = map(float, interval.split("-"))
    nominal = round(100 * (high - low))
    lines = [
        "# Probabilistic forecasts: calibrated quantiles (issue 29)",
        "",
        f"Generated by `experiments/forecasting/quantiles.py {config.get('_path', '')}`; do not edit by hand.",
        "",
        f"Horizon {config['horizon']}, seed {config['seed']}, quantiles {config['quantiles']}, calibration "
        f"`{config['calibrate']}` on the validation windows (split conformal, per horizon step and column, with the "
        "(n + 1) correction). Each model with its dataset's defaults (`titans-ts defaults`), fallback off. Test "
        "metrics on the scaled data (train-rows StandardScaler) over every test window: coverage of the "
        f"{interval} interval (nominal {nominal} %), its mean width, the mean weighted quantile loss (mean over "
        "levels of 2 * sum pinball / sum |y|) and the CRPS approximated by the levels. Validation coverage is "
        "in-sample (the calibration used those windows).",
        "",
        f"| dataset | model | test coverage {interval} | val coverage | width | mean wQL | CRPS | MSE | wall s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for (dataset, model), record in records.items():
        test, val = record["test"], record["val"]
        lines.append(
            f"| {dataset} | {model} | {test['coverage'][interval]:.3f} | {val['coverage'][interval]:.3f} | "
            f"{test['width'][interval]:.3f} | {test['mean_wql']:.4f} | {test['crps']:.4f} | {test['mse']:.4f} | "
            f"{record['wall_seconds']:.0f} |"
        )
    total = len(config["datasets"]) * len(config["models"])
    lines += ["", f"{len(records)} of {total} runs done."]
    if records:
        plot = ROOT / config["plot"]
        _plot(records, config, interval, nominal, plot)
        lines += ["", f"![coverage and mean wQL per dataset]({Path(config['plot']).name})"]
    return "\n".join(lines) + "\n"


def _plot(records: dict, config: dict, interval: str, nominal: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from titans_ts.io import atomic_path

    datasets = list(dict.fromkeys(d for d, _ in records))
    models = list(config["models"])
    figure, (coverage, wql) = plt.subplots(1, 2, figsize=(11, 3.8))
    width = 0.8 / len(models)
    for number, model in enumerate(models):
        x = np.arange(len(datasets)) + (number - (len(models) - 1) / 2) * width
        cells = [records.get((d, model)) for d in datasets]
        coverage.bar(x, [r["test"]["coverage"][interval] if r else np.nan for r in cells], width, label=model)
        wql.bar(x, [r["test"]["mean_wql"] if r else np.nan for r in cells], width, label=model)
    coverage.axhline(nominal / 100, color="0.3", linestyle="--", linewidth=1, label=f"nominal {nominal} %")
    coverage.set_title(f"test coverage of the {interval} interval")
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
