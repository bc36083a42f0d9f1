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
# # Parallel sampling of autoregressive spike posteriors (discrete flows)
#
# **Paper.** L. Aitchison, V. Adam, S. C. Turaga, *Discrete flow posteriors for variational
# inference in discrete dynamical systems*, 2018 preprint, submitted to ICLR 2019
# ([OpenReview HyxOIoRqFQ](https://openreview.net/forum?id=HyxOIoRqFQ)).
#
# The previous chapter (DeepSpike) inferred spikes with a **factorised** posterior
# $q(s\mid f)=\prod_t q(s_t\mid f)$. It cannot say "one spike, in frame $t$ *or* in frame
# $t+1$, not both", nor explain away a spike of one cell by the spike of another. An
# **autoregressive** (AR) posterior $q(s\mid f)=\prod_t q(s_t\mid s_{<t}, f)$ can, but a sample
# is drawn one frame after the other, $T$ dependent steps. The paper draws the *same* sample by
# a fixed-point iteration that updates every frame in parallel and stops after $K\ll T$
# iterations, and trains the AR posterior inside variational inference with relaxed
# (differentiable) versions of these samples, for spike inference from calcium imaging and for
# the connectivity between several imaged cells.
#
# **What the paper claims** (its abstract; the paper body was not available to the book's
# authors, so the settings below and every threshold are the book's, stated where used): the
# fixed-point iteration gives exactly the sequential sample (C1) after few iterations (C2) and
# is therefore much faster (C3); correlated posteriors fit better and show the dependencies a
# factorised one cannot (C4), give accurate uncertainty (C5) and accurate connectivity
# estimates for several cells "in an order of magnitude less time" (C6).
#
# **Figures.** The fixed-point iterations as an image; iterations against sequence length;
# sampling time of the two samplers; posterior samples around an ambiguous event; calibration of
# spike counts; estimated against true connectivity.

# %% tags=["parameters"]
profile = "ci"
seed = 0
device = "auto"

# %% [markdown]
# Every size below comes from the profile: `ci` runs on two CPU cores in about a minute and
# checks C1–C4 and a small version of C6; `full` runs on one GPU with longer sequences, more
# data and DeepSpike's reference network, and adds the GPU timing, calibration (C5) and the
# ten-cell connectivity run.

# %%
import time

import numpy as np
import torch
from matplotlib.colors import ListedColormap
from matplotlib.ticker import NullLocator

from neuroinverse import plotting
from neuroinverse.inference import (
    CoupledCalciumModel,
    FlowSpikePosterior,
    LinearCalciumModel,
    RelaxedFlowVAE,
    example_ar_posterior,
    fit_spike_vae,
    fixed_point_sample,
    fresh_noise_iteration,
    glm_connectivity,
    linear_model_init,
    make_snippets,
    prefix_agreement,
    sequential_sample,
    spike_elbo,
    train_spike_vae,
    two_stage_connectivity,
)
from neuroinverse.metrics import (
    ambiguous_pairs,
    connection_auc,
    connectivity_correlation,
    count_coverage,
    lag1_correlation,
    off_diagonal,
)
from neuroinverse.models import FactorisedSpikeCNN
from neuroinverse.results import ChapterResults, Claim
from neuroinverse.runtime import background, setup, time_call
from neuroinverse.simulators import simulate_coupled, simulate_linear

rt = setup(profile=profile, seed=seed, device=device)
cfg = rt.select(
    ci=dict(
        c1_batch=256,
        c1_frames=1000,
        sweep_frames=(250, 500, 1000, 2000, 4000),
        timing_frames=(1000, 2000, 4000),
        long_frames=4000,
        control_cap=250,
        n_traces=10,
        n_train=8,
        n_frames=6000,
        channels=(16, 16, 16),
        kernels=(31, 21, 11),
        steps=500,
        batch=16,
        vimco_samples=16,
        relaxed_samples=2,
        flow_iter=15,
        c4_margin=0.0,
        c6_auc=0.8,
        n_neurons=4,
        c_frames=20000,
        c_steps=300,
        c_batch=4,
        seq_cap_s=15.0,
    ),
    full=dict(
        c1_batch=64,
        c1_frames=10000,
        sweep_frames=(250, 500, 1000, 2000, 4000, 8000, 16000),
        timing_frames=(250, 1000, 4000, 10000, 16000),
        long_frames=10000,
        control_cap=250,
        n_traces=30,
        n_train=24,
        n_frames=10000,
        channels=(30, 25, 25, 20, 15),
        kernels=(31, 21, 21, 13, 11),
        steps=5000,
        batch=20,
        vimco_samples=64,
        relaxed_samples=4,
        flow_iter=20,
        c4_margin=2.0,
        c6_auc=0.9,
        n_neurons=10,
        c_frames=100000,
        c_steps=5000,
        c_batch=8,
        seq_cap_s=600.0,
    ),
)
FULL = rt.profile == "full"  # the full profile's experiments (run at ci sizes by a smoke run)
FRAME_RATE, RATE = 60.0, 2.0 / 60.0  # frames per second; prior spike probability per frame (2 Hz)
BUFFERS = (100, 50)  # frames left out at the start and end of every snippet and trace
LAGS, TEMPERATURE = 10, 0.5  # frames of past spikes the posterior sees; relaxation temperature λ
RASTER = ListedColormap(["white", plotting.COLORS["method"]])  # spike rasters: no spike, spike
plotting.apply_style()
print(f"profile={rt.profile} device={rt.device} threads={rt.threads}")

# %% [markdown]
# ## Part A: the sampler, without any training
#
# For one cell and frame $t$ the AR posterior's logit is
#
# $$\ell_t(s)=a_t+\sum_{k=1}^{L}V_k\,s_{t-k},\qquad q(s_t=1\mid s_{<t})=\sigma(\ell_t),$$
#
# with $a$ the output of an encoder that sees the whole trace and $V$ a causal kernel over past
# spikes. Draw uniform noise $u$ once and let $G(s)_t=\mathbb 1[u_t<\sigma(\ell_t(s))]$. The
# sequential sampler fills in $s_1, s_2, \dots$ one frame at a time. The fixed-point sampler
# starts from the factorised draw $s^{(0)}=G(0)$ and iterates $s^{(k+1)}=G(s^{(k)})$ on all
# frames at once. Frame $t$ of $G(s)$ depends only on frames before $t$, so after $k$
# iterations frames $1\dots k+1$ are right, and a fixed point *is* the sequential sample: the
# iteration stops at the first $k$ with $s^{(k+1)}=s^{(k)}$, exactly. In floating point "the
# same sample" needs one precaution, taken in the library: both samplers add the kernel's terms
# to $a$ in the same order, and with binary spikes every product $V_k s_{t-k}$ is exact, so the
# logits are the same numbers in both and are compared with the same $\operatorname{logit}u_t$.
#
# A test problem without training (the book's choice): $a_t=\operatorname{logit}(0.03)$
# plus Gaussian bumps of height 2–4 (SD 1.5 frames) at random times (probability 0.03 per
# frame), and a refractory kernel
# $V_k=-2e^{-k/3}$, $L=10$, which makes neighbouring frames explain each other away.

