"""The time-series dataset registry: `registry.json` of the bundled data folder (`titans_ts.datafiles`)."""

from __future__ import annotations

import difflib
import functools
import json
from dataclasses import dataclass
from pathlib import Path

from titans_ts.datafiles import bundled_data_dir
from titans_ts.errors import DatasetNotFoundError


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    file: str  # the file name a user supplies, e.g. electricity.csv
    url: str
    sha256: str  # of the uncompressed CSV
    bytes: int
    rows: int
    columns: int  # numeric columns, date excluded
    freq: str
    target: str
    split: str  # ett_hourly | ett_15min | ratio_70_10_20
    bundled: str | None  # path of the bundled .csv.gz relative to the data dir, if shipped

    @property
    def bundled_path(self) -> Path | None:
        return bundled_data_dir() / self.bundled if self.bundled else None


@functools.lru_cache(maxsize=1)
def _load_registry() -> tuple[dict[str, DatasetInfo], dict[str, str]]:
    raw = json.loads((bundled_data_dir() / "registry.json").read_text(encoding="utf-8"))
    infos = {name: DatasetInfo(name=name, **fields) for name, fields in raw["datasets"].items()}
    return infos, dict(raw.get("aliases", {}))


def registered_datasets() -> list[DatasetInfo]:
    return list(_load_registry()[0].values())


def lookup_name(name: str) -> DatasetInfo | None:
    """The registry entry for `name` (case-insensitive, aliases and file names accepted), or None."""
    infos, aliases = _load_registry()
    wanted = aliases.get(name, name).lower()
    for info in infos.values():
        if wanted in (info.name.lower(), info.file.lower(), Path(info.file).stem.lower()):
            return info
    return None


def benchmark_named(dataset) -> DatasetInfo | None:
    """The registered benchmark a dataset argument names, or None when it names a file (a path, or a table's
    name such as ETTh1.csv: `load_dataset` reads those as the user's file, so its protocol and defaults are a
    user's too, whatever the file is called)."""
    from titans_ts.data.raw_table import names_a_file

    if not dataset or hasattr(dataset, "__fspath__") or names_a_file(str(dataset)):
        return None
    return lookup_name(str(dataset))


def get_dataset_info(name: str) -> DatasetInfo:
    info = lookup_name(name)
    if info is None:
        infos, aliases = _load_registry()
        known = [*infos, *aliases]
        by_lower = {k.lower(): aliases.get(k, k) for k in known}
        close = difflib.get_close_matches(name.lower(), list(by_lower), n=3, cutoff=0.5)
        hint = f" Did you mean {' or '.join(repr(by_lower[c]) for c in close)}?" if close else ""
        raise DatasetNotFoundError(
            f"Unknown dataset {name!r}.{hint} Registered: {', '.join(infos)}. "
            "For your own data pass the path of a table file (CSV, parquet, ...: a date column plus numeric columns)."
        )
    return info
