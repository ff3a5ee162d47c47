"""One dataset's forecasting benchmark: models x horizons x seeds in one harness, resumable, summarised.

Every model is a TitansForecaster variant trained and scored by the same code (`fit_dataset`): ours, the
same backbone with causal attention over variate tokens (iTransformer-like) or over patch tokens
(PatchTST-like), DLinear, and the untrained repeat-last and seasonal naive forecasts (the latter with a
lookback of at least one season, e.g. 144 for 10-minute data). Each run writes one JSON (skipped when it
exists, so an interrupted benchmark resumes); seed 0 of every model runs first. Every run has fallback="off":
its numbers are the model's own, never those of a floor forecasting in its place (floors.py).
"""

from __future__ import annotations

import contextlib
import functools
import json
import statistics
from collections.abc import Callable
from pathlib import Path

from titans_ts.errors import ConfigError, ResumeMismatchError, TitansError, changes
from titans_ts.forecasting.defaults import ESTIMATOR, GENERAL
from titans_ts.io import atomic_write_text, json_value

# What a network's shape is, which a floor (repeat-last, seasonal naive: nothing trained) does not read, nor how
# a network trains: a kept floor run answers a benchmark asked with other --epochs or --dim
NETWORK_SHAPE = ("dim", "layers", "heads", "patch_len", "stride", "memory_depth", "chunk_size")

MODELS = {  # settings not given here are the dataset's defaults (defaults.defaults_for)
    "lmm": {"variant": "lmm"},
    "lmm-general": dict(GENERAL),  # ours with the general default, what a user's own data gets
    "attention": {"variant": "attention", "tokens": "variate"},
    "attention-patch": {"variant": "attention", "tokens": "patch"},
    "dlinear": {"variant": "dlinear"},
    "naive": {"variant": "naive"},
    "seasonal_naive": {"variant": "seasonal_naive"},
}
NAMES_THE_MODEL = ("variant", "tokens")  # what a model of MODELS is: never taken from the shared settings
HORIZONS = (96, 192, 336, 720)
UNSAID = {"header": True}  # the data options' defaults that are not None
DATA_OPTIONS = ("data_dir", "verify", "fill", "date_column", "header", "sep", "long", "columns", "split", "split_dates")


def run_name(dataset_label: str, model: str, horizon: int, seed: int) -> str:
    return f"{dataset_label}_{model}_h{horizon}_s{seed}.json"


