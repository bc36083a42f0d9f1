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
# # Sequential posterior estimation with atomic proposals (APT / SNPE-C)
#
# **Paper.** D. S. Greenberg, M. Nonnenmacher, J. H. Macke, *Automatic Posterior
# Transformation for Likelihood-Free Inference*, ICML 2019 (PMLR 97)
# ([arXiv:1905.07488](https://arxiv.org/abs/1905.07488)).
#
# A simulator $x\sim p(x\mid\theta)$ has no tractable likelihood; given a prior $p(\theta)$
# and one observation $x_o$ we want $p(\theta\mid x_o)$ from as few simulations as possible.
# Neural posterior estimation fits a conditional density $q_\phi(\theta\mid x)$ to pairs
# $(\theta, x)$. To spend simulations where they matter, *sequential* NPE draws $\theta$
# from a proposal $\tilde p(\theta)$, usually the current estimate $q_\phi(\theta\mid x_o)$.
# Maximum likelihood on such pairs learns the *proposal posterior*
# $\tilde p(\theta\mid x)\propto p(x\mid\theta)\,\tilde p(\theta)$, not the posterior.
# APT trains $q_\phi$ *through* the transformation
#
# $$
# \tilde q_{x,\phi}(\theta) = \frac{q_\phi(\theta\mid x)\,\tilde p(\theta)/p(\theta)}{Z(x,\phi)},
# $$
#
# which equals the proposal posterior exactly when $q_\phi$ is the true posterior. With an
# *atomic* proposal — uniform on $\theta_i$ and $M-1$ other parameters of the same
# minibatch — $Z$ is a finite sum and the loss is a softmax cross-entropy over atoms:
#
# $$-\log\tilde q_i = -\log q_\phi(\theta_i\mid x_i) + \log p(\theta_i)
#   + \log\sum_{j\in\Theta_i}\exp\bigl(\log q_\phi(\theta_j\mid x_i)-\log p(\theta_j)\bigr).$$
#
# Any density family (here a normalising flow) and any mixture of proposals can be used, so
# the simulations of all rounds are pooled.
#
# **What the paper claims, and what this chapter checks** (claims A1–A5):
# APT corrects the proposal where naive multi-round maximum likelihood does not (A1); at equal
# budget, sequential APT beats amortised NPE on two moons (A2); the atomic loss does at least
# as well as importance weights (SNPE-B, A3); APT's density at the true parameter matches the
# analytic posterior (A4); and, at the full profile only, APT ignores uninformative
# "distractor" data dimensions (A5).
#
# **Figures redrawn.** Two-moons posteriors after each round against a reference (paper
# Fig. 1); posterior quality per method at equal budget (the paper's Fig. 6 compares methods
# by MMD, we use KL and HPD mass); estimated against true posterior widths per round on a
# Gaussian task; leakage of posterior mass outside the prior box per round.
#
# **How the claims are judged.** Every claim is judged twice by the same rule: on our value
# and on a *control*, a deliberately wrong answer of the same kind (the uncorrected estimator,
# a widened posterior, NPE with a quarter of the budget). A claim whose control passes too is
# *inconclusive*: its rule could not have told right from wrong.
#
# The reference posteriors are the book's own: analytic for the Gaussian task, a fine grid on
# the analytic likelihood for two moons, MCMC on the analytic likelihood for SLCP. The code
# is the book's own; `sbi`'s `NPE_C` is compared in `benchmarks/apt_vs_sbi.py`.

# %% tags=["parameters"]
profile = "ci"
seed = 0
device = "auto"

# %% [markdown]
# Every size below comes from the profile: `ci` runs on two CPU cores in about a minute;
# `full` approaches the paper's and sbibm's scale on one GPU.

# %%
import math

import numpy as np
import torch

from neuroinverse import plotting
from neuroinverse.inference import APT, rejection_abc, resample_with_jitter, run_npe
from neuroinverse.metrics import GridDensity, c2st, c2st_calibrated_async, hpd_mass, kl_from_samples
from neuroinverse.models import ConditionalFlow
from neuroinverse.results import ChapterResults, Claim
from neuroinverse.runtime import background, setup
from neuroinverse.simulators import (
    SLCP_THETA_O,
    TWO_MOONS_THETA_O,
    TWO_MOONS_X_O,
    gaussian_linear,
    gaussian_linear_posterior,
    gaussian_linear_prior,
    slcp,
    slcp_distractors,
    slcp_prior,
    slcp_reference_posterior,
    two_moons,
    two_moons_grid_posterior,
    two_moons_prior,
    two_moons_reference_posterior,
)

rt = setup(profile=profile, seed=seed, device=device)
cfg = rt.select(
    ci=dict(
        gl_dim=2,
        gl_rounds=3,
        gl_sims=300,
        gl_flow=dict(kind="maf", transforms=3, hidden=(32, 32)),
        flow=dict(kind="nsf", transforms=2, hidden=(32, 32)),
        tm_budgets=((4, 250),),
        seeds=(0, 1, 2),
        n_obs=1,
        batch=100,
        max_steps=100,
        patience=10,
        n_post=1000,
        n_kl=10_000,
        a1_range=(0.8, 1.25),
        a2b_min=0.80,
        leak_flow=dict(kind="maf", transforms=3, hidden=(32, 32)),
        c2st_jobs=1,
        c2st_n=1000,
        c2st_folds=5,
        slcp_rounds=2,
        slcp_sims=200,
        n_distractors=20,
        abc_sims=10_000,
    ),
    full=dict(
        gl_dim=10,
        gl_rounds=5,
        gl_sims=1000,
        gl_flow=dict(kind="maf", transforms=5, hidden=(50, 50)),
        flow=dict(kind="nsf", transforms=5, hidden=(50, 50)),
        tm_budgets=((10, 100), (10, 1000)),
        seeds=(0, 1, 2),
        n_obs=10,
        batch=100,
        max_steps=1000,
        patience=20,
        n_post=10_000,
        n_kl=10_000,
        a1_range=(0.9, 1.1),
        a2b_min=0.90,
        leak_flow=dict(kind="maf", transforms=5, hidden=(50, 50)),
        c2st_jobs=8,
        c2st_n=10_000,
        c2st_folds=5,
        slcp_rounds=10,
        slcp_sims=1000,
        n_distractors=20,
        abc_sims=100_000,
    ),
)
plotting.apply_style()
on_cpu = rt.device.type == "cpu"  # on the CPU, independent fits also use the second core
print(f"profile={rt.profile} device={rt.device} threads={rt.threads}")


