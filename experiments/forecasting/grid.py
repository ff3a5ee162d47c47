"""Run a forecasting grid (dataset x horizons x variants x seeds) from a config; resumable.

    python experiments/forecasting/grid.py experiments/configs/etth1.json [--only-report] [--worker]
    # one worker per core:  ... --worker &  ... --worker &

One JSON per run in experiments/results/runs/forecasting/ (skipped when it exists, so an interrupted
grid resumes), then the aggregated Markdown table named by the config's "report". Models go to runs/
(not committed). Every number in the report comes from those JSON files.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from harness import ROOT, config_main, git_commit, write_block  # noqa: E402

from titans_ts.forecasting.benchmark import mean_std, summarize  # noqa: E402

RUNS = ROOT / "experiments" / "results" / "runs" / "forecasting"  # a config's "runs" folder overrides it


def selection_of(config: dict) -> dict:
    """dataset (or "general", the general default) -> "done" or why not: what may produce test numbers."""
    selection = config.get("selection", "done")
    if isinstance(selection, str):
        return {name: selection for name in [*datasets_of(config), "general"]}
    return selection


def runs_of(config: dict) -> Path:
    return ROOT / config["runs"] if "runs" in config else RUNS


def datasets_of(config: dict) -> list[str]:
    return config.get("datasets") or [config["dataset"]]


def run_grid(config: dict) -> None:
    """The same library function as `titans-ts benchmark` (titans_ts.forecasting.benchmark)."""
    import torch

    from titans_ts.forecasting.api import dataset_label
    from titans_ts.forecasting.benchmark import run_benchmark, run_name

    pending = {name: state for name, state in selection_of(config).items() if state != "done"}
    if len(pending) == len(selection_of(config)):
        sys.exit(
            f"{config.get('_path', 'this config')}: model selection is not finished for any dataset ({pending}). "
            "Test numbers come only after the choice is fixed: run experiments/forecasting/search.py, put "
            'its choice in titans_ts/forecasting/defaults.py, set "selection" to "done". (--only-report still works.)'
        )
    if pending:
        print(f"Skipping what waits for model selection: {pending}", flush=True)
    claims = config["_claims"]
    torch.set_num_threads(claims.threads)

    def report_run(name, record, reused):
        state = "exists, skipped" if reused else f"{record['wall_seconds']:.0f} s"
        print(f"{name}: test MSE {record['test']['mse']:.4f} MAE {record['test']['mae']:.4f} ({state})", flush=True)

    for seed, dataset, horizon, model in _run_order(config):
        if selection_of(config).get("general" if model == "lmm-general" else dataset, "done") != "done":
            continue
        path = runs_of(config) / run_name(dataset_label(dataset), model, horizon, seed)
        with claims.claim(path) as mine:
            if not mine:
                continue
            run_benchmark(  # settings not in "params": the dataset's defaults (titans-ts defaults)
                dataset,
                runs_of(config),
                horizons=[horizon],
                seeds=[seed],
                models=[model],
                lookback=config["lookback"],
                models_dir=Path(config.get("models_dir") or ROOT / "runs" / "grid"),
                on_run=report_run,
                extra={"git_commit": git_commit(), "config": config.get("_path", "")},
                **config["params"],
            )


def _own_defaults(dataset: str) -> bool:
    """Whether a dataset's defaults differ from the general default (then it needs "lmm-general" runs)."""
    from titans_ts.forecasting.defaults import GENERAL, defaults_for

    return defaults_for(dataset) != GENERAL


def _run_order(config: dict):
    """Seed 0 of every dataset and model first, each dataset followed by the general default's
    validation check (seed 0, only where the dataset's defaults differ from it; elsewhere its "lmm" rows
    are that check); then the other seeds."""
    for seed in config["seeds"]:
        for dataset in datasets_of(config):
            for horizon in config["horizons"]:
                for model in config["variants"]:
                    yield seed, dataset, horizon, model
            if seed == config["seeds"][0] and "general_check" in config and _own_defaults(dataset):
                for horizon in config["horizons"]:
                    yield seed, dataset, horizon, "lmm-general"


