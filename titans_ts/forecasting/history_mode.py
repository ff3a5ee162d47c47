"""TitansForecaster(mode="history"): the long-memory forecaster (long_memory.py) behind the estimator (issue 28).

The memory reads each channel's whole history in time order, patch by patch, its state carried; a forecast
combines the readout of the last whole patch with the local window of `lookback` rows. This module is the
estimator's history-mode fit, predict, evaluate, update and load; estimator.py (and its mixins) dispatch here
when the model is a LongMemoryForecaster. The stream the memory keeps, and its save, are history_stream.py.

- fit: the protocol's split and train-rows scaler; training on the train rows only, in contiguous segments
  with the state carried (segments.py), early stopping on the online val MSE (the memory reading from row 0);
  `val_metrics_` is the online score as evaluate() makes it (the memory reading from `online_start`: row 0, or
  the val split's first row with online_from="split"; mixed with the frozen forecasts by online_blend),
  `val_metrics_frozen_` the frozen one (the memory reset for every window, long_memory_eval.py). The floors
  are scored on the same val windows, against `val_metrics_`.
- then the memory reads the whole fitted frame from its first row (the patch grid starts there), and the
  estimator keeps a `MemoryStream` (history_stream.py). `predict()` forecasts at the end of the data from it,
  exactly as the online evaluation forecasts at that row; `update(rows)` reads on, and update(a); update(b)
  equals update(a + b) exactly.
- `predict(X)` with a new frame reads X from its first row, from the trained initial memory.
"""

from __future__ import annotations

import warnings
from dataclasses import replace

import numpy as np
import pandas as pd
import torch

from titans_ts.data import make_splits
from titans_ts.errors import ConfigError, DataValidationError, IgnoredSettingWarning
from titans_ts.forecasting.floors import MODEL
from titans_ts.forecasting.history_stream import MemoryStream, advance, stream_forecast
from titans_ts.forecasting.inputs import as_frame
from titans_ts.forecasting.long_memory import WINDOW_MODELS, LongMemoryConfig, LongMemoryForecaster, rows_at
from titans_ts.forecasting.long_memory_eval import (
    blended_forecasts,
    evaluate_split,
    frozen_forecasts,
    split_frozen_forecasts,
    split_origins,
)
from titans_ts.forecasting.time_axis import (
    advanced,
    axis_at_step,
    check_follows,
    fitted_numbered,
    future_index,
    refuse_repeated_stamps,
    time_axis,
    warn_if_gaps,
)

# --- fit --------------------------------------------------------------------------------------------------


def long_memory_config(estimator, channels: int = 0) -> LongMemoryConfig:
    """The LongMemoryConfig of a TitansForecaster's parameters (the config's own defaults for the rest);
    channels: the data's columns (0 before the data is read: a local_model="variate" or "attention" config then
    has 1)."""
    names = ("lookback", "horizon", "patch_len", "dim", "layers", "heads", "memory_depth", "chunk_size", "dropout")
    settings = {name: getattr(estimator, name) for name in names}
    local = {"local": estimator.local_model, "error_tokens": estimator.error_tokens, "channels": channels}
    local["local_pretrain"] = estimator.local_pretrain
    if estimator.local_model in WINDOW_MODELS:  # the window model, its tokens mixed by the memory or by attention
        local |= {"local": "variate", "local_variant": WINDOW_MODELS[estimator.local_model], "channels": channels or 1}
    return LongMemoryConfig(memory=estimator.variant, **settings, **local)


def check_training_rows(config: LongMemoryConfig, train_rows: int, streams: int) -> None:
    """A training epoch holds at least one segment per stream, plus a segment's rows for its random start."""
    needed = (streams + 1) * config.segment_rows
    if train_rows < needed:
        fitting = []
        patch_len = train_rows // ((streams + 1) * config.segment_patches)
        if config.error_tokens:  # an error token is a patch of a forecast
            patch_len = min(patch_len, config.horizon)
        if patch_len >= 1:
            fitting.append(f"patch_len={patch_len}")
        if train_rows // config.segment_rows - 1 >= 1:
            fitting.append(f"streams={train_rows // config.segment_rows - 1}")
        fix = f"The largest that fit: {' or '.join(fitting)}; or fit on more rows." if fitting else "Fit on more rows."
        raise DataValidationError(
            f"mode='history' trains on segments of {config.segment_patches} patches of patch_len={config.patch_len} "
            f"rows ({config.segment_rows} rows); with streams={streams} the training split needs at least "
            f"(streams + 1) x {config.segment_rows} = {needed} rows and has {train_rows}. {fix}"
        )


