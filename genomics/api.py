"""What `titans-dna finetune` and `titans-dna pretrain` do, as library functions (the CLI only parses and prints);
a saved classifier's commands are in `saved`."""

from __future__ import annotations

import dataclasses
import json
import statistics
import time
from pathlib import Path

import numpy as np

from genomics import pretraining
from genomics.classifier import DNAClassifier
from genomics.data.files import (
    check_readable,
    is_csv,
    names_a_file,
    read_csv,
    read_fasta,
    read_fasta_with_labels,
    read_unlabelled_csv,
    separator,
    sniff,
)
from genomics.data.labelled import (
    LabelledSequences,
    stratified_folds,
)
from genomics.data.tasks import OWN_DATA, load_task
from titans_ts.distributed import is_main_process, rank_and_world
from titans_ts.errors import ConfigError, DatasetNotFoundError, DataValidationError, ResumeMismatchError, changes
from titans_ts.estimator_base import RUN_ONLY
from titans_ts.io import (
    SETTINGS_FILE,
    atomic_write_text,
    data_fingerprint,
    json_value,
)
from titans_ts.version import __version__


def load_labelled(source: str, labels=None):
    """A task name (bundled / genomic-benchmarks), a CSV (seq,label), or a FASTA with a labels CSV."""
    path = Path(source)
    if is_csv(path):
        if labels is not None:
            kind = "CSV" if separator(path) == "," else "tab-separated table"
            raise ConfigError(f"{source} is a {kind}, whose label column is read: --labels goes with a FASTA file.")
        return read_csv(path)
    # any other file is FASTA, as in predict
    if path.suffix.lower() in (".fa", ".fasta", ".fna", ".gz") or path.is_file():
        if labels is None:
            if not sniff(path).first_line.startswith(">"):  # not FASTA after all (FASTQ, no header, ...):
                read_fasta(path)  # names what it is, at the line that shows it
            raise ConfigError(f"{source} is FASTA: pass its labels too (--labels LABELS.csv with name,label).")
        return read_fasta_with_labels(path, labels)
    if names_a_file(source):  # mydata.txt, not there: a path to check, not an unknown task
        check_readable(path)
    if labels is not None:
        raise ConfigError(f"--labels goes with a FASTA file; {source} is not a file here (a task brings its labels).")
    return None


REFIT_NEEDS_CV = (
    "{}: refit goes with cross-validation, and this run uses the official split (its model trains on the train "
    "split): add --protocol cv to refit on every sequence."
)


