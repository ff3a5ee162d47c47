"""DNAClassifier conventions and `titans-dna` end to end on tiny data."""

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from typer.testing import CliRunner

from cli.dna import app
from genomics.classifier import DNAClassifier
from genomics.pretrained import load_backbone_weights, pretrained_path
from titans_ts.errors import SequenceError

runner = CliRunner()
TINY = dict(pretrained=False, dim=16, layers=1, heads=2, epochs=1, batch_size=16, progress=False)


def _toy(n=60, seed=0):
    rng = np.random.default_rng(seed)
    sequences = ["".join(rng.choice(list("ACGT"), int(rng.integers(30, 60)))) for _ in range(n)]
    labels = ["gc_rich" if (s.count("G") + s.count("C")) / len(s) > 0.5 else "at_rich" for s in sequences]
    return sequences, labels


def test_estimator_conventions_and_round_trip(tmp_path):
    sequences, labels = _toy()
    with pytest.raises(NotFittedError, match="call fit"):
        DNAClassifier().predict(["ACGT"])
    model = DNAClassifier(**TINY).fit(sequences, labels)
    assert list(model.classes_) == ["at_rich", "gc_rich"]  # sorted
    probabilities = model.predict_proba(sequences)
    assert probabilities.shape == (60, 2) and np.allclose(probabilities.sum(1), 1)
    assert set(model.predict(sequences)) <= {"at_rich", "gc_rich"}
    assert 0 <= model.score(sequences, labels) <= 1
    with pytest.raises(NotFittedError):
        clone(model).predict(sequences)
    model.save(tmp_path / "clf")
    loaded = DNAClassifier.load(tmp_path / "clf")
    np.testing.assert_array_equal(loaded.predict_proba(sequences), probabilities)
    with pytest.raises(SequenceError, match="position 3"):
        model.predict(["ACXT"])


def test_unknown_precision_is_a_clear_error():
    from titans_ts.errors import ConfigError

    with pytest.raises(ConfigError, match="32-true"):
        DNAClassifier(**TINY, precision="16-mixed").fit(*_toy())


def test_integer_labels_and_three_classes(tmp_path):
    sequences, _ = _toy(90)
    labels = [i % 3 for i in range(90)]
    model = DNAClassifier(**TINY).fit(sequences, labels)
    assert list(model.classes_) == [0, 1, 2] and model.classes_.dtype.kind == "i"
    assert model.predict_proba(sequences).shape == (90, 3)
    assert 0 <= model.score(sequences, labels) <= 1  # sklearn reads integer predictions as class labels
    model.save(tmp_path / "clf")
    assert DNAClassifier.load(tmp_path / "clf").score(sequences, np.array(labels)) == model.score(sequences, labels)


def test_bad_arguments_to_the_estimator_are_named():
    from titans_ts.errors import ConfigError, DataValidationError

    sequences, labels = _toy(30)
    model = DNAClassifier(**TINY).fit(sequences, labels)
    cases = [
        (lambda: model.predict("ACGTACGT"), DataValidationError, "got one string"),
        (lambda: model.score(sequences[:5], labels), DataValidationError, "5 sequences but 30 labels"),
        (lambda: model.score(sequences, [None, *labels[1:]]), DataValidationError, "sequence 1 has no label"),
        (lambda: model.score(["ACXT", *sequences[1:]], labels), SequenceError, "sequence 1: character 'X'"),
        (
            lambda: model.score(sequences, [1] * 30),  # an unseen class counts as wrong; another kind is a mistake
            DataValidationError,
            "label 1 is a number, but the classes ['at_rich', 'gc_rich'] are text",
        ),
        (
            lambda: model.score(sequences, labels, sample_weight=[1] * 29),
            DataValidationError,
            "30 sequences but sample_weight holds 29 weight(s)",
        ),
        (lambda: model.score(sequences, labels, [-1] * 30), DataValidationError, "sample_weight 1 is -1.0"),
        (lambda: DNAClassifier(**TINY).fit(sequences, None), DataValidationError, "got None"),
        (lambda: DNAClassifier(**TINY).fit("ACGT", [0]), DataValidationError, "got one string"),
        (
            lambda: DNAClassifier(**TINY).fit(sequences, np.eye(2)[[i % 2 for i in range(30)]]),
            DataValidationError,
            "one-hot",
        ),
        (
            lambda: DNAClassifier(**TINY).fit(sequences, np.r_[np.nan, np.ones(29)]),
            DataValidationError,
            "sequence 1 has no label",
        ),
        (lambda: DNAClassifier(**{**TINY, "lr": "fast"}).fit(sequences, labels), ConfigError, "lr='fast' (positive)"),
        (
            lambda: DNAClassifier(**{**TINY, "pretrained": 1}).fit(sequences, labels),  # was a raw TypeError
            ConfigError,
            "pretrained=1 (True: the shipped weights; a folder written by titans-dna pretrain; or False",
        ),
        (lambda: DNAClassifier(**{**TINY, "max_length": 0}).fit(sequences, labels), ConfigError, "max_length=0"),
        (lambda: DNAClassifier(**{**TINY, "train_crop": -5}).fit(sequences, labels), ConfigError, "train_crop=-5"),
        (lambda: DNAClassifier(**{**TINY, "heads": 0}).fit(sequences, labels), ConfigError, "heads=0"),
    ]
    for call, error, message in cases:
        with pytest.raises(error) as raised:
            call()
        assert message in str(raised.value), (message, str(raised.value))
    # too few sequences to stratify the validation split by class: it is drawn unstratified
    DNAClassifier(**TINY).fit(sequences[:12], [i % 3 for i in range(12)])


def test_score_counts_a_class_fit_never_saw_as_wrong():
    """scikit-learn's accuracy counts a label the classifier never saw as wrong (it cannot predict it); score refused
    it, so cross_val_score failed on a fold whose rare class landed in its test part only."""
    from sklearn.model_selection import KFold, cross_val_score

    sequences, labels = _toy(40)
    model = DNAClassifier(**TINY).fit(sequences, labels)
    predicted = model.predict(sequences)
    with_rare = ["rare"] * 4 + labels[4:]
    right = predicted[4:] == np.array(labels[4:], dtype=object)
    assert model.score(sequences, with_rare) == pytest.approx(right.sum() / 40)
    assert model.score(sequences, with_rare, sample_weight=[0] * 4 + [1] * 36) == pytest.approx(right.mean())
    assert model.score(sequences, with_rare, sample_weight=[1] * 4 + [0] * 36) == 0.0
    rare_last = labels[:-3] + ["rare"] * 3  # KFold(2): only the second fold's test part holds the rare class
    scores = cross_val_score(DNAClassifier(**TINY), sequences, rare_last, cv=KFold(2), error_score="raise")
    assert scores.shape == (2,) and np.isfinite(scores).all()


