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
# # Sequential neural posterior estimation for a Hodgkin-Huxley neuron (SNPE-B)
#
# **Paper.** J.-M. Lueckmann, P. J. Gonçalves, G. Bassetto, K. Öcal, M. Nonnenmacher,
# J. H. Macke, *Flexible statistical inference for mechanistic models of neural dynamics*,
# NIPS 2017 ([arXiv:1711.01861](https://arxiv.org/abs/1711.01861)).
#
# A mechanistic neuron model can be simulated but its likelihood $p(x\mid\theta)$ is
# intractable. The paper trains a **mixture density network** (MDN) $q_\phi(\theta\mid x)$ on
# simulated pairs $(\theta_n, x_n)$ and refines it over rounds: round $r$ draws $\theta$ from
# the current posterior estimate (a *proposal* $\tilde p_r$), and the loss weights every pair
# by $w_n = p(\theta_n)/\tilde p_r(\theta_n)$,
#
# $$L(\phi) = -\frac1N\sum_n w_n \log q_\phi(\theta_n\mid x_n) + \frac1N\,\mathrm{KL},$$
#
# so that, unlike the earlier Gaussian-division method, any proposal and any posterior shape
# are allowed. The MDN is Bayesian (SVI weights; the KL term keeps them near the prior in
# round 1 and near the previous round's weights afterwards: *continual learning*), can impute
# missing features with learned values, and simulator failures can be predicted by a
# classifier and avoided.
#
# **What the chapter checks** (claims C1–C6, from the paper's sections 2–4 and Figs. 2–5):
# importance weights are needed (C1), several rounds beat one round at the same budget (C2),
# the posterior predictive matches the observation (C3), a failure classifier reduces failed
# simulations (C4), missing features are handled by imputation (C5) and, at the full profile
# only, a GRU learns summary features from raw traces (C6). Every claim is judged twice by the
# same rule: on our number and on a *control*, a deliberately wrong answer of the same kind
# (the unweighted estimator, the prior as posterior, a posterior narrowed tenfold, SNPE-B
# stopped after one round, resampling without the classifier, an imputation vector never
# trained). A claim whose control passes too is *inconclusive*, never *held*.
#
# **Figures redrawn.** HH traces and input (paper Fig. 3a), posterior marginals per round
# (Fig. 3), the importance-weighting toy (Fig. 2 in spirit: true posterior vs SNPE-B vs the
# unweighted estimate), and the autapse failure experiment (Fig. 4).
#
# Settings follow the paper's reference code (delfi, `SNPEB`) where the paper is silent; the
# code is the book's own (`neuroinverse.simulators.hodgkin_huxley`, `.autapse`,
# `neuroinverse.models.mdn`, `neuroinverse.inference.snpe`).

# %% tags=["parameters"]
profile = "ci"
seed = 0
device = "auto"

# %% [markdown]
# Every size comes from the profile. `ci` uses the 2-parameter HH model (ḡ_Na, ḡ_K) with the
# 7 delfi features at dt = 0.025 ms; `full` uses the paper's 12-parameter model with a
# log-uniform prior and the 20 "moments" features at dt = 0.01 ms on a GPU.

# %%
import functools

import numpy as np
import torch

from neuroinverse import plotting
from neuroinverse.inference import SNPEB, marginal_summary, rejection_abc
from neuroinverse.models import MDN, GRUEmbedding
from neuroinverse.results import ChapterResults, Claim
from neuroinverse.runtime import background, setup, timed
from neuroinverse.simulators import (
    AUTAPSE_PRIOR,
    AUTAPSE_THETA_STAR,
    FEATURE_SETS,
    AutapseSimulator,
    HHSimulator,
    feature_report,
    gaussian_linear,
    gaussian_linear_posterior,
    gaussian_linear_prior,
    hh_model,
    pilot_zscore,
)

rt = setup(profile=profile, seed=seed, device=device)
cfg = rt.select(
    ci=dict(
        model="2param",
        features="7",
        dt=0.025,
        n_pilot=200,
        n_rounds=3,
        n_sims=300,
        n_single=900,
        hidden=(20, 20),
        epochs=100,
        n_predictive=20,
        n_abc=900,
        prior_mixin=0.1,
        toy_seeds=3,
        toy_sims=1000,
        toy_epochs=100,
        toy_batch=200,
        toy_lr=2e-3,
        c1_std_range=(0.8, 1.25),
        aut_rounds=5,
        aut_sims=200,
        aut_dt=0.05,
        aut_pilot=200,
        aut_epochs=50,
        c5_sims=500,
        c5_epochs=100,
        c6_sims=200,
        c6_epochs=25,
        c6_durations=(60.0, 240.0),
        c2_inside_min=2,
    ),
    full=dict(
        model="12param",
        features="moments",
        dt=0.01,
        n_pilot=1000,
        n_rounds=5,
        n_sims=2000,
        n_single=10000,
        hidden=(50,),
        epochs=100,
        n_predictive=20,
        n_abc=10000,
        prior_mixin=0.1,
        toy_seeds=20,
        toy_sims=1000,
        toy_epochs=100,
        toy_batch=50,
        toy_lr=1e-3,
        c1_std_range=(0.9, 1.1),
        aut_rounds=10,
        aut_sims=2000,
        aut_dt=0.01,
        aut_pilot=1000,
        aut_epochs=100,
        c5_sims=2000,
        c5_epochs=100,
        c6_sims=1000,
        c6_epochs=125,
        c6_durations=(60.0, 240.0),
        c2_inside_min=10,
    ),
)
plotting.apply_style()
dev = rt.device
model = hh_model(cfg.model)
prior = model.prior
print(
    f"profile={rt.profile} device={dev} threads={rt.threads}; HH model {model.name}: "
    f"{model.dim} parameters {model.names}; features {cfg.features!r}"
)


# %% [markdown]
# The conjugate toy of claim C1 (all seeds but the first) and the autapse runs of claim C4
# (both below) share nothing with the Hodgkin-Huxley fits, so they train in a background
# process on the second core while those run (`neuroinverse.runtime.background`: one thread
# and explicit seeds, so the numbers are exactly those of a run in this kernel); their
# sections collect the results and
# explain them.

# %%
toy_prior = gaussian_linear_prior(1, prior_var=4.0)
toy_sim = functools.partial(gaussian_linear, noise_var=1.0)
toy_xo = torch.tensor([1.5])


