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
# # Likelihood-free inference with emulator networks
#
# **Paper.** J.-M. Lueckmann, G. Bassetto, T. Karaletsos, J. H. Macke, *Likelihood-free
# inference with emulator networks*, 1st Symposium on Advances in Approximate Bayesian
# Inference (AABI 2018), PMLR 96:32–53 (2019)
# ([arXiv:1805.09294](https://arxiv.org/abs/1805.09294)).
#
# A simulator $x\sim p(x\mid\theta)$ can be run but its likelihood cannot be evaluated.
# Instead of comparing simulations with the observation $x_o$ through a distance and a
# threshold (ABC), the paper trains a probabilistic **emulator** $q_\phi(x\mid\theta)$ of the
# simulator on the simulations run so far and uses its value at the observation as a
# *synthetic likelihood*: $p(\theta\mid x_o)\propto p(\theta)\,q_\phi(x_o\mid\theta)$. The
# emulator's uncertainty about its own weights $\phi$ decides where to simulate next, through
# an **acquisition function** that targets either uncertainty about the posterior or
# uncertainty about the emulator parameters.
#
# **What the paper claims, and what this chapter checks** (claims E1–E5). The paper's
# abstract states that emulators "allow accurate and efficient inference even on problems
# which are challenging for conventional ABC approaches", on synthetic examples and a
# biophysical neuron model, without ABC distances or thresholds. From this the book derives
# five checkable claims: emulators give better posteriors than rejection ABC with ten times
# the simulations (E1); active acquisition beats simulating from the prior at the same budget
# (E2); the posterior-uncertainty acquisition puts its simulations where the posterior is
# (E3); the ensemble's disagreement flags where the emulated likelihood is wrong (E4); and, at
# the full profile only, the method works on a biophysical (Hodgkin–Huxley) neuron model (E5).
# E2–E4 are the book's hypotheses about the mechanism the abstract describes, not numbers
# the paper reports.
#
# **Figures drawn** (the book's choice; the paper's figures could not be consulted): a 1-D
# illustration of the members, both acquisition functions and the acquired points; the
# two-moons posterior after each round; posterior quality (KL divergence to the reference)
# against the number of simulations for three acquisition rules and rejection ABC; the
# ensemble's standard deviation against the true error of the log likelihood.
#
# **How the claims are judged.** Every claim is judged twice by the same rule: on our value
# and on a *control*, a deliberately wrong answer of the same kind (the untrained round-0
# emulator in place of the trained one, a random choice of points in place of the
# acquisition's choice, an uncertainty estimate shuffled across parameters). A claim whose
# control passes too is *inconclusive*: its rule could not have told right from wrong.
#
# **What is ours.** Only the paper's abstract was available to the book's authors; the
# details below (an ensemble of flows rather than the prototype's Bayesian network, the
# acquisition formulas, candidate sets and batch selection) are *our implementation*,
# reconstructed from the abstract, the authors' early prototype notebooks and standard
# practice. The code is the book's own (`neuroinverse.inference.emulators`, `.acquisition`,
# `.active_learning` and `neuroinverse.samplers`).

# %% tags=["parameters"]
profile = "ci"
seed = 0
device = "auto"

# %% [markdown]
# Every size below comes from the profile: `ci` runs on two CPU cores in about a minute;
# `full` uses ten seeds, more members and longer training on one GPU (the book's choice).

# %%
import numpy as np
import torch
from scipy.stats import spearmanr, wilcoxon

from neuroinverse import plotting
from neuroinverse.inference import (
    make_flow_ensemble,
    posterior_samples,
    rejection_abc,
    resample_with_jitter,
    run_active_learning,
)
from neuroinverse.metrics import GridDensity, c2st, c2st_calibrated_async, hpd_mass
from neuroinverse.results import ChapterResults, Claim
from neuroinverse.runtime import background, setup
from neuroinverse.samplers import (
    fraction_in_hpd,
    grid_kde,
    grid_posterior,
    hpd_threshold,
    sample_grid,
)
from neuroinverse.simulators import (
    GAUSSIAN_1D_X_O,
    TWO_MOONS_X_O,
    gaussian_1d,
    gaussian_1d_log_likelihood,
    gaussian_1d_prior,
    two_moons,
    two_moons_grid_posterior,
    two_moons_log_likelihood,
    two_moons_prior,
    two_moons_reference_posterior,
)

rt = setup(profile=profile, seed=seed, device=device)
cfg = rt.select(
    ci=dict(
        members=5,
        flow=dict(kind="maf", transforms=2, hidden=(32, 32)),
        n_initial=20,
        n_rounds=6,
        batch=30,
        train=dict(max_steps=60, batch_size=128, lr=3e-3, patience=30, eval_every=10),
        steps0=200,
        n_candidates=2000,
        prior_fraction=0.5,
        exclusion=0.05,
        grid=200,
        candidate_grid=100,
        seeds=3,
        c2st_n=1000,
        abc_sims=(2000,),
        abc_keep=0.02,
        fig3_rounds=(6,),
        toy=dict(n_initial=5, n_rounds=6, batch_size=3, steps0=100, steps=30),
        hh=dict(n_initial=20, n_rounds=1, batch=10, pilot=200, snpe_rounds=2, snpe_sims=200),
    ),  # full only
    full=dict(
        members=10,
        flow=dict(kind="maf", transforms=3, hidden=(64, 64)),
        n_initial=20,
        n_rounds=6,
        batch=80,
        train=dict(max_steps=500, batch_size=128, lr=1e-3, patience=100, eval_every=10),
        steps0=3000,
        n_candidates=4000,
        prior_fraction=0.5,
        exclusion=0.05,
        grid=400,
        candidate_grid=200,
        seeds=10,
        c2st_n=2000,
        abc_sims=(10_000, 100_000),
        abc_keep=0.02,
        fig3_rounds=(0, 1, 2, 3, 4, 5, 6),
        toy=dict(n_initial=5, n_rounds=6, batch_size=3, steps0=500, steps=200),
        hh=dict(n_initial=60, n_rounds=6, batch=40, pilot=1000, snpe_rounds=3, snpe_sims=1000),
    ),
)
BUDGET = cfg.n_initial + cfg.n_rounds * cfg.batch
on_cpu = rt.device.type == "cpu"  # on the CPU, the last seed trains on the second core
plotting.apply_style()
print(
    f"profile={rt.profile} device={rt.device} threads={rt.threads}; "
    f"two-moons budget {BUDGET} simulations"
)

