"""Labelled DNA sequences in memory: checked, their classes sorted by name (so class index i means the same
thing in every run), the warnings their bases call for; stratified cross-validation folds."""

from __future__ import annotations

import numbers
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from genomics.tokenizer import check_bases
from titans_ts.errors import (
    ConfigError,
    DataValidationError,
    DuplicateNamesWarning,
    UnknownBasesWarning,
    UracilWarning,
)
from titans_ts.io import plain

# The cells (and text labels) read as no label: pandas' default missing-value strings (R's write.csv writes NA),
# exact case, so that a class named "none" stays a class.
MISSING_LABELS = frozenset(
    ["", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>", "N/A"]
    + ["NA", "NULL", "NaN", "None", "n/a", "nan", "null"]
)


@dataclass
class LabelledSequences:
    """Sequences with labels as class indices into `classes` (sorted by name)."""

    sequences: list[str]
    labels: np.ndarray
    classes: list = field(default_factory=list)
    source: str = ""

    def __len__(self) -> int:
        return len(self.sequences)

    def subset(self, index) -> LabelledSequences:
        index = np.asarray(index)
        return LabelledSequences([self.sequences[i] for i in index], self.labels[index], self.classes, self.source)

    def label_names(self) -> list:
        """Each sequence's label as its class (what an estimator's fit and score take)."""
        return [self.classes[i] for i in self.labels]

    def class_counts(self) -> dict:
        counts = np.bincount(self.labels, minlength=len(self.classes))
        return {str(c): int(n) for c, n in zip(self.classes, counts, strict=True)}


_URACIL_WARNED: set[int] = set()  # hashes of the sequences holding U already warned about in this process


def warn_uracil(sequences: list[str], source: str) -> None:
    """RNA written as RNA loses a quarter of its bases to N in a DNA model: say so, once per sequence (a CV run
    checks each fold's sequences again, and Lightning's warning filters undo Python's own once-only rule)."""
    import warnings

    holding = [i for i, sequence in enumerate(sequences, 1) if "U" in sequence or "u" in sequence]
    new = {hash(sequences[i - 1]) for i in holding} - _URACIL_WARNED
    if new:
        _URACIL_WARNED.update(new)
        warnings.warn(
            f"{source}: {len(holding)} of {len(sequences)} sequence(s) hold U (uracil, an RNA base; the first is "
            f"sequence {holding[0]}), which a DNA model reads as N (unknown): if they are RNA, write each U as T "
            "first (sequence.replace('U', 'T')).",
            UracilWarning,
            stacklevel=3,
        )


def warn_unknown_only(sequences: list[str], source: str, names=None) -> None:
    """A sequence of only N (or other ambiguity codes) still gets a prediction, though one that rests on no
    bases: one warning names such sequences (the first few of many)."""
    import warnings

    unknown = [i for i, sequence in enumerate(sequences, 1) if set(sequence.upper()).isdisjoint("ACGT")]
    if not unknown:
        return
    listed = first_few([f"{i}" + (f" ({names[i - 1]!r})" if names is not None else "") for i in unknown])
    warnings.warn(
        f"{source}, sequence{'s' if len(unknown) > 1 else ''} {listed} hold{'s' if len(unknown) == 1 else ''} "
        "no A, C, G or T (only N or other unknown bases): the prediction rests on no sequence information; do not "
        "read it as evidence of a class.",
        UnknownBasesWarning,
        stacklevel=3,
    )


def first_few(items, limit: int = 5) -> str:
    """Items joined for a message, the first `limit` of many and how many more."""
    items = list(items)
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more


def warn_duplicate_names(names, source: str) -> None:
    """One warning naming the record names given to more than one sequence (the first few of many)."""
    import warnings
    from collections import Counter

    repeated = [name for name, count in Counter(names or []).items() if count > 1]
    if not repeated:
        return
    warnings.warn(
        f"{source}: {len(repeated)} name(s) belong to more than one sequence ({first_few(map(repr, repeated))}); "
        "their predictions keep the input's order, but the name column does not tell them apart: give each record "
        "its own name.",
        DuplicateNamesWarning,
        stacklevel=3,
    )


def make_labelled(sequences, labels, source: str = "the data", classes=None, names=None, known=()) -> LabelledSequences:
    """Validate sequences (tokenizer rules) and labels; map labels to indices of the sorted classes. `names`
    (a FASTA file's record names) are shown beside the sequence's number in errors. `known`: labels that are
    labels even when written as a missing value is ('NA': a fitted model's own class, when scoring it)."""
    sequences, labels = as_list(sequences, "sequences", source), as_list(labels, "labels", source)
    if len(sequences) != len(labels):
        raise DataValidationError(f"{source}: {len(sequences)} sequences but {len(labels)} labels.")
    if not sequences:
        raise DataValidationError(f"{source}: no sequences.")
    for i, sequence in enumerate(sequences, 1):  # counted from 1 in errors, as a reader of the file counts
        named = f" ({names[i - 1]!r})" if names is not None else ""
        check_bases(sequence, f"{source}, sequence {i}{named}")
    warn_uracil(sequences, source)
    known = {*(classes or ()), *known}
    for row, label in enumerate(labels, 1):
        if np.ndim(label) != 0:
            raise DataValidationError(
                f"{source}: label {row} is {type(label).__name__} {np.shape(label)}; give one class label per "
                "sequence (a 1-D list, not one-hot rows)."
            )
        missing_text = isinstance(label, str) and label.strip() in MISSING_LABELS and label not in known
        if label is None or pd.isna(label) or missing_text:  # (a model's own class named "NA" stays one)
            named = f" ({names[row - 1]!r})" if names is not None else ""
            raise DataValidationError(
                f"{source}: sequence {row}{named} has no label ({plain(label)!r}: an empty cell, NA, N/A, NaN, null "
                "or None, or that as text, as str() writes a missing value): give it one, or leave the sequence out."
            )
    classes = sorted(set(labels), key=_sort_key) if classes is None else list(classes)
    lookup = {label: i for i, label in enumerate(classes)}
    unknown = [label for label in labels if label not in lookup]
    if unknown:
        raise DataValidationError(
            f"{source}: label {plain(unknown[0])!r} is not one of the classes {[plain(c) for c in classes]}."
        )
    return LabelledSequences(
        [s.upper() for s in sequences], np.array([lookup[label] for label in labels]), classes, source
    )


# The names a sequence or a label column goes by when the default ('seq', 'label') is not in a file (any case).
SEQUENCE_NAMES = ("seq", "sequence", "sequences", "dna")
LABEL_NAMES = ("label", "labels", "class", "target", "y")


def column_by_alias(columns, aliases: tuple):
    """The column that goes by the first of `aliases` (in their order, not the columns': a file headed y,Label reads
    Label as its labels) that any column goes by, its header stripped and in any case; None when none does. The
    one rule by which every reader here finds a column by its other names (find_column, label_columns)."""
    return next((c for alias in aliases for c in columns if str(c).strip().lower() == alias), None)


def as_list(values, what: str, source: str) -> list:
    """A list of the given sequences or labels; one string or None is a mistake, not a list of letters."""
    if values is None or isinstance(values, (str, bytes)):
        got = "None" if values is None else "one string (wrap one sequence in a list)"
        raise DataValidationError(f"{source}: expected a list of {what}; got {got}.")
    if isinstance(values, pd.DataFrame):  # a list of a frame is its column names
        column = column_by_alias(values.columns, SEQUENCE_NAMES if what == "sequences" else LABEL_NAMES)
        example = f"df[{column!r}]" if column is not None else "df['<column>']"
        raise DataValidationError(
            f"{source}: expected a list of {what}; got a DataFrame of columns {list(values.columns)}: give the "
            f"column of {what} (a Series, e.g. {example})."
        )
    if isinstance(values, (dict, set, frozenset)):  # a list of a dict is its keys; a set has no order
        kind = type(values).__name__
        hint = "its values in the sequences' order" if isinstance(values, dict) else "one per sequence, in order"
        raise DataValidationError(f"{source}: expected a list of {what}; got a {kind}: give a list ({hint}).")
    if isinstance(values, np.ndarray) and values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]  # a column vector (y.reshape(-1, 1)): one per row, as scikit-learn reads it
    try:
        return list(values)
    except TypeError:
        raise DataValidationError(f"{source}: expected a list of {what}; got {type(values).__name__}.") from None


