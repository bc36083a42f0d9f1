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
# # Amortised spike inference with a VAE (DeepSpike)
#
# **Paper.** A. Speiser, J. Yan, E. Archer, L. Buesing, S. C. Turaga, J. H. Macke,
# *Fast amortized inference of neural activity from calcium imaging data with variational
# autoencoders*, NIPS 2017 ([arXiv:1711.01846](https://arxiv.org/abs/1711.01846)).
#
# A calcium-imaging trace $f_{1..T}$ is a slow, noisy, possibly nonlinear image of the
# binary spike train $s_{1..T}$ that caused it. Exact Bayesian inversion needs MCMC per
# trace; MAP deconvolution (fast-oopsi, OASIS) is fast but gives a point estimate. The
# paper trains a **recognition network** $q_\phi(s\mid f)$ together with the parameters
# $\theta$ of a generative model $p_\theta(f\mid s)\,p(s)$ by maximising a multi-sample
# evidence lower bound, **without any ground-truth spikes**. After training, inference for
# a new trace is one forward pass, and its output is a distribution over spike trains.
#
# **What the paper claims, and what this chapter checks** (claims C1–C8; C1–C5 at the
# `ci` profile):
# accuracy of unsupervised inference (C1), competitive with MAP deconvolution (C2), orders
# of magnitude faster than MCMC (C3), the generative parameters are learned without ground
# truth (C4), the network generalises to new cells (C5); at the full profile only, a
# nonlinear indicator model (C6), a correlated autoregressive posterior (C7) and dendritic
# spines (C8).
#
# **Figures redrawn.** A held-out trace with the inferred spikes and a reconstruction;
# training curves; learned against true generative parameters; inference time against the
# number of frames for DeepSpike, OASIS and Gibbs MCMC.
#
# Facts about architecture and training come from the authors' reference notebooks (the
# paper body was not available to the book's authors); the code here is the book's own.

# %% tags=["parameters"]
profile = "ci"
seed = 0
device = "auto"

# %% [markdown]
# Every size below comes from the profile: `ci` runs on two CPU cores in about a minute and
# still shows claims C1–C5; `full` approaches the paper's scale on one GPU. The `ci` sizes of
# the full-only experiments (M2, the autoregressive posterior, spines) are used only by a
# quick test of the full profile's code; the `ci` profile itself skips those experiments.

# %%
import numpy as np
import torch

from neuroinverse import plotting
from neuroinverse.inference import (
    LinearCalciumModel,
    SaturatingCalciumModel,
    SpikeVAE,
    SpineCalciumModel,
    fit_spike_vae,
    gibbs_spikes,
    make_snippets,
    oasis_deconvolve,
    train_supervised_spikes,
)
from neuroinverse.metrics import (
    binned_correlation,
    misassigned_fraction,
    spike_count_factor,
    spike_sync,
)
from neuroinverse.models import AutoregressiveSpikeRNN, FactorisedSpikeCNN
from neuroinverse.results import ChapterResults, Claim
from neuroinverse.runtime import setup, time_call, timed
from neuroinverse.simulators import (
    decay_time,
    simulate_linear,
    simulate_saturating,
    simulate_spines,
)

rt = setup(profile=profile, seed=seed, device=device)
cfg = rt.select(
    ci=dict(
        n_cells=12,
        n_train=8,
        n_frames=6000,
        channels=(16, 16, 16),
        kernels=(31, 21, 11),
        n_samples=16,
        batch=16,
        n_steps=800,
        eval_every=100,
        supervised_steps=800,
        gibbs_traces=2,
        gibbs_frames=2000,
        gibbs_sweeps=20,
        timing_traces=(2, 4, 16),
        c1_r1=0.65,
        c1_r2=0.72,
        c2_margin=-0.05,
        c4_rel=0.25,
        m2_steps=30,
        m1_on_m2_steps=30,
        ar_steps=10,
        n_branches=4,
        n_branches_train=2,
        spine_steps=30,
    ),
    full=dict(
        n_cells=100,
        n_train=30,
        n_frames=10000,
        channels=(30, 25, 25, 20, 15),
        kernels=(31, 21, 21, 13, 11),
        n_samples=64,
        batch=20,
        n_steps=15000,
        eval_every=500,
        supervised_steps=5000,
        gibbs_traces=10,
        gibbs_frames=10000,
        gibbs_sweeps=200,
        timing_traces=(2, 10, 70, 280),
        c1_r1=0.80,
        c1_r2=0.86,
        c2_margin=-0.03,
        c4_rel=0.15,
        m2_steps=10000,
        m1_on_m2_steps=5000,
        ar_steps=3000,
        n_branches=40,
        n_branches_train=30,
        spine_steps=5000,
    ),
)
BUFFERS = (100, 50)  # frames left out at the start and end of every snippet and trace
FRAME_RATE = 60.0
plotting.apply_style()
print(f"profile={rt.profile} device={rt.device} threads={rt.threads}")

# %% [markdown]
# ## Simulated data: the linear model M1
#
# Each cell has its own decay $\gamma$, spike amplitude $\alpha$, baseline $\beta$ and noise
# $\sigma$, drawn from the ranges of the reference code
# ($\tau=-\Delta t/\ln\gamma\in[0.27, 1.66]$ s, single-spike SNR $\alpha/\sigma\approx 1.7$–$7$):
#
# $$c_t = \gamma c_{t-1} + s_t,\qquad f_t = \alpha c_t + \beta + \sigma\varepsilon_t,\qquad
# s_t\sim\mathrm{Bern}(1\,\mathrm{Hz}/60\,\mathrm{Hz}).$$
#
# The first cells are used for training (no spikes seen), the rest are held out. Each cell
# has one trace at 1 Hz (the reference notebooks simulated three traces per cell, at 0.7, 1.0
# and 1.2 Hz); training snippets of 300 frames start every 150 frames.

# %%
data = simulate_linear(
    cfg.n_cells, cfg.n_frames, rate_hz=1.0, frame_rate=FRAME_RATE, generator=rt.generator()
)
train, test = data.subset(slice(0, cfg.n_train)), data.subset(slice(cfg.n_train, None))
snippets = make_snippets(train.fluorescence, length=300, stride=150)
print(
    f"{data.n_cells} cells x {data.n_frames} frames ({data.n_frames / FRAME_RATE:.0f} s each); "
    f"{train.n_cells} training cells -> snippets {tuple(snippets.shape)}; {test.n_cells} held out"
)