def test_a_fasta_with_integer_labels_gives_integer_classes(tmp_path):
    """A FASTA with a labels CSV of 0/1 (as `titans-dna finetune s.fa --labels labels.csv` reads them) gives integer
    classes, sorted numerically, and a classifier fitted on them predicts integers."""
    from genomics.api import load_labelled
    from genomics.data import read_fasta_with_labels

    sequences, labels = _toy(40)
    numbers = [int(label == "gc_rich") for label in labels]
    (tmp_path / "s.fa").write_text("".join(f">seq{i} a description\n{s}\n" for i, s in enumerate(sequences)))
    rows = [f"seq{i},{n}\n" for i, n in enumerate(numbers)][::-1]  # the labels file in another order
    (tmp_path / "labels.csv").write_text("name,label\n" + "".join(rows))
    data = load_labelled(str(tmp_path / "s.fa"), tmp_path / "labels.csv")  # what finetune s.fa --labels reads
    assert data.classes == [0, 1] and all(type(c) is int for c in data.classes)
    assert data.label_names() == numbers
    assert read_fasta_with_labels(tmp_path / "s.fa", tmp_path / "labels.csv").label_names() == numbers
    ids = "".join(f"seq{i}\t{10 if n else 2}\n" for i, n in enumerate(numbers))
    (tmp_path / "ids.tsv").write_text("id\tclass\n" + ids)  # tab-separated, headed id and class
    assert load_labelled(str(tmp_path / "s.fa"), tmp_path / "ids.tsv").classes == [2, 10]  # numeric, not "10" < "2"
    model = DNAClassifier(**TINY).fit(data.sequences, data.label_names())
    assert model.classes_.tolist() == [0, 1] and model.classes_.dtype.kind == "i"
    predicted = model.predict(data.sequences)
    assert predicted.dtype.kind == "i" and set(predicted.tolist()) <= {0, 1}
    assert model.score(data.sequences, data.label_names()) == pytest.approx(np.mean(predicted == numbers))


@pytest.mark.skipif(not (pretrained_path() / "model.safetensors").exists(), reason="no shipped weights yet")
def test_starts_from_the_shipped_pretrained_model():
    sequences, labels = _toy()
    model = DNAClassifier(epochs=1, progress=False).fit(sequences, labels)
    card = json.loads((pretrained_path() / "config.json").read_text())
    assert model.model_.config.dim == card["model_config"]["dim"]


