"""TitansForecaster: a scikit-learn-style estimator around the forecasting backbone."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from titans_ts.data import StandardScaler, make_splits
from titans_ts.data.columns import target_names, target_positions
from titans_ts.errors import ConfigError, DataValidationError, IgnoredSettingWarning, positive_problems, refuse
from titans_ts.estimator_base import RUN_ONLY, TitansEstimator
from titans_ts.forecasting import history_mode, history_stream
from titans_ts.forecasting.defaults import ESTIMATOR as D
from titans_ts.forecasting.evaluation import SplitWindows
from titans_ts.forecasting.floors import Floors, floors_record, season_steps
from titans_ts.forecasting.inputs import as_frame, fitted_columns, saved_label
from titans_ts.forecasting.long_memory import LongMemoryConfig
from titans_ts.forecasting.model import UNTRAINED, ForecastConfig, build_model, warn_if_covariates_unread
from titans_ts.forecasting.quantile_outputs import QuantileOutputs
from titans_ts.forecasting.quantiles import as_level, level_problems, levels_of
from titans_ts.forecasting.streaming import Streaming
from titans_ts.forecasting.time_axis import (
    axis_at_step,
    axis_from_json,
    axis_to_json,
    fitted_numbered,
    future_index,
    refuse_repeated_stamps,
    time_axis,
    warn_if_gaps,
)
from titans_ts.io import load_model_dir, mismatched_model_dir, save_model_dir
from titans_ts.version import __version__

# What may change between fit and predict: how it runs (RUN_ONLY), how it was trained (the next fit's business),
# the split protocol evaluate reads, and how an online forecast reads the carried memory (docs/forecasting.md).
TRAINING_ONLY = ("epochs", "patience", "lr", "weight_decay", "seed", "batch_size", "dropout", "bptt", "streams")
# (but fallback: who forecasts is chosen, and calibrated, at fit)
CHANGEABLE_AFTER_FIT = (*(k for k in RUN_ONLY if k != "fallback"), *TRAINING_ONLY, "local_pretrain", "protocol")
CHANGEABLE_AFTER_FIT += ("online_blend", "online_from")


class TitansForecaster(QuantileOutputs, Floors, Streaming, SplitWindows, TitansEstimator):
    """Multivariate long-horizon forecaster with the Titans memory as its sequence mixer.

    `fit(df)` splits `df` by `protocol` (the Time-Series-Library one: train / val / test, scaler fitted on
    the train rows), trains on the train windows and stops early on the validation MSE;
    `evaluate()` gives MSE / MAE on the scaled data over every test window; `predict()` forecasts the
    `horizon` steps after the end of the data, in the original units, with future timestamps.
    `update(rows)` / `online_forecasts()` let the memory keep learning across forecasts (streaming.py);
    `window_forecasts()` gives every window of a split (evaluation.py).

    variant: "lmm", "mac", "mag", "mal" (Titans blocks) or the baselines "attention", "dlinear", and the
    untrained forecasts everyone runs first: "naive" (repeat the last value) and "seasonal_naive" (repeat
    the last season; `season` steps, by default one day at the data's frequency: 24 hourly, 96 at 15 min;
    weekly or undated data: the training split's autocorrelation peak).
    tokens: "variate" (one token per column, the default) or "patch" (channel-independent time patches).
    target: the column (name) or columns to forecast and score; None: every column. The other columns are
    covariates: the model reads their history as input, but does not forecast them and they are not scored.
    checkpoint_dir: write resumable checkpoints there (every validated epoch, and every `checkpoint_minutes`);
    `fit(X, resume=True)` continues a killed run from the newest one (titans_ts/checkpointing.py); once a run
    ended on its own, the next fit there replaces its checkpoints.
    devices, num_nodes, strategy: Lightning's, for training on several devices or machines (e.g. devices=2,
    strategy="ddp"); `batch_size` is per device (docs/scaling.md).
    fallback: "auto": a trained model whose validation MSE is behind the best floor (repeat last, seasonal naive:
    `floors_`) forecasts with that floor instead; "off": always the model. `forecaster_used_` and
    `fallback_reason_` say which and why (floors.py); chosen at fit (a new value needs a new fit).
    device: "auto" (CUDA when available, else CPU), "cpu" or "cuda": where fit, predict and evaluate run;
    results always come back as CPU NumPy/pandas, and a saved model loads on either device.
    mode: "window" (the default): each forecast reads its `lookback` window. "history": the long-memory
    forecaster (history_mode.py, long_memory.py): the memory reads each channel's whole history in time order,
    patch by patch (`patch_len` rows), and keeps learning as it reads (through validation, test and `update`);
    a forecast adds the local `lookback` window (pair it with lookback=336 or 720). variant is then "lmm" (the
    memory) or "mlp" (the ablation: a position-wise MLP of the same width, no state); `streams` and `bptt` set
    its training (contiguous streams per epoch, segments per truncated back-propagation window);
    `local_model` the local window's forecast the memory adds to ("rlinear": RevIN + linear, "dlinear", or
    "variate": the window model, variate tokens mixed by the memory, or "attention": the same mixed by attention,
    the attention baseline's network); `error_tokens`: each patch token also holds
    the local forecast's error on that patch, so the memory learns where the local forecast goes wrong;
    `online_from`: where an online forecast's memory starts reading, "start" (the series' first row: train, val,
    the earlier rows of the split) or "split" (the first row of the split it forecasts; after fit, predict and
    update read the rows after validation), training unchanged (experiments/results/nested_check.md);
    `val_metrics_` and the floors' fallback use the value given to fit; a value set after fit is read by
    evaluate(online=True), and refused by predict(), update() and save() (they carry on the memory fit read);
    `online_reset_mix`: after every segment an online forecast reads, mix this fraction of the trained memory
    back into the state, so that it forgets old rows at a set rate (0: none; "auto": the candidate with the
    lowest online val MSE, the memory reading as `online_from` says), set at fit: `history_["online_reset_mix"]`
    holds the value and the scores, and a new value needs a new fit; training unchanged
    (experiments/results/guard_check.md);
    `online_blend`: the weight of the carried memory's forecast in every online forecast (`predict`, `update`,
    `evaluate(online=True)`), the rest the frozen forecast of the same network at that row (1: the carried
    memory alone; 0.5: the two readings averaged, which beat frozen on the months after validation in 5 of 6
    runs where the carried memory alone did in 2: experiments/results/gate_check.md); training unchanged;
    `val_metrics_` and the floors' fallback use the value given to fit (a new value there needs a new fit);
    `local_pretrain` (with "variate" or "attention"): the window model is first trained alone, as window mode trains it
    (window mode's epochs and patience), then kept fixed while the memory path learns to correct it; with
    `epochs`, `patience`, `lr`, `weight_decay`, `max_minutes`. `evaluate()` is frozen (the memory reset for
    every window), `evaluate(online=True)` the memory reading the series in time order; `predict(X)` reads X
    from its first row. Not supported in mode="history" yet: `target` (covariates), devices > 1, num_nodes > 1;
    the history-mode settings (streams ... online_blend) are refused in window mode.
    Its settings are still being chosen on validation (issue 28); window is the default.
    quantiles: levels in (0, 1) to forecast besides the point, e.g. [0.1, 0.5, 0.9] (any order; sorted), or
    None (the default: point forecasts only, exactly as without this setting). A trained variant learns them
    with the pinball loss through a quantile head whose levels cannot cross (quantiles.py); naive and
    seasonal_naive (and a floor that replaced the model) get them from conformal calibration alone. `predict()`
    then adds one column per (target, level), "OT_q0.1"; `evaluate()` adds pinball, mean_wql, crps, coverage
    and width; `window_forecasts()` a column per level. Window mode only.
    calibrate: with quantiles, "conformal" shifts the levels by split-conformal residual quantiles of the
    validation windows, per horizon step and column (conformal.py); "adaptive" (the default, chosen on
    validation) starts there and moves them with every later truth as it arrives, so coverage holds when the
    noise level drifts (evaluate tracks a split's windows in time order; predict and update go on from the rows
    after validation); "none" keeps the head's levels. `recalibrate(X, calibrate=...)` changes it without
    retraining.
    The defaults (defaults.ESTIMATOR) were chosen on validation MSE and training time: docs/forecasting.md.
    """

    _fit_call = "fit(df)"
    _changeable_after_fit = CHANGEABLE_AFTER_FIT

    def __init__(
        self,
        horizon: int = D["horizon"],
        lookback: int = D["lookback"],
        variant: str = D["variant"],
        tokens: str = D["tokens"],
        dim: int = D["dim"],
        layers: int = D["layers"],
        heads: int = D["heads"],
        patch_len: int = D["patch_len"],
        stride: int = D["stride"],
        dropout: float = D["dropout"],
        memory_depth: int = D["memory_depth"],
        chunk_size: int = D["chunk_size"],
        epochs: int = D["epochs"],
        batch_size: int = D["batch_size"],
        lr: float = D["lr"],
        weight_decay: float = D["weight_decay"],
        patience: int = D["patience"],
        protocol: str = D["protocol"],
        seed: int = D["seed"],
        max_minutes: float | None = D["max_minutes"],
        progress: bool = D["progress"],
        device: str = D["device"],
        season: int | None = D["season"],
        target: str | list[str] | None = D["target"],
        checkpoint_dir: str | None = D["checkpoint_dir"],
        checkpoint_minutes: float | None = D["checkpoint_minutes"],
        devices: int | str = D["devices"],
        num_nodes: int = D["num_nodes"],
        strategy: str = D["strategy"],
        fallback: str = D["fallback"],
        mode: str = D["mode"],
        streams: int = D["streams"],
        bptt: int = D["bptt"],
        local_model: str = D["local_model"],
        error_tokens: bool = D["error_tokens"],
        local_pretrain: bool = D["local_pretrain"],
        online_from: str = D["online_from"],
        online_reset_mix: float | str = D["online_reset_mix"],
        online_blend: float = D["online_blend"],
        quantiles: list[float] | None = D["quantiles"],
        calibrate: str = D["calibrate"],
    ):
        vars(self).update({k: v for k, v in locals().items() if k != "self"})  # scikit-learn's rule: only stored

    # --- fitting -----------------------------------------------------------------------------------

    def fit(self, X, y=None, resume: bool = False):
        """Train on the train split of X (a DataFrame with a DatetimeIndex, or a 2-D array).

        resume: continue from the newest checkpoint in `checkpoint_dir` (same settings and data required).
        y: not taken (scikit-learn's place for it): the series forecast are columns of X, chosen by `target`."""
        from titans_ts.training import kept_random_state

        if y is not None:  # fit(X, y) trained on X alone and forecast X's columns, without a word
            raise ConfigError(
                "fit(X, y): TitansForecaster forecasts columns of X, so y is not taken. Put the series to forecast "
                "in X and name them with target=[...] (the other columns are then inputs only), e.g. "
                "TitansForecaster(target='c').fit(df)."
            )
        device = self._device()  # before any work: a bad value or a missing GPU fails fast
        self.check_params()
        self._warn_ignored()
        with kept_random_state():  # seeded for the fit; the caller's generators as they were after it
            if self.mode == "history":
                history_mode.fit(self, X, device, resume)
            else:
                self._fit_window(X, device, resume)
        self.fitted_params_ = self.get_params()  # what predict, evaluate and save check against (_check_fitted)
        self._keep_feature_names(X)
        self.long_format_ = None  # (id, time, value) columns when the data came from a long table (api.fit_dataset)
        return self

    def _warn_ignored(self) -> None:
        """Say the settings the chosen model would not read (the CLI refuses such options; the estimator takes
        them, as a grid of settings may hold them for other models)."""
        from titans_ts.forecasting.settings import ignored_problems

        params = self.get_params()
        ignored = ignored_problems(params, given=params)
        if ignored:
            warnings.warn(f"TitansForecaster: {'; '.join(ignored)}.", IgnoredSettingWarning, stacklevel=3)

    def _fit_window(self, X, device, resume: bool) -> None:
        """fit in mode="window": the window model trained on the train split, stopped early on validation."""
        from titans_ts.forecasting.evaluation import evaluate_windows
        from titans_ts.forecasting.training import ForecastModule
        from titans_ts.training import seed_everything, train_and_restore

        frame = as_frame(X)
        warn_if_gaps(frame.index)
        targets = target_positions(self.target, frame.columns)
        splits = make_splits(frame, self.lookback, self.horizon, self.protocol, targets)
        season = season_steps(self.variant, self.season, frame.index, splits.train.targets.numpy(), self.lookback)
        config = ForecastConfig.of(self, frame.shape[1], season, targets)
        warn_if_covariates_unread(config, list(frame.columns))
        seed_everything(self.seed)
        model = self._with_quantile_head(build_model(config), trained=config.variant not in UNTRAINED)
        loaders = splits.loaders(self.batch_size, seed=self.seed, shard=True)  # what the Trainer reads
        if config.variant in UNTRAINED:
            history = {"best_epoch": None, "best_val_mse": None, "epochs_run": 0, "steps": 0}
            history |= {"stop_reason": "untrained", "trained": False}
        else:
            module = ForecastModule(model, lr=self.lr, weight_decay=self.weight_decay)
            checkpoint = self._checkpoint_to_resume(frame.to_numpy(dtype=np.float64), resume)
            train = loaders["train"]
            monitor = "val_loss" if levels_of(self.quantiles) else "val_mse"  # with quantiles: the pinball loss
            options = self._trainer_options(monitor=monitor, device=device, loader_generator=train.generator)
            history = train_and_restore(module, train, loaders["val"], checkpoint=checkpoint, **options)
            history[f"best_{monitor}"] = history.pop("best")
        model.eval()

        self._forget_fit()  # trained: this fit's state replaces the last one's, all of it
        self.history_, self.quantile_levels_ = history, levels_of(self.quantiles)
        self.model_config_, self.model_, self.scaler_, self.borders_ = config, model, splits.scaler, splits.borders
        self._keep_split_starts(frame)
        self.columns_ = list(frame.columns)
        self.targets_ = [self.columns_[i] for i in targets] if targets else list(self.columns_)
        self.n_features_in_ = frame.shape[1]
        self.history_["device"] = str(device)
        self.val_metrics_ = evaluate_windows(model, splits.loaders(self.batch_size)["val"], device)  # every window
        self._score_floors(splits, frame.index)  # the naive floors on the same windows; who forecasts
        self._calibrate(splits.loaders(self.batch_size)["val"])  # with quantiles: conformal, on validation
        self._set_context(frame)
        self._start_tracker(frame, self.borders_)  # calibrate="adaptive": moved by the rows after validation
        self._fit_frame = frame

    def _keep_feature_names(self, X) -> None:
        """feature_names_in_ as scikit-learn sets it: the fitted columns' names when X is a DataFrame whose
        columns are all named by strings; absent otherwise (an array's columns x0, x1, ... are not names)."""
        vars(self).pop("feature_names_in_", None)  # an earlier fit's
        if isinstance(X, pd.DataFrame) and all(isinstance(column, str) for column in self.columns_):
            self.feature_names_in_ = np.asarray(self.columns_, dtype=object)

    def check_params(self) -> None:
        """Refuse impossible settings before any data is read or any work starts (a ConfigError naming them)."""
        from titans_ts.forecasting.settings import check

        check(self.get_params())

    def _target_positions(self) -> list[int] | None:
        """Positions of the forecast columns among the inputs (None: all columns are forecast)."""
        return None if self._in_history_mode() else list(self.model_config_.targets) or None

    def _in_history_mode(self) -> bool:
        """Fitted (or loaded) in mode="history": the model is the long-memory forecaster (history_mode.py)."""
        return isinstance(getattr(self, "model_config_", None), LongMemoryConfig)

    def _target_scaler(self) -> StandardScaler:
        targets = self._target_positions()
        return self.scaler_ if targets is None else self.scaler_.subset(targets)

    def _set_context(self, frame: pd.DataFrame) -> None:
        """The last `lookback` rows (scaled) and the time axis: what `predict()` continues from."""
        self.context_ = self._scaled_context(frame)
        self.last_index_, self.step_ = time_axis(frame.index)
        self.index_name_ = frame.index.name  # the forecasts' index is named as the data's
        self.numbered_ = fitted_numbered(frame.index)  # its rows' numbers are its own: update checks new ones'
        self.memory_state_, self.stream_forecast_ = None, None  # streaming starts from the trained memory
        self.stream_levels_ = None

    def _scaled_context(self, frame: pd.DataFrame) -> torch.Tensor:
        """The last `lookback` rows of `frame`, scaled, row-major: a DataFrame's values are often a column-major
        view, whose forecast differed in the last bits (1e-6) from a loaded model's and from evaluate's windows."""
        scaled = self.scaler_.transform(frame.to_numpy()[-self.lookback :])
        return torch.as_tensor(scaled, dtype=torch.float32).contiguous()

    # --- using a fitted model -----------------------------------------------------------------------

    def predict(self, X=None, quantiles=None) -> pd.DataFrame:
        """Forecast the `horizon` steps after the end of X (default: the fitted data), in original units.

        A model fitted with `quantiles` gives the point columns (as without) followed by one column per (target,
        level), named "<column>_q<level>" ("OT_q0.1", "OT_q0.5", "OT_q0.9"): a wide frame, a row per step;
        `quantiles` picks some of the fitted levels ([]: the point columns alone). In mode="history": from the
        memory carried through the fitted data (and every `update`); a new X is read from its first row by the
        trained initial memory."""
        self._check_fitted()
        chosen = self._chosen_levels(quantiles) if self._levels() or quantiles is not None else []
        if self._in_history_mode():
            return history_mode.predict(self, X)
        if X is None:
            context, last, step, name = self.context_, self.last_index_, self.step_, self.index_name_
        else:
            frame = self._fitted_frame(X)
            if len(frame) < self.lookback:
                raise DataValidationError(
                    f"predict needs at least lookback={self.lookback} rows; got {len(frame)}. Pass a longer history."
                )
            context = self._scaled_context(frame)
            last, step = axis_at_step(frame.index, self.step_)
            refuse_repeated_stamps(frame.index[-self.lookback :])
            warn_if_gaps(frame.index[-self.lookback :], by="predict", stacklevel=3)  # the window it reads
            name = frame.index.name
        scaled = getattr(self, "stream_forecast_", None) if X is None else None  # after update(): the stream's
        if self._levels():
            tracker = self._prediction_tracker(None if X is None else frame)
            index = future_index(last, step, self.horizon, name)
            return self._said(self._point_and_levels_frame(context, scaled, index, chosen, tracker))
        if scaled is None:
            device = self._device()
            with torch.no_grad():  # the model, or the floor that replaced it (fallback)
                scaled = self._forecaster().to(device).eval()(context[None].to(device))[0].double().cpu().numpy()
        values = self._target_scaler().inverse_transform(scaled)
        return self._said(
            pd.DataFrame(values, index=future_index(last, step, self.horizon, name), columns=self.targets_)
        )

    def _point_and_levels_frame(self, context, streamed, index, chosen, tracker=None) -> pd.DataFrame:
        """predict()'s frame with levels: from the window `context`, or the stream's forecast after update()
        (`streamed`: its point; its raw levels are `stream_levels_`, from the same carried state). With
        calibrate="adaptive", `tracker` has read the data up to the forecast: its offsets shift the raw levels."""
        if streamed is None:
            scaled, levels = self._one_forecast_levels(context, tracker)
        else:
            raw = getattr(self, "stream_levels_", None)
            raw = np.repeat(streamed[..., None], len(self._levels()), -1) if raw is None else raw
            scaled, levels = streamed, self._calibrated(torch.as_tensor(raw), tracker).numpy()
        point = pd.DataFrame(self._target_scaler().inverse_transform(scaled), index=index, columns=self.targets_)
        return pd.concat([point, self._level_frame(levels, index, chosen)], axis=1)

    def _comparable(self, params: dict) -> dict:
        # levels are sorted at fit: the same levels in another order are the same setting
        if params.get("quantiles") is not None and not level_problems(params["quantiles"]):
            params["quantiles"] = list(levels_of(params["quantiles"]))
        if params.get("target") is not None:  # target="b" and target=["b"] name the same column
            params["target"] = target_names(params["target"])
        return params

    def _why_changed(self, changed: list[str]) -> tuple[str, str]:
        why = " (fallback: who forecasts, chosen and calibrated at fit)" if "fallback" in changed else ""
        how = " (calibrate: or recalibrate(X, calibrate=...), without retraining)" if "calibrate" in changed else ""
        return why, how

    def evaluate(self, X=None, split: str = "test", batch_size: int = 256, online: bool = False) -> dict:
        """MSE and MAE on the scaled data over every window of a split (the protocol of `fit`).

        online: forecast the windows as a stream with the memory state carried forward (`online_forecasts`)
        instead of each from the trained memory. The forecaster is `forecaster_used_`: the model, or its floor.
        In mode="history", online reads the series from its first row in time order (train, val, the earlier
        rows of the split), frozen resets the memory for every window (history_mode.evaluate)."""
        from titans_ts.forecasting.evaluation import evaluate_windows

        refuse(positive_problems({"batch_size": batch_size}))
        if self._in_history_mode():
            self._check_fitted()
            return history_mode.evaluate(self, X, split, online, batch_size)
        if online:
            return self._online_metrics(X, split, batch_size)
        _, _, loader = self._split_windows(X, split, batch_size)
        if self._levels():  # MSE and MAE of the point, and the levels' scores (quantiles.QuantileScores)
            return self._level_metrics(loader)
        return evaluate_windows(self._forecaster(), loader, self._device())

    def score(self, X=None, y=None) -> float:
        """Negative MSE (higher is better, as scikit-learn expects) on the scaled data over every window of X's
        test split, cut by `protocol` as fit cuts it (X None: the fitted data); `evaluate(X)["mse"]`, negated.
        y: not taken, as in fit (the series forecast are columns of X)."""
        if y is not None:  # it would be ignored: the scores are of X's own columns
            raise ConfigError(
                "score(X, y): TitansForecaster scores its forecasts of columns of X, so y is not taken (as in fit). "
                "Call score(X), with the target columns in X."
            )
        return -self.evaluate(X)["mse"]

    # --- persistence: safetensors + JSON, never pickle -------------------------------------------------

    def save(self, path) -> Path:
        """Write `path/model.safetensors` and `path/config.json` (all or nothing)."""
        self._check_fitted()
        if self._in_history_mode():
            history_mode.check_carried_from(self)
        tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in self.model_.state_dict().items()}
        tensors["context"] = self.context_.cpu().contiguous()
        params = self.get_params()
        if params["quantiles"] is not None:  # levels as given (a NumPy array, a tuple): a JSON list load can refit
            params["quantiles"] = [as_level(q) for q in params["quantiles"]]
        config = {
            "format": "titans-ts forecaster",
            "titans_ts_version": __version__,
            "torch_version": torch.__version__,
            "params": params,
            "model_config": self.model_config_.to_dict(),
            "scaler": self.scaler_.to_dict(),
            "columns": [saved_label(c) for c in self.columns_],
            "targets": [saved_label(c) for c in self.targets_],
            "feature_names_in": list(self.feature_names_in_) if hasattr(self, "feature_names_in_") else None,
            **axis_to_json(self.last_index_, self.step_, self.index_name_, getattr(self, "numbered_", False)),
            "long_format": getattr(self, "long_format_", None),
            # fit's split dates, while fit's protocol stands (a protocol set since splits as it says, loaded too)
            "split_starts": getattr(self, "split_starts_", None) if self._protocol_as_fitted() else None,
            "history": self.history_,
            "val_metrics": self.val_metrics_,
            **floors_record(self),
        }
        # the carried memory and what predict reads beside it: a loaded model forecasts as this one does
        history = self._in_history_mode()
        stream_tensors, stream_config = history_stream.saved_stream(self) if history else self._saved_stream()
        tensors, config = tensors | stream_tensors, config | stream_config
        level_tensors, level_config = self._saved_levels()  # nothing without quantiles
        tensors, config = tensors | level_tensors, config | level_config
        return save_model_dir(path, tensors, config)

    @classmethod
    def load(cls, path, device: str | None = None) -> TitansForecaster:
        """Load a model saved by `save` (safetensors + JSON: no code is executed from the files).

        The tensors are read onto the CPU; predict / evaluate move them to `device` ("auto", "cpu" or
        "cuda"; None keeps the `device` the model was saved with), so a model saved on a GPU loads on a CPU.
        Evaluating a loaded model needs the data (`evaluate(df)`): its split borders are the data's own.
        """
        cls._check_load_device(device)
        tensors, config = load_model_dir(path, "titans-ts forecaster", "forecaster")
        try:
            estimator = cls._from_saved(tensors, config, device)
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise mismatched_model_dir(path, "forecaster", exc) from None
        estimator._warn_if_interrupted(path)
        return estimator

    @classmethod
    def _from_saved(cls, tensors: dict, config: dict, device) -> TitansForecaster:
        estimator = cls(**cls._saved_params(config, device))
        history = config.get("mode") == "history"
        if history:
            estimator.model_config_, estimator.model_ = history_mode.load_model(tensors, config)
        else:
            estimator.model_config_ = ForecastConfig(**config["model_config"])
            estimator.model_ = estimator._restore_levels(build_model(estimator.model_config_), tensors, config)
            weights = {k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")}
            estimator.model_.load_state_dict(weights)
            estimator.model_.eval()
        estimator.context_ = tensors["context"]
        estimator.scaler_ = StandardScaler.from_dict(config["scaler"])
        estimator.columns_ = config["columns"]
        estimator.targets_ = config.get("targets", estimator.columns_)  # saved before covariates: all
        estimator.n_features_in_ = len(estimator.columns_)
        if config.get("feature_names_in") is not None:  # absent: fitted on an array (or saved before it was kept)
            estimator.feature_names_in_ = np.asarray(config["feature_names_in"], dtype=object)
        estimator.last_index_, estimator.step_ = axis_from_json(config)
        estimator.numbered_ = bool(config.get("numbered", False))  # saved before it was kept: rows counted on
        estimator.index_name_ = config.get("index_name")  # saved before it was kept: "date" or "step"
        estimator.long_format_ = config.get("long_format")
        # saved before they were kept: by rows; only a split by rows keeps them (a model saved before d585527
        # with its protocol set after fit may hold fit's)
        by_rows = str(config["params"].get("protocol", "")).startswith("rows_")
        estimator.split_starts_ = config.get("split_starts") if by_rows else None
        estimator.history_, estimator.val_metrics_ = config["history"], config["val_metrics"]
        estimator._restore_floors(config)
        estimator._fit_frame = None
        estimator.fitted_params_ = estimator.get_params()
        if history:
            history_stream.restore_stream(estimator, tensors, config)
        else:
            estimator._restore_stream(tensors, config)
        estimator._check_saved_parts()
        return estimator

    def _check_saved_parts(self) -> None:
        """A loaded model's parts agree (a ValueError, the load's "do not describe the same forecaster", where not):
        a config.json edited by hand loaded, then failed in predict with a shape error (horizon 24 -> 12), or
        forecast the scaler's means (a zero scale) or with a variant that does not exist."""
        self.check_params()
        sizes = {name: getattr(self.model_config_, name) for name in ("lookback", "horizon")}
        differing = [f"{name}={getattr(self, name)} (the network's {size})" for name, size in sizes.items()
                     if getattr(self, name) != size]  # fmt: skip
        columns, scaler = len(self.columns_), self.scaler_
        if len(scaler.mean_) != columns or len(scaler.scale_) != columns:
            differing.append(f"a scaler of {len(scaler.mean_)} means, {len(scaler.scale_)} scales, {columns} columns")
        elif not (np.isfinite(scaler.mean_).all() and np.isfinite(scaler.scale_).all() and (scaler.scale_ > 0).all()):
            differing.append("a scaler whose means and scales are not finite, positive numbers")
        if self.context_.shape[-1] != columns:
            differing.append(f"a context of {self.context_.shape[-1]} columns for {columns}")
        if not set(map(str, self.targets_)) <= set(map(str, self.columns_)):
            differing.append(f"targets {self.targets_} not among the columns {self.columns_}")
        if differing:
            raise ValueError("; ".join(differing))

    def _fitted_frame(self, X) -> pd.DataFrame:
        """X's fitted columns, validated, in the fitted order (other columns are ignored; an array of the fitted
        width is read by position)."""
        return fitted_columns(as_frame(X, names=self.columns_), self.columns_)
