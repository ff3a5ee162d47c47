"""The Lightning module every training loop of both domains builds on: AdamW with a warm-up + cosine
schedule, and validation metrics as exact float64 sums over every validation example."""

from __future__ import annotations

import math

import lightning.pytorch as pl
import torch
from torch import nn


def warmup_cosine_schedule(optimizer, total_steps: int, warmup_fraction: float = 0.05):
    """Linear warm-up over `warmup_fraction` of the steps, then cosine decay to zero (stepped per batch)."""
    total_steps = max(1, int(total_steps))
    warmup = max(1, int(warmup_fraction * total_steps))

    def factor(step):
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total_steps - warmup))))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def fused_on_cuda(parameters) -> dict:
    """AdamW's options for where the parameters are: on CUDA the fused implementation (one kernel updates every
    parameter, instead of a few launches per tensor: a small model's step is launch-bound there); elsewhere
    torch's default, so CPU results stay exactly as they were."""
    on_cuda = bool(parameters) and all(p.device.type == "cuda" for p in parameters)
    return {"fused": True} if on_cuda else {}


class SummedMetricsModule(pl.LightningModule):
    """Base of the training modules (ForecastModule, ClassifierModule, LanguageModelModule).

    It holds `model` (its weights are the module's, under "model."), trains it with AdamW(lr, weight_decay)
    and `warmup_cosine_schedule(warmup)` stepped per batch, and turns validation into exact metrics:
    each validation batch adds a float64 vector of sums on the batch's device (nothing is read back per
    batch); at the epoch's end the vector is summed over DDP ranks (`distributed.sum_across_ranks`) and
    read once, so every validation example counts once, whatever the batch sizes.

    A subclass writes Lightning's two steps and says how to log the totals:
      - `training_step(batch, index)`: compute the loss and `return self.log_train_loss(loss, len(x))`
        (logged per step under the class attribute `train_metric`, "train_loss" unless overridden);
      - `validation_step(batch, index)`: compute this batch's sums as one float64 vector of length `n_sums`
        (class attribute), e.g. (loss summed over examples, correct, count), and `self.accumulate(sums)`;
        make every tensor from the batch (`x.new_tensor`, `device=x.device`) so that it stays on its device;
      - `log_validation(*totals)`: the epoch's totals over every rank as Python floats; `self.log` the
        metrics from them.

    Subclasses: ClassifierModule and LanguageModelModule (genomics/training.py), ForecastModule
    (forecasting/training.py).
    """

    train_metric = "train_loss"
    n_sums = 1

    def __init__(self, model: nn.Module, lr: float = 1e-3, weight_decay: float = 0.01, warmup: float = 0.05):
        super().__init__()
        self.model, self.lr, self.weight_decay, self.warmup = model, lr, weight_decay, warmup
        self._val = None  # the epoch's float64 sums so far, on the device of the batches
        self._train_sum, self._train_steps = None, 0  # the step losses since the progress bar last read them

    def log_train_loss(self, loss: torch.Tensor, batch_size: int) -> torch.Tensor:
        """Log a training step's loss and return it, reading nothing back.

        Lightning turns every progress-bar metric into a Python number after every batch, which on CUDA
        makes the host wait for the step to finish before it may queue the next. So the loss is logged
        without `prog_bar`, and added to a sum on its device that the progress bar reads a few times a
        second (`read_train_loss`).
        """
        detached = loss.detach()
        self._train_sum = detached if self._train_sum is None else self._train_sum + detached
        self._train_steps += 1
        self.log(self.train_metric, loss, on_step=True, on_epoch=False, batch_size=batch_size)
        return loss

    def read_train_loss(self) -> float | None:
        """The mean training loss over the steps since the last call (one read-back), None if none ran."""
        if self._train_sum is None:
            return None
        mean = float(self._train_sum) / self._train_steps
        self._train_sum, self._train_steps = None, 0
        return mean

    def accumulate(self, sums: torch.Tensor) -> None:
        """Add one validation batch's float64 sums to the epoch's (on the batch's device: no sync)."""
        self._val = sums if self._val is None else self._val + sums

    def log_validation(self, *totals: float) -> None:
        """Log the metrics from the epoch's totals (every rank's, as Python floats): the subclass's part."""
        raise NotImplementedError

    def on_validation_epoch_start(self):
        self._val = None

    def on_validation_epoch_end(self):
        from titans_ts.distributed import sum_across_ranks

        # a rank without validation batches still joins the reduction, with zeros
        sums = torch.zeros(self.n_sums, dtype=torch.float64, device=self.device) if self._val is None else self._val
        self.log_validation(*sum_across_ranks(self, sums).tolist())  # every rank's examples, once each

    def configure_optimizers(self):  # Lightning calls it once the model is on its device
        parameters = list(self.parameters())
        options = {"lr": self.lr, "weight_decay": self.weight_decay, **fused_on_cuda(parameters)}
        optimizer = torch.optim.AdamW(parameters, **options)
        schedule = warmup_cosine_schedule(optimizer, self.trainer.estimated_stepping_batches, self.warmup)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}