def toy_pair(s):
    """One seed of claim C1: round 1 from the prior, then round 2 with and without the weights,
    each with the continual-learning KL (delfi) and with the KL to the zero-mean weight prior."""
    torch.manual_seed(rt.seed + s)
    q = MDN(1, 1, n_components=2, hidden=(20,)).to(dev)
    gen = rt.generator(100 + s)
    first = SNPEB(
        toy_prior,
        toy_sim,
        toy_xo,
        q,
        prior_mixin=cfg.prior_mixin,
        epochs=cfg.toy_epochs,
        batch_size=cfg.toy_batch,
        lr=cfg.toy_lr,
        seed=rt.seed + s,
        progress=False,
    )
    first.run_round(cfg.toy_sims, generator=gen)
    arms = {
        (w, cl): first.clone(importance_weighting=w, continual_learning=cl)
        for cl in (True, False)
        for w in (True, False)
    }
    for run in arms.values():
        run.run_round(cfg.toy_sims, generator=gen)
    return arms


def autapse_runs():
    """Claim C4: SNPE-B on the autapse model, resampling failures with and without the
    classifier."""
    aut_raw = AutapseSimulator(dt=cfg.aut_dt, device=dev)
    aut_z = pilot_zscore(aut_raw, AUTAPSE_PRIOR, cfg.aut_pilot, generator=rt.generator(40))
    aut_sim = AutapseSimulator(dt=cfg.aut_dt, device=dev, zscore=aut_z)
    aut_xo = aut_sim(AUTAPSE_THETA_STAR[None], generator=rt.generator(41))[0][0]
    runs = {}
    for mode in ("resample", "classifier"):
        torch.manual_seed(rt.seed)
        runs[mode] = SNPEB(
            AUTAPSE_PRIOR,
            aut_sim,
            aut_xo,
            MDN(2, aut_sim.x_dim, hidden=cfg.hidden).to(dev),
            prior_mixin=cfg.prior_mixin,
            failures=mode,
            classifier_degree=2,
            epochs=cfg.aut_epochs,
            seed=rt.seed,
        )
        runs[mode].run(cfg.aut_rounds, cfg.aut_sims, generator=rt.generator(42))
    return aut_sim, runs


on_cpu = dev.type == "cpu"  # on a GPU both run in this kernel, in their sections
# the first toy seed runs in this kernel (in its section), which balances the two cores
toy_jobs = [background(toy_pair, s) for s in range(1, cfg.toy_seeds)] if on_cpu else None
aut_job = background(autapse_runs) if on_cpu else None

# %% [markdown]
# ## The simulator and the observation
#
# A single-compartment neuron with Pospischil et al. (2008) kinetics: Na⁺, delayed-rectifier
# K⁺, leak and a slow M-type K⁺ current, white current noise, and a 0.5 nA step into a soma of
# radius 70 µm from 10 to 110 ms, integrated by exponential Euler. The features are z-scored
# with the mean and standard deviation (ddof 1) of a pilot run of prior simulations (failed
# pilot runs are redrawn). The observation $x_o$ is one noisy simulation at θ*.

# %%
raw_sim = HHSimulator(model, features=cfg.features, dt=cfg.dt, device=dev)
(pilot_mean, pilot_std), t_pilot = timed(
    lambda: pilot_zscore(raw_sim, prior, cfg.n_pilot, generator=rt.generator(1))
)
sim = HHSimulator(
    model, features=cfg.features, dt=cfg.dt, device=dev, zscore=(pilot_mean, pilot_std)
)
x_o = sim(model.theta_star[None], generator=rt.generator(2))[0][0]
obs_traces = sim.traces(model.theta_star[None], generator=rt.generator(2))
prior_theta = prior.sample(3, generator=rt.generator(3))
prior_traces = sim.traces(prior_theta, generator=rt.generator(4))
print(f"pilot: {cfg.n_pilot} simulations in {t_pilot:.1f} s")
print("x_o (z-scored):", np.round(x_o.numpy(), 2).tolist())
print("3 prior draws:", np.round(model.natural(prior_theta).numpy(), 2).tolist())

# %% [markdown]
# ## Traces
#
# {numref}`fig-snpe-hh-traces` shows the data: the observed trace and traces from the prior.

# %% tags=["remove-output"]
t_ms = obs_traces.t.numpy()
fig, ax = plotting.figure(
    2, 1, width=7, height=4.4, sharex=True, gridspec_kw=dict(height_ratios=[4, 1])
)
ax[0, 0].plot(
    t_ms, obs_traces.voltage[0].cpu(), color=plotting.COLORS["truth"], lw=0.9, label="observed (θ*)"
)
for i, c in enumerate(["#1f77b4", "#2ca02c", "#9467bd"]):
    ax[0, 0].plot(
        t_ms,
        prior_traces.voltage[i].cpu() - 130 * (i + 1),
        color=c,
        lw=0.7,
        label=f"prior draw {i + 1} (offset −{130 * (i + 1)} mV)",
    )
ax[0, 0].set_ylabel("membrane potential (mV)")
ax[0, 0].set_ylim(None, ax[0, 0].get_ylim()[1] + 110)  # room for the legend above the traces
ax[0, 0].legend(loc="upper center", ncol=2, fontsize=7)
ax[1, 0].plot(t_ms, obs_traces.current.cpu(), color=plotting.COLORS["data"])
ax[1, 0].set_ylabel("I (µA/cm²)")
ax[1, 0].set_xlabel("time (ms)")
plotting.save(fig, "snpe-hh", "fig1_traces")

# %% [markdown]
# ```{glue:figure} fig1_traces
# ---
# name: fig-snpe-hh-traces
# alt: >-
#   Two stacked panels against time in ms. Top: membrane potential of the observed trace and of
#   three prior draws, each offset downwards by 130 mV more. Bottom: the injected current step.
# ---
# The observed trace at θ* and three traces from prior draws (offset for legibility), with the
# injected current below. Draws from the prior behave unlike the observation; the posterior
# must single out parameters that reproduce its regular spiking.
# ```

# %% [markdown]
# ## SNPE-B on the HH neuron, and the single-round baseline (claim C2)
#
# SNPE-B as in delfi: the MDN (tanh layers, K = 2 full-covariance components, SVI weights) is
# re-used across rounds and trained on each round's data only; proposals are the posterior
# at $x_o$ turned into a Student-t mixture with 3 degrees of freedom, mixed *defensively* with
# the prior, $\tilde p = \alpha\,p(\theta) + (1-\alpha)\,q$ with α = 0.1 (delfi's prior
# mix-in), and drawn inside the prior box. The weights $p/\tilde p$ are then at most
# $1/\alpha = 10$ before they are normalised to mean 1 per round, so a few draws in the
# proposal's tails cannot carry a whole round.
#
# The baseline spends the same simulation budget in one round from the prior, **and the same
# compute**: every round trains 100 epochs in minibatches of 50, so SNPE-B takes
# 3 × 6 × 100 = 1800 gradient steps and the single round 18 × 100 = 1800 (printed below, from
# the training histories). Rejection ABC with the same budget is shown in the C3 section.


# %%
def new_mdn(d_x, **kw):
    return MDN(model.dim, d_x, n_components=2, hidden=cfg.hidden, bayesian=True, **kw).to(dev)