def fit(estimator, X, device: torch.device, resume: bool = False):
    """Train the long-memory forecaster on the train split of X, score val online and frozen, score the
    floors, then read the whole of X (module doc). Returns the estimator."""
    from titans_ts.forecasting.segments import SegmentModule, fit_segments
    from titans_ts.training import seed_everything

    long_memory_config(estimator)  # before the data is read: a bad combination fails fast
    frame = as_frame(X)
    warn_if_gaps(frame.index)
    config = long_memory_config(estimator, channels=frame.shape[1])
    splits = make_splits(frame, estimator.lookback, estimator.horizon, estimator.protocol)
    borders = splits.borders
    scaled = torch.as_tensor(splits.scaler.transform(frame.to_numpy()), dtype=torch.float32)
    check_training_rows(config, borders.train[1], estimator.streams)
    checkpoint = estimator._checkpoint_to_resume(frame.to_numpy(dtype=np.float64), resume)  # before any training
    seed_everything(estimator.seed)
    model = LongMemoryForecaster(config)
    # a resume reruns the pretrain (the same on the same device); the checkpoint's weights then replace it
    local_record = pretrain_local(estimator, model, splits, device) if config.local_pretrain else None
    series = scaled[: borders.val[1]]  # training and validation never read a test row
    val_origins = split_origins(borders.val, estimator.lookback, estimator.horizon)
    optimizer = {"lr": estimator.lr, "weight_decay": estimator.weight_decay}
    module = SegmentModule(
        model, series, borders.train[1], val_origins, streams=estimator.streams, bptt=estimator.bptt,
        seed=estimator.seed, **optimizer,
    )  # fmt: skip
    with warnings.catch_warnings():  # a pretrained window model is in eval mode on purpose (fixed, no dropout)
        warnings.filterwarnings("ignore", message=r"Found \d+ module\(s\) in eval mode")
        history = fit_segments(module, checkpoint=checkpoint, **estimator._trainer_options(device=device))
    history["best_val_mse"] = history.pop("best")
    if local_record is not None:
        history["local_pretrain"] = local_record
    model.to(device).eval()
    start = online_start(estimator, borders.val)  # "auto" scores the candidates as online forecasts are made
    reset_mix, blend = estimator.online_reset_mix, estimator.online_blend
    history["online_reset_mix"] = set_online_reset_mix(reset_mix, model, series, borders.val, start, blend)

    estimator._forget_fit()  # trained: this fit's state replaces the last one's (a window fit's levels too)
    estimator.model_config_, estimator.model_ = model.config, model
    estimator.scaler_, estimator.borders_ = splits.scaler, borders
    estimator._keep_split_starts(frame)
    estimator.columns_ = list(frame.columns)
    estimator.targets_ = list(estimator.columns_)  # history mode forecasts every column
    estimator.n_features_in_ = frame.shape[1]
    estimator.history_ = history | {"device": str(device)}
    # as evaluate() scores the split (reading from `start`, with the blend the forecasts will have): what the
    # floors are compared with
    frozen = split_frozen_forecasts(model, series, borders.val, start)  # made once for both scores
    estimator.val_metrics_ = split_scores(
        model, series, borders.val, "online", start, blend=estimator.online_blend, frozen=frozen
    )
    estimator.val_metrics_frozen_ = split_scores(model, series, borders.val, "frozen", start, frozen=frozen)
    estimator._score_floors(splits, frame.index)  # on the same val windows, against the online score
    estimator._fit_frame = frame
    set_stream(estimator, scaled[online_start(estimator, borders.test) :], frame.index, device)
    return estimator


