"""Hodgkin-Huxley neuron with Pospischil et al. (2008) kinetics, batched over parameter sets.

The simulator of Lueckmann, Goncalves, Bassetto, Öcal, Nonnenmacher & Macke, "Flexible
statistical inference for mechanistic models of neural dynamics", NIPS 2017
(arXiv:1711.01861), section 4.3 and Fig. 3, with the parameter sets of the paper
(12 parameters, log-uniform prior), of the delfi tutorial (2 parameters) and of the later
8-parameter variant. Kinetics, stimulus and features follow the paper's reference code
(``mackelab/delfi`` and ``mackelab/lfi-experiments``, Pospischil et al. 2008 kinetics); the
code is the book's own.

Model (V in mV, t in ms, conductances in mS/cm², C = 1 µF/cm², currents in µA/cm²)::

    C dV/dt = -ḡ_Na m³h (V - E_Na) - ḡ_K n⁴ (V - E_K) - g_l (V - E_l) - ḡ_M p (V - E_K)
              + I_inj(t) + σ ξ(t)

with Hodgkin-Huxley gates m, h, n (rates shifted by the threshold offset V_T) and the slow
M-type potassium gate p. Integration is exponential Euler (V relaxes towards
``V_∞ = (Σ g_i E_i + I) / Σ g_i`` at rate ``Σ g_i / C``, each gate towards ``q_∞`` at rate
``1/τ_q``), stable at dt = 0.025 ms. The white noise enters as ``σ N(0, 1)/√dt`` added to
the current each step (Euler-Maruyama). On the CPU every trace is integrated by a compiled
``numba`` loop in float64 (one pass over time per trace, no per-step Python overhead); on a
CUDA device all traces of a batch are integrated together as torch tensors of shape ``(n,)``.

Summary features (:func:`hh_summary`): the 7-feature set of the delfi tutorial, the
20-feature "moments" set of the NIPS 2017 paper, and a hand-crafted electrophysiology set
whose spike-dependent features are NaN when undefined (too few spikes): the paper's
"missing features" case. Failed runs (non-finite or exploding voltage) are flagged in
:attr:`HHTraces.failed`; nothing is dropped silently.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numba
import numpy as np
import torch

from .._checks import as_tensor, check_positive
from .priors import BoxUniform

__all__ = [
    "SOMA_AREA",
    "I_STEP",
    "PHYSICAL_NAMES",
    "FEATURE_SETS",
    "HHModel",
    "HHTraces",
    "HHSimulator",
    "hh_model",
    "simulate_hh",
    "hh_summary",
    "raw_trace_context",
    "spike_times",
    "feature_report",
    "hh_resting_potential",
    "pilot_zscore",
]

#: Soma area π (70 µm)² in cm².
SOMA_AREA = math.pi * (70e-4) ** 2
#: Step current 0.5 nA spread over the soma area, µA/cm² (≈ 3.25).
I_STEP = 5e-4 / SOMA_AREA
#: The 12 physical parameters every model maps to, in this order (signed values, natural units).
PHYSICAL_NAMES = ("g_Na", "g_K", "g_l", "E_Na", "E_K", "E_l", "g_M", "tau_max", "k_bn1", "k_bn2", "V_T", "sigma")
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
#: Feature sets of :func:`hh_summary` and their feature names.
FEATURE_SETS = {
    "7": (
        "spike count",
        "resting mean (mV)",
        "resting std (mV)",
        "stimulus mean (mV)",
        "stimulus std (mV)",
        "skewness",
        "kurtosis",
    ),
    "moments": (
        ("spike count",)
        + tuple(f"autocorr {k / 10:.1f} ms" for k in range(1, 11))
        + ("resting mean (mV)", "stimulus mean (mV)")
        + tuple(f"central moment {k}" for k in range(2, 9))
    ),
    "handcrafted": (
        "firing rate (Hz)",
        "AP latency (ms)",
        "AP overshoot (mV)",
        "resting potential (mV)",
        "AHP depth (mV)",
        "accommodation index",
        "spike width (ms)",
    ),
}


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
    """The parameter sets of the paper (Fig. 3), of the delfi tutorial and of the 8-parameter variant.

    * ``"2param"``: θ = (ḡ_Na, ḡ_K), θ* = (50, 5), uniform prior [0.5, 80] × [1e-4, 15]
      (delfi tutorial; the book's CI model).
    * ``"8param"``: (ḡ_Na, ḡ_K, g_l, ḡ_M, τ_max, -V_T, σ, -E_l), uniform prior.
    * ``"12param"``: (ḡ_Na, ḡ_K, g_l, E_Na, -E_K, -E_l, ḡ_M, τ_max, k_βn1, k_βn2, -V_T, σ),
      log θ uniform in [log 0.5θ*, log 1.5θ*] (paper Fig. 3); ``"12param-extended"``:
      [log 0.01θ*, log 3θ*].
    """
    if name == "2param":
        names = ("g_Na", "g_K")
        star = [50.0, 5.0]
        prior = BoxUniform([0.5, 1e-4], [80.0, 15.0])
        return HHModel(name, names, torch.tensor(star), prior, False, dict(_DEFAULTS))
    if name == "8param":
        names = ("g_Na", "g_K", "g_l", "g_M", "tau_max", "-V_T", "sigma", "-E_l")
        star = [50.0, 5.0, 0.1, 0.07, 600.0, 60.0, 0.1, 70.0]
        prior = BoxUniform(
            [0.5, 1e-4, 1e-4, 1e-4, 50.0, 40.0, 1e-4, 35.0], [80.0, 15.0, 0.6, 0.6, 3000.0, 90.0, 0.15, 100.0]
        )
        return HHModel(name, names, torch.tensor(star), prior, False, dict(_DEFAULTS))
    if name in ("12param", "12param-extended"):
        names = ("g_Na", "g_K", "g_l", "E_Na", "-E_K", "-E_l", "g_M", "tau_max", "k_bn1", "k_bn2", "-V_T", "sigma")
        star = torch.tensor([50.0, 5.0, 0.1, 50.0, 90.0, 70.0, 0.07, 600.0, 0.5, 40.0, 60.0, 0.5])
        lo, hi = (0.5, 1.5) if name == "12param" else (0.01, 3.0)
        prior = BoxUniform(torch.log(lo * star), torch.log(hi * star))
        return HHModel(name, names, torch.log(star), prior, True, dict(_DEFAULTS))
    raise ValueError(f"model must be '2param', '8param', '12param' or '12param-extended'; got {name!r}")


def _resolve_model(model: str | HHModel) -> HHModel:
    return model if isinstance(model, HHModel) else hh_model(model)


@dataclass
class HHTraces:
    """Simulated voltage traces.

    Attributes:
        voltage: ``(n, n_t)`` membrane potential (mV), samples at ``t = k dt``.
        current: injected current (µA/cm²), ``(n_t,)`` for the step or ``(n, n_t)`` for OU.
        dt: time step (ms).
        t_on, t_off: stimulus window (ms).
        failed: ``(n,)`` bool, the run produced non-finite or exploding (|V| > 1000 mV) values.
    """

    voltage: torch.Tensor
    current: torch.Tensor
    dt: float
    t_on: float
    t_off: float
    failed: torch.Tensor

    @property
    def n(self) -> int:
        return self.voltage.shape[0]

    @property
    def t(self) -> torch.Tensor:
        """Sample times ``(n_t,)`` in ms."""
        return torch.arange(self.voltage.shape[1], dtype=torch.float64) * self.dt

    def subset(self, idx) -> HHTraces:
        cur = self.current if self.current.ndim == 1 else self.current[idx]
        return HHTraces(self.voltage[idx], cur, self.dt, self.t_on, self.t_off, self.failed[idx])


# -- kinetics (Pospischil et al. 2008) -------------------------------------------------------
def _efun(z: torch.Tensor) -> torch.Tensor:
    """``z / (exp(z) - 1)`` with the removable singularity at 0 replaced by ``1 - z/2``."""
    return torch.where(z.abs() < 1e-4, 1.0 - 0.5 * z, z / torch.expm1(z))


def _gate_rates(V: torch.Tensor, VT: torch.Tensor, kbn1: torch.Tensor, kbn2: torch.Tensor):
    """(α, β) of m, h, n at voltage V (1/ms)."""
    u = V - VT
    am = 1.28 * _efun(-(u - 13.0) / 4.0)
    bm = 1.4 * _efun((u - 40.0) / 5.0)
    ah = 0.128 * torch.exp(-(u - 17.0) / 18.0)
    bh = 4.0 * torch.sigmoid((u - 40.0) / 5.0)
    an = 0.16 * _efun(-(u - 15.0) / 5.0)
    bn = kbn1 * torch.exp(-(u - 10.0) / kbn2)
    return am, bm, ah, bh, an, bn


def _p_inf_tau(V: torch.Tensor, tau_max: torch.Tensor):
    p_inf = torch.sigmoid((V + 35.0) / 10.0)
    tau = tau_max / (3.3 * torch.exp((V + 35.0) / 20.0) + torch.exp(-(V + 35.0) / 20.0))
    return p_inf, tau


def _steady_gates(V, VT, kbn1, kbn2, tau_max):
    am, bm, ah, bh, an, bn = _gate_rates(V, VT, kbn1, kbn2)
    return am / (am + bm), ah / (ah + bh), an / (an + bn), _p_inf_tau(V, tau_max)[0]


def _check_theta(theta, model: HHModel, name: str = "theta") -> torch.Tensor:
    t = theta if isinstance(theta, torch.Tensor) else as_tensor(theta, name)
    if t.ndim == 1 and t.numel() == model.dim:
        t = t.unsqueeze(0)
    if t.ndim != 2 or t.shape[1] != model.dim:
        raise ValueError(f"{name} must have shape (n, {model.dim}) for model {model.name!r}; got {tuple(t.shape)}")
    if t.shape[0] < 1:
        raise ValueError(f"{name} must hold at least one parameter set")
    if not torch.isfinite(t).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return t


def _step_current(n_t: int, dt: float, t_on: float, t_off: float, amplitude: float) -> torch.Tensor:
    t = torch.arange(n_t, dtype=torch.float64) * dt
    return torch.where((t >= t_on) & (t < t_off), amplitude, 0.0).float()


def _ou_current(
    n: int,
    n_t: int,
    dt: float,
    t_on: float,
    t_off: float,
    amplitude: float,
    generator: torch.Generator | None,
    tau: float = 3.0,
) -> torch.Tensor:
    """Ornstein-Uhlenbeck current (paper Fig. 5 input): τ = 3 ms, mean 0.2·A, noise amplitude
    2·A·√τ (stationary sd √2·A), started at its mean, gated to the step window. ``(n, n_t)``."""
    mu, s = 0.2 * amplitude, 2.0 * amplitude * math.sqrt(tau)
    sd = s / math.sqrt(2.0 * tau)
    a = math.exp(-dt / tau)
    eps = torch.randn(n_t, n, generator=generator, dtype=torch.float64) * sd * math.sqrt(1.0 - a * a)
    out = torch.empty(n_t, n, dtype=torch.float64)
    cur = torch.full((n,), mu, dtype=torch.float64)
    for k in range(n_t):
        out[k] = cur
        cur = mu + (cur - mu) * a + eps[k]
    t = torch.arange(n_t, dtype=torch.float64) * dt
    gate = ((t >= t_on) & (t < t_off)).double()
    return (out.T * gate).float()


# -- compiled CPU integrator (same equations as the torch loop of simulate_hh) ------------------
@numba.njit(cache=True, error_model="numpy")
def _efun_nb(z):
    if abs(z) < 1e-4:
        return 1.0 - 0.5 * z
    return z / math.expm1(z)


@numba.njit(cache=True, error_model="numpy")
def _sigmoid_nb(z):
    if z >= 0.0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


@numba.njit(cache=True, error_model="numpy")
def _hh_exp_euler_nb(par, v0, current, noise, dt, out):
    """Exponential Euler for every row of ``par`` ``(n, 12)`` (float64); ``current`` ``(1 or n,
    n_t - 1)``, ``noise`` ``(n, n_t - 1)`` standard normal; writes V into ``out`` ``(n, n_t)``."""
    n, n_t = out.shape
    sq = 1.0 / math.sqrt(dt)
    for i in range(n):
        gNa, gK, gl, ENa, EK, El = par[i, 0], par[i, 1], par[i, 2], par[i, 3], par[i, 4], par[i, 5]
        gM, tau_max, kbn1, kbn2, VT, sigma = par[i, 6], par[i, 7], par[i, 8], par[i, 9], par[i, 10], par[i, 11]
        ci = i if current.shape[0] > 1 else 0
        s_noise = sigma * sq
        V = v0[i]
        u = V - VT
        am = 1.28 * _efun_nb(-(u - 13.0) / 4.0)
        bm = 1.4 * _efun_nb((u - 40.0) / 5.0)
        ah = 0.128 * math.exp(-(u - 17.0) / 18.0)
        bh = 4.0 * _sigmoid_nb((u - 40.0) / 5.0)
        an = 0.16 * _efun_nb(-(u - 15.0) / 5.0)
        bn = kbn1 * math.exp(-(u - 10.0) / kbn2)
        m, h, nn_ = am / (am + bm), ah / (ah + bh), an / (an + bn)
        p = _sigmoid_nb((V + 35.0) / 10.0)
        out[i, 0] = V
        for k in range(n_t - 1):
            m3h = m * m * m * h
            n2 = nn_ * nn_
            g_na, g_k, g_m = gNa * m3h, gK * (n2 * n2), gM * p
            g_tot = g_na + g_k + gl + g_m
            v_inf = (g_na * ENa + (g_k + g_m) * EK + gl * El + current[ci, k] + noise[i, k] * s_noise) / g_tot
            V = v_inf + (V - v_inf) * math.exp(-dt * g_tot)
            u = V - VT
            am = 1.28 * _efun_nb(-(u - 13.0) / 4.0)
            bm = 1.4 * _efun_nb((u - 40.0) / 5.0)
            ah = 0.128 * math.exp(-(u - 17.0) / 18.0)
            bh = 4.0 * _sigmoid_nb((u - 40.0) / 5.0)
            an = 0.16 * _efun_nb(-(u - 15.0) / 5.0)
            bn = kbn1 * math.exp(-(u - 10.0) / kbn2)
            sm, sh, sn = am + bm, ah + bh, an + bn
            m = am / sm + (m - am / sm) * math.exp(-dt * sm)
            h = ah / sh + (h - ah / sh) * math.exp(-dt * sh)
            nn_ = an / sn + (nn_ - an / sn) * math.exp(-dt * sn)
            w = (V + 35.0) / 20.0
            p_inf = _sigmoid_nb((V + 35.0) / 10.0)
            tau_p = tau_max / (3.3 * math.exp(w) + math.exp(-w))
            p = p_inf + (p - p_inf) * math.exp(-dt / tau_p)
            out[i, k + 1] = V


def _integrate_numba(
    par: torch.Tensor, v0: torch.Tensor, current: torch.Tensor, noise: torch.Tensor, dt: float
) -> torch.Tensor:
    """CPU: the compiled float64 loop; ``par`` ``(n, 12)``, ``current`` ``(n_t,)`` or ``(n, n_t)``,
    ``noise`` ``(n, n_t - 1)``. Returns V ``(n, n_t)`` float64."""
    n, n_t = noise.shape[0], noise.shape[1] + 1
    cur = (current[None] if current.ndim == 1 else current)[:, : n_t - 1]
    out = np.empty((n, n_t), dtype=np.float64)
    _hh_exp_euler_nb(
        np.ascontiguousarray(par.double().cpu().numpy()),
        np.ascontiguousarray(v0.double().cpu().numpy()),
        np.ascontiguousarray(cur.double().cpu().numpy()),
        np.ascontiguousarray(noise.cpu().numpy()),
        float(dt),
        out,
    )
    return torch.from_numpy(out)


def _integrate_torch(
    par: torch.Tensor,
    v0: torch.Tensor,
    current: torch.Tensor,
    noise: torch.Tensor,
    dt: float,
    *,
    device: torch.device,
    dtype: torch.dtype,
) -> torch.Tensor:
    """Any device: all traces advanced together as ``(n,)`` tensors in ``dtype`` (same equations
    as :func:`_hh_exp_euler_nb`). Returns V ``(n, n_t)`` on ``device``."""
    n, n_t = noise.shape[0], noise.shape[1] + 1
    if current.ndim == 1:
        cur_steps = current.to(device=device, dtype=dtype)[:, None].expand(n_t, n)
    else:
        cur_steps = current.T.to(device=device, dtype=dtype)
    par = par.to(device=device, dtype=dtype)
    gNa, gK, gl, ENa, EK, El, gM, tau_max, kbn1, kbn2, VT, sigma = par.unbind(1)
    noise_t = noise.T.to(device=device, dtype=dtype) * (sigma / math.sqrt(dt))  # (n_t - 1, n) current
    V = v0.to(device=device, dtype=dtype)
    m, h, nn_, p = _steady_gates(V, VT, kbn1, kbn2, tau_max)
    out = torch.empty(n_t, n, device=device, dtype=dtype)
    out[0] = V
    for k in range(n_t - 1):
        m3h = m * m * m * h
        n4 = (nn_ * nn_) * (nn_ * nn_)
        g_na, g_k, g_m = gNa * m3h, gK * n4, gM * p
        g_tot = g_na + g_k + gl + g_m
        v_inf = (g_na * ENa + (g_k + g_m) * EK + gl * El + cur_steps[k] + noise_t[k]) / g_tot
        V = v_inf + (V - v_inf) * torch.exp(-dt * g_tot)
        am, bm, ah, bh, an, bn = _gate_rates(V, VT, kbn1, kbn2)
        sm, sh, sn = am + bm, ah + bh, an + bn
        m = am / sm + (m - am / sm) * torch.exp(-dt * sm)
        h = ah / sh + (h - ah / sh) * torch.exp(-dt * sh)
        nn_ = an / sn + (nn_ - an / sn) * torch.exp(-dt * sn)
        p_inf, tau_p = _p_inf_tau(V, tau_max)
        p = p_inf + (p - p_inf) * torch.exp(-dt / tau_p)
        out[k + 1] = V
    return out.T.contiguous()


def simulate_hh(
    theta,
    *,
    model: str | HHModel = "2param",
    dt: float = 0.025,
    duration: float = 120.0,
    t_on: float = 10.0,
    t_off: float | None = None,
    stimulus: str = "step",
    amplitude: float = I_STEP,
    generator: torch.Generator | None = None,
    noise: torch.Tensor | None = None,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    v0: float | None = None,
) -> HHTraces:
    """Simulate a batch of HH neurons (exponential Euler, as in the delfi tutorial).

    Args:
        theta: ``(n, d)`` parameters in the model's prior space (or one ``(d,)`` set).
        model: a name for :func:`hh_model` or an :class:`HHModel`.
        dt: time step (ms); 0.025 ms (CI) or 0.01 ms (paper).
        duration: trace length T (ms); ``n_t = round(T/dt) + 1`` samples.
        t_on, t_off: stimulus window (ms); ``t_off`` defaults to ``duration - 10``.
        stimulus: ``"step"`` (constant ``amplitude`` inside the window) or ``"ou"`` (the
            Ornstein-Uhlenbeck current of the paper's Fig. 5, drawn from ``generator``).
        amplitude: step amplitude (µA/cm²), default 0.5 nA over the soma area (≈ 3.25).
        generator: CPU generator for the noise (same traces on every device).
        noise: optional explicit standard-normal noise ``(n, n_t - 1)`` (replaces the draws;
            zeros give a noiseless run).
        device: where to integrate (``"cpu"``: compiled float64 loop; ``"cuda"``: torch).
        dtype: floating type of the returned voltage, and of the integration on CUDA (float32
            by default; the CPU integrates in float64 and rounds the result to ``dtype``).
        v0: initial voltage (mV); default E_l. Gates start at their steady state of ``v0``.

    Returns:
        :class:`HHTraces` on ``device``.
    """
    model = _resolve_model(model)
    theta = _check_theta(theta, model)
    dt = check_positive(dt, "dt")
    duration = check_positive(duration, "duration")
    t_off = duration - 10.0 if t_off is None else float(t_off)
    if not (0 <= t_on < t_off <= duration):
        raise ValueError(f"need 0 <= t_on < t_off <= duration; got t_on={t_on}, t_off={t_off}, duration={duration}")
    if stimulus not in ("step", "ou"):
        raise ValueError(f"stimulus must be 'step' or 'ou'; got {stimulus!r}")
    device = torch.device(device)
    n = theta.shape[0]
    n_t = int(round(duration / dt)) + 1
    if noise is None:
        noise = torch.randn(n, n_t - 1, generator=generator)
    else:
        noise = noise if isinstance(noise, torch.Tensor) else as_tensor(noise, "noise")
        if noise.shape != (n, n_t - 1):
            raise ValueError(f"noise must have shape (n, n_t - 1) = {(n, n_t - 1)}; got {tuple(noise.shape)}")
    if stimulus == "step":
        current = _step_current(n_t, dt, t_on, t_off, float(amplitude))
    else:
        current = _ou_current(n, n_t, dt, t_on, t_off, float(amplitude), generator)

    par = model.physical(theta.double())
    v_start = par[:, 5].clone() if v0 is None else torch.full((n,), float(v0), dtype=torch.float64)
    if device.type == "cpu":
        voltage = _integrate_numba(par, v_start, current, noise, dt).to(dtype)
    else:
        voltage = _integrate_torch(par, v_start, current, noise, dt, device=device, dtype=dtype)
    failed = ~torch.isfinite(voltage).all(1) | (voltage.abs() > 1000.0).any(1)
    return HHTraces(voltage=voltage, current=current.to(device), dt=dt, t_on=float(t_on), t_off=t_off, failed=failed)


def hh_resting_potential(theta, *, model: str | HHModel = "2param", current: float = 0.0) -> torch.Tensor:
    """Analytic steady state of the noiseless neuron: the root of the total ionic current.

    Solves ``Σ_i g_i(V) (V - E_i) = current`` with every gate at its steady state, taking
    the lowest stable root (current crossing from negative to positive) on [-150, 50] mV and
    refining it by bisection in float64. Used to check the simulator.

    Returns:
        ``(n,)`` resting potentials (mV).
    """
    model = _resolve_model(model)
    theta = _check_theta(theta, model)
    gNa, gK, gl, ENa, EK, El, gM, tau_max, kbn1, kbn2, VT, _ = model.physical(theta.double()).unbind(1)

    def f(V):
        m, h, n, p = _steady_gates(V, VT, kbn1, kbn2, tau_max)
        return gNa * m**3 * h * (V - ENa) + gK * n**4 * (V - EK) + gl * (V - El) + gM * p * (V - EK) - current

    # the I-V curve is N-shaped: take the lowest root on a 0.25 mV grid, then bisect
    grid = torch.arange(-150.0, 50.0 + 1e-9, 0.25, dtype=torch.float64)
    fg = f(grid[:, None].expand(-1, gNa.numel()))  # (n_grid, n)
    cross = (fg[:-1] <= 0) & (fg[1:] > 0)
    if not bool(cross.any(0).all()):
        raise ValueError("no stable root of the membrane current on [-150, 50] mV")
    first = cross.double().argmax(0)
    lo, hi = grid[first], grid[first + 1]
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        pos = f(mid) > 0
        hi = torch.where(pos, mid, hi)
        lo = torch.where(pos, lo, mid)
    return 0.5 * (lo + hi)


# -- summary features --------------------------------------------------------------------------
def _peak_indices(V: torch.Tensor, dt: float, t_on: float, t_off: float):
    """Spike peaks (delfi's spike detection): rows and sample indices of the kept peaks."""
    v = V.clamp_min(-10.0)
    falling = torch.zeros_like(v, dtype=torch.bool)
    falling[:, :-1] = v[:, 1:] < v[:, :-1]
    v = torch.where(falling, torch.full_like(v, -10.0), v)
    # a sample above -10 mV followed by a -10 sample is the last point of a rise: the peak is next
    peak = torch.zeros_like(falling)
    peak[:, 1:] = v[:, 1:] < v[:, :-1]
    t = torch.arange(V.shape[1], device=V.device, dtype=torch.float64) * dt
    peak &= ((t > t_on) & (t < t_off))[None, :]
    rows, cols = torch.nonzero(peak, as_tuple=True)
    if rows.numel() == 0:
        return rows, cols
    same = torch.zeros_like(rows, dtype=torch.bool)
    same[1:] = rows[1:] == rows[:-1]
    close = torch.zeros_like(same)
    close[1:] = (cols[1:] - cols[:-1]).double() * dt <= 0.5
    keep = ~(same & close)  # merge peaks within 0.5 ms of the previous detected peak
    return rows[keep], cols[keep]


def spike_times(traces: HHTraces) -> list[np.ndarray]:
    """Spike peak times (ms) of every trace, inside the stimulus window."""
    rows, cols = _peak_indices(traces.voltage, traces.dt, traces.t_on, traces.t_off)
    rows, cols = rows.cpu().numpy(), cols.cpu().numpy()
    return [cols[rows == i] * traces.dt for i in range(traces.n)]


def _windows(traces: HHTraces):
    t = traces.t.to(traces.voltage.device)
    V = traces.voltage.double()
    rest = V[:, t < traces.t_on]
    rest_tail = V[:, (t >= 0.9 * traces.t_on) & (t < traces.t_on)]
    stim = V[:, (t > traces.t_on) & (t < traces.t_off)]
    return rest, rest_tail, stim


def _spike_counts(traces: HHTraces) -> torch.Tensor:
    rows, _ = _peak_indices(traces.voltage, traces.dt, traces.t_on, traces.t_off)
    return torch.bincount(rows, minlength=traces.n).double()


def _features_7(traces: HHTraces) -> torch.Tensor:
    rest, rest_tail, stim = _windows(traces)
    mean = stim.mean(1)
    c = stim - mean[:, None]
    std = c.pow(2).mean(1).sqrt()
    skew = c.pow(3).mean(1) / std**3
    kurt = c.pow(4).mean(1) / std**4
    return torch.stack([_spike_counts(traces), rest.mean(1), rest_tail.std(1), mean, std, skew, kurt], 1)


def _features_moments(traces: HHTraces) -> torch.Tensor:
    rest, _, stim = _windows(traces)
    mean = stim.mean(1)
    c = stim - mean[:, None]
    var_sum = c.pow(2).sum(1)
    acs = []
    for k in range(1, 11):
        lag = max(1, int(round(0.1 * k / traces.dt)))
        acs.append((c[:, lag:] * c[:, :-lag]).sum(1) / var_sum)
    moments = [c.pow(k).mean(1) for k in range(2, 9)]
    return torch.stack([_spike_counts(traces), *acs, rest.mean(1), mean, *moments], 1)


def _features_handcrafted(traces: HHTraces) -> torch.Tensor:
    V = traces.voltage.double().cpu().numpy()
    dt, t_on, t_off = traces.dt, traces.t_on, traces.t_off
    times = spike_times(traces)
    n_rest = int(math.ceil(t_on / dt - 1e-9))
    out = np.full((traces.n, 7), np.nan)
    half_w = int(round(2.0 / dt))
    for i, st in enumerate(times):
        rest = V[i, :n_rest].mean()
        k = len(st)
        out[i, 0] = k / ((t_off - t_on) / 1000.0)
        out[i, 3] = rest
        if k >= 1:
            idx = np.round(st / dt).astype(int)
            peaks = V[i, idx]
            out[i, 1] = st[0] - t_on
            out[i, 2] = peaks.mean()
            widths = []
            for j, pk in zip(idx, peaks, strict=True):
                seg = V[i, max(0, j - half_w) : j + half_w + 1]
                widths.append((seg > 0.5 * (pk + rest)).sum() * dt)
            out[i, 6] = float(np.mean(widths))
        if k >= 2:
            idx = np.round(st / dt).astype(int)
            troughs = [V[i, a:b].min() for a, b in zip(idx[:-1], idx[1:], strict=True)]
            out[i, 4] = rest - float(np.mean(troughs))
        if k >= 3:
            isi = np.diff(st)
            out[i, 5] = float(np.mean((isi[1:] - isi[:-1]) / (isi[1:] + isi[:-1])))
    return torch.from_numpy(out).to(traces.voltage.device)


def hh_summary(traces: HHTraces, *, features: str = "7") -> torch.Tensor:
    """Summary features of every trace, ``(n, d)`` float32 on the traces' device.

    Args:
        traces: output of :func:`simulate_hh`.
        features: ``"7"`` — [spike count; resting mean V(t < t_on); resting std over the last
            10 % before t_on; stimulus-window mean, std, skewness, kurtosis] (delfi tutorial);
            ``"moments"`` — the 20 features of the NIPS 2017 paper [spike count; 10
            autocorrelation coefficients at lags 0.1 … 1.0 ms; resting mean; stimulus mean;
            central moments 2 … 8 of the stimulus-window voltage];
            ``"handcrafted"`` — [firing rate (Hz); latency of the first spike after t_on (ms);
            mean spike peak (mV); resting potential (mV); AHP depth = resting potential minus
            the mean trough between consecutive spikes (mV); accommodation index
            mean((ISI_{k+1} - ISI_k)/(ISI_{k+1} + ISI_k)); mean spike width at half height
            between rest and peak (ms)]. Latency, peak and width are NaN without spikes, AHP
            depth with fewer than 2, accommodation with fewer than 3 (missing features).

    Spikes (delfi): V below -10 mV and samples followed by a fall are set to -10 mV; the
    remaining falls mark peaks; peaks inside (t_on, t_off) are kept, merging peaks within
    0.5 ms. Rows of failed runs (:attr:`HHTraces.failed`) are all NaN.
    """
    if not isinstance(traces, HHTraces):
        raise ValueError(f"traces must be an HHTraces from simulate_hh; got {type(traces).__name__}")
    if features == "7":
        x = _features_7(traces)
    elif features == "moments":
        x = _features_moments(traces)
    elif features == "handcrafted":
        x = _features_handcrafted(traces)
    else:
        raise ValueError(f"features must be one of {tuple(FEATURE_SETS)}; got {features!r}")
    x = torch.where(traces.failed[:, None].to(x.device), torch.full_like(x, math.nan), x)
    return x.float()


def raw_trace_context(traces: HHTraces, *, every: float = 0.2) -> torch.Tensor:
    """Raw traces for a learned summary network (paper Fig. 5), ``(n, T' * 2)`` float32.

    Voltage and injected current are sampled every ``every`` ms (×20 downsampling at
    dt = 0.01 ms) and interleaved time-major, i.e. the flattening of ``(n, T', 2)``.
    Rows of failed runs are NaN.
    """
    if not isinstance(traces, HHTraces):
        raise ValueError(f"traces must be an HHTraces from simulate_hh; got {type(traces).__name__}")
    step = max(1, int(round(check_positive(every, "every") / traces.dt)))
    v = traces.voltage[:, ::step]
    cur = traces.current if traces.current.ndim == 2 else traces.current[None].expand(traces.n, -1)
    c = cur.to(v.device)[:, ::step]
    x = torch.stack([v, c], dim=2).reshape(traces.n, -1).float()
    return torch.where(traces.failed[:, None].to(x.device), torch.full_like(x, math.nan), x)


def feature_report(x: torch.Tensor, failed: torch.Tensor) -> dict[str, object]:
    """Counts of failed runs and undefined (NaN) features among the runs that did not fail.

    Returns:
        ``{"n": n, "n_failed": int, "n_with_undefined": int, "undefined_per_feature": list}``.
    """
    failed = failed.to(x.device)
    undefined = torch.isnan(x) & ~failed[:, None]
    return dict(
        n=int(x.shape[0]),
        n_failed=int(failed.sum()),
        n_with_undefined=int(undefined.any(1).sum()),
        undefined_per_feature=[int(v) for v in undefined.sum(0)],
    )


class HHSimulator:
    """θ → summary features, the callable SNPE-B and ABC use: ``sim(theta, generator=g)``.

    Args:
        model: model name or :class:`HHModel`.
        features: feature set of :func:`hh_summary`, or ``"raw"`` for
            :func:`raw_trace_context` (downsampled voltage and current, for a GRU).
        dt, duration: integration step and trace length (ms).
        device: where to integrate; features come back on the CPU.
        zscore: optional ``(mean, std)`` of the features (from :func:`pilot_zscore`); the
            output is then ``(x - mean) / std``.
        batch_size: traces integrated together (bounds memory).
        return_bad: return ``(x, bad)`` where ``bad`` flags failed runs (and, for complete
            feature sets, runs with a non-finite feature); with ``False`` only ``x``.
        allow_missing: NaN features are missing values, not failures (hand-crafted set).
    """

    def __init__(
        self,
        model: str | HHModel = "2param",
        *,
        features: str = "7",
        dt: float = 0.025,
        duration: float = 120.0,
        device: str | torch.device = "cpu",
        zscore: tuple[torch.Tensor, torch.Tensor] | None = None,
        batch_size: int = 5000,
        return_bad: bool = True,
        allow_missing: bool | None = None,
        raw_every: float = 0.2,
    ) -> None:
        self.model = _resolve_model(model)
        if features not in FEATURE_SETS and features != "raw":
            raise ValueError(f"features must be one of {tuple(FEATURE_SETS) + ('raw',)}; got {features!r}")
        self.raw_every = float(raw_every)
        self.features, self.dt, self.duration = features, float(dt), float(duration)
        self.device = torch.device(device)
        self.zscore = zscore
        self.batch_size = int(batch_size)
        self.return_bad = return_bad
        self.allow_missing = (features == "handcrafted") if allow_missing is None else allow_missing

    @property
    def x_dim(self) -> int:
        if self.features == "raw":
            n_t = int(round(self.duration / self.dt)) + 1
            step = max(1, int(round(self.raw_every / self.dt)))
            return 2 * len(range(0, n_t, step))
        return len(FEATURE_SETS[self.features])

    def traces(self, theta, *, generator: torch.Generator | None = None) -> HHTraces:
        return simulate_hh(
            theta, model=self.model, dt=self.dt, duration=self.duration, generator=generator, device=self.device
        )

    def __call__(self, theta, *, generator: torch.Generator | None = None):
        theta = _check_theta(theta, self.model)
        xs, bads = [], []
        for start in range(0, theta.shape[0], self.batch_size):
            tr = self.traces(theta[start : start + self.batch_size], generator=generator)
            if self.features == "raw":
                x = raw_trace_context(tr, every=self.raw_every).cpu()
            else:
                x = hh_summary(tr, features=self.features).cpu()
            bad = tr.failed.cpu() | torch.isinf(x).any(1)
            if not self.allow_missing:
                bad |= torch.isnan(x).any(1)
            xs.append(x)
            bads.append(bad)
        x, bad = torch.cat(xs), torch.cat(bads)
        if self.zscore is not None:
            x = (x - self.zscore[0]) / self.zscore[1]
        return (x, bad) if self.return_bad else x


def pilot_zscore(
    simulator: Callable, prior, n: int, *, generator: torch.Generator | None = None, max_redraws: int = 20
) -> tuple[torch.Tensor, torch.Tensor]:
    """Feature mean and standard deviation (ddof 1) from a pilot run of prior simulations.

    Failed simulations are redrawn (new θ from the prior) until ``n`` good ones are in hand
    (as delfi does: pilot simulations producing NaN are redrawn). Missing (NaN) features of good
    runs are ignored feature by feature.

    Args:
        simulator: ``simulator(theta, generator=g)`` returning ``(x, bad)`` or ``x`` (then a
            row with a non-finite value is bad).
        prior: object with ``sample(n, generator=...)``.
        n: pilot size (>= 2).
        generator: randomness of prior draws and simulations.
        max_redraws: rounds of redrawing before giving up (``RuntimeError``).

    Returns:
        ``(mean, std)``, each ``(d_x,)``; a constant feature gets std 1.
    """
    if not isinstance(n, int) or n < 2:
        raise ValueError(f"n must be an integer >= 2; got {n!r}")
    good: list[torch.Tensor] = []
    have = 0
    for _ in range(max_redraws + 1):
        theta = prior.sample(n - have, generator=generator)
        out = simulator(theta, generator=generator)
        x, bad = out if isinstance(out, tuple) else (out, ~torch.isfinite(out).all(1))
        good.append(x[~bad])
        have += int((~bad).sum())
        if have >= n:
            break
    else:
        raise RuntimeError(f"only {have} of {n} pilot simulations succeeded after {max_redraws} redraws")
    x = torch.cat(good)[:n].double()
    mean = torch.nanmean(x, 0)
    cnt = (~torch.isnan(x)).sum(0)
    var = torch.nansum((x - mean) ** 2, 0) / (cnt - 1).clamp_min(1)
    std = var.sqrt()
    std = torch.where((std > 0) & torch.isfinite(std), std, torch.ones_like(std))
    if torch.isnan(mean).any():
        raise RuntimeError("a feature is undefined in every pilot simulation")
    return mean.float(), std.float()
