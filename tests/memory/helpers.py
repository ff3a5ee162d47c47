import torch
import torch.nn.functional as F


def memory_inputs(
    B=2,
    H=3,
    T=63,
    D=5,
    hidden=7,
    D_out=6,
    depth=2,
    dtype=torch.float64,
    seed=0,
    momentum=True,
    max_lr=0.1,
    requires_grad=False,
):
    """Random op inputs shaped like NeuralMemory's: l2-normalised q/k, gates in (0, 1), theta <= max_lr."""
    g = torch.Generator().manual_seed(seed)

    def randn(*shape):
        return torch.randn(*shape, generator=g, dtype=dtype)

    def rand(*shape):
        return torch.rand(*shape, generator=g, dtype=dtype)

    q = F.normalize(randn(B, H, T, D), dim=-1)
    k = F.normalize(randn(B, H, T, D), dim=-1)
    v = randn(B, H, T, D_out)
    theta, alpha, eta = max_lr * rand(B, H, T), 0.2 * rand(B, H, T), 0.9 * rand(B, H, T)
    dims = [D] + [hidden] * (depth - 1) + [D_out]
    weights = tuple(randn(B, H, dims[i], dims[i + 1]) / dims[i] ** 0.5 for i in range(depth))
    mom = tuple(0.05 * randn(*w.shape) for w in weights) if momentum else None
    tensors = [q, k, v, theta, alpha, eta, *weights, *(mom or ())]
    if requires_grad:
        for t in tensors:
            t.requires_grad_(True)
    return q, k, v, theta, alpha, eta, weights, mom


def rel_err(a, b):
    """max |a - b| / max |b| (0 when both are zero)."""
    scale = b.abs().max()
    return ((a - b).abs().max() / scale).item() if scale > 0 else (a - b).abs().max().item()