def set_online_reset_mix(value, model: LongMemoryForecaster, series, bounds, grid_start: int = 0, blend=1.0) -> dict:
    """Set the trained model's reset_mix, the pull towards the trained memory after every segment an online
    forecast reads (training is done: forecasting only). value "auto": the candidate (defaults.
    ONLINE_RESET_MIXES) with the lowest online MSE on the split with rows `bounds` (validation), the memory
    reading from `grid_start`, each online forecast blended as `blend` says; on validation months that no
    choice read, that choice forecast better than no pull on ETTh1 and ETTh2 in 4 of 4 runs, and beat frozen
    in 4 of 6 with ETTm1 (guard_check.md). If scoring fails, the model keeps the setting it had.
    Returns {"chosen": the value, "val_mse": {candidate: online MSE} ("auto" with a memory; else empty)}."""
    from titans_ts.forecasting.defaults import ONLINE_RESET_MIXES

    scores = {}
    if value == "auto" and model.config.memory == "lmm":  # the ablation carries no state: nothing to pull
        scores = online_mse_by_reset_mix(model, series, bounds, ONLINE_RESET_MIXES, grid_start, blend)
        value = float(min(scores, key=scores.get))
        if len(set(scores.values())) == 1:  # recorded as a choice, it was none: say so
            warnings.warn(
                f"online_reset_mix='auto' chose nothing: every candidate scored the same online validation MSE, as "
                f"no validation forecast read past a whole segment ({model.config.segment_rows} rows), after which "
                "the pull applies; no pull (0.0) is kept. Give more validation rows, or a number.",
                IgnoredSettingWarning,
                stacklevel=4,
            )
    chosen = 0.0 if value == "auto" else float(value)
    model.config = replace(model.config, reset_mix=chosen)
    return {"chosen": chosen, "val_mse": scores}


def online_mse_by_reset_mix(model: LongMemoryForecaster, series, bounds, mixes, grid_start: int = 0, blend=1.0) -> dict:
    """{str(mix): online MSE on the split with rows `bounds`, the memory reading from `grid_start`} with each
    reset_mix applied at forecast time (online forecasts blended by `blend`); the model keeps the setting it
    had, whatever happens."""
    before = model.config
    scores = {}  # the pull changes the carried state only: the frozen forecasts a blend mixes in are made once
    frozen = split_frozen_forecasts(model, series, bounds, grid_start) if blend < 1 else None
    try:
        for mix in mixes:
            model.config = replace(before, reset_mix=mix)
            scores[str(mix)] = split_scores(model, series, bounds, "online", grid_start, blend, frozen)["mse"]
    finally:
        model.config = before
    return scores


def online_start(estimator, bounds: tuple[int, int]) -> int:
    """The row an online forecast's memory starts reading at, for the split with rows `bounds`: the series'
    first row (online_from="start"), or the split's first row ("split"; a split's rows begin `lookback` rows
    before its first origin, data/protocol.py). nested_check.md found, on validation, the memory forecasting
    the months after better the less of the earlier rows it had read."""
    return bounds[0] if estimator.online_from == "split" else 0


def pretrain_local(estimator, model: LongMemoryForecaster, splits, device: torch.device) -> dict:
    """local_pretrain: train the window model alone as window mode trains it (random batches of the training
    windows, window mode's default epochs and patience, early stopping on its val MSE, the estimator's lr,
    weight decay and max_minutes: each phase has its own, no checkpoints), then fix it. It starts from the
    weights the seed gives it whatever the rest of the model is, so a memory model and its ablation add to
    the same window model. Returns its run record (`best_val_mse`: the window model's own val score, what
    the memory path then has to improve on). A Ctrl-C here ends the fit: nothing is fitted."""
    from titans_ts.forecasting.defaults import ESTIMATOR
    from titans_ts.forecasting.long_memory import window_model
    from titans_ts.forecasting.training import ForecastModule
    from titans_ts.training import seed_everything, train_and_restore, trainer_options

    seed_everything(estimator.seed)
    model.window_model = window = window_model(model.config)
    loaders = splits.loaders(estimator.batch_size, seed=estimator.seed)
    module = ForecastModule(window, lr=estimator.lr, weight_decay=estimator.weight_decay)
    options = trainer_options(
        estimator, monitor="val_mse", device=device, loader_generator=loaders["train"].generator,
        max_epochs=ESTIMATOR["epochs"], patience=ESTIMATOR["patience"], checkpoint_dir=None, checkpoint_minutes=None,
    )  # fmt: skip
    record = train_and_restore(module, loaders["train"], loaders["val"], **options)
    if record.get("stop_reason") == "interrupted":
        raise KeyboardInterrupt("fit interrupted while the window model was being pretrained (local_pretrain).")
    record["best_val_mse"] = record.pop("best")
    window.requires_grad_(False).eval()
    return record


