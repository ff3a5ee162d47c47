"""Devices without a GPU: what CI can check of "everything runs on CUDA when one is there".

- The Lightning steps of both domains run with the model and the batch on the `meta` device. Any tensor a
  step makes on the CPU while its inputs are elsewhere (the `torch.tensor(error.numel())` that crashed
  forecasting validation on CUDA) raises there, as it does on CUDA.
- A static scan: no tensor factory without `device=` in a training/validation step or a forward.
- No host-device synchronisation inside a step (issue 26): the real steps, the memory's hand-written backward
  included, run on the CPU under a guard that records every call that would make the host wait for a GPU.
- The `device` parameter: scikit-learn conventions, validation, the typed error when CUDA is missing, the
  Trainer's accelerator, `--device` on the CLIs, and a model saved for CUDA loading on the CPU.
"""

from __future__ import annotations

import ast
import contextlib
import inspect
import json
import sys
import textwrap
import warnings
from pathlib import Path
from unittest.mock import patch

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.base import clone
from typer.testing import CliRunner

from titans_ts.errors import ConfigError, DeviceUnavailableError
from titans_ts.training import resolve_device

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


# --- (a) steps on another device -------------------------------------------------------------------------


def _recurrence_stand_in(q, k, v, theta, alpha, eta, weights, momentum=None, **_):
    """Shapes and devices of `ops.neural_memory`'s outputs, built from its inputs only.

    The recurrence backends have their own tests (tests/memory, and tests/gpu on CUDA); they need not run
    on `meta` (e.g. `torch.autocast("meta")` is not supported). Everything around them does run there:
    NeuralMemory's projections, conv, gates and output, the blocks, the backbones and the Lightning steps.
    """
    y = v * (1 - alpha)[..., None] + (q * k).sum(-1, keepdim=True) * (theta * eta)[..., None]
    momentum = tuple(torch.zeros_like(w) for w in weights) if momentum is None else tuple(momentum)
    return y, tuple(weights), momentum


@pytest.fixture
def memory_on_meta(monkeypatch):
    monkeypatch.setattr("titans_ts.memory.module.neural_memory", _recurrence_stand_in)


def _on_meta(module: torch.nn.Module) -> torch.nn.Module:
    return module.to("meta")


def run_steps(module, batch, validation_steps: int = 1):
    """A training step with its backward, then on_validation_epoch_start and `validation_steps` validation steps.
    Returns the training loss. (Shared by the meta, host-sync and CUDA checks.)"""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # self.log without a Trainer attached only warns
        module.train()
        loss = module.training_step(batch, 0)
        loss.backward()
        module.eval()
        module.on_validation_epoch_start()
        with torch.no_grad():
            for index in range(validation_steps):
                module.validation_step(batch, index)
    return loss


def _run_steps(module, batch):
    """run_steps with two validation steps, all on meta."""
    try:
        loss = run_steps(module, batch, validation_steps=2)
    except RuntimeError as exc:
        if "device" in str(exc):
            pytest.fail(f"a step made a tensor on another device than its batch: {exc}")
        raise
    assert loss.device.type == "meta"
    # the epoch's sums live where the batches are (read once per epoch, not synced per batch)
    assert module._val.device.type == "meta" and module._val.dtype == torch.float64


@pytest.mark.parametrize(
    "variant, tokens",
    [
        ("lmm", "variate"),
        ("mac", "patch"),
        ("mag", "variate"),
        ("mal", "patch"),
        ("attention", "patch"),
        ("dlinear", "variate"),
    ],
)
@pytest.mark.usefixtures("memory_on_meta")
def test_forecast_steps_keep_every_tensor_on_the_batch_device(variant, tokens):
    from titans_ts.forecasting.model import ForecastConfig, build_model
    from titans_ts.forecasting.training import ForecastModule

    config = ForecastConfig(
        lookback=24, horizon=12, channels=3, variant=variant, tokens=tokens, dim=16, layers=1, heads=2,
        patch_len=8, stride=4, chunk_size=8,
    )  # fmt: skip
    module = _on_meta(ForecastModule(build_model(config)))
    batch = (torch.empty(4, 24, 3, device="meta"), torch.empty(4, 12, 3, device="meta"))
    _run_steps(module, batch)


def _ids(batch=3, length=40):
    return torch.randint(7, 12, (batch, length)).to("meta")  # A, C, G, T, N