NAMES = {
    "lmm": "titans-ts LMM (ours)",
    "attention": "same backbone, causal attention",
    "attention-patch": "same backbone, attention over patches",
    "dlinear": "DLinear",
    "naive": "repeat-last",
    "seasonal_naive": "seasonal naive",
    "mac": "titans-ts MAC",
    "mag": "titans-ts MAG",
    "mal": "titans-ts MAL",
}


def _records(config: dict, dataset: str) -> dict:
    rows = {}
    for path in sorted(runs_of(config).glob(f"{dataset}_*.json")):
        record = json.loads(path.read_text())
        model = record.get("model", record["variant"])
        if (
            record["horizon"] in config["horizons"]
            and (model in config["variants"] or model == "lmm-general")
            and record["seed"] in config["seeds"]
        ):
            rows.setdefault((model, record["horizon"]), []).append(record)
    return rows


def _table(config: dict, rows: dict) -> list[str]:
    """The per-horizon table of one dataset."""
    summary = summarize([r for records in rows.values() for r in records], config["horizons"])
    lines = [
        "| model | " + " | ".join(f"{h} MSE | {h} MAE" for h in config["horizons"]) + " | avg MSE | avg MAE |",
        "|---|" + "---|---|" * len(config["horizons"]) + "---|---|",
    ]
    for variant in config["variants"]:
        row = summary.get(variant, {"horizons": {}, "average": None})
        cells = [
            f"{mean_std(cell['mse'])} | {mean_std(cell['mae'])}" if cell else "- | -"
            for cell in (row["horizons"].get(h) for h in config["horizons"])
        ]
        average = "- | -" if row["average"] is None else f"{row['average'][0]:.3f} | {row['average'][1]:.3f}"
        lines.append(f"| {NAMES.get(variant, variant)} | " + " | ".join(cells) + f" | {average} |")
    return lines


def _footer(config: dict, rows_by_dataset: list[dict]) -> list[str]:
    records = [r for rows in rows_by_dataset for rs in rows.values() for r in rs]
    if not records:
        return []
    devices = sorted({str(r.get("device", r.get("history", {}).get("device", "cpu"))) for r in records})
    folder = runs_of(config).relative_to(ROOT)
    return [
        "",
        f"{len(records)} runs, {sum(r['wall_seconds'] for r in records) / 60:.0f} minutes of training in all, on "
        f"{', '.join(devices)}; per-run JSON (config, seed, git commit, "
        f"device, wall time) in {folder}/.",
    ]


def report(config: dict) -> str:
    if "datasets" in config:
        return report_many(config)
    rows = _records(config, config["dataset"])
    lines = [
        f"# {config['dataset']}: long-term forecasting, lookback {config['lookback']}",
        "",
        "Generated by `experiments/forecasting/grid.py " + config.get("_path", "") + "`; do not edit by hand.",
        "",
        "Protocol (Time-Series-Library): ETT split 12/4/4 months; StandardScaler fitted on the train rows; "
        "MSE and MAE on the scaled data over every test window (drop_last=False); early stopping on the "
        "validation MSE; " + f"{len(config['seeds'])} seed(s) {config['seeds']} (mean, and std where more "
        "than one). Same backbone and training for ours and the attention baseline; DLinear as published "
        "(no RevIN), trained by the same loop.",
        "",
    ]
    lines += _table(config, rows)
    paper = config.get("paper")
    if paper:
        lines.append(
            "| Titans, paper (reported) | "
            + " | ".join("- | -" for _ in config["horizons"])
            + f" | {paper['mse']:.3f} | {paper['mae']:.3f} |"
        )
        lines += ["", f"Paper row: {paper['source']}; only the average over horizons is given there."]
    return "\n".join(lines + _footer(config, [rows])) + "\n"