# %% [markdown]
# ## The method
#
# **Emulators.** Each of $M$ ensemble members is a conditional normalising flow
# $q_m(x\mid\theta)$ (a masked autoregressive flow from `zuko`, with $x$ the modelled value
# and $\theta$ the context). A Gaussian output head, the simplest emulator, cannot represent
# the two-moons likelihood: there $x$ lies on a noisy half ring around a $\theta$-dependent
# centre. The members differ in their random initialisation, their minibatch order and
# their 10 % hold-out set; all are trained by maximum likelihood on *all* simulations so
# far, warm-started from the previous round, and keep the weights of their best hold-out
# loss (early stopping). A cap on the standardised log density (equivalent to clamping
# $\log\sigma^2\ge-10$ for Gaussian heads, the book's choice) guards against peaked,
# overfitted likelihoods. The synthetic likelihood is the ensemble mean
# $\bar q(x_o\mid\theta)=\frac1M\sum_m q_m(x_o\mid\theta)$.
#
# **Acquisition** (our reconstruction of the two families the abstract names):
#
# * uncertainty about the posterior,
#   $\alpha_\text{post}(\theta)=\operatorname{Var}_m\bigl[p(\theta)\,q_m(x_o\mid\theta)\bigr]$;
# * information gain about the emulator weights (BALD), $\alpha_\text{info}(\theta)=
#   H[\bar q(x\mid\theta)]-\frac1M\sum_m H[q_m(x\mid\theta)]$, with moment-matched
#   Gaussian entropies, $\tfrac12\log\det\bar\Sigma-\frac1M\sum_m\tfrac12\log\det\Sigma_m$,
#   the moments estimated from 16 draws per member. It ignores $x_o$ and explores globally.
#
# Each round scores 2000 candidates (half prior draws, half draws from the current emulated
# posterior) and picks a batch greedily, excluding candidates closer than 0.05 prior
# standard deviations to a point already chosen. The **baseline** simulates prior draws
# instead. The posterior is evaluated on a grid (2-D: 200 × 200 cells at `ci`), which needs
# no MCMC; the library also has a slice sampler for higher dimensions.

# %% [markdown]
# ## A 1-D illustration
#
# The prototype's toy problem: $\theta\sim U(-2,2)$, $x\mid\theta\sim N(\theta, 0.1)$,
# $x_o=0.5$; the posterior is a truncated Gaussian. Five members are trained on 5 prior
# simulations, then 6 rounds add 3 points each by $\alpha_\text{post}$;
# {numref}`fig-emulators-toy-acquisition` shows the ensemble along the way.

# %%
toy_prior, toy_x_o = gaussian_1d_prior(), torch.tensor([GAUSSIAN_1D_X_O])
toy_theta = torch.linspace(-2, 2, 401)[:, None]


def toy_snapshot(r, res):
    """Members' prior × likelihood and both acquisition functions on a θ grid."""
    e = res.ensemble
    return dict(
        lik=e.member_log_likelihoods(toy_theta, toy_x_o).detach().exp().cpu().numpy() / 4,
        post=e.acquisition("post", toy_theta, toy_x_o, toy_prior).exp().numpy(),
        info=e.acquisition(
            "info", toy_theta, toy_x_o, toy_prior, generator=rt.generator(5)
        ).numpy(),
    )


toy = run_active_learning(
    toy_prior,
    gaussian_1d,
    toy_x_o,
    ensemble=make_flow_ensemble(
        1, 1, n_members=cfg.members, transforms=1, hidden=(16, 16), seed=rt.seed, device=rt.device
    ),
    acquisition="post",
    n_initial=cfg.toy["n_initial"],
    n_rounds=cfg.toy["n_rounds"],
    batch_size=cfg.toy["batch_size"],
    n_candidates=500,
    exclusion_radius=cfg.exclusion,
    train=dict(cfg.train, max_steps=cfg.toy["steps"], seed=rt.seed),
    initial_train=dict(max_steps=cfg.toy["steps0"]),
    generator=rt.generator(1),
    callback=toy_snapshot,
    desc="1-D toy",
)
toy_true = (gaussian_1d_log_likelihood(toy_theta, toy_x_o).exp() / 4).numpy()

# %% tags=["remove-output"]
th = toy_theta[:, 0].numpy()
fig, ax = plotting.figure(2, 3, width=7, height=5.0, sharex=True)
for col, r in enumerate((1, 3, 6)):
    snap = toy.snapshots[r - 1]
    a = ax[0, col]
    a.plot(th, snap["lik"].T, color=plotting.COLORS["method"], lw=0.8, alpha=0.6)
    a.plot([], [], color=plotting.COLORS["method"], lw=0.8, label="members p(θ) q_m(x_o|θ)")
    a.plot(
        th, toy_true, color=plotting.COLORS["truth"], lw=1.5, ls="--", label="true p(θ) p(x_o|θ)"
    )
    a.plot(
        toy.theta[toy.round < r, 0],
        np.zeros(int((toy.round < r).sum())),
        "|",
        color=plotting.COLORS["data"],
        ms=10,
        label="simulated so far",
    )
    a.set_title(f"before round {r}")
    a.set_ylabel("density (1/unit of x)")
    b = ax[1, col]
    b.plot(
        th,
        snap["post"] / snap["post"].max(),
        color=plotting.COLORS["method"],
        label="α_post (scaled)",
    )
    b.plot(
        th,
        snap["info"] / snap["info"].max(),
        color=plotting.COLORS["baseline"],
        label="α_info (scaled)",
    )
    b.plot(
        toy.acquired(r)[:, 0],
        np.full(cfg.toy["batch_size"], 1.05),
        "v",
        color=plotting.COLORS["truth"],
        label="acquired in that round",
    )
    b.set_xlabel("θ")
    b.set_ylabel("acquisition / max")
handles, labels = [], []
for a_ in ax[:, 0]:  # one legend for both rows, above the panels
    h_, l_ = a_.get_legend_handles_labels()
    handles, labels = handles + h_, labels + l_
