"""How a file becomes a raw table, before any timestamp or number is checked: parquet, Feather/Arrow, JSON,
Excel, or text (compressed too) whose delimiter is sniffed, whose decimal commas (and dots grouping thousands) are
read as numbers, whose header row is checked not to be data, and without the column of row numbers pandas' to_csv
writes."""

from __future__ import annotations

import gzip
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from titans_ts.errors import DataValidationError
from titans_ts.io import read_under_header


def read_table(path: Path, header: bool = True, sep: str | None = None) -> pd.DataFrame:
    """The table in `path` as written (columns as text, values as pandas reads them): a parquet file, or text
    whose delimiter is sniffed unless `sep` is given. header=False: every row is data, columns x0, x1, ..."""
    kind = read_format(path)
    if kind == ".parquet":  # as write_table names it: F.PARQUET too
        raw = _read_parquet(path)
    elif kind in BINARY_READERS:
        raw = _read_binary(path, kind, header)
    else:
        sep = sep or _sniff_delimiter(path)
        try:
            raw = _read_csv(path, sep, header)
        except pd.errors.EmptyDataError:
            raise DataValidationError(
                f"{path} is empty: expected a date column and one column per series, a row per time step."
            ) from None
        except EOFError:  # gzip's, on a stream that ends early
            raise DataValidationError(
                f"{path}: its gzip stream ends early, so the file is cut short (a partial download or copy?): "
                "fetch or copy it again."
            ) from None
        except ImportError as exc:  # .zst: pandas reads it with zstandard
            raise DataValidationError(f"{path}: reading it needs zstandard (pip install zstandard).") from exc
        except (pd.errors.ParserError, UnicodeDecodeError, OSError) as exc:
            raise DataValidationError(f"{path}: cannot be read as CSV ({exc}).") from exc
        decimal = "," if sep != "," and _decimal_commas(raw) else "."  # 1,5 for 1.5, as European files write it
        if decimal == ",":
            raw = _with_thousands_read(_read_csv(path, sep, header, decimal=","))
        if header:
            _check_header_is_not_data(raw, path, decimal)
            raw = _without_row_numbers(raw)
        else:
            raw.columns = [f"x{i}" for i in range(raw.shape[1])]
    return raw


def _read_csv(path: Path, sep: str, header: bool, **options) -> pd.DataFrame:
    raw = pd.read_csv(path, sep=sep, header=0 if header else None, **options)
    return read_under_header(raw, path, sep, **options) if header else raw


def _without_row_numbers(raw: pd.DataFrame) -> pd.DataFrame:
    """The table without the unnamed first column of row numbers 0, 1, 2, ... that pandas' `to_csv` writes by
    default (a series of row numbers is not data to forecast)."""
    first = raw.columns[0]
    numbers = raw[first]
    if str(first) == "Unnamed: 0" and pd.api.types.is_integer_dtype(numbers) and raw.shape[1] > 1:
        if (numbers.to_numpy() == np.arange(len(raw))).all():
            return raw.drop(columns=[first])
    return raw


COMPRESSIONS = (".gz", ".bz2", ".xz", ".zip", ".zst")  # a text table compressed: pandas reads it by its name
# tables other than parquet and text, by their suffix: (pandas' reader, what it is, the package it needs)
BINARY_READERS = {
    ".feather": ("read_feather", "Feather", "pyarrow"),
    ".arrow": ("read_feather", "Arrow IPC", "pyarrow"),
    ".xlsx": ("read_excel", "Excel", "openpyxl"),
    ".xls": ("read_excel", "Excel 97-2003", "xlrd"),
    ".json": ("read_json", "JSON", None),
    ".jsonl": ("read_json", "JSON lines", None),
    ".ndjson": ("read_json", "JSON lines", None),
}
TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet", *BINARY_READERS)
FOREIGN_SUFFIXES = (".h5", ".hdf", ".hdf5", ".pkl", ".pickle", ".npy", ".npz", ".orc", ".mat", ".sav", ".dta")


def names_a_file(dataset: str) -> bool:
    """Whether a dataset is given as a file (a path, or a table's name: my.json), not by a registered name."""
    return "/" in dataset or read_format(Path(dataset)) in TABLE_SUFFIXES or dataset.lower().endswith(COMPRESSIONS)


