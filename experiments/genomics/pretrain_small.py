"""Pretrain the shipped small Titans DNA model (the default starting point of DNAClassifier), in stages.

    python experiments/genomics/pretrain_small.py experiments/configs/genomics_pretrain.json [--only-report]

The corpus is the shared human DNA of ../shared/data/genomics/pretrain/ (14.25 Mb). Windows sharing a 32-mer
(either strand) with any sequence of the bundled evaluation tasks (enhancer_cohn, nontata_promoters) are
dropped first. Training runs in stages of `epochs_per_stage` epochs, each continuing from the last one's
weights (a fresh warm-up and cosine schedule: a warm restart), for as long as the held-out bits per base
improve by at least `min_improvement`; at most `max_stages`. Resumable: a stage whose record exists is
skipped; each stage's weights are kept in `checkpoints` (not committed), and a stage that beats the
shipped model's held-out bits per base replaces it in genomics/weights/titans-dna-small/ with its card.
One JSON per stage in `runs`.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from harness import ROOT, config_main, git_commit  # noqa: E402


def _records(config: dict) -> list[dict]:
    runs = ROOT / config["runs"]
    return [json.loads(p.read_text()) for p in sorted(runs.glob("stage_*.json"))]


def _stopped(records: list[dict], config: dict) -> bool:
    if len(records) >= config["max_stages"]:
        return True
    if len(records) < 2:
        return False
    best_before = min(r["held_out_bits_per_base"] for r in records[:-1])
    return records[-1]["held_out_bits_per_base"] > best_before - config["min_improvement"]


def _start_of(stage: int, records: list[dict], config: dict) -> Path | None:
    """The weights stage `stage` continues from: the previous stage's checkpoint (or the shipped copy of it)."""
    if stage == 0:
        return None
    checkpoint = ROOT / config["checkpoints"] / f"stage_{stage - 1:02d}"
    if (checkpoint / "model.safetensors").exists():
        return checkpoint
    from genomics.pretrained import pretrained_path

    shipped = json.loads((pretrained_path() / "config.json").read_text())
    if shipped.get("stage") == stage - 1:
        return pretrained_path()
    raise SystemExit(f"stage {stage - 1}'s weights are not in {checkpoint} (nor shipped): cannot continue.")


def run(config: dict) -> None:
    import torch

    from genomics.api import leakage_sequences
    from genomics.model import DNAModelConfig
    from genomics.pretrained import pretrained_path
    from genomics.pretraining import pretrain
    from titans_ts.io import atomic_write_text

    torch.set_num_threads(config["_claims"].threads)
    corpus = sorted((ROOT / config["corpus"]).glob("*.fa*"))
    evaluation = leakage_sequences(config["exclude"])
    runs = ROOT / config["runs"]
    runs.mkdir(parents=True, exist_ok=True)
    while not _stopped(records := _records(config), config):
        stage = len(records)
        init = _start_of(stage, records, config)
        checkpoint = ROOT / config["checkpoints"] / f"stage_{stage:02d}"
        report = pretrain(
            corpus,
            checkpoint,
            evaluation_sequences=evaluation,
            config=None if init else DNAModelConfig(**config["model"]),
            init=init,
            window=config["window"],
            epochs=config["epochs_per_stage"],
            batch_size=config["batch_size"],
            lr=config["lr"],
            progress=False,
            resume=(checkpoint / "checkpoints").is_dir(),  # a stage killed part-way continues where it was
            overwrite=True,  # the stage's JSON in `runs`, not this folder, marks a finished stage
        )
        report |= {"stage": stage, "git_commit": git_commit()}
        saved = json.loads((checkpoint / "config.json").read_text())  # its save_id and hash: the next stage loads it
        atomic_write_text(checkpoint / "config.json", json.dumps(saved | report, indent=1))
        shipped = json.loads((pretrained_path() / "config.json").read_text())
        if report["held_out_bits_per_base"] < shipped["held_out_bits_per_base"]:
            ship(checkpoint, report, pretrained_path())
        atomic_write_text(runs / f"stage_{stage:02d}.json", json.dumps(report, indent=1))
        print(f"stage {stage}: {report['held_out_bits_per_base']:.4f} bits per base", flush=True)