fig.legend(handles, labels, loc="outside upper center", ncol=3, fontsize=7)
plotting.save(fig, "emulators", "fig1_toy_acquisition")

# %% [markdown]
# ```{glue:figure} fig1_toy_acquisition
# ---
# name: fig-emulators-toy-acquisition
# alt: >-
#   Two rows of three panels against θ, before rounds 1, 3 and 6. Top: each ensemble member's
#   prior times likelihood, the true curve dashed, and ticks for the parameters simulated so far.
#   Bottom: the two acquisition functions scaled to their maxima, with triangles at the points
#   acquired in that round.
# ---
# The 1-D toy with five ensemble members, before rounds 1, 3 and 6. Top: the members' prior ×
# likelihood against the truth (dashed); their spread is the ensemble's uncertainty.
# Bottom: $\alpha_\text{post}$ and $\alpha_\text{info}$ (each scaled to its maximum) and
# the points $\alpha_\text{post}$ acquired in that round.
# ```

# %% [markdown]
# ## Two moons
#
# $\theta\sim U([-1,1]^2)$; $x$ is a point on a noisy half ring (radius $N(0.1, 0.01^2)$)
# around a centre that depends on $|\theta_1+\theta_2|$ and $\theta_2-\theta_1$, so the
# posterior for sbibm's first observation $x_o=(-0.6397, 0.1623)$ is two thin crescents.
# The reference posterior is computed on a 400 × 400 grid from the analytic likelihood.
#
# **Posterior quality.** Every emulated posterior here is a grid density (200 × 200 cells at
# `ci`, 400 × 400 at `full`), and so is the reference; on the emulator's grid (at `ci` the
# reference's cells merged 2 × 2) the divergence
# $\mathrm{KL}(p_\mathrm{ref}\,\|\,q)=\sum_\text{cells}p_\mathrm{ref}\log(p_\mathrm{ref}/q)\,\Delta$
# is computed exactly (0 is perfect). Beside it, the share of 1000 samples of the estimate that fall
# inside the reference's 95 % highest-posterior-density (HPD) region (0.95 is right). The classifier
# two-sample test (C2ST) is reported only beside its floor and a positive control: at 1000 against
# 1000 samples it cannot see how thin the crescents are (an earlier version of this chapter called
# posteriors with little more than a third of their samples in the HPD region "indistinguishable"
# from the reference by C2ST).

# %%
prior = two_moons_prior()
X_O = torch.tensor(TWO_MOONS_X_O)
ref_axis, ref_dens = two_moons_grid_posterior(X_O)
ref_axes = [ref_axis, ref_axis]
reference = two_moons_reference_posterior(X_O, cfg.c2st_n, generator=rt.generator(2))
reference_2 = two_moons_reference_posterior(
    X_O, cfg.c2st_n, generator=rt.generator(3)
)  # the C2ST's floor
ref_grid = GridDensity((ref_axis, ref_axis), ref_dens)
k = len(ref_axis) // cfg.grid  # the reference's cells merged k × k onto the emulator's grid
ref_coarse = GridDensity(
    [ref_axis.reshape(-1, k).mean(1)] * 2, ref_dens.reshape(cfg.grid, k, cfg.grid, k).mean((1, 3))
)
ref_cells = torch.cartesian_prod(torch.as_tensor(ref_axis), torch.as_tensor(ref_axis))
hpd_area = fraction_in_hpd(
    ref_cells, ref_axes, ref_dens
)  # exact: the share of grid cells in the region
demo_theta = prior.sample(500, generator=rt.generator(4))
demo_x = two_moons(demo_theta, generator=rt.generator(4))
print(f"the reference 95 % HPD region covers {100 * hpd_area:.2f} % of the prior box")

# %% tags=["remove-output"]
fig, ax = plotting.figure(1, 2, width=7, height=3.4)
ax[0, 0].scatter(
    demo_x[:, 0], demo_x[:, 1], s=3, c=demo_theta[:, 0] + demo_theta[:, 1], cmap="coolwarm"
)
ax[0, 0].plot(*X_O, "*", color=plotting.COLORS["truth"], ms=12, label="x_o")
ax[0, 0].set_xlabel("x₁")
ax[0, 0].set_ylabel("x₂")
ax[0, 0].set_title("500 simulations (colour: θ₁ + θ₂)")
ax[0, 0].legend()
ax[0, 1].scatter(reference[:, 0], reference[:, 1], s=2, color=plotting.COLORS["reference"])
ax[0, 1].set_xlim(-1, 1)
ax[0, 1].set_ylim(-1, 1)
ax[0, 1].set_xlabel("θ₁")
ax[0, 1].set_ylabel("θ₂")
ax[0, 1].set_title("reference posterior samples")
plotting.save(fig, "emulators", "two_moons_data")

# %% [markdown]
# ```{glue:figure} two_moons_data
# ---
# name: fig-emulators-two-moons-data
# alt: >-
#   Left: scatter of 500 simulated data points in the plane, coloured by the sum of the two
#   parameters, with the observation marked by a star. Right: samples of the reference posterior
#   over the two parameters, forming two thin crescents.
# ---
# The two-moons task. Left: 500 simulations from the prior, coloured by $\theta_1+\theta_2$,
# and the observation $x_o$ (star). Right: samples of the reference posterior for $x_o$: two thin
# crescents that cover a small part of the prior box.
# ```

# %% [markdown]
# ### Active learning against random acquisition
#
# For every seed, round 0 (20 prior simulations, training from scratch) is run once and
# shared; from there the $\alpha_\text{post}$ and prior (random) rules each add 6 rounds of
# 30 simulations, so both use 200 simulations and the same training schedule. For the
# first seed the $\alpha_\text{info}$ rule is run as well. Three seeds at `ci` (ten at
# `full`); on the CPU the last seed trains in a background process on the second core (one
# thread, explicit seeds: its numbers are those of a run here). Candidates are drawn from
# the emulated posterior on a coarser 100 × 100 grid. The round-0 emulator of each seed,
# trained on its 20 prior simulations only, is kept as the *control* of E1 and E2: an
# untrained answer that a meaningful rule must reject.


# %%
def grid_snapshot(keep):
    """Callback: the emulated posterior on the grid after the rounds in `keep` (else None)."""
    return lambda r, res: (
        grid_posterior(
            lambda t: res.ensemble.log_posterior(t, X_O, prior),
            prior.low,
            prior.high,
            points=cfg.grid,
        )
        if r in keep
        else None
    )


