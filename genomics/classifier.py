"""DNAClassifier: scikit-learn-style sequence classification with the Titans DNA model."""

from __future__ import annotations

import contextlib
import math
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from sklearn.base import ClassifierMixin
from sklearn.model_selection import train_test_split

from genomics.data.labelled import (
    as_list,
    check_label_kinds,
    check_not_continuous,
    check_one_kind,
    checked_sample_weight,
    class_array,
    make_labelled,
    warn_unknown_only,
)
from genomics.model import DNAModelConfig, DNASequenceClassifier
from genomics.pretrained import (
    ARCHITECTURE_PARAMS,
    load_backbone_weights,
    pretrained_architecture,
    pretrained_path,
    pretrained_provenance,
)
from titans_ts.errors import (
    ConfigError,
    DataValidationError,
    is_integer,
    is_real,
    positive_problems,
    refuse,
    training_problems,
)
from titans_ts.estimator_base import RUN_ONLY, TitansEstimator
from titans_ts.io import load_model_dir, mismatched_model_dir, plain, save_model_dir
from titans_ts.version import __version__

PROGRESS_BASES = 100_000  # a prediction reading fewer bases (both strands counted) is over before a bar would help


@contextlib.contextmanager
def prediction_progress(sequences: int, bases: int, enabled: bool):
    """Yields `advance(bases_read)`, which moves a progress bar on stderr: shown only for long work
    (PROGRESS_BASES), on a terminal, by the main process, and when `enabled` (the estimator's `progress`)."""
    from rich import progress
    from rich.console import Console

    from titans_ts.distributed import is_main_process

    console = Console(stderr=True)
    if not (enabled and bases >= PROGRESS_BASES and console.is_terminal and is_main_process()):
        yield lambda _: None
        return
    columns = (progress.TextColumn("{task.description}"), progress.BarColumn(), progress.TaskProgressColumn())
    columns += (progress.TimeElapsedColumn(), progress.TimeRemainingColumn())
    with progress.Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(f"predicting {sequences} sequence(s)", total=bases)
        yield lambda read: bar.advance(task, read)


ARCHITECTURES = ("titans", "cnn", "transformer")  # ours, and the GenomicBenchmarks CNN and a small Transformer


