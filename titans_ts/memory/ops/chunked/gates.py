"""Pass (a) of the chunked recurrence: everything that depends on the gates only, for all chunks at once.

Per chunk of n tokens (rows t, columns i), from eta (momentum decay) and 1 - alpha (keep rate):
    P = D(eta), Q = D(1 - alpha)          decay matrices, D[t, i] = prod_{j=i+1..t} rate_j
    E = cumprod(eta), A = cumprod(1 - alpha)
    G = Q @ P, e = Q @ E                  how token i's surprise and the carried momentum reach token t
The state-dependent part of the coefficients is only a per-column scale: C = G * theta'[i], where theta'
is theta after the surprise bound (known once the state pass has seen the chunk's keys).
Shapes: gates (..., n) -> matrices (..., n, n); `...` is any batch of chunks, e.g. (C, B, H).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class ChunkGates:
    carry: torch.Tensor  # P (..., n, n)
    forget: torch.Tensor  # Q (..., n, n)
    eta_prod: torch.Tensor  # E (..., n)
    keep_prod: torch.Tensor  # A (..., n)
    mixed: torch.Tensor  # G (..., n, n)
    momentum_coeff: torch.Tensor  # e (..., n)
    read: torch.Tensor  # (A, e) stacked (..., n, 2): how each token reads the chunk-start (W, S)


def gates_forward(alpha: torch.Tensor, eta: torch.Tensor) -> ChunkGates:
    keep = 1.0 - alpha
    carry, forget = decay_matrix(eta), decay_matrix(keep)
    eta_prod, keep_prod = torch.cumprod(eta, dim=-1), torch.cumprod(keep, dim=-1)
    mixed = forget @ carry
    momentum_coeff = (forget @ eta_prod[..., None])[..., 0]
    read = torch.stack([keep_prod, momentum_coeff], dim=-1)
    return ChunkGates(carry, forget, eta_prod, keep_prod, mixed, momentum_coeff, read)


def gates_backward(gates: ChunkGates, d_mixed, d_carry, d_momentum_coeff, d_eta_prod, d_keep_prod):
    """(d alpha, d eta) from the gradients of G, P, e, E and A (every argument (..., n) or (..., n, n))."""
    d_forget = d_mixed @ gates.carry.mT + d_momentum_coeff[..., :, None] * gates.eta_prod[..., None, :]
    d_carry = d_carry + gates.forget.mT @ d_mixed
    d_eta_prod = d_eta_prod + (gates.forget.mT @ d_momentum_coeff[..., None])[..., 0]
    d_eta = decay_matrix_backward(gates.carry, d_carry) + cumprod_backward(gates.carry, gates.eta_prod, d_eta_prod)
    d_keep = decay_matrix_backward(gates.forget, d_forget) + cumprod_backward(
        gates.forget, gates.keep_prod, d_keep_prod
    )
    return -d_keep, d_eta


def decay_matrix(rate):
    """D[t, i] = prod_{j=i+1..t} rate_j for t >= i, else 0: (..., n) -> (..., n, n). No division."""
    n = rate.shape[-1]
    later = torch.ones(n, n, dtype=torch.bool, device=rate.device).triu(1)  # [i, t]: t > i
    factors = torch.where(later, rate[..., None, :], torch.ones((), dtype=rate.dtype, device=rate.device))
    return torch.cumprod(factors, dim=-1).mT.tril()


def decay_matrix_backward(decay, grad):
    """d rate from d D for D = decay_matrix(rate): d rate_j = sum_{i<j<=t} dD[t,i] D[j-1,i] D[t,j]."""
    shifted = F.pad(decay[..., :-1, :], (0, 0, 1, 0))  # [j, i] = D[j-1, i] (0 for i >= j)
    return (shifted * (decay.mT @ grad.tril())).sum(-1)


def cumprod_backward(decay, rate_cumprod, grad):
    """d rate from d E for E = cumprod(rate), given D = decay_matrix(rate): E_{j-1} (D^T dE)_j."""
    previous = F.pad(rate_cumprod[..., :-1], (1, 0), value=1.0)
    return previous * (decay.mT @ grad[..., None])[..., 0]
