"""The training loop both domains run: the Lightning Trainer factory, best-weight tracking, Ctrl-C handling,
the run record, and `train_and_restore`, which strings them together."""

from __future__ import annotations

import logging
import os
import time
import warnings
from collections.abc import Mapping

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import EarlyStopping, RichProgressBar, Timer
from lightning.pytorch.utilities.exceptions import MisconfigurationException

from titans_ts.distributed import launcher_problems
from titans_ts.errors import ConfigError, refuse
from titans_ts.io import plain
from titans_ts.training.environment import resolve_device
from titans_ts.training.graphs import CudaGraphSteps, cuda_graphs_requested


class _DropTrainerChatter(logging.Filter):
    """Lightning logs a cloud-service tip and a hardware summary at every Trainer start, and why it stopped at
    every end; a 5-fold CLI run would print them five times between its progress bars, and progress=False
    would not be quiet. Why training stopped is in the estimator's history_ (stop_reason)."""

    CHATTER = ("litlogger", "gpu available", "tpu available", "using bfloat16", "loading `train_dataloader`")
    CHATTER += ("`trainer.fit` stopped",)
    CHATTER += ("detected keyboardinterrupt",)  # our own line says what an interrupted run kept

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage().lower()
        return not any(part in message for part in self.CHATTER)


for _name in ("lightning.pytorch.utilities.rank_zero", "lightning.pytorch.accelerators.cuda"):
    _logger = logging.getLogger(_name)
    if not any(isinstance(f, _DropTrainerChatter) for f in _logger.filters):
        _logger.addFilter(_DropTrainerChatter())
# Raised inside Lightning by the newer torch it runs on; nothing a user of ours can act on.
warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
# A resumed run writes its checkpoints into the folder it resumes from; Lightning warns about that.
warnings.filterwarnings("ignore", message=r"Checkpoint directory .* exists and is not empty")
# Our validation sums are reduced across ranks before they are logged (`distributed.sum_across_ranks`).
warnings.filterwarnings("ignore", message=r"It is recommended to use `self.log\(.*sync_dist=True")


class LossProgressBar(RichProgressBar):
    """Lightning's rich progress bar, showing the training loss as the mean over the steps since its last
    refresh, read from the module (`SummedMetricsModule.read_train_loss`) at most every `interval` seconds
    and at each epoch's end: a read-back a few times a second instead of one per step."""

    interval = 0.5  # seconds

    def __init__(self, **options):
        super().__init__(**options)
        self._read_at, self._shown = time.monotonic(), None

    def get_metrics(self, trainer, pl_module):
        metrics = super().get_metrics(trainer, pl_module)
        if time.monotonic() - self._read_at >= self.interval:
            self._read(pl_module)
        return metrics if self._shown is None else {pl_module.train_metric: self._shown, **metrics}

    def on_train_epoch_end(self, trainer, pl_module):
        self._read(pl_module)
        super().on_train_epoch_end(trainer, pl_module)

    def _get_train_description(self, current_epoch: int) -> str:
        # Lightning counts epochs from 0 ("Epoch 0/9"); our messages count them from 1 ("Best epoch 1 of 10 run")
        total = self.trainer.max_epochs
        description = f"Epoch {epoch_number(current_epoch)}" + (f"/{total}" if total is not None and total > 0 else "")
        return f"{description:{len(self.validation_description)}}"  # as wide as "Validation": no flicker

    def _read(self, pl_module) -> None:
        read = getattr(pl_module, "read_train_loss", None)
        value = read() if read is not None else None
        self._shown = self._shown if value is None else value
        self._read_at = time.monotonic()

    def _stop_progress(self) -> None:
        # Lightning's progress makes its refresh thread, renders, then starts the thread, and its stop joins it:
        # a Ctrl-C in between (seen under load) left a thread that was never started, whose join raised
        # RuntimeError over the KeyboardInterrupt, so the run ended with a traceback instead of saving its best
        live = getattr(self.progress, "live", None)
        thread = getattr(live, "_refresh_thread", None)
        if thread is not None and thread.ident is None:  # made, not (or not yet) running
            thread.stop()  # should it still start, it ends at once
            live._refresh_thread = None
        super()._stop_progress()


