"""The shipped titans-dna-small's held-out bits per base, scored again on A, C, G and T only.

    python experiments/genomics/pretrain_rescore.py experiments/configs/genomics_pretrain.json

Its pretraining (genomics_pretrain.md) scored every target of its held-out windows, N included, and kept the
windows of the corpus' assembly gaps (runs of N), which a model continues at almost no cost. This rebuilds
that run's held-out windows exactly (the same corpus, leakage filter, window, share and seed, gap windows
kept, as they were), checks that the recorded score comes back under the old rule, and scores the same
windows and the same weights under today's rule (A, C, G and T targets only), also without the gap windows.
Writes experiments/results/genomics_pretrain_rescore.{json,md}. No training; about a minute on 2 cores.
"""

from __future__ import annotations

import inspect
import json
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "experiments"))
from harness import write_block  # noqa: E402

CARD_START = "<!-- bases only: written by experiments/genomics/pretrain_rescore.py -->"
CARD_END = "<!-- /bases only -->"


def scores(model, windows: list[str], batch_size: int) -> dict:
    """Bits per base over `windows`: as recorded then (each batch's mean over every target but pads, N included,
    weighted by the batch's windows), over every target, and over A/C/G/T targets only (today's rule)."""
    import torch
    import torch.nn.functional as F

    from genomics.tokenizer import NUCLEOTIDES, PAD_ID, DNATokenizer

    tokenizer = DNATokenizer()
    windows = sorted(windows, key=len)  # batched as pretraining's validation batched them (bucket=True)
    old_nats = new_nats = recorded = 0.0
    old_count = new_count = 0
    with torch.no_grad():
        for start in range(0, len(windows), batch_size):
            ids = tokenizer.batch_encode(windows[start : start + batch_size])[0]  # as make_loader encodes them
            logp = F.log_softmax(model(ids).double(), -1)
            targets = ids[:, 1:]
            nats = -logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
            every, bases = targets != PAD_ID, (targets != PAD_ID) & (targets != NUCLEOTIDES["N"])
            recorded += nats[every].mean().item() * len(ids)
            old_nats, old_count = old_nats + nats[every].sum().item(), old_count + int(every.sum())
            new_nats, new_count = new_nats + nats[bases].sum().item(), new_count + int(bases.sum())
    bits = 1 / math.log(2)
    return {
        "as_recorded": recorded / len(windows) * bits,
        "every_target": old_nats / old_count * bits,
        "bases_only": new_nats / new_count * bits,
        "targets": old_count,
        "n_targets": old_count - new_count,
    }


def main() -> None:
    import torch

    from genomics.api import leakage_sequences
    from genomics.model import DNALanguageModel
    from genomics.pretrained import pretrained_path
    from genomics.pretraining import is_gap, load_language_model, pretrain, split_corpus
    from titans_ts.io import atomic_write_text

    config = json.loads(Path(sys.argv[1]).read_text())
    torch.set_num_threads(2)
    shipped_config, weights, shipped = load_language_model(pretrained_path())
    model = DNALanguageModel(shipped_config)
    model.load_state_dict(weights)
    model.eval()
    corpus = sorted((ROOT / config["corpus"]).glob("*.fa*"))
    evaluation = leakage_sequences(config["exclude"])
    defaults = inspect.signature(pretrain).parameters  # pretrain_small.py runs with pretrain's k and held_out
    k, share = shipped["leakage_filter"]["k"], defaults["held_out"].default
    as_run = dict(drop_gaps=False, repeats=True)  # the shipped run's split, before those rules
    held_out = split_corpus(corpus, config["window"], evaluation, k, share, shipped["seed"], **as_run)[3]
    gaps = [w for w in held_out if is_gap(w)]
    without_gaps = [w for w in held_out if not is_gap(w)]
    record = {
        "weights": "genomics/weights/titans-dna-small",
        "recorded_bits_per_base": shipped["held_out_bits_per_base"],
        "held_out_windows": len(held_out),
        "gap_windows": len(gaps),
        "all_held_out": scores(model, held_out, config["batch_size"]),
        "without_gap_windows": scores(model, without_gaps, config["batch_size"]),
    }
    results = ROOT / "experiments" / "results"
    atomic_write_text(results / "genomics_pretrain_rescore.json", json.dumps(record, indent=1) + "\n")
    atomic_write_text(results / "genomics_pretrain_rescore.md", render(record))
    clean = record["without_gap_windows"]["bases_only"]
    card = [
        f"- Scored as pretraining scores now (A, C, G and T only: N is no target, and the {record['gap_windows']} "
        f"assembly-gap windows are left out): **{clean:.3f} bits per base** on the same held-out windows "
        "(experiments/results/genomics_pretrain_rescore.md)."
    ]
    write_block(pretrained_path() / "MODEL_CARD.md", CARD_START, CARD_END, card)
    print(render(record))


def render(record: dict) -> str:
    every, clean = record["all_held_out"], record["without_gap_windows"]
    return "\n".join(
        [
            "# The shipped DNA language model's held-out score, on bases only",
            "",
            "Generated by `experiments/genomics/pretrain_rescore.py experiments/configs/genomics_pretrain.json`; "
            "do not edit by hand. No training: the shipped weights, on the held-out windows of their pretraining "
            "(rebuilt: same corpus, leakage filter, window, 5 % share and seed, assembly-gap windows kept as "
            "they then were).",
            "",
            "| held-out windows | targets | of them N | bits per base, as recorded (batch means, N included) "
            "| every target | A/C/G/T only (today's rule) |",
            "|---|---|---|---|---|---|",
            f"| all {record['held_out_windows']} | {every['targets']} | {every['n_targets']} "
            f"| {every['as_recorded']:.4f} | {every['every_target']:.4f} | {every['bases_only']:.4f} |",
            f"| without the {record['gap_windows']} gap windows | {clean['targets']} | {clean['n_targets']} "
            f"| {clean['as_recorded']:.4f} | {clean['every_target']:.4f} | {clean['bases_only']:.4f} |",
            "",
            f"Recorded at pretraining (genomics_pretrain.md): {record['recorded_bits_per_base']:.4f} bits per base. "
            "2.0 is a uniform guess over A/C/G/T.",
            "",
        ]
    )


if __name__ == "__main__":
    main()
