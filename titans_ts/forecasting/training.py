"""Lightning glue for forecasting: the LightningModule, and exact metrics over every window."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader

from titans_ts.forecasting.defaults import ESTIMATOR
from titans_ts.training import SummedMetricsModule


class ForecastModule(SummedMetricsModule):
    """MSE training (AdamW, warm-up + cosine: SummedMetricsModule); logs `val_mse` and `val_mae` over every
    validation window (float64 sums of squared and absolute errors, and the element count)."""

    train_metric, n_sums = "train_mse", 3

    def __init__(self, model: nn.Module, lr=ESTIMATOR["lr"], weight_decay=ESTIMATOR["weight_decay"], warmup=0.05):
        super().__init__(model, lr=lr, weight_decay=weight_decay, warmup=warmup)

    def forward(self, x):
        return self.model(x)

    def training_step(self, batch, _):
        x, y = batch
        return self.log_train_loss(nn.functional.mse_loss(self.model(x), y), len(x))

    def validation_step(self, batch, _):
        x, y = batch
        error = (self.model(x) - y).double()
        self.accumulate(torch.stack([error.square().sum(), error.abs().sum(), error.new_tensor(error.numel())]))

    def log_validation(self, squared, absolute, count):
        self.log("val_mse", squared / max(count, 1), prog_bar=True)
        self.log("val_mae", absolute / max(count, 1), prog_bar=True)


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