# %%
gen_a = rt.generator(1)
a, kernel = example_ar_posterior(cfg.c1_batch, cfg.c1_frames, generator=gen_a)
noise = torch.rand(a.shape, generator=gen_a)
a, kernel, noise = a.to(rt.device), kernel.to(rt.device), noise.to(rt.device)
fp = fixed_point_sample(a, kernel, noise, trajectory=True)
seq = sequential_sample(a, kernel, noise)
c1 = dict(
    exact=float((fp.spikes == seq).all(-1).float().mean()),
    prefix=prefix_agreement(fp.trajectory, seq),
    truncated=float(
        (fixed_point_sample(a, kernel, noise, max_iter=1).spikes == seq).all(-1).float().mean()
    ),
)
fresh = fresh_noise_iteration(
    a,
    kernel,
    noise,
    generator=rt.generator(2, device=rt.device),
    max_iter=cfg.control_cap,
    trajectory=True,
)
c1.update(
    fresh_exact=float((fresh.spikes == seq).all(-1).float().mean()),
    fresh_prefix=prefix_agreement(fresh.trajectory, seq),
)
print(
    f"{cfg.c1_batch} sequences x {cfg.c1_frames} frames: fixed point = sequential (bitwise) in "
    f"{c1['exact']:.0%} of sequences, after at most {int(fp.iterations.max())} iterations "
    f"({fp.n_passes} parallel passes); prefix property held in {c1['prefix']:.0%} of "
    "(iteration, sequence) pairs"
)

# %% [markdown]
# How many iterations $K^*$ does a sequence need, for 256 sequences of $T=1000$ frames,
# and as the sequences grow? Each point of the sweep is a fresh batch of 256 sequences.


# %%
def iterations_at(n_frames, offset):
    g = rt.generator(offset)
    logits, k = example_ar_posterior(256, n_frames, generator=g)
    u = torch.rand(logits.shape, generator=g)
    return fixed_point_sample(
        logits.to(rt.device), k.to(rt.device), u.to(rt.device)
    ).iterations.cpu()


kstar = {
    T: iterations_at(T, 10 + i)
    for i, T in enumerate(sorted({1000, cfg.long_frames, *cfg.sweep_frames}))
}
k1000 = kstar[1000].double()
c2 = dict(median=float(k1000.median()), p99=float(torch.quantile(k1000, 0.99)))
fresh_k = fresh.iterations.double()
c2.update(fresh_median=float(fresh_k.median()), fresh_p99=float(torch.quantile(fresh_k, 0.99)))
print(
    f"T = 1000: median K* {c2['median']:.0f}, 99th percentile {c2['p99']:.1f}, "
    f"max {int(k1000.max())}"
)
print("median K* by T:", {T: int(k.median()) for T, k in kstar.items()})

# %% [markdown]
# ## The iterations at work
#
# {numref}`fig-discrete-flows-iterations` follows the iterates of one sequence.

# %% tags=["remove-output"]
worst = int(fp.iterations.argmax())
agree = (fp.trajectory[:, worst] == seq[worst]).cpu().numpy()
fig, ax = plotting.figure(1, 1, width=7, height=2.6)
a0 = ax[0, 0]
a0.imshow(agree, aspect="auto", interpolation="nearest", cmap="RdYlGn", vmin=0, vmax=1)
a0.plot(
    np.arange(agree.shape[0]) + 1,
    np.arange(agree.shape[0]),
    "k--",
    lw=0.8,
    label="guarantee: frames ≤ k + 1",
)
a0.set_xlim(0, cfg.c1_frames - 1)
a0.set_xlabel("frame t")
a0.set_ylabel("iteration k")
a0.set_title("s⁽ᵏ⁾ agrees with the sequential sample (green) or not (red)")
a0.legend(loc="lower right")
plotting.save(fig, "discrete-flows", "fig1_iterations")

# %% [markdown]
# ```{glue:figure} fig1_iterations
# ---
# name: fig-discrete-flows-iterations
# alt: >-
#   A map of iteration k (rows, from 0 at the top) against frame t (columns): green where the
#   iterate agrees with the sequential sample, red where not, with a dashed line marking the
#   frames the theory guarantees.
# ---
# One sequence (the one that needed the most iterations). Row $k$ shows which frames of
# $s^{(k)}$ agree with the sequential sample; the dashed line is the guarantee (frames up to
# $k+1$ are always right). Most frames are right from the start; a few corrections travel a
# short way forward and the iteration stops, here after {glue:text}`k_worst` iterations, where
# the guarantee alone would allow up to $T-1$.
# ```

# %% [markdown]
# ## Iterations against sequence length
#
# {numref}`fig-discrete-flows-iterations-vs-t` shows how many iterations the fixed point needs
# as the sequences grow longer.

# %% tags=["remove-output"]
Ts = np.array(sorted(kstar))
fig, ax = plotting.figure(1, 2, width=7, height=2.9)
ax[0, 0].hist(k1000.numpy(), bins=np.arange(k1000.max() + 2) - 0.5, color=plotting.COLORS["method"])
ax[0, 0].set_xlabel("iterations to the fixed point K*")
ax[0, 0].set_ylabel("sequences (of 256)")
ax[0, 0].set_title("T = 1000 frames")
med = [float(kstar[T].double().median()) for T in Ts]
p99 = [float(torch.quantile(kstar[T].double(), 0.99)) for T in Ts]
ax[0, 1].loglog(Ts, Ts, color="0.5", ls="--", label="sequential: T steps")
ax[0, 1].loglog(
    Ts, np.maximum(med, 0.5), "o-", color=plotting.COLORS["method"], label="fixed point: median K*"
)
ax[0, 1].loglog(
    Ts, np.maximum(p99, 0.5), "s:", color=plotting.COLORS["method"], label="fixed point: 99th pct"
)
ax[0, 1].set_xticks(Ts, [f"{T:,}" for T in Ts], rotation=45)
ax[0, 1].xaxis.set_minor_locator(NullLocator())
ax[0, 1].set_xlabel("sequence length T (frames)")
ax[0, 1].set_ylabel("dependent steps")
ax[0, 1].legend()
plotting.save(fig, "discrete-flows", "fig2_iterations_vs_T")