class BestWeights(pl.Callback):
    """Keeps an in-memory copy of the weights at the best value of a monitored metric (lower is better).

    Restoring from memory instead of a checkpoint file: nothing is written, and nothing pickled is read.
    """

    def __init__(self, monitor: str):
        self.monitor, self.best, self.state, self.epoch = monitor, float("inf"), None, None

    def on_validation_end(self, trainer, module):
        if trainer.sanity_checking:
            return
        value = trainer.callback_metrics.get(self.monitor)
        if value is not None and float(value) < self.best:
            self.best, self.epoch = float(value), trainer.current_epoch
            self.state = {k: v.detach().clone() for k, v in module.state_dict().items()}  # on the module's device

    def restore(self, module) -> None:
        if self.state is not None:
            module.load_state_dict(self.state)

    # a checkpoint carries the best weights so far, so that a resumed run keeps them
    def state_dict(self) -> dict:
        return {"best": self.best, "epoch": self.epoch, "state": self.state}

    def load_state_dict(self, state: dict) -> None:
        self.best, self.epoch, self.state = state["best"], state["epoch"], state["state"]


def make_trainer(
    *,
    max_epochs: int,
    monitor: str,
    patience: int,
    progress: bool = True,
    max_minutes: float | None = None,
    extra_callbacks=(),
    precision: str = "32-true",
    device="auto",
    checkpoint_dir=None,
    checkpoint_minutes: float | None = None,
    loader_generator: torch.Generator | None = None,
    numpy_generators=(),
    devices=1,
    num_nodes: int = 1,
    strategy: str = "auto",
    cuda_graphs: bool | None = None,
):
    """A Lightning Trainer with early stopping on `monitor` (validation only) and best-weight tracking.

    Returns (trainer, best) where `best.restore(module)` loads the best weights after `fit`.
    checkpoint_dir: write resumable checkpoints there (`checkpointing.py`): every validated epoch, and every
    `checkpoint_minutes`; `loader_generator`, the train loader's shuffling generator, and
    `numpy_generators` (an augmentation's) are saved with them.
    device: "auto" | "cpu" | "cuda" (see `resolve_device`); it picks Lightning's accelerator ("gpu" or
    "cpu"). devices, num_nodes, strategy go straight to Lightning (e.g. devices=2, strategy="ddp": one
    process per device; docs/scaling.md). The loaders shard themselves by rank (`distributed.py`), so
    Lightning's own distributed sampler, which would score padded duplicates, is off.
    cuda_graphs: replay the training steps as CUDA graphs where they can be captured (`graphs.py`); None reads
    the environment switch TITANS_TS_CUDA_GRAPHS (off unless "1").
    """
    accelerator = "gpu" if resolve_device(device).type == "cuda" else "cpu"
    best = BestWeights(monitor)
    callbacks = [EarlyStopping(monitor=monitor, patience=patience, mode="min"), best, *extra_callbacks]
    plugins = []
    if checkpoint_dir is not None:
        from titans_ts.checkpointing import AtomicCheckpointIO, RngState, checkpoint_callbacks

        rng = RngState(loader_generator, numpy_generators)
        callbacks += [rng, *checkpoint_callbacks(checkpoint_dir, checkpoint_minutes)]
        plugins.append(AtomicCheckpointIO())
    if progress:
        callbacks.append(LossProgressBar(leave=True))
    if cuda_graphs_requested(cuda_graphs):
        callbacks.append(CudaGraphSteps())
    refuse(launcher_problems(devices, num_nodes))
    settings = dict(accelerator=accelerator, devices=devices, num_nodes=num_nodes, strategy=strategy)
    try:
        trainer = pl.Trainer(
            max_epochs=max_epochs,
            callbacks=callbacks,
            logger=False,
            enable_checkpointing=checkpoint_dir is not None,
            plugins=plugins or None,
            enable_progress_bar=progress,
            enable_model_summary=False,
            max_time={"minutes": max_minutes} if max_minutes else None,
            num_sanity_val_steps=0,
            deterministic=False,
            use_distributed_sampler=False,
            precision=precision,
            **settings,
        )
    except (MisconfigurationException, TypeError, ValueError) as exc:  # devices=-1 on the CPU: a traceback
        said = ", ".join(f"{k}={v!r}" for k, v in settings.items())
        raise ConfigError(f"Lightning cannot train with {said}: {exc}") from None
    return trainer, best


STOP_REASONS = ("early_stopping", "max_epochs", "time_budget", "interrupted")
_stopped_by_sigterm = False  # a training in this process was stopped by SIGTERM, not Ctrl-C


def stopped_by_sigterm() -> bool:
    """Whether a training in this process was interrupted by SIGTERM (a scheduler's stop, `kill`) rather than
    Ctrl-C: the CLI then exits 143, as a shell reports a process that SIGTERM ended, not Ctrl-C's 130."""
    return _stopped_by_sigterm


