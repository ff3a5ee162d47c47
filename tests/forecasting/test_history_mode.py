"""TitansForecaster(mode="history"): the long-memory forecaster behind fit / predict / evaluate / update / save
and `titans-ts fit --mode history` (issue 28)."""

import copy
import io
import json
import re
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from cli.ts import app
from tests.data.helpers import write_series
from titans_ts import TitansForecaster
from titans_ts.errors import ConfigError, DataValidationError, IgnoredSettingWarning
from titans_ts.forecasting.history_mode import split_predictions
from titans_ts.forecasting.long_memory import LongMemoryForecaster
from titans_ts.forecasting.long_memory_eval import frozen_forecasts, online_forecasts, split_origins

ROWS = 700  # 70/10/20: 490 train rows, enough for two streams of 128-row segments plus a random start
TINY = dict(
    mode="history", lookback=16, horizon=4, patch_len=4, dim=8, heads=2, layers=1, memory_depth=1, chunk_size=8,
    epochs=2, patience=2, streams=2, progress=False, device="cpu", fallback="off",
)  # fmt: skip


def frame_of(rows=ROWS, seed=0) -> pd.DataFrame:
    """Three columns with a level that drifts slowly (what a long memory can follow) and daily cycles."""
    rng = np.random.default_rng(seed)
    t = np.arange(rows)
    values = np.stack(
        [np.sin(2 * np.pi * t / 24), np.cos(2 * np.pi * t / 12), np.linspace(-1, 1, rows)], axis=1
    ) + 0.3 * rng.normal(size=(rows, 3))
    return pd.DataFrame(values, columns=["a", "b", "c"], index=pd.date_range("2021-01-01", periods=rows, freq="h"))


@pytest.fixture(scope="module")
def data():
    return frame_of()


@pytest.fixture(scope="module")
def fitted(data):
    return TitansForecaster(**TINY).fit(data)


@pytest.fixture(scope="module")
def ablation(data):
    return TitansForecaster(**{**TINY, "variant": "mlp"}).fit(data)


def scaled_forecast(estimator, forecast: pd.DataFrame) -> np.ndarray:
    return estimator.scaler_.transform(forecast.to_numpy())


def test_fit_trains_the_long_memory_and_scores_validation_online_and_frozen(fitted, data):
    assert isinstance(fitted.model_, LongMemoryForecaster) and fitted.model_config_.memory == "lmm"
    assert fitted.model_config_.lookback == 16 and fitted.model_config_.patch_len == 4
    history = fitted.history_
    assert history["epochs_run"] == 2 and history["stop_reason"] == "max_epochs" and history["device"] == "cpu"
    assert history["best_val_mse"] == pytest.approx(fitted.val_metrics_["mse"], rel=1e-5)  # early stopping's score
    assert fitted.evaluate(split="val", online=True) == fitted.val_metrics_  # online: its own protocol
    assert fitted.evaluate(split="val") == fitted.val_metrics_frozen_  # frozen: the default
    windows = fitted.borders_.windows(16, 4)
    assert fitted.val_metrics_["windows"] == windows["val"] and set(fitted.floors_) >= {"repeat last"}
    test_frozen, test_online = fitted.evaluate(), fitted.evaluate(online=True)
    assert set(test_frozen) == set(test_online) == {"mse", "mae", "windows"}
    assert test_frozen["windows"] == test_online["windows"] == windows["test"]
    assert test_frozen["mse"] != test_online["mse"]  # the memory carried through the series changes forecasts
    assert fitted.evaluate(data) == test_frozen  # the same frame, passed: its own (equal) borders
    table = fitted.window_forecasts(split="test")  # the frozen forecasts, every window
    recomputed = ((table["prediction_scaled"] - table["target_scaled"]) ** 2).mean()
    assert recomputed == pytest.approx(test_frozen["mse"], rel=1e-5)


def test_predict_forecasts_after_the_data_from_the_carried_memory(fitted, data):
    forecast = fitted.predict()
    expected = pd.date_range(data.index[-1] + pd.Timedelta(hours=1), periods=4, freq="h")
    assert forecast.shape == (4, 3) and (forecast.index == expected).all() and list(forecast.columns) == ["a", "b", "c"]
    assert forecast.attrs["forecaster"] == "model"
    # the same forecast the online evaluation makes at that row: the memory read every row before it
    series = torch.as_tensor(fitted.scaler_.transform(data.to_numpy()), dtype=torch.float32)
    online = online_forecasts(fitted.model_, series, torch.tensor([len(data)]))[0].double().numpy()
    np.testing.assert_allclose(scaled_forecast(fitted, forecast), online, rtol=0, atol=1e-5)
    # a new frame is read from its first row: the whole of `data` again gives the same forecast
    np.testing.assert_allclose(fitted.predict(data).to_numpy(), forecast.to_numpy(), rtol=0, atol=1e-6)
    shorter = fitted.predict(data.iloc[:-100])  # a shorter history: its own end
    assert shorter.index[0] == data.index[-100]
    with pytest.raises(DataValidationError, match="at least lookback=16 rows"):
        fitted.predict(data.iloc[:10])
    with pytest.raises(DataValidationError, match="the rows are 1 day apart; the model was fitted on rows 1 hour"):
        fitted.predict(data.set_axis(pd.date_range("2021-01-01", periods=len(data), freq="D")))


