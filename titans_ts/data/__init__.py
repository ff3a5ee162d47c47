"""Time-series data: the dataset registry, loading and validation, the benchmark protocol, windows."""

from titans_ts.data.describe import describe_splits
from titans_ts.data.loading import load_dataset, validate_frame
from titans_ts.data.protocol import (
    SplitBorders,
    StandardScaler,
    date_protocol,
    protocol_for,
    ratio_protocol,
    split_borders,
)
from titans_ts.data.registry import DatasetInfo, get_dataset_info, registered_datasets
from titans_ts.data.windows import ForecastSplits, WindowDataset, make_splits

__all__ = [
    "DatasetInfo",
    "ForecastSplits",
    "SplitBorders",
    "StandardScaler",
    "WindowDataset",
    "describe_splits",
    "get_dataset_info",
    "load_dataset",
    "make_splits",
    "date_protocol",
    "protocol_for",
    "ratio_protocol",
    "registered_datasets",
    "split_borders",
    "validate_frame",
]
