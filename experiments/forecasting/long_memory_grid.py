"""Issue 28's final comparison: test numbers for the settings and lookbacks chosen on validation; resumable.

    python experiments/forecasting/long_memory_grid.py experiments/configs/long_memory_grid.json [--only-report]
    # one worker per core:  ... --worker &  ... --worker &

The choices are not written here by hand: they are read from the validation search's records
(long_memory_search.py, its config named by "search"), at the search's horizons:
- ours: the long-memory candidate and lookback with the lowest mean online val MSE over the search's horizons;
- the memory ablation: the same candidate and lookback with the memory replaced by the MLP (`[mlp]`);
- each baseline: its lookback with the lowest mean val MSE;
- the floors (repeat-last, seasonal naive) at the protocol's lookback.
A dataset gets test runs only when its search is complete and the config's "selection" says "done" for it
(the choice is fixed before any test number exists). A search round added after test numbers were known
says so in its selection ("done, round 4: ...", shown in the report) and its choice's runs replace the
earlier ones (set aside to the runs' "superseded" folder). Then every model runs at every horizon and seed of the
config, with every training window; ours is scored online (the memory reads train, val and the earlier
test rows, learning as it reads) and frozen (reset per window). One JSON per run in the config's "runs";
the report (config "report") and the plot of val MSE against lookback (config "plot") come from the JSONs.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import ROOT, config_main, git_commit, read_config, write_block  # noqa: E402
from long_memory_search import (  # noqa: E402
    FLOORS,
    base_of,
    estimator_run,
    long_memory_run,
    planned,
    run_name,
    runs_of,
    val_mse,
)

OURS, ABLATION = "ours", "ours [mlp]"
# ours with online_from="split" (the memory starts reading at the test split): a trial chosen on nested_check.md,
# the same training as ours (the same network), scored online from the split and frozen
OURS_SPLIT = "ours online from split"
# ours with online_reset_mix="auto" (the pull towards the trained memory chosen on validation): a trial chosen on
# guard_check.md, the same training as ours, scored online with the chosen pull and frozen
OURS_MIX = "ours online reset mix auto"
# each trial: the field of ours' test record that scored it with ours' network, and its change to ours' spec
TRIALS = {OURS_SPLIT: ("online_from_split", {"online_from": "split"})}
TRIALS[OURS_MIX] = ("online_reset_mix_auto", {"online_reset_mix": "auto"})
# ours with online_blend=0.5 (every online forecast the mean of the carried and the reset memory's): a trial
# chosen on gate_check.md (no test row), the same training as ours, scored online so blended and frozen
OURS_BLEND = "ours online blend 0.5"
TRIALS[OURS_BLEND] = ("online_blend_half", {"online_blend": 0.5})


def search_of(config: dict) -> dict:
    search = json.loads((ROOT / config["search"]).read_text())
    search["_path"] = config["search"]
    return search


def search_records(search: dict) -> dict:
    records = {}
    for path in sorted(runs_of(search).glob("*.json")):
        record = json.loads(path.read_text())
        records[(record["dataset"], record["horizon"], record["seed"], record["model"], record["lookback"])] = record
    return records


def choices(search: dict, records: dict, dataset: str) -> dict | None:
    """model -> (search model name, lookback, mean val MSE) for a dataset whose search is complete, else None.
    A long-memory candidate is eligible for ours only at a lookback it ran at every horizon and seed of the
    search (candidates tried at horizon 96 alone are not)."""
    runs = [run for run in planned(search) if run[0] == dataset]
    if not runs or any(run[:5] not in records for run in runs):
        return None
    scores = {}  # (search model, lookback) -> val MSEs over the search's horizons and seeds
    for run in runs:
        if run[5] != "floor":
            scores.setdefault((run[3], run[4]), []).append(val_mse(records[run[:5]]))
    cells = len(search["horizons"]) * len(search["seeds"])
    options = {}  # search model -> {lookback: mean val MSE}
    for (model, lookback), values in scores.items():
        if len(values) == cells:
            options.setdefault(model, {})[lookback] = statistics.mean(values)
    best = {model: min(by_lookback.items(), key=lambda item: item[1]) for model, by_lookback in options.items()}
    ours = min(
        ((model, *best[model]) for model in best if model not in search["baselines"] and not model.endswith("[mlp]")),
        key=lambda item: item[2],
        default=None,
    )
    if ours is None:  # no long-memory candidate ran at every horizon and seed: nothing to choose from
        return None
    chosen = {OURS: ours} | {trial: ours for trial in TRIALS}
    ablation = f"{ours[0]} [mlp]"
    chosen[ABLATION] = (ablation, ours[1], options.get(ablation, {}).get(ours[1]))
    for baseline in search["baselines"]:
        chosen[baseline] = (baseline, *best[baseline])
    for floor in FLOORS:
        chosen[floor] = (floor, search["lookbacks"][0], None)
    return chosen


def run_for_ours(config: dict, check) -> None:
    """A validation check of ours (carry_check, nested_check): for each dataset of `config` whose search has
    chosen ours, at each of the config's horizons, check(config, search, path, dataset, horizon, model,
    lookback) once per result file "<dataset>_h<horizon>_s<seed>.json" in the config's "runs" (claimed by one
    worker, skipped when it exists)."""
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
                    check(config, search, path, dataset, horizon, model, lookback)


def spec_of(search: dict, model: str, dataset: str) -> dict:
    """The long-memory settings of a search candidate (`name` or `name [mlp]`) on `dataset`."""
    name = model.removesuffix(" [mlp]")
    memory = "mlp" if model.endswith(" [mlp]") else "lmm"
    return {**base_of(search, dataset), **search["candidates"][name].get("change", {}), "memory": memory}


def run_grid(config: dict) -> None:
    import torch

    from titans_ts.training import tune_cpu_allocator

    claims = config["_claims"]
    torch.set_num_threads(claims.threads)
    tune_cpu_allocator()
    search = search_of(config)
    runs_of(config).mkdir(parents=True, exist_ok=True)
    while _grid_pass(config, search):  # again while a pass ran something: a dataset may have become ready
        pass


def _grid_pass(config: dict, search: dict) -> bool:
    """One pass over the grid, seed by seed; a dataset runs once its selection is "done" in the config file as
    it reads now (a worker picks up a dataset set to done while it runs). Returns whether it ran anything."""
    ran = False
    for seed in config["seeds"]:
        for horizon in config["horizons"]:
            for dataset in config["datasets"]:
                if not str(read_config(config["_path"])["selection"].get(dataset)).startswith("done"):
                    continue
                chosen = choices(search, search_records(search), dataset)
                for label, (model, lookback, _) in (chosen or {}).items():
                    path = runs_of(config) / run_name(dataset, horizon, seed, label, lookback)
                    set_aside_if_superseded(path, model, lookback)
                    ours = runs_of(config) / run_name(dataset, horizon, seed, OURS, lookback)
                    if label in TRIALS and config["_claims"].in_progress(ours):
                        continue  # ours' run, which scores the trial too, is being made: not a second training
                    with config["_claims"].claim(path) as mine:
                        if mine:
                            _final_run(config, search, path, dataset, horizon, seed, label, model, lookback)
                            ran = True
    return ran


def is_current(record: dict, choice: tuple) -> bool:
    """Whether a test run was made for the choice the search makes now ((search model, lookback, ...)): a later
    search round may choose another candidate or lookback for the same label, and its file name may be the same."""
    return (record.get("search_model"), record.get("lookback")) == tuple(choice[:2])


def set_aside_if_superseded(path: Path, model: str, lookback: int) -> None:
    """Move a test run of an earlier choice (another search model under the same file name) to the runs'
    "superseded" folder, so that the run for the current choice is made and the old one is kept, not counted."""
    if path.exists() and not is_current(json.loads(path.read_text()), (model, lookback)):
        aside = path.parent / "superseded"
        aside.mkdir(exist_ok=True)
        try:
            path.rename(aside / path.name)
        except FileNotFoundError:  # another worker moved it first
            pass


def current_finals(config: dict, chosen: dict) -> tuple[dict, list[str]]:
    """(the test runs of the current choices: (dataset, label) -> horizon -> seed -> record, the file names of
    runs made for an earlier choice, which are not counted)."""
    finals, superseded = {}, []
    for path in sorted(runs_of(config).glob("*.json")):
        record = json.loads(path.read_text())
        choice = (chosen.get(record["dataset"]) or {}).get(record["model"])
        if choice is None or not is_current(record, choice):
            superseded.append(path.name)
            continue
        finals.setdefault((record["dataset"], record["model"]), {}).setdefault(record["horizon"], {})[
            record["seed"]
        ] = record
    return finals, superseded


def _final_run(config, search, path, dataset, horizon, seed, label, model, lookback) -> None:
    from titans_ts.io import atomic_write_text

    started, commit = time.time(), git_commit()
    print(f"{path.name}: running", flush=True)
    ours = runs_of(config) / run_name(dataset, horizon, seed, OURS, lookback)
    ours_record = json.loads(ours.read_text()) if ours.exists() else {}
    if label in TRIALS and is_current(ours_record, (model, lookback)) and TRIALS[label][0] in ours_record["test"]:
        record = _from_ours(ours_record, *TRIALS[label])  # ours' run scored it: the same network
    elif label in TRIALS:  # ours ran before this trial existed: ours trained again, once for all its trials
        again = _ours_again(config, search, (dataset, horizon, seed), model, lookback)
        record = _from_ours(again, *TRIALS[label])
        record |= {"from_run": "ours, trained again for the trials", "trained_at_commit": again["git_commit"]}
    elif label in (OURS, ABLATION):
        keep = runs_of(config) / "models" / path.stem if label == OURS else None  # gitignored
        record = long_memory_run(
            dataset, horizon, seed, lookback, spec_of(search, model, dataset), test=True, keep=keep
        )
    else:
        kind = "floor" if label in FLOORS else "baseline"
        record = estimator_run(dataset, horizon, seed, lookback, model, kind, test=True)
    record |= {
        "dataset": dataset, "horizon": horizon, "seed": seed, "model": label, "search_model": model,
        "lookback": lookback, "git_commit": commit, "config": config["_path"],
        "threads": config["_claims"].threads, "wall_seconds": time.time() - started,
    }  # fmt: skip
    atomic_write_text(path, json.dumps(record, indent=1) + "\n")
    print(f"{path.name}: test {json.dumps(record['test'])} ({record['wall_seconds']:.0f} s)", flush=True)


def _ours_again(config, search, cell: tuple, model: str, lookback: int) -> dict:
    """Ours' run of a (dataset, horizon, seed) cell made again with ours' settings (its test record scores every
    trial), for trials added after ours' own run: kept beside the fitted models (gitignored), so that the cell's
    other trials take it instead of training once each."""
    from titans_ts.io import atomic_write_text

    dataset, horizon, seed = cell
    stem = Path(run_name(dataset, horizon, seed, OURS, lookback)).stem
    path = runs_of(config) / "models" / f"{stem}-again.json"
    if path.exists():
        record = json.loads(path.read_text())
        if record.get("search_model", model) == model:  # the early ones, all of one choice, did not name it
            return record
    keep = runs_of(config) / "models" / f"{stem}-again"
    record = long_memory_run(dataset, horizon, seed, lookback, spec_of(search, model, dataset), test=True, keep=keep)
    record |= {"git_commit": git_commit(), "search_model": model}
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(record, indent=1) + "\n")
    return record


def _from_ours(record: dict, field: str, change: dict) -> dict:
    """A trial's record of a cell from ours' own run, which scored that network that way too (`field` of its
    test record; no second training); its estimator settings are ours' with the trial's `change`."""
    test = record["test"]
    kept = {key: record[key] for key in ("val", "history", "params_count", "protocol")}
    settings = record["settings"]
    kept["settings"] = settings | {"estimator": settings["estimator"] | change}
    choice = test[field].get("online_reset_mix")
    if choice:  # the val score of the chosen pull, as a run fitted with it records
        kept["val"] = kept["val"] | {"online": {"mse": choice["val_mse"][str(choice["chosen"])]}}
    if "val_online" in test[field]:  # the blend's val score, as a run fitted with it records
        kept["val"] = kept["val"] | {"online": test[field]["val_online"]}
    return kept | {"test": {"online": test[field], "frozen": test["frozen"]}, "from_run": OURS}


def test_mse(record: dict, mode: str = "online") -> float:
    test = record["test"]
    return test[mode]["mse"] if "online" in test else test["mse"]


def report(config: dict) -> str:
    search = search_of(config)
    records = search_records(search)
    datasets, horizons, seeds = config["datasets"], config["horizons"], config["seeds"]
    chosen = {dataset: choices(search, records, dataset) for dataset in datasets}
    finals, superseded = current_finals(config, chosen)
    models = [OURS, *TRIALS, ABLATION, *search["baselines"], *FLOORS]
    lines = [
        "# Issue 28: the long-memory forecaster against the baselines (test, settings chosen on validation)",
        "",
        f"Generated by `experiments/forecasting/long_memory_grid.py {config['_path']}` from `{config['runs']}/*.json` "
        f"and the validation search `{search['_path']}`; do not edit by hand.",
        "",
        "Protocol: each dataset's TSLib split (ETT 12/4/4 months, weather 70/10/20), scaler fitted on the train "
        "rows, every window (drop_last=False), MSE on the scaled data. Every choice below was made on "
        "validation MSE by the search before any test number was computed (unless its selection below says "
        "otherwise); test runs use every training window.",
        "",
        "## Choices (from the validation search)",
        "",
        "| dataset | " + " | ".join(models[:-len(FLOORS)]) + " | selection |",
        "|---|" + "---|" * (len(models) - len(FLOORS)) + "---|",
    ]  # fmt: skip
    for dataset in datasets:
        made = chosen[dataset]
        cells = ["search incomplete"] * (len(models) - len(FLOORS)) if made is None else [
            f"{made[m][0]}, L={made[m][1]}" for m in models[: -len(FLOORS)]
        ]  # fmt: skip
        lines.append(f"| {dataset} | " + " | ".join(cells) + f" | {config['selection'].get(dataset, 'pending')} |")
    planned = {dataset: len(made) * len(horizons) * len(seeds) for dataset, made in chosen.items() if made}
    done = {dataset: sum(len(by_seed) for (d, _), runs in finals.items() if d == dataset for by_seed in runs.values())
            for dataset in planned}  # fmt: skip
    progress = (
        "Runs done of those planned (datasets with a complete search): "
        + ", ".join(f"{dataset} {done[dataset]} of {planned[dataset]}" for dataset in planned)
        + ". Seeds with ours' four horizons: "
        + "; ".join(f"{d} {_complete_seeds(finals.get((d, OURS), {}), horizons, seeds)}" for d in planned)
        + "."
    )
    if superseded:
        progress += (
            f" Not counted: {len(superseded)} run(s) made for a choice the search no longer makes (or a dataset it "
            f"has not chosen for), e.g. {superseded[0]}."
        )
    lines += [
        "",
        progress,
        "",
        f"## Four-horizon average test MSE (horizons {horizons}), mean ± std over seeds {seeds}",
        "",
    ]
    header = ["| model | " + " | ".join(datasets) + " |", "|---|" + "---|" * len(datasets)]
    rows = []  # (model, or None for a published row; the table row)
    averages = {}
    for model in models:
        for mode in ("online", "frozen") if model == OURS else ("online",):
            row = []
            for dataset in datasets:
                per_seed = _seed_averages(finals.get((dataset, model), {}), horizons, seeds, mode)
                averages[(dataset, model, mode)] = statistics.mean(per_seed) if per_seed else None
                row.append(_mean_std(per_seed))
            name = f"{model}, {mode}" if model == OURS else model
            rows.append((model, f"| {name} | " + " | ".join(row) + " |"))
    for label, values in config["published"].items():
        rows.append((None, f"| {label} (published) | " + " | ".join(f"{values.get(d, '-')}" for d in datasets) + " |"))
    lines += header + [row for _, row in rows]
    lines += ["", *[f"- {note}" for note in config.get("published_notes", [])], ""]
    acceptance = _acceptance(config, finals, averages, datasets, search)
    lines += ["## Acceptance counts (issue 28)", "", *(line for _, line in acceptance)]
    if "readme" in config:
        # the README's copy: ours, its ablation, the baselines and the published rows; ours' counts only
        table = header + [row for model, row in rows if model not in (*TRIALS, *FLOORS)]
        counts = [line for model, line in acceptance if model == OURS]
        block = ["  " + progress, ""] + ["  " + line for line in table] + [""] + ["  " + line for line in counts]
        write_block(ROOT / config["readme"], README_START, README_END, block)
    lines += _runs_so_far(finals, models, datasets, horizons, seeds)
    lines += ["", f"Plot of val MSE against lookback: `{config['plot']}`.", ""]
    _plot(config, search, records)
    return "\n".join(lines)


README_START = "<!-- long memory: written by experiments/forecasting/long_memory_grid.py -->"
README_END = "<!-- /long memory -->"


def _runs_so_far(finals, models, datasets, horizons, seeds) -> list[str]:
    """Every test run recorded, per dataset, horizon and seed (ours: online / frozen), complete or not."""
    cells = [
        (d, h, s)
        for d in datasets
        for h in horizons
        for s in seeds
        if any(s in finals.get((d, m), {}).get(h, {}) for m in models)
    ]
    if not cells:
        return []
    complete = len(cells) == len(datasets) * len(horizons) * len(seeds) and all(
        s in finals.get((d, m), {}).get(h, {}) for d, h, s in cells for m in models
    )
    lines = [
        "",
        "## Test MSE of every run" + ("" if complete else " so far"),
        "",
        "| dataset | horizon | seed | " + " | ".join(models) + " |",
        "|---|---|---|" + "---|" * len(models),
    ]
    for dataset, horizon, seed in cells:
        row = []
        for model in models:
            record = finals.get((dataset, model), {}).get(horizon, {}).get(seed)
            if record is None:
                row.append("-")
            elif model in (OURS, *TRIALS):
                row.append(f"{test_mse(record):.4f} / {test_mse(record, 'frozen'):.4f}" + _capped(record))
            else:
                row.append(f"{test_mse(record):.4f}" + _capped(record))
        lines.append(f"| {dataset} | {horizon} | {seed} | " + " | ".join(row) + " |")
    note = "ours and its trials: online / frozen (ours online from the series' first row; the trials as named)."
    cap = "(cap, N ep): training stopped by the run's time cap (max_minutes) after N epochs; the best epoch is kept."
    return [*lines, "", note, cap, _caps_said(finals, models)]


def _caps_said(finals: dict, models) -> str:
    """Which models trained under a time cap, and how long, as their records say; and what that means for a re-run."""
    caps: dict = {}
    capped = 0
    for (dataset, model), runs in finals.items():
        for record in (record for by_seed in runs.values() for record in by_seed.values()):
            settings = record.get("params") or record.get("settings", {}).get("estimator", {})
            caps.setdefault(model, {}).setdefault(settings.get("max_minutes"), set()).add(dataset)
            capped += bool(_capped(record))
    by_cap: dict = {}  # the models that share a cap, in the table's order
    for model in models:
        minutes = caps.get(model, {})
        parts = [f"{m:g} minutes on {', '.join(sorted(d))}" for m, d in sorted((m, d) for m, d in minutes.items() if m)]
        by_cap.setdefault("; ".join(parts) or "none", []).append(model)
    said = " | ".join(f"{', '.join(names)}: {cap}" for cap, names in by_cap.items())
    return (
        f"Time caps (max_minutes, from the runs' records): {said}. A capped run trains as many epochs "
        f"as the machine fits in that time, so the {capped} run(s) the cap stopped may stop elsewhere when run again."
    )


def _capped(record: dict) -> str:
    """' (cap, N ep)' for a run whose training the time cap stopped (a long-memory run's `stopped_by_time_cap`,
    set by long_memory_run, counts its window model's pretraining too)."""
    history = record.get("history") or {}
    if history.get("stopped_by_time_cap") or history.get("stop_reason") == "time_budget":
        return f" (cap, {history.get('epochs_run')} ep)"
    return ""


def _complete(runs: dict, horizons, seeds) -> list:
    """The seeds of `runs` (horizon -> seed -> record) that have every horizon."""
    return [seed for seed in seeds if all(runs.get(h, {}).get(seed) for h in horizons)]


def _seed_averages(runs: dict, horizons, seeds, mode) -> list[float]:
    """The four-horizon average of each seed that has every horizon."""
    complete = _complete(runs, horizons, seeds)
    return [statistics.mean(test_mse(runs[h][seed], mode) for h in horizons) for seed in complete]


def _complete_seeds(runs: dict, horizons, seeds) -> str:
    return ", ".join(map(str, _complete(runs, horizons, seeds))) or "none"


def _mean_std(values) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.4f} (1 seed)"
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}"


