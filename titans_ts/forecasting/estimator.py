"""TitansForecaster: a scikit-learn-style estimator around the forecasting backbone."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from titans_ts.data import StandardScaler, make_splits, validate_frame
from titans_ts.data.windows import WindowDataset
from titans_ts.errors import ConfigError, DataValidationError
from titans_ts.forecasting.model import UNTRAINED, ForecastConfig, build_model
from titans_ts.io import load_model_dir, mismatched_model_dir, save_model_dir
from titans_ts.version import __version__


class TitansForecaster(BaseEstimator):
    """Multivariate long-horizon forecaster with the Titans memory as its sequence mixer.

    `fit(df)` splits `df` by `protocol` (the Time-Series-Library one: train / val / test, scaler fitted on
    the train rows), trains on the train windows and stops early on the validation MSE;
    `evaluate()` gives MSE / MAE on the scaled data over every test window; `predict()` forecasts the
    `horizon` steps after the end of the data, in the original units, with future timestamps.

    variant: "lmm", "mac", "mag", "mal" (Titans blocks) or the baselines "attention", "dlinear", and the
    untrained forecasts everyone runs first: "naive" (repeat the last value) and "seasonal_naive" (repeat
    the last season; `season` steps, by default one day at the data's frequency: 24 hourly, 96 at 15 min).
    tokens: "variate" (one token per column, the default) or "patch" (channel-independent time patches).
    target: the column (name) or columns to forecast and score; None: every column. The other columns are
    covariates: the model reads their history as input, but does not forecast them and they are not scored.
    checkpoint_dir: write resumable checkpoints there (every validated epoch, and every `checkpoint_minutes`);
    `fit(X, resume=True)` continues a killed run from the newest one (titans_ts/checkpointing.py).
    devices, num_nodes, strategy: Lightning's, for training on several devices or machines (e.g. devices=2,
    strategy="ddp"); `batch_size` is per device (docs/scaling.md).
    device: "auto" (CUDA when available, else CPU), "cpu" or "cuda": where fit, predict and evaluate run;
    results always come back as CPU NumPy/pandas, and a saved model loads on either device.
    The defaults were chosen on ETTh1 validation MSE and training time: docs/forecasting.md.
    """

    def __init__(
        self,
        horizon: int = 96,
        lookback: int = 96,
        variant: str = "lmm",
        tokens: str = "variate",
        dim: int = 32,
        layers: int = 2,
        heads: int = 4,
        patch_len: int = 16,
        stride: int = 8,
        dropout: float = 0.1,
        memory_depth: int = 2,
        chunk_size: int = 16,
        epochs: int = 10,
        batch_size: int = 32,
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        patience: int = 3,
        protocol: str = "ratio_70_10_20",
        seed: int = 0,
        max_minutes: float | None = None,
        progress: bool = True,
        device: str = "auto",
        season: int | None = None,
        target: str | list[str] | None = None,
        checkpoint_dir: str | None = None,
        checkpoint_minutes: float | None = None,
        devices: int | str = 1,
        num_nodes: int = 1,
        strategy: str = "auto",
    ):
        self.horizon = horizon
        self.lookback = lookback
        self.variant = variant
        self.tokens = tokens
        self.dim = dim
        self.layers = layers
        self.heads = heads
        self.patch_len = patch_len
        self.stride = stride
        self.dropout = dropout
        self.memory_depth = memory_depth
        self.chunk_size = chunk_size
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.patience = patience
        self.protocol = protocol
        self.seed = seed
        self.max_minutes = max_minutes
        self.progress = progress
        self.device = device
        self.season = season
        self.target = target
        self.checkpoint_dir = checkpoint_dir
        self.checkpoint_minutes = checkpoint_minutes
        self.devices = devices
        self.num_nodes = num_nodes
        self.strategy = strategy

    # --- fitting -----------------------------------------------------------------------------------

    def fit(self, X, y=None, resume: bool = False):
        """Train on the train split of X (a DataFrame with a DatetimeIndex, or a 2-D array).

        resume: continue from the newest checkpoint in `checkpoint_dir` (same settings and data required)."""
        import time

        from titans_ts.forecasting.training import ForecastModule, evaluate_windows
        from titans_ts.training import fit_interruptible, make_trainer, resolve_device, run_record, seed_everything

        device = resolve_device(self.device)  # before any work: a bad value or a missing GPU fails fast
        self.check_params()
        frame = _as_frame(X)
        targets = _resolve_targets(self.target, frame.columns)
        splits = make_splits(frame, self.lookback, self.horizon, self.protocol, targets)
        config = self._model_config(frame.shape[1], _season(self, frame.index), targets)
        seed_everything(self.seed)
        model = build_model(config)
        loaders = splits.loaders(self.batch_size, seed=self.seed, shard=True)  # what the Trainer reads
        if config.variant in UNTRAINED:
            self.history_ = {"best_epoch": None, "best_val_mse": None, "epochs_run": 0, "steps": 0}
            self.history_ |= {"stop_reason": "untrained", "trained": False}
        else:
            module = ForecastModule(model, lr=self.lr, weight_decay=self.weight_decay)
            checkpoint = self._checkpoint_to_resume(frame, resume)
            trainer, best = make_trainer(
                max_epochs=self.epochs,
                monitor="val_mse",
                patience=self.patience,
                progress=self.progress,
                max_minutes=self.max_minutes,
                device=device,
                checkpoint_dir=self.checkpoint_dir,
                checkpoint_minutes=self.checkpoint_minutes,
                devices=self.devices,
                num_nodes=self.num_nodes,
                strategy=self.strategy,
                loader_generator=loaders["train"].generator,
            )
            started = time.perf_counter()
            fit_interruptible(trainer, module, loaders["train"], loaders["val"], best, ckpt_path=checkpoint)
            best.restore(module)
            self.history_ = run_record(trainer, best, time.perf_counter() - started) | {"best_val_mse": best.best}
        model.eval()

        self.model_config_ = config
        self.model_ = model
        self.scaler_ = splits.scaler
        self.columns_ = list(frame.columns)
        self.targets_ = [self.columns_[i] for i in targets] if targets else list(self.columns_)
        self.n_features_in_ = frame.shape[1]
        self.history_["device"] = str(device)
        self.val_metrics_ = evaluate_windows(model, splits.loaders(self.batch_size)["val"], device)  # every window
        self._set_context(frame)
        self._fit_frame = frame
        return self

    def _checkpoint_to_resume(self, frame, resume: bool):
        from titans_ts.checkpointing import data_fingerprint, estimator_checkpoint

        return estimator_checkpoint(self, data_fingerprint(frame.to_numpy(dtype=np.float64)), resume)

    def check_params(self) -> None:
        """Refuse impossible settings before any data is read or any work starts (a ConfigError naming them)."""
        problems = []
        if self.variant not in UNTRAINED and not (isinstance(self.epochs, int) and self.epochs >= 1):
            problems.append(f"epochs={self.epochs!r} (at least 1: a model needs one epoch of training)")
        for name in ("horizon", "lookback", "batch_size", "dim", "layers", "heads", "chunk_size"):
            value = getattr(self, name)
            if not (isinstance(value, int) and value >= 1):
                problems.append(f"{name}={value!r} (a positive integer)")
        if not (isinstance(self.patience, int) and self.patience >= 0):
            problems.append(f"patience={self.patience!r} (0 or more epochs)")
        if not self.lr > 0:
            problems.append(f"lr={self.lr!r} (positive)")
        if not 0 <= self.dropout < 1:
            problems.append(f"dropout={self.dropout!r} (in [0, 1))")
        if self.max_minutes is not None and not self.max_minutes > 0:
            problems.append(f"max_minutes={self.max_minutes!r} (positive, or None for no budget)")
        if problems:
            raise ConfigError("impossible setting(s): " + "; ".join(problems) + ".")

    def _model_config(self, channels: int, season: int = 0, targets=None) -> ForecastConfig:
        return ForecastConfig(
            lookback=self.lookback,
            horizon=self.horizon,
            channels=channels,
            variant=self.variant,
            tokens=self.tokens,
            dim=self.dim,
            layers=self.layers,
            heads=self.heads,
            patch_len=self.patch_len,
            stride=self.stride,
            dropout=self.dropout,
            memory_depth=self.memory_depth,
            chunk_size=self.chunk_size,
            season=season,
            targets=tuple(targets or ()),
        )

    def _target_positions(self) -> list[int] | None:
        """Positions of the forecast columns among the inputs (None: all columns are forecast)."""
        targets = list(self.model_config_.targets)
        return targets or None

    def _target_scaler(self) -> StandardScaler:
        targets = self._target_positions()
        return self.scaler_ if targets is None else self.scaler_.subset(targets)

    def _set_context(self, frame: pd.DataFrame) -> None:
        """The last `lookback` rows (scaled) and the time axis: what `predict()` continues from."""
        self.context_ = torch.as_tensor(self.scaler_.transform(frame.to_numpy()[-self.lookback :]), dtype=torch.float32)
        self.last_index_, self.step_ = _time_axis(frame.index)
        self.memory_state_, self.stream_forecast_ = None, None  # streaming starts from the trained memory

    # --- streaming: the memory keeps learning across forecasts ---------------------------------------

    def update(self, new_rows) -> TitansForecaster:
        """Append observations in time order and let the memory keep what it learns from them.

        For each new row, the window of the last `lookback` rows is run through the network starting from
        the carried memory state (memory weights and momentum of every block; see docs/forecasting.md),
        its forecast is kept, and the state after the window becomes the carried state. `predict()` then
        returns the forecast made at the last row. update(a); update(b) equals update(a + b).
        """
        self._check_fitted()
        self._check_streamable()
        frame = self._check_columns(_as_frame(new_rows))
        scaled = torch.as_tensor(self.scaler_.transform(frame.to_numpy()), dtype=torch.float32)
        device = self._device()
        self.model_.to(device).eval()
        context, state = self.context_.to(device), getattr(self, "memory_state_", None)
        with torch.no_grad():
            for row in scaled.to(device):
                context = torch.cat([context[1:], row[None]])
                forecast, state = self._stream_step(context[None], state)
        self.context_ = context.cpu()
        self.memory_state_, self.stream_forecast_ = state, forecast[0].double().cpu().numpy()
        if len(frame):
            self.last_index_ = (
                frame.index[-1] if isinstance(self.last_index_, pd.Timestamp) else self.last_index_ + len(frame)
            )
        return self

    def online_forecasts(self, X=None, split: str = "test") -> np.ndarray:
        """Forecasts (scaled) of every window of a split, made as a stream: in time order, each from the
        memory state carried from the windows before it (and never from its own targets)."""
        self._check_fitted()
        self._check_streamable()
        _, _, loader = self._split_windows(X, split, batch_size=1)
        device = self._device()
        self.model_.to(device).eval()
        forecasts, state = [], None
        with torch.no_grad():
            for x, _ in loader:
                forecast, state = self._stream_step(x.to(device), state)
                forecasts.append(forecast[0].double().cpu().numpy())
        return np.stack(forecasts)

    def _stream_step(self, window: torch.Tensor, state):
        forecast, states = self.model_(window, state, return_states=True)
        return forecast, [_carried(s) for s in states]

    def _check_streamable(self) -> None:
        if self.variant != "lmm":
            raise ConfigError(
                f"streaming updates need the memory variant 'lmm'; this model is {self.variant!r} "
                "(no memory, or attention beside it whose window is not carried)."
            )

    # --- using a fitted model -----------------------------------------------------------------------

    def predict(self, X=None) -> pd.DataFrame:
        """Forecast the `horizon` steps after the end of X (default: the fitted data), in original units."""
        self._check_fitted()
        if X is None and getattr(self, "stream_forecast_", None) is not None:  # after update(): the stream's
            values = self._target_scaler().inverse_transform(self.stream_forecast_)
            index = _future_index(self.last_index_, self.step_, self.horizon)
            return pd.DataFrame(values, index=index, columns=self.targets_)
        if X is None:
            context, last, step = self.context_, self.last_index_, self.step_
        else:
            frame = self._check_columns(_as_frame(X))
            if len(frame) < self.lookback:
                raise DataValidationError(
                    f"predict needs at least lookback={self.lookback} rows; got {len(frame)}. Pass a longer history."
                )
            context = torch.as_tensor(self.scaler_.transform(frame.to_numpy()[-self.lookback :]), dtype=torch.float32)
            last, step = _time_axis(frame.index)
        device = self._device()
        with torch.no_grad():
            self.model_.to(device).eval()
            scaled = self.model_(context[None].to(device))[0].double().cpu().numpy()
        values = self._target_scaler().inverse_transform(scaled)
        index = _future_index(last, step, self.horizon)
        return pd.DataFrame(values, index=index, columns=self.targets_)

    def evaluate(self, X=None, split: str = "test", batch_size: int = 256, online: bool = False) -> dict:
        """MSE and MAE on the scaled data over every window of a split (the protocol of `fit`).

        online: forecast the windows as a stream with the memory state carried forward (`online_forecasts`)
        instead of each from the trained memory."""
        from titans_ts.forecasting.training import evaluate_windows

        if online:
            forecasts = self.online_forecasts(X, split)
            _, _, loader = self._split_windows(X, split, batch_size)
            targets = torch.cat([y for _, y in loader]).double().numpy()
            error = forecasts - targets
            return {"mse": float(np.mean(error**2)), "mae": float(np.mean(np.abs(error))), "windows": len(error)}

        _, _, loader = self._split_windows(X, split, batch_size)
        return evaluate_windows(self.model_, loader, self._device())

    def window_forecasts(self, X=None, split: str = "test", batch_size: int = 256) -> pd.DataFrame:
        """Every window of a split, one row per (window, step, column): origin and forecast time, the
        prediction and the truth in original units and scaled (the scaled ones give `evaluate`'s MSE)."""
        from titans_ts.forecasting.diagnostics import window_table

        frame, start, loader = self._split_windows(X, split, batch_size)
        device = self._device()
        self.model_.to(device).eval()
        predictions, targets = [], []
        with torch.no_grad():
            for x, y in loader:
                predictions.append(self.model_(x.to(device)).double().cpu().numpy())
                targets.append(y.double().numpy())
        return window_table(
            np.concatenate(predictions),
            np.concatenate(targets),
            self._target_scaler(),
            frame.index,
            start + self.lookback,
            self.targets_,
        )

    def _split_windows(self, X, split: str, batch_size: int):
        """(frame, first row of the split, loader over its scaled windows in order)."""
        self._check_fitted()
        if split not in ("train", "val", "test"):
            raise ConfigError(f"split must be 'train', 'val' or 'test'; got {split!r}.")
        frame = self._fit_frame if X is None else self._check_columns(_as_frame(X))
        if frame is None:
            raise ConfigError("This model was loaded from disk: pass the data to evaluate, e.g. evaluate(df).")
        start, end = getattr(make_splits(frame, self.lookback, self.horizon, self.protocol).borders, split)
        scaled = self.scaler_.transform(frame.to_numpy()[start:end])  # the fitted (train-rows) scaler
        dataset = WindowDataset(scaled, self.lookback, self.horizon, self._target_positions())
        loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False, drop_last=False)
        return frame, start, loader

    def score(self, X=None) -> float:
        """Negative test MSE (higher is better, as scikit-learn expects)."""
        return -self.evaluate(X)["mse"]

    # --- persistence: safetensors + JSON, never pickle -------------------------------------------------

    def save(self, path) -> Path:
        """Write `path/model.safetensors` and `path/config.json` (all or nothing)."""
        self._check_fitted()
        path = Path(path)
        tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in self.model_.state_dict().items()}
        tensors["context"] = self.context_.cpu().contiguous()
        config = {
            "format": "titans-ts forecaster",
            "titans_ts_version": __version__,
            "torch_version": torch.__version__,
            "params": self.get_params(),
            "model_config": self.model_config_.to_dict(),
            "scaler": self.scaler_.to_dict(),
            "columns": [str(c) for c in self.columns_],
            "targets": [str(c) for c in self.targets_],
            "last_index": str(self.last_index_),
            "step": str(self.step_),
            "index_kind": "datetime" if isinstance(self.last_index_, pd.Timestamp) else "range",
            "history": self.history_,
            "val_metrics": self.val_metrics_,
        }
        save_model_dir(path, tensors, config)
        return path

    @classmethod
    def load(cls, path, device: str | None = None) -> TitansForecaster:
        """Load a model saved by `save` (safetensors + JSON: no code is executed from the files).

        The tensors are read onto the CPU; predict / evaluate move them to `device` ("auto", "cpu" or
        "cuda"; None keeps the `device` the model was saved with), so a model saved on a GPU loads on a CPU.
        """
        tensors, config = load_model_dir(path, "titans-ts forecaster", "forecaster")
        try:
            estimator = cls._from_saved(tensors, config, device)
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise mismatched_model_dir(path, "forecaster", exc) from None
        return estimator

    @classmethod
    def _from_saved(cls, tensors: dict, config: dict, device) -> TitansForecaster:
        params = dict(config["params"])
        if device is not None:
            params["device"] = device
        estimator = cls(**params)
        estimator.model_config_ = ForecastConfig(**config["model_config"])
        estimator.model_ = build_model(estimator.model_config_)
        estimator.model_.load_state_dict({k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")})
        estimator.model_.eval()
        estimator.context_ = tensors["context"]
        estimator.scaler_ = StandardScaler.from_dict(config["scaler"])
        estimator.columns_ = config["columns"]
        estimator.targets_ = config.get("targets", estimator.columns_)  # saved before covariates: all
        estimator.n_features_in_ = len(estimator.columns_)
        if config["index_kind"] == "datetime":
            estimator.last_index_, estimator.step_ = (
                pd.Timestamp(config["last_index"]),
                pd.Timedelta(config["step"]),
            )
        else:
            estimator.last_index_, estimator.step_ = int(config["last_index"]), int(config["step"])
        estimator.history_, estimator.val_metrics_ = config["history"], config["val_metrics"]
        estimator._fit_frame = None
        return estimator

    # --- checks ------------------------------------------------------------------------------------

    def _device(self) -> torch.device:
        from titans_ts.training import resolve_device

        return resolve_device(self.device)

    def _check_fitted(self) -> None:
        try:
            check_is_fitted(self, "model_")
        except NotFittedError as exc:
            raise NotFittedError(
                "This TitansForecaster is not fitted yet: call fit(df) first, or TitansForecaster.load(path)."
            ) from exc

    def _check_columns(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The fitted columns of `frame`, in the fitted order (other columns are ignored)."""
        columns = [str(c) for c in frame.columns]
        if columns == [str(c) for c in self.columns_]:
            return frame
        missing = [c for c in self.columns_ if str(c) not in columns]
        if missing:
            raise DataValidationError(
                f"the model was trained on columns {self.columns_}; the data lacks {missing} (it has {columns})."
            )
        frame = frame.set_axis(columns, axis=1)
        return frame[[str(c) for c in self.columns_]]


def _as_frame(X) -> pd.DataFrame:
    if isinstance(X, pd.DataFrame):
        frame = X
    else:
        array = np.asarray(X)
        if array.ndim == 1:
            array = array[:, None]
        if array.ndim != 2:
            raise DataValidationError(
                f"expected a DataFrame or a 2-D array (time x features); got shape {array.shape}."
            )
        frame = pd.DataFrame(array, columns=[f"x{i}" for i in range(array.shape[1])])
    return validate_frame(frame, source="the input data")


def _resolve_targets(target, columns) -> list[int] | None:
    """Positions of the `target` column(s) among `columns`; None when every column is a target."""
    if target is None:
        return None
    names = [target] if isinstance(target, str) else list(target)
    columns = [str(c) for c in columns]
    unknown = [t for t in names if str(t) not in columns]
    if not names or unknown:
        raise DataValidationError(
            f"target column(s) {unknown or names} are not in the data; its columns are {columns}."
        )
    if len(set(names)) != len(names):
        raise ConfigError(f"target lists a column twice: {names}.")
    positions = [columns.index(str(t)) for t in names]
    return None if sorted(positions) == list(range(len(columns))) and positions == sorted(positions) else positions


def _season(estimator: TitansForecaster, index: pd.Index) -> int:
    """Steps per season for variant="seasonal_naive": the `season` parameter, else one day at the data's
    frequency (hourly 24, 15-minute 96, 10-minute 144; weekly for daily data). 0 for other variants."""
    if estimator.variant != "seasonal_naive":
        return 0
    if estimator.season is not None:
        if not isinstance(estimator.season, int) or estimator.season < 1:
            raise ConfigError(f"season must be a positive number of steps; got {estimator.season!r}.")
        return estimator.season
    season = season_from_index(index)
    if season is not None:
        return season
    raise ConfigError(
        "seasonal_naive could not tell the season from the data's time index (no regular sub-daily dates): "
        "pass season=<steps per season> (CLI --season)."
    )


def season_from_index(index: pd.Index) -> int | None:
    """One day in steps of a regular sub-daily DatetimeIndex (7 for daily data); None when there is none."""
    _, step = _time_axis(index)
    if isinstance(step, pd.Timedelta) and step > pd.Timedelta(0):
        day = pd.Timedelta(days=1)
        if step == day:
            return 7
        if day % step == pd.Timedelta(0):
            return int(day / step)
    return None


def _carried(state):
    """What a stream carries to the next window: the memory's weights and momentum, not its conv cache
    (a new window is a new token sequence)."""
    if state is None:
        return None
    from dataclasses import replace

    return replace(state, conv_cache=None, tokens_seen=0)


def _time_axis(index: pd.Index):
    """(last index value, step): a Timestamp and the most common spacing for a DatetimeIndex, else ints."""
    if isinstance(index, pd.DatetimeIndex) and len(index) >= 2:
        spacing = pd.Series(index[-min(len(index), 500) :]).diff().dropna()
        return index[-1], spacing.mode().iloc[0]
    return len(index) - 1, 1


def _future_index(last, step, horizon: int) -> pd.Index:
    if isinstance(last, pd.Timestamp):
        return pd.DatetimeIndex([last + step * (i + 1) for i in range(horizon)], name="date")
    return pd.RangeIndex(last + 1, last + 1 + horizon)