@pytest.fixture(scope="module")
def labelled_csv(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dna")
    sequences, labels = _toy(40)
    pd.DataFrame({"seq": sequences, "label": labels}).to_csv(folder / "toy.csv", index=False)
    return folder


def test_cli_finetune_cv_predict_evaluate(labelled_csv):
    folder = labelled_csv
    result = runner.invoke(
        app, ["finetune", str(folder / "toy.csv"), "--scratch", "--folds", "2", "--out", str(folder / "run")]
    )
    assert result.exit_code == 0, result.output
    assert "cross-validation" in result.output and "mean ± std" in result.output
    printed = " ".join(result.output.split())
    assert "Protocol: stratified 2-fold cross-validation - your data (" in printed and printed.count("-fold") == 1
    for fold in (1, 2):  # each fold says it starts (minutes of training bars, told apart)
        assert f"Fold {fold} of 2 (cross-validation): training on 20 sequences, scoring 20." in printed
    official = runner.invoke(app, ["finetune", str(folder / "toy.csv"), "--protocol", "official"])
    assert official.exit_code == 2 and "your own data: it has no official train/test split" in official.stderr
    metrics = json.loads((folder / "run" / "metrics.json").read_text())
    assert len(metrics["folds"]) == 2 and 0 <= metrics["accuracy"] <= 1
    predicted = runner.invoke(
        app,
        [
            "predict",
            "--model",
            str(folder / "run" / "model"),
            "--input",
            str(folder / "toy.csv"),
            "--out",
            str(folder / "pred.csv"),
        ],
    )
    assert predicted.exit_code == 0, predicted.output
    written = pd.read_csv(folder / "pred.csv")
    assert len(written) == 40 and list(written.columns) == ["name", "class", "p_at_rich", "p_gc_rich"]
    digits = (folder / "pred.csv").read_text().splitlines()[1].split(",")[2].lstrip("0.").replace("e", "")
    assert len(digits.split("-")[0]) <= 7  # the float32 network's digits, not float64's 17
    np.testing.assert_allclose(written[["p_at_rich", "p_gc_rich"]].sum(axis=1), 1.0, atol=1e-6)
    whole = runner.invoke(app, ["predict", "--model", str(folder / "run"), "--input", str(folder / "toy.csv")])
    assert whole.exit_code == 2 and "give that folder" in " ".join(whole.stderr.split())  # the run, not its model
    from genomics.pretrained import load_backbone_weights
    from titans_ts.errors import ConfigError

    with pytest.raises(ConfigError) as refused:  # a fine-tuned model is not a pretrained one: no such advice
        load_backbone_weights(folder / "run")
    assert "give that folder" not in str(refused.value)
    piped = runner.invoke(
        app,
        ["predict", "--model", str(folder / "run" / "model"), "--input", str(folder / "toy.csv")],
        env={"COLUMNS": "30"},
    )
    assert piped.exit_code == 0, piped.output
    from io import StringIO

    assert pd.read_csv(StringIO(piped.stdout)).equals(pd.read_csv(folder / "pred.csv"))  # whole, not wrapped
    evaluated = runner.invoke(
        app, ["evaluate", "--model", str(folder / "run" / "model"), "--dataset", str(folder / "toy.csv")]
    )
    assert evaluated.exit_code == 0 and "Accuracy" in evaluated.output


def test_refit_saves_a_model_trained_on_every_sequence_after_the_folds(labelled_csv):
    """Without --refit the saved model is fold 0's (20 of the 40 sequences here) and says so; with it, one more
    training on all 40 makes model/: the same network a DNAClassifier fitted on the whole file is."""
    folder = labelled_csv
    args = ["finetune", str(folder / "toy.csv"), "--scratch", "--folds", "2", "--epochs", "1", "--dim", "16"]
    plain = runner.invoke(app, [*args, "--out", str(folder / "fold0")], env={"COLUMNS": "300"})
    assert plain.exit_code == 0, plain.output
    saved = "model/: the first fold's model (fold 0 in metrics.json, 1 in the printed table; trained on 20 of the 40"
    assert saved in plain.output
    result = runner.invoke(app, [*args, "--refit", "--out", str(folder / "refit")], env={"COLUMNS": "300"})
    assert result.exit_code == 0, result.output
    assert "Refit: training the model to keep on all 40 sequences (less its validation split)." in result.output
    metrics = json.loads((folder / "refit" / "metrics.json").read_text())
    assert metrics["saved_model"].startswith("refit on all 40 sequences") and metrics["refit"]["sequences"] == 40
    assert metrics["complete"] is True
    assert [f["accuracy"] for f in metrics["folds"]] == [  # the folds are the same runs with or without the refit
        f["accuracy"] for f in json.loads((folder / "fold0" / "metrics.json").read_text())["folds"]
    ]
    saved = DNAClassifier.load(folder / "refit" / "model")
    params = {k: v for k, v in saved.get_params().items() if k not in ("checkpoint_dir", "checkpoint_minutes")}
    table = pd.read_csv(folder / "toy.csv")
    whole = DNAClassifier(**params, checkpoint_minutes=None).fit(table["seq"].tolist(), table["label"].tolist())
    probe = table["seq"].tolist()[:8]
    np.testing.assert_allclose(saved.predict_proba(probe), whole.predict_proba(probe), atol=1e-6)
    official = runner.invoke(app, [*args, "--refit", "--protocol", "official"])
    assert official.exit_code == 2 and "refit goes with cross-validation" in official.stderr


def _fit_interrupted_in(training: str):
    """DNAClassifier.fit as a Ctrl-C leaves it in the run's training named `training` (its checkpoint folder):
    trained, its history saying interrupted."""
    real_fit = DNAClassifier.fit

    def fit(self, *args, **kwargs):
        real_fit(self, *args, **kwargs)
        if str(self.checkpoint_dir).endswith(training):
            self.history_["stop_reason"] = "interrupted"
        return self

    return fit


def test_an_interrupted_refit_saves_no_model_and_says_the_run_is_incomplete(labelled_csv, monkeypatch):
    folder = labelled_csv
    monkeypatch.setattr(DNAClassifier, "fit", _fit_interrupted_in("all"))
    args = ["finetune", str(folder / "toy.csv"), "--scratch", "--folds", "2", "--epochs", "1", "--dim", "16"]
    result = runner.invoke(app, [*args, "--refit", "--out", str(folder / "cut")], env={"COLUMNS": "300"})
    assert result.exit_code == 130, result.output
    metrics = json.loads((folder / "cut" / "metrics.json").read_text())
    assert metrics["complete"] is False and "the refit on all sequences interrupted" in metrics["protocol"]
    assert metrics["saved_model"].startswith("none yet: the refit") and not (folder / "cut" / "model").exists()


def test_cli_bad_inputs(labelled_csv, tmp_path, monkeypatch):
    import genomic_benchmarks.loc2seq

    import genomics.data.tasks

    def offline(name, dest_path, **_):
        raise ConnectionError("Name or service not known")

    monkeypatch.setattr(genomic_benchmarks.loc2seq, "download_dataset", offline)  # no network in tests
    monkeypatch.setattr(genomics.data.tasks, "GENOMIC_BENCHMARKS_HOME", tmp_path / "gb")
    (tmp_path / "s.fa").write_text(">a\nACGT\n")
    (tmp_path / "t.tsv").write_text("seq\tlabel\nACGT\ta\n")
    (tmp_path / "t.fa").write_text("seq\tlabel\nACGT\ta\n")  # a table in a file named as FASTA
    (tmp_path / "l.csv").write_text("name,label\na,x\n")
    (tmp_path / "book.xlsx").write_bytes(b"PK\x03\x04\x14\x00\x06\x00")
    (tmp_path / "reads.fq").write_text("@r1\nACGT\n+\nIIII\n")
    cases = [
        (["finetune", "enhancer_con"], "Did you mean"),
        (["finetune", str(tmp_path / "s.fa")], "pass its labels"),
        (["finetune", str(tmp_path / "book.xlsx")], "book.xlsx: not a text FASTA/CSV file (it looks like a zip"),
        (["finetune", str(tmp_path / "reads.fq")], "this looks like FASTQ"),  # not "is FASTA: pass its labels"
        (
            ["finetune", "enhancer_cohn", "--protocol", "official"],
            "could not download the official split",
        ),
        (
            ["predict", "--model", str(tmp_path), "--input", str(tmp_path / "s.fa")],
            "not a saved DNAClassifier",
        ),
        (["finetune", "enhancer_cohn", "--stride", "2"], "add --scratch"),
        (["finetune", "enhancer_cohn", "--scratch", "--pretrained", str(tmp_path)], "give one of them"),
        (["finetune", "enhancer_cohn", "--labels", str(tmp_path / "l.csv")], "--labels goes with a FASTA file"),
        (["finetune", str(labelled_csv / "toy.csv"), "--labels", str(tmp_path / "l.csv")], "is a CSV, whose label"),
        (["finetune", str(tmp_path / "t.fa"), "--labels", str(tmp_path / "l.csv")], "a comma-separated .csv"),
        (["finetune", str(tmp_path / "t.tsv"), "--labels", str(tmp_path / "l.csv")], "is a tab-separated table, whose"),
        # a folder that is not a language model: the advice is the CLI's option, not pretrained=False
        (["finetune", "enhancer_cohn", "--pretrained", str(tmp_path)], "or pass --scratch to start from scratch"),
        (  # refused before the data is read: it failed in fold 1 and left the run's folder behind
            ["finetune", str(labelled_csv / "toy.csv"), "--pretrained", str(tmp_path), "--out", str(tmp_path / "o")],
            "is not a saved pretrained DNA language model",
        ),
    ]
    for args, message in cases:
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.stderr
    assert not (tmp_path / "o").exists()
    every = runner.invoke(app, ["finetune", str(labelled_csv / "toy.csv"), "--checkpoint-every", "0"])
    assert every.exit_code == 2 and "--checkpoint-every 0.0 (positive" in every.stderr  # not checkpoint_minutes=
    assert "Fold 1" not in every.stdout  # refused before the first fold, not in it


def test_cli_bad_files_get_one_line_and_lose_nothing(tmp_path):
    """Missing, empty or unreadable files (a .txt table or an --exclude file too, not read as unknown tasks), an
    output path that is a folder or the input itself, labels the model does not know, one class only, a window too
    short, folds the data cannot hold: exit 2, the file named, nothing written."""
    sequences, labels = _toy(30)
    DNAClassifier(**TINY).fit(sequences, labels).save(tmp_path / "model")
    model = str(tmp_path / "model")
    (tmp_path / "ok.fa").write_text(">a\nACGTACGT\n>b\nGGCCGGCC\n")
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "blank.csv").write_text("name,seq\na,ACGT\nb,\n")
    pd.DataFrame({"seq": sequences, "label": [i % 2 for i in range(30)]}).to_csv(tmp_path / "ints.csv", index=False)
    pd.DataFrame({"seq": sequences, "label": "enh"}).to_csv(tmp_path / "one.csv", index=False)
    (tmp_path / "folder").mkdir()
    original = (tmp_path / "ok.fa").read_text()
    missing = str(tmp_path / "none.fa")
    cases = [
        (["predict", "-m", model, "-i", missing], "none.fa does not exist"),
        (["predict", "-m", model, "-i", str(tmp_path / "empty.csv")], "empty.csv is empty"),
        (["predict", "-m", model, "-i", str(tmp_path / "blank.csv")], "blank.csv, sequence 2 ('b'): empty sequence"),
        (["predict", "-m", model, "-i", str(tmp_path / "ok.fa"), "--out", str(tmp_path / "folder")], "is a folder"),
        (
            ["predict", "-m", model, "-i", str(tmp_path / "ok.fa"), "--out", str(tmp_path / "ok.fa")],
            "input file itself",
        ),
        (["evaluate", "-m", model, "-d", str(tmp_path / "ok.fa"), "--labels", str(tmp_path / "no.csv")], "no.csv"),
        (["evaluate", "-m", model, "-d", str(tmp_path / "ints.csv")], "not among the model's classes"),
        (["finetune", str(tmp_path / "one.csv"), "--scratch", "--out", str(tmp_path / "run1")], "at least two"),
        (["pretrain", "--corpus", missing, "--out", str(tmp_path / "run2")], "does not exist"),
        (
            ["pretrain", "--corpus", str(tmp_path / "ok.fa"), "--window", "0", "--out", str(tmp_path / "run3")],
            "--window 0",
        ),
        (
            ["finetune", str(tmp_path / "ints.csv"), "--scratch", "--folds", "1", "--out", str(tmp_path / "run4")],
            "folds must be >= 2",
        ),
        (
            ["finetune", str(tmp_path / "ints.csv"), "--scratch", "--folds", "30", "--out", str(tmp_path / "run5")],
            "fewer sequences than --folds 30",
        ),
        (["finetune", str(tmp_path / "mine.txt"), "--out", str(tmp_path / "run6")], "mine.txt does not exist"),
        (  # an unfinished run was resumed, --overwrite unsaid
            ["finetune", str(tmp_path / "ints.csv"), "--resume", "--overwrite", "--out", str(tmp_path / "run7")],
            "give one of them",
        ),
        # a shape a scratch model cannot take: refused before fold 1 started and left a run folder behind
        (
            ["finetune", str(tmp_path / "ints.csv"), "--scratch", "--stride", "0", "--out", str(tmp_path / "run8")],
            "--stride 0",
        ),
        (
            ["finetune", str(tmp_path / "ints.csv"), "--scratch", "--block", "x", "--out", str(tmp_path / "run9")],
            "--block x",
        ),
        (
            ["pretrain", "--corpus", str(tmp_path / "ok.fa"), "--exclude", "gone.csv", "--out", str(tmp_path / "run7")],
            "gone.csv does not exist",
        ),
    ]
    for args, message in cases:
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.stderr and "Traceback" not in result.output, (args, result.stderr)
    assert (tmp_path / "ok.fa").read_text() == original and not any((tmp_path / "folder").iterdir())
    assert not any((tmp_path / f"run{i}").exists() for i in range(1, 10))  # refused settings write no run folder


