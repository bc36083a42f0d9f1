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
# # Deep single-molecule localisation with temporal context (DECODE)
#
# **Paper.** A. Speiser\*, L.-R. Müller\*, P. Hoess, U. Matti, C. J. Obara, W. R. Legant,
# A. Kreshuk, J. H. Macke†, J. Ries†, S. C. Turaga†, *Deep learning enables fast and dense
# single-molecule localization with high accuracy*, Nature Methods 18:1082–1090 (2021)
# ([doi:10.1038/s41592-021-01236-x](https://doi.org/10.1038/s41592-021-01236-x)); preprint
# A. Speiser, S. C. Turaga, J. H. Macke, [arXiv:1907.00770](https://arxiv.org/abs/1907.00770)
# (2019).
#
# In single-molecule localisation microscopy (SMLM) a random, sparse subset of fluorophores
# blinks on in each camera frame; each appears as a diffraction-limited spot on background,
# corrupted by shot and camera noise. From thousands of frames one infers, per frame, how many
# emitters are on, where (to ~10 nm), how bright, and the background. Classical pipelines
# detect local maxima and fit one Gaussian per spot, which fails when spots overlap, so
# experimenters keep densities low and acquisitions long. DECODE trains a two-stage U-Net
# purely on simulated data to output, per pixel, a detection probability, sub-pixel offsets,
# photons, background **and their uncertainties**, and looks at frames $t-1, t, t+1$ to decide
# about frame $t$ (a fluorophore stays on for several frames).
#
# **What the paper claims, and what this chapter checks** (claims C1–C6):
# DECODE stays accurate at high density where the classical fitter fails (C1) and is as
# precise as the fitter at low density (C2); temporal context helps at low SNR (C3); its
# predicted uncertainties are calibrated (C4) and so is its expected count (C5); and
# (from the preprint's unsupervised idea) the PSF width of mismatched data can be recalibrated
# from the network's detections (C6).
#
# **Figures redrawn.** A simulated window with detections and the network's output maps;
# Jaccard index, efficiency and RMSE against density for DECODE, its single-frame ablation
# and the classical fitter; precision–recall curves of the temporal-context ablation; the
# uncertainty calibration; a rendered super-resolution image beside the ground truth.
#
# Facts about the simulator, architecture, loss and evaluation come from the paper's Methods
# and the configuration files of its reference code (`TuragaLab/DECODE`); the code here is the
# book's own (`neuroinverse.simulators.smlm`, `neuroinverse.models.decode`,
# `neuroinverse.inference.smlm_fitting`, `neuroinverse.metrics.localisation`).

# %% tags=["parameters"]
profile = "ci"
seed = 0
device = "auto"

# %% [markdown]
# Every size below comes from the profile. `ci` runs 2D (Gaussian PSF, σ0 = 1 px = 100 nm)
# on CPU in about a minute with a reduced network ("DECODE-lite": one down-sampling, 8
# features) trained on 16 × 16 px windows; `full` is 3D astigmatic on 40 × 40 px frames with
# the reference widths and camera, on one GPU.

# %%
from dataclasses import replace

import numpy as np
import torch
from myst_nb import glue

from neuroinverse import plotting
from neuroinverse.inference import (
    calibrate_psf,
    decode_loss,
    fit_frames,
    gaussian_crlb,
    make_targets,
    post_process,
    precision_recall_sweep,
    predict,
    simulate_windows,
    train_decode,
)
from neuroinverse.metrics import (
    isolated,
    localisation_scores,
    match_localisations,
    render_localisations,
    uncertainty_calibration,
)
from neuroinverse.models import DecodeNet, DecodeScales
from neuroinverse.results import ChapterResults, Claim
from neuroinverse.runtime import background, setup, timed
from neuroinverse.simulators import Camera, EmitterTable, GaussianPSF, SMLMSimulator

rt = setup(profile=profile, seed=seed, device=device)
cfg = rt.select(
    ci=dict(
        three_d=False,
        train_shape=(16, 16),
        test_shape=(24, 24),
        z_range=(0.0, 0.0),
        flux=(3000.0, 800.0, 300.0),
        background=(20.0, 40.0),
        density=(0.5, 4.0),
        features=8,
        inter=8,
        depth=1,
        activation="elu",
        n_steps=600,
        batch=16,
        lr=3e-3,
        weight_decay=0.0,
        lr_step=450,
        shared_windows=True,
        lr_gamma=0.25,
        clip=1.0,
        densities=(0.5, 1.0, 2.0, 3.0, 4.0),
        n_test=200,
        c6_frames=50,
        sr_frames=300,
        c1_margin=0.10,
        c1_low_ji=0.7,
        c2_ratio=2.0,
        c2_crlb=1.4,
        c3_margin=0.03,
        c4_z=(0.7, 1.4),
        c4_rho=0.2,
        c5_tol=0.10,
        c6_tol=0.10,
    ),
    full=dict(
        three_d=True,
        train_shape=(40, 40),
        test_shape=(40, 40),
        z_range=(-750.0, 750.0),
        flux=(10000.0, 3000.0, 1e-8),
        background=(90.0, 150.0),
        density=(0.25, 4.0),
        features=48,
        inter=48,
        depth=2,
        activation="elu",
        n_steps=30000,
        batch=64,
        lr=6e-4,
        weight_decay=0.1,
        lr_step=1500,
        lr_gamma=0.9,
        clip=0.03,
        shared_windows=False,
        densities=(0.25, 0.5, 1.0, 2.0, 3.0, 4.0),
        n_test=512,
        c6_frames=200,
        sr_frames=2000,
        c1_margin=0.20,
        c1_low_ji=0.85,
        c2_ratio=1.15,
        c2_crlb=1.4,
        c3_margin=0.05,
        c4_z=(0.85, 1.15),
        c4_rho=0.35,
        c5_tol=0.03,
        c6_tol=0.03,
    ),
)
LOW_DENSITY, HIGH_DENSITY, LOW_SNR_DENSITY = 0.5, 3.0, 1.5
plotting.apply_style()
print(f"profile={rt.profile} device={rt.device} threads={rt.threads}")

# %% [markdown]
# ## The simulator
#
# Fluorophores blink on once for an exponential time (mean τ frames) with a Normal photon
# flux; a frame collects the photons of the part of the on-time it overlaps, so first and
# last frames of a blink are dimmer. Each emitter is rendered with the pixel-integrated
# Gaussian PSF (astigmatic in 3D), added to a uniform background and passed through the
# SMLM-2016-challenge EMCCD (Poisson → gamma EM gain → read noise → ADU); frames are then
# converted back to photon units. Emitters with fewer than 100 photons in a frame are rendered
# but not labelled. Two regimes are used: the **main** one
# ($N\sim\mathcal N(3000, 800)$, $b\sim U(20, 40)$, τ = 2 at ci) and a **low-SNR**
# one (the book's choice) ($N\sim\mathcal N(800, 200)$, $b\sim U(30, 50)$, τ = 3).
#
# Both networks below are trained on an equal mix of the two regimes, with density drawn per
# window uniformly in the range of `cfg.density` (visible emitters per µm² per frame). Every
# step uses `cfg.batch` fresh, independent 3-frame sequences, half from each regime, and no
# window is used twice. At ci all of them are simulated up front in one vectorised call
# (much cheaper than many small calls) and both networks train on these same windows; at
# full they are simulated in chunks of 64 steps as training goes, from the same seed for both
# networks. At ci the learning rate drops to a quarter for the last quarter of the steps. That the
# two regimes share one network is the book's choice to fit the ci budget; claim C3 only asks that
# both networks get the same budget.