# %% [markdown]
# ## The method
#
# The recognition network is a 1-D CNN giving an independent Bernoulli probability
# $p_t$ per frame. The generative model is M1 with one parameter set per training cell,
# computed by an FFT convolution with the kernel $\gamma^k$ so that it is differentiable in
# $\gamma$. For each snippet we draw $K$ spike trains $s^{(k)}\sim q_\phi$ and maximise
#
# $$\hat L = \log\frac1K\sum_k w_k,\qquad
# \log w_k = \log p_\theta(f\mid s^{(k)}) + \log p(s^{(k)}) - \log q_\phi(s^{(k)}\mid f),$$
#
# with the VIMCO leave-one-out score-function gradient for $\phi$ (spikes are discrete),
# Adam on $\phi$, RMSprop on $\theta$, and the recognition gradients clipped to norm 0.02.
# All terms are summed over frames $[100, T-50)$ of each snippet only. The prior is the plain
# Bernoulli sequence prior with $\pi=0.015$ (the reference code adds a binomial coefficient;
# we do not). Every mini-batch holds snippets of one cell, so that its $\theta$ is used.

# %%
recognition = FactorisedSpikeCNN(cfg.channels, cfg.kernels, out_kernel=11)


def held_out_r2():
    p = recognition.spike_probability(test.fluorescence)
    return {"r2_test": binned_correlation(p, test.spikes, bin_width=2, buffers=BUFFERS)}


(vae, history), vae_time = timed(
    lambda: fit_spike_vae(
        recognition,
        LinearCalciumModel(train.n_cells),
        snippets,
        device=rt.device,
        prior_rate=0.015,
        buffers=BUFFERS,
        n_steps=cfg.n_steps,
        batch_size=cfg.batch,
        n_samples=cfg.n_samples,
        seed=rt.seed,
        eval_fn=held_out_r2,
        eval_every=cfg.eval_every,
    )
)

# %% [markdown]
# ## Baselines
#
# * **OASIS** (`oasis-deconv`): the exact solution of AR(1) non-negative L1 deconvolution,
#   the MAP problem of fast-oopsi, with the decay estimated per trace (and, for reference, the
#   true decay).
# * **Gibbs MCMC**: the book's discrete-time sampler under M1 with the *true* parameters
#   (an oracle), vectorised over traces and looping over frames, with spike-time moves.
# * **Supervised CNN**: the same network trained with binary cross-entropy on the *true*
#   spikes of the training cells: an upper bound for what the VAE can learn without them.
#
# Compare the two OASIS rows below: OASIS estimates the decay from the trace's power
# spectrum, an estimate that can be biased for slow indicators at 60 Hz, so both the
# estimated and the true decay are reported.

# %%
supervised = FactorisedSpikeCNN(cfg.channels, cfg.kernels, out_kernel=11).to(rt.device)
train_supervised_spikes(
    supervised,
    snippets,
    make_snippets(train.spikes, length=300, stride=150),
    n_steps=cfg.supervised_steps,
    batch_size=cfg.batch,
    buffers=BUFFERS,
    seed=rt.seed,
)

p_test = vae.spike_probability(test.fluorescence)
p_train = vae.spike_probability(train.fluorescence)
s_oasis, g_oasis = oasis_deconvolve(test.fluorescence)
s_oracle, _ = oasis_deconvolve(test.fluorescence, gamma=test.params["gamma"].numpy())

score = {}
for name, pred, truth in [
    ("DeepSpike, held-out", p_test, test.spikes),
    ("DeepSpike, training", p_train, train.spikes),
    ("OASIS (g estimated)", s_oasis, test.spikes),
    ("OASIS (true g)", s_oracle, test.spikes),
    ("supervised CNN (upper bound)", supervised.spike_probability(test.fluorescence), test.spikes),
]:
    score[name] = [binned_correlation(pred, truth, bin_width=b, buffers=BUFFERS) for b in (1, 2)]

gibbs_true = {
    k: test.params[k][: cfg.gibbs_traces].numpy() for k in ("gamma", "alpha", "beta", "sigma")
}
gibbs_f = test.fluorescence[: cfg.gibbs_traces, : cfg.gibbs_frames]
gibbs_s = test.spikes[: cfg.gibbs_traces, : cfg.gibbs_frames]
p_gibbs, gibbs_time = timed(
    lambda: gibbs_spikes(gibbs_f, **gibbs_true, n_sweeps=cfg.gibbs_sweeps, generator=rt.seed)
)
p_ds_gibbs_set = vae.spike_probability(gibbs_f)
score["Gibbs MCMC (true θ), subset"] = [
    binned_correlation(p_gibbs, gibbs_s, bin_width=b, buffers=BUFFERS) for b in (1, 2)
]
score["DeepSpike, same subset"] = [
    binned_correlation(p_ds_gibbs_set, gibbs_s, bin_width=b, buffers=BUFFERS) for b in (1, 2)
]

# %% tags=["nbval-check-output"]
print(f"{'method':32s} {'r (16.7 ms)':>12s} {'r (33 ms)':>10s}")
for name, (r1, r2) in score.items():
    print(f"{name:32s} {r1:12.3f} {r2:10.3f}")

# %% [markdown]
# ## A held-out trace
#
# {numref}`fig-deepspike-trace` shows 20 s of a held-out cell and of a training cell.