def run(s, acquisition, start=None, n_rounds=cfg.n_rounds):
    keep = (
        range(cfg.n_rounds + 1)
        if (s, acquisition) == (rt.seed, "post") or start is None
        else cfg.fig3_rounds
    )
    kw = dict(
        acquisition=acquisition,
        n_initial=cfg.n_initial,
        n_rounds=n_rounds,
        batch_size=cfg.batch,
        n_candidates=cfg.n_candidates,
        prior_fraction=cfg.prior_fraction,
        exclusion_radius=cfg.exclusion,
        train=dict(cfg.train, seed=s),
        initial_train=dict(max_steps=cfg.steps0),
        grid_points=cfg.candidate_grid,
        callback=grid_snapshot(keep),
        desc=f"seed {s}, {acquisition}",
    )
    ens = (
        None
        if start
        else make_flow_ensemble(2, 2, n_members=cfg.members, seed=s, device=rt.device, **cfg.flow)
    )
    return run_active_learning(
        prior,
        two_moons,
        X_O,
        ensemble=ens,
        start=start,
        generator=rt.generator(1000 * s + (acquisition != "prior")),
        **kw,
    )


def seed_runs(s):
    """Round 0 once, then every acquisition rule from it (α_info for the first seed only)."""
    shared = run(s, "prior", n_rounds=0)
    return {
        acq: run(s, acq, start=shared)
        for acq in (("post", "prior", "info") if s == rt.seed else ("post", "prior"))
    }


def samples_of(axes_dens, n=cfg.c2st_n):
    """n samples of a grid posterior (axes, density)."""
    axes, dens = axes_dens
    return sample_grid(axes, dens, n, generator=rt.generator(6))


seeds = range(rt.seed, rt.seed + cfg.seeds)
in_bg = background(seed_runs, seeds[-1]) if on_cpu else None
runs = {}
for s in seeds:
    for acq, r in (in_bg.result() if (s == seeds[-1] and in_bg) else seed_runs(s)).items():
        runs[acq, s] = r
    if s == rt.seed:  # seed 0's C2ST, with its floor and positive control, queues in the background
        c2st_emulator = c2st_calibrated_async(
            reference,
            reference_2,
            samples_of(runs["post", s].snapshots[-1]),
            generator=rt.generator(9),
        )

# quality of the final posterior of every run and of each seed's round-0 emulator (the control)
kl_final = {key: ref_coarse.kl_to(GridDensity(*res.snapshots[-1])) for key, res in runs.items()}
hpd_final = {key: hpd_mass(samples_of(res.snapshots[-1]), ref_grid) for key, res in runs.items()}
kl_round0 = {s: ref_coarse.kl_to(GridDensity(*runs["post", s].snapshots[0])) for s in seeds}
hpd_round0 = {s: hpd_mass(samples_of(runs["post", s].snapshots[0]), ref_grid) for s in seeds}
post0 = runs["post", rt.seed]

# %% [markdown]
# ### Rejection ABC
#
# The nearest 2 % of the prior simulations by Euclidean distance of z-scored data, resampled
# to the same number of samples with a Gaussian kernel (Scott's bandwidth). The density of
# these resampled draws is that kernel density estimate, truncated to the prior box; on the
# emulator's grid it gives ABC an exact grid KL too. (ABC is not scored by C2ST: a classifier
# that can tell two sample sets apart trains long on the CPU, and the KL and HPD mass already
# show ABC's error.)

# %%
abc_kl, abc_mass = {}, {}
for n_sims in cfg.abc_sims:
    acc = rejection_abc(
        prior,
        two_moons,
        X_O,
        n_simulations=n_sims,
        quantile=cfg.abc_keep,
        generator=rt.generator(7),
    )
    abc_samples = resample_with_jitter(
        acc.theta, cfg.c2st_n, prior=prior, generator=rt.generator(8)
    )
    abc_kl[n_sims] = ref_coarse.kl_to(
        GridDensity(ref_coarse.axes, grid_kde(acc.theta, ref_coarse.axes))
    )
    abc_mass[n_sims] = hpd_mass(abc_samples, ref_grid)
c2st_emulator = c2st_emulator.result()

# %% tags=["nbval-check-output"]
print(
    f"KL(p_ref ‖ q) on the {cfg.grid} × {cfg.grid} grid (nats; 0 = exact) "
    f"and the share of {cfg.c2st_n} samples "
    "inside the reference's 95 % HPD region (0.95 = right)"
)
for (acq, s), v in sorted(kl_final.items()):
    print(
        f"  emulator, {acq:5s} acquisition, seed {s}, {BUDGET} simulations: KL {v:6.3f}, "
        f"in HPD {hpd_final[acq, s]:.3f}"
    )
for s in seeds:
    print(
        f"  emulator after round 0 (control), seed {s}, {cfg.n_initial} simulations: "
        f"KL {kl_round0[s]:6.3f}, "
        f"in HPD {hpd_round0[s]:.3f}"
    )
for n_sims in cfg.abc_sims:
    print(
        f"  rejection ABC, {n_sims} simulations ({int(cfg.abc_keep * n_sims)} kept): "
        f"KL {abc_kl[n_sims]:6.3f}, "
        f"in HPD {abc_mass[n_sims]:.3f}"
    )
print(f"emulator, α_post, seed {rt.seed}: {c2st_emulator}")

# %% [markdown]
# ## The emulated posterior, round by round
#
# {numref}`fig-emulators-rounds` follows the emulated posterior over the rounds of one seed.

# %% tags=["remove-output"]
fig, ax = plotting.figure(2, 4, width=7, height=4.0, sharex=True, sharey=True)
for k, a in enumerate(ax.ravel()):
    if k == 0:
        a.imshow(ref_dens.T, origin="lower", extent=(-1, 1, -1, 1), cmap="Greys")
        a.set_title("reference")
    else:
        r = k - 1
        axes_r, dens_r = post0.snapshots[r]
        a.imshow(dens_r.T, origin="lower", extent=(-1, 1, -1, 1), cmap="Greys")
        a.contour(
            ref_axis,
            ref_axis,
            ref_dens.T,
            levels=[hpd_threshold(ref_dens)],
            colors=plotting.COLORS["reference"],
            linewidths=0.6,
        )
        a.plot(
            post0.acquired(r)[:, 0] if r else post0.theta[post0.round == 0, 0],
            post0.acquired(r)[:, 1] if r else post0.theta[post0.round == 0, 1],
            ".",
            color=plotting.COLORS["method"],
            ms=3,
        )
        a.set_title(f"round {r} ({int((post0.round <= r).sum())} sims)", fontsize=8)
    a.set_xticks([-1, 0, 1])
    a.set_yticks([-1, 0, 1])
