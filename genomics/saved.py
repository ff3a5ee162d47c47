"""What the `titans-dna` commands do with a saved classifier, as library functions: predict a file's sequences
(`predict_file`), score it on labelled data (`evaluate_saved`, with a note on whether it trained on them)."""

from __future__ import annotations

from pathlib import Path

from genomics.api import load_labelled
from genomics.classifier import DNAClassifier
from genomics.data.files import is_csv, read_fasta, read_unlabelled_csv
from genomics.data.labelled import LabelledSequences, make_labelled, warn_duplicate_names, warn_unknown_only
from genomics.data.tasks import load_task
from titans_ts.errors import DataValidationError
from titans_ts.io import check_out_file, check_table_path, data_fingerprint, write_table
from titans_ts.training import check_device

__all__ = ["evaluate_saved", "predict_file", "probability_csv"]


def predict_file(
    model_dir, input_path, device: str | None = None, out=None, overwrite: bool = False, progress: bool = True
):
    """A table: name, predicted class, then one probability column per class (`p_<class>`, classes sorted),
    for each sequence of a FASTA or CSV (column seq; names from a name or id column); written to the file `out`
    too when given, in the format its name says (`titans_ts.io.write_table`: .parquet, .tsv, .gz, else CSV; .xlsx and
    other formats' names refused; an existing file only with overwrite=True). A sequence with no A, C, G or T is
    predicted, with a warning.

    device: "auto" | "cpu" | "cuda" to run on (None: the device the model was saved with).
    progress: a progress bar on stderr when the work is long and stderr a terminal, whatever the model was
    saved with."""
    check_device(device)  # before any file is read
    check_out_file(out, [input_path], overwrite)
    if out is not None:
        check_table_path(out)  # a name that says another format (.xlsx) is refused before the model is read
    model = DNAClassifier.load(model_dir, device=device).set_params(progress=progress)
    import pandas as pd

    path = Path(input_path)
    if is_csv(path):
        sequences, given = read_unlabelled_csv(path)
    else:
        records = read_fasta(path)
        given, sequences = [n for n, _ in records], [s for _, s in records]
    make_labelled(sequences, [0] * len(sequences), source=str(path), names=given)  # names file and record in errors
    warn_unknown_only(sequences, str(path), given)
    warn_duplicate_names(given, str(path))
    names = given or [str(i) for i in range(1, len(sequences) + 1)]  # counted from 1, as errors count sequences
    probabilities = model._checked_probabilities(sequences)
    frame = pd.DataFrame({"name": names, "class": [str(c) for c in model.classes_[probabilities.argmax(axis=1)]]})
    for column, values in zip(model.classes_, probabilities.T, strict=True):
        frame[f"p_{column}"] = values
    if out is not None:
        write_table(frame, out, float_format=PROBABILITY_FORMAT)
    return frame


PROBABILITY_FORMAT = "%.7g"  # the 7 significant digits the float32 network computes


def probability_csv(frame) -> str:
    """The prediction table as CSV text."""
    return frame.to_csv(index=False, float_format=PROBABILITY_FORMAT)


def evaluate_saved(model_dir, dataset: str, data_root=None, labels=None, device: str | None = None) -> dict:
    """Accuracy of a saved classifier on labelled data (a task's official test split or a file).

    device: "auto" | "cpu" | "cuda" to run on (None: the device the model was saved with)."""
    check_device(device)  # before any file is read
    model = DNAClassifier.load(model_dir, device=device)
    own = load_labelled(dataset, labels)
    trained_on = model.history_.get("trained_on") or {}  # {} for a model saved by fit itself, or an older one
    if own is None:
        task = load_task(dataset, data_root=data_root)
        own = task.test if task.protocol == "official" else task.labelled
        note = task_split_note(task, trained_on)
    else:
        note = file_note(own, trained_on)
    classes = model.classes_.tolist()  # a file's label is the class it reads as (0 or "0": each file decides)
    by_text = {str(c): c for c in classes}
    as_fitted = {label: label if label in classes else by_text.get(str(label)) for label in own.classes}
    unknown = [label for label, fitted in as_fitted.items() if fitted is None]
    if unknown:
        raise DataValidationError(
            f"{own.source}: label(s) {unknown} are not among the model's classes {classes}: "
            "evaluate on data labelled as the model's training data was."
        )
    truths = [as_fitted[label] for label in own.label_names()]
    return {"accuracy": model.score(own.sequences, truths), "sequences": len(own), "note": note}


def task_split_note(task, trained_on: dict) -> str:
    """Which split of a task is scored and whether the model trained on it. The bundled split is the official test
    split: a model fine-tuned on the task by CV saw it (alone, or pooled with the train split), one fine-tuned by
    the official protocol did not. A model fine-tuned on other data (the user's file) may still have trained on
    some of these sequences (a file sampled from the task's split): only the user knows, so the note says so."""
    split = "official test split" if task.protocol == "official" else "the bundled split"
    fine_tuned_on = trained_on.get("dataset")
    if fine_tuned_on == task.name:
        if trained_on.get("protocol") == "official":
            return f"{split}: held out, the model was fine-tuned on the official train split"
        return f"{split}, which the CV folds also trained on: not a held-out score"
    if fine_tuned_on is not None:
        return (
            f"{split}; the model was fine-tuned on {fine_tuned_on}, not on this task: a held-out score only if "
            f"{fine_tuned_on} held none of these sequences"
        )
    if task.protocol == "official":
        return split
    return f"{split}: a held-out score only if the model did not train on it"


def file_note(data: LabelledSequences, trained_on: dict) -> str:
    """Whether the model trained on a labelled file: known when it holds the very sequences it was fine-tuned on."""
    if "sequences" in trained_on and trained_on["sequences"] == data_fingerprint(data.sequences):
        return "your labelled file, the data this model was fine-tuned on: not a held-out score"
    return "your labelled file: a held-out score only if the model did not train on it"
