"""`TitansPTF`: the titans-ts forecasting backbone as a pytorch-forecasting (v1) model.

    from pytorch_forecasting import TimeSeriesDataSet
    from titans_ts.integrations.pytorch_forecasting import TitansPTF

    model = TitansPTF.from_dataset(training, dim=32, layers=1, learning_rate=1e-3)
    lightning.pytorch.Trainer(max_epochs=5).fit(model, training.to_dataloader(train=True), ...)
    model.predict(validation_loader, mode="prediction")  # or mode="raw", ptf's plot_prediction, metrics

The network is `SimbaForecaster` (the same memory blocks as `TitansForecaster`, no copy): every real-valued
encoder input of the dataset (`dataset.reals`: the target, covariates, and the reals ptf adds) is one variate
token, read over the encoder window (the target's token last: the tokens mix causally, so it reads every
other input, wherever ptf puts the target among its reals); the model forecasts them all and the target's
forecast is the output,
de-normalised by ptf's target normaliser. It does not read the decoder (future) values of known reals, nor
categoricals (from_dataset says so with an UnreadInputsWarning). It needs a fixed encoder length
(min_encoder_length == max_encoder_length, every sample that long) and one real-valued target, and takes
ptf's point losses and QuantileLoss (not its distribution losses). Settings not given take
TitansForecaster's defaults (titans_ts/forecasting/defaults.py); `min_scale` is the smallest window standard
deviation the network divides by, in the units of ptf's normalised inputs: a window below it (a flat one, such
as zero demand, which was otherwise divided by about 0.003 and forecast as its level with an interval of no
width; or a smooth one under a normaliser fitted on the whole series) is divided by min_scale instead. A
checkpoint saved before it existed loads with 0 (as it was trained).

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
        min_scale: float = 0.1,
        target_last: bool = True,
        **kwargs,
    ):
        if variant not in TOKENIZED:  # dlinear and the naive forecasts are not the backbone this wraps
            raise ConfigError(
                f"TitansPTF: variant={variant!r}; it wraps the SiMBA backbone, so one of {TOKENIZED}. For DLinear or "
                "a naive forecast use TitansForecaster(variant=...), or pytorch-forecasting's own Baseline."
            )
        _check_settings(kwargs)
        self.save_hyperparameters()
        kwargs.setdefault("loss", MAE())
        _check_loss(kwargs["loss"])
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
            min_scale=min_scale,
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
        expected = self.hparams.encoder_length
        lengths = x.get("encoder_lengths")
        if lengths is not None and bool((lengths != expected).any()):  # ptf pads a short one with zeros
            raise ConfigError(
                f"TitansPTF reads encoder windows of {expected} steps; this batch has windows of "
                f"{sorted(set(lengths.tolist()) - {expected})} steps (a series with less history than that, or "
                f"min_encoder_length < {expected} in TimeSeriesDataSet.from_dataset / predict): give every series "
                f"at least {expected} steps before the forecast, or build the dataset with that encoder length."
            )
        position = self.hparams.target_position
        if self.hparams.get("target_last", False):  # the variate tokens mix causally: the target's reads every input
            order = [c for c in range(inputs.shape[-1]) if c != position] + [position]
            inputs, position = inputs[..., order], inputs.shape[-1] - 1
        if self.levels is not None:  # (batch, prediction length, levels), in the loss's order
            _, levels = self.network.forecast(inputs)
            forecast = levels[:, :, position][..., self.level_order]
        else:
            forecast = self.network(inputs)[..., position]  # (batch, prediction length)
        prediction = self.transform_output(forecast, target_scale=x["target_scale"])
        return self.to_network_output(prediction=prediction)

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """A checkpoint saved before min_scale existed was trained without a floor: it loads without one (the
        default 0.1 would change its forecasts wherever a window's standard deviation is below 0.1)."""
        super().on_load_checkpoint(checkpoint)
        if "target_last" not in checkpoint.get("hyper_parameters", {}):  # trained reading the inputs in their order
            self.hparams.target_last = False
        if "min_scale" not in checkpoint.get("hyper_parameters", {}):
            self.hparams.min_scale = 0.0
            for module in self.modules():
                if hasattr(module, "min_scale"):
                    module.min_scale = 0.0

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
            raise ConfigError(
                f"TitansPTF forecasts one target, named by a string (target='y'); the dataset has target="
                f"{dataset.target!r}."
            )
        reals = list(dataset.reals)
        if dataset.target in dataset.categoricals:
            raise ConfigError(
                f"the target {dataset.target!r} is categorical; TitansPTF forecasts a real-valued target "
                "(classification is not supported)."
            )
        if dataset.target not in reals:
            raise ConfigError(
                f"the target {dataset.target!r} must be a real-valued encoder input (time_varying_unknown_reals)."
            )
        derived = sorted(set(kwargs) & {"encoder_length", "prediction_length", "n_inputs", "target_position"})
        if derived:
            raise ConfigError(
                f"TitansPTF.from_dataset takes {derived} from the dataset; leave them out (to change them, build "
                "the TimeSeriesDataSet with other lengths or inputs)."
            )
        _check_settings(kwargs)  # before the warning: a call refused says one thing
        _warn_of_unread_inputs(dataset)
        sizes = {
            "encoder_length": dataset.max_encoder_length,
            "prediction_length": dataset.max_prediction_length,
            "n_inputs": len(reals),
            "target_position": reals.index(dataset.target),
        }
        return super().from_dataset(dataset, **{**sizes, **kwargs})


# Where a setting of TitansForecaster (or a guess) is said in pytorch-forecasting's terms instead.
_ELSEWHERE = {
    "lookback": "the TimeSeriesDataSet's max_encoder_length",
    "horizon": "the TimeSeriesDataSet's max_prediction_length",
    "quantiles": "loss=QuantileLoss([0.1, 0.5, 0.9])",
    "epochs": "lightning's Trainer(max_epochs=...)",
    "batch_size": "to_dataloader(batch_size=...)",
    "lr": "learning_rate=",
}


def _check_settings(kwargs: dict) -> None:
    """Settings neither TitansPTF nor pytorch-forecasting's BaseModel takes, refused by name with where they are
    said instead (they reached BaseModel as a bare TypeError)."""
    import inspect

    own = set(inspect.signature(TitansPTF.__init__).parameters) | set(inspect.signature(BaseModel.__init__).parameters)
    unknown = sorted(set(kwargs) - own - {"self", "kwargs"})
    if not unknown:
        return
    instead = [f"{name}: {_ELSEWHERE[name]}" for name in unknown if name in _ELSEWHERE]
    said = f" Instead, {'; '.join(instead)}." if instead else ""
    raise ConfigError(
        f"TitansPTF takes no setting(s) {unknown}: its own are variant, dim, layers, heads, memory_depth, dropout and "
        f"min_scale (variate tokens, the memory's default chunks), beside pytorch-forecasting's (learning_rate, loss, "
        f"weight_decay, optimizer, ...).{said} For patch tokens or other chunks, use TitansForecaster."
    )


def _check_loss(loss) -> None:
    """ptf's point losses and QuantileLoss; its distribution losses and MultiLoss need outputs this does not make."""
    from pytorch_forecasting.metrics import DistributionLoss, MultiLoss

    if isinstance(loss, (DistributionLoss, MultiLoss)):
        raise ConfigError(
            f"TitansPTF: loss={type(loss).__name__}() is not supported: it forecasts points (MAE, RMSE, SMAPE, "
            "MASE, PoissonLoss, TweedieLoss, ...) or quantiles (QuantileLoss([0.1, 0.5, 0.9])), not a distribution's "
            "parameters and not several targets."
        )


def _warn_of_unread_inputs(dataset) -> None:
    """Say which of the dataset's inputs the network never reads: the decoder (future) values of the known reals
    (their encoder values are read, as every real's), and every categorical."""
    import warnings

    from titans_ts.errors import UnreadInputsWarning

    known = [name for name in dataset.time_varying_known_reals or [] if name != "relative_time_idx"]
    categoricals = list(dataset.categoricals or [])
    if not known and not categoricals:
        return
    parts = [f"the future (decoder) values of the known reals {known} (their past values are inputs)"] if known else []
    parts += [f"the categoricals {categoricals}"] if categoricals else []
    warnings.warn(
        f"TitansPTF does not read {' nor '.join(parts)}: it forecasts from the encoder window of the real inputs. "
        "A model that reads them: pytorch-forecasting's TemporalFusionTransformer or NHiTS.",
        UnreadInputsWarning,
        stacklevel=3,
    )
