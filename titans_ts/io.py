"""Writing files so that a failure never leaves a half-written one behind."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside `target`; on success rename it onto `target`, else delete it."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_text(target: str | os.PathLike, text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


MODEL_FILE, CONFIG_FILE = "model.safetensors", "config.json"


def save_model_dir(path, tensors: dict, config: dict) -> Path:
    """Write path/model.safetensors and path/config.json, all or nothing (staged beside, then renamed)."""
    import json
    import shutil

    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        # on the CPU: the file is the same whichever device the model ran on, and loads on any
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(staging / MODEL_FILE))
        (staging / CONFIG_FILE).write_text(json.dumps(config, indent=1, default=str), encoding="utf-8")
        path.mkdir(exist_ok=True)
        for name in (MODEL_FILE, CONFIG_FILE):
            (staging / name).replace(path / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return path


def load_model_dir(path, expected_format: str, what: str) -> tuple[dict, dict]:
    """(tensors, config) of a folder written by `save_model_dir`; safetensors + JSON, nothing executed."""
    import json

    from safetensors.torch import load_file

    from titans_ts.errors import ConfigError

    path = Path(path)
    if not (path / CONFIG_FILE).is_file() or not (path / MODEL_FILE).is_file():
        raise ConfigError(f"{path} is not a saved {what}: expected {CONFIG_FILE} and {MODEL_FILE} in it.")
    config = json.loads((path / CONFIG_FILE).read_text(encoding="utf-8"))
    if config.get("format") != expected_format:
        raise ConfigError(f"{path / CONFIG_FILE} is not a {what} config (format {config.get('format')!r}).")
    return load_file(str(path / MODEL_FILE), device="cpu"), config  # callers move the model where it runs