# %% [markdown]
# ```{glue:figure} fig2_iterations_vs_T
# ---
# name: fig-discrete-flows-iterations-vs-t
# alt: >-
#   Left: a histogram of the number of iterations to the fixed point over 256 sequences of 1000
#   frames. Right: log-log plot of dependent steps against sequence length, with the median and
#   99th percentile of the iterations and the sequential sampler's T steps as a dashed line.
# ---
# Left: the distribution of $K^*$ at $T=1000$ (at most {glue:text}`k1000_max` iterations).
# Right: median and 99th percentile of $K^*$ against $T$, with the $T$ dependent steps of the
# sequential sampler for reference: the iterations barely grow with $T$.
# ```

# %% [markdown]
# ## Wall time of the two samplers
#
# {numref}`fig-discrete-flows-timing` times both samplers. Timings are machine-dependent and are
# not a pass/fail claim here: the chapter's speed claim C3a counts dependent steps (work), and
# the timing target for two CPU cores is measured by `benchmarks/discrete_flows.py`.


# %% tags=["remove-output"]
def sampler_times(n_frames, dev):
    g = rt.generator(40)
    logits, k = example_ar_posterior(32, n_frames, generator=g)
    u = torch.rand(logits.shape, generator=g)
    logits, k, u = logits.to(dev), k.to(dev), u.to(dev)
    t_seq = time_call(lambda: sequential_sample(logits, k, u), repeats=3, warmup=1)
    t_fp = time_call(lambda: fixed_point_sample(logits, k, u), repeats=3, warmup=1)
    return t_seq, t_fp, fixed_point_sample(logits, k, u).n_passes


devices = [torch.device("cpu")] + ([rt.device] if rt.device.type == "cuda" else [])
timing = {(d.type, T): sampler_times(T, d) for d in devices for T in cfg.timing_frames}
T3 = max(cfg.timing_frames)
passes_3 = timing[("cpu", T3)][2]
fig, ax = plotting.figure(1, 1, width=5, height=3.3)
for d, style in zip(devices, ["-", "--"], strict=False):
    Tt = list(cfg.timing_frames)
    ax[0, 0].loglog(
        Tt,
        [timing[(d.type, T)][0] for T in Tt],
        "o" + style,
        color=plotting.COLORS["baseline"],
        label=f"sequential ({d.type})",
    )
    ax[0, 0].loglog(
        Tt,
        [timing[(d.type, T)][1] for T in Tt],
        "s" + style,
        color=plotting.COLORS["method"],
        label=f"fixed point ({d.type})",
    )
ax[0, 0].set_xticks(cfg.timing_frames, [f"{T:,}" for T in cfg.timing_frames])
ax[0, 0].xaxis.set_minor_locator(NullLocator())
ax[0, 0].set_xlabel("sequence length T (frames)")
ax[0, 0].set_ylabel("wall time for 32 sequences (s)")
ax[0, 0].legend()
plotting.save(fig, "discrete-flows", "fig3_timing")

# %% [markdown]
# ```{glue:figure} fig3_timing
# ---
# name: fig-discrete-flows-timing
# alt: >-
#   Log-log plot of wall time in seconds for 32 sequences against sequence length in frames, one
#   line of markers each for the sequential sampler and the fixed-point iteration, per device.
# ---
# A batch of 32 sequences, drawn by the sequential loop over frames and by the fixed-point
# iteration, median of three runs, on this machine's CPU (one thread at the ci profile) and on
# the GPU when the chapter runs on one. The speed-up is the ratio of the two
# ({glue:text}`cpu_speedup:.1f` on the CPU at the longest sequences in this run).
# ```

# %% tags=["nbval-ignore-output"]
for (dev_type, T), (t_seq, t_fp, _) in timing.items():
    print(
        f"{dev_type}, T = {T:5d}: sequential {t_seq * 1e3:8.1f} ms, "
        f"fixed point {t_fp * 1e3:6.1f} ms, "
        f"speed-up {t_seq / t_fp:5.1f}x"
    )

# %% tags=["nbval-check-output"]
print(
    f"T = {T3}, 32 sequences: {T3} sequential steps against {passes_3} parallel passes "
    f"({T3 / passes_3:.0f}x fewer)"
)

# %% [markdown]
# ## Part B: a correlated posterior for one cell
#
# One cell imaged for ten traces of 100 s at 60 Hz, firing at 2 Hz, with the linear calcium
# model of the DeepSpike chapter: $c_t=\gamma c_{t-1}+s_t$,
# $f_t=\alpha c_t+\beta+\sigma\varepsilon_t$, with $\gamma=0.96$ ($\tau=0.41$ s), $\alpha=0.35$,
# $\beta=0$, $\sigma=0.12$ (a single-spike SNR of 2.9, inside the ranges of that chapter). Eight
# traces train, two are held out.
#
# Both posteriors use the same network, DeepSpike's factorised CNN (for the AR posterior
# without its sigmoid: it gives $a$), the same initial weights and the same number of steps:
#
# * **factorised**, trained with the DeepSpike chapter's estimator (VIMCO, $K=16$ samples at ci,
#   64 at full);
# * **autoregressive**, $\ell=a(f)+V*s_{<t}$ with a learned kernel $V$ over $L=10$ past frames,
#   trained by the paper's relaxed flow: from the same noise $u$,
#   $\tilde s^{(k+1)}=\sigma\big((\ell(\tilde s^{(k)})-\operatorname{logit}u)/\lambda\big)$ with
#   $\lambda=0.5$, 15 iterations at ci (20 at full); the relaxed $\tilde s$ is inserted into every
#   Bernoulli pmf of the ELBO, and the gradients are reparameterised (two samples per snippet at
#   ci, four at full).
#
# The calcium parameters $\theta$ are held at their true values here (a book choice). Then
# $\log p(f)$ is the same for both posteriors and the difference of their ELBOs is exactly the
# difference of their KL divergences from the true posterior. (Learning $\theta$ jointly, as
# DeepSpike does, drifted with the AR posterior in the book's trials towards smaller spikes and
# more of them, to about half the amplitude and twice the spikes with the relaxed flow: at this
# SNR two half-spikes in neighbouring frames fit a trace almost as well as one spike.)

# %%
true_calcium = dict(gamma=0.96, alpha=0.35, beta=0.0, sigma=0.12)
one_cell = {k: torch.full((cfg.n_traces,), v, dtype=torch.float64) for k, v in true_calcium.items()}
cell = simulate_linear(
    cfg.n_traces,
    cfg.n_frames,
    rate_hz=2.0,
    frame_rate=FRAME_RATE,
    generator=rt.generator(3),
    params=one_cell,
)
train_f, test_f, test_s = (
    cell.fluorescence[: cfg.n_train],
    cell.fluorescence[cfg.n_train :],
    cell.spikes[cfg.n_train :],
)
snippets = make_snippets(train_f, length=300, stride=150).reshape(
    1, -1, 300
)  # one cell: all snippets share θ
print(
    f"{cfg.n_traces} traces x {cfg.n_frames} frames, {int(cell.spikes.sum())} spikes; "
    f"training snippets {tuple(snippets.shape)}"
)


