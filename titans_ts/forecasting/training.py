"""Lightning glue for forecasting: the LightningModule, and exact metrics over every window."""

from __future__ import annotations

import lightning.pytorch as pl
import torch
from torch import nn
from torch.utils.data import DataLoader

from titans_ts.training import warmup_cosine_schedule


class ForecastModule(pl.LightningModule):
    """MSE training with AdamW and a warm-up + cosine schedule; logs `val_mse` over all val windows."""

    def __init__(self, model: nn.Module, lr: float = 1e-3, weight_decay: float = 1e-4, warmup: float = 0.05):
        super().__init__()
        self.model, self.lr, self.weight_decay, self.warmup = model, lr, weight_decay, warmup
        self._val = None  # float64 sums (squared error, absolute error, count), on the device of the batches

    def forward(self, x):
        return self.model(x)

    def training_step(self, batch, _):
        x, y = batch
        loss = nn.functional.mse_loss(self.model(x), y)
        self.log("train_mse", loss, prog_bar=True, on_step=True, on_epoch=False, batch_size=len(x))
        return loss

    def on_validation_epoch_start(self):
        self._val = None

    def validation_step(self, batch, _):
        # Every tensor made here takes the device (and dtype) of the batch: the sums stay on that device
        # and are read once per epoch, not once per batch.
        x, y = batch
        error = (self.model(x) - y).double()
        sums = torch.stack([error.square().sum(), error.abs().sum(), error.new_tensor(error.numel())])
        self._val = sums if self._val is None else self._val + sums

    def on_validation_epoch_end(self):
        from titans_ts.distributed import sum_across_ranks

        sums = torch.zeros(3, dtype=torch.float64, device=self.device) if self._val is None else self._val
        squared, absolute, count = sum_across_ranks(self, sums).tolist()  # every rank's windows, once each
        self.log("val_mse", squared / max(count, 1), prog_bar=True)
        self.log("val_mae", absolute / max(count, 1), prog_bar=True)

    def configure_optimizers(self):
        optimizer = torch.optim.AdamW(self.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        schedule = warmup_cosine_schedule(optimizer, self.trainer.estimated_stepping_batches, self.warmup)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


@torch.no_grad()
def evaluate_windows(model: nn.Module, loader: DataLoader, device=None) -> dict:
    """MSE and MAE over every window of a loader (sums over all elements, not a mean of batch means).

    device: where to run (the model is moved there); None keeps the model where it is. The batches follow
    the model; the sums stay on its device and come back to the CPU once, as Python floats.
    """
    if device is not None:
        model.to(device)
    else:  # where the model is (a parameter-free model, e.g. the naive forecasts, runs on the CPU)
        device = next((p.device for p in model.parameters()), torch.device("cpu"))
    model.eval()
    sums = torch.zeros(2, dtype=torch.float64, device=device)
    count = 0
    for x, y in loader:
        error = (model(x.to(device)) - y.to(device)).double()
        sums += torch.stack([error.square().sum(), error.abs().sum()])
        count += error.numel()
    squared, absolute = sums.tolist()
    return {"mse": squared / count, "mae": absolute / count, "windows": len(loader.dataset)}
