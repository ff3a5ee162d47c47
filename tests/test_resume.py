"""Training survives a kill: checkpoints each epoch, `--resume` continues to the same numbers (issue 17)."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

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
    for started, now, message in (  # the data's fingerprint (count or shape, hash) in words
        ("6948:eee0", "30:8c8e", r"the data: 6948 items in the checkpoint, 30 items now \(another file"),
        ("(100, 3):ab", "(100, 3):cd", r"the data: other values of the same size \(shape \(100, 3\)\)"),
    ):
        other = tmp_path / f"started_{len(started)}"
        start_or_resume(other, {"data": started}, resume=False)
        (other / "last.ckpt").write_bytes(b"x")
        with pytest.raises(ConfigError, match=message):
            start_or_resume(other, {"data": now}, resume=True)


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