ax[0, 0].set_title("reference", fontsize=8)
for a in ax[-1]:
    a.set_xlabel("θ₁")
for a in ax[:, 0]:
    a.set_ylabel("θ₂")
plotting.save(fig, "emulators", "fig2_rounds")

# %% [markdown]
# ```{glue:figure} fig2_rounds
# ---
# name: fig-emulators-rounds
# alt: >-
#   Eight square panels over the two parameters: the reference posterior, then the emulated
#   posterior density in grey after rounds 0 to 6, each with the reference's 95% HPD region as a
#   contour and the parameters simulated in that round as dots.
# ---
# Seed 0, $\alpha_\text{post}$ acquisition. Each panel shows the emulated posterior after that
# round's training (panel titles: the total number of simulations), with the parameters
# simulated in that round (round 0: the prior design) and the reference's 95 % highest-density
# region as a contour.
# ```

# %% [markdown]
# ## Posterior quality against the number of simulations
#
# {numref}`fig-emulators-kl` compares the acquisition rules and rejection ABC by the
# divergence to the reference.

# %% tags=["remove-output"]
curve = {
    acq: [
        (int((runs[acq, rt.seed].round <= r).sum()), ref_coarse.kl_to(GridDensity(*snap)))
        for r, snap in enumerate(runs[acq, rt.seed].snapshots)
        if snap is not None
    ]
    for acq in ("post", "info", "prior")
}
fig, ax = plotting.figure(1, 1, width=5, height=3.4)
a = ax[0, 0]
for acq, color, label in [
    ("post", "method", "emulator, α_post"),
    ("info", "baseline2", "emulator, α_info"),
    ("prior", "baseline", "emulator, random (prior)"),
]:
    a.loglog(*zip(*curve[acq], strict=True), "o-", color=plotting.COLORS[color], label=label)
a.loglog(
    list(abc_kl), list(abc_kl.values()), "s", color=plotting.COLORS["data"], label="rejection ABC"
)
a.set_xlabel("number of simulations")
a.set_ylabel("KL(p_ref ‖ q) (nats)")
a.legend()
plotting.save(fig, "emulators", "fig3_kl")

# %% [markdown]
# ```{glue:figure} fig3_kl
# ---
# name: fig-emulators-kl
# alt: >-
#   Log-log plot of the KL divergence from the reference in nats against the number of
#   simulations: lines of markers for the emulator with three acquisition rules and squares for
#   rejection ABC.
# ---
# Seed 0: the exact grid KL divergence to the reference for the three acquisition rules after
# the rounds whose posterior was kept (every round for $\alpha_\text{post}$; at `ci` only
# round 0, shared by all rules, and the last round for the others), and rejection ABC at its
# (larger) budgets.
# ```

# %% [markdown]
# ## Where the acquisitions go (E3)
#
# The fraction of acquired parameters (rounds 1–6, all seeds) that fall inside the
# reference's 95 % highest-posterior-density region. Half of each round's 2000 candidates are
# drawn from the current emulated posterior, so the candidates alone already favour the
# posterior: the comparison that isolates the acquisition function is a **random choice of
# the same number of points from the same candidate sets**. As a control, a second,
# independent random choice is judged against the first by the same rule. The fraction for
# prior draws (the region's exact share of the prior box) is reported for scale.


# %%
def random_choice(res, g):
    """As many points per round as the rule acquired, drawn at random from that round's
    candidates."""
    return torch.cat(
        [
            c[torch.randperm(len(c), generator=g)[: int((res.round == r + 1).sum())]]
            for r, c in enumerate(res.candidates)
        ]
    )


frac = {
    acq: fraction_in_hpd(
        torch.cat([res.acquired() for (a_, s), res in runs.items() if a_ == acq]),
        ref_axes,
        ref_dens,
    )
    for acq in ("post", "info", "prior")
}
frac_random = [
    fraction_in_hpd(
        torch.cat([random_choice(runs["post", s], rt.generator(80 + j)) for s in seeds]),
        ref_axes,
        ref_dens,
    )
    for j in (0, 1)
]

# %% tags=["nbval-check-output"]
print(f"prior box share of the 95 % HPD region: {hpd_area:.4f}")
for acq, v in frac.items():
    print(
        f"acquired by {acq:5s}: {v:.3f} inside the 95 % HPD region "
        f"({v / hpd_area:.1f} × the prior share)"
    )
print(
    f"random choice from α_post's candidates: {frac_random[0]:.3f}; "
    f"a second random choice: {frac_random[1]:.3f}"
)

# %% [markdown]
# ## The ensemble's disagreement flags its errors (E4)
#
# Where the error matters: on the reference's grid cells inside its 99 % HPD region,
# {numref}`fig-emulators-std-vs-error` sets the members' disagreement against the ensemble's
# error. The control shuffles the standard deviations across these cells: an uncertainty estimate
# that carries no information about where the errors are.

# %% tags=["remove-output"]
e4_mask = torch.as_tensor(ref_grid.density >= ref_grid.hpd_level(0.99)).reshape(-1)
e4_theta = ref_cells[e4_mask].float()
with torch.no_grad():
    e4_std = post0.ensemble.log_likelihood_std(e4_theta, X_O).cpu().double()
    e4_err = (
        post0.ensemble.log_likelihood(e4_theta, X_O).cpu().double()
        - two_moons_log_likelihood(e4_theta.double(), X_O)
    ).abs()
