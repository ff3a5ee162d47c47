"""TitansPTF inside pytorch-forecasting: from_dataset, a Lightning fit of a few batches, ptf's predict modes."""

import warnings

import lightning.pytorch as pl
import numpy as np
import pandas as pd
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


def test_a_flat_encoder_window_is_not_forecast_as_its_level_with_an_interval_of_no_width(panel):
    """RevIN and the quantile head divided a flat window (zero demand, a stuck sensor) by about 0.003: every
    forecast from it was its level and the 0.1-0.9 interval about 0.01 wide, whatever the model had learnt."""
    from pytorch_forecasting.metrics import QuantileLoss

    training, _ = _datasets(panel)
    x, _ = next(iter(training.to_dataloader(train=False, batch_size=4)))
    x["encoder_cont"][0, :, 0] = 0.0  # the target's window, flat
    widths = {}
    for min_scale in (0.0, 0.1):
        torch.manual_seed(0)
        model = TitansPTF.from_dataset(training, dim=16, layers=1, heads=2, loss=QuantileLoss(), min_scale=min_scale)
        with torch.no_grad():
            for parameter in model.parameters():
                parameter.mul_(5)  # a model that has learnt something: outputs far from zero
            levels = model.eval()(x).prediction  # (batch, horizon, 7 levels), data units
        widths[min_scale] = (levels[:, :, -1] - levels[:, :, 0]).mean(1)
    assert widths[0.0][0] < 0.01 * widths[0.0][1]  # the old arithmetic: collapsed, against a window that moves
    assert widths[0.1][0] > 25 * widths[0.0][0]
    # a window that moves: unchanged, but for what its covariate's window (read by the target since the target's
    # token comes last), if flatter than min_scale, moves
    torch.testing.assert_close(widths[0.1][1:], widths[0.0][1:], rtol=1e-3, atol=0)
    assert TitansPTF.from_dataset(training).hparams.min_scale == 0.1


def test_inputs_it_does_not_read_are_named_and_impossible_settings_refused(panel):
    from pytorch_forecasting.metrics import NormalDistributionLoss

    from titans_ts.errors import UnreadInputsWarning

    training, _ = _datasets(panel)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnreadInputsWarning)
        TitansPTF.from_dataset(training)  # only unknown reals: nothing to say
    frame = panel.assign(known=panel.time_idx % 7 * 1.0, kind=(panel.time_idx % 2).astype(str))
    covariates = TimeSeriesDataSet(
        frame[frame.time_idx < 180], time_idx="time_idx", target="y", group_ids=["series"],
        min_encoder_length=32, max_encoder_length=32, min_prediction_length=8, max_prediction_length=8,
        time_varying_unknown_reals=["y"], time_varying_known_reals=["known"],
        time_varying_known_categoricals=["kind"],
    )  # fmt: skip
    with pytest.warns(
        UnreadInputsWarning, match=r"future \(decoder\) values of the known reals \['known'\].*\['kind'\]"
    ):
        TitansPTF.from_dataset(covariates)
    with pytest.raises(ConfigError, match=r"takes \['encoder_length'\] from the dataset"):
        TitansPTF.from_dataset(training, encoder_length=12)  # failed later, inside a matrix product
    with pytest.raises(ConfigError, match="NormalDistributionLoss\\(\\) is not supported"):
        TitansPTF.from_dataset(training, loss=NormalDistributionLoss())  # failed at the first forward
    with pytest.raises(ConfigError, match=r"dropout=1.5 must be in \[0, 1\)"):
        TitansPTF.from_dataset(training, dropout=1.5)
    # an estimator's setting was BaseModel's bare TypeError, after the warning of unread inputs
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnreadInputsWarning)
        with pytest.raises(
            ConfigError, match=r"no setting\(s\) \['quantiles', 'tokens'\].*quantiles: loss=QuantileLoss"
        ):
            TitansPTF.from_dataset(covariates, tokens="patch", quantiles=[0.1, 0.9])
    TitansPTF.from_dataset(training, learning_rate=1e-2, weight_decay=0.1)  # pytorch-forecasting's own: taken