class DNAClassifier(ClassifierMixin, TitansEstimator):
    """Fine-tunes the Titans DNA backbone (by default the shipped pretrained one) with a linear head.

    fit(sequences, y): sequences are strings of A/C/G/T/N (lowercase and IUPAC codes accepted); y any
    labels (classes_ sorted). A stratified `val_fraction` of the training data drives early stopping.
    pretrained: True (the shipped weights), a folder written by `titans-dna pretrain`, or False.
    Training sees each sequence on a random strand (random_strand) and, with train_crop, a random window
    of that many bases (within the first max_length); predict_proba averages both strands (strand_average).
    max_length: read only the first max_length bases of each sequence, in training and prediction, both
    strands the same window (a CutSequencesWarning says so when it cuts any; None: whole sequences).
    precision="bf16-mixed"
    runs projections and MLPs in bfloat16 (the memory's test-time learning stays fp32).
    stem_kernel, stride: the local stem before the memory: a causal convolution over `stem_kernel` bases
    (0: none), plus with stem_kmer=k an embedding of the k-mer ending at each base, then one memory token
    per `stride` bases (stem_pool: the mean or the max of their features; stem_levels > 1: a CNN pyramid of
    pool-by-2 and convolution steps on the way). layers=0 keeps the stem, pooling and head only
    (the ablation without memory). block: "lmm" (default), "mac", "mag" or "mal". pooling: "mean" over
    the real tokens, or "mean_max" (mean and max side by side).
    A pretrained folder brings its own architecture (dim, layers, heads, block, stem).
    architecture: "titans" (ours), or the baselines "cnn" (GenomicBenchmarks CNN) and "transformer"
    (a small Transformer), trained by the same loop from scratch.
    device: "auto" (CUDA when available, else CPU), "cpu" or "cuda": where fit and predict run; results
    come back as CPU NumPy arrays, and a saved classifier loads on either device.
    """

    _fit_call = "fit(sequences, y)"  # for the not-fitted message
    # how it trains and predicts; the others (pretrained, architecture, block, dim, layers, heads, the stem's,
    # pooling) shape the fitted network, so that changing them after fit is refused until it is fitted again
    _changeable_after_fit = (*RUN_ONLY, "epochs", "batch_size", "lr", "weight_decay", "patience", "val_fraction")
    _changeable_after_fit += ("max_length", "train_crop", "random_strand", "strand_average", "precision", "seed")

    def __init__(
        self,
        pretrained: bool | str = True,
        architecture: str = "titans",
        block: str = "lmm",
        dim: int = 64,
        layers: int = 2,
        heads: int = 4,
        stem_kernel: int = 15,
        stride: int = 8,
        stem_kmer: int = 6,
        stem_pool: str = "max",
        stem_levels: int = 1,
        pooling: str = "mean",
        epochs: int = 12,
        batch_size: int = 32,
        lr: float = 1e-3,
        weight_decay: float = 0.01,
        patience: int = 2,
        val_fraction: float = 0.1,
        max_length: int | None = None,
        train_crop: int | None = None,
        random_strand: bool = True,
        strand_average: bool = True,
        precision: str = "bf16-mixed",
        seed: int = 0,
        max_minutes: float | None = None,
        progress: bool = True,
        device: str = "auto",
        checkpoint_dir: str | None = None,
        checkpoint_minutes: float | None = None,
        devices: int | str = 1,
        num_nodes: int = 1,
        strategy: str = "auto",
    ):
        self.pretrained = pretrained
        self.architecture = architecture
        self.block = block
        self.dim = dim
        self.layers = layers
        self.heads = heads
        self.stem_kernel = stem_kernel
        self.stride = stride
        self.stem_kmer = stem_kmer
        self.stem_pool = stem_pool
        self.stem_levels = stem_levels
        self.pooling = pooling
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.patience = patience
        self.val_fraction = val_fraction
        self.max_length = max_length
        self.train_crop = train_crop
        self.random_strand = random_strand
        self.strand_average = strand_average
        self.precision = precision
        self.seed = seed
        self.max_minutes = max_minutes
        self.progress = progress
        self.device = device
        self.checkpoint_dir = checkpoint_dir
        self.checkpoint_minutes = checkpoint_minutes
        self.devices = devices
        self.num_nodes = num_nodes
        self.strategy = strategy

    def check_params(self) -> None:
        """Refuse impossible settings before any data is read or any work starts (a ConfigError naming them)."""
        problems = []
        if self.precision not in ("32-true", "bf16-mixed"):
            problems.append(f"precision={self.precision!r} ('bf16-mixed' or '32-true')")
        problems += positive_problems({"epochs": self.epochs, "batch_size": self.batch_size})
        problems += training_problems(self.get_params())
        if not (is_real(self.val_fraction) and 0 < self.val_fraction < 1):
            problems.append(f"val_fraction={self.val_fraction!r} (between 0 and 1)")
        if self.max_length is not None:  # None: whole sequences
            problems += positive_problems({"max_length": self.max_length})
        if self.train_crop not in (None, 0):  # None or 0: no crop
            problems += positive_problems({"train_crop": self.train_crop})
        if not (self.pretrained is None or isinstance(self.pretrained, (bool, str, os.PathLike))):
            problems.append(
                f"pretrained={self.pretrained!r} (True: the shipped weights; a folder written by titans-dna "
                "pretrain; or False: from scratch)"
            )
        if self.architecture not in ARCHITECTURES:
            problems.append(f"architecture={self.architecture!r} (one of {', '.join(map(repr, ARCHITECTURES))})")
        elif self.architecture == "transformer" and all(is_integer(v) and v > 0 for v in (self.dim, self.heads)):
            if self.dim % self.heads:
                problems.append(f"dim={self.dim} with heads={self.heads} (the transformer's dim a multiple of heads)")
        refuse(problems)
        if self.architecture == "titans" and self.pretrained in (False, None):
            whole = ("dim", "layers", "heads", "stem_kernel", "stride", "stem_kmer", "stem_levels")
            values = {name: getattr(self, name) for name in whole}
            refuse([f"{name}={value!r} (a whole number)" for name, value in values.items() if not is_integer(value)])
            self._scratch_config()  # its shape checked (stride, dim, block, ...) before any data is read or folder made
        shaped = self._shaped_architecture()
        folder = self._pretrained_folder()
        if shaped and folder is not None:
            brought = pretrained_architecture(folder)  # a setting that says what the folder has is no conflict
            differ = {name: value for name, value in shaped.items() if brought is None or brought[name] != value}
            if differ:
                given = ", ".join(f"{name}={value!r}" for name, value in differ.items())
                has = "" if brought is None else f" ({', '.join(f'{n}={brought[n]!r}' for n in differ)})"
                raise ConfigError(
                    f"{given}: shapes a new model, but pretrained={self.pretrained!r} brings its own "
                    f"architecture{has}; pass pretrained=False to train that shape from scratch, or leave those at "
                    "their defaults."
                )
        refuse(self._crop_problems())

    def _crop_problems(self) -> list[str]:
        """A training crop shorter than the Titans stem's stride: windows of less than one token."""
        if self.architecture != "titans" or self.train_crop in (None, 0) or not is_integer(self.train_crop):
            return []
        folder, stride = self._pretrained_folder(), self.stride
        if folder is not None:  # the folder's stride (its own check says when there is none)
            stride = (pretrained_architecture(folder) or {}).get("stride", stride)
        if self.train_crop >= stride:
            return []
        return [f"train_crop={self.train_crop} (at least the stem's stride, {stride} bases: one token of the model)"]

    def _pretrained_folder(self) -> Path | None:
        """The pretrained folder a Titans backbone starts from (None: from scratch, or a baseline)."""
        if self.architecture != "titans" or self.pretrained in (False, None):
            return None
        return pretrained_path() if self.pretrained is True else Path(self.pretrained)

    def _shaped_architecture(self) -> dict:
        """The architecture parameters set away from their defaults (a pretrained backbone would ignore them)."""
        import inspect

        defaults = inspect.signature(DNAClassifier.__init__).parameters
        return {
            name: getattr(self, name) for name in ARCHITECTURE_PARAMS if getattr(self, name) != defaults[name].default
        }

    def _scratch_config(self) -> DNAModelConfig:
        """The architecture of a model trained from scratch (DNAModelConfig checks it as it is made)."""
        return DNAModelConfig(
            dim=self.dim,
            layers=self.layers,
            heads=self.heads,
            block=self.block,
            stem_kernel=self.stem_kernel,
            stride=self.stride,
            stem_kmer=self.stem_kmer,
            stem_pool=self.stem_pool,
            stem_levels=self.stem_levels,
            pooling=self.pooling,
        )

    def _build(self, n_classes: int):
        if self.architecture != "titans":
            from genomics.baselines import GenomicBenchmarksCNN, SmallTransformer

            if self.architecture == "cnn":
                return GenomicBenchmarksCNN(n_classes)
            if self.architecture == "transformer":
                return SmallTransformer(n_classes, dim=self.dim, layers=self.layers, heads=self.heads)
        folder = self._pretrained_folder()
        if folder is None:
            return DNASequenceClassifier(self._scratch_config(), n_classes)
        config, backbone = load_backbone_weights(folder)
        config = replace(config, pooling=self.pooling)  # the head is new: its pooling is the classifier's
        model = DNASequenceClassifier(config, n_classes)
        model.backbone.load_state_dict(backbone)
        return model

    def fit(self, sequences, y, resume: bool = False):
        """Train on sequences with labels y; `resume` continues from the newest checkpoint in checkpoint_dir
        (written every validated epoch, and every checkpoint_minutes; same settings and data required)."""
        from titans_ts.training import kept_random_state

        with kept_random_state():  # seeded for the fit; the caller's generators as they were after it
            return self._fit(sequences, y, resume)

    def _fit(self, sequences, y, resume: bool):
        from genomics.training import ClassifierModule, RandomView, make_loader
        from titans_ts.training import seed_everything, train_and_restore, tune_cpu_allocator

        device = self._device()  # before any work: a bad value or a missing GPU fails fast
        self.check_params()
        tune_cpu_allocator()
        data = make_labelled(sequences, y, source="the training data")
        labels = as_list(y, "labels", "the training data")
        check_one_kind(labels, "the training data")  # 0 and '1', True and 1
        check_not_continuous(labels, "the training data")  # 0.37: a regression target, each value a class
        self._warn_if_cut(data.sequences, "training sequences")
        if len(data.classes) < 2:
            raise DataValidationError(
                f"y holds one class only ({data.classes}); a classifier needs at least two: check the labels."
            )
        seed_everything(self.seed)
        index = np.arange(len(data))
        held_out = math.ceil(self.val_fraction * len(data))  # as train_test_split counts it
        # stratified when every class has two sequences and each side has room for one of each
        stratifiable = min(held_out, len(data) - held_out) >= len(data.classes)
        stratify = data.labels if stratifiable and min(data.class_counts().values()) >= 2 else None
        train_index, val_index = train_test_split(
            index, test_size=self.val_fraction, random_state=self.seed, stratify=stratify
        )
        model = self._build(len(data.classes))
        module = ClassifierModule(model, lr=self.lr, weight_decay=self.weight_decay)
        labelled = [f"{label}\t{sequence}" for sequence, label in zip(data.sequences, data.labels, strict=True)]
        checkpoint = self._checkpoint_to_resume(labelled, resume)  # one item a sequence: a refusal counts them
        view = RandomView(self.train_crop, self.random_strand, seed=self.seed)
        train = make_loader(
            [data.sequences[i] for i in train_index],
            data.labels[train_index],
            self.batch_size,
            shuffle=True,
            max_length=self.max_length,
            seed=self.seed,
            transform=view,
            shard=True,
        )
        val = make_loader(
            [data.sequences[i] for i in val_index],
            data.labels[val_index],
            2 * self.batch_size,
            max_length=self.max_length,
            shard=True,
        )
        options = self._trainer_options(
            monitor="val_loss", device=device, loader_generator=train.generator, numpy_generators=(view.rng,)
        )
        record = train_and_restore(module, train, val, checkpoint=checkpoint, **options)
        model.eval()
        self.model_ = model
        self.classes_ = class_array(data.classes)
        self.fitted_params_ = self.get_params()  # what predict and save check against (_check_fitted)
        best = record.pop("best")
        self.history_ = record | {"best_val_loss": best, "device": str(device)}
        if self._pretrained_folder() is not None:
            self.history_["pretrained_from"] = pretrained_provenance(self._pretrained_folder())
        return self

    def predict_proba(self, sequences) -> np.ndarray:
        """Class probabilities, (sequences x classes) with rows summing to 1, the columns in the order of
        `classes_` (sorted), both strands averaged with strand_average. Sequences are read as fit reads them
        (A/C/G/T/N in any case, IUPAC codes; with max_length, their first max_length bases, said by a
        CutSequencesWarning)."""
        self._check_fitted()
        sequences = as_list(sequences, "sequences", "the input sequences")
        make_labelled(sequences, [0] * len(sequences), source="the input sequences")  # validates, names errors
        warn_unknown_only(sequences, "the input sequences")
        return self._checked_probabilities(sequences)

    def _checked_probabilities(self, sequences: list) -> np.ndarray:
        """predict_proba of sequences already validated (a caller that knows their file names it in errors)."""
        from genomics.tokenizer import reverse_complement_ids

        self._warn_if_cut(sequences, "sequences")
        strands = 2 if self.strand_average else 1
        bases = strands * sum(min(len(s), self.max_length or len(s)) for s in sequences)
        with prediction_progress(len(sequences), bases, self.progress) as advance:
            probabilities = self._probabilities(sequences, None, advance)
            if self.strand_average:
                probabilities = (probabilities + self._probabilities(sequences, reverse_complement_ids, advance)) / 2
        return probabilities

    def _warn_if_cut(self, sequences: list, what: str) -> None:
        """Say how many sequences max_length cuts (they were read from their first bases without a word)."""
        import warnings

        from titans_ts.errors import CutSequencesWarning

        if self.max_length is not None and any(len(s) > self.max_length for s in sequences):
            strands = " (both strands read that window)" if self.strand_average else ""
            warnings.warn(  # one text for every call: each fold of a cross-validation says it once, not again
                f"some {what} are longer than max_length={self.max_length}: the model reads the first "
                f"{self.max_length} bases of each{strands}; a model with max_length=None (in Python, "
                "set_params(max_length=None)) reads them whole.",
                CutSequencesWarning,
                stacklevel=4,
            )

    def _probabilities(self, sequences, transform, advance) -> np.ndarray:
        from genomics.batches import make_loader
        from genomics.tokenizer import PAD_ID

        device = self._device()
        self.model_.to(device).eval()
        probabilities = []
        bf16 = self.precision == "bf16-mixed"
        batch_size, max_length = 2 * int(self.batch_size), self.max_length
        batches = make_loader(sequences, batch_size=batch_size, max_length=max_length, transform=transform)
        with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            for ids, _ in batches:  # in order
                logits = self.model_(ids.to(device))
                probabilities.append(torch.softmax(logits.float(), dim=-1).double().cpu().numpy())
                advance(int((ids != PAD_ID).sum()))
        probabilities = np.concatenate(probabilities)
        return probabilities / probabilities.sum(axis=1, keepdims=True)  # rows sum to 1 in float64 too

    def predict(self, sequences) -> np.ndarray:
        """The most probable class of each sequence (an array of `classes_`' labels; `predict_proba`'s argmax)."""
        probabilities = self.predict_proba(sequences)
        return self.classes_[probabilities.argmax(axis=1)]

    def score(self, X, y, sample_weight=None) -> float:
        """Accuracy, as scikit-learn's: the (weighted) share of the sequences X predicted as labelled in y. A label
        that is not among classes_ (a class fit never saw, as when a rare class lands in a cross-validation test
        fold only) counts as wrong: the classifier cannot predict it. Refused, naming what is wrong: sequences it
        cannot read, y that is not one label per sequence (or misses one), a label of another kind than every
        class (the text '1' where the classes are numbers), sample_weight that is not one weight per sequence."""
        self._check_fitted()
        source = "the scored data"
        classes = self.classes_.tolist()
        data = make_labelled(X, y, source=source, known=classes)  # one readable sequence and label each
        check_label_kinds(data.classes, classes, source)
        weights = checked_sample_weight(sample_weight, len(data), source)
        warn_unknown_only(data.sequences, source)
        predicted = self._checked_probabilities(data.sequences).argmax(axis=1)
        index = {label: i for i, label in enumerate(classes)}
        truth = np.array([index.get(label, -1) for label in data.classes])[data.labels]  # -1: never predicted
        return float(np.average(predicted == truth, weights=weights))

    def save(self, path) -> Path:
        """Write path/model.safetensors and path/config.json (all or nothing; no pickle)."""
        self._check_fitted()
        config = {
            "format": "titans-ts dna classifier",
            "titans_ts_version": __version__,
            "params": self.get_params(),
            "model_config": self.model_.config.to_dict() if hasattr(self.model_, "config") else None,
            "classes": [plain(c) for c in self.classes_],
            "history": self.history_,
        }
        return save_model_dir(path, self.model_.state_dict(), config)

    @classmethod
    def load(cls, path, device: str | None = None) -> DNAClassifier:
        """Load a classifier written by `save`. The tensors are read onto the CPU; predict moves them to
        `device` ("auto", "cpu" or "cuda"; None keeps the `device` it was saved with)."""
        cls._check_load_device(device)
        tensors, config = load_model_dir(path, "titans-ts dna classifier", "DNAClassifier")
        try:
            estimator = cls(**cls._saved_params(config, device))
            if config["model_config"] is not None:
                model = DNASequenceClassifier(DNAModelConfig(**config["model_config"]), len(config["classes"]))
            else:  # a baseline architecture: rebuilt from the parameters
                model = estimator._build(len(config["classes"]))
            model.load_state_dict(tensors)
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise mismatched_model_dir(path, "DNAClassifier", exc) from None
        model.eval()
        estimator.model_, estimator.classes_ = model, class_array(config["classes"])
        estimator.history_, estimator.fitted_params_ = config["history"], estimator.get_params()
        estimator._warn_if_interrupted(path)
        return estimator