def finetune(
    dataset: str,
    protocol: str = "auto",
    folds: int = 5,
    out=None,
    data_root=None,
    labels=None,
    overwrite: bool = False,
    resume: bool = False,
    checkpoint_every: float | None = None,
    on_fold=None,
    refit: bool = False,
    **params,
) -> dict:
    """Fine-tune and evaluate: the official split when present, else stratified k-fold CV (said so).

    Under CV the saved model is the first fold's (fold 0 in the result, 1 in the CLI's table), trained on
    (k-1)/k of the data less its validation split, unless
    `refit`: once every fold has finished, one more training on every sequence (less the classifier's
    validation split, which early-stops it, as in every fold) makes the saved model (the accuracy is still the
    folds'; the refitted model has no held-out score of its own).
    on_fold(fold, folds, train_sequences, test_sequences): called (on rank 0) as each fold's training starts,
    and with fold == folds for the refit.
    params: DNAClassifier's parameters, device="auto" | "cpu" | "cuda" among them.
    Checkpoints go to `out/checkpoints`: each fold's training (every validated epoch, and every
    `checkpoint_every` minutes) and each finished fold's result; resume=True skips the finished folds and
    continues the unfinished one. They are removed once the run finished.
    """
    from titans_ts.checkpointing import (  # training only
        check_run_folder,
        finish_run_folder,
        prepare_run_folder,
        run_folder_lock,
    )
    from titans_ts.training import resolve_device

    resolve_device(params.get("device", "auto"))  # a bad device fails before any data is read
    DNAClassifier(**params, checkpoint_minutes=checkpoint_every).check_params()  # so do impossible settings
    pretrained = params.get("pretrained", True)
    if params.get("architecture", "titans") == "titans" and isinstance(pretrained, (str, Path)):
        from genomics.pretrained import load_backbone_weights

        load_backbone_weights(pretrained)  # and a folder that holds no pretrained model (it failed in fold 1)
    main = is_main_process()  # under DDP, rank 0 writes files, once
    if out is not None:  # before any data is read (the default folder is named after the task: checked once known)
        out = Path(out).expanduser()  # "~/runs/x": the home folder's, as the shell reads it
        with run_folder_lock(out):  # a folder another run is writing is said as such, not as its checkpoints
            check_run_folder(out, overwrite, resume)
    started = time.time()
    if protocol not in ("auto", "official", "cv"):
        raise ConfigError(f"protocol must be 'auto', 'official' or 'cv'; got {protocol!r}.")
    if refit and protocol == "official":  # before any data is read (or downloaded)
        raise ConfigError(REFIT_NEEDS_CV.format(dataset))
    own = load_labelled(dataset, labels)
    if own is not None:
        if len(own.classes) < 2:
            raise DataValidationError(
                f"{own.source}: every sequence has the label {own.classes[0]!r}; a classifier needs at least two "
                "classes. Check the label column (or --labels)."
            )
        task_name, data, train, test = Path(dataset).name, own, None, None
        available = "cv"
        note = f"your data ({len(own)} sequences, {len(own.classes)} classes)"
    else:
        task = load_task(dataset, data_root=data_root, download=protocol == "official")
        task_name, available, note = task.name, task.protocol, task.note
        data, train, test = task.labelled, task.train, task.test
    chosen = available if protocol == "auto" else protocol
    if refit and chosen != "cv":  # auto chose the official split: before the run folder is made (and cleared)
        raise ConfigError(REFIT_NEEDS_CV.format(task_name))
    if chosen == "official" and available != "official":
        where = (
            "your own data: it has no official train/test split. Use --protocol cv, or fine-tune on one file and "
            "evaluate on another (titans-dna evaluate)"
            if own is not None
            else f"the official train/test split is not available here ({note}). Use --protocol cv, or put the "
            "full data in ~/.genomic_benchmarks/"
        )
        raise ConfigError(f"{task_name}: {where}.")
    if chosen == "cv" and data is None:  # official data present, CV asked: pool train and test
        data = _pool(train, test)
        note = f"{len(data)} sequences: the {note}, pooled"
    # the folds are drawn before the run folder is made: --folds 1, or more folds than a class has sequences, is
    # refused with nothing written
    splits = stratified_folds(data, folds, params.get("seed", 0)) if chosen == "cv" else None
    trained_on = training_record(task_name, chosen, train if data is None else data)
    label = task_name.split(".")[0] if own is not None else task_name  # a file by its stem, as titans-ts files it
    out = Path(out or f"runs/dna-{label}-{params.get('block', 'lmm')}-s{params.get('seed', 0)}")
    with run_folder_lock(out):  # no other run writes into this folder meanwhile
        checkpoints = prepare_run_folder(out, overwrite, resume)
        labels = (train if data is None else data).label_names()
        settings = DNAClassifier(**params).get_params()  # every one: --epochs 12 and the default 12 are one setting
        kept = {k: v for k, v in settings.items() if k not in RUN_ONLY}  # another device may go on with the run
        recorded = {**trained_on, "labels": data_fingerprint([str(label) for label in labels]), "params": kept}
        cv = {"folds": folds, "refit": refit}  # a resume that adds or drops --refit is refused: the run's model differs
        check_run_settings(checkpoints, recorded | (cv if chosen == "cv" else {}), resume, main)
        run = _FinetuneRun(out, checkpoints, params, checkpoint_every, resume, main, trained_on, on_fold)
        result = _official(run, train, test) if chosen == "official" else _cross_validated(run, data, splits, refit)
        if not main:
            return {"out": str(out), "rank": rank_and_world()[0]}
        result.update(
            {
                "dataset": task_name,
                "note": note,
                "classes": [str(c) for c in data.classes] if data else [str(c) for c in train.classes],
                "params": params,
                "wall_seconds": time.time() - started,  # of this command: with --resume, the part it ran
                "resumed": resume,
                "titans_ts_version": __version__,
            }
        )
        atomic_write_text(out / "metrics.json", json.dumps(result, indent=1, default=json_value))
        histories = run_histories(result)
        finish_run_folder(checkpoints, interrupted=any(h.get("stop_reason") == "interrupted" for h in histories))
        result["out"] = str(out)
        return result