# %% tags=["remove-output"]
win = slice(1000, 1000 + int(20 * FRAME_RATE))
t_s = np.arange(data.n_frames)[win] / FRAME_RATE
fig, ax = plotting.figure(2, 1, width=7, height=5.2, sharex=True)
a = ax[0, 0]
a.plot(t_s, test.fluorescence[0, win], color=plotting.COLORS["data"], lw=0.8, label="fluorescence")
a.vlines(
    t_s[test.spikes[0, win] > 0], 1.3, 1.7, color=plotting.COLORS["truth"], label="true spikes"
)
a.plot(
    t_s, p_test[0, win] - 1.4, color=plotting.COLORS["method"], lw=0.9, label="DeepSpike p(spike)"
)
s_o = s_oasis[0, win] / max(s_oasis[0, win].max(), 1e-9)
a.plot(t_s, s_o - 2.6, color=plotting.COLORS["baseline"], lw=0.9, label="OASIS (scaled)")
a.set_ylim(-2.7, 2.4)
a.set_ylabel("ΔF (a.u.), offset")
a.set_title("held-out cell")
a.legend(loc="upper right", ncol=4, fontsize=7)
s_rec, f_rec = vae.reconstruction(
    train.fluorescence[:1].to(rt.device), 0, rt.generator(7, device=rt.device)
)
b = ax[1, 0]
b.plot(t_s, train.fluorescence[0, win], color=plotting.COLORS["data"], lw=0.8, label="fluorescence")
b.plot(
    t_s, f_rec[0, win].cpu(), color=plotting.COLORS["method"], lw=1.0, label="reconstruction F_θ(s)"
)
top = float(train.fluorescence[0, win].max())
b.vlines(
    t_s[train.spikes[0, win] > 0],
    top + 0.1,
    top + 0.3,
    color=plotting.COLORS["truth"],
    label="true spikes",
)
b.vlines(
    t_s[s_rec[0, win].cpu() > 0],
    top + 0.35,
    top + 0.55,
    color=plotting.COLORS["method"],
    label="sampled spikes",
)
b.set_ylim(None, top + 1.0)
b.set_xlabel("time (s)")
b.set_ylabel("ΔF (a.u.)")
b.set_title("training cell 0: one posterior sample and its reconstruction")
b.legend(loc="upper right", ncol=4, fontsize=7)
plotting.save(fig, "deepspike", "fig1_trace")

# %% [markdown]
# ```{glue:figure} fig1_trace
# ---
# name: fig-deepspike-trace
# alt: >-
#   Two stacked panels against time in seconds. Top: a held-out cell's fluorescence, its true
#   spikes as ticks, DeepSpike's spike probability and OASIS's scaled activity, offset below.
#   Bottom: a training cell's fluorescence, one reconstruction, true and sampled spike ticks.
# ---
# Top: 20 s of a held-out cell, the true spikes, DeepSpike's posterior spike probability and
# OASIS's deconvolved activity (scaled to its maximum). Bottom: a training cell with the VAE's
# reconstruction $F_\theta(s)$ from one posterior sample, using that cell's learned $\theta$
# (held-out cells have no learned $\theta$: the network alone infers their spikes).
# ```

# %% [markdown]
# ## Training curves
#
# {numref}`fig-deepspike-training` follows the training: the bound and the held-out accuracy.

