"""NeuralMemory: the Titans long-term memory as a layer (paper §3, DESIGN.md §3).

x -> q, k, v (linear, causal depthwise conv, SiLU; q and k l2-normalised), per-token per-head
theta / alpha / eta gates, a learned initial memory M_0, the recurrence of `ops.neural_memory`, then
per-head RMS norm, a sigmoid gate from x and the output projection. Persistent tokens are prepended
at the start of a sequence. The layer is stateful: `forward(x, state) -> (y, state)` continues the
memory where the last call stopped, so it keeps learning at test time across calls.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from titans_ts.memory.autocompile import CompileChoice, check_compile_setting
from titans_ts.memory.conv import causal_depthwise_conv
from titans_ts.memory.ops import check_backend, neural_memory
from titans_ts.memory.ops.common import is_number, is_whole, maybe_compiled, mlp_forward


@dataclass(frozen=True)
class MemoryConfig:
    """Every switch of the paper's ablations (Table 5) is a field, not a fork."""

    dim: int
    heads: int = 4
    head_dim: int | None = None  # default dim // heads
    depth: int = 2  # layers of the memory MLP; 1 = a matrix memory
    expansion: float = 4.0  # hidden width of the memory MLP = expansion * head_dim
    chunk_size: int = 64  # tokens per chunk of the parallel inner loop
    max_lr: float = 0.05  # theta_t = max_lr * sigmoid(x W_theta)
    momentum: bool = True  # past surprise (eta_t); off: eta = 0
    forgetting: bool = True  # weight decay gate (alpha_t); off: alpha = 0
    conv: bool = True  # causal depthwise conv on q, k, v
    conv_kernel: int = 4
    persistent_tokens: int = 0  # N_p learnable tokens prepended at the start of a sequence
    max_grad_norm: float | None = 0.5  # bound on each token's surprise norm (inner-loop stability)
    backend: str = "auto"
    recompute: bool = False  # backward from chunk-start states only: less memory, more time
    # torch.compile the projections and the chunked passes: faster steps after a one-off compile. "auto":
    # on the CPU, each call shape once the run has done enough eager tokens at it to pay a compile (autocompile.py).
    compile: bool | str = "auto"

    def __post_init__(self):
        sizes = {"dim": self.dim, "heads": self.heads, "depth": self.depth}
        sizes |= {} if self.head_dim is None else {"head_dim": self.head_dim}  # 0 read as "not given" before
        for name, value in sizes.items():  # depth=True built a matrix memory, dim=8.0 failed inside torch
            if not (is_whole(value) and value >= 1):
                raise ValueError(f"{name} must be an integer >= 1; got {value!r}.")
        head_dim = self.inner_dim
        if head_dim < 1:
            raise ValueError(f"dim={self.dim} and heads={self.heads} give head_dim={head_dim}; need >= 1.")
        if self.head_dim is None and self.dim % self.heads:  # the memory would be narrower than dim, unsaid
            raise ValueError(
                f"dim={self.dim} is not a multiple of heads={self.heads}: choose a dim that heads divide, or give "
                "head_dim explicitly."
            )
        whole = (self.chunk_size, self.conv_kernel, self.persistent_tokens)
        if not all(is_whole(n) for n in whole) or min(whole[:2]) < 1 or whole[2] < 0:
            raise ValueError(
                f"chunk_size and conv_kernel must be integers >= 1 and persistent_tokens >= 0; got {whole}."
            )
        positive = {"expansion": self.expansion, "max_lr": self.max_lr}
        if self.max_grad_norm is not None:  # None: the surprise is not bounded
            positive["max_grad_norm"] = self.max_grad_norm
        for name, value in positive.items():  # NaN fails "> 0" too; an infinite max_lr made every output NaN
            if not (is_number(value) and 0 < value < math.inf):
                raise ValueError(f"{name} must be a positive finite number; got {value!r}.")
        check_backend(self.backend)
        check_compile_setting(self.compile)

    @property
    def inner_dim(self) -> int:
        return self.dim // self.heads if self.head_dim is None else self.head_dim

    @property
    def layer_dims(self) -> list[int]:
        hidden = max(1, round(self.expansion * self.inner_dim))
        return [self.inner_dim] + [hidden] * (self.depth - 1) + [self.inner_dim]


def _autocast_on(device_type: str) -> bool:
    return device_type in ("cpu", "cuda") and torch.is_autocast_enabled(device_type)