def calcium_model():
    return LinearCalciumModel(1, init=linear_model_init(**true_calcium)).requires_grad_(False)


def train_factorised(progress=True):
    torch.manual_seed(rt.seed)  # the same initial weights as the AR posterior's encoder
    return fit_spike_vae(
        FactorisedSpikeCNN(cfg.channels, cfg.kernels, out_kernel=11),
        calcium_model(),
        snippets,
        device=rt.device,
        prior_rate=RATE,
        buffers=BUFFERS,
        n_steps=cfg.steps,
        batch_size=cfg.batch,
        n_samples=cfg.vimco_samples,
        seed=rt.seed,
        progress=progress,
    )


# on the CPU the factorised posterior trains in a background process on the second core
fact_job = background(train_factorised, progress=False) if rt.device.type == "cpu" else None
torch.manual_seed(rt.seed)
ar_posterior = FlowSpikePosterior(
    FactorisedSpikeCNN(cfg.channels, cfg.kernels, out_kernel=11),
    lags=LAGS,
    temperature=TEMPERATURE,
    n_iter=cfg.flow_iter,
)
ar = RelaxedFlowVAE(ar_posterior, calcium_model(), prior_rate=RATE, buffers=BUFFERS).to(rt.device)
t0 = time.perf_counter()
ar_history = train_spike_vae(
    ar,
    snippets,
    n_steps=cfg.steps,
    batch_size=cfg.batch,
    n_samples=cfg.relaxed_samples,
    seed=rt.seed,
)
ar_time = time.perf_counter() - t0
fact, fact_history = fact_job.result() if fact_job else train_factorised()

# %% [markdown]
# Held-out evaluation: the ELBO per 1000 frames with hard samples and the exact pmf of each
# posterior (32 samples per trace); the pairs of neighbouring frames where the *factorised*
# posterior is unsure of both ($0.3<p_t,p_{t+1}<0.7$), and there the correlation across 256
# samples of $s_t$ and $s_{t+1}$; and the coverage of true spike counts in 10-frame windows by
# the central 90% interval of the sampled counts.

# %%
test_dev = test_f.to(rt.device)
elbo = {
    name: spike_elbo(vae, test_dev, n_samples=32, generator=rt.generator(5, device=rt.device))
    for name, vae in [("factorised", fact), ("autoregressive", ar)]
}
no_kernel = RelaxedFlowVAE(
    FlowSpikePosterior(ar_posterior.encoder, lags=LAGS, coupled=False),
    ar.generative,
    prior_rate=RATE,
    buffers=BUFFERS,
).to(rt.device)
elbo["AR network, kernel removed"] = spike_elbo(
    no_kernel, test_dev, n_samples=32, generator=rt.generator(5, device=rt.device)
)
p_fact = fact.spike_probability(test_f)
pairs = ambiguous_pairs(p_fact, low=0.3, high=0.7, buffers=BUFFERS)
samples = {
    name: vae.recognition.sample(test_dev, 256, rt.generator(6, device=rt.device)).cpu()
    for name, vae in [("factorised", fact), ("autoregressive", ar)]
}
lag1 = {name: lag1_correlation(s, pairs)[0] for name, s in samples.items()}
coverage = {
    name: count_coverage(s, test_s, window=10, level=0.9, buffers=BUFFERS)
    for name, s in samples.items()
}
shifted_cov = count_coverage(
    samples["autoregressive"].roll(10, -1), test_s, window=10, level=0.9, buffers=BUFFERS
)


def worst_coverage(cov, min_windows=20):
    return min(c for c, n in cov.values() if n >= min_windows)


# %% tags=["nbval-check-output"]
print(
    f"learned kernel V_1..V_{LAGS}: "
    f"{np.round((ar_posterior.kernel[0, 0, 1:]).detach().cpu().numpy(), 1)}"
)
for name, value in elbo.items():
    print(f"held-out ELBO, {name:28s} {value:9.1f} nats / 1000 frames")
print(
    f"{len(pairs)} ambiguous pairs of frames in the factorised posterior (0.3 < p_t, p_t+1 < 0.7)"
)
for name in samples:
    cov = {c: f"{f:.2f} ({n})" for c, (f, n) in coverage[name].items()}
    print(
        f"{name:15s} lag-1 correlation there {lag1[name]:+.3f}; "
        f"coverage by true count (windows): {cov}"
    )

# %% [markdown]
# ## Posterior samples around ambiguous events
#
# {numref}`fig-discrete-flows-rasters` draws samples of both posteriors where the spike times are
# ambiguous.

# %% tags=["remove-output"]
trace, t_amb = (int(x) for x in pairs[0]) if len(pairs) else (0, 1000)
win = np.arange(max(t_amb - 25, 0), min(t_amb + 27, cfg.n_frames))
extent = [(win[0] - 0.5) / FRAME_RATE, (win[-1] + 0.5) / FRAME_RATE, 20.5, 0.5]
fig, ax = plotting.figure(3, 1, width=7, height=5.2, sharex=True)
ax[0, 0].plot(
    win / FRAME_RATE,
    test_f[trace, win],
    color=plotting.COLORS["data"],
    lw=0.9,
    label="fluorescence",
)
ax[0, 0].vlines(
    win[test_s[trace, win] > 0] / FRAME_RATE,
    1.1,
    1.4,
    color=plotting.COLORS["truth"],
    label="true spikes",
)
ax[0, 0].set_ylabel("ΔF (a.u.)")
ax[0, 0].legend(loc="upper left", ncol=2)
for a_, name in zip(ax[1:, 0], samples, strict=True):
    a_.imshow(
        samples[name][trace, :20][:, win].numpy(),
        aspect="auto",
        extent=extent,
        cmap=RASTER,
        vmin=0,
        vmax=1,
    )
    a_.set_ylabel("sample")
    a_.set_title(f"{name} posterior: 20 samples")
for a_ in ax[:, 0]:
    a_.axvspan(
        (t_amb - 0.5) / FRAME_RATE,
        (t_amb + 1.5) / FRAME_RATE,
        color=plotting.COLORS["reference"],
        alpha=0.15,
    )
ax[2, 0].set_xlabel("time (s); shaded: the two ambiguous frames")
plotting.save(fig, "discrete-flows", "fig4_rasters")

