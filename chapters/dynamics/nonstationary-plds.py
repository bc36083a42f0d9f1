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
# # Slow trial-to-trial drift in a Poisson LDS (N-PLDS)
#
# **Paper.** M. Park, G. Bohner, J. H. Macke, *Unlocking neural population non-stationarity
# using a hierarchical dynamics model*, NIPS 2015 (Advances in NIPS 28, pp. 145–153); the
# earlier version is [arXiv:1410.3111](https://arxiv.org/abs/1410.3111). Reference code:
# `mackelab/nonstat_plds` (MATLAB), whose scripts and stored figure data are the source of the
# simulation and of the numbers quoted here.
#
# Spike counts $y^{(r)}_{t,i}$ of $p$ neurons are recorded over many repeated trials $r$. Within
# a trial, a low-dimensional latent state drives the population (a Poisson linear dynamical
# system, PLDS); across trials the firing rates drift slowly (arousal, anaesthesia depth,
# adaptation). The nonstationary PLDS (N-PLDS) adds to the PLDS one latent offset $h^{(r)}$
# per trial, constant within the trial, with a Gaussian-process prior over the trial index:
#
# $$x^{(r)}_1 = B u_1 + \xi_1,\quad x^{(r)}_t = A x^{(r)}_{t-1} + B u_t + \xi_t,\quad
# \xi_t\sim\mathcal N(0, I),$$
#
# $$z^{(r)}_{t,i} = c_i^\top\bigl(x^{(r)}_t + h^{(r)}\bigr) + d_i,\qquad
# y^{(r)}_{t,i}\sim\operatorname{Poisson}\bigl(e^{z^{(r)}_{t,i}}\bigr),\qquad
# \operatorname{Cov}\bigl(h_j^{(r)}, h_j^{(r')}\bigr) = \sigma^2
# e^{-(r-r')^2/2\tau^2} + \epsilon\,\delta_{rr'} .$$
#
# Fitting alternates a Laplace E-step for the latents of every trial (one Newton problem per
# trial whose Hessian is block-tridiagonal in time; here all trials at once), M-steps for
# $A, B, C, d$, a Laplace posterior $q(h)$ over all trials' offsets and a grid search over
# $(\sigma^2, \tau^2)$. A stationary PLDS has to explain slow drift with its fast dynamics or
# not at all; the N-PLDS keeps the two apart and can interpolate the offset to a trial it has
# not seen.
#
# **What the paper claims** (its Fig. 2 simulation and Figs. 3–4 on V1 data; the claims
# below make them checkable): the N-PLDS recovers the slow modulation of the trial-mean log
# rates (C1); it predicts held-out trials better than the stationary PLDS and than the same
# model without coupling between trials (C2); the learned GP time scale is of the order of the
# true drift's (C3); the across-trial share of the log-rate variance is reproduced (C5). C4 is a
# **hypothesis of this book**: because the drift is explained by $h$, the N-PLDS's dynamics
# matrix should keep its true slow eigenvalue (0.9) while the stationary PLDS's largest
# eigenvalue is pushed up. C6, a smooth drift of the dynamics matrix itself (the arXiv
# version's extension), belongs to the full profile only.
#
# **Figures redrawn.** True against recovered trial-mean log rates of both neuron groups
# (paper Fig. 2A–B), one trial's spikes and inferred log rates, the held-out prediction error
# per model (Fig. 3B), the learned time scale and the posterior over the offsets (Fig. 4), the
# eigenvalues of the fitted dynamics, and total against within-trial auto-covariance (Fig. 2E).
#
# **How the claims are judged.** Every claim is judged twice by the same rule: on our value and
# on a *control*, a deliberately wrong answer of the same kind (estimates with the trial order
# shuffled, the model without coupling, the untrained dynamics). A claim whose control passes
# too is *inconclusive*.

# %% tags=["parameters"]
profile = "ci"
seed = 0
device = "auto"

# %% [markdown]
# Both profiles simulate the paper's Fig. 2 at its full size (100 trials of 200 bins of 50 ms,
# 40 neurons, $k = 4$ latents); they differ in seeds and iterations, not in size. `ci` holds
# out 10 random trials, fits each model on the other 90 (that fit serves C1 on the training
# trials, C2 on the held-out ones and every figure), repeats the held-out comparison on two more
# random splits (three in all), runs 12 EM iterations per model and draws 200 simulated trials
# per held-out trial for the prediction. `full` repeats C1 on five simulation seeds and C2 on
# ten splits, runs 30 iterations and 1,000 simulations (the reference code's) and sweeps
# $k$ = 1…6.

# %%
import os

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from neuroinverse import plotting
from neuroinverse.inference import (
    PLDSParams,
    fit_nsls,
    fit_plds,
    heldout_error,
    offset_statistics,
    poisson_glm_trial_means,
    predict_h,
    prior_mean_trajectory,
    refit_offsets,
    simulate_trial_means,
    slow_coefficients,
    timescale_from_trial_means,
)
from neuroinverse.metrics import (
    autocovariance_split,
    pearson_r,
    trial_mean_log_rates,
    variance_split,
)
from neuroinverse.results import ChapterResults, Claim
from neuroinverse.runtime import background, setup
from neuroinverse.simulators import simulate_poisson_lds

rt = setup(profile=profile, seed=seed, device=device)
if rt.profile == "ci":
    threadpool_limits(1)
cfg = rt.select(
    ci=dict(
        seeds=(0,),
        splits=3,
        n_test=10,
        n_iter=12,
        n_sim=200,
        k=4,
        k_sweep=(),
        nsls=False,
        nsls_iter=12,
    ),
    full=dict(
        seeds=(0, 1, 2, 3, 4),
        splits=10,
        n_test=10,
        n_iter=30,
        n_sim=1000,
        k=4,
        k_sweep=(1, 2, 3, 4, 5, 6),
        nsls=True,
        nsls_iter=20,
    ),
)
plotting.apply_style()
workers = 1 if rt.profile == "ci" else max(1, min(16, (os.cpu_count() or 2) - 1))
print(
    f"profile={rt.profile} threads={rt.threads} background workers={workers}",
    f"seeds={cfg.seeds} splits={cfg.splits} EM iterations={cfg.n_iter} simulations={cfg.n_sim}",
)

# %% [markdown]
# ## The simulation
#
# The values are those of the reference code's `generate_data.m`: $A = \mathrm{diag}(0, 0,
# 0.9, 0.9)$; two input-driven latents ($B$ rows $(5, 0)$ and $(0, 6)$) and two slow AR(0.9)
# latents; neurons 1–20 load 0.1 on latent 1 and 0.1/3 on latent 3, neurons 21–40 load 0.1
# on latent 2 and 0.1/3 on latent 4; $d = -2.2$ and $-1.2$. The inputs are two full cycles of
# a rotating stimulus in bins 51–150 of every trial. The offsets are a Gaussian bump over
# trials (centre 25, SD 12.5 trials, peak 12) on latents 1 and 3 and the negative of its
# mirror image on latents 2 and 4, so the mean log rate of group 1 rises from −2.2 to −0.6
# around trial 25 and that of group 2 falls from −1.2 to −2.8 around trial 76. Within a trial
# the latents move the log rates by about 0.1–0.2, much less than the drift across trials.