@dataclass
class MemoryState:
    """What carries a sequence across calls: memory weights, momentum, the conv's last inputs."""

    weights: tuple[torch.Tensor, ...]
    momentum: tuple[torch.Tensor, ...]
    conv_cache: torch.Tensor | None  # (B, conv_kernel - 1, channels) projections before the conv
    tokens_seen: int

    def detach(self) -> MemoryState:
        """The state cut from the autograd graph (the same storage): carry it to stop gradients between calls."""
        return self._map(torch.Tensor.detach)

    def __deepcopy__(self, memo) -> MemoryState:
        """copy.deepcopy: every tensor gets storage of its own. torch deep-copies only graph leaves; a tensor
        inside an autograd graph (the state of a call with gradients on) is copied with `clone()`, which keeps
        its history: gradients flow through the copy as through the original, and nothing is cut silently.
        For a snapshot without the graph (which a copy would otherwise keep alive), copy `state.detach()`."""

        def copied(tensor: torch.Tensor) -> torch.Tensor:
            if tensor.is_leaf:
                return copy.deepcopy(tensor, memo)
            if id(tensor) not in memo:
                with torch.enable_grad():  # the copy is in the graph whatever the caller's grad mode
                    memo[id(tensor)] = tensor.clone()
            return memo[id(tensor)]

        memo[id(self)] = result = self._map(copied)
        return result

    def to(self, device) -> MemoryState:
        return self._map(lambda t: t.to(device))

    def _map(self, change) -> MemoryState:
        """The state with `change` applied to every tensor it holds."""
        cache = None if self.conv_cache is None else change(self.conv_cache)
        weights, momentum = (tuple(change(t) for t in ts) for ts in (self.weights, self.momentum))
        return replace(self, weights=weights, momentum=momentum, conv_cache=cache)


def states_to_tensors(states: list[MemoryState | None], prefix: str) -> tuple[dict, list[dict | None]]:
    """Carried states as a safetensors file holds them: (tensors named `<prefix>state.<i>.weights.<j>`, ...,
    a layer description per state for the JSON beside: its depth, whether it holds a conv cache, the tokens it
    has seen; None for a block without one). `states_from_tensors` reads them back."""
    tensors, layers = {}, []
    for i, state in enumerate(states):
        if state is None:
            layers.append(None)
            continue
        for kind in ("weights", "momentum"):
            for j, tensor in enumerate(getattr(state, kind)):
                tensors[f"{prefix}state.{i}.{kind}.{j}"] = tensor
        if state.conv_cache is not None:
            tensors[f"{prefix}state.{i}.conv_cache"] = state.conv_cache
        cache = state.conv_cache is not None
        layers.append({"depth": len(state.weights), "conv_cache": cache, "tokens_seen": state.tokens_seen})
    return {name: tensor.detach().clone() for name, tensor in tensors.items()}, layers  # own storage each


def states_from_tensors(tensors: dict, prefix: str, layers: list[dict | None]) -> list[MemoryState | None]:
    """The states `states_to_tensors` wrote (on the device the tensors are on)."""
    states = []
    for i, layer in enumerate(layers):
        if layer is None:
            states.append(None)
            continue
        weights, momentum = (
            tuple(tensors[f"{prefix}state.{i}.{kind}.{j}"] for j in range(layer["depth"]))
            for kind in ("weights", "momentum")
        )
        cache = tensors[f"{prefix}state.{i}.conv_cache"] if layer["conv_cache"] else None
        states.append(MemoryState(weights, momentum, cache, int(layer["tokens_seen"])))
    return states