def read_format(path: Path) -> str:
    """A table file's format by its suffix, a compression's taken off (`my.csv.gz`: ".csv"; "" if none)."""
    suffixes = [s.lower() for s in Path(path).suffixes]
    if suffixes and suffixes[-1] in COMPRESSIONS:
        suffixes = suffixes[:-1]
    return suffixes[-1] if suffixes else ""


def _read_binary(path: Path, kind: str, header: bool = True) -> pd.DataFrame:
    """A Feather, Excel (its first sheet) or JSON table (records, columns or lines, as pandas reads them); an index
    it was saved with becomes a column again, as for parquet (`_with_index_read`); JSON dates that pandas wrote as
    epoch milliseconds are dates again (`_epoch_ms_dates`)."""
    reader, name, package = BINARY_READERS[kind]
    options = {"lines": True} if kind in (".jsonl", ".ndjson") else {}
    if reader == "read_excel":  # a sheet, like a text table, may have no header row
        options = {"header": 0 if header else None}
    try:
        raw = getattr(pd, reader)(path, **options)
    except ImportError as exc:
        raise DataValidationError(
            f"{path}: reading {name} needs {package} (pip install {package}), or save the table as CSV or parquet."
        ) from exc
    except Exception as exc:  # each reader raises its own error types for a damaged or foreign file
        json_shapes = " A table in JSON is a list of records, an object of columns, or one record a line."
        shapes = json_shapes if reader == "read_json" else ""
        raise DataValidationError(f"{path}: cannot be read as {name} ({str(exc).splitlines()[0]}).{shapes}") from exc
    if not isinstance(raw, pd.DataFrame) or raw.empty:
        raise DataValidationError(
            f"{path} holds no table: expected a date column and one column per series, a row per time step."
        )
    if reader == "read_excel":
        _warn_if_other_sheets(path)
    raw = _with_index_read(raw)
    if reader == "read_json":
        raw = _epoch_ms_dates(raw)
    if reader == "read_excel" and not header:
        raw.columns = [f"x{i}" for i in range(raw.shape[1])]
    elif reader == "read_excel":
        _check_header_is_not_data(raw, path, ".")
    return raw


def _warn_if_other_sheets(path: Path) -> None:
    """A workbook of several sheets is read by its first: say so, naming them."""

    with pd.ExcelFile(path) as book:
        sheets = book.sheet_names
    if len(sheets) > 1:
        warnings.warn(
            f"{path} has {len(sheets)} sheets ({', '.join(map(repr, sheets))}): the first, {sheets[0]!r}, is read. "
            "Save the one to forecast first, or as a file of its own.",
            UserWarning,
            stacklevel=5,
        )


def _with_index_read(raw: pd.DataFrame) -> pd.DataFrame:
    """A table's index as a column when it was data (timestamps, a named time column); row numbers (0, 1, 2, ...
    or a filtered frame's, unnamed) are not data, and are dropped, as to_csv's are."""
    index = raw.index
    if isinstance(index, pd.RangeIndex) or (index.name is None and pd.api.types.is_integer_dtype(index)):
        raw = raw.reset_index(drop=True)
    else:
        raw = raw.reset_index()
    raw.columns = [str(c) for c in raw.columns]
    return raw


def _epoch_ms_dates(raw: pd.DataFrame) -> pd.DataFrame:
    """pandas' to_json writes dates as milliseconds since 1970 and reads back only columns named like dates:
    a first column of such numbers (counting up, 1973 to 2128) beside no date column is dates again."""
    first = raw.columns[0]
    values = raw[first]
    if any(pd.api.types.is_datetime64_any_dtype(raw[c]) for c in raw.columns):
        return raw
    if not pd.api.types.is_integer_dtype(values) or len(values) < 2:
        return raw
    numbers = values.to_numpy(dtype=np.int64)
    if (np.diff(numbers) > 0).all() and 1e11 <= numbers[0] and numbers[-1] <= 5e12:
        return raw.assign(**{first: pd.to_datetime(numbers, unit="ms")})
    return raw


def _read_parquet(path: Path) -> pd.DataFrame:
    """A parquet table; an index it was saved with (e.g. timestamps) becomes a column again."""
    try:
        raw = pd.read_parquet(path)
    except ImportError as exc:
        raise DataValidationError(f"{path}: reading parquet needs pyarrow (pip install pyarrow).") from exc
    except Exception as exc:  # pyarrow raises its own error types for a damaged file
        raise DataValidationError(f"{path}: cannot be read as parquet ({exc}).") from exc
    return _with_index_read(raw)


