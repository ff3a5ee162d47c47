"""Sliding windows over a scaled series, and the train/val/test splits of the protocol as loaders."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset

from titans_ts.data.protocol import HORIZON, LOOKBACK, SplitBorders, StandardScaler, split_borders


class WindowDataset(Dataset):
    """Every window of a (rows x channels) array: x = `lookback` rows of every channel, y = the next
    `horizon` rows of the `targets` channels (positions; None: all channels)."""

    def __init__(self, values: np.ndarray, lookback: int, horizon: int, targets=None):
        self.values = torch.as_tensor(np.asarray(values, dtype=np.float32))
        self.lookback = lookback
        self.horizon = horizon
        self.targets = self.values if targets is None else self.values[:, list(targets)]

    def __len__(self) -> int:
        return max(0, len(self.values) - self.lookback - self.horizon + 1)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not 0 <= index < len(self):
            raise IndexError(f"window {index} out of range for {len(self)} windows")
        start = index + self.lookback
        return self.values[index:start], self.targets[start : start + self.horizon]


@dataclass
class ForecastSplits:
    """A series cut by the protocol: the scaler (fitted on train rows only) and one dataset per split."""

    borders: SplitBorders
    scaler: StandardScaler
    train: WindowDataset
    val: WindowDataset
    test: WindowDataset
    columns: list[str]

    def loaders(self, batch_size: int = 32, num_workers: int = 0, seed: int = 0, shard: bool = False) -> dict:
        """Shuffled train loader; val/test in order. drop_last=False everywhere: every window counts.

        shard=True (the loaders a Trainer reads): under DDP each rank reads its shard
        (`distributed.ShardedSampler`), training shards padded to equal length, validation and test windows
        each counted exactly once over all ranks."""
        from titans_ts.checkpointing import ResumableLoader
        from titans_ts.distributed import ShardedSampler

        batch_size, generator = int(batch_size), torch.Generator().manual_seed(int(seed))  # numpy integers too

        def ordered(dataset):
            sampler = ShardedSampler(len(dataset), pad=False, shard=shard)
            return DataLoader(dataset, batch_size, sampler=sampler, drop_last=False, num_workers=num_workers)

        train_sampler = ShardedSampler(len(self.train), shuffle=True, generator=generator, shard=shard)
        return {
            "train": ResumableLoader(
                self.train, BatchSampler(train_sampler, batch_size, drop_last=False), generator, num_workers=num_workers
            ),
            "val": ordered(self.val),
            "test": ordered(self.test),
        }


def make_splits(
    frame: pd.DataFrame,
    lookback: int = LOOKBACK,
    horizon: int = HORIZON,
    protocol: str = "ratio_70_10_20",
    targets=None,
) -> ForecastSplits:
    """Split `frame` by `protocol`, fit the scaler on the training rows, and window each split
    (`targets`: positions of the columns to forecast; None: all; the others are inputs only)."""
    values = frame.to_numpy(dtype=np.float64)
    borders = split_borders(len(values), lookback, horizon, protocol)
    train_start, train_end = borders.train
    forecast = list(frame.columns) if targets is None else [frame.columns[i] for i in targets]
    scaler = StandardScaler().fit(values[train_start:train_end], columns=list(frame.columns), targets=forecast)
    scaled = scaler.transform(values)

    def window(bounds: tuple[int, int]) -> WindowDataset:
        return WindowDataset(scaled[bounds[0] : bounds[1]], lookback, horizon, targets)

    return ForecastSplits(
        borders=borders,
        scaler=scaler,
        train=window(borders.train),
        val=window(borders.val),
        test=window(borders.test),
        columns=[str(c) for c in frame.columns],
    )
