"""Typed exceptions and warnings shared by every part of titans-ts.

Each message says what is wrong (file, column, row or value) and how to fix it. The CLIs turn any
`TitansError` into one line on stderr and exit code 2.
"""

from __future__ import annotations


class TitansError(Exception):
    """Base class of every error titans-ts raises on purpose."""


class DatasetNotFoundError(TitansError, FileNotFoundError):
    """A dataset name is unknown, or its file is in none of the places we look."""


class ChecksumError(TitansError):
    """A data file's sha256 differs from the registry's."""


class DataValidationError(TitansError, ValueError):
    """A table cannot be used as it is: bad dates, non-numeric or non-finite values, too few rows."""


class EmptyTableError(DataValidationError):
    """A table has a header and no data rows."""


class SplitTooShortError(DataValidationError):
    """The rows are too few for a split protocol at a lookback and horizon. `facts`: what is short, without the
    advice (which depends on what the caller can change)."""

    def __init__(self, facts: str, advice: str = ""):  # one argument: re-raised as type(exc)(a longer message)
        super().__init__(f"{facts} {advice}".rstrip())
        self.facts = facts


class MissingColumnsError(DataValidationError):
    """A table lacks columns it was asked for."""


class LongColumnsError(MissingColumnsError):
    """A table read as a long one lacks its id, time or value column."""


class ConfigError(TitansError, ValueError):
    """An argument or a configuration value is out of range or inconsistent."""


class ResumeMismatchError(ConfigError):
    """A resume asked with other settings or data than the checkpoints were written with (`differences`)."""

    def __init__(self, message: str, differences: list[str]):
        super().__init__(message)
        self.differences = differences


class TitansWarning(UserWarning):
    """Base class of the warnings titans-ts emits."""


class ConstantColumnWarning(TitansWarning):
    """A column is constant over the training rows; it is centred but not rescaled."""


class FallbackWarning(TitansWarning):
    """A fitted model was behind a naive floor on validation, so the floor forecasts in its place
    (fallback="auto"): its scores, forecasts and a search over its settings are the floor's."""


class IgnoredSettingWarning(TitansWarning):
    """A setting given away from its default that the chosen model does not read (as scikit-learn warns of an
    l1_ratio without penalty='elasticnet'); the CLI refuses such an option instead."""


class InterruptedTrainingWarning(TitansWarning):
    """A loaded model's training was interrupted: it holds the best weights of the epochs that finished."""


class NewerSaveWarning(TitansWarning):
    """A model folder saved by a newer titans-ts than the one loading it: what that version added to the
    folder is not read, so what it gives may differ from what it gave there."""


class RepeatedRowsWarning(TitansWarning):
    """Rows without timestamps given to update() equal the last rows the model read: the same rows given
    twice, which undated rows cannot be checked against."""


class TimeGapWarning(TitansWarning):
    """Dated rows given to fit with gaps or stamps off their grid: read as consecutive steps."""


class UndatedRowsWarning(TitansWarning):
    """Rows without timestamps given to a model fitted on dated rows: the forecast is numbered by step."""


class UnreadInputsWarning(TitansWarning):
    """A model is given inputs it does not read (TitansPTF: known reals' future values, categoricals; a
    TitansForecaster that reads each column on its own: its covariates)."""


class CutSequencesWarning(TitansWarning):
    """DNA sequences longer than a classifier's max_length: it reads their first max_length bases."""


class UracilWarning(TitansWarning):
    """A DNA sequence holds U (uracil, an RNA base), which the DNA tokenizer reads as N (unknown)."""


class UnknownBasesWarning(TitansWarning):
    """A DNA sequence holds no A, C, G or T (all N or other ambiguity codes): its prediction rests on no bases."""


class DuplicateNamesWarning(TitansWarning):
    """Two or more input sequences share a name: their rows of a prediction table cannot be told apart by it."""


class RepeatedWindowsWarning(TitansWarning):
    """Pretraining windows drawn for the held-out score that are also training windows: left out of the score."""


class SequenceError(TitansError, ValueError):
    """A DNA sequence holds a character that is not a nucleotide code, or is empty."""


def positive_problems(values: dict) -> list[str]:
    """The values that are not positive integers, as `name=value (a positive integer)`."""
    return [
        f"{name}={value!r} (a positive integer)"
        for name, value in values.items()
        if not (is_integer(value) and value >= 1)
    ]


def seed_problems(seed) -> list[str]:
    """The seed, unless a whole number that seeds every generator (0 to 2**32 - 1)."""
    if is_integer(seed) and 0 <= seed < 2**32:
        return []
    return [f"seed={seed!r} (a whole number from 0 to 2**32 - 1: every run is seeded, so that it can be repeated)"]