# %%
data = simulate_poisson_lds(seed=rt.seed)
R, T, p = data.y.shape
groups = data.groups
true_gm = trial_mean_log_rates(data.z, groups)  # (R, 2)
total, cond, ratio_true = variance_split(data.z)
print(f"counts {data.y.shape}, mean count per bin {data.y.mean():.3f}")
print(
    f"true log-rate variance: total {total:.3f}, within trials {cond:.3f},",
    f"across-trial share {ratio_true:.3f}",
)


def split(i):
    """Held-out split i: n_test random trials (indices into 0..R-1) and the rest."""
    rng = np.random.default_rng(rt.seed + 1000 + i)
    test = np.sort(rng.choice(R, cfg.n_test, replace=False))
    return np.setdiff1d(np.arange(R), test), test


train, test = split(0)
print("held-out trials (numbers 1..100):", (test + 1).tolist())

# %% [markdown]
# ## Fits
#
# Four models on the same 90 training trials, all by the same EM code with a progress bar
# (`fit_plds`): the **N-PLDS**; the **no-coupling** variant ($\tau^2$ fixed at $e^{-6}$:
# every trial gets its own offset, but nothing links neighbouring trials, so a held-out
# trial's offset is the prior mean $m_h$); the **stationary PLDS** ($h \equiv 0$); and
# **independent PLDS**, one model with its own $A, B, C, d$ per trial (the reference's
# `fitting_indpPLDS`), fitted all at once through the batched E-step. Initialisation follows
# the reference code ($C = 0.2\,\mathcal N(0, 1)$, $B = 0$, $m_h = 0$, $\sigma^2 =
# 10\lvert\mathcal N(0,1)\rvert$) except that $d$ is estimated jointly with $C$ instead of being
# fixed at its true value, $A$ starts at $0.5 I$, and $\tau^2$ starts where a GP fit to the
# per-trial mean counts puts it (what the reference code does for real data; why this matters
# is shown below). Every iteration: E-step (damped Newton from the previous mode, 2–4 steps,
# each one block-tridiagonal solve for all trials), $A, B$ (ARD evidence on the reference
# grid), $C, d$ (Newton per neuron), then $q(h)$, $m_h$ and the grid over
# $(\sigma^2, \tau^2)$ (26 × 51 points) and $q(h)$ again. A Poisson GLM (scikit-learn's
# `PoissonRegressor`, one per neuron, on Gaussian bumps over the trial number with its penalty
# cross-validated) is the model-free reference for the held-out trials. The independent fits,
# the GLM, a diagnostic fit started at the true parameters (used for C4) and the extra
# held-out splits run in a background process.


# %%
def independent_trial_means(y, u, k, n_iter, seed, groups):
    """Trial-mean log rates of independent per-trial PLDS fits (run in a background worker)."""
    fit = fit_plds(y, u, k, model="independent", n_iter=n_iter, seed=seed, progress=False)
    return trial_mean_log_rates(fit.log_rates(), groups)


def largest_eigenvalue_from_truth(y, u, trials, n_iter, seed):
    """The N-PLDS started at the true A, B, C, d (a diagnostic for C4): its largest |eig(A)|."""
    init = PLDSParams(*(torch.as_tensor(v) for v in (data.A, data.B, data.C, data.d)))
    fit = fit_plds(y, u, 4, trials=trials, n_iter=n_iter, seed=seed, init=init, progress=False)
    return float(np.abs(fit.params.eigenvalues()).max())


jobs = {
    "independent": background(
        independent_trial_means,
        data.y[train],
        data.u,
        cfg.k,
        cfg.n_iter,
        rt.seed,
        groups,
        workers=workers,
    ),
    "glm": background(
        poisson_glm_trial_means, data.y[train], train + 1, test + 1, seed=rt.seed, workers=workers
    ),
    "from truth": background(
        largest_eigenvalue_from_truth,
        data.y[train],
        data.u,
        train + 1,
        cfg.n_iter,
        rt.seed,
        workers=workers,
    ),
}
MODEL_NAMES = ("nplds", "no-coupling", "plds")
fits = {
    m: fit_plds(
        data.y[train], data.u, cfg.k, model=m, trials=train + 1, n_iter=cfg.n_iter, seed=rt.seed
    )
    for m in MODEL_NAMES
}
nplds = fits["nplds"]

# %% tags=["nbval-ignore-output"]
for m, f in fits.items():
    sec = sum(h["seconds"] for h in f.history)
    print(f"{m:12s}: {sec:5.1f} s for {len(f.history)} iterations", end="")
    print(f", tau = {np.sqrt(f.tau2):.2f} trials" if f.tau2 is not None else "")

# %% [markdown]
# ## C1: the slow modulation of the trial-mean log rates
#
# The trial-mean log rate of a group is the mean over its 20 neurons and the trial's 200 bins
# of $z$ (true) or of $\hat z = \hat C(\mu_t + \mathbb E[h^{(r)}]) + \hat d$ (estimated, with
# $\mu_t$ the posterior mean of the latents). Comparing in $z$ matters: $h$, $d$ and the mean
# of $x$ are only identified up to $C$. For the held-out trials the markers show the models'
# predictions: $\hat C(m_t + h^*) + \hat d$ with $m_t$ the prior mean of the latents and
# $h^*$ the GP interpolation (N-PLDS), $m_h$ (no coupling) or 0 (PLDS).


# %%
def group_means_heldout(fit, test_trials):
    """Predicted trial-mean log rates of held-out trials, (len(test), 2)."""
    P = fit.params
    h_star = fit.predict_h(test_trials)
    m = prior_mean_trajectory(P.A, P.B, data.u, torch.zeros(P.k))
    z = (m[None] + h_star[:, None]) @ P.C.T + P.d
    return trial_mean_log_rates(z.numpy(), groups)


est_gm = {m: trial_mean_log_rates(f.log_rates(), groups) for m, f in fits.items()}
est_gm["independent"] = jobs["independent"].result()
pred_gm = {m: group_means_heldout(f, test + 1) for m, f in fits.items()}


def c1_scores(est, true):
    r = [pearson_r(est[:, g], true[:, g]) for g in (0, 1)]
    rmse = np.sqrt(((est - true) ** 2).mean(0))
    return min(r), float(rmse.max())