def score(reference, samples, seed):
    """C2ST accuracy (sbibm's classifier) with the profile's sample count and folds."""
    return c2st(
        reference[: cfg.c2st_n],
        samples[: cfg.c2st_n],
        seed=seed,
        folds=cfg.c2st_folds,
        n_jobs=cfg.c2st_jobs,
    )


def fit(
    prior,
    simulator,
    x_o,
    method,
    n_rounds,
    sims,
    seed,
    flow=cfg.flow,
    max_steps=cfg.max_steps,
    **kw,
):
    """One run of the book's NPE loop; the network is initialised from ``seed``."""
    torch.manual_seed(rt.seed + 1000 + seed)
    q = ConditionalFlow(prior.dim, len(x_o), **flow).to(rt.device)
    return run_npe(
        prior,
        simulator,
        torch.as_tensor(x_o, dtype=torch.float32),
        density=q,
        n_rounds=n_rounds,
        simulations_per_round=sims,
        method=method,
        batch_size=cfg.batch,
        max_steps=max_steps,
        patience=cfg.patience,
        record_samples=cfg.n_post,
        generator=rt.generator(seed),
        desc=f"{method} seed {seed}",
        **kw,
    )


# %% [markdown]
# ## Work that starts now, on the second core
#
# On the CPU the two-moons runs of the last seed, one of the two MAF runs of
# {numref}`fig-apt-leakage` and the Gaussian task do not depend on anything below, so they
# start here in a background process on the second core
# (`neuroinverse.runtime.background`: one thread and explicit seeds, so the numbers are
# exactly those of a run in this kernel); the two-moons section below explains the arms and
# collects the results. Every arm may take `max_steps` gradient steps per round of a
# four-round budget: the one-round arms get four times the per-round cap.

# %%
tm_prior = two_moons_prior()
tm_obs = [torch.tensor(TWO_MOONS_X_O)]
if cfg.n_obs > 1:  # our own further observations (sbibm's other nine are not shipped with the book)
    extra_theta = tm_prior.sample(cfg.n_obs - 1, generator=rt.generator(21))
    tm_obs += list(two_moons(extra_theta, generator=rt.generator(22)))
R0, N0 = cfg.tm_budgets[0]
ARMS = {
    "apt": ("apt", None, None),
    "npe": ("apt", 1, None),
    "snpe-b": ("snpe-b", None, None),
    "npe-quarter": ("apt", 1, 1),
}  # method, rounds (None: R), simulations scale (None: N, 1: R·N/R)


def arm(name, R, N, s, x_o):
    """One arm at budget R × N: every arm may take R · max_steps gradient steps in all."""
    method, rounds, _ = ARMS[name]
    if rounds is None:
        return fit(tm_prior, two_moons, x_o, method, R, N, seed=s)
    sims = N if name == "npe-quarter" else R * N
    return fit(tm_prior, two_moons, x_o, method, 1, sims, seed=s, max_steps=R * cfg.max_steps)


def all_arms(R, N, s, x_o):
    return {name: arm(name, R, N, s, x_o) for name in ARMS}


def leak_run(combined):
    """APT with the affine MAF of the leakage figure, with or without the combined loss."""
    method = APT(combined_loss=combined)
    return fit(
        tm_prior, two_moons, TWO_MOONS_X_O, method, R0, N0, seed=cfg.seeds[0], flow=cfg.leak_flow
    )


# On the CPU the last seed and one of the two MAF runs of the leakage figure train in a
# background process on the second core (one thread, explicit seeds: the numbers are those
# of a run here); the C2STs queue there after them.
in_bg = (
    {
        (R, N, i): background(all_arms, R, N, cfg.seeds[-1], x_o)
        for (R, N) in cfg.tm_budgets
        for i, x_o in enumerate(tm_obs)
    }
    if on_cpu
    else {}
)
leak_jobs = {True: background(leak_run, True)} if on_cpu else {}  # the other one trains here

# The Gaussian task of claims A1 and A4 (its section comes after the two-moons figures).
gl_prior = gaussian_linear_prior(cfg.gl_dim, prior_var=0.1)
gl_theta_o = gl_prior.sample(1, generator=rt.generator(11))
gl_x_o = gaussian_linear(gl_theta_o, generator=rt.generator(12))[0]
gl_mean, gl_cov = gaussian_linear_posterior(gl_x_o, prior_var=0.1, noise_var=0.1)
gl_sd = gl_cov.diagonal().sqrt()


def gaussian_task():
    """APT and the naive multi-round estimator on the Gaussian task, same seed and budget."""
    return {
        m: fit(
            gl_prior,
            gaussian_linear,
            gl_x_o,
            m,
            cfg.gl_rounds,
            cfg.gl_sims,
            seed=0,
            flow=cfg.gl_flow,
        )
        for m in ("apt", "naive")
    }


gl_job = background(gaussian_task) if on_cpu else None

# %% [markdown]
# ## Two moons: data and reference posterior
#
# sbibm's two-moons simulator: $\theta\sim U([-1,1]^2)$, a noisy half-ring of radius
# $0.1$ shifted by $(-|\theta_1+\theta_2|/\sqrt2,\,(-\theta_1+\theta_2)/\sqrt2)$. For
# observation 1 of sbibm the posterior is two thin crescents. The likelihood is analytic,
# so the reference posterior is the normalised likelihood on a $400\times400$ grid over the
# prior box (each cell's mass averaged over $4\times4$ points), sampled by cell with uniform
# jitter inside the cell.

