"""Floors: the forecasts anyone runs first, scored at every fit beside the model, and the fallback to them.

A floor repeats the last value of each window (repeat last) or its last season (seasonal naive), as the
variants "naive" and "seasonal_naive" do (`model.RepeatLast`). Every fit scores repeat last and seasonal naive
for each season of the data (`candidate_seasons`): the calendar periods of its step (a day and a week for
sub-daily data, a week and a year for daily data) and the strongest peak of the training split's
autocorrelation (for undated data, the only one). Seasonal naive repeats the last season of the lookback
window, so a season longer than the lookback is not scored (a note says so). The floors are scored on the
validation windows the model is scored on: every window, on the data scaled by the train-rows scaler.

fallback="auto": a trained model whose validation MSE is behind the best floor's forecasts with that floor
instead (predict, evaluate, window_forecasts and streaming); fallback="off": always the model (the benchmark's
setting: it reports the model itself). `forecaster_used_` and `fallback_reason_` say which and why.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import replace

import numpy as np
import pandas as pd
from torch import nn

from titans_ts.errors import ConfigError, FallbackWarning, is_integer
from titans_ts.forecasting.model import UNTRAINED, ForecastConfig, build_model
from titans_ts.forecasting.time_axis import calendar_seasons, season_from_index, time_axis

MODEL, REPEAT_LAST = "model", "repeat last"
FALLBACKS = ("auto", "off")
CALENDAR = (
    ("one day", pd.Timedelta(days=1)),
    ("one week", pd.Timedelta(weeks=1)),
    ("one year", pd.Timedelta(days=365)),
)
FEW_WINDOWS = 20  # validation windows below which the choice is said to rest on few
PEAK_RISE = 0.1  # an autocorrelation peak rises at least this far above the lowest value at shorter lags
PEAK_TIE = 0.02  # peaks this close to the highest are its equals: the shortest of them is the season
COLUMN_CHUNK = 32  # columns per FFT in `autocorrelation_peak` (bounds its memory on wide data)


def floor_name(season: int) -> str:
    return REPEAT_LAST if season == 1 else f"seasonal naive (season {season})"


def season_of(name: str) -> int:
    """The season in steps (1: repeat last) of a floor named by `floor_name`."""
    return 1 if name == REPEAT_LAST else int(re.fullmatch(r"seasonal naive \(season (\d+)\)", name)[1])


def floor_model(config: ForecastConfig, season: int) -> nn.Module:
    """The floor that repeats the last `season` steps of each window (1: its last value), for a model's config."""
    naive = season == 1
    return build_model(replace(config, variant="naive" if naive else "seasonal_naive", season=0 if naive else season))


def season_steps(variant: str, season: int | None, index: pd.Index, train: np.ndarray, lookback: int) -> int:
    """Steps per season for variant="seasonal_naive": `season` when given, else one day at the data's
    frequency (hourly 24, 15-minute 96, 10-minute 144; a week for daily data, a year for monthly), else (weekly
    or undated data) the peak of the training split's autocorrelation `train` (rows x columns) within the
    lookback. 0 for other variants."""
    if variant != "seasonal_naive":
        return 0
    if season is not None:
        if not is_integer(season) or season < 1:
            raise ConfigError(f"season must be a positive number of steps; got {season!r}.")
        return season
    found = season_from_index(index)
    if found is not None:
        return found
    peak = autocorrelation_peak(train, lookback)
    if peak is not None:
        return peak[0]
    raise ConfigError(
        "seasonal_naive found no season: the data's time index has no regular sub-daily, daily, business-day, "
        f"monthly or quarterly dates, and the training split's autocorrelation no peak within the lookback "
        f"({lookback} steps): pass season=<steps per season> (CLI --season), or a longer lookback."
    )