# %%
psf = GaussianPSF(sigma0=1.0, astigmatic=cfg.three_d)
camera = Camera.emccd()
flux_mean, flux_std, flux_min = cfg.flux
main_sim = SMLMSimulator(
    frame_shape=cfg.train_shape,
    psf=psf,
    camera=camera,
    density=cfg.density,
    tau=2.0,
    flux_mean=flux_mean,
    flux_std=flux_std,
    flux_min=flux_min,
    background=cfg.background,
    z_range=cfg.z_range,
)
low_sim = replace(
    main_sim, flux_mean=800.0, flux_std=200.0, flux_min=100.0, background=(30.0, 50.0), tau=3.0
)
scales = replace(DecodeScales.from_simulator(main_sim), bg_max=1.2 * max(cfg.background[1], 50.0))


def test_set(sim, density, n_frames, offset):
    """One test sequence of `n_frames` frames at a fixed density, on the test frame size."""
    return replace(sim, frame_shape=cfg.test_shape, density=density).sample(
        1, n_frames, generator=rt.generator(offset)
    )


example = test_set(main_sim, 2.0, 3, 1)
tests, sim_time = timed(
    lambda: {d: test_set(main_sim, d, cfg.n_test, 100 + i) for i, d in enumerate(cfg.densities)}
)
low_test = test_set(low_sim, LOW_SNR_DENSITY, cfg.n_test, 200)
print(
    f"training windows {cfg.train_shape} px; test frames {cfg.test_shape} px "
    f"({replace(main_sim, frame_shape=cfg.test_shape).area_um2:.2f} µm²)"
)
print(
    "labelled emitters per test frame:",
    {d: round(float(t.labels.counts().float().mean()), 2) for d, t in tests.items()},
    f"low-SNR: {float(low_test.labels.counts().float().mean()):.2f}",
)

# %% [markdown]
# ## DECODE and its single-frame ablation
#
# The frame module (a U-Net with shared weights) maps each of the frames $t-1, t, t+1$ to
# feature maps; the context module (a second U-Net) combines them; four heads give per pixel
# the detection probability $p_k$, the means and standard deviations of photons, $\Delta x$,
# $\Delta y$ (and $z$), and the background. The loss of a frame with true emitters $u_e$ is
#
# $$\mathcal L = -\max(E,1)\log\mathcal N\!\Big(E;\ \sum_k p_k,\ \sum_k p_k(1-p_k)\Big)
# -\sum_{e=1}^{E}\log\sum_k
# \frac{p_k}{\sum_j p_j}\,\mathcal N\big(u_e;\ \mu_k, \mathrm{diag}\,\sigma_k^2\big)
# +\sum_{\text{pixels}}(\hat b - b)^2 ,$$
#
# a Gaussian approximation of the count of detections, a mixture likelihood whose components
# sit at every pixel, and a background term. The reference code weights the count term by
# $E$, which leaves empty frames unpenalised; we use $\max(E, 1)$, the book's choice for
# small frames (where empty frames are common). The single-frame ablation sees frame $t$ only and is
# trained with the same number of steps and the same data. Both modules are the book's one U-Net,
# which down-samples by max-pooling and up-samples by transposed convolutions, where the reference
# uses strided convolutions and nearest-neighbour up-sampling followed by a 1 × 1 convolution.

# %%
train_data, pool_time = [main_sim, low_sim], 0.0
if cfg.shared_windows:
    train_data, pool_time = timed(
        lambda: simulate_windows(
            [main_sim, low_sim],
            n_steps=cfg.n_steps,
            batch_size=cfg.batch,
            scales=scales,
            three_d=cfg.three_d,
            generator=rt.generator(500),
            device=rt.device,
        )
    )


def train_net(name, n_frames, progress=True):
    """Build and train one network from the same seed and data; returns (net, history, seconds)."""
    torch.manual_seed(rt.seed)
    net = DecodeNet(
        scales=scales,
        n_frames=n_frames,
        features=cfg.features,
        depth=cfg.depth,
        inter_features=cfg.inter,
        three_d=cfg.three_d,
        activation=cfg.activation,
    ).to(rt.device)
    history, seconds = timed(
        lambda: train_decode(
            net,
            train_data,
            n_steps=cfg.n_steps,
            batch_size=cfg.batch,
            lr=cfg.lr,
            weight_decay=cfg.weight_decay,
            lr_step=cfg.lr_step,
            lr_gamma=cfg.lr_gamma,
            clip_norm=cfg.clip,
            seed=rt.seed,
            desc=name,
            progress=progress,
        )
    )
    return net, history, seconds


# On the CPU the single-frame ablation trains in a background process on the second core
# (one thread, the same seed and data: the same network as if trained here).
single_job = (
    background(train_net, "DECODE single", 1, progress=False) if rt.device.type == "cpu" else None
)
trained = {
    "DECODE": train_net("DECODE", 3),
    "DECODE single": single_job.result() if single_job else train_net("DECODE single", 1),
}
nets = {k: v[0] for k, v in trained.items()}
histories = {k: v[1] for k, v in trained.items()}
train_time = {k: v[2] for k, v in trained.items()}
print({k: sum(p.numel() for p in v.parameters()) for k, v in nets.items()}, "parameters")

# %% [markdown]
# ## The classical baseline
#
# Gaussian smoothing (σ = 1 px), local maxima at least 2 px apart above $\hat b + 2\sqrt{\hat b}$
# ($\hat b$ the frame median; k = 2 gave the best Jaccard index among 1, 1.5, 2, 3 in a check),
# a 7 × 7 px region around each, and a Poisson maximum-likelihood fit of one pixel-integrated
# Gaussian (x, y, N, b; z too in 3D, from three starting depths) by Levenberg–Marquardt over all
# spots at once. Its uncertainties are the Cramér–Rao bounds of each fit (times √2 for the
# EMCCD's excess noise).


# %%
def classical(frames):
    return fit_frames(
        frames[0],
        psf=psf,
        excess_noise=camera.excess_noise,
        pixel_size=main_sim.pixel_size,
        threshold_k=2.0,
        min_distance=2,
    )


outs, locs, run_time = {}, {}, {}
for name, net in nets.items():
    (outs[name], run_time[name]) = timed(
        lambda net=net: {d: predict(net, t.frames) for d, t in tests.items()}
    )
    locs[name] = {d: post_process(o, scales=scales) for d, o in outs[name].items()}