def fit_interruptible(trainer: pl.Trainer, module, train, val, best: BestWeights, ckpt_path=None) -> None:
    """`trainer.fit`, where Ctrl-C ends training, not the process: Lightning would exit(1) and drop the best
    weights it had; here training stops, the best weights so far stay in `best`, and the caller finishes
    (its result says stop_reason "interrupted"). Before the first validated epoch there is nothing to keep:
    KeyboardInterrupt is raised."""
    import signal

    global _stopped_by_sigterm
    handler = signal.getsignal(signal.SIGINT)
    try:
        trainer.fit(module, train, val, ckpt_path=ckpt_path)
    except SystemExit:
        if not trainer.interrupted:
            raise
        stop_rank_observers()
    finally:
        _stopped_by_sigterm = _stopped_by_sigterm or bool(trainer.interrupted and trainer.received_sigterm)
        try:
            signal.signal(signal.SIGINT, handler)  # Lightning leaves Ctrl-C ignored after an interrupt
        except (ValueError, TypeError):  # not the main thread, or a handler Python did not install
            pass
    if trainer.interrupted and best.state is None:
        from titans_ts.checkpointing import forget_unstarted

        for callback in trainer.checkpoint_callbacks:
            if callback.dirpath is not None:
                forget_unstarted(callback.dirpath)
        raise KeyboardInterrupt("training was interrupted before its first validated epoch: nothing to keep")


def stop_rank_observers() -> None:
    """After a DDP run that Ctrl-C interrupted: Lightning killed the ranks it started, and its observer of them
    (a thread polling every 5 s) would kill this process too on seeing one dead, while it saves the best weights
    (exit 137, nothing saved, on data that takes more than a few seconds to score). The ranks are gone by design,
    so their observers stop watching."""
    import threading

    for thread in threading.enumerate():
        if thread.name == "child-process-observer" and hasattr(thread, "_child_processes"):
            thread._child_processes = []  # its next look (it may be asleep) finds none, and it ends


def stop_reason(trainer: pl.Trainer) -> str:
    """Why `trainer.fit` returned: one of STOP_REASONS."""
    if trainer.interrupted:
        return "interrupted"
    timer = next((c for c in trainer.callbacks if isinstance(c, Timer)), None)
    if timer is not None:
        remaining = timer.time_remaining()
        if remaining is not None and remaining <= 0:
            return "time_budget"
    stopper = next((c for c in trainer.callbacks if isinstance(c, EarlyStopping)), None)
    if stopper is not None and stopper.stopped_epoch > 0:
        return "early_stopping"
    return "max_epochs"


def run_record(trainer: pl.Trainer, best: BestWeights, wall_seconds: float) -> dict:
    """How a training run went, for every result it produces: epochs and optimizer steps run, the best
    epoch, why it stopped (`STOP_REASONS`) and the wall time of `fit`. A budget that cut training short
    is therefore never silent."""
    return {
        "best_epoch": best.epoch,
        "epochs_run": trainer.current_epoch,
        "steps": trainer.global_step,
        "stop_reason": stop_reason(trainer),
        "train_seconds": round(wall_seconds, 3),
    }


# Estimator parameters that say how to train, and the make_trainer argument each one is.
TRAINER_SETTINGS = {
    "epochs": "max_epochs",
    "patience": "patience",
    "progress": "progress",
    "max_minutes": "max_minutes",
    "precision": "precision",
    "device": "device",
    "checkpoint_dir": "checkpoint_dir",
    "checkpoint_minutes": "checkpoint_minutes",
    "devices": "devices",
    "num_nodes": "num_nodes",
    "strategy": "strategy",
}


def trainer_options(source, /, **overrides) -> dict:
    """`make_trainer`'s keyword arguments from the settings an estimator holds, so no fit spells them out.

    source: an estimator (its attributes are read) or a mapping of the same names; each of TRAINER_SETTINGS
    that it has is passed on under make_trainer's name (epochs -> max_epochs, the others as they are), and
    one it lacks keeps make_trainer's default (e.g. precision="32-true"). `overrides` are make_trainer
    arguments that win: monitor (required), device (the resolved one), loader_generator, numpy_generators...

        train_and_restore(module, train, val, checkpoint=checkpoint,
                          **trainer_options(self, monitor="val_loss", device=device))
    """
    if isinstance(source, Mapping):
        values = {name: source[name] for name in TRAINER_SETTINGS if name in source}
    else:
        values = {name: getattr(source, name) for name in TRAINER_SETTINGS if hasattr(source, name)}
    values = {name: plain(value) for name, value in values.items()}
    if values.get("checkpoint_dir") is not None:  # "~/runs/x" is the home folder's, as the shell reads it
        values["checkpoint_dir"] = os.path.expanduser(values["checkpoint_dir"])
    return {TRAINER_SETTINGS[name]: value for name, value in values.items()} | overrides  # Lightning wants ints