def ship(checkpoint: Path, report: dict, target: Path) -> None:
    """Replace the shipped weights with this stage's, and write its model card (staged, then renamed)."""
    from titans_ts.io import atomic_write_text

    staging = target.with_name(target.name + ".new")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(checkpoint, staging)
    atomic_write_text(staging / "MODEL_CARD.md", model_card(report))
    old = target.with_name(target.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    staging.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def report(config: dict) -> str:
    records = _records(config)
    lines = [
        "# Pretraining the shipped DNA language model",
        "",
        f"Generated by `experiments/genomics/pretrain_small.py {config.get('_path', '')}`; do not edit by hand. "
        "Held-out bits per base on the same 5% of the (leakage-filtered) corpus windows for every stage; "
        "2.0 is a uniform guess over A/C/G/T.",
        "",
        f"Model: {config['model']}; windows of {config['window']} bases, batch {config['batch_size']}, "
        f"lr {config['lr']}, {config['epochs_per_stage']} epoch(s) per stage, each a warm restart from the last.",
        "",
        "| stage | held-out bits per base | optimizer steps (total) | minutes |",
        "|---|---|---|---|",
    ]
    for r in records:
        lines.append(
            f"| {r['stage']} | {r['held_out_bits_per_base']:.4f} | {r['total_optimizer_steps']} | "
            f"{r['wall_seconds'] / 60:.0f} |"
        )
    if not records:
        lines.append("| (none yet) | | | |")
    state = "stopped: " + ("no further improvement" if len(records) < config["max_stages"] else "max_stages")
    lines += ["", state if _stopped(records, config) else "Still improving: more stages to run."]
    older = [str(r["stage"]) for r in records if _scores_bases_only(r.get("git_commit")) is False]
    if older:
        lines += [
            "",
            f"Stage(s) {', '.join(older)} were scored as pretraining then scored (before {BASES_ONLY}): N a target, "
            "assembly-gap windows kept, so a run of today's code scores otherwise. "
            "`experiments/results/genomics_pretrain_rescore.md` scores the shipped weights both ways.",
        ]
    return "\n".join(lines) + "\n"


BASES_ONLY = "c39520a"  # from this commit pretraining scores A, C, G and T only, and drops assembly-gap windows


def _scores_bases_only(commit: str | None) -> bool | None:
    """Whether a record's commit scored by today's rule (`BASES_ONLY` is its ancestor); None when git cannot say."""
    import subprocess

    if not commit:
        return None
    try:
        done = subprocess.run(["git", "merge-base", "--is-ancestor", BASES_ONLY, commit], cwd=ROOT, capture_output=True)
    except OSError:  # no git here
        return None
    return {0: True, 1: False}.get(done.returncode)


def model_card(r: dict) -> str:
    c = r["model_config"]
    leak = r["leakage_filter"]
    return f"""# titans-dna-small

A nucleotide-level language model: a stem (embedding, a table of the {c["stem_kmer"]}-mer ending at each base,
causal convolution over {c["stem_kernel"]} bases, the {c["stem_pool"]} over each {c["stride"]} bases as one token)
-> {c["layers"]} x [Titans {c["block"].upper()} block + MLP] -> norm; each base is predicted from the stem's
features of the base before it plus the last token before its window. {r["parameters"]:,}
parameters; dim {c["dim"]}, {c["heads"]} heads, memory depth {c["memory_depth"]} (expansion {c["memory_expansion"]}),
chunk {c["chunk_size"]}. Produced by `experiments/genomics/pretrain_small.py` (stage {r["stage"]}) at commit
{r.get("git_commit", "?")}.

- Data: {", ".join(r["corpus"])} (real human DNA: GRCh37 chr22:16.05-22.0 Mb, GRCh38 chr22:32.0-32.3 Mb,
  SNP-flanking and GM12878 peak windows of 201 bp, coding/intron fragments of 300 bp), cut into windows of
  {r["window"]} bases ({r["windows_total"]} windows; shorter records kept whole).
- Leakage filter: windows sharing any {leak["k"]}-mer ({leak["strands"]} strands) with the
  {leak["evaluation_sequences"]} sequences of the bundled evaluation tasks (human_enhancers_cohn,
  human_nontata_promoters) were dropped: **{leak["windows_dropped"]} windows**.
- Training: {r["train_windows"]} windows, {r["total_optimizer_steps"]} optimizer steps in {r["stage"] + 1} stage(s),
  batch {r["batch_size"]}, AdamW lr {r["lr"]} with warm-up and cosine decay in each stage, seed {r["seed"]},
  on {r["device"]}.
- Held-out: {r["held_out_windows"]} windows (5%, drawn at random before training):
  **{r["held_out_bits_per_base"]:.3f} bits per base** (2.0 would be a uniform guess over A/C/G/T).
<!-- bases only: written by experiments/genomics/pretrain_rescore.py -->
<!-- /bases only -->
<!-- downstream: written by experiments/genomics/cv.py -->
- Downstream: see experiments/results/genomics_cv.md (pretrained against scratch, same recipe).
<!-- /downstream -->
- Intended use: the starting point of `DNAClassifier` / `titans-dna finetune`. A small model trained on
  14 Mb on a CPU; not a general-purpose genomic foundation model.
"""


if __name__ == "__main__":
    sys.exit(config_main(__doc__, run, report))