locs["classical"], run_time["classical"] = timed(
    lambda: {d: classical(t.frames) for d, t in tests.items()}
)
scores = {
    m: {d: localisation_scores(loc, tests[d].labels) for d, loc in by_d.items()}
    for m, by_d in locs.items()
}

# %% tags=["nbval-check-output"]
print(
    f"{'method':14s} {'density':>8s} {'JI':>6s} {'recall':>7s} {'prec.':>6s} "
    f"{'RMSE_lat':>9s} {'E_lat':>6s}"
)
for m, by_d in scores.items():
    for d, s in by_d.items():
        print(
            f"{m:14s} {d:8.2f} {s.jaccard:6.3f} {s.recall:7.3f} {s.precision:6.3f} "
            f"{s.rmse_lat:9.1f} {s.efficiency_lat:6.3f}"
        )

# %%
# the numbers the text below quotes, as this run measured them
for _attr, _short in (
    ("recall", "recall"),
    ("precision", "prec"),
    ("efficiency_lat", "eff"),
    ("rmse_lat", "rmse"),
):
    for _m in ("DECODE", "classical"):
        glue(
            f"lo_{_short}_{_m.lower()}",
            float(getattr(scores[_m][LOW_DENSITY], _attr)),
            display=False,
        )
_margin = {d: scores["DECODE"][d].jaccard - scores["classical"][d].jaccard for d in cfg.densities}
_ahead = [f"{d:g}" for d in cfg.densities if _margin[d] > 0]
_ahead_text = ", ".join(_ahead[:-1]) + " and " + _ahead[-1] if len(_ahead) > 1 else "".join(_ahead)
glue(
    "lo_ji_leader", "DECODE" if _margin[LOW_DENSITY] > 0 else "the classical fitter", display=False
)
glue("decode_ahead_at", f"{_ahead_text} emitters/µm²" if _ahead else "no density", display=False)
_steady = bool(np.all(np.diff(list(_margin.values())) > 0))
glue("margin_trend", "grows steadily" if _steady else "does not grow steadily", display=False)
for _d, _name in ((HIGH_DENSITY, "hi"), (cfg.densities[-1], "max")):
    glue(f"{_name}_ji_decode", float(scores["DECODE"][_d].jaccard), display=False)
    glue(f"{_name}_ji_classical", float(scores["classical"][_d].jaccard), display=False)

# %% [markdown]
# **At low density {glue:text}`lo_ji_leader` has the higher Jaccard index here.** At 0.5
# emitters/µm² the classical fitter's Jaccard index is {glue:text}`lo_ji_classical:.3f` against
# DECODE's {glue:text}`lo_ji_decode:.3f` (recall {glue:text}`lo_recall_classical:.3f` against
# {glue:text}`lo_recall_decode:.3f`; precision {glue:text}`lo_prec_classical:.3f` against
# {glue:text}`lo_prec_decode:.3f`), its efficiency is {glue:text}`lo_eff_classical:.3f` against
# {glue:text}`lo_eff_decode:.3f`, and its lateral RMSE {glue:text}`lo_rmse_classical:.1f`
# against DECODE's {glue:text}`lo_rmse_decode:.1f` nm. The paper's Fig. 2 shows DECODE at least
# matching the spline fitter at low density; where it falls short here, our DECODE-lite (17 k
# parameters, 600 CPU steps at ci) misses more of the dim emitters. DECODE's Jaccard index is
# the higher of the two at {glue:text}`decode_ahead_at`, and its margin over the fitter
# {glue:text}`margin_trend` with density ({glue:text}`hi_ji_decode:.3f` against
# {glue:text}`hi_ji_classical:.3f` at 3 /µm², {glue:text}`max_ji_decode:.3f` against
# {glue:text}`max_ji_classical:.3f` at {glue:text}`high_density_max:g` /µm²).

# %% [markdown]
# ## A simulated window and the network's output
#
# One test window and what the network makes of its middle frame
# ({numref}`fig-decode-window`).

# %% tags=["remove-output"]
ex_out = predict(nets["DECODE"], example.frames)
ex_loc = post_process(ex_out, scales=scales)
maps = [
    ("p (detection probability)", ex_out["p"][1, 0]),
    ("Δx mean (px)", ex_out["mean"][1, 1]),
    ("Δy mean (px)", ex_out["mean"][1, 2]),
    ("photons mean (× phot_max)", ex_out["mean"][1, 0]),
    ("σ_x (px)", ex_out["sigma"][1, 1]),
    ("background (× bg_max)", ex_out["bg"][1, 0]),
]
fig, ax = plotting.figure(3, 3, width=7, height=7.4)
for t in range(3):
    a = ax[0, t]
    a.imshow(example.frames[0, t].cpu(), cmap="gray")
    lab = example.labels.in_frames(t, t + 1)
    a.scatter(lab.x.cpu(), lab.y.cpu(), s=60, facecolors="none", edgecolors="lime", label="truth")
    if t == 1:
        d1 = ex_loc.in_frames(1, 2)
        a.scatter(
            d1.x.cpu(), d1.y.cpu(), marker="x", color=plotting.COLORS["method"], label="DECODE"
        )
        a.legend(loc="lower right", fontsize=7, frameon=True)
    a.set_title(f"frame t{t - 1:+d}" if t != 1 else "frame t")
    a.axis("off")
