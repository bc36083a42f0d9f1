"""Hodgkin-Huxley parameterisations: which parameters are inferred, their prior and θ*.

The parameter sets of Lueckmann, Goncalves, Bassetto, Öcal, Nonnenmacher & Macke, "Flexible
statistical inference for mechanistic models of neural dynamics", NIPS 2017
(arXiv:1711.01861), section 4.3 and Fig. 3 (12 parameters, log-uniform prior), of the delfi
tutorial (2 parameters) and of the later 8-parameter variant, for the neuron with
Pospischil et al. (2008) kinetics of :mod:`~neuroinverse.simulators.hodgkin_huxley`. Values
follow the paper's reference code (``mackelab/delfi`` and ``mackelab/lfi-experiments``); the
code is the book's own.

Every model maps its θ to the 12 physical parameters of :data:`PHYSICAL_NAMES`
(:meth:`HHModel.physical`). :func:`resolve_hh_model` and :func:`check_hh_theta` are the
argument checks shared by the simulator and the task callable.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .._checks import as_tensor, check_choice
from .priors import BoxUniform

__all__ = [
    "PHYSICAL_NAMES",
    "HHModel",
    "hh_model",
    "resolve_hh_model",
    "check_hh_theta",
]

#: The 12 physical parameters every model maps to, in this order (signed values, natural units).
PHYSICAL_NAMES = (
    "g_Na",
    "g_K",
    "g_l",
    "E_Na",
    "E_K",
    "E_l",
    "g_M",
    "tau_max",
    "k_bn1",
    "k_bn2",
    "V_T",
    "sigma",
)
_DEFAULTS = dict(
    g_Na=50.0,
    g_K=5.0,
    g_l=0.1,
    E_Na=53.0,
    E_K=-107.0,
    E_l=-70.0,
    g_M=0.07,
    tau_max=600.0,
    k_bn1=0.5,
    k_bn2=40.0,
    V_T=-60.0,
    sigma=0.1,
)


@dataclass(frozen=True)
class HHModel:
    """A parameterisation of the HH neuron: which parameters are inferred, prior and θ*.

    θ lives in the space of the prior: natural units for the 2- and 8-parameter models, the
    natural log of the (sign-flipped, positive) parameters for the 12-parameter model.

    Attributes:
        name: ``"2param"``, ``"8param"``, ``"12param"`` or ``"12param-extended"``.
        names: names of the inferred parameters (``"-E_K"`` means the sign-flipped value).
        theta_star: ground truth ``(d,)`` in the prior's space.
        prior: :class:`~neuroinverse.simulators.priors.BoxUniform` in the prior's space.
        log_space: θ is the log of the natural parameters.
        fixed: values of the physical parameters that are not inferred.
    """

    name: str
    names: tuple[str, ...]
    theta_star: torch.Tensor
    prior: BoxUniform
    log_space: bool
    fixed: dict[str, float]

    @property
    def dim(self) -> int:
        return len(self.names)

    def natural(self, theta: torch.Tensor) -> torch.Tensor:
        """θ in natural units (``exp`` of a log-space θ; signs still flipped), ``(n, d)``."""
        return theta.exp() if self.log_space else theta

    def physical(self, theta: torch.Tensor) -> torch.Tensor:
        """The 12 signed physical parameters ``(n, 12)`` in :data:`PHYSICAL_NAMES` order."""
        nat = self.natural(theta)
        cols = []
        for name in PHYSICAL_NAMES:
            if name in self.names:
                cols.append(nat[:, self.names.index(name)])
            elif "-" + name in self.names:
                cols.append(-nat[:, self.names.index("-" + name)])
            else:
                cols.append(torch.full_like(nat[:, 0], self.fixed[name]))
        return torch.stack(cols, dim=1)


def hh_model(name: str = "2param") -> HHModel:
    """The parameter sets of the paper (Fig. 3), of the delfi tutorial and of the 8-parameter
    variant.

    * ``"2param"``: θ = (ḡ_Na, ḡ_K), θ* = (50, 5), uniform prior [0.5, 80] × [1e-4, 15]
      (delfi tutorial; the book's CI model).
    * ``"8param"``: (ḡ_Na, ḡ_K, g_l, ḡ_M, τ_max, -V_T, σ, -E_l), uniform prior.
    * ``"12param"``: (ḡ_Na, ḡ_K, g_l, E_Na, -E_K, -E_l, ḡ_M, τ_max, k_βn1, k_βn2, -V_T, σ),
      log θ uniform in [log 0.5θ*, log 1.5θ*] (paper Fig. 3); ``"12param-extended"``:
      [log 0.01θ*, log 3θ*].
    """
    check_choice(name, "model", ("2param", "8param", "12param", "12param-extended"))
    if name == "2param":
        names = ("g_Na", "g_K")
        star = [50.0, 5.0]
        prior = BoxUniform([0.5, 1e-4], [80.0, 15.0])
        return HHModel(name, names, torch.tensor(star), prior, False, dict(_DEFAULTS))
    if name == "8param":
        names = ("g_Na", "g_K", "g_l", "g_M", "tau_max", "-V_T", "sigma", "-E_l")
        star = [50.0, 5.0, 0.1, 0.07, 600.0, 60.0, 0.1, 70.0]
        prior = BoxUniform(
            [0.5, 1e-4, 1e-4, 1e-4, 50.0, 40.0, 1e-4, 35.0],
            [80.0, 15.0, 0.6, 0.6, 3000.0, 90.0, 0.15, 100.0],
        )
        return HHModel(name, names, torch.tensor(star), prior, False, dict(_DEFAULTS))
    # "12param" or "12param-extended"
    names = (
        "g_Na",
        "g_K",
        "g_l",
        "E_Na",
        "-E_K",
        "-E_l",
        "g_M",
        "tau_max",
        "k_bn1",
        "k_bn2",
        "-V_T",
        "sigma",
    )
    star = torch.tensor([50.0, 5.0, 0.1, 50.0, 90.0, 70.0, 0.07, 600.0, 0.5, 40.0, 60.0, 0.5])
    lo, hi = (0.5, 1.5) if name == "12param" else (0.01, 3.0)
    prior = BoxUniform(torch.log(lo * star), torch.log(hi * star))
    return HHModel(name, names, torch.log(star), prior, True, dict(_DEFAULTS))


def resolve_hh_model(model: str | HHModel) -> HHModel:
    """``model`` itself if it is an :class:`HHModel`, else :func:`hh_model` of that name."""
    return model if isinstance(model, HHModel) else hh_model(model)


def check_hh_theta(theta, model: HHModel, name: str = "theta") -> torch.Tensor:
    """``theta`` as a finite ``(n, d)`` tensor for ``model``; one ``(d,)`` set becomes
    ``(1, d)``."""
    t = theta if isinstance(theta, torch.Tensor) else as_tensor(theta, name)
    if t.ndim == 1 and t.numel() == model.dim:
        t = t.unsqueeze(0)
    if t.ndim != 2 or t.shape[1] != model.dim:
        raise ValueError(
            f"{name} must have shape (n, {model.dim}) for model {model.name!r}; "
            f"got {tuple(t.shape)}"
        )
    if t.shape[0] < 1:
        raise ValueError(f"{name} must hold at least one parameter set")
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return t