def test_a_pretrained_folder_given_by_a_relative_path_is_saved_by_its_absolute_one(monkeypatch, tmp_path):
    """--pretrained runs/lm was kept as given: the saved model, refitted from another folder, could not find it."""
    import genomics.api as api

    asked = {}
    monkeypatch.setattr(api, "finetune", lambda dataset, **options: asked.update(options))
    monkeypatch.chdir(tmp_path)
    api.finetune_chosen("enhancer_cohn", pretrained=Path("runs/lm"))
    assert asked["pretrained"] == str(tmp_path.resolve() / "runs" / "lm")


def test_shaping_a_pretrained_model_is_refused_by_the_library_and_the_cli():
    from genomics.api import finetune_chosen
    from titans_ts.errors import ConfigError

    message = "--stem-kernel shapes a new model: add --scratch (a pretrained model brings its own architecture)."
    # before any work: the task name is not even looked up
    for pretrained in (None, "some/folder"):
        with pytest.raises(ConfigError) as raised:
            finetune_chosen("no_such_task", pretrained=pretrained, stem_kernel=5, stride=2)
        assert str(raised.value) == message  # the first architecture option given is named
    result = runner.invoke(app, ["finetune", "no_such_task", "--stride", "2", "--stem-kernel", "5"])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == f"error: {message}"
    # the estimator too: a shape given beside a pretrained backbone was ignored without a word
    sequences, labels = _toy(20)
    for params in ({"dim": 32, "layers": 1}, {"pretrained": "some/folder", "stride": 4}):
        with pytest.raises(ConfigError, match=r"shapes a new model, but pretrained=.*pass pretrained=False"):
            DNAClassifier(**params, epochs=1).fit(sequences, labels)
    with pytest.raises(ConfigError, match=r"^dim=32, layers=1: shapes"):
        DNAClassifier(dim=32, layers=1).check_params()
    DNAClassifier(architecture="transformer", dim=32, layers=1, heads=2).check_params()  # baselines: from scratch


def test_a_shape_that_says_what_the_pretrained_folder_has_is_no_conflict(tmp_path):
    """DNAClassifier(pretrained=a folder of dim 16, dim=16) was refused as shaping a new model, where the shape
    was the folder's own; another shape is refused naming the folder's."""
    import json

    from titans_ts.errors import ConfigError

    (tmp_path / "lm").mkdir()
    saved = {"model_config": {"dim": 16, "layers": 1, "heads": 2, "stride": 8}}
    (tmp_path / "lm" / "config.json").write_text(json.dumps(saved))
    DNAClassifier(pretrained=str(tmp_path / "lm"), dim=16, layers=1, heads=2).check_params()
    (tmp_path / "stopped" / "checkpoints").mkdir(parents=True)  # a pretraining killed before it saved its model
    with pytest.raises(ConfigError, match=r"stopped before it saved a model: continue it with .*--resume"):
        load_backbone_weights(tmp_path / "stopped")
    with pytest.raises(ConfigError, match=r"^dim=32: shapes a new model, .* its own architecture \(dim=16\)"):
        DNAClassifier(pretrained=str(tmp_path / "lm"), dim=32, layers=1).check_params()