class CausalDepthwiseConv(nn.Module):
    """Depthwise causal conv over time on (B, T, C), as a sum of shifted products.

    Same maths as a grouped Conv1d with left padding, computed as shifted multiply-adds (`conv.py`; the
    grouped-conv backward is slow on CPU). `cache` holds the previous call's last kernel-1 rows.
    """

    def __init__(self, channels: int, kernel: int):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(kernel, channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        with torch.no_grad():  # start near identity (the current row) plus a little of the past
            self.weight.uniform_(-1.0 / kernel, 1.0 / kernel)
            self.weight[-1] += 1.0

    def forward(self, x: torch.Tensor, cache: torch.Tensor | None = None):
        return causal_depthwise_conv(x, self.weight, self.bias, cache)


class NeuralMemory(nn.Module):
    def __init__(self, dim: int | None = None, *, config: MemoryConfig | None = None, **options):
        super().__init__()
        if config is None:
            if dim is None:
                raise TypeError("NeuralMemory needs dim (or config=MemoryConfig(...)).")
            config = MemoryConfig(dim=dim, **options)
        elif dim is not None or options:
            raise TypeError("pass either config=... or dim and options, not both.")
        self.config = config
        heads, inner = config.heads, config.inner_dim
        width = heads * inner
        self.to_qkv = nn.Linear(config.dim, 3 * width, bias=False)
        self.conv = CausalDepthwiseConv(3 * width, config.conv_kernel) if config.conv else None
        self.to_gates = nn.Linear(config.dim, 3 * heads)  # theta, alpha, eta per head
        dims = config.layer_dims
        self.initial_weights = nn.ParameterList(
            nn.Parameter(torch.randn(heads, dims[i], dims[i + 1]) / math.sqrt(dims[i])) for i in range(config.depth)
        )
        self.persistent = (
            nn.Parameter(0.02 * torch.randn(config.persistent_tokens, config.dim)) if config.persistent_tokens else None
        )
        self.out_norm = nn.RMSNorm(inner)
        self.to_out_gate = nn.Linear(config.dim, width)
        self.to_out = nn.Linear(width, config.dim, bias=False)
        self._init_gates()
        self._compile = CompileChoice(config.compile)

    def _init_gates(self) -> None:
        nn.init.normal_(self.to_gates.weight, std=0.02)
        heads = self.config.heads
        with torch.no_grad():
            self.to_gates.bias[:heads].fill_(0.0)  # theta = max_lr / 2
            self.to_gates.bias[heads : 2 * heads].fill_(-6.0)  # alpha ~ 0.0025: forget slowly
            self.to_gates.bias[2 * heads :].fill_(1.0)  # eta ~ 0.73

    def forward(self, x: torch.Tensor, state: MemoryState | None = None) -> tuple[torch.Tensor, MemoryState]:
        """x: (B, T, dim) -> y: (B, T, dim) and the state after the last token.

        Calls continued with the returned state equal one call on the concatenation when each call
        before the last covers a whole number of chunks (persistent tokens count in the first call).
        """
        self._check_input(x, state)
        batch = x.shape[0]
        prefix = 0
        if state is None and self.persistent is not None:
            prefix = self.persistent.shape[0]
            x = torch.cat([self.persistent.expand(batch, -1, -1).to(x.dtype), x], dim=1)
        compiled = self._compile.now(x, stateful=state is not None)
        q, k, v, conv_cache = maybe_compiled(NeuralMemory._qkv, compiled)(
            self, x, None if state is None else state.conv_cache
        )
        theta, alpha, eta = maybe_compiled(NeuralMemory.gates, compiled)(self, x)
        if state is None:
            weights = tuple(w.expand(batch, -1, -1, -1).to(x.dtype) for w in self.initial_weights)
            momentum = None
        else:
            weights, momentum = state.weights, state.momentum
        y, weights, momentum = self._update_and_retrieve(q, k, v, theta, alpha, eta, weights, momentum, compiled)
        out = maybe_compiled(NeuralMemory._output, compiled)(self, y, x)[:, prefix:]
        if not compiled:
            self._compile.record(x, stateful=state is not None)
        seen = (0 if state is None else state.tokens_seen) + x.shape[1]
        return out, MemoryState(weights, momentum, conv_cache, seen)

    def _check_input(self, x, state: MemoryState | None) -> None:
        """x a floating tensor (B, T, dim); a state of this memory's depth and widths, for this batch."""
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"expected x as a torch.Tensor (batch, time, {self.config.dim}); got {type(x).__name__}.")
        if x.dim() != 3 or x.shape[-1] != self.config.dim:
            raise ValueError(f"expected x of shape (batch, time, {self.config.dim}); got {tuple(x.shape)}.")
        if not x.is_floating_point():
            raise TypeError(f"expected a floating-point x; got {x.dtype} (convert it, e.g. x.float()).")
        own = self.initial_weights[0].dtype
        if x.dtype != own and not _autocast_on(x.device.type):
            raise TypeError(
                f"x is {x.dtype} but this memory's parameters are {own}: convert one to the other (x.to({own}) or "
                f"memory.to({x.dtype})), or run it under torch.autocast for mixed precision."
            )
        if state is None:
            return
        if not isinstance(state, MemoryState):
            raise TypeError(f"state must be the MemoryState a previous call returned; got {type(state).__name__}.")
        expected = [(x.shape[0], *w.shape) for w in self.initial_weights]
        given = [tuple(w.shape) for w in state.weights]
        if given != expected:
            raise ValueError(
                f"the state does not fit this memory and batch: its weights are {given}, this memory's for a batch "
                f"of {x.shape[0]} are {expected} (depth {self.config.depth}). Pass the state this memory returned "
                "for the same batch."
            )
        self._check_conv_cache(x, state.conv_cache)

    def _check_conv_cache(self, x, cache) -> None:
        """A carried conv cache of this memory's conv (its kernel - 1 rows of projections): another kernel's was
        blamed on theta's length."""
        if self.conv is None or cache is None:
            return
        expected = (x.shape[0], self.config.conv_kernel - 1, 3 * self.config.heads * self.config.inner_dim)
        if tuple(cache.shape) != expected:
            kernel = self.config.conv_kernel
            raise ValueError(
                f"the state's conv cache is {tuple(cache.shape)}; this memory's (conv_kernel={kernel}) for a batch "
                f"of {x.shape[0]} is {expected}. Pass the state this memory returned for the same batch."
            )

    def _update_and_retrieve(self, q, k, v, theta, alpha, eta, weights, momentum, compiled=False):
        # Under autocast (bf16 projections and MLPs, on CPU or CUDA) the test-time learning itself stays
        # in fp32: its state is carried across thousands of tokens and bf16 rounding would compound there.
        options = {
            "chunk_size": self.config.chunk_size,
            "backend": self.config.backend,
            "max_grad_norm": self.config.max_grad_norm,
            "recompute": self.config.recompute,
            "compile": compiled,
        }
        device_type = q.device.type
        if not _autocast_on(device_type):
            return neural_memory(q, k, v, theta, alpha, eta, weights, momentum, **options)
        inputs = [t.float() for t in (q, k, v, theta, alpha, eta)]
        weights = tuple(w.float() for w in weights)
        momentum = None if momentum is None else tuple(m.float() for m in momentum)
        with torch.autocast(device_type, enabled=False):
            return neural_memory(*inputs, weights, momentum, **options)

    def retrieve(self, queries: torch.Tensor, state: MemoryState | None) -> torch.Tensor:
        """Read the memory without updating it: M*(q) per head for q: (B, H, T, head_dim)."""
        if state is None:
            weights = tuple(w.expand(queries.shape[0], -1, -1, -1) for w in self.initial_weights)
        else:
            weights = state.weights  # kept in at least fp32 by the chunked path, whatever the queries' dtype
        return mlp_forward(queries, tuple(w.to(queries.dtype) for w in weights))[0]

    def gates(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """theta (learning rate), alpha (forgetting), eta (momentum decay), each (B, H, T)."""
        logits = self.to_gates(x).transpose(1, 2)  # (B, 3H, T)
        theta_logit, alpha_logit, eta_logit = logits.chunk(3, dim=1)
        theta = self.config.max_lr * torch.sigmoid(theta_logit)
        alpha = torch.sigmoid(alpha_logit) if self.config.forgetting else torch.zeros_like(alpha_logit)
        eta = torch.sigmoid(eta_logit) if self.config.momentum else torch.zeros_like(eta_logit)
        return theta, alpha, eta

    def _qkv(self, x, conv_cache):
        projected = self.to_qkv(x)  # (B, T, 3 * width)
        new_cache = None
        if self.conv is not None:  # a cache carried in another dtype (state.to(torch.float64)) joins in this one
            cache = None if conv_cache is None else conv_cache.to(projected.dtype)
            projected, new_cache = self.conv(projected, cache)
        projected = F.silu(projected)
        batch, length, _ = projected.shape
        heads, inner = self.config.heads, self.config.inner_dim
        q, k, v = projected.view(batch, length, 3, heads, inner).permute(2, 0, 3, 1, 4)
        return F.normalize(q, dim=-1), F.normalize(k, dim=-1), v, new_cache

    def _output(self, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        batch, heads, length, inner = y.shape
        y = self.out_norm(y).transpose(1, 2).reshape(batch, length, heads * inner)
        return self.to_out(y * torch.sigmoid(self.to_out_gate(x)))

    def extra_repr(self) -> str:
        return ", ".join(f"{key}={value}" for key, value in asdict(self.config).items())