torch.manual_seed(rt.seed)
multi = SNPEB(
    prior,
    sim,
    x_o,
    new_mdn(sim.x_dim),
    prior_mixin=cfg.prior_mixin,
    epochs=cfg.epochs,
    seed=rt.seed,
)
_, t_multi = timed(lambda: multi.run(cfg.n_rounds, cfg.n_sims, generator=rt.generator(10)))
torch.manual_seed(rt.seed)
single = SNPEB(prior, sim, x_o, new_mdn(sim.x_dim), epochs=cfg.epochs, seed=rt.seed)
_, t_single = timed(lambda: single.run(1, cfg.n_single, generator=rt.generator(11)))

post = {
    "SNPE-B": multi.posterior_samples(10000, generator=rt.generator(21)),
    "single round": single.posterior_samples(10000, generator=rt.generator(22)),
}
summ = {k: marginal_summary(v) for k, v in post.items()}
prior_sd = prior.std.double()
star = model.theta_star.double()


def width(s):
    """Mean over parameters of posterior sd / prior sd."""
    return float((s["std"] / prior_sd).mean())


def n_inside(s):
    """Parameters whose θ* lies inside the central 95 % marginal interval."""
    return int(((s["low"] <= star) & (star <= s["high"])).sum())


round_samples = [
    r.posterior.sample(8000, generator=rt.generator(23 + i)).float()
    for i, r in enumerate(multi.rounds)
]
round_samples = [smp[prior.contains(smp)] for smp in round_samples]
round_width = [width(marginal_summary(smp)) for smp in round_samples]
steps = {
    "SNPE-B": sum(len(r.history.loss) for r in multi.rounds),
    "single round": len(single.rounds[0].history.loss),
}
print(f"{'method':14s} {'gradient steps':>14s} {'mean sd/prior sd':>17s} {'θ* inside 95%':>14s}")
for k, s in summ.items():
    print(f"{k:14s} {steps[k]:14d} {width(s):17.4f} {n_inside(s):>10d}/{model.dim}")
for r, w in zip(multi.rounds, round_width, strict=True):
    print(
        f"SNPE-B after round {r.round}: mean sd/prior sd {w:.4f}; {r.n_simulated} simulations, "
        f"{len(r.history.loss)} steps, effective sample size {r.ess:.1f} of {r.theta.shape[0]}, "
        f"largest normalised weight {float(r.weights.max()):.2f}"
    )

# %% [markdown]
# The effective sample size $(\sum w)^2/\sum w^2$ of every round is printed above. Without the
# prior mix-in (α = 0) the first version of this chapter had single-digit effective sample
# sizes (of 300) in rounds 2 and 3: the Student-t proposal is much narrower than the prior box,
# so the few draws in its tails carried nearly all the weight. With α = 0.1 no weight exceeds
# 1/α times the round's mean raw weight.

# %% [markdown]
# ## Posterior marginals per round
#
# {numref}`fig-snpe-hh-marginals` shows how the posterior changes from round to round.

