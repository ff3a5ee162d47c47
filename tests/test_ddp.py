"""Lightning DDP on the CPU (gloo), two processes: training on both ranks, metrics counted once, one set of
files (issue 17). Each subprocess starts a second rank itself, as `titans-ts fit --devices 2` does."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.data.helpers import write_series

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="DDP on the CPU is tested on Linux")


def _run(command, timeout=300):
    done = subprocess.run([sys.executable, *command], cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, (done.stdout[-1500:], done.stderr[-3000:])
    return done.stdout + done.stderr


def test_a_forecaster_trains_on_two_ranks_and_scores_every_window_once(tmp_path):
    from titans_ts import TitansForecaster
    from titans_ts.data import load_dataset

    write_series(tmp_path / "mine.csv", rows=400, columns=3)
    out = tmp_path / "ddp"
    args = ["--lookback", "24", "--horizon", "12", "--dim", "16", "--layers", "1", "--epochs", "2", "--device", "cpu"]
    args += ["--fallback", "off"]  # the model is validated below, never a floor in its place
    log = _run(["-m", "cli.ts", "fit", "--dataset", str(tmp_path / "mine.csv"), *args, "--devices", "2"]
               + ["--strategy", "ddp", "--out", str(out)])  # fmt: skip
    assert "MEMBER: 2/2" in log and log.count("Fitting") == 1  # both ranks trained; one printed
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "forecast.png", "metrics.json", "model.safetensors"]
    assert json.loads((out / "metrics.json").read_text())["history"]["epochs_run"] == 2

    # one fixed model, validated by two ranks: every window once, the same metric as one process
    model = TitansForecaster.load(out)
    single = model.evaluate(load_dataset(tmp_path / "mine.csv"), split="val")["mse"]
    _run(["tests/ddp_validate.py", "forecaster", str(out), str(tmp_path / "mine.csv"), str(tmp_path / "v.json"), "2"])
    assert json.loads((tmp_path / "v.json").read_text())["val_mse"] == pytest.approx(single, abs=1e-6, rel=1e-6)


def test_a_dna_classifier_trains_on_two_ranks_and_scores_every_sequence_once(tmp_path):
    rng = np.random.default_rng(0)
    sequences = ["".join(rng.choice(list("ACGT"), int(rng.integers(30, 60)))) for _ in range(61)]
    labels = ["gc" if (s.count("G") + s.count("C")) / len(s) > 0.5 else "at" for s in sequences]
    pd.DataFrame({"seq": sequences, "label": labels}).to_csv(tmp_path / "toy.csv", index=False)
    out = tmp_path / "ddp"
    args = ["--scratch", "--dim", "16", "--layers", "1", "--folds", "2", "--epochs", "1", "--precision", "32-true"]
    log = _run(["-m", "cli.dna", "finetune", str(tmp_path / "toy.csv"), *args, "--device", "cpu", "--devices", "2"]
               + ["--strategy", "ddp", "--out", str(out)])  # fmt: skip
    assert "MEMBER: 2/2" in log
    assert sorted(p.name for p in out.iterdir()) == ["metrics.json", "model"]
    assert len(json.loads((out / "metrics.json").read_text())["folds"]) == 2

    results = []
    for devices in ("1", "2"):  # one fixed model, validated by one process and by two ranks
        written = tmp_path / f"v{devices}.json"
        _run(
            [
                "tests/ddp_validate.py",
                "classifier",
                str(out / "model"),
                str(tmp_path / "toy.csv"),
                str(written),
                devices,
            ]
        )
        results.append(json.loads(written.read_text())["val_loss"])
    assert results[1] == pytest.approx(results[0], abs=1e-6, rel=1e-6)
