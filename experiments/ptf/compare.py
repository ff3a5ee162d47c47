"""TitansPTF beside pytorch-forecasting's own N-HiTS and N-BEATS: the same TimeSeriesDataSet, metric and budget.

    python experiments/ptf/compare.py experiments/configs/ptf.json [--only-report]

One univariate series (ETTh1's OT, its protocol split: 12/4/4 months), encoder 96, horizon 96; every model
trained by the same Lightning Trainer (MAE loss, Adam, `max_epochs` with early stopping on the validation
loss, the same batch size and learning rate), then scored on every test window: MAE and MSE in original
units. One JSON per (model, seed) in the config's "runs" folder (skipped when present).

With a "quantile_loss" section (issue 29), its models are trained again, the same way, on ptf's
`QuantileLoss(levels)` and scored from `predict(mode="quantiles")`: pinball loss per level, mean weighted
quantile loss, CRPS from the levels and coverage of the central interval (titans_ts' QuantileScores), in
original units. A model the library cannot train on that loss is recorded with the error it raised.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from harness import ROOT, config_main, git_commit  # noqa: E402


def datasets(config: dict):
    import numpy as np
    from pytorch_forecasting import TimeSeriesDataSet

    from titans_ts.data import load_dataset, protocol_for, split_borders

    frame = load_dataset(config["dataset"])[[config["target"]]].reset_index(drop=True)
    frame["time_idx"], frame["series"] = np.arange(len(frame)), config["dataset"]
    encoder, horizon = config["encoder_length"], config["horizon"]
    borders = split_borders(len(frame), encoder, horizon, protocol_for(config["dataset"]))
    common = dict(
        time_idx="time_idx",
        target=config["target"],
        group_ids=["series"],
        min_encoder_length=encoder,
        max_encoder_length=encoder,
        min_prediction_length=horizon,
        max_prediction_length=horizon,
        time_varying_unknown_reals=[config["target"]],
    )
    training = TimeSeriesDataSet(frame[frame.time_idx < borders.train[1]], **common)

    def part(start, end):  # the windows whose forecast lies inside [start + encoder, end)
        rows = frame[(frame.time_idx >= start) & (frame.time_idx < end)]
        return TimeSeriesDataSet.from_dataset(training, rows, stop_randomization=True)

    return training, part(*borders.val), part(*borders.test)


def build(name: str, training, config: dict, levels=None):
    """The model on ptf's MAE, or on QuantileLoss(levels) when levels are given."""
    from pytorch_forecasting import NBeats, NHiTS
    from pytorch_forecasting.metrics import MAE, QuantileLoss

    from titans_ts.integrations.pytorch_forecasting import TitansPTF

    common = {"learning_rate": config["lr"], "loss": QuantileLoss(list(levels)) if levels else MAE()}
    if name == "titans":
        return TitansPTF.from_dataset(training, **config["titans"], **common)
    if name == "nhits":
        return NHiTS.from_dataset(training, **common)
    if name == "nbeats":
        return NBeats.from_dataset(training, **common)
    raise ValueError(f"unknown model {name!r}")


def planned(config: dict):
    """(run file stem, model, levels or None) in run order: the MAE runs, then the quantile-loss runs."""
    quantile = config.get("quantile_loss")
    for seed in config["seeds"]:
        for name in config["models"]:
            yield f"{name}_s{seed}", name, seed, None
        for name in quantile["models"] if quantile else []:
            yield f"{name}_quantile_s{seed}", name, seed, tuple(quantile["levels"])