rho_e4 = float(spearmanr(e4_std.numpy(), e4_err.numpy()).statistic)
e4_shuffled = e4_std[torch.randperm(len(e4_std), generator=rt.generator(90))]
rho_e4_control = float(spearmanr(e4_shuffled.numpy(), e4_err.numpy()).statistic)
fig, ax = plotting.figure(1, 1, width=4.5, height=3.4)
ax[0, 0].loglog(e4_std, e4_err, ".", ms=2, alpha=0.4, color=plotting.COLORS["method"])
ax[0, 0].set_xlabel("ensemble std of log q_m(x_o|θ) (nats)")
ax[0, 0].set_ylabel("|log q̄(x_o|θ) − log p(x_o|θ)| (nats)")
ax[0, 0].set_title("cells in the reference's 99 % HPD region")
plotting.save(fig, "emulators", "fig4_std_vs_error")

# %% [markdown]
# ```{glue:figure} fig4_std_vs_error
# ---
# name: fig-emulators-std-vs-error
# alt: >-
#   Log-log scatter, one point per grid cell, of the absolute error of the ensemble-mean log
#   likelihood in nats against the standard deviation of the members' log likelihoods in nats.
# ---
# On the {glue:text}`e4_cells` grid cells inside the reference's 99 % HPD region: the standard
# deviation across members of $\log q_m(x_o\mid\theta)$ against the absolute error of the
# ensemble-mean log likelihood, $|\log\bar q(x_o\mid\theta)-\log p(x_o\mid\theta)|$, with
# the analytic two-moons likelihood (seed 0, $\alpha_\text{post}$, after the last round).
# Spearman's ρ is {glue:text}`E4_ours:.2f`.
# ```

# %% tags=["nbval-check-output"]
print(
    f"E4 on {len(e4_std)} cells: Spearman ρ {rho_e4:.3f}; "
    f"with the std shuffled across cells {rho_e4_control:.3f}"
)

# %% [markdown]
# ## Full profile: a Hodgkin–Huxley neuron (claim E5)
#
# The 2-parameter model $(\bar g_\text{Na},\bar g_\text{K})$ of the snpe-hh chapter with its
# 7 summary features (z-scored with a pilot run), $\theta^*=(50, 5)$: an emulator ensemble
# with $\alpha_\text{post}$ acquisition and 300 simulations, against SNPE-B with
# 3 × 1000 simulations (the book's `SNPEB`, mixture-density network). Skipped at `ci`.
# The controls: the posterior of the round-0 emulator (its 60 prior simulations only) in
# place of the final one for the C2ST, and, for the coverage, $\theta^*$ moved by 10 % of
# the prior's width in each parameter (a wrong truth that accurate posteriors must exclude).

# %%
hh = {}
if rt.profile == "full":
    from neuroinverse.inference import SNPEB, marginal_summary
    from neuroinverse.models import MDN
    from neuroinverse.simulators import HHSimulator, hh_model, pilot_zscore

    hh_m = hh_model("2param")
    zs = pilot_zscore(
        HHSimulator("2param", device=rt.device),
        hh_m.prior,
        cfg.hh["pilot"],
        generator=rt.generator(50),
    )
    hh_sim = HHSimulator("2param", device=rt.device, zscore=zs, return_bad=False)
    hh_x_o = hh_sim(hh_m.theta_star[None], generator=rt.generator(51))[0]
    hh_run = run_active_learning(
        hh_m.prior,
        hh_sim,
        hh_x_o,
        ensemble=make_flow_ensemble(
            2, 7, n_members=cfg.members, seed=rt.seed, device=rt.device, **cfg.flow
        ),
        n_initial=cfg.hh["n_initial"],
        n_rounds=cfg.hh["n_rounds"],
        batch_size=cfg.hh["batch"],
        n_candidates=cfg.n_candidates,
        exclusion_radius=cfg.exclusion,
        train=dict(cfg.train, seed=rt.seed),
        initial_train=dict(max_steps=cfg.steps0),
        grid_points=cfg.grid,
        generator=rt.generator(52),
        desc="HH",
        callback=lambda r, res_r: (
            posterior_samples(
                res_r.ensemble,
                hh_m.prior,
                hh_x_o,
                1000,
                grid_points=cfg.grid,
                generator=rt.generator(56),
            )
            if r == 0
            else None
        ),
    )
    hh["emulator"] = posterior_samples(
        hh_run.ensemble, hh_m.prior, hh_x_o, 1000, grid_points=cfg.grid, generator=rt.generator(53)
    )
    snpe = SNPEB(
        hh_m.prior,
        HHSimulator("2param", device=rt.device, zscore=zs),
        hh_x_o,
        MDN(2, 7, n_components=2, hidden=(20, 20)),
        seed=rt.seed,
    )
    hh["snpe"] = snpe.run(
        cfg.hh["snpe_rounds"], cfg.hh["snpe_sims"], generator=rt.generator(54)
    ).posterior_samples(1000, generator=rt.generator(55))
    hh["c2st"] = c2st(hh["snpe"], hh["emulator"], seed=0)
    hh["c2st_round0"] = c2st(
        hh["snpe"], hh_run.snapshots[0], seed=0
    )  # E5a's control: the round-0 emulator

    def covered(theta):
        """1 if theta lies inside both posteriors' 95 % marginal intervals, else 0."""
        return float(
            all(
                bool(((m["low"] <= theta) & (theta <= m["high"])).all())
                for m in (marginal_summary(hh["emulator"]), marginal_summary(hh["snpe"]))
            )
        )

    hh["covered"] = covered(hh_m.theta_star)
    hh["covered_perturbed"] = covered(
        hh_m.theta_star + 0.1 * (hh_m.prior.high - hh_m.prior.low)
    )  # E5b's control
    print({k: v for k, v in hh.items() if not isinstance(v, torch.Tensor)})
else:
    print(f"skipped at the {rt.profile} profile")

