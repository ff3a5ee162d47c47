"""`titans-dna`: a Titans nucleotide language model, pretraining and GenomicBenchmarks fine-tuning."""

from __future__ import annotations

from pathlib import Path

import typer
from rich import box
from rich.table import Table

from cli._common import console, exit_if_interrupted, make_app, write_table_text
from cli.options import DATA, DEVICE, MODEL, REPLACE_OUT, RUN, RUN_FOLDER, SCALE_OUT, TRAINING, grouped

app = make_app(
    "titans-dna",
    "Genomics with the Titans neural long-term memory: pretrain a nucleotide-level language model on "
    "FASTA and fine-tune it on GenomicBenchmarks tasks.\n\n"
    "Start with `titans-dna datasets`; `titans-dna finetune enhancer_cohn` fine-tunes the shipped "
    "pretrained model and reports accuracy with the protocol it used.",
)


@app.command()
def datasets() -> None:
    """List the GenomicBenchmarks tasks (ours and the genomic-benchmarks package's) and what is here."""
    from genomics.data.tasks import GENOMIC_BENCHMARKS_HOME, list_tasks

    here = {"official": "full", "bundled": "test", None: "[yellow]no[/]"}
    table = Table(title="GenomicBenchmarks tasks", box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    table.add_column("task", no_wrap=True)  # the name finetune takes: never cut, whatever the width
    for column in ("aliases", "classes", "train\ntest"):
        table.add_column(column, overflow="fold")  # names a user types: folded, never cut
    table.add_column("here", no_wrap=True)
    for row in list_tasks():
        sizes = row["official_sizes"]
        table.add_row(
            row["task"],
            "\n".join(row["aliases"]),  # one a line: a narrow column, names never split
            "\n".join(row["classes"]) or "-",
            f"{sizes['train']}\n{sizes['test']}" if sizes else "-",
            here[row["here"]],
        )
    console.print(table)
    console.print(
        "here: full (the official train and test splits, `--protocol official`), test (the bundled test split: "
        "the default protocol cross-validates on it) or no."
    )
    console.print(
        f"Full data: `titans-dna finetune TASK --protocol official` downloads it (online, genomic-benchmarks) "
        f"into {GENOMIC_BENCHMARKS_HOME}/<task>/{{train,test}}/; offline, put it there yourself."
    )


@app.command()
@grouped
def finetune(
    dataset: str = typer.Argument(
        ...,
        help="A task (enhancer_cohn, nontata_promoters, ...), a CSV or tab-separated .tsv with seq and label "
        "columns, or a FASTA file (with --labels).",
    ),
    protocol: str = typer.Option(
        "auto",
        help="official (the full train/test split; downloaded with genomic-benchmarks when not on disk), "
        "cv (stratified k-fold on the data here), or auto (official when on disk, else cv).",
        rich_help_panel=DATA,
    ),
    folds: int = typer.Option(5, help="Folds of the stratified cross-validation.", rich_help_panel=DATA),
    refit: bool = typer.Option(
        False,
        "--refit",
        help="After the cross-validation, train the saved model on every sequence (one more training, 10% of them "
        "held out for early stopping as in every fold); without it, model/ is the first fold's, trained on the "
        "other folds.",
        rich_help_panel=DATA,
    ),
    labels: Path = typer.Option(
        None,
        help="When DATASET is a FASTA file: a CSV or TSV with a name (or id) and a label (or class) column.",
        rich_help_panel=DATA,
    ),
    scratch: bool = typer.Option(
        False, "--scratch", help="Start from random weights, not the pretrained model.", rich_help_panel=MODEL
    ),
    pretrained: Path = typer.Option(
        None, help="A folder written by `titans-dna pretrain` (default: shipped).", rich_help_panel=MODEL
    ),
    block: str = typer.Option(
        None, help="With --scratch: the memory block, lmm, mac, mag or mal.", rich_help_panel=MODEL
    ),
    dim: int = typer.Option(None, help="With --scratch: model width.", rich_help_panel=MODEL),
    layers: int = typer.Option(
        None, help="With --scratch: memory blocks (0: the stem-only ablation).", rich_help_panel=MODEL
    ),
    stem_kernel: int = typer.Option(
        None, help="With --scratch: bases the stem's convolution sees (0: none).", rich_help_panel=MODEL
    ),
    stride: int = typer.Option(None, help="With --scratch: bases per memory token.", rich_help_panel=MODEL),
    epochs: int = typer.Option(
        None,
        help="Most fine-tuning epochs per fold (early stopping on a 10% validation split). \\[default: 12]",
        rich_help_panel=TRAINING,
    ),
    batch_size: int = typer.Option(None, help="Sequences per batch. \\[default: 32]", rich_help_panel=TRAINING),
    lr: float = typer.Option(None, help="Peak learning rate. \\[default: 0.001]", rich_help_panel=TRAINING),
    train_crop: int = typer.Option(
        None,
        help="Train on random windows of this many bases (0: whole sequences). \\[default: 0]",
        rich_help_panel=TRAINING,
    ),
    seed: int = typer.Option(0, help="Random seed (folds and training).", rich_help_panel=TRAINING),
    precision: str = typer.Option(
        "bf16-mixed",
        help="bf16-mixed (fast on GPUs and recent CPUs) or 32-true (older CPUs, exact fp32).",
        rich_help_panel=TRAINING,
    ),
    max_minutes: float = typer.Option(None, help="Training time limit per fold.", rich_help_panel=TRAINING),
    out: Path = typer.Option(
        None,
        help="Output folder (default: a folder in runs/ named by task, block and seed, such as runs/dna-TASK-lmm-s0).",
        rich_help_panel=RUN,
    ),
    run_folder: dict = RUN_FOLDER,
    device: str = DEVICE,
    scale_out: dict = SCALE_OUT,
) -> None:
    """Fine-tune on a task and print accuracy, naming the protocol used (CV when only one split is here)."""
    from genomics.api import finetune_chosen, run_histories

    def announce(fold: int, folds: int, train: int, test: int) -> None:
        if fold == folds:
            console.print(f"Refit: training the model to keep on all {train} sequences (less its validation split).")
        else:
            console.print(
                f"Fold {fold + 1} of {folds} (cross-validation): training on {train} sequences, scoring {test}."
            )

    result = finetune_chosen(
        dataset,
        protocol=protocol,
        folds=folds,
        refit=refit,
        out=out,
        **run_folder,
        labels=labels,
        scratch=scratch,
        pretrained=pretrained,
        seed=seed,
        precision=precision,
        max_minutes=max_minutes,
        device=device,
        **scale_out,
        block=block,
        dim=dim,
        layers=layers,
        stem_kernel=stem_kernel,
        stride=stride,
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        train_crop=train_crop,
        on_fold=announce,
    )
    from titans_ts.distributed import is_main_process

    if not is_main_process():  # under DDP every rank runs this command; rank 0 prints
        return
    console.print(f"Protocol: [bold]{result['protocol']}[/] - {result['note']}")
    table = Table(title=f"{result['dataset']}: accuracy")
    if "folds" in result:
        for column in ("fold", "accuracy", "sequences", "epochs (stop)"):
            table.add_column(column)
        for fold in result["folds"]:
            history = fold["history"]
            stop = f"{history['epochs_run']} ({history['stop_reason']})"
            table.add_row(str(fold["fold"] + 1), f"{fold['accuracy']:.4f}", str(fold["test_sequences"]), stop)
        mean, std = result["accuracy"], result["accuracy_std"]
        shown = "-" if mean is None else f"{mean:.4f}" + ("" if std is None else f" ± {std:.4f}")
        finished = "mean ± std" if result["complete"] else "finished folds"
        table.add_row(finished, shown, "", "")
    else:
        table.add_column("split")
        table.add_column("accuracy")
        table.add_row("official test", f"{result['accuracy']:.4f}")
    console.print(table)
    from titans_ts.training import stop_note

    histories = run_histories(result)
    for note in dict.fromkeys(filter(None, (stop_note(h, max_minutes) for h in histories))):
        console.print(f"[bold yellow]{note}[/]", highlight=False)
    model = f"model/: {result['saved_model']}" if "folds" in result else "model/"
    took = f"{result['wall_seconds']:.0f} s" + (" (this resumed part)" if result.get("resumed") else "")
    console.print(f"{took}. Saved to {result['out']}/ (metrics.json, {model}).")
    exit_if_interrupted(*histories)


@app.command()
@grouped
def pretrain(
    corpus: list[Path] = typer.Option(
        ..., "--corpus", help="FASTA or FASTA.gz files (repeat the option).", rich_help_panel=DATA
    ),
    window: int = typer.Option(1024, help="Window length in bases.", rich_help_panel=DATA),
    exclude: list[str] = typer.Option(
        ["enhancer_cohn", "nontata_promoters"],
        help="Tasks, or your own CSV / FASTA files, whose sequences must not leak (32-mer filter; repeat the option).",
        rich_help_panel=DATA,
    ),
    epochs: int = typer.Option(1, help="Passes over the corpus.", rich_help_panel=TRAINING),
    max_minutes: float = typer.Option(None, help="Stop after this many minutes.", rich_help_panel=TRAINING),
    seed: int = typer.Option(0, help="Random seed.", rich_help_panel=TRAINING),
    out: Path = typer.Option(Path("runs/dna-pretrain"), help="Output folder.", rich_help_panel=RUN),
    run_folder: dict = RUN_FOLDER,
    device: str = DEVICE,
) -> None:
    """Pretrain the DNA language model (next nucleotide); report bits per base on a held-out slice."""
    from genomics.api import pretrain as run

    report = run(
        corpus,
        out,
        exclude=exclude,
        window=window,
        epochs=epochs,
        max_minutes=max_minutes,
        seed=seed,
        device=device,
        **run_folder,
    )
    from titans_ts.training import stop_note

    note = stop_note(report["training"], max_minutes)
    if note:
        console.print(f"[bold yellow]{note}[/]", highlight=False)
    console.print(
        f"Dropped {report['leakage_filter']['windows_dropped']} of {report['windows_total']} windows "
        f"sharing a 32-mer with {', '.join(exclude)}."
    )
    took = f"{report['wall_seconds']:.0f} s" + (" (this resumed part)" if report["resumed"] else "")
    console.print(f"Held-out: {report['held_out_bits_per_base']:.3f} bits per base. {took}. Saved to {out}/.")
    exit_if_interrupted(report["training"])


@app.command()
@grouped
def evaluate(
    model: Path = typer.Option(..., "--model", "-m", help="A model folder written by finetune (OUT/model)."),
    dataset: str = typer.Option(..., "--dataset", "-d", help="A task, a labelled CSV or TSV, or FASTA (--labels)."),
    labels: Path = typer.Option(None, help="When DATASET is FASTA: a CSV or TSV with name and label columns."),
    device: str = DEVICE,
) -> None:
    """Accuracy of a saved classifier on labelled data, saying whether the model trained on that data."""
    from genomics.saved import evaluate_saved

    result = evaluate_saved(model, dataset, labels=labels, device=device)
    console.print(f"Accuracy {result['accuracy']:.4f} on {result['sequences']} sequences ({result['note']}).")


@app.command()
@grouped
def predict(
    model: Path = typer.Option(..., "--model", "-m", help="A model folder written by finetune (OUT/model)."),
    input: Path = typer.Option(
        ..., "--input", "-i", help="FASTA, or a CSV or TSV with a 'seq' column (names from a 'name' or 'id' column)."
    ),
    out: Path = typer.Option(
        None,
        help="Write name, class and one p_<class> probability column per class to this file, in the format its "
        "name says: .csv (.csv.gz compressed), .tsv or .parquet; other names CSV, other formats' names "
        "(.xlsx, .json) refused (default: print it as CSV).",
    ),
    overwrite: bool = REPLACE_OUT,
    device: str = DEVICE,
) -> None:
    """Classify sequences with a saved classifier."""
    from genomics.saved import predict_file, probability_csv

    frame = predict_file(model, input, device=device, out=out, overwrite=overwrite)
    if out:
        console.print(f"Wrote {len(frame)} predictions to {out}.")
    else:
        write_table_text(probability_csv(frame))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
