"""Issue 28: choosing the long-memory forecaster's settings and every model's lookback on VALIDATION only.

    python experiments/forecasting/long_memory_search.py experiments/configs/long_memory_search.json [--only-report]
    # one worker per core:  ... --worker &  ... --worker &

For each dataset x horizon x seed of the config:
- each long-memory candidate (the config's "base" settings with the candidate's "change") is fitted by
  TitansForecaster(mode="history") (contiguous streams in time order, state carried, truncated BPTT, early
  stopping on the online val MSE) at each of its lookbacks, with the memory (`lmm`) and, where the candidate
  asks, with the ablation (`mlp`, the memory replaced by a position-wise MLP of the same width); val is scored
  online (the state carried through train and val rows) and frozen (the memory reset for every window);
- each baseline (titans_ts.forecasting.benchmark.MODELS: DLinear, attention over variates, attention over
  patches) is fitted by TitansForecaster at each of its lookbacks, the same lookback candidates;
- repeat-last and seasonal naive are scored on the same val windows (the floors).
No test number is computed: training and the val scores read no test row (the fitted estimator's memory then
reads the whole frame, as for a user's predict(), but nothing is scored from it here).
One JSON per run in the config's "runs" folder (skipped when it exists: the search resumes); the report
(config "report") is written from those JSONs only.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from harness import ROOT, config_main, git_commit, read_config  # noqa: E402

FLOORS = {"repeat-last": "naive", "seasonal naive": "seasonal_naive"}


def runs_of(config: dict) -> Path:
    return ROOT / config["runs"]


def run_name(dataset: str, horizon: int, seed: int, model: str, lookback: int) -> str:
    return f"{dataset}_h{horizon}_s{seed}_L{lookback}_{model.replace(' ', '-')}.json"


def planned(config: dict):
    """(dataset, horizon, seed, model, lookback, kind, spec) in run order: a dataset at every seed and horizon
    before the next dataset (so that its choice can be fixed and its test runs start while the next is
    searched); within a cell, the floors, the baselines, then the long-memory candidates (a candidate's
    "datasets" and "horizons", when given, limit where it runs; its "lookbacks" may be per dataset)."""
    for dataset in config["datasets"]:
        for seed in config["seeds"]:
            for horizon in config["horizons"]:
                for name in FLOORS:
                    yield dataset, horizon, seed, name, config["lookbacks"][0], "floor", {}
                for name, lookbacks in config["baselines"].items():
                    for lookback in lookbacks_of({"lookbacks": lookbacks}, dataset, config["lookbacks"]):
                        yield dataset, horizon, seed, name, lookback, "baseline", {}
                for name, candidate in config["candidates"].items():
                    if dataset not in candidate.get("datasets", [dataset]):
                        continue
                    if horizon not in candidate.get("horizons", [horizon]):
                        continue
                    for memory in candidate.get("memories", ["lmm"]):
                        model = name if memory == "lmm" else f"{name} [mlp]"
                        spec = {**base_of(config, dataset), **candidate.get("change", {}), "memory": memory}
                        for lookback in lookbacks_of(candidate, dataset, config["lookbacks"]):
                            yield dataset, horizon, seed, model, lookback, "long_memory", spec


def base_of(config: dict, dataset: str) -> dict:
    """The long-memory base settings on `dataset`: "base", with the dataset's "base_by_dataset" entry over it."""
    return {**config["base"], **config.get("base_by_dataset", {}).get(dataset, {})}


def lookbacks_of(candidate: dict, dataset: str, default: list[int]) -> list[int]:
    """A candidate's lookbacks: a list for every dataset, or {dataset: list} (the others: `default`)."""
    lookbacks = candidate.get("lookbacks", default)
    return lookbacks.get(dataset, default) if isinstance(lookbacks, dict) else lookbacks


def run_search(config: dict) -> None:
    """Run the planned runs that are missing, one at a time; the config is read again before each, so a worker
    takes up candidates added to it while it runs (without losing the run in progress)."""
    import torch

    from titans_ts.io import atomic_write_text
    from titans_ts.training import tune_cpu_allocator

    claims = config["_claims"]
    torch.set_num_threads(claims.threads)
    tune_cpu_allocator()
    runs_of(config).mkdir(parents=True, exist_ok=True)
    while (claimed := next_run(config)) is not None:  # next_run keeps config["_current"], the config as read
        (dataset, horizon, seed, model, lookback, kind, spec), path, commit = claimed
        started = time.time()
        try:
            print(f"{path.name}: running", flush=True)
            if kind == "long_memory":
                record = long_memory_run(dataset, horizon, seed, lookback, spec)
            else:
                record = estimator_run(dataset, horizon, seed, lookback, model, kind)
            record |= {
                "dataset": dataset, "horizon": horizon, "seed": seed, "model": model, "kind": kind,
                "lookback": lookback, "test": None, "git_commit": commit, "config": config["_path"],
                "threads": claims.threads, "wall_seconds": time.time() - started,
            }  # fmt: skip
            atomic_write_text(path, json.dumps(record, indent=1) + "\n")
            print(f"{path.name}: val {json.dumps(record['val'])} ({record['wall_seconds']:.0f} s)", flush=True)
        finally:
            claims.release(path)