# %% [markdown]
# ## Claims
#
# The paper's own numbers could not be consulted (only its abstract), so every rule below is
# the book's, fixed before the run. **E1** and **E2** measure posterior quality twice, by the
# exact grid KL divergence and by the HPD-95 mass of 1000 samples; E1 compares the median over
# seeds of the $\alpha_\text{post}$ emulator (200 simulations) with rejection ABC (2000), E2
# the two rules seed by seed (paired: the same round 0), as the median over 3 seeds at `ci` of
# KL(random) − KL($\alpha_\text{post}$) (> 0) and of HPD-mass($\alpha_\text{post}$) −
# HPD-mass(random) (≥ 0.05); at `full` a two-sided Wilcoxon test on the KL over 10 seeds. Their
# control puts each seed's round-0 emulator (20 prior simulations, untrained beyond round 0)
# in the place of the final $\alpha_\text{post}$ emulator. **E3** divides the fraction of
# $\alpha_\text{post}$'s acquisitions inside the 95 % HPD region by that of a random choice
# from the same candidates (≥ 1.3); **E4** is Spearman's ρ over the cells inside the 99 % HPD
# region (≥ 0.3). At `ci` the emulators are trained briefly (at most 200 + 6 × 60 steps); the
# `full` profile trains about ten times longer. At `full`, **E1b** takes the same control as E1;
# **E2b**'s control exchanges the labels α_post and random of each seed at random (a coin flip
# per seed), labels that carry no information about which rule gave the better posterior.


# %%
def median_diff(a, b):
    """Median over seeds of a[s] − b[s]."""
    return float(np.median([a[s] - b[s] for s in seeds]))


kl_post = {s: kl_final["post", s] for s in seeds}
kl_prior = {s: kl_final["prior", s] for s in seeds}
hpd_post = {s: hpd_final["post", s] for s in seeds}
hpd_prior = {s: hpd_final["prior", s] for s in seeds}
abc_small, abc_large = cfg.abc_sims[0], cfg.abc_sims[-1]
emu_kl, emu_hpd = (
    float(np.median(list(kl_post.values()))),
    float(np.median(list(hpd_post.values()))),
)
r0_kl, r0_hpd = (
    float(np.median(list(kl_round0.values()))),
    float(np.median(list(hpd_round0.values()))),
)

if (
    rt.profile == "full"
):  # E2b's control: the labels α_post / random exchanged by a coin flip per seed
    flip = 2 * torch.randint(0, 2, (len(seeds),), generator=rt.generator(95)).numpy() - 1
    e2b_control = float(wilcoxon(flip * np.array([kl_prior[s] - kl_post[s] for s in seeds])).pvalue)