# %% tags=["remove-output"]
elbo = np.asarray(history.metrics["elbo_per_1000"])
smooth = np.convolve(elbo, np.ones(25) / 25, mode="valid")
fig, ax = plotting.figure(1, 2, width=7, height=2.8)
ax[0, 0].plot(np.arange(len(smooth)) + 25, smooth, color=plotting.COLORS["method"])
ax[0, 0].set_xlabel("iteration")
ax[0, 0].set_ylim(
    np.percentile(smooth, 5), smooth.max() + 0.1 * np.ptp(smooth[len(smooth) // 10 :])
)
ax[0, 0].set_ylabel("ELBO (nats / 1000 frames)")
ax[0, 1].plot(
    history.eval_steps,
    history.evals["r2_test"],
    "o-",
    color=plotting.COLORS["method"],
    label="DeepSpike (held-out)",
)
ax[0, 1].axhline(
    score["OASIS (g estimated)"][1],
    color=plotting.COLORS["baseline"],
    ls="--",
    label="OASIS (g estimated)",
)
ax[0, 1].set_xlabel("iteration")
ax[0, 1].set_ylabel("correlation r (33 ms bins)")
ax[0, 1].legend()
plotting.save(fig, "deepspike", "fig2_training")

# %% [markdown]
# ```{glue:figure} fig2_training
# ---
# name: fig-deepspike-training
# alt: >-
#   Two panels against the training iteration. Left: the bound per 1000 frames, a running mean.
#   Right: the held-out correlation at 33 ms as points joined by lines, with OASIS's
#   correlation as a dashed horizontal line.
# ---
# Left: the multi-sample bound per 1000 evaluated frames (a running mean over 25 steps; the
# first steps, far below, are cut off). Right: the held-out correlation with the true spikes at
# 33 ms, with OASIS as a horizontal line; the network is trained without ever seeing a spike.
# ```

# %% [markdown]
# ## The generative model is learned without ground truth
#
# {numref}`fig-deepspike-parameters` compares the learned generative parameters with the true
# ones.

# %% tags=["remove-output"]
learned = vae.generative.constrained()
tau_hat = decay_time(learned["gamma"].cpu().double(), FRAME_RATE).numpy()
tau_true = decay_time(train.params["gamma"], FRAME_RATE).numpy()
alpha_hat, alpha_true = learned["alpha"].cpu().numpy(), train.params["alpha"].numpy()
fig, ax = plotting.figure(1, 2, width=7, height=3.2)
for a, (x, y, name, unit) in zip(
    ax[0],
    [(tau_true, tau_hat, "decay τ", "s"), (alpha_true, alpha_hat, "amplitude α", "a.u.")],
    strict=True,
):
    lim = [0.9 * min(x.min(), y.min()), 1.1 * max(x.max(), y.max())]
    a.plot(lim, lim, color="0.6", lw=0.8, label="identity")
    a.plot(x, y, "o", color=plotting.COLORS["method"], label="training cells")
    a.set_xlabel(f"true {name} ({unit})")
    a.set_ylabel(f"learned {name} ({unit})")
    a.legend()
plotting.save(fig, "deepspike", "fig3_parameters")

# %% [markdown]
# ```{glue:figure} fig3_parameters
# ---
# name: fig-deepspike-parameters
# alt: >-
#   Two scatter plots, one point per training cell, with the identity line. Left: learned decay
#   time against true decay time in seconds. Right: learned spike amplitude against true
#   amplitude.
# ---
# Learned decay time $\hat\tau=-\Delta t/\ln\sigma(\hat g)$ and spike amplitude
# $\hat\alpha$ against the values the data were simulated with, for every training cell:
# points on the identity line are recovered exactly (the decays' correlation with the truth is
# {glue:text}`C4a_ours:.3f`).
# ```

# %% [markdown]
# ## Inference time
#
# {numref}`fig-deepspike-timing` shows how long each method takes to infer spikes.
#
# Claim C3 is this chapter's one timing claim. It is a ratio of two timings taken in the
# same run on the same machine, so a slow or busy machine slows both, and its threshold (100×)
# was set with a wide margin: in this run the ratio is {glue:text}`C3_ours:.0f`× (printed
# below), while repeated runs, one of them beside a busy process, moved the ratio by well under
# a factor of two. Such noise can flip the verdict only where the ratio lies within a factor of
# two of the threshold; an inference that lost its speed advantage would fail, as the control
# below shows (fitting the VAE instead of one forward pass: {glue:text}`C3_control:.1f`× in
# this run).


# %% tags=["remove-output"]
def ds_time(n):
    f = test.fluorescence.repeat((n + test.n_cells - 1) // test.n_cells, 1)[:n]
    return time_call(lambda: vae.spike_probability(f), repeats=5, warmup=1)


def oasis_time(n):
    f = test.fluorescence.repeat((n + test.n_cells - 1) // test.n_cells, 1)[:n]
    return time_call(lambda: oasis_deconvolve(f), repeats=1, warmup=0)


frames = [n * data.n_frames for n in cfg.timing_traces]
t_ds = [ds_time(n) for n in cfg.timing_traces]
t_oasis = [oasis_time(n) for n in cfg.timing_traces]
short = cfg.gibbs_frames // 4
_, t_gibbs_short = timed(
    lambda: gibbs_spikes(
        gibbs_f[:, :short], **gibbs_true, n_sweeps=cfg.gibbs_sweeps, generator=rt.seed
    )
)
gibbs_frames_total = [cfg.gibbs_traces * short, cfg.gibbs_traces * cfg.gibbs_frames]
t_gibbs = [t_gibbs_short, gibbs_time]
t_ds_gibbs_set = time_call(lambda: vae.spike_probability(gibbs_f), repeats=5, warmup=1)
speedup = (gibbs_time / gibbs_f.numel()) / (t_ds[-1] / frames[-1])

fig, ax = plotting.figure(1, 1, width=5, height=3.4)
a = ax[0, 0]
a.loglog(frames, t_ds, "o-", color=plotting.COLORS["method"], label="DeepSpike (forward pass)")
a.loglog(frames, t_oasis, "s-", color=plotting.COLORS["baseline"], label="OASIS")
a.loglog(
    gibbs_frames_total,
    t_gibbs,
    "^-",
    color=plotting.COLORS["baseline2"],
    label=f"Gibbs MCMC ({cfg.gibbs_sweeps} sweeps)",
)
a.set_xlabel("total frames")
a.set_ylabel("wall time (s)")
a.legend()
plotting.save(fig, "deepspike", "fig4_timing")

# %% [markdown]
# ```{glue:figure} fig4_timing
# ---
# name: fig-deepspike-timing
# alt: >-
#   Log-log plot of wall time in seconds against the total number of frames, with one line of
#   markers each for DeepSpike's forward pass, OASIS and the Gibbs sampler.
# ---
# Wall time to infer spikes against the total number of frames: DeepSpike is one batched
# forward pass (median of 5 runs), OASIS runs trace by trace, the Gibbs sampler runs
# `gibbs_sweeps` sweeps per trace. Per frame the Gibbs sampler takes {glue:text}`C3_ours:.0f`
# times as long as DeepSpike; timings depend on the machine (see provenance below).
# ```

# %% tags=["nbval-ignore-output"]
print(
    f"DeepSpike: {t_ds[-1] / frames[-1] * 1e6:.2f} µs/frame on {frames[-1]} frames; "
    f"{t_ds_gibbs_set * 1e3:.1f} ms on the Gibbs subset"
)
print(f"OASIS:     {t_oasis[-1] / frames[-1] * 1e6:.2f} µs/frame on {frames[-1]} frames")
print(
    f"Gibbs:     {gibbs_time / gibbs_f.numel() * 1e6:.1f} µs/frame ({cfg.gibbs_traces} traces x "
    f"{cfg.gibbs_frames} frames x {cfg.gibbs_sweeps} sweeps: {gibbs_time:.2f} s)"
)
print(f"speed-up of DeepSpike over Gibbs per frame: {speedup:.0f}x")

# %% [markdown]
# ## Full profile: a nonlinear indicator (claim C6)
#
# On data from the saturating, supralinear model M2, the paper's approach trains the same
# factorised CNN with the matching M2 generative model, and — as a baseline — with the
# misspecified linear model M1. Both are scored on held-out M2 cells. This needs a GPU-sized
# run (the M2 model loops over frames) and is skipped at the ci profile.

# %%
r2_m2, vaes_m2, p_m2 = {}, {}, {}
if rt.profile == "full":
    m2 = simulate_saturating(
        cfg.n_cells, cfg.n_frames, rate_hz=1.0, frame_rate=FRAME_RATE, generator=rt.generator(2)
    )
    m2_train, m2_test = m2.subset(slice(0, cfg.n_train)), m2.subset(slice(cfg.n_train, None))
    m2_snippets = make_snippets(m2_train.fluorescence, length=250, stride=125)
    for name, model, steps in [
        ("M2 model", SaturatingCalciumModel(cfg.n_train), cfg.m2_steps),
        ("M1 model (misspecified)", LinearCalciumModel(cfg.n_train), cfg.m1_on_m2_steps),
    ]:
        vaes_m2[name], _ = fit_spike_vae(
            FactorisedSpikeCNN(cfg.channels, cfg.kernels, out_kernel=11),
            model,
            m2_snippets,
            device=rt.device,
            buffers=BUFFERS,
            n_steps=steps,
            batch_size=cfg.batch,
            n_samples=cfg.n_samples,
            theta_lr=1.5e-2,
            seed=rt.seed,
        )
        p_m2[name] = vaes_m2[name].spike_probability(m2_test.fluorescence)
        r2_m2[name] = binned_correlation(p_m2[name], m2_test.spikes, bin_width=2, buffers=BUFFERS)
    print({k: round(v, 3) for k, v in r2_m2.items()})
else:
    print(f"skipped at the {rt.profile} profile")

# %% [markdown]
# ## Full profile: a correlated posterior (claim C7)
#
# A factorised posterior cannot say "one spike, either at frame t or at t+1"; the
# autoregressive CNN+GRU posterior can. On M2 data we train it with the M2 model and compare
# it with the factorised network trained above: the bound per 1000 frames on the training
# snippets, and the SPIKE-synchronisation of posterior samples with the true spikes on the
# held-out cells (4 samples per trace).

# %%
c7 = {}
if rt.profile == "full":
    vae_ar, _ = fit_spike_vae(
        AutoregressiveSpikeRNN(),
        SaturatingCalciumModel(cfg.n_train),
        m2_snippets,
        device=rt.device,
        buffers=BUFFERS,
        n_steps=cfg.ar_steps,
        batch_size=cfg.batch,
        n_samples=cfg.n_samples,
        theta_lr=1.5e-2,
        seed=rt.seed,
    )
    posteriors = {"factorised": vaes_m2["M2 model"], "autoregressive": vae_ar}
    m2_f = m2_test.fluorescence.to(rt.device)
    m2_s = m2_test.spikes.repeat_interleave(4, 0)
    c7 = {
        name: dict(
            elbo=v.bound(m2_snippets, cfg.n_samples, rt.generator(3, device=rt.device)),
            sync=spike_sync(
                v.recognition.sample(m2_f, 4, rt.generator(4, device=rt.device))
                .reshape(-1, m2_f.shape[1])
                .cpu(),
                m2_s,
            ),
        )
        for name, v in posteriors.items()
    }
    print(c7)
else:
    print(f"skipped at the {rt.profile} profile")

# %% tags=["remove-output"]
if rt.profile == "full":
    fig, ax = plotting.figure(2, 1, width=7, height=3.6, sharex=True)
    for a, (name, v) in zip(ax[:, 0], posteriors.items(), strict=True):
        smp = v.recognition.sample(m2_f[:1, 2000:2600], 10, rt.generator(5, device=rt.device))[
            0
        ].cpu()
        a.eventplot(
            [np.flatnonzero(row) / FRAME_RATE for row in smp],
            colors=plotting.COLORS["method"],
            lineoffsets=np.arange(10) + 1,
            linelengths=0.8,
        )
        a.eventplot(
            [np.flatnonzero(m2_test.spikes[0, 2000:2600]) / FRAME_RATE],
            colors=plotting.COLORS["truth"],
            lineoffsets=0,
            linelengths=0.8,
        )
        a.set_ylabel("sample (0 = truth)")
        a.set_title(f"{name} posterior, M2 held-out cell")
    ax[1, 0].set_xlabel("time in window (s)")
else:  # at the ci profile a placeholder keeps the numbered figure in place
    fig, ax = plotting.figure(1, 1, width=7, height=0.8)
    ax[0, 0].axis("off")
    ax[0, 0].text(0.5, 0.5, f"drawn at the full profile only (this run: {rt.profile})", ha="center")
plotting.save(fig, "deepspike", "fig5_ar_samples")

# %% [markdown]
# ```{glue:figure} fig5_ar_samples
# ---
# name: fig-deepspike-ar-samples
# alt: >-
#   Two raster panels against time in the window in seconds: ten posterior samples of spike
#   times in rows 1 to 10 and the true spikes in row 0, for the factorised (top) and the
#   autoregressive (bottom) posterior on one held-out M2 cell. Drawn at the full profile only.
# ---
# Ten posterior samples of one held-out M2 cell's spikes (rows 1–10) under the true spikes
# (row 0), from the factorised and the autoregressive posterior. Where the timing of a spike is
# ambiguous, a factorised posterior cannot say "one spike, either at frame t or at t+1"; the
# autoregressive one can. At the ci profile only a placeholder is drawn.
# ```

# %% [markdown]
# ## Full profile: dendritic spines (claim C8)
#
# A dendritic branch with four spines is imaged in five channels: the dendrite shows only
# back-propagating action potentials (bAPs); each spine shows the bAPs *and* its own
# synaptic inputs. One five-channel CNN infers a bAP train and four synaptic trains at once,
# trained with the spine generative model (one θ per branch). The test is whether bAPs end up
# in the bAP channel rather than being explained as synaptic input. The spine model's exact
# equations in the paper were not available; the book's definition is in
# `neuroinverse.simulators.calcium.simulate_spines`.

# %%
c8 = {}
if rt.profile == "full":
    sp = simulate_spines(
        cfg.n_branches, cfg.n_frames, n_spines=4, frame_rate=FRAME_RATE, generator=rt.generator(8)
    )
    sp_train, sp_test = (
        sp.subset(slice(0, cfg.n_branches_train)),
        sp.subset(slice(cfg.n_branches_train, None)),
    )
    vae_sp, _ = fit_spike_vae(
        FactorisedSpikeCNN(cfg.channels, cfg.kernels, out_kernel=11, in_channels=5, out_channels=5),
        SpineCalciumModel(cfg.n_branches_train, n_spines=4),
        make_snippets(sp_train.fluorescence, 300, 150),
        device=rt.device,
        prior_rate=(0.5 / FRAME_RATE,) + (1.0 / FRAME_RATE,) * 4,
        buffers=BUFFERS,
        n_steps=cfg.spine_steps,
        batch_size=cfg.batch,
        n_samples=cfg.n_samples,
        seed=rt.seed,
    )
    p_sp = vae_sp.spike_probability(sp_test.fluorescence)
    T_sp = p_sp.shape[-1]
    c8 = dict(
        bap=binned_correlation(p_sp[:, 0], sp_test.spikes[:, 0], bin_width=2, buffers=BUFFERS),
        syn=binned_correlation(
            p_sp[:, 1:].reshape(-1, T_sp),
            sp_test.spikes[:, 1:].reshape(-1, T_sp),
            bin_width=2,
            buffers=BUFFERS,
        ),
        leak=misassigned_fraction(p_sp, sp_test.spikes, source=0, window=1, buffers=BUFFERS),
    )
    print({k: round(v, 3) for k, v in c8.items()})
else:
    print(f"skipped at the {rt.profile} profile")

# %% tags=["remove-output"]
if rt.profile == "full":
    t_sp = np.arange(1000, 1600) / FRAME_RATE
    fig, ax = plotting.figure(5, 1, width=7, height=6.5, sharex=True)
    for ch, a in enumerate(ax[:, 0]):
        a.plot(t_sp, sp_test.fluorescence[0, ch, 1000:1600], color=plotting.COLORS["data"], lw=0.7)
        a.plot(t_sp, p_sp[0, ch, 1000:1600] - 1.2, color=plotting.COLORS["method"], lw=0.9)
        a.vlines(
            t_sp[sp_test.spikes[0, ch, 1000:1600] > 0], -1.3, -1.5, color=plotting.COLORS["truth"]
        )
        a.set_ylabel(("dendrite" if ch == 0 else f"spine {ch}") + "\nΔF (a.u.); p − 1.2")
    ax[0, 0].set_title("trace (grey), inferred p (orange), true spikes (black)")
    ax[-1, 0].set_xlabel("time (s)")
else:  # at the ci profile a placeholder keeps the numbered figure in place
    fig, ax = plotting.figure(1, 1, width=7, height=0.8)
    ax[0, 0].axis("off")
    ax[0, 0].text(0.5, 0.5, f"drawn at the full profile only (this run: {rt.profile})", ha="center")
plotting.save(fig, "deepspike", "fig6_spines")

# %% [markdown]
# ```{glue:figure} fig6_spines
# ---
# name: fig-deepspike-spines
# alt: >-
#   Five stacked panels against time in seconds, the dendrite and four spines of one held-out
#   branch: each shows the fluorescence trace, the inferred spike probability offset below it
#   and the true spikes as ticks. Drawn at the full profile only.
# ---
# One held-out dendritic branch, five channels: the trace (grey), the inferred probability
# (orange; bAPs on the dendrite row, synaptic inputs on the spine rows) and the true spikes
# (black).
# Where bAPs land in the spine rows' probabilities, the network has explained them as synaptic
# input. At the ci profile only a placeholder is drawn.
# ```

# %% [markdown]
# ## Controls
#
# A claim is worth something only if its rule would have rejected a wrong answer. Each claim
# below is judged on our number and on a **control**, a deliberately wrong answer of the same
# kind put through the same rule; if the control passes too, the claim is "inconclusive".
#
# * **DeepSpike's probabilities shifted by 10 frames** (167 ms, circularly) for the
#   correlation claims C1a, C1b, C2 and C5: right spike count and shape, wrong times;
# * for the timing claim C3, **amortisation removed**: the wall time per frame of the VAE fit
#   itself (what variational inference without a recognition network pays on every new data
#   set) in place of DeepSpike's forward pass;
# * for C4a, the **learned τ̂ assigned to the wrong cells** (shifted by one cell); for C4b, the
#   **decay at initialisation** (the same τ for every cell: nothing learned);
# * for C4c, the **untrained network** (the same architecture, freshly initialised).
#
# At the full profile only:
#
# * for C6, the M2-trained network's **probabilities shifted by 10 frames**, scored against the
#   misspecified M1 arm as the measured value is;
# * for C7a and C7b, an **untrained autoregressive network** (freshly initialised, with the
#   trained autoregressive VAE's learned θ for the bound) in place of the trained one;
# * for C8a and C8b, the spine network's **probabilities shifted by 10 frames**;
# * for C8c, **no separation**: the bAP probability copied into every spine channel
#   (each spine's probability replaced by the larger of its own and the bAP one).

# %%
SHIFT = 10
p_test_shifted = torch.as_tensor(p_test).roll(SHIFT, dims=-1)
r_shifted = [
    binned_correlation(p_test_shifted, test.spikes, bin_width=b, buffers=BUFFERS) for b in (1, 2)
]
tau_init = decay_time(
    LinearCalciumModel(train.n_cells).constrained()["gamma"].double(), FRAME_RATE
).numpy()
tau_corr_wrong = float(np.corrcoef(np.roll(tau_hat, 1), tau_true)[0, 1])
tau_rel_init = float(np.median(np.abs(tau_init - tau_true) / tau_true))
torch.manual_seed(rt.seed)
untrained = FactorisedSpikeCNN(cfg.channels, cfg.kernels, out_kernel=11)
count_untrained = spike_count_factor(
    untrained.spike_probability(train.fluorescence), train.spikes, buffers=BUFFERS
)
count_constant = spike_count_factor(torch.full_like(p_train, 0.015), train.spikes, buffers=BUFFERS)
speedup_fit = (gibbs_time / gibbs_f.numel()) / (vae_time / train.fluorescence.numel())
speedup_oasis = (gibbs_time / gibbs_f.numel()) / (t_oasis[-1] / frames[-1])
# full profile only: controls of C6-C8 (computed only when those experiments ran)
r2_m2_shifted = (
    binned_correlation(
        torch.as_tensor(p_m2["M2 model"]).roll(SHIFT, dims=-1),
        m2_test.spikes,
        bin_width=2,
        buffers=BUFFERS,
    )
    if r2_m2
    else None
)
c7_untrained = {}
if c7:
    vae_ar_untrained = SpikeVAE(AutoregressiveSpikeRNN(), vae_ar.generative, buffers=BUFFERS).to(
        rt.device
    )
    c7_untrained = dict(
        elbo=vae_ar_untrained.bound(m2_snippets, cfg.n_samples, rt.generator(3, device=rt.device)),
        sync=spike_sync(
            vae_ar_untrained.recognition.sample(m2_f, 4, rt.generator(4, device=rt.device))
            .reshape(-1, m2_f.shape[1])
            .cpu(),
            m2_s,
        ),
    )
c8_control = {}
if c8:
    p_sp_shifted = torch.as_tensor(p_sp).roll(SHIFT, dims=-1)
    p_sp_merged = torch.as_tensor(p_sp).clone()
    p_sp_merged[:, 1:] = torch.maximum(p_sp_merged[:, 1:], p_sp_merged[:, :1])
    c8_control = dict(
        bap=binned_correlation(
            p_sp_shifted[:, 0], sp_test.spikes[:, 0], bin_width=2, buffers=BUFFERS
        ),
        syn=binned_correlation(
            p_sp_shifted[:, 1:].reshape(-1, T_sp),
            sp_test.spikes[:, 1:].reshape(-1, T_sp),
            bin_width=2,
            buffers=BUFFERS,
        ),
        leak=misassigned_fraction(p_sp_merged, sp_test.spikes, source=0, window=1, buffers=BUFFERS),
    )

# %% tags=["nbval-check-output"]
print(
    f"DeepSpike shifted by {SHIFT} frames, held-out: r_1 {r_shifted[0]:.3f}, r_2 {r_shifted[1]:.3f}"
)
print(
    f"learned τ̂ on the wrong cells: Pearson {tau_corr_wrong:.3f}; τ at initialisation "
    f"({tau_init[0]:.2f} s for every cell): median relative error {tau_rel_init:.3f}"
)
print(
    f"spike-count factor: untrained network {count_untrained:.3f}, "
    f"constant rate 0.015/frame {count_constant:.3f}"
)
if r2_m2:
    print(
        f"M2, held-out: r_2 of the M2-trained network shifted by {SHIFT} frames {r2_m2_shifted:.3f}"
    )
if c7_untrained:
    print(
        f"M2, untrained autoregressive network: ELBO per 1000 frames {c7_untrained['elbo']:.1f}, "
        f"SPIKE-sync {c7_untrained['sync']:.3f}"
    )
if c8_control:
    print(
        f"spines, shifted by {SHIFT} frames: r_2 bAP {c8_control['bap']:.3f}, "
        f"synaptic {c8_control['syn']:.3f}; "
        f"bAP copied into the spine channels: misassigned fraction {c8_control['leak']:.3f}"
    )

# %% tags=["nbval-ignore-output"]
print(
    f"VAE fit: {vae_time:.1f} s for {train.fluorescence.numel()} frames "
    f"({vae_time / train.fluorescence.numel() * 1e6:.0f} µs/frame); "
    f"Gibbs over it: {speedup_fit:.1f}x"
)
print(f"Gibbs over OASIS per frame: {speedup_oasis:.0f}x")

# %% [markdown]
# ## Claims
#
# $r_b$ is the mean over traces of the Pearson correlation between the posterior spike
# probability and the true spikes, both summed into bins of $b$ frames ($b=1$: 16.7 ms,
# $b=2$: 33 ms), on frames outside the buffers. Thresholds are the book's targets for the
# active profile, set before the runs from the reference notebooks' numbers. C6–C8 need the
# full profile; at the ci profile they are listed as "full only" and never counted as held.

# %%
r1_test, r2_test = score["DeepSpike, held-out"]
r2_train = score["DeepSpike, training"][1]
r2_oasis = score["OASIS (g estimated)"][1]
tau_corr = float(np.corrcoef(tau_hat, tau_true)[0, 1])
tau_rel = float(np.median(np.abs(tau_hat - tau_true) / tau_true))
count_factor = spike_count_factor(p_train, train.spikes, buffers=BUFFERS)

res = ChapterResults("deepspike", rt, require_controls=True)
shift_label = f"p shifted by {SHIFT} frames"
res.add(
    Claim(
        "C1a",
        "r_1 (16.7 ms) of the VAE-trained CNN on held-out M1 cells",
        paper="0.85–0.86 on training cells (reference notebooks)",
        op=">=",
        threshold=cfg.c1_r1,
        measured=r1_test,
        control=r_shifted[0],
        control_label=shift_label,
    )
)
res.add(
    Claim(
        "C1b",
        "r_2 (33 ms) of the VAE-trained CNN on held-out M1 cells",
        paper="book's target (r_1 0.85, reference notebooks)",
        op=">=",
        threshold=cfg.c1_r2,
        measured=r2_test,
        control=r_shifted[1],
        control_label=shift_label,
    )
)
res.add(
    Claim(
        "C2",
        "r_2(DeepSpike) − r_2(OASIS, g estimated) on the same held-out traces",
        paper="competitive accuracy (abstract)",
        op=">=",
        threshold=cfg.c2_margin,
        measured=r2_test - r2_oasis,
        control=r_shifted[1] - r2_oasis,
        control_label=shift_label,
    )
)
res.add(
    Claim(
        "C3",
        "speed-up per frame of one forward pass over Gibbs MCMC",
        paper="faster than MCMC (abstract)",
        op=">=",
        threshold=100,
        measured=speedup,
        timing=True,
        control=speedup_fit,
        control_label="VAE fit time per frame (no amortisation)",
    )
)
res.add(
    Claim(
        "C4a",
        "Pearson corr of learned and true decay τ across training cells",
        paper="θ recovered (reference notebooks)",
        op=">=",
        threshold=0.8,
        measured=tau_corr,
        control=tau_corr_wrong,
        control_label="τ̂ assigned to the wrong cells",
    )
)
res.add(
    Claim(
        "C4b",
        "median |τ̂ − τ| / τ across training cells",
        paper="θ recovered (reference notebooks)",
        op="<=",
        threshold=cfg.c4_rel,
        measured=tau_rel,
        control=tau_rel_init,
        control_label="τ at initialisation, every cell",
    )
)
res.add(
    Claim(
        "C4c",
        "spike-count factor Σp / Σs on training cells",
        paper="1.03–1.10 (reference notebooks)",
        op="in",
        threshold=(0.8, 1.25),
        measured=count_factor,
        control=count_untrained,
        control_label="untrained network",
    )
)
res.add(
    Claim(
        "C5",
        "r_2(held-out) − r_2(training cells)",
        paper="inference on new traces (abstract)",
        op=">=",
        threshold=-0.05,
        measured=r2_test - r2_train,
        control=r_shifted[1] - r2_train,
        control_label=shift_label,
    )
)
res.add(
    Claim(
        "C6",
        "M2 data: r_2(M2 model) − r_2(misspecified M1 model), held-out cells",
        paper="r_1 ≈ 0.64 (reference notebooks)",
        op=">=",
        threshold=0.05,
        profiles=("full",),
        measured=r2_m2["M2 model"] - r2_m2["M1 model (misspecified)"] if r2_m2 else None,
        control=r2_m2_shifted - r2_m2["M1 model (misspecified)"] if r2_m2 else None,
        control_label=f"M2-trained p shifted by {SHIFT} frames",
    )
)
res.add(
    Claim(
        "C7a",
        "M2: ELBO per 1000 frames of the AR posterior − factorised",
        paper="book's target (AR ≥ factorised)",
        op=">=",
        threshold=0.0,
        profiles=("full",),
        measured=c7["autoregressive"]["elbo"] - c7["factorised"]["elbo"] if c7 else None,
        control=c7_untrained["elbo"] - c7["factorised"]["elbo"] if c7 else None,
        control_label="untrained AR network",
    )
)
res.add(
    Claim(
        "C7b",
        "M2: SPIKE-sync of AR posterior samples − factorised samples",
        paper="0.87 (reference notebooks)",
        op=">=",
        threshold=0.02,
        profiles=("full",),
        measured=c7["autoregressive"]["sync"] - c7["factorised"]["sync"] if c7 else None,
        control=c7_untrained["sync"] - c7["factorised"]["sync"] if c7 else None,
        control_label="untrained AR network",
    )
)
res.add(
    Claim(
        "C8a",
        "spines: r_2 of the inferred bAP train, held-out branches",
        paper="bAPs separated from synaptic inputs (abstract)",
        op=">=",
        threshold=0.8,
        profiles=("full",),
        measured=c8.get("bap"),
        control=c8_control.get("bap"),
        control_label=shift_label,
    )
)
res.add(
    Claim(
        "C8b",
        "spines: r_2 of the inferred synaptic trains, held-out branches",
        paper="bAPs separated from synaptic inputs (abstract)",
        op=">=",
        threshold=0.6,
        profiles=("full",),
        measured=c8.get("syn"),
        control=c8_control.get("syn"),
        control_label=shift_label,
    )
)
res.add(
    Claim(
        "C8c",
        "spines: fraction of true bAPs claimed by a synaptic channel (p > 0.5 within ±1 frame)",
        paper="bAPs separated (abstract)",
        op="<=",
        threshold=0.10,
        profiles=("full",),
        measured=c8.get("leak"),
        control=c8_control.get("leak"),
        control_label="bAP p copied into spine channels",
    )
)

# %% tags=["nbval-check-output"]
print(res.table(timings=False))

# %%
# the numbers the text below quotes, as this run measured them (shown nowhere else)
_verdicts = res.verdicts()
res.glue(
    c4c_constant=float(count_constant),
    ds_us=float(t_ds[-1] / frames[-1] * 1e6),
    oasis_us=float(t_oasis[-1] / frames[-1] * 1e6),
    oasis_speedup=float(speedup_oasis),
    not_reproduced=", ".join(k for k, v in _verdicts.items() if v == "not reproduced") or "none",
    inconclusive=", ".join(k for k, v in _verdicts.items() if v == "inconclusive") or "none",
)

# %% [markdown]
# ## What held, what did not, and why
#
# The verdicts and numbers below are this run's; each claim is judged against a control, a
# wrong answer that its rule should reject (the table above gives the rules and controls).
#
# **Accuracy (C1, C2, C5).** Without seeing a spike, the VAE-trained network's held-out
# correlation with the true spikes is {glue:text}`C1a_ours:.3f` at 16.7 ms and
# {glue:text}`C1b_ours:.3f` at 33 ms (C1a: {glue:text}`C1a_verdict`, C1b:
# {glue:text}`C1b_verdict`), while the same probabilities shifted by 10 frames score
# {glue:text}`C1a_control:.3f` and {glue:text}`C1b_control:.3f`. At 33 ms its correlation
# minus that of OASIS with an estimated decay is {glue:text}`C2_ours:+.3f` (C2:
# {glue:text}`C2_verdict`; the shifted probabilities: {glue:text}`C2_control:+.3f`), and the
# held-out cells' correlation minus the training cells' is {glue:text}`C5_ours:+.3f` (C5:
# {glue:text}`C5_verdict`; the shifted probabilities: {glue:text}`C5_control:+.3f`).
#
# **Speed (C3).** Per frame, the Gibbs sampler takes {glue:text}`C3_ours:.0f` times as long as
# one forward pass (C3: {glue:text}`C3_verdict`), while the same ratio for fitting the VAE
# itself, which is what variational inference without a recognition network would pay for
# every new data set, is {glue:text}`C3_control:.1f` (the control).
#
# **Generative parameters (C4).** The learned decays' Pearson correlation with the true ones
# is {glue:text}`C4a_ours:.3f` (C4a: {glue:text}`C4a_verdict`), against
# {glue:text}`C4a_control:.2f` when the learned values are given to the wrong cells; their
# median relative error is {glue:text}`C4b_ours:.3f` (C4b: {glue:text}`C4b_verdict`), against
# {glue:text}`C4b_control:.2f` for the decay at initialisation. The network's expected number
# of spikes is {glue:text}`C4c_ours:.3f` times the true number (C4c: {glue:text}`C4c_verdict`;
# untrained: {glue:text}`C4c_control:.1f`).
#
# *Limits of these rules*: C4c checks only the total count, so it says nothing about timing,
# which C1 and C2 test: a constant rate at the prior's 0.015 per frame, which has no timing at
# all, scores {glue:text}`c4c_constant:.3f` (printed in the controls above) against the band
# [0.8, 1.25]. And C3 compares amortised inference with MCMC, as the paper does; OASIS, a MAP
# method with no posterior, is fast on a CPU too ({glue:text}`oasis_us:.2f` µs per frame
# against DeepSpike's {glue:text}`ds_us:.2f` µs; the Gibbs sampler takes
# {glue:text}`oasis_speedup:.0f` times as long per frame as OASIS here), and the chapter claims
# no speed advantage over it.
#
# *Not reproduced* in this run: {glue:text}`not_reproduced`; *inconclusive*:
# {glue:text}`inconclusive`. C6–C8 (a nonlinear indicator, a correlated posterior, dendritic
# spines) need the full profile and are not counted here; there each has a control.
# C6: the M2-trained network's probabilities shifted by 10 frames, less the misspecified arm.
# C7a: the bound of an untrained autoregressive network in place of the trained one.
# C7b: the SPIKE-sync of that untrained network's samples.
# C8a: the bAP probabilities shifted by 10 frames.
# C8b: the synaptic probabilities shifted by 10 frames.
# C8c: the bAP probability copied into every spine channel, i.e. no separation.

# %% tags=["nbval-ignore-output"]
print(res.table())
res.save()
for k, v in rt.provenance().items():
    print(f"{k:14s} {v}")

# %%
res.check()