# %% tags=["remove-output"]
tm_ref = [
    two_moons_reference_posterior(x, cfg.n_post, generator=rt.generator(30 + i))
    for i, x in enumerate(tm_obs)
]
grid_axis, grid_density = two_moons_grid_posterior(TWO_MOONS_X_O)
tm_grid = [GridDensity((a, a), d) for a, d in (two_moons_grid_posterior(x) for x in tm_obs)]
# KL(p_ref ‖ q) is estimated on n_kl reference samples (log p_ref from the grid, log q from the
# flow)
kl_ref = [
    two_moons_reference_posterior(x, cfg.n_kl, generator=rt.generator(60 + i))
    for i, x in enumerate(tm_obs)
]
kl_ref_logp = [g.log_prob(r) for g, r in zip(tm_grid, kl_ref, strict=True)]
# the C2ST's floor and positive control need an independent reference draw
tm_ref_2 = two_moons_reference_posterior(TWO_MOONS_X_O, cfg.c2st_n, generator=rt.generator(70))
demo_theta = tm_prior.sample(2000, generator=rt.generator(23))
demo_x = two_moons(demo_theta, generator=rt.generator(24))

fig, ax = plotting.figure(1, 2, width=7, height=3.2)
ax[0, 0].scatter(
    demo_x[:, 0],
    demo_x[:, 1],
    s=2,
    color=plotting.COLORS["data"],
    alpha=0.4,
    label="x for θ from the prior",
)
ax[0, 0].plot(
    *TWO_MOONS_X_O, "*", color=plotting.COLORS["truth"], ms=12, label="x_o (sbibm obs. 1)"
)
ax[0, 0].set_xlabel("x₁ (a.u.)")
ax[0, 0].set_ylabel("x₂ (a.u.)")
ax[0, 0].legend(loc="lower left")
ax[0, 1].contourf(grid_axis, grid_axis, grid_density.T, levels=20, cmap="Greys")
ax[0, 1].plot(*TWO_MOONS_THETA_O, "*", color=plotting.COLORS["truth"], ms=10, label="θ* (sbibm)")
ax[0, 1].set_xlabel("θ₁")
ax[0, 1].set_ylabel("θ₂")
ax[0, 1].set_title("reference posterior (grid)")
ax[0, 1].legend(loc="lower left")
plotting.save(fig, "apt", "fig0_two_moons_data")

# %% [markdown]
# ```{glue:figure} fig0_two_moons_data
# ---
# name: fig-apt-two-moons-data
# alt: >-
#   Left: scatter of simulated two-dimensional data for parameters drawn from the prior, with the
#   observation marked by a star. Right: filled contours of the reference posterior density over
#   the two parameters, with the true parameter marked by a star.
# ---
# The two-moons task. Left: data simulated from prior draws form a crescent; the observation
# $x_o$ (star) is observation 1 of sbibm. Right: its reference posterior on the grid, two thin
# crescents, with θ* (star).
# ```

# %% [markdown]
# ## APT, NPE, SNPE-B and rejection ABC on two moons (claims A2, A3)
#
# The same neural spline flow (zuko NSF, 2 transforms × 2 hidden layers of 32 at `ci`) for
# every method, z-scored with round-1 statistics; Adam (lr $10^{-3}$), batch 100, 10 atoms,
# early stopping on a 10 % validation split (validation loss every epoch or 10 steps, patience
# 10 evaluations).
#
# * **APT**: 4 rounds × 250 simulations, atomic loss on the pooled data from round 2 on;
#   proposals are the current $q(\cdot\mid x_o)$ restricted to the prior box by rejection.
# * **NPE**: 1 round of 1000 prior simulations (amortised).
# * **SNPE-B**: 4 × 250, importance-weighted maximum likelihood with weights $p/\tilde p$,
#   $\tilde p$ the mixture of all proposals so far.
# * **NPE 1 × 250** (the control of A2a and A3): NPE with a quarter of the budget, an
#   estimator known to be worse; a rule that could not reject it would say nothing.
# * **Rejection ABC**: the 100 nearest of `abc_sims` prior simulations, resampled with
#   Gaussian jitter to 1000 samples (the classical baseline; 10× the budget).
#
# **Equal compute.** Every arm trains under the same rule with the same total cap on gradient
# steps: `max_steps` (100 at `ci`) per round for the four-round arms, four times that for the
# one-round NPE arms, so that each arm may take up to 400 steps; the steps each arm used are
# printed below.
#
# **Metrics.** The classifier two-sample test (C2ST) is blind at these sample sizes on two
# moons: the crescents are about 0.01 wide, and a classifier trained on 1000 samples per side
# cannot see a posterior that is visibly too blobby. Posterior quality is therefore measured by
# (i) $\mathrm{KL}(p_\mathrm{ref}\,\|\,q)=\mathbb E_{p_\mathrm{ref}}[\log p_\mathrm{ref}-\log q]$ on
# `n_kl` = $10^4$ reference samples, with $\log p_\mathrm{ref}$ from the normalised grid and
# $\log q$ from the flow itself, renormalised to the prior box by its acceptance rate (lower is
# better, 0 is perfect); (ii) the fraction of the estimate's samples inside the reference's
# 95 % highest-density region (HPD mass; 0.95 is perfect). The C2ST (1000 vs 1000, 5 folds,
# sbibm's classifier) is still reported for seed 0, beside its floor (the reference against an
# independent reference draw) and a positive control (the reference with $\mathcal N(0, 0.05^2)$
# jitter added), so that a reader can see what it can and cannot detect.

# %%
abc = rejection_abc(
    tm_prior,
    two_moons,
    TWO_MOONS_X_O,
    n_simulations=cfg.abc_sims,
    n_keep=100,
    generator=rt.generator(40),
)
abc_samples = resample_with_jitter(
    abc.theta, cfg.n_post, prior=tm_prior, generator=rt.generator(41)
)


def kl(run, i):
    """KL(p_ref ‖ q) in nats for observation i, q renormalised to the prior box."""
    log_q = run.posterior.log_prob(kl_ref[i].to(rt.device)).double().cpu() - math.log(
        run.posterior.acceptance_rate
    )
    return kl_from_samples(kl_ref_logp[i], log_q)[0]


