"""`titans-dna`: a Titans nucleotide language model, pretraining and GenomicBenchmarks fine-tuning."""

from __future__ import annotations

from cli._common import make_app, not_yet

app = make_app(
    "titans-dna",
    "Genomics with the Titans neural long-term memory: pretrain a nucleotide-level language model on "
    "FASTA and fine-tune it on GenomicBenchmarks tasks.",
)

_LATER = "the genomics model lands in a later release"


@app.command()
def pretrain() -> None:
    """Pretrain the DNA language model on FASTA files (next-nucleotide prediction)."""
    not_yet("titans-dna pretrain", _LATER)


@app.command()
def finetune() -> None:
    """Fine-tune on a GenomicBenchmarks task (official split, or cross-validation on bundled data)."""
    not_yet("titans-dna finetune", _LATER)


@app.command()
def evaluate() -> None:
    """Evaluate a fine-tuned classifier."""
    not_yet("titans-dna evaluate", _LATER)


@app.command()
def predict() -> None:
    """Classify sequences from a FASTA or CSV file with a fine-tuned classifier."""
    not_yet("titans-dna predict", _LATER)


@app.command()
def datasets() -> None:
    """List the GenomicBenchmarks tasks and which are available here."""
    not_yet("titans-dna datasets", _LATER)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