def run(config: dict) -> None:
    import lightning.pytorch as pl
    import torch
    from lightning.pytorch.callbacks import EarlyStopping

    from titans_ts.io import atomic_write_text

    claims = config["_claims"]
    torch.set_num_threads(claims.threads)
    runs = ROOT / config["runs"]
    runs.mkdir(parents=True, exist_ok=True)
    training, validation, test = datasets(config)
    batch = config["batch_size"]
    for stem, name, seed, levels in planned(config):
        out = runs / f"{stem}.json"
        with claims.claim(out) as mine:
            if not mine:
                continue
            pl.seed_everything(seed, verbose=False)
            model = build(name, training, config, levels)
            record = {"model": name, "seed": seed, "levels": levels, "git_commit": git_commit()}
            record["config"] = {k: v for k, v in config.items() if not k.startswith("_")}
            problem = unsupported(model, training, batch) if levels and name != "titans" else None
            if problem:
                atomic_write_text(out, json.dumps(record | {"unsupported": problem}, indent=1))
                print(f"{stem}: {problem}", flush=True)
                continue
            trainer = pl.Trainer(
                max_epochs=config["max_epochs"],
                callbacks=[EarlyStopping("val_loss", patience=config["patience"])],
                gradient_clip_val=0.1,
                logger=False,
                enable_checkpointing=False,
                enable_progress_bar=False,
                enable_model_summary=False,
            )
            started = time.time()
            trainer.fit(
                model,
                training.to_dataloader(train=True, batch_size=batch),
                validation.to_dataloader(train=False, batch_size=batch),
            )
            loader = test.to_dataloader(train=False, batch_size=batch)
            scores = quantile_scores(model, loader, levels) if levels else score(model, loader)
            record |= {
                "test": scores,
                "epochs_run": trainer.current_epoch,
                "parameters": sum(p.numel() for p in model.parameters()),
                "wall_seconds": time.time() - started,
            }
            atomic_write_text(out, json.dumps(record, indent=1))
            print(f"{stem}: test MAE {scores['mae']:.4f} MSE {scores['mse']:.4f}", flush=True)


def unsupported(model, training, batch: int) -> str | None:
    """The error a model's forward pass and loss raise on one training batch (None: it trains on the loss)."""
    x, y = next(iter(training.to_dataloader(train=True, batch_size=batch)))
    try:
        model.loss(model(x)["prediction"], y)
    except Exception as error:  # noqa: BLE001 - whatever the library raises is the finding
        return f"{type(error).__name__}: {error}"
    return None


def quantile_scores(model, loader, levels) -> dict:
    """QuantileScores over every test window and step, original units; the point is the median level."""
    from titans_ts.forecasting.quantiles import QuantileScores, median_index

    if median_index(levels) is None:
        raise ValueError(f"quantile_loss levels {list(levels)} need 0.5: the point scored is the median.")
    predicted = model.predict(loader, mode="quantiles", return_y=True)
    quantiles, y = predicted.output.double(), predicted.y[0].double()
    scores = QuantileScores(levels)
    scores.add(quantiles[..., median_index(levels)], quantiles, y)
    return scores.result() | {"windows": int(y.shape[0])}


def score(model, loader) -> dict:
    """MAE and MSE over every test window and step, original units (ptf de-normalises the predictions)."""

    predicted = model.predict(loader, mode="prediction", return_y=True)
    error = (predicted.output - predicted.y[0]).double()
    return {"mae": float(error.abs().mean()), "mse": float(error.square().mean()), "windows": int(error.shape[0])}


def report(config: dict) -> str:
    import statistics

    runs = ROOT / config["runs"]
    lines = [
        "# TitansPTF beside pytorch-forecasting's N-HiTS and N-BEATS",
        "",
        f"Generated by `experiments/ptf/compare.py {config.get('_path', '')}`; do not edit by hand. "
        f"{config['dataset']}'s {config['target']} alone (univariate), its protocol split, encoder "
        f"{config['encoder_length']}, horizon {config['horizon']}; one TimeSeriesDataSet and one Trainer "
        f"setting for all (MAE loss, lr {config['lr']}, batch {config['batch_size']}, up to "
        f"{config['max_epochs']} epochs, early stopping patience {config['patience']}); test MAE / MSE over "
        "every window, original units; mean ± std over seeds.",
        "",
        "| model | test MAE | test MSE | epochs | parameters | s |",
        "|---|---|---|---|---|---|",
    ]
    for name in config["models"]:
        records = [json.loads(p.read_text()) for p in sorted(runs.glob(f"{name}_s*.json"))]
        if not records:
            lines.append(f"| {name} | not run yet | | | | |")
            continue
        mae = [r["test"]["mae"] for r in records]
        mse = [r["test"]["mse"] for r in records]
        spread = lambda v: f" ± {statistics.stdev(v):.4f}" if len(v) > 1 else ""  # noqa: E731
        lines.append(
            f"| {name} | {statistics.mean(mae):.4f}{spread(mae)} | {statistics.mean(mse):.4f}{spread(mse)} | "
            f"{'/'.join(str(r['epochs_run']) for r in records)} | {records[0]['parameters']:,} | "
            f"{statistics.mean(r['wall_seconds'] for r in records):.0f} |"
        )
    if config.get("quantile_loss"):
        lines += quantile_table(config, runs)
    lines += ["", versions_line(runs)]
    return "\n".join(lines) + "\n"