def run_benchmark(
    dataset: str,
    runs_dir: str | Path | None = None,
    horizons=HORIZONS,
    seeds=(0,),
    models=tuple(MODELS),
    lookback: int = ESTIMATOR["lookback"],
    models_dir: str | Path | None = None,
    on_run: Callable[[str, dict, bool], None] | None = None,
    extra: dict | None = None,
    data: dict | None = None,
    on_error: Callable[[str, TitansError], None] | None = None,
    **params,
) -> list[dict]:
    """Run what is missing and return every run's record (val and test MSE/MAE, history, wall time).

    runs_dir: the folder of one JSON per run (default: `default_runs_dir(dataset)`).
    data: how a user's file is read and split, as `fit_dataset` takes it (data_dir, verify, fill, date_column,
    header, sep, long, columns, split, split_dates); every model reads it alike.
    params: TitansForecaster parameters shared by all models (epochs, device, ...): given (not None), they
    override a model's own settings (`MODELS`: lmm-general's general default) but for what names the model
    (its variant and tokens). on_run(name, record, reused) is called after each run.
    extra: fields added to each new record (e.g. the git commit of an experiment script).
    on_error(name, error): a run that fails (a TitansError: no season for seasonal naive, ...) is reported to
    it and the others go on (None: the error is raised, and the runs after it are not made).
    A run's JSON is reused only when it was asked for the same (`check_same_request`) and made with the
    settings a new run would have (`check_same_settings`): a changed default is not answered by an old run.
    """
    from titans_ts.data.protocol import split_borders
    from titans_ts.forecasting.estimator import TRAINING_ONLY
    from titans_ts.forecasting.model import UNTRAINED
    from titans_ts.forecasting.settings import dataset_label, resolve_fit
    from titans_ts.training import check_device

    unknown = [m for m in models if m not in MODELS]
    if unknown:
        import difflib

        near = {m: difflib.get_close_matches(str(m).lower(), MODELS, n=1) for m in unknown}
        meant = "".join(f" ({m!r}: did you mean {near[m][0]!r}?)" for m in unknown if near[m])
        raise ConfigError(f"unknown model(s) {unknown}; choose from {list(MODELS)}{meant}.")
    for name, values in (("horizons", horizons), ("seeds", seeds), ("models", models)):
        if not len(values):
            raise ConfigError(f"{name} is empty: give at least one.")
        repeated = sorted({v for v in values if list(values).count(v) > 1}, key=str)
        if repeated:  # the same run twice (trained and recorded twice), or a spread of one run's copies
            raise ConfigError(f"{name}={list(values)} gives {repeated} more than once; give each once.")
    runs_dir = Path(runs_dir).expanduser() if runs_dir is not None else default_runs_dir(dataset)
    if runs_dir.exists() and not runs_dir.is_dir():  # before any run: each would fail writing its JSON there
        raise ConfigError(f"{runs_dir} is a file: the runs are kept in a folder; give a folder path (--out).")
    models_dir = Path(models_dir).expanduser() if models_dir is not None else runs_dir / "models"
    label, data = dataset_label(dataset), dict(data or {})
    unknown = sorted(set(data) - set(DATA_OPTIONS))
    if unknown:
        raise ConfigError(f"unknown data option(s) {unknown}; they are {list(DATA_OPTIONS)}.")
    index = functools.cache(lambda: read_index(dataset, data, params))  # the data read once, when needed
    lookbacks = {model: lookback for model in models}
    if "seasonal_naive" in models:
        lookbacks["seasonal_naive"] = seasonal_naive_lookback(lookback, index())
    identity, plan = data_identity(dataset, data), []
    for seed in seeds:  # seed 0 of every model and horizon first
        for horizon in horizons:
            for model in models:
                # fallback off: the benchmark reports each model itself, never a floor in its place
                options = {**model_options(model, params), "seed": seed, "progress": False, "fallback": "off"}
                name = run_name(label, model, horizon, seed)
                plan.append((name, model, horizon, options, asked(identity, horizon, lookbacks[model], options)))
    done = {name: read_run(runs_dir / name) for name, *_ in plan if (runs_dir / name).exists()}
    if len(done) < len(plan):  # runs to make: the data and the device are checked once, said as theirs
        check_device(params.get("device"))
        index()
    split = {k: data.get(k) for k in ("split", "split_dates")}
    for name, model, horizon, options, request in plan:  # every run checked before any runs
        # its settings, as fit_dataset will check them (--epochs 0 failed after the naive runs were written); a
        # finished run is not run again, so it needs no device
        checked = {**options, "device": "cpu"} if name in done else options
        try:
            settings = resolve_fit(dataset, horizon=horizon, lookback=request["lookback"], **split, **checked)
            if name not in done:
                split_borders(len(index()), request["lookback"], horizon, settings.protocol(index()))  # long enough
        except TitansError as exc:  # which run, and the lookback it has when it is not the one asked
            seen = f", lookback {request['lookback']} (one season)" if request["lookback"] != lookback else ""
            raise type(exc)(f"{model} at horizon {horizon}{seen}: {exc}") from None
        if name in done:
            unread = (*TRAINING_ONLY, "max_minutes", *NETWORK_SHAPE) if MODELS[model]["variant"] in UNTRAINED else ()
            check_same_request(
                runs_dir / name, done[name].get("request"), request, unread, (done[name].get("params"), settings.params)
            )
            dated = {"protocol": settings.protocol(index())} if split["split_dates"] else {}  # found from the dates
            check_same_settings(runs_dir / name, done[name], settings.params | dated, unread)
    if len(done) < len(plan):  # a run's results are written after its training: a folder they cannot go to is
        for folder in (runs_dir, models_dir):  # found before the first run (every setting checked, nothing made)
            check_writable(folder)
    records, warned = [], set()  # the runs' warnings said so far: each is said once
    for name, model, horizon, options, request in plan:
        record, reused = done.get(name), name in done
        if not reused:
            out = models_dir / name.removesuffix(".json")
            try:
                record = _fit_run(dataset, name, out, horizon, request["lookback"], data, options, warned)
            except KeyboardInterrupt as exc:  # say what the benchmark kept, and how to go on
                kept = f"the {len(records)} finished run(s) are kept in {runs_dir}" if records else "none had finished"
                said = f"{exc} " if str(exc) else f"{name} was stopped "  # an interrupt outside training says nothing
                raise KeyboardInterrupt(f"{said}({kept}: run the same command again to go on)") from None
            except TitansError as exc:
                if on_error is None:
                    raise
                on_error(name, exc)
                continue
            record.update({"model": model, "request": request, **(extra or {})})
            runs_dir.mkdir(parents=True, exist_ok=True)
            atomic_write_text(runs_dir / name, json.dumps(record, indent=1, default=json_value))
        records.append(record)
        if on_run is not None:
            on_run(name, record, reused)
    return records


