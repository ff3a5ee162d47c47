"""Lightning glue for genomics: the classifier and LM modules (small `SummedMetricsModule`s: what to train on
and what to sum over the validation sequences); their batches are genomics/batches.py's."""

from __future__ import annotations

import torch
from torch import nn

from genomics.batches import RandomView, SequenceDataset, make_loader
from titans_ts.training import SummedMetricsModule

__all__ = ["ClassifierModule", "LanguageModelModule", "RandomView", "SequenceDataset", "make_loader"]


class ClassifierModule(SummedMetricsModule):
    """Cross-entropy fine-tuning; logs val_loss and val_acc over every validation sequence."""

    n_sums = 3  # loss, correct, count

    def __init__(self, model: nn.Module, lr: float = 1e-3, weight_decay: float = 0.01):
        super().__init__(model, lr=lr, weight_decay=weight_decay)

    def training_step(self, batch, _):
        ids, labels = batch
        return self.log_train_loss(nn.functional.cross_entropy(self.model(ids), labels), len(ids))

    def validation_step(self, batch, _):
        # Tensors made here take the device of the batch; the sums are read once per epoch (no sync per batch).
        ids, labels = batch
        logits = self.model(ids)
        loss = nn.functional.cross_entropy(logits, labels, reduction="sum")
        correct = (logits.argmax(-1) == labels).sum()
        self.accumulate(
            torch.stack([loss.double(), correct.double(), loss.new_tensor(labels.numel(), dtype=torch.float64)])
        )

    def log_validation(self, loss, correct, count):
        self.log("val_loss", loss / max(count, 1), prog_bar=True)
        self.log("val_acc", correct / max(count, 1), prog_bar=True)


class LanguageModelModule(SummedMetricsModule):
    """Next-nucleotide pretraining; logs val_loss (nats per base, over every held-out A, C, G and T) on held-out
    windows."""

    n_sums = 2  # summed nats, bases scored

    def __init__(self, model: nn.Module, lr: float = 2e-3, weight_decay: float = 0.01):
        super().__init__(model, lr=lr, weight_decay=weight_decay)

    def training_step(self, batch, _):
        ids, _ = batch
        return self.log_train_loss(self.model.loss(ids), len(ids))

    def validation_step(self, batch, _):
        ids, _ = batch
        total, bases = self.model.summed_loss(ids)
        self.accumulate(torch.stack([total.double(), bases.double()]))

    def log_validation(self, total, bases):
        self.log("val_loss", total / max(bases, 1), prog_bar=True)