def _acceptance(config, finals, averages, datasets, search) -> list[tuple[str, str]]:
    """The report's acceptance lines, each with the model it counts (ours or a trial)."""
    lines = []
    online_wins, counted = 0, 0
    for dataset in datasets:
        runs = finals.get((dataset, OURS), {}).get(96, {})
        pairs = [(test_mse(r, "online"), test_mse(r, "frozen")) for r in runs.values()]
        if pairs:
            counted += 1
            online_wins += statistics.mean(p[0] for p in pairs) < statistics.mean(p[1] for p in pairs)
    lines.append(
        (OURS, f"- online below frozen at horizon 96: {online_wins} of {counted} datasets with runs (target 4 of 5).")
    )
    for trial in TRIALS:
        trial_wins, trial_counted = 0, 0
        for dataset in datasets:
            runs = finals.get((dataset, trial), {}).get(96, {})
            if runs:
                trial_counted += 1
                trial_wins += statistics.mean(test_mse(r) for r in runs.values()) < statistics.mean(
                    test_mse(r, "frozen") for r in runs.values()
                )
        lines.append((trial, f"- the same, {trial} (trial): {trial_wins} of {trial_counted} datasets with runs."))
    ours = {d: averages.get((d, OURS, "online")) for d in datasets}
    complete, ahead, ablation, beyond = _standing(config, averages, datasets, search, OURS)
    n = f"{len(complete)} datasets where every model has its four-horizon average"
    lines.append((OURS, f"- ours ahead of every same-harness baseline: {len(ahead)} of {n} (target 4 of 5)."))
    lines.append((OURS, f"- the ablation behind ours: {len(ablation)} of {n} (target 4 of 5)."))
    lines.append((OURS, f"- ours ahead of the Titans paper's row: {len(beyond)} of {n} (target 3 of 5)."))
    searched = config["published"].get("searched lookback (TFB, best of PDF/FITS/xPatch/PatchTST)", {})
    gaps = [f"{d} {ours[d] - searched[d]:+.4f}" for d in datasets if ours[d] is not None and d in searched]
    lines.append(
        (OURS, "- ours minus the searched-lookback row: " + (", ".join(gaps) or "no complete dataset yet") + ".")
    )
    lines += [(OURS, line) for line in _margins(config, averages, complete, search)]
    for trial in TRIALS:  # for information: a trial does not replace ours (its choice was not made on the test split)
        complete, ahead, ablation, beyond = _standing(config, averages, datasets, search, trial)
        n = len(complete)
        lines.append(
            (
                trial,
                f"- {trial} (trial), four-horizon averages over {n} complete datasets: ahead of every baseline "
                f"{len(ahead)} of {n}, the "
                f"ablation behind it {len(ablation)} of {n}, ahead of the paper {len(beyond)} of {n}.",
            )
        )
    return lines