def split_scores(model: LongMemoryForecaster, series, bounds, mode: str, grid_start=0, blend=1.0, frozen=None) -> dict:
    """MSE, MAE and windows of a split (`evaluate_split`), the shape window mode's scores have."""
    scores = evaluate_split(model, series, bounds, mode, grid_start, blend, frozen)
    return {key: scores[key] for key in ("mse", "mae", "windows")}


def set_stream(estimator, scaled: torch.Tensor, index: pd.Index, device) -> None:
    """The memory reads every row of `scaled` (the fitted frame's rows from `online_start`) from the first: what
    predict() continues from."""
    model = estimator.model_.to(device)
    stream = MemoryStream.empty(scaled.shape[1], device)
    estimator.stream_ = advance(model, stream, scaled.to(device)).to("cpu")
    estimator.context_ = scaled[-context_rows(estimator) :].clone()
    estimator.last_index_, estimator.step_ = time_axis(index)
    estimator.index_name_ = index.name
    estimator.numbered_ = fitted_numbered(index)


def context_rows(estimator) -> int:
    """The rows kept for predict(): the local window's `lookback`, and the `lookback` before them, which the
    frozen forecast of an online_blend reads before its first patch."""
    return 2 * estimator.lookback


# --- using a fitted model ------------------------------------------------------------------------------------


def memory_forecasts(estimator) -> bool:
    """The long-memory model forecasts (not a floor that replaced it: `forecaster_used_`)."""
    return estimator.forecaster_used_ == MODEL


def check_carried_from(estimator) -> None:
    """The memory predict() and update() carry on was read from the row `online_from` named at fit: a value set
    since would not be read by them (evaluate(online=True) reads as it says), so it is refused, not ignored. A
    floor that forecasts in the model's place reads no memory: nothing to refuse."""
    fitted = (getattr(estimator, "fitted_params_", None) or {}).get("online_from", estimator.online_from)
    if estimator.online_from != fitted and memory_forecasts(estimator):
        raise ConfigError(
            f"online_from={estimator.online_from!r} was set after fit, but the memory that predict(), update() and "
            f"save() carry on was read from {'the series' if fitted == 'start' else 'the test split'}'s first row "
            f"(online_from={fitted!r} at fit). Fit again with online_from={estimator.online_from!r}, or set it "
            "back; evaluate(df, online=True) reads as it says (and predict(df) reads df from its first row, whatever "
            "online_from says)."
        )


def predict(estimator, X=None) -> pd.DataFrame:
    """Forecast the horizon after the end of the fitted data (and every `update`) from the carried memory;
    X: a new frame, read from its first row by the trained initial memory. Original units, future timestamps."""
    device = estimator._device()
    model = estimator.model_.to(device).eval()
    if X is None:
        check_carried_from(estimator)
        context, stream, last, step = estimator.context_, estimator.stream_, estimator.last_index_, estimator.step_
        name = estimator.index_name_
    else:
        frame = estimator._fitted_frame(X)
        if len(frame) < estimator.lookback:
            raise DataValidationError(
                f"predict needs at least lookback={estimator.lookback} rows; got {len(frame)}. Pass a longer history."
            )
        scaled = torch.as_tensor(estimator.scaler_.transform(frame.to_numpy()), dtype=torch.float32)
        context, stream = scaled[-context_rows(estimator) :], None
        if memory_forecasts(estimator):
            stream = advance(model, MemoryStream.empty(scaled.shape[1], device), scaled.to(device))
        last, step = axis_at_step(frame.index, estimator.step_)
        refuse_repeated_stamps(frame.index[-estimator.lookback :])
        warn_if_gaps(frame.index[-estimator.lookback :], by="predict")  # the window of the forecast
        name = frame.index.name
    if memory_forecasts(estimator):
        forecast = stream_forecast(model, stream.to(device), context.to(device), estimator.online_blend)
    else:  # the floor that replaced the model reads the window
        with torch.no_grad():
            window = context[-estimator.lookback :]
            forecast = estimator._forecaster().to(device).eval()(window[None].to(device))[0]
    values = estimator.scaler_.inverse_transform(forecast.double().cpu().numpy())
    index = future_index(last, step, estimator.horizon, name)
    return estimator._said(pd.DataFrame(values, index=index, columns=estimator.targets_))