@dataclasses.dataclass
class _FinetuneRun:
    """What each training of a fine-tuning run shares: its folders, settings and whether it resumes."""

    out: Path
    checkpoints: Path
    params: dict
    checkpoint_every: float | None
    resume: bool
    main: bool  # rank 0 (or the one process): the one that writes
    trained_on: dict
    on_fold: object

    def classifier(self, name: str) -> tuple[DNAClassifier, bool]:
        """A classifier checkpointing to checkpoints/<name>, and whether it resumes from there."""
        from titans_ts.checkpointing import latest_checkpoint

        folder = self.checkpoints / name
        options = {"checkpoint_dir": str(folder), "checkpoint_minutes": self.checkpoint_every}
        return DNAClassifier(**self.params, **options), self.resume and latest_checkpoint(folder) is not None

    def announce(self, fold: int, folds: int, train: int, test: int) -> None:
        if self.on_fold is not None and self.main:
            self.on_fold(fold, folds, train, test)


def _official(run: _FinetuneRun, train: LabelledSequences, test: LabelledSequences) -> dict:
    """Fine-tune on the official train split, score on its test split; the model saved is this one."""
    from titans_ts.checkpointing import forget_unstarted_run

    model, again = run.classifier("official")
    try:
        model.fit(train.sequences, train.label_names(), resume=again)
    except BaseException:  # Ctrl-C before the first checkpoint, an error: no empty run folder is left
        forget_unstarted_run(run.out)
        raise
    accuracy = model.score(test.sequences, test.label_names())
    if run.main:
        save_with_record(model, run.out / "model", run.trained_on)
    return {"protocol": "official", "accuracy": accuracy, "test_sequences": len(test), "history": model.history_}


def _cross_validated(run: _FinetuneRun, data: LabelledSequences, splits: list, refit: bool) -> dict:
    """Stratified k-fold CV: a training per fold (finished folds kept for --resume), then with `refit` one on
    every sequence; the model saved is the refit's, else the first fold's."""
    from titans_ts.checkpointing import forget_unstarted_run

    folds, checkpoints = len(splits), run.checkpoints
    fold_results, first_model = [], None
    for index, (train_index, test_index) in enumerate(splits):
        done = checkpoints / f"fold{index}.json"
        if run.resume and done.is_file():  # finished before the run was stopped
            fold_results.append(json.loads(done.read_text(encoding="utf-8")))
            first_model = first_model or DNAClassifier.load(checkpoints / "fold0-model")
            continue
        fold_train, fold_test = data.subset(train_index), data.subset(test_index)
        run.announce(index, folds, len(fold_train), len(fold_test))
        model, again = run.classifier(f"fold{index}")
        try:
            model.fit(fold_train.sequences, fold_train.label_names(), resume=again)
        except BaseException as exc:  # a Ctrl-C says what the run kept, and how to go on
            if not index:  # nothing to resume: no empty run folder is left either
                forget_unstarted_run(run.out)
            if not isinstance(exc, KeyboardInterrupt):
                raise
            kept = f"the {index} finished fold(s) are kept in {checkpoints}: the same command with --resume goes on"
            kept = kept if index else "no fold had finished"
            raise KeyboardInterrupt(f"{exc} (fold {index + 1} of {folds}; {kept})") from None
        fold_results.append(
            {
                "fold": index,
                "accuracy": model.score(fold_test.sequences, fold_test.label_names()),
                "test_sequences": len(fold_test),
                "history": model.history_,
            }
        )
        if model.history_["stop_reason"] != "interrupted" and run.main:
            if index == 0:
                save_with_record(model, checkpoints / "fold0-model", run.trained_on)
            atomic_write_text(done, json.dumps(fold_results[-1], default=json_value))
        first_model = first_model or model
        if model.history_["stop_reason"] == "interrupted":  # Ctrl-C: keep what is done, run no more folds
            break
    finished = [f["accuracy"] for f in fold_results if f["history"]["stop_reason"] != "interrupted"]
    refitted = None
    if refit and len(finished) == folds:  # the model to keep, trained on every sequence
        run.announce(folds, folds, len(data), 0)
        refitted, again = run.classifier("all")
        try:
            refitted.fit(data.sequences, data.label_names(), resume=again)
        except KeyboardInterrupt as exc:  # say what the run kept, and how to go on
            raise KeyboardInterrupt(
                f"{exc} (the refit on all sequences; the {folds} finished folds are kept in {checkpoints}: the "
                "same command with --resume goes on)"
            ) from None
    refit_done = refitted is not None and refitted.history_["stop_reason"] != "interrupted"
    if run.main and (refit_done or not refit):  # only once every training has finished: else no model
        save_with_record(refitted if refit_done else first_model, run.out / "model", run.trained_on)
    protocol = f"stratified {folds}-fold cross-validation"
    if len(finished) < folds:  # interrupted: the mean is of the finished folds only, and says so
        protocol += f", interrupted with {len(finished)} of {folds} folds finished (--resume finishes it)"
    elif refit and not refit_done:
        protocol += ", the refit on all sequences interrupted (--resume finishes it)"
    result = {
        "protocol": protocol,
        "complete": len(finished) == folds and (refit_done or not refit),
        "accuracy": statistics.mean(finished) if finished else None,
        "accuracy_std": statistics.stdev(finished) if len(finished) > 1 else None,
        "folds": fold_results,
        "saved_model": _saved_model(refit, refit_done, len(data), fold_results, len(finished) == folds),
    }
    if refitted is not None:
        result["refit"] = {"sequences": len(data), "history": refitted.history_}
    return result


