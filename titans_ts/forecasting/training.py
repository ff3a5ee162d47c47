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
        self._val = torch.zeros(3, dtype=torch.float64)

    def forward(self, x):
        return self.model(x)

    def training_step(self, batch, _):
        x, y = batch
        loss = nn.functional.mse_loss(self.model(x), y)
        self.log("train_mse", loss, prog_bar=True, on_step=True, on_epoch=False, batch_size=len(x))
        return loss

    def on_validation_epoch_start(self):
        self._val.zero_()

    def validation_step(self, batch, _):
        x, y = batch
        error = (self.model(x) - y).double()
        self._val += torch.stack([error.square().sum(), error.abs().sum(), torch.tensor(error.numel())]).cpu()

    def on_validation_epoch_end(self):
        squared, absolute, count = self._val.tolist()
        self.log("val_mse", squared / max(count, 1), prog_bar=True)
        self.log("val_mae", absolute / max(count, 1), prog_bar=True)

    def configure_optimizers(self):
        optimizer = torch.optim.AdamW(self.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        schedule = warmup_cosine_schedule(optimizer, self.trainer.estimated_stepping_batches, self.warmup)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


@torch.no_grad()
def evaluate_windows(model: nn.Module, loader: DataLoader) -> dict:
    """MSE and MAE over every window of a loader (sums over all elements, not a mean of batch means)."""
    model.eval()
    squared = absolute = 0.0
    count = 0
    for x, y in loader:
        error = (model(x) - y).double()
        squared += error.square().sum().item()
        absolute += error.abs().sum().item()
        count += error.numel()
    return {"mse": squared / count, "mae": absolute / count, "windows": len(loader.dataset)}
