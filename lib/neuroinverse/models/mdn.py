"""Mixture density network (MDN) with full-covariance components, optionally Bayesian (SVI).

The density estimator of SNPE-B (Lueckmann, Goncalves, Bassetto, Öcal, Nonnenmacher &
Macke, "Flexible statistical inference for mechanistic models of neural dynamics", NIPS 2017,
arXiv:1711.01861, section 2 and supplement; reference code ``mackelab/delfi``): a network
maps the (z-scored) data x to the parameters of a mixture of K Gaussians over the (z-scored)
parameters θ,

    log q(θ | x) = logsumexp_k [ log a_k − ½ ‖U_k (θ − μ_k)‖² + log |det U_k| ] − (d/2) log 2π,

where U_k is the upper-triangular Cholesky factor of the k-th precision matrix
(``P_k = U_kᵀ U_k``, positive diagonal through ``exp``).

Contributions of the paper implemented here:

* **Bayesian MDN (SVI).** Every weight has a Gaussian variational posterior N(m, s²); the
  forward pass uses the local reparameterisation trick (sample the pre-activations, mean
  ``x·m_W + m_b``, variance ``x²·s_W² + s_b²``). Means start He-normal (biases 0) and
  log-standard deviations at −5. :meth:`MDN.kl` is the KL divergence to an isotropic Gaussian
  prior of precision λ (round 1) or to a snapshot of the previous round's variational
  posterior (continual learning, rounds ≥ 2). Predictions use the mean weights.
* **Learned imputation of missing features.** NaN entries of the z-scored data are replaced
  by a learned vector r (initialised N(0, 0.01²)), trained jointly with the network.
* **Learned summary features.** :class:`GRUEmbedding` reads a raw trace (paper Fig. 5) and
  feeds its final hidden state to the MDN.

:class:`MDN` subclasses :class:`~neuroinverse.models.density.ConditionalDensity`: value and
context are z-scored with statistics set once from round-1 data.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from .._checks import as_tensor, check_positive, check_positive_int
from .density import ConditionalDensity

__all__ = ["BayesianLinear", "GRUEmbedding", "MDN", "gaussian_kl"]


def gaussian_kl(
    mean_q: torch.Tensor, log_std_q: torch.Tensor, mean_p: torch.Tensor, log_std_p: torch.Tensor
) -> torch.Tensor:
    """Σ KL(N(mean_q, s_q²) ‖ N(mean_p, s_p²)) over all elements (a scalar)."""
    var_q, var_p = torch.exp(2 * log_std_q), torch.exp(2 * log_std_p)
    return (log_std_p - log_std_q + (var_q + (mean_q - mean_p) ** 2) / (2 * var_p) - 0.5).sum()


class _SVIGaussianKL(torch.autograd.Function):
    """:func:`gaussian_kl` of the flattened (mean, log_std) pairs ``params`` to a fixed reference,
    as one autograd node with the closed-form gradient."""

    @staticmethod
    def forward(ctx, mean_p, log_std_p, *params):
        m = torch.cat([p.reshape(-1) for p in params[0::2]])
        s = torch.cat([p.reshape(-1) for p in params[1::2]])
        inv_var_p = torch.exp(-2 * log_std_p)
        var_q = torch.exp(2 * s)
        dm = m - mean_p
        kl = (log_std_p - s + 0.5 * (var_q + dm * dm) * inv_var_p - 0.5).sum()
        sizes = [p.numel() for p in params[0::2]]
        ctx.grad_m = (dm * inv_var_p).split(sizes)
        ctx.grad_s = (var_q * inv_var_p - 1.0).split(sizes)
        ctx.shapes = [p.shape for p in params[0::2]]
        return kl

    @staticmethod
    def backward(ctx, grad):
        out = []
        for gm, gs, shape in zip(ctx.grad_m, ctx.grad_s, ctx.shapes, strict=True):
            out += [(grad * gm).reshape(shape), (grad * gs).reshape(shape)]
        return (None, None, *out)


class BayesianLinear(nn.Module):
    """Linear layer with a factorised Gaussian posterior over weights and biases.

    Args:
        in_features, out_features: layer sizes.
        init_log_std: initial log standard deviation of every weight (−5 in delfi).

    The forward pass is stochastic (local reparameterisation) when ``stochastic`` is true,
    otherwise it uses the mean weights.
    """

    def __init__(self, in_features: int, out_features: int, *, init_log_std: float = -5.0) -> None:
        super().__init__()
        self.weight_mean = nn.Parameter(
            torch.randn(out_features, in_features) * math.sqrt(2.0 / in_features)
        )
        self.weight_log_std = nn.Parameter(
            torch.full((out_features, in_features), float(init_log_std))
        )
        self.bias_mean = nn.Parameter(torch.zeros(out_features))
        self.bias_log_std = nn.Parameter(torch.full((out_features,), float(init_log_std)))

    def forward(
        self, x: torch.Tensor, *, stochastic: bool = False, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        mean = torch.addmm(self.bias_mean, x, self.weight_mean.T)
        if not stochastic:
            return mean
        var = torch.addmm(
            torch.exp(2 * self.bias_log_std), x * x, torch.exp(2 * self.weight_log_std).T
        )
        dev = generator.device if generator is not None else mean.device
        eps = torch.randn(mean.shape, generator=generator, device=dev).to(mean.device)
        return torch.addcmul(mean, var.sqrt(), eps)

    def variational(self) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
        """``(name, mean, log_std)`` of the weight and the bias posteriors."""
        return [
            ("weight", self.weight_mean, self.weight_log_std),
            ("bias", self.bias_mean, self.bias_log_std),
        ]


class GRUEmbedding(nn.Module):
    """GRU summary network for raw traces (paper Fig. 5): only the final hidden state is used.

    Args:
        n_channels: channels per time step (voltage and input current: 2).
        hidden: GRU units (25 in the paper).

    Input ``(n, T·n_channels)`` (time-major flattening of ``(n, T, n_channels)``); output
    ``(n, hidden)``.
    """

    def __init__(self, n_channels: int = 2, hidden: int = 25) -> None:
        super().__init__()
        self.n_channels = int(n_channels)
        self.hidden = int(hidden)
        self.gru = nn.GRU(self.n_channels, self.hidden, batch_first=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] % self.n_channels:
            raise ValueError(
                f"context width {x.shape[1]} is not a multiple of n_channels={self.n_channels}"
            )
        _, h = self.gru(x.reshape(x.shape[0], -1, self.n_channels))
        return h[-1]


class MDN(ConditionalDensity):
    """Mixture density network q(θ | x) with K full-covariance Gaussian components.

    Args:
        value_dim: d, dimension of θ.
        context_dim: dimension of x (of the flattened trace when an ``embedding`` is used).
        n_components: K.
        hidden: sizes of the fully connected tanh layers.
        bayesian: SVI weights (local reparameterisation) instead of point estimates.
        prior_precision: λ of the isotropic Gaussian weight prior of :meth:`kl` (delfi 0.01).
        init_log_std: initial log-std of the Bayesian weights (−5).
        impute: learn an imputation vector for NaN entries of x (else NaN raises).
        embedding: optional module applied to the z-scored (and imputed) x first.
        embedding_dim: output width of ``embedding``.

    Example:
        >>> q = MDN(2, 3, n_components=2, hidden=(10,))
        >>> q.log_prob(torch.zeros(4, 2), torch.zeros(3)).shape
        torch.Size([4])
    """

    def __init__(
        self,
        value_dim: int,
        context_dim: int,
        *,
        n_components: int = 2,
        hidden: Sequence[int] = (20, 20),
        bayesian: bool = True,
        prior_precision: float = 0.01,
        init_log_std: float = -5.0,
        impute: bool = False,
        embedding: nn.Module | None = None,
        embedding_dim: int | None = None,
    ) -> None:
        super().__init__(value_dim, context_dim)
        n_components = check_positive_int(n_components, "n_components")
        hidden = tuple(int(h) for h in hidden)
        if any(h < 1 for h in hidden):
            raise ValueError(f"hidden sizes must be positive; got {hidden!r}")
        check_positive(prior_precision, "prior_precision")
        if (embedding is None) != (embedding_dim is None):
            raise ValueError("give embedding and embedding_dim together")
        self.n_components, self.hidden, self.bayesian = n_components, hidden, bool(bayesian)
        self.prior_precision, self.impute = float(prior_precision), bool(impute)
        self.embedding = embedding
        d, K = value_dim, n_components
        self._n_off = d * (d - 1) // 2
        sizes = [embedding_dim if embedding is not None else context_dim, *hidden]
        n_out = K + 2 * K * d + K * self._n_off

        def layer(i, o):
            if self.bayesian:
                return BayesianLinear(i, o, init_log_std=init_log_std)
            lin = nn.Linear(i, o)
            nn.init.normal_(lin.weight, std=math.sqrt(2.0 / i))
            nn.init.zeros_(lin.bias)
            return lin

        self.layers = nn.ModuleList(
            [layer(i, o) for i, o in zip(sizes[:-1], sizes[1:], strict=True)]
        )
        self.head = layer(sizes[-1], n_out)
        if self.impute:
            self.impute_values = nn.Parameter(0.01 * torch.randn(context_dim))
        iu = torch.triu_indices(d, d, offset=1)
        self.register_buffer("_triu_flat", iu[0] * d + iu[1], persistent=False)
        self.register_buffer("_triu_rows", iu[0].clone(), persistent=False)
        self.register_buffer("_triu_cols", iu[1].clone(), persistent=False)
        self._svi_layers = [m for m in self.modules() if isinstance(m, BayesianLinear)]

    # -- network -------------------------------------------------------------------------------
    def _linear(self, lin: nn.Module, h: torch.Tensor, stochastic: bool, generator) -> torch.Tensor:
        if isinstance(lin, BayesianLinear):
            return lin(h, stochastic=stochastic, generator=generator)
        return lin(h)

    def _fill_missing(self, context_z: torch.Tensor) -> torch.Tensor:
        if self.impute:
            return torch.where(
                torch.isnan(context_z), self.impute_values.expand_as(context_z), context_z
            )
        return context_z

    def _head(self, context_z: torch.Tensor, stochastic: bool, generator):
        """Raw network output split into ``logits (n, K)``, ``mu (n, K, d)``, the log-diagonal
        ``(n, K, d)`` and the strict upper triangle ``(n, K, d(d-1)/2)`` of U."""
        h = self._fill_missing(context_z)
        if self.embedding is not None:
            h = self.embedding(h)
        for lin in self.layers:
            h = torch.tanh(self._linear(lin, h, stochastic, generator))
        out = self._linear(self.head, h, stochastic, generator)
        n, K, d = out.shape[0], self.n_components, self.value_dim
        logits, mu, diag, off = out.split([K, K * d, K * d, K * self._n_off], dim=1)
        return logits, mu.reshape(n, K, d), diag.reshape(n, K, d), off.reshape(n, K, self._n_off)

    def mixture_z(
        self,
        context_z: torch.Tensor,
        *,
        stochastic: bool = False,
        generator: torch.Generator | None = None,
    ):
        """Mixture parameters in z-scored coordinates.

        Args:
            context_z: ``(n, d_c)`` z-scored data (NaN allowed when imputing).
            stochastic: sample the Bayesian weights (training).
            generator: noise of the stochastic pass.

        Returns:
            ``log_a (n, K)``, ``mu (n, K, d)``, ``U (n, K, d, d)`` upper-triangular precision
            factors with positive diagonal.
        """
        logits, mu, diag, off = self._head(context_z, stochastic, generator)
        n, K, d = mu.shape
        U = torch.diag_embed(torch.exp(diag))
        if self._n_off:
            flat = torch.zeros(n, K, d * d, device=mu.device, dtype=mu.dtype)
            U = U + flat.index_add(2, self._triu_flat, off).reshape(n, K, d, d)
        return torch.log_softmax(logits, dim=1), mu, U

    @staticmethod
    def mixture_log_prob(
        value: torch.Tensor, log_a: torch.Tensor, mu: torch.Tensor, U: torch.Tensor
    ) -> torch.Tensor:
        """The mixture density: logsumexp_k[log a_k − ½‖U_k(θ−μ_k)‖² + log|det U_k|] − (d/2) log 2π.

        Args:
            value: ``(n, d)``; log_a ``(n, K)``; mu ``(n, K, d)``; U ``(n, K, d, d)``.
        """
        diff = value[:, None, :] - mu
        y = (U @ diff.unsqueeze(-1)).squeeze(-1)
        logdet = torch.log(torch.diagonal(U, dim1=-2, dim2=-1)).sum(-1)
        d = value.shape[1]
        return torch.logsumexp(log_a - 0.5 * (y * y).sum(-1) + logdet, dim=1) - 0.5 * d * math.log(
            2 * math.pi
        )

    def _log_prob(
        self,
        value_z: torch.Tensor,
        context_z: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        # the same formula without forming U:
        # U(θ − μ) = exp(diag)·(θ − μ) + (strict upper part)(θ − μ),
        # log|det U| = Σ diag (fewer autograd nodes per training step than mixture_log_prob)
        stochastic = self.training and self.bayesian
        logits, mu, diag, off = self._head(context_z, stochastic, generator)
        diff = value_z[:, None, :] - mu
        y = torch.exp(diag) * diff
        if self._n_off:
            y = y.index_add(2, self._triu_rows, off * diff.index_select(2, self._triu_cols))
        comp = torch.log_softmax(logits, dim=1) + diag.sum(-1) - 0.5 * (y * y).sum(-1)
        return torch.logsumexp(comp, dim=1) - 0.5 * self.value_dim * math.log(2 * math.pi)

    def _sample(
        self, n: int, context_z: torch.Tensor, generator: torch.Generator | None
    ) -> torch.Tensor:
        log_a, mu, U = self.mixture_z(context_z, stochastic=False)
        dev = generator.device if generator is not None else self.device
        k = torch.multinomial(log_a[0].exp().to(dev), n, replacement=True, generator=generator).to(
            self.device
        )
        eps = self._base_noise(n, generator)
        # θ = μ_k + U_k⁻¹ ε has covariance U_k⁻¹U_k⁻ᵀ = P_k⁻¹
        z = torch.linalg.solve_triangular(U[0][k], eps.unsqueeze(-1), upper=True).squeeze(-1)
        return mu[0][k] + z

    # -- public API with NaN-aware context ------------------------------------------------------
    def _context_2d(self, context, *, allow_1d: bool) -> torch.Tensor:
        t = context if isinstance(context, torch.Tensor) else as_tensor(context, "context")
        if t.ndim == 1 and allow_1d:
            t = t.unsqueeze(0)
        if t.ndim != 2 or t.shape[1] != self.context_dim:
            want = f"(n, {self.context_dim})" + (f" or ({self.context_dim},)" if allow_1d else "")
            raise ValueError(f"context must have shape {want}; got {tuple(t.shape)}")
        if torch.isinf(t).any():
            raise ValueError("context contains infinite values")
        if not self.impute and torch.isnan(t).any():
            raise ValueError(
                "context contains NaN (build the MDN with impute=True for missing features)"
            )
        return t.to(device=self.device, dtype=torch.float32)

    @torch.no_grad()
    def set_standardization(self, value, context, *, min_std: float = 1e-6) -> None:
        """Set the z-scoring from round-1 data; with ``impute=True`` NaN entries of x are
        ignored."""
        if not self.impute:
            return super().set_standardization(value, context, min_std=min_std)
        c = self._context_2d(context, allow_1d=False)
        mean = torch.nanmean(c, 0)
        if torch.isnan(mean).any():
            raise ValueError("a context feature is NaN in every row; it cannot be standardised")
        super().set_standardization(value, torch.where(torch.isnan(c), mean, c), min_std=min_std)
        cnt = (~torch.isnan(c)).sum(0).clamp_min(2)
        var = torch.nansum((c - mean) ** 2, 0) / (cnt - 1)
        self.context_scale.copy_(var.sqrt().clamp_min(min_std))

    def log_prob(self, value, context, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """``log q(value | context)`` in original units, ``(n,)``.

        In training mode a Bayesian MDN samples its weights (noise from ``generator``); in
        eval mode it uses the mean weights. NaN entries of ``context`` are imputed when the
        MDN was built with ``impute=True``.
        """
        v = self._rows(value, "value", self.value_dim)
        c = self._context_2d(context, allow_1d=True)
        if c.shape[0] == 1 and v.shape[0] != 1:
            c = c.expand(v.shape[0], -1)
        if c.shape[0] != v.shape[0]:
            raise ValueError(
                f"context must have 1 or {v.shape[0]} rows (one per value); got {c.shape[0]}"
            )
        out = self._log_prob(self.standardize_value(v), self.standardize_context(c), generator)
        return out - self.log_abs_det_value_scale()

    def log_prob_standardized(
        self,
        value_z: torch.Tensor,
        context_z: torch.Tensor,
        *,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """log q in z-scored coordinates, ``(n,)``, without argument checks (training loops).

        ``log_prob(v, c) == log_prob_standardized(z(v), z(c)) - Σ_j log s_j``.
        """
        return self._log_prob(value_z, context_z, generator)

    def sample(self, n: int, context, *, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` draws from q(· | context) with the mean weights, ``(n, d)``."""
        n = check_positive_int(n, "n")
        c = self._context_2d(context, allow_1d=True)
        if c.shape[0] != 1:
            raise ValueError(
                f"context must be one context, (d_c,) or (1, d_c); got {tuple(c.shape)}"
            )
        with torch.no_grad():
            z = self._sample(n, self.standardize_context(c), generator)
        return z * self.value_scale + self.value_shift

    @torch.no_grad()
    def mixture(self, context) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The mixture q(θ | context) in original units (mean weights).

        Returns:
            ``weights (K,)``, ``means (K, d)``, ``covariances (K, d, d)``.
        """
        c = self._context_2d(context, allow_1d=True)
        if c.shape[0] != 1:
            raise ValueError(
                f"context must be one context, (d_c,) or (1, d_c); got {tuple(c.shape)}"
            )
        log_a, mu, U = self.mixture_z(self.standardize_context(c), stochastic=False)
        cov_z = torch.cholesky_inverse(U[0], upper=True)
        s = self.value_scale
        return log_a[0].exp(), mu[0] * s + self.value_shift, cov_z * s[:, None] * s[None, :]

    @torch.no_grad()
    def moments(self, context) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean ``(d,)`` and covariance ``(d, d)`` of the mixture q(θ | context)."""
        w, m, S = self.mixture(context)
        mean = (w[:, None] * m).sum(0)
        dm = m - mean
        cov = (w[:, None, None] * (S + dm[:, :, None] * dm[:, None, :])).sum(0)
        return mean, cov

    # -- SVI --------------------------------------------------------------------------------------
    def _flat_variational(self) -> tuple[torch.Tensor, torch.Tensor]:
        means, log_stds = [], []
        for layer in self._svi_layers:  # module order, listed once at construction
            for _, m, s in layer.variational():
                means.append(m.reshape(-1))
                log_stds.append(s.reshape(-1))
        return torch.cat(means), torch.cat(log_stds)

    def posterior_snapshot(self) -> dict[str, torch.Tensor]:
        """Detached copy of every variational mean and log-std (flattened, in layer order):
        the KL reference of the next round (continual learning)."""
        if not self.bayesian:
            raise ValueError("posterior_snapshot needs a Bayesian MDN (bayesian=True)")
        m, s = self._flat_variational()
        return {"mean": m.detach().clone(), "log_std": s.detach().clone()}

    def kl(self, reference: dict[str, torch.Tensor] | None = None) -> torch.Tensor:
        """KL(q(w) ‖ p(w)) summed over all Bayesian weights and biases (0 for a non-Bayesian MDN).

        Args:
            reference: ``None`` for the isotropic prior N(0, 1/λ) (round 1); else a
                :meth:`posterior_snapshot` (rounds ≥ 2: continual learning).

        The value is :func:`gaussian_kl`; it enters autograd as one node whose gradient is the
        closed form ∂KL/∂m = (m − m_p)/σ_p², ∂KL/∂log σ = σ²/σ_p² − 1 (the training loop calls
        this every step).
        """
        if not self.bayesian:
            return torch.zeros((), device=self.device)
        params = [
            t for layer in self._svi_layers for _, m, s in layer.variational() for t in (m, s)
        ]
        n = sum(p.numel() for p in params[0::2])
        if reference is None:
            mean_p = torch.zeros(n, device=self.device)
            log_std_p = torch.full((n,), -0.5 * math.log(self.prior_precision), device=self.device)
        else:
            if set(reference) != {"mean", "log_std"} or reference["mean"].shape != (n,):
                raise ValueError("reference must be a posterior_snapshot() of this network")
            mean_p, log_std_p = reference["mean"], reference["log_std"]
        return _SVIGaussianKL.apply(mean_p, log_std_p, *params)

    def extra_repr(self) -> str:
        return (
            f"value_dim={self.value_dim}, context_dim={self.context_dim}, K={self.n_components}, "
            f"hidden={self.hidden}, bayesian={self.bayesian}, impute={self.impute}"
        )