res = ChapterResults(
    "emulators",
    rt,
    require_controls=True,
    expected_not_reproduced=("E1", "E2-hpd", "E4") if rt.profile == "ci" else (),
)
res.add(
    Claim(
        "E1",
        f"two moons: KL(ABC, {abc_small} sims) − "
        f"KL(emulator α_post, {BUDGET} sims, median over seeds), nats",
        paper="emulators beat ABC (abstract)",
        op=">=",
        threshold=0.0,
        measured=abc_kl[abc_small] - emu_kl,
        control=abc_kl[abc_small] - r0_kl,
        control_label=f"round-0 emulator ({cfg.n_initial} prior sims) in place of the final one",
    )
)
res.add(
    Claim(
        "E1-hpd",
        f"two moons: HPD-95 mass(emulator α_post, {BUDGET} sims, median) − "
        f"HPD-95 mass(ABC, {abc_small} sims)",
        paper="emulators beat ABC (abstract)",
        op=">=",
        threshold=0.05,
        measured=emu_hpd - abc_mass[abc_small],
        control=r0_hpd - abc_mass[abc_small],
        control_label=f"round-0 emulator ({cfg.n_initial} prior sims) in place of the final one",
    )
)
res.add(
    Claim(
        "E1b",
        f"two moons: KL(ABC, {abc_large} sims) − KL(emulator, {BUDGET} sims), nats",
        paper="emulators beat ABC (abstract)",
        op=">=",
        threshold=0.0,
        profiles=("full",),
        measured=abc_kl[abc_large] - emu_kl if rt.profile == "full" else None,
        control=abc_kl[abc_large] - r0_kl if rt.profile == "full" else None,
        control_label=f"round-0 emulator ({cfg.n_initial} prior sims) in place of the final one",
    )
)
res.add(
    Claim(
        "E2",
        f"median over {cfg.seeds} seeds of KL(random) − KL(α_post), {BUDGET} sims each, nats",
        paper="active beats random (abstract)",
        op=">=",
        threshold=0.0,
        measured=median_diff(kl_prior, kl_post),
        control=median_diff(kl_prior, kl_round0),
        control_label="each seed's round-0 emulator in place of α_post",
    )
)
res.add(
    Claim(
        "E2-hpd",
        f"median over {cfg.seeds} seeds of HPD-95 mass(α_post) − HPD-95 mass(random)",
        paper="active beats random (abstract)",
        op=">=",
        threshold=0.05,
        measured=median_diff(hpd_post, hpd_prior),
        control=median_diff(hpd_round0, hpd_prior),
        control_label="each seed's round-0 emulator in place of α_post",
    )
)
res.add(
    Claim(
        "E2b",
        "two-sided Wilcoxon p-value, KL(α_post) vs KL(random) over seeds",
        paper="active beats random (abstract)",
        op="<=",
        threshold=0.05,
        profiles=("full",),
        measured=float(wilcoxon([kl_prior[s] - kl_post[s] for s in seeds]).pvalue)
        if rt.profile == "full"
        else None,
        control=e2b_control if rt.profile == "full" else None,
        control_label="labels α_post / random exchanged at random per seed",
    )
)
res.add(
    Claim(
        "E3",
        "fraction of α_post-acquired θ in the 95 % HPD region / "
        "that of a random choice from the same candidates",
        paper="acquisition targets the posterior (abstract)",
        op=">=",
        threshold=1.3,
        measured=frac["post"] / frac_random[0],
        control=frac_random[1] / frac_random[0],
        control_label="a second random choice from the same candidates",
    )
)
res.add(
    Claim(
        "E4",
        "Spearman ρ(ensemble std of log q_m(x_o|θ), |log q̄ − log p|) "
        "on the cells of the 99 % HPD region",
        paper="uncertainty flags error (abstract)",
        op=">=",
        threshold=0.3,
        measured=rho_e4,
        control=rho_e4_control,
        control_label="ensemble std shuffled across the cells",
    )
)
res.add(
    Claim(
        "E5a",
        "HH 2-param: C2ST(emulator, 300 sims vs SNPE-B, 3 × 1000 sims)",
        paper="accurate on a neuron model (abstract)",
        op="<=",
        threshold=0.75,
        profiles=("full",),
        measured=hh.get("c2st"),
        control=hh.get("c2st_round0"),
        control_label=f"round-0 emulator ({cfg.hh['n_initial']} prior sims) "
        "in place of the final one",
    )
)
res.add(
    Claim(
        "E5b",
        "HH 2-param: θ* inside both posteriors' 95 % marginal intervals (1 = yes)",
        paper="accurate on a neuron model (abstract)",
        op=">=",
        threshold=1.0,
        profiles=("full",),
        measured=hh.get("covered"),
        control=hh.get("covered_perturbed"),
        control_label="θ* moved by 10 % of the prior's width in each parameter",
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
def per_seed(a, b, digits):
    """The differences a[s] − b[s], seed by seed, as signed text ("+0.20, −0.13")."""
    return ", ".join(f"{a[s] - b[s]:+.{digits}f}".replace("-", "−") for s in seeds)


hpd_both = [hpd_final[acq, s] for acq in ("post", "prior") for s in seeds]
res.glue(
    emu_kl=emu_kl,
    emu_hpd=emu_hpd,
    r0_kl=r0_kl,
    r0_hpd=r0_hpd,
    abc_kl=float(abc_kl[abc_small]),
    abc_hpd=float(abc_mass[abc_small]),
    e1_gap=abs(float(abc_kl[abc_small]) - r0_kl),
    e2_kl_per_seed=per_seed(kl_prior, kl_post, 2),
    e2_hpd_per_seed=per_seed(hpd_post, hpd_prior, 3),
    hpd_pct_min=100 * float(min(hpd_both)),
    hpd_pct_max=100 * float(max(hpd_both)),
    e3_frac_post=float(frac["post"]),
    e3_frac_random=float(frac_random[0]),
    e3_prior_share=float(frac["post"] / hpd_area),
    e4_cells=len(e4_std),
    c2st_emulator=float(c2st_emulator.value),
    c2st_floor=float(c2st_emulator.floor),
    c2st_jitter=float(c2st_emulator.positive),
    c2st_tells="cannot" if c2st_emulator.blind else "can",
)

# %% [markdown]
# ## What held, what did not, and why
#
# The verdicts and numbers below are this run's (the rules and controls are in the table above).
#
# **Against rejection ABC (E1, E1-hpd).** With 200 simulations the emulator puts a median
# {glue:text}`emu_hpd:.3f` of its samples inside the reference's 95 % HPD region and rejection
# ABC with 2000 puts {glue:text}`abc_hpd:.3f` there: a difference of
# {glue:text}`E1-hpd_ours:.3f` against the 0.05 required, and of
# {glue:text}`E1-hpd_control:.3f` for the round-0 emulators (median {glue:text}`r0_hpd:.3f`) in
# its place (E1-hpd: {glue:text}`E1-hpd_verdict`). By KL the emulator's median is
# {glue:text}`emu_kl:.2f` nats against ABC's {glue:text}`abc_kl:.2f`, and that of the round-0
# emulators, trained on 20 prior simulations only, is {glue:text}`r0_kl:.2f`
# (E1: {glue:text}`E1_verdict`). Keeping the nearest 40 of 2000 simulations gives so poor a
# posterior that the untrained emulators' median KL lies within {glue:text}`e1_gap:.2f` nats of
# ABC's: "better than ABC by KL" does not then reliably separate a trained emulator from an
# untrained one, and E1 is inconclusive whenever the untrained one passes too.
#
# **Active against random acquisition (E2, E2-hpd).** KL(random) − KL($\alpha_\text{post}$)
# has a median of {glue:text}`E2_ours:.2f` nats over three seeds (per seed
# {glue:text}`e2_kl_per_seed`; round-0 control {glue:text}`E2_control:.2f`; E2:
# {glue:text}`E2_verdict`); with three seeds the median is one seed's difference, so the verdict
# rests on that seed. HPD-mass($\alpha_\text{post}$) − HPD-mass(random) has a median of
# {glue:text}`E2-hpd_ours:.3f` (per seed {glue:text}`e2_hpd_per_seed`) against the 0.05
# required (E2-hpd: {glue:text}`E2-hpd_verdict`): at `ci` (at most 560 gradient steps per
# member) neither rule resolves the thin crescents, and both rules' posteriors keep only
# {glue:text}`hpd_pct_min:.0f`–{glue:text}`hpd_pct_max:.0f` % of their samples inside the HPD
# region.
#
# **Where the acquisitions go (E3).** $\alpha_\text{post}$'s acquisitions fall inside the HPD
# region {glue:text}`E3_ours:.2f` times as often as a random choice from the same candidates
# ({glue:text}`e3_frac_post:.2f` against {glue:text}`e3_frac_random:.2f`;
# {glue:text}`e3_prior_share:.0f` times the prior share), where a second random choice scores
# {glue:text}`E3_control:.2f` (E3: {glue:text}`E3_verdict`).
#
# **Disagreement and error (E4).** Inside the reference's 99 % HPD region Spearman's ρ between
# the members' disagreement and the error of the emulated log likelihood is
# {glue:text}`E4_ours:.2f` over {glue:text}`e4_cells` cells against the 0.3 required, and
# {glue:text}`E4_control:.2f` with the disagreement shuffled across the cells (E4:
# {glue:text}`E4_verdict`). This ρ moves with floating-point rounding: on CPUs whose math
# libraries take other code paths it came out near zero, so we do not count E4 as robust
# either way. Over the whole prior box, as an earlier version measured it, ρ is driven by the
# far regions where there are no simulations and both the error and the disagreement are
# large, which says nothing about the posterior.
#
# At 1000 against 1000 samples the C2ST {glue:text}`c2st_tells` tell the jittered reference
# from the reference ({glue:text}`c2st_jitter:.3f`, against a floor of
# {glue:text}`c2st_floor:.3f`) and scores the seed-0 emulator {glue:text}`c2st_emulator:.3f`;
# where it cannot, it could not have shown any of this. The
# `full` profile (10 seeds, about ten times longer training) tests E1b, E2b and E5, each
# against a control: E1b, like E1, against the round-0 emulator in place of the final one;
# E2b against the same Wilcoxon test with the labels α_post and random exchanged at random
# per seed; E5a against the C2ST of the round-0 HH emulator (60 prior simulations); E5b
# against the coverage of $\theta^*$ moved by 10 % of the prior's width in each parameter.
