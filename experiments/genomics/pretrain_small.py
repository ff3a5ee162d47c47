"""Pretrain the shipped small Titans DNA model (the default starting point of DNAClassifier).

    python experiments/genomics/pretrain_small.py CORPUS_DIR [--minutes 12]

CORPUS_DIR holds FASTA(.gz) files of human DNA (here: the shared pretraining corpus, 14.25 Mb). Windows
sharing a 32-mer (either strand) with any sequence of the bundled evaluation tasks (enhancer_cohn,
nontata_promoters) are dropped first. Writes genomics/weights/titans-dna-small/{model.safetensors,
config.json} and MODEL_CARD.md beside them.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def main() -> int:
    from genomics.classifier import pretrained_path
    from genomics.data import load_task
    from genomics.model import DNAModelConfig
    from genomics.pretraining import pretrain

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("corpus_dir", type=Path)
    parser.add_argument("--minutes", type=float, default=12.0, help="training time budget")
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args()
    corpus = sorted(args.corpus_dir.glob("*.fa*"))
    evaluation = [
        s for task in ("enhancer_cohn", "nontata_promoters") for s in load_task(task).labelled.sequences
    ]
    out = pretrained_path()
    report = pretrain(
        corpus,
        out,
        evaluation_sequences=evaluation,
        config=DNAModelConfig(),
        window=1024,
        epochs=args.epochs,
        batch_size=16,
        lr=2e-3,
        max_minutes=args.minutes,
        progress=False,
    )
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT)
    report["git_commit"] = commit.stdout.strip()
    (out / "config.json").write_text(json.dumps(report, indent=1))
    (out / "MODEL_CARD.md").write_text(model_card(report))
    print(json.dumps(report, indent=1))
    return 0


def model_card(r: dict) -> str:
    c = r["model_config"]
    leak = r["leakage_filter"]
    return f"""# titans-dna-small

A nucleotide-level language model: embedding -> {c["layers"]} x [Titans {c["block"].upper()} block + MLP] -> norm,
next-nucleotide prediction, output layer tied to the embedding. {r["parameters"]:,} parameters; dim {c["dim"]},
{c["heads"]} heads, memory depth {c["memory_depth"]} (expansion {c["memory_expansion"]}), chunk {c["chunk_size"]}.
Produced by `experiments/genomics/pretrain_small.py` at commit {r.get("git_commit", "?")}.

- Data: {", ".join(r["corpus"])} (real human DNA: GRCh37 chr22:16.05-22.0 Mb, GRCh38 chr22:32.0-32.3 Mb,
  SNP-flanking and GM12878 peak windows of 201 bp, coding/intron fragments of 300 bp), cut into windows of
  {r["window"]} bases ({r["windows_total"]} windows; shorter records kept whole).
- Leakage filter: windows sharing any {leak["k"]}-mer ({leak["strands"]} strands) with the
  {leak["evaluation_sequences"]} sequences of the bundled evaluation tasks (human_enhancers_cohn,
  human_nontata_promoters) were dropped: **{leak["windows_dropped"]} windows**.
- Training: {r["train_windows"]} windows, {r["optimizer_steps"]} optimizer steps ({r["epochs_run"]} epoch(s) started),
  batch {r["batch_size"]}, AdamW lr {r["lr"]} with warm-up and cosine decay, seed {r["seed"]},
  {r["wall_seconds"] / 60:.1f} minutes on a 2-core CPU.
- Held-out: {r["held_out_windows"]} windows (5%, drawn at random before training):
  **{r["held_out_bits_per_base"]:.3f} bits per base** (2.0 would be a uniform guess over A/C/G/T).
- Intended use: the starting point of `DNAClassifier` / `titans-dna finetune`. A small model trained for
  minutes on 14 Mb; not a general-purpose genomic foundation model.
"""


if __name__ == "__main__":
    sys.exit(main())
