"""Options several commands share, each defined once, shown in `--help` panels (data, model, training,
run folder, devices), and the parsing of their comma-separated values.

A command names a group as one parameter whose default is the group, and is decorated with `@grouped`:

    @app.command()
    @grouped
    def fit(dataset: str = ..., reading: Reading = DATA_FILE, device: str = DEVICE): ...

`--help` lists the group's options where the parameter stands; the command receives what the group builds
from them (here a `Reading`, and the --device string).
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import typer

DATA, MODEL, TRAINING, RUN, DEVICES_PANEL = "Data", "Model", "Training", "Run folder", "Devices"


class Group:
    """Options that a command receives as one value, `build(**values)`; each row (name, type, default, flags,
    help) is one option, shown in the `panel` of --help."""

    def __init__(self, panel: str, build: Callable[..., object], *rows: tuple):
        self.build = build
        self.options = {
            name: (kind, typer.Option(default, flags, help=help, rich_help_panel=panel))
            for name, kind, default, flags, help in rows
        }


def grouped(command: Callable) -> Callable:
    """Replace each parameter of `command` whose default is a Group by the group's options (what typer reads),
    and call `command` with the group's value in their place."""
    hints = typing.get_type_hints(command)
    groups, parameters = {}, []
    for parameter in inspect.signature(command).parameters.values():
        if isinstance(parameter.default, Group):
            groups[parameter.name] = parameter.default
            parameters += [
                inspect.Parameter(name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=option, annotation=kind)
                for name, (kind, option) in parameter.default.options.items()
            ]
        else:
            parameters.append(parameter.replace(annotation=hints.get(parameter.name, parameter.annotation)))

    @functools.wraps(command)
    def run(**values):
        for name, group in groups.items():
            values[name] = group.build(**{option: values.pop(option) for option in group.options})
        return command(**values)

    run.__signature__ = inspect.Signature(parameters, return_annotation=None)
    run.__annotations__ = {p.name: p.annotation for p in parameters} | {"return": None}
    return run


# --- data -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reading:
    """How to read a user's file (`read`: load_dataset's arguments) and, on a wide table, the --target columns."""

    read: dict
    targets: list[str] | None

    def for_saved_model(self) -> dict:
        """`read`, refusing --target on a wide table: a saved model forecasts the targets it was fitted with."""
        from titans_ts.errors import ConfigError

        if self.targets is not None:
            raise ConfigError(
                "--target here only names the value column of a long-format table (with --id-col and --time-col): "
                "a saved model forecasts the target columns it was fitted with."
            )
        return self.read


def _reading(fill, date_column, header, sep, id_col, time_col, target) -> Reading:
    long = _long(id_col, time_col, target)
    read = {"fill": fill, "date_column": date_column, "header": header, "sep": sep, "long": long}
    return Reading(read, None if long else names(target))


def _long(id_col, time_col, target):
    """The long-format columns: all three, or None for a wide table (where --target picks targets)."""
    from titans_ts.errors import ConfigError

    if id_col is None and time_col is None:
        return None
    given = {"--id-col": id_col, "--time-col": time_col, "--target": target}
    missing = [flag for flag, value in given.items() if value is None]
    if missing:
        raise ConfigError(f"a long-format table needs --id-col, --time-col and --target; add {', '.join(missing)}.")
    return (id_col, time_col, target)


DATA_SOURCE = Group(  # where a dataset is found: load_dataset's data_dir and verify
    DATA,
    lambda data_dir, verify: {"data_dir": data_dir, "verify": verify},
    ("data_dir", Path, None, "--data-dir", "Folder holding dataset files (else $TITANS_DATA_DIR, bundled, cache)."),
    (
        "verify",
        bool,
        None,
        "--verify/--no-verify",
        "Check the sha256 of a registered dataset \\[default: of one "
        "given by name; a file given by path, your data, only with --verify].",
    ),
)
DATA_FILE = Group(  # how a file is read
    DATA,
    _reading,
    ("fill", str, None, "--fill", "Fill NaN/inf values: ffill, interpolate or zero (default: refuse)."),
    ("date_column", str, None, "--date-column", "Name of the timestamp column of your CSV \\[default: a column "
     "named date, datetime, timestamp or time, else a first column that is not numeric; without one, the rows are "
     "steps 0, 1, 2, ...]. Whole numbers there are dates (20230115), Unix time or step numbers."),
    ("header", bool, True, "--header/--no-header", "Your CSV has a header row (--no-header: every row is data, "
     "columns are named x0, x1, ...)."),
    ("sep", str, None, "--sep", "The delimiter of your CSV (default: sniffed among , ; tab |)."),
    ("id_col", str, None, "--id-col", "Long format (id, time, value rows): the series id column."),
    ("time_col", str, None, "--time-col", "Long format: the time column (timestamps or integer steps)."),
    ("target", str, None, "--target", "Wide table, at fit: the column(s) to forecast and score, comma-separated "
     "\\[default: all]; the other columns are covariates (read as inputs, not forecast); splits reads them as fit "
     "does; predict and evaluate use the saved model's. Long format: the value column (one panel column per id)."),
)  # fmt: skip
SPLIT = Group(  # a user's own split
    DATA,
    lambda split, split_dates: {"split": fractions(split), "split_dates": dates(split_dates)},
    ("split", str, None, "--split", "Your file's train,val,test fractions of the rows, e.g. 0.6,0.2,0.2 "
     "\\[default: 0.7,0.1,0.2]."),
    ("split_dates", str, None, "--split-dates", "Your dated file split by date: where validation and test begin, "
     "e.g. 2017-06-01,2017-10-01."),
)  # fmt: skip