def test_a_series_with_a_shorter_encoder_is_refused_not_read_with_zeros(panel):
    """ptf pads a short encoder with zeros: in a batch with full ones it was read as the latest steps."""
    training, _ = _datasets(panel)
    model = TitansPTF.from_dataset(training, dim=16, layers=1, heads=2).eval()
    short = panel[(panel.series == "b") & (panel.time_idx >= 220)]  # 20 rows: 12 of history, 8 to forecast
    data = pd.concat([panel[panel.series == "a"], short], ignore_index=True)
    ahead = TimeSeriesDataSet.from_dataset(training, data, predict=True, min_encoder_length=12)
    x, _ = next(iter(ahead.to_dataloader(train=False, batch_size=4)))
    with pytest.raises(ConfigError, match=r"encoder windows of 32 steps; this batch has windows of \[12\] steps"):
        model(x)


def test_a_checkpoint_saved_before_min_scale_loads_as_it_was_trained(panel, tmp_path):
    """Its hyperparameters have no min_scale: it was trained with no floor, and the new default would change it."""
    training, _ = _datasets(panel)
    model = TitansPTF.from_dataset(training, dim=16, layers=1, heads=2)
    trainer = _quiet_trainer()
    trainer.strategy.connect(model)
    trainer.save_checkpoint(tmp_path / "new.ckpt")
    checkpoint = torch.load(tmp_path / "new.ckpt", weights_only=False)
    assert TitansPTF.load_from_checkpoint(tmp_path / "new.ckpt").network.revin.min_scale == 0.1
    del checkpoint["hyper_parameters"]["min_scale"]  # as saved before it existed
    torch.save(checkpoint, tmp_path / "old.ckpt")
    old = TitansPTF.load_from_checkpoint(tmp_path / "old.ckpt")
    assert old.network.revin.min_scale == 0.0 and old.hparams.min_scale == 0.0


def test_a_covariate_listed_after_the_target_informs_it(panel, tmp_path):
    """time_varying_unknown_reals=["y", "x"]: the variate tokens mix causally, so y (first) read nothing of x; the
    target's token now comes last. A checkpoint saved before then loads reading the inputs in their order."""
    training, validation = _datasets(panel)
    model = TitansPTF.from_dataset(training, dim=16, layers=1, heads=2).eval()
    x, _ = next(iter(validation.to_dataloader(train=False, batch_size=4)))
    position = model.hparams.target_position
    covariate = [i for i in range(x["encoder_cont"].shape[-1]) if i != position]
    assert position < max(covariate)  # the target comes before a covariate among ptf's reals
    moved = {**x, "encoder_cont": x["encoder_cont"].clone()}
    moved["encoder_cont"][..., covariate] = torch.randn_like(moved["encoder_cont"][..., covariate])
    with torch.no_grad():
        assert not torch.allclose(model(x)["prediction"], model(moved)["prediction"])
    trainer = _quiet_trainer()
    trainer.strategy.connect(model)
    trainer.save_checkpoint(tmp_path / "new.ckpt")
    checkpoint = torch.load(tmp_path / "new.ckpt", weights_only=False)
    del checkpoint["hyper_parameters"]["target_last"]  # as saved before it existed
    torch.save(checkpoint, tmp_path / "old.ckpt")
    old = TitansPTF.load_from_checkpoint(tmp_path / "old.ckpt").eval()
    assert old.hparams.target_last is False
    later = [i for i in covariate if i > position]
    after = {**x, "encoder_cont": x["encoder_cont"].clone()}
    after["encoder_cont"][..., later] = torch.randn_like(after["encoder_cont"][..., later])
    with torch.no_grad():  # as it was trained: the inputs after the target's do not reach it
        assert torch.equal(old(x)["prediction"], old(after)["prediction"])
