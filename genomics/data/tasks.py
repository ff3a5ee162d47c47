"""GenomicBenchmarks tasks: the registry of bundled ones, the official splits on disk (and their download), and
`load_task`, which gives a task as available here (official train/test, or one split for cross-validation)."""

from __future__ import annotations

import difflib
import functools
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from genomics.data.files import read_csv
from genomics.data.labelled import LabelledSequences, make_labelled
from titans_ts.datafiles import bundled_data_dir
from titans_ts.errors import (
    ChecksumError,
    DatasetNotFoundError,
)

GENOMIC_BENCHMARKS_HOME = Path(os.environ.get("GENOMIC_BENCHMARKS_HOME", Path.home() / ".genomic_benchmarks"))


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


OWN_DATA = "For your own data pass a CSV (seq,label) or FASTA + labels."  # what an unknown task's error advises


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
        f"Known: {', '.join(dict.fromkeys([*tasks, *package_tasks()]))}. {OWN_DATA}"
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
