"""Pretraining: the leakage guard, continuing from saved weights, and fine-tuning from the result."""

import json
import math

import numpy as np
import pytest

from genomics.model import DNAModelConfig
from genomics.pretraining import pretrain
from titans_ts.errors import ConfigError

TINY = DNAModelConfig(dim=16, layers=1, heads=2, chunk_size=8, stem_kernel=5, stride=4, stem_kmer=2)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    rng = np.random.default_rng(0)
    folder = tmp_path_factory.mktemp("corpus")
    records = ["".join(rng.choice(list("ACGT"), 300)) for _ in range(24)]
    text = "".join(f">r{i}\n{s}\n" for i, s in enumerate(records))
    (folder / "c.fa").write_text(text)
    return folder / "c.fa", records


def test_pretrain_then_continue_then_finetune(corpus, tmp_path):
    path, records = corpus
    leaked = records[3][100:160]  # an evaluation sequence that shares 32-mers with record 3
    first = pretrain([path], tmp_path / "a", [leaked], config=TINY, window=128, batch_size=8, progress=False)
    assert first["leakage_filter"]["windows_dropped"] >= 1
    assert first["held_out_bits_per_base"] < math.log2(12)  # below an untrained guess over the vocabulary
    assert first["total_optimizer_steps"] == first["optimizer_steps"]
    second = pretrain([path], tmp_path / "b", [leaked], init=tmp_path / "a", window=128, batch_size=8, progress=False)
    assert second["held_out_windows"] == first["held_out_windows"]  # the same held-out split
    assert second["total_optimizer_steps"] == first["optimizer_steps"] + second["optimizer_steps"]
    assert second["continued_from"]["held_out_bits_per_base"] == first["held_out_bits_per_base"]
    assert second["model_config"] == TINY.to_dict()

    from genomics.classifier import DNAClassifier

    sequences = records[:20]
    labels = [i % 2 for i in range(20)]
    model = DNAClassifier(pretrained=str(tmp_path / "b"), epochs=1, batch_size=8, progress=False)
    model.fit(sequences, labels)
    assert model.model_.config == TINY
    # which pretrained weights it started from: the folder may later hold another model (a rerun with --overwrite)
    saved = json.loads((tmp_path / "b" / "config.json").read_text())
    provenance = model.history_["pretrained_from"]
    assert provenance["save_id"] == saved["save_id"] and provenance["path"] == str((tmp_path / "b").resolve())
    assert provenance["held_out_bits_per_base"] == second["held_out_bits_per_base"]
    assert DNAClassifier.load(model.save(tmp_path / "clf")).history_["pretrained_from"] == provenance
    # a pretraining stopped before it finished: fine-tuning from it says so, once for the folds that load it
    import warnings

    from titans_ts.errors import InterruptedTrainingWarning

    saved["stop_reason"] = saved["training"]["stop_reason"] = "interrupted"
    (tmp_path / "b" / "config.json").write_text(json.dumps(saved))
    with pytest.warns(InterruptedTrainingWarning, match=r"b: its pretraining was interrupted .*--resume") as said:
        for _ in range(2):
            DNAClassifier(pretrained=str(tmp_path / "b"), epochs=1, batch_size=8, progress=False).fit(sequences, labels)
    assert len([w for w in said if w.category is InterruptedTrainingWarning]) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error", InterruptedTrainingWarning)
        DNAClassifier(pretrained=str(tmp_path / "a"), epochs=1, batch_size=8, progress=False).fit(sequences, labels)


def test_continuing_needs_the_same_architecture(corpus, tmp_path):
    path, _ = corpus
    pretrain([path], tmp_path / "a", config=TINY, window=128, batch_size=8, progress=False, max_minutes=0.05)
    other = DNAModelConfig(dim=16, layers=1, heads=2, chunk_size=8, stem_kernel=3, stride=2, stem_kmer=2)
    with pytest.raises(ConfigError, match="different architecture"):
        pretrain([path], tmp_path / "b", config=other, init=tmp_path / "a", window=128, progress=False)


