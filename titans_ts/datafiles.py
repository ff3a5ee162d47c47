"""Where the bundled data lives, for both domains: `datasets/` of a source checkout, shipped in the wheel as
`titans_ts/_datasets/` (the time-series registry at its top, the GenomicBenchmarks tasks in `genomics/`)."""

from __future__ import annotations

from pathlib import Path

from titans_ts.errors import DatasetNotFoundError

_PACKAGE_DIR = Path(__file__).resolve().parent


def bundled_data_dir() -> Path:
    """Where the bundled data lives: inside the installed package, or `datasets/` of a source checkout."""
    for candidate in (_PACKAGE_DIR / "_datasets", _PACKAGE_DIR.parent / "datasets"):
        if (candidate / "registry.json").is_file():
            return candidate
    raise DatasetNotFoundError(
        "The dataset registry (registry.json) is missing from this installation; reinstall titans-ts."
    )
