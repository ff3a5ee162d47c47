"""Writing files so that a failure never leaves a half-written one behind."""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def give_default_mode(path: Path) -> None:
    """The mode a plainly created file would have (0666 minus the umask): temporary files start at 0600,
    which would make a shared model folder unreadable to the rest of a team."""
    os.chmod(path, 0o666 & ~_umask())


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `target` ("~" the home folder); on success rename it onto `target`, else
    delete it."""
    target = Path(target).expanduser()
    check_out_file(target)
    with _errors_named_by(target):
        target.parent.mkdir(parents=True, exist_ok=True)
        # a short temporary name: a long target's own name plus the random part went over the system's limit
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name[:40]}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        give_default_mode(tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_path_or_none(target) -> Iterator[Path | None]:
    """`atomic_path(target)`, or None when there is no target (an optional output written beside others)."""
    if target is None:
        yield None
        return
    with atomic_path(target) as tmp:
        yield tmp


def plain(value):
    """A NumPy scalar as the Python value it holds (np.int64(0) as 0); anything else as it is."""
    import numpy as np

    return value.item() if isinstance(value, np.generic) else value


def json_value(value):
    """What a JSON file holds for a value json does not know: a NumPy scalar as its Python value (np.int64(16)
    as 16, not "16", which a saved model then failed to load as), anything else as its text."""
    import numpy as np

    return plain(value) if isinstance(value, np.generic) else str(value)


def atomic_write_text(target: str | os.PathLike, text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


MODEL_FILE, CONFIG_FILE = "model.safetensors", "config.json"
SETTINGS_FILE = "settings.json"  # what a run records in out/checkpoints as it starts (checkpointing.py)
LOCK_FILE = ".titans-run.lock"  # held by the run writing into a folder (checkpointing.run_folder_lock)


def check_out_folder(out, overwrite: bool) -> None:
    """An output folder that already holds files is replaced only when asked (--overwrite): a second run
    does not silently take the place of the first. Checked before any work starts."""
    from titans_ts.errors import ConfigError

    out = Path(out)
    _check_parents(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out} is a file, not a folder: choose another --out (a run writes a folder of files).")
    if overwrite or not out.exists() or started_only(out):
        return
    if holds_checkpoints(out / "checkpoints"):
        raise ConfigError(
            f"{out} holds the checkpoints of an unfinished run: pass --resume to continue it, or --overwrite "
            "to start again."
        )
    raise ConfigError(f"{out} already holds a model (or other files): choose another --out, or pass --overwrite.")


def holds_checkpoints(folder) -> bool:
    """Whether a run's checkpoint folder holds anything to resume: a file beside the settings a run records
    as it starts (a checkpoint, a finished fold's result)."""
    return any(path.name != SETTINGS_FILE for path in files_below(Path(folder)))


def data_fingerprint(values) -> str:
    """A short hash of the training data (an array, or a list of strings), so that a resume on other data
    is refused."""
    import hashlib

    import numpy as np

    if isinstance(values, np.ndarray):
        array = np.ascontiguousarray(values)
        return f"{array.shape}:{hashlib.sha256(array.tobytes()).hexdigest()[:16]}"
    text = "\n".join(map(str, values)).encode()
    return f"{len(values)}:{hashlib.sha256(text).hexdigest()[:16]}"


def started_only(out: Path) -> bool:
    """Whether `out` holds nothing a user could want back: no file at all, or only the settings a run records
    in out/checkpoints as it starts (a run killed before its first checkpoint leaves just those: nothing to
    resume, so a new start may take the folder), and the lock file of a run that was killed."""
    checkpoints = out / "checkpoints"
    return all(
        (path.name == SETTINGS_FILE and checkpoints in path.parents) or path == out / LOCK_FILE
        for path in files_below(out)
    )


def files_below(folder: Path):
    """The files below `folder`, lazily (a caller's any/all stops at the first that decides)."""
    if folder.is_dir():
        yield from (path for path in folder.rglob("*") if path.is_file() or path.is_symlink())


def _check_parents(path: Path) -> None:
    """The nearest existing folder above `path` must be a folder: a file there cannot hold anything."""
    from titans_ts.errors import ConfigError

    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ConfigError(f"{parent} is a file, so {path} cannot be written: choose another path.")
            return


def check_out_file(out, inputs=(), overwrite: bool = True) -> None:
    """A file to be written: not a folder, and not one of the files it is made from (writing there would
    replace the user's data); an existing file only with `overwrite` (a command's earlier output is not
    silently replaced). Checked before any work starts."""
    from titans_ts.errors import ConfigError

    if out is None:
        return
    out = Path(out)
    _check_parents(out)
    if out.is_dir():
        raise ConfigError(f"{out} is a folder: give a file path for the output, e.g. {out / 'out.csv'}.")
    for source in inputs:
        if source is not None and out.exists() and Path(source).exists() and os.path.samefile(out, source):
            raise ConfigError(
                f"{out} is the input file itself: writing there would replace your data; choose another --out."
            )
    if not overwrite and out.exists():
        raise ConfigError(f"{out} already exists: pass overwrite=True to replace it, or choose another output file.")


def save_model_dir(path, tensors: dict, config: dict) -> Path:
    """Write path/model.safetensors and path/config.json, all or nothing: staged beside, then renamed one by one,
    both marked with one `save_id` (the weights in their metadata), so that a folder left with one file of each
    save (a kill between the renames) is refused by `load_model_dir`, not read as a model."""
    import hashlib
    import json
    import shutil
    import uuid

    from safetensors.torch import save_file

    from titans_ts.errors import ConfigError

    path = Path(path).expanduser()
    _check_parents(path)
    if path.exists() and not path.is_dir():
        raise ConfigError(
            f"{path} is a file: a model is saved as a folder (config.json, model.safetensors); choose another path."
        )
    if str(path) in ("", "."):
        raise ConfigError("save(path) needs a folder path for the model, e.g. 'runs/my-model'.")
    with _errors_named_by(path):  # the model's folder, not the staging one beside it (a read-only folder)
        path.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
        try:
            # on the CPU: the file is the same whichever device the model ran on, and loads on any
            save_id = uuid.uuid4().hex
            weights = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
            save_file(weights, str(staging / MODEL_FILE), metadata={"save_id": save_id})
            digest = hashlib.sha256((staging / MODEL_FILE).read_bytes()).hexdigest()
            config = config | {"save_id": save_id, "weights_sha256": digest}
            (staging / CONFIG_FILE).write_text(json.dumps(config, indent=1, default=json_value), encoding="utf-8")
            path.mkdir(exist_ok=True)
            for name in (MODEL_FILE, CONFIG_FILE):
                give_default_mode(staging / name)
                (staging / name).replace(path / name)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return path


def _check_weights_file(path: Path, raw: bytes, config: dict, damaged: str) -> None:
    """The weights file is the one the save wrote (its sha256 in config.json): a byte changed since (a disk
    fault, an edit, a bad copy) loaded as a model whose forecasts were quietly other, or NaN. A folder saved
    before the hash was kept is read unchecked."""
    import hashlib

    from titans_ts.errors import ConfigError

    if "weights_sha256" in config and hashlib.sha256(raw).hexdigest() != config["weights_sha256"]:
        raise ConfigError(
            f"{path / MODEL_FILE} is not the file its save wrote (its sha256 differs from the one in "
            f"{CONFIG_FILE}: changed or damaged since); {damaged}"
        )


def _release(version) -> tuple[int, ...] | None:
    """A version's release numbers ("0.2.1" -> (0, 2, 1); "0.2.0.dev3" -> (0, 2, 0)); None when it has none."""
    import re

    found = re.match(r"\d+(\.\d+)*", str(version or ""))
    return tuple(int(part) for part in found.group().split(".")) if found else None


def _warn_if_newer(path: Path, saved_by, what: str) -> None:
    """A NewerSaveWarning for a folder a newer titans-ts wrote: it loads, but what that version added is not read."""
    import warnings

    from titans_ts.errors import NewerSaveWarning
    from titans_ts.version import __version__

    saved, running = _release(saved_by), _release(__version__)
    if saved is not None and running is not None and saved > running:
        warnings.warn(
            f"{path}: this {what} was saved by titans-ts {saved_by}, newer than this one ({__version__}): what that "
            "version added is not read, so what it gives here may differ from what it gave there. Upgrade titans-ts "
            "to read it as it was saved.",
            NewerSaveWarning,
            stacklevel=4,
        )


@contextlib.contextmanager
def _errors_named_by(path: Path) -> Iterator[None]:
    """File-system errors about temporary paths beside `path` named by `path`, the one the user gave (an error
    that names no path, a message alone, as it is)."""
    try:
        yield
    except OSError as exc:
        if exc.filename is None:
            raise
        raise type(exc)(exc.errno, exc.strerror, str(path)) from exc


SAVE_WAITS = 20  # times 50 ms: how long a load waits for a save under way to put its second file in place


def load_model_dir(path, expected_format: str, what: str) -> tuple[dict, dict]:
    """(tensors, config) of a folder written by `save_model_dir`; safetensors + JSON, nothing executed."""
    import json

    from safetensors.torch import load

    from titans_ts.errors import ConfigError

    path = Path(path).expanduser()
    if not path.exists():
        raise ConfigError(f"{path} does not exist: give the folder a saved {what} was written to (its --out).")
    if not (path / CONFIG_FILE).is_file() or not (path / MODEL_FILE).is_file():
        inside = path / "model"  # a run folder of titans-dna finetune keeps its model there
        hint = f" A run's model is in {inside}: give that folder." if _format_of(inside) == expected_format else ""
        raise ConfigError(f"{path} is not a saved {what}: expected {CONFIG_FILE} and {MODEL_FILE} in it.{hint}")
    damaged = f"the {what} folder is damaged: restore it from a copy, or fit the model again."
    for attempt in range(SAVE_WAITS + 1):
        try:
            config = json.loads((path / CONFIG_FILE).read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path / CONFIG_FILE} is not valid JSON ({exc}); {damaged}") from None
        if not isinstance(config, dict) or config.get("format") != expected_format:
            found = config.get("format") if isinstance(config, dict) else type(config).__name__
            raise ConfigError(
                f"{path / CONFIG_FILE} is not a {what} config (format {found!r}): give a folder a {what} was saved to."
            )
        try:
            raw = (path / MODEL_FILE).read_bytes()  # once: the tensors, their save_id and the hash are of one file
            tensors = load(raw)  # on the CPU: callers move the model where it runs
            header = json.loads(raw[8 : 8 + int.from_bytes(raw[:8], "little")])  # safetensors' own layout
            weights_id = (header.get("__metadata__") or {}).get("save_id")
        except Exception as exc:  # safetensors raises its own error types for truncated or foreign files
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ConfigError(f"{path / MODEL_FILE} cannot be read ({reason}); {damaged}") from None
        if weights_id == config.get("save_id"):  # (a folder saved before save_id existed has neither)
            _check_weights_file(path, raw, config, damaged)
            _warn_if_newer(path, config.get("titans_ts_version"), what)
            return tensors, config
        if attempt < SAVE_WAITS:  # read between a save's two renames (`update` in place): it is done a moment later
            time.sleep(0.05)
    raise ConfigError(
        f"{path / MODEL_FILE} and {path / CONFIG_FILE} come from different saves (one was replaced without the "
        f"other: a save stopped part-way, or one still under way, which would have finished within a second); "
        f"{damaged}"
    )


def _format_of(folder: Path) -> str | None:
    """The format a saved model folder's config names, or None (no folder, no config, not JSON)."""
    import json

    try:
        config = json.loads((folder / CONFIG_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return config.get("format") if isinstance(config, dict) else None


def mismatched_model_dir(path, what: str, exc: Exception):
    """The error for a folder whose config.json and model.safetensors do not fit together."""
    from titans_ts.errors import ConfigError

    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return ConfigError(
        f"{Path(path) / CONFIG_FILE} and {MODEL_FILE} do not describe the same {what} ({reason}): "
        "restore the folder from a copy, or fit the model again."
    )


# Table files a user would expect in their own format, refused: every other name (none, .txt, .CSV) gets CSV text.
OTHER_TABLE_FORMATS = (".xlsx", ".xls", ".json", ".feather", ".h5", ".hdf", ".pkl", ".pickle", ".orc")
OTHER_COMPRESSIONS = (".bz2", ".xz", ".zip", ".zst", ".tar", ".7z")  # tables are compressed as .gz only


def table_format(path) -> tuple[str, str | None]:
    """How a table is written to `path`, by its name: ("parquet" | "tsv" | "csv", "gzip" for a name ending .gz
    else None); a name that says another format is refused. Case does not matter (F.PARQUET is parquet)."""
    from titans_ts.errors import ConfigError

    name = Path(path).name.lower()
    compression = "gzip" if name.endswith(".gz") else None
    suffix = Path(name.removesuffix(".gz")).suffix
    other = suffix in OTHER_TABLE_FORMATS or (suffix == ".parquet" and compression)
    if other or suffix in OTHER_COMPRESSIONS:  # written as plain text under such a name, no reader could open it
        raise ConfigError(
            f"{path}: tables are written as CSV (.csv, .csv.gz), tab-separated (.tsv, .tsv.gz) or parquet (.parquet), "
            f"not as {name[name.rfind(suffix) :]}: choose such a name."
        )
    return ("parquet" if suffix == ".parquet" else "tsv" if suffix == ".tsv" else "csv"), compression


def check_table_path(path) -> None:
    """Before any work: a name `write_table` can write (`table_format`), and pyarrow present for parquet."""
    from titans_ts.errors import ConfigError

    if table_format(path)[0] == "parquet":
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            raise ConfigError(f"{path}: writing parquet needs pyarrow (pip install pyarrow), or use .csv.") from None


def write_table(table, path, float_format: str | None = None) -> None:
    """A DataFrame written as its file name says (`table_format`), without its index, all or nothing (a failed
    write leaves no file). float_format: of the text formats (e.g. "%.7g")."""
    import gzip
    import io

    path = Path(path).expanduser()
    kind, compression = table_format(path)
    check_table_path(path)
    text = {"index": False, "sep": "\t" if kind == "tsv" else ",", "float_format": float_format}
    with atomic_path(path) as tmp:
        if kind == "parquet":
            table.to_parquet(tmp, index=False)
        elif compression is None:
            table.to_csv(tmp, **text)
        else:  # streamed through gzip here: pandas would record the temporary file's name in the gzip header
            with open(tmp, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as packed:
                with io.TextIOWrapper(packed, encoding="utf-8", newline="") as stream:
                    table.to_csv(stream, **text)


def read_under_header(raw, path, sep: str, what: str = "", **options):
    """`raw` (pd.read_csv of `path` with its header) as its header says, where its data rows hold one field
    more than the header, which pandas reads as a first column of row names, shifting every name one column
    left: with that extra field empty on every row (a separator at the end of each row, `t,1.5,`, as
    spreadsheets write) the table read again without row names; filled on every row (row names in front, as R's
    write.table writes) as pandas read it; filled on some rows only, refused, naming the first. `options`:
    read_csv's (compression, dtype, ...), to read it again the same way. (Here, not in titans_ts.data: the
    genomics readers use it too.)"""
    import warnings

    import numpy as np
    import pandas as pd

    from titans_ts.errors import DataValidationError

    if not _one_field_more(path, sep, options.get("compression", "infer")):
        return raw
    extra = raw.iloc[:, -1]
    empty = extra.isna() | extra.astype(str).str.strip().eq("")
    if not empty.any():
        return raw
    if not empty.all():
        row = int(np.flatnonzero(~empty.to_numpy())[0]) + 2  # row 1 is the header
        expected = f"; expected {what}" if what else ""
        raise DataValidationError(
            f"{path}: row {row} has more fields than the header has column names ({raw.shape[1]}){expected}. "
            "Remove the extra fields, or name every column in the header."
        )
    with warnings.catch_warnings():  # pandas warns of the fields it drops: they are empty
        warnings.simplefilter("ignore", pd.errors.ParserWarning)
        return pd.read_csv(path, sep=sep, header=0, index_col=False, **options)


def _one_field_more(path, sep: str, compression) -> bool:
    """Whether the first data row of a table holds one field more than its header row."""
    import pandas as pd

    try:
        return len(row_cells(path, sep, compression, skip=1)) == len(row_cells(path, sep, compression)) + 1
    except (pd.errors.EmptyDataError, pd.errors.ParserError):
        return False


def row_cells(path, sep: str, compression="infer", skip: int = 0) -> list[str]:
    """The cells of one row of a text table as written (row `skip` from the top: 0 the header), read as pandas
    reads the table (its compression, its quoting)."""
    import pandas as pd

    row = pd.read_csv(path, sep=sep, header=None, skiprows=skip, nrows=1, dtype=str, keep_default_na=False,
                      compression=compression)  # fmt: skip
    return row.iloc[0].tolist()
