"""`titans-ts fit`'s own option groups: the history mode's settings and the quantile levels (cli/options.py's
Group: one parameter of the command, its options shown in their --help panel)."""

from __future__ import annotations

from cli.options import Group, fraction_or_auto, levels
from titans_ts.forecasting.defaults import ESTIMATOR

HISTORY_PANEL, QUANTILES_PANEL = "History mode (--mode history)", "Quantiles"
SEARCHED = "; with --mode history on a benchmark dataset, its searched setting (`titans-ts defaults`)]."


def _searched(name: str) -> str:
    """The help's default of a setting the long-memory search chose per benchmark dataset (None when not given)."""
    default = ESTIMATOR[name]
    return f" \\[default: {str(default).lower() if isinstance(default, bool) else default}{SEARCHED}"


HISTORY = Group(
    HISTORY_PANEL,
    lambda **given: given | {"online_reset_mix": fraction_or_auto(given["online_reset_mix"], "--online-reset-mix")},
    ("streams", int, ESTIMATOR["streams"], "--streams", "Contiguous streams of segments per training epoch, read in "
     "time order, each from the trained initial memory (1: training sees states as old as the whole training split; "
     "docs/forecasting.md)."),
    ("bptt", int, ESTIMATOR["bptt"], "--bptt", "Segments per truncated back-propagation window (the state is "
     "carried through all segments, gradients only inside a window)."),
    ("local_model", str, None, "--local-model", "The local window's forecast the memory adds the long past to: "
     "rlinear (the window normalised, a linear map), dlinear (trend and remainder), variate (the window model: "
     "one token per column, mixed by the memory) or attention (the same, mixed by attention)"
     + _searched("local_model")),
    ("error_tokens", bool, None, "--error-tokens/--no-error-tokens", "Each patch the memory reads also holds the "
     "local forecast's error on it, so what the memory learns as it reads is where the local forecast goes wrong"
     + _searched("error_tokens")),
    ("local_pretrain", bool, None, "--local-pretrain/--no-local-pretrain", "With --local-model variate or "
     "attention: train the window model alone first (as --mode window trains it), then keep it fixed while the "
     "memory learns to correct its forecasts" + _searched("local_pretrain")),
    ("online_from", str, ESTIMATOR["online_from"], "--online-from", "Where an online forecast's memory starts "
     "reading: start (the series' first row) or split (the first row of the split it forecasts, --lookback rows "
     "before its first forecast; after fit, from --lookback rows before the end of validation)."),
    ("online_reset_mix", str, ESTIMATOR["online_reset_mix"], "--online-reset-mix", "After every segment an online "
     "forecast reads, mix this fraction of the trained memory back into the state (0: none), or auto: the value "
     "with the lowest online validation MSE."),
    ("online_blend", float, ESTIMATOR["online_blend"], "--online-blend", "The weight of the carried memory's "
     "forecast in every online forecast (predict, the online test score), the rest the same network's forecast "
     "with the memory reset for the window; 1: the carried memory alone, 0.5: the two averaged."),
)  # fmt: skip

QUANTILES = Group(
    QUANTILES_PANEL,
    lambda quantiles, calibrate: {"quantiles": levels(quantiles), "calibrate": calibrate},
    ("quantiles", str, None, "--quantiles", "Also forecast these levels, comma-separated, e.g. 0.1,0.5,0.9: trained "
     "with the pinball loss (naive variants: from calibration alone); predict writes a column per (column, level), "
     "OT_q0.1 ... \\[default: point forecasts only]."),
    ("calibrate", str, ESTIMATOR["calibrate"], "--calibrate", "With --quantiles: adaptive (the levels shifted by the "
     "validation windows' residual quantiles per step and column, then moved by every later truth, so coverage "
     "holds when the noise level drifts), conformal (the validation shifts alone) or none."),
)  # fmt: skip
