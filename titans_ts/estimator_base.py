"""What every estimator of both domains shares beyond scikit-learn's BaseEstimator: the fitted check, the
device, the settings handed to the training loop, the checkpoint to resume from, and the parameters a saved
model is rebuilt with."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

# Estimator parameters that say how a run is carried out, not what it computes: a resume may change them.
RUN_ONLY = ("progress", "device", "checkpoint_dir", "checkpoint_minutes", "max_minutes", "devices", "num_nodes")
RUN_ONLY += ("strategy", "fallback")  # fallback: which forecaster is used after training


class TitansEstimator(BaseEstimator):
    """Base of TitansForecaster and DNAClassifier (put scikit-learn mixins such as ClassifierMixin first).

    A subclass keeps scikit-learn's rules (`__init__` only stores parameters, learned state ends in `_`),
    has the training settings of `titans_ts.training.TRAINER_SETTINGS` among its parameters (epochs,
    patience, progress, max_minutes, device, checkpoint_dir, ...), keeps its network in `model_` once fitted,
    and sets `_fit_call`, the call the not-fitted message suggests (e.g. "fit(df)"). In `fit`:

        device = self._device()                       # before any work: a bad device fails fast
        ...seed, build the model and loaders...
        checkpoint = self._checkpoint_to_resume(values, resume)
        record = train_and_restore(module, train, val, checkpoint=checkpoint,
                                   **self._trainer_options(monitor="val_loss", device=device))

    and in `load`: `cls(**cls._saved_params(config, device))`.
    """

    _fit_call = "fit(...)"
    _changeable_after_fit: tuple[str, ...] = ()  # the settings that do not shape a fitted model

    def _check_fitted(self, changing: tuple[str, ...] = ()) -> None:
        """NotFittedError (naming the class and how to fit or load one) until `model_` exists; a ConfigError
        when a setting that shapes the fitted model changed since (`fitted_params_`, recorded by fit and load:
        set_params(horizon=12) after a fit at 24 made predict fail deep inside, or was ignored and saved), or
        when one that may change is now one fit would refuse (`check_params`). `changing`: settings the caller is
        about to set itself (recalibrate's calibrate), not compared."""
        try:
            check_is_fitted(self, "model_")
        except NotFittedError as exc:
            name = type(self).__name__
            raise NotFittedError(
                f"This {name} is not fitted yet: call {self._fit_call} first, or {name}.load(path)."
            ) from exc
        fitted = getattr(self, "fitted_params_", None)
        if fitted is None:
            return
        now, fitted = self._comparable(self.get_params()), self._comparable(dict(fitted))
        shaping = [k for k in now if k not in (*self._changeable_after_fit, *changing) and k in fitted]
        changed = [k for k in shaping if not _same(now[k], fitted[k])]
        if changed:
            from titans_ts.errors import ConfigError

            said = ", ".join(f"{k}: {fitted[k]!r} at fit, {now[k]!r} now" for k in changed)
            why, how = self._why_changed(changed)
            raise ConfigError(
                f"settings changed since fit ({said}): they shape the fitted model{why}. Fit again{how}, or set "
                "them back."
            )
        # one set after fit (online_blend=5, batch_size=0) is refused as fit refuses it; how a call runs (progress,
        # device, checked where used) does not make a model saved under older rules be checked by today's
        if any(k in fitted and k not in RUN_ONLY and not _same(now[k], fitted[k]) for k in self._changeable_after_fit):
            self.check_params()

    def _forget_fit(self) -> None:
        """Drop what an earlier fit (or load, or update) left: every learned attribute (its name ends in `_`) and
        the fitted frame. A new fit calls it as it commits its own state, so nothing of a fit in another mode
        (quantile levels, a carried stream) outlives it, and a fit that fails keeps the model it had."""
        for name in [name for name in vars(self) if name.endswith("_") and not name.startswith("__")]:
            delattr(self, name)
        vars(self).pop("_fit_frame", None)

    def _comparable(self, params: dict) -> dict:
        """`params` as _check_fitted compares them (a subclass may put equal values alike)."""
        return params

    def _why_changed(self, changed: list[str]) -> tuple[str, str]:
        """What the refusal of `changed` settings adds after "they shape the fitted model" and "Fit again"."""
        return "", ""

    @staticmethod
    def _check_load_device(device) -> None:
        """load(path, device=...): a device that is no device, or CUDA where there is none, refused at once (not at
        the first predict)."""
        from titans_ts.training import resolve_device

        if device is not None:
            resolve_device(device)

    def _device(self) -> torch.device:
        """The torch device of the `device` parameter (`titans_ts.training.resolve_device`)."""
        from titans_ts.training import resolve_device

        return resolve_device(self.device)

    def _trainer_options(self, **overrides) -> dict:
        """make_trainer's arguments from this estimator's settings (`titans_ts.training.trainer_options`)."""
        from titans_ts.training import trainer_options

        return trainer_options(self, **overrides)

    def _checkpoint_to_resume(self, data, resume: bool) -> Path | None:
        """The checkpoint `fit(..., resume=resume)` continues from (None: a fresh start, whose settings are
        recorded in checkpoint_dir when there is one). `data`: what identifies the training data, an array or a
        list of strings (`io.data_fingerprint`); a resume on other data or settings is refused."""
        from titans_ts.checkpointing import estimator_checkpoint
        from titans_ts.io import data_fingerprint

        return estimator_checkpoint(self, data_fingerprint(data), resume)

    def _warn_if_interrupted(self, path) -> None:
        """A loaded model whose training was interrupted (Ctrl-C, kill) says so: it works, on the weights of the
        epochs that finished, and a resumed run finishes it."""
        history = getattr(self, "history_", None) or {}
        if history.get("stop_reason") == "interrupted":  # imported only then: predicting imports no lightning
            import warnings

            from titans_ts.errors import InterruptedTrainingWarning
            from titans_ts.training import stop_note

            warnings.warn(
                f"{path}: {stop_note(history)} Run its command again to finish it (fit or finetune with --resume, "
                "a benchmark as it was; in Python fit(..., resume=True) with its checkpoint_dir).",
                InterruptedTrainingWarning,
                stacklevel=3,
            )

    @staticmethod
    def _saved_params(config: dict, device=None) -> dict:
        """The parameters a saved model (its config.json) is rebuilt with; `device`, unless None, replaces the
        saved one (a model saved on a GPU loads on a CPU). `checkpoint_dir` and the scale-out settings are the
        saving run's, not the model's: a loaded model that is fitted again checkpoints where its new caller says,
        or nowhere, on one process (a model trained with devices=2 started two processes when refitted)."""
        params = dict(config["params"])
        for name, default in (("checkpoint_dir", None), ("devices", 1), ("num_nodes", 1), ("strategy", "auto")):
            if name in params:
                params[name] = default
        if device is not None:
            params["device"] = device
        return params


def _same(a, b) -> bool:
    """Equal settings, arrays too (quantiles=np.array([0.1, 0.9]))."""
    try:
        return bool(a == b)
    except (ValueError, TypeError):
        return np.array_equal(np.asarray(a), np.asarray(b))