c1 = {m: c1_scores(e, true_gm[train]) for m, e in est_gm.items()}
perm = np.random.default_rng(rt.seed + 7).permutation(len(train))
c1_shuffled = c1_scores(est_gm["nplds"][perm], true_gm[train])
for m, (r, e) in c1.items():
    print(f"{m:12s}: min r over groups {r:.3f}, max RMSE {e:.3f} log units")
print(f"N-PLDS, trial order shuffled: r {c1_shuffled[0]:.3f}, RMSE {c1_shuffled[1]:.3f}")

# %% [markdown]
# In the full profile, C1 is repeated on four more simulation seeds, each fitted on all 100
# trials (background workers); the claim takes the worst seed.


# %%
def nplds_c1(seed, n_iter, k):
    d = simulate_poisson_lds(seed=seed)
    f = fit_plds(d.y, d.u, k, model="nplds", n_iter=n_iter, seed=seed, progress=False)
    return c1_scores(
        trial_mean_log_rates(f.log_rates(), d.groups), trial_mean_log_rates(d.z, d.groups)
    )


extra_seeds = {
    s: background(nplds_c1, rt.seed + s, cfg.n_iter, cfg.k, workers=workers) for s in cfg.seeds[1:]
}

# %% tags=["remove-output"]
names = {
    "nplds": ("N-PLDS", plotting.COLORS["method"], "-"),
    "no-coupling": ("no coupling", plotting.COLORS["baseline2"], "--"),
    "plds": ("stationary PLDS", plotting.COLORS["baseline"], "-"),
    "independent": ("independent PLDS", plotting.COLORS["reference"], ":"),
}
fig, axes = plotting.figure(1, 2, width=7, height=3.0)
for g, ax in enumerate(axes[0]):
    ax.plot(np.arange(1, R + 1), true_gm[:, g], color=plotting.COLORS["truth"], lw=2, label="true")
    for m, (label, colour, ls) in names.items():
        ax.plot(train + 1, est_gm[m][:, g], ls, color=colour, lw=1, label=label)
        if m in pred_gm:
            ax.plot(test + 1, pred_gm[m][:, g], "o", color=colour, ms=5, mfc="white", mew=1.5)
    ax.set_xlabel("trial")
    ax.set_ylabel(f"group {g + 1}: trial-mean log rate")
    ax.set_title(f"neurons {20 * g + 1}–{20 * g + 20}")
axes[0, 1].plot(
    [], [], "o", color=plotting.COLORS["data"], mfc="white", label="held-out (predicted)"
)
axes[0, 1].legend(fontsize=7, loc="lower left")
plotting.save(fig, "nonstationary-plds", "fig1_trial_means")

# %% [markdown]
# ```{glue:figure} fig1_trial_means
# ---
# name: fig-nonstationary-plds-trial-means
# alt: >-
#   Two panels, one per neuron group, of the trial-mean log rate against the trial number: the
#   true bump (rising for group 1 near trial 25, falling for group 2 near trial 76) and the
#   estimates of the N-PLDS, the no-coupling variant, the stationary PLDS and independent
#   per-trial PLDS on the training trials, with open circles for the held-out predictions.
# ---
# True against recovered trial-mean log rates (lines: training trials; open circles: the
# models' predictions for the 10 held-out trials). On training trials every model follows the
# drift, because each trial's posterior can shift; only the N-PLDS's circles follow it on the
# trials it has not seen.
# ```

# %% [markdown]
# ## One trial, within
#
# The raster of one training trial near the peak of group 1's modulation, and the log rates of
# the two groups within it: the true $z$ averaged over each group against the N-PLDS's and the
# stationary PLDS's $\hat z$. The inputs move the log rates in bins 51–150.

# %% tags=["remove-output"]
j = int(np.argmin(np.abs(train + 1 - 25)))
r_show = train[j]
fig, axes = plotting.figure(1, 2, width=7, height=2.8)
ax = axes[0, 0]
tt, ii = np.nonzero(data.y[r_show])
ax.scatter(
    tt + 1,
    ii + 1,
    s=np.minimum(data.y[r_show][tt, ii], 4) * 3,
    color=plotting.COLORS["data"],
    marker="|",
)
ax.set_xlabel("bin (50 ms)")
ax.set_ylabel("neuron")
ax.set_title(f"spikes, trial {r_show + 1}")
ax = axes[0, 1]
for g, ls in ((0, "-"), (1, "--")):
    sel = groups == g
    ax.plot(
        np.arange(1, T + 1),
        data.z[r_show][:, sel].mean(1),
        ls,
        color=plotting.COLORS["truth"],
        lw=1.5,
        label=f"true, group {g + 1}",
    )
    for m in ("nplds", "plds"):
        z_hat = fits[m].log_rates()[j][:, sel].mean(1)
        ax.plot(
            np.arange(1, T + 1),
            z_hat,
            ls,
            color=names[m][1],
            lw=1,
            label=f"{names[m][0]}, group {g + 1}",
        )
ax.set_xlabel("bin (50 ms)")
ax.set_ylabel("group-mean log rate")
ax.set_title("solid: group 1, dashed: group 2")
handles, labels_ = ax.get_legend_handles_labels()
lo, hi = ax.get_ylim()
ax.set_ylim(lo - 0.3 * (hi - lo), hi)  # room for the legend below the curves
ax.legend(
    handles[:3], [lab.split(",")[0] for lab in labels_[:3]], fontsize=7, loc="lower center", ncol=3
)
plotting.save(fig, "nonstationary-plds", "fig2_one_trial")

# %% [markdown]
# ```{glue:figure} fig2_one_trial
# ---
# name: fig-nonstationary-plds-one-trial
# alt: >-
#   Left, a raster of 40 neurons over 200 bins of one trial near trial 25; right, the
#   group-mean log rate within that trial, true and estimated by the N-PLDS and the stationary
#   PLDS, for both groups.
# ---
# One trial: spikes (left; marker size grows with the count) and the group-mean log rates
# within it (right). The level of each curve is set by the trial's offset, the wiggles in bins
# 51–150 by the inputs.
# ```

# %% [markdown]
# ## C2: predicting held-out trials
#
# For each held-out trial the offset is interpolated from the training trials
# ($h^* = m_h + K_* K^{-1}(\mathbb E[h] - m_h)$, the GP predictive mean; the reference code
# omits $m_h$), `n_sim` trials are drawn from the fitted model with that offset and the
# stimulus, and a neuron's predicted mean count per bin is the median over the simulations of
# the within-trial mean of $e^{z}$. The error is the reference code's:
# $\sqrt{\sum_{i, r^*}(\text{predicted} - \text{observed mean count per bin})^2}$ over the 40
# neurons and the held-out trials. The control for the N-PLDS is its own prediction with the
# training trials' offsets shuffled among them before the interpolation.


