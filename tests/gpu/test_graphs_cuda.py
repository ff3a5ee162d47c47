"""CUDA-graph training steps (titans_ts/training/graphs.py) captured for real: the replayed steps train the same
weights as the eager ones (dropout off: neither draws at random), the ragged last batch runs eagerly, and
a whole fit with the switch on runs through the graphs without a failed capture."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

pytestmark = pytest.mark.gpu
DEVICE = "cuda"


def _train_both_ways(model, batches, loss_of, mixed=False):
    from titans_ts.training.graphs import GraphedForward

    for layer in model.modules():  # nothing at random, so both ways compute the same steps
        if isinstance(layer, nn.Dropout):
            layer.p = 0.0
    eager, graphed = model.to(DEVICE).train(), copy.deepcopy(model).to(DEVICE).train()
    forward = GraphedForward(graphed)
    forward.install()
    optimizers = [torch.optim.AdamW(m.parameters(), lr=1e-3, fused=True) for m in (eager, graphed)]
    losses = []
    for inputs, target in batches:
        inputs, target = inputs.to(DEVICE), target.to(DEVICE)
        pair = []
        for network, optimizer in zip((eager, graphed), optimizers, strict=True):
            with torch.autocast(DEVICE, dtype=torch.bfloat16, enabled=mixed):  # as Lightning's bf16-mixed
                loss = loss_of(network(inputs).float(), target)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            pair.append(loss.item())
        losses.append(pair)
    forward.remove()
    assert forward.failure is None
    assert forward.replays == sum(len(b[0]) == len(batches[0][0]) for b in batches)
    rtol, atol = (1e-2, 1e-3) if mixed else (1e-4, 1e-5)  # bf16: kernels may round differently when captured
    for (name, a), b in zip(eager.named_parameters(), graphed.parameters(), strict=True):
        torch.testing.assert_close(b, a, rtol=rtol, atol=atol, msg=name)
    np.testing.assert_allclose(np.array(losses)[:, 1], np.array(losses)[:, 0], rtol=rtol)


@pytest.mark.parametrize("variant, tokens", [("lmm", "variate"), ("mac", "patch")])
def test_graphed_forecast_steps_train_the_same_weights(variant, tokens):
    from titans_ts.forecasting.model import ForecastConfig, build_model

    torch.manual_seed(0)
    config = ForecastConfig(lookback=96, horizon=96, channels=7, variant=variant, tokens=tokens)
    sizes = [32, 32, 32, 32, 20]  # the last, ragged batch runs eagerly
    batches = [(torch.randn(n, 96, 7), torch.randn(n, 96, 7)) for n in sizes]
    _train_both_ways(build_model(config), batches, nn.functional.mse_loss)


@pytest.mark.parametrize("mixed", [False, True], ids=["fp32", "bf16-mixed"])
def test_graphed_dna_classifier_steps_train_the_same_weights(mixed):
    from genomics.classifier import DNAClassifier

    torch.manual_seed(0)
    model = DNAClassifier(pretrained=False)._build(2)
    batches = [(torch.randint(7, 12, (16, 500)), torch.randint(0, 2, (16,))) for _ in range(4)]
    _train_both_ways(model, batches, nn.functional.cross_entropy, mixed)


def test_a_fit_with_the_switch_on_runs_through_the_graphs(monkeypatch):
    from titans_ts.forecasting import TitansForecaster
    from titans_ts.training import graphs

    monkeypatch.setenv(graphs.ENVIRONMENT_SWITCH, "1")
    steps = np.arange(1500)
    frame = pd.DataFrame({"a": np.sin(steps / 5.0), "b": np.cos(steps / 7.0), "c": np.sin(steps / 11.0)})
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="CUDA graph capture")
        forecaster = TitansForecaster(horizon=24, lookback=96, epochs=2, device="cuda", progress=False, fallback="off")
        forecaster.fit(frame)
    assert np.isfinite(forecaster.val_metrics_["mse"])
