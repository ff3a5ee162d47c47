"""Checkpoints that let a killed run continue: Lightning's own mechanism, written atomically.

A training run with a checkpoint folder writes `last.ckpt` after every validated epoch and, with
`minutes`, `timed.ckpt` every that many minutes of training (Lightning's ModelCheckpoint); each holds the
model, optimizer, scheduler, loop and callback states (early stopping, the best weights so far, the time
budget used) and, through `RngState`, the random generators, the train loader's shuffling generator and
where that loader stands in its epoch (`ResumableLoader`), so that a resumed run is the uninterrupted one.
Files are written to a temporary name and renamed, so a kill while writing leaves the previous checkpoint
whole. `settings.json` beside them records what the run was started with; a resume with other settings is
refused with the differences listed; once the run ended on its own it says so (`finished`), and a new fit
into the folder replaces its checkpoints (the CLI removes them once its results are written). Checkpoints are
Lightning's (pickled) format and are only read by `resume`; a saved *model* folder never is.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import socket
import time
from datetime import timedelta
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import ModelCheckpoint
from torch.utils.data import DataLoader

from titans_ts.errors import ConfigError, ResumeMismatchError
from titans_ts.estimator_base import RUN_ONLY
from titans_ts.io import LOCK_FILE, SETTINGS_FILE, atomic_path, atomic_write_text, json_value
from titans_ts.version import __version__

CHECKPOINT_FILES = ("last.ckpt", "timed.ckpt")
FINISHED = "finished"  # in settings.json: the run ended on its own (mark_finished)


class AtomicCheckpointIO(TorchCheckpointIO):
    """torch.save to a temporary file beside the target, then rename: never a half-written checkpoint."""

    def save_checkpoint(self, checkpoint, path, storage_options=None) -> None:
        with atomic_path(path) as tmp:
            torch.save(checkpoint, tmp)

    def load_checkpoint(self, path, map_location=None, weights_only=None):
        # our own checkpoints hold NumPy and Python RNG states, which weights_only loading refuses
        return torch.load(path, map_location=map_location or "cpu", weights_only=False)


class RngState(pl.Callback):
    """What a checkpoint must carry for a resumed run to draw what the uninterrupted one would: the random
    generators (Python's, NumPy's, torch's on CPU and CUDA, the train loader's shuffling generator) and, for a
    `ResumableLoader`, where it stands in its epoch.

    The loader's place goes through this callback too, not only Lightning's own saving of a loader's state:
    Lightning gives a loader its state back only if it builds the loader after the checkpoint is read, and ours
    is built earlier, when `configure_optimizers` asks for the number of steps (the schedule's length). Given
    back twice, the place is the same."""

    def __init__(self, loader_generator: torch.Generator | None = None, numpy_generators=()):
        self.loader_generator = loader_generator
        self.numpy_generators = list(numpy_generators)  # e.g. a data augmentation's own generator
        self._loader = None  # the train loader, once training starts
        self._place = None  # a checkpoint's loader place, given to the loader when training starts

    def on_train_start(self, trainer, pl_module) -> None:
        loader = trainer.train_dataloader
        self._loader = loader if isinstance(loader, ResumableLoader) else None
        if self._loader is not None and self._place is not None:
            self._loader.load_state_dict(self._place)
        self._place = None

    def state_dict(self) -> dict:
        state = {
            "python": random.getstate(),
            "numpy": np.random.get_state(),
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        }
        if self.loader_generator is not None:
            state["loader"] = self.loader_generator.get_state()
        state["numpy_generators"] = [g.bit_generator.state for g in self.numpy_generators]
        state["loader_place"] = self._loader.state_dict() if self._loader is not None else None
        return state

    def load_state_dict(self, state: dict) -> None:
        random.setstate(state["python"])
        np.random.set_state(state["numpy"])
        torch.set_rng_state(state["torch"])
        if state.get("cuda") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda"])
        if self.loader_generator is not None and "loader" in state:
            self.loader_generator.set_state(state["loader"])
        for generator, saved in zip(self.numpy_generators, state.get("numpy_generators", []), strict=False):
            generator.bit_generator.state = saved
        self._place = state.get("loader_place")  # None in a checkpoint from before the loader kept its place


class ResumableLoader(DataLoader):
    """The train loader of a run with checkpoints: where it stands in its epoch is part of each checkpoint.

    `RngState` saves `state_dict()` with every checkpoint and, resuming from one written part-way through an
    epoch (`checkpoint_minutes`), gives it back (`load_state_dict`) before the epoch goes on; the loader then
    reads the rest of that epoch's batches in the uninterrupted run's order: it shuffles again from the
    shuffling generator's state at the epoch's start and skips the batches already trained on. They are skipped
    as indices, so nothing is loaded or transformed for them (an augmentation's generator does not move).
    Without this, the epoch started over in a new order and a resumed run only came close to the uninterrupted
    one. The methods are Lightning's stateful-loader protocol too, so Lightning knows the loader resumes. A
    place saved with another number of batches an epoch (another number of processes) is not used: the rest of
    that epoch (Lightning counts its batches on) is read in a new order (docs/scaling.md: the order differs).

    batches: the batches of indices in an epoch's order (a BatchSampler, or a fixed list of lists); generator:
    the generator that shuffles them (None: the order does not change between epochs)."""

    def __init__(self, dataset, batches, generator: torch.Generator | None = None, **options):
        super().__init__(dataset, batch_sampler=_SkippedBatches(batches), generator=generator, **options)
        self._epoch_start = None  # the shuffling generator's state when this epoch's iteration began
        self._taken = 0  # batches of this epoch handed to training
        self._skip_next = 0  # batches the next iteration leaves out: a resumed epoch's, already trained on

    def __iter__(self):
        skip, self._skip_next = self._skip_next, 0
        if self.generator is not None:
            if skip:
                self.generator.set_state(self._epoch_start)
            else:
                self._epoch_start = self.generator.get_state()
        self.batch_sampler.leave_out(skip)
        self._taken = skip
        global_rng = torch.get_rng_state() if skip and self.generator is None else None
        batches = super().__iter__()  # draws a seed for workers: from `generator`, else from torch's generator
        if global_rng is not None:  # which the uninterrupted run did at the epoch's start, before the checkpoint
            torch.set_rng_state(global_rng)
        for batch in batches:
            self._taken += 1
            yield batch

    def state_dict(self) -> dict:
        """Where the loader stands: the shuffling generator's state at the epoch's start, the batches taken."""
        return {"epoch_start": self._epoch_start, "taken": self._taken, "batches": len(self)}

    def load_state_dict(self, place: dict) -> None:
        """Go on from `place` (a `state_dict`) at the next iteration: the epoch's next batch."""
        # saved after the epoch's last batch: Lightning goes on to its validation, the next epoch starts anew
        if place.get("batches", len(self)) == len(self) and place["taken"] < len(self):  # (none: from 6da1ed2)
            self._epoch_start, self._skip_next = place["epoch_start"], place["taken"]


class _SkippedBatches:
    """Batches of indices; the next iteration leaves out its first `leave_out(n)` (then none again)."""

    def __init__(self, batches):
        self.batches, self._skip = batches, 0

    def leave_out(self, n: int) -> None:
        self._skip = n

    def __iter__(self):
        batches, skip = iter(self.batches), self._skip
        self._skip = 0
        for _ in range(skip):
            next(batches, None)
        yield from batches

    def __len__(self) -> int:
        return len(self.batches)


def checkpoint_callbacks(folder, minutes: float | None = None) -> list[pl.Callback]:
    """ModelCheckpoints writing `last.ckpt` every validated epoch and `timed.ckpt` every `minutes`."""
    folder = Path(folder)
    callbacks = [
        ModelCheckpoint(dirpath=folder, filename="last", save_top_k=1, every_n_epochs=1, enable_version_counter=False)
    ]
    if minutes:
        callbacks.append(
            ModelCheckpoint(
                dirpath=folder,
                filename="timed",
                save_top_k=1,
                train_time_interval=timedelta(minutes=minutes),
                enable_version_counter=False,
            )
        )
    return callbacks


def latest_checkpoint(folder) -> Path | None:
    """The newest checkpoint in `folder`, or None."""
    found = [Path(folder) / name for name in CHECKPOINT_FILES if (Path(folder) / name).is_file()]
    return max(found, key=lambda p: p.stat().st_mtime_ns) if found else None


def forget_unstarted(folder) -> None:
    """After a run stopped before its first checkpoint: the settings it recorded as it started go too, and the
    folder when nothing else is in it (a stopped run leaves nothing behind but what --resume continues)."""
    from titans_ts.distributed import is_main_process

    folder = Path(folder)
    if is_main_process() and latest_checkpoint(folder) is None:  # rank 0 wrote them
        (folder / SETTINGS_FILE).unlink(missing_ok=True)
        with contextlib.suppress(OSError):  # not empty: kept
            folder.rmdir()


def forget_unstarted_run(out) -> None:
    """After a run stopped before its first checkpoint (Ctrl-C, an error): its folder goes when it holds nothing
    but the settings the run recorded as it started, so that no empty model folder is left behind. A folder
    holding anything else (an earlier model, a resumable run) is kept as it is."""
    from titans_ts.distributed import is_main_process
    from titans_ts.io import started_only

    out = Path(out)
    if is_main_process() and out.is_dir() and started_only(out):
        shutil.rmtree(out, ignore_errors=True)


# Settings that are data fingerprints (`count:hash`), in words: the training data, pretraining's corpus windows,
# and the evaluation sequences its leakage guard drops windows for.
FINGERPRINTS = {
    "data": ("the data", "another file or other rows"),
    "corpus": ("the corpus", "other files or records, or another --window"),
    "evaluation": ("the evaluation sequences excluded from it", "another --exclude"),
}


def _difference(key: str, saved, now) -> str:
    """One setting a resume would change, in words (a data fingerprint is `count:hash`)."""
    if key in FINGERPRINTS and isinstance(saved, str) and isinstance(now, str):
        what, why = FINGERPRINTS[key]
        size, size_now = (
            f"shape {part}" if part.startswith("(") else f"{part} items"
            for part in (saved.split(":")[0], now.split(":")[0])
        )
        if size == size_now:
            return f"{what}: other values of the same size ({size}; {why})"
        return f"{what}: {size} in the checkpoint, {size_now} now ({why})"
    return f"{key}: {saved!r} in the checkpoint, {now!r} now"


def start_or_resume(folder, settings: dict, resume: bool) -> Path | None:
    """Before training: the checkpoint to resume from (None for a fresh start), after checking `settings`
    against the ones the checkpoints were written with; a fresh start records them."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ConfigError(f"checkpoint_dir {folder} is a file: checkpoints go into a folder; choose another path.")
    settings = json.loads(json.dumps(settings, default=json_value))  # as the file will hold them
    if resume:
        checkpoint = latest_checkpoint(folder)  # a finished run folder is refused before (prepare_run_folder)
        if checkpoint is None:
            raise nothing_to_resume(folder)
        saved = json.loads((folder / SETTINGS_FILE).read_text(encoding="utf-8"))
        saved.pop(FINISHED, None)
        differences = [
            _difference(key, saved.get(key), settings.get(key))
            for key in sorted(set(saved) | set(settings))
            if saved.get(key) != settings.get(key)
        ]
        if differences:
            raise ResumeMismatchError(
                f"cannot resume {folder} with other settings than it was started with: {'; '.join(differences)}. "
                "Resume with the settings it was started with, or start it again (CLI: --overwrite).",
                differences,
            )
        return checkpoint
    if latest_checkpoint(folder) is not None and _finished(folder):  # a finished run's: a new fit replaces them
        for name in CHECKPOINT_FILES:
            (folder / name).unlink(missing_ok=True)
    if latest_checkpoint(folder) is not None:
        raise ConfigError(
            f"{folder} holds the checkpoints of an unfinished run: continue it with fit(..., resume=True) (CLI: "
            "--resume), or start again with another checkpoint_dir (CLI: --overwrite)."
        )
    from titans_ts.distributed import is_main_process

    if is_main_process():
        atomic_write_text(folder / SETTINGS_FILE, json.dumps(settings, indent=1))
    return None


def mark_finished(folder) -> None:
    """After a run ended on its own (not interrupted): its settings say so, and a new fit into the same
    checkpoint_dir starts afresh where it would refuse an unfinished run's checkpoints. The checkpoints stay
    until then: a caller that fails to write its results can still resume and get the same model."""
    from titans_ts.distributed import is_main_process

    path = Path(folder) / SETTINGS_FILE
    if is_main_process() and path.is_file():
        settings = json.loads(path.read_text(encoding="utf-8"))
        atomic_write_text(path, json.dumps(settings | {FINISHED: True}, indent=1))


def _finished(folder: Path) -> bool:
    path = folder / SETTINGS_FILE
    try:
        return bool(json.loads(path.read_text(encoding="utf-8")).get(FINISHED))
    except (OSError, ValueError, AttributeError):
        return False


def estimator_checkpoint(estimator, fingerprint: str, resume: bool) -> Path | None:
    """`start_or_resume` for an estimator's fit: its settings are its parameters (but RUN_ONLY), the data's
    fingerprint and the library version. None when the estimator has no checkpoint_dir."""
    if estimator.checkpoint_dir is None:
        if resume:
            raise ConfigError("resume=True needs checkpoint_dir= (where the run wrote its checkpoints).")
        return None
    settings = {k: v for k, v in estimator.get_params().items() if k not in RUN_ONLY}
    settings |= {"data": fingerprint, "titans_ts": __version__}
    return start_or_resume(Path(estimator.checkpoint_dir).expanduser(), settings, resume)


@contextlib.contextmanager
def run_folder_lock(out):
    """Held while a run writes into its folder `out` (checkpoints, model, results): a second run given the same
    folder (the command started again in another terminal, an overlapping job) is refused before it touches
    anything, where both wrote checkpoints and models into one folder (or cleared the other's). The lock is
    the operating system's (flock on out/.titans-run.lock, which names its holder): it is released when the
    run ends, however it ends (a kill too), so a stopped run never leaves its folder locked. Under DDP rank 0
    holds it for the run. Where flock is missing (Windows) nothing is locked."""
    from titans_ts.distributed import is_main_process

    try:
        import fcntl
    except ImportError:  # no flock: the run goes on unguarded, as before
        fcntl = None
    if fcntl is None or not is_main_process():
        yield
        return
    out = Path(out)
    made = [folder for folder in (out, *out.parents) if not folder.exists()]  # removed again if left empty
    handle = _locked(out, out / LOCK_FILE)
    if handle is None:  # a file in its place, a folder that cannot be written: the run's own checks say so
        yield
        return
    handle.truncate(0)
    handle.write(f"pid {os.getpid()} on {socket.gethostname()}, since {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
    handle.flush()
    try:
        yield
    finally:
        with contextlib.suppress(OSError):  # removed before it is released (no other run locks a file being
            if os.stat(out / LOCK_FILE).st_ino == os.fstat(handle.fileno()).st_ino:  # removed), if still its own
                (out / LOCK_FILE).unlink()
        handle.close()
        for folder in made:  # the folders this run made and left empty (a refusal, a stop before any file) go too
            try:
                folder.rmdir()
            except OSError:
                break


def _locked(out: Path, path: Path):
    """The lock file, open and locked by this process; None where it cannot be made (the run's checks say why)."""
    import fcntl

    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    while True:
        try:
            handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115 (held until the run ends)
        except OSError:
            return None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:  # held by another process
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise ConfigError(
                f"{out} is in use by another run ({holder}): wait for it to finish, or give this run another --out. "
                "Two runs writing into one folder would mix their checkpoints and models."
            ) from None
        except OSError:  # a file system without locks (some network mounts): the run goes on unguarded
            handle.close()
            with contextlib.suppress(OSError):
                path.unlink()
            return None
        with contextlib.suppress(OSError):  # the file locked is still the one at the path (not one a run removed)
            if os.fstat(handle.fileno()).st_ino == os.stat(path).st_ino:
                return handle
        handle.close()


def prepare_run_folder(out, overwrite: bool, resume: bool) -> Path:
    """Before a CLI-level run: its output folder checked (a saved model is replaced only with `overwrite`) and,
    unless resuming, stale checkpoints cleared; returns the run's checkpoint folder, `out/checkpoints`.
    Every DDP rank checks (a refusal on rank 0 alone left ranks started together by torchrun or srun waiting
    for it); only rank 0 clears, and another rank finds at most the settings rank 0 records as it starts."""
    from titans_ts.distributed import is_main_process

    check_run_folder(out, overwrite, resume)
    checkpoints = Path(out) / "checkpoints"
    if not resume and is_main_process():
        shutil.rmtree(checkpoints, ignore_errors=True)  # what --overwrite replaces, old checkpoints included
    return checkpoints


def check_run_folder(out, overwrite: bool, resume: bool) -> None:
    """`prepare_run_folder`'s refusals alone, without touching the folder (a caller checks them before any
    data is read): a saved model replaced only with `overwrite`; a resume only of a run that left something
    to resume (a finished run keeps no checkpoints: its metrics.json says it finished)."""
    from titans_ts.io import check_out_folder, holds_checkpoints

    out = Path(out)
    if not resume:
        check_out_folder(out, overwrite)
    elif holds_checkpoints(out / "checkpoints"):
        return
    elif any((out / name).is_file() for name in ("metrics.json", "model.safetensors")):  # pretrain writes no metrics
        again = "drop --resume (--overwrite then starts it again)"
        again = again if overwrite else "pass --overwrite instead of --resume"
        raise ConfigError(
            f"nothing to resume: the run in {out} finished (its results are there, and a finished run keeps no "
            f"checkpoints). To run it again, {again}, or give another --out."
        )
    else:  # titans-dna's folds would each start afresh, without a word
        raise nothing_to_resume(out / "checkpoints")


def nothing_to_resume(folder) -> ConfigError:
    return ConfigError(f"nothing to resume: no checkpoint in {folder}. Start the run without --resume.")


def finish_run_folder(checkpoints, interrupted: bool) -> None:
    """After the run's files are written: its checkpoints go, unless it was interrupted (then --resume
    continues it)."""
    if not interrupted:
        shutil.rmtree(checkpoints, ignore_errors=True)
