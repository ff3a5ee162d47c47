"""Re-run committed experiment records and compare them exactly (issue 27: behaviour unchanged by refactors).

    python experiments/checks/reproduce.py [--only etth1|nontata] [--threads 1]

- the forecasting grid's ETTh1 h96 seed-0 run of ours (experiments/results/runs/forecasting_grid/
  ETTh1_lmm_h96_s0.json), through the grid's own run function, into a scratch folder;
- the genomics CV's nontata fold 0 of ours from scratch (runs/genomics_cv/..._titans_scratch_fold0.json),
  through the CV script's own fold function. Its record (made at 352dc09, on another machine) does not
  re-run bit for bit on the 2-core machine: at this script's first version (cb56a6f), at 157b7d0 and at
  6da1ed2 alike, accuracy 0.8683 with 1 thread (0.8517 with 2, at 7b5ead3), 0.8456 recorded. DNA training on
  the CPU rounds by the thread count and machine; check a refactor of it with --save / --against on one machine.
Prints each committed number beside the re-run one and whether they are bit-identical; exit 1 if any differs.
With `--save F` the re-run numbers are written to F; with `--against F` they are compared with F's (e.g. the
same check run on the commit before a refactor, on the same machine and thread count) instead of the records.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "experiments"))
sys.path.insert(0, str(ROOT))
RUNS = ROOT / "experiments" / "results" / "runs"


def etth1(scratch: Path, threads: int) -> list[tuple[str, float, float]]:
    sys.path.insert(0, str(ROOT / "experiments" / "forecasting"))
    import grid
    from harness import Claims

    committed = json.loads((RUNS / "forecasting_grid" / "ETTh1_lmm_h96_s0.json").read_text())
    config = json.loads((ROOT / "experiments" / "configs" / "forecasting.json").read_text())
    config |= {"datasets": ["ETTh1"], "horizons": [96], "seeds": [0], "variants": ["lmm"], "runs": str(scratch)}
    config["models_dir"] = str(scratch / "models")  # not the grid's runs/grid: a checkpoint there would be resumed
    config["selection"] = {"ETTh1": "done", "general": "not this check"}  # the run itself, not the general default
    config["_claims"] = Claims(worker=threads == 1)
    grid.run_grid(config)
    rerun = json.loads((scratch / "ETTh1_lmm_h96_s0.json").read_text())
    return [(f"ETTh1 h96 s0 {split} {metric}", committed[split][metric], rerun[split][metric])
            for split in ("val", "test") for metric in ("mse", "mae")]  # fmt: skip


def nontata(scratch: Path, threads: int) -> list[tuple[str, float, float]]:
    sys.path.insert(0, str(ROOT / "experiments" / "genomics"))
    import cv

    from genomics.data import load_task, stratified_folds

    name, task = "titans_scratch", "human_nontata_promoters"
    committed = json.loads((RUNS / "genomics_cv" / f"{task}_{name}_fold0.json").read_text())
    config = json.loads((ROOT / "experiments" / "configs" / "genomics_cv.json").read_text())
    data = load_task(task).labelled
    train_index, test_index = next(iter(stratified_folds(data, config["folds"], config["seed"])))
    out = scratch / "nontata_fold0.json"
    cv._run_fold(task, name, config["models"][name], 0, data, train_index, test_index, out, config, "check")
    rerun = json.loads(out.read_text())
    return [(f"nontata {name} fold 0 accuracy", committed["accuracy"], rerun["accuracy"]),
            (f"nontata {name} fold 0 best val loss", committed["history"]["best_val_loss"],
             rerun["history"]["best_val_loss"])]  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=["etth1", "nontata"])
    parser.add_argument("--save", type=Path, help="write the re-run numbers here (JSON)")
    parser.add_argument("--against", type=Path, help="compare with these saved numbers, not the committed records")
    parser.add_argument(
        "--threads", type=int, default=1, choices=[1, 2], help="torch threads (the grid's workers ran with 1)"
    )
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for name, check in (("etth1", etth1), ("nontata", nontata)):
            if args.only in (None, name):
                folder = Path(scratch) / name
                folder.mkdir()
                rows += check(folder, args.threads)
    if args.save:
        args.save.write_text(json.dumps({label: rerun for label, _, rerun in rows}, indent=1))
    if args.against:
        saved = json.loads(args.against.read_text())
        rows = [(label, saved[label], rerun) for label, _, rerun in rows]
    same = True
    kept = "saved" if args.against else "committed"
    for label, committed, rerun in rows:
        equal = committed == rerun
        same &= equal
        print(f"{label}: {kept} {committed!r}, re-run {rerun!r}: {'identical' if equal else 'DIFFERS'}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