def test_a_killed_pretraining_resumes_to_the_same_model(corpus, tmp_path, monkeypatch):
    import lightning.pytorch as pl

    from titans_ts.training import loop as training  # where train_and_restore looks make_trainer up

    path, _ = corpus
    options = dict(config=TINY, window=128, batch_size=8, epochs=3, progress=False)
    whole = pretrain([path], tmp_path / "whole", **options)

    class Crash(pl.Callback):
        def on_train_epoch_start(self, trainer, module):
            if trainer.current_epoch == 2:
                raise RuntimeError("the machine went away")

    make_trainer = training.make_trainer
    monkeypatch.setattr(training, "make_trainer", lambda **kw: make_trainer(**kw, extra_callbacks=(Crash(),)))
    with pytest.raises(RuntimeError, match="went away"):
        pretrain([path], tmp_path / "cut", **options)
    monkeypatch.undo()
    assert (tmp_path / "cut" / "checkpoints" / "last.ckpt").is_file()
    with pytest.raises(ConfigError, match="--resume"):
        pretrain([path], tmp_path / "cut", **options)
    resumed = pretrain([path], tmp_path / "cut", resume=True, **options)
    assert resumed["held_out_bits_per_base"] == whole["held_out_bits_per_base"]
    assert resumed["resumed"] and not whole["resumed"]  # the CLI says its time is the resumed part's
    assert resumed["training"]["epochs_run"] == 3 and not (tmp_path / "cut" / "checkpoints").exists()
    # a finished pretraining (a model, no metrics.json) has nothing to resume: said so, with --overwrite
    with pytest.raises(ConfigError, match=r"nothing to resume: the run in .*cut finished.*--overwrite"):
        pretrain([path], tmp_path / "cut", resume=True, **options)


def test_pretraining_drops_what_the_excluded_tasks_hold(monkeypatch, tmp_path):
    import genomics.data.tasks
    from genomics import api
    from genomics.data import load_task

    monkeypatch.setattr(genomics.data.tasks, "GENOMIC_BENCHMARKS_HOME", tmp_path / "gb")  # only the bundled splits
    tasks = ["enhancer_cohn", "nontata_promoters"]
    expected = [s for task in tasks for s in load_task(task).labelled.sequences]
    assert api.leakage_sequences(tasks) == expected
    from titans_ts.errors import DatasetNotFoundError

    with pytest.raises(
        DatasetNotFoundError, match=r"'bogus'.*keep your own evaluation sequences out, give their file"
    ) as e:
        api.leakage_sequences(["bogus"])
    assert "label" not in str(e.value)  # the advice of a task to fine-tune on: labels are not needed here
    seen = {}
    monkeypatch.setattr(api.pretraining, "pretrain", lambda corpus, out, **options: seen.update(options) or {})
    api.pretrain(["c.fa"], tmp_path / "out", exclude=tasks[:1], window=64)
    assert seen == {"evaluation_sequences": expected[: len(load_task(tasks[0]).labelled)], "window": 64}


def test_with_the_official_split_on_disk_pretraining_drops_its_test_sequences_too(tmp_path):
    from genomics import api

    for split, rows in (("train", {"negative": ["AAAACCCC"], "positive": ["GGGGTTTT"]}),
                        ("test", {"negative": ["ACACACAC"], "positive": ["TGTGTGTG"]})):  # fmt: skip
        for label, sequences in rows.items():
            folder = tmp_path / "human_enhancers_cohn" / split / label
            folder.mkdir(parents=True)
            for i, sequence in enumerate(sequences):
                (folder / f"{i}.txt").write_text(sequence + "\n")
    held = api.leakage_sequences(["enhancer_cohn"], data_root=tmp_path)
    assert sorted(held) == ["AAAACCCC", "ACACACAC", "GGGGTTTT", "TGTGTGTG"]  # the test split is evaluation too
    (tmp_path / "mine.csv").write_text("Sequence,label\nCCCCGGGG,a\n")  # the user's own evaluation files
    (tmp_path / "mine.fa").write_text(">x\nTTTTAAAA\n")
    own = api.leakage_sequences([str(tmp_path / "mine.csv"), str(tmp_path / "mine.fa")], data_root=tmp_path)
    assert own == ["CCCCGGGG", "TTTTAAAA"]


