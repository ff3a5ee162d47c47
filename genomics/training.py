"""Lightning glue for genomics: batches of tokenized sequences, the classifier and LM modules."""

from __future__ import annotations

import lightning.pytorch as pl
import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from genomics.tokenizer import DNATokenizer, reverse_complement_ids
from titans_ts.distributed import ShardedBatches, ShardedSampler
from titans_ts.training import warmup_cosine_schedule


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
    tokenizer = DNATokenizer()

    def collate(batch):
        ids, _ = tokenizer.batch_encode([s for s, _ in batch], max_length=max_length, transform=transform)
        return ids, torch.tensor([label for _, label in batch])

    dataset = SequenceDataset(sequences, labels, max_length)
    if bucket:
        order = np.argsort([len(s) for s in dataset.sequences], kind="stable")
        batches = [order[i : i + batch_size].tolist() for i in range(0, len(order), batch_size)]
        if shuffle:
            np.random.default_rng(seed).shuffle(batches)
        return DataLoader(dataset, batch_sampler=ShardedBatches(batches) if shard else batches, collate_fn=collate)
    generator = torch.Generator().manual_seed(seed)
    # by rank under DDP: training shards padded to equal length, evaluation sequences each counted once
    sampler = ShardedSampler(len(dataset), shuffle=shuffle, generator=generator, pad=shuffle, shard=shard)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        drop_last=False,
        collate_fn=collate,
        generator=generator,
    )


class ClassifierModule(pl.LightningModule):
    """Cross-entropy fine-tuning; logs val_loss and val_acc over every validation sequence."""

    def __init__(self, model: nn.Module, lr: float = 1e-3, weight_decay: float = 0.01):
        super().__init__()
        self.model, self.lr, self.weight_decay = model, lr, weight_decay
        self._val = None  # float64 sums (loss, correct, count) on the device of the batches

    def training_step(self, batch, _):
        ids, labels = batch
        loss = nn.functional.cross_entropy(self.model(ids), labels)
        self.log("train_loss", loss, prog_bar=True, on_step=True, on_epoch=False, batch_size=len(ids))
        return loss

    def on_validation_epoch_start(self):
        self._val = None

    def validation_step(self, batch, _):
        # Tensors made here take the device of the batch; the sums are read once per epoch (no sync per batch).
        ids, labels = batch
        logits = self.model(ids)
        loss = nn.functional.cross_entropy(logits, labels, reduction="sum")
        correct = (logits.argmax(-1) == labels).sum()
        sums = torch.stack([loss.double(), correct.double(), loss.new_tensor(labels.numel(), dtype=torch.float64)])
        self._val = sums if self._val is None else self._val + sums

    def on_validation_epoch_end(self):
        from titans_ts.distributed import sum_across_ranks

        sums = torch.zeros(3, dtype=torch.float64, device=self.device) if self._val is None else self._val
        loss, correct, count = sum_across_ranks(self, sums).tolist()  # every rank's sequences, once each
        self.log("val_loss", loss / max(count, 1), prog_bar=True)
        self.log("val_acc", correct / max(count, 1), prog_bar=True)

    def configure_optimizers(self):
        optimizer = torch.optim.AdamW(self.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        schedule = warmup_cosine_schedule(optimizer, self.trainer.estimated_stepping_batches)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


class LanguageModelModule(pl.LightningModule):
    """Next-nucleotide pretraining; logs val_loss (nats per base) on held-out windows."""

    def __init__(self, model: nn.Module, lr: float = 2e-3, weight_decay: float = 0.01):
        super().__init__()
        self.model, self.lr, self.weight_decay = model, lr, weight_decay
        self._val = None  # float64 sums (loss x windows, windows) on the device of the batches

    def training_step(self, batch, _):
        ids, _ = batch
        loss = self.model.loss(ids)
        self.log("train_loss", loss, prog_bar=True, on_step=True, on_epoch=False, batch_size=len(ids))
        return loss

    def on_validation_epoch_start(self):
        self._val = None

    def validation_step(self, batch, _):
        ids, _ = batch
        loss = self.model.loss(ids).double()
        windows = loss.new_tensor(len(ids))
        sums = torch.stack([loss * windows, windows])
        self._val = sums if self._val is None else self._val + sums

    def on_validation_epoch_end(self):
        from titans_ts.distributed import sum_across_ranks

        sums = torch.zeros(2, dtype=torch.float64, device=self.device) if self._val is None else self._val
        total, windows = sum_across_ranks(self, sums).tolist()
        self.log("val_loss", total / max(windows, 1), prog_bar=True)

    def configure_optimizers(self):
        optimizer = torch.optim.AdamW(self.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        schedule = warmup_cosine_schedule(optimizer, self.trainer.estimated_stepping_batches)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}