# %%
def heldout_errors(fit_by_model, y_test, test_trials, seed):
    out = {}
    for m, f in fit_by_model.items():
        pred = simulate_trial_means(
            f.params, data.u, f.predict_h(test_trials), n_sim=cfg.n_sim, seed=seed
        )
        out[m] = heldout_error(pred, y_test)
    return out


errors = heldout_errors(fits, data.y[test], test + 1, rt.seed)
glm_pred, glm_alpha = jobs["glm"].result()
errors["glm"] = heldout_error(glm_pred, data.y[test])
shuffled = fits["nplds"]
h_perm = shuffled.h_mean[torch.as_tensor(perm)]
h_star_shuffled = predict_h(
    test + 1, train + 1, h_perm, shuffled.m_h, shuffled.sigma2, shuffled.tau2
)
pred_shuffled = simulate_trial_means(
    shuffled.params, data.u, h_star_shuffled, n_sim=cfg.n_sim, seed=rt.seed
)
err_shuffled = heldout_error(pred_shuffled, data.y[test])
print({m: round(e, 3) for m, e in errors.items()}, f"(GLM penalty {glm_alpha:g})")
print(f"N-PLDS with the training offsets shuffled: {err_shuffled:.3f}")


# %% [markdown]
# In the full profile the other nine splits are fitted in background workers (all three
# models per split); the claim compares the mean errors over splits.


# %%
def split_errors(i, n_iter, k, n_sim, seed):
    tr, te = split(i)
    fs = {
        m: fit_plds(
            data.y[tr], data.u, k, model=m, trials=tr + 1, n_iter=n_iter, seed=seed, progress=False
        )
        for m in MODEL_NAMES
    }
    out = {}
    for m, f in fs.items():
        pred = simulate_trial_means(f.params, data.u, f.predict_h(te + 1), n_sim=n_sim, seed=seed)
        out[m] = heldout_error(pred, data.y[te])
    out["glm"] = heldout_error(
        poisson_glm_trial_means(data.y[tr], tr + 1, te + 1, seed=seed)[0], data.y[te]
    )
    return out


split_jobs = [
    background(split_errors, i, cfg.n_iter, cfg.k, cfg.n_sim, rt.seed, workers=workers)
    for i in range(1, cfg.splits)
]
split_table = [errors] + [j.result() for j in split_jobs]
mean_err = {m: float(np.mean([s[m] for s in split_table])) for m in errors}
ratio_plds = mean_err["nplds"] / mean_err["plds"]
ratio_nc = mean_err["nplds"] / mean_err["no-coupling"]
print(
    "mean held-out error over",
    len(split_table),
    "split(s):",
    {m: round(v, 3) for m, v in mean_err.items()},
)
print(f"N-PLDS / PLDS {ratio_plds:.3f}; N-PLDS / no coupling {ratio_nc:.3f}")

# %% [markdown]
# ## C3: the learned time scale
#
# The grid search over $(\sigma^2, \tau^2)$ minimises $\mathrm{KL}(q(h)\,\|\,p(h))$ given the
# current posterior over the offsets. With $K = K_\text{trial}\otimes I_k$, one
# eigendecomposition of the 90 × 90 trial kernel per $\tau^2$ makes every $\sigma^2$ an
# $O(Rk)$ sum, so the 1,326 grid points cost milliseconds. The control runs the same start and
# the same offset updates (on the fitted model's sufficient statistics) with the training
# trials' order shuffled: with no slow structure left, the time scale should collapse. The
# same loop started from the reference code's simulation start, $\tau^2 \sim 10\,U(0, 1)$,
# shows why the start matters.


# %%
def offsets_only(fit, trials, tau2, n_rounds):
    """The timescale the offset updates alone reach from ``tau2`` on a fitted model."""
    Y, base = offset_statistics(data.y[train], fit.posterior, fit.params.C, fit.params.d)
    return refit_offsets(Y, base, fit.params.C, trials, tau2=tau2, n_rounds=n_rounds)[1].tau2


tau_learned = float(np.sqrt(nplds.tau2))
shuffled_trials = (train + 1)[perm]
start_shuffled = timescale_from_trial_means(data.y[train], shuffled_trials).tau2
tau_shuffled = float(np.sqrt(offsets_only(nplds, shuffled_trials, start_shuffled, cfg.n_iter)))
start_random = float(10 * np.random.default_rng(rt.seed).uniform())
tau_from_random = float(np.sqrt(offsets_only(nplds, train + 1, start_random, cfg.n_iter)))
start = timescale_from_trial_means(data.y[train], train + 1)
print(f"learned tau {tau_learned:.2f} trials (start {np.sqrt(start.tau2):.2f}; true bump SD 12.5)")
print(
    f"trial order shuffled: {tau_shuffled:.2f}; from the reference's random start "
    f"tau = {np.sqrt(start_random):.2f}: {tau_from_random:.2f}"
)

# %% tags=["remove-output"]
fig, axes = plotting.figure(1, 2, width=7, height=3.0)
ax = axes[0, 0]
hyp = nplds.hyper
kl_profile = hyp.kl.min(0)
ax.plot(
    np.sqrt(np.exp(hyp.log_tau2)),
    kl_profile - kl_profile.min(),
    "o-",
    ms=2,
    color=plotting.COLORS["method"],
    label="KL(q‖p), min over σ²",
)
ml = -(start.log_ml - start.log_ml.max())
ax.plot(
    np.sqrt(np.exp(start.log_tau2)),
    ml,
    "s--",
    ms=2,
    color=plotting.COLORS["baseline2"],
    label="−log ML, per-trial means (start)",
)
ax.axvline(tau_learned, color=plotting.COLORS["method"], lw=0.8)
ax.axvline(12.5, color=plotting.COLORS["truth"], lw=0.8, ls=":", label="true bump SD")
ax.set_xscale("log")
ax.set_yscale("symlog", linthresh=1)
ax.set_ylim(0, None)
ax.set_xlabel("GP length scale τ (trials)")
ax.set_ylabel("objective − its minimum")
ax.legend(fontsize=7)
ax = axes[0, 1]
Sb = nplds.h_blocks()
for g, ls in ((0, "-"), (1, "--")):
    a = nplds.params.C[groups == g].mean(0)  # the group's mean loading
    mean = (nplds.h_mean @ a).numpy()
    sd = torch.sqrt(torch.einsum("i,rij,j->r", a, Sb, a)).numpy()
    centre = mean.mean()
    ax.fill_between(
        train + 1,
        mean - centre - 2 * sd,
        mean - centre + 2 * sd,
        color=plotting.COLORS["method"],
        alpha=0.3,
        lw=0,
    )
    ax.plot(
        train + 1,
        mean - centre,
        ls,
        color=plotting.COLORS["method"],
        lw=1,
        label=f"N-PLDS, group {g + 1}",
    )
    ax.plot(
        test + 1,
        (nplds.predict_h(test + 1) @ a).numpy() - centre,
        "o",
        color=plotting.COLORS["method"],
        mfc="none",
        ms=4,
    )
    true_off = data.h @ data.C[groups == g].mean(0)
    ax.plot(
        np.arange(1, R + 1),
        true_off - true_off[train].mean(),
        ls,
        color=plotting.COLORS["truth"],
        lw=1.5,
        label=f"true, group {g + 1}",
    )
