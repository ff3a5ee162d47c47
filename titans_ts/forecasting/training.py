"""Lightning glue for forecasting: the LightningModule (its exact metrics over every window: evaluation.py's
`evaluate_windows` sums them alike)."""

from __future__ import annotations

import torch
from torch import nn

from titans_ts.forecasting.defaults import ESTIMATOR
from titans_ts.forecasting.quantiles import median_index, pinball, quantile_loss
from titans_ts.training import SummedMetricsModule


class ForecastModule(SummedMetricsModule):
    """MSE training (AdamW, warm-up + cosine: SummedMetricsModule); logs `val_mse` and `val_mae` over every
    validation window (float64 sums of squared and absolute errors, and the element count).

    A QuantileForecaster (quantiles.py) trains on `quantiles.quantile_loss` instead (the pinball loss of every
    level, plus the point's MSE when 0.5 is not a level), logged as `train_loss`; validation adds `val_loss`,
    the same loss over every validation window (what early stopping watches then)."""

    train_metric, n_sums = "train_mse", 3

    def __init__(self, model: nn.Module, lr=ESTIMATOR["lr"], weight_decay=ESTIMATOR["weight_decay"], warmup=0.05):
        super().__init__(model, lr=lr, weight_decay=weight_decay, warmup=warmup)
        self.levels = getattr(model, "levels", None)  # a QuantileForecaster's levels; None: the point model
        if self.levels:
            self.train_metric, self.n_sums = "train_loss", 4

    def forward(self, x):
        return self.model(x)

    def training_step(self, batch, _):
        x, y = batch
        if self.levels:
            return self.log_train_loss(quantile_loss(*self.model.forecast(x), y, self.levels), len(x))
        return self.log_train_loss(nn.functional.mse_loss(self.model(x), y), len(x))

    def validation_step(self, batch, _):
        x, y = batch
        if self.levels:
            point, levels = self.model.forecast(x)
            error = (point - y).double()
            losses = pinball(levels, y, self.levels).double().mean(-1)  # per element: the mean over the levels
            sums = [error.square().sum(), error.abs().sum(), error.new_tensor(error.numel()), losses.sum()]
            self.accumulate(torch.stack(sums))
            return
        error = (self.model(x) - y).double()
        self.accumulate(torch.stack([error.square().sum(), error.abs().sum(), error.new_tensor(error.numel())]))

    def log_validation(self, squared, absolute, count, *pinball_sum):
        self.log("val_mse", squared / max(count, 1), prog_bar=True)
        self.log("val_mae", absolute / max(count, 1), prog_bar=True)
        if pinball_sum:  # quantile_loss over every validation element (with the point's MSE when it is trained)
            loss = pinball_sum[0] + (squared if median_index(self.levels) is None else 0.0)
            self.log("val_loss", loss / max(count, 1), prog_bar=True)