tm_runs, tm_kl, tm_hpd = {}, {}, {}
for R, N in cfg.tm_budgets:
    for s in cfg.seeds:
        for i, x_o in enumerate(tm_obs):
            bg = in_bg.get((R, N, i)) if s == cfg.seeds[-1] else None
            arms = bg.result() if bg else all_arms(R, N, s, x_o)
            for name, run in arms.items():
                key = (R * N, s, i, name)
                tm_runs[key], tm_kl[key] = run, kl(run, i)
                tm_hpd[key] = hpd_mass(run.round_samples[-1], tm_grid[i])
        if s == cfg.seeds[0]:  # C2ST with its floor and positive control, in the background
            c2st_pending = c2st_calibrated_async(
                tm_ref[0][: cfg.c2st_n],
                tm_ref_2,
                {
                    m: tm_runs[(R * N, s, 0, m)].round_samples[-1][: cfg.c2st_n]
                    for m in ("apt", "npe")
                },
                folds=cfg.c2st_folds,
                generator=rt.generator(71),
            )
leak = {
    f"APT, MAF{' + combined loss' if comb else ''}": leak_jobs[comb].result()
    if comb in leak_jobs
    else leak_run(comb)
    for comb in (False, True)
}
tm_c2st = c2st_pending.result()
hpd_abc = hpd_mass(abc_samples, tm_grid[0])
# A2b's control: the reference itself, jittered by N(0, 0.05²) (the C2ST's positive control)
hpd_jitter = hpd_mass(
    tm_ref_2 + 0.05 * torch.randn(tm_ref_2.shape, generator=rt.generator(72)), tm_grid[0]
)


def median_of(table, budget, method):
    """Median over seeds (and observations) of a per-run metric."""
    return float(np.median([v for (b, s, i, m), v in table.items() if b == budget and m == method]))


budget0 = R0 * N0
apt0 = tm_runs[(budget0, cfg.seeds[0], 0, "apt")]
snpeb0 = tm_runs[(budget0, cfg.seeds[0], 0, "snpe-b")]

# %% tags=["nbval-check-output"]
print(
    f"{'budget':>7s} {'arm':12s} {'KL per seed (nats)':>24s} {'median':>7s}  "
    f"{'HPD-95 mass per seed':>22s} median"
)
for R, N in cfg.tm_budgets:
    for name in ARMS:
        kls = [
            float(np.median([tm_kl[(R * N, s, i, name)] for i in range(len(tm_obs))]))
            for s in cfg.seeds
        ]
        hpds = [
            float(np.median([tm_hpd[(R * N, s, i, name)] for i in range(len(tm_obs))]))
            for s in cfg.seeds
        ]
        print(
            f"{R * N:7d} {name:12s} "
            + " ".join(f"{v:7.3f}" for v in kls)
            + f" {median_of(tm_kl, R * N, name):7.3f}  "
            + " ".join(f"{v:6.3f}" for v in hpds)
            + f"  {median_of(tm_hpd, R * N, name):.3f}"
        )
print(
    f"HPD-95 mass: rejection ABC ({cfg.abc_sims} sims, 100 kept) {hpd_abc:.3f}; "
    f"reference + N(0, 0.05²) jitter {hpd_jitter:.3f}"
)
for m, cal in tm_c2st.items():
    print(f"{m.upper()} seed {cfg.seeds[0]}: {cal}")

# %% tags=["nbval-check-output"]
print("gradient steps per round (cap: 100 per round, 400 per one-round arm), seed 0:")
for name in ARMS:
    r = tm_runs[(budget0, cfg.seeds[0], 0, name)]
    print(f"  {name:12s}", [x.steps for x in r.rounds], "total", sum(x.steps for x in r.rounds))

# %% tags=["nbval-ignore-output"]
for key in [(budget0, cfg.seeds[0], 0, m) for m in ARMS]:
    r = tm_runs[key]
    print(
        key[-1],
        f"train {r.train_seconds:.1f} s;",
        [(x.round, x.steps, round(x.leakage, 3)) for x in r.rounds],
    )

# %% [markdown]
# ## The two-moons posterior, round by round
#
# {numref}`fig-apt-posteriors` follows APT's posterior over its rounds, beside NPE's.

# %% tags=["remove-output"]
panels = [("NPE, 1 × 1000", tm_runs[(budget0, cfg.seeds[0], 0, "npe")].round_samples[-1])] + [
    (f"APT round {k + 1} ({(k + 1) * cfg.tm_budgets[0][1]} sims)", smp)
    for k, smp in enumerate(apt0.round_samples)
]
ncol = 3
nrow = math.ceil(len(panels) / ncol)
fig, ax = plotting.figure(nrow, ncol, width=7, height=2.5 * nrow, sharex=True, sharey=True)
for a, (title, smp) in zip(ax.ravel(), panels, strict=False):
    a.contour(
        grid_axis,
        grid_axis,
        grid_density.T,
        levels=grid_density.max() * np.array([0.05, 0.3, 0.7]),
        colors="0.5",
        linewidths=0.6,
    )
    a.scatter(
        smp[:, 0],
        smp[:, 1],
        s=1.5,
        alpha=0.5,
        color=plotting.COLORS["baseline" if title.startswith("NPE") else "method"],
    )
    a.plot(*TWO_MOONS_THETA_O, "*", color=plotting.COLORS["truth"], ms=8)
    a.set_title(title)
    a.set_xlim(-1, 1)
    a.set_ylim(-1, 1)
for a in ax[-1]:
    a.set_xlabel("θ₁")
for a in ax[:, 0]:
    a.set_ylabel("θ₂")
for a in ax.ravel()[len(panels) :]:
    a.set_visible(False)