def test_update_reads_on_and_in_any_pieces_equals_one_update(fitted, data):
    more = frame_of(rows=ROWS + 300, seed=1).iloc[ROWS:]  # 300 later rows: two whole segments and a rest
    more.index = pd.date_range(data.index[-1] + pd.Timedelta(hours=1), periods=len(more), freq="h")
    once = copy.deepcopy(fitted).update(more)
    pieces = copy.deepcopy(fitted)
    for start, end in ((0, 1), (1, 7), (7, 150), (150, 151), (151, 300)):
        pieces.update(more.iloc[start:end])
    assert (once.predict().to_numpy() == pieces.predict().to_numpy()).all()
    assert once.predict().index[0] == more.index[-1] + pd.Timedelta(hours=1)
    assert not np.allclose(once.predict().to_numpy(), fitted.predict().to_numpy())
    # fit + update reads the rows as fitting on all of them and predicting would
    everything = pd.concat([data, more])
    np.testing.assert_allclose(once.predict(everything).to_numpy(), once.predict().to_numpy(), rtol=0, atol=1e-6)


def test_undated_rows_given_twice_are_said_in_history_mode_too():
    """history_mode.update read undated rows given twice without a word, where window mode says so."""
    from titans_ts.errors import RepeatedRowsWarning

    values = frame_of(rows=ROWS + 40, seed=3).to_numpy()
    model = TitansForecaster(**{**TINY, "epochs": 1}).fit(values[:ROWS])
    with warnings.catch_warnings():
        warnings.simplefilter("error", RepeatedRowsWarning)
        model.update(values[ROWS:])  # new rows: nothing to say
    with pytest.warns(RepeatedRowsWarning, match="the 40 new rows equal the last 40 rows the model has read"):
        model.update(values[ROWS:])


def test_a_reset_mix_auto_that_had_nothing_to_choose_from_says_so(data):
    """online_from="split" on a validation split shorter than a segment: the pull never applies, every candidate
    ties, and "auto" recorded 0.0 as if validation had chosen it, without a word."""
    with pytest.warns(IgnoredSettingWarning, match=r"online_reset_mix='auto' chose nothing: every candidate"):
        model = TitansForecaster(**{**TINY, "epochs": 1}, online_reset_mix="auto", online_from="split").fit(data)
    choice = model.history_["online_reset_mix"]
    assert choice["chosen"] == 0.0 and len(set(choice["val_mse"].values())) == 1


def test_save_and_load_keep_the_carried_memory(fitted, data, tmp_path):
    streamed = copy.deepcopy(fitted).update(frame_of(rows=ROWS + 37, seed=2).iloc[ROWS:])
    for model, folder in ((fitted, tmp_path / "fitted"), (streamed, tmp_path / "streamed")):
        model.save(folder)
        config = json.loads((folder / "config.json").read_text())
        assert config["mode"] == "history" and config["params"]["mode"] == "history"
        assert config["model_config"]["patch_len"] == 4 and config["model_config"]["memory"] == "lmm"
        loaded = TitansForecaster.load(folder)
        assert (loaded.predict().to_numpy() == model.predict().to_numpy()).all()
        assert (loaded.predict().index == model.predict().index).all()
        assert loaded.val_metrics_frozen_ == model.val_metrics_frozen_
    loaded = TitansForecaster.load(tmp_path / "fitted")
    assert loaded.evaluate(data, online=True) == fitted.evaluate(online=True)
    assert loaded.evaluate(data) == fitted.evaluate()
    more = frame_of(rows=ROWS + 37, seed=2).iloc[ROWS:]
    assert (loaded.update(more).predict().to_numpy() == streamed.predict().to_numpy()).all()


