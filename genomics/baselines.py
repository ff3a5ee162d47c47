"""Baselines in the same harness: the GenomicBenchmarks CNN, a small Transformer, 6-mer counts + logistic
regression. The two networks plug into DNAClassifier (architecture="cnn" | "transformer")."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import Normalizer
from torch import nn

from genomics.tokenizer import PAD_ID, VOCAB_SIZE


class GenomicBenchmarksCNN(nn.Module):
    """The CNN of the GenomicBenchmarks paper: embedding, three blocks of conv (16 filters, kernel 8),
    batch norm, ReLU and max-pool 2, then a dense layer. Global average pooling over the real positions
    replaces its fixed-length flatten so that any length works."""

    def __init__(self, n_classes: int, embedding_dim: int = 100, filters: int = 16, hidden: int = 512):
        super().__init__()
        self.embed = nn.Embedding(VOCAB_SIZE, embedding_dim, padding_idx=PAD_ID)
        layers, channels = [], embedding_dim
        for _ in range(3):
            layers += [
                nn.Conv1d(channels, filters, 8, padding="same"),
                nn.BatchNorm1d(filters),
                nn.ReLU(),
                nn.MaxPool1d(2, ceil_mode=True),
            ]
            channels = filters
        self.convs = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Linear(filters, hidden), nn.ReLU(), nn.Dropout(0.3), nn.Linear(hidden, n_classes))

    def forward(self, ids):
        x = self.convs(self.embed(ids).transpose(1, 2))
        return self.head(x.mean(dim=-1))


class SmallTransformer(nn.Module):
    """A pre-norm Transformer encoder of about the size of the Titans model (learned positions, mean pooling)."""

    def __init__(self, n_classes: int, dim: int = 128, layers: int = 2, heads: int = 4, max_length: int = 4096):
        super().__init__()
        self.embed = nn.Embedding(VOCAB_SIZE, dim, padding_idx=PAD_ID)
        self.position = nn.Parameter(0.02 * torch.randn(max_length, dim))
        layer = nn.TransformerEncoderLayer(dim, heads, 4 * dim, dropout=0.1, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, n_classes)

    def forward(self, ids):
        if ids.shape[1] > self.position.shape[0]:
            raise ValueError(f"sequences longer than {self.position.shape[0]} need max_length=")
        pad = ids == PAD_ID
        x = self.encoder(self.embed(ids) + self.position[: ids.shape[1]], src_key_padding_mask=pad)
        x = self.norm(x)
        keep = (~pad).unsqueeze(-1).to(x.dtype)
        return self.head((x * keep).sum(1) / keep.sum(1).clamp_min(1.0))


class KmerLogisticRegression(ClassifierMixin, BaseEstimator):
    """Counts of overlapping k-mers (default 6), L2-normalised, then logistic regression."""

    def __init__(self, k: int = 6, C: float = 1.0, max_iter: int = 2000):
        self.k, self.C, self.max_iter = k, C, max_iter

    def fit(self, sequences, y):
        self.pipeline_ = make_pipeline(
            CountVectorizer(analyzer="char", ngram_range=(self.k, self.k), lowercase=False),
            Normalizer(),
            LogisticRegression(C=self.C, max_iter=self.max_iter),
        )
        self.pipeline_.fit([s.upper() for s in sequences], np.asarray(y, dtype=object))
        self.classes_ = self.pipeline_.classes_
        return self

    def predict(self, sequences):
        return self.pipeline_.predict([s.upper() for s in sequences])

    def predict_proba(self, sequences):
        return self.pipeline_.predict_proba([s.upper() for s in sequences])
