"""`compile="auto"`: torch.compile a call shape on the CPU once a run has shown that it is long enough to earn
the compile back.

The rule is ski rental: run eager, add up the work done in steps at each call shape, and compile that shape
once the total would have paid for a compile. A run then costs at most about twice what the better choice in
hindsight would have (compile at once, or never); short runs (tests, a demo, a quick fit) never compile, and
long ones run compiled for all but their first stretch. The work is counted in tokens, not seconds, so that
the switch comes at the same step on every run of the same job: compiled and eager round differently, and a
switch that followed the clock would make a seeded run's result depend on how busy the machine was. Both
numbers come from the committed measurement `experiments/results/compile_cost.md`
(`experiments/bench/compile_cost.py`); tests keep them in step with it.
CUDA keeps the eager path under "auto" (the Triton kernels are its fast path; compile there is unmeasured).
"""

from __future__ import annotations

import torch

AUTO_COMPILE = {
    # Calls with fewer tokens (batch x sequence) are not compiled; the smallest measured call (the
    # forecaster's 224: 32 windows x 7 variates) already ran 1.5x faster compiled.
    "min_tokens": 200,
    # Tokens of eager training steps (a forward without gradients counts a third) at one call shape before it
    # is compiled: what a compile's time buys in eager steps, eager tokens/s x compile s, is 1.0M-3.4M over
    # the measured calls; 2M is within a factor of 2 of each (the geometric middle of that range, rounded).
    "after_tokens": 2_000_000,
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
        self.eager_tokens: dict[tuple, float] = {}
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

    def record(self, x: torch.Tensor, stateful: bool = False) -> None:
        """Count one eager call's tokens; a forward without gradients is about a third of a training step."""
        if self.setting != "auto" or not self._candidate(x) or torch.compiler.is_compiling():
            return
        key = self._key(x, stateful)
        tokens = x.shape[0] * x.shape[1] * (1.0 if torch.is_grad_enabled() else 1.0 / 3.0)
        self.eager_tokens[key] = self.eager_tokens.get(key, 0.0) + tokens
        if self.eager_tokens[key] >= AUTO_COMPILE["after_tokens"]:
            self.compiled_shapes.add(key)
