"""Shared by both domains: process set-up for training (allocator, device, seeding), the Lightning Trainer
factory and loop (`train_and_restore`, `trainer_options`), and the base training module
(`SummedMetricsModule`). Import every name from here: `from titans_ts.training import X`.

  environment.py  tune_cpu_allocator, resolve_device, check_device, seed_everything, kept_random_state
  loop.py         make_trainer, BestWeights, fit_interruptible, run_record, stop reasons, train_and_restore
  graphs.py       CUDA-graph capture of training steps (make_trainer's cuda_graphs)
  module.py       warmup_cosine_schedule, SummedMetricsModule

Each name is imported from its module when first asked for: loading and predicting with a saved model
reach `resolve_device` here without importing Lightning (seconds of start-up for a CLI command).
"""

from __future__ import annotations

from titans_ts.lazy import lazy_names

_MODULE_OF = {
    **dict.fromkeys(
        ("DEVICES", "check_device", "kept_random_state", "resolve_device", "seed_everything", "tune_cpu_allocator"),
        "environment",
    ),
    **dict.fromkeys(
        (
            "STOP_REASONS",
            "TRAINER_SETTINGS",
            "BestWeights",
            "epoch_number",
            "epochs_in_words",
            "fit_interruptible",
            "make_trainer",
            "require_finished",
            "run_record",
            "stop_note",
            "stop_reason",
            "train_and_restore",
            "trainer_options",
        ),
        "loop",
    ),
    **dict.fromkeys(("SummedMetricsModule", "warmup_cosine_schedule"), "module"),
}

__all__ = sorted(_MODULE_OF)


# tests reach Lightning as titans_ts.training.pl
__getattr__ = lazy_names(__name__, _MODULE_OF, modules={"pl": "lightning.pytorch"})
