"""S3ID: stitching partial recordings into one latent LDS by matching time-lagged covariances.

Nonnenmacher, Turaga & Macke (NIPS 2017). The loss compares model covariances
c_i^T X_s c_j (+ R_i at s = 0, i = j) with empirical lagged covariances of the pairs that were
observed together, over lags s = 0..K-1. Two parametrisations are fitted in turn: ``"nl"``
(every X_s free) and ``"ln"`` (X_s = A^s B B^T). Two paths compute the loss: the dense
full-batch path (masked p x p x K tensors, for small p) and the stochastic path, whose cost
per step is O(p n^2) and memory O(p n) because it only forms n x n Gram matrices of the
observed loadings. With K = 1 the same code is factor-analysis stitching (lag 0 only).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .._checks import check_positive_int
from ..training import History, fit

__all__ = [
    "S3ID",
    "S3IDFit",
    "empirical_lagged_covariances",
    "dense_loss",
    "stochastic_loss",
    "fit_s3id",
    "check_masked_data",
]


def check_masked_data(y, mask, n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Validate data ``y`` (T, p) and ``mask`` (T, p): shapes agree, every neuron observed, no NaN
    where observed."""
    y = np.asarray(y, dtype=float)
    if y.ndim != 2:
        raise ValueError(f"y must have shape (T, p); got {y.shape}")
    mask = np.ones(y.shape, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    if mask.shape != y.shape:
        raise ValueError(f"mask must have the shape of y {y.shape}; got {mask.shape}")
    never = np.flatnonzero(~mask.any(0))
    if never.size:
        raise ValueError(
            f"mask: neuron {int(never[0])} is never observed ({never.size} such neurons)"
        )
    if not np.isfinite(y[mask]).all():
        raise ValueError("y contains NaN or infinite values at observed entries")
    if n is not None and n > y.shape[1]:
        raise ValueError(
            f"latent dimension n={n} must not exceed the population size p={y.shape[1]}"
        )
    return np.where(mask, y, 0.0), mask


def empirical_lagged_covariances(
    y, mask, K: int, *, dtype=torch.float32, device: str | torch.device = "cpu"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sigma_hat[s, i, j] = mean of y_{t+s,i} y_{t,j} over t with both observed; counts N[s, i, j].

    ``y`` must be centred per neuron (as :func:`~neuroinverse.simulators.simulate_lds` returns it).
    Pairs never co-observed at lag s have N = 0 and Sigma_hat = 0. Dense p x p x K: small p only.
    The products run on ``device``; the results come back on the CPU.
    """
    y, mask = check_masked_data(y, mask)
    K = check_positive_int(K, "K")
    T = y.shape[0]
    if K >= T:
        raise ValueError(f"K={K} lags need more than K time points; got T={T}")
    Y = torch.as_tensor(y, dtype=dtype, device=device)
    M = torch.as_tensor(mask, dtype=dtype, device=device)
    S, N = [], []
    for s in range(K):
        S.append(Y[s:].T @ Y[: T - s])
        N.append(M[s:].T @ M[: T - s])
    S, N = torch.stack(S), torch.stack(N)
    return (S / N.clamp_min(1)).to("cpu", dtype), N.to("cpu", dtype)


class S3ID(nn.Module):
    """Loadings C (p, n), private variances R (p) and latent lag covariances X_s.

    ``mode="nl"``: X (K, n, n) free. ``mode="ln"``: X_s = A^s B B^T with A, B (n, n).
    """

    def __init__(
        self,
        p: int,
        n: int,
        K: int,
        *,
        mode: str = "nl",
        init_scale: float = 1.0,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        if mode not in ("nl", "ln"):
            raise ValueError(f"mode must be 'nl' or 'ln'; got {mode!r}")
        self.mode, self.K = mode, K
        self.C = nn.Parameter(init_scale * torch.randn(p, n, generator=generator))
        self.R = nn.Parameter(torch.zeros(p))
        if mode == "nl":
            self.X = nn.Parameter(torch.zeros(K, n, n))
        else:
            self.A = nn.Parameter(torch.diag(torch.linspace(0.89, 0.91, n)))
            self.B = nn.Parameter(torch.eye(n))

    def lag_covariances(self) -> torch.Tensor:
        """X_s for s = 0..K-1, (K, n, n)."""
        if self.mode == "nl":
            return self.X
        Pi = self.B @ self.B.T
        out, cur = [], Pi
        for _ in range(self.K):
            out.append(cur)
            cur = self.A @ cur
        return torch.stack(out)

    @torch.no_grad()
    def predict(self, rows, cols, lags=None) -> np.ndarray:
        """Model covariances for rows x cols at ``lags`` (default all), (len(lags), rows, cols);
        works for any pair."""
        X = self.lag_covariances()
        lags = range(self.K) if lags is None else lags
        rows, cols = torch.as_tensor(np.asarray(rows)), torch.as_tensor(np.asarray(cols))
        out = []
        for s in lags:
            S = self.C[rows] @ X[s] @ self.C[cols].T
            if s == 0:
                S = S + (rows[:, None] == cols[None, :]) * self.R[rows][:, None]
            out.append(S)
        return torch.stack(out).cpu().double().numpy()

    def eigenvalues(self) -> np.ndarray:
        if self.mode != "ln":
            raise ValueError("eigenvalues need the linear-dynamics parametrisation (mode 'ln')")
        return np.linalg.eigvals(self.A.detach().cpu().double().numpy())


def dense_loss(model: S3ID, Sigma: torch.Tensor, W: torch.Tensor) -> torch.Tensor:
    """0.5 * sum_s sum_ij W[s,i,j] (c_i^T X_s c_j + delta_{s0} delta_ij R_i - Sigma[s,i,j])^2
    (dense, small p)."""
    X = model.lag_covariances()
    pred = torch.einsum("in,snm,jm->sij", model.C, X, model.C)
    pred[0] = pred[0] + torch.diag(model.R)
    return 0.5 * (W * (pred - Sigma) ** 2).sum()


def stochastic_loss(C, X, R, ya, yb, ma, mb, s: int) -> torch.Tensor:
    """The loss of single time points: 0.5 * sum_b ||C_a X C_b^T (+R) - y_a y_b^T||^2 over
    observed pairs.

    ``ya`` = y_{t+s}, ``yb`` = y_t (B, p) with zeros where unobserved, ``ma``/``mb`` their masks
    (B, p). Only n x n Gram matrices C_a^T C_a and n-vectors C_a^T y_a are formed: O(B p n^2)
    work, O(B p n) memory.
    """
    Ca = C.unsqueeze(0) * ma.unsqueeze(-1)  # (B, p, n)
    Cb = C.unsqueeze(0) * mb.unsqueeze(-1)
    Ga = Ca.transpose(1, 2) @ Ca  # (B, n, n)
    Gb = Cb.transpose(1, 2) @ Cb
    u = (Ca * ya.unsqueeze(-1)).sum(1)  # (B, n)
    v = (Cb * yb.unsqueeze(-1)).sum(1)
    quad = torch.einsum("nm,bmk,lk,bln->b", X, Gb, X, Ga)  # ||C_a X C_b^T||_F^2
    cross = torch.einsum("bn,nm,bm->b", u, X, v)
    const = (ya * ya).sum(1) * (yb * yb).sum(1)
    loss = quad - 2 * cross + const
    if s == 0:
        both = ma * mb
        mdiag = torch.einsum("pn,nm,pm->p", C, X, C)
        loss = loss + (both * (R * R + 2 * R * (mdiag.unsqueeze(0) - ya * yb))).sum(1)
    return 0.5 * loss.sum()


@dataclass
class S3IDFit:
    """A fitted S3ID model (``model.mode == "ln"`` unless K = 1) and the loss histories of both
    stages."""

    model: S3ID
    history_nl: History
    history_ln: History | None


def _to_ln(nl: S3ID, generator: torch.Generator) -> S3ID:
    """Initialise the linear-dynamics stage from the free X_s: A by least squares, B = chol(X_0)."""
    p, n = nl.C.shape
    ln = S3ID(p, n, nl.K, mode="ln", generator=generator)
    with torch.no_grad():
        X = nl.X.detach().double()
        prev = torch.cat(list(X[:-1]), dim=1)  # X_{s+1} = A X_s, stacked horizontally
        nxt = torch.cat(list(X[1:]), dim=1)
        A = nxt @ torch.linalg.pinv(prev)
        X0 = (X[0] + X[0].T) / 2
        lo = torch.linalg.eigvalsh(X0).min()
        X0 = X0 + (1e-6 - lo).clamp_min(0) * torch.eye(n, dtype=X0.dtype)
        ln.C.copy_(nl.C)
        ln.R.copy_(nl.R)
        ln.A.copy_(A.float())
        ln.B.copy_(torch.linalg.cholesky(X0).float())
    return ln


def fit_s3id(
    y,
    mask,
    n: int,
    K: int,
    *,
    steps_nl: int = 1500,
    steps_ln: int = 1500,
    lr_nl: float = 0.01,
    lr_ln: float = 0.003,
    path: str = "dense",
    batch: int = 10,
    init_scale: float = 1.0,
    seed: int = 0,
    device: str | torch.device = "cpu",
    moments: tuple[torch.Tensor, torch.Tensor] | None = None,
    progress: bool = False,
) -> S3IDFit:
    """Fit S3ID by Adam on the moment-matching loss, stage "nl" then stage "ln" (skipped when
    K = 1).

    ``path="dense"`` minimises the full-batch loss (count-weighted pairs, normalised by the
    number of observed entries); ``path="stochastic"`` samples ``batch`` time points and one
    lag per step (the O(p n^2) path). Both minimise the same objective in expectation.
    """
    y, mask = check_masked_data(y, mask, n)
    n, K = check_positive_int(n, "n"), check_positive_int(K, "K")
    if path not in ("dense", "stochastic"):
        raise ValueError(f"path must be 'dense' or 'stochastic'; got {path!r}")
    T, p = y.shape
    g = torch.Generator().manual_seed(seed)
    dev = torch.device(device)
    model = S3ID(p, n, K, mode="nl", init_scale=init_scale, generator=g).to(dev)
    if path == "dense":
        Sigma, N = moments if moments is not None else empirical_lagged_covariances(y, mask, K)
        Sigma, N = Sigma[:K], N[:K]
        Sigma, W = Sigma.to(dev), (N / N.sum() * K).to(dev)

        def make_loss(m):
            return lambda step, gen: dense_loss(m, Sigma, W)
    else:
        Y = torch.as_tensor(y, dtype=torch.float32, device=dev)
        M = torch.as_tensor(mask, dtype=torch.float32, device=dev)
        scale = 1.0 / (batch * float(mask.mean()) ** 2 * p * p)

        def make_loss(m):
            def loss_fn(step, gen):
                s = int(torch.randint(K, (1,), generator=gen, device=gen.device))
                t = torch.randint(T - s, (batch,), generator=gen, device=gen.device)
                X = m.lag_covariances()[s]
                return scale * stochastic_loss(m.C, X, m.R, Y[t + s], Y[t], M[t + s], M[t], s)

            return loss_fn

    h_nl = fit(
        make_loss(model),
        module=model,
        optimizers=torch.optim.Adam(model.parameters(), lr=lr_nl, betas=(0.98, 0.99)),
        n_steps=steps_nl,
        seed=seed,
        progress=progress,
        desc="S3ID nl",
    )
    if K == 1:
        return S3IDFit(model, h_nl, None)
    ln = _to_ln(model.cpu(), g).to(dev)
    h_ln = fit(
        make_loss(ln),
        module=ln,
        optimizers=torch.optim.Adam(ln.parameters(), lr=lr_ln, betas=(0.95, 0.99)),
        n_steps=steps_ln,
        seed=seed + 1,
        progress=progress,
        desc="S3ID ln",
    )
    return S3IDFit(ln.cpu(), h_nl, h_ln)
