"""Time-series data: the dataset registry, loading and validation, the benchmark protocol, windows.

Each name is imported from its module when first asked for: a module that needs only the protocol's
constants (forecasting/defaults.py, and through it `titans-ts --help`) does not load pandas' readers or torch.
"""

from titans_ts.lazy import lazy_names

_MODULE_OF = {
    "describe_splits": "describe",
    "load_dataset": "loading",
    "validate_frame": "validation",
    **dict.fromkeys(
        ("SplitBorders", "StandardScaler", "date_protocol", "protocol_for", "ratio_protocol", "split_borders"),
        "protocol",
    ),
    **dict.fromkeys(("DatasetInfo", "get_dataset_info", "registered_datasets"), "registry"),
    **dict.fromkeys(("ForecastSplits", "WindowDataset", "make_splits"), "windows"),
}

__all__ = sorted(_MODULE_OF)

__getattr__ = lazy_names(__name__, _MODULE_OF)