def report_many(config: dict) -> str:
    """Every dataset's table, then the four-horizon averages beside the published anchors, the target and
    the general default's check. Also rewrites the README's results table (config "readme"), so the README
    quotes exactly these runs."""
    lines = [
        "# Long-term forecasting: five datasets, lookback " + str(config["lookback"]),
        "",
        "Generated by `experiments/forecasting/grid.py " + config.get("_path", "") + "`; do not edit by hand.",
        "",
        config["protocol_note"],
        "",
    ]
    rows_by_dataset = {dataset: _records(config, dataset) for dataset in config["datasets"]}
    for dataset, rows in rows_by_dataset.items():
        table = _table(config, rows)
        done = sum(len(records) for (model, _), records in rows.items() if model in config["variants"])
        expected = len(config["variants"]) * len(config["horizons"]) * len(config["seeds"])
        seeds_done = sorted({r["seed"] for records in rows.values() for r in records})
        lines += [f"## {dataset}", "", f"{done} of {expected} runs done (seeds {seeds_done or '-'}).", "", *table, ""]
    # every model averaged over the same seeds, once per dataset, for the table, the target and the README
    comparisons = {dataset: compared(config, rows) for dataset, rows in rows_by_dataset.items()}
    lines += [
        "## Four-horizon averages (MSE / MAE) beside the anchors",
        "",
        "Each model over the same seeds: those every model has finished at every horizon (listed below).",
        "",
        "| dataset | "
        + " | ".join(NAMES.get(v, v) for v in config["variants"])
        + " | "
        + " | ".join(config["anchor_columns"])
        + " |",
        "|---|" + "---|" * (len(config["variants"]) + len(config["anchor_columns"])),
    ]
    for dataset, (_, averages) in comparisons.items():
        ours = [averages.get(v) for v in config["variants"]]
        cells = ["-" if a is None else f"{a[0]:.3f} / {a[1]:.3f}" for a in ours]
        anchors = config["anchors"].get(dataset, {})
        cells += [anchors.get(column, "-") for column in config["anchor_columns"]]
        lines.append(f"| {dataset} | " + " | ".join(cells) + " |")
    lines += ["", config["anchor_note"]]
    if "target" in config:
        lines += ["", *_target_section(config, comparisons)]
    if "readme" in config:
        write_block(ROOT / config["readme"], README_START, README_END, _readme_block(config, comparisons))
    if "general_check" in config:
        lines += ["", *_general_check(config, rows_by_dataset)]
    return "\n".join(lines + _footer(config, list(rows_by_dataset.values()))) + "\n"


def _seed_averages(config: dict, rows: dict) -> dict:
    """model -> {seed: (four-horizon average MSE, MAE)} for the seeds that model has at every horizon."""
    averages = {}
    for model in config["variants"]:
        by_seed = {}
        for horizon in config["horizons"]:
            for record in rows.get((model, horizon), []):
                by_seed.setdefault(record["seed"], {})[horizon] = (record["test"]["mse"], record["test"]["mae"])
        averages[model] = {
            seed: tuple(statistics.mean(cell[i] for cell in cells.values()) for i in (0, 1))
            for seed, cells in by_seed.items()
            if len(cells) == len(config["horizons"])
        }
    return averages


def compared(config: dict, rows: dict) -> tuple[list[int], dict]:
    """The seeds every model has at every horizon, and each model's (avg MSE, avg MAE) over just those
    seeds: while the grid runs, every model is averaged over the same seeds."""
    averages = _seed_averages(config, rows)
    seeds = [s for s in config["seeds"] if all(s in averages[m] for m in config["variants"])]
    return seeds, {
        model: tuple(statistics.mean(by_seed[s][i] for s in seeds) for i in (0, 1))
        for model, by_seed in averages.items()
        if seeds
    }


def _anchor_mse(config: dict, dataset: str) -> float | None:
    text = config["anchors"].get(dataset, {}).get(config["target"]["anchor"], "-")
    return None if text.strip() == "-" else float(text.split("/")[0])