# %% [markdown]
# ```{glue:figure} fig4_rasters
# ---
# name: fig-discrete-flows-rasters
# alt: >-
#   Three stacked panels sharing a time axis in seconds: a held-out fluorescence trace with true
#   spike ticks, then 20 samples of the factorised and 20 of the autoregressive posterior as
#   spike rasters, one row per sample, with the two ambiguous frames shaded.
# ---
# Around the first pair of frames where the factorised posterior is unsure of both (shaded), on
# a held-out trace: the fluorescence and the true spikes (top), then 20 samples of each
# posterior, one per row. The factorised posterior draws the two frames independently
# (sometimes both, sometimes neither); in the AR posterior a spike in one frame changes the
# probability of one in the next through the learned kernel $V$ (printed above; a negative
# $V_1$ makes it unlikely).
# ```

# %% [markdown]
# ## Calibration of spike counts
#
# {numref}`fig-discrete-flows-calibration` checks the posteriors' uncertainty about spike counts.

# %% tags=["remove-output"]
counts = sorted(set(coverage["factorised"]) | set(coverage["autoregressive"]))
counts = [c for c in counts if coverage["factorised"].get(c, (0, 0))[1] >= 5]
fig, ax = plotting.figure(1, 1, width=5, height=3.0)
for i, (name, color) in enumerate(
    [("factorised", plotting.COLORS["baseline"]), ("autoregressive", plotting.COLORS["method"])]
):
    ax[0, 0].bar(
        np.arange(len(counts)) + 0.38 * (i - 0.5),
        [coverage[name][c][0] for c in counts],
        0.38,
        color=color,
        label=name,
    )
ax[0, 0].axhline(0.9, color="0.5", ls="--", lw=0.8, label="90%")
ax[0, 0].set_xticks(
    np.arange(len(counts)), [f"{c} ({coverage['factorised'][c][1]})" for c in counts]
)
ax[0, 0].set_xlabel("true spikes in the window (windows)")
ax[0, 0].set_ylabel("fraction covered")
ax[0, 0].legend(loc="lower left")
plotting.save(fig, "discrete-flows", "fig5_calibration")

# %% [markdown]
# ```{glue:figure} fig5_calibration
# ---
# name: fig-discrete-flows-calibration
# alt: >-
#   Grouped bar chart: for each true spike count in a 10-frame window, the fraction of windows
#   covered by the central 90% interval, for the factorised and the autoregressive posterior,
#   with a dashed line at 0.9.
# ---
# For 10-frame windows (167 ms) grouped by their true spike count: the fraction whose true
# count lies in the central 90% interval of the 256 sampled counts (numbers of windows in
# brackets). A calibrated posterior covers about 90% or more (the interval of a discrete count
# is conservative).
# ```

# %% [markdown]
# ## Part C: connectivity between cells
#
# Several cells imaged together, their spikes coupled through the previous frame:
# $s_{i,t}\sim\mathrm{Bern}(\sigma(b_i+\sum_j W_{ij}s_{j,t-1}))$ with
# $b_i=\operatorname{logit}(2\,\mathrm{Hz}/60\,\mathrm{Hz})$; each connection is present with
# probability 0.3, of strength 1.5–3 and random sign (an excitatory input raises a cell's spike
# probability in the next frame from 0.03 to 0.13–0.40).
# Each cell has its own calcium parameters, $\gamma\in[0.94,0.98]$, $\alpha\in[0.3,0.5]$,
# $\sigma\in[0.05,0.15]$. At ci: four cells for 20,000 frames (5.6 min); full: ten cells for
# 100,000 frames.
#
# The VAE's generative model now has the coupled spike prior, whose $b$ and $W$ are learned by
# maximising the ELBO (RMSprop, learning rate $10^{-2}$), with the calcium parameters known.
# Their gradient $\mathbb E_q[\nabla\log p(f,s)]$ needs no relaxation: the book estimates it
# from the exact fixed-point samples for the same noise, and uses the relaxed samples only for
# the posterior's gradient.
# The AR posterior applies the single-cell network of Part B to each cell's trace (it starts
# from the trained weights: amortised inference carries over to new cells), and its kernel
# $V$ couples all cells' past spikes. Baselines: the **two-stage** method (OASIS
# deconvolution, spikes thresholded at half the median amplitude, then a logistic GLM per cell
# on the previous frame's spikes) and the **oracle** (the same GLM on the true spikes).

# %%
rec = simulate_coupled(
    cfg.n_neurons, cfg.c_frames, generator=rt.generator(7), frame_rate=FRAME_RATE
)
w_true = rec.weights.numpy()
w_oracle, _ = glm_connectivity(rec.spikes)
w_two_stage, _ = two_stage_connectivity(rec.fluorescence)
rec_snippets = make_snippets(rec.fluorescence[None], length=300, stride=150)
print(
    f"{cfg.n_neurons} cells, {int((w_true != 0).sum())} connections of "
    f"{cfg.n_neurons * (cfg.n_neurons - 1)}; "
    f"snippets {tuple(rec_snippets.shape)}"
)


def coupled_vae(source, coupled=True, sequential=False):
    """The multi-cell VAE, its per-cell network initialised from a trained single-cell posterior."""
    post = FlowSpikePosterior(
        FactorisedSpikeCNN(cfg.channels, cfg.kernels, out_kernel=11),
        n_cells=cfg.n_neurons,
        lags=LAGS,
        coupled=coupled,
        temperature=TEMPERATURE,
        n_iter=cfg.flow_iter,
        per_cell=True,
    )
    post.encoder.load_state_dict(
        source.encoder.state_dict() if hasattr(source, "encoder") else source.state_dict()
    )
    if coupled and hasattr(source, "weights"):
        with torch.no_grad():  # each cell starts with Part B's refractory kernel on itself
            post.weights[torch.arange(cfg.n_neurons), torch.arange(cfg.n_neurons)] = source.weights[
                0, 0
            ].to(post.weights)
    model = CoupledCalciumModel(
        cfg.n_neurons, prior_rate=RATE, calcium=rec.params, learn_calcium=False
    )
    return RelaxedFlowVAE(post, model, buffers=BUFFERS, sequential=sequential).to(rt.device)


def train_coupled(vae, n_steps, clock=None):
    return train_spike_vae(
        vae,
        rec_snippets,
        n_steps=n_steps,
        batch_size=cfg.c_batch,
        n_samples=cfg.relaxed_samples,
        theta_lr=1e-2,
        seed=rt.seed,
        eval_fn=clock,
        eval_every=25 if clock else 0,
    )


def stopwatch():
    t0 = time.perf_counter()
    return lambda: {"seconds": time.perf_counter() - t0}


vae_c = coupled_vae(ar_posterior)
hist_c = train_coupled(vae_c, cfg.c_steps, stopwatch())
w_ar = vae_c.generative.constrained()["weights"].cpu().numpy()