def class_array(classes: list) -> np.ndarray:
    """The sorted classes as `classes_`: numbers as a numeric array (so that sklearn's metrics read the
    predictions as class labels), True/False as booleans (as objects sklearn called them "unknown" targets),
    anything else as objects."""
    if all(isinstance(c, (bool, np.bool_)) for c in classes):
        return np.array(classes, dtype=bool)
    numeric = all(isinstance(c, (int, float, np.integer, np.floating)) and not isinstance(c, bool) for c in classes)
    return np.array(classes) if numeric else np.array(classes, dtype=object)


def _sort_key(label):
    """Numbers sort numerically, strings by name; a mix sorts numbers first."""
    return (0, float(label), "") if isinstance(label, (int, float, np.integer, np.floating)) else (1, 0.0, str(label))


# How a label's kind is named: (one such label, the classes of that kind).
LABEL_KINDS = {"bool": ("True or False", "True/False"), "number": ("a number", "numbers"), "text": ("text", "text")}


def label_kind(label) -> str:
    """A label's kind: "bool", "number", "text" or its type's name (a label that is no class must share a class's)."""
    if isinstance(label, (bool, np.bool_)):
        return "bool"
    if isinstance(label, numbers.Number):
        return "number"
    return "text" if isinstance(label, str) else type(label).__name__


