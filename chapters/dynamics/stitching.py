# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Stitching partial recordings by matching lagged covariances (S3ID)
#
# **Paper.** M. Nonnenmacher, S. C. Turaga, J. H. Macke, *Extracting low-dimensional dynamics
# from multiple large-scale neural population recordings by learning to predict correlations*,
# NIPS 2017 (Advances in NIPS 30, pp. 5702–5712;
# [arXiv:1711.01847](https://arxiv.org/abs/1711.01847)).
#
# We record $y_t\in\mathbb R^p$ from $p$ neurons, but never all at once: in each recording
# period only a subpopulation is imaged, and entries may also be missing at random. We want
# one latent linear dynamical system (LDS) of dimension $n\ll p$,
#
# $$x_{t+1} = A x_t + \eta_t,\quad \eta_t\sim\mathcal N(0,Q), \qquad
# y_t = C x_t + \varepsilon_t,\quad \varepsilon_t\sim\mathcal N(0,\operatorname{diag}R),$$
#
# that explains all of them, and in particular predicts the correlations, at every time lag,
# of neurons that were **never recorded together**. With $\Pi$ the stationary latent covariance,
# the model's lagged covariances are
# $\Sigma_s = C A^s \Pi C^\top + \delta_{s0}\operatorname{diag}R$.
# S3ID fits $C$, $R$ and the latent lag covariances $X_s$ by minimising
#
# $$L = \tfrac12 \sum_{s=0}^{K-1} \sum_{(i,j)\in\Omega_s}
# \bigl(c_i^\top X_s c_j + \delta_{s0}\delta_{ij}R_i - \hat\Sigma_{s,ij}\bigr)^2 ,$$
#
# where $\Omega_s$ holds only the pairs observed together at lag $s$: first with every $X_s$
# free, then with linear dynamics $X_s = A^s BB^\top$. Because $\hat\Sigma_s$ is an average of
# outer products $y_{t+s}y_t^\top$, a stochastic gradient on a few time points needs only the
# $n\times n$ Gram matrices $C_a^\top C_a$ of the observed loadings: $O(pn^2)$ work and $O(pn)$
# memory per step, which is what lets the method scale to $10^6$ neurons (paper abstract).
#
# **What the paper claims** (its abstract; the experiments of its Section 4): the method recovers
# the latent subspace and dynamics of fully observed data (C1); it predicts the correlations of
# never co-observed pairs from two recordings with a small overlap (C2); it copes with entries
# missing at random (C4); and its cost grows linearly with $p$ (C5). C3 is a **hypothesis of
# this book**, built on the identifiability argument behind the method: when the overlap is
# smaller than $n$, the lag-0 covariances alone (factor-analysis stitching) cannot align the two
# views, while the time-lagged ones can.
#
# **Figures redrawn.** The observation scheme; predicted against true covariances of never
# co-observed pairs; the correlation of those predictions against the overlap, with and
# without time lags; true against estimated eigenvalues; the work per step against $p$.
#
# **How the claims are judged.** Every claim is judged twice by the same rule: on our value and
# on a *control*, a deliberately wrong answer of the same kind (a random subspace, the
# untrained dynamics, predictions with the neurons' labels permuted, the dense $p\times p$
# loss). A claim whose control passes too is *inconclusive*.

# %% tags=["parameters"]
profile = "ci"
seed = 0
device = "auto"

# %% [markdown]
# Every size comes from the profile. `ci` is a small system: $p$ = 200 neurons,
# $n$ = 4 latents (two slow complex eigenvalue pairs of moduli 0.95 and 0.98), $T$ = 20,000
# time points, lags 0–9, half of each neuron's variance private noise; the fits minimise the
# dense full-batch loss (masked $p\times p\times K$ tensors are small here). `full` is the
# paper's stitching geometry: $p$ = 1,000, $n$ = 10, $T = 10^5$, lags 0–19, and a sweep of
# overlaps; the step-cost measurement reaches $p = 10^6$.

# %%
import numpy as np
import torch
from threadpoolctl import threadpool_limits