ax.set_xlabel("trial")
ax.set_ylabel("offset's share of log rate (centred)")
ax.legend(fontsize=7)
plotting.save(fig, "nonstationary-plds", "fig3_timescale")

# %% [markdown]
# ```{glue:figure} fig3_timescale
# ---
# name: fig-nonstationary-plds-timescale
# alt: >-
#   Left, two curves over the GP length scale on a log axis: the KL objective of the grid search
#   and the negative log marginal likelihood of the per-trial mean counts, with vertical lines at
#   the learned length scale and at the true bump SD of 12.5 trials. Right, the posterior mean
#   and a two-SD band of the offset's contribution to each group's log rate across trials, with
#   open circles at the held-out trials and the true contribution as black lines.
# ---
# The learned time scale (left: the grid search's objective, profiled over σ², and the GP fit
# of the per-trial mean counts that sets its start) and the posterior over the offsets, mapped
# into each group's mean log rate through the fitted loadings (right; centred, because only
# C h is identified; band: ± 2 posterior SD; circles: held-out trials, interpolated).
# ```

# %% [markdown]
# ## C4 (a hypothesis of this book): are the dynamics left alone?
#
# The true $A$ has eigenvalues 0, 0, 0.9, 0.9. If the slow drift is absorbed by $h$, the
# N-PLDS's largest eigenvalue should stay near 0.9; the stationary PLDS, which has only its
# dynamics to carry a slow component, should move its largest eigenvalue towards 1. Controls:
# the untrained dynamics ($A = 0.5 I$) for the first part; the no-coupling variant, which has
# offsets too, for the second (a gap that appears there as well is not caused by the drift).

# %%
eigs = {m: np.linalg.eigvals(f.params.A.numpy()) for m, f in fits.items()}
lam_max = {m: float(np.abs(e).max()) for m, e in eigs.items()}
lam_from_truth = jobs["from truth"].result()
print({m: np.round(np.sort(np.abs(e))[::-1], 3).tolist() for m, e in eigs.items()})
print(f"N-PLDS started at the true parameters: largest |eigenvalue| {lam_from_truth:.3f}")

# %% tags=["remove-output"]
fig, axes = plotting.figure(1, 2, width=7, height=3.0)
ax = axes[0, 0]
th = np.linspace(0, np.pi / 2, 100)
ax.plot(np.cos(th), np.sin(th), color=plotting.COLORS["data"], lw=0.5)
true_e = np.linalg.eigvals(data.A)
ax.scatter(
    true_e.real,
    true_e.imag,
    s=60,
    facecolors="none",
    edgecolors=plotting.COLORS["truth"],
    label="true",
)
for m, marker in (("nplds", "x"), ("plds", "+"), ("no-coupling", "1")):
    ax.scatter(
        eigs[m].real,
        np.abs(eigs[m].imag),
        marker=marker,
        s=40,
        color=names[m][1],
        label=names[m][0],
    )
ax.set_xlabel("Re λ")
ax.set_ylabel("|Im λ|")
ax.set_aspect("equal")
ax.legend(fontsize=7)
ax = axes[0, 1]
labels = ["true", "N-PLDS", "no coupling", "PLDS"]
vals = [0.9, lam_max["nplds"], lam_max["no-coupling"], lam_max["plds"]]
cols = [plotting.COLORS["truth"], names["nplds"][1], names["no-coupling"][1], names["plds"][1]]
ax.bar(labels, vals, color=cols)
ax.axhspan(0.8, 1.0, color=plotting.COLORS["reference"], alpha=0.15, lw=0)
ax.set_xlabel("model")
ax.set_ylabel("largest |eigenvalue| of A")
ax.set_ylim(0, 1.05)
plotting.save(fig, "nonstationary-plds", "fig4_eigenvalues")

# %% [markdown]
# ```{glue:figure} fig4_eigenvalues
# ---
# name: fig-nonstationary-plds-eigenvalues
# alt: >-
#   Left, eigenvalues of the fitted dynamics matrices in the complex plane (upper half, with the
#   unit circle): true, N-PLDS, stationary PLDS and no-coupling. Right, bars of the largest
#   eigenvalue modulus per model beside the true 0.9, with the band 0.8 to 1.0 shaded.
# ---
# The eigenvalue spectrum of the fitted dynamics matrices (left) and the largest modulus per
# model (right; shaded: within 0.1 of the true 0.9).
# ```

# %% [markdown]
# ## C5: how much of the variance is across trials
#
# Total (pooled over all trials) against conditional (within-trial) auto-covariance of the log
# rates, averaged over neurons. For the truth, the across-trial share at lag 0,
# (total − conditional)/total, is about 0.9: the slow drift dominates. The estimates use the
# posterior means $\hat z$ of the training trials. The control is the model's own
# prediction with the offsets set to their prior mean $m_h$ for every trial (the stationary
# part of the N-PLDS).

# %%
max_lag = 20
acov = {"true": autocovariance_split(data.z[train], max_lag)}
share = {"true": variance_split(data.z[train])[2]}
for m in ("nplds", "plds"):
    zh = fits[m].log_rates()
    acov[m] = autocovariance_split(zh, max_lag)
    share[m] = variance_split(zh)[2]
P = nplds.params
z_stat = (nplds.posterior.mean + nplds.m_h) @ P.C.T + P.d
share["stationary part"] = variance_split(z_stat.numpy())[2]
print({m: round(v, 3) for m, v in share.items()})

# %% tags=["remove-output"]
fig, axes = plotting.figure(1, 3, width=7, height=2.6, sharey=True)
lags = np.arange(max_lag + 1) * 50
for ax, (m, title) in zip(
    axes[0], (("true", "true z"), ("nplds", "N-PLDS ẑ"), ("plds", "stationary PLDS ẑ")), strict=True
):
    tot_c, cond_c = acov[m]
    ax.plot(lags, tot_c, color=plotting.COLORS["truth"], label="total")
    ax.plot(lags, cond_c, "--", color=plotting.COLORS["method"], label="within trials")
    ax.set_title(f"{title}: share {share[m]:.2f}")
    ax.set_xlabel("lag (ms)")
    ax.set_ylabel("auto-covariance (log² units)")