def _sniff_delimiter(path: Path) -> str:
    """The delimiter of a text table: ; tab or | where one splits every first line into the same number of
    fields (a ;-table's decimal commas would split its lines consistently too), else the first of , ; tab |
    that the csv sniffer finds."""
    import csv

    try:
        with _open_text(path) as stream:
            sample = "".join(stream.readline() for _ in range(20))
    except (OSError, EOFError, ImportError, ValueError):  # read_csv then says what is wrong with the file
        return ","
    lines = [line for line in sample.splitlines() if line.strip()]
    for sep in (";", "\t", "|"):
        fields = {len(line.split(sep)) for line in lines}
        if len(fields) == 1 and fields.pop() >= 2:
            return sep
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error:
        return ","


def _open_text(path: Path):
    """A text table's first lines to sniff, read through its compression (as pandas reads it, by the suffix)."""
    import io

    suffix = path.suffix.lower()
    text = {"encoding": "utf-8", "errors": "replace"}
    if suffix in (".gz", ".bz2", ".xz"):
        import bz2
        import lzma

        return {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}[suffix](path, "rt", **text)
    if suffix == ".zip":
        import zipfile

        archive = zipfile.ZipFile(path)
        return io.TextIOWrapper(archive.open(archive.namelist()[0]), **text)
    if suffix == ".zst":
        import zstandard

        return io.TextIOWrapper(zstandard.open(path, "rb"), **text)
    return open(path, encoding="utf-8", errors="replace")


_THOUSANDS = r"\d{1,3}(\.\d{3})+"  # 1.000: dots grouping thousands, beside decimal commas
_EUROPEAN_NUMBER = rf"\s*[+-]?({_THOUSANDS}|\d+)(,\d+)?([eE][+-]?\d+)?\s*"


def _with_thousands_read(raw: pd.DataFrame) -> pd.DataFrame:
    """Text columns of decimal-comma numbers whose thousands are grouped by dots (1.000,50) as numbers; only such
    columns (pandas' thousands="." would read a date 01.01.2023 as the number 1012023)."""
    grouped = rf"\s*[+-]?{_THOUSANDS}(,\d+)?\s*"
    for name in raw.columns:
        values = raw[name].dropna().astype(str)
        if pd.api.types.is_numeric_dtype(raw[name]) or not len(values):
            continue
        if values.str.fullmatch(_EUROPEAN_NUMBER).all() and values.str.fullmatch(grouped).any():
            text = raw[name].astype("string").str.replace(".", "", regex=False).str.replace(",", ".", regex=False)
            raw[name] = pd.to_numeric(text)
    return raw


def _decimal_commas(raw: pd.DataFrame) -> bool:
    """Whether a text column holds numbers written with a decimal comma: every value a number with at most one
    comma (and dots grouping thousands, 1.000,50), and some comma not followed by exactly three digits (1,234
    alone may be a thousands separator)."""
    import re

    number = re.compile(_EUROPEAN_NUMBER)
    decimal = re.compile(r",(\d{1,2}|\d{4,})([eE]|\s*$)")
    for name in raw.columns:
        if pd.api.types.is_numeric_dtype(raw[name]):
            continue
        values = raw[name].dropna().astype(str).head(1000)
        if len(values) and all(number.fullmatch(v) for v in values) and any(decimal.search(v) for v in values):
            return True
    return False


def _check_header_is_not_data(raw: pd.DataFrame, path: Path, decimal: str = ".") -> None:
    """A header row made only of numbers (and maybe one timestamp) is the first row of a headerless file."""
    names = [str(c) for c in raw.columns]
    numeric = pd.to_numeric(pd.Series([n.replace(decimal, ".") for n in names]), errors="coerce").notna()
    stamps = pd.to_datetime(pd.Series(names), errors="coerce", format="mixed").notna() & ~numeric
    if len(names) >= 2 and numeric.sum() >= 1 and (numeric | stamps).all():
        raise DataValidationError(
            f"{path}: the header row {names[:6]} looks like data, so the file probably has no header. "
            "Pass header=False (CLI: --no-header) to read every row as data, with columns x0, x1, ..."
        )