# --- run folder and devices ---------------------------------------------------------------------------------


def _run_folder(**given) -> dict:
    if given["overwrite"] and given["resume"]:  # an unfinished run was resumed, --overwrite unsaid
        from titans_ts.errors import ConfigError

        raise ConfigError("--resume continues the run in --out and --overwrite starts it again: give one of them.")
    return given


RUN_FOLDER = Group(  # what a training command does with its --out folder
    RUN,
    _run_folder,
    ("overwrite", bool, False, "--overwrite/--no-overwrite", "Replace a model already saved in --out."),
    ("resume", bool, False, "--resume", "Continue a killed or interrupted run from its checkpoints in --out."),
    ("checkpoint_every", float, None, "--checkpoint-every", "Also checkpoint every this many minutes (default: "
     "every epoch only)."),
)  # fmt: skip
REPLACE_FILES = typer.Option(
    False,
    "--overwrite/--no-overwrite",
    help="Replace the command's output files (--out, and --plot where it has one) if they exist (else refused).",
)
REPLACE_OUT = typer.Option(
    False, "--overwrite/--no-overwrite", help="Replace the --out file if it exists (else refused)."
)
DEVICE = Group(
    DEVICES_PANEL,
    lambda device: device,
    ("device", str, "auto", "--device", "Where the model runs: auto (CUDA when available, else CPU), cpu or cuda."),
)
SCALE_OUT = Group(  # Lightning's devices, num_nodes and strategy, passed on only where they differ from one device
    DEVICES_PANEL,
    lambda **given: {k: v for k, v in given.items() if v != {"devices": 1, "num_nodes": 1, "strategy": "auto"}[k]},
    ("devices", int, 1, "--devices", "Devices (processes) to train on, Lightning's devices (docs/scaling.md)."),
    ("num_nodes", int, 1, "--num-nodes", "Machines to train on (Lightning's num_nodes; launch with srun/torchrun)."),
    ("strategy", str, "auto", "--strategy", "Lightning's strategy: auto (one process, or DDP with --devices 2 or "
     "more) or ddp (one process per device; docs/scaling.md)."),
)  # fmt: skip


# --- values -------------------------------------------------------------------------------------------------


def names(text):
    """--columns "a, b" -> ["a", "b"]."""
    return [part.strip() for part in text.split(",") if part.strip()] if text else None


def fractions(text):
    """--split "0.6,0.2,0.2" -> (0.6, 0.2, 0.2)."""
    from titans_ts.errors import ConfigError

    if text is None:
        return None
    try:
        parts = tuple(float(p) for p in text.split(","))
    except ValueError:
        parts = ()
    if len(parts) != 3:
        raise ConfigError(f"--split takes three comma-separated fractions, e.g. 0.7,0.1,0.2; got {text!r}.")
    return parts


def dates(text):
    """--split-dates "2017-06-01,2017-10-01" -> ("2017-06-01", "2017-10-01")."""
    from titans_ts.errors import ConfigError

    if text is None:
        return None
    parts = tuple(p.strip() for p in text.split(","))
    if len(parts) != 2 or not all(parts):
        raise ConfigError(
            f"--split-dates takes two comma-separated dates, where validation and test begin, e.g. "
            f"2017-06-01,2017-10-01; got {text!r}."
        )
    return parts


def integers(text: str, option: str, example: str = "96,192") -> list[int]:
    """--horizons "96,192" -> [96, 192]."""
    from titans_ts.errors import ConfigError

    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ConfigError(f"{option} takes comma-separated integers, e.g. {example}; got {text!r}.") from None
    if not values:
        raise ConfigError(f"{option} is empty; give at least one value, e.g. {example.split(',')[0]}.")
    return values


def levels(text, option: str = "--quantiles"):
    """--quantiles "0.1,0.5,0.9" -> [0.1, 0.5, 0.9] (None when not given); checked as the estimator checks them."""
    from titans_ts.errors import ConfigError
    from titans_ts.forecasting.quantiles import level_problems

    if text is None:
        return None
    try:
        values = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ConfigError(f"{option} takes comma-separated levels in (0, 1), e.g. 0.1,0.5,0.9; got {text!r}.") from None
    problems = level_problems(values)
    if problems:
        raise ConfigError(f"{option} {text}: {problems[0]}.")
    return values


def chosen_levels(text):
    """predict --quantiles: some of a model's fitted levels, "0.1,0.9" -> [0.1, 0.9] (a level named twice is
    written once), "none" -> [] (the point columns alone), None when not given (all of them). The model says
    which it was fitted with."""
    from titans_ts.errors import ConfigError

    if text is None:
        return None
    if text.strip().lower() == "none":
        return []
    try:
        values = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        values = []
    if not values:
        raise ConfigError(
            f"--quantiles takes some of the model's levels, comma-separated (e.g. 0.1,0.9), or none for the point "
            f"forecast alone; got {text!r}."
        )
    return list(dict.fromkeys(values))


def fraction_or_auto(text: str, option: str):
    """--online-reset-mix "0.2" -> 0.2, "auto" -> "auto"; the estimator checks the range."""
    from titans_ts.errors import ConfigError

    if isinstance(text, (int, float)):  # the default, as the estimator's
        return float(text)
    if text.strip().lower() == "auto":
        return "auto"
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"{option} takes a number in [0, 1), e.g. 0.2, or auto; got {text!r}.") from None
