"""Default settings: every TitansForecaster parameter's (the general default, what a user's data meets),
and each benchmark-dataset family's changes to it. The one place each default is written.

Both were chosen by validation MSE only (experiments/forecasting/search.py, report in
experiments/results/forecasting_search.md) before any test number was computed. The estimator's signature,
`ForecastConfig`, `TitansPTF` and the CLI's options read theirs from `ESTIMATOR`; `defaults_for(dataset)`
adds a family's choice, and `settings.resolve_fit` (behind `fit_dataset`, `titans-ts fit --dataset NAME`
and `titans-ts benchmark`) uses it for whatever is not given, so that one command reproduces a row of
experiments/results/forecasting.md.
"""

from __future__ import annotations

from titans_ts.data.protocol import HORIZON, LOOKBACK  # the protocol's, written there once

# TitansForecaster's parameters and their defaults. Round 1 (horizon 96, seed 0): "dropout 0.1" had the
# lowest validation MSE relative to repeat-last over all five datasets (0.50777, the pre-search base
# 0.50787: a tie in all but name; the rule was fixed beforehand).
ESTIMATOR = {
    "horizon": HORIZON,
    "lookback": LOOKBACK,
    "variant": "lmm",
    "tokens": "variate",
    "dim": 32,
    "layers": 2,
    "heads": 4,
    "patch_len": 16,
    "stride": 8,
    "dropout": 0.1,
    "memory_depth": 2,
    "chunk_size": 16,
    "epochs": 10,
    "batch_size": 32,
    "lr": 1e-3,
    "weight_decay": 1e-4,
    "patience": 3,
    "protocol": "ratio_70_10_20",
    "seed": 0,
    "max_minutes": None,
    "progress": True,
    "device": "auto",
    "season": None,
    "target": None,
    "checkpoint_dir": None,
    "checkpoint_minutes": None,
    "devices": 1,
    "num_nodes": 1,
    "strategy": "auto",
    # "auto": a trained model behind the best naive floor on validation forecasts with that floor (floors.py)
    "fallback": "auto",
    # "window": each forecast reads its lookback window; "history": the memory reads each channel's whole
    # history in time order (long_memory.py, history_mode.py; its settings are being chosen in issue 28)
    "mode": "window",
    "streams": 2,  # history mode: contiguous streams per training epoch (segments.py)
    "bptt": 1,  # history mode: segments per truncated back-propagation window (segments.py)
    "quantiles": None,  # levels forecast besides the point, e.g. [0.1, 0.5, 0.9]; None: point only (quantiles.py)
    "calibrate": "adaptive",  # with quantiles: "adaptive" (chosen on validation), "conformal" or "none" (conformal.py)
    # history mode: the local window's forecast the memory adds to ("rlinear", "dlinear", "variate" or "attention":
    # the window model, its tokens mixed by the memory or by attention); error_tokens: a patch token also holds
    # the local forecast's error on it (long_memory.py)
    "local_model": "rlinear",
    "error_tokens": False,
    # history mode, local_model="variate" or "attention": train the window model alone first, then keep it fixed
    # (long_memory.py)
    "local_pretrain": False,
    # history mode: where an online forecast's memory starts reading: "start" (the series' first row) or "split"
    # (the first row of the split it forecasts, `lookback` rows before its first origin; after fit, from
    # `lookback` rows before the end of validation): history_mode.py
    "online_from": "start",
    # history mode: the fraction of the trained memory M_0 mixed back into the state after every segment an
    # online forecast reads (0: none; "auto": chosen on validation among ONLINE_RESET_MIXES): history_mode.py
    "online_reset_mix": 0.0,
    # history mode: the weight of the carried memory's forecast in an online forecast, the rest the frozen
    # forecast of the same network (the memory reset for the window); 1: the carried memory alone
    # (experiments/results/gate_check.md): history_mode.py
    "online_blend": 1.0,
}

# online_reset_mix="auto" takes the one with the lowest online val MSE (experiments/results/guard_check.md)
ONLINE_RESET_MIXES = (0.0, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7)

