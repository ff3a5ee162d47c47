"""Character-level DNA tokenizer with HyenaDNA-compatible ids.

[CLS]=0, [SEP]=1, [BOS]=2, [MASK]=3, [PAD]=4, [RESERVED]=5, [UNK]=6, A=7, C=8, G=9, T=10, N=11.
Lowercase is accepted (soft-masked repeats in reference genomes are lowercase); the other IUPAC
ambiguity codes (R, Y, S, W, K, M, B, D, H, V) and U map to N (reading data warns about U: RNA should be
written with T); anything else is an error naming the position.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from titans_ts.errors import SequenceError

SPECIAL_TOKENS = {"[CLS]": 0, "[SEP]": 1, "[BOS]": 2, "[MASK]": 3, "[PAD]": 4, "[RESERVED]": 5, "[UNK]": 6}
NUCLEOTIDES = {"A": 7, "C": 8, "G": 9, "T": 10, "N": 11}
IUPAC_AMBIGUOUS = "RYSWKMBDHVU"  # U (RNA) counts as unknown here, like the other ambiguity codes
PAD_ID, CLS_ID, SEP_ID, VOCAB_SIZE = 4, 0, 1, 12

_LOOKUP = np.full(256, -1, dtype=np.int64)
for _base, _id in NUCLEOTIDES.items():
    _LOOKUP[ord(_base)] = _LOOKUP[ord(_base.lower())] = _id
for _code in IUPAC_AMBIGUOUS:
    _LOOKUP[ord(_code)] = _LOOKUP[ord(_code.lower())] = NUCLEOTIDES["N"]
_READABLE = _LOOKUP >= 0
_ID_TO_TOKEN = {v: k for k, v in {**SPECIAL_TOKENS, **NUCLEOTIDES}.items()}
_COMPLEMENT = np.arange(VOCAB_SIZE)
_COMPLEMENT[[7, 8, 9, 10]] = [10, 9, 8, 7]  # A<->T, C<->G; N and special tokens stay


def reverse_complement_ids(ids: np.ndarray) -> np.ndarray:
    """The ids of the other strand, read 5' to 3' (ambiguity codes are already N, their own complement)."""
    return _COMPLEMENT[ids[::-1]]


class DNATokenizer:
    """Encode DNA strings to ids (and back)."""

    vocab_size = VOCAB_SIZE
    pad_id = PAD_ID

    def encode(self, sequence: str, add_special_tokens: bool = False, name: str | None = None) -> np.ndarray:
        """ids of one sequence; `name` (e.g. 'sequence 12') makes errors point at the input. Sequences and
        positions in errors count from 1, as a reader of the file counts them."""
        ids = _LOOKUP[check_bases(sequence, name)]
        if add_special_tokens:
            ids = np.concatenate([[CLS_ID], ids, [SEP_ID]])
        return ids

    def batch_encode(
        self,
        sequences: Sequence[str],
        max_length: int | None = None,
        add_special_tokens: bool = False,
        transform=None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Right-padded ids (B, L) and the true lengths (B,); sequences longer than max_length are cut to their
        first max_length tokens. transform (ids -> ids), if given, is applied to each cut sequence (augmentation,
        the reverse strand: so both strands read the same window; cut after it, the reverse strand read the
        sequence's last bases)."""
        encoded = [self.encode(s, add_special_tokens, name=f"sequence {i}") for i, s in enumerate(sequences, 1)]
        if max_length is not None:
            encoded = [ids[:max_length] for ids in encoded]
        if transform is not None:
            encoded = [transform(ids) for ids in encoded]
        length = max((len(ids) for ids in encoded), default=0)
        batch = np.full((len(encoded), length), PAD_ID, dtype=np.int64)
        for row, ids in enumerate(encoded):
            batch[row, : len(ids)] = ids
        return torch.from_numpy(batch), torch.tensor([len(ids) for ids in encoded])

    def decode(self, ids) -> str:
        return "".join(_ID_TO_TOKEN.get(int(i), "[UNK]") for i in ids if int(i) != PAD_ID)


def check_bases(sequence: str, name: str | None = None) -> np.ndarray:
    """The sequence's bytes, or a SequenceError naming the first character that is not a nucleotide code (its
    position counted from 1) and `name` (e.g. 'sequence 12'), where the input is."""
    where = f"{name}: " if name else ""
    if not isinstance(sequence, str):
        raise SequenceError(f"{where}expected a string of nucleotides; got {type(sequence).__name__}.")
    if not sequence:
        raise SequenceError(f"{where}empty sequence; every sequence needs at least one nucleotide.")
    raw = np.frombuffer(sequence.encode("utf-8", errors="replace"), dtype=np.uint8)
    if len(raw) != len(sequence):  # a non-ASCII character
        position = next(i for i, ch in enumerate(sequence) if ord(ch) > 127)
        raise SequenceError(
            f"{where}character {sequence[position]!r} at position {position + 1} is not a "
            "nucleotide code (A, C, G, T, N or an IUPAC ambiguity code)."
        )
    bad = np.flatnonzero(~_READABLE[raw])  # a byte per base, not eight: a chromosome is checked whole
    if len(bad):
        position = int(bad[0])
        raise SequenceError(
            f"{where}character {sequence[position]!r} at position {position + 1} is not a "
            f"nucleotide code (A, C, G, T, N or an IUPAC ambiguity code); {len(bad)} such "
            f"character(s) in all.{_gap_hint(sequence, bad)}"
        )
    return raw


def _gap_hint(sequence: str, bad: np.ndarray) -> str:
    """Advice when the unreadable characters are alignment gaps ('-' or '.'): the model reads unaligned DNA."""
    gaps = {sequence[i] for i in bad}
    if gaps <= set("-."):
        removed = "".join(f".replace({gap!r}, '')" for gap in sorted(gaps))
        return f" They are alignment gaps: remove them (sequence{removed}) to read the unaligned sequence."
    return ""
