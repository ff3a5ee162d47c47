"""CUDA graphs for training steps (issue 26, item 3): a small model's CUDA step is mostly kernel launches from
Python (about 30 ms for a forecaster batch of 32 windows, on either memory backend); replaying the step's
forward and backward as two captured graphs makes it two launches.

`GraphedForward` takes the place of a model's `forward` during `fit`. The first training batch fixes the shape:
its forward and backward are captured (`torch.cuda.make_graphed_callables`: a few warm-up runs on a side
stream, then the capture) and every later training batch of that shape and dtype replays them. Any other
call runs the eager forward: a last batch of another size (drop_last=False), evaluation, no-grad calls,
calls with more than one argument (a carried state) and methods other than `forward` (a quantile model's
`forecast`, the language model's `loss`). A capture that fails warns and leaves training eager.

Requires what every captured step needs: no host-device synchronisation inside the step (checked on the CPU
by tests/test_devices.py, on CUDA by tests/gpu/test_syncs_cuda.py), a forward without effects outside its
tensors, parameters that stay the same tensors (the optimizer and `BestWeights.restore` update them in place),
fp32 or bf16 (under bf16-mixed the capture runs with autocast's weight cache off, which a graph cannot hold)
and one process (DDP's gradient hooks would need their own warm-up). `CudaGraphSteps` checks what it can and
installs it. Off by default until a GPU session has measured it: `make_trainer(cuda_graphs=True)`, or the
environment variable TITANS_TS_CUDA_GRAPHS=1 for every fit.
"""

from __future__ import annotations

import contextlib
import os
import warnings

import lightning.pytorch as pl
import torch

ENVIRONMENT_SWITCH = "TITANS_TS_CUDA_GRAPHS"


def cuda_graphs_requested(setting: bool | None) -> bool:
    """The setting when given, else the environment switch ("1": on)."""
    return os.environ.get(ENVIRONMENT_SWITCH, "0") == "1" if setting is None else bool(setting)


class GraphedForward:
    """A model's forward with its training batches of one shape replayed as CUDA graphs (see the module)."""

    def __init__(self, model: torch.nn.Module, capture=None):
        self.model = model
        self.capture = capture or torch.cuda.make_graphed_callables
        self.shape = self.dtype = self.graphed = None
        self.failure: str | None = None
        self.replays = 0

    def __call__(self, *args, **kwargs):
        if kwargs or len(args) != 1 or not (self.model.training and torch.is_grad_enabled()) or self.failure:
            return self._eager(*args, **kwargs)
        x = args[0]
        if self.graphed is None:
            self._capture(x)
        if self.graphed is not None and x.shape == self.shape and x.dtype == self.dtype:
            self.replays += 1
            return self.graphed(x)
        return self._eager(x)

    def install(self) -> None:
        self.model.forward = self  # an instance attribute: state_dict and the module tree are unchanged

    def remove(self) -> None:
        vars(self.model).pop("forward", None)

    def _eager(self, *args, **kwargs):
        return type(self.model).forward(self.model, *args, **kwargs)

    def _capture(self, x: torch.Tensor) -> None:
        self.remove()  # make_graphed_callables calls the model, and then replaces its forward with its own
        try:
            with _without_autocast_cache(x.device.type):
                graphed = self.capture(self.model, (x.detach().clone(),), allow_unused_input=True)
            self.graphed = graphed.forward
            self.shape, self.dtype = x.shape, x.dtype
        except Exception as error:  # noqa: BLE001 - any failure leaves training as it would be without graphs
            self.failure = f"{type(error).__name__}: {error}"
            warnings.warn(
                f"CUDA graph capture of the training step failed ({self.failure}); training goes on without graphs.",
                RuntimeWarning,
                stacklevel=2,
            )
        finally:
            self.remove()
            self.install()


def _without_autocast_cache(device_type: str):
    """Under mixed precision, autocast as it is but without its weight cache, which a capture cannot hold; the
    replays then run the kernels captured here whatever the autocast state around them."""
    if not torch.is_autocast_enabled(device_type):
        return contextlib.nullcontext()
    return torch.autocast(device_type, dtype=torch.get_autocast_dtype(device_type), cache_enabled=False)


class CudaGraphSteps(pl.Callback):
    """Installs `GraphedForward` on `module.model` for `fit` when the step can be captured, removes it after."""

    DEVICE_TYPES = ("cuda",)

    def __init__(self, capture=None):
        self.capture, self.forward = capture, None

    def on_train_start(self, trainer, module):
        reason = self.not_capturable(trainer, module)
        if reason is not None:
            if module.device.type == "cuda":
                warnings.warn(f"CUDA graphs are off for this fit: {reason}.", RuntimeWarning, stacklevel=2)
            return
        self.forward = GraphedForward(module.model, self.capture)
        self.forward.install()

    def teardown(self, trainer, module, stage):
        if self.forward is not None:
            self.forward.remove()
            self.forward = None

    def not_capturable(self, trainer, module) -> str | None:
        if module.device.type not in self.DEVICE_TYPES:
            return f"the model is on {module.device.type}"
        if str(trainer.precision) not in ("32-true", "32", "64-true", "64", "bf16-mixed", "bf16-true"):
            return f"precision {trainer.precision} (fp16's loss scaling is not captured; bf16-mixed is)"
        if trainer.world_size > 1:
            return "more than one process"
        if not isinstance(getattr(module, "model", None), torch.nn.Module):
            return "the training module has no `model`"
        return None
