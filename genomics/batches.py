"""Batches of tokenized DNA sequences (Lightning-free: prediction batches them too): the dataset, the
training augmentation (`RandomView`) and `make_loader`."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset

from genomics.tokenizer import DNATokenizer, reverse_complement_ids
from titans_ts.distributed import ShardedBatches, ShardedSampler


class SequenceDataset(Dataset):
    def __init__(self, sequences, labels=None, max_length: int | None = None):
        self.sequences, self.labels, self.max_length = list(sequences), labels, max_length

    def __len__(self):
        return len(self.sequences)

    def __getitem__(self, index):
        label = -1 if self.labels is None else int(self.labels[index])
        return self.sequences[index], label


class RandomView:
    """Training augmentation: a random window of at most `crop` bases and, with random_strand, a coin
    flip between the sequence and its reverse complement (a regulatory element reads on both strands)."""

    def __init__(self, crop: int | None = None, random_strand: bool = False, seed: int = 0):
        self.crop, self.random_strand = crop, random_strand
        self.rng = np.random.default_rng(seed)

    def __call__(self, ids: np.ndarray) -> np.ndarray:
        if self.crop is not None and len(ids) > self.crop:
            start = int(self.rng.integers(0, len(ids) - self.crop + 1))
            ids = ids[start : start + self.crop]
        if self.random_strand and self.rng.random() < 0.5:
            ids = reverse_complement_ids(ids)
        return ids


def make_loader(
    sequences,
    labels=None,
    batch_size=32,
    shuffle=False,
    max_length=None,
    seed=0,
    bucket: bool = False,
    transform=None,
    shard: bool = False,
) -> DataLoader:
    """Batches of (ids, labels). bucket=True groups sequences of similar length (less padding) and
    shuffles the order of the batches. transform: applied to each sequence's ids (e.g. RandomView).
    shard=True for the loaders a Trainer reads: under DDP, each rank reads its share (`distributed.py`)."""
    tokenizer, batch_size = DNATokenizer(), int(batch_size)  # numpy integers too: DataLoader wants an int

    def collate(batch):
        ids, _ = tokenizer.batch_encode([s for s, _ in batch], max_length=max_length, transform=transform)
        return ids, torch.tensor([label for _, label in batch])

    dataset = SequenceDataset(sequences, labels, max_length)
    if shuffle:  # a train loader: a checkpoint keeps its place in the epoch (here: predicting imports no Lightning)
        from titans_ts.checkpointing import ResumableLoader
    if bucket:
        order = np.argsort([len(s) for s in dataset.sequences], kind="stable")
        batches = [order[i : i + batch_size].tolist() for i in range(0, len(order), batch_size)]
        if shuffle:
            np.random.default_rng(seed).shuffle(batches)
        batches = ShardedBatches(batches) if shard else batches
        if shuffle:
            return ResumableLoader(dataset, batches, collate_fn=collate)
        return DataLoader(dataset, batch_sampler=batches, collate_fn=collate)
    generator = torch.Generator().manual_seed(int(seed))
    # by rank under DDP: training shards padded to equal length, evaluation sequences each counted once
    sampler = ShardedSampler(len(dataset), shuffle=shuffle, generator=generator, pad=shuffle, shard=shard)
    if shuffle:
        batches = BatchSampler(sampler, batch_size, drop_last=False)
        return ResumableLoader(dataset, batches, generator, collate_fn=collate)
    return DataLoader(dataset, batch_size, sampler=sampler, drop_last=False, collate_fn=collate, generator=generator)