# %% [markdown]
# At the full profile two more arms train for the same number of steps: the **factorised**
# posterior (Part B's factorised network on each cell, no kernel) and the AR posterior with its
# relaxed samples computed by the **sequential** loop over frames instead of the parallel flow
# (capped at 10 minutes). The time each arm needs to reach the ELBO that the sequential arm
# ends with is the paper's "order of magnitude less time".

# %%
w_fact, c6_time = None, {}
if FULL:
    vae_cf = coupled_vae(fact.recognition, coupled=False)
    train_coupled(vae_cf, cfg.c_steps)
    w_fact = vae_cf.generative.constrained()["weights"].cpu().numpy()
    vae_cs = coupled_vae(ar_posterior, sequential=True)
    t0 = time.perf_counter()
    train_coupled(vae_cs, 10)
    seq_steps = int(min(cfg.c_steps, cfg.seq_cap_s / ((time.perf_counter() - t0) / 10)))
    hist_cs = train_coupled(coupled_vae(ar_posterior, sequential=True), seq_steps, stopwatch())

    def time_to_reach(history, target, window=50):
        """Seconds until the running mean of the training ELBO over `window` steps first
        reaches `target`."""
        elbo = np.asarray(history.metrics["elbo_per_1000"])
        w = min(window, len(elbo))
        smooth = np.convolve(
            elbo, np.ones(w) / w, mode="valid"
        )  # smooth[i]: mean of steps i .. i + w − 1
        hits = [
            sec
            for step, sec in zip(history.eval_steps, history.evals["seconds"], strict=True)
            if step >= w and smooth[step - w] >= target
        ]
        return hits[0] if hits else np.inf

    target = float(np.mean(hist_cs.metrics["elbo_per_1000"][-min(50, seq_steps) :]))
    c6_time = dict(
        sequential=time_to_reach(hist_cs, target),
        fixed_point=time_to_reach(hist_c, target),
        steps=seq_steps,
    )
    print(c6_time)
else:
    print(f"the factorised and sequential arms are skipped at the {rt.profile} profile")

# %% [markdown]
# ## Estimated against true connectivity
#
# {numref}`fig-discrete-flows-connectivity` compares the estimated couplings with the true ones.

# %% tags=["remove-output"]
estimates = {
    "AR posterior (VAE)": w_ar,
    "two-stage (OASIS + GLM)": w_two_stage,
    "oracle (GLM on true spikes)": w_oracle,
}
if w_fact is not None:
    estimates["factorised posterior (VAE)"] = w_fact
colors = [plotting.COLORS[c] for c in ("method", "baseline", "truth", "baseline2")]
fig, ax = plotting.figure(1, 1, width=4.6, height=4.0)
lim = 1.2 * max(np.abs(off_diagonal(w)).max() for w in [w_true, *estimates.values()])
ax[0, 0].plot([-lim, lim], [-lim, lim], color="0.6", lw=0.8, label="identity")
for (name, w), c in zip(estimates.items(), colors, strict=False):
    ax[0, 0].plot(off_diagonal(w_true), off_diagonal(w), "o", color=c, alpha=0.7, label=name)
ax[0, 0].set_xlabel("true coupling W_ij (log-odds)")
ax[0, 0].set_ylabel("estimated coupling (log-odds)")
ax[0, 0].legend(fontsize=7)
plotting.save(fig, "discrete-flows", "fig6_connectivity")

# %% [markdown]
# ```{glue:figure} fig6_connectivity
# ---
# name: fig-discrete-flows-connectivity
# alt: >-
#   Scatter plot of estimated against true coupling in log-odds, one point per off-diagonal pair
#   of cells and one colour per method, with the identity line.
# ---
# Every off-diagonal entry $W_{ij}$ (input from cell $j$ to cell $i$): the VAE with the AR
# posterior, the two-stage baseline and the oracle GLM on the true spikes (and, at full, the
# factorised posterior). Absent connections sit at $W=0$; points on the identity line are
# estimated exactly.
# ```


# %%
def relabelled(w):
    """The estimate given to the wrong pairs: cells renumbered i → i + 1 (mod N)."""
    return np.roll(w, (-1, -1), axis=(0, 1))


scores = {
    name: (connectivity_correlation(w, w_true), connection_auc(w, w_true))
    for name, w in estimates.items()
}
scores["AR posterior, cells relabelled"] = (
    connectivity_correlation(relabelled(w_ar), w_true),
    connection_auc(relabelled(w_ar), w_true),
)

# %% tags=["nbval-check-output"]
print(f"{'estimate':34s} {'corr':>6s} {'AUC':>6s}")
for name, (r, auc) in scores.items():
    print(f"{name:34s} {r:6.3f} {auc:6.3f}")

# %% [markdown]
# ## Controls
#
# Each claim is judged on our number and on a **control**, a deliberately wrong answer of the
# same kind put through the same rule; if the control passes too the claim is "inconclusive".
#
# * C1a: the fixed point **stopped after one iteration**; C1b, C2a, C2b: the same iteration with
#   **fresh noise at every iteration** (the pitfall the sampler avoids: it never settles, so it
#   runs to its cap of 250 iterations);
# * C2c, C2d, C3a: **sequential sampling** itself, $T$ dependent steps;
# * C3b: the iteration **without early stopping** (fresh noise, all $T-1$ iterations): what
#   the parallel sampler would cost if it did not converge early;
# * C4a: the trained AR network with its **kernel removed** ($V=0$: the same encoder, no
#   dependencies); C4b: the **factorised** posterior's samples at the same pairs; C4c: the
#   **AR** samples there;
# * C5: the AR samples **shifted by one window** (10 frames);
# * C6a, C6b: the AR estimate **given to the wrong pairs** (cells relabelled); C6c: the
#   relabelled AR estimate against the factorised one; C6d: the parallel flow against itself
#   (no speed-up).

# %%
sweep_T = np.array(sorted(kstar))
doublings = np.log2(sweep_T[-1] / sweep_T[0])
growth = (
    float(kstar[sweep_T[-1]].double().median()) - float(kstar[sweep_T[0]].double().median())
) / doublings
c2.update(
    p99_frac=float(torch.quantile(kstar[cfg.long_frames].double(), 0.99)) / cfg.long_frames,
    growth=growth,
)
c3b = {}
if FULL:
    g = rt.generator(41)
    logits_b, k_b = example_ar_posterior(32, cfg.long_frames, generator=g)
    u_b = torch.rand(logits_b.shape, generator=g)
    logits_b, k_b, u_b = logits_b.to(rt.device), k_b.to(rt.device), u_b.to(rt.device)
    t_seq_b = time_call(lambda: sequential_sample(logits_b, k_b, u_b), repeats=3, warmup=1)
    t_fp_b = time_call(lambda: fixed_point_sample(logits_b, k_b, u_b), repeats=3, warmup=1)
    gen_b = rt.generator(42, device=rt.device)
    t_full_b = time_call(
        lambda: fresh_noise_iteration(logits_b, k_b, u_b, generator=gen_b), repeats=1, warmup=0
    )
    c3b = dict(speedup=t_seq_b / t_fp_b, control=t_seq_b / t_full_b)