axes[0, 0].legend(fontsize=7)
plotting.save(fig, "nonstationary-plds", "fig5_covariance_split")

# %% [markdown]
# ```{glue:figure} fig5_covariance_split
# ---
# name: fig-nonstationary-plds-covariance
# alt: >-
#   Three panels of auto-covariance against lag up to one second, for the true log rates and
#   the N-PLDS and stationary PLDS estimates: a high, flat total auto-covariance and a small
#   within-trial one that decays within a few bins.
# ---
# Total against within-trial auto-covariance of the log rates (training trials, averaged over
# neurons). The gap between the two curves is the across-trial variance; the titles give its
# share at lag 0.
# ```

# %% [markdown]
# ## Held-out error per model
#
# In the full profile, the latent dimension is also swept ($k$ = 1…6, first split), as the
# paper does on V1 data.


# %%
def sweep_errors(k, n_iter, n_sim, seed):
    fs = {
        m: fit_plds(
            data.y[train],
            data.u,
            k,
            model=m,
            trials=train + 1,
            n_iter=n_iter,
            seed=seed,
            progress=False,
        )
        for m in ("nplds", "plds")
    }
    return heldout_errors(fs, data.y[test], test + 1, seed)


sweep_jobs = {
    k: background(sweep_errors, k, cfg.n_iter, cfg.n_sim, rt.seed, workers=workers)
    for k in cfg.k_sweep
}
sweep = {k: j.result() for k, j in sweep_jobs.items()}
c1_extra = {s: j.result() for s, j in extra_seeds.items()}
c1_worst = (
    min([c1["nplds"][0]] + [v[0] for v in c1_extra.values()]),
    max([c1["nplds"][1]] + [v[1] for v in c1_extra.values()]),
)
for s, (r, e) in c1_extra.items():
    print(f"seed {rt.seed + s}: N-PLDS min r {r:.3f}, max RMSE {e:.3f}")

# %% tags=["remove-output"]
fig, axes = plotting.figure(1, 2 if sweep else 1, width=7, height=3.0)
ax = axes[0, 0]
order = ["nplds", "no-coupling", "plds", "glm"]
labels = ["N-PLDS", "no coupling", "PLDS", "Poisson GLM"]
cols = [names["nplds"][1], names["no-coupling"][1], names["plds"][1], plotting.COLORS["data"]]
vals = np.array([[s[m] for m in order] for s in split_table])
ax.bar(labels, vals.mean(0), color=cols, alpha=0.8)
for j in range(len(order)):
    ax.plot(np.full(len(vals), j), vals[:, j], "k.", ms=3)
ax.set_xlabel("model")
ax.set_ylabel("held-out prediction error (counts / bin)")
ax.set_title(f"{len(split_table)} split(s) of {cfg.n_test} held-out trials")
if sweep:
    ax = axes[0, 1]
    ks = sorted(sweep)
    ax.plot(ks, [sweep[k]["nplds"] for k in ks], "o-", color=names["nplds"][1], label="N-PLDS")
    ax.plot(ks, [sweep[k]["plds"] for k in ks], "s-", color=names["plds"][1], label="PLDS")
    ax.set_xlabel("latent dimension k")
    ax.set_ylabel("held-out prediction error")
    ax.legend()
plotting.save(fig, "nonstationary-plds", "fig6_prediction")

# %% [markdown]
# ```{glue:figure} fig6_prediction
# ---
# name: fig-nonstationary-plds-prediction
# alt: >-
#   Bars of the held-out prediction error for the N-PLDS, the no-coupling variant, the
#   stationary PLDS and a Poisson GLM over trial-number bumps, with one dot per split; in the
#   full profile a second panel shows the error against the latent dimension k for N-PLDS and
#   PLDS.
# ---
# Held-out prediction error per model (bars: mean over splits; dots: single splits). The
# paper's V1 numbers, for comparison only (different data): N-PLDS 1.83–2.29 and PLDS
# 2.14–2.26 over k = 1…8, mean 2.005 against 2.217.
# ```

# %% [markdown]
# ## C6 (full profile only): dynamics that drift across trials
#
# The arXiv version of the paper (arXiv:1410.3111) also lets the dynamics matrix change
# smoothly from trial to trial (the reference code's `NSLS`): $x^{(r)}_t = A^{(r)}
# x^{(r)}_{t-1} + B u_t + \xi_t$, every entry $A_{ij}(\cdot)$ an independent GP over the trial
# index with the same squared-exponential kernel as the offsets (its own $\sigma^2_A$,
# $\tau^2_A$ and prior mean $M_{ij}$). With $Q = I$ the rows of $A^{(r)}$ are independent given
# the latents, and the E-step's posterior moments give each trial's least-squares statistics
# ($\sum_t \mathbb E[x_{t-1}x_{t-1}^\top]$ and $\sum_t \mathbb E[(x_t - Bu_t)x_{t-1}^\top]$);
# combined with the GP prior they give a Gaussian posterior over each row's trajectory across
# trials, with one precision matrix ($Rk \times Rk$) shared by all rows. The kernel is inverted
# through one eigendecomposition of the $R \times R$ trial kernel, and $(\sigma^2_A, \tau^2_A)$
# are chosen on a grid by the same Kronecker evaluation of KL(q‖p) as for the offsets (summed
# over rows). $B$ is then the least-squares input gain given the $A^{(r)}$. The fit
# (`fit_nsls`) starts from a converged N-PLDS and alternates the batched E-step, now with one
# $A^{(r)}$ per trial, this M-step, $C, d$ and $q(h)$ with its hyper-parameters.
#
# The simulation is the Fig. 2 simulator with the AR coefficient of both slow latents drifting
# linearly from 0.7 (trial 1) to 0.95 (trial 100), but with two changes, both stated here: the
# slow latents load 0.2 on their neurons instead of 0.1/3, and the offset bump peaks at 4
# instead of 12. At the paper's loading the slow latents move the log rates by less than 0.1
# within a trial and are not recovered even when their coefficient is constant (C4a), so a
# drift of it could not be; and with the larger loading a bump of 12 would move the log rates
# of the slow directions by 2.4 log units. With these values the across-trial modulation of the
# group-mean log rate peaks at 1.2 log units (1.6 in Fig. 2). The recovered per-trial AR
# coefficient is the mean of the two largest eigenvalue moduli of $\hat A^{(r)}$ (the truth has
# two slow latents with equal coefficients; eigenvalues do not depend on the latent basis,
# which is not identified). The claim is the Pearson correlation of this trajectory with the
# true one; the control is the same trajectory with the trial order shuffled. At the `ci`
# profile this section does not run.

