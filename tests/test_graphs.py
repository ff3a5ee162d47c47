"""CUDA-graph steps (titans_ts/training/graphs.py) on the CPU: which calls replay the graph and which run
eagerly, what a failed capture leaves, and the plumbing through a real fit. The capture itself is faked
(torch has no CPU graphs): `fake_capture` mimics make_graphed_callables' contract (it calls the model, then
replaces its forward with one that serves the captured training state) and counts. tests/gpu/ captures for real.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from torch import nn

from tests.test_devices import tiny_forecaster, two_column_series
from titans_ts.training import graphs, loop
from titans_ts.training.graphs import CudaGraphSteps, GraphedForward


class FakeCapture:
    def __init__(self, fail: bool = False):
        self.fail, self.captured, self.replays = fail, [], 0

    def __call__(self, model, sample_args, allow_unused_input=False):
        assert "forward" not in vars(model), "the capture must see the model's own forward"
        assert not (torch.is_autocast_enabled("cpu") and torch.is_autocast_cache_enabled()), "autocast's cache is on"
        if self.fail:
            raise RuntimeError("operation not permitted when stream is capturing")
        with torch.random.fork_rng():  # it runs the model (warm-up, capture); here without drawing from the RNG
            model(*sample_args)
        self.captured.append(tuple(sample_args[0].shape))
        eager, training = model.forward, model.training

        def replay(*args):
            self.replays += 1
            return eager(*args)

        model.forward = lambda *args: replay(*args) if model.training == training else eager(*args)
        return model


def test_training_batches_of_the_captured_shape_replay_and_every_other_call_runs_eagerly():
    torch.manual_seed(0)
    model, capture = nn.Linear(3, 2), FakeCapture()
    keys = list(model.state_dict())
    forward = GraphedForward(model, capture)
    forward.install()
    full, last = torch.randn(8, 3), torch.randn(5, 3)
    expected = type(model).forward(model, full)
    assert torch.equal(model(full), expected)  # the first training batch: captured, then replayed
    model(full)
    model(last)  # a last batch of another size
    model(full.double().float().half().float())  # same shape and dtype: a replay
    with torch.no_grad():
        model(full)
    model.eval()
    model(full)
    model.train()
    assert capture.captured == [(8, 3)]
    assert capture.replays == forward.replays == 3
    assert list(model.state_dict()) == keys
    forward.remove()
    assert "forward" not in vars(model) and torch.equal(model(full), expected)


def test_a_failed_capture_warns_and_training_goes_on_eagerly():
    model, capture = nn.Linear(3, 2), FakeCapture(fail=True)
    forward = GraphedForward(model, capture)
    forward.install()
    x = torch.randn(4, 3)
    with pytest.warns(RuntimeWarning, match="capture of the training step failed.*stream is capturing"):
        y = model(x)
    assert torch.equal(y, type(model).forward(model, x))
    model(x)  # no second attempt, no second warning
    assert forward.failure and forward.replays == 0 and model.forward is forward


def test_calls_with_a_carried_state_run_eagerly():
    class Stateful(nn.Module):
        def forward(self, x, state=None):
            return x if state is None else x + state

    model, capture = Stateful(), FakeCapture()
    GraphedForward(model, capture).install()
    x = torch.randn(2, 3, requires_grad=True)
    assert torch.equal(model(x, x), 2 * x) and torch.equal(model(x, state=x), 2 * x)
    assert capture.captured == []


def test_a_fit_with_graphs_requested_trains_through_them_and_ends_as_without(monkeypatch):
    """Through the environment switch, make_trainer and the callback (its device check widened to the CPU):
    every full training batch replays (the first once captured), the ragged last one does not, the forward is restored
    after fit, and the fit equals one without graphs (the fake capture computes the same step)."""
    frame = two_column_series(700)
    plain = tiny_forecaster().fit(frame)
    capture = FakeCapture()
    monkeypatch.setenv(graphs.ENVIRONMENT_SWITCH, "1")
    monkeypatch.setattr(CudaGraphSteps, "DEVICE_TYPES", ("cpu",))
    monkeypatch.setattr(loop, "CudaGraphSteps", lambda: CudaGraphSteps(capture))
    graphed = tiny_forecaster().fit(frame)
    assert capture.captured == [(32, 32, 2)]
    steps, epochs = graphed.history_["steps"], graphed.history_["epochs_run"]
    # every batch but each epoch's ragged last one (the first: captured, then replayed)
    assert capture.replays == steps - epochs
    assert "forward" not in vars(graphed.model_)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        np.testing.assert_array_equal(graphed.predict(frame), plain.predict(frame))


@pytest.mark.parametrize(
    ("trainer_options", "reason"),
    [
        ({"precision": "16-mixed"}, "precision 16-mixed"),
        ({"precision": "bf16-mixed"}, None),
        ({}, "the model is on cpu"),
    ],
)
def test_graphs_stay_off_where_a_step_cannot_be_captured(trainer_options, reason):
    class Trainer:
        precision, world_size = trainer_options.get("precision", "32-true"), 1

    class Module:
        device, model = torch.device("cpu"), nn.Linear(1, 1)

    callback = CudaGraphSteps(FakeCapture())
    if "precision" in trainer_options:
        callback.DEVICE_TYPES = ("cpu",)
    found = callback.not_capturable(Trainer(), Module())
    assert found == reason if reason is None else found.startswith(reason)


def test_under_mixed_precision_the_capture_runs_without_autocasts_weight_cache():
    model, capture = nn.Linear(3, 2), FakeCapture()
    GraphedForward(model, capture).install()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.is_autocast_cache_enabled()
        assert model(torch.randn(4, 3)).dtype == torch.bfloat16
        assert torch.is_autocast_cache_enabled()  # as it was around the capture
    assert capture.captured == [(4, 3)] and capture.replays == 1


def test_graphs_are_off_unless_asked_for(monkeypatch):
    monkeypatch.delenv(graphs.ENVIRONMENT_SWITCH, raising=False)
    assert not graphs.cuda_graphs_requested(None) and graphs.cuda_graphs_requested(True)
    monkeypatch.setenv(graphs.ENVIRONMENT_SWITCH, "1")
    assert graphs.cuda_graphs_requested(None) and not graphs.cuda_graphs_requested(False)
    trainer, _ = loop.make_trainer(max_epochs=1, monitor="val_mse", patience=1, progress=False)
    assert any(isinstance(c, CudaGraphSteps) for c in trainer.callbacks)