def train_and_restore(module, train, val, *, checkpoint=None, **options) -> dict:
    """Train `module` and leave it holding its best weights; returns the run record.

    make_trainer(**options) (early stopping and best weights on options["monitor"]; see `trainer_options`
    for the estimator's settings), then `fit_interruptible` on the `train` / `val` loaders (Ctrl-C keeps the
    best weights so far), resuming from the Lightning checkpoint file `checkpoint` when one is given (see
    `checkpointing.estimator_checkpoint` / `start_or_resume`), then `best.restore(module)`.
    Returns `run_record(...)` (best_epoch, epochs_run, steps, stop_reason, train_seconds: the wall time of
    the fit alone, of the resumed part with "resumed": True) plus "best": the best value of the monitored
    metric. A caller that saves the record under another name renames it, e.g.
    `record["best_val_loss"] = record.pop("best")`.
    Nothing here draws a random number: seed, build the model and the loaders before calling it.
    To inject a callback in a test, patch `titans_ts.training.loop.make_trainer` (the name this looks up).
    """
    trainer, best = make_trainer(**options)
    started = time.perf_counter()
    fit_interruptible(trainer, module, train, val, best, ckpt_path=checkpoint)
    if not trainer.interrupted:
        from titans_ts.checkpointing import mark_finished

        for callback in trainer.checkpoint_callbacks:
            if callback.dirpath is not None:
                mark_finished(callback.dirpath)
    best.restore(module)
    record = run_record(trainer, best, time.perf_counter() - started) | {"best": best.best}
    if checkpoint is not None:  # train_seconds is then this part's alone
        record["resumed"] = True
    return record


def require_finished(record: dict, run: str) -> None:
    """Benchmarks and experiments record only runs that ended on their own. A run that a Ctrl-C or SIGTERM
    stopped (stop_reason "interrupted") keeps its best weights for a user, but it is not a result: this raises
    KeyboardInterrupt so that nothing is recorded and the next start runs (or resumes) it again."""
    if record.get("stop_reason") == "interrupted":
        raise KeyboardInterrupt(
            f"{run}: training was {interrupted_in(record)}, so it is not recorded as a result (its model folder is "
            "kept, marked interrupted); start again to run it (from its checkpoint where one was kept)."
        )


def epoch_number(epoch: int | None) -> int | str:
    """An epoch as people count it, from 1 (records keep Lightning's count from 0); "-" for none."""
    return "-" if epoch is None else epoch + 1


def epochs_in_words(count) -> str:
    """A count of epochs in words: "1 epoch", "3 epochs"."""
    return _counted(count, "epoch")


def _counted(count, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def interrupted_in(record: dict) -> str:
    """Where an interrupted run stopped: "interrupted in epoch 2 (1 epoch finished, 63 steps)". Lightning counts
    an epoch as run (`epochs_run`) only once it finished, so an interrupt stops the one after those."""
    finished = record.get("epochs_run")
    if finished is None:
        return "interrupted"
    steps = f", {_counted(record['steps'], 'step')}" if record.get("steps") is not None else ""
    return f"interrupted in epoch {finished + 1} ({epochs_in_words(finished)} finished{steps})"


def stop_note(record: dict, budget_minutes: float | None = None) -> str | None:
    """One line for a run that a budget or an interrupt stopped (None for a normal stop)."""
    reason = record.get("stop_reason")
    best = record.get("best_epoch")
    kept = f"the best epoch's weights (epoch {epoch_number(best)}) are kept"
    kept = "no epoch was validated" if best is None else kept
    if reason == "time_budget":  # the budget ends the epoch it is in (validated, and counted as run)
        return (
            f"Training stopped at its time budget ({budget_minutes:g} min) after "
            f"{epochs_in_words(record['epochs_run'])} ({_counted(record['steps'], 'step')}); {kept}."
        )
    if reason == "interrupted":
        return f"Training was {interrupted_in(record)}; {kept}."
    return None
