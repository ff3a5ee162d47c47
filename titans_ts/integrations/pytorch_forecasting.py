"""`TitansPTF`: the titans-ts forecasting backbone as a pytorch-forecasting (v1) model.

    from pytorch_forecasting import TimeSeriesDataSet
    from titans_ts.integrations.pytorch_forecasting import TitansPTF

    model = TitansPTF.from_dataset(training, dim=32, layers=1, learning_rate=1e-3)
    lightning.pytorch.Trainer(max_epochs=5).fit(model, training.to_dataloader(train=True), ...)
    model.predict(validation_loader, mode="prediction")  # or mode="raw", ptf's plot_prediction, metrics

The network is `SimbaForecaster` (the same memory blocks as `TitansForecaster`, no copy): every real-valued
encoder input of the dataset (the target, and covariates) is one variate token; the model forecasts them
all and the target's forecast is the output, de-normalised by ptf's target normaliser. It needs a fixed
encoder length (min_encoder_length == max_encoder_length) and one target. Settings not given take
TitansForecaster's defaults (titans_ts/forecasting/defaults.py).

Quantiles: with `loss=QuantileLoss([0.1, 0.5, 0.9])` (pytorch-forecasting's) the network is the estimator's
`QuantileForecaster` (titans_ts/forecasting/quantiles.py: the backbone's point forecast is the median, the other
levels softplus increments around it, so they cannot cross), trained on ptf's quantile loss; the output holds the
levels in the loss's order, and ptf's `model.predict(loader, mode="quantiles")` returns them (batch, prediction
length, levels), `mode="prediction"` the median. The levels need 0.5 among them (ptf's point prediction).
"""

from __future__ import annotations

import torch
from pytorch_forecasting.metrics import MAE
from pytorch_forecasting.models import BaseModel

from titans_ts.errors import ConfigError
from titans_ts.forecasting.defaults import ESTIMATOR
from titans_ts.forecasting.model import TOKENIZED, ForecastConfig, SimbaForecaster
from titans_ts.forecasting.quantiles import QuantileForecaster, level_problems, levels_of, median_index


class TitansPTF(BaseModel):
    def __init__(
        self,
        encoder_length: int,
        prediction_length: int,
        n_inputs: int,
        target_position: int,
        variant: str = ESTIMATOR["variant"],
        dim: int = ESTIMATOR["dim"],
        layers: int = ESTIMATOR["layers"],
        heads: int = ESTIMATOR["heads"],
        memory_depth: int = ESTIMATOR["memory_depth"],
        dropout: float = ESTIMATOR["dropout"],
        **kwargs,
    ):
        if variant not in TOKENIZED:  # dlinear and the naive forecasts are not the backbone this wraps
            raise ConfigError(
                f"TitansPTF: variant={variant!r}; it wraps the SiMBA backbone, so one of {TOKENIZED}. For DLinear or "
                "a naive forecast use TitansForecaster(variant=...), or pytorch-forecasting's own Baseline."
            )
        self.save_hyperparameters()
        kwargs.setdefault("loss", MAE())
        super().__init__(**kwargs)
        config = ForecastConfig(
            lookback=encoder_length,
            horizon=prediction_length,
            channels=n_inputs,
            variant=variant,
            tokens="variate",
            dim=dim,
            layers=layers,
            heads=heads,
            memory_depth=memory_depth,
            dropout=dropout,
        )
        self.network = SimbaForecaster(config)
        self.levels = self._loss_levels()
        if self.levels is not None:  # the loss's levels, in its order: positions among the sorted ones
            sorted_levels = levels_of(self.levels)
            self.network = QuantileForecaster(self.network, sorted_levels, hidden=dim)
            self.level_order = [sorted_levels.index(float(q)) for q in self.levels]

    def _loss_levels(self) -> list[float] | None:
        """The levels of a quantile loss (ptf's QuantileLoss), checked; None for a point loss."""
        from pytorch_forecasting.metrics import QuantileLoss

        if not isinstance(self.loss, QuantileLoss):
            return None
        levels = [float(q) for q in self.loss.quantiles]
        problems = level_problems(levels)
        if median_index(levels) is None:
            problems.append(f"QuantileLoss({levels}) needs 0.5 among its levels (ptf's point prediction is the median)")
        if problems:
            raise ConfigError(f"TitansPTF: {problems[0]}.")
        return levels

    def forward(self, x: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        inputs = x["encoder_cont"]  # (batch, encoder length, real inputs), normalised by the dataset
        if self.levels is not None:  # (batch, prediction length, levels), in the loss's order
            _, levels = self.network.forecast(inputs)
            forecast = levels[:, :, self.hparams.target_position][..., self.level_order]
        else:
            forecast = self.network(inputs)[..., self.hparams.target_position]  # (batch, prediction length)
        prediction = self.transform_output(forecast, target_scale=x["target_scale"])
        return self.to_network_output(prediction=prediction)

    @classmethod
    def from_dataset(cls, dataset, **kwargs):
        """Sizes from a TimeSeriesDataSet: encoder and prediction lengths, the real inputs, the target's place."""
        if dataset.min_encoder_length != dataset.max_encoder_length:
            raise ConfigError(
                "TitansPTF needs a fixed encoder length: build the TimeSeriesDataSet with "
                f"min_encoder_length == max_encoder_length (got {dataset.min_encoder_length} and "
                f"{dataset.max_encoder_length})."
            )
        if dataset.min_prediction_length != dataset.max_prediction_length:
            raise ConfigError("TitansPTF needs a fixed prediction length (min == max prediction length).")
        if not isinstance(dataset.target, str):
            raise ConfigError(f"TitansPTF forecasts one target; got {dataset.target}.")
        reals = list(dataset.reals)
        if dataset.target not in reals:
            raise ConfigError(
                f"the target {dataset.target!r} must be a real-valued encoder input (time_varying_unknown_reals)."
            )
        sizes = {
            "encoder_length": dataset.max_encoder_length,
            "prediction_length": dataset.max_prediction_length,
            "n_inputs": len(reals),
            "target_position": reals.index(dataset.target),
        }
        return super().from_dataset(dataset, **{**sizes, **kwargs})