@pytest.mark.parametrize("architecture", ["titans", "cnn", "transformer"])
@pytest.mark.usefixtures("memory_on_meta")
def test_dna_classifier_steps_keep_every_tensor_on_the_batch_device(architecture):
    from genomics.classifier import DNAClassifier
    from genomics.training import ClassifierModule

    model = DNAClassifier(architecture=architecture, pretrained=False, dim=16, layers=1, heads=2)._build(2)
    module = _on_meta(ClassifierModule(model))
    _run_steps(module, (_ids(), torch.tensor([0, 1, 0]).to("meta")))


@pytest.mark.usefixtures("memory_on_meta")
def test_dna_language_model_steps_keep_every_tensor_on_the_batch_device():
    from genomics.model import DNALanguageModel, DNAModelConfig
    from genomics.training import LanguageModelModule

    module = _on_meta(LanguageModelModule(DNALanguageModel(DNAModelConfig(dim=16, layers=1, heads=2, chunk_size=8))))
    _run_steps(module, (_ids(), torch.full((3,), -1).to("meta")))


def test_validation_metrics_are_the_exact_sums_over_every_window():
    """The device-side sums give what the CPU loop gave: sum of squares / count over all elements."""
    from titans_ts.forecasting.evaluation import evaluate_windows
    from titans_ts.forecasting.training import ForecastModule

    class Zero(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(()))

        def forward(self, x):
            return x[:, :2] * self.w

    module = ForecastModule(Zero())
    logged = {}
    module.log = lambda name, value, **_: logged.__setitem__(name, value)
    batches = [(torch.zeros(3, 4, 2), torch.full((3, 2, 2), 2.0)), (torch.zeros(1, 4, 2), torch.full((1, 2, 2), -1.0))]
    module.on_validation_epoch_start()
    for index, batch in enumerate(batches):
        module.validation_step(batch, index)
    module.on_validation_epoch_end()
    assert logged["val_mse"] == pytest.approx((12 * 4 + 4 * 1) / 16)
    assert logged["val_mae"] == pytest.approx((12 * 2 + 4 * 1) / 16)
    metrics = evaluate_windows(Zero(), batches_as_loader(batches), device="cpu")
    assert metrics["mse"] == pytest.approx(logged["val_mse"]) and metrics["mae"] == pytest.approx(logged["val_mae"])


def batches_as_loader(batches):
    class Loader(list):
        dataset = range(sum(len(x) for x, _ in batches))

    return Loader(batches)


# --- (b) static scan: no bare tensor factories in steps ----------------------------------------------------

FACTORIES = {
    "tensor", "as_tensor", "zeros", "ones", "empty", "full", "arange", "range", "linspace", "logspace", "eye",
    "rand", "randn", "randint", "randperm", "scalar_tensor", "empty_strided", "tril_indices", "triu_indices",
}  # fmt: skip
ALWAYS_CPU = {"from_numpy", "Tensor", "FloatTensor", "DoubleTensor", "LongTensor", "IntTensor", "BoolTensor"}
STEP_NAMES = {"forward", "backward", "loss", "evaluate_windows", "_probabilities", "_update_and_retrieve"}


def _is_step(name: str) -> bool:
    return name in STEP_NAMES or name.endswith("_step") or (name.startswith("on_") and "epoch" in name)


