"""The toolkit on CUDA: tiny `titans-ts fit/predict/evaluate` and `titans-dna finetune/predict` with
--device cuda, and models fitted and saved on CUDA that load and predict on the CPU with the same numbers."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from cli.dna import app as dna_app
from cli.ts import app as ts_app
from tests.data.helpers import write_series
from tests.forecasting.test_cli_ts import SMALL
from tests.genomics.test_classifier_cli import _toy

pytestmark = pytest.mark.gpu

runner = CliRunner()


def _ok(result):
    assert result.exit_code == 0, result.output + str(result.exception)
    return result


def test_titans_ts_fit_predict_evaluate_on_cuda(tmp_path):
    write_series(tmp_path / "mine.csv", rows=500, columns=3)
    data, model = str(tmp_path / "mine.csv"), str(tmp_path / "model")
    _ok(runner.invoke(ts_app, ["fit", "--dataset", data, *SMALL, "--device", "cuda", "--out", model]))
    metrics = json.loads((tmp_path / "model" / "metrics.json").read_text())
    assert metrics["device"] == "cuda" and metrics["params"]["device"] == "cuda"
    assert metrics["test"]["windows"] == 89 and np.isfinite(metrics["test"]["mse"])
    forecasts = {}
    for device in ("cuda", "cpu"):
        out = tmp_path / f"forecast_{device}.csv"
        _ok(
            runner.invoke(ts_app, ["predict", "--model", model, "--input", data, "--out", str(out), "--device", device])
        )
        forecasts[device] = pd.read_csv(out, index_col="date")
    assert len(forecasts["cuda"]) == 12
    np.testing.assert_allclose(forecasts["cpu"].to_numpy(), forecasts["cuda"].to_numpy(), rtol=1e-4, atol=1e-4)
    evaluated = _ok(runner.invoke(ts_app, ["evaluate", "--model", model, "--dataset", data, "--device", "cuda"]))
    assert "test" in evaluated.output


def test_titans_dna_finetune_predict_on_cuda(tmp_path):
    sequences, labels = _toy(40)
    pd.DataFrame({"seq": sequences, "label": labels}).to_csv(tmp_path / "toy.csv", index=False)
    run = tmp_path / "run"
    _ok(
        runner.invoke(
            dna_app,
            [
                "finetune",
                str(tmp_path / "toy.csv"),
                "--scratch",
                "--folds",
                "2",
                "--epochs",
                "1",
                "--device",
                "cuda",
                "--out",
                str(run),
            ],
        )  # fmt: skip
    )  # default precision bf16-mixed: CUDA autocast, the memory's state stays fp32
    metrics = json.loads((run / "metrics.json").read_text())
    assert [fold["history"]["device"] for fold in metrics["folds"]] == ["cuda", "cuda"]
    predictions = {}
    for device in ("cuda", "cpu"):
        out = tmp_path / f"pred_{device}.csv"
        args = ["predict", "--model", str(run / "model"), "--input", str(tmp_path / "toy.csv"), "--out", str(out)]
        _ok(runner.invoke(dna_app, [*args, "--device", device]))
        predictions[device] = pd.read_csv(out)
    assert len(predictions["cuda"]) == 40
    probabilities = [c for c in predictions["cuda"].columns if c.startswith("p")]
    # bf16 autocast differs between CPU and CUDA kernels: close, not equal
    np.testing.assert_allclose(predictions["cpu"][probabilities], predictions["cuda"][probabilities], atol=5e-2)


FORECAST_TINY = dict(horizon=12, lookback=24, dim=16, layers=1, heads=2, chunk_size=16, epochs=1, progress=False)
FORECAST_TINY |= dict(fallback="off")  # the network runs on CUDA here, never a floor in its place


def test_forecaster_fitted_on_cuda_loads_and_predicts_on_cpu(tmp_path):
    from titans_ts import TitansForecaster

    frame = write_series(tmp_path / "mine.csv", rows=400, columns=3)
    frame = frame.set_index(pd.DatetimeIndex(frame.pop("date"), name="date"))
    fitted = TitansForecaster(**FORECAST_TINY, device="cuda").fit(frame)
    assert fitted.history_["device"] == "cuda" and next(fitted.model_.parameters()).is_cuda
    on_cuda, metrics_cuda = fitted.predict(), fitted.evaluate()
    fitted.save(tmp_path / "model")
    loaded = TitansForecaster.load(tmp_path / "model", device="cpu")
    assert not next(loaded.model_.parameters()).is_cuda
    on_cpu = loaded.predict()
    pd.testing.assert_index_equal(on_cpu.index, on_cuda.index)
    np.testing.assert_allclose(on_cpu.to_numpy(), on_cuda.to_numpy(), rtol=1e-4, atol=1e-4)
    metrics_cpu = loaded.evaluate(frame)
    assert metrics_cpu["windows"] == metrics_cuda["windows"]
    assert metrics_cpu["mse"] == pytest.approx(metrics_cuda["mse"], rel=1e-4)
    # and back: the CPU-loaded model runs on CUDA again
    np.testing.assert_allclose(
        loaded.set_params(device="cuda").predict().to_numpy(), on_cuda.to_numpy(), rtol=1e-5, atol=1e-6
    )


def test_classifier_fitted_on_cuda_loads_and_predicts_on_cpu(tmp_path):
    from genomics import DNAClassifier

    sequences, labels = _toy(60)
    tiny = dict(pretrained=False, dim=16, layers=1, heads=2, epochs=1, batch_size=16, progress=False)
    fitted = DNAClassifier(**tiny, precision="32-true", device="cuda").fit(sequences, labels)
    assert fitted.history_["device"] == "cuda"
    on_cuda = fitted.predict_proba(sequences)
    assert isinstance(on_cuda, np.ndarray)
    fitted.save(tmp_path / "clf")
    loaded = DNAClassifier.load(tmp_path / "clf", device="cpu")
    np.testing.assert_allclose(loaded.predict_proba(sequences), on_cuda, rtol=1e-4, atol=1e-5)
