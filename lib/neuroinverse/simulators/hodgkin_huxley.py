"""Hodgkin-Huxley neuron with Pospischil et al. (2008) kinetics, batched over parameter sets.

The simulator of Lueckmann, Goncalves, Bassetto, Öcal, Nonnenmacher & Macke, "Flexible
statistical inference for mechanistic models of neural dynamics", NIPS 2017
(arXiv:1711.01861), section 4.3 and Fig. 3. Kinetics and stimulus follow the paper's
reference code (``mackelab/delfi`` and ``mackelab/lfi-experiments``, Pospischil et al. 2008
kinetics); the code is the book's own. The parameter sets (prior, θ*) are in
:mod:`~neuroinverse.simulators.hh_models`, the summary features in
:mod:`~neuroinverse.simulators.hh_features`, and the θ → features callable in
:mod:`~neuroinverse.simulators.hh_simulator`.

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

Failed runs (non-finite or exploding voltage) are flagged in :attr:`HHTraces.failed`;
nothing is dropped silently.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numba
import numpy as np
import torch

from .._checks import as_tensor, check_choice, check_positive
from .hh_models import HHModel, check_hh_theta, resolve_hh_model

__all__ = [
    "SOMA_AREA",
    "I_STEP",
    "HHTraces",
    "simulate_hh",
    "hh_resting_potential",
]

#: Soma area π (70 µm)² in cm².
SOMA_AREA = math.pi * (70e-4) ** 2
#: Step current 0.5 nA spread over the soma area, µA/cm² (≈ 3.25).
I_STEP = 5e-4 / SOMA_AREA


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
    eps = (
        torch.randn(n_t, n, generator=generator, dtype=torch.float64) * sd * math.sqrt(1.0 - a * a)
    )
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
        gM, tau_max, kbn1, kbn2, VT, sigma = (
            par[i, 6],
            par[i, 7],
            par[i, 8],
            par[i, 9],
            par[i, 10],
            par[i, 11],
        )
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
            v_inf = (
                g_na * ENa + (g_k + g_m) * EK + gl * El + current[ci, k] + noise[i, k] * s_noise
            ) / g_tot
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
    noise_t = noise.T.to(device=device, dtype=dtype) * (
        sigma / math.sqrt(dt)
    )  # (n_t - 1, n) current
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
        model: a name for :func:`~neuroinverse.simulators.hh_models.hh_model` or an
            :class:`~neuroinverse.simulators.hh_models.HHModel`.
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
    model = resolve_hh_model(model)
    theta = check_hh_theta(theta, model)
    dt = check_positive(dt, "dt")
    duration = check_positive(duration, "duration")
    t_off = duration - 10.0 if t_off is None else float(t_off)
    if not (0 <= t_on < t_off <= duration):
        raise ValueError(
            "need 0 <= t_on < t_off <= duration; "
            f"got t_on={t_on}, t_off={t_off}, duration={duration}"
        )
    check_choice(stimulus, "stimulus", ("step", "ou"))
    device = torch.device(device)
    n = theta.shape[0]
    n_t = int(round(duration / dt)) + 1
    if noise is None:
        noise = torch.randn(n, n_t - 1, generator=generator)
    else:
        noise = noise if isinstance(noise, torch.Tensor) else as_tensor(noise, "noise")
        if noise.shape != (n, n_t - 1):
            raise ValueError(
                f"noise must have shape (n, n_t - 1) = {(n, n_t - 1)}; got {tuple(noise.shape)}"
            )
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
    return HHTraces(
        voltage=voltage,
        current=current.to(device),
        dt=dt,
        t_on=float(t_on),
        t_off=t_off,
        failed=failed,
    )


def hh_resting_potential(
    theta, *, model: str | HHModel = "2param", current: float = 0.0
) -> torch.Tensor:
    """Analytic steady state of the noiseless neuron: the root of the total ionic current.

    Solves ``Σ_i g_i(V) (V - E_i) = current`` with every gate at its steady state, taking
    the lowest stable root (current crossing from negative to positive) on [-150, 50] mV and
    refining it by bisection in float64. Used to check the simulator.

    Returns:
        ``(n,)`` resting potentials (mV).
    """
    model = resolve_hh_model(model)
    theta = check_hh_theta(theta, model)
    gNa, gK, gl, ENa, EK, El, gM, tau_max, kbn1, kbn2, VT, _ = model.physical(
        theta.double()
    ).unbind(1)

    def f(V):
        m, h, n, p = _steady_gates(V, VT, kbn1, kbn2, tau_max)
        return (
            gNa * m**3 * h * (V - ENa)
            + gK * n**4 * (V - EK)
            + gl * (V - El)
            + gM * p * (V - EK)
            - current
        )

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
