"""The settings of a forecasting run, resolved once, and the checks every setting passes (each rule once).

`resolve_fit(dataset, **given)` turns a dataset and the options a caller gave into every setting of a run:
the estimator's defaults (defaults.ESTIMATOR), the dataset family's choice over them (defaults_for), the
options given over both; the device resolved, the settings checked, the split protocol named and the output
folder chosen, all before any data is read. `fit_dataset`, `titans-ts fit` and the experiment scripts call it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from titans_ts.data.protocol import protocol_problems
from titans_ts.errors import ConfigError, is_integer, is_real, positive_problems, refuse, training_problems
from titans_ts.forecasting.defaults import (
    CHOSEN,
    ESTIMATOR,
    HISTORY_BASE,
    defaults_for,
    family_of,
    history_choice,
    registered_name,
)

POSITIVE = ("horizon", "lookback", "batch_size", "dim", "layers", "heads", "chunk_size")
MODES = ("window", "history")  # TitansForecaster's mode (history: history_mode.py)
HISTORY_UNSUPPORTED = ("target", "devices", "num_nodes")  # covariates and training on several devices
HISTORY_ONLY = ("streams", "bptt", "local_model", "error_tokens", "local_pretrain")
HISTORY_ONLY += ("online_from", "online_reset_mix", "online_blend")
ONLINE_FROM = ("start", "split")  # history mode: where an online forecast's memory starts reading
NOT_GIVEN = ("protocol", "checkpoint_dir")  # what a run takes from its dataset (or split) and its folder


def check(params: dict) -> None:
    """Refuse impossible settings before any data is read or any work starts (a ConfigError naming them).

    params: TitansForecaster's parameters (every one)."""
    from titans_ts.forecasting.floors import FALLBACKS
    from titans_ts.forecasting.model import UNTRAINED

    problems = []
    if params["variant"] not in UNTRAINED and positive_problems({"epochs": params["epochs"]}):
        problems.append(f"epochs={params['epochs']!r} (at least 1: a model needs one epoch of training)")
    problems += positive_problems({name: params[name] for name in POSITIVE})
    problems += used_sizes_problems(params) + window_width_problems(params)
    problems += training_problems(params)
    if not (is_real(params["dropout"]) and 0 <= params["dropout"] < 1):
        problems.append(f"dropout={params['dropout']!r} (in [0, 1))")
    if params["fallback"] not in FALLBACKS:
        problems.append(
            f"fallback={params['fallback']!r} ('auto': the best floor when the model is behind it, or 'off')"
        )
    problems += protocol_problems(params["protocol"]) + mode_problems(params) + quantile_problems(params)
    refuse(problems)


def window_width_problems(params: dict) -> list[str]:
    """dim split evenly (`model.width_problems`): by the heads, and the EinFFT blocks of a window model (window
    mode's, or history mode's local_model='variate' or 'attention')."""
    from titans_ts.forecasting.long_memory import WINDOW_MODELS
    from titans_ts.forecasting.model import ForecastConfig, width_problems

    window_model = params["mode"] == "window" or params["local_model"] in WINDOW_MODELS
    return width_problems(params["dim"], params["heads"], ForecastConfig.einfft_blocks if window_model else 1)


def quantile_problems(params: dict) -> list[str]:
    """What `quantiles` and `calibrate` refuse: levels outside (0, 1) or given twice, an unknown calibration, a
    naive variant that could only get levels from calibration without it, and mode='history'."""
    from titans_ts.forecasting.model import UNTRAINED
    from titans_ts.forecasting.quantiles import CALIBRATIONS, level_problems

    quantiles, calibrate = params["quantiles"], params["calibrate"]
    problems = level_problems(quantiles)
    if calibrate not in CALIBRATIONS:
        problems.append(
            f"calibrate={calibrate!r} ('conformal': the levels shifted by validation residual quantiles; 'adaptive': "
            "those shifts then moved by every later truth, so coverage holds under drift; or 'none')"
        )
    if quantiles is None:
        return problems
    if params["mode"] == "history":
        problems.append("quantiles are not supported in mode='history' yet (use mode='window', or quantiles=None)")
    if params["variant"] in UNTRAINED and calibrate == "none":
        problems.append(
            f"calibrate='none' with variant={params['variant']!r}: a naive forecast has no quantile head, its levels "
            "come from calibration only (use calibrate='adaptive', the default, or 'conformal')"
        )
    return problems