# %% tags=["nbval-check-output"]
print(
    f"C1 controls: stopped after one iteration, {c1['truncated']:.0%} of sequences exact; "
    "fresh noise, "
    f"{c1['fresh_exact']:.0%} exact, prefix property in {c1['fresh_prefix']:.0%} of pairs"
)
print(
    f"C2 control (fresh noise, cap {cfg.control_cap}): median K* {c2['fresh_median']:.0f}, "
    f"99th percentile {c2['fresh_p99']:.0f}"
)
print(
    f"median K* grows by {growth:.2f} iterations per doubling of T "
    f"({sweep_T[0]} to {sweep_T[-1]} frames)"
)
print(
    f"C4 control: AR network without its kernel, "
    f"held-out ELBO {elbo['AR network, kernel removed']:.1f} / 1000 frames"
)
print(
    f"C5 control: AR samples shifted by 10 frames, worst coverage {worst_coverage(shifted_cov):.2f}"
)

# %% tags=["nbval-ignore-output"]
print(
    f"AR posterior, {cfg.steps} relaxed-flow steps: {ar_time:.1f} s; "
    f"coupled VAE: {hist_c.evals['seconds'][-1]:.1f} s"
)
if c3b:
    print(
        f"T = {cfg.long_frames} on {rt.device}: sequential over fixed point {c3b['speedup']:.1f}x; "
        f"over the iteration without early stopping {c3b['control']:.2f}x"
    )

# %% [markdown]
# ## Claims
#
# The paper's abstract gives no numbers; every threshold is the book's estimate for the
# active profile, set before the runs. Claims marked "full only" are listed at the ci profile
# and never counted as held there (C5's and C6b's ci numbers are shown, not judged).

# %%
res = ChapterResults("discrete-flows", rt, require_controls=True)
abstract = "exact and efficient sampling (abstract)"
fresh_label = f"fresh noise every iteration (cap {cfg.control_cap})"
seq_label = "sequential sampling: K = T"
relabel = "cells relabelled"
ar_scores, wrong_scores = scores["AR posterior (VAE)"], scores["AR posterior, cells relabelled"]
r_fact = scores["factorised posterior (VAE)"][0] if w_fact is not None else None
claims = [
    ("C1a", f"fraction of {cfg.c1_batch} sequences of {cfg.c1_frames} frames "
     "where fixed point = sequential, bitwise",
     abstract, ">=", 1.0, c1["exact"], c1["truncated"], "stopped after 1 iteration",
     ("ci", "full")),
    ("C1b", "fraction of (iteration k, sequence) pairs with s⁽ᵏ⁾ = sequential sample "
     "on frames 1..k+1",
     abstract, ">=", 1.0, c1["prefix"], c1["fresh_prefix"], fresh_label, ("ci", "full")),
    ("C2a", "median iterations K* to the fixed point, 256 sequences of 1000 frames",
     "K ≪ T (abstract)", "<=", 15, c2["median"], c2["fresh_median"], fresh_label, ("ci", "full")),
    ("C2b", "99th percentile of K*, 256 sequences of 1000 frames",
     "K ≪ T (abstract)", "<=", 60, c2["p99"], c2["fresh_p99"], fresh_label, ("ci", "full")),
    ("C2c", f"99th percentile of K* / T, T = {cfg.long_frames}",
     "K ≪ T (abstract)", "<=", 0.02, c2["p99_frac"] if FULL else None, 1.0, seq_label, ("full",)),
    ("C2d", f"growth of median K* per doubling of T, {sweep_T[0]} to {sweep_T[-1]} frames "
     "(logarithmic)",
     "K ≪ T (abstract)", "<=", 1.0, c2["growth"] if FULL else None,
     (sweep_T[-1] - sweep_T[0]) / doublings, seq_label, ("full",)),
    ("C3a", f"sequential steps / parallel passes, 32 sequences of {T3} frames",
     "efficient (abstract)", ">=", 5, T3 / passes_3, 1.0, seq_label, ("ci", "full")),
    ("C3b", f"wall-time speed-up over sequential sampling, 32 x {cfg.long_frames} frames, "
     f"{rt.device.type}",
     "an order of magnitude less time (abstract)", ">=", 10, c3b.get("speedup"), c3b.get("control"),
     "no early stopping (T − 1 iterations)", ("full",)),
    ("C4a", "held-out ELBO(AR) − ELBO(factorised), nats / 1000 frames, θ known",
     "correlated posteriors are better (abstract)", ">=", cfg.c4_margin,
     elbo["autoregressive"] - elbo["factorised"],
     elbo["AR network, kernel removed"] - elbo["factorised"], "AR network, kernel removed",
     ("ci", "full")),
    ("C4b", "lag-1 correlation of AR samples where the factorised posterior is ambiguous",
     "correlated posterior (abstract)", "<=", -0.2, lag1["autoregressive"], lag1["factorised"],
     "factorised samples", ("ci", "full")),
    ("C4c", "|lag-1 correlation| of factorised samples there",
     "book's check: factorised frames independent", "<=", 0.05, abs(lag1["factorised"]),
     abs(lag1["autoregressive"]), "AR samples", ("ci", "full")),
    ("C5", "worst coverage (true counts with ≥ 20 windows) of 10-frame counts "
     "by the AR 90% interval",
     "accurate uncertainty estimates (abstract)", ">=", 0.85,
     worst_coverage(coverage["autoregressive"]), worst_coverage(shifted_cov),
     "AR samples shifted by 10 frames", ("full",)),
    ("C6a", f"AUC for detecting connections, {cfg.n_neurons} cells, AR posterior",
     "accurate connectivity estimates (abstract)", ">=", cfg.c6_auc, ar_scores[1], wrong_scores[1],
     relabel, ("ci", "full")),
    ("C6b", f"corr(Ŵ, W) over off-diagonal entries, {cfg.n_neurons} cells, AR posterior",
     "accurate connectivity estimates (abstract)", ">=", 0.8, ar_scores[0], wrong_scores[0],
     relabel, ("full",)),
    ("C6c", "corr(Ŵ, W): AR posterior − factorised posterior",
     "correlated posterior needed (abstract)", ">=", 0.0, ar_scores[0] - r_fact if FULL else None,
     wrong_scores[0] - r_fact if FULL else None, "relabelled AR estimate", ("full",)),
    ("C6d", "time to reach the sequential arm's final ELBO: sequential / fixed point",
     "an order of magnitude less time (abstract)", ">=", 10,
     c6_time["sequential"] / c6_time["fixed_point"] if c6_time else None, 1.0,
     "fixed point against itself", ("full",)),
]  # fmt: skip
for cid, statement, paper, op, threshold, measured, control, label, profiles in claims:
    res.add(
        Claim(
            cid,
            statement,
            paper=paper,
            op=op,
            threshold=threshold,
            measured=measured,
            control=control,
            control_label=label,
            profiles=profiles,
            timing=cid in ("C3b", "C6d"),
        )
    )