def bare_factories(source: str, filename: str = "<source>") -> list[str]:
    """`file:line function: torch.X(...)` for every tensor factory without device= inside a step function."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) or not _is_step(node.name):
            continue
        for call in ast.walk(node):
            if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)):
                continue
            owner, name = call.func.value, call.func.attr
            if not (isinstance(owner, ast.Name) and owner.id == "torch"):
                continue
            has_device = any(k.arg == "device" or k.arg is None for k in call.keywords)  # None: **kwargs
            if name in ALWAYS_CPU or (name in FACTORIES and not has_device):
                found.append(f"{filename}:{call.lineno} {node.name}: torch.{name}(...)")
    return found


def _package_sources():
    for package in ("titans_ts", "genomics"):
        for path in sorted((ROOT / package).rglob("*.py")):
            yield path.relative_to(ROOT), path.read_text(encoding="utf-8")


def test_no_bare_tensor_factories_in_steps():
    problems, scanned = [], set()
    for path, source in _package_sources():
        problems += bare_factories(source, str(path))
        scanned |= {
            f"{path}:{n.name}"
            for n in ast.walk(ast.parse(source))
            if isinstance(n, ast.FunctionDef) and _is_step(n.name)
        }
    # the scan sees the steps it is meant to guard
    for expected in ("titans_ts/forecasting/training.py:validation_step", "genomics/training.py:training_step"):
        assert expected in scanned
    assert not problems, "tensor factories without device= (use x.new_tensor / device=x.device):\n" + "\n".join(
        problems
    )


def test_the_scan_flags_the_old_validation_step():
    old = textwrap.dedent(
        """
        class ForecastModule:
            def validation_step(self, batch, _):
                x, y = batch
                error = (self.model(x) - y).double()
                self._val += torch.stack([error.square().sum(), error.abs().sum(), torch.tensor(error.numel())])
        """
    )
    assert bare_factories(old) == ["<source>:6 validation_step: torch.tensor(...)"]
    fixed = old.replace("torch.tensor(error.numel())", "torch.tensor(error.numel(), device=error.device)")
    assert bare_factories(fixed) == []


# --- (c) no host-device synchronisation inside a step -------------------------------------------------------

SYNCING = {
    torch.Tensor.item, torch.Tensor.tolist, torch.Tensor.numpy, torch.Tensor.cpu, torch.Tensor.__bool__,
    torch.Tensor.__int__, torch.Tensor.__float__, torch.Tensor.__index__, torch.nonzero, torch.Tensor.nonzero,
    torch.masked_select, torch.Tensor.masked_select, torch.unique, torch.Tensor.unique, torch.argwhere,
}  # fmt: skip
REPEATS = {torch.repeat_interleave, torch.Tensor.repeat_interleave}  # with tensor repeats, no output_size
FROM_HOST = {torch.tensor, torch.as_tensor}
PROJECT = (str(ROOT / "titans_ts"), str(ROOT / "genomics"))


class HostSyncs:
    """Records the calls that make the host wait for a CUDA device, as `name at file:line` of the project's
    innermost frame: a tensor read back as a Python value (item, tolist, bool, int, ...), a result whose size
    depends on the data (nonzero, unique, a boolean mask), and a tensor made from Python data (a copy from
    pageable host memory, which waits for the GPU). On the CPU none of them costs anything, so CI sees them
    only this way; on CUDA each one stalls the step and breaks CUDA-graph capture.

    A custom autograd Function's backward runs outside the caller's torch-function mode, so the guard enters
    its mode again around each one (the memory's hand-written backward is where a step spends most of its ops).
    """

    def __init__(self):
        self.calls = []
        self._stack = contextlib.ExitStack()

    def __enter__(self):
        original, calls = torch.autograd.function.BackwardCFunction.apply, self.calls

        def apply(node, *args):
            with _SyncRecorder(calls):
                return original(node, *args)

        self._stack.enter_context(patch.object(torch.autograd.function.BackwardCFunction, "apply", apply))
        self._stack.enter_context(_SyncRecorder(calls))
        return self

    def __exit__(self, *exc):
        return self._stack.__exit__(*exc)


class _SyncRecorder(torch.overrides.TorchFunctionMode):
    def __init__(self, calls: list):
        super().__init__()
        self.calls = calls

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in SYNCING or (func in FROM_HOST and args and not isinstance(args[0], torch.Tensor)):
            self.calls.append(f"{func.__name__} at {_project_frame()}")
        elif func is torch.Tensor.__getitem__ and _boolean_mask(args[1]):
            self.calls.append(f"boolean-mask indexing at {_project_frame()}")
        elif func in REPEATS and "output_size" not in kwargs and _tensor_repeats(args, kwargs):
            self.calls.append(f"{func.__name__} at {_project_frame()}")
        return func(*args, **kwargs)


def _boolean_mask(index) -> bool:
    parts = index if isinstance(index, tuple) else (index,)
    return any(isinstance(part, torch.Tensor) and part.dtype == torch.bool for part in parts)


def _tensor_repeats(args, kwargs) -> bool:
    repeats = kwargs.get("repeats", args[1] if len(args) > 1 else args[0])  # repeat_interleave(repeats) alone
    return isinstance(repeats, torch.Tensor)


def _project_frame() -> str:
    frame = sys._getframe(2)
    while frame is not None and not frame.f_code.co_filename.startswith(PROJECT):
        frame = frame.f_back
    if frame is None:
        return "<outside the project>"
    return f"{Path(frame.f_code.co_filename).relative_to(ROOT)}:{frame.f_lineno}"


def host_syncs_of_steps(module, batch) -> list[str]:
    """The host syncs of `run_steps`, the real recurrence included."""
    with HostSyncs() as syncs:
        run_steps(module, batch)
    return syncs.calls


def test_the_sync_guard_sees_what_waits_for_the_device():
    x = torch.arange(4.0)
    with HostSyncs() as syncs:
        x + 1, x.new_full((1,), 3.0), torch.full((2,), 1, device=x.device), x[x.new_ones(4, dtype=torch.long)]
    assert syncs.calls == []
    with HostSyncs() as syncs:
        x.sum().item(), bool(x.any()), int(x[0]), x[x > 1], x.nonzero(), torch.tensor([1, 2], device=x.device)
        x.repeat_interleave(2), x.repeat_interleave(x.long()), x.repeat_interleave(x.long(), output_size=6)
    names = [call.split(" at ")[0] for call in syncs.calls]
    assert names == ["item", "__bool__", "__int__", "boolean-mask indexing", "nonzero", "tensor", "repeat_interleave"]

    class Reads(torch.autograd.Function):  # a hand-written backward that reads a value back
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, grad):
            return grad * grad.sum().item()

    x = torch.ones(3, requires_grad=True)
    with HostSyncs() as syncs:
        Reads.apply(x).sum().backward()
    assert [call.split(" at ")[0] for call in syncs.calls] == ["item"]


@pytest.mark.parametrize(
    "variant, tokens", [("lmm", "variate"), ("mac", "patch"), ("mag", "variate"), ("mal", "patch")]
)
def test_forecast_steps_never_wait_for_the_device(variant, tokens):
    from titans_ts.forecasting.model import ForecastConfig, build_model
    from titans_ts.forecasting.training import ForecastModule

    config = ForecastConfig(
        lookback=24, horizon=12, channels=3, variant=variant, tokens=tokens, dim=16, layers=1, heads=2,
        patch_len=8, stride=4, chunk_size=2,
    )  # fmt: skip
    # chunk 2: several chunks per sequence (the 3 variate tokens end in a partial one)
    module = ForecastModule(build_model(config))
    assert host_syncs_of_steps(module, (torch.randn(4, 24, 3), torch.randn(4, 12, 3))) == []


@pytest.mark.parametrize("architecture", ["titans", "cnn", "transformer"])
def test_dna_classifier_steps_never_wait_for_the_device(architecture):
    from genomics.classifier import DNAClassifier
    from genomics.training import ClassifierModule

    model = DNAClassifier(architecture=architecture, pretrained=False, dim=16, layers=1, heads=2)._build(2)
    batch = (torch.randint(7, 12, (3, 40)), torch.tensor([0, 1, 0]))
    assert host_syncs_of_steps(ClassifierModule(model), batch) == []


def test_dna_language_model_steps_never_wait_for_the_device():
    from genomics.model import DNALanguageModel, DNAModelConfig
    from genomics.training import LanguageModelModule

    module = LanguageModelModule(DNALanguageModel(DNAModelConfig(dim=16, layers=1, heads=2, chunk_size=8)))
    assert host_syncs_of_steps(module, (torch.randint(7, 12, (3, 43)), torch.full((3,), -1))) == []


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"error_tokens": True, "local": "variate", "channels": 3},
        {"local": "dlinear", "reset_mix": 0.1, "max_state_norm": 2.0},
    ],
    ids=["plain", "variate-error-tokens", "dlinear-guarded"],
)
def test_history_mode_training_steps_never_wait_for_the_device(changes):
    """The segment steps (issue 28's carried-state training). Its validation, the whole split read online once
    an epoch, sizes its reads by the last origin and checks the origins: a few read-backs an epoch, left."""
    from tests.forecasting.test_long_memory import model_of, series_of
    from titans_ts.data.protocol import split_borders
    from titans_ts.forecasting.long_memory_eval import split_origins
    from titans_ts.forecasting.segments import SegmentModule

    borders = split_borders(400, 8, 4)
    series, origins = series_of(400, dtype=torch.float32), split_origins(borders.val, 8, 4)
    model = model_of(dtype=torch.float32, **changes)
    module = SegmentModule(model, series, borders.train[1], origins, streams=2, bptt=2, seed=0).train()
    module.on_train_epoch_start()
    with warnings.catch_warnings(), HostSyncs() as syncs:
        warnings.simplefilter("ignore")  # self.log without a Trainer attached only warns
        module.training_step(0, 0).backward()
        module.training_step(1, 1).backward()  # from the state carried out of window 0
    assert syncs.calls == []


def two_column_series(length: int) -> pd.DataFrame:
    """A sine and a cosine column: a tiny series to fit (shared with tests/test_graphs.py)."""
    steps = np.arange(length)
    return pd.DataFrame({"a": np.sin(steps / 5.0), "b": np.cos(steps / 7.0)})


def tiny_forecaster(progress: bool = False):
    """A TitansForecaster small enough for a fit of a few seconds, 2 epochs, the floor fallback off."""
    from titans_ts.forecasting import TitansForecaster

    return TitansForecaster(
        horizon=8, lookback=32, epochs=2, dim=16, layers=1, heads=2, batch_size=32, progress=progress, fallback="off"
    )


def test_a_fit_reads_the_loss_back_at_the_bars_refreshes_not_every_step(monkeypatch):
    """Lightning turns every progress-bar metric into a Python number after every batch (on CUDA: the host
    waits for each step before queuing the next); the training loss stays out of that, and our bar reads its
    mean at each refresh. With the bar's clock stopped (one read at each epoch's end) and AdamW fused, as it is
    on CUDA (the CPU one reads its step counters back), a fit with three times the steps reads back as often."""
    from titans_ts.training import loop
    from titans_ts.training import module as training_module

    monkeypatch.setattr(loop.LossProgressBar, "interval", float("inf"))
    monkeypatch.setattr(training_module, "fused_on_cuda", lambda parameters: {"fused": True})
    counts = []
    for length in (500, 1500):
        with warnings.catch_warnings(), HostSyncs() as syncs:
            warnings.simplefilter("ignore")
            tiny_forecaster(progress=True).fit(two_column_series(length))
        counts.append(len(syncs.calls))
    assert counts[0] == counts[1], counts


# --- the device parameter ---------------------------------------------------------------------------------


@pytest.fixture
def no_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


def test_resolve_device(no_cuda):
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    for bad in ("gpu", "CUDA", "cuda:0", "mps", None, 0, torch.device("meta")):
        with pytest.raises(ConfigError) as info:
            resolve_device(bad)
        assert isinstance(info.value, ValueError) and repr(bad) in str(info.value)
    with pytest.raises(ConfigError, match=r"device='gpu' is not one of \('auto', 'cpu', 'cuda'\)"):
        resolve_device("gpu")
    with pytest.raises(DeviceUnavailableError, match="CUDA is not available.*device='cpu'.*device='auto'"):
        resolve_device("cuda")


def test_auto_takes_cuda_when_it_is_there(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda")
    assert resolve_device("cuda") == torch.device("cuda")


def test_trainer_accelerator_follows_the_device(monkeypatch):
    import titans_ts.training as training

    made = []
    monkeypatch.setattr(training.pl, "Trainer", lambda **kwargs: made.append(kwargs) or kwargs)
    for device, cuda, accelerator in [("cpu", True, "cpu"), ("auto", False, "cpu"), ("auto", True, "gpu"),
                                      ("cuda", True, "gpu")]:  # fmt: skip
        monkeypatch.setattr(torch.cuda, "is_available", lambda cuda=cuda: cuda)
        training.make_trainer(max_epochs=1, monitor="val_loss", patience=1, progress=False, device=device)
        assert made[-1]["accelerator"] == accelerator and made[-1]["devices"] == 1, device


@pytest.mark.parametrize("estimator", ["forecaster", "classifier"])
def test_device_is_a_plain_scikit_learn_parameter(estimator, no_cuda):
    from genomics import DNAClassifier
    from titans_ts import TitansForecaster

    cls = TitansForecaster if estimator == "forecaster" else DNAClassifier
    assert cls().get_params()["device"] == "auto"
    model = cls(device="bogus")  # __init__ only stores it
    assert model.device == "bogus" and clone(model).device == "bogus"
    assert model.set_params(device="cpu").get_params()["device"] == "cpu"
    data = (
        (pd.DataFrame(np.random.default_rng(0).normal(size=(300, 2))),)
        if estimator == "forecaster"
        else (["ACGTACGT", "GGGGCCCC"] * 10, ["a", "b"] * 10)
    )
    with pytest.raises(ConfigError, match=r"device='tpu' is not one of \('auto', 'cpu', 'cuda'\)"):
        cls(device="tpu").fit(*data)
    with pytest.raises(DeviceUnavailableError, match="--device cpu"):
        cls(device="cuda").fit(*data)


FORECAST_TINY = dict(horizon=12, lookback=24, dim=16, layers=1, heads=2, chunk_size=8, epochs=1, progress=False)
FORECAST_TINY |= dict(fallback="off")  # the network moves between devices here, never a floor in its place


@pytest.fixture(scope="module")
def saved_forecaster(tmp_path_factory):
    from tests.data.helpers import write_series
    from titans_ts import TitansForecaster

    folder = tmp_path_factory.mktemp("devices")
    frame = write_series(folder / "mine.csv", rows=300, columns=3)
    frame = frame.set_index(pd.DatetimeIndex(frame.pop("date"), name="date"))
    model = TitansForecaster(**FORECAST_TINY, device="cpu").fit(frame)
    assert model.history_["device"] == "cpu"
    model.save(folder / "model")
    return folder, frame, model


def test_a_model_saved_for_cuda_loads_and_predicts_on_the_cpu(saved_forecaster, no_cuda):
    from titans_ts import TitansForecaster

    folder, frame, model = saved_forecaster
    config_path = folder / "model" / "config.json"
    config = json.loads(config_path.read_text())
    config["params"]["device"] = "cuda"  # as written by a fit on a GPU
    config_path.write_text(json.dumps(config))
    loaded = TitansForecaster.load(folder / "model")  # loading never needs the device
    assert loaded.device == "cuda" and next(loaded.model_.parameters()).device.type == "cpu"
    with pytest.raises(DeviceUnavailableError, match="device='cpu'"):
        loaded.predict()
    for device in ("cpu", "auto"):
        on_cpu = TitansForecaster.load(folder / "model", device=device)
        pd.testing.assert_frame_equal(on_cpu.predict(), model.predict())
        assert on_cpu.evaluate(frame) == model.evaluate()


def test_cli_device_option_is_documented_and_checked(saved_forecaster, no_cuda):
    from cli.dna import app as dna_app
    from cli.ts import app as ts_app

    folder, _, _ = saved_forecaster
    for app, command in [(ts_app, "fit"), (ts_app, "predict"), (ts_app, "evaluate"), (dna_app, "finetune"),
                         (dna_app, "pretrain"), (dna_app, "predict"), (dna_app, "evaluate")]:  # fmt: skip
        shown = runner.invoke(app, [command, "--help"], env={"COLUMNS": "200"})
        assert shown.exit_code == 0 and "--device" in shown.output and "CUDA when available" in shown.output, command
    (folder / "s.fa").write_text(">a\nACGT\n")
    mine, model = str(folder / "mine.csv"), str(folder / "model")
    cases = [
        (ts_app, ["fit", "--dataset", mine, "--device", "gpu", "--out", str(folder / "never")], "--device gpu"),
        (ts_app, ["predict", "--model", model, "--input", mine, "--device", "tpu"], "--device tpu"),
        (ts_app, ["evaluate", "--model", model, "--dataset", mine, "--device", "cuda"], "CUDA is not available"),
        (ts_app, ["fit", "--dataset", mine, "--device", "cuda", "--out", str(folder / "never")], "--device cpu"),
        (dna_app, ["finetune", "enhancer_cohn", "--device", "gpu"], "--device gpu"),
        (dna_app, ["predict", "--model", model, "--input", str(folder / "s.fa"), "--device", "cuda"], "not available"),
        (dna_app, ["evaluate", "--model", model, "--dataset", "enhancer_cohn", "--device", "xla"], "--device xla"),
        (dna_app, ["pretrain", "--corpus", str(folder / "s.fa"), "--device", "gpu"], "--device gpu"),
    ]
    for app, args, message in cases:
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        assert message in result.stderr and "Traceback" not in result.output, (args, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1, (args, result.stderr)
    assert not (folder / "never").exists()


def test_cli_passes_the_device_through(monkeypatch):
    """The CLI holds no logic: --device reaches the library function unchanged."""
    import cli.ts
    import titans_ts.forecasting.saved as saved

    seen = {}

    def fake_predict(model, input, out, plot, device=None, **read):
        seen["device"] = device
        forecast = pd.DataFrame({"x": [1.0]}, index=pd.RangeIndex(1))
        forecast.attrs.update(forecaster="model", fallback_reason="as predict_csv says which forecaster it used")
        return forecast, None

    monkeypatch.setattr(saved, "predict_csv", fake_predict)
    result = runner.invoke(cli.ts.app, ["predict", "--model", "m", "--input", "i.csv", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert seen["device"] == "cpu"
    assert inspect.signature(cli.ts.fit).parameters["device"].default.default == "auto"