def online_reset_mix_problems(value) -> list[str]:
    """online_reset_mix: a fraction in [0, 1), or "auto" (chosen on validation)."""
    fraction = is_real(value) and 0 <= value < 1
    if fraction or value == "auto":
        return []
    return [
        f"online_reset_mix={value!r} (the fraction of the trained memory mixed back into the state after every "
        "segment an online forecast reads: a number in [0, 1), e.g. 0.2, or 'auto' to choose it on validation)"
    ]


def online_blend_problems(value) -> list[str]:
    """online_blend: a weight in (0, 1]."""
    if is_real(value) and 0 < value <= 1:
        return []
    return [
        f"online_blend={value!r} (the weight of the carried memory's forecast in an online forecast, the rest the "
        "frozen forecast of the same network: a number in (0, 1], e.g. 0.5; 1 is the carried memory alone)"
    ]


def mode_problems(params: dict) -> list[str]:
    """What `mode` refuses: an unknown mode, a variant the mode has not, history mode's unsupported settings."""
    from titans_ts.forecasting.long_memory import LOCAL_MODELS, MEMORIES, WINDOW_MODELS, LongMemoryConfig
    from titans_ts.forecasting.model import TOKENS, VARIANTS

    mode, variant = params["mode"], params["variant"]
    if mode not in MODES:
        return [
            f"mode={mode!r} ('window': each forecast reads its lookback window; 'history': the memory reads each "
            "channel's whole history in time order)"
        ]
    if mode == "window":
        problems = [
            f"{name}={params[name]!r} is a mode='history' setting (window mode would ignore it: add "
            f"mode='history', or leave it at {ESTIMATOR[name]!r})"
            for name in HISTORY_ONLY
            if params[name] != ESTIMATOR[name]
        ]
        if variant in MEMORIES and variant not in VARIANTS:
            problems.append(
                f"variant={variant!r} in mode='window' (the ablation of the history-mode memory: use it with "
                "mode='history', or a window variant such as 'lmm')"
            )
        elif variant not in VARIANTS:
            problems.append(f"variant={variant!r} (one of {', '.join(VARIANTS)})")
        if params["tokens"] not in TOKENS:
            problems.append(f"tokens={params['tokens']!r} (one of {', '.join(TOKENS)})")
        problems += patch_problems(params)
        return problems
    problems = positive_problems({"streams": params["streams"], "bptt": params["bptt"]})
    if params["online_from"] not in ONLINE_FROM:
        problems.append(
            f"online_from={params['online_from']!r} ('start': the memory reads the series from its first row; "
            "'split': from the first row of the split it forecasts)"
        )
    problems += online_reset_mix_problems(params["online_reset_mix"])
    problems += online_blend_problems(params["online_blend"])
    if params["local_model"] not in LOCAL_MODELS:
        problems.append(f"local_model={params['local_model']!r} (one of {', '.join(LOCAL_MODELS)})")
    if params["error_tokens"] and params["horizon"] < params["patch_len"]:
        problems.append(
            f"error_tokens=True with horizon={params['horizon']} < patch_len={params['patch_len']} (the error of "
            "the local forecast on a patch needs a horizon of at least one patch)"
        )
    if params["local_pretrain"] and params["local_model"] not in WINDOW_MODELS:
        problems.append(
            f"local_pretrain=True with local_model={params['local_model']!r} (it trains the window model first: "
            "local_model='variate' or 'attention')"
        )
    if params["tokens"] != ESTIMATOR["tokens"]:
        problems.append(
            f"tokens={params['tokens']!r} in mode='history' (history mode reads each column in patches of patch_len "
            "rows along time, and its local window model, local_model='variate' or 'attention', reads variate tokens: "
            f"leave tokens at {ESTIMATOR['tokens']!r}, or use mode='window')"
        )
    if variant not in MEMORIES:
        problems.append(
            f"variant={variant!r} in mode='history' (use variant='lmm', the memory, or 'mlp', its ablation; "
            "the other variants are window models: mode='window')"
        )
    patch_len, lookback = params["patch_len"], params["lookback"]
    if is_integer(patch_len) and is_integer(lookback) and lookback < 2 * patch_len - 1:
        problems.append(
            f"lookback={lookback} with patch_len={patch_len} in mode='history' (at least 2 * patch_len - 1 = "
            f"{2 * patch_len - 1}, so that every lookback window holds a whole patch: a longer lookback or a shorter "
            "patch_len)"
        )
    segment = LongMemoryConfig.segment_patches  # patches per training segment (the config's default)
    chunk_size = params["chunk_size"]
    if is_integer(chunk_size) and chunk_size >= 1 and segment % chunk_size:
        problems.append(
            f"chunk_size={chunk_size} in mode='history' (it must divide the {segment} patches of a training "
            "segment, e.g. 8 or 16)"
        )
    for name in HISTORY_UNSUPPORTED:
        if params[name] != ESTIMATOR[name]:
            problems.append(
                f"{name}={params[name]!r}: not supported in mode='history' yet (leave it at {ESTIMATOR[name]!r}, "
                "or use mode='window')"
            )
    return problems