# %% tags=["nbval-check-output"]
print(res.table(timings=False))

# %%
# the numbers the text below quotes, as this run measured them
res.glue(
    k_worst=int(fp.iterations[worst]),
    k1000_max=int(k1000.max()),
    passes_c3a=int(passes_3),
    cpu_speedup=float(timing[("cpu", T3)][0] / timing[("cpu", T3)][1]),
    elbo_fact=float(elbo["factorised"]),
    elbo_ar=float(elbo["autoregressive"]),
    elbo_no_kernel=float(elbo["AR network, kernel removed"]),
    n_pairs=len(pairs),
    lag1_fact=float(lag1["factorised"]),
    two_stage_corr=float(scores["two-stage (OASIS + GLM)"][0]),
    two_stage_auc=float(scores["two-stage (OASIS + GLM)"][1]),
    cov_fact=float(worst_coverage(coverage["factorised"])),
    not_held_ci=", ".join(
        f"{cid} ({v})" for cid, v in res.verdicts().items() if v not in ("held", "full only")
    )
    or "none",
)

# %% [markdown]
# ## What held, what did not, and why
#
# The verdicts and numbers below are this run's, and the sizes those of the `ci` profile (the
# rules and controls are in the table above; each control is a wrong answer put through the same
# rule).
#
# **Exact samples (C1).** The fixed-point iteration returned the sequential sample bit for bit
# in {glue:text}`C1a_ours:.0%` of the 256 sequences (C1a: {glue:text}`C1a_verdict`; stopped after
# one iteration: {glue:text}`C1a_control:.0%`), and in {glue:text}`C1b_ours:.0%` of (iteration,
# sequence) pairs the iterate was right up to the frame the theory guarantees (C1b:
# {glue:text}`C1b_verdict`; with fresh noise at every iteration: {glue:text}`C1b_control:.0%`).
#
# **Few iterations (C2, C3a).** For 1000 frames the iteration needed a median of
# {glue:text}`C2a_ours:.0f` iterations, a 99th percentile of {glue:text}`C2b_ours:.1f` and at
# most {glue:text}`k1000_max` (C2a: {glue:text}`C2a_verdict`, C2b: {glue:text}`C2b_verdict`;
# with fresh noise the median is {glue:text}`C2a_control:.0f`, against its cap of 250), so 32
# sequences of 4000 frames took {glue:text}`passes_c3a` parallel passes instead of 4000 dependent
# steps (C3a: {glue:text}`C3a_verdict`). On this run's CPU that was a wall-clock speed-up of
# {glue:text}`cpu_speedup:.1f`x (printed above; it depends on the machine and its load, so it is
# not judged here).
#
# **A correlated posterior (C4).** With the same network, initial weights and number of steps,
# the AR posterior trained by the relaxed flow reached a held-out ELBO of
# {glue:text}`elbo_ar:.1f` nats per 1000 frames and the factorised posterior trained by VIMCO
# {glue:text}`elbo_fact:.1f`: AR minus factorised, {glue:text}`C4a_ours:.0f` nats (C4a:
# {glue:text}`C4a_verdict`); the same AR network with its kernel removed reached
# {glue:text}`elbo_no_kernel:.1f`, {glue:text}`C4a_control:.0f` from the factorised posterior.
# The difference comes from explaining away: where the factorised posterior is unsure of two
# neighbouring frames, it draws them independently, so its samples take both or neither about as
# often as one (lag-1 correlation over the {glue:text}`n_pairs` ambiguous pairs
# {glue:text}`lag1_fact:+.3f`, C4c: {glue:text}`C4c_verdict`), and a missed or doubled spike
# costs tens of nats under the slow calcium transient; the AR posterior can put one spike in one
# of the two (lag-1 correlation {glue:text}`C4b_ours:+.3f` against the rule ≤ −0.2, C4b:
# {glue:text}`C4b_verdict`).
#
# **Connectivity (C6a).** With four coupled cells the VAE with the AR posterior detected the
# connections with an AUC of {glue:text}`C6a_ours:.3f` (C6a: {glue:text}`C6a_verdict`; the same
# estimate given to the wrong pairs of cells: {glue:text}`C6a_control:.3f`), and its estimate
# correlates {glue:text}`C6b_ours:.3f` with the truth (C6b, shown, not judged at `ci`).
#
# *Limits of these results.* The calcium parameters were held at their true values; learning
# them jointly with the AR posterior drifted, in the book's trials, towards half the spike
# amplitude with twice the spikes, a degeneracy the data barely constrain at this noise level. At
# four cells the two-stage baseline (OASIS, then a GLM) reaches an AUC of
# {glue:text}`two_stage_auc:.3f` and a correlation of {glue:text}`two_stage_corr:.3f`, against the
# VAE's {glue:text}`C6a_ours:.3f` and {glue:text}`C6b_ours:.3f`: a run this small can test whether
# the method works (C6a), not whether it is better. Spike-count coverage (C5) is shown, not judged,
# at `ci`: the worst coverage is {glue:text}`cov_fact:.2f` for the factorised posterior and
# {glue:text}`C5_ours:.2f` for the AR posterior (the AR samples shifted by 10 frames:
# {glue:text}`C5_control:.2f`). A posterior that is too broad covers nearly every window, so
# coverage separates the posteriors only where the factorised one is sharp enough to miss; the
# full profile looks for that lower coverage of the factorised posterior. C4c is a property of
# the baseline (independent frames), checked as a calibration of the C4b metric.
#
# *Not reproduced or inconclusive at `ci`*: {glue:text}`not_held_ci`. The long sequences (C2c,
# C2d), the GPU speed-up (C3b), calibration (C5), the ten-cell connectivity (C6b, C6c) and the
# training-time comparison with sequential sampling (C6d) need the full profile and are not
# counted here; each has a control.

# %% tags=["nbval-ignore-output"]
print(res.table())
res.save()
for k, v in rt.provenance().items():
    print(f"{k:14s} {v}")

# %%
res.check()