for k in range(len(panels), nrow * ncol):  # x ticks on the panel above an empty slot
    if k >= ncol:
        ax[k // ncol - 1, k % ncol].tick_params(labelbottom=True)
        ax[k // ncol - 1, k % ncol].set_xlabel("θ₁")
plotting.save(fig, "apt", "fig1_posteriors")

# %% [markdown]
# ```{glue:figure} fig1_posteriors
# ---
# name: fig-apt-posteriors
# alt: >-
#   A grid of square panels over the two parameters, each with grey contour lines of the
#   reference posterior, a star at the true parameter and a cloud of posterior samples: NPE with
#   1000 simulations first, then APT after each of its rounds.
# ---
# Reference (grid) in grey; samples of NPE (1000 prior simulations, blue) and of APT after
# each of its rounds (250 simulations per round, orange), seed 0.
# ```

# %% [markdown]
# ## Posterior quality per arm
#
# {numref}`fig-apt-quality-per-arm` scores every arm against the reference posterior. Our KL and
# HPD values have no counterpart in the sbibm benchmark, whose C2ST used $10^4$ against $10^4$
# samples; we do not set our numbers beside its table.

# %% tags=["remove-output"]
fig, ax = plotting.figure(1, 2, width=7, height=3.4)
names = list(ARMS)
styles = {
    "apt": ("o", "method"),
    "npe": ("s", "baseline"),
    "snpe-b": ("^", "baseline2"),
    "npe-quarter": ("v", "data"),
}
for j, name in enumerate(names):
    mk, col = styles[name]
    for s in cfg.seeds:
        key = (budget0, s, 0, name)
        ax[0, 0].plot(j, tm_kl[key], mk, color=plotting.COLORS[col], alpha=0.7)
        ax[0, 1].plot(j, tm_hpd[key], mk, color=plotting.COLORS[col], alpha=0.7)
ax[0, 1].plot(len(names), hpd_abc, "x", color=plotting.COLORS["data"], ms=8)
ax[0, 1].plot(len(names) + 1, hpd_jitter, "d", color=plotting.COLORS["truth"], ms=6)
ax[0, 1].axhline(0.95, color="0.6", lw=0.8, ls=":")
ax[0, 1].axhline(cfg.a2b_min, color="0.6", lw=0.8, ls="--")
ax[0, 0].set_yscale("log")
ax[0, 0].set_xticks(
    range(len(names)), ["APT 4×250", "NPE 1×1000", "SNPE-B 4×250", "NPE 1×250"], rotation=20
)
ax[0, 1].set_xticks(
    range(len(names) + 2), ["APT", "NPE", "SNPE-B", "NPE 1×250", "ABC", "ref+jitter"], rotation=30
)
ax[0, 0].set_xlabel("arm (3 seeds each)")
ax[0, 1].set_xlabel("arm (3 seeds each)")
ax[0, 0].set_ylabel("KL(p_ref ‖ q) (nats)")
ax[0, 1].set_ylabel("fraction of samples in ref. HPD-95")
plotting.save(fig, "apt", "fig2_quality_per_arm")

# %% [markdown]
# ```{glue:figure} fig2_quality_per_arm
# ---
# name: fig-apt-quality-per-arm
# alt: >-
#   Two dot plots with one column of markers per arm, one marker per seed. Left: KL divergence
#   from the reference to the estimate in nats on a log scale. Right: fraction of samples inside
#   the reference's 95% HPD region, with rejection ABC and a jittered reference added and
#   horizontal lines at 0.95 and at the A2b threshold.
# ---
# KL$(p_\mathrm{ref}\,\|\,q)$ (left, log scale; lower is better) and the HPD-95 mass (right;
# 0.95, dotted, for a perfect posterior) of every arm and seed at 1000 simulations, observation
# 1 of sbibm. Median KL: APT {glue:text}`kl_apt:.2f`, NPE {glue:text}`kl_npe:.2f`, SNPE-B
# {glue:text}`kl_snpeb:.2f` nats.
# ```

# %% [markdown]
# ## A Gaussian task with an analytic posterior (claims A1, A4)
#
# The sbibm *Gaussian linear* task: $\theta\sim\mathcal N(0, 0.1\,I)$,
# $x\mid\theta\sim\mathcal N(\theta, 0.1\,I)$, so $p(\theta\mid x_o)=\mathcal N(x_o/2,\ 0.05\,I)$.
# A Gaussian prior makes the prior term $\log p(\theta_j)$ in the atomic loss matter (it
# cancels only for a uniform prior). We run `gl_rounds` rounds with the proposal set to the
# current estimate, once with APT (atomic loss on all rounds) and once with naive maximum
# likelihood on each round's proposal draws (the network carried over between rounds). The
# naive estimator learns the proposal posterior $\propto p(x\mid\theta)\,\tilde p(\theta)$:
# with equal prior and noise variances its std ratio would be $\sqrt{2/3}\approx0.82$ after
# round 2 and $1/\sqrt2\approx0.71$ after round 3 if every round were fitted exactly (pooling
# all rounds' data with no correction dilutes the bias to ≈ 0.86 after round 3). On the CPU
# these two runs trained in the background process started at the top of the chapter.

# %%
gl = gl_job.result() if gl_job else gaussian_task()  # started at the top (on the CPU)
gl_ratio = {
    m: np.array([(s.double().std(0) / gl_sd).numpy() for s in r.round_samples])
    for m, r in gl.items()
}
gl_mean_err = {
    m: ((r.round_samples[-1].double().mean(0) - gl_mean).abs() / gl_sd).numpy()
    for m, r in gl.items()
}

# A4: -log q(θ* | x_o) against the analytic -log p(θ* | x_o)
post = torch.distributions.MultivariateNormal(gl_mean, gl_cov)
nll_true = float(-post.log_prob(gl_theta_o[0].double()))
nll_apt = float(-gl["apt"].posterior.log_prob(gl_theta_o.to(rt.device)))
# A4's control: a Gaussian with APT's sample mean and twice its standard deviations
apt_last = gl["apt"].round_samples[-1].double()
wide = torch.distributions.MultivariateNormal(apt_last.mean(0), 4 * torch.cov(apt_last.T))
nll_wide = float(-wide.log_prob(gl_theta_o[0].double()))

# %% tags=["nbval-check-output"]
for m in gl:
    print(
        f"{m:6s} std ratio per round (mean over dims): {np.round(gl_ratio[m].mean(1), 3)}; final "
        f"min/max {gl_ratio[m][-1].min():.3f}/{gl_ratio[m][-1].max():.3f}; "
        f"max |mean err|/sd {gl_mean_err[m].max():.3f}"
    )
print(
    f"-log p(θ*|x_o) analytic {nll_true:.3f}, APT {nll_apt:.3f}, "
    f"APT widened 2x (control) {nll_wide:.3f}"
)

# %% [markdown]
# ## APT corrects the proposal, naive maximum likelihood does not
#
# {numref}`fig-apt-gaussian-std` compares the widths of the two estimates with the analytic
# posterior's.

# %% tags=["remove-output"]
fig, ax = plotting.figure(1, 1, width=5, height=3.2)
a = ax[0, 0]
rounds_axis = np.arange(1, cfg.gl_rounds + 1)
for m, col in (("apt", "method"), ("naive", "baseline")):
    r = gl_ratio[m]
    a.errorbar(
        rounds_axis + (0.05 if m == "naive" else 0),
        r.mean(1),
        yerr=[r.mean(1) - r.min(1), r.max(1) - r.mean(1)],
        fmt="o-",
        capsize=3,
        color=plotting.COLORS[col],
        label="APT (atomic)" if m == "apt" else "naive multi-round MLE",
    )
a.plot(
    rounds_axis,
    np.sqrt(2 / (rounds_axis + 1)),
    "--",
    color=plotting.COLORS["baseline"],
    lw=0.8,
    label="naive, exact fit (theory)",
)
a.axhline(1.0, color=plotting.COLORS["truth"], lw=0.8, label="true")
a.axhspan(*cfg.a1_range, color="0.9", label="A1 band")
a.set_xticks(rounds_axis)
a.set_xlabel("round")
a.set_ylabel("estimated / true posterior std")
a.legend()
plotting.save(fig, "apt", "fig3_gaussian_std")

# %% [markdown]
# ```{glue:figure} fig3_gaussian_std
# ---
# name: fig-apt-gaussian-std
# alt: >-
#   Estimated over true posterior standard deviation against the round, with min-to-max error
#   bars, for APT and for naive multi-round maximum likelihood, plus a dashed theory curve, a
#   line at 1 and a shaded band for claim A1.
# ---
# Gaussian task ($d$ = `gl_dim`): posterior standard deviation of the estimate divided by the
# true one, per round (mean over dimensions, the bars span the dimensions). The naive estimator
# fits the proposal posterior, which narrows with every round; the dashed line is its value
# $\sqrt{2/(r+1)}$ after round $r$ if every round were fitted exactly.
# ```

# %% [markdown]
# ## Leakage
#
# With a bounded prior the atomic loss only fixes $q$ up to its mass *inside* the prior box;
# mass outside is never penalised. The book samples proposals from $q(\cdot\mid x_o)$ and
# rejects those outside the box (warning below 10 % acceptance). {numref}`fig-apt-leakage`
# measures the mass outside.

# %% tags=["remove-output"]
leak["APT, NSF"], leak["SNPE-B, NSF"] = apt0, snpeb0
fig, ax = plotting.figure(1, 1, width=5, height=3.2)
a = ax[0, 0]
for (lab, run), col in zip(
    leak.items(), ("baseline", "reference", "method", "baseline2"), strict=True
):
    a.plot(
        [r.round for r in run.rounds],
        [100 * r.leakage for r in run.rounds],
        "o-",
        color=plotting.COLORS[col],
        label=lab,
    )
a.set_xticks([r.round for r in apt0.rounds])
a.set_xlabel("round")
a.set_ylabel("mass of q(θ | x_o) outside the prior (%)")
a.legend()
plotting.save(fig, "apt", "fig4_leakage")

# %% [markdown]
# ```{glue:figure} fig4_leakage
# ---
# name: fig-apt-leakage
# alt: >-
#   Percentage of the posterior estimate's mass outside the prior box against the round on two
#   moons, one line of markers each for APT with the spline flow, SNPE-B with the spline flow,
#   and APT with an affine MAF with and without the combined loss.
# ---
# The fraction of $q(\cdot\mid x_o)$ outside the box after each round on two moons (seed 0), for
# the spline flow (NSF) used above and, since leakage depends on the density family, for APT
# with an affine MAF (3 transforms × 2 × 32), with and without sbi's "combined loss" (the
# maximum-likelihood term on the prior-drawn simulations added); these two runs were trained in
# the two-moons cell above. After the last round the NSF leaves {glue:text}`leak_nsf:.1f` % of
# $q(\cdot\mid x_o)$ outside the box, the MAF {glue:text}`leak_maf:.1f` % and the MAF with the
# combined loss {glue:text}`leak_maf_combined:.1f` %.
# ```

# %% tags=["nbval-check-output"]
print("leakage per round (%), and the proposal acceptance rate of the last round:")
for lab, run in leak.items():
    print(
        f"  {lab:24s}",
        [round(100 * r.leakage, 1) for r in run.rounds],
        f"{run.rounds[-1].proposal_acceptance:.3f}",
    )

# %% [markdown]
# ## Full profile: SLCP, with and without distractors (claims A3 full, A5)
#
# SLCP: $\theta\in[-3,3]^5$, four draws from a 2-D Gaussian whose mean, scales and
# correlation are set by $\theta$; the posterior has four symmetric modes. The reference
# posterior comes from Metropolis chains on the analytic likelihood (folded onto one mode
# and reflected). The distractor variant appends 20 uninformative $\mathcal N(0,1)$ data
# dimensions (claim A5, after the paper's Fig. 3; sbibm's own variant uses Student-t mixtures).
# Skipped at `ci`.
#
# The controls are the same runs stopped after their first round (1000 prior simulations,
# i.e. amortised NPE with a tenth of the budget), scored by the same C2ST: for A3, APT's
# first round in place of APT; for A5, the distractor run's first round in place of its last.
# A rule that accepts a posterior fitted on a tenth of the simulations cannot tell APT from
# a clearly worse estimate.

# %%
slcp_res = {}
if rt.profile == "full":
    theta_o = torch.tensor([SLCP_THETA_O])
    x_slcp = slcp(theta_o, generator=rt.generator(50))[0]
    x_dis = torch.cat([x_slcp, torch.randn(cfg.n_distractors, generator=rt.generator(51))])
    slcp_ref = slcp_reference_posterior(x_slcp, cfg.n_post, generator=rt.generator(52))

    def simulate_distractors(t, generator=None):
        return slcp_distractors(t, n_distractors=cfg.n_distractors, generator=generator)

    for name, sim, x_o, method in (
        ("apt", slcp, x_slcp, "apt"),
        ("snpe-b", slcp, x_slcp, "snpe-b"),
        ("apt-distractors", simulate_distractors, x_dis, "apt"),
    ):
        run = fit(slcp_prior(), sim, x_o, method, cfg.slcp_rounds, cfg.slcp_sims, seed=cfg.seeds[0])
        slcp_res[name] = score(slcp_ref, run.round_samples[-1], 0)
        if method == "apt":  # the controls of A3 (SLCP) and A5: the same run after its first round
            slcp_res[f"{name} round 1"] = score(slcp_ref, run.round_samples[0], 0)
    print({k: round(v, 3) for k, v in slcp_res.items()})
else:
    print(f"skipped at the {rt.profile} profile")

# %% [markdown]
# ## Claims
#
# A1 uses the Gaussian task of figure 3 (dimension `gl_dim`, `gl_rounds` rounds of
# `gl_sims` simulations); A2 and A3 the two-moons runs above (medians over seeds
# {0, 1, 2} at `ci`; at `full`, medians over seeds and 10 observations, the first being
# sbibm's observation 1 and the others drawn by the book). A4 is
# $|\log q(\theta^*\mid x_o) - \log p(\theta^*\mid x_o)|$ on the Gaussian task. A3 (SLCP)
# and A5 run at the full profile only. A2c–f compare with the sbibm benchmark's C2ST table
# and need its protocol ($10^4$ against $10^4$ samples and its reference samples for ten
# observations, which the book does not ship): they are not implemented. Thresholds are fixed
# in advance (A2b: HPD mass ≥ 0.80 at `ci`, ≥ 0.90 at `full`); each control is named below
# the table.

# %%
res = ChapterResults(
    "apt",
    rt,
    require_controls=True,
    expected_not_reproduced=("A1b", "A2b", "A3", "A4") if rt.profile == "ci" else (),
)
naive_last = gl_ratio["naive"][-1]
res.add(
    Claim(
        "A1a",
        f"Gaussian d={cfg.gl_dim}, APT after {cfg.gl_rounds} rounds: smallest per-dim std ratio",
        paper="corrects the proposal (Sec. 4, Prop. 1)",
        op="in",
        threshold=cfg.a1_range,
        measured=gl_ratio["apt"][-1].min(),
        control=naive_last.min(),
        control_label="naive multi-round MLE",
    )
)
res.add(
    Claim(
        "A1b",
        f"Gaussian d={cfg.gl_dim}, APT after {cfg.gl_rounds} rounds: largest per-dim std ratio",
        paper="corrects the proposal (Sec. 4, Prop. 1)",
        op="in",
        threshold=cfg.a1_range,
        measured=gl_ratio["apt"][-1].max(),
        control=naive_last.max(),
        control_label="naive multi-round MLE",
    )
)
res.add(
    Claim(
        "A1c",
        "Gaussian, APT: largest per-dim |posterior mean − true mean| / true sd",
        paper="corrects the proposal (Sec. 4)",
        op="<=",
        threshold=0.3,
        measured=gl_mean_err["apt"].max(),
        control=float(np.max(np.abs(gl_mean_err["apt"] + 0.5))),
        control_label="APT's mean shifted by 0.5 true sd",
    )
)
res.add(
    Claim(
        "A1d",
        "Gaussian, naive multi-round MLE: std ratio (mean over dims) after the last round",
        paper="biased without correction (Sec. 3)",
        op="<=",
        threshold=0.85,
        measured=naive_last.mean(),
        control=gl_ratio["apt"][-1].mean(),
        control_label="APT (the corrected estimator)",
    )
)
res.add(
    Claim(
        "A2a",
        f"two moons, {budget0} sims: median KL(APT 4×250) − median KL(NPE 1×1000), nats",
        paper="APT better (Fig. 6)",
        op="<=",
        threshold=0.0,
        measured=median_of(tm_kl, budget0, "apt") - median_of(tm_kl, budget0, "npe"),
        control=median_of(tm_kl, budget0, "npe-quarter") - median_of(tm_kl, budget0, "npe"),
        control_label="NPE 1×250 in place of APT",
    )
)
res.add(
    Claim(
        "A2b",
        f"two moons, {budget0} sims: median HPD-95 mass of APT's samples",
        paper="recovers both crescents (Fig. 1)",
        op=">=",
        threshold=cfg.a2b_min,
        measured=median_of(tm_hpd, budget0, "apt"),
        control=hpd_jitter,
        control_label="reference + N(0, 0.05²) jitter",
    )
)
for cid, budget, method, ref_value in (
    ("A2c", 1000, "apt", 0.643),
    ("A2d", 1000, "npe", 0.725),
    ("A2e", 10000, "apt", 0.554),
    ("A2f", 10000, "npe", 0.606),
):
    res.add(
        Claim(
            cid,
            f"two moons, {budget} sims, sbibm protocol (10⁴ vs 10⁴ samples, 5 folds, 10 "
            f"observations): median C2ST of {method.upper()}",
            paper=f"{ref_value} (sbibm)",
            op="in",
            threshold=(ref_value - 0.05, ref_value + 0.05),
            measured=None,
            implemented=False,
            profiles=("full",),
        )
    )
res.add(
    Claim(
        "A3",
        f"two moons, {budget0} sims: median KL(APT) − median KL(SNPE-B, same flow), nats",
        paper="APT ≤ SNPE-B (Fig. 6)",
        op="<=",
        threshold=0.0,
        measured=median_of(tm_kl, budget0, "apt") - median_of(tm_kl, budget0, "snpe-b"),
        control=median_of(tm_kl, budget0, "npe-quarter") - median_of(tm_kl, budget0, "snpe-b"),
        control_label="NPE 1×250 in place of APT",
    )
)
res.add(
    Claim(
        "A3-slcp",
        "SLCP 10×1000: C2ST(APT) − C2ST(SNPE-B)",
        paper="APT ≪ SNPE-B (Fig. 2)",
        op="<=",
        threshold=-0.05,
        measured=slcp_res["apt"] - slcp_res["snpe-b"] if slcp_res else None,
        control=slcp_res["apt round 1"] - slcp_res["snpe-b"] if slcp_res else None,
        control_label=f"APT after round 1 (1×{cfg.slcp_sims}) in place of APT" if slcp_res else "",
        profiles=("full",),
    )
)
res.add(
    Claim(
        "A4",
        "Gaussian: |−log q(θ*|x_o) − (−log p(θ*|x_o))| of APT (nats)",
        paper="close to truth (Sec. 5)",
        op="<=",
        threshold=1.0,
        measured=abs(nll_apt - nll_true),
        control=abs(nll_wide - nll_true),
        control_label="APT's Gaussian fit widened 2x",
    )
)
res.add(
    Claim(
        "A5",
        f"SLCP 10×1000: C2ST(APT, +{cfg.n_distractors} distractor dims) − C2ST(APT)",
        paper="barely degrades (Fig. 3)",
        op="<=",
        threshold=0.05,
        measured=slcp_res["apt-distractors"] - slcp_res["apt"] if slcp_res else None,
        control=slcp_res["apt-distractors round 1"] - slcp_res["apt"] if slcp_res else None,
        control_label=(
            f"distractor run after round 1 (1×{cfg.slcp_sims}) in place of its last"
            if slcp_res
            else ""
        ),
        profiles=("full",),
    )
)

# %% tags=["nbval-check-output"]
print(res.table(timings=False))

# %% tags=["nbval-ignore-output"]
print(res.table())
res.save()
for k, v in rt.provenance().items():
    print(f"{k:14s} {v}")

# %%
res.check()

# %%
# the numbers the text below quotes, as this run measured them
res.glue(
    naive_first=float(gl_ratio["naive"][0].mean()),
    kl_apt=median_of(tm_kl, budget0, "apt"),
    kl_npe=median_of(tm_kl, budget0, "npe"),
    kl_snpeb=median_of(tm_kl, budget0, "snpe-b"),
    kl_npe_quarter=median_of(tm_kl, budget0, "npe-quarter"),
    hpd_best_arm=max(median_of(tm_hpd, budget0, name) for name in ARMS),
    c2st_apt=float(tm_c2st["apt"].value),
    c2st_floor=float(tm_c2st["apt"].floor),
    c2st_jitter=float(tm_c2st["apt"].positive),
    c2st_tells="cannot" if tm_c2st["apt"].blind else "can",
    leak_nsf=float(100 * leak["APT, NSF"].rounds[-1].leakage),
    leak_maf=float(100 * leak["APT, MAF"].rounds[-1].leakage),
    leak_maf_combined=float(100 * leak["APT, MAF + combined loss"].rounds[-1].leakage),
)

# %% [markdown]
# ## What held, what did not, and why
#
# The verdicts and numbers below are this run's (the rules and controls are in the table above).
#
# **Correcting the proposal (A1, {numref}`fig-apt-gaussian-std`).** After the last round APT's
# per-dimension std ratios lie between {glue:text}`A1a_ours:.2f` and {glue:text}`A1b_ours:.2f`
# and its largest mean error is {glue:text}`A1c_ours:.2f` true standard deviations (A1a:
# {glue:text}`A1a_verdict`, A1b: {glue:text}`A1b_verdict`, A1c: {glue:text}`A1c_verdict`),
# while the naive estimator's ratio goes from {glue:text}`naive_first:.2f` after round 1 to
# {glue:text}`A1d_ours:.2f` of the true width after the last (A1d: {glue:text}`A1d_verdict`;
# APT ends at {glue:text}`A1d_control:.2f`). A1b's control is the naive estimator's widest
# dimension, at {glue:text}`A1b_control:.2f`: the dimension that narrows least. Whenever it stays
# inside the band ([0.8, 1.25] at `ci`) a rule on the largest ratio alone accepts the naive
# estimator too, and A1b is inconclusive.
#
# **APT against NPE (A2a).** At 1000 simulations APT's median KL to the two-moons reference is
# {glue:text}`kl_apt:.2f` nats and that of NPE with the same gradient-step budget
# {glue:text}`kl_npe:.2f`: a difference of {glue:text}`A2a_ours:.3f` nats against the rule ≤ 0,
# where NPE with a quarter of the budget in place of APT gives {glue:text}`A2a_control:.3f`
# (A2a: {glue:text}`A2a_verdict`).
#
# **APT against SNPE-B (A3).** APT's median KL minus SNPE-B's ({glue:text}`kl_snpeb:.2f` nats)
# is {glue:text}`A3_ours:.3f` nats; NPE with a quarter of the budget in place of APT
# ({glue:text}`kl_npe_quarter:.2f` nats) gives {glue:text}`A3_control:.3f` (A3:
# {glue:text}`A3_verdict`). SNPE-B is poor here (its importance weights leave few effective
# samples), so the rule "≤ SNPE-B" separates good from mediocre only by the gap between SNPE-B
# and the quarter-budget control. On which side of SNPE-B that control lands moves with
# floating-point rounding: on CPUs whose math libraries take other code paths it passed too and
# A3 was inconclusive, so we do not count A3 as robust, even where it holds.
#
# **Density at θ\* (A4).** APT's $-\log q(\theta^*\mid x_o)$ is {glue:text}`A4_ours:.2f` nats
# from the analytic value, and a Gaussian with APT's mean and twice its standard deviations is
# {glue:text}`A4_control:.2f` nats from it (A4: {glue:text}`A4_verdict`). Whether the 1-nat rule
# rejects a posterior twice too wide depends on where θ\* happens to fall, so a single density
# value is a weak test of calibration in two dimensions.
#
# **The crescents (A2b).** With 4 × 250 simulations and at most 400 gradient steps on two CPU
# cores, the best arm's median HPD-95 mass is {glue:text}`hpd_best_arm:.2f` (an exact posterior
# has 0.95), and APT's is {glue:text}`A2b_ours:.2f` against the 0.80 required (A2b:
# {glue:text}`A2b_verdict`); the reference itself with $\mathcal N(0, 0.05^2)$ jitter has
# {glue:text}`A2b_control:.2f`. At 1000 against 1000 samples the C2ST {glue:text}`c2st_tells`
# tell that jittered reference from the reference (it scores it {glue:text}`c2st_jitter:.3f`,
# against a floor of {glue:text}`c2st_floor:.3f` for an independent reference draw) and scores
# APT {glue:text}`c2st_apt:.3f` (seed 0); the first version of this chapter, judged by the C2ST
# alone, reported the posterior as near-perfect.
# The full profile (10 rounds × 100 and × 1000, longer training) tests A2b at 0.90.
# There, A3 on SLCP is judged beside APT stopped after its first round (1 × 1000) in place
# of APT, and A5 beside the distractor run stopped after its first round in place of its
# last: each rule must reject a posterior fitted on a tenth of the simulations.