def test_cli_scratch_architecture_and_recipe_options(labelled_csv):
    folder = labelled_csv
    args = ["finetune", str(folder / "toy.csv"), "--scratch", "--folds", "2", "--out", str(folder / "ablation")]
    args += ["--dim", "16", "--layers", "0", "--stem-kernel", "5", "--stride", "2"]
    args += ["--epochs", "1", "--train-crop", "0"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    params = json.loads((folder / "ablation" / "metrics.json").read_text())["params"]
    assert params | {"dim": 16, "layers": 0, "stem_kernel": 5, "stride": 2, "epochs": 1, "train_crop": None} == params
    assert "lr" not in params  # not given: the classifier's own default applies
    config = json.loads((folder / "ablation" / "model" / "config.json").read_text())
    assert (config["model_config"]["layers"], config["model_config"]["stride"]) == (0, 2)


def test_cli_datasets_lists_tasks():
    result = runner.invoke(app, ["datasets"], env={"COLUMNS": "200"})
    assert result.exit_code == 0 and "human_enhancers_cohn" in result.output
    legend = "test (the bundled test split: the default protocol cross-validates on it)"
    assert legend in " ".join(result.output.split())
    narrow = runner.invoke(app, ["datasets"], env={"COLUMNS": "80"})  # every name whole on its line: never cut or split
    names = {"human_ensembl_regulatory", "enhancer_cohn", "nontata_promoters", "ensembl_regulatory"}
    assert names <= {word for line in narrow.output.splitlines() for word in line.split()}, narrow.output


@pytest.mark.parametrize("architecture", ["cnn", "transformer"])
def test_baseline_networks_in_the_same_harness(architecture, tmp_path):
    sequences, labels = _toy()
    model = DNAClassifier(
        architecture=architecture, pretrained=False, dim=16, layers=1, heads=2, epochs=1, progress=False
    ).fit(sequences, labels)
    assert model.predict_proba(sequences).shape == (60, 2)
    model.save(tmp_path / "m")
    np.testing.assert_array_equal(
        DNAClassifier.load(tmp_path / "m").predict_proba(sequences), model.predict_proba(sequences)
    )


def test_kmer_logistic_regression_baseline():
    from genomics.baselines import KmerLogisticRegression

    sequences, labels = _toy(80)
    model = KmerLogisticRegression(k=3).fit(sequences, labels)
    assert model.score(sequences, labels) > 0.8
    assert list(model.classes_) == ["at_rich", "gc_rich"]


def test_strand_average_makes_predictions_strand_symmetric():
    from genomics.tokenizer import DNATokenizer, reverse_complement_ids

    sequences, labels = _toy()
    model = DNAClassifier(**TINY, train_crop=24).fit(sequences, labels)
    tok = DNATokenizer()
    other_strand = [tok.decode(reverse_complement_ids(tok.encode(s))) for s in sequences]
    np.testing.assert_allclose(model.predict_proba(other_strand), model.predict_proba(sequences), atol=1e-6)
    one_strand = clone(model).set_params(strand_average=False)
    one_strand.model_, one_strand.classes_ = model.model_, model.classes_
    assert not np.allclose(one_strand.predict_proba(other_strand), one_strand.predict_proba(sequences), atol=1e-6)


def test_a_loaded_model_is_not_tied_to_the_run_folder_that_saved_it(tmp_path):
    """The saving run's checkpoint_dir is not the model's: a loaded model fits again (twice) without writing
    into, or being refused by, the old run's checkpoints."""
    from sklearn.base import clone

    sequences, labels = _toy(30)
    run = tmp_path / "run" / "checkpoints"
    DNAClassifier(**TINY, checkpoint_dir=str(run)).fit(sequences, labels).save(tmp_path / "model")
    before = sorted(p.name for p in run.rglob("*"))
    loaded = DNAClassifier.load(tmp_path / "model")
    assert loaded.checkpoint_dir is None
    for _ in range(2):
        clone(loaded).fit(sequences, labels)
    assert sorted(p.name for p in run.rglob("*")) == before


def test_an_interrupted_cv_run_says_it_is_incomplete(labelled_csv, monkeypatch):
    """Ctrl-C during fold 2 of 2: the result is not reported as the k-fold score (no std of one fold), metrics.json
    says it is incomplete, and the CLI exits 130 with the finished folds' mean labelled as such."""
    folder = labelled_csv
    real_fit = DNAClassifier.fit
    monkeypatch.setattr(DNAClassifier, "fit", _fit_interrupted_in("fold1"))
    args = ["finetune", str(folder / "toy.csv"), "--scratch", "--dim", "16", "--layers", "1", "--epochs", "1"]
    result = runner.invoke(app, [*args, "--folds", "2", "--out", str(folder / "stopped")], env={"COLUMNS": "200"})
    assert result.exit_code == 130, result.output
    assert "interrupted with 1 of 2 folds finished (--resume finishes it)" in result.output
    assert "finished folds" in result.output and "mean ± std" not in result.output
    metrics = json.loads((folder / "stopped" / "metrics.json").read_text())
    assert metrics["complete"] is False and metrics["accuracy_std"] is None
    assert metrics["accuracy"] == metrics["folds"][0]["accuracy"]

    def fit_stopped_before_fold1_validated(self, *args, **kwargs):
        if str(self.checkpoint_dir).endswith("fold1"):
            raise KeyboardInterrupt("training was interrupted before its first validated epoch: nothing to keep")
        return real_fit(self, *args, **kwargs)

    monkeypatch.setattr(DNAClassifier, "fit", fit_stopped_before_fold1_validated)
    result = runner.invoke(app, [*args, "--folds", "2", "--out", str(folder / "early")], env={"COLUMNS": "300"})
    said = " ".join(result.output.split())  # "nothing to keep" alone hid the finished fold 0
    assert result.exit_code == 130 and "(fold 2 of 2; the 1 finished fold(s) are kept in" in said, said
    assert "the same command with --resume goes on" in said

    def fit_stopped_before_fold0_validated(self, *args, **kwargs):
        raise KeyboardInterrupt("training was interrupted before its first validated epoch: nothing to keep")

    monkeypatch.setattr(DNAClassifier, "fit", fit_stopped_before_fold0_validated)
    result = runner.invoke(app, [*args, "--folds", "2", "--out", str(folder / "none")], env={"COLUMNS": "300"})
    said = " ".join(result.output.split())  # it said --resume goes on, which then found nothing to resume
    assert result.exit_code == 130 and "(fold 1 of 2; no fold had finished)" in said and "--resume" not in said, said
    assert not (folder / "none").exists()  # no empty run folder left behind
    monkeypatch.setattr(DNAClassifier, "fit", fit_stopped_before_fold1_validated)

    # a resume with another file, other folds or other settings kept fold 0 of the first run as its own
    monkeypatch.setattr(DNAClassifier, "fit", real_fit)
    pd.read_csv(folder / "toy.csv").iloc[:-4].to_csv(folder / "other.csv", index=False)
    early = ["--out", str(folder / "early"), "--resume"]
    for changed, named in (
        (["--folds", "3"], "folds: 2 then, 3 now"),
        (["--folds", "2", "--epochs", "2"], "epochs: 1 then, 2 now"),
        (["--folds", "2", "--epochs", "1", "--refit"], "refit: False then, True now"),
    ):
        refused = runner.invoke(app, [*args[:-2], *changed, *early], env={"COLUMNS": "300"})
        said = " ".join(refused.output.split())
        assert refused.exit_code == 2 and "with other data or settings than it was started with" in said, said
        assert named in said
    other = [a if a != str(folder / "toy.csv") else str(folder / "other.csv") for a in args]
    refused = runner.invoke(app, [*other, "--folds", "2", *early], env={"COLUMNS": "300"})
    assert refused.exit_code == 2 and "'dataset': 'toy.csv'" not in refused.output  # named by what differs
    assert "dataset: 'toy.csv' then, 'other.csv' now" in " ".join(refused.output.split())
    # the default batch size, now given: the same setting (the options typed were compared, not the settings)
    resumed = runner.invoke(app, [*args, "--folds", "2", "--batch-size", "32", *early], env={"COLUMNS": "300"})
    assert resumed.exit_code == 0, resumed.output
    assert " s (this resumed part). Saved to" in " ".join(resumed.output.split())  # not the whole run's time


def test_a_long_prediction_shows_progress_on_a_terminal_only(monkeypatch, capsys, tmp_path):
    """Reading many bases (both strands counted) shows a progress bar on stderr, but not on a pipe, with
    progress=False or for short work; the predictions are the same either way. predict_file (the CLI's)
    shows it whatever the model was saved with."""
    import genomics.classifier
    from genomics.saved import predict_file

    sequences, labels = _toy(30)
    model = DNAClassifier(**TINY).fit(sequences, labels)
    quiet = model.predict_proba(sequences)
    bases = 2 * sum(map(len, sequences))
    monkeypatch.setattr(genomics.classifier, "PROGRESS_BASES", bases)  # this input counts as long
    model.set_params(progress=True)
    capsys.readouterr()
    np.testing.assert_array_equal(model.predict_proba(sequences), quiet)
    assert capsys.readouterr().err == ""  # stderr is not a terminal here
    monkeypatch.setenv("FORCE_COLOR", "1")  # now it is
    np.testing.assert_array_equal(model.predict_proba(sequences), quiet)
    shown = capsys.readouterr().err
    assert "predicting 30 sequence(s)" in shown and "100%" in shown
    monkeypatch.setattr(genomics.classifier, "PROGRESS_BASES", bases + 1)
    model.predict_proba(sequences)
    model.set_params(progress=False)
    monkeypatch.setattr(genomics.classifier, "PROGRESS_BASES", bases)
    model.predict_proba(sequences)
    assert capsys.readouterr().err == ""
    model.save(tmp_path / "model")  # with progress=False
    pd.DataFrame({"seq": sequences}).to_csv(tmp_path / "in.csv", index=False)
    frame = predict_file(tmp_path / "model", tmp_path / "in.csv")
    np.testing.assert_array_equal(frame[["p_at_rich", "p_gc_rich"]].to_numpy(), quiet)
    assert "predicting 30 sequence(s)" in capsys.readouterr().err


def test_a_sequence_without_a_c_g_or_t_is_predicted_with_a_warning_naming_it(tmp_path):
    from io import StringIO

    from genomics.saved import predict_file
    from titans_ts.errors import UnknownBasesWarning

    sequences, labels = _toy(30)
    model = DNAClassifier(**TINY).fit(sequences, labels)
    model.save(tmp_path / "model")
    (tmp_path / "in.fa").write_text(">ok\nACGTACGGA\n>gap\nNNNNNNNN\n>codes\nRYKMnn\n>mostly_n\nNNNA\n")
    with pytest.warns(UnknownBasesWarning) as caught:
        frame = predict_file(tmp_path / "model", tmp_path / "in.fa")
    messages = [str(w.message) for w in caught if w.category is UnknownBasesWarning]
    assert len(messages) == 1 and "in.fa, sequences 2 ('gap'), 3 ('codes') hold no A, C, G or T" in messages[0]
    assert frame["name"].tolist() == ["ok", "gap", "codes", "mostly_n"]  # still predicted
    with pytest.warns(UnknownBasesWarning, match=r"^the input sequences, sequence 2 holds no A, C, G or T"):
        model.predict(["ACGT", "nnnn"])
    result = runner.invoke(app, ["predict", "-m", str(tmp_path / "model"), "-i", str(tmp_path / "in.fa")])
    assert result.exit_code == 0, result.output
    shown = " ".join(result.stderr.split())
    assert shown.count("warning:") == 1 and "sequences 2 ('gap'), 3 ('codes') hold no A, C, G or T" in shown
    assert len(pd.read_csv(StringIO(result.stdout))) == 4


def test_predict_replaces_an_existing_out_file_only_with_overwrite(tmp_path):
    """Refused before any work (the model is not even read), naming the file and --overwrite; nothing
    is touched; with --overwrite the file is replaced whole."""
    from genomics.saved import predict_file
    from titans_ts.errors import ConfigError

    sequences, labels = _toy(30)
    DNAClassifier(**TINY).fit(sequences, labels).save(tmp_path / "model")
    (tmp_path / "in.fa").write_text(">a\nACGTACGT\n")
    out = tmp_path / "pred.csv"
    out.write_text("keep me\n")
    args = ["predict", "-i", str(tmp_path / "in.fa"), "--out", str(out)]
    refused = runner.invoke(app, [*args, "-m", str(tmp_path / "no-such-model")])
    assert refused.exit_code == 2
    assert f"{out} already exists: pass --overwrite to replace it" in " ".join(refused.stderr.split())
    with pytest.raises(ConfigError, match="already exists: pass overwrite=True to replace it"):
        predict_file(tmp_path / "model", tmp_path / "in.fa", out=out)
    assert out.read_text() == "keep me\n"
    replaced = runner.invoke(app, [*args, "-m", str(tmp_path / "model"), "--overwrite"])
    assert replaced.exit_code == 0, replaced.output
    assert pd.read_csv(out)["name"].tolist() == ["a"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.fa", "model", "pred.csv"]  # no temporary file


def test_resuming_a_finished_run_is_refused_and_replaces_nothing(labelled_csv, tmp_path):
    """--resume on a run that finished (its model and metrics.json written, its checkpoints gone) would train
    again and replace them: it is refused in one line, as pretrain refuses it."""
    args = ["finetune", str(labelled_csv / "toy.csv"), "--scratch", "--dim", "16", "--layers", "1", "--epochs", "1"]
    args += ["--folds", "2", "--out", str(tmp_path / "done")]
    assert runner.invoke(app, args).exit_code == 0
    saved = {p: p.read_bytes() for p in (tmp_path / "done").rglob("*") if p.is_file()}
    result = runner.invoke(app, [*args, "--resume", "--seed", "1"])
    assert result.exit_code == 2, result.output
    message = " ".join(result.stderr.split())
    assert "nothing to resume: the run in" in message and "finished" in message and "--overwrite" in message
    assert {p: p.read_bytes() for p in (tmp_path / "done").rglob("*") if p.is_file()} == saved
    never = runner.invoke(app, [*args[:-1], str(tmp_path / "never"), "--resume"])  # no run there: each fold
    assert never.exit_code == 2 and "nothing to resume: no checkpoint in" in " ".join(never.stderr.split())
    assert not (tmp_path / "never").exists()  # started afresh without a word before


def test_evaluate_says_whether_the_score_is_held_out(labelled_csv, tmp_path):
    """A fine-tuned model records the data it was fine-tuned on; evaluate calls a score held out only when the
    model did not train on the data, and names the caveat when it cannot know."""
    from types import SimpleNamespace

    from genomics.saved import task_split_note

    args = ["finetune", str(labelled_csv / "toy.csv"), "--scratch", "--dim", "16", "--layers", "1", "--epochs", "1"]
    assert runner.invoke(app, [*args, "--folds", "2", "--out", str(tmp_path / "run")]).exit_code == 0
    model = str(tmp_path / "run" / "model")
    trained_on = json.loads((tmp_path / "run" / "model" / "config.json").read_text())["history"]["trained_on"]
    assert trained_on["dataset"] == "toy.csv" and trained_on["protocol"] == "cv"
    seen = runner.invoke(app, ["evaluate", "-m", model, "-d", str(labelled_csv / "toy.csv")], env={"COLUMNS": "300"})
    assert seen.exit_code == 0, seen.output
    assert "(your labelled file, the data this model was fine-tuned on: not a held-out score)" in seen.output
    sequences, labels = _toy(20, seed=1)
    pd.DataFrame({"seq": sequences, "label": labels}).to_csv(tmp_path / "other.csv", index=False)
    other = runner.invoke(app, ["evaluate", "-m", model, "-d", str(tmp_path / "other.csv")], env={"COLUMNS": "300"})
    assert "(your labelled file: a held-out score only if the model did not train on it)" in other.output
    bundled = SimpleNamespace(name="human_enhancers_cohn", protocol="cv")
    official = SimpleNamespace(name="human_enhancers_cohn", protocol="official")
    cohn_cv = {"dataset": "human_enhancers_cohn", "protocol": "cv"}
    # a file of the user's may hold sequences of the task's split (a sample of it): only the user knows
    assert task_split_note(bundled, trained_on) == (
        "the bundled split; the model was fine-tuned on toy.csv, not on this task: a held-out score only if toy.csv "
        "held none of these sequences"
    )
    assert task_split_note(official, trained_on).startswith("official test split; the model was fine-tuned on toy")
    assert "which the CV folds also trained on: not a held-out score" in task_split_note(bundled, cohn_cv)
    assert "which the CV folds also trained on" in task_split_note(official, cohn_cv)  # pooled train and test
    assert "held out" in task_split_note(bundled, cohn_cv | {"protocol": "official"})
    assert task_split_note(bundled, {}) == "the bundled split: a held-out score only if the model did not train on it"
    assert task_split_note(official, {}) == "official test split"


def test_predict_writes_out_in_the_format_its_name_says(tmp_path, monkeypatch):
    """dp.parquet and dp.csv.gz held CSV text: each name is now written as it says (any case), read back by pandas
    as what its name says; a name that says another format is refused before the model is read; a failed write
    leaves nothing. Names come from an id column as from a name column."""
    from genomics.saved import predict_file
    from titans_ts.errors import ConfigError

    sequences, labels = _toy(20)
    DNAClassifier(**TINY).fit(sequences, labels).save(tmp_path / "model")
    pd.DataFrame({"id": ["foo", "bar"], "seq": ["ACGTACGGA", "GGCCGGCC"]}).to_csv(tmp_path / "in.csv", index=False)
    args = ["predict", "-m", str(tmp_path / "model"), "-i", str(tmp_path / "in.csv"), "--out"]
    readers = {
        "dp.parquet": pd.read_parquet,
        "dp.PARQUET": pd.read_parquet,
        "dp.csv.gz": pd.read_csv,  # pandas infers gzip from the name
        "dp.tsv": lambda path: pd.read_csv(path, sep="\t"),
        "dp.tsv.gz": lambda path: pd.read_csv(path, sep="\t"),
        "dp.csv": pd.read_csv,
        "dp.txt": pd.read_csv,
    }
    for name, read in readers.items():
        result = runner.invoke(app, [*args, str(tmp_path / name)])
        assert result.exit_code == 0, result.output
        written = read(tmp_path / name)
        assert list(written.columns) == ["name", "class", "p_at_rich", "p_gc_rich"], name
        assert written["name"].tolist() == ["foo", "bar"], name
        np.testing.assert_allclose(written[["p_at_rich", "p_gc_rich"]].sum(axis=1), 1.0, atol=1e-6)
    assert (tmp_path / "dp.csv.gz").read_bytes()[:2] == b"\x1f\x8b" and b".tmp" not in (
        tmp_path / "dp.csv.gz"
    ).read_bytes()
    assert "\t" not in (tmp_path / "dp.csv").read_text() and "\t" in (tmp_path / "dp.tsv").read_text()
    refused = runner.invoke(app, [*args[:2], str(tmp_path / "no-such-model"), *args[3:], str(tmp_path / "dp.xlsx")])
    assert refused.exit_code == 2 and "not as .xlsx" in " ".join(refused.stderr.split())

    def broken(*_, **__):
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", broken)
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(OSError, match="disk full"):
        predict_file(tmp_path / "model", tmp_path / "in.csv", out=tmp_path / "new.parquet")
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # no new.parquet, no temporary file
    with pytest.raises(ConfigError, match="not as .parquet.gz"):
        predict_file(tmp_path / "model", tmp_path / "in.csv", out=tmp_path / "dp.parquet.gz")


def test_predict_warns_once_about_records_that_share_a_name(tmp_path):
    sequences, labels = _toy(20)
    DNAClassifier(**TINY).fit(sequences, labels).save(tmp_path / "model")
    (tmp_path / "dup.fa").write_text(">a\nACGTAC\n>b\nGGCCGG\n>a\nTTTTAA\n>b\nACACAC\n>c\nGGGGGG\n")
    result = runner.invoke(app, ["predict", "-m", str(tmp_path / "model"), "-i", str(tmp_path / "dup.fa")])
    assert result.exit_code == 0, result.output
    warning = " ".join(result.stderr.split())
    assert warning.count("warning:") == 1 and "2 name(s) belong to more than one sequence ('a', 'b')" in warning
    assert result.stdout.splitlines()[1].startswith("a,") and len(result.stdout.splitlines()) == 6


def test_what_scikit_learn_users_pass_works_and_a_fitted_shape_stays_fixed(tmp_path):
    """Boolean labels made classes_ an object array that sklearn's metrics called "unknown" (score raised,
    cross_val_score gave NaN); NumPy integers were refused, or saved as "16" that load could not read;
    set_params(pooling=...) after fit was ignored by predict and saved; a DataFrame was read as its column
    names; seed=None failed inside the loader."""
    from sklearn.model_selection import cross_val_score

    from titans_ts.errors import ConfigError, DataValidationError

    sequences, labels = _toy()
    rich = [label == "gc_rich" for label in labels]
    numpy_ints = {"dim": np.int64(16), "epochs": np.int64(1), "batch_size": np.int64(16), "seed": np.int64(1)}
    model = DNAClassifier(**{**TINY, **numpy_ints}, precision="32-true").fit(sequences, rich)
    assert model.classes_.dtype == bool and 0 <= model.score(sequences, rich) <= 1
    loaded = DNAClassifier.load(model.save(tmp_path / "m"))
    assert loaded.classes_.dtype == bool and (loaded.predict(sequences) == model.predict(sequences)).all()
    scores = cross_val_score(DNAClassifier(**TINY, precision="32-true"), sequences, np.array(rich), cv=2)
    assert not np.isnan(scores).any()
    model.set_params(pooling="mean_max")
    for call in (lambda: model.predict(sequences), lambda: model.save(tmp_path / "other")):
        with pytest.raises(ConfigError, match=r"settings changed since fit \(pooling: 'mean' at fit, 'mean_max' now\)"):
            call()
    model.set_params(pooling="mean", batch_size=8).predict(sequences)  # how it predicts may change
    with pytest.raises(DataValidationError, match=r"got a DataFrame of columns \['seq'\]: give the column of"):
        model.predict(pd.DataFrame({"seq": sequences}))
    table = pd.DataFrame({"id": range(len(sequences)), "Sequence": sequences, "label": labels})
    with pytest.raises(DataValidationError, match=r"e\.g\. df\['Sequence'\]\)"):  # it named df['id'], the first
        model.predict(table)
    with pytest.raises(ConfigError, match=r"seed=None \(a whole number"):
        DNAClassifier(**TINY, seed=None).fit(sequences, labels)


def test_labels_are_numbers_only_when_written_as_numbers_and_evaluate_matches_them_by_text(tmp_path):
    """Labels 01 and 1 became one class 1 (and a code lost its zeros); a file of 0/1 labels was refused by a model
    fitted on '0', '1' and 'other' ("[0, 1] are not among the model's classes ['0', '1', 'other']")."""
    from genomics.data.files import read_labels
    from genomics.saved import evaluate_saved

    assert read_labels(["0", "1", "2"]) == [0, 1, 2] and read_labels(["0.5", "NA", "2.5"]) == [0.5, None, 2.5]
    assert read_labels(["01", "1", "02"]) == ["01", "1", "02"] and read_labels(["1", "1.0"]) == ["1", "1.0"]
    sequences, _ = _toy(30)
    model = DNAClassifier(**TINY).fit(sequences, ["0", "1", "other"] * 10)
    model.save(tmp_path / "model")
    pd.DataFrame({"seq": sequences[:20], "label": [0, 1] * 10}).to_csv(tmp_path / "numbers.csv", index=False)
    scored = evaluate_saved(tmp_path / "model", str(tmp_path / "numbers.csv"))
    assert scored["accuracy"] == model.score(sequences[:20], ["0", "1"] * 10)


def test_max_length_reads_the_same_window_on_both_strands_and_says_what_it_cuts():
    """The forward strand read the first max_length bases, the reverse strand the last ones, without a word."""
    from titans_ts.errors import CutSequencesWarning

    sequences, labels = _toy(30)
    model = DNAClassifier(**TINY).fit(sequences, labels)
    long = sequences[0] * 3
    model.set_params(max_length=40)
    with pytest.warns(CutSequencesWarning, match="some sequences are longer than max_length=40"):
        cut = model.predict_proba([long])
    np.testing.assert_allclose(cut, model.set_params(max_length=None).predict_proba([long[:40]]), atol=1e-6)
    with pytest.warns(CutSequencesWarning, match="some training sequences are longer than max_length=35"):
        DNAClassifier(**{**TINY, "max_length": 35}).fit(sequences, labels)


def test_a_files_run_is_filed_under_its_stem(labelled_csv, tmp_path, monkeypatch):
    """runs/dna-toy.csv-lmm-s0 kept the file's extension, where titans-ts files runs/toy-lmm-h24-s0."""
    monkeypatch.chdir(tmp_path)
    args = ["finetune", str(labelled_csv / "toy.csv"), "--scratch", "--dim", "16", "--layers", "1", "--epochs", "1"]
    assert runner.invoke(app, [*args, "--folds", "2"]).exit_code == 0
    assert (tmp_path / "runs" / "dna-toy-lmm-s0" / "metrics.json").is_file()


def test_finetune_help_shows_the_classifiers_own_defaults():
    """The recipe options default to None (not given: the classifier's default); their help names that default,
    which must stay the classifier's."""
    import inspect

    defaults = inspect.signature(DNAClassifier).parameters
    shown = " ".join(runner.invoke(app, ["finetune", "--help"], env={"COLUMNS": "300"}).output.split())
    for option, name in (("epochs", "epochs"), ("batch-size", "batch_size"), ("lr", "lr")):
        assert f"[default: {defaults[name].default}]" in shown.split(f"--{option}", 1)[1].split("--", 1)[0], option
    assert defaults["train_crop"].default is None  # shown as 0: whole sequences
    assert "(0: whole sequences). [default: 0]" in shown


def test_a_compressed_file_cut_short_is_one_error_line(tmp_path):
    """A .csv.gz cut short ended with click's bare "Aborted." and exit 1 (gzip's EOFError read as a user's abort);
    the genomics readers now name the file, as the forecasting reader does."""
    import gzip

    rows = "\n".join(f"{'ACGT' * 30},{i % 2}" for i in range(400))
    whole = gzip.compress(f"seq,label\n{rows}\n".encode())
    (tmp_path / "cut.csv.gz").write_bytes(whole[: len(whole) // 2])
    result = runner.invoke(app, ["finetune", str(tmp_path / "cut.csv.gz"), "--scratch", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "a compressed input file is cut short or damaged" in result.stderr, result.output
    assert "cut.csv.gz: a compressed input" in " ".join(result.stderr.split())  # the file is named
    assert not (tmp_path / "o").exists()


def test_a_shape_no_model_can_take_is_refused_by_check_params_before_any_data_is_read():
    """A scratch model's stride, dim or block, an unknown architecture, a transformer's dim not a multiple of its
    heads: refused as the other settings are, not when the model was built (after the run folder was made)."""
    cases = [
        ({"pretrained": False, "stride": 0}, "stride"),
        ({"pretrained": False, "block": "xyz"}, "block='xyz'"),
        ({"architecture": "rnn"}, "architecture='rnn' (one of 'titans', 'cnn', 'transformer')"),
        ({"architecture": "transformer", "dim": 30, "heads": 4}, "dim=30 with heads=4"),
        ({"pretrained": False, "train_crop": 3}, "train_crop=3 (at least the stem's stride, 8 bases"),  # no token
    ]
    from titans_ts.errors import ConfigError

    for params, message in cases:
        with pytest.raises(ConfigError, match=re.escape(message)):
            DNAClassifier(**params).check_params()
    DNAClassifier(architecture="transformer", dim=32, heads=4).check_params()


def test_a_classifier_whose_training_was_interrupted_says_so_when_loaded(tmp_path):
    from titans_ts.errors import InterruptedTrainingWarning

    sequences = ["ACGTACGTAC" * 3, "TTTTGGGGCC" * 3] * 4
    model = DNAClassifier(**TINY).fit(sequences, [0, 1] * 4)
    model.history_ |= {"stop_reason": "interrupted", "epochs_run": 1, "best_epoch": 0}
    model.save(tmp_path / "model")
    with pytest.warns(InterruptedTrainingWarning, match=r"model: Training was interrupted in epoch 2"):
        loaded = DNAClassifier.load(tmp_path / "model")
    assert (loaded.predict(sequences) == model.predict(sequences)).all()
