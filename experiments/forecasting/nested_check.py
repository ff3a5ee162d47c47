"""Issue 28: does validation's verdict on online against frozen carry over to the months after it? No test row.

    python experiments/forecasting/nested_check.py experiments/configs/nested_check.json [--only-report]

On ETTh1 the validation search found the memory carried online better than frozen (horizon 96: 0.683 against
0.702), and the test split found it worse (0.401 against 0.388). This check repeats that step one split
earlier, inside the rows the search may read: "ours" as the grid chose it (long_memory_grid.choices) is fitted
on the first `train_months` months with the next `val_months` as its validation split (early stopping on it, as
the search), and scored online and frozen on the `val_months` after those, which are the protocol's validation
months: the dataset is cut at the end of the protocol's validation split, so no test row is read. If online
beats frozen on its validation months but not on the months after, validation's verdict does not carry over
and the choice between online and frozen needs another guard.
One JSON per (dataset, horizon) in the config's "runs".

The same check of a change to ours' settings (config "change", e.g. {"streams": 1}): ours fitted with it, and
the report sets it beside the unchanged runs of another nested_check config (config "compare"), counting the runs
where the change's online MSE on the months after is the lower.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import ROOT, config_main, git_commit, read_config  # noqa: E402
from long_memory_grid import run_for_ours, spec_of  # noqa: E402
from long_memory_search import fit_long_memory, run_name  # noqa: E402


def run_check(config: dict) -> None:
    run_for_ours(config, _check)


def _check(config, search, path, dataset, horizon, model, lookback) -> None:
    from titans_ts.data import load_dataset
    from titans_ts.io import atomic_write_text

    started = time.time()
    month = config["rows_per_month"][dataset]
    train_end = config["train_months"] * month
    val_end = train_end + config["val_months"] * month
    end = val_end + config["val_months"] * month  # the protocol's validation split ends here: no test row
    frame = load_dataset(dataset).iloc[:end]
    protocol = f"rows_{train_end}_{val_end}"
    spec = spec_of(search, model, dataset) | config.get("change", {})
    estimator, _ = fit_long_memory(dataset, horizon, config["seed"], lookback, spec, frame, protocol)
    estimator.save(ROOT / config["models"] / path.stem)
    search_record = json.loads(
        (ROOT / search["runs"] / run_name(dataset, horizon, config["seed"], model, lookback)).read_text()
    )
    record = {
        "dataset": dataset,
        "horizon": horizon,
        "seed": config["seed"],
        "model": model,
        "lookback": lookback,
        "change": config.get("change", {}),
        "protocol": protocol,
        "rows": end,
        "own_val": {"online": estimator.val_metrics_["mse"], "frozen": estimator.val_metrics_frozen_["mse"]},
        "months_after": {
            "online": estimator.evaluate(frame, split="test", online=True)["mse"],
            "frozen": estimator.evaluate(frame, split="test")["mse"],
        },
        "months_after_by_start": _by_start(estimator, frame, train_end, val_end),
        "search_val": {mode: search_record["val"][mode]["mse"] for mode in ("online", "frozen")},
        "history": estimator.history_,
        "test": None,
        "git_commit": git_commit(),
        "config": config.get("_path", ""),
        "wall_seconds": time.time() - started,
    }
    atomic_write_text(path, json.dumps(record, indent=1) + "\n")
    print(f"{path.name}: {json.dumps({k: record[k] for k in ('own_val', 'months_after', 'search_val')})}", flush=True)


def run_on_saved_models(config: dict, check) -> None:
    """For the checks that score nested_check's saved models again (guard_check, gate_check): check(config,
    nested_check's config, a nested_check record, the result path of the same name in config["runs"]) once
    per nested_check run, claimed by one worker and skipped when its result exists."""
    import torch

    from titans_ts.training import tune_cpu_allocator

    claims = config["_claims"]
    torch.set_num_threads(claims.threads)
    tune_cpu_allocator()
    nested = read_config(ROOT / config["nested"])
    folder = ROOT / config["runs"]
    folder.mkdir(parents=True, exist_ok=True)
    for source in sorted((ROOT / nested["runs"]).glob("*.json")):
        path = folder / source.name
        with claims.claim(path) as mine:
            if mine:
                check(config, nested, json.loads(source.read_text()), path)


class SavedRun:
    """A nested_check run's saved model, scored again on its own validation months and the months after (no
    test row): every window origin of both in time order, their truths, and the two readings' forecasts."""

    def __init__(self, nested: dict, source: dict, name: str):
        import torch

        from titans_ts.data import load_dataset
        from titans_ts.forecasting import TitansForecaster
        from titans_ts.forecasting.history_mode import split_series
        from titans_ts.forecasting.long_memory import rows_at
        from titans_ts.forecasting.long_memory_eval import split_origins

        estimator = TitansForecaster.load(ROOT / nested["models"] / name)
        self.frame = load_dataset(source["dataset"]).iloc[: source["rows"]]
        _, self.series, after_bounds = split_series(estimator, self.frame, "test")  # up to the months after's end
        _, _, val_bounds = split_series(estimator, self.frame, "val")
        self.model = estimator.model_.eval()
        lookback, horizon = self.model.config.lookback, self.model.config.horizon
        val_origins = split_origins(val_bounds, lookback, horizon)
        self.origins = torch.cat([val_origins, split_origins(after_bounds, lookback, horizon)])
        self.parts = {"own_val": slice(0, len(val_origins)), "months_after": slice(len(val_origins), None)}
        self.targets = rows_at(self.series, self.origins, torch.arange(horizon)).double().numpy()

    def online(self):
        from titans_ts.forecasting.long_memory_eval import online_forecasts

        return online_forecasts(self.model, self.series, self.origins).double().numpy()

    def frozen(self):
        from titans_ts.forecasting.long_memory_eval import frozen_forecasts

        return frozen_forecasts(self.model, self.series, self.origins).double().numpy()

    def mse(self, forecasts, part: str) -> float:
        import numpy as np

        return float(np.mean((forecasts[self.parts[part]] - self.targets[self.parts[part]]) ** 2))

    def windows(self) -> dict:
        return {key: len(range(len(self.origins))[part]) for key, part in self.parts.items()}