for i, (title, img) in enumerate(maps):
    a = ax[1 + i // 3, i % 3]
    a.imshow(img.cpu())
    a.set_title(f"{title}\nrange [{float(img.min()):.2g}, {float(img.max()):.2g}]", fontsize=8)
    a.axis("off")
plotting.save(fig, "decode", "fig1_window_and_outputs")

# %% [markdown]
# ```{glue:figure} fig1_window_and_outputs
# ---
# name: fig-decode-window
# alt: >-
#   A three-by-three grid of images. Top row: frames t−1, t and t+1 of a simulated test sequence,
#   circles on the labelled emitters and crosses on DECODE's localisations in frame t. The two
#   rows below: six output maps of the network for frame t.
# ---
# Top: frames $t-1, t, t+1$ of a test sequence at 2 emitters/µm² (photon units), with the
# labelled emitters of each frame (circles) and DECODE's localisations in frame $t$ (crosses).
# Below: the output maps for frame $t$: detection probability, mean sub-pixel offsets, photons,
# predicted σ and background (colour scale from the minimum to the maximum given in each title).
# ```

# %% [markdown]
# ## Accuracy against density
#
# The three methods on the same test frames at each density ({numref}`fig-decode-density`).

# %% tags=["remove-output"]
fig, ax = plotting.figure(1, 3, width=7, height=2.6)
style = {
    "DECODE": ("o-", plotting.COLORS["method"]),
    "DECODE single": ("s--", plotting.COLORS["baseline2"]),
    "classical": ("^-", plotting.COLORS["baseline"]),
}
for m, by_d in scores.items():
    dens = list(by_d)
    for a, key in zip(ax[0], ("jaccard", "efficiency_lat", "rmse_lat"), strict=True):
        a.plot(
            dens, [getattr(s, key) for s in by_d.values()], style[m][0], color=style[m][1], label=m
        )
for a, lab in zip(ax[0], ("Jaccard index", "efficiency E_lat", "RMSE_lat (nm)"), strict=True):
    a.set_xlabel("density (emitters / µm²)")
    a.set_ylabel(lab)
ax[0, 0].legend(fontsize=7)
plotting.save(fig, "decode", "fig2_density")

# %% [markdown]
# ```{glue:figure} fig2_density
# ---
# name: fig-decode-density
# alt: >-
#   Three line plots against emitter density for DECODE, the single-frame ablation and the
#   classical fitter: left the Jaccard index, middle the lateral efficiency, right the lateral
#   RMSE in nanometres.
# ---
# Jaccard index, lateral efficiency and lateral RMSE (true positives only) against the density
# of visible emitters, for DECODE, the single-frame ablation and the classical fitter, each on
# the same test frames; matching is one-to-one per frame within 250 nm (optimal assignment).
# DECODE's Jaccard index is the higher of the two main methods at {glue:text}`decode_ahead_at`.
# ```

# %% [markdown]
# ## Temporal context at low SNR (claim C3)
#
# On a low-SNR set, the three-frame network against the single-frame ablation
# ({numref}`fig-decode-context`), and the test loss of both.

# %% tags=["remove-output"]
low_out = {m: predict(nets[m], low_test.frames) for m in ("DECODE", "DECODE single")}
low_loc = {m: post_process(o, scales=scales) for m, o in low_out.items()}
low_scores = {m: localisation_scores(loc, low_test.labels) for m, loc in low_loc.items()}
low_targets = make_targets(
    low_test.labels,
    low_test.background.flatten(),
    frames=torch.arange(cfg.n_test),
    scales=scales,
    three_d=cfg.three_d,
)
low_loss = {
    m: float(decode_loss({k: v.cpu() for k, v in o.items()}, low_targets))
    for m, o in low_out.items()
}
thresholds = np.linspace(0.1, 0.9, 9)
pr = {
    m: precision_recall_sweep(o, low_test.labels, scales=scales, thresholds=thresholds)
    for m, o in low_out.items()
}
fig, ax = plotting.figure(1, 1, width=4.2, height=3.4)
for m, r in pr.items():
    ax[0, 0].plot(
        r["recall"],
        r["precision"],
        style[m][0],
        color=style[m][1],
        label=f"{m} (JI {low_scores[m].jaccard:.2f})",
    )
ax[0, 0].set_xlabel("recall")
ax[0, 0].set_ylabel("precision")
ax[0, 0].legend()
plotting.save(fig, "decode", "fig3_temporal_context")

# %% [markdown]
# ```{glue:figure} fig3_temporal_context
# ---
# name: fig-decode-context
# alt: >-
#   Precision against recall for the three-frame DECODE network and the single-frame ablation,
#   one point per detection threshold, with each network's Jaccard index in the legend.
# ---
# Precision–recall curves on the low-SNR set (1.5 emitters/µm², N ≈ 800 photons, b ≈ 40
# photons/px, τ = 3), obtained by sweeping the detection threshold. At the default threshold the
# Jaccard index is {glue:text}`c3_three_ji:.3f` with three frames and
# {glue:text}`c3_single_ji:.3f` with one.
# ```

# %% tags=["nbval-check-output"]
for m, s in low_scores.items():
    print(
        f"low-SNR {m:14s} JI {s.jaccard:.3f}  RMSE_lat {s.rmse_lat:.1f} nm  "
        f"test loss {low_loss[m]:.2f}"
    )

# %% [markdown]
# ## Calibrated uncertainties (claim C4) and PSF self-calibration (claim C6)
#
# The predicted σ against the errors it should describe, and the preprint's idea of fitting the
# generative model to unlabelled data, in its simplest verifiable form: frames are simulated
# with a PSF 25 % wider ($\sigma_0$ = 1.25 px) than the network was trained on; DECODE's
# detections (positions, photons) and background are frozen, and $\sigma_0$ (with a global
# photon scale and per-frame backgrounds as nuisances) is fitted by minimising the Poisson
# negative log-likelihood of the frames with L-BFGS ({numref}`fig-decode-calibration`).

# %%
pooled_pred = EmitterTable.concat([locs["DECODE"][d] for d in cfg.densities])
pooled_truth = EmitterTable.concat([tests[d].labels for d in cfg.densities])
cal = uncertainty_calibration(pooled_pred, pooled_truth, n_bins=8)

psf_true = replace(psf, sigma0=1.25)
c6_set = test_set(replace(main_sim, psf=psf_true), 1.0, cfg.c6_frames, 300)
c6_out = predict(nets["DECODE"], c6_set.frames)
c6_det = post_process(c6_out, scales=scales)
(sigma_hat, sigma_trace), c6_time = timed(
    lambda: calibrate_psf(
        c6_set.frames[0],
        c6_det,
        background=c6_out["bg"].mean((1, 2, 3)).cpu() * scales.bg_max,
        psf=psf,
        n_iter=30,
    )
)

# %% tags=["remove-output"]
fig, ax = plotting.figure(1, 3, width=7, height=2.7)
lim = [0, 1.1 * max(cal["bin_sigma"].max(), cal["bin_rmse"].max())]
ax[0, 0].plot(lim, lim, color="0.6", lw=0.8, label="identity")
ax[0, 0].plot(
    cal["bin_sigma"], cal["bin_rmse"], "o-", color=plotting.COLORS["method"], label="DECODE"
)
ax[0, 0].set_xlabel("predicted σ per axis (nm)")
ax[0, 0].set_ylabel("empirical RMSE per axis (nm)")
ax[0, 0].legend(fontsize=7)
grid = np.linspace(-4, 4, 200)
ax[0, 1].hist(
    np.concatenate([cal["z_x"], cal["z_y"]]),
    bins=60,
    range=(-4, 4),
    density=True,
    color=plotting.COLORS["method"],
    alpha=0.6,
    label="Δ/σ̂ (x and y)",
)
ax[0, 1].plot(
    grid,
    np.exp(-(grid**2) / 2) / np.sqrt(2 * np.pi),
    color=plotting.COLORS["truth"],
    label="N(0, 1)",
)
ax[0, 1].set_xlabel("z-score")
ax[0, 1].set_ylabel("density")
ax[0, 1].set_ylim(0, 0.55)
ax[0, 1].legend(fontsize=7, loc="upper left")
ax[0, 2].plot(
    np.arange(len(sigma_trace)),
    sigma_trace,
    "o-",
    color=plotting.COLORS["method"],
    ms=3,
    label="fitted σ0",
)
ax[0, 2].axhline(1.25, color=plotting.COLORS["truth"], ls="--", label="true σ0")
ax[0, 2].axhline(1.0, color="0.6", ls=":", label="training σ0")
ax[0, 2].set_xlabel("likelihood evaluation")
ax[0, 2].set_ylabel("σ0 (px)")
ax[0, 2].legend(fontsize=7)
plotting.save(fig, "decode", "fig4_calibration")

# %% [markdown]
# ```{glue:figure} fig4_calibration
# ---
# name: fig-decode-calibration
# alt: >-
#   Left, empirical RMSE against predicted σ per bin of true positives, with the identity line;
#   middle, a histogram of z-scores with the standard normal density; right, the fitted PSF width
#   σ0 against the likelihood evaluation, with lines at the true and the training width.
# ---
# Left: DECODE's true positives on all main-regime test sets, binned by their predicted lateral
# σ; the empirical RMSE of each bin against its RMS predicted σ (per axis), on the identity line
# if σ is calibrated. Middle: z-scores $\Delta x/\hat\sigma_x$ and $\Delta y/\hat\sigma_y$
# against a standard normal; the core follows it (robust SD {glue:text}`robust_sd_x:.2f` in x,
# {glue:text}`robust_sd_y:.2f` in y) with heavier tails. Right: the PSF width fitted to frames
# simulated with a wider PSF ends at {glue:text}`C6_ours:.3f` of the true width.
# ```

# %% [markdown]
# ### Why are the z-scores too wide?
#
# Claim C4 (below) pools the z-scores of all densities, and their standard deviation comes
# out above the paper's calibration. Two explanations can be told apart with numbers we
# already have. (i) *Crowding*: at high density a detection can be matched to a neighbour of
# the emitter it describes, or be pulled by it; then the error is large for a reason the
# network's σ cannot know about. Restricting the z-scores to **isolated** emitters (no other
# emitter, labelled or not, within 2 px in the same frame) removes this. (ii) *Diffuse
# detection maps*: the network's output is a mixture with one component per pixel; when one
# emitter spreads its detection probability over several pixels, the peak pixel's σ describes
# only its own component. The **mixture-moment** read-out replaces it by the σ of the
# detection-weighted mixture over the 3 × 3 neighbourhood,
# $\sigma^2=\sum_k w_k\big(\sigma_k^2+(\mu_k-\bar\mu)^2\big)$ with $w_k=p_k/\sum_j p_j$ and
# $\bar\mu=\sum_k w_k\mu_k$ (positions stay those of the peak pixel). The table gives the
# z-score standard deviation (x / y) per density for each combination. This analysis is the
# book's, not the paper's.

# %%
matchings = {d: match_localisations(locs["DECODE"][d], tests[d].labels) for d in cfg.densities}
mixture_locs = {
    d: post_process(outs["DECODE"][d], scales=scales, sigma_readout="mixture")
    for d in cfg.densities
}
iso = {
    d: isolated(tests[d].labels, radius=2.0, others=tests[d].truth).numpy() for d in cfg.densities
}
z_table = {}
for d in cfg.densities:
    for readout, tab in (("pixel", locs["DECODE"][d]), ("mixture", mixture_locs[d])):
        for subset, mask in (("all", None), ("isolated", iso[d])):
            c = uncertainty_calibration(
                tab, tests[d].labels, matching=matchings[d], n_bins=2, truth_mask=mask
            )
            z_table[d, readout, subset] = (c["z_std_x"], c["z_std_y"], len(c["z_x"]))
cal_mix = uncertainty_calibration(
    EmitterTable.concat([mixture_locs[d] for d in cfg.densities]), pooled_truth, n_bins=8
)

# %% tags=["nbval-check-output"]
print(
    f"{'density':>7s} {'TPs':>5s} {'isolated':>8s}   z-score SD (x / y):  {'peak σ, all':>12s} "
    f"{'peak σ, isolated':>16s} {'mixture σ, all':>14s} {'mixture σ, isolated':>19s}"
)
for d in cfg.densities:
    cells = [z_table[d, r, sub] for r in ("pixel", "mixture") for sub in ("all", "isolated")]
    print(
        f"{d:7.2f} {cells[0][2]:5d} {cells[1][2]:8d}   {'':20s}"
        + "".join(
            f"{f'{zx:.2f} / {zy:.2f}':>{w + 1}s}"
            for (zx, zy, _), w in zip(cells, (12, 16, 14, 19), strict=True)
        )
    )
print(
    f"all densities pooled, mixture σ: z-score SD x {cal_mix['z_std_x']:.3f}, "
    f"y {cal_mix['z_std_y']:.3f}; "
    f"Spearman ρ {cal_mix['spearman']:.3f}"
)


# %%
# the ranges the text below quotes, as this run measured them
def _z_range(readout, subset, densities):
    """Smallest and largest z-score SD (x and y) of one read-out and subset over some densities."""
    vals = [v for d in densities for v in z_table[d, readout, subset][:2]]
    return min(vals), max(vals)


_dense = [d for d in cfg.densities if d >= 2.0]
for name, (lo, hi) in {
    "iso_low": _z_range("pixel", "isolated", cfg.densities[:1]),
    "iso_all": _z_range("pixel", "isolated", cfg.densities),
    "all_dense": _z_range("pixel", "all", _dense),
    "mix_all": _z_range("mixture", "all", cfg.densities),
}.items():
    glue(f"{name}_min", lo, display=False)
    glue(f"{name}_max", hi, display=False)
_mix = [
    v for d in cfg.densities for sub in ("all", "isolated") for v in z_table[d, "mixture", sub][:2]
]
glue("mix_min", min(_mix), display=False)
glue("mix_max", max(_mix), display=False)
glue("mix_wide_min", 1 / max(_mix), display=False)
glue("mix_wide_max", 1 / min(_mix), display=False)
glue("low_density", cfg.densities[0], display=False)
glue("high_density_max", cfg.densities[-1], display=False)

# %% [markdown]
# In this run, on isolated emitters the peak-pixel z-scores' standard deviation is
# {glue:text}`iso_low_min:.2f`–{glue:text}`iso_low_max:.2f` at {glue:text}`low_density` /µm² and
# {glue:text}`iso_all_min:.2f`–{glue:text}`iso_all_max:.2f` over all densities up to
# {glue:text}`high_density_max` /µm², while over all true positives it is
# {glue:text}`all_dense_min:.2f`–{glue:text}`all_dense_max:.2f` at 2 /µm² and above: where the
# isolated values stay lower, crowding explains the excess width. Diffuse detection maps do not
# explain it: the mixture-moment σ over-corrects, giving standard deviations of
# {glue:text}`mix_min:.2f`–{glue:text}`mix_max:.2f`, i.e. predicted σ now about
# {glue:text}`mix_wide_min:.1f`–{glue:text}`mix_wide_max:.1f` times too wide, at every density
# and on isolated emitters too. The spread of the neighbouring pixels' means is larger than
# the missing part of the error; the peak pixel's own σ is the better read-out, as in the
# reference code. C4 below is judged, as before, on the peak-pixel σ over all true positives.

# %% [markdown]
# ## A rendered super-resolution image
#
# A structure of a ring and two crossing filaments, imaged as a blinking sequence and rendered
# from each method's localisations ({numref}`fig-decode-super-resolution`).

# %% tags=["remove-output"]
t_sites = np.linspace(0, 2 * np.pi, 600)
H_, W_ = cfg.test_shape
ring = np.stack([W_ / 2 + 0.3 * W_ * np.cos(t_sites), H_ / 2 + 0.3 * H_ * np.sin(t_sites)], 1)
line1 = np.stack([np.linspace(1, W_ - 2, 300), np.linspace(2, H_ - 3, 300)], 1)
line2 = np.stack([np.linspace(1, W_ - 2, 300), np.linspace(0.75 * H_, 0.2 * H_, 300)], 1)
sites = np.concatenate([ring, line1, line2])
structure = torch.tensor(np.concatenate([sites, np.zeros((len(sites), 1))], 1), dtype=torch.float32)
sr_set = test_set(replace(main_sim, structure=structure), 1.5, cfg.sr_frames, 400)
sr = {
    "ground truth": sr_set.labels,
    "DECODE": post_process(predict(nets["DECODE"], sr_set.frames), scales=scales),
    "classical": classical(sr_set.frames),
}
fig, ax = plotting.figure(1, 3, width=7, height=2.8)
for a, (name, tab) in zip(ax[0], sr.items(), strict=True):
    img = render_localisations(tab, shape=cfg.test_shape, upsample=8, sigma_nm=15.0)
    a.imshow(img.numpy(), cmap="magma", vmax=float(np.quantile(img.numpy(), 0.995)))
    a.set_title(f"{name}\n({len(tab)} localisations)", fontsize=9)
    a.axis("off")
plotting.save(fig, "decode", "fig5_super_resolution")

# %% [markdown]
# ```{glue:figure} fig5_super_resolution
# ---
# name: fig-decode-super-resolution
# alt: >-
#   Three rendered super-resolution images side by side, a ring crossed by two filaments: the
#   labelled emitters, DECODE's localisations and the classical fitter's, each titled with its
#   number of localisations.
# ---
# Fluorophores on a ring and two crossing filaments (binding sites 10 nm apart), 1.5
# emitters/µm² visible per frame; every localisation of the sequence is rendered as a Gaussian
# of 15 nm on a 12.5 nm grid, and the ground truth is the labelled emitters rendered the same
# way. Compare how sharply each method renders the ring and the crossings, where emitters crowd.
# ```

# %% [markdown]
# ## Controls
#
# A claim is worth something only if its rule would have rejected a wrong answer. Each claim
# below is therefore judged twice: on our number, and on a **control**, a deliberately wrong
# answer of the same kind, put through the same rule. If the control passes too, the claim
# is "inconclusive", not "held". The controls, all cheap:
#
# * an **untrained DECODE** (the same architecture and initialisation, no training step) on
#   the low-density set, for the Jaccard-index floors C1c and C1d;
# * the **single-frame ablation** in place of DECODE for C1a (does the margin over the
#   classical fitter need the full method?);
# * **DECODE's positions jittered** by $\mathcal N(0, (50\ \text{nm})^2)$ per axis (half a
#   pixel; same detections) for the efficiency and precision claims C1b and C2a, and for the
#   Cramér–Rao comparison C2b (full profile only);
# * the **three-frame network with its context removed** (each window holds frame $t$ three
#   times) in place of the three-frame network, for C3a and C3b: the rule must reject a
#   network that has the same weights but no temporal information;
# * **σ shuffled** among DECODE's localisations (the same values, assigned to the wrong
#   detections) for the calibration claims C4a–c;
# * the **number of thresholded detections** in place of $\sum_k p_k$ for the count claim C5;
# * the **training PSF width** (σ0 = 1.0 px, i.e. no recalibration) for C6.

# %%
torch.manual_seed(rt.seed)
untrained = DecodeNet(
    scales=scales,
    n_frames=3,
    features=cfg.features,
    depth=cfg.depth,
    inter_features=cfg.inter,
    three_d=cfg.three_d,
    activation=cfg.activation,
).to(rt.device)
untrained_lo = localisation_scores(
    post_process(predict(untrained, tests[LOW_DENSITY].frames), scales=scales),
    tests[LOW_DENSITY].labels,
)


def jittered(tab, sd_nm, offset):
    g = rt.generator(offset)
    noise = torch.randn(2, len(tab), generator=g, dtype=tab.x.dtype).to(tab.x.device)
    return replace(
        tab,
        x=tab.x + noise[0] * sd_nm / tab.pixel_size[0],
        y=tab.y + noise[1] * sd_nm / tab.pixel_size[1],
    )


jit_hi = localisation_scores(
    jittered(locs["DECODE"][HIGH_DENSITY], 50.0, 600), tests[HIGH_DENSITY].labels
)
jit_lo = localisation_scores(
    jittered(locs["DECODE"][LOW_DENSITY], 50.0, 601), tests[LOW_DENSITY].labels
)
noctx_out = predict(
    nets["DECODE"], low_test.frames[0][:, None]
)  # every frame its own sequence: (t, t, t)
noctx_score = localisation_scores(post_process(noctx_out, scales=scales), low_test.labels)
noctx_loss = float(decode_loss({k: v.cpu() for k, v in noctx_out.items()}, low_targets))
perm = torch.randperm(len(pooled_pred), generator=rt.generator(602)).to(pooled_pred.x.device)
cal_shuffled = uncertainty_calibration(
    replace(pooled_pred, sigma_x=pooled_pred.sigma_x[perm], sigma_y=pooled_pred.sigma_y[perm]),
    pooled_truth,
    n_bins=8,
)
n_detections = sum(len(locs["DECODE"][d]) for d in cfg.densities) / (
    len(cfg.densities) * cfg.n_test
)

# %% tags=["nbval-check-output"]
print(f"untrained DECODE, {LOW_DENSITY} /µm²: JI {untrained_lo.jaccard:.3f}")
print(
    f"DECODE jittered 50 nm: E_lat {jit_hi.efficiency_lat:.3f} at {HIGH_DENSITY} /µm², "
    f"RMSE_lat {jit_lo.rmse_lat:.1f} nm at {LOW_DENSITY} /µm²"
)
print(
    f"low-SNR, three-frame net without context: JI {noctx_score.jaccard:.3f}, "
    f"test loss {noctx_loss:.2f}"
)
print(
    f"σ shuffled: z-score SD x {cal_shuffled['z_std_x']:.3f}, y {cal_shuffled['z_std_y']:.3f}, "
    f"Spearman ρ {cal_shuffled['spearman']:.3f}"
)
print(f"thresholded detections per frame {n_detections:.2f}")

# %% [markdown]
# ## Claims
#
# Thresholds are the book's targets for the active profile, fixed before any run; the paper
# reports its comparisons as figures (Fig. 2, Extended Data Fig. 2) rather than thresholds.
# Jaccard index, RMSE and efficiency follow the SMLM challenge (matching within 250 nm
# laterally, 500 nm axially, per frame).
# C5 compares the mean over all main-regime test frames of $\sum_k p_k$ with the mean number
# of labelled emitters. C2's Cramér–Rao comparison needs the full profile; its bound is
# $\sqrt{\overline{\mathrm{CRLB}_x + \mathrm{CRLB}_y}}$ over the true emitters (EMCCD excess noise
# included, computed from the Fisher information of the pixel-integrated model).

# %%
s_hi, s_lo = scores["DECODE"][HIGH_DENSITY], scores["DECODE"][LOW_DENSITY]
c_hi, c_lo = scores["classical"][HIGH_DENSITY], scores["classical"][LOW_DENSITY]
p_sum = (
    torch.cat([outs["DECODE"][d]["p"].sum((1, 2, 3)).cpu() for d in cfg.densities]).mean().item()
)
true_count = torch.cat([tests[d].labels.counts().float() for d in cfg.densities]).mean().item()
crlb = None
if rt.profile == "full":
    lab = tests[LOW_DENSITY].labels
    bg_of = tests[LOW_DENSITY].background.flatten()[lab.frame]
    cb = gaussian_crlb(
        lab.photons.cpu(),
        bg_of.cpu(),
        psf=psf,
        z=lab.z.cpu() if cfg.three_d else None,
        excess_noise=camera.excess_noise,
    )
    crlb = float(np.sqrt(((cb[:, 0] ** 2 + cb[:, 1] ** 2) * 100.0**2).mean()))

res = ChapterResults(
    "decode",
    rt,
    require_controls=True,
    # C1a and C6 hold or not depending on the CPU's floating-point code paths at this budget
    # (see "What held" below): not counted as reproduced at ci.
    expected_not_reproduced=("C4a", "C4b") + (("C3a", "C1a", "C6") if rt.profile == "ci" else ()),
)
res.add(
    Claim(
        "C1a",
        f"JI(DECODE) − JI(classical) at {HIGH_DENSITY} /µm²",
        paper="DECODE best JI at high density (Fig. 2)",
        op=">=",
        threshold=cfg.c1_margin,
        measured=s_hi.jaccard - c_hi.jaccard,
        control=scores["DECODE single"][HIGH_DENSITY].jaccard - c_hi.jaccard,
        control_label="single-frame ablation in place of DECODE",
    )
)
res.add(
    Claim(
        "C1b",
        f"E_lat(DECODE) − E_lat(classical) at {HIGH_DENSITY} /µm²",
        paper="DECODE best efficiency (Fig. 2)",
        op=">=",
        threshold=0.0,
        measured=s_hi.efficiency_lat - c_hi.efficiency_lat,
        control=jit_hi.efficiency_lat - c_hi.efficiency_lat,
        control_label="DECODE jittered by 50 nm",
    )
)
res.add(
    Claim(
        "C1c",
        f"JI(DECODE) at {LOW_DENSITY} /µm²",
        paper="high JI at low density (Fig. 2)",
        op=">=",
        threshold=cfg.c1_low_ji,
        measured=s_lo.jaccard,
        control=untrained_lo.jaccard,
        control_label="untrained DECODE",
    )
)
res.add(
    Claim(
        "C1d",
        f"JI(classical) at {LOW_DENSITY} /µm²",
        paper="high JI at low density (Fig. 2)",
        op=">=",
        threshold=cfg.c1_low_ji,
        measured=c_lo.jaccard,
        control=untrained_lo.jaccard,
        control_label="untrained DECODE",
    )
)
res.add(
    Claim(
        "C2a",
        f"RMSE_lat(DECODE) / RMSE_lat(classical) at {LOW_DENSITY} /µm²",
        paper="as precise as CSpline at low density (Fig. 2)",
        op="<=",
        threshold=cfg.c2_ratio,
        measured=s_lo.rmse_lat / c_lo.rmse_lat,
        control=jit_lo.rmse_lat / c_lo.rmse_lat,
        control_label="DECODE jittered by 50 nm",
    )
)
res.add(
    Claim(
        "C2b",
        f"RMSE_lat(DECODE) / √(mean CRLB_lat) at {LOW_DENSITY} /µm²",
        paper="reaches the CRLB (Fig. 2)",
        op="<=",
        threshold=cfg.c2_crlb,
        profiles=("full",),
        measured=s_lo.rmse_lat / crlb if crlb else None,
        control=jit_lo.rmse_lat / crlb if crlb else None,
        control_label="DECODE jittered by 50 nm",
    )
)
res.add(
    Claim(
        "C3a",
        "low-SNR: JI(DECODE, 3 frames) − JI(single frame), same budget",
        paper="context helps (Ext. Data Fig. 2)",
        op=">=",
        threshold=cfg.c3_margin,
        measured=low_scores["DECODE"].jaccard - low_scores["DECODE single"].jaccard,
        control=noctx_score.jaccard - low_scores["DECODE single"].jaccard,
        control_label="3-frame net, context removed",
    )
)
res.add(
    Claim(
        "C3b",
        "low-SNR: test loss(single) − test loss(DECODE, 3 frames)",
        paper="context helps (Ext. Data Fig. 2)",
        op=">=",
        threshold=0.0,
        measured=low_loss["DECODE single"] - low_loss["DECODE"],
        control=low_loss["DECODE single"] - noctx_loss,
        control_label="3-frame net, context removed",
    )
)
res.add(
    Claim(
        "C4a",
        "std of z-scores Δx/σ̂x over TPs (all densities)",
        paper="calibrated σ (Fig. 2)",
        op="in",
        threshold=cfg.c4_z,
        measured=cal["z_std_x"],
        control=cal_shuffled["z_std_x"],
        control_label="σ shuffled among localisations",
    )
)
res.add(
    Claim(
        "C4b",
        "std of z-scores Δy/σ̂y over TPs (all densities)",
        paper="calibrated σ (Fig. 2)",
        op="in",
        threshold=cfg.c4_z,
        measured=cal["z_std_y"],
        control=cal_shuffled["z_std_y"],
        control_label="σ shuffled among localisations",
    )
)
res.add(
    Claim(
        "C4c",
        "Spearman ρ(σ̂_lat, |Δ_lat|) over TPs",
        paper="σ predicts the error (Fig. 2)",
        op=">=",
        threshold=cfg.c4_rho,
        measured=cal["spearman"],
        control=cal_shuffled["spearman"],
        control_label="σ shuffled among localisations",
    )
)
res.add(
    Claim(
        "C5",
        "mean Σ_k p_k / mean labelled count per frame",
        paper="count loss (Methods)",
        op="in",
        threshold=(1 - cfg.c5_tol, 1 + cfg.c5_tol),
        measured=p_sum / true_count,
        control=n_detections / true_count,
        control_label="thresholded detections in place of Σp",
    )
)
res.add(
    Claim(
        "C6",
        "fitted σ̂0 / true σ0 (1.25 px; net trained at 1.0 px)",
        paper="model learned from data (arXiv:1907.00770, abstract)",
        op="in",
        threshold=(1 - cfg.c6_tol, 1 + cfg.c6_tol),
        measured=sigma_hat / 1.25,
        control=psf.sigma0 / 1.25,
        control_label="training σ0, no recalibration",
    )
)

# %% tags=["nbval-check-output"]
print(res.table(timings=False))
mad = {
    ax: 1.4826 * float(np.median(np.abs(cal[f"z_{ax}"] - np.median(cal[f"z_{ax}"]))))
    for ax in ("x", "y")
}
print(f"robust SD (1.4826 × MAD) of the z-scores: x {mad['x']:.2f}, y {mad['y']:.2f}")

# %%
# the numbers the text below quotes, as this run measured them (shown nowhere else)
res.glue(
    robust_sd_x=mad["x"],
    robust_sd_y=mad["y"],
    c3_single_ji=low_scores["DECODE single"].jaccard,
    c3_three_ji=low_scores["DECODE"].jaccard,
    c3_noctx_ji=noctx_score.jaccard,
    lo_ji_classical=c_lo.jaccard,
    lo_ji_decode=s_lo.jaccard,
)

# %% [markdown]
# ## What held, what did not, and why
#
# The verdicts and numbers below are this run's (the box at the top of the chapter counts
# them; the rules and controls are in the table above).
#
# **Crowded frames (C1).** At 3 emitters/µm² DECODE's Jaccard index is
# {glue:text}`C1a_ours:.3f` above the classical fitter's and the single-frame ablation's is
# {glue:text}`C1a_control:.3f` above (C1a: {glue:text}`C1a_verdict`). C1a is fragile at this
# budget: the ablation's margin moves with floating-point rounding. The same code run on CPUs
# whose math libraries take different code paths (with and without AVX-512, oneDNN and MKL
# pinned or not) put the ablation anywhere from far below DECODE's margin to level with it,
# while DECODE's own margin barely moved; so C1a holds on some machines and is inconclusive on
# others, and we do not count it as robust. DECODE's efficiency is higher than the fitter's by
# {glue:text}`C1b_ours:.3f` (C1b: {glue:text}`C1b_verdict`; DECODE with 50 nm of added position
# noise: {glue:text}`C1b_control:.3f`); at 0.5 /µm² both methods reach a Jaccard index of
# {glue:text}`C1c_ours:.3f` (DECODE) and {glue:text}`C1d_ours:.3f` (fitter) against
# {glue:text}`C1c_control:.3f` for an untrained network (C1c: {glue:text}`C1c_verdict`, C1d:
# {glue:text}`C1d_verdict`). Not as in the paper, though no claim fails on it: at low density
# the classical fitter detects more emitters than DECODE here.
#
# **Precision (C2).** DECODE's RMSE at low density is {glue:text}`C2a_ours:.2f` times the
# fitter's (C2a: {glue:text}`C2a_verdict`; jittered by 50 nm, {glue:text}`C2a_control:.1f`
# times). C2b, the lateral RMSE against the Cramér–Rao bound, is judged only at the full profile
# (control: DECODE with 50 nm of added position noise, same rule).
#
# **Temporal context (C3).** On the low-SNR set the three-frame network's test loss per frame
# is {glue:text}`C3b_ours:.2f` below the single-frame network's (C3b: {glue:text}`C3b_verdict`);
# the same network with its context removed (the middle frame fed three times) is at
# {glue:text}`C3b_control:.2f` by the same measure. Its Jaccard index is
# {glue:text}`C3a_ours:.3f` above the single-frame network's, but without context it is
# {glue:text}`C3a_control:.3f` above (Jaccard indices {glue:text}`c3_three_ji:.3f` with context,
# {glue:text}`c3_noctx_ji:.3f` without, {glue:text}`c3_single_ji:.3f` single-frame; C3a:
# {glue:text}`C3a_verdict`). At the default threshold the gain in Jaccard index comes from the
# larger, better-trained two-stage network rather than from temporal context; context does
# lower the test loss and shows in the precision–recall curves of
# {numref}`fig-decode-context`. Earlier versions of this chapter reported C3a as held because
# they lacked this control.
#
# **Uncertainties (C4).** Pooled over all densities the z-scores' standard deviation is
# {glue:text}`C4a_ours:.2f` (x, C4a: {glue:text}`C4a_verdict`) and {glue:text}`C4b_ours:.2f` (y,
# C4b: {glue:text}`C4b_verdict`) against the band [0.7, 1.4]; the core follows N(0, 1) (robust SD
# {glue:text}`robust_sd_x:.2f` and {glue:text}`robust_sd_y:.2f`; {numref}`fig-decode-calibration`),
# and the table after that figure locates the excess in crowded frames. The training budget (600
# steps of a 17 k parameter network on a CPU, where the reference trains for hours on a GPU) is the
# likely cause; the full profile checks the stricter thresholds with the reference-size network.
# Predicted σ does rank the errors (C4c: Spearman {glue:text}`C4c_ours:.2f` against
# {glue:text}`C4c_control:.3f` for shuffled σ; {glue:text}`C4c_verdict`).
#
# **Counts and self-calibration (C5, C6).** The expected count $\sum_k p_k$ is
# {glue:text}`C5_ours:.3f` of the true count (C5: {glue:text}`C5_verdict`; the number of
# thresholded detections is {glue:text}`C5_control:.2f` of it). The PSF width fitted to
# mismatched data is {glue:text}`C6_ours:.3f` of the true width (C6: {glue:text}`C6_verdict`;
# leaving σ0 at the training value gives {glue:text}`C6_control:.2f`). Like C1a, C6 sits close
# to its band's edge and moved across it between machines; it is listed among the claims this
# chapter does not count as reproduced at the ci profile.

# %% tags=["nbval-ignore-output"]
print(res.table())
res.save()
n_frames_eval = len(cfg.densities) * cfg.n_test
print(f"simulation of {n_frames_eval} test frames: {sim_time:.2f} s")
print(
    f"simulation of {cfg.n_steps * cfg.batch} training windows "
    f"(shared by both networks): {pool_time:.2f} s"
)
for m, t in train_time.items():
    print(f"training {m}: {t:.1f} s ({cfg.n_steps} steps, {1e3 * t / cfg.n_steps:.0f} ms/step)")
for m, t in run_time.items():
    n_loc = sum(len(v) for v in locs[m].values())
    print(
        f"{m}: {n_frames_eval / t:.0f} frames/s, {n_loc / t:.0f} localisations/s "
        f"({'network forward only' if m != 'classical' else 'detection + fit'})"
    )
print(f"PSF self-calibration: {c6_time:.2f} s")
for k, v in rt.provenance().items():
    print(f"{k:14s} {v}")

# %%
res.check()