def test_a_corpus_of_one_window_is_refused_before_any_folder_is_made(tmp_path):
    """One window is the held-out one and leaves none to train on: an error, not a saved untrained model with
    an infinite held-out score."""
    (tmp_path / "one.fa").write_text(">r\n" + "ACGT" * 50 + "\n")
    with pytest.raises(ConfigError, match=r"1 window\(s\) of up to 1024 bases .* needs at least 2.*shorter --window"):
        pretrain([tmp_path / "one.fa"], tmp_path / "out", config=TINY, progress=False)
    (tmp_path / "short.fa").write_text(">r\n" + "ACGT" * 20 + "\n")  # at the smallest window: no shorter one to give
    with pytest.raises(ConfigError, match=r"Give a longer corpus\.$"):
        pretrain([tmp_path / "short.fa"], tmp_path / "out", config=TINY, window=64, progress=False)
    # the same file twice: its windows held out and trained on at once (a score that said nothing)
    with pytest.raises(ConfigError, match=r"one\.fa is given twice as a corpus"):
        pretrain([tmp_path / "one.fa", tmp_path / "." / "one.fa"], tmp_path / "out", config=TINY, progress=False)
    assert not (tmp_path / "out").exists()


def test_an_interrupted_pretraining_exits_130_after_saving(tmp_path, monkeypatch):
    """Ctrl-C: the weights so far are saved and said, and the exit code is the shell's 130, as finetune's and
    titans-ts fit's (it was 0: a script could not tell it from a finished run)."""
    from typer.testing import CliRunner

    import genomics.api
    from cli.dna import app

    training = {"stop_reason": "interrupted", "epochs_run": 2}
    report = {"training": training, "leakage_filter": {"windows_dropped": 0}, "windows_total": 9, "resumed": True}
    report |= {"wall_seconds": 12.3}
    monkeypatch.setattr(genomics.api, "pretrain", lambda *a, **k: report | {"held_out_bits_per_base": 1.9})
    (tmp_path / "c.fa").write_text(">a\nACGT\n")
    result = CliRunner().invoke(app, ["pretrain", "--corpus", str(tmp_path / "c.fa"), "--out", str(tmp_path / "p")])
    assert result.exit_code == 130 and "interrupted in epoch 3 (2 epochs finished)" in result.output
    assert "12 s (this resumed part). Saved to" in result.output  # a resumed run's time is said to be its part's


def test_a_character_that_is_not_dna_is_named_by_file_record_and_position_before_any_work(tmp_path):
    """It was found while training ("sequence 1: character 'Z' at position 23", a shuffled window's count) and
    left a run folder behind."""
    from titans_ts.errors import SequenceError

    bases = "ACGT" * 50
    (tmp_path / "c.fa").write_text(f">first\n{bases}\n>empty\n>second\n{bases[:150]}\n{bases[150:160]}Z{bases[161:]}\n")
    with pytest.raises(SequenceError, match=r"c\.fa: record 'second': character 'Z' at position 161 is not"):
        pretrain([tmp_path / "c.fa"], tmp_path / "run", config=TINY, window=64, progress=False)
    assert not (tmp_path / "run").exists()


def test_a_gap_of_ns_gives_no_training_or_held_out_window(tmp_path):
    """A genome's assembly gaps (runs of N) were windows like any other, trained on and scored."""
    from genomics.pretraining import MIN_WINDOW, corpus_windows

    real = "ACGT" * 64
    (tmp_path / "g.fa").write_text(f">chr\n{real}{'N' * 512}{real[:200]}{'N' * 60}\n")
    windows = corpus_windows([tmp_path / "g.fa"], window=256)
    assert windows == [real, real[:200] + "N" * 56]  # the two windows of the gap are gone, and the Ns' tail
    assert all(len(w) - w.count("N") >= MIN_WINDOW for w in windows)


