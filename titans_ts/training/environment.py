"""Process set-up for a run: the CPU allocator, the device choice, seeding."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import sys

import torch

from titans_ts.errors import ConfigError, DeviceUnavailableError

DEVICES = ("auto", "cpu", "cuda")
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc mallopt parameters


def tune_cpu_allocator() -> bool:
    """Serve large tensors from the heap instead of fresh mmaps (Linux/glibc only; returns success).

    A training step allocates and frees many ~1 MB temporaries. glibc maps each one anew once long
    sequences have pushed its adaptive threshold around, and every new mapping costs page faults: at
    T = 8k the memory's elementwise ops ran 2-3x slower per call than at T = 1k. Raising the mmap
    threshold keeps freed blocks for reuse (same effect as MALLOC_MMAP_THRESHOLD_ in the environment).
    """
    if not sys.platform.startswith("linux"):
        return False
    name = ctypes.util.find_library("c") or "libc.so.6"
    try:
        libc = ctypes.CDLL(name)
        # Setting the mmap threshold freezes the trim threshold at 128 kB: every step would then hand its
        # freed activations back to the OS and fault them in again (at T=16k, 5.7 GB per step). Keep them.
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, 2**31 - 1)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))
    except (OSError, AttributeError):
        return False


def resolve_device(device="auto") -> torch.device:
    """The torch device for an estimator's `device` parameter: "auto" (CUDA when available), "cpu" or "cuda".

    The one place both domains turn the parameter into a device. An unknown value is a ConfigError (a
    ValueError) naming it; "cuda" on a machine or torch build without CUDA is a DeviceUnavailableError.
    A torch.device of type cpu or cuda is accepted as it is (after the same availability check).
    """
    if isinstance(device, torch.device):
        kind = device.type
    elif isinstance(device, str) and device in DEVICES:
        kind = device
    else:
        raise ConfigError(
            f"device={device!r} is not one of {DEVICES}: use 'auto' (CUDA when available), 'cpu' or 'cuda'."
        )
    if kind == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if kind == "cuda" and not torch.cuda.is_available():
        build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
        raise DeviceUnavailableError(
            f"device='cuda' was asked for, but CUDA is not available here (torch {torch.__version__}, {build}). "
            "Use device='cpu' (CLI: --device cpu), or device='auto' to use a GPU only when there is one; "
            "for the GPU, install a CUDA build of torch on a machine with an NVIDIA driver."
        )
    if kind not in ("cpu", "cuda"):
        raise ConfigError(f"device={device!r}: only CPU and CUDA devices are supported ({DEVICES}).")
    return device if isinstance(device, torch.device) else torch.device(kind)


def check_device(device) -> None:
    """Fail before any file is read when a device override is unknown or absent (None: no override, fine).

    For library functions that load a saved model onto `device` (predict / evaluate a model folder)."""
    if device is not None:
        resolve_device(device)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (through Lightning) for a reproducible run."""
    import lightning.pytorch as pl  # here: predicting never imports Lightning (seconds of start-up)

    pl.seed_everything(seed, workers=True, verbose=False)


@contextlib.contextmanager
def kept_random_state():
    """The caller's random generators (Python's, NumPy's, torch's, and Lightning's seed variables) as they were
    once the block ends: a fit seeds them all for its own run, and a script's own draws after it went on from
    the fit's seed."""
    import os
    import random

    import numpy as np

    python, numpy = random.getstate(), np.random.get_state()
    variables = {name: os.environ.get(name) for name in ("PL_GLOBAL_SEED", "PL_SEED_WORKERS")}
    cuda = list(range(torch.cuda.device_count())) if torch.cuda.is_initialized() else []
    try:
        with torch.random.fork_rng(devices=cuda):
            yield
    finally:
        random.setstate(python)
        np.random.set_state(numpy)
        for name, value in variables.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