def _by_start(estimator, frame, train_end: int, val_end: int) -> dict:
    """Online MSE on the months after, with the memory starting to read at the first row (the protocol), at
    its validation split, or at the months after themselves: which of the rows it read helps or hurts."""
    from titans_ts.forecasting.history_mode import split_scores, split_series

    network = estimator.model_.eval()
    _, series, bounds = split_series(estimator, frame, "test")
    starts = {"the first row": 0, "its validation split": train_end, "the months after": bounds[0]}
    return {name: split_scores(network, series, bounds, "online", start)["mse"] for name, start in starts.items()}


def report(config: dict) -> str:
    folder = ROOT / config["runs"]
    records = [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]
    change = json.dumps(config["change"]) if config.get("change") else ""
    title = (
        f"A change to ours, {change}, checked"
        if change
        else "Does validation's verdict on online against frozen carry over?"
    )
    lines = [
        f"# {title} (issue 28, no test row)",
        "",
        f"Generated by `experiments/forecasting/nested_check.py {config.get('_path', '')}`; do not edit by hand.",
        "",
        f"Ours as the grid chose it, fitted on the first {config['train_months']} months with the next "
        f"{config['val_months']} as its validation split, then scored on the {config['val_months']} months after "
        "those (the protocol's validation months; nothing later is read), online (the memory carried from the "
        "first row) and frozen (reset per window), seed "
        f"{config['seed']}. Beside it, the search's own run (trained on 12 months, scored on the same validation "
        "months). Val MSE.",
        "",
    ]
    if change:
        lines += [f"Ours here with a change to its settings: `{change}`. {config['about']}", ""]
    lines += [
        "| dataset | horizon | model | lookback | its val: online | frozen | months after: online | frozen | "
        "search (12 months): online | frozen | epochs |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in records:
        cells = [r["own_val"]["online"], r["own_val"]["frozen"], r["months_after"]["online"]]
        cells += [r["months_after"]["frozen"], r["search_val"]["online"], r["search_val"]["frozen"]]
        lines.append(
            f"| {r['dataset']} | {r['horizon']} | {r['model']} | {r['lookback']} | "
            + " | ".join(f"{v:.4f}" for v in cells)
            + f" | {r['history'].get('epochs_run', '-')} |"
        )
    lines.append("")
    for r in records:
        own = r["own_val"]["online"] - r["own_val"]["frozen"]
        after = r["months_after"]["online"] - r["months_after"]["frozen"]
        starts = ", ".join(f"{k} {v:.4f}" for k, v in r.get("months_after_by_start", {}).items())
        lines.append(
            f"- {r['dataset']} h{r['horizon']}: online - frozen {own:+.4f} on its validation months, {after:+.4f} on "
            f"the months after ({_verdict(own, after, r['own_val']['frozen'], r['months_after']['frozen'])})."
            + (f" Online on the months after with the memory reading from {starts}." if starts else "")
        )
    if "compare" in config:
        lines += ["", *_comparison(config, records)]
    return "\n".join(lines) + "\n"


def _comparison(config: dict, records: list[dict]) -> list[str]:
    """The changed runs beside the unchanged ones of config["compare"] (same dataset, horizon and seed)."""
    base = read_config(ROOT / config["compare"])
    label = ", ".join(f"{key} {value}" for key, value in config["change"].items())
    lines = [
        f"## With {label}, beside the same runs without it (`{config['compare']}`)",
        "",
        "| dataset | horizon | its val: online, without / with | months after: online, without / with | "
        "months after: frozen, without / with | epochs, without / with |",
        "|---|---|---|---|---|---|",
    ]
    lower = compared = 0
    below_frozen = [0, 0]  # runs with online below frozen on the months after: without, with the change
    for r in records:
        path = ROOT / base["runs"] / f"{r['dataset']}_h{r['horizon']}_s{r['seed']}.json"
        if not path.exists():
            continue
        b = json.loads(path.read_text())
        compared += 1
        lower += r["months_after"]["online"] < b["months_after"]["online"]
        for i, run in enumerate((b, r)):
            below_frozen[i] += run["months_after"]["online"] < run["months_after"]["frozen"]
        cells = [("own_val", "online"), ("months_after", "online"), ("months_after", "frozen")]
        pairs = [(b[part][mode], r[part][mode]) for part, mode in cells]
        epochs = f"{b['history'].get('epochs_run', '-')} / {r['history'].get('epochs_run', '-')}"
        lines.append(
            f"| {r['dataset']} | {r['horizon']} | "
            + " | ".join(f"{x:.4f} / {y:.4f}" for x, y in pairs)
            + f" | {epochs} |"
        )
    lines += [
        "",
        f"With {label}, online on the months after is the lower in {lower} of {compared} runs. Online below frozen on "
        f"the months after: {below_frozen[0]} of {compared} without it, {below_frozen[1]} with it.",
    ]
    if "rule_min_lower" in config:
        need, planned = config["rule_min_lower"], len(config["datasets"]) * len(config["horizons"])
        verdict = "met" if lower >= need else "not met" if lower + planned - compared < need else "open"
        lines.append(f"The rule (config) asks for at least {need} of {planned}: {verdict}.")
    return lines


def _verdict(own: float, after: float, own_frozen: float, after_frozen: float, level: float = 0.001) -> str:
    """Whether the sign of online - frozen holds; a difference under `level` of the frozen MSE is no verdict."""
    if abs(own) < level * own_frozen or abs(after) < level * after_frozen:
        return f"level (within {level:.1%} of frozen) on one of them: no verdict to carry"
    return "the verdict carries over" if own * after > 0 else "the verdict flips"


if __name__ == "__main__":
    sys.exit(config_main(__doc__, run_check, report))
