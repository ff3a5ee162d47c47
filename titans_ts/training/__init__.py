"""Shared by both domains: process set-up for training (allocator, device, seeding), the Lightning Trainer
factory and loop (`train_and_restore`, `trainer_options`), and the base training module
(`SummedMetricsModule`). Import every name from here: `from titans_ts.training import X`.

  environment.py  tune_cpu_allocator, resolve_device, check_device, seed_everything, kept_random_state
  loop.py         make_trainer, BestWeights, fit_interruptible, run_record, stop reasons, train_and_restore
  graphs.py       CUDA-graph capture of training steps (make_trainer's cuda_graphs)
  module.py       warmup_cosine_schedule, SummedMetricsModule
"""

from __future__ import annotations

import lightning.pytorch as pl  # noqa: F401  (tests reach Lightning as titans_ts.training.pl)

from titans_ts.training.environment import (
    DEVICES,
    check_device,
    kept_random_state,
    resolve_device,
    seed_everything,
    tune_cpu_allocator,
)
from titans_ts.training.loop import (
    STOP_REASONS,
    TRAINER_SETTINGS,
    BestWeights,
    epoch_number,
    fit_interruptible,
    make_trainer,
    require_finished,
    run_record,
    stop_note,
    stop_reason,
    train_and_restore,
    trainer_options,
)
from titans_ts.training.module import SummedMetricsModule, warmup_cosine_schedule

__all__ = [
    "DEVICES",
    "STOP_REASONS",
    "TRAINER_SETTINGS",
    "BestWeights",
    "SummedMetricsModule",
    "check_device",
    "epoch_number",
    "fit_interruptible",
    "kept_random_state",
    "make_trainer",
    "require_finished",
    "resolve_device",
    "run_record",
    "seed_everything",
    "stop_note",
    "stop_reason",
    "train_and_restore",
    "trainer_options",
    "tune_cpu_allocator",
    "warmup_cosine_schedule",
]