def next_run(config: dict):
    """(run, result path, commit) of the first planned run of the config as it is now on disk that has no
    result and no other worker on it, claimed for this process; None when there is none."""
    current = config["_current"] = {**read_config(config["_path"]), "_path": config["_path"]}
    claims = config["_claims"]
    for run in planned(current):
        path = runs_of(current) / run_name(*run[:5])
        if claims.hold(path):
            return run, path, git_commit()
    return None


def estimator_run(dataset, horizon, seed, lookback, model, kind, test: bool = False) -> dict:
    """A floor or a baseline through TitansForecaster (the grid's settings): validation, and the test split
    only when `test` (the final grid, after the choices are fixed)."""
    from titans_ts import TitansForecaster
    from titans_ts.data import load_dataset
    from titans_ts.forecasting.benchmark import MODELS, seasonal_naive_lookback
    from titans_ts.forecasting.settings import resolve_fit
    from titans_ts.training import require_finished

    frame = load_dataset(dataset)
    params = {"variant": FLOORS[model]} if kind == "floor" else dict(MODELS[model])
    if params["variant"] == "seasonal_naive":  # the benchmark's rule: at least one season of lookback
        lookback = seasonal_naive_lookback(lookback, frame.index)
    options = dict(horizon=horizon, lookback=lookback, seed=seed, progress=False, fallback="off", device="cpu")
    settings = resolve_fit(dataset, **options, **params)
    estimator = TitansForecaster(**settings.params).fit(frame)
    require_finished(estimator.history_, f"{dataset} {model} L{lookback}")
    record = {"val": estimator.val_metrics_, "history": estimator.history_, "params": estimator.get_params()}
    if test:
        record["test"] = estimator.evaluate(frame)
    return record


# The search's long-memory settings as TitansForecaster(mode="history") parameters (the rest must keep the
# model's defaults: the estimator does not expose them).
AS_ESTIMATOR = {"memory": "variant", "max_epochs": "epochs", "local": "local_model"}
SAME_NAME = ("patch_len", "dim", "layers", "heads", "memory_depth", "chunk_size", "dropout", "error_tokens")
SAME_NAME += ("local_pretrain", "online_from", "online_reset_mix", "online_blend")
SAME_NAME += ("streams", "bptt", "lr", "weight_decay", "patience", "max_minutes")


def fixed_defaults() -> dict:
    """What the estimator leaves at the model's and the training module's defaults (their own values)."""
    import inspect
    from dataclasses import fields

    from titans_ts.forecasting.long_memory import LongMemoryConfig
    from titans_ts.forecasting.training import ForecastModule

    names = ("segment_patches", "max_lr", "reset_mix", "compile")
    defaults = {f.name: f.default for f in fields(LongMemoryConfig) if f.name in names}
    return defaults | {"warmup": inspect.signature(ForecastModule.__init__).parameters["warmup"].default}


def history_params(spec: dict) -> dict:
    """TitansForecaster parameters of a search spec; a setting the estimator cannot take is refused."""
    params = {AS_ESTIMATOR.get(key, key): value for key, value in spec.items() if key in (*AS_ESTIMATOR, *SAME_NAME)}
    other = {key: value for key, value in spec.items() if key not in (*AS_ESTIMATOR, *SAME_NAME)}
    fixed = fixed_defaults()
    unknown = {key: value for key, value in other.items() if key not in fixed}
    # compile=False in a spec: the estimator's "auto" runs eager until a call shape has run as long as compiling
    # it takes, so a run may compile part of the way through (the same arithmetic, other rounding).
    changed = {key: value for key, value in other.items() if key in fixed and value != fixed[key] and key != "compile"}
    if unknown or changed:
        raise ValueError(f"TitansForecaster(mode='history') cannot take {unknown | changed}.")
    return {"mode": "history", **params}