# %% tags=["remove-output"]
names = model.names
ncol = min(model.dim, 4)
nrow = int(np.ceil(model.dim / ncol))
fig, ax = plotting.figure(nrow, ncol, width=min(7, 2.3 * ncol), height=2.2 * nrow)
cmap = plotting.plt.get_cmap("Reds")
for j in range(model.dim):
    a = ax[j // ncol, j % ncol]
    lo, hi = float(prior.low[j]), float(prior.high[j])
    bins = np.linspace(lo, hi, 80)
    for r, smp in enumerate(round_samples):
        a.hist(
            smp[:, j].numpy(),
            bins=bins,
            density=True,
            histtype="step",
            color=cmap(0.35 + 0.65 * (r + 1) / len(round_samples)),
            label=f"after round {r + 1}",
        )
    a.hist(
        post["single round"][:, j].numpy(),
        bins=bins,
        density=True,
        histtype="step",
        ls="--",
        color=plotting.COLORS["baseline"],
        label="single round",
    )
    a.axvline(float(star[j]), color=plotting.COLORS["truth"], lw=1)
    a.set_xlim(lo, hi)
    a.set_xlabel(names[j] + (" (log)" if model.log_space else ""))
    a.set_ylabel("density")
for j in range(model.dim, nrow * ncol):
    ax[j // ncol, j % ncol].axis("off")
ax[0, 0].legend(fontsize=7)
plotting.save(fig, "snpe-hh", "fig2_marginals")

# %% [markdown]
# ```{glue:figure} fig2_marginals
# ---
# name: fig-snpe-hh-marginals
# alt: >-
#   One panel per parameter: step histograms of posterior density against the parameter value
#   after each SNPE-B round (shades of red) and for the single-round posterior (dashed blue),
#   with a black vertical line at the true value; the axis spans the prior range.
# ---
# Marginals of $q(\theta\mid x_o)$ after each round of SNPE-B (draws inside the prior box), the
# single-round posterior, θ* (black) and the prior range as the axis limits. The mean marginal
# sd relative to the prior's is {glue:text}`width_round1:.3f`, {glue:text}`width_round2:.3f` and
# {glue:text}`width_round3:.3f` after rounds 1–3, and {glue:text}`width_single:.3f` for the
# single round.
# ```

# %% [markdown]
# ## Posterior predictive check (claim C3)
#
# Twenty posterior and twenty prior draws are simulated; we compare the median Euclidean
# distance of their (pilot-z-scored) features to $x_o$. Twenty simulations at θ* itself give
# the floor $d_{\theta^*}$ of this distance: the observation is one noisy simulation, and two
# of the seven features (resting mean and resting sd before the stimulus) do not depend on
# (ḡ_Na, ḡ_K), so even the exact posterior cannot bring the distance below that floor. The
# claim is judged on the floor-normalised ratio
# $(d_\text{post} - d_{\theta^*}) / (d_\text{prior} - d_{\theta^*}) \le 0.5$; the raw ratio
# $d_\text{post}/d_\text{prior}$ is printed too. The control is the prior taken as the
# posterior: twenty further prior draws, judged by the same rule.
#
# Rejection ABC spends the single round's budget (900 prior simulations, closest 5 % kept) on
# the same Euclidean distance, but on features divided by their noise sd at θ* (the 20
# simulations above) so that the θ-independent noise features do not dominate it; the spike
# count, which does not vary at θ*, gets the smallest non-zero noise sd of the other features
# (the book's choice).

# %%
n_pp = cfg.n_predictive
x_post = sim(multi.posterior_samples(n_pp, generator=rt.generator(30)), generator=rt.generator(31))[
    0
]
x_prior = sim(prior.sample(n_pp, generator=rt.generator(32)), generator=rt.generator(33))[0]
x_star = sim(model.theta_star.repeat(n_pp, 1), generator=rt.generator(34))[0]
x_prior2 = sim(prior.sample(n_pp, generator=rt.generator(37)), generator=rt.generator(38))[0]
dist = {
    k: float(torch.nan_to_num((x - x_o).norm(dim=1), nan=np.inf).median())
    for k, x in [
        ("posterior", x_post),
        ("prior", x_prior),
        ("θ*", x_star),
        ("prior (control)", x_prior2),
    ]
}
c3_ratio = (dist["posterior"] - dist["θ*"]) / (dist["prior"] - dist["θ*"])
c3_control = (dist["prior (control)"] - dist["θ*"]) / (dist["prior"] - dist["θ*"])
c3_raw = dist["posterior"] / dist["prior"]
print("median distance to x_o:", {k: round(v, 3) for k, v in dist.items()})
print(
    f"floor-normalised ratio {c3_ratio:.3f} (prior as posterior: {c3_control:.3f}); "
    f"raw ratio {c3_raw:.3f}"
)
print(
    "median |z-difference| per feature, posterior draws:",
    np.round((x_post - x_o).abs().median(0).values.numpy(), 2).tolist(),
)
print(
    "                                   prior draws:    ",
    np.round((x_prior - x_o).abs().median(0).values.numpy(), 2).tolist(),
)
print(
    "                                   θ* draws:       ",
    np.round((x_star - x_o).abs().median(0).values.numpy(), 2).tolist(),
)

noise_sd = x_star.std(0)
noise_sd = torch.where(noise_sd > 0, noise_sd, noise_sd[noise_sd > 0].min())
abc_sim = HHSimulator(
    model,
    features=cfg.features,
    dt=cfg.dt,
    device=dev,
    zscore=(pilot_mean, pilot_std),
    return_bad=False,
)
abc = rejection_abc(
    prior,
    lambda th, generator=None: abc_sim(th, generator=generator) / noise_sd,
    x_o / noise_sd,
    n_simulations=cfg.n_abc,
    quantile=0.05,
    generator=rt.generator(12),
    z_score=False,
)
summ["rejection ABC"] = marginal_summary(abc.theta)
print("noise sd at θ* (pilot z units):", np.round(noise_sd.numpy(), 4).tolist())
print(
    f"rejection ABC ({cfg.n_abc} simulations, closest 5 %): "
    f"mean sd/prior sd {width(summ['rejection ABC']):.4f}, "
    f"θ* inside 95 % for {n_inside(summ['rejection ABC'])}/{model.dim}"
)

# %% [markdown]
# ## Traces from posterior draws
#
# {numref}`fig-snpe-hh-posterior-traces` simulates draws from the SNPE-B posterior.

# %% tags=["remove-output"]
pp_theta = multi.posterior_samples(3, generator=rt.generator(35))
pp_traces = sim.traces(pp_theta, generator=rt.generator(36))
fig, ax = plotting.figure(1, 1, width=7, height=3.8)
ax[0, 0].plot(
    t_ms, obs_traces.voltage[0].cpu(), color=plotting.COLORS["truth"], lw=0.9, label="observed (θ*)"
)
for i, c in enumerate(["#d62728", "#ff7f0e", "#8c564b"]):
    ax[0, 0].plot(
        t_ms,
        pp_traces.voltage[i].cpu() - 130 * (i + 1),
        color=c,
        lw=0.7,
        label=f"posterior draw {i + 1} (offset −{130 * (i + 1)} mV)",
    )
ax[0, 0].set_xlabel("time (ms)")
ax[0, 0].set_ylabel("membrane potential (mV)")
ax[0, 0].set_ylim(None, ax[0, 0].get_ylim()[1] + 110)  # room for the legend above the traces
ax[0, 0].legend(loc="upper center", ncol=2, fontsize=7)
plotting.save(fig, "snpe-hh", "fig2b_posterior_traces")

# %% [markdown]
# ```{glue:figure} fig2b_posterior_traces
# ---
# name: fig-snpe-hh-posterior-traces
# alt: >-
#   Membrane potential against time in ms: the observed trace and three traces simulated from
#   posterior draws, each offset downwards by 130 mV more.
# ---
# The observed trace and the traces of three draws from the SNPE-B posterior (new noise), offset
# for legibility, over the same stimulus as {numref}`fig-snpe-hh-traces`. Claim C3 below compares
# their features with the observation's.
# ```

# %%
print("posterior draws (natural units):", np.round(model.natural(pp_theta).numpy(), 2).tolist())

# %% [markdown]
# ## Missing features (claim C5)
#
# The hand-crafted features (firing rate, first-spike latency, spike overshoot, resting
# potential, AHP depth, accommodation index, spike width) are undefined (NaN) when a
# draw spikes too little. The MDN replaces NaN entries of the z-scored input by a learned
# vector (initialised N(0, 0.01²)); one round from the prior.

# %%
hc_raw = HHSimulator(model, features="handcrafted", dt=cfg.dt, device=dev)
hc_z = pilot_zscore(hc_raw, prior, cfg.n_pilot, generator=rt.generator(50))
hc_sim = HHSimulator(model, features="handcrafted", dt=cfg.dt, device=dev, zscore=hc_z)
hc_xo = hc_sim(model.theta_star[None], generator=rt.generator(2))[0][0]
torch.manual_seed(rt.seed)
hc_q = new_mdn(hc_sim.x_dim, impute=True)
imputed_init = (
    hc_q.impute_values.detach().cpu().clone()
)  # C5b's control: the imputation before training
hc_run = SNPEB(prior, hc_sim, hc_xo, hc_q, epochs=cfg.c5_epochs, seed=rt.seed)
hc_run.run(1, cfg.c5_sims, generator=rt.generator(51))
hc_x = hc_run.rounds[0].x
missing = torch.isnan(hc_x).any(0)
print(feature_report(hc_x, torch.zeros(hc_x.shape[0], dtype=torch.bool)))
hc_summ = marginal_summary(hc_run.posterior_samples(10000, generator=rt.generator(52)))
hc_dev = (hc_summ["mean"] - star).abs() / hc_summ["std"]
imputed = hc_run.density.impute_values.detach().cpu()
print("training loss finite in every step:", bool(np.isfinite(hc_run.rounds[0].history.loss).all()))
print("|posterior mean − θ*| / posterior sd:", np.round(hc_dev.numpy(), 2).tolist())
print(
    "learned imputation values (z units):",
    {
        n: round(float(v), 3)
        for n, v, m in zip(FEATURE_SETS["handcrafted"], imputed, missing, strict=True)
        if m
    },
)

# %% [markdown]
# ## Importance weights are needed (claim C1)
#
# The conjugate toy θ ~ N(0, 2²), x | θ ~ N(θ, 1), $x_o$ = 1.5 has the posterior
# N(1.2, 0.8). After a shared first round from the prior, round 2 proposes from the round-1
# posterior (Student-t, mixed with 10 % prior) and trains once with and once without the
# weights. Without them the network learns $p(\theta\mid x)\,\tilde p(\theta)/p(\theta)$,
# which is too narrow. At the ci profile each toy round trains 100 epochs in minibatches of
# 200 (500 steps) to keep C1 within a few seconds per seed; the full profile uses minibatches of 50.
#
# These claims test something only if round 2 actually changes the estimate. The delfi
# network is re-used, and its KL term pulls the weights towards the previous round's weight
# posterior (*continual learning*), whose standard deviations start at e⁻⁵: that can pin the
# network where round 1 left it. The book therefore requires (C1d) that the unweighted arm
# moves its std ratio by at least 0.1 from the round-1 estimate; the weighted arm, whose target
# does not change between rounds, is C1d's control. Beside it runs the same round 2 with the
# KL to the zero-mean weight prior of round 1 instead (no continual learning; C1e, C1f; a
# variant of the book, not of the paper).

# %%
toy_mean, toy_cov = gaussian_linear_posterior(toy_xo, prior_var=4.0, noise_var=1.0)
toy_sd = float(toy_cov[0, 0].sqrt())
toy_runs = [toy_pair(0)] + (
    [job.result() for job in toy_jobs] if on_cpu else [toy_pair(s) for s in range(1, cfg.toy_seeds)]
)
toy_arms = {
    "weighted": (True, True),
    "unweighted": (False, True),
    "weighted, no CL": (True, False),
    "unweighted, no CL": (False, False),
}
toy_stats = {
    k: np.array([[float(v) for v in runs[key].density.moments(toy_xo)] for runs in toy_runs])
    for k, key in toy_arms.items()
}
toy_ratio = {k: np.sqrt(v[:, 1]) / toy_sd for k, v in toy_stats.items()}
toy_err = {k: np.abs(v[:, 0] - float(toy_mean[0])) / toy_sd for k, v in toy_stats.items()}


def mixture_sd(mix):
    """Standard deviation of a 1-D Gaussian mixture (a round's recorded q(θ | x_o))."""
    w, m, v = mix.weights, mix.means[:, 0], mix.scales[:, 0, 0]
    return float(torch.sqrt((w * (v + m * m)).sum() - (w * m).sum() ** 2))


toy_r1 = (
    np.array([mixture_sd(runs[(True, True)].rounds[0].posterior) for runs in toy_runs]) / toy_sd
)
toy_move = {k: np.abs(v - toy_r1) for k, v in toy_ratio.items()}
toy_ess = {
    k: [round(runs[key].rounds[1].ess, 1) for runs in toy_runs] for k, key in toy_arms.items()
}
print("std ratio after round 1 (shared) per seed:", np.round(toy_r1, 3).tolist())
print(
    f"{'round 2 arm':18s} {'std ratio per seed':>26s} {'|mean error|/sd':>22s} "
    f"{'move from round 1':>22s}  ESS of 1000"
)
for k in toy_arms:
    print(
        f"{k:18s} {str(np.round(toy_ratio[k], 3).tolist()):>26s} "
        f"{str(np.round(toy_err[k], 3).tolist()):>22s} "
        f"{str(np.round(toy_move[k], 3).tolist()):>22s}  {toy_ess[k]}"
    )

# %% [markdown]
# ## The toy posterior after round 2
#
# {numref}`fig-snpe-hh-toy` compares the round-2 estimates of the toy posterior with the truth.

# %% tags=["remove-output"]
grid = torch.linspace(-2.5, 5.0, 600)[:, None]
fig, ax = plotting.figure(1, 1, width=5.5, height=3.2)
a = ax[0, 0]
a.plot(
    grid,
    torch.exp(-0.5 * ((grid - toy_mean) / toy_sd) ** 2) / (toy_sd * np.sqrt(2 * np.pi)),
    color=plotting.COLORS["truth"],
    lw=2,
    label="true posterior",
)
for key, name, col, ls in [
    ((True, True), "SNPE-B (weighted)", plotting.COLORS["method"], "-"),
    ((False, True), "unweighted", plotting.COLORS["baseline"], "-"),
    ((True, False), "weighted, no CL", plotting.COLORS["method"], "--"),
    ((False, False), "unweighted, no CL", plotting.COLORS["baseline"], "--"),
]:
    with torch.no_grad():
        a.plot(
            grid,
            toy_runs[0][key].density.log_prob(grid.to(dev), toy_xo.to(dev)).exp().cpu(),
            color=col,
            ls=ls,
            label=name,
        )
a.set_xlabel("θ")
a.set_ylabel("density p(θ | x_o = 1.5)")
a.legend()
plotting.save(fig, "snpe-hh", "fig3_toy")

# %% [markdown]
# ```{glue:figure} fig3_toy
# ---
# name: fig-snpe-hh-toy
# alt: >-
#   Density against θ: the true Gaussian posterior as a thick black line and four round-2
#   estimates, weighted and unweighted, each with and without the continual-learning KL.
# ---
# The toy's round-2 posterior, first seed; solid: with the continual-learning KL (delfi),
# dashed: with the KL to the zero-mean weight prior. In theory the importance-weighted
# estimates (orange) match the true posterior and the unweighted ones (blue) are narrower
# (posterior × proposal / prior); the last section discusses why the solid unweighted curve,
# pinned near round 1 by the continual-learning KL, can stay close to the truth.
# ```

# %% [markdown]
# ## Simulator failures: the autapse model (claim C4)
#
# A rate unit with self-excitation J and time constant τ grows at rate (J − 1)/τ and so
# diverges for J > 1 (τ > 0) or τ < 0 (J < 1); a run is bad if |x(T)| > 1000. Both runs
# resample failed simulations; one also fits a logistic regression P(bad | θ) on every θ simulated
# so far and rejects proposals with P(bad) > 0.5.
# The failure region {(J − 1)/τ > 0} is two-sided, which a logistic regression *linear*
# in θ cannot represent; the classifier here uses all monomials of the z-scored θ up to
# degree 2 (still a logistic regression; the paper does not say which features it used).
# The summary features of the autapse runs are the book's choice (the paper does not list
# them). Both runs use the defensive proposal (α = 0.1).

# %%
aut_sim, aut_runs = (
    aut_job.result() if aut_job else autapse_runs()
)  # defined and started at the top
bad_pct = {k: np.array([100 * r.frac_bad for r in v.rounds]) for k, v in aut_runs.items()}
for k, v in bad_pct.items():
    print(
        f"% bad simulations per round, {k:10s}:",
        np.round(v, 1).tolist(),
        "; effective sample sizes:",
        [round(r.ess, 1) for r in aut_runs[k].rounds],
    )

# %% [markdown]
# ## Failed simulations per round and posterior predictive traces
#
# {numref}`fig-snpe-hh-autapse` shows how often the autapse simulations fail, and what the
# posterior predicts.

# %% tags=["remove-output"]
aut_obs = aut_sim.traces(AUTAPSE_THETA_STAR[None], generator=rt.generator(41))
aut_pp = aut_sim.traces(
    aut_runs["classifier"].posterior_samples(3, generator=rt.generator(43)),
    generator=rt.generator(44),
)
fig, ax = plotting.figure(1, 2, width=7, height=3.0)
rounds = np.arange(1, cfg.aut_rounds + 1)
ax[0, 0].plot(
    rounds, bad_pct["resample"], "o-", color=plotting.COLORS["baseline"], label="resampling only"
)
ax[0, 0].plot(
    rounds, bad_pct["classifier"], "s-", color=plotting.COLORS["method"], label="failure classifier"
)
ax[0, 0].set_ylim(0, max(55, float(max(v.max() for v in bad_pct.values())) + 5))
ax[0, 0].set_xticks(rounds)
ax[0, 0].set_xlabel("round")
ax[0, 0].set_ylabel("bad simulations (%)")
ax[0, 0].legend()
ta = aut_obs.t.numpy()
ax[0, 1].plot(
    ta, aut_obs.observed[0].cpu(), color=plotting.COLORS["truth"], lw=0.8, label="observed (θ*)"
)
for i in range(3):
    ax[0, 1].plot(
        ta,
        aut_pp.observed[i].cpu(),
        color=plotting.COLORS["method"],
        lw=0.6,
        alpha=0.7,
        label="posterior samples" if i == 0 else None,
    )
ax[0, 1].set_xlabel("time (ms)")
ax[0, 1].set_ylabel("rate y(t) (a.u.)")
ax[0, 1].legend(fontsize=7)
plotting.save(fig, "snpe-hh", "fig4_autapse")

# %% [markdown]
# ```{glue:figure} fig4_autapse
# ---
# name: fig-snpe-hh-autapse
# alt: >-
#   Left: percentage of failed simulations against the round, for resampling only and for the
#   failure classifier. Right: rate against time in ms for the observed autapse trace and three
#   posterior predictive traces.
# ---
# Left: failed autapse simulations per round; in rounds 3–5 the failure classifier leaves
# {glue:text}`c4_classifier_pct:.1f` % of them against {glue:text}`c4_resample_pct:.1f` % with
# resampling only. Right: the observed trace at θ* and three traces simulated from the
# classifier run's posterior.
# ```

# %% [markdown]
# ## Full profile: learned summary features (claim C6)
#
# A GRU (25 units, final state) reads the raw voltage and input current every 0.2 ms and
# feeds the MDN, trained end to end on one round of 1000 simulations per trace duration
# (500 iterations, minibatch 250). Skipped at the ci profile. The control of claim C6 is the
# prior taken as the 240 ms posterior (an embedding that learned nothing from the longer trace),
# 5000 prior draws judged by the same ratio.

# %%
c6 = {}
if rt.profile == "full":
    m2 = hh_model("2param")
    for dur in cfg.c6_durations:
        gsim = HHSimulator(m2, features="raw", dt=0.01, duration=dur, device=dev)
        torch.manual_seed(rt.seed)
        q = MDN(2, gsim.x_dim, hidden=(50,), embedding=GRUEmbedding(2, 25), embedding_dim=25).to(
            dev
        )
        gx_o = gsim(m2.theta_star[None], generator=rt.generator(60))[0][0]
        run = SNPEB(m2.prior, gsim, gx_o, q, epochs=cfg.c6_epochs, batch_size=250, seed=rt.seed)
        run.run(1, cfg.c6_sims, generator=rt.generator(61))
        sd = marginal_summary(run.posterior_samples(5000, generator=rt.generator(62)))["std"]
        c6[dur] = float((sd / m2.prior.std.double()).mean())
    sd = marginal_summary(m2.prior.sample(5000, generator=rt.generator(63)))["std"]
    c6_prior = float((sd / m2.prior.std.double()).mean())
    print(
        {f"{k:.0f} ms": round(v, 3) for k, v in c6.items()}, f"; the prior itself: {c6_prior:.3f}"
    )
else:
    print(f"skipped at the {rt.profile} profile")

# %% [markdown]
# ## Claims
#
# Thresholds were fixed before any run: C1 at `ci` uses the median over 3 seeds and
# [0.8, 1.25] (full: 20 seeds, [0.9, 1.1]); C1d's 0.1 and C3's floor normalisation were added
# after an audit of the first version found rounds 2–3 inert, before any re-run. C2a compares
# the mean over parameters of posterior sd / prior sd (posterior samples inside the prior box)
# of SNPE-B with that of the single round, both after 1800 gradient steps. C5b (the learned
# imputation differs from 0) is checked at the full profile only; the paper's supplement gives
# no number, so "differs" is taken as max |r_j| ≥ 0.1 over the features that were missing, ten
# times the scale of the initialisation.
#
# Controls, each judged by its claim's own rule: C1a and C1b, the unweighted estimator;
# C1c and C1f, the weighted one (which must *not* look over-concentrated); C1d, the weighted
# arm's own move (its target does not change between rounds, so a move of the unweighted arm
# means something only if the weighted arm stays put); C1e, the unweighted estimator without
# continual learning; C2a, SNPE-B stopped after round 1 (1 × 300 simulations, 600 steps);
# C2b, C2c and C5a, the posterior narrowed tenfold about its mean (an over-confident answer;
# the prior itself would pass these coverage rules, the width is C2a's business); C3, the
# prior taken as the posterior (twenty fresh prior draws); C4, resampling only, its % bad in
# rounds 3–5 over its own round 1 (does concentrating the proposal alone halve the failures?).
# At the full profile: C2d, the prior taken as the posterior (10 000 prior draws, none of whose
# marginals is narrower than the prior); C5b, the imputation vector as initialised, before
# training (N(0, 0.01²) entries); C6, the prior taken as the 240 ms posterior.

# %%
s_multi, s_single = summ["SNPE-B"], summ["single round"]
ratio_multi, ratio_single = width(s_multi), width(s_single)
ratio_round1 = round_width[0]
inside_multi, inside_single = n_inside(s_multi), n_inside(s_single)


def narrowed(samples, factor=10.0):
    """The control of the coverage claims: samples pulled towards their mean by ``factor``."""
    m = samples.double().mean(0)
    return marginal_summary(m + (samples.double() - m) / factor)


narrow = int((s_multi["std"] < 0.5 * prior_sd).sum())
full = rt.profile == "full"  # the full-only claims, and their controls
narrow_prior = None
if full:  # C2d's control: the prior as posterior
    narrow_prior = int(
        (
            marginal_summary(prior.sample(10000, generator=rt.generator(70)))["std"]
            < 0.5 * prior_sd
        ).sum()
    )
late = slice(2, None)
c4_ratio = float(bad_pct["classifier"][late].mean() / max(bad_pct["resample"][late].mean(), 1e-9))
c4_control = float(bad_pct["resample"][late].mean() / max(bad_pct["resample"][0], 1e-9))
med = {k: float(np.median(v)) for k, v in toy_ratio.items()}
med_err = {k: float(np.median(v)) for k, v in toy_err.items()}
med_move = {k: float(np.median(v)) for k, v in toy_move.items()}

EXPECTED = (
    "C1a",
    "C1b",
    "C1c",
    "C1d",
    "C1e",
    "C2a",
    "C3",
)  # declared in "What held, what did not, and why"
res = ChapterResults(
    "snpe-hh",
    rt,
    require_controls=True,
    expected_not_reproduced=EXPECTED if rt.profile == "ci" else (),
)
res.add(
    Claim(
        "C1a",
        "toy, round 2: SNPE-B posterior sd / true sd (median over seeds)",
        paper="exact for any proposal (Sec. 2)",
        op="in",
        threshold=cfg.c1_std_range,
        measured=med["weighted"],
        control=med["unweighted"],
        control_label="the unweighted estimator",
    )
)
res.add(
    Claim(
        "C1b",
        "toy, round 2: SNPE-B |mean error| / true sd (median over seeds)",
        paper="exact for any proposal (Sec. 2)",
        op="<=",
        threshold=0.25,
        measured=med_err["weighted"],
        control=med_err["unweighted"],
        control_label="the unweighted estimator",
    )
)
res.add(
    Claim(
        "C1c",
        "toy, round 2: unweighted posterior sd / true sd (median over seeds)",
        paper="biased: posterior × proposal / prior (Sec. 2)",
        op="<=",
        threshold=0.85,
        measured=med["unweighted"],
        control=med["weighted"],
        control_label="SNPE-B (weighted)",
    )
)
res.add(
    Claim(
        "C1d",
        "toy: |sd ratio after round 2 − after round 1| of the unweighted arm (median)",
        paper="book's check: round 2 must move",
        op=">=",
        threshold=0.1,
        measured=med_move["unweighted"],
        control=med_move["weighted"],
        control_label="the weighted arm's move",
    )
)
res.add(
    Claim(
        "C1e",
        "toy, no continual-learning KL: SNPE-B sd / true sd (median)",
        paper="exact for any proposal (Sec. 2)",
        op="in",
        threshold=cfg.c1_std_range,
        measured=med["weighted, no CL"],
        control=med["unweighted, no CL"],
        control_label="the unweighted estimator, no CL",
    )
)
res.add(
    Claim(
        "C1f",
        "toy, no continual-learning KL: unweighted sd / true sd (median)",
        paper="biased: posterior × proposal / prior (Sec. 2)",
        op="<=",
        threshold=0.85,
        measured=med["unweighted, no CL"],
        control=med["weighted, no CL"],
        control_label="SNPE-B (weighted), no CL",
    )
)
res.add(
    Claim(
        "C2a",
        f"HH: mean sd/prior sd, SNPE-B {cfg.n_rounds}×{cfg.n_sims} over single round "
        f"1×{cfg.n_single} (equal gradient steps)",
        paper="multi-round helps (Sec. 4, Fig. 3)",
        op="<=",
        threshold=0.9,
        measured=ratio_multi / ratio_single,
        control=ratio_round1 / ratio_single,
        control_label=f"SNPE-B stopped after round 1 (1×{cfg.n_sims})",
    )
)
res.add(
    Claim(
        "C2b",
        "HH: parameters with θ* inside SNPE-B's 95 % marginal interval",
        paper="marginals cover θ* (Fig. 3)",
        op=">=",
        threshold=cfg.c2_inside_min,
        measured=inside_multi,
        control=n_inside(narrowed(post["SNPE-B"])),
        control_label="SNPE-B's posterior narrowed tenfold",
    )
)
res.add(
    Claim(
        "C2c",
        "HH: parameters with θ* inside the single-round 95 % marginal interval",
        paper="marginals cover θ* (Fig. 3)",
        op=">=",
        threshold=cfg.c2_inside_min,
        measured=inside_single,
        control=n_inside(narrowed(post["single round"])),
        control_label="the single-round posterior narrowed tenfold",
    )
)
res.add(
    Claim(
        "C2d",
        "HH 12 parameters: parameters with posterior sd < 0.5 prior sd",
        paper="Fig. 3",
        op=">=",
        threshold=6,
        profiles=("full",),
        measured=narrow if full else None,
        control=narrow_prior,
        control_label="the prior as posterior (10 000 draws)" if full else "",
    )
)
res.add(
    Claim(
        "C3",
        "median feature distance to x_o, (posterior − θ*) over (prior − θ*), 20 draws each",
        paper="predictive resembles x_o (Fig. 3)",
        op="<=",
        threshold=0.5,
        measured=c3_ratio,
        control=c3_control,
        control_label="the prior as posterior (20 fresh draws)",
    )
)
res.add(
    Claim(
        "C4",
        "autapse: % bad in rounds 3-5, failure classifier over resampling only",
        paper="falls with classifier (Fig. 4)",
        op="<=",
        threshold=0.5,
        measured=c4_ratio,
        control=c4_control,
        control_label="resampling only: rounds 3-5 over its round 1",
    )
)
res.add(
    Claim(
        "C5a",
        "missing features: max |posterior mean − θ*| / posterior sd (imputation, 1 round)",
        paper="works with imputation (Sec. 3)",
        op="<=",
        threshold=2.0,
        measured=float(hc_dev.max()),
        control=float(hc_dev.max()) * 10,
        control_label="the imputing posterior narrowed tenfold",
    )
)
res.add(
    Claim(
        "C5b",
        "missing features: max |learned imputation value| (z units)",
        paper="learned values (suppl.)",
        op=">=",
        threshold=0.1,
        profiles=("full",),
        measured=float(imputed[missing].abs().max()) if bool(missing.any()) else 0.0,
        control=(float(imputed_init[missing].abs().max()) if bool(missing.any()) else 0.0)
        if full
        else None,
        control_label="the imputation before training" if full else "",
    )
)
res.add(
    Claim(
        "C6",
        "GRU features: mean posterior sd/prior sd at 240 ms over 60 ms",
        paper="contracts (Fig. 5)",
        op="<=",
        threshold=1.0,
        profiles=("full",),
        measured=c6[240.0] / c6[60.0] if c6 else None,
        control=c6_prior / c6[60.0] if c6 else None,
        control_label="the prior as the 240 ms posterior" if c6 else "",
    )
)
print(f"{len(res.claims)} claims recorded")
if med_move["unweighted"] < 0.1:
    print(
        f"round 2 moved the unweighted arm by {med_move['unweighted']:.3f} < 0.1 (median): "
        "C1a-c cannot be held"
    )

# %% tags=["nbval-check-output"]
print(res.table(timings=False))

# %%
# the numbers the text below quotes, as this run measured them
_d = dist["θ*"], dist["posterior"], dist["prior (control)"]
_stim = [
    i
    for i, n in enumerate(FEATURE_SETS[cfg.features])
    if not n.startswith(("spike count", "resting"))
]
_post_diff = (x_post - x_o).abs().median(0).values[_stim]
_prior_diff = (x_prior - x_o).abs().median(0).values[_stim]
res.glue(
    n_params=model.dim,
    c4_classifier_pct=float(bad_pct["classifier"][late].mean()),
    c4_resample_pct=float(bad_pct["resample"][late].mean()),
    c5_loss="without a non-finite loss"
    if bool(np.isfinite(hc_run.rounds[0].history.loss).all())
    else "with a non-finite loss in some steps",
    c3_d_star=_d[0],
    c3_d_post=_d[1],
    c3_d_prior2=_d[2],
    c3_star_vs="above both"
    if _d[0] > max(_d[1:])
    else "below both"
    if _d[0] < min(_d[1:])
    else "between",
    c3_post_lo=float(_post_diff.min()),
    c3_post_hi=float(_post_diff.max()),
    c3_prior_lo=float(_prior_diff.min()),
    c3_prior_hi=float(_prior_diff.max()),
    c3_feature_ratio=float(_post_diff.max() / _prior_diff.min()),
    ess_round2=float(multi.rounds[1].ess),
    ess_round3=float(multi.rounds[2].ess),
    width_round1=round_width[0],
    width_round2=round_width[1],
    width_round3=round_width[2],
    width_single=ratio_single,
)

# %% [markdown]
# ## What held, what did not, and why
#
# The verdicts and numbers below are this run's (the rules and controls are in the table
# above).
#
# **Simulator failures (C4, paper Fig. 4).** With the failure classifier, the failed autapse
# simulations of rounds 3–5 are {glue:text}`C4_ours:.2f` of those with resampling only
# ({glue:text}`c4_classifier_pct:.1f` % against {glue:text}`c4_resample_pct:.1f` %), while
# concentrating the proposal without the classifier leaves them at {glue:text}`C4_control:.2f`
# of its round-1 rate (C4: {glue:text}`C4_verdict`).
#
# **Coverage and missing features (C2b, C2c, Fig. 3; C5a, Sec. 3).** θ* lies inside the 95 %
# marginal intervals of SNPE-B for {glue:text}`C2b_ours:.0f` and of the single round for
# {glue:text}`C2c_ours:.0f` of the {glue:text}`n_params` parameters, inside those of the tenfold
# narrowed posteriors for {glue:text}`C2b_control:.0f` and {glue:text}`C2c_control:.0f` (C2b:
# {glue:text}`C2b_verdict`, C2c: {glue:text}`C2c_verdict`). Imputing missing features trains
# {glue:text}`c5_loss` and leaves θ* within {glue:text}`C5a_ours:.2f` posterior sd (C5a:
# {glue:text}`C5a_verdict`).
#
# **Importance weights (C1, the toy).** With the continual-learning KL of delfi, SNPE-B's
# round-2 posterior has sd ratio {glue:text}`C1a_ours:.2f` and mean error
# {glue:text}`C1b_ours:.2f` sd, the unweighted one {glue:text}`C1a_control:.2f` and
# {glue:text}`C1b_control:.2f` (C1a: {glue:text}`C1a_verdict`, C1b: {glue:text}`C1b_verdict`;
# C1c, the unweighted sd ratio at most 0.85: {glue:text}`C1c_verdict`). Round 2 moved the
# unweighted arm's sd ratio by {glue:text}`C1d_ours:.3f` from round 1 (median; C1d requires 0.1:
# {glue:text}`C1d_verdict`); when it moves less, the toy cannot show that the weights were
# needed. The KL to the previous round's weights, whose standard deviations barely leave their
# initial e⁻⁵ in 500 steps, pins the network where round 1 left it. Once round 2 is trained
# with the KL to the zero-mean weight prior instead (the book's variant), the weighted
# estimate's sd ratio is {glue:text}`C1e_ours:.2f` (C1e: {glue:text}`C1e_verdict`) and the
# unweighted one's {glue:text}`C1f_ours:.2f` (C1f, over-concentrated at most 0.85:
# {glue:text}`C1f_verdict`). C1e's control is that unweighted estimate: where it lies inside
# [0.8, 1.25] too, C1e alone does not separate the two, and C1f is the rule that can.
#
# **Posterior predictive (C3).** Twenty simulations at θ* itself lie at a median distance of
# {glue:text}`c3_d_star:.2f` from $x_o$, {glue:text}`c3_star_vs` the posterior draws'
# {glue:text}`c3_d_post:.2f` and a fresh prior set's {glue:text}`c3_d_prior2:.2f`: with 20
# draws the distance is dominated by the two features that do not depend on (ḡ_Na, ḡ_K)
# (per-feature medians printed above), so its floor is noise. The floor-normalised ratio is
# {glue:text}`C3_ours:.2f` for the posterior and {glue:text}`C3_control:.2f` for the prior
# (C3: {glue:text}`C3_verdict`); where the prior passes too, the rule cannot tell the posterior
# from the prior. Feature by feature the comparison is sharper: on the four stimulus-window
# features the posterior draws' median differences
# ({glue:text}`c3_post_lo:.2f`–{glue:text}`c3_post_hi:.2f`) are at most
# {glue:text}`c3_feature_ratio:.2f` times the smallest of the prior draws'
# ({glue:text}`c3_prior_lo:.2f`–{glue:text}`c3_prior_hi:.2f`).
#
# **Several rounds against one (C2a).** With equal gradient steps (1800 each) and the
# defensive proposal (effective sample sizes {glue:text}`ess_round2:.0f` and
# {glue:text}`ess_round3:.0f` of 300 in rounds 2 and 3), SNPE-B's posterior width is
# {glue:text}`width_round1:.3f`, {glue:text}`width_round2:.3f` and
# {glue:text}`width_round3:.3f` of the prior sd after rounds 1–3, while one round of 900 prior
# simulations reaches {glue:text}`width_single:.3f`: the ratio is {glue:text}`C2a_ours:.2f`
# against the required ≤ 0.9 (C2a: {glue:text}`C2a_verdict`; SNPE-B stopped after round 1:
# {glue:text}`C2a_control:.2f`). Where rounds 2–3 stay near the round-1 width, the same pinning
# by the continual-learning KL that keeps round 2 of the toy in place keeps them at the
# round-1 answer, trained on a third of the single round's simulations.

# %% tags=["nbval-ignore-output"]
print(res.table())
print(f"SNPE-B {cfg.n_rounds} rounds: {t_multi:.1f} s; single round: {t_single:.1f} s")
res.save()
for k, v in rt.provenance().items():
    print(f"{k:14s} {v}")

# %%
res.check()