def used_sizes_problems(params: dict) -> list[str]:
    """The sizes a run uses, positive: history mode's memory depth and patch length, a window model's
    (`model.used_sizes`)."""
    from titans_ts.forecasting.model import used_sizes

    history = params["mode"] == "history"
    used = ("memory_depth", "patch_len") if history else used_sizes(params["variant"], params["tokens"])
    return positive_problems({name: params[name] for name in used})


def ignored_problems(params: dict, given) -> list[str]:
    """Settings a run's caller gave (`given`, not at their defaults) that its model would ignore: a season for a
    variant other than seasonal_naive, a window model's patch length or stride without patch tokens, a
    calibration without quantiles, a batch size in history mode without local_pretrain (as history-only
    settings are refused in window mode). Only what was given:
    the estimator takes any value of a setting its model ignores, so one dict of settings serves many models."""
    from titans_ts.forecasting.model import UNTRAINED, VARIANTS, reads_patches

    unused = {}  # name: (why it would be ignored, what uses it; None: nothing in this mode)
    window = params["mode"] == "window"
    if params["variant"] != "seasonal_naive":
        seasonal = "variant=seasonal_naive" if window else None  # history mode has no seasonal naive variant
        unused["season"] = ("only seasonal naive repeats a season; the floors find their own", seasonal)
    if window and params["variant"] in VARIANTS and not reads_patches(params["variant"], params["tokens"]):
        patches = ("only patch tokens are cut into patches", "tokens=patch (or mode=history)")
        if params["variant"] in UNTRAINED:
            patches = ("a naive forecast reads no patches", "a trained variant with tokens=patch")
        unused |= dict.fromkeys(("patch_len", "stride"), patches)
    if params["quantiles"] is None:
        unused["calibrate"] = ("it calibrates quantile levels", "quantiles=0.1,0.5,0.9" if window else None)
    if not window and params["variant"] == "mlp":  # the ablation carries no memory: online is frozen
        carried = ("the mlp ablation carries no memory, so its online forecasts are its frozen ones", "variant=lmm")
        unused |= dict.fromkeys(("online_reset_mix", "online_blend"), carried)
    if not window and not params.get("local_pretrain"):  # history mode trains on `streams` segments at a time
        unused["batch_size"] = (
            "mode=history trains on contiguous segments, as many at a time as streams says; only the window model "
            "of local_pretrain trains on batches",
            "local_pretrain=True",
        )
    return [
        f"{name}={params[name]!r} would be ignored ({why}): "
        + (f"add {used}, or leave it out" if used else "leave it out")
        for name, (why, used) in unused.items()
        if name in given and params[name] != ESTIMATOR[name]
    ]


def patch_problems(params: dict) -> list[str]:
    """Window mode's patch tokens: a patch within the lookback window."""
    from titans_ts.forecasting.model import reads_patches

    patch_len, lookback = params["patch_len"], params["lookback"]
    patches = reads_patches(params["variant"], params["tokens"])
    if not patches or not all(is_integer(v) and v >= 1 for v in (patch_len, lookback)):
        return []
    if patch_len <= lookback:
        return []
    return [f"patch_len={patch_len} with lookback={lookback} and tokens='patch' (a patch is at most the lookback)"]


