"""Training survives a kill: checkpoints each epoch, `--resume` continues to the same numbers (issue 17)."""

import json
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch

from tests.data.helpers import write_series

ROOT = Path(__file__).resolve().parents[1]
ARGS = ["--lookback", "24", "--horizon", "12", "--dim", "16", "--layers", "1", "--epochs", "25", "--patience", "30"]


def _fit(csv, out, *extra):
    return [sys.executable, "-m", "cli.ts", "fit", "--dataset", str(csv), *ARGS, "--out", str(out), *extra]


def test_a_killed_fit_resumes_to_the_uninterrupted_runs_numbers(tmp_path):
    csv = tmp_path / "mine.csv"
    write_series(csv, rows=400, columns=3)
    full = subprocess.run(_fit(csv, tmp_path / "full"), cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert full.returncode == 0, full.stderr[-2000:]

    killed = subprocess.Popen(
        _fit(csv, tmp_path / "killed"), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    checkpoint = tmp_path / "killed" / "checkpoints" / "last.ckpt"
    deadline = time.time() + 300
    while not checkpoint.exists() and killed.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    killed.send_signal(signal.SIGKILL)
    assert killed.wait(timeout=60) == -signal.SIGKILL, "the run ended before its first checkpoint could be killed"
    assert checkpoint.exists() and not (tmp_path / "killed" / "metrics.json").exists()

    again = subprocess.run(_fit(csv, tmp_path / "killed"), cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert again.returncode == 2 and "--resume" in again.stderr  # not silently started over
    resumed = subprocess.run(
        _fit(csv, tmp_path / "killed", "--resume"), cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    first, second = (json.loads((tmp_path / name / "metrics.json").read_text()) for name in ("full", "killed"))
    assert second["test"] == first["test"] and second["val"] == first["val"]  # bit-identical on the CPU
    assert second["history"]["epochs_run"] == first["history"]["epochs_run"]
    assert not (tmp_path / "killed" / "checkpoints").exists()  # a finished run leaves no checkpoints

    other = subprocess.run(
        _fit(csv, tmp_path / "x", "--seed", "3", "--resume"), cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert other.returncode == 2 and "nothing to resume" in other.stderr


def test_a_resume_with_other_settings_is_refused_naming_them(tmp_path):
    from titans_ts.checkpointing import start_or_resume
    from titans_ts.errors import ConfigError

    folder = tmp_path / "ck"
    assert start_or_resume(folder, {"lr": 0.001, "dim": 16}, resume=False) is None
    (folder / "last.ckpt").write_bytes(b"x")
    with pytest.raises(ConfigError, match=r"lr: 0.001 in the checkpoint, 0.01 now"):
        start_or_resume(folder, {"lr": 0.01, "dim": 16}, resume=True)
    assert start_or_resume(folder, {"lr": 0.001, "dim": 16}, resume=True) == folder / "last.ckpt"
    with pytest.raises(ConfigError, match=r"fit\(\.\.\., resume=True\) \(CLI: --resume\)"):
        start_or_resume(folder, {"lr": 0.001, "dim": 16}, resume=False)
    for key, started, now, message in (  # a data fingerprint (count or shape, hash) in words
        ("data", "6948:eee0", "30:8c8e", r"the data: 6948 items in the checkpoint, 30 items now \(another file"),
        ("data", "(100, 3):ab", "(100, 3):cd", r"the data: other values of the same size \(shape \(100, 3\);"),
        # pretraining's leakage guard: was "evaluation: '12:3996' in the checkpoint, '15:790e' now", no way on
        ("evaluation", "12:3996", "15:790e", r"the evaluation sequences excluded from it: 12 items in the checkpoint, "
         r"15 items now \(another --exclude\)\. Resume with the settings it was started with, or start it again"),
    ):  # fmt: skip
        other = tmp_path / f"started_{key}_{len(started)}"
        start_or_resume(other, {key: started}, resume=False)
        (other / "last.ckpt").write_bytes(b"x")
        with pytest.raises(ConfigError, match=message):
            start_or_resume(other, {key: now}, resume=True)


def test_a_kill_while_writing_a_checkpoint_leaves_the_previous_one_whole(tmp_path, monkeypatch):
    from titans_ts.checkpointing import AtomicCheckpointIO

    io = AtomicCheckpointIO()
    path = tmp_path / "last.ckpt"
    io.save_checkpoint({"epoch": 1, "w": torch.arange(5)}, path)

    def dies_half_way(obj, target):
        Path(target).write_bytes(b"half a checkpoint")
        raise KeyboardInterrupt  # the process dies here

    monkeypatch.setattr(torch, "save", dies_half_way)
    with pytest.raises(KeyboardInterrupt):
        io.save_checkpoint({"epoch": 2, "w": torch.arange(9)}, path)
    monkeypatch.undo()
    assert io.load_checkpoint(path)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]  # no temporary file left behind


def test_a_killed_dna_finetune_resumes_to_the_uninterrupted_runs_numbers(tmp_path):
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    sequences = ["".join(rng.choice(list("ACGT"), int(rng.integers(40, 80)))) for _ in range(160)]
    labels = ["gc" if (s.count("G") + s.count("C")) / len(s) > 0.5 else "at" for s in sequences]
    pd.DataFrame({"seq": sequences, "label": labels}).to_csv(tmp_path / "toy.csv", index=False)

    def finetune(out, *extra):
        command = [sys.executable, "-m", "cli.dna", "finetune", str(tmp_path / "toy.csv"), "--scratch"]
        command += ["--dim", "16", "--layers", "1", "--folds", "2", "--epochs", "8", "--precision", "32-true"]
        return [*command, "--out", str(out), *extra]

    full = subprocess.run(finetune(tmp_path / "full"), cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert full.returncode == 0, full.stderr[-2000:]
    killed = subprocess.Popen(
        finetune(tmp_path / "killed"), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    checkpoint = tmp_path / "killed" / "checkpoints" / "fold1" / "last.ckpt"  # fold 0 done, fold 1 started
    deadline = time.time() + 300
    while not checkpoint.exists() and killed.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    killed.send_signal(signal.SIGKILL)
    assert killed.wait(timeout=60) == -signal.SIGKILL, "the run ended before it could be killed"
    assert (tmp_path / "killed" / "checkpoints" / "fold0.json").exists()
    resumed = subprocess.run(
        finetune(tmp_path / "killed", "--resume"), cwd=ROOT, capture_output=True, text=True, timeout=600
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    first, second = (json.loads((tmp_path / name / "metrics.json").read_text()) for name in ("full", "killed"))
    assert [f["accuracy"] for f in second["folds"]] == [f["accuracy"] for f in first["folds"]]
    assert [f["history"]["best_val_loss"] for f in second["folds"]] == [
        f["history"]["best_val_loss"] for f in first["folds"]
    ]
    assert not (tmp_path / "killed" / "checkpoints").exists()


def test_a_run_stopped_before_its_first_checkpoint_leaves_nothing_to_resume_and_a_new_start_takes_its_folder(
    tmp_path,
):
    """Ctrl-C before the first epoch ends leaves only out/checkpoints/settings.json: the next start neither asks
    for --resume (which would answer "nothing to resume") nor for --overwrite."""
    from titans_ts.checkpointing import prepare_run_folder, start_or_resume
    from titans_ts.errors import ConfigError

    out = tmp_path / "stopped"
    checkpoints = prepare_run_folder(out, overwrite=False, resume=False)
    start_or_resume(checkpoints, {"seed": 0}, resume=False)  # what a run records as it starts
    assert [p.name for p in out.rglob("*") if p.is_file()] == ["settings.json"]
    with pytest.raises(ConfigError, match="nothing to resume"):
        start_or_resume(checkpoints, {"seed": 0}, resume=True)
    assert prepare_run_folder(out, overwrite=False, resume=False) == checkpoints and not checkpoints.exists()

    for left, message in (("checkpoints/last.ckpt", "--resume"), ("checkpoints/fold0.json", "--resume")):
        start_or_resume(checkpoints, {"seed": 0}, resume=False)
        (out / left).write_text("{}")  # a checkpoint, a finished fold: resumable, kept
        with pytest.raises(ConfigError, match=message):
            prepare_run_folder(out, overwrite=False, resume=False)
        assert (out / left).exists()
        (out / left).unlink()
    (out / "model.safetensors").write_text("")  # anything beside the settings: a model is never replaced unasked
    with pytest.raises(ConfigError, match="already holds a model"):
        prepare_run_folder(out, overwrite=False, resume=False)


def test_a_resume_of_a_finished_run_says_it_finished(tmp_path):
    """A finished run keeps no checkpoints; --resume there says the run finished, not only that none is left."""
    from titans_ts.checkpointing import prepare_run_folder
    from titans_ts.errors import ConfigError

    (tmp_path / "metrics.json").write_text("{}")
    with pytest.raises(
        ConfigError, match=r"the run in .* finished .* To run it again, pass --overwrite instead of --resume"
    ):
        prepare_run_folder(tmp_path, overwrite=False, resume=True)  # the run folder, checked once, before its run
    with pytest.raises(ConfigError, match=r"drop --resume \(--overwrite then starts it again\)"):  # not "add it"
        prepare_run_folder(tmp_path, overwrite=True, resume=True)


def test_every_ddp_rank_refuses_a_run_folder_alike_and_only_rank_0_clears_it(tmp_path, monkeypatch):
    """The refusals ran on rank 0 alone: ranks that torchrun or srun started beside it went on to wait for it."""
    from titans_ts.checkpointing import prepare_run_folder
    from titans_ts.errors import ConfigError

    monkeypatch.setenv("RANK", "1")
    (tmp_path / "finished" / "metrics.json").parent.mkdir()
    (tmp_path / "finished" / "metrics.json").write_text("{}")
    for out, resume, message in (
        (tmp_path / "finished", True, "finished"),
        (tmp_path / "never_run", True, "nothing to resume"),
        (tmp_path / "finished", False, "already holds a model"),
    ):
        with pytest.raises(ConfigError, match=message):
            prepare_run_folder(out, overwrite=False, resume=resume)
    stale = tmp_path / "finished" / "checkpoints" / "last.ckpt"
    stale.parent.mkdir()
    stale.write_text("")
    prepare_run_folder(tmp_path / "finished", overwrite=True, resume=False)
    assert stale.exists()  # rank 0 clears it
    started = tmp_path / "started" / "checkpoints" / "settings.json"  # killed before its first checkpoint
    started.parent.mkdir(parents=True)
    started.write_text("{}")
    with pytest.raises(ConfigError, match="nothing to resume"):  # one rule with a new start, which takes it
        prepare_run_folder(tmp_path / "started", overwrite=False, resume=True)


def test_a_ctrl_c_before_the_first_checkpoint_leaves_no_checkpoint_folder(tmp_path, monkeypatch):
    """Nothing to resume and nothing kept: the settings the run recorded as it started go too."""
    from tests.data.helpers import write_series
    from titans_ts import TitansForecaster
    from titans_ts.forecasting.training import ForecastModule

    frame = write_series(tmp_path / "mine.csv", rows=300, columns=2).set_index("date")

    def interrupted(self, batch, batch_index):
        raise KeyboardInterrupt

    monkeypatch.setattr(ForecastModule, "training_step", interrupted)
    checkpoints = tmp_path / "out" / "checkpoints"
    model = TitansForecaster(horizon=12, lookback=24, dim=16, layers=1, epochs=2, progress=False)
    with pytest.raises(KeyboardInterrupt, match="before its first validated epoch"):
        model.set_params(checkpoint_dir=str(checkpoints)).fit(frame)
    assert not checkpoints.exists()


def test_a_fit_stopped_before_its_first_checkpoint_leaves_no_empty_model_folder(tmp_path, monkeypatch):
    """titans-ts fit, Ctrl-C in the first epoch: the --out folder it made was left empty (a model folder
    without a model); one holding an earlier model (--overwrite) keeps it."""
    from typer.testing import CliRunner

    from cli.ts import app
    from titans_ts.forecasting.training import ForecastModule

    write_series(tmp_path / "mine.csv", rows=300, columns=2)

    def interrupted(self, batch, batch_index):
        raise KeyboardInterrupt

    fit = ["fit", "--dataset", str(tmp_path / "mine.csv"), *ARGS[:7], "1"]
    runner = CliRunner()
    assert runner.invoke(app, [*fit, "--out", str(tmp_path / "kept")]).exit_code == 0
    monkeypatch.setattr(ForecastModule, "training_step", interrupted)
    result = runner.invoke(app, [*fit, "--out", str(tmp_path / "new")])
    assert result.exit_code == 130 and "nothing to keep" in result.output, result.output
    assert not (tmp_path / "new").exists()
    kept = sorted(path.name for path in (tmp_path / "kept").iterdir())
    assert runner.invoke(app, [*fit, "--out", str(tmp_path / "kept"), "--overwrite"]).exit_code == 130
    assert sorted(path.name for path in (tmp_path / "kept").iterdir()) == kept and "model.safetensors" in kept


def test_a_finished_fit_leaves_its_checkpoint_dir_to_the_next_fit(tmp_path):
    """A fit with checkpoint_dir that ended on its own was refused by the next fit (refit, cross-validation) as
    "an unfinished run"; it is replaced, and an interrupted run's checkpoints still are not."""
    import numpy as np

    from titans_ts import TitansForecaster
    from titans_ts.checkpointing import start_or_resume
    from titans_ts.errors import ConfigError

    values = np.sin(np.arange(300)[:, None] / 7 + np.arange(2)) + 0.1 * np.random.default_rng(0).normal(size=(300, 2))
    folder = tmp_path / "ck"
    model = TitansForecaster(lookback=24, horizon=6, dim=16, layers=1, epochs=1, checkpoint_dir=str(folder))
    model.set_params(progress=False).fit(values)
    assert (folder / "last.ckpt").exists() and json.loads((folder / "settings.json").read_text())["finished"]
    first = model.predict(values)
    assert np.array_equal(model.fit(values).predict(values), first)  # the same fit again, from scratch
    assert np.array_equal(model.fit(values, resume=True).predict(values), first)  # a resume gets the same model
    assert model.history_["resumed"] and "resumed" not in model.fit(values).history_  # its train_seconds: a part

    unfinished = tmp_path / "unfinished"
    start_or_resume(unfinished, {"seed": 0}, resume=False)
    (unfinished / "last.ckpt").write_bytes(b"x")
    with pytest.raises(ConfigError, match="unfinished run"):
        start_or_resume(unfinished, {"seed": 0}, resume=False)


class _LostAfterSaving(pl.Callback):
    """The machine is lost right after a `checkpoint_minutes` checkpoint written after batch `batch` of epoch
    `epoch`: part-way through the epoch (Lightning writes timed checkpoints at a batch's end, as here)."""

    def __init__(self, folder, epoch: int, batch: int):
        self.folder, self.epoch, self.batch = Path(folder), epoch, batch

    def on_train_batch_end(self, trainer, module, outputs, batch, index):
        if (trainer.current_epoch, index) == (self.epoch, self.batch):
            trainer.save_checkpoint(self.folder / "timed.ckpt")
            raise _Lost


class _Lost(Exception):
    pass


def _lose_after(monkeypatch, epoch: int, batch: int) -> None:
    """The next fit with a checkpoint folder stops as _LostAfterSaving says (taken back by `monkeypatch.undo`)."""
    from titans_ts import checkpointing

    made = checkpointing.checkpoint_callbacks
    lost = lambda folder, minutes=None: [*made(folder, minutes), _LostAfterSaving(folder, epoch, batch)]  # noqa: E731
    monkeypatch.setattr(checkpointing, "checkpoint_callbacks", lost)


@pytest.mark.parametrize("batch", [0, 4, 7])  # 8 batches an epoch: the first, one in the middle, the last
def test_a_fit_resumed_from_a_checkpoint_saved_part_way_through_an_epoch_is_bit_identical(tmp_path, monkeypatch, batch):
    import numpy as np
    import pandas as pd

    from titans_ts import TitansForecaster

    rng = np.random.default_rng(0)
    steps = np.arange(400)[:, None]
    frame = pd.DataFrame(
        np.sin(2 * np.pi * steps / [24, 12, 48]) + 0.3 * rng.normal(size=(400, 3)),
        index=pd.date_range("2024-01-01", periods=400, freq="h"),
        columns=["a", "b", "OT"],
    )
    options = dict(lookback=24, horizon=12, dim=16, layers=1, epochs=3, patience=5, progress=False, fallback="off")

    def fit(folder, resume=False):
        return TitansForecaster(**options, checkpoint_dir=str(tmp_path / folder)).fit(frame, resume=resume)

    full = fit("full")
    _lose_after(monkeypatch, epoch=1, batch=batch)
    with pytest.raises(_Lost):
        fit("lost")
    saved = torch.load(tmp_path / "lost" / "timed.ckpt", weights_only=False)
    (place,) = [state["loader_place"] for key, state in saved["callbacks"].items() if key.startswith("RngState")]
    assert place["taken"] == batch + 1  # part-way through the epoch: the loader's place was saved
    monkeypatch.undo()
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        resumed = fit("lost", resume=True)
    assert not [w for w in said if "not resumable" in str(w.message)]  # Lightning knows the loader resumes
    assert resumed.val_metrics_ == full.val_metrics_  # bit-identical on the CPU, as from an epoch's checkpoint
    assert resumed.history_["epochs_run"] == full.history_["epochs_run"] == 3
    assert resumed.predict(frame).equals(full.predict(frame))


def test_a_dna_fit_resumed_part_way_through_an_epoch_draws_the_same_augmented_views(tmp_path, monkeypatch):
    import numpy as np

    from genomics import DNAClassifier

    rng = np.random.default_rng(1)
    sequences = ["".join(rng.choice(list("ACGT"), int(rng.integers(40, 80)))) for _ in range(120)]
    labels = ["gc" if (s.count("G") + s.count("C")) / len(s) > 0.5 else "at" for s in sequences]
    options = dict(
        pretrained=False, dim=16, layers=1, epochs=3, patience=5, batch_size=16, train_crop=32, progress=False
    )

    def fit(folder, resume=False):
        model = DNAClassifier(**options, checkpoint_dir=str(tmp_path / folder), precision="32-true")
        return model.fit(sequences, labels, resume=resume)

    full = fit("full")
    _lose_after(monkeypatch, epoch=1, batch=2)
    with pytest.raises(_Lost):
        fit("lost")
    monkeypatch.undo()
    resumed = fit("lost", resume=True)  # random crops and strands: the skipped batches must not draw theirs again
    assert resumed.history_["best_val_loss"] == full.history_["best_val_loss"]
    assert np.array_equal(resumed.predict_proba(sequences), full.predict_proba(sequences))


def test_the_train_loader_skips_the_batches_trained_on_as_indices_and_keeps_the_epochs_order():
    from titans_ts.checkpointing import ResumableLoader

    class Counted(torch.utils.data.Dataset):
        def __init__(self):
            self.read = []

        def __len__(self):
            return 10

        def __getitem__(self, i):
            self.read.append(i)
            return i

    def loader(dataset):
        generator = torch.Generator().manual_seed(3)
        sampler = torch.utils.data.RandomSampler(range(10), generator=generator)
        return ResumableLoader(dataset, torch.utils.data.BatchSampler(sampler, 3, False), generator)

    uninterrupted = loader(Counted())
    first = [batch.tolist() for batch in uninterrupted]
    epoch = iter(uninterrupted)
    second_epoch = [next(epoch).tolist(), next(epoch).tolist()]
    place = uninterrupted.state_dict()  # saved after two batches of the second epoch
    rest = [batch.tolist() for batch in epoch]
    third = [batch.tolist() for batch in uninterrupted]

    dataset = Counted()
    resumed = loader(dataset)
    resumed.load_state_dict(place)
    assert [batch.tolist() for batch in resumed] == rest
    assert sorted(dataset.read) == sorted(i for batch in rest for i in batch)  # nothing loaded for the skipped
    assert [batch.tolist() for batch in resumed] == third  # the next epoch as the uninterrupted run's
    assert second_epoch != first[:2] and len(resumed) == 4

    finished = loader(Counted())
    finished.load_state_dict({"epoch_start": None, "taken": 4, "batches": 4})  # saved after an epoch's last batch
    assert [batch.tolist() for batch in finished] == first  # a whole new epoch, not an empty one
    other = loader(Counted())
    other.load_state_dict({**place, "batches": 7})  # saved by a run on another number of processes
    assert [batch.tolist() for batch in other] == first  # a new order (Lightning ends the epoch at its count)


def test_a_loader_without_a_generator_resumed_leaves_torchs_generator_where_the_checkpoint_left_it():
    from titans_ts.checkpointing import ResumableLoader

    loader = ResumableLoader(range(6), [[0, 1], [2, 3], [4, 5]])  # a fixed order (history mode's windows)
    loader.load_state_dict({"epoch_start": None, "taken": 1, "batches": 3})
    torch.manual_seed(0)
    expected = torch.rand(3)  # what dropout draws next in the uninterrupted run
    torch.manual_seed(0)  # the generator as the checkpoint restored it
    assert [batch.tolist() for batch in loader] == [[2, 3], [4, 5]]
    assert torch.equal(torch.rand(3), expected)  # the loader's own seed draw did not move it


def test_a_loader_place_saved_before_it_held_the_epochs_batch_count_is_still_read():
    from titans_ts.checkpointing import ResumableLoader

    loader = ResumableLoader(range(6), [[0, 1], [2, 3], [4, 5]])
    loader.load_state_dict({"epoch_start": None, "taken": 2})  # as 6da1ed2 wrote it: no "batches"
    assert [batch.tolist() for batch in loader] == [[4, 5]]


def _holding_the_lock(out: Path) -> subprocess.Popen:
    """Another process that holds `out`'s run lock until it is killed (a run writing into the folder)."""
    script = (
        "import sys, time; from titans_ts.checkpointing import run_folder_lock\n"
        f"with run_folder_lock({str(out)!r}):\n    print('held', flush=True); time.sleep(600)"
    )
    holder = subprocess.Popen([sys.executable, "-c", script], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_a_second_run_into_a_folder_another_run_is_writing_is_refused_and_a_killed_runs_lock_is_not(tmp_path):
    """The same fit started again in another terminal (or an overlapping job) with the same --out: both wrote
    checkpoints and a model into one folder, and a start with --overwrite cleared the running one's checkpoints.
    It is refused now, naming the run that holds the folder, with nothing in the folder touched; once that run
    is killed (no clean-up), the folder is free again, and a finished run leaves no lock file behind."""
    from typer.testing import CliRunner

    from cli.ts import app

    write_series(tmp_path / "mine.csv", rows=300, columns=2)
    out = tmp_path / "run"
    out.mkdir()
    (out / "checkpoints").mkdir()
    (out / "checkpoints" / "last.ckpt").write_text("the running fit's")
    holder = _holding_the_lock(out)
    fit = ["fit", "--dataset", str(tmp_path / "mine.csv"), *ARGS[:7], "1", "--out", str(out)]
    runner = CliRunner()
    try:
        for extra in ([], ["--overwrite"], ["--resume"]):
            result = runner.invoke(app, [*fit, *extra])
            assert result.exit_code == 2, result.output
            assert f"in use by another run (pid {holder.pid} on " in result.output, result.output
            assert (out / "checkpoints" / "last.ckpt").read_text() == "the running fit's"
    finally:
        holder.kill()
        holder.wait()
    assert (out / ".titans-run.lock").exists()  # killed: no clean-up, and the lock went with the process
    result = runner.invoke(app, [*fit, "--overwrite"])
    assert result.exit_code == 0, result.output
    assert not (out / ".titans-run.lock").exists() and (out / "model.safetensors").is_file()


def test_the_run_lock_refuses_a_second_holder_and_leaves_no_folder_it_made(tmp_path):
    from titans_ts.checkpointing import run_folder_lock
    from titans_ts.errors import ConfigError
    from titans_ts.io import started_only

    out = tmp_path / "new"
    with run_folder_lock(out):
        assert started_only(out)  # the lock alone is nothing a user could want back
        with pytest.raises(ConfigError, match=r"in use by another run \(pid \d+ on .*, since 20"):
            with run_folder_lock(out):
                pass
        (out / "metrics.json").write_text("{}")
    assert sorted(p.name for p in out.iterdir()) == ["metrics.json"]  # the run's files stay, the lock goes
    with pytest.raises(ValueError), run_folder_lock(tmp_path / "new" / "runs" / "refused"):
        raise ValueError  # a run that wrote nothing: the folders it made go with it
    assert sorted(p.name for p in out.iterdir()) == ["metrics.json"]
    with run_folder_lock(out):
        (out / ".titans-run.lock").unlink()  # another run's lock file in its place (this one's was removed)
        (out / ".titans-run.lock").write_text("pid 1 on elsewhere")
    assert (out / ".titans-run.lock").read_text() == "pid 1 on elsewhere"  # not this run's to remove


def test_titans_dna_finetune_and_pretrain_refuse_a_folder_another_run_is_writing(tmp_path):
    from genomics.api import finetune
    from genomics.pretraining import pretrain
    from titans_ts.errors import ConfigError

    (tmp_path / "mine.csv").write_text("seq,label\n" + "".join(f"{'ACGT' * 8},{i % 2}\n" for i in range(20)))
    (tmp_path / "corpus.fa").write_text(">a\n" + "ACGTTGCA" * 64 + "\n")
    out = tmp_path / "run"
    holder = _holding_the_lock(out)
    (out / "checkpoints").mkdir()
    (out / "checkpoints" / "fold0.json").write_text("{}")  # the running one's: not said as a run to resume
    try:
        with pytest.raises(ConfigError, match="in use by another run"):
            finetune(str(tmp_path / "mine.csv"), folds=2, out=out, pretrained=False, dim=8, layers=1, heads=2)
        with pytest.raises(ConfigError, match="in use by another run"):
            pretrain([str(tmp_path / "corpus.fa")], out, window=64)
    finally:
        holder.kill()
        holder.wait()
    assert sorted(path.name for path in out.iterdir()) == [".titans-run.lock", "checkpoints"]


def test_a_file_system_without_locks_runs_unguarded_not_refused(tmp_path, monkeypatch):
    """flock fails otherwise than 'held' on some network mounts (ENOLCK): that is no other run."""
    import errno
    import fcntl

    from titans_ts.checkpointing import run_folder_lock

    def no_locks(handle, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    with run_folder_lock(tmp_path / "run"):
        (tmp_path / "run" / "metrics.json").write_text("{}")
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["metrics.json"]