def _margins(config, averages, complete, search) -> list[str]:
    """How far each target is, per dataset where every model has its average (ours online minus the other; a
    minus sign: ours is ahead): the best same-harness baseline (named), the ablation, the Titans paper's row."""
    if not complete:
        return []
    ours = {d: averages[(d, OURS, "online")] for d in complete}
    best = {d: min(search["baselines"], key=lambda b: averages[(d, b, "online")]) for d in complete}
    paper = config["published"].get("Titans paper, L=96", {})
    rows = {
        "the best same-harness baseline": [
            f"{d} {ours[d] - averages[(d, best[d], 'online')]:+.4f} ({best[d]})" for d in complete
        ],
        "the ablation": [f"{d} {ours[d] - averages[(d, ABLATION, 'online')]:+.4f}" for d in complete],
        "the Titans paper's row": [f"{d} {ours[d] - paper[d]:+.4f}" for d in complete if d in paper],
    }
    return [f"- ours minus {name}: {', '.join(gaps)}." for name, gaps in rows.items() if gaps]


def _standing(config, averages, datasets, search, model) -> tuple[list, list, list, list]:
    """(the datasets where `model`, the ablation and every baseline have a four-horizon average, and of those
    the ones where `model` is ahead of every baseline, where the ablation is behind it, where it is ahead of the
    Titans paper's row). A dataset still missing some model's average is not counted either way."""
    mine = {d: averages.get((d, model, "online")) for d in datasets}
    others = (*search["baselines"], ABLATION)
    complete = [
        d for d in datasets if mine[d] is not None and all(averages.get((d, b, "online")) is not None for b in others)
    ]
    ahead = [d for d in complete if all(averages[(d, b, "online")] > mine[d] for b in search["baselines"])]
    ablation = [d for d in complete if averages[(d, ABLATION, "online")] > mine[d]]
    paper = config["published"].get("Titans paper, L=96", {})
    beyond = [d for d in complete if d in paper and mine[d] < paper[d]]
    return complete, ahead, ablation, beyond