def evaluate(estimator, X=None, split: str = "test", online: bool = False, batch_size: int = 256) -> dict:
    """MSE, MAE and windows over every window of a split: frozen (the memory reset for every window), or
    online (the memory reads the series in time order from `online_start`: the first row, so train, val and
    the earlier rows of the split, or the split's first row; a forecast never reads a row at or after its
    origin)."""
    from titans_ts.forecasting.evaluation import evaluate_windows

    if not memory_forecasts(estimator):  # a floor reads each window alone: online and frozen are one
        _, _, loader = estimator._split_windows(X, split, batch_size)
        return evaluate_windows(estimator._forecaster(), loader, estimator._device())
    _, series, bounds = split_series(estimator, X, split)
    mode = "online" if online else "frozen"
    start, blend = online_start(estimator, bounds), estimator.online_blend
    return split_scores(estimator.model_, series, bounds, mode, start, blend)


def split_series(estimator, X, split: str) -> tuple[pd.DataFrame, torch.Tensor, tuple[int, int]]:
    """(frame, its scaled rows up to the end of the split, the split's row bounds): the fitted data and
    `borders_` (X None), else X under the model's protocol. The rows are on the device the model runs on
    (the model moves there)."""
    frame, borders = estimator._split_rows(X, split)
    bounds = getattr(borders, split)
    device = estimator._device()
    estimator.model_.to(device)
    values = estimator.scaler_.transform(frame.to_numpy()[: bounds[1]])
    return frame, torch.as_tensor(values, dtype=torch.float32, device=device), bounds


def split_predictions(estimator, X, split: str, online: bool = False, batch_size: int = 256):
    """(frame, first row of the split, forecasts, targets): every window's scaled forecast and truth
    (windows x horizon x columns, float64 NumPy), frozen or online (`evaluate`)."""
    if not memory_forecasts(estimator):  # the floor that replaced the model reads each window
        frame, start, loader = estimator._split_windows(X, split, batch_size)
        device = estimator._device()
        forecaster = estimator._forecaster().to(device).eval()
        with torch.no_grad():
            pairs = [(forecaster(x.to(device)).double().cpu(), y.double()) for x, y in loader]
        return frame, start, torch.cat([p for p, _ in pairs]).numpy(), torch.cat([y for _, y in pairs]).numpy()
    frame, series, bounds = split_series(estimator, X, split)
    model = estimator.model_
    origins = split_origins(bounds, model.config.lookback, model.config.horizon, series.device)
    start = online_start(estimator, bounds)  # the patch grid evaluate() scores on, frozen forecasts too
    if online:
        forecasts = blended_forecasts(model, series, origins, start, estimator.online_blend)
    else:
        forecasts = frozen_forecasts(model, series, origins, start)
    targets = rows_at(series, origins, torch.arange(model.config.horizon, device=series.device))
    return frame, bounds[0], forecasts.double().cpu().numpy(), targets.double().cpu().numpy()


def update(estimator, new_rows):
    """Append observations in time order: the memory reads every new whole patch with the carried state
    (module doc), the local window moves on; predict() then forecasts after the last row."""
    estimator._check_fitted()
    check_carried_from(estimator)
    frame = estimator._fitted_frame(new_rows)
    numbered_model = getattr(estimator, "numbered_", False)  # (a model pickled before it was kept: False)
    check_follows(estimator.last_index_, frame.index, estimator.step_, numbered_model)
    scaled = torch.as_tensor(estimator.scaler_.transform(frame.to_numpy()), dtype=torch.float32)
    estimator._warn_if_read_before(scaled, frame.index)  # undated rows given twice, as in window mode
    device = estimator._device()
    model = estimator.model_.to(device)
    estimator.stream_ = advance(model, estimator.stream_.to(device), scaled.to(device)).to("cpu")
    estimator.context_ = torch.cat([estimator.context_, scaled])[-context_rows(estimator) :].clone()
    estimator.last_index_ = advanced(estimator.last_index_, frame.index, estimator.step_, numbered_model)
    return estimator


# --- load: safetensors + JSON (the stream's save and load: history_stream.py) ----------------------------


def load_model(tensors: dict, config: dict) -> tuple[LongMemoryConfig, LongMemoryForecaster]:
    """The saved LongMemoryConfig and the model with its weights (evaluation mode, on the CPU)."""
    model_config = LongMemoryConfig(**config["model_config"])
    model = LongMemoryForecaster(model_config)
    model.load_state_dict({k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")})
    return model_config, model.eval()
