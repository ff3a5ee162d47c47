"""Labelled DNA sequences: GenomicBenchmarks tasks (bundled or on disk), CSV, FASTA + labels; CV folds.

Classes are always sorted by name, so class index i means the same thing in every run.
"""

from __future__ import annotations

import codecs
import difflib
import functools
import gzip
import hashlib
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from genomics.tokenizer import check_bases
from titans_ts.datafiles import bundled_data_dir
from titans_ts.errors import (
    ChecksumError,
    ConfigError,
    DatasetNotFoundError,
    DataValidationError,
    DuplicateNamesWarning,
    UnknownBasesWarning,
    UracilWarning,
)
from titans_ts.io import plain

GENOMIC_BENCHMARKS_HOME = Path(os.environ.get("GENOMIC_BENCHMARKS_HOME", Path.home() / ".genomic_benchmarks"))


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


def make_labelled(sequences, labels, source: str = "the data", classes=None, names=None) -> LabelledSequences:
    """Validate sequences (tokenizer rules) and labels; map labels to indices of the sorted classes. `names`
    (a FASTA file's record names) are shown beside the sequence's number in errors."""
    sequences, labels = as_list(sequences, "sequences", source), as_list(labels, "labels", source)
    if len(sequences) != len(labels):
        raise DataValidationError(f"{source}: {len(sequences)} sequences but {len(labels)} labels.")
    if not sequences:
        raise DataValidationError(f"{source}: no sequences.")
    for i, sequence in enumerate(sequences, 1):  # counted from 1 in errors, as a reader of the file counts
        named = f" ({names[i - 1]!r})" if names is not None else ""
        check_bases(sequence, f"{source}, sequence {i}{named}")
    warn_uracil(sequences, source)
    for row, label in enumerate(labels, 1):
        if np.ndim(label) != 0:
            raise DataValidationError(
                f"{source}: label {row} is {type(label).__name__} {np.shape(label)}; give one class label per "
                "sequence (a 1-D list, not one-hot rows)."
            )
        if label is None or pd.isna(label):
            named = f" ({names[row - 1]!r})" if names is not None else ""
            raise DataValidationError(
                f"{source}: sequence {row}{named} has no label (an empty cell, NA, N/A, NaN, null or None): give it "
                "one, or leave the sequence out."
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


def as_list(values, what: str, source: str) -> list:
    """A list of the given sequences or labels; one string or None is a mistake, not a list of letters."""
    if values is None or isinstance(values, (str, bytes)):
        got = "None" if values is None else "one string"
        raise DataValidationError(f"{source}: expected a list of {what}; got {got} (wrap one sequence in a list).")
    if isinstance(values, pd.DataFrame):  # a list of a frame is its column names
        raise DataValidationError(
            f"{source}: expected a list of {what}; got a DataFrame of columns {list(values.columns)}: give the "
            f"column of {what} (a Series, e.g. df[{values.columns[0]!r}])."
        )
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


# The names a sequence or a label column goes by when the default ('seq', 'label') is not in a file (any case).
SEQUENCE_NAMES = ("seq", "sequence", "sequences", "dna")
LABEL_NAMES = ("label", "labels", "class", "target", "y")


def column_by_alias(columns, aliases: tuple):
    """The column that goes by the first of `aliases` (in their order, not the columns': a file headed y,Label reads
    Label as its labels) that any column goes by, its header stripped and in any case; None when none does. The
    one rule by which every reader here finds a column by its other names (find_column, label_columns)."""
    return next((c for alias in aliases for c in columns if str(c).strip().lower() == alias), None)


def find_column(columns, wanted: str, default: str, names: tuple) -> str:
    """`wanted` when the file has it; for the default, else the column `column_by_alias(columns, names)` finds
    (`wanted` when none goes by one of `names`: the caller names what is missing)."""
    if wanted in columns or wanted != default:
        return wanted
    found = column_by_alias(columns, names)
    return wanted if found is None else found


# The cells read as no label: pandas' default missing-value strings (R's write.csv writes NA), exact case, so
# that a class named "none" stays a class.
MISSING_LABELS = frozenset(
    ["", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>", "N/A"]
    + ["NA", "NULL", "NaN", "None", "n/a", "nan", "null"]
)


def read_labels(cells) -> list:
    """Label cells read as text, as classes: surrounding whitespace stripped ("positive " is "positive"), a
    missing-value cell (MISSING_LABELS) None, and numbers as numbers when every label is one."""
    stripped = [str(cell).strip() for cell in cells]
    labels = [None if cell in MISSING_LABELS else cell for cell in stripped]
    present = [label for label in labels if label is not None]
    try:
        numbers = pd.to_numeric(pd.Series(present, dtype=object)).tolist()
    except (ValueError, TypeError):
        return labels
    numbered = iter(numbers)
    return [None if label is None else next(numbered) for label in labels]


def read_sequence_table(path, what: str, sequence_column: str = "seq") -> tuple[pd.DataFrame, str]:
    """A CSV of sequences, its sequence column read as text (an empty cell is an empty sequence), and that
    column's name (`find_column`). Every cell is read as text: "NA" is a sequence (N, A), not a missing one."""
    frame = read_table(path, what, dtype=str, keep_default_na=False)  # one read: every column is text
    return frame, find_column(frame.columns, sequence_column, "seq", SEQUENCE_NAMES)


TABLE_SUFFIXES = (".csv", ".tsv", ".tab")


def is_csv(path: Path) -> bool:
    """A table of sequences: .csv, .tsv or .tab (any case, gzipped or not), or a .txt file that does not start as
    FASTA does; any other file is read as FASTA."""
    name = Path(path).name.lower().removesuffix(".gz")
    if name.endswith(TABLE_SUFFIXES):
        return True
    return name.endswith(".txt") and Path(path).is_file() and not sniff(path).first_line.startswith((">", ";"))


def separator(path: Path, start: FileStart | None = None) -> str:
    """A table's column separator: a tab when its header line holds tabs and no comma, else a comma (for a
    table pandas decompresses, by its name: labels.tsv.bz2). `start`: the file's start when sniffed already."""
    if Path(path).suffix.lower() in PANDAS_COMPRESSIONS:
        return "\t" if Path(path).stem.lower().endswith((".tsv", ".tab")) else ","
    header = (start or sniff(path)).first_line
    return "\t" if "\t" in header and "," not in header else ","


def read_unlabelled_csv(path) -> tuple[list[str], list[str] | None]:
    """The sequences of a CSV with a seq (or sequence) column, and its name column's values (None without one);
    an empty cell is an empty sequence."""
    frame, column = read_sequence_table(path, "a 'seq' column of sequences")
    if column not in frame.columns:
        raise ConfigError(
            f"{path}: no column 'seq' (or sequence); columns are {list(frame.columns)}. Name the column of "
            "sequences seq."
        )
    names = [str(n) for n in frame["name"]] if "name" in frame.columns else None
    return frame[column].tolist(), names


def read_csv(path, sequence_column: str = "seq", label_column: str = "label") -> LabelledSequences:
    """A CSV (or .csv.gz) with a sequence column and a label column (by default 'seq' and 'label', or a column
    named sequence / class / ... when those are absent: SEQUENCE_NAMES, LABEL_NAMES)."""
    path = Path(path)
    expected = f"a {sequence_column!r} column of sequences and a {label_column!r} column of labels"
    frame, sequence_column = read_sequence_table(path, expected, sequence_column)
    label_column = find_column(frame.columns, label_column, "label", LABEL_NAMES)
    missing = [c for c in (sequence_column, label_column) if c not in frame.columns]
    if missing:
        raise DataValidationError(
            f"{path}: no column(s) {missing}; columns are {list(frame.columns)}. Name the columns "
            f"{sequence_column!r} (or sequence) and {label_column!r} (or class), or from Python name yours: "
            "genomics.data.read_csv(path, sequence_column=..., label_column=...)."
        )
    labels = read_labels(frame[label_column])
    return make_labelled(frame[sequence_column].tolist(), labels, source=str(path))


def read_fasta(path) -> list[tuple[str, str]]:
    """(name, sequence) records of a FASTA file, gzipped or not (told by its first bytes, not its name)."""
    path = Path(path)
    start = sniff(path)
    records, name, parts = [], None, []
    with _opened(start) as stream:
        for number, line in _numbered_lines(stream, start):
            line = line.strip()
            if not line or line.startswith(";"):  # ';' starts a comment line in old FASTA files
                continue
            if line.startswith(">"):
                if name is not None:
                    records.append((name, "".join(parts)))
                name, parts = line[1:].split()[0] if len(line) > 1 else f"record{len(records) + 1}", []
            elif name is None and number == 1 and line.startswith("@"):
                raise DataValidationError(
                    f"{path}: line 1 starts with '@': this looks like FASTQ, which is not read. Convert it to FASTA "
                    "first (e.g. seqtk seq -a reads.fq > reads.fa)."
                )
            elif name is None:
                raise DataValidationError(
                    f"{path}: line {number} holds sequence before any '>' header; is this a FASTA file? (finetune "
                    "and predict also read a table of sequences, a comma-separated .csv or tab-separated .tsv with a "
                    "seq column; pretrain reads FASTA only.)"
                )
            else:  # spaces inside a line are layout (blocks of 10 bases), as other FASTA readers take them
                parts.append("".join(line.split()))
    if name is not None:
        records.append((name, "".join(parts)))
    if not records:
        raise DataValidationError(f"{path}: no FASTA records.")
    return records


def _numbered_lines(stream, start: FileStart):
    """(line number, line) of the text stream of a file; bytes that are not UTF-8 are an error naming the line."""
    try:
        yield from enumerate(stream, start=1)
    except UnicodeDecodeError as exc:
        raise _not_utf8(start.path, _first_undecodable_line(start), exc) from None


def _not_utf8(path: Path, line: int, exc: UnicodeDecodeError) -> DataValidationError:
    """The error for bytes that are not UTF-8, naming the file and the line that holds them."""
    byte = exc.object[exc.start : exc.start + 1]
    return DataValidationError(
        f"{path}, line {line}: not UTF-8 text ({exc.reason}, byte {byte!r}): save the file as UTF-8."
    )


def _first_undecodable_line(start: FileStart) -> int:
    """The number of the first line that is not UTF-8 (text is decoded in blocks, so the error's own position
    says where a block ended, not which line)."""
    with (gzip.open if start.gzipped else open)(start.path, "rb") as stream:
        for number, line in enumerate(stream, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                return number
    return 0


def check_readable(path) -> None:
    """A DataValidationError naming `path` when it is missing or a folder: checked before any work."""
    path = Path(path)
    if not path.is_file():
        what = "is a folder, not a file" if path.is_dir() else "does not exist"
        raise DataValidationError(f"{path} {what}: check the path.")


GZIP_MAGIC = b"\x1f\x8b"
PANDAS_COMPRESSIONS = (".bz2", ".xz", ".zst")  # tables read_table leaves to pandas (by their suffix)
# The first bytes of files users export by mistake, and what to call them in the error.
BINARY_KINDS = (
    (b"PK\x03\x04", "a zip archive, such as an Excel .xlsx workbook"),
    (b"\xd0\xcf\x11\xe0", "an Excel .xls or other Office file"),
    (b"%PDF", "a PDF document"),
    (b"BAM\x01", "a BAM alignment file"),
    (b"\x89HDF", "an HDF5 file"),
    (b"\xff\xfe", "UTF-16 text"),
    (b"\xfe\xff", "UTF-16 text"),
)


SNIFF_BYTES = 4096  # how much of a file's (decompressed) start is read: text or binary, and its first line


@dataclass(frozen=True)
class FileStart:
    """A user's file as its first bytes tell it, read once (`sniff`) before it is parsed."""

    path: Path
    gzipped: bool  # told by its first bytes: its name may say otherwise
    head: bytes  # the first SNIFF_BYTES, decompressed

    @property
    def first_line(self) -> str:
        """The first line that is not blank, or '' for an empty file; bytes that are not UTF-8 are an error
        naming the line."""
        try:  # not final: a character that SNIFF_BYTES cut in two is left out, not an error
            text = codecs.getincrementaldecoder("utf-8-sig")().decode(self.head)
        except UnicodeDecodeError as exc:
            raise _not_utf8(self.path, exc.object[: exc.start].count(b"\n") + 1, exc) from None
        # lines as reading the file as text splits them (at \n, \r\n or \r), not at every break splitlines knows
        line = next((line for line in io.StringIO(text, newline=None) if line.strip()), "")
        if len(self.head) == SNIFF_BYTES and not line.endswith("\n"):  # it may run on past the head: read it whole
            with _opened(self) as stream:
                return next((line for _, line in _numbered_lines(stream, self) if line.strip()), "")
        return line


def sniff(path) -> FileStart:
    """A file's start, from one read of its first bytes; a DataValidationError naming the file when it is
    missing, unreadable or not text (`check_text`)."""
    path = Path(path)
    check_readable(path)
    try:
        with open(path, "rb") as stream:
            gzipped = stream.read(2) == GZIP_MAGIC
            stream.seek(0)
            head = (gzip.GzipFile(fileobj=stream) if gzipped else stream).read(SNIFF_BYTES)
    except (EOFError, gzip.BadGzipFile) as exc:
        raise DataValidationError(
            f"{path}: starts as gzip but cannot be decompressed ({exc}); it may be cut short: download it again."
        ) from None
    except OSError as exc:
        raise DataValidationError(f"{path}: cannot be read ({exc.strerror or exc}).") from None
    if path.suffix.lower() not in PANDAS_COMPRESSIONS:  # a table pandas decompresses itself is not checked here
        check_text(head, path)
    return FileStart(path, gzipped, head)


def check_text(head: bytes, path) -> None:
    """A DataValidationError naming `path` when its (decompressed) first bytes are not text."""
    kind = next((what for magic, what in BINARY_KINDS if head.startswith(magic)), None)
    if kind is None and b"\x00" in head:
        kind = "binary data"
    if kind is not None:
        raise DataValidationError(
            f"{path}: not a text FASTA/CSV file (it looks like {kind}): export it as CSV or FASTA (UTF-8 text)."
        )


def _opened(start: FileStart):
    """The file opened for reading text (decompressed when gzipped), or a DataValidationError naming it."""
    opener = gzip.open if start.gzipped else open
    try:
        return opener(start.path, "rt", encoding="utf-8-sig")
    except OSError as exc:
        raise DataValidationError(f"{start.path}: cannot be read ({exc.strerror or exc}).") from None


def read_table(path, what: str, **options) -> pd.DataFrame:
    """A CSV read with pandas, or a DataValidationError that names the file and what it should hold."""
    start = sniff(path)
    pandas_decompresses = start.path.suffix.lower() in PANDAS_COMPRESSIONS
    compression = "gzip" if start.gzipped else "infer" if pandas_decompresses else None
    try:
        return pd.read_csv(path, compression=compression, sep=separator(path, start), **options)
    except pd.errors.EmptyDataError:
        raise DataValidationError(f"{path} is empty: expected {what}.") from None
    except (OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise DataValidationError(f"{path}: cannot be read as CSV ({exc}); expected {what}.") from None


def read_fasta_with_labels(fasta, labels) -> LabelledSequences:
    """FASTA sequences with labels: a CSV of (name, label), a {name: label} dict, or a list in file order."""
    records = read_fasta(fasta)
    if isinstance(labels, (str, os.PathLike)):
        labels = read_labels_file(labels)
    if isinstance(labels, dict):
        missing = [name for name, _ in records if name not in labels]
        if missing:
            known = ", ".join(repr(name) for name in list(labels)[:3])
            raise DataValidationError(
                f"{fasta}: no label for record {missing[0]!r} ({len(missing)} unlabelled). A record's name is its "
                f"header's first word; the labels name e.g. {known} (the labels file's first row is its header)."
            )
        labels = [labels[name] for name, _ in records]
    return make_labelled([s for _, s in records], labels, source=str(fasta), names=[n for n, _ in records])


# The names a labels file's column of record names goes by (any case); its labels go by LABEL_NAMES.
NAME_NAMES = ("name", "names", "id", "ids", "record", "header")


def read_labels_file(path) -> dict:
    """{record name: label} of a labels CSV, its columns found by their header names (`label_columns`)."""
    table = read_table(path, "a header row, then record names and labels", dtype=str, keep_default_na=False)
    name_column, label_column = label_columns(list(table.columns), path)
    names = [name.strip() for name in table[name_column]]
    return _labels_by_name(names, read_labels(table[label_column]), path)


def label_columns(columns: list, source) -> tuple:
    """The (record name, label) columns of a labels file: by header name (`column_by_alias` of NAME_NAMES and
    LABEL_NAMES: name before id, label before y); in a two-column file the one named tells the other, and with
    neither named they are in that order."""
    name_column, label_column = column_by_alias(columns, NAME_NAMES), column_by_alias(columns, LABEL_NAMES)
    if name_column is not None and label_column is not None:
        return name_column, label_column
    if len(columns) == 2:  # the one column its header names tells the other (seq_id,label); none named: in order
        first, second = columns
        return (second, first) if label_column == first or name_column == second else (first, second)
    raise DataValidationError(
        f"{source}: cannot tell which column holds the record names and which the labels; its columns are "
        f"{[str(c) for c in columns]}. Head the column of names 'name' (or id) and the column of labels 'label' "
        "(or class, target)."
    )


def _labels_by_name(names: list, labels: list, source) -> dict:
    """{name: label} of the rows of a labels file; a name given two different labels is an error."""
    by_name, first_row = {}, {}
    for row, (name, label) in enumerate(zip(names, labels, strict=True), 2):  # row 1 is the header
        if name in by_name and by_name[name] != label:
            raise DataValidationError(
                f"{source}: record {name!r} has two labels, {by_name[name]!r} (row {first_row[name]}) and "
                f"{label!r} (row {row}); give each name one label."
            )
        by_name[name], first_row[name] = label, first_row.get(name, row)
    return by_name


def read_genomic_benchmarks_dir(root, split: str) -> LabelledSequences:
    """The genomic-benchmarks on-disk format: root/<split>/<class>/*.txt, one sequence per file."""
    folder = Path(root) / split
    if not folder.is_dir():
        raise DatasetNotFoundError(f"{folder} does not exist (expected {root}/{{train,test}}/<class>/*.txt).")
    sequences, labels = [], []
    for class_dir in sorted(p for p in folder.iterdir() if p.is_dir()):
        for file in sorted(class_dir.glob("*.txt")):
            sequences.append(file.read_text().strip())
            labels.append(class_dir.name)
    return make_labelled(sequences, labels, source=str(folder))


# --- registered tasks -------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _registry() -> dict:
    return json.loads((bundled_data_dir() / "genomics" / "registry.json").read_text())["tasks"]


def task_names() -> list[str]:
    return list(_registry())


def resolve_task(name: str) -> str:
    tasks = _registry()
    for task, info in tasks.items():
        if name == task or name in info.get("aliases", []):
            return task
    if name in package_tasks():  # fetchable with --protocol official, not described in our registry
        return name
    known = [*tasks, *(a for info in tasks.values() for a in info.get("aliases", [])), *package_tasks()]
    close = difflib.get_close_matches(name, known, n=2, cutoff=0.5)
    hint = f" Did you mean {' or '.join(map(repr, close))}?" if close else ""
    raise DatasetNotFoundError(
        f"Unknown GenomicBenchmarks task {name!r}.{hint} "
        f"Known: {', '.join(dict.fromkeys([*tasks, *package_tasks()]))}. "
        "For your own data pass a CSV (seq,label) or FASTA + labels."
    )


@dataclass
class TaskData:
    """A task as available here: the official train/test split, or one labelled split for CV."""

    name: str
    protocol: str  # "official" or "cv"
    train: LabelledSequences | None
    test: LabelledSequences | None
    labelled: LabelledSequences | None  # the single split used for cross-validation
    note: str


def package_tasks() -> list[str]:
    """The tasks the genomic-benchmarks package can fetch (its own list; no network), [] without it."""
    try:
        from genomic_benchmarks.data_check import list_datasets
    except ImportError:
        return []
    return sorted(list_datasets())


def has_official_split(task: str, data_root=None) -> bool:
    root = Path(data_root or GENOMIC_BENCHMARKS_HOME) / task
    return (root / "train").is_dir() and (root / "test").is_dir()


def list_tasks(data_root=None) -> list[dict]:
    """Our registered tasks, then the others the genomic-benchmarks package can fetch: task, aliases,
    classes, official_sizes ({"train", "test"} sequences, or None), and what is here: "official" (the full
    train/test split, on disk), "bundled" (the bundled split, for cross-validation), or None."""
    registry = _registry()
    rows = []
    for task in dict.fromkeys([*registry, *package_tasks()]):
        info = registry.get(task, {})
        here = "official" if has_official_split(task, data_root) else ("bundled" if info.get("bundled") else None)
        rows.append({"task": task, "aliases": info.get("aliases", []), "classes": info.get("classes", [])})
        rows[-1] |= {"official_sizes": info.get("official_sizes"), "here": here}
    return rows


def download_official(task: str, data_root=None) -> Path:
    """Fetch a task's official train/test split with genomic-benchmarks (online) into its cache layout.

    The package writes into a scratch folder beside the target, which is renamed into place only when
    complete: an interrupted download never passes for a dataset.
    """
    import shutil
    import tempfile

    home = Path(data_root or GENOMIC_BENCHMARKS_HOME)
    target = home / task
    by_hand = f"put the genomic-benchmarks layout at {target}/{{train,test}}/<class>/*.txt and run again"
    try:
        from genomic_benchmarks.loc2seq import download_dataset
    except ImportError:
        raise DatasetNotFoundError(
            f"{task}: the official split needs the genomic-benchmarks package (pip install genomic-benchmarks), "
            f"or {by_hand}."
        ) from None
    home.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{task}-download-", dir=home))
    try:
        try:
            fetched = Path(download_dataset(task, dest_path=scratch))
        except Exception as error:  # the package raises whatever its HTTP and unzip layers raise
            raise DatasetNotFoundError(
                f"{task}: could not download the official split ({type(error).__name__}: {error}). "
                f"Offline? Download it elsewhere with genomic-benchmarks, or {by_hand}."
            ) from error
        if not (fetched / "train").is_dir() or not (fetched / "test").is_dir():
            raise DatasetNotFoundError(f"{task}: the download has no train/ and test/ folders; {by_hand}.")
        if target.exists():
            shutil.rmtree(target)  # an incomplete earlier copy (has_official_split was False)
        fetched.rename(target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target


def load_task(name: str, data_root=None, verify: bool = True, download: bool = False) -> TaskData:
    """The full official split when it is on disk (genomic-benchmarks format), else the bundled split.

    download=True fetches the official split first when it is not on disk (online; see download_official).
    """
    task = resolve_task(name)
    if download and not has_official_split(task, data_root):
        download_official(task, data_root)
    root = Path(data_root or GENOMIC_BENCHMARKS_HOME) / task
    if (root / "train").is_dir() and (root / "test").is_dir():
        train = read_genomic_benchmarks_dir(root, "train")
        test = read_genomic_benchmarks_dir(root, "test")
        test = make_labelled(test.sequences, test.label_names(), str(root / "test"), classes=train.classes)
        return TaskData(task, "official", train, test, None, f"official train/test split from {root}")
    info = _registry().get(task, {})
    if not info.get("bundled"):
        raise DatasetNotFoundError(
            f"{task}: not bundled and not found at {root}. Fetch it (online) with "
            f"`titans-dna finetune {task} --protocol official`, "
            f"or put it in {root}/{{train,test}}/<class>/*.txt, or point data_root= (CLI: the "
            "GENOMIC_BENCHMARKS_HOME environment variable) at the folder that holds it."
        )
    path = bundled_data_dir() / "genomics" / info["bundled"]
    if verify:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != info["sha256"]:
            raise ChecksumError(
                f"{path}: sha256 {digest} differs from the registered {info['sha256']}; reinstall titans-ts."
            )
    labelled = read_csv(path)
    return TaskData(
        task,
        "cv",
        None,
        None,
        labelled,
        f"only the official {info['bundled_split']} split ({len(labelled)} sequences) is available "
        "here: evaluated by stratified k-fold cross-validation on it, not the official protocol",
    )


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
