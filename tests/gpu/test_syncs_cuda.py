"""The GPU side of tests/test_devices.py's host-sync guard: the same training and validation steps on CUDA with
torch's sync debug mode set to "error", so that any call that makes the host wait for the GPU raises. Each
step runs once before (cuBLAS handles, Triton compiles), then again under the mode."""

from __future__ import annotations

import warnings

import pytest
import torch

pytestmark = pytest.mark.gpu
DEVICE = "cuda"


def _steps_without_syncs(module, batch):
    from tests.test_devices import run_steps

    module = module.to(DEVICE)
    batch = tuple(part.to(DEVICE) for part in batch)
    run_steps(module, batch)  # warm-up
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        run_steps(module, batch)
    finally:
        torch.cuda.set_sync_debug_mode("default")


@pytest.mark.parametrize("variant, tokens", [("lmm", "variate"), ("mac", "patch")])
def test_forecast_steps_never_wait_for_the_gpu(variant, tokens):
    from titans_ts.forecasting.model import ForecastConfig, build_model
    from titans_ts.forecasting.training import ForecastModule

    config = ForecastConfig(lookback=96, horizon=96, channels=7, variant=variant, tokens=tokens)
    _steps_without_syncs(ForecastModule(build_model(config)), (torch.randn(32, 96, 7), torch.randn(32, 96, 7)))


def test_dna_classifier_steps_never_wait_for_the_gpu():
    from genomics.classifier import DNAClassifier
    from genomics.training import ClassifierModule

    model = DNAClassifier(pretrained=False)._build(2)
    _steps_without_syncs(ClassifierModule(model), (torch.randint(7, 12, (16, 500)), torch.randint(0, 2, (16,))))


def test_history_mode_training_steps_never_wait_for_the_gpu():
    """The carried-state training's steps (its validation, once an epoch, reads a few values back by design)."""
    from tests.forecasting.test_long_memory import model_of, series_of
    from titans_ts.data.protocol import split_borders
    from titans_ts.forecasting.long_memory_eval import split_origins
    from titans_ts.forecasting.segments import SegmentModule

    borders = split_borders(400, 8, 4)
    series, origins = series_of(400, dtype=torch.float32), split_origins(borders.val, 8, 4)
    model = model_of(dtype=torch.float32, error_tokens=True)
    module = SegmentModule(model, series, borders.train[1], origins, streams=2, bptt=2, seed=0).to(DEVICE).train()
    module.on_train_epoch_start()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # self.log without a Trainer attached only warns
        module.training_step(0, 0).backward()  # warm-up
        torch.cuda.synchronize()
        torch.cuda.set_sync_debug_mode("error")
        try:
            module.training_step(1, 1).backward()
        finally:
            torch.cuda.set_sync_debug_mode("default")
