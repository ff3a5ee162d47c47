"""Faults a user meets, each with its fix (issue 17, item 6): one line and exit code 2, nothing lost."""

import json
import os
import stat

import pytest
from typer.testing import CliRunner

from cli.ts import app
from tests.data.helpers import write_series

runner = CliRunner()
SMALL = ["--lookback", "24", "--horizon", "12", "--dim", "16", "--layers", "1", "--epochs", "1"]


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    folder = tmp_path_factory.mktemp("faults")
    write_series(folder / "mine.csv", rows=300, columns=3)
    result = runner.invoke(app, ["fit", "--dataset", str(folder / "mine.csv"), *SMALL, "--out", str(folder / "m")])
    assert result.exit_code == 0, result.output
    return folder


def _copy(folder, tmp_path):
    import shutil

    return shutil.copytree(folder / "m", tmp_path / "m")


@pytest.mark.parametrize(
    "damage, message",
    [
        (
            lambda m: (m / "model.safetensors").write_bytes((m / "model.safetensors").read_bytes()[:100]),
            "cannot be read",
        ),
        (lambda m: (m / "model.safetensors").write_bytes(os.urandom(5000)), "cannot be read"),
        (lambda m: (m / "config.json").write_text((m / "config.json").read_text()[:50]), "is not valid JSON"),
        (
            lambda m: (m / "config.json").write_text(
                json.dumps({**json.loads((m / "config.json").read_text()), "model_config": {"dim": 8}})
            ),
            "do not describe the same forecaster",
        ),
    ],
    ids=["truncated-safetensors", "random-bytes", "truncated-json", "mismatched-config"],
)
def test_a_damaged_model_folder_is_one_line_and_exit_2(fitted, tmp_path, damage, message):
    model = _copy(fitted, tmp_path)
    damage(model)
    for command in (
        ["predict", "--model", str(model), "--input", str(fitted / "mine.csv")],
        ["evaluate", "--model", str(model), "--dataset", str(fitted / "mine.csv")],
    ):
        result = runner.invoke(app, command)
        assert result.exit_code == 2, result.output
        assert message in result.stderr and "Traceback" not in result.output
        assert len(result.stderr.strip().splitlines()) <= 2  # one message (rich may wrap a long path)


def test_impossible_settings_are_refused_before_any_work(tmp_path):
    for bad, message in (
        (["--epochs", "0"], "--epochs 0"),
        (["--lr", "-1"], "--lr -1"),
        (["--max-minutes", "0"], "--max-minutes 0"),
    ):
        out = tmp_path / "never"
        args = ["fit", "--dataset", str(tmp_path / "absent.csv"), "--lookback", "24", "--horizon", "12", *bad]
        result = runner.invoke(app, [*args, "--out", str(out)])
        assert result.exit_code == 2 and message in result.stderr, result.output  # not "file not found"
        assert not out.exists()


def test_an_existing_model_folder_needs_overwrite(fitted, tmp_path):
    model = _copy(fitted, tmp_path)
    before = (model / "model.safetensors").read_bytes()
    args = ["fit", "--dataset", str(fitted / "mine.csv"), *SMALL, "--out", str(model)]
    refused = runner.invoke(app, args)
    assert refused.exit_code == 2 and "--overwrite" in refused.stderr
    assert (model / "model.safetensors").read_bytes() == before
    replaced = runner.invoke(app, [*args, "--overwrite", "--seed", "1"])
    assert replaced.exit_code == 0, replaced.output
    assert (model / "model.safetensors").read_bytes() != before


def test_saved_files_follow_the_umask(fitted, tmp_path):
    """A shared model folder is readable by the team: modes come from the umask, not from mkstemp's 0600."""
    old = os.umask(0o022)
    try:
        args = [
            "fit",
            "--dataset",
            str(fitted / "mine.csv"),
            *SMALL,
            "--variant",
            "naive",
            "--out",
            str(tmp_path / "n"),
        ]
        assert runner.invoke(app, args).exit_code == 0
    finally:
        os.umask(old)
    for name in ("model.safetensors", "config.json", "metrics.json", "forecast.png"):
        mode = stat.S_IMODE((tmp_path / "n" / name).stat().st_mode)
        assert mode == 0o644, (name, oct(mode))


def test_debug_is_taken_anywhere_on_the_command_line(tmp_path):
    args = ["splits", str(tmp_path / "absent.csv")]
    assert runner.invoke(app, args).exit_code == 2  # one line
    for where in (["--debug", *args], [*args, "--debug"]):
        result = runner.invoke(app, where)
        assert result.exit_code == 1 and result.exception is not None  # the traceback, not "no such option"


@pytest.mark.parametrize(("stop", "code"), [("SIGINT", 130), ("SIGTERM", 143)])
def test_ctrl_c_after_a_validated_epoch_saves_the_best_model_and_exits_130(fitted, tmp_path, stop, code):
    """A real SIGINT to a real `titans-ts fit` process once its first epoch is validated, as a user's Ctrl-C;
    SIGTERM (a scheduler's stop) saves alike and exits 143, as a shell reports it (it exited 130)."""
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "m"
    command = [sys.executable, "-m", "cli.ts", "fit", "--dataset", str(fitted / "mine.csv"), *SMALL[:-1], "200"]
    # A child inherits an ignored SIGINT (something in the test process ignores it at the C level, unseen by
    # `signal.getsignal`); a user's terminal starts the command with the default, as this does.
    process = subprocess.Popen(
        [*command, "--patience", "300", "--out", str(out)],
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 300
    while not (out / "checkpoints" / "last.ckpt").exists() and process.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    process.send_signal(getattr(signal, stop))
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == code, (stdout[-2000:], stderr[-2000:])
    assert "interrupted" in stdout
    history = json.loads((out / "metrics.json").read_text())["history"]
    assert history["stop_reason"] == "interrupted" and history["epochs_run"] < 200
    assert (out / "model.safetensors").exists() and (out / "checkpoints" / "last.ckpt").exists()  # resumable


def test_a_ctrl_c_while_the_progress_bar_starts_still_stops_it_cleanly():
    """Lightning's rich progress makes its refresh thread, renders, then starts the thread, and its stop joins
    the thread: a Ctrl-C in between once left a never-started thread whose join raised RuntimeError over the
    KeyboardInterrupt (exit 1 and a traceback instead of the saved best model and exit 130)."""
    from lightning.pytorch.callbacks.progress.rich_progress import CustomProgress
    from rich.live import _RefreshThread

    from titans_ts.training.loop import LossProgressBar

    bar = LossProgressBar()
    bar.progress = CustomProgress(auto_refresh=True)
    bar.progress.live._refresh_thread = _RefreshThread(bar.progress.live, 10)  # made; the Ctrl-C came before start()
    thread = bar.progress.live._refresh_thread
    bar._stop_progress()  # joining the never-started thread raised here
    assert bar.progress.live._refresh_thread is None and bar._progress_stopped and thread.done.is_set()