# The settings a benchmark family may choose differently (and `titans-ts defaults` shows), in this order.
CHOSEN = ("variant", "tokens", "dim", "layers", "dropout", "lr", "memory_depth", "chunk_size", "epochs")
CHOSEN += ("patience", "batch_size")
GENERAL = {key: ESTIMATOR[key] for key in CHOSEN}

FAMILY_OF = {"ETTh1": "ETTh", "ETTh2": "ETTh", "ETTm1": "ETTm", "ETTm2": "ETTm", "weather": "weather"}

# Each family's changes to GENERAL: its round-1 choice by mean validation MSE over its datasets.
# ETTh "1 layer" (0.4536; base 0.4542), ETTm the pre-search base (0.2597), weather "dropout 0.1" (0.4014).
BY_FAMILY: dict[str, dict] = {
    "ETTh": {"layers": 1, "dropout": 0.2},
    "ETTm": {"dropout": 0.2},
    "weather": {},
}


# `--mode history` on a benchmark dataset: the settings the long-memory search chose there on validation
# (experiments/configs/long_memory_search.json: its base, then the chosen candidate and lookback; the report is
# experiments/results/long_memory_search.md, and the test grid scores them as "ours" in long_memory_grid.md).
HISTORY_BASE = {"dim": 32, "layers": 1, "heads": 4, "memory_depth": 2, "chunk_size": 16, "dropout": 0.1}
HISTORY_BASE |= {"patch_len": 16, "streams": 2, "bptt": 1, "lr": 1e-3, "weight_decay": 1e-4}
HISTORY_BASE |= {"epochs": 150, "patience": 10, "max_minutes": 15.0}  # the search's time cap, as its runs had
_VARIATE_ERRORS = {"local_model": "variate", "error_tokens": True}
HISTORY_BY_DATASET: dict[str, dict] = {
    "ETTh1": {**_VARIATE_ERRORS, "lookback": 336},
    "ETTh2": {**_VARIATE_ERRORS, "local_pretrain": True, "lookback": 96},
    "ETTm1": {**_VARIATE_ERRORS, "lookback": 336},
    "ETTm2": {**_VARIATE_ERRORS, "lookback": 336},
    # weather's search ran its long-memory runs with a 45-minute cap (three times ETTm's columns)
    "weather": {**_VARIATE_ERRORS, "lookback": 336, "max_minutes": 45.0},
}


def registered_name(dataset: str | None) -> str | None:
    """The registered name of a benchmark dataset (case-insensitive, aliases accepted), else None."""
    if not dataset:
        return None
    from titans_ts.data.registry import benchmark_named

    info = benchmark_named(dataset)
    return info.name if info else None


def family_of(dataset: str | None) -> str | None:
    """The benchmark family of a registered dataset name (case-insensitive, aliases accepted), else None."""
    return FAMILY_OF.get(registered_name(dataset))


def defaults_for(dataset: str | None, mode: str = "window") -> dict:
    """The settings `fit_dataset(dataset)` uses for what the caller leaves out: the keys of GENERAL, and in
    history mode on a dataset the long-memory search has chosen for, its choice (HISTORY_BY_DATASET)."""
    settings = {**GENERAL, **BY_FAMILY.get(family_of(dataset), {})}
    chosen = history_choice(dataset) if mode == "history" else None
    return settings if chosen is None else settings | HISTORY_BASE | chosen


def history_choice(dataset: str | None) -> dict | None:
    """The long-memory search's choice for a registered dataset (HISTORY_BY_DATASET), else None."""
    return HISTORY_BY_DATASET.get(registered_name(dataset))


def families() -> dict[str, tuple[list[str], dict]]:
    """Each benchmark family's datasets and full settings (`titans-ts defaults`): {family: (datasets, settings)}."""
    members = {family: [d for d, f in FAMILY_OF.items() if f == family] for family in BY_FAMILY}
    return {family: (names, defaults_for(names[0])) for family, names in members.items()}