def training_problems(params: dict) -> list[str]:
    """The training settings both estimators share (patience, seed, lr, max_minutes) that no run can take."""
    problems = []
    if not (is_integer(params["patience"]) and params["patience"] >= 0):
        problems.append(f"patience={params['patience']!r} (0 or more epochs)")
    problems += seed_problems(params["seed"])
    if not (is_real(params["lr"]) and params["lr"] > 0):
        problems.append(f"lr={params['lr']!r} (positive)")
    problems += scale_out_problems(params.get("devices", 1), params.get("num_nodes", 1), params.get("strategy", "auto"))
    return problems + budget_problems(params["max_minutes"], params.get("checkpoint_minutes"))


def changes(before: dict, now: dict, keys) -> list[str]:
    """How the settings of `keys` differ, in words ("epochs: 1 then, 2 now"): what a refused reuse or resume
    lists."""
    return [f"{k}: {before.get(k)!r} then, {now.get(k)!r} now" for k in sorted(keys) if before.get(k) != now.get(k)]


def scale_out_problems(devices, num_nodes, strategy) -> list[str]:
    """Lightning's devices, num_nodes and strategy that no Trainer takes (they failed inside Lightning, after the
    data was read): devices a count (-1: all), "auto", or a list of device indices; num_nodes a count; strategy
    "auto", one of Lightning's registered names, or a Strategy object (DDPStrategy(...))."""
    problems = []
    count = is_integer(devices) and (devices >= 1 or devices == -1)
    listed = isinstance(devices, (list, tuple)) and devices and all(is_integer(d) and d >= 0 for d in devices)
    text = isinstance(devices, str) and (devices == "auto" or _device_list_text(devices))
    if not (count or listed or text):
        problems.append(f"devices={devices!r} (a number of devices, -1 for all, 'auto', or device indices [0, 1])")
    if not (is_integer(num_nodes) and num_nodes >= 1):
        problems.append(f"num_nodes={num_nodes!r} (1 or more machines)")
    if isinstance(strategy, str) and strategy.lower() not in SUPPORTED_STRATEGIES:  # Lightning reads any case
        problems.append(f"strategy={strategy!r} ({STRATEGIES_SAID})")
    elif not isinstance(strategy, str):
        from lightning.pytorch.strategies import Strategy

        if not isinstance(strategy, Strategy):
            problems.append(f"strategy={strategy!r} ({STRATEGIES_SAID}, or a Lightning Strategy object)")
    return problems


# The strategies a run keeps its best weights and its record under: one process, or Lightning's DDP, whose
# rank 0 is this process. Spawned or forked ranks train in other processes (ddp_spawn failed to pass the loader's
# generator; ddp_fork saved the last epoch's weights and a record of 0 epochs), and sharded ones (fsdp,
# deepspeed) are for models far larger than these.
SUPPORTED_STRATEGIES = ("auto", "ddp", "ddp_find_unused_parameters_true")
STRATEGIES_SAID = "'auto' for one process, or 'ddp': one process per device, started by Lightning or a launcher"


def _device_list_text(text: str) -> bool:
    """A count ("2", "-1") or device indices ("0,1"; "0,": device 0), as Lightning reads them from text."""
    if "," not in text:
        return text.strip() == "-1" or (text.strip().isdigit() and int(text) >= 1)
    parts = [part.strip() for part in text.split(",") if part.strip()]
    return bool(parts) and all(part.isdigit() for part in parts)


def budget_problems(max_minutes, checkpoint_minutes=None) -> list[str]:
    """A time budget or a checkpoint interval that is not a positive number of minutes (None: none)."""
    problems = []
    if max_minutes is not None and not (is_real(max_minutes) and max_minutes > 0):
        problems.append(f"max_minutes={max_minutes!r} (positive, or None for no budget)")
    if checkpoint_minutes is not None and not (is_real(checkpoint_minutes) and checkpoint_minutes > 0):
        problems.append(f"checkpoint_minutes={checkpoint_minutes!r} (positive, or None to checkpoint every epoch only)")
    return problems


def is_integer(value) -> bool:
    """A whole number (int, numpy's too), not a bool: what a size or a count needs."""
    import numbers

    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_real(value) -> bool:
    """A real number (int or float, numpy's too), not a bool, a string or None: what a rate or a fraction needs
    before it is compared."""
    import numbers

    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def refuse(problems: list[str], what: str = "impossible setting(s)") -> None:
    """One ConfigError naming every impossible setting (or `what` they are; nothing when there is none)."""
    if problems:
        raise ConfigError(f"{what}: " + "; ".join(problems) + ".")


class DeviceUnavailableError(TitansError, RuntimeError):
    """A device was asked for by name (device="cuda") but this machine or this torch build lacks it."""