def _target_section(config: dict, comparisons: dict) -> list[str]:
    """Issue 13's target: ours ahead of every same-harness baseline on the four-horizon average MSE of every
    dataset, and level with or ahead of the paper's row on at least `paper_wins` datasets. `comparisons`:
    dataset -> `compared(config, rows)`."""
    target = config["target"]
    lines = [
        "## The target, on the seeds every model has finished",
        "",
        target["note"],
        "",
        "| dataset | seeds | ours avg MSE | best baseline | its avg MSE | ours - best | "
        f"{target['anchor']} | ours - paper |",
        "|---|---|---|---|---|---|---|---|",
    ]
    ahead = level_with_paper = counted = 0
    for dataset, (seeds, averages) in comparisons.items():
        if not seeds:
            lines.append(f"| {dataset} | - | - | - | - | - | - | - |")
            continue
        counted += 1
        ours = averages["lmm"][0]
        best = min((m for m in averages if m != "lmm"), key=lambda m: averages[m][0])
        margin = ours - averages[best][0]
        paper = _anchor_mse(config, dataset)
        ahead += margin < 0
        level_with_paper += paper is not None and round(ours, 3) <= paper
        paper_cells = "- | -" if paper is None else f"{paper:.3f} | {ours - paper:+.4f}"
        lines.append(
            f"| {dataset} | {','.join(map(str, seeds))} | {ours:.4f} | {NAMES.get(best, best)} | "
            f"{averages[best][0]:.4f} | {margin:+.4f} | {paper_cells} |"
        )
    lines += [
        "",
        f"Ours ahead of every same-harness baseline on {ahead} of {counted} datasets (target: all "
        f"{len(comparisons)}); level with or ahead of the paper's row (at its three decimals) on "
        f"{level_with_paper} of {counted} (target: at least {target['paper_wins']}).",
    ]
    return lines


README_START = "<!-- forecasting: written by experiments/forecasting/grid.py -->"
README_END = "<!-- /forecasting -->"


def _readme_block(config: dict, comparisons: dict) -> list[str]:
    """The README's table: four-horizon averages over the seeds every model has (`comparisons`: dataset ->
    `compared(config, rows)`), the lowest MSE in bold."""
    anchor = config["target"]["anchor"] if "target" in config else config["anchor_columns"][0]
    lines = [
        "  | dataset | seeds | " + " | ".join(NAMES.get(v, v) for v in config["variants"]) + f" | {anchor} |",
        "  |---|---|" + "---|" * (len(config["variants"]) + 1),
    ]
    for dataset, (seeds, averages) in comparisons.items():
        best = min(averages, key=lambda m: averages[m][0]) if averages else None
        cells = []
        for model in config["variants"]:
            if model not in averages:
                cells.append("-")
                continue
            text = f"{averages[model][0]:.3f} / {averages[model][1]:.3f}"
            cells.append(f"**{text}**" if model == best else text)
        anchor_text = config["anchors"].get(dataset, {}).get(anchor, "-")
        lines.append(
            f"  | {dataset} | {','.join(map(str, seeds)) or '-'} | " + " | ".join(cells) + f" | {anchor_text} |"
        )
    return lines


def _general_check(config: dict, rows_by_dataset: dict) -> list[str]:
    """Validation MSE of the general default (a user's data gets it) against the two naive forecasts."""
    seed = config["seeds"][0]
    lines = [
        f"## The general default against the naive forecasts (validation MSE, seed {seed})",
        "",
        config["general_check"],
        "",
        "| dataset | horizon | general default | repeat-last | seasonal naive | beats both |",
        "|---|---|---|---|---|---|",
    ]

    def val(rows, model, horizon):
        found = [r for r in rows.get((model, horizon), []) if r["seed"] == seed]
        return found[0]["val"]["mse"] if found else None

    for dataset, rows in rows_by_dataset.items():
        ours = "lmm-general" if _own_defaults(dataset) else "lmm"
        for horizon in config["horizons"]:
            general, last, season = (val(rows, m, horizon) for m in (ours, "naive", "seasonal_naive"))
            cells = ["-" if v is None else f"{v:.4f}" for v in (general, last, season)]
            verdict = "-" if None in (general, last, season) else ("yes" if general < min(last, season) else "**no**")
            lines.append(f"| {dataset} | {horizon} | " + " | ".join(cells) + f" | {verdict} |")
    return lines


if __name__ == "__main__":
    sys.exit(config_main(__doc__, run_grid, report))