def check_writable(folder: Path) -> None:
    """The folder made (with its parents) and a file written in it and removed: an OSError naming it otherwise."""
    import tempfile

    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile(dir=folder):
        pass


def model_options(model: str, params: dict) -> dict:
    """A model's settings: the shared ones, its own (`MODELS`) over them, and the shared ones given (not None)
    over those but for what names the model (--epochs 1 applies to lmm-general too)."""
    given = {k: v for k, v in params.items() if v is not None and k not in NAMES_THE_MODEL}
    return {**params, **MODELS[model], **given}


def _fit_run(
    dataset: str, name: str, out: Path, horizon: int, lookback: int, data: dict, options: dict, warned: set
) -> dict:
    """One run, trained and scored by fit_dataset; a run killed part-way continues from its checkpoint. Its
    warnings are said once per benchmark (`warned`: those said already): DLinear's unread covariates at every
    horizon and seed said one thing many times."""

    from titans_ts.checkpointing import latest_checkpoint
    from titans_ts.forecasting.api import RESUME_TO_WRITE, fit_dataset
    from titans_ts.training import require_finished

    resume = latest_checkpoint(out / "checkpoints") is not None  # killed before its first checkpoint: afresh
    try:
        with _said_once(warned):
            record = fit_dataset(
                dataset, horizon=horizon, lookback=lookback, out=out,
                overwrite=True,  # the run's JSON, not its model folder, marks a finished run
                resume=resume, **data, **options,
            )  # fmt: skip
    except OSError as exc:  # fit's advice (--resume) is not a benchmark's: it resumes an unfinished run itself
        if isinstance(exc, TitansError) or exc.errno is None:  # not the file system's (a missing dataset)
            raise
        said = (exc.strerror or str(exc)).replace(RESUME_TO_WRITE, "run the same benchmark again to write them")
        raise type(exc)(exc.errno, f"{name}: {said}", exc.filename) from exc
    except ResumeMismatchError as exc:  # started with other settings, then stopped
        raise ConfigError(
            f"{name}: {out} holds an unfinished run of it, started with other settings "
            f"({'; '.join(exc.differences)}): remove {out} to start it again with these."
        ) from None
    require_finished(record["history"], name)
    return record


@contextlib.contextmanager
def _said_once(warned: set):
    """The warnings of a run, each said unless `warned` holds it already (then added to it). The benchmark read the
    file first and said what a fill made up: a run does not say it again."""
    import warnings

    from titans_ts.data.validation import FilledValuesWarning

    caught = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("ignore", FilledValuesWarning)
            yield
    finally:  # a failed run's too
        for warning in caught:
            key = (warning.category, str(warning.message))
            if key not in warned:
                warned.add(key)
                warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)


def read_run(path: Path) -> dict:
    """A run's JSON, refused with its name when it is not a run's record (cut short, edited, another file)."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        record = exc
    if not isinstance(record, dict) or not isinstance(record.get("test"), dict) or "mse" not in record["test"]:
        raise ConfigError(f"{path} is not a benchmark run's record (cut short or edited?): remove it to run it again.")
    return record


def data_identity(dataset: str, data: dict | None = None) -> str | dict:
    """A registered dataset's name, or a file's content hash, with how it was read and split (the options
    that change what the models see): a run reused from runs_dir read the same data. A registered dataset
    read without its checksum (verify=False) is named by its file's hash when that is not the registered one."""
    from titans_ts.data.registry import lookup_name
    from titans_ts.data.sources import file_sha256, locate

    path, data = Path(dataset), data or {}
    name = f"{path.name} sha256:{file_sha256(path)[:16]}" if path.is_file() else dataset
    info = None if path.is_file() else lookup_name(dataset)
    if info is not None and data.get("verify") is False:
        found = file_sha256(locate(info, data.get("data_dir")))  # where fit_dataset will find it (or download it)
        name = dataset if found == info.sha256 else f"{dataset} sha256:{found[:16]}"
    read = {k: v for k, v in (data or {}).items() if k not in ("data_dir", "verify") and v != UNSAID.get(k)}
    return {"source": name, **read} if read else name  # a run with none of them keeps the name alone, as before


def read_index(dataset: str, data: dict, params: dict):
    """The time index of the data as the runs read it (seasonal naive's season comes from its step)."""
    from titans_ts.data.columns import read_as_fit

    read = {k: v for k, v in data.items() if k not in ("split", "split_dates", "columns")}
    return read_as_fit(dataset, data.get("columns"), params.get("target"), **read).index


def asked(data: str | dict, horizon: int, lookback: int, options: dict) -> dict:
    """What a run is asked for (its data and every setting but how it runs), as its JSON keeps it."""
    settings = {k: v for k, v in options.items() if k not in ("progress", "device")}
    request = {"data": data, "horizon": horizon, "lookback": lookback, **settings}
    return json.loads(json.dumps(request, default=json_value))