# %%
if cfg.nsls:
    drift = simulate_poisson_lds(
        ar_drift=(0.7, 0.95), slow_loading=0.2, bump_height=4.0, seed=rt.seed
    )
    nsls_start = fit_plds(drift.y, drift.u, cfg.k, model="nplds", n_iter=cfg.n_iter, seed=rt.seed)
    nsls = fit_nsls(drift.y, drift.u, nsls_start, n_iter=cfg.nsls_iter)
    ar_true = drift.A_trials[:, 2, 2]
    ar_hat = slow_coefficients(nsls.A_trials, 2)
    ar_stationary = slow_coefficients(nsls_start.params.A[None], 2)[0]
    ar_perm = np.random.default_rng(rt.seed + 11).permutation(R)
    c6_r = pearson_r(ar_hat, ar_true)
    c6_r_shuffled = pearson_r(ar_hat[ar_perm], ar_true)
    c6_summary = (
        f"r = {c6_r:.3f} (trial order shuffled: {c6_r_shuffled:.3f}); the recovered "
        f"coefficient runs from {ar_hat[0]:.3f} to {ar_hat[-1]:.3f} against 0.7 to 0.95, "
        f"and the stationary N-PLDS it started from has {ar_stationary:.3f} for every trial"
    )
    print(c6_summary)
    print(f"NSLS GP on A: sigma2_A {nsls.sigma2_A:.2g}, tau_A {np.sqrt(nsls.tau2_A):.1f} trials")
else:
    c6_r = c6_r_shuffled = None
    c6_summary = f"not run at the {rt.profile} profile"

# %% tags=["remove-output"]
if cfg.nsls:
    fig, axes = plotting.figure(1, 1, width=7, height=2.8)
    ax = axes[0, 0]
    trial_no = np.arange(1, R + 1)
    ax.plot(trial_no, ar_true, color=plotting.COLORS["truth"], lw=2, label="true")
    ax.plot(trial_no, ar_hat, color=plotting.COLORS["method"], lw=1.5, label="NSLS")
    ax.axhline(ar_stationary, ls="--", color=plotting.COLORS["baseline"], label="N-PLDS (one A)")
    ax.set_xlabel("trial")
    ax.set_ylabel("AR coefficient (mean of 2 largest |eig|)")
    ax.legend(fontsize=7)
else:  # at the ci profile a placeholder keeps the numbered figure in place
    fig, ax = plotting.figure(1, 1, width=7, height=0.8)
    ax[0, 0].axis("off")
    ax[0, 0].text(0.5, 0.5, f"drawn at the full profile only (this run: {rt.profile})", ha="center")
plotting.save(fig, "nonstationary-plds", "fig7_nsls")

# %% [markdown]
# ```{glue:figure} fig7_nsls
# ---
# name: fig-nonstationary-plds-nsls
# alt: >-
#   The AR coefficient of the slow latents against the trial number: the true linear drift
#   from 0.7 to 0.95, the NSLS estimate (mean of the two largest eigenvalue moduli of each
#   trial's fitted dynamics matrix) and the constant value of the stationary N-PLDS.
# ---
# Dynamics that drift across trials (full profile): the true AR coefficient, the NSLS's
# per-trial estimate and the N-PLDS's single value. At the ci profile only a placeholder is
# drawn.
# ```

# %% [markdown]
# ## Claims

# %%
res = ChapterResults(
    "nonstationary-plds", rt, require_controls=True, expected_not_reproduced=("C4a",)
)
seeds_txt = f"{len(cfg.seeds)} seed(s)"
res.add(
    Claim(
        "C1a",
        "N-PLDS trial-mean log rate vs truth, training trials: "
        f"min over 2 groups ({seeds_txt}) of Pearson r",
        paper="recovers the slow modulation (Fig. 2A–B)",
        op=">=",
        threshold=0.95,
        measured=c1_worst[0],
        control=c1_shuffled[0],
        control_label="the N-PLDS estimates with the trial order shuffled",
    )
)
res.add(
    Claim(
        "C1b",
        f"same: max over groups ({seeds_txt}) of the RMSE (log units)",
        paper="recovers the slow modulation (Fig. 2A–B)",
        op="<=",
        threshold=0.2,
        measured=c1_worst[1],
        control=c1_shuffled[1],
        control_label="the N-PLDS estimates with the trial order shuffled",
    )
)
res.add(
    Claim(
        "C2a",
        f"held-out error (ref definition), mean over {len(split_table)} split(s) of {cfg.n_test} "
        "trials: N-PLDS / stationary PLDS",
        paper="V1: 2.005 vs 2.217 (ratio 0.90; Fig. 3B data)",
        op="<=",
        threshold=0.7,
        measured=ratio_plds,
        control=mean_err["no-coupling"] / mean_err["plds"],
        control_label="no-coupling variant / stationary PLDS",
    )
)
res.add(
    Claim(
        "C2b",
        "held-out error: N-PLDS / no-coupling variant (τ² = e^-6)",
        paper="GP coupling is what predicts (book's check of the mechanism)",
        op="<=",
        threshold=1.0,
        measured=ratio_nc,
        control=err_shuffled / errors["no-coupling"],
        control_label="N-PLDS with the training offsets shuffled before interpolation",
    )
)
res.add(
    Claim(
        "C3",
        "learned GP length scale sqrt(τ²) (trials); true bump SD 12.5",
        paper="V1: median 8.5–12 trials across k (Fig. 4 data)",
        op="in",
        threshold=(6.0, 30.0),
        measured=tau_learned,
        control=tau_shuffled,
        control_label="same start and grid with the training trials' order shuffled",
    )
)
res.add(
    Claim(
        "C4a",
        "N-PLDS: |largest |eigenvalue| of Â − 0.9|",
        paper="book hypothesis: dynamics not distorted",
        op="<=",
        threshold=0.1,
        measured=abs(lam_max["nplds"] - 0.9),
        control=0.4,
        control_label="the untrained dynamics A = 0.5 I",
    )
)
res.add(
    Claim(
        "C4b",
        "largest |eigenvalue|: stationary PLDS − N-PLDS",
        paper="book hypothesis: drift leaks into the PLDS dynamics",
        op=">=",
        threshold=0.05,
        measured=lam_max["plds"] - lam_max["nplds"],
        control=lam_max["no-coupling"] - lam_max["nplds"],
        control_label="no-coupling variant (has offsets) − N-PLDS",
    )
)
res.add(
    Claim(
        "C5",
        "across-trial share of the lag-0 log-rate variance: |N-PLDS ẑ − true z|",
        paper="N-PLDS reproduces the total/conditional split (Fig. 2E)",
        op="<=",
        threshold=0.15,
        measured=abs(share["nplds"] - share["true"]),
        control=abs(share["stationary part"] - share["true"]),
        control_label="the N-PLDS with every offset at its prior mean m_h",
    )
)
res.add(
    Claim(
        "C6",
        "NSLS: r between fitted and true per-trial AR coefficient (drift 0.7 → 0.95)",
        paper="arXiv:1410.3111 extension",
        op=">=",
        threshold=0.8,
        profiles=("full",),
        measured=c6_r,
        control=c6_r_shuffled,
        control_label="the NSLS trajectory with the trial order shuffled",
    )
)

