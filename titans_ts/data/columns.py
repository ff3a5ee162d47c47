"""Which columns of a series are read and which are forecast: `columns` to read, the `target` column(s) among
them (the others are covariates), and `read_as_fit`, the one reading of a dataset that fitting
(forecasting/), showing the split (`describe_splits`) and the benchmark's checks share."""

from __future__ import annotations

from collections.abc import Iterable

from titans_ts.errors import ConfigError, DataValidationError


def target_names(target) -> list:
    """The `target` parameter (None, a column name, or a list of them) as a list of names (a name may be a
    number: a frame's column 0)."""
    if target is None:
        return []
    return [target] if isinstance(target, str) or not isinstance(target, Iterable) else list(target)


def target_positions(target, columns) -> list[int] | None:
    """Positions of the `target` column(s) among `columns`; None when every column is a target."""
    if target is None:
        return None
    names = target_names(target)
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


def input_columns(columns, target=None) -> list | None:
    """The columns read as inputs: `columns` and the `target` column(s), once each; None (all) without columns."""
    return None if columns is None else list(dict.fromkeys([*columns, *target_names(target)]))


def read_as_fit(dataset: str, columns=None, target=None, **read):
    """`dataset` read as fit reads it: the `columns` given (all when None) in their order, then the `target`
    column(s) not among them, named as text; a target the data lacks is refused. `read`: load_dataset's options
    (data_dir, fill, date_column, long, ...)."""
    from titans_ts.data.loading import load_dataset  # pandas' readers only when a file is read

    wanted = input_columns(columns, target)
    try:
        frame = load_dataset(dataset, **read, columns=wanted)
    except DataValidationError as exc:  # a target of text: reading fewer columns would not help
        targets = [str(t) for t in target_names(target)]
        text = [str(name) for name in getattr(exc, "non_numeric", []) if str(name) in targets]
        if not text:
            raise
        raise DataValidationError(
            f"{dataset}: the target column(s) {text} hold text, not numbers: a forecast target must be numeric. "
            "Choose a numeric column with target= (CLI: --target), or encode that one as numbers first."
        ) from None
    frame.attrs.pop("other_series", None)  # a long table's series left out by --columns: the user's choice
    if wanted is not None:  # the reader keeps the file's order; the inputs are in the order asked
        frame = frame.set_axis([str(c) for c in frame.columns], axis=1)[[str(c) for c in wanted]]
    target_positions(target, frame.columns)
    return frame
