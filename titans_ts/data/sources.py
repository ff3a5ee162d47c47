"""Where a registered dataset's file is: `data_dir`, `$TITANS_DATA_DIR`, the bundled files, the user cache,
and last a download from its canonical URL; and whether it is the registered file (its sha256)."""

from __future__ import annotations

import functools
import gzip
import hashlib
import os
import shutil
import urllib.error
import urllib.request
from pathlib import Path

from titans_ts.data.registry import DatasetInfo
from titans_ts.errors import ChecksumError, DatasetNotFoundError
from titans_ts.io import atomic_path


def cache_dir() -> Path:
    """The user cache for downloaded datasets: $TITANS_CACHE_DIR, else ~/.cache/titans-ts."""
    return Path(os.environ.get("TITANS_CACHE_DIR") or Path.home() / ".cache" / "titans-ts")


def locate(info: DatasetInfo, data_dir=None, download: bool = True) -> Path:
    """The first existing copy of a registered dataset, downloading it into the cache if allowed."""
    searched = []
    for folder in (data_dir, os.environ.get("TITANS_DATA_DIR")):
        if folder:
            found = _file_in(Path(folder), info.file)
            if found:
                return found
            searched.append(str(folder))
    if info.bundled_path is not None and info.bundled_path.is_file():
        return info.bundled_path
    found = _file_in(cache_dir(), info.file)
    if found:
        return found
    searched.append(str(cache_dir()))
    where = (
        f"Put {info.file} (or {info.file}.gz) in one of: {', '.join(searched)} "
        "(or pass data_dir=..., or set TITANS_DATA_DIR)."
    )
    if not download:
        raise DatasetNotFoundError(f"{info.name}: {info.file} not found. {where} Source: {info.url}")
    return _download(info, where)


def verify_checksum(path: Path, info: DatasetInfo) -> None:
    got = file_sha256(path)
    if got != info.sha256:
        raise ChecksumError(
            f"{path}: sha256 {got} does not match the registered {info.name} file ({info.sha256}). "
            f"The file is corrupt or a different version: replace it with the one from {info.url}, "
            "or pass verify=False (CLI: --no-verify) to use it anyway."
        )


def file_sha256(path: Path) -> str:
    """sha256 of the file's content, uncompressed if it is gzipped (cached on path, size and mtime)."""
    stat = path.stat()
    return _sha256_cached(str(path.resolve()), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=32)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _file_in(folder: Path, file_name: str) -> Path | None:
    for candidate in (folder / file_name, folder / f"{file_name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _download(info: DatasetInfo, where: str) -> Path:
    target = cache_dir() / info.file
    try:
        with atomic_path(target) as tmp:
            with urllib.request.urlopen(info.url, timeout=60) as response, open(tmp, "wb") as out:
                shutil.copyfileobj(response, out)
            got = _sha256_cached(str(tmp), tmp.stat().st_size, tmp.stat().st_mtime_ns)
            if got != info.sha256:
                raise ChecksumError(
                    f"Downloaded {info.url} but its sha256 {got} differs from the registered {info.sha256}; "
                    f"nothing was kept. {where}"
                )
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        raise DatasetNotFoundError(
            f"{info.name}: {info.file} not found locally and the download from {info.url} failed ({exc}). {where}"
        ) from exc
    return target
