"""The genomics side of the training skeleton: ClassifierModule and LanguageModelModule on the shared
SummedMetricsModule, and DNAClassifier on the shared TitansEstimator."""

import hashlib
import json

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from sklearn.exceptions import NotFittedError

from genomics.classifier import DNAClassifier
from genomics.model import DNALanguageModel, DNAModelConfig
from genomics.tokenizer import NUCLEOTIDES
from genomics.training import ClassifierModule, LanguageModelModule, make_loader
from titans_ts.errors import ConfigError
from titans_ts.training import SummedMetricsModule

TINY = dict(pretrained=False, dim=16, layers=1, heads=2, epochs=1, batch_size=8, progress=False, device="cpu")


def _toy(n=30, seed=0):
    rng = np.random.default_rng(seed)
    sequences = ["".join(rng.choice(list("ACGT"), int(rng.integers(20, 50)))) for _ in range(n)]
    return sequences, [int(s.count("G") + s.count("C") > len(s) / 2) for s in sequences]


def _validate(module, loader) -> dict:
    trainer = pl.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.validate(module, loader, verbose=False)
    return {k: float(v) for k, v in trainer.callback_metrics.items()}


def test_the_modules_are_summed_metrics_modules_with_their_own_defaults():
    model = DNAClassifier(**TINY)._build(2)
    classifier, language = ClassifierModule(model), LanguageModelModule(DNALanguageModel(DNAModelConfig(dim=16)))
    assert isinstance(classifier, SummedMetricsModule) and isinstance(language, SummedMetricsModule)
    assert (classifier.lr, classifier.weight_decay, classifier.warmup) == (1e-3, 0.01, 0.05)
    assert (language.lr, language.weight_decay, language.warmup) == (2e-3, 0.01, 0.05)
    assert list(classifier.state_dict()) == ["model." + k for k in model.state_dict()]  # checkpoints unchanged


def test_classifier_validation_is_the_loss_and_accuracy_over_every_sequence():
    sequences, labels = _toy()
    torch.manual_seed(0)
    module = ClassifierModule(DNAClassifier(**TINY)._build(2)).eval()
    ids, targets = next(iter(make_loader(sequences, labels, batch_size=len(sequences))))
    with torch.no_grad():
        logits = module.model(ids)
    loss = torch.nn.functional.cross_entropy(logits.double(), targets).item()
    accuracy = (logits.argmax(-1) == targets).double().mean().item()
    for batch_size in (7, 30):  # padding differs per batch; the sums over sequences do not
        logged = _validate(module, make_loader(sequences, labels, batch_size=batch_size))
        assert logged["val_loss"] == pytest.approx(loss, rel=1e-5)
        assert logged["val_acc"] == float(torch.tensor(accuracy))


def test_language_model_validation_scores_every_held_out_base_once_and_no_n():
    """Bits per base are over A, C, G and T: a run of N (an assembly gap) is no target. Scoring it made a corpus
    with one gap record look far better predicted (0.845 bits per base against 2.133 without the gap)."""
    sequences, _ = _toy()
    sequences = [s if i % 3 else s[:20] + "N" * 30 for i, s in enumerate(sequences)]  # some end in a gap
    torch.manual_seed(0)
    module = LanguageModelModule(DNALanguageModel(DNAModelConfig(dim=16, layers=1, heads=2, chunk_size=8))).eval()
    loader = make_loader(sequences, None, batch_size=8)  # 8, 8, 8, 6 windows of unequal lengths
    with torch.no_grad():
        batches = [(ids, torch.log_softmax(module.model(ids), -1)) for ids, _ in loader]
    nats, bases = 0.0, 0
    for ids, logp in batches:
        targets = ids[:, 1:]
        scored = (targets >= NUCLEOTIDES["A"]) & (targets <= NUCLEOTIDES["T"])  # not N, not a pad
        nats -= logp.gather(-1, targets.unsqueeze(-1)).squeeze(-1)[scored].double().sum().item()
        bases += int(scored.sum())
    assert bases < sum(len(s) - 1 for s in sequences)  # the Ns were not counted
    assert _validate(module, loader)["val_loss"] == pytest.approx(nats / bases, rel=1e-6)