def test_online_evaluation_reads_the_past_and_never_the_future(fitted, data):
    test_start, test_end = fitted.borders_.test
    origins = np.arange(test_start + 16, test_end - 4 + 1)
    before = fitted.online_forecasts(data, split="test")
    assert before.shape == (len(origins), 4, 3)
    cut = int(origins[len(origins) // 2])
    future = data.copy()
    future.iloc[cut:] += 5.0
    after = fitted.online_forecasts(future, split="test")
    seen = origins <= cut  # a forecast at origin t reads rows before t only
    assert (after[seen] == before[seen]).all()
    assert np.abs(after[~seen] - before[~seen]).max(axis=(1, 2)).min() > 0

    long_past = data.copy()
    long_past.iloc[100] += 3.0  # in the train split, outside every test window: only the memory saw it
    moved = np.abs(fitted.online_forecasts(long_past, split="test") - before).max(axis=(1, 2))
    assert moved.min() > 0
    frozen = [fitted.window_forecasts(frame, split="test")["prediction_scaled"] for frame in (long_past, data)]
    assert (frozen[0] == frozen[1]).all()  # frozen: each window alone
    online = fitted.window_forecasts(data, split="test", online=True)  # the table of the scored online forecasts
    assert (online["prediction_scaled"].to_numpy() == before.reshape(-1)).all()
    error = online["prediction_scaled"] - online["target_scaled"]
    assert (error**2).mean() == pytest.approx(fitted.evaluate(data, online=True)["mse"], rel=1e-9)


def test_online_from_the_split_reads_nothing_before_the_split_it_forecasts(fitted, data):
    """online_from="split": the memory starts at the forecast split's first row (the same trained network);
    a change before it moves nothing, a change inside it moves the later forecasts; after fit, predict() is
    the forecast of a memory that read the rows from the test split's first row, i.e. predict(those rows)."""
    split = copy.deepcopy(fitted).set_params(online_from="split")
    test_start, test_end = fitted.borders_.test

    series = torch.as_tensor(fitted.scaler_.transform(data.to_numpy()[:test_end]), dtype=torch.float32)
    origins = split_origins((test_start, test_end), 16, 4)
    expected = online_forecasts(fitted.model_, series, origins, grid_start=test_start).double().numpy()
    np.testing.assert_array_equal(split.online_forecasts(data, split="test"), expected)
    assert not np.array_equal(expected, fitted.online_forecasts(data, split="test"))  # "start" read more

    before_split = data.copy()
    before_split.iloc[test_start - 50 : test_start] += 3.0  # rows the "start" memory reads, "split" does not
    np.testing.assert_array_equal(split.online_forecasts(before_split, split="test"), expected)
    inside = data.copy()
    inside.iloc[test_start + 2] += 3.0  # in the first window's lookback: the memory reads it
    assert not np.array_equal(split.online_forecasts(inside, split="test"), expected)
    squared = (expected - _targets(series, origins)) ** 2
    assert split.evaluate(online=True)["mse"] == pytest.approx(float(np.mean(squared)))

    refit = TitansForecaster(**{**TINY, "online_from": "split"}).fit(data)  # the same training: same network
    torch.testing.assert_close(refit.model_.state_dict(), fitted.model_.state_dict())
    pd.testing.assert_frame_equal(refit.predict(), refit.predict(data.iloc[test_start:]))
    # fit's validation scores (what the floors are compared with) are evaluate()'s, on the same patch grid: the
    # val split starts off the series' grid here, so reading from row 0 or its grid would differ
    assert refit.borders_.val[0] % TINY["patch_len"] != 0
    assert refit.val_metrics_ == refit.evaluate(split="val", online=True) != fitted.val_metrics_
    assert refit.val_metrics_frozen_ == refit.evaluate(split="val") != fitted.val_metrics_frozen_
    _, _, frozen, targets = split_predictions(refit, None, "val")
    assert float(np.mean((frozen - targets) ** 2)) == pytest.approx(refit.val_metrics_frozen_["mse"])


def test_online_blend_averages_the_carried_and_the_reset_memory_at_every_row(data):
    """online_blend=0.5: every online forecast (evaluate, online_forecasts, predict, update) is the mean of the
    carried memory's forecast and the frozen one at that row, error tokens included (the frozen part reads the
    lookback rows before its first patch, which predict keeps); frozen scores and training are unchanged, and
    no forecast reads a row at or after its origin."""
    plain = TitansForecaster(**{**TINY, "error_tokens": True}).fit(data)
    blend = copy.deepcopy(plain).set_params(online_blend=0.5)
    model = plain.model_
    test_start, test_end = plain.borders_.test
    series = torch.as_tensor(plain.scaler_.transform(data.to_numpy()), dtype=torch.float32)
    origins = split_origins((test_start, test_end), 16, 4)
    online, frozen = online_forecasts(model, series, origins), frozen_forecasts(model, series, origins)
    expected = (0.5 * online + 0.5 * frozen).double()
    np.testing.assert_allclose(blend.online_forecasts(data, split="test"), expected.numpy(), rtol=0, atol=1e-6)
    squared = (expected.numpy() - _targets(series[:test_end], origins)) ** 2
    assert blend.evaluate(online=True)["mse"] == pytest.approx(float(np.mean(squared)))
    assert blend.evaluate() == plain.evaluate() and blend.evaluate(online=True) != plain.evaluate(online=True)

    def mixed_at_end(rows: torch.Tensor) -> np.ndarray:
        end = torch.tensor([len(rows)])
        return (0.5 * online_forecasts(model, rows, end) + 0.5 * frozen_forecasts(model, rows, end))[0].numpy()

    np.testing.assert_allclose(scaled_forecast(blend, blend.predict()), mixed_at_end(series), rtol=0, atol=1e-5)
    old = copy.deepcopy(blend)
    old.context_ = old.context_[-16:]  # what a model saved before online_blend existed kept
    with pytest.raises(DataValidationError, match="needs the last 2 x lookback = 32 rows, and this model keeps 16"):
        old.predict()
    more = frame_of(rows=ROWS + 43, seed=3).iloc[ROWS:]
    more.index = pd.date_range(data.index[-1] + pd.Timedelta(hours=1), periods=len(more), freq="h")
    once, pieces = copy.deepcopy(blend).update(more), copy.deepcopy(blend)
    for start, end in ((0, 5), (5, 6), (6, 43)):
        pieces.update(more.iloc[start:end])
    assert (once.predict().to_numpy() == pieces.predict().to_numpy()).all()
    everything = torch.as_tensor(plain.scaler_.transform(pd.concat([data, more]).to_numpy()), dtype=torch.float32)
    np.testing.assert_allclose(scaled_forecast(once, once.predict()), mixed_at_end(everything), rtol=0, atol=1e-5)

    cut = int(origins[len(origins) // 2])
    future = data.copy()
    future.iloc[cut:] += 5.0
    changed = blend.online_forecasts(future, split="test")
    seen = origins.numpy() <= cut
    assert (changed[seen] == blend.online_forecasts(data, split="test")[seen]).all()
    refit = TitansForecaster(**{**TINY, "error_tokens": True, "online_blend": 0.5}).fit(data)
    torch.testing.assert_close(refit.model_.state_dict(), model.state_dict())  # training unchanged
    assert refit.val_metrics_ == refit.evaluate(split="val", online=True) != plain.val_metrics_  # what floors face
    assert refit.history_["best_val_mse"] == plain.history_["best_val_mse"]


def test_online_reset_mix_auto_is_chosen_on_validation_and_changes_only_online_forecasts(fitted, data, tmp_path):
    """online_reset_mix="auto": the same training (the same network); the candidate with the lowest online val
    MSE is set on the model (its val_metrics_ is that score, 0.0's is the default's); online forecasts are the
    evaluator's with that reset_mix, frozen ones unchanged; save/load keeps it."""
    from dataclasses import replace

    from titans_ts.forecasting.defaults import ONLINE_RESET_MIXES

    auto = TitansForecaster(**{**TINY, "online_reset_mix": "auto"}).fit(data)
    torch.testing.assert_close(auto.model_.state_dict(), fitted.model_.state_dict())
    choice = auto.history_["online_reset_mix"]
    scores = choice["val_mse"]
    assert list(scores) == [str(mix) for mix in ONLINE_RESET_MIXES]
    assert len(set(scores.values())) == len(scores)  # the pull moves the online forecasts
    assert choice["chosen"] == float(min(scores, key=scores.get)) == auto.model_config_.reset_mix
    assert auto.val_metrics_["mse"] == pytest.approx(scores[str(choice["chosen"])])
    assert scores["0.0"] == pytest.approx(fitted.val_metrics_["mse"])
    assert auto.val_metrics_frozen_ == fitted.val_metrics_frozen_
    assert auto.evaluate(data)["mse"] == fitted.evaluate(data)["mse"]  # frozen: the window's patches only

    test_start, test_end = auto.borders_.test
    series = torch.as_tensor(auto.scaler_.transform(data.to_numpy()[:test_end]), dtype=torch.float32)
    origins = split_origins((test_start, test_end), 16, 4)
    by_hand = copy.deepcopy(fitted.model_)
    by_hand.config = replace(by_hand.config, reset_mix=choice["chosen"])
    expected = online_forecasts(by_hand, series, origins).double().numpy()
    np.testing.assert_array_equal(auto.online_forecasts(data, split="test"), expected)

    auto.save(tmp_path / "auto")
    loaded = TitansForecaster.load(tmp_path / "auto")
    assert loaded.model_config_.reset_mix == choice["chosen"]
    pd.testing.assert_frame_equal(loaded.predict(), auto.predict())
    fixed = TitansForecaster(**{**TINY, "online_reset_mix": 0.3}).fit(data)
    assert fixed.model_config_.reset_mix == 0.3 and fixed.history_["online_reset_mix"] == {"chosen": 0.3, "val_mse": {}}


def _targets(series, origins):
    from titans_ts.forecasting.long_memory import rows_at

    return rows_at(series, origins, torch.arange(4)).double().numpy()


def test_the_mlp_ablation_carries_no_state_and_its_online_score_is_its_frozen(ablation, tmp_path):
    assert ablation.model_config_.memory == "mlp" and ablation.stream_.state is None
    assert ablation.val_metrics_["mse"] == pytest.approx(ablation.val_metrics_frozen_["mse"], rel=1e-6)
    assert ablation.evaluate(online=True)["mse"] == pytest.approx(ablation.evaluate()["mse"], rel=1e-6)
    ablation.save(tmp_path / "mlp")
    assert (TitansForecaster.load(tmp_path / "mlp").predict().to_numpy() == ablation.predict().to_numpy()).all()


def test_a_floor_that_beats_the_memory_forecasts_in_its_place(fitted, data):
    from titans_ts.forecasting.floors import REPEAT_LAST

    floored = copy.deepcopy(fitted)
    floored.forecaster_used_ = REPEAT_LAST  # what fit chooses when the model is behind it (fallback="auto")
    forecast = floored.predict()
    assert forecast.attrs["forecaster"] == REPEAT_LAST
    np.testing.assert_allclose(forecast.to_numpy(), np.repeat(data.to_numpy()[-1:], 4, axis=0), atol=1e-9)
    assert floored.evaluate(online=True) == floored.evaluate()  # a floor reads each window alone
    assert floored.evaluate(split="val")["mse"] == pytest.approx(floored.floors_[REPEAT_LAST])
    later = frame_of(rows=ROWS + 5, seed=3).iloc[ROWS:]
    np.testing.assert_allclose(floored.update(later).predict().to_numpy()[0], later.to_numpy()[-1], atol=1e-9)


@pytest.mark.parametrize(
    "params, message",
    [
        ({"mode": "stream"}, "mode='stream' ('window'"),
        ({"variant": "mac"}, "variant='mac' in mode='history' (use variant='lmm'"),
        ({"tokens": "patch"}, "tokens='patch' in mode='history' (history mode reads each column in patches"),
        ({"mode": "window", "variant": "mlp"}, "variant='mlp' in mode='window' (the ablation of the history-mode"),
        ({"mode": "window", "variant": "lmm", "streams": 4}, "streams=4 is a mode='history' setting (window mode"),
        ({"mode": "window", "variant": "lmm", "error_tokens": True}, "error_tokens=True is a mode='history' setting"),
        ({"online_from": "yesterday"}, "online_from='yesterday' ('start': the memory reads the series from its"),
        ({"target": "a"}, "target='a': not supported in mode='history' yet"),
        ({"devices": 2}, "devices=2: not supported in mode='history' yet"),
        ({"num_nodes": 2}, "num_nodes=2: not supported in mode='history' yet"),
        ({"lookback": 6}, "lookback=6 with patch_len=4 in mode='history' (at least 2 * patch_len - 1 = 7"),
        ({"chunk_size": 5}, "chunk_size=5 in mode='history' (it must divide the 32 patches"),
        ({"streams": 0}, "streams=0 (a positive integer)"),
        ({"bptt": 0}, "bptt=0 (a positive integer)"),
        ({"dim": 9}, "dim=9 with heads=2 (dim must be divisible by heads: e.g. dim=10)"),
        ({"dim": 6, "local_model": "variate"}, "dim=6 with heads=2 (dim must be divisible by heads and by the 4 EinFF"),
        ({"local_model": "arima"}, "local_model='arima' (one of rlinear, dlinear, variate, attention)"),
        ({"error_tokens": True, "patch_len": 8}, "error_tokens=True with horizon=4 < patch_len=8"),
        ({"local_pretrain": True}, "local_pretrain=True with local_model='rlinear' (it trains the window model"),
        ({"online_reset_mix": 1.0}, "online_reset_mix=1.0 (the fraction of the trained memory mixed back"),
        ({"online_blend": 0.0}, "online_blend=0.0 (the weight of the carried memory's forecast in an online"),
        ({"online_blend": "half"}, "online_blend='half' (the weight of the carried memory's forecast"),
        ({"mode": "window", "variant": "lmm", "online_blend": 0.5}, "online_blend=0.5 is a mode='history' setting"),
        ({"online_reset_mix": "often"}, "online_reset_mix='often' (the fraction of the trained memory"),
        ({"mode": "window", "variant": "lmm", "online_reset_mix": "auto"}, "online_reset_mix='auto' is a mode='hi"),
    ],
)
def test_impossible_combinations_are_refused_before_any_work(params, message, data):
    with pytest.raises(ConfigError, match=re.escape(message)):
        TitansForecaster(**{**TINY, **params}).fit(data)


@pytest.mark.parametrize("local_model, error_tokens", [("dlinear", True), ("variate", False), ("attention", True)])
def test_the_local_model_and_error_tokens_reach_the_model_and_survive_save_and_load(
    local_model, error_tokens, data, tmp_path
):
    estimator = TitansForecaster(**{**TINY, "local_model": local_model, "error_tokens": error_tokens}).fit(data)
    config = estimator.model_config_
    local = "variate" if local_model == "attention" else local_model  # the window model, mixed by attention
    assert (config.local, config.error_tokens) == (local, error_tokens)
    if local_model != "dlinear":
        mixers = {type(block.mixer).__name__ for block in estimator.model_.window_model.blocks}
        assert (mixers == {"_CausalAttentionMixer"}) == (local_model == "attention")
        assert config.local_variant == {"variate": "lmm", "attention": "attention"}[local_model]
    assert config.channels == 3
    loaded = TitansForecaster.load(estimator.save(tmp_path / "model"))
    pd.testing.assert_frame_equal(loaded.predict(), estimator.predict())
    online = estimator.evaluate(split="test", online=True)
    assert loaded.evaluate(data, split="test", online=True) == online


def test_a_pretrained_local_model_is_trained_alone_first_then_kept_fixed(data, tmp_path):
    from titans_ts.data import make_splits
    from titans_ts.forecasting.evaluation import evaluate_windows

    params = {**TINY, "local_model": "variate", "error_tokens": True, "local_pretrain": True}
    estimator = TitansForecaster(**params).fit(data)
    alone = estimator.history_["local_pretrain"]
    assert alone["epochs_run"] >= 1 and alone["stop_reason"] in ("max_epochs", "early_stopping")
    window = estimator.model_.window_model
    assert not any(p.requires_grad for p in window.parameters())
    # the segment training left it as its own training ended: its val MSE is still the best one recorded
    splits = make_splits(data, TINY["lookback"], TINY["horizon"], estimator.protocol)
    score = evaluate_windows(window, splits.loaders(32)["val"], torch.device("cpu"))
    assert score["mse"] == pytest.approx(alone["best_val_mse"], rel=1e-5)
    estimator.model_.train()  # as Lightning sets it each epoch: the fixed window model keeps dropout off
    assert not window.training and estimator.model_.head.training
    estimator.model_.eval()
    loaded = TitansForecaster.load(estimator.save(tmp_path / "model"))
    assert loaded.model_config_.local_pretrain
    pd.testing.assert_frame_equal(loaded.predict(), estimator.predict())


def test_a_refit_in_another_mode_keeps_nothing_of_the_last_fit(fitted, data):
    """A window fit with quantiles, refit in history mode, kept its levels (predict(quantiles=[0.1]) gave the point
    alone, where a history model refuses it) and its stream; a history fit refit as a window kept `stream_`."""
    window = dict(TINY, mode="window", quantiles=[0.1, 0.9])
    with pytest.warns(IgnoredSettingWarning, match="patch_len=4 would be ignored"):  # a window model of variates
        model = TitansForecaster(**window).fit(data.iloc[:400])
    model.update(data.iloc[400:410])
    assert model._levels() == (0.1, 0.9) and model.stream_forecast_ is not None
    model.set_params(mode="history", quantiles=None).fit(data)
    assert model._levels() == () and not hasattr(model, "level_tracker_") and not hasattr(model, "memory_state_")
    with pytest.raises(ConfigError, match=r"fitted without quantiles: .* in mode='window' \(quantiles are not"):
        model.predict(quantiles=[0.1])  # a refit that history mode refuses is not advised alone
    pd.testing.assert_frame_equal(model.predict(), fitted.predict())  # the same as a history model fitted fresh
    with pytest.warns(IgnoredSettingWarning):
        model.set_params(mode="window").fit(data.iloc[:400])
    assert not hasattr(model, "stream_") and not hasattr(model, "val_metrics_frozen_")
    before = model.predict()
    with pytest.raises(DataValidationError), pytest.warns(IgnoredSettingWarning):  # a failed refit keeps the model
        model.fit(data.iloc[:10])
    pd.testing.assert_frame_equal(model.predict(), before)


def test_too_few_training_rows_for_the_segments_is_said_in_the_estimators_terms(data):
    with pytest.raises(DataValidationError, match=r"needs at least \(streams \+ 1\) x 128 = 384 rows and has 280") as e:
        TitansForecaster(**TINY).fit(data.iloc[:400])
    assert "The largest that fit: patch_len=2 or streams=1; or fit on more rows." in str(e.value)
    for fitting in ({"patch_len": 2}, {"streams": 1}):  # what it names does fit
        TitansForecaster(**TINY | fitting | {"epochs": 1}).fit(data.iloc[:400])


def test_cli_fit_predict_evaluate_in_history_mode(tmp_path):
    runner = CliRunner()
    later = write_series(tmp_path / "all.csv", rows=540, columns=3)
    later.iloc[:500].to_csv(tmp_path / "mine.csv", index=False)
    later.iloc[500:].to_csv(tmp_path / "new.csv", index=False)
    small = ["--lookback", "16", "--horizon", "4", "--dim", "8", "--layers", "1", "--epochs", "1"]
    history = ["--mode", "history", "--patch-len", "4", "--streams", "1", "--bptt", "2", "--online-reset-mix", "auto"]
    history += ["--online-blend", "0.5", "--fallback", "off"]  # the model's own rows (a floor's scores are one pair)
    model = tmp_path / "model"
    fit = runner.invoke(app, ["fit", "--dataset", str(tmp_path / "mine.csv"), *small, *history, "--out", str(model)])
    assert fit.exit_code == 0, fit.output
    assert "(history mode)" in fit.output and "test, online" in fit.output and "val, frozen" in fit.output
    written = sorted(p.name for p in model.iterdir())
    assert written == ["config.json", "forecast.png", "metrics.json", "model.safetensors"]
    metrics = json.loads((model / "metrics.json").read_text())
    assert metrics["mode"] == "history" and metrics["params"]["streams"] == 1 and metrics["params"]["bptt"] == 2
    assert metrics["test"]["windows"] == metrics["test_online"]["windows"] == 97
    assert metrics["params"]["online_blend"] == 0.5
    blended = "Online forecasts are blended (online_blend=0.5):"
    assert blended in fit.output
    choice = metrics["history"]["online_reset_mix"]  # "auto": chosen on the online val MSE
    assert f"Online reset mix {choice['chosen']}, chosen on online validation MSE" in fit.output
    assert choice["val_mse"]["0.0"] != pytest.approx(metrics["history"]["best_val_mse"], rel=1e-5)  # unblended
    # the pull is chosen, and the floors compared, on the forecasts the model makes: blended half and half
    assert metrics["model_val"]["mse"] == pytest.approx(choice["val_mse"][str(choice["chosen"])])
    predicted = runner.invoke(app, ["predict", "--model", str(model), "--input", str(tmp_path / "mine.csv")])
    assert predicted.exit_code == 0, predicted.output
    said = " ".join(predicted.stderr.split())  # --input: a fresh memory read its rows, not the one carried
    assert "History mode: the memory read the 500 rows of --input from the trained memory" in said, said
    # update: the memory reads the new rows along time, saved in another folder; predict reads on from there
    updated = runner.invoke(
        app, ["update", "-m", str(model), "-i", str(tmp_path / "new.csv"), "--out", str(tmp_path / "on")]
    )
    assert updated.exit_code == 0, updated.output
    assert "Note: a window model" not in updated.output  # trained as it streams: no note
    streamed = runner.invoke(app, ["predict", "--model", str(tmp_path / "on")])
    assert streamed.exit_code == 0, streamed.output
    original = TitansForecaster.load(model)
    expected = original.update(later.iloc[500:].set_index("date")).predict()
    got = pd.read_csv(io.StringIO(streamed.stdout), index_col="date", parse_dates=True)
    atol = original.scaler_.scale_.max() * 1e-6  # the CLI writes the digits float32 computes
    np.testing.assert_allclose(got.to_numpy(), expected.to_numpy(), rtol=0, atol=atol)
    assert not np.allclose(got.to_numpy(), original.predict(later.iloc[:500].set_index("date")).to_numpy())
    assert got.index[0] == later["date"].iloc[-1] + pd.Timedelta(hours=1)
    evaluated = runner.invoke(
        app, ["evaluate", "--model", str(model), "--dataset", str(tmp_path / "mine.csv"), "--online", "--out",
              str(tmp_path / "windows.csv")]
    )  # fmt: skip
    assert evaluated.exit_code == 0, evaluated.output
    assert "windows.csv: the online forecasts (the memory carried through the rows before each window)." in " ".join(
        evaluated.output.split()
    )  # --online --out: the windows written are the online forecasts
    assert "Test errors by column, online" in evaluated.output
    assert "test, frozen" in evaluated.output and "test, online" in evaluated.output
    assert "History mode: frozen resets the memory" in evaluated.output and blended in evaluated.output
    assert "the series from its first row" in " ".join(evaluated.output.split())
    # online_from="split": said so (both texts said "from its first row" whatever online_from was)
    from cli.ts_tables import history_note
    from titans_ts.forecasting.api import history_scores_said

    assert "reads from the series' first row" in metrics["metric_space"]
    assert "reads from the split's first row" in history_scores_said("split")
    assert "read the split from its first row" in history_note("split") and "series" not in history_note("split")
    bad = runner.invoke(app, ["fit", "--dataset", str(tmp_path / "mine.csv"), *small, "--mode", "history",
                              "--variant", "mag", "--out", str(tmp_path / "bad")])  # fmt: skip
    assert bad.exit_code == 2 and "--variant mag in --mode history" in bad.stderr
    bad = runner.invoke(app, ["fit", "--dataset", str(tmp_path / "mine.csv"), *small, "--mode", "history",
                              "--online-reset-mix", "often", "--out", str(tmp_path / "bad")])  # fmt: skip
    assert bad.exit_code == 2 and "--online-reset-mix takes a number in [0, 1), e.g. 0.2, or auto" in bad.stderr


def test_cli_fit_says_how_the_local_pretraining_went(tmp_path):
    """--local-pretrain trains the window model first, with its own epochs and budget: its bars ran unlabelled
    and only metrics.json said how it stopped."""
    write_series(tmp_path / "mine.csv", rows=500, columns=2)
    args = ["fit", "--dataset", str(tmp_path / "mine.csv"), "--lookback", "16", "--horizon", "4", "--dim", "8"]
    args += ["--layers", "1", "--epochs", "1", "--mode", "history", "--patch-len", "4", "--streams", "1"]
    args += ["--local-model", "variate", "--local-pretrain", "--out", str(tmp_path / "model")]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    local = json.loads((tmp_path / "model" / "metrics.json").read_text())["history"]["local_pretrain"]
    said = f"Window model pretrained first (local_pretrain): best epoch {local['best_epoch'] + 1} of"
    assert said in result.output and f"val MSE {local['best_val_mse']:.4f}" in result.output


def test_an_interrupted_fit_resumes_from_its_checkpoint_to_the_uninterrupted_runs_model(data, tmp_path, monkeypatch):
    import lightning.pytorch as pl

    from titans_ts.training import loop

    full = TitansForecaster(**TINY, checkpoint_dir=str(tmp_path / "full")).fit(data)

    class StopAtSecondEpoch(pl.Callback):
        def on_train_epoch_start(self, trainer, module):
            if trainer.current_epoch == 1:  # the first epoch's checkpoint is written
                raise KeyboardInterrupt

    make_trainer = loop.make_trainer
    monkeypatch.setattr(loop, "make_trainer", lambda **o: make_trainer(**o, extra_callbacks=[StopAtSecondEpoch()]))
    interrupted = TitansForecaster(**TINY, checkpoint_dir=str(tmp_path / "run")).fit(data)
    assert interrupted.history_["stop_reason"] == "interrupted" and (tmp_path / "run" / "last.ckpt").exists()
    monkeypatch.setattr(loop, "make_trainer", make_trainer)
    resumed = TitansForecaster(**TINY, checkpoint_dir=str(tmp_path / "run")).fit(data, resume=True)
    assert resumed.history_["epochs_run"] == full.history_["epochs_run"] == 2
    assert resumed.val_metrics_ == full.val_metrics_
    assert (resumed.predict().to_numpy() == full.predict().to_numpy()).all()


@pytest.mark.parametrize("window", [0, 2])  # of 5 windows an epoch
def test_a_fit_resumed_part_way_through_an_epoch_carries_the_memory_on_as_the_uninterrupted_run(
    tmp_path, monkeypatch, window
):
    import lightning.pytorch as pl

    from titans_ts.forecasting.segments import SegmentModule
    from titans_ts.training import loop

    data, tiny = frame_of(rows=1200), {**TINY, "streams": 1}
    full = TitansForecaster(**tiny, checkpoint_dir=str(tmp_path / "full")).fit(data)

    class Lost(Exception):
        pass

    class LostAfterSaving(pl.Callback):  # a --checkpoint-every checkpoint, then the machine is lost
        def on_train_batch_end(self, trainer, module, outputs, batch, index):
            assert module.n_windows == 5
            if (trainer.current_epoch, index) == (1, window):
                trainer.save_checkpoint(tmp_path / "run" / "timed.ckpt")
                raise Lost

    make_trainer = loop.make_trainer
    monkeypatch.setattr(loop, "make_trainer", lambda **o: make_trainer(**o, extra_callbacks=[LostAfterSaving()]))
    with pytest.raises(Lost):
        TitansForecaster(**tiny, checkpoint_dir=str(tmp_path / "run")).fit(data)
    saved = torch.load(tmp_path / "run" / "timed.ckpt", weights_only=False)
    assert saved["segment_state"] is not None  # the memory carried to this window, not a fresh one
    monkeypatch.setattr(loop, "make_trainer", make_trainer)
    resumed_states = []
    on_train_start = SegmentModule.on_train_start

    def record(module):
        on_train_start(module)
        resumed_states.append(module.state)

    monkeypatch.setattr(SegmentModule, "on_train_start", record)
    resumed = TitansForecaster(**tiny, checkpoint_dir=str(tmp_path / "run")).fit(data, resume=True)
    assert resumed_states[0] is not None  # the resumed epoch goes on from the saved state
    assert resumed.history_["epochs_run"] == full.history_["epochs_run"] == 2
    assert resumed.val_metrics_ == full.val_metrics_
    assert (resumed.predict().to_numpy() == full.predict().to_numpy()).all()


def test_online_from_set_after_fit_is_refused_by_what_carries_the_fitted_memory_on(fitted, data, tmp_path):
    from titans_ts.errors import ConfigError

    model = copy.deepcopy(fitted).set_params(online_from="split")
    scored = model.evaluate(data, online=True)  # evaluate reads the series as the setting says
    assert scored != fitted.evaluate(data, online=True)
    for call in (model.predict, lambda: model.update(data.iloc[-5:]), lambda: model.save(tmp_path / "m")):
        with pytest.raises(ConfigError, match=r"online_from='split' was set after fit, .* the series's first row"):
            call()
    assert model.predict(data).equals(fitted.predict(data))  # a frame given is read from its first row
    model.set_params(online_from="start")
    assert model.predict().equals(fitted.predict())


def test_behind_repeat_last_on_a_random_walk_it_forecasts_with_repeat_last():
    """fallback="auto" in history mode: the online val score is compared with the floors on the same val
    windows, and a model behind them forecasts, evaluates and streams with the best floor."""
    rng = np.random.default_rng(0)
    index = pd.date_range("2021-01-01", periods=ROWS, freq="h")
    walk = pd.DataFrame(rng.normal(size=(ROWS, 2)).cumsum(axis=0), index=index, columns=["a", "b"])
    fallen = TitansForecaster(**{**TINY, "fallback": "auto"}).fit(walk)
    naive = TitansForecaster(variant="naive", lookback=16, horizon=4, progress=False).fit(walk)
    assert fallen.floors_["repeat last"] == pytest.approx(naive.val_metrics_["mse"], rel=1e-12)
    assert fallen.val_metrics_["mse"] > fallen.floors_["repeat last"]
    assert fallen.forecaster_used_ == "repeat last" and "behind the best floor" in fallen.fallback_reason_
    forecast = fallen.predict()
    assert forecast.attrs["forecaster"] == "repeat last"
    np.testing.assert_allclose(forecast.to_numpy(), naive.predict().to_numpy())
    for online in (False, True):
        assert fallen.evaluate(online=online) == naive.evaluate()