def test_an_rna_corpus_is_said_to_be_read_with_its_u_as_n(tmp_path):
    """A corpus written as RNA was pretrained with every U read as N, without a word (fine-tuning and predict
    warn of it)."""
    from genomics.pretraining import corpus_windows
    from titans_ts.errors import UracilWarning

    (tmp_path / "rna.fa").write_text(f">dna\n{'ACGT' * 32}\n>rna\n{'ACGU' * 32}\n")
    with pytest.warns(UracilWarning, match=r"rna\.fa: 1 record\(s\) hold U .* the first is 'rna'"):
        windows = corpus_windows([tmp_path / "rna.fa"], window=128)
    assert len(windows) == 2


def test_a_budget_that_validates_no_epoch_saves_no_model(corpus, tmp_path):
    """--max-minutes -1 saved an untrained model scored inf bits per base (exit 0); 0 trained without a budget."""
    path, _ = corpus
    options = dict(config=TINY, window=128, batch_size=8, progress=False)
    for minutes in (-1, 0, float("nan")):
        with pytest.raises(ConfigError, match=r"max_minutes=.* \(positive, or None for no budget\)"):
            pretrain([path], tmp_path / "bad", max_minutes=minutes, **options)
    with pytest.raises(ConfigError, match=r"checkpoint_minutes=0 \(positive"):
        pretrain([path], tmp_path / "bad", checkpoint_every=0, **options)
    for seed in (-1, 2**32):  # a traceback from NumPy or Lightning after the corpus was read
        with pytest.raises(ConfigError, match=r"seed=.* \(a whole number from 0 to 2\*\*32 - 1"):
            pretrain([path], tmp_path / "bad", seed=seed, **options)
    assert not (tmp_path / "bad").exists()  # refused before any folder is made
    with pytest.raises(ConfigError, match="before its first epoch was validated, so there is no held-out score"):
        pretrain([path], tmp_path / "short", max_minutes=1e-9, **options)
    assert not (tmp_path / "short" / "model.safetensors").exists()


def test_a_held_out_window_that_is_also_trained_on_is_left_out_of_the_score(corpus, tmp_path):
    """The corpus given as x.fa and x.fa.gz (refused only under one path twice): every held-out window was a
    training window too, and the held-out bits per base a training score, without a word."""
    import gzip
    import warnings

    from genomics.pretraining import split_corpus
    from titans_ts.errors import RepeatedWindowsWarning

    path, records = corpus
    packed = tmp_path / "c.fa.gz"
    packed.write_bytes(gzip.compress(path.read_bytes()))
    with pytest.raises(ConfigError, match=r"every held-out window .* is also a training window .*x\.fa and x\.fa\.gz"):
        pretrain([path, packed], tmp_path / "twice", config=TINY, window=64, progress=False)
    assert not (tmp_path / "twice" / "model.safetensors").exists()
    # a few records repeated: those held-out windows are left out, and said
    (tmp_path / "some.fa").write_text(path.read_text() + "".join(f">again{i}\n{records[i]}\n" for i in range(8)))
    *_, train, val = split_corpus([tmp_path / "some.fa"], 64, [], 32, 0.2, 0)
    assert val and not set(val) & set(train)
    with pytest.warns(RepeatedWindowsWarning, match=r"held-out window\(s\) are also training windows"):
        report = pretrain([tmp_path / "some.fa"], tmp_path / "some", config=TINY, window=64, held_out=0.2,
                          progress=False, max_minutes=0.05)  # fmt: skip
    assert report["held_out_repeats_dropped"] > 0 and report["held_out_windows"] == len(val)
    with warnings.catch_warnings():  # a corpus of distinct windows: nothing to say
        warnings.simplefilter("error", RepeatedWindowsWarning)
        assert (
            pretrain([path], tmp_path / "once", config=TINY, window=64, progress=False, max_minutes=0.05)[
                "held_out_repeats_dropped"
            ]
            == 0
        )
