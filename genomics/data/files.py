"""DNA files: sequence tables (CSV/TSV), FASTA, labels files; their columns found by header, their start sniffed
(gzip, binary exports, FASTQ, text that is not UTF-8) before anything is parsed."""

from __future__ import annotations

import codecs
import gzip
import io
import lzma
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from genomics.data.labelled import (
    LABEL_NAMES,
    MISSING_LABELS,
    SEQUENCE_NAMES,
    LabelledSequences,
    column_by_alias,
    make_labelled,
    warn_duplicate_names,
)
from titans_ts.errors import (
    ConfigError,
    DataValidationError,
)
from titans_ts.io import read_under_header, row_cells

# The names a column of record names goes by (any case): in a labels file, and in a CSV of sequences to predict.
NAME_NAMES = ("name", "names", "id", "ids", "record", "header")


# What reading a cut-short or damaged .gz / .bz2 / .xz raises (gzip's BadGzipFile, an OSError, is caught too).
DAMAGED_COMPRESSION = (EOFError, gzip.BadGzipFile, zlib.error, lzma.LZMAError)


def find_column(columns, wanted: str, default: str, names: tuple) -> str:
    """`wanted` when the file has it; for the default, else the column `column_by_alias(columns, names)` finds
    (`wanted` when none goes by one of `names`: the caller names what is missing)."""
    if wanted in columns or wanted != default:
        return wanted
    found = column_by_alias(columns, names)
    return wanted if found is None else found


def read_labels(cells) -> list:
    """Label cells read as text, as classes: surrounding whitespace stripped ("positive " is "positive"), a
    missing-value cell (MISSING_LABELS) None, and numbers as numbers when every label is one written as Python
    writes it (0, 1, 2.5: "01" and "1", or "1" and "1.0", stay distinct text, and a code keeps its zeros)."""
    stripped = [str(cell).strip() for cell in cells]
    labels = [None if cell in MISSING_LABELS else cell for cell in stripped]
    present = [label for label in labels if label is not None]
    try:
        numbers = pd.to_numeric(pd.Series(present, dtype=object)).tolist()
    except (ValueError, TypeError):
        return labels
    if any(str(number) != text for number, text in zip(numbers, present, strict=True)):
        return labels
    numbered = iter(numbers)
    return [None if label is None else next(numbered) for label in labels]


def read_sequence_table(path, what: str, sequence_column: str = "seq") -> tuple[pd.DataFrame, str]:
    """A CSV of sequences, its sequence column read as text without surrounding spaces (an empty cell is an empty
    sequence), and that column's name (`find_column`). Every cell is read as text: "NA" is a sequence (N, A), not
    a missing one."""
    frame = read_table(path, what, dtype=str, keep_default_na=False)  # one read: every column is text
    column = find_column(frame.columns, sequence_column, "seq", SEQUENCE_NAMES)
    if column in frame.columns:  # " ACGT " as a padded cell: the bases, as a FASTA line's spaces are dropped
        frame[column] = frame[column].str.strip()
    return frame, column


TABLE_SUFFIXES = (".csv", ".tsv", ".tab")


def is_csv(path: Path) -> bool:
    """A table of sequences: .csv, .tsv or .tab (any case, compressed or not: .gz, .bz2, .xz, .zst), or a .txt
    file that does not start as FASTA does; any other file is read as FASTA."""
    name = Path(path).name.lower()
    name = next((name.removesuffix(s) for s in (".gz", *PANDAS_COMPRESSIONS) if name.endswith(s)), name)
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
    """The sequences of a CSV with a seq (or sequence) column, and its names (None without them): the column that
    goes by one of NAME_NAMES (`column_by_alias`: name, else id, record, ...), as a labels file's names are found,
    so that a file headed id,seq names its predictions by id. An empty cell is an empty sequence."""
    frame, column = read_sequence_table(path, "a 'seq' column of sequences")
    if column not in frame.columns:
        raise ConfigError(
            f"{path}: no column 'seq' (or sequence); columns are {list(frame.columns)}. Name the column of "
            "sequences seq."
        )
    name_column = column_by_alias(frame.columns, NAME_NAMES)
    names = None if name_column is None else [str(n) for n in frame[name_column]]
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
    if path.suffix.lower() in PANDAS_COMPRESSIONS:  # read as text, its compressed bytes were "not UTF-8"
        raise DataValidationError(
            f"{path}: a FASTA file compressed as {path.suffix.lower()} is not read here; gzip is (.fa.gz), or give "
            "it decompressed."
        )
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
    """(line number, line) of the text stream of a file; bytes that are not UTF-8 are an error naming the line,
    and so is a gzip stream that ends early or is damaged past its first bytes (`sniff` reads those)."""
    try:
        yield from enumerate(stream, start=1)
    except UnicodeDecodeError as exc:
        raise _not_utf8(start.path, _first_undecodable_line(start), exc) from None
    except DAMAGED_COMPRESSION as exc:  # gzip's EOFError was click's bare "Aborted.", exit 1
        raise _damaged(start.path, exc) from None


def _damaged(path: Path, exc: BaseException) -> DataValidationError:
    said = str(exc) or "the compressed stream ended before its end marker"
    return DataValidationError(
        f"{path}: a compressed input file is cut short or damaged ({said}): check it (gzip -t, bzip2 -t, xz -t), "
        "or copy it again."
    )


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


# What a data file's name ends with: a name so written (or one with a folder in it) names a file, never a task.
DATA_SUFFIXES = (*TABLE_SUFFIXES, ".txt", ".fa", ".fasta", ".fna", ".fas", ".gz", ".bz2", ".xz", ".zst")


def names_a_file(name) -> bool:
    """Whether `name` is meant as a file (whether or not one is there): it exists, has a folder in it, starts
    with ~ or ., or ends as a data file does; else it may be a task's name."""
    text = str(name)
    path = Path(text)
    return path.exists() or len(path.parts) > 1 or text.startswith(("~", ".")) or text.lower().endswith(DATA_SUFFIXES)


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
    sep = separator(path, start)
    try:
        frame = pd.read_csv(path, compression=compression, sep=sep, **options)
        frame = read_under_header(frame, path, sep, what, compression=compression, **options).reset_index(drop=True)
        header = row_cells(path, sep, compression)
    except pd.errors.EmptyDataError:
        raise DataValidationError(f"{path} is empty: expected {what}.") from None
    except DAMAGED_COMPRESSION as exc:
        raise _damaged(path, exc) from None
    except (OSError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        raise DataValidationError(f"{path}: cannot be read as CSV ({exc}); expected {what}.") from None
    _refuse_repeated_names([name.strip() for name in header], path)
    return frame


def _refuse_repeated_names(header: list[str], path) -> None:
    """A header that names a column twice (pandas would read the second as 'label.1', and the first be used
    silently) is refused."""
    repeated = sorted({name for name in header if header.count(name) > 1 and name})
    if repeated:
        raise DataValidationError(
            f"{path}: the header names column(s) {repeated} more than once; give each column its own name."
        )


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
        warn_duplicate_names([name for name, _ in records], f"{fasta} (each takes the one label of its name)")
    return make_labelled([s for _, s in records], labels, source=str(fasta), names=[n for n, _ in records])


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