def test_the_shared_estimator_checks(tmp_path):
    expected = r"^This DNAClassifier is not fitted yet: call fit\(sequences, y\) first, or DNAClassifier.load\(path\)"
    with pytest.raises(NotFittedError, match=expected):
        DNAClassifier().predict_proba(["ACGT"])
    saved = {"params": {"device": "cuda", "seed": 4}}
    assert DNAClassifier._saved_params(saved, "cpu") == {"device": "cpu", "seed": 4}
    assert DNAClassifier._saved_params(saved, None) == saved["params"] and saved["params"]["device"] == "cuda"
    ddp = {"params": {"devices": 2, "num_nodes": 2, "strategy": "ddp", "checkpoint_dir": "run/ck", "seed": 4}}
    assert DNAClassifier._saved_params(ddp, None) == {  # the saving run's, not the model's: refit on one process
        "devices": 1,
        "num_nodes": 1,
        "strategy": "auto",
        "checkpoint_dir": None,
        "seed": 4,
    }
    with pytest.raises(ConfigError, match="resume=True needs checkpoint_dir"):
        DNAClassifier(**TINY)._checkpoint_to_resume(["ACGT"], resume=True)
    assert DNAClassifier(**TINY)._checkpoint_to_resume(["ACGT"], resume=False) is None
    estimator = DNAClassifier(**TINY, checkpoint_dir=str(tmp_path / "ck"))
    assert estimator._checkpoint_to_resume(["ACGT", "0"], resume=False) is None  # a fresh start records its settings
    settings = json.loads((tmp_path / "ck" / "settings.json").read_text())
    assert settings["data"] == "2:" + hashlib.sha256(b"ACGT\n0").hexdigest()[:16]
    assert "device" not in settings and settings["epochs"] == 1


def test_a_refused_resume_counts_the_training_sequences(tmp_path):
    """The data's fingerprint holds one item a labelled sequence: 30 sequences are 30 items, not 60."""
    sequences, labels = _toy()
    folder = str(tmp_path / "ck")
    DNAClassifier(**TINY, checkpoint_dir=folder).fit(sequences, labels)
    with pytest.raises(ConfigError, match=r"the data: 30 items in the checkpoint, 20 items now"):
        DNAClassifier(**TINY, checkpoint_dir=folder).fit(sequences[:20], labels[:20], resume=True)
    with pytest.raises(ConfigError, match=r"the data: other values of the same size \(30 items;"):
        DNAClassifier(**TINY, checkpoint_dir=folder).fit(sequences, [1 - y for y in labels], resume=True)


def test_a_fit_records_its_run_as_before_and_a_loaded_model_takes_the_device(tmp_path):
    sequences, labels = _toy()
    model = DNAClassifier(**TINY, precision="32-true").fit(sequences, labels)
    history = model.history_
    saved_keys = ["best_epoch", "epochs_run", "steps", "stop_reason", "train_seconds", "best_val_loss", "device"]
    assert list(history) == saved_keys  # as config.json has always held them
    assert history["best_epoch"] == 0 and history["epochs_run"] == 1 and history["steps"] == 4  # 27 of 30 train
    assert history["stop_reason"] == "max_epochs" and history["device"] == "cpu"
    # the best validation loss is what the restored weights score on the validation sequences
    from sklearn.model_selection import train_test_split

    _, val_index = train_test_split(np.arange(30), test_size=0.1, random_state=0, stratify=labels)
    val = make_loader([sequences[i] for i in val_index], [labels[i] for i in val_index], batch_size=16)
    assert _validate(ClassifierModule(model.model_), val)["val_loss"] == history["best_val_loss"]
    model.save(tmp_path / "m")
    assert DNAClassifier.load(tmp_path / "m").device == "cpu"
    assert DNAClassifier.load(tmp_path / "m", device="auto").device == "auto"