def check_one_kind(labels, source: str) -> None:
    """The labels a classifier's classes are made of are of one kind: the number 1 and the text '1' would be two
    classes, True and 1 one (a column read partly as numbers, or labels joined from two sources), so a mix is
    refused."""
    kinds = {}
    for label in labels:
        kinds.setdefault(label_kind(label), label)
    if len(kinds) > 1:
        shown = ", ".join(f"{LABEL_KINDS.get(k, (k,))[0]} ({plain(label)!r})" for k, label in kinds.items())
        raise DataValidationError(
            f"{source}: the labels mix kinds: {shown}; as classes they would not mean what they say (1 and '1' "
            "two classes, True and 1 one). Give every label as one kind, e.g. all as text or all as numbers."
        )


def check_not_continuous(labels, source: str) -> None:
    """Labels that are fractional numbers (0.37, 1.25, ...) are a regression target, not classes: each value
    would become a class of its own, so they are refused (as scikit-learn's classifiers refuse them)."""
    fractional = [
        label for label in labels
        if isinstance(label, (float, np.floating)) and np.isfinite(label) and not float(label).is_integer()
    ]  # fmt: skip
    if fractional:
        raise DataValidationError(
            f"{source}: the labels are continuous numbers ({plain(fractional[0])!r}, ...): a classifier needs class "
            "labels, each a class (0/1, or names); bin a continuous target into classes first."
        )


def check_label_kinds(labels, classes: list, source: str) -> None:
    """A label that is not a class is one the classifier cannot predict (scored as wrong); but one of a kind no
    class has (the text '1' where the classes are the numbers 0 and 1) is a mistake in the labels: a
    DataValidationError naming it."""
    kinds = {label_kind(c) for c in classes}
    known = set(classes)
    strange = next((label for label in labels if label not in known and label_kind(label) not in kinds), None)
    if strange is not None:
        kind = label_kind(strange)
        named = " and ".join(sorted(LABEL_KINDS.get(k, (k, k))[1] for k in kinds))
        raise DataValidationError(
            f"{source}: label {plain(strange)!r} is {LABEL_KINDS.get(kind, (kind,))[0]}, but the classes "
            f"{[plain(c) for c in classes]} are {named}: give the labels as fit was given them (a class fit never "
            "saw counts as wrong, but a label of another kind is a mistake)."
        )


def checked_sample_weight(sample_weight, n: int, source: str) -> np.ndarray | None:
    """sample_weight as one finite, non-negative float per sequence (not all 0), or None for equal weights; else
    a DataValidationError saying what is wrong."""
    if sample_weight is None:
        return None
    try:
        weights = np.asarray(sample_weight, dtype=float)
    except (TypeError, ValueError):
        raise DataValidationError(f"{source}: sample_weight must be numbers, one per sequence.") from None
    if weights.shape != (n,):
        got = {0: "is one number", 1: f"holds {weights.size} weight(s)"}.get(weights.ndim, f"has shape {weights.shape}")
        raise DataValidationError(f"{source}: {n} sequences but sample_weight {got}: give one weight per sequence.")
    bad = np.flatnonzero(~np.isfinite(weights) | (weights < 0))
    if bad.size:
        raise DataValidationError(
            f"{source}: sample_weight {bad[0] + 1} is {weights[bad[0]]}; weights must be finite and not negative."
        )
    if not weights.sum() > 0:
        raise DataValidationError(f"{source}: every sample_weight is 0: no sequence would count.")
    return weights


def stratified_folds(data: LabelledSequences, folds: int = 5, seed: int = 0):
    """(train_index, test_index) pairs of stratified k-fold CV with a fixed seed."""
    from sklearn.model_selection import StratifiedKFold

    if folds < 2:
        raise ConfigError(f"folds must be >= 2; got {folds}.")
    counts = data.class_counts()
    small = {c: n for c, n in counts.items() if n < folds}
    if small:
        raise DataValidationError(
            f"{data.source}: class(es) {small} have fewer sequences than folds={folds}; "
            "stratified CV needs at least one per fold. Use fewer folds or add sequences of those classes."
        )
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return list(splitter.split(np.zeros(len(data)), data.labels))
