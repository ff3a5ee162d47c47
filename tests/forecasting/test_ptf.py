"""TitansPTF inside pytorch-forecasting: from_dataset, a Lightning fit of a few batches, ptf's predict modes."""

import warnings

import lightning.pytorch as pl
import numpy as np
import pytest
import torch

pytest.importorskip("pytorch_forecasting")
from pytorch_forecasting import TimeSeriesDataSet  # noqa: E402

from tests.data.helpers import write_series  # noqa: E402
from titans_ts.errors import ConfigError  # noqa: E402
from titans_ts.integrations.pytorch_forecasting import TitansPTF  # noqa: E402


@pytest.fixture(scope="module")
def panel(tmp_path_factory):
    """Two series of a small panel in long form: time_idx, series, target y and a covariate x."""
    frame = write_series(tmp_path_factory.mktemp("ptf") / "s.csv", rows=240, columns=4)
    parts = []
    for name, (target, covariate) in {"a": ("OT", "c0"), "b": ("c1", "c2")}.items():
        part = frame[[target, covariate]].set_axis(["y", "x"], axis=1)
        part["time_idx"], part["series"] = np.arange(len(part)), name
        parts.append(part)
    import pandas as pd

    return pd.concat(parts, ignore_index=True)


def _datasets(panel, encoder=(32, 32)):
    training = TimeSeriesDataSet(
        panel[panel.time_idx < 180],
        time_idx="time_idx",
        target="y",
        group_ids=["series"],
        min_encoder_length=encoder[0],
        max_encoder_length=encoder[1],
        min_prediction_length=8,
        max_prediction_length=8,
        time_varying_unknown_reals=["y", "x"],
    )
    validation = TimeSeriesDataSet.from_dataset(training, panel, min_prediction_idx=180, stop_randomization=True)
    return training, validation


def _quiet_trainer():
    """One epoch of at most 4 batches, nothing written or shown."""
    return pl.Trainer(
        max_epochs=1,
        limit_train_batches=4,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )


def test_titans_ptf_trains_and_predicts_in_pytorch_forecasting(panel):
    torch.manual_seed(0)
    training, validation = _datasets(panel)
    model = TitansPTF.from_dataset(training, dim=16, layers=1, heads=2, learning_rate=1e-2)
    assert model.hparams.n_inputs == 2 and model.hparams.target_position == 0
    trainer = _quiet_trainer()
    val_loader = validation.to_dataloader(train=False, batch_size=16)
    before = [p.detach().clone() for p in model.parameters()]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(model, training.to_dataloader(train=True, batch_size=16), val_loader)
        predictions = model.predict(val_loader, mode="prediction")
        raw = model.predict(val_loader, mode="raw", return_x=True)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))  # it learned
    assert predictions.shape == (len(validation), 8) and torch.isfinite(predictions).all()
    assert raw.output.prediction.shape[:2] == (len(validation), 8)
    assert "val_loss" in trainer.callback_metrics


def test_titans_ptf_needs_a_fixed_encoder_length(panel):
    training, _ = _datasets(panel, encoder=(16, 32))
    with pytest.raises(ConfigError, match="min_encoder_length == max_encoder_length"):
        TitansPTF.from_dataset(training)


@pytest.mark.parametrize("variant", ["dlinear", "naive", "seasonal_naive"])
def test_a_variant_that_is_not_the_backbone_is_refused_saying_which_are(panel, variant):
    """dlinear and naive raised a bare ValueError of the memory's blocks; seasonal_naive asked for season=,
    which TitansPTF does not take."""
    training, _ = _datasets(panel)
    with pytest.raises(ConfigError, match=rf"variant='{variant}'; it wraps the SiMBA backbone, so one of \('lmm'"):
        TitansPTF.from_dataset(training, variant=variant)


def test_its_defaults_are_the_estimators():
    import inspect

    from titans_ts.forecasting.defaults import ESTIMATOR

    ptf = {n: p.default for n, p in inspect.signature(TitansPTF).parameters.items() if n in ESTIMATOR}
    assert ptf == {name: ESTIMATOR[name] for name in ptf} and len(ptf) == 6


def test_titans_ptf_learns_quantiles_with_ptfs_quantile_loss(panel):
    from pytorch_forecasting.metrics import QuantileLoss

    torch.manual_seed(0)
    training, validation = _datasets(panel)
    loss = QuantileLoss([0.9, 0.1, 0.5])  # any order: the output follows the loss's
    model = TitansPTF.from_dataset(training, dim=16, layers=1, heads=2, learning_rate=1e-2, loss=loss)
    trainer = _quiet_trainer()
    val_loader = validation.to_dataloader(train=False, batch_size=16)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(model, training.to_dataloader(train=True, batch_size=16), val_loader)
        quantiles = model.predict(val_loader, mode="quantiles")
        point = model.predict(val_loader, mode="prediction")
    assert quantiles.shape == (len(validation), 8, 3) and torch.isfinite(quantiles).all()
    low, median, high = quantiles[..., 1], quantiles[..., 2], quantiles[..., 0]
    assert (low <= median).all() and (median <= high).all()
    torch.testing.assert_close(point, median)
    with pytest.raises(ConfigError, match="needs 0.5 among its levels"):
        TitansPTF.from_dataset(training, loss=QuantileLoss([0.1, 0.9]))