def dataset_label(dataset: str) -> str:
    """The name a run is filed under: a registered name as given, a file's stem."""
    from titans_ts.data.raw_table import names_a_file

    return Path(dataset).name.split(".")[0] if names_a_file(dataset) else dataset


@dataclass(frozen=True)
class FitSettings:
    """Every setting of one run on a dataset (`resolve_fit`)."""

    dataset: str
    params: dict  # TitansForecaster's parameters, every one (a split by dates: see `protocol`)
    family: str | None  # the benchmark family whose defaults filled in what was not given (None: general)
    out: Path
    split: tuple[float, float, float] | None = None
    split_dates: tuple[str, str] | None = None

    @property
    def label(self) -> str:
        return dataset_label(self.dataset)

    @property
    def history_choice(self) -> dict | None:
        """The long-memory search's choice that filled in what was not given (mode="history"), else None."""
        return history_choice(self.dataset) if self.params["mode"] == "history" else None

    @property
    def source(self) -> str:
        """Where the settings not given came from, in words."""
        if self.history_choice is not None:
            return f"the long-memory search's choice for {registered_name(self.dataset)}"
        return f"the {self.family} defaults" if self.family else "the general defaults"

    @property
    def chosen(self) -> dict:
        """The settings a family may choose (`titans-ts defaults`), and in history mode its own and the search's
        (tokens aside: history mode reads patches; batch_size too, but for local_pretrain's window model), as
        this run has them."""
        if self.params["mode"] != "history":
            return {key: self.params[key] for key in CHOSEN}
        skipped = {"tokens"} | (set() if self.params["local_pretrain"] else {"batch_size"})  # read by neither
        keys = [key for key in CHOSEN if key not in skipped] + ["lookback", "local_model", "error_tokens"]
        keys += ["local_pretrain", *HISTORY_BASE, *(self.history_choice or {})]
        return {key: self.params[key] for key in dict.fromkeys(keys)}

    def protocol(self, index=None) -> str:
        """The split protocol; a split by dates needs the data's time `index` to find its rows (until then
        params["protocol"] holds the default, with which the split was checked)."""
        from titans_ts.data import protocol_for

        return protocol_for(self.dataset, self.split, self.split_dates, index)


def resolve_fit(dataset: str, *, out=None, split=None, split_dates=None, **given) -> FitSettings:
    """Every setting of a run on `dataset` from the options given (None: not given), checked.

    given: TitansForecaster's parameters (but protocol and checkpoint_dir, which come from the dataset, the
    `split` / `split_dates` and the `out` folder). Settings left out take the dataset family's defaults
    (`defaults.defaults_for`; with mode="history" on a dataset the long-memory search chose for, its choice),
    then the estimator's. Raises before any data is read: an unknown or impossible
    setting, a bad device or a missing GPU, a split a registered benchmark refuses."""
    from titans_ts.data import protocol_for
    from titans_ts.training import resolve_device

    unknown = sorted(set(given) - set(ESTIMATOR) | set(given) & set(NOT_GIVEN))
    if unknown:
        raise ConfigError(
            f"unknown setting(s) {unknown}; the settings are {sorted(set(ESTIMATOR) - set(NOT_GIVEN))} "
            "(the protocol comes from the dataset or split=, the checkpoints go to out/checkpoints)."
        )
    given = {k: v for k, v in given.items() if v is not None}
    params = {**ESTIMATOR, **defaults_for(dataset, given.get("mode", ESTIMATOR["mode"])), **given}
    resolve_device(params["device"])  # a bad device or a missing GPU fails before the data is read
    check(params)  # so do impossible settings
    refuse(ignored_problems(params, given), "setting(s) the model would ignore")  # and options it would ignore
    params["protocol"] = protocol_for(dataset, split, split_dates)  # and a split a benchmark refuses
    label = dataset_label(dataset)
    model = params["variant"] + ("-history" if params["mode"] == "history" else "")
    out = Path(out or f"runs/{label}-{model}-h{params['horizon']}-s{params['seed']}").expanduser()
    return FitSettings(dataset, params, family_of(dataset), out, split, split_dates)