RUN_SETTINGS = SETTINGS_FILE  # at the top of a run's checkpoint folder (each fold's are in its own folder)


def check_run_settings(checkpoints: Path, settings: dict, resume: bool, main: bool = True) -> None:
    """A resumed fine-tuning run goes on only with the data, protocol, folds and settings it was started with
    (its finished folds are kept, not retrained: another file or --folds would be answered by them); a start
    records them. A run started before they were recorded is resumed as it is; a setting added since it started
    is not compared."""
    path = checkpoints / RUN_SETTINGS
    settings = json.loads(json.dumps(settings, default=json_value))  # as the file holds them
    if resume and path.is_file():
        saved = json.loads(path.read_text(encoding="utf-8"))
        saved, now = ({**record, **record.get("params", {})} for record in (saved, settings))  # each by its name
        differences = changes(saved, now, set(saved) - {"params"})  # a setting added since: not in `saved`
        if differences:
            raise ResumeMismatchError(
                f"cannot resume {checkpoints.parent} with other data or settings than it was started with "
                f"({'; '.join(differences)}): resume it as it was started, or start again with --overwrite.",
                differences,
            )
    elif main:
        atomic_write_text(path, json.dumps(settings, indent=1))


def training_record(dataset: str, protocol: str, data: LabelledSequences) -> dict:
    """What a fine-tuned model records about its data, so that `evaluate` can tell whether a score is held out:
    the task (or file name), the protocol, and a fingerprint of the sequences its folds (or its split) drew from."""

    return {"dataset": dataset, "protocol": protocol, "sequences": data_fingerprint(data.sequences)}


def save_with_record(model: DNAClassifier, folder: Path, trained_on: dict) -> None:
    """Save `model` with `trained_on` (training_record) in its history (a copy: the run's own records keep theirs)."""
    model.history_ = {**model.history_, "trained_on": trained_on}
    model.save(folder)


def run_histories(result: dict) -> list[dict]:
    """Every training of a fine-tuning run's result: each fold's and the refit's, or the official split's."""
    folds = [f["history"] for f in result.get("folds", [])]
    return [*folds, result["refit"]["history"]] if "refit" in result else folds or [result["history"]]


def _saved_model(refit: bool, refit_done: bool, sequences: int, fold_results: list, complete: bool) -> str:
    """What a CV run saved as its model/, in words."""
    if refit_done:
        return f"refit on all {sequences} sequences after the cross-validation (less its validation split)"
    if refit:
        stopped = "the refit on all sequences" if complete else "the folds"
        return f"none yet: {stopped} did not finish (--resume finishes the run)"
    if not fold_results:
        return "the first fold's model (fold 0 in metrics.json, 1 in the printed table)"
    trained = sequences - fold_results[0]["test_sequences"]
    return (
        f"the first fold's model (fold 0 in metrics.json, 1 in the printed table; trained on {trained} of the "
        f"{sequences} sequences, less its validation split; --refit trains it on all)"
    )


