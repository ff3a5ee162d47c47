"""The pretrained DNA language model folders a classifier starts from: where the shipped one is, the backbone and
config a folder holds, and what a classifier records of it (provenance, architecture)."""

from __future__ import annotations

import json
from pathlib import Path

from genomics.model import NO_STEM, DNAModelConfig
from titans_ts.errors import ConfigError
from titans_ts.io import load_model_dir

# What shapes the Titans backbone; a pretrained one brings its own (the head's pooling is the classifier's).
ARCHITECTURE_PARAMS = (
    "block",
    "dim",
    "layers",
    "heads",
    "stem_kernel",
    "stride",
    "stem_kmer",
    "stem_pool",
    "stem_levels",
)

PRETRAINED_DIR = Path(__file__).resolve().parent / "weights"
PRETRAINED_NAME = "titans-dna-small"


def pretrained_path(name: str = PRETRAINED_NAME) -> Path:
    return PRETRAINED_DIR / name


def load_backbone_weights(path) -> tuple[DNAModelConfig, dict]:
    """Config and backbone tensors of a pretrained language model folder (safetensors + JSON)."""
    try:
        tensors, config = load_model_dir(path, "titans-ts dna language model", "pretrained DNA language model")
    except ConfigError as exc:
        if (Path(path) / "checkpoints").is_dir():  # a pretraining stopped before it saved its model
            raise ConfigError(
                f"{exc} It holds the checkpoints of a pretraining that stopped before it saved a model: continue it "
                f"with `titans-dna pretrain ... --out {path} --resume` (the same corpus and settings)."
            ) from exc
        raise ConfigError(f"{exc} Run `titans-dna pretrain`, or pass pretrained=False to start from scratch.") from exc
    _say_if_interrupted(path, config)
    model_config = dict(config["model_config"])
    backbone = {k[len("backbone.") :]: v for k, v in tensors.items() if k.startswith("backbone.")}
    if "stride" not in model_config:  # weights from before the stem: the embedding was the stem
        backbone = {("stem." + k if k.startswith("embed.") else k): v for k, v in backbone.items()}
    model_config = {**NO_STEM, **model_config}
    return DNAModelConfig(**model_config), backbone


_SAID_INTERRUPTED: set = set()  # pretrained folders said once per process (a CV run loads one per fold)


def _say_if_interrupted(path, report: dict) -> None:
    """An InterruptedTrainingWarning for a pretraining that was stopped (Ctrl-C, kill) before it finished."""
    said = (str(Path(path).resolve()), report.get("save_id"))  # a folder saved before save_id: by its path
    if report.get("stop_reason") != "interrupted" or said in _SAID_INTERRUPTED:
        return
    import warnings

    from titans_ts.errors import InterruptedTrainingWarning
    from titans_ts.training import stop_note

    _SAID_INTERRUPTED.add(said)
    warnings.warn(
        f"{path}: its pretraining was interrupted ({stop_note(report.get('training', report))}); fine-tuning starts "
        "from the weights it kept. To finish it first: `titans-dna pretrain ... --out <that folder> --resume`.",
        InterruptedTrainingWarning,
        stacklevel=4,
    )


def _saved_report(path) -> dict | None:
    """A pretrained folder's config.json (its report), without its weights; None when it cannot be read."""
    try:
        report = json.loads((Path(path) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return report if isinstance(report, dict) else None


def pretrained_provenance(path) -> dict | None:
    """Which pretrained model a classifier started from, as its history keeps it: the folder, its save_id (the
    same folder later holding another model tells them apart), held-out bits per base and how it stopped."""
    report = _saved_report(path)
    if report is None:
        return None
    kept = ("save_id", "held_out_bits_per_base", "stop_reason")
    return {"path": str(Path(path).resolve()), **{key: report.get(key) for key in kept}}


def pretrained_architecture(path) -> dict | None:
    """The ARCHITECTURE_PARAMS of a pretrained folder, read from its config.json alone (None when it cannot be
    read: loading the folder then says why)."""
    try:
        saved = (_saved_report(path) or {})["model_config"]
        model_config = {**NO_STEM, **saved} if "stride" not in saved else dict(saved)
        return {name: DNAModelConfig(**model_config).__dict__[name] for name in ARCHITECTURE_PARAMS}
    except (OSError, ValueError, KeyError, TypeError):
        return None