def fit_long_memory(dataset, horizon, seed, lookback, spec, frame=None, protocol=None):
    """(fitted TitansForecaster(mode="history") with the spec's settings, the frame it was fitted on): the
    dataset's whole frame and protocol, unless `frame` (e.g. its first months) and `protocol` are given."""
    from titans_ts import TitansForecaster
    from titans_ts.data import load_dataset, protocol_for
    from titans_ts.training import require_finished

    frame = load_dataset(dataset) if frame is None else frame
    options = dict(lookback=lookback, horizon=horizon, seed=seed, protocol=protocol or protocol_for(dataset))
    options |= dict(progress=False, fallback="off", device="cpu")
    estimator = TitansForecaster(**history_params(spec), **options).fit(frame)
    require_finished(estimator.history_, f"{dataset} long memory L{lookback}")
    return estimator, frame


def long_memory_run(dataset, horizon, seed, lookback, spec, test: bool = False, keep=None) -> dict:
    """TitansForecaster(mode="history") with the spec's settings (the user's path): trained on the train rows
    (training and validation never read a test row), val scored online and frozen, and the test split (online:
    the memory reads train, val and the earlier test rows) when `test`. keep: a folder to save the fitted
    estimator to (a later check can score it again without training)."""
    estimator, frame = fit_long_memory(dataset, horizon, seed, lookback, spec)
    if keep is not None:
        estimator.save(keep)
    history = dict(estimator.history_)
    phases = [history, history.get("local_pretrain") or {}]  # local_pretrain: the window model's own run
    history["stopped_by_time_cap"] = any(phase.get("stop_reason") == "time_budget" for phase in phases)
    memory = estimator.model_config_.memory == "lmm"
    val = {"online": estimator.val_metrics_} | ({"frozen": estimator.val_metrics_frozen_} if memory else {})
    record = {
        "val": val,
        "history": history,
        "settings": {"model": estimator.model_config_.to_dict(), "estimator": estimator.get_params()},
        "params_count": sum(p.numel() for p in estimator.model_.parameters()),
        "protocol": estimator.protocol,
    }
    if test:
        record["test"] = {"online": estimator.evaluate(frame, online=True)}
        if memory:
            record["test"]["frozen"] = estimator.evaluate(frame)
            plain = estimator.online_from == "start" and estimator.online_reset_mix == 0.0
            if plain and estimator.online_blend == 1.0:  # the trials, same network
                split = estimator.set_params(online_from="split").evaluate(frame, online=True)
                record["test"]["online_from_split"] = split
                estimator.set_params(online_from="start")
                record["test"]["online_reset_mix_auto"] = _with_reset_mix_auto(estimator, frame)
                record["test"]["online_blend_half"] = _with_blend_half(estimator, frame)
    return record


def _with_reset_mix_auto(estimator, frame) -> dict:
    """The test split online with online_reset_mix="auto" (chosen on the online val MSE, as fit chooses it) for
    a network fitted with 0.0 (the same training); the network is left as it was."""
    from titans_ts.forecasting.history_mode import set_online_reset_mix, split_series

    _, series, bounds = split_series(estimator, frame, "val")
    choice = set_online_reset_mix("auto", estimator.model_, series, bounds)
    try:
        return estimator.evaluate(frame, online=True) | {"online_reset_mix": choice}
    finally:
        set_online_reset_mix(0.0, estimator.model_, series, bounds)


def _with_blend_half(estimator, frame) -> dict:
    """The test split online with online_blend=0.5 for a network fitted with 1.0 (the same training), with
    the val score a fit with 0.5 records (`val_online`); the estimator is left as it was."""
    estimator.set_params(online_blend=0.5)
    try:
        val = estimator.evaluate(frame, split="val", online=True)
        return estimator.evaluate(frame, online=True) | {"val_online": val}
    finally:
        estimator.set_params(online_blend=1.0)


def val_mse(record: dict) -> float:
    """The score a run is chosen by: a long-memory model's online val MSE (its own protocol), else val MSE."""
    val = record["val"]
    return val["online"]["mse"] if "online" in val else val["mse"]