def check_same_settings(path: Path, record: dict, params: dict, unread=()) -> None:
    """A run's JSON is reused only when the settings it was made with (its `params`) are those a new run would
    have: a default changed since, or a JSON from another folder (the grid's, kept before requests were), is
    refused. Settings a record does not hold (added since), those that only say how a run goes and those the
    model does not read (`unread`) are not compared."""
    from titans_ts.estimator_base import RUN_ONLY

    made = record.get("params") or {}
    now = json.loads(json.dumps(params, default=json_value))
    changed = changes(made, now, set(made) & set(now) - set(RUN_ONLY) - set(unread))
    if changed:
        raise ConfigError(
            f"{path} was made with other settings than a run now would have ({'; '.join(changed)}): give another "
            "--out (runs_dir=), or remove its runs to run them again."
        )


def check_same_request(path: Path, before: dict | None, now: dict, unread=(), settings=(None, None)) -> None:
    """A run's JSON is reused only when it was asked for the same, but for settings the model does not read
    (`unread`); a JSON written before requests were kept is reused as it is. `settings`: (the record's params, a
    new run's): a setting asked for on one side only counts as the same when it is what the other side ran with
    (--epochs 10 now, left to its default of 10 then)."""
    if before is None:
        return
    before, now = ({k: v for k, v in asked.items() if v is not None and k not in unread} for asked in (before, now))
    for asked in (before, now):
        if "data" in asked:
            asked["data"] = _without_default_split(asked["data"])
    made, will = (json.loads(json.dumps(params or {}, default=json_value)) for params in settings)
    for key in set(now) - set(before):
        if key in made and made[key] == now[key]:
            before[key] = now[key]
    for key in set(before) - set(now):
        if key in will and will[key] == before[key]:
            now[key] = before[key]
    if before == now:
        return
    changed = changes(before, now, set(before) | set(now))
    data_given = isinstance(before.get("data"), dict) != isinstance(now.get("data"), dict) or (
        isinstance(now.get("data"), dict) and set(before["data"]) != set(now["data"])
    )  # a file's read options, given on one side only
    note = " (A data option given on one side only counts as a change, even at its default.)" if data_given else ""
    raise ConfigError(
        f"{path} was run with other settings or data ({'; '.join(changed)}): give another runs folder (runs_dir=, "
        f"CLI --out), or remove its runs to run them again.{note}"
    )


def _without_default_split(identity):
    """A file's data identity without a split equal to the one a file gets unasked (--split 0.7,0.1,0.2 asks for
    what was run without it), and as the name alone when nothing else was given (as `data_identity` keeps it)."""
    from titans_ts.data.protocol import ratio_protocol

    if not isinstance(identity, dict) or identity.get("split") is None:
        return identity
    try:
        default = ratio_protocol(*identity["split"]) == "ratio_70_10_20"
    except (TitansError, TypeError):  # not a split a run could have had: compared as it is
        return identity
    if not default:
        return identity
    rest = {k: v for k, v in identity.items() if k != "split"}
    return rest if set(rest) != {"source"} else rest["source"]


def default_runs_dir(dataset: str) -> Path:
    """Where `titans-ts benchmark` keeps a dataset's runs unless told: runs/benchmark/<dataset label>."""
    from titans_ts.forecasting.settings import dataset_label

    return Path("runs") / "benchmark" / dataset_label(dataset)


def seasonal_naive_lookback(lookback: int, index) -> int:
    """Seasonal naive repeats the last season, so it sees at least one (10-minute data: 144 steps)."""
    from titans_ts.forecasting.time_axis import season_from_index

    return max(lookback, season_from_index(index) or 0)


def summarize(records: list[dict], horizons=HORIZONS) -> dict:
    """model -> {"horizons": {h: {"mse": [...], "mae": [...]}}, "average": (mse, mae) or None}.

    The average over horizons is given only when every horizon has a run (mean over seeds first).
    """
    table: dict = {}
    for record in records:
        model = record.get("model") or record["variant"]
        cell = table.setdefault(model, {"horizons": {}})["horizons"].setdefault(record["horizon"], {})
        cell.setdefault("mse", []).append(record["test"]["mse"])
        cell.setdefault("mae", []).append(record["test"]["mae"])
    for row in table.values():
        cells = [row["horizons"].get(h) for h in horizons]
        row["average"] = (
            (
                statistics.mean(statistics.mean(c["mse"]) for c in cells),
                statistics.mean(statistics.mean(c["mae"]) for c in cells),
            )
            if all(cells)
            else None
        )
    return table


def mean_std(values: list[float]) -> str:
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"