def versions_line(runs: Path) -> str:
    """The commits the runs were made at (each run records its own; a run is kept once made, so a table's
    seeds may come from different commits)."""
    by_commit: dict[str, list[str]] = {}
    for path in sorted(runs.glob("*.json")):
        by_commit.setdefault(json.loads(path.read_text()).get("git_commit") or "unknown", []).append(path.stem)
    listed = "; ".join(f"{commit}: {', '.join(stems)}" for commit, stems in by_commit.items())
    return f"Code versions (the commit each run was made at): {listed}."


def quantile_table(config: dict, runs: Path) -> list[str]:
    import statistics

    levels = config["quantile_loss"]["levels"]
    label = "/".join(f"{q:g}" for q in levels)
    lines = [
        "",
        f"## Quantile loss (issue 29): ptf's `QuantileLoss({levels})`",
        "",
        "The same data, Trainer and budget, each model trained on pytorch-forecasting's QuantileLoss and scored "
        'from its own `predict(mode="quantiles")` on every test window, original units: mean weighted '
        "quantile loss (mean over levels of 2 * sum(pinball) / sum(|y|)), CRPS from the levels, pinball loss "
        f"per level ({label}), coverage of the central interval, MAE of the median; mean ± std over seeds. "
        "No conformal calibration: each model's raw quantiles. `s`: wall seconds per run, measured while other "
        "experiments shared the two cores (not a speed comparison).",
        "",
        f"| model | mean wQL | CRPS | pinball {label} | coverage | median MAE | epochs | parameters | s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name in config["quantile_loss"]["models"]:
        records = [json.loads(p.read_text()) for p in sorted(runs.glob(f"{name}_quantile_s*.json"))]
        if not records:
            lines.append(f"| {name} | not run yet | | | | | | | |")
            continue
        refused = [r["unsupported"] for r in records if "unsupported" in r]
        if refused:
            lines.append(f"| {name} | cannot train on QuantileLoss here: `{refused[0]}` | | | | | | | |")
            continue
        tests = [r["test"] for r in records]

        def cell(values, digits=4):
            spread = f" ± {statistics.stdev(values):.{digits}f}" if len(values) > 1 else ""
            return f"{statistics.mean(values):.{digits}f}{spread}"

        pinball = " / ".join(f"{statistics.mean(t['pinball'][k] for t in tests):.4f}" for k in tests[0]["pinball"])
        coverage = ", ".join(
            f"{k}: {100 * statistics.mean(t['coverage'][k] for t in tests):.1f} %" for k in tests[0]["coverage"]
        )
        lines.append(
            f"| {name} | {cell([t['mean_wql'] for t in tests])} | {cell([t['crps'] for t in tests])} | {pinball} | "
            f"{coverage} | {cell([t['mae'] for t in tests])} | {'/'.join(str(r['epochs_run']) for r in records)} | "
            f"{records[0]['parameters']:,} | {statistics.mean(r['wall_seconds'] for r in records):.0f} |"
        )
    return lines


if __name__ == "__main__":
    sys.exit(config_main(__doc__, run, report))