def report(config: dict) -> str:
    config = {**config, **config.get("_current", {})}  # a worker's last reading of the config file
    records = {}
    for path in sorted(runs_of(config).glob("*.json")):
        record = json.loads(path.read_text())
        records[(record["dataset"], record["horizon"], record["seed"], record["model"], record["lookback"])] = record
    lines = [
        f"# {config.get('title', 'Issue 28: long-memory settings and lookbacks, chosen on validation')}",
        "",
        f"Generated by `experiments/forecasting/long_memory_search.py {config['_path']}` from "
        f"`{config['runs']}/*.json`; do not edit by hand.",
        "",
        "**Validation MSE only** (scaled data, every val window, drop_last=False; the scaler fitted on the "
        "train rows); no test number was computed. Long-memory rows: online (the memory state carried through "
        "the train and val rows, learning as it reads) / frozen (reset for every window); `[mlp]`: the "
        "ablation, the memory replaced by a position-wise MLP of the same width (no state: one score). "
        "Baselines: the grid's models and settings (titans_ts.forecasting.benchmark.MODELS) at each lookback.",
        "",
        f"{config.get('about', '')}",
        "",
        f"Long-memory base settings: `{json.dumps(config['base'])}`.",
        "",
    ]
    models = list(FLOORS) + list(config["baselines"])
    for name, candidate in config["candidates"].items():
        models += [name if memory == "lmm" else f"{name} [mlp]" for memory in candidate.get("memories", ["lmm"])]
    for seed in config["seeds"]:
        for horizon in config["horizons"]:
            for dataset in config["datasets"]:
                here = {run[3] for run in planned(config) if run[:3] == (dataset, horizon, seed)}
                lines += cell_table(records, config, dataset, horizon, seed, [m for m in models if m in here])
    plan = {run[:5] for run in planned(config)}
    unplanned = len([k for k in records if k[0] in config["datasets"] and k not in plan])
    lines += [f"{len(plan & set(records))} of {len(plan)} planned runs done.", ""]
    if unplanned:  # e.g. ETTm1's attention over patches at 720, run before the plan left that lookback out
        runs = "1 run" if unplanned == 1 else f"{unplanned} runs"
        lines += [f"Also in the tables: {runs} that the plan no longer asks for.", ""]
    return "\n".join(lines)


def cell_table(records, config, dataset, horizon, seed, models) -> list[str]:
    lookbacks = config["lookbacks"]
    lines = [
        f"## {dataset}, horizon {horizon}, seed {seed}",
        "",
        "| model | " + " | ".join(f"L={lookback}" for lookback in lookbacks) + " | best | epochs (best) / stop |",
        "|---|" + "---|" * len(lookbacks) + "---|---|",
    ]
    best_overall = []
    for model in models:
        row, scores, notes = [], {}, []
        for lookback in lookbacks:
            record = records.get((dataset, horizon, seed, model, lookback))
            if record is None:
                row.append("-")
                continue
            scores[lookback] = val_mse(record)
            frozen = record["val"].get("frozen")
            row.append(f"{scores[lookback]:.4f}" + (f" / {frozen['mse']:.4f}" if frozen else ""))
            history = record.get("history") or {}
            if history.get("epochs_run"):
                cap = ", TIME CAP" if history.get("stopped_by_time_cap") else ""
                notes.append(f"{history['epochs_run']} ({history.get('best_epoch')}){cap}")
        best = min(scores, key=scores.get) if scores else None
        if best is not None and model not in FLOORS:
            best_overall.append((scores[best], model, best))
        best_text = f"L={best}: {scores[best]:.4f}" if best is not None else "-"
        lines.append(f"| {model} | " + " | ".join(row) + f" | {best_text} | {'; '.join(notes)} |")
    lines.append("")
    lines += reading(records, config, dataset, horizon, seed)
    if best_overall:
        ranked = sorted(best_overall)[:5]
        lines.append("Lowest val MSE: " + ", ".join(f"{m} (L={lb}) {s:.4f}" for s, m, lb in ranked) + ".")
        lines.append("")
    return lines


def reading(records, config, dataset, horizon, seed) -> list[str]:
    """Per lookback of each memory candidate: online - frozen, and memory - ablation, in val MSE."""
    carried, ablation = [], []
    for name, candidate in config["candidates"].items():
        for lookback in lookbacks_of(candidate, dataset, config["lookbacks"]):
            memory = records.get((dataset, horizon, seed, name, lookback))
            if memory is None or "frozen" not in memory["val"]:
                continue
            online = memory["val"]["online"]["mse"]
            carried.append(online - memory["val"]["frozen"]["mse"])
            mlp = records.get((dataset, horizon, seed, f"{name} [mlp]", lookback))
            if mlp is not None:
                ablation.append(online - mlp["val"]["online"]["mse"])
    if not carried:
        return []

    def summary(values):
        return f"{sum(v < 0 for v in values)} of {len(values)} below zero (median {statistics.median(values):+.4f})"

    lines = [f"- online - frozen (the carried state), per memory run: {summary(carried)}."]
    if ablation:
        lines.append(f"- memory - its ablation (same candidate and lookback): {summary(ablation)}.")
    return [*lines, ""]


if __name__ == "__main__":
    sys.exit(config_main(__doc__, run_search, report))