def _plot(config, search, records) -> None:
    """Val MSE against lookback, a row per dataset and a column per search horizon: ours (the chosen candidate;
    before the choice, the long-memory run with the lowest val MSE in the cell so far), attention over patches
    and DLinear."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets, horizons, seed = search["datasets"], search["horizons"], search["seeds"][0]
    figure, axes = plt.subplots(
        len(datasets), len(horizons), figsize=(4 * len(horizons), 3 * len(datasets)), squeeze=False
    )
    for row, dataset in enumerate(datasets):
        chosen = choices(search, records, dataset)
        for column, horizon in enumerate(horizons):
            axis = axes[row][column]
            ours = chosen[OURS][0] if chosen else _leading(search, records, dataset, horizon, seed)
            label = f"ours ({ours})" if chosen else f"ours so far ({ours})"
            drawn = [(ours, label, "C0"), ("attention-patch", "attention over patches", "C1")]
            for model, name, color in [*drawn, ("dlinear", "DLinear", "C2")]:
                points = sorted(
                    (lookback, val_mse(records[(dataset, horizon, seed, model, lookback)]))
                    for lookback in search["lookbacks"]
                    if (dataset, horizon, seed, model, lookback) in records
                )
                if points:
                    axis.plot(*zip(*points, strict=True), marker="o", label=name, color=color)
            axis.set_xscale("log")
            axis.set_title(f"{dataset}, horizon {horizon}", fontsize=9)
            axis.set_xlabel("lookback")
            axis.set_ylabel("val MSE")
            if axis.lines:
                axis.legend(fontsize=7)
    figure.tight_layout()
    path = ROOT / config["plot"]
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _leading(search, records, dataset, horizon, seed) -> str | None:
    """The long-memory candidate (not an ablation) with the lowest val MSE in a cell so far."""
    scores = [
        (val_mse(record), key[3])
        for key, record in records.items()
        if key[:3] == (dataset, horizon, seed) and record.get("kind") == "long_memory" and not key[3].endswith("[mlp]")
    ]
    return min(scores)[1] if scores else None


if __name__ == "__main__":
    sys.exit(config_main(__doc__, run_grid, report))