from neuroinverse import plotting
from neuroinverse.inference import empirical_lagged_covariances, fit_s3id, step_work, time_step
from neuroinverse.metrics import eigenvalue_error, pearson_r, subspace_error
from neuroinverse.results import ChapterResults, Claim
from neuroinverse.runtime import setup
from neuroinverse.simulators import (
    lagged_covariances_true,
    missing_at_random_mask,
    random_lds,
    simulate_lds,
    subpopulation_mask,
)

rt = setup(profile=profile, seed=seed, device=device)
if rt.profile == "ci":
    threadpool_limits(1)
cfg = rt.select(
    ci=dict(
        p=200,
        n=4,
        T=20_000,
        K=10,
        moduli=(0.95, 0.98),
        overlap_small=20,
        overlap_tiny=2,
        sweep=(2, 20),
        missing=0.5,
        steps_nl=600,
        steps_ln=400,
        lr_nl=0.02,
        lr_ln=0.003,
        init_scale=0.1,
        scale_p=(1_000, 10_000, 100_000),
        scale_n=10,
        time_steps=5,
    ),
    full=dict(
        p=1000,
        n=10,
        T=100_000,
        K=20,
        moduli=(0.95, 0.99),
        overlap_small=100,
        overlap_tiny=5,
        sweep=(0, 5, 10, 20, 50, 100, 300, 1000),
        missing=0.5,
        steps_nl=3000,
        steps_ln=2000,
        lr_nl=0.02,
        lr_ln=0.003,
        init_scale=0.1,
        scale_p=(1_000, 10_000, 100_000, 1_000_000),
        scale_n=10,
        time_steps=100,
    ),
)
plotting.apply_style()
fit_device = rt.device if rt.profile == "full" else torch.device("cpu")
print(
    f"profile={rt.profile} device={rt.device} threads={rt.threads}",
    f"p={cfg.p} n={cfg.n} T={cfg.T} K={cfg.K}",
)

# %% [markdown]
# ## The system and the observation schemes
#
# The generator follows the authors' code: eigenvalues in complex pairs with equally spaced
# moduli and small angles $2\pi v$, $v\sim$ von Mises(0, 1000); $Q$ a scaled Wishart draw; the
# latent space whitened so that $\Pi = I$; orthonormalised loadings rescaled so that every
# neuron has unit variance, half of it private noise. Four observation schemes: everything
# observed; two subpopulations imaged in alternating blocks of time, sharing
# `overlap_small` neurons (10 % of $p$) or `overlap_tiny` neurons (fewer than $n$); and every
# entry missing independently with probability 0.5.

# %%
truth = random_lds(cfg.p, cfg.n, moduli=cfg.moduli, seed=rt.seed)
schemes = {
    "full": None,
    "missing": missing_at_random_mask(cfg.p, cfg.T, cfg.missing, seed=rt.seed + 7),
}
populations = {}
for o in sorted({cfg.overlap_small, cfg.overlap_tiny, *cfg.sweep}):
    if o < cfg.p:
        mask, s1, s2 = subpopulation_mask(cfg.p, cfg.T, o)
        schemes[o] = mask
        populations[o] = (np.setdiff1d(s1, s2), np.setdiff1d(s2, s1))
data = {k: simulate_lds(truth, cfg.T, mask=m, seed=rt.seed + 1) for k, m in schemes.items()}
moments = {
    k: empirical_lagged_covariances(d.y, d.mask, cfg.K, device=fit_device) for k, d in data.items()
}
true_eigs = truth.eigenvalues
print("true eigenvalues:", np.round(true_eigs, 3))