def finetune_chosen(
    dataset: str,
    scratch: bool = False,
    pretrained=None,
    block: str | None = None,
    dim: int | None = None,
    layers: int | None = None,
    stem_kernel: int | None = None,
    stride: int | None = None,
    epochs: int | None = None,
    batch_size: int | None = None,
    lr: float | None = None,
    train_crop: int | None = None,
    **options,
) -> dict:
    """`finetune` with the choices of `titans-dna finetune`, where None means not given (the classifier's default).

    scratch: start from random weights, shaped by block, dim, layers, stem_kernel and stride. Otherwise the
    model starts from `pretrained` (a folder written by `pretrain`; None: the shipped model), which brings its
    own architecture: shaping it too is a ConfigError, raised before any work. train_crop=0: whole sequences.
    options: the rest of `finetune`'s arguments (DNAClassifier's other parameters among them).
    """
    if scratch and pretrained:
        raise ConfigError(
            f"--scratch starts from random weights and --pretrained {pretrained} from that model's: give one of them."
        )
    architecture = {"block": block, "dim": dim, "layers": layers, "stem_kernel": stem_kernel, "stride": stride}
    architecture = {k: v for k, v in architecture.items() if v is not None}
    if architecture and not scratch:
        raise ConfigError(
            f"--{next(iter(architecture)).replace('_', '-')} shapes a new model: add --scratch "
            "(a pretrained model brings its own architecture)."
        )
    recipe = {"epochs": epochs, "batch_size": batch_size, "lr": lr}
    recipe = {k: v for k, v in recipe.items() if v is not None}
    if train_crop is not None:
        recipe["train_crop"] = train_crop or None
    # a folder by its absolute path: the saved model's setting still finds it when refitted from another folder
    start = False if scratch else (str(Path(pretrained).resolve()) if pretrained else True)
    return finetune(dataset, pretrained=start, **options, **architecture, **recipe)


def leakage_sequences(tasks, data_root=None) -> list[str]:
    """The evaluation sequences whose k-mers pretraining must not see (DESIGN.md §4): of each task, its
    split for cross-validation when that is what is here, else its official train and test splits; a file (a
    CSV with a seq column, or FASTA) gives all its sequences."""
    sequences = []
    for name in tasks:
        path = Path(name).expanduser()
        if names_a_file(name):  # the user's own evaluation data
            check_readable(path)
            if is_csv(path):
                sequences += read_unlabelled_csv(path)[0]
            else:
                sequences += [sequence for _, sequence in read_fasta(path)]
            continue
        try:
            task = load_task(name, data_root=data_root)
        except DatasetNotFoundError as exc:  # the advice for a task to fine-tune on asks for labels; this needs none
            own = "To keep your own evaluation sequences out, give their file (a CSV with a seq column, or FASTA)."
            raise DatasetNotFoundError(str(exc).replace(OWN_DATA, own)) from None
        splits = [task.labelled] if task.labelled else [task.train, task.test]
        sequences += [sequence for split in splits if split for sequence in split.sequences]
    return sequences


def pretrain(corpus, out, exclude=("enhancer_cohn", "nontata_promoters"), data_root=None, **options) -> dict:
    """Pretrain the DNA language model (`genomics.pretraining.pretrain`, whose options these are) with the
    leakage guard set from tasks: corpus windows that share a k-mer with a sequence of an `exclude` task
    (`leakage_sequences`) are dropped. Returns the report."""
    evaluation = leakage_sequences(exclude, data_root)
    return pretraining.pretrain(corpus, out, evaluation_sequences=evaluation, **options)


def _pool(train: LabelledSequences, test: LabelledSequences) -> LabelledSequences:
    return LabelledSequences(
        train.sequences + test.sequences,
        np.concatenate([train.labels, test.labels]),
        train.classes,
        f"{train.source} + {test.source}",
    )
