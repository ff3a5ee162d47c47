"""`compile="auto"`: torch.compile a call shape on the CPU once a run has shown that it is long enough to earn
the compile back.

The rule is ski rental: run eager, add up the time spent in steps at each call shape, and compile that shape
once the total reaches the cost of a compile. A run then costs at most about twice what the better choice in
hindsight would have (compile at once, or never); short runs (tests, a demo, a quick fit) never compile, and
long ones run compiled for all but their first stretch. Both numbers come from the committed measurement
`experiments/results/compile_cost.md` (`experiments/bench/compile_cost.py`); tests keep them in step with it.
CUDA keeps the eager path under "auto" (the Triton kernels are its fast path; compile there is unmeasured).
"""

from __future__ import annotations

import torch

AUTO_COMPILE = {
    # Calls with fewer tokens (batch x sequence) are not compiled; the smallest measured call (the
    # forecaster's 224: 32 windows x 7 variates) already ran 1.5x faster compiled.
    "min_tokens": 200,
    # Eager step time spent at one call shape before it is compiled: the longest fresh compile measured
    # (48 s, a DNA window), rounded up.
    "after_seconds": 50.0,
}


def check_compile_setting(value) -> None:
    if not (value is True or value is False or value == "auto"):
        raise ValueError(f'compile must be True, False or "auto"; got {value!r}.')


class CompileChoice:
    """Whether a NeuralMemory call runs compiled: the setting itself, or under "auto" the ski-rental rule.

    Under "auto" a call is known by everything its compiled graph depends on (shape, dtype, gradients on,
    autocast, a state passed in), so each such variant earns its own compile with its own eager time."""

    def __init__(self, setting):
        self.setting = setting
        self.eager_seconds: dict[tuple, float] = {}
        self.compiled_shapes: set[tuple] = set()

    def _candidate(self, x: torch.Tensor) -> bool:
        return x.device.type == "cpu" and x.shape[0] * x.shape[1] >= AUTO_COMPILE["min_tokens"]

    @staticmethod
    def _key(x: torch.Tensor, stateful: bool) -> tuple:
        autocast = torch.is_autocast_enabled(x.device.type) if x.device.type in ("cpu", "cuda") else False
        return tuple(x.shape), x.dtype, torch.is_grad_enabled(), autocast, stateful

    def now(self, x: torch.Tensor, stateful: bool = False) -> bool:
        if self.setting != "auto":
            return bool(self.setting)
        return self._key(x, stateful) in self.compiled_shapes

    def record(self, x: torch.Tensor, forward_seconds: float, stateful: bool = False) -> None:
        """Count one eager forward; a training step (forward + backward) costs about three forwards."""
        if self.setting != "auto" or not self._candidate(x) or torch.compiler.is_compiling():
            return
        key = self._key(x, stateful)
        step_seconds = forward_seconds * (3.0 if torch.is_grad_enabled() else 1.0)
        self.eager_seconds[key] = self.eager_seconds.get(key, 0.0) + step_seconds
        if self.eager_seconds[key] >= AUTO_COMPILE["after_seconds"]:
            self.compiled_shapes.add(key)