# %% tags=["remove-output"]
fig, axes = plotting.figure(width=6.0, height=2.4)
ax = axes[0, 0]
ax.imshow(
    schemes[cfg.overlap_small][:: cfg.T // 200].T,
    aspect="auto",
    cmap="Greys",
    interpolation="nearest",
)
ax.set_xlabel(f"time (blocks of {cfg.T // 200} time points)")
ax.set_ylabel("neuron")
ax.set_title(f"observed entries (black): two subpopulations sharing {cfg.overlap_small} neurons")
plotting.save(fig, "stitching", "observation-scheme")

# %% [markdown]
# ```{glue:figure} observation-scheme
# ---
# name: fig-stitching-observation-scheme
# alt: >-
#   A black-and-white map of neurons (rows) against time in blocks (columns): black where an
#   entry is observed. Two blocks of neurons alternate in time and share a thin band of rows.
# ---
# The stitching scheme with `overlap_small` shared neurons: two subpopulations are imaged in
# alternating blocks of time, and only the shared neurons (the rows observed throughout) link
# them. Pairs of neurons from different subpopulations are never observed together.
# ```

# %% [markdown]
# ## Fits
#
# Each fit runs `steps_nl` Adam steps with every $X_s$ free, then `steps_ln` steps with linear
# dynamics, $A$ initialised by least squares on $X_{s+1}=AX_s$ and $B$ by a Cholesky factor of
# the symmetrised $X_0$ (the authors' two-stage schedule, shortened; the loadings start at
# 0.1 × a standard normal draw rather than 1 ×, which converges in fewer steps). The lag-0-only
# baseline (factor-analysis stitching) is the same code with $K$ = 1 and gets the same number of
# steps as the first stage plus the second.

# %%
kw = dict(
    steps_nl=cfg.steps_nl,
    steps_ln=cfg.steps_ln,
    lr_nl=cfg.lr_nl,
    lr_ln=cfg.lr_ln,
    init_scale=cfg.init_scale,
    seed=rt.seed,
    device=fit_device,
)
kw_lag0 = dict(kw, steps_nl=cfg.steps_nl + cfg.steps_ln)


def s3id(key, K=cfg.K):
    d = data[key]
    return fit_s3id(d.y, d.mask, cfg.n, K, moments=moments[key], **(kw if K > 1 else kw_lag0)).model


fits = {key: s3id(key) for key in ["full", "missing", *populations]}
lag0 = {o: s3id(o, K=1) for o in populations}


def r_unobs(model, o, lags=None):
    """r over never co-observed pairs, per lag, against the true model covariance."""
    a, b = populations[o]
    lags = range(cfg.K) if lags is None else lags
    true = lagged_covariances_true(truth, cfg.K, a, b)
    pred = model.predict(a, b, lags)
    return np.array([pearson_r(pred[k], true[s]) for k, s in enumerate(lags)])


def r_obs(model, key, permute=None):
    """r over co-observed off-diagonal pairs, per lag, against the empirical covariance."""
    emp, N = (m.double().numpy() for m in moments[key])
    idx = np.arange(cfg.p) if permute is None else permute
    pred = model.predict(idx, idx)
    keep = ~np.eye(cfg.p, dtype=bool) & (N > 0)
    out = [pearson_r(pred[s][keep[s]], emp[s][keep[s]]) for s in range(cfg.K)]
    return np.array(out)


rng = np.random.default_rng(rt.seed + 11)
perm = rng.permutation(cfg.p)
r_full = r_obs(fits["full"], "full")
r_full_perm = r_obs(fits["full"], "full", permute=perm)
r_miss = r_obs(fits["missing"], "missing")
r_miss_perm = r_obs(fits["missing"], "missing", permute=perm)
sub_full = subspace_error(truth.C, fits["full"].C.detach())
sub_miss = subspace_error(truth.C, fits["missing"].C.detach())
sub_random = subspace_error(truth.C, rng.standard_normal((cfg.p, cfg.n)))
eig_full = eigenvalue_error(true_eigs, fits["full"].eigenvalues())
eig_init = eigenvalue_error(true_eigs, np.linspace(0.89, 0.91, cfg.n))
sweep = {o: (r_unobs(fits[o], o), r_unobs(lag0[o], o, lags=[0])[0]) for o in populations}
for o, (r, r0) in sweep.items():
    print(
        f"overlap {o:4d}: S3ID r_unobs mean {r.mean():.3f} (lag 0: {r[0]:.3f});",
        f"lag-0-only fit r_unobs(0) {r0:.3f}",
    )

# %% [markdown]
# ## Predicting never co-observed covariances
#
# With two subpopulations sharing only `overlap_tiny` neurons, fewer than the $n$ latents,
# {numref}`fig-stitching-predicted-vs-true` compares predicted and true covariances of pairs
# that were never imaged together, and {numref}`fig-stitching-r-vs-overlap` follows the accuracy
# over the overlap.

# %% tags=["remove-output"]
o = cfg.overlap_tiny
a, b = populations[o]
lags_shown = [s for s in (0, 1, 5) if s < cfg.K]
true_ab = lagged_covariances_true(truth, cfg.K, a, b)
pred_ab = fits[o].predict(a, b, lags_shown)
pred_lag0 = lag0[o].predict(a, b, [0])[0]
fig, axes = plotting.figure(1, len(lags_shown), width=7, height=2.6)
for k, s in enumerate(lags_shown):
    ax = axes[0, k]
    if s == 0:
        ax.scatter(
            true_ab[0].ravel(),
            pred_lag0.ravel(),
            s=2,
            alpha=0.3,
            color=plotting.COLORS["baseline"],
            label="lag 0 only",
        )
    ax.scatter(
        true_ab[s].ravel(),
        pred_ab[k].ravel(),
        s=2,
        alpha=0.3,
        color=plotting.COLORS["method"],
        label="S3ID",
    )
    if s == 0:
        ax.legend(markerscale=4, loc="upper left", frameon=True, fontsize=7)
    lim = np.abs(true_ab[s]).max() * 1.1
    ax.plot([-lim, lim], [-lim, lim], color=plotting.COLORS["truth"], lw=0.8)
    ax.set_xlabel(f"true covariance, lag {s} (a.u.)")
    ax.set_ylabel("predicted covariance (a.u.)")
    ax.set_title(f"lag {s}")
fig.suptitle(f"pairs never imaged together (overlap {o} neurons)")
plotting.save(fig, "stitching", "predicted-vs-true")

# %% [markdown]
# ```{glue:figure} predicted-vs-true
# ---
# name: fig-stitching-predicted-vs-true
# alt: >-
#   Three scatter plots, for lags 0, 1 and 5, of predicted against true covariance of pairs of
#   neurons never imaged together, with the identity line; the lag-0 panel also shows the
#   lag-0-only fit.
# ---
# Pairs never imaged together, overlap `overlap_tiny` neurons (fewer than the $n$ latents): S3ID
# (orange) lies along the identity line at every lag (mean r {glue:text}`r_c3:.3f` over lags),
# while the lag-0-only fit (blue; it has no dynamics, so it predicts lag 0 only) scatters widely
# (r {glue:text}`r_c3_fa:.3f`).
# ```

# %% tags=["remove-output"]
fig, axes = plotting.figure(width=4.5, height=3.0)
ax = axes[0, 0]
os_ = sorted(sweep)
ax.plot(
    os_,
    [sweep[o][0].mean() for o in os_],
    "o-",
    color=plotting.COLORS["method"],
    label="S3ID, mean over lags",
)
ax.plot(
    os_,
    [sweep[o][0][0] for o in os_],
    "s--",
    color=plotting.COLORS["baseline2"],
    label="S3ID, lag 0",
)
ax.plot(
    os_,
    [sweep[o][1] for o in os_],
    "^-",
    color=plotting.COLORS["baseline"],
    label="lag-0-only fit, lag 0",
)
ax.axvline(cfg.n, color=plotting.COLORS["reference"], lw=0.8, ls=":", label=f"n = {cfg.n}")
ax.set_xscale("symlog", linthresh=1)
ax.set_xlabel("overlap (neurons)")
ax.set_ylabel("r, never co-observed pairs")
ax.legend()
plotting.save(fig, "stitching", "r-vs-overlap")

# %% [markdown]
# ```{glue:figure} r-vs-overlap
# ---
# name: fig-stitching-r-vs-overlap
# alt: >-
#   Correlation r over never co-observed pairs against the overlap in neurons on a symlog axis,
#   for S3ID (mean over lags and lag 0) and the lag-0-only fit, with a dotted vertical line at
#   the latent dimension n.
# ---
# Accuracy on never co-observed pairs against the number of shared neurons. S3ID stays accurate
# down to overlaps below $n$ (dotted line), where lag 0 alone no longer identifies the stitch
# and the lag-0-only fit fails.
# ```

# %% [markdown]
# ## Work per step against $p$
#
# One stochastic step on 10 time points with $n$ = `scale_n`: the floating-point operations it
# executes, counted by `torch.utils.flop_counter.FlopCounterMode`, and the peak bytes of its live
# tensors, both measured on PyTorch's `meta` device (shapes only, nothing computed). The dense
# full-batch loss over 10 lags is counted the same way as the control. Wall time per step on
# this machine is shown beside them and is not judged.

# %%
ps = np.array(cfg.scale_p, dtype=float)
work = {
    path: np.array([step_work(int(p), cfg.scale_n, path=path) for p in ps], dtype=float)
    for path in ("stochastic", "dense")
}
secs = np.array(
    [time_step(int(p), cfg.scale_n, steps=cfg.time_steps, device=rt.device) for p in ps]
)


def slope(y):
    return float(np.polyfit(np.log(ps), np.log(y), 1)[0])


slopes = {path: (slope(w[:, 0]), slope(w[:, 1])) for path, w in work.items()}
time_slope = slope(secs)

# %% tags=["nbval-check-output"]
for path, (sf, sm) in slopes.items():
    print(f"{path:10s}: FLOP slope {sf:.2f}, peak-memory slope {sm:.2f}")

# %% tags=["nbval-ignore-output"]
print(
    "seconds per step:",
    dict(zip(cfg.scale_p, np.round(secs, 4), strict=True)),
    f"slope {time_slope:.2f}",
)

# %% tags=["remove-output"]
fig, axes = plotting.figure(1, 2, width=7, height=3.0)
ax = axes[0, 0]
ax.scatter(
    true_eigs.real,
    true_eigs.imag,
    marker="o",
    facecolors="none",
    edgecolors=plotting.COLORS["truth"],
    label="true",
)
for key, marker, colour in (("full", "x", "method"), (cfg.overlap_tiny, "+", "baseline")):
    e = fits[key].eigenvalues()
    label = "S3ID, fully observed" if key == "full" else f"S3ID, overlap {key}"
    ax.scatter(e.real, e.imag, marker=marker, color=plotting.COLORS[colour], label=label)
ax.set_xlabel("Re λ")
ax.set_ylabel("Im λ")
ax.legend()
ax = axes[0, 1]
ax.loglog(
    ps, work["stochastic"][:, 0], "o-", color=plotting.COLORS["method"], label="FLOPs, stochastic"
)
ax.loglog(
    ps,
    work["dense"][:, 0],
    "s--",
    color=plotting.COLORS["baseline"],
    label="FLOPs, dense (control)",
)
ax.loglog(
    ps,
    work["stochastic"][:, 1],
    "^-",
    color=plotting.COLORS["baseline2"],
    label="peak bytes, stochastic",
)
ax.loglog(ps, secs * 1e9, "d:", color=plotting.COLORS["data"], label="ns per step (wall)")
ax.set_xlabel("neurons p")
ax.set_ylabel("work per step (FLOPs, bytes, ns)")
ax.legend(fontsize=7)
plotting.save(fig, "stitching", "eigenvalues-and-scaling")

# %% [markdown]
# ```{glue:figure} eigenvalues-and-scaling
# ---
# name: fig-stitching-eigenvalues-and-scaling
# alt: >-
#   Left: the complex plane, imaginary against real part of the dynamics eigenvalues, true ones
#   as circles and two fits as crosses. Right: log-log plot of work per step against the number of
#   neurons: FLOPs of the stochastic and the dense loss, peak bytes, and wall time in ns.
# ---
# Left: the fitted eigenvalues (fully observed and with overlap `overlap_tiny`) land close to the
# true ones. Right: on the log-log scale one stochastic step's FLOPs grow with slope
# {glue:text}`C5a_ours:.2f` in $p$ (1 is linear), the dense loss's with slope
# {glue:text}`dense_flop_slope:.2f`; wall time is shown and not judged.
# ```

# %% [markdown]
# ## Claims

# %%
o_s, o_t = cfg.overlap_small, cfg.overlap_tiny
a_s, b_s = populations[o_s]
perm_b = rng.permutation(len(b_s))
true_s = lagged_covariances_true(truth, cfg.K, a_s, b_s)
pred_s_perm = fits[o_s].predict(a_s, b_s[perm_b])
r_c2_perm = np.array([pearson_r(pred_s_perm[s], true_s[s]) for s in range(cfg.K)])
r_c2 = sweep[o_s][0]
r_c2_full = r_unobs(fits["full"], o_s)
gap_c3 = sweep[o_t][0][0] - sweep[o_t][1]
gap_c3_control = sweep[o_s][0][0] - sweep[o_s][1]

res = ChapterResults("stitching", rt, require_controls=True)
res.add(
    Claim(
        "C1a",
        f"fully observed, p={cfg.p}, n={cfg.n}: subspace error (largest principal angle / (π/2))",
        paper="recovers the subspace (Section 4, unverified value)",
        op="<=",
        threshold=0.1,
        measured=sub_full,
        control=sub_random,
        control_label="a random Gaussian loading matrix",
    )
)
res.add(
    Claim(
        "C1b",
        "fully observed: mean |λ̂ − λ| after Hungarian matching",
        paper="recovers the dynamics",
        op="<=",
        threshold=0.03 if rt.profile == "ci" else 0.02,
        measured=eig_full,
        control=eig_init,
        control_label="the untrained initial A = diag(0.89…0.91)",
    )
)
res.add(
    Claim(
        "C1c",
        f"fully observed: min over lags 0..{cfg.K - 1} of r(predicted, empirical), "
        "off-diagonal pairs",
        paper="predicts observed correlations",
        op=">=",
        threshold=0.95,
        measured=r_full.min(),
        control=r_full_perm.min(),
        control_label="predictions with the neurons' labels permuted",
    )
)
res.add(
    Claim(
        "C2a",
        f"overlap {o_s} of {cfg.p}: min over lags of r_unobs "
        "(never co-observed pairs vs true covariance)",
        paper="accurate down to small overlaps (Section 4, unverified value)",
        op=">=",
        threshold=0.9,
        measured=r_c2.min(),
        control=r_c2_perm.min(),
        control_label="second population's labels permuted",
    )
)
res.add(
    Claim(
        "C2b",
        f"overlap {o_s}: |mean r_unobs (fully observed fit) − mean r_unobs (stitched)|",
        paper="stitching loses little",
        op="<=",
        threshold=0.05,
        measured=abs(r_c2_full.mean() - r_c2.mean()),
        control=abs(r_c2_full.mean() - r_c2_perm.mean()),
        control_label="second population's labels permuted",
    )
)
res.add(
    Claim(
        "C3",
        f"overlap {o_t} < n = {cfg.n}: r_unobs at lag 0, "
        f"S3ID (lags 0..{cfg.K - 1}) minus lag-0-only fit",
        paper="book hypothesis (identifiability argument)",
        op=">=",
        threshold=0.2,
        measured=gap_c3,
        control=gap_c3_control,
        control_label=f"the same gap at overlap {o_s} ≥ n (lag 0 identifies)",
    )
)
res.add(
    Claim(
        "C4a",
        f"each entry missing with p={cfg.missing}: subspace error",
        paper="handles missing data",
        op="<=",
        threshold=0.15,
        measured=sub_miss,
        control=sub_random,
        control_label="a random Gaussian loading matrix",
    )
)
res.add(
    Claim(
        "C4b",
        "missing at random: min over lags of r(predicted, empirical) on co-observed pairs",
        paper="handles missing data",
        op=">=",
        threshold=0.9,
        measured=r_miss.min(),
        control=r_miss_perm.min(),
        control_label="predictions with the neurons' labels permuted",
    )
)
res.add(
    Claim(
        "C5a",
        f"log-log slope of counted FLOPs per stochastic step vs p ∈ {cfg.scale_p}",
        paper="linear in p (abstract: scales to millions of dimensions)",
        op="in",
        threshold=(0.8, 1.2),
        measured=slopes["stochastic"][0],
        control=slopes["dense"][0],
        control_label="dense p×p×K loss",
    )
)
res.add(
    Claim(
        "C5b",
        "log-log slope of peak tensor memory per stochastic step vs p",
        paper="O(p n) memory",
        op="in",
        threshold=(0.8, 1.2),
        measured=slopes["stochastic"][1],
        control=slopes["dense"][1],
        control_label="dense p×p×K loss",
    )
)

# %% tags=["nbval-check-output"]
print(res.table(timings=False))

# %% tags=["nbval-ignore-output"]
print(res.table())
res.save()
print(f"wall time {rt.elapsed():.1f} s")

# %%
res.check()

# %%
res.glue(
    r_c3=float(sweep[o_t][0].mean()),
    r_c3_lag0=float(sweep[o_t][0][0]),
    r_c3_fa=float(sweep[o_t][1]),
    r_c2_fa=float(sweep[o_s][1]),
    time_slope=time_slope,
    dense_flop_slope=slopes["dense"][0],
)

# %% [markdown]
# ## What held, what did not, and why
#
# The verdicts and numbers below are this run's (rules and controls are in the table above).
#
# **Fully observed (C1).** The largest principal angle between the true and fitted loading
# subspaces is {glue:text}`C1a_ours:.3f` of a right angle, where a random loading matrix gives
# {glue:text}`C1a_control:.3f` (C1a: {glue:text}`C1a_verdict`); the matched eigenvalues are off
# by {glue:text}`C1b_ours:.4f` on average, against {glue:text}`C1b_control:.3f` for the untrained
# dynamics (C1b: {glue:text}`C1b_verdict`); predicted and empirical covariances correlate with
# r ≥ {glue:text}`C1c_ours:.3f` at every lag (C1c: {glue:text}`C1c_verdict`).
#
# **Stitching (C2).** With two subpopulations sharing 10 % of the neurons, the covariances of
# pairs never imaged together are predicted with r ≥ {glue:text}`C2a_ours:.3f` at every lag
# (C2a: {glue:text}`C2a_verdict`; with the second population's labels permuted,
# {glue:text}`C2a_control:.3f`), and the fit is within {glue:text}`C2b_ours:.3f` of the fit to
# fully observed data (C2b: {glue:text}`C2b_verdict`).
#
# **Time lags matter (C3, a hypothesis of this book).** When the overlap is smaller than $n$,
# S3ID still predicts the never co-observed covariances with mean r {glue:text}`r_c3:.3f` over
# lags ({glue:text}`r_c3_lag0:.3f` at lag 0), while the lag-0-only fit reaches
# {glue:text}`r_c3_fa:.3f` at lag 0 and cannot predict any later lag: the gap is
# {glue:text}`C3_ours:.3f` (C3: {glue:text}`C3_verdict`). The control is the same gap where the
# overlap exceeds $n$ and lag 0 alone identifies the stitch: {glue:text}`C3_control:.3f` (the
# lag-0-only fit reaches {glue:text}`r_c2_fa:.3f` there). A low training loss of the lag-0-only
# fit does not mean correct predictions: only the lag-0 covariances within each subpopulation
# constrain it, and with fewer shared neurons than latents a rotation of one view stays free.
#
# **Missing at random (C4).** With half of all entries missing the subspace error is
# {glue:text}`C4a_ours:.3f` (C4a: {glue:text}`C4a_verdict`) and observed covariances are
# predicted with r ≥ {glue:text}`C4b_ours:.3f` (C4b: {glue:text}`C4b_verdict`).
#
# **Linear cost (C5).** Counted operations of one stochastic step grow with slope
# {glue:text}`C5a_ours:.2f` in $p$ on a log-log scale and its peak tensor memory with slope
# {glue:text}`C5b_ours:.2f` (C5a: {glue:text}`C5a_verdict`, C5b: {glue:text}`C5b_verdict`),
# where the dense loss has slopes {glue:text}`dense_flop_slope:.2f` and
# {glue:text}`C5b_control:.2f`. Wall time per step grew with slope {glue:text}`time_slope:.2f`
# on this machine (not judged: shared machines are noisy, and at small $p$ fixed overheads
# dominate).
#
# *What this chapter does not run.* The paper's zebrafish data, the EM and GROUSE baselines,
# and the stochastic path as the fitting engine for the small fits here (it is exercised in
# the cost measurement, and a unit test checks that its gradient averaged over all time points
# equals the dense loss's). The full profile fits the dense loss on a GPU at $p$ = 1,000 over
# the overlap sweep with one seed.