def candidate_seasons(index: pd.Index, lookback: int, train: np.ndarray) -> tuple[dict[int, str], list[str]]:
    """({season in steps: where it comes from}, notes on the seasons not scored); season 1 is repeat last.

    index: the data's time index (its step gives the calendar seasons); train: the training split's scaled
    target values (rows x columns), whose autocorrelation peak is the other season."""
    offered = [(1, "the last value")]
    _, step = time_axis(index)
    offered += calendar_seasons(step)  # business days: a week; months and quarters: a year
    if isinstance(step, pd.Timedelta) and step > pd.Timedelta(0):
        calendar = [(p // step, name) for name, p in CALENDAR if p > step and p % step == pd.Timedelta(0)]
        offered += calendar[:2]  # sub-daily: a day and a week; daily: a week and a year
    peak = autocorrelation_peak(train, lookback)
    if peak is not None:
        offered.append((peak[0], f"the training split's autocorrelation peak ({peak[1]:.2f})"))
    seasons, notes = {}, []
    for steps, why in offered:
        if steps > lookback:
            notes.append(
                f"{why} ({steps} steps) is not scored: seasonal naive repeats the last season of the lookback "
                f"window, and the lookback is {lookback} steps (a longer lookback would score it)"
            )
        else:
            seasons[steps] = f"{seasons[steps]}; {why}" if steps in seasons else why
    return dict(sorted(seasons.items())), notes


def autocorrelation_peak(values: np.ndarray, max_lag: int) -> tuple[int, float] | None:
    """(lag, autocorrelation) of the highest peak over lags 2..max_lag (at most half the rows) of the mean
    autocorrelation of the columns of `values` (rows x columns), or None. A peak is a local maximum at least
    PEAK_RISE above the lowest autocorrelation at shorter lags: a random walk's only falls, and has none. Of
    peaks within PEAK_TIE of the highest (a season's multiples), the shortest lag is taken."""
    values = np.asarray(values, dtype=np.float64)
    rows = len(values)
    max_lag = min(max_lag, rows // 2)
    centred = values - values.mean(axis=0)
    centred = centred[:, (centred**2).sum(axis=0) > 0]  # a constant column has no autocorrelation
    if max_lag < 2 or not centred.shape[1]:
        return None
    size = 1 << (2 * rows - 1).bit_length()  # zero-padded: no wrap-around
    lags = np.arange(max_lag + 2)
    total = np.zeros(max_lag + 2)
    for start in range(0, centred.shape[1], COLUMN_CHUNK):
        spectrum = np.fft.rfft(centred[:, start : start + COLUMN_CHUNK], size, axis=0)
        covariance = np.fft.irfft(spectrum * spectrum.conj(), size, axis=0)[: max_lag + 2] / (rows - lags)[:, None]
        total += (covariance / covariance[0]).sum(axis=1)  # unbiased at every lag: a peak stays where it is
    acf = total / centred.shape[1]
    k = np.arange(2, max_lag + 1)
    lowest = np.minimum.accumulate(acf[1:])[k - 2]  # the lowest autocorrelation at lags 1 .. k-1
    peaks = k[(acf[k] >= acf[k - 1]) & (acf[k] >= acf[k + 1]) & (acf[k] - lowest >= PEAK_RISE)]
    if not len(peaks):
        return None
    best = int(peaks[acf[peaks] >= acf[peaks].max() - PEAK_TIE][0])
    return best, float(acf[best])


def choose(
    model_mse: float, floors: dict[str, float], trained: bool, fallback: str, windows: int | None = None
) -> tuple[str, str]:
    """(who forecasts: MODEL or a floor's name, why), from the validation MSE of the model and of each floor
    (over `windows` validation windows: few are said to be few)."""
    best = min(floors, key=floors.get)
    scores = f"validation MSE {model_mse:#.4g} against {floors[best]:#.4g} for the best floor, {best}"
    if windows is not None and windows < FEW_WINDOWS:
        scores += f" (on only {windows} validation window{'s' if windows != 1 else ''}: few to decide on)"
    if not trained:
        return MODEL, f"the model is itself a naive forecast, nothing trained; {scores}"
    if model_mse <= floors[best]:
        return MODEL, f"the model is not behind the best floor: {scores}"
    if fallback == "off":
        return MODEL, f"the model is behind the best floor, and fallback='off' keeps it: {scores}"
    return best, f"the model is behind the best floor, so {best} forecasts instead (fallback='auto'): {scores}"


def floors_record(estimator) -> dict:
    """The floors and the choice, as metrics.json and a saved model's config.json hold them."""
    return {
        "forecaster_used": estimator.forecaster_used_,
        "fallback_reason": estimator.fallback_reason_,
        "floors": estimator.floors_,  # validation MSE of each floor, on the model's validation windows
        "floor_notes": estimator.floor_notes_,
    }


class Floors:
    """TitansForecaster's floors and fallback (a mixin: it uses the fitted model's config and validation score)."""

    def _score_floors(self, splits, index: pd.Index) -> None:
        """Score every floor on the validation windows the model was scored on (`val_metrics_`); choose who
        forecasts (`forecaster_used_`, `fallback_reason_`)."""
        from titans_ts.forecasting.evaluation import evaluate_windows

        seasons, skipped = candidate_seasons(index, self.lookback, splits.train.targets.numpy())
        loader = splits.loaders(self.batch_size)["val"]  # every window, in order, as for val_metrics_
        config = self._floor_config()
        floors = {floor_name(s): evaluate_windows(floor_model(config, s), loader)["mse"] for s in seasons}
        self.floors_, self.floor_notes_ = floors, [f"{floor_name(s)}: {w}" for s, w in seasons.items()] + skipped
        trained = config is not self.model_config_ or config.variant not in UNTRAINED
        scored = (self.val_metrics_["mse"], floors, trained, self.fallback, len(loader.dataset))
        self.forecaster_used_, self.fallback_reason_ = choose(*scored)
        if self.forecaster_used_ != MODEL:  # said where it is made: a Python user sees no printed note
            warnings.warn(
                f"{self.fallback_reason_}. Its forecasts and scores are the floor's: a search over the model's "
                "settings (GridSearchCV) compares floors; fallback='off' keeps the model.",
                FallbackWarning,
                stacklevel=4,  # the user's fit: _fit_window or history_mode.fit, then fit
            )

    def _forecaster(self) -> nn.Module:
        """What forecasts: the trained network, or the floor that replaced it (`forecaster_used_`)."""
        used = getattr(self, "forecaster_used_", MODEL)
        return self.model_ if used == MODEL else floor_model(self._floor_config(), season_of(used))

    def _floor_config(self) -> ForecastConfig:
        """The window network's config a floor is built from: the model's own; in history mode (whose model has
        a LongMemoryConfig) one of the same lookback, horizon and columns."""
        config = self.model_config_
        if isinstance(config, ForecastConfig):
            return config
        return ForecastConfig(lookback=config.lookback, horizon=config.horizon, channels=self.n_features_in_)

    def _forecaster_name(self) -> str:
        """Who forecasts, in a title or a note: the variant, or the floor that replaced it."""
        return self.variant if self.forecaster_used_ == MODEL else self.forecaster_used_

    def _said(self, table: pd.DataFrame) -> pd.DataFrame:
        """A forecast table saying which forecaster made it and why (`table.attrs`)."""
        table.attrs.update(forecaster=self.forecaster_used_, fallback_reason=self.fallback_reason_)
        return table

    def _restore_floors(self, config: dict) -> None:
        """The floors and the choice of a saved model; one saved before they existed forecasts with its model."""
        if "forecaster_used" not in config:
            self.fallback = "off"
        self.floors_, self.floor_notes_ = config.get("floors", {}), config.get("floor_notes", [])
        self.forecaster_used_ = config.get("forecaster_used", MODEL)
        if self.forecaster_used_ != MODEL:
            season_of(self.forecaster_used_)  # a damaged name fails here, as a mismatched model folder
        self.fallback_reason_ = config.get("fallback_reason", "saved before floors were scored: the model forecasts")
