"""Pretraining the Titans DNA language model on FASTA (next-nucleotide prediction), with a leakage guard.

Windows of the corpus that share any k-mer (default 32, either strand) with a sequence of the
evaluation tasks are dropped before training, and the count is reported.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

from genomics.data.files import check_readable, read_fasta
from genomics.model import DNALanguageModel, DNAModelConfig
from genomics.tokenizer import check_bases
from titans_ts.errors import ConfigError, UracilWarning, budget_problems, is_integer, refuse, seed_problems
from titans_ts.io import save_model_dir
from titans_ts.version import __version__

_CODES = np.full(256, 4, dtype=np.uint8)  # 4 = N or any ambiguity code: k-mers containing it are skipped
for _i, _base in enumerate("ACGT"):
    _CODES[ord(_base)] = _CODES[ord(_base.lower())] = _i


def kmer_codes(sequence: str, k: int = 32) -> np.ndarray:
    """2-bit codes (uint64) of every k-mer of `sequence` without N, on the given strand."""
    if k > 32:
        raise ConfigError("k-mers longer than 32 do not fit in 64 bits.")
    codes = _CODES[np.frombuffer(sequence.encode("ascii", errors="replace"), dtype=np.uint8)]
    if len(codes) < k:
        return np.empty(0, dtype=np.uint64)
    windows = np.lib.stride_tricks.sliding_window_view(codes, k)
    valid = (windows < 4).all(axis=1)
    shifts = (2 * np.arange(k - 1, -1, -1)).astype(np.uint64)
    values = (windows[valid].astype(np.uint64) << shifts).sum(axis=1, dtype=np.uint64)
    return values


def reverse_complement(sequence: str) -> str:
    return sequence.upper().translate(str.maketrans("ACGTN", "TGCAN"))[::-1]


def evaluation_kmers(sequences, k: int = 32) -> np.ndarray:
    """Sorted unique k-mer codes of the sequences and their reverse complements."""
    parts = [kmer_codes(s.upper(), k) for s in sequences] + [kmer_codes(reverse_complement(s), k) for s in sequences]
    return np.unique(np.concatenate(parts)) if parts else np.empty(0, dtype=np.uint64)


def shares_kmer(window: str, forbidden: np.ndarray, k: int = 32) -> bool:
    if len(forbidden) == 0:
        return False
    codes = kmer_codes(window.upper(), k)
    if len(codes) == 0:
        return False
    position = np.searchsorted(forbidden, codes)
    position[position == len(forbidden)] = 0
    return bool((forbidden[position] == codes).any())


MIN_WINDOW = 64  # bases: a shorter tail of a record is dropped


def is_gap(window: str) -> bool:
    """A window of an assembly gap: fewer than MIN_WINDOW of its bases are not N."""
    return len(window) - window.count("N") < MIN_WINDOW


def corpus_windows(paths, window: int = 1024, drop_gaps: bool = True) -> list[str]:
    """Non-overlapping windows of every FASTA record; a tail shorter than MIN_WINDOW bases, and a window with fewer
    than MIN_WINDOW bases that are not N (an assembly gap), are dropped. A
    character that is not a nucleotide code is an error naming its file, record and position, before any work."""
    import warnings

    windows = []
    for path in paths:
        uracil = []  # records holding U: read as N, as fine-tuning and predict say of their sequences
        for name, sequence in read_fasta(path):
            if sequence:  # an empty record gives no window
                check_bases(sequence, f"{path}: record {name!r}")
                if "U" in sequence or "u" in sequence:
                    uracil.append(name)
            for start in range(0, len(sequence), window):
                piece = sequence[start : start + window].upper()
                if len(piece) >= MIN_WINDOW and not (drop_gaps and is_gap(piece)):
                    windows.append(piece)
        if uracil:
            warnings.warn(
                f"{path}: {len(uracil)} record(s) hold U (uracil, an RNA base; the first is {uracil[0]!r}), which a "
                "DNA model reads as N (unknown): if they are RNA, write each U as T first.",
                UracilWarning,
                stacklevel=2,
            )
    if not windows:
        raise ConfigError(f"no sequence windows of at least {MIN_WINDOW} bases in {list(map(str, paths))}.")
    return windows


def _given_twice(paths) -> str | None:
    """The first corpus file named twice (by any path to it), or None."""
    seen = set()
    for path in paths:
        real = Path(path).expanduser().resolve()
        if real in seen:
            return str(path)
        seen.add(real)
    return None


def split_corpus(
    corpus, window, evaluation_sequences, k: int, held_out: float, seed: int, drop_gaps: bool = True, repeats=False
):
    """(every window, those kept by the leakage filter, the training windows, the held-out windows) of `corpus`:
    the held-out share drawn by `seed` from the kept windows, less any that is also a training window (a file given
    twice under two names, x.fa and x.fa.gz, or a record repeated: its score would be a training score), unless
    `repeats`. drop_gaps=False and repeats=True split as runs before those rules did (to score their held-out
    windows again)."""
    windows = corpus_windows(corpus, window, drop_gaps)
    forbidden = evaluation_kmers(list(evaluation_sequences), k)
    kept = [w for w in windows if not shares_kmer(w, forbidden, k)]
    order = np.random.default_rng(seed).permutation(len(kept))
    n_val = max(1, int(held_out * len(kept)))
    train, val = [kept[i] for i in order[n_val:]], [kept[i] for i in order[:n_val]]
    if not repeats:
        trained = set(train)
        val = [w for w in val if w not in trained]
    return windows, kept, train, val


def _say_repeats(repeated: int, corpus, any_left: bool) -> None:
    """Held-out windows left out because the corpus also trains on them: said, or refused when none is left."""
    if not repeated:
        return
    why = "the corpus repeats itself: a file given twice under two names (x.fa and x.fa.gz), or repeated records"
    if not any_left:
        raise ConfigError(
            f"every held-out window of {list(map(str, corpus))} is also a training window ({why}), so there is no "
            "held-out score: give each sequence once."
        )
    import warnings

    from titans_ts.errors import RepeatedWindowsWarning

    warnings.warn(
        f"{repeated} held-out window(s) are also training windows ({why}); they are left out of the held-out score.",
        RepeatedWindowsWarning,
        stacklevel=3,
    )


def load_language_model(path) -> tuple[DNAModelConfig, dict, dict]:
    """(config, all tensors, report) of a folder written by `pretrain` (stemmed models only)."""
    from titans_ts.io import load_model_dir

    tensors, report = load_model_dir(path, "titans-ts dna language model", "pretrained DNA language model")
    if "stride" not in report["model_config"]:
        raise ConfigError(f"{path} is a language model from before the stem; it cannot be continued. Start anew.")
    return DNAModelConfig(**report["model_config"]), tensors, report


def _total_steps(report: dict) -> int:
    return int(report.get("total_optimizer_steps", report.get("optimizer_steps", 0)))


def pretrain(
    corpus,
    out,
    evaluation_sequences=(),
    config: DNAModelConfig | None = None,
    window: int = 1024,
    k: int = 32,
    epochs: int = 1,
    batch_size: int = 16,
    lr: float = 2e-3,
    held_out: float = 0.05,
    seed: int = 0,
    max_minutes: float | None = None,
    progress: bool = True,
    device: str = "auto",
    init=None,
    resume: bool = False,
    checkpoint_every: float | None = None,
    overwrite: bool = False,
) -> dict:
    """Train a DNA language model; write out/{model.safetensors, config.json}; return the report.

    device: "auto" (CUDA when available, else CPU), "cpu" or "cuda".
    init: a folder written by an earlier `pretrain` to continue from (its architecture; `config` must be
    None or the same). The held-out split depends only on the corpus, `held_out` and `seed`, so a
    continued run is scored on the same windows.
    Checkpoints go to out/checkpoints (every epoch, and every `checkpoint_every` minutes); resume=True
    continues a killed or interrupted run from there (same settings). They are removed once it finished."""
    from genomics.training import LanguageModelModule, make_loader
    from titans_ts.checkpointing import (
        finish_run_folder,
        forget_unstarted_run,
        prepare_run_folder,
        run_folder_lock,
        start_or_resume,
    )
    from titans_ts.io import data_fingerprint
    from titans_ts.training import resolve_device, seed_everything, train_and_restore, tune_cpu_allocator

    device = resolve_device(device)  # before the corpus is read: a bad value or a missing GPU fails fast
    if not is_integer(epochs) or epochs < 1:
        raise ConfigError(f"epochs={epochs!r}: at least 1 pass over the corpus.")
    refuse(budget_problems(max_minutes, checkpoint_every) + seed_problems(seed))
    if not is_integer(window) or window < MIN_WINDOW:
        raise ConfigError(f"window={window!r}: windows of at least {MIN_WINDOW} bases (--window; default 1024).")
    for path in corpus:  # before the run folder is made
        check_readable(path)
    twice = _given_twice(corpus)
    if twice:  # its windows would be both trained on and held out: a score that says nothing
        raise ConfigError(
            f"{twice} is given twice as a corpus: its windows would be held out and trained on at once; give each "
            "file once."
        )
    out = Path(out).expanduser()
    with run_folder_lock(out):  # no other run writes into this folder meanwhile
        checkpoints = prepare_run_folder(out, overwrite, resume)
        tune_cpu_allocator()
        started = time.time()
        split = split_corpus(corpus, window, evaluation_sequences, k, held_out, seed)
        windows, kept, train_windows, val_windows = split
        dropped = len(windows) - len(kept)
        repeated = len(kept) - len(train_windows) - len(val_windows)  # held-out windows split_corpus left out
        _say_repeats(repeated, corpus, bool(val_windows))
        if not train_windows:  # before any folder is made: a model of zero steps is not a pretrained model
            filtered = f" ({dropped} dropped for sharing a {k}-mer with the evaluation tasks)" if dropped else ""
            shorter = f" or a shorter --window (at least {MIN_WINDOW})" if window > MIN_WINDOW else ""
            raise ConfigError(
                f"{len(kept)} window(s) of up to {window} bases in {list(map(str, corpus))}{filtered}: pretraining "
                f"needs at least 2, one held out for the score and one to train on. Give a longer corpus{shorter}."
            )

        seed_everything(seed)
        if init is not None:
            start_config, start_weights, start_report = load_language_model(init)
            if config is not None and config != start_config:
                raise ConfigError(f"init={init} has a different architecture ({start_config}) from config ({config}).")
            config = start_config
        config = config or DNAModelConfig()
        model = DNALanguageModel(config)
        if init is not None:
            model.load_state_dict(start_weights)
        module = LanguageModelModule(model, lr=lr)
        settings = {
            "corpus": data_fingerprint(windows),
            "evaluation": data_fingerprint(list(evaluation_sequences)),
            "config": config.to_dict(),
            **{"window": window, "k": k, "epochs": epochs, "batch_size": batch_size, "lr": lr},
            **{"held_out": held_out, "seed": seed, "init": str(init) if init else None, "titans_ts": __version__},
        }
        checkpoint = start_or_resume(checkpoints, settings, resume)
        train = make_loader(train_windows, None, batch_size, shuffle=True, seed=seed, bucket=True, shard=True)
        val = make_loader(val_windows, None, batch_size, bucket=True, shard=True)
        try:
            training = train_and_restore(
                module,
                train,
                val,
                checkpoint=checkpoint,
                max_epochs=epochs,
                monitor="val_loss",
                patience=max(1, epochs),
                progress=progress,
                max_minutes=max_minutes,
                device=device,
                checkpoint_dir=checkpoints,
                checkpoint_minutes=checkpoint_every,
            )
            val_nats = training.pop("best")  # the held-out loss of the restored (best) weights
            if val_nats is None or not math.isfinite(val_nats):  # no epoch validated: no score, and no pretrained model
                raise ConfigError(
                    f"training stopped ({training['stop_reason']}) before its first epoch was validated, so there is "
                    f"no held-out score and no model was saved in {out}: give it more time (--max-minutes) or fewer "
                    "windows (--window, a smaller corpus)."
                )
        except BaseException:  # Ctrl-C before the first checkpoint, an error: no empty folder is left behind
            forget_unstarted_run(out)
            raise
        report = {
            "format": "titans-ts dna language model",
            "titans_ts_version": __version__,
            "model_config": config.to_dict(),
            "parameters": sum(p.numel() for p in model.parameters()),
            "corpus": [Path(p).name for p in corpus],
            "window": window,
            "windows_total": len(windows),
            "leakage_filter": {
                "k": k,
                "strands": "both",
                "evaluation_sequences": len(evaluation_sequences),
                "windows_dropped": dropped,
            },
            "train_windows": len(train_windows),
            "held_out_windows": len(val_windows),
            "held_out_repeats_dropped": repeated,
            "optimizer_steps": training["steps"],
            "total_optimizer_steps": training["steps"] + (0 if init is None else _total_steps(start_report)),
            "continued_from": None
            if init is None
            else {"path": str(init), "held_out_bits_per_base": start_report["held_out_bits_per_base"]},
            "epochs_run": training["epochs_run"],
            "stop_reason": training["stop_reason"],
            "training": training,
            "held_out_bits_per_base": val_nats / math.log(2),
            "seed": seed,
            "lr": lr,
            "batch_size": batch_size,
            "device": str(device),
            "resumed": resume,
            "wall_seconds": time.time() - started,  # of this run; a resumed one's, of its resumed part
        }
        save_model_dir(out, model.state_dict(), report)
        finish_run_folder(checkpoints, interrupted=training["stop_reason"] == "interrupted")
        return report