# %% tags=["nbval-check-output"]
print(res.table(timings=False))

# %% tags=["nbval-ignore-output"]
res.save()
print(f"wall time {rt.elapsed():.1f} s")

# %%
res.check()

# %%
res.glue(
    tau_start=float(np.sqrt(start.tau2)),
    tau_random_start=float(np.sqrt(start_random)),
    tau_from_random=tau_from_random,
    lam_nplds=lam_max["nplds"],
    lam_plds=lam_max["plds"],
    lam_nc=lam_max["no-coupling"],
    err_nplds=mean_err["nplds"],
    err_plds=mean_err["plds"],
    err_nc=mean_err["no-coupling"],
    err_glm=mean_err["glm"],
    lam_from_truth=lam_from_truth,
    r_plds=c1["plds"][0],
    rmse_plds=c1["plds"][1],
    r_indep=c1["independent"][0],
    rmse_indep=c1["independent"][1],
    share_true=share["true"],
    share_nplds=share["nplds"],
    share_plds=share["plds"],
    c6_summary=c6_summary,
)

# %% [markdown]
# ## What held, what did not, and why
#
# The verdicts and numbers below are this run's (rules and controls are in the table above).
#
# **The slow modulation (C1).** On the training trials the N-PLDS's trial-mean log rates follow
# the true bumps with r ≥ {glue:text}`C1a_ours:.3f` in both groups and an RMSE of at most
# {glue:text}`C1b_ours:.3f` log units (C1a: {glue:text}`C1a_verdict`, C1b:
# {glue:text}`C1b_verdict`). Unlike in the paper's figure, the stationary PLDS follows them
# on training trials too (r {glue:text}`r_plds:.3f`, RMSE {glue:text}`rmse_plds:.3f`), and so
# do independent per-trial fits (r {glue:text}`r_indep:.3f`, RMSE {glue:text}`rmse_indep:.3f`):
# here $d$ is estimated, while the reference scripts keep it at its true value, and each trial's
# posterior over $x$ is free to shift. A stationary model can describe the drift after the fact;
# it cannot predict it.
#
# **Held-out trials (C2).** That is where the models part. The N-PLDS's held-out error is
# {glue:text}`err_nplds:.3f`, against {glue:text}`err_plds:.3f` for the stationary PLDS and
# {glue:text}`err_nc:.3f` without coupling between trials: ratios {glue:text}`C2a_ours:.3f`
# (C2a: {glue:text}`C2a_verdict`) and {glue:text}`C2b_ours:.3f` (C2b: {glue:text}`C2b_verdict`).
# With the offsets shuffled among training trials before interpolation the N-PLDS does worse
# than without coupling ({glue:text}`C2b_control:.3f`), so the gain comes from the GP's use of
# trial order. The Poisson GLM on bumps over the trial number, which knows nothing of latents,
# reaches {glue:text}`err_glm:.3f`: for predicting the trial means of this simulation, a smooth
# function of the trial number is what matters, and both get it. The paper's V1 gain was
# smaller (ratio 0.90), as expected for real data with weaker drift.
#
# **Time scale (C3).** The fitted length scale is {glue:text}`C3_ours:.1f` trials for a bump of
# SD 12.5 (C3: {glue:text}`C3_verdict`); with the trial order shuffled the same procedure
# settles at {glue:text}`C3_control:.2f`. The number comes mostly from the start, a GP fit to
# the per-trial mean counts ({glue:text}`tau_start:.1f` trials; the reference code's start for
# real data): the grid step minimises KL(q‖p) for a posterior computed under the previous
# prior, and a short $\tau$ leaves trial-to-trial roughness in $\mathbb E[h]$ that only a
# short $\tau$ explains, while a long one leaves it smooth. From the reference code's
# simulation start ($\tau$ = {glue:text}`tau_random_start:.2f` here) the same updates end at
# {glue:text}`tau_from_random:.2f` trials. So the claim holds for the procedure with the
# data-driven start; the grid search alone does not find the time scale.
#
# **Dynamics (C4, a hypothesis of this book).** The stationary PLDS's largest eigenvalue is
# {glue:text}`lam_plds:.3f`, the N-PLDS's {glue:text}`lam_nplds:.3f` and the no-coupling
# variant's {glue:text}`lam_nc:.3f`: the model without offsets does carry the drift in its
# dynamics (C4b: {glue:text}`C4b_verdict`). But the N-PLDS does not recover the true slow
# eigenvalue 0.9 (C4a: {glue:text}`C4a_verdict`, off by {glue:text}`C4a_ours:.3f`). The slow
# latents load only 0.1/3 on their neurons, so within a trial they move the log rates by
# about 0.08 at rates of 0.1–0.3 spikes per bin; from the reference code's random start, EM
# does not find them in the iterations run here, and the fitted dynamics stay fast. Started at
# the true parameters, the same code and iterations end with a largest eigenvalue of
# {glue:text}`lam_from_truth:.3f` instead: there the slow latents are kept, but their
# eigenvalue is not 0.9 either. In this simulation the N-PLDS's dynamics are not the true ones
# from either start, so the hypothesis is not confirmed; what does hold is that the model
# without offsets puts a slow mode into its dynamics that the models with offsets do not.
#
# **Variance split (C5).** The across-trial share of the lag-0 log-rate variance is
# {glue:text}`share_true:.3f` for the true rates, {glue:text}`share_nplds:.3f` for the N-PLDS
# and {glue:text}`share_plds:.3f` for the stationary PLDS (C5: {glue:text}`C5_verdict`). Both
# estimates overstate it a little: posterior means are smoother within a trial than the truth.
#
# **Drifting dynamics (C6, full profile only).** On the drifting-dynamics simulation (slow
# loading 0.2, bump peak 4; see the C6 section), the NSLS's per-trial AR coefficient against the
# true one: {glue:text}`c6_summary` (C6: {glue:text}`C6_verdict`). The claim is about the
# correlation, not the amplitude: the GP prior and the E-step's shrinkage towards the current
# dynamics can pull the trajectory towards its mean, which the range quoted shows. At the
# paper's own loading of 0.1/3 the slow latents are too weak to be recovered at all (C4a), so
# this claim is about the method on a simulation where the slow dynamics are visible.
#
# *What this chapter does not run.* The V1 recordings (not available here) and variational
# $q(A, B)$: $A$ and $B$ (and the NSLS's $A^{(r)}$) are point estimates (posterior means).
